"""A trained text classifier: tokenizer + network + labels, with a batched ``predict``."""

from __future__ import annotations

import contextlib
import gc
import logging
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Literal

import torch
from tokenizers import Tokenizer

from ..artifacts import checked_labels, load_weights
from ..card import TextCard
from ..models import TextCNN
from ..models.folded import FoldedTextCNN, table_bytes
from ..predictor import Prediction
from .tokenizer import (
    PAD_ID,
    FastWordEncoder,
    check_tokenizer,
    clean_text,
    encode_batch,
    load_tokenizer,
)

TOKENIZER_FILE = "tokenizer.json"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Evidence:
    """A span of the original text that won max-pooling for filters voting for the label."""

    text: str
    start: int  # character offsets into the original text
    end: int
    weight: float  # summed contribution to the predicted class's logit


@dataclass(frozen=True)
class Result:
    predictions: list[Prediction]  # most probable first
    truncated: bool  # the text was longer than the model's maximum length
    evidence: list[Evidence] | None = None  # with explain=True


def pad_batch(sequences: Sequence[Sequence[int]]) -> torch.Tensor:
    """N x L token ids, padded at the end with PAD_ID to the longest (at least 1)."""
    lengths = torch.tensor([len(s) for s in sequences], dtype=torch.long)
    width = max(1, int(lengths.max())) if sequences else 1
    batch = torch.full((len(sequences), width), PAD_ID, dtype=torch.long)
    flat = array("q", chain.from_iterable(sequences))  # 10x faster than torch.tensor(list)
    flat = torch.frombuffer(flat, dtype=torch.long) if flat else torch.empty(0, dtype=torch.long)
    batch[torch.arange(width)[None, :] < lengths[:, None]] = flat  # row by row, in order
    return batch


InferencePath = Literal["auto", "folded", "conv"]


@contextlib.contextmanager
def collection_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while many small objects are made (token
    lists, results): with a model's large heap, the collections it would trigger cost
    three times the work itself. Nothing here makes reference cycles."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class TextClassifier:
    """Predicts labels for texts; :func:`textcnn.load` builds one from a model directory.

    ``inference`` picks how the network runs: ``"folded"`` through n-gram tables
    (:class:`~textcnn.models.folded.FoldedTextCNN`: the same results, several times
    faster), ``"conv"`` through the network itself (the reference, and what training
    uses), ``"auto"`` folded when the tables take at most ``max_table_mb`` megabytes.
    ``half_tables`` stores the tables in float16 (half the memory, scores to ~1e-3).
    """

    def __init__(
        self,
        model: TextCNN,
        tokenizer: Tokenizer,
        labels: list[str],
        card: TextCard | None = None,
        inference: InferencePath = "conv",
        max_table_mb: float = 512,
        half_tables: bool = False,
    ) -> None:
        self.task = "text"
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.labels = list(labels)
        self.card = card
        self.fast_encoder = FastWordEncoder.of(tokenizer)  # None: not a word tokenizer
        self.network, self.inference = self._network(inference, max_table_mb, half_tables)

    def _network(self, path: str, max_table_mb: float, half: bool):
        """(the module that runs the network, what was chosen and why) for ``path``."""
        if path not in ("auto", "folded", "conv"):
            raise ValueError(f"inference must be auto, folded or conv, got {path!r}")
        dtype = torch.float16 if half else torch.float32
        megabytes = table_bytes(self.model, dtype) / 2**20
        info = {"path": "conv", "table_mb": round(megabytes, 1), "half_tables": half}
        if path == "conv" or (path == "auto" and megabytes > max_table_mb):
            if path == "auto":
                info["reason"] = f"n-gram tables of {megabytes:.0f} MB > {max_table_mb:g} MB"
                log.info("inference through the convolutions: %s", info["reason"])
            return self.model, info
        log.info("inference through folded n-gram tables (%.0f MB)", megabytes)
        return FoldedTextCNN(self.model, dtype).eval(), {**info, "path": "folded"}

    @property
    def max_length(self) -> int:
        truncation = self.tokenizer.truncation
        return truncation["max_length"] if truncation else 0

    def _check(self, texts) -> list[str]:
        if isinstance(texts, str):
            raise TypeError("predict takes a list of texts; wrap a single text as [text]")
        texts = list(texts)
        if not all(isinstance(t, str) for t in texts):
            raise TypeError("every text must be a string")
        return [clean_text(t) for t in texts]

    def _device(self) -> torch.device:
        return next(self.model.parameters()).device

    def token_ids(self, texts: Sequence[str]) -> tuple[list[list[int]], list[bool]]:
        """(token ids, truncated) of every text: the fast word encoder when there is one."""
        with collection_paused():
            if self.fast_encoder is not None:
                return self.fast_encoder.encode(texts)
            encodings = encode_batch(self.tokenizer, texts)
            return [e.ids for e in encodings], [bool(e.overflowing) for e in encodings]

    @torch.inference_mode()
    def probabilities_of(self, ids: list[list[int]], batch_size: int = 1024) -> torch.Tensor:
        """N x classes for token ids from :meth:`token_ids`, in input order; batches are cut
        from the texts sorted by length, so little work goes into padding."""
        out = torch.empty(len(ids), len(self.labels))
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        for start in range(0, len(ids), batch_size):
            rows = order[start : start + batch_size]
            batch = pad_batch([ids[i] for i in rows]).to(self._device())
            out[rows] = torch.softmax(self.network(batch).float(), dim=-1).cpu()
        return out

    def predict_proba(self, texts: Sequence[str], batch_size: int = 1024) -> torch.Tensor:
        """N x num_classes class probabilities."""
        return self.probabilities(texts, batch_size)[0]

    @torch.inference_mode()
    def probabilities(
        self, texts: Sequence[str], batch_size: int = 1024
    ) -> tuple[torch.Tensor, list[bool]]:
        """(N x num_classes probabilities, whether each text was truncated): arrays, not an
        object per text, for callers that handle many texts (batch scoring)."""
        return self._scored(self._check(texts), batch_size)

    def _scored(self, texts: list[str], batch_size: int) -> tuple[torch.Tensor, list[bool]]:
        ids, truncated = self.token_ids(texts)
        return self.probabilities_of(ids, batch_size), truncated

    def predict(
        self, texts: Sequence[str], top_k: int | None = 1, batch_size: int = 1024
    ) -> list[list[Prediction]]:
        """For every text, its ``top_k`` labels (all when None), most probable first."""
        return [r.predictions for r in self.classify(texts, top_k, batch_size=batch_size)]

    @torch.inference_mode()
    def classify(
        self,
        texts: Sequence[str],
        top_k: int | None = 1,
        explain: bool = False,
        batch_size: int = 1024,
        evidence_spans: int = 5,
    ) -> list[Result]:
        """Predictions, truncation flags and (with ``explain``) the n-grams behind each decision."""
        texts = self._check(texts)
        if top_k is not None and top_k < 1:
            raise ValueError(f"top_k must be at least 1 or None, got {top_k}")
        k = len(self.labels) if top_k is None else min(top_k, len(self.labels))
        if explain:
            return self._explained(texts, k, batch_size, evidence_spans)
        probs, truncated = self._scored(texts, batch_size)
        scores, indices = probs.topk(k, dim=-1)
        labels = self.labels
        with collection_paused():
            return [
                Result([Prediction(labels[i], p) for p, i in zip(ps, ix, strict=True)], cut)
                for ps, ix, cut in zip(scores.tolist(), indices.tolist(), truncated, strict=True)
            ]

    def _explained(self, texts: list[str], k: int, batch_size: int, spans: int) -> list[Result]:
        """Results with evidence: the tokenizer's offsets map windows back to the text."""
        results: list[Result] = []
        for start in range(0, len(texts), batch_size):
            chunk = texts[start : start + batch_size]
            encodings = encode_batch(self.tokenizer, chunk)
            ids = pad_batch([e.ids for e in encodings]).to(self._device())
            probs = torch.softmax(self.network(ids).float(), dim=-1).cpu()
            scores, indices = probs.topk(k, dim=-1)
            evidence = self._evidence(chunk, encodings, ids, spans)
            for row, encoding in enumerate(encodings):
                predictions = [
                    Prediction(self.labels[i], float(p))
                    for p, i in zip(scores[row].tolist(), indices[row].tolist(), strict=True)
                ]
                results.append(Result(predictions, bool(encoding.overflowing), evidence[row]))
        return results

    def _evidence(self, texts, encodings, ids, spans: int) -> list[list[Evidence]]:
        """For the predicted class, the windows that won max-pooling in the filters that
        add most to its logit, as character spans of the original texts."""
        contributions, first, last = self.network.ngram_evidence(ids)  # N x C x F, N x F, N x F
        logits = contributions.sum(-1) + self.model.classifier.bias
        out = []
        for row, (text, encoding) in enumerate(zip(texts, encodings, strict=True)):
            if not encoding.ids:
                out.append([])
                continue
            votes = contributions[row, logits[row].argmax()]  # F
            merged: dict[tuple[int, int], float] = {}
            for f in votes.argsort(descending=True)[: 4 * spans].tolist():
                if votes[f] <= 0:
                    break
                begin = encoding.offsets[first[row, f]][0]
                end = encoding.offsets[last[row, f]][1]
                merged[(begin, end)] = merged.get((begin, end), 0.0) + float(votes[f])
            best = sorted(merged.items(), key=lambda item: -item[1])[:spans]
            out.append([Evidence(text[b:e], b, e, round(w, 4)) for (b, e), w in best])
        return out

    def label_ids(self, labels: Sequence[str], source: str = "the data") -> torch.Tensor:
        """Class indices of ``labels``; a label the model does not know is a ``ValueError``."""
        index = {label: i for i, label in enumerate(self.labels)}
        unknown = sorted(set(labels) - set(index))
        if unknown:
            raise ValueError(
                f"{source} has labels the model was not trained on: {', '.join(unknown[:10])}; "
                f"the model knows {', '.join(self.labels)}"
            )
        return torch.tensor([index[label] for label in labels], dtype=torch.long)


def load_text_classifier(
    path: Path, card: TextCard, device: str | torch.device = "cpu", **inference
) -> TextClassifier:
    """The text model of directory ``path`` (its card read as ``card``); see
    :func:`textcnn.load`. ``inference`` defaults to folded tables up to 512 MB."""
    if card.architecture != "textcnn":
        raise ValueError(f"{path}: a text model of architecture {card.architecture!r}")
    labels = checked_labels(card.labels, card.model.num_classes, path)
    model = load_weights(lambda: TextCNN(card.model), path, lazy=True)
    tokenizer = load_tokenizer(path / TOKENIZER_FILE)
    check_tokenizer(tokenizer, card.model.vocab_size, path)
    settings = {"inference": "auto", **inference}
    return TextClassifier(model.to(device), tokenizer, labels, card, **settings)
