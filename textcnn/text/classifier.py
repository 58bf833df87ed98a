"""A trained text classifier: tokenizer + network + labels, with a batched ``predict``."""

from __future__ import annotations

import contextlib
import gc
import logging
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from functools import partial
from itertools import chain
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from tokenizers import Tokenizer

from ..artifacts import TOKENIZER_FILE, checked_labels, load_weights, model_file
from ..card import TextCard
from ..models import TextCNN
from ..models.compiled import CompiledTextCNN
from ..models.folded import FoldedTextCNN, table_bytes
from ..predictor import (
    Evidence,
    Prediction,
    Result,
    TopK,
    assigned_labels,
    check_top_k,
    shown_classes,
)
from .compiled import CompiledEncoder
from .tokenizer import PAD_ID, clean_text, encode_batch, load_tokenizer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Encoded:
    """Texts as the network takes them: every text's token ids back to back (text t's are
    ``flat[offsets[t]:offsets[t + 1]]``), and whether each text was truncated."""

    flat: np.ndarray  # int64
    offsets: np.ndarray  # int64, one more than texts
    truncated: np.ndarray  # bool

    @classmethod
    def of(cls, ids: list[list[int]], truncated: list[bool]) -> Encoded:
        offsets = np.zeros(len(ids) + 1, dtype=np.int64)
        np.cumsum([len(i) for i in ids], out=offsets[1:])
        flat = np.fromiter(chain.from_iterable(ids), dtype=np.int64, count=int(offsets[-1]))
        return cls(flat, offsets, np.array(truncated, dtype=bool))

    @property
    def ids(self) -> list[list[int]]:
        return [part.tolist() for part in np.split(self.flat, self.offsets[1:-1])]


def pad_batch(sequences: Sequence[Sequence[int]]) -> torch.Tensor:
    """N x L token ids, padded at the end with PAD_ID to the longest (at least 1)."""
    lengths = torch.tensor([len(s) for s in sequences], dtype=torch.long)
    width = max(1, int(lengths.max())) if sequences else 1
    batch = torch.full((len(sequences), width), PAD_ID, dtype=torch.long)
    flat = array("q", chain.from_iterable(sequences))  # 10x faster than torch.tensor(list)
    flat = torch.frombuffer(flat, dtype=torch.long) if flat else torch.empty(0, dtype=torch.long)
    batch[torch.arange(width)[None, :] < lengths[:, None]] = flat  # row by row, in order
    return batch


InferencePath = Literal["auto", "compiled", "folded", "conv"]


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

    ``inference`` picks how the network runs: ``"compiled"`` through n-gram tables by
    compiled code (:class:`~textcnn.models.compiled.CompiledTextCNN`: the fastest),
    ``"folded"`` through the same tables in PyTorch
    (:class:`~textcnn.models.folded.FoldedTextCNN`, the reference of the compiled path),
    ``"conv"`` through the network itself (the reference, and what training uses),
    ``"auto"`` compiled when the tables take at most ``max_table_mb`` megabytes, else the
    convolutions. ``half_tables`` stores the tables in float16 (half the memory, scores to
    ~1e-3; PyTorch's folded path). ASCII texts are tokenized by compiled code too
    (:mod:`textcnn.text.compiled`), the others by the ``tokenizers`` library.

    A text's scores never depend on the texts scored with it (the folded path sums in a
    fixed order; the convolutions, whose kernels pick their blocking by the batch's shape,
    take one text at a time), so any split of a file into batches, chunks or shards gives
    the same bytes.
    """

    task = "text"

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
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.labels = list(labels)
        self.card = card
        self.encoder = CompiledEncoder.of(tokenizer)  # None: a tokenizer it does not cover
        self.compiled: CompiledTextCNN | None = None
        self.network, self.inference = self._network(inference, max_table_mb, half_tables)

    def _network(self, path: str, max_table_mb: float, half: bool):
        """(the module that runs the network in PyTorch, what was chosen and why) for
        ``path``; the compiled path is set in ``self.compiled``."""
        if path not in ("auto", "compiled", "folded", "conv"):
            raise ValueError(f"inference must be auto, compiled, folded or conv, got {path!r}")
        dtype = torch.float16 if half else torch.float32
        megabytes = table_bytes(self.model.config, dtype) / 2**20
        info = {"path": "conv", "table_mb": round(megabytes, 1), "half_tables": half}
        if path == "conv" or (path == "auto" and megabytes > max_table_mb):
            if path == "auto":
                info["reason"] = f"n-gram tables of {megabytes:.0f} MB > {max_table_mb:g} MB"
                log.info("inference through the convolutions: %s", info["reason"])
            return self.model, info
        if path == "folded" or half:
            log.info("inference through folded n-gram tables (%.0f MB)", megabytes)
            return FoldedTextCNN(self.model, dtype).eval(), {**info, "path": "folded"}
        log.info("inference through compiled n-gram tables (%.0f MB)", megabytes)
        self.compiled = CompiledTextCNN(self.model.cpu(), sigmoid=self.multi_label)
        return self.model, {**info, "path": "compiled"}

    @property
    def version(self) -> str:
        """The first 12 hex digits of the weights' sha256 (what the server calls version)."""
        return self.card.version if self.card is not None else "unsaved"

    @property
    def multi_label(self) -> bool:
        return self.card is not None and self.card.multi_label

    @property
    def max_length(self) -> int:
        truncation = self.tokenizer.truncation
        return truncation["max_length"] if truncation else 0

    def _device(self) -> torch.device:
        return next(self.model.parameters()).device

    def encode(self, texts: Sequence[str]) -> Encoded:
        """Token ids of every text (cleaned here, once: a lone surrogate becomes U+FFFD),
        through the fast word encoder when there is one."""
        if isinstance(texts, str):
            raise TypeError("give a list of texts; wrap a single text as [text]")
        if not all(isinstance(t, str) for t in texts):
            raise TypeError("every text must be a string")
        texts = [clean_text(t) for t in texts]
        if self.encoder is not None:
            return Encoded(*self.encoder.encode(texts))
        with collection_paused():
            encodings = encode_batch(self.tokenizer, texts)
            return Encoded.of([e.ids for e in encodings], [bool(e.overflowing) for e in encodings])

    def predict_proba(
        self, texts: Sequence[str] | Encoded, batch_size: int = 1024, calibrated: bool = True
    ) -> torch.Tensor:
        """N x classes probabilities of texts (or of their :meth:`encode`), in input order: a
        softmax over the classes, or for a multi-label model a sigmoid per label, of the
        logits divided by the card's temperature (``calibrated=False``: by 1). Batches are
        cut from the texts sorted by length, so little work goes into padding."""
        encoded = texts if isinstance(texts, Encoded) else self.encode(texts)
        return torch.from_numpy(self._scores(encoded, batch_size, calibrated))

    def _scores(self, encoded: Encoded, batch_size: int, calibrated: bool = True) -> np.ndarray:
        """:meth:`predict_proba` as an array (what :meth:`classify` works on)."""
        temperature = self.card.temperature if calibrated and self.card is not None else 1.0
        if self.compiled is not None:  # no torch: no inference mode to enter for one text
            return self.compiled(encoded.flat, encoded.offsets, temperature)[0]
        return self._torch_proba(encoded.ids, batch_size, temperature).numpy()

    @torch.inference_mode()
    def _torch_proba(self, ids: list[list[int]], batch_size: int, temperature: float):
        """:meth:`predict_proba` through PyTorch: the folded tables or the convolutions."""
        out = torch.empty(len(ids), len(self.labels))
        if self.network is self.model:  # the convolutions: one text at a time (see above)
            batch_size = 1
        activation = torch.sigmoid if self.multi_label else partial(torch.softmax, dim=-1)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        for start in range(0, len(ids), batch_size):
            rows = order[start : start + batch_size]
            batch = pad_batch([ids[i] for i in rows]).to(self._device())
            logits = self.network(batch).float()
            out[rows] = activation(logits / temperature if temperature != 1 else logits).cpu()
        return out

    def assigned(self, probabilities: torch.Tensor) -> torch.Tensor:
        """N x classes: which labels the model gives each text (its top class; multi-label,
        every label at or over its threshold, and at least ``min_labels`` top ones)."""
        if not self.multi_label:
            return assigned_labels(probabilities)
        return assigned_labels(probabilities, self.card.thresholds, self.card.min_labels)

    def predict(
        self, texts: Sequence[str], top_k: TopK = "auto", batch_size: int = 1024
    ) -> list[list[Prediction]]:
        """For every text, its labels, most probable first: ``"auto"`` the top one (a
        multi-label model: the labels it assigns), an integer k the k most probable, None
        every label."""
        check_top_k(top_k)
        probs = self._scores(self.encode(texts), batch_size)
        _, shown = shown_classes(probs, self._assigned_if_several(probs), top_k)
        with collection_paused():
            return self._predictions(probs.tolist(), shown)

    def _predictions(self, rows: list[list[float]], shown: list[list[int]]):
        """Per text, a :class:`Prediction` of each class in ``shown``, from its scores."""
        labels = self.labels
        pairs = zip(rows, shown, strict=True)
        return [[Prediction(labels[c], row[c]) for c in classes] for row, classes in pairs]

    def classify(
        self,
        texts: Sequence[str],
        top_k: TopK = "auto",
        explain: bool = False,
        batch_size: int = 1024,
        evidence_spans: int = 5,
        min_score: float | None = None,
    ) -> list[Result]:
        """Predictions (see :meth:`predict`), the labels assigned, truncation flags, and
        (with ``explain``) the n-grams behind each assigned label. Below ``min_score`` the
        model abstains: the result has no label, and its scores still."""
        check_top_k(top_k)
        encoded = self.encode(texts)
        probs = self._scores(encoded, batch_size)
        given, shown = shown_classes(probs, self._assigned_if_several(probs), top_k)
        why = None
        if explain:
            why = self._evidence([clean_text(t) for t in texts], given, batch_size, evidence_spans)
        labels, results = self.labels, []
        with collection_paused():
            rows, truncated = probs.tolist(), encoded.truncated.tolist()  # lists: per text
            predictions = self._predictions(rows, shown)
            for n, gave in enumerate(given):  # costs less than numpy per text
                row = rows[n]
                results.append(
                    Result(
                        predictions[n],
                        truncated[n],
                        None if why is None else why[n].get(gave[0], []) if gave else [],
                        tuple(labels[c] for c in gave),
                        min_score is not None and max(row) < min_score,
                        None
                        if why is None or not self.multi_label
                        else {labels[c]: why[n][c] for c in gave},
                    )
                )
        return results

    def given(self, probabilities: torch.Tensor) -> list[list[int]]:
        """Per text, the classes :meth:`assigned` gives it, most probable first."""
        return shown_classes(probabilities, self._assigned_if_several(probabilities), 1)[0]

    def _assigned_if_several(self, probabilities):
        """:meth:`assigned` for a multi-label model; None (the top class) for the others."""
        return self.assigned(probabilities) if self.multi_label else None

    @torch.inference_mode()
    def _evidence(
        self, texts: list[str], classes: list[list[int]], batch_size: int, spans: int
    ) -> list[dict[int, list[Evidence]]]:
        """For each text and each of its ``classes``, the windows that won max-pooling in
        the filters that add most to the class's logit, as character spans of the text (the
        tokenizer's offsets map windows back to it)."""
        out: list[dict[int, list[Evidence]]] = []
        for start in range(0, len(texts), batch_size):
            chunk = texts[start : start + batch_size]
            encodings = encode_batch(self.tokenizer, chunk)
            # contributions N x C x F, first and last token of each winning window N x F
            if self.compiled is not None:
                flat = Encoded.of([e.ids for e in encodings], [False] * len(chunk))
                contributions, first, last = self.compiled.ngram_evidence(flat.flat, flat.offsets)
            else:
                ids = pad_batch([e.ids for e in encodings]).to(self._device())
                contributions, first, last = self.network.ngram_evidence(ids)
            for row, (text, encoding) in enumerate(zip(chunk, encodings, strict=True)):
                out.append(
                    {
                        c: self._spans(text, encoding, contributions[row, c], first[row],
                                       last[row], spans)
                        for c in classes[start + row]
                    }
                )  # fmt: skip
        return out

    @staticmethod
    def _spans(text, encoding, votes, first, last, spans: int) -> list[Evidence]:
        if not encoding.ids:
            return []
        merged: dict[tuple[int, int], float] = {}
        for f in votes.argsort(descending=True)[: 4 * spans].tolist():
            if votes[f] <= 0:
                break
            begin = encoding.offsets[first[f]][0]
            end = encoding.offsets[last[f]][1]
            merged[(begin, end)] = merged.get((begin, end), 0.0) + float(votes[f])
        # by the weight as reported (4 decimals), then by position: paths whose sums differ
        # in float rounding (the convolutions, the tables) list the same spans in one order
        best = sorted(merged.items(), key=lambda item: (-round(item[1], 4), item[0]))[:spans]
        return [Evidence(text[b:e], b, e, round(w, 4)) for (b, e), w in best]

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


# Texts every loaded model must score, finite and without error, before it is used:
# ASCII, punctuation, accents, CJK, emoji, digits, a text past any maximum length, one
# token, and them all in one batch, through the path the model will serve by and with
# explanations, so that a tampered file that loads but fails on some texts is refused at
# load instead of failing requests one by one.
PROBES = [
    "a plain sentence, with punctuation!",
    "ça a l'air génial, naïve café",
    "中文 日本語 한국어",
    "emoji 🎬🍿 and symbols ∑ ≠ ∞",
    "x",
    "12345 67.8 [PAD] [UNK] [CLS] [MASK] <s> </s>",
    "long " * 400,
]


def check_runs(classifier: TextClassifier, where: Path) -> None:
    """Score :data:`PROBES` alone and together, with explanations; a failure or a score
    that is not finite is a ``ValueError`` that names the model directory."""
    try:
        together = classifier.predict_proba(PROBES)
        alone = torch.cat([classifier.predict_proba([text]) for text in PROBES])
        classifier.classify(PROBES[:2], explain=True)
    except Exception as error:  # a tampered file can fail anywhere in the stack
        raise ValueError(
            f"{where}: the model fails on test texts ({type(error).__name__}: "
            f"{str(error).splitlines()[0][:200] if str(error) else 'no message'}); the model "
            "directory was damaged or tampered with: retrain or copy it again"
        ) from None
    if not (together.isfinite().all() and alone.isfinite().all()):
        raise ValueError(
            f"{where}: the model gives scores that are not numbers (NaN or infinite) on test "
            "texts; its settings or weights were damaged: retrain or copy it again"
        )


def load_text_classifier(
    path: Path, card: TextCard, device: str | torch.device = "cpu", **inference
) -> TextClassifier:
    """The text model of directory ``path`` (its card read as ``card``), checked from its
    files to its answers (:func:`check_runs`); see :func:`textcnn.load`. ``inference``
    defaults to folded tables up to 512 MB."""
    if card.architecture != "textcnn":
        raise ValueError(f"{path}: a text model of architecture {card.architecture!r}")
    if card.model.padding_idx != PAD_ID:
        raise ValueError(
            f"{path}/config.json: model.padding_idx is {card.model.padding_idx}; text models "
            f"pad with token {PAD_ID}: the card was edited, retrain or copy it again"
        )
    labels = checked_labels(card.labels, card.model.num_classes, path)
    tokenizer = load_tokenizer(
        model_file(path, TOKENIZER_FILE), card.tokenizer.max_length, card.model.vocab_size
    )
    model, digest = load_weights(lambda: TextCNN(card.model), path, card.weights_sha256, lazy=True)
    card = replace(card, weights_sha256=digest)
    settings = {"inference": "auto", **inference}
    classifier = TextClassifier(model.to(device), tokenizer, labels, card, **settings)
    check_runs(classifier, path)
    return classifier
