"""ONNX export: a model directory as one ``.onnx`` file that ONNX Runtime (or Triton) runs
from C++, Java, C#, JavaScript or Python, with what it needs beside it.

A text model's graph takes ``input_ids``, int64 N x L: the ids ``tokenizer.json`` gives
each text (truncated to ``max_length``), padded at the end with 0 (``[PAD]``); its bigram
ids for the n-gram channel are computed inside the graph from the token ids, with integer
arithmetic, as the served model does. An image model's takes ``images``, uint8 N x C x H x
W at the trained size, and normalises them inside. Both return ``logits`` (N x classes)
and ``scores``: a softmax (a multi-label model: a sigmoid per label) of the logits divided
by the calibrated temperature, the scores ``textcnn.load(...)`` gives.

Beside the file go ``tokenizer.json`` (text) and ``onnx.json``: the labels, inputs and
outputs, maximum length, temperature, a multi-label model's thresholds, and the model card.
``--int8`` applies ONNX Runtime's dynamic quantisation (int8 weights of the convolutions
and classifier, computed in int8).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .artifacts import ONNX_CARD, TOKENIZER_FILE, atomic_file, model_file, read_json, write_json
from .card import Card, TextCard, load_card
from .loading import load
from .models.textcnn import TextCNN
from .predictor import Prediction, TopK, assigned_labels, shown_classes
from .typed import FieldError
from .version import __version__

FORMAT = "textcnn-onnx/1"
OPSET = 18

log = logging.getLogger(__name__)


def _activation(logits: torch.Tensor, temperature: float, multi_label: bool) -> torch.Tensor:
    logits = logits / temperature
    return torch.sigmoid(logits) if multi_label else torch.softmax(logits, dim=-1)


class TextGraph(nn.Module):
    """What is exported of a text model: token ids to (logits, scores)."""

    def __init__(self, model: TextCNN, temperature: float, multi_label: bool) -> None:
        super().__init__()
        self.model, self.temperature, self.multi_label = model, temperature, multi_label
        # padding enough that every width has a window (as real_tokens does, without a
        # branch on the length, which a graph cannot hold); padding changes no score
        self.padding = max(model.config.kernel_sizes) - 1

    def forward(self, input_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        model = self.model
        ids = nn.functional.pad(input_ids, (0, self.padding), value=model.config.padding_idx)
        logits = model.forward_head(model.forward_features(ids))
        channel, weight = model.naive_bayes, model.config.ngram_weight
        if channel is not None and weight:
            # the channel's sum as a gather (ONNX has no embedding bag with weights)
            rows, present = channel.ngrams(ids)
            grams = channel.log_likelihood[rows] * present.unsqueeze(-1).to(logits.dtype)
            logits = logits + weight * (grams.sum(1) + channel.log_prior)
        return logits, _activation(logits, self.temperature, self.multi_label)


class ImageGraph(nn.Module):
    """What is exported of an image model: uint8 images to (logits, scores)."""

    def __init__(self, model: nn.Module, mean, std, temperature: float) -> None:
        super().__init__()
        self.model, self.temperature = model, temperature
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.model((images.float() / 255 - self.mean) / self.std)
        return logits, _activation(logits, self.temperature, False)


def _onnx_modules():
    try:
        import onnx
        import onnxruntime
    except ImportError:
        raise ValueError(
            "ONNX export needs onnx, onnxscript and onnxruntime: pip install 'textcnn[onnx]' "
            "(bash run.sh setup installs them)"
        ) from None
    return onnx, onnxruntime


def _graph(model_dir: Path) -> tuple[nn.Module, tuple[torch.Tensor, ...], dict, Card]:
    """(the module to export, example inputs, the onnx.json fields of its inputs, card)."""
    text = isinstance(load_card(model_dir), TextCard)
    predictor = load(model_dir, inference="conv") if text else load(model_dir)
    card = predictor.card
    batch = torch.export.Dim("batch", min=1, max=1 << 20)
    if isinstance(card, TextCard):
        graph = TextGraph(predictor.model, card.temperature, card.multi_label)
        example = torch.randint(2, card.model.vocab_size, (2, 9))
        tokens = torch.export.Dim("tokens", min=1, max=1 << 20)
        shapes = ({0: batch, 1: tokens},)
        fields = {
            "inputs": {
                "input_ids": "int64 N x L: the ids tokenizer.json gives each text, at most "
                "max_length, padded at the end with 0 ([PAD])"
            },
            "tokenizer": TOKENIZER_FILE,
            "max_length": card.tokenizer.max_length,
        }
    else:
        pre = card.preprocessing
        graph = ImageGraph(predictor.model, pre.mean, pre.std, card.temperature)
        example = torch.randint(0, 256, (2, pre.channels, pre.size, pre.size), dtype=torch.uint8)
        shapes = ({0: batch},)
        fields = {
            "inputs": {
                "images": f"uint8 N x {pre.channels} x {pre.size} x {pre.size}: images "
                "resized to the trained size, channels first (normalised inside)"
            }
        }
    return graph.eval(), (example,), {"shapes": shapes, **fields}, card


def export_onnx(model_dir: str | Path, out: str | Path, int8: bool = False) -> dict:
    """Export the model in ``model_dir`` to the ONNX file ``out`` (``tokenizer.json`` and
    ``onnx.json`` beside it; ``int8``: dynamically quantised), check it with
    ``onnx.checker`` and ONNX Runtime, and return what ``onnx.json`` says. Each file is
    written whole or not at all; ``onnx.json`` last."""
    onnx, _ = _onnx_modules()
    model_dir, out = Path(model_dir), Path(out)
    if out.suffix != ".onnx":
        raise ValueError(f"{out}: name the file *.onnx")
    out.parent.mkdir(parents=True, exist_ok=True)
    sidecar = out.parent / ONNX_CARD
    if sidecar.exists():
        previous = read_json(model_file(out.parent, ONNX_CARD)).get("file")
        if previous != out.name:
            raise ValueError(
                f"{sidecar} describes {previous!r}: export {out.name} into a folder of its own"
            )
    graph, example, fields, card = _graph(model_dir)
    shapes = fields.pop("shapes")
    with torch.no_grad():
        expected = graph(*example)[0]
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".export.") as work:
        exported = Path(work) / "fp32.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                graph,
                example,
                dynamo=True,
                input_names=list(fields["inputs"]),
                output_names=["logits", "scores"],
                dynamic_shapes=shapes,
                opset_version=OPSET,
                verbose=False,
            )
        program.save(str(exported), external_data=False)
        onnx.checker.check_model(str(exported), full_check=True)
        if int8:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            quantized = Path(work) / "int8.onnx"
            root = logging.getLogger()
            level, root.level = root.level, logging.ERROR  # its shape-inference chatter
            try:
                quantize_dynamic(str(exported), str(quantized), weight_type=QuantType.QInt8)
            finally:
                root.setLevel(level)
            exported = quantized
        got = _session(exported).run(None, {next(iter(fields["inputs"])): example[0].numpy()})
        error = float(np.abs(got[0] - expected.numpy()).max())
        if not int8 and not error <= 1e-3:
            raise ValueError(f"the exported graph's logits differ from the model's by {error:g}")
        with atomic_file(out) as tmp:
            shutil.copyfile(exported, tmp)
    if isinstance(card, TextCard):
        with atomic_file(out.parent / TOKENIZER_FILE) as tmp:
            shutil.copyfile(model_file(model_dir, TOKENIZER_FILE), tmp)
    description = {
        "format": FORMAT,
        "file": out.name,
        "task": card.task,
        "exported_by": f"textcnn {__version__}",
        "source_version": card.version,
        "int8": int8,
        **fields,
        "outputs": {
            "logits": "float32 N x classes",
            "scores": "float32 N x classes: "
            + ("a sigmoid per label" if getattr(card, "multi_label", False) else "a softmax")
            + " of logits / temperature",
        },
        "labels": card.labels,
        "temperature": card.temperature,
        "multi_label": getattr(card, "multi_label", False),
        "thresholds": getattr(card, "thresholds", None),
        "min_labels": getattr(card, "min_labels", 1),
        "card": card.to_dict(),
    }
    write_json(sidecar, description)
    log.info("exported %s to %s (%.1f MB)", model_dir, out, out.stat().st_size / 2**20)
    return description


def _session(path: Path, threads: int | None = None):
    _, ort = _onnx_modules()
    options = ort.SessionOptions()
    options.log_severity_level = 3
    if threads is not None:
        options.intra_op_num_threads = options.inter_op_num_threads = threads
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class OnnxClassifier:
    """An exported text model run by ONNX Runtime with its tokenizer: ``predict`` and
    ``predict_proba`` give what ``textcnn.load(...)`` gives for the model it came from."""

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        """``threads``: ONNX Runtime's (None: its default, every core)."""
        from .text.tokenizer import load_tokenizer

        path = Path(path)
        description = read_json(model_file(path.parent, ONNX_CARD))  # a plain, small file
        if description.get("format") != FORMAT or description.get("file") != path.name:
            raise ValueError(f"{path.parent / ONNX_CARD}: not the description of {path.name}")
        if description.get("task") != "text":
            raise ValueError(f"{path}: an image model; run it with ONNX Runtime directly")
        raw = {k: v for k, v in description["card"].items() if k not in ("format_version", "task")}
        try:
            card = TextCard.from_dict(raw)
        except FieldError as error:
            raise ValueError(f"{path.parent / ONNX_CARD}: damaged ({error})") from None
        self.card, self.labels, self.multi_label = card, card.labels, card.multi_label
        self.tokenizer = load_tokenizer(
            model_file(path.parent, TOKENIZER_FILE), card.tokenizer.max_length,
            card.model.vocab_size,
        )  # fmt: skip
        self.session = _session(path, threads)

    def predict_proba(self, texts: Sequence[str], batch_size: int = 256) -> torch.Tensor:
        """N x classes scores (the graph's ``scores``), in input order."""
        from .text.classifier import pad_batch
        from .text.tokenizer import clean_text, encode_batch

        ids = [e.ids for e in encode_batch(self.tokenizer, [clean_text(t) for t in texts])]
        out = torch.empty(len(ids), len(self.labels))
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        for start in range(0, len(ids), batch_size):
            rows = order[start : start + batch_size]
            batch = pad_batch([ids[i] for i in rows]).numpy()
            out[rows] = torch.from_numpy(self.session.run(["scores"], {"input_ids": batch})[0])
        return out

    def predict(self, texts: Sequence[str], top_k: TopK = "auto") -> list[list[Prediction]]:
        """As :meth:`~textcnn.text.classifier.TextClassifier.predict`."""
        probs = self.predict_proba(texts)
        card = self.card
        assigned = (
            assigned_labels(probs, card.thresholds, card.min_labels) if card.multi_label else None
        )
        _, shown = shown_classes(probs, assigned, top_k)
        return [
            [Prediction(self.labels[c], float(row[c])) for c in classes]
            for row, classes in zip(probs, shown, strict=True)
        ]
