"""A trained text classifier: tokenizer + network + labels, with a batched ``predict``."""

from __future__ import annotations

import contextlib
import gc
import logging
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from itertools import chain
from pathlib import Path
from typing import Literal

import torch
from tokenizers import Tokenizer

from ..artifacts import TOKENIZER_FILE, checked_labels, load_weights, model_file
from ..card import TextCard
from ..models import TextCNN
from ..models.folded import FoldedTextCNN, table_bytes
from ..predictor import Prediction
from .tokenizer import PAD_ID, FastWordEncoder, clean_text, encode_batch, load_tokenizer

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


@dataclass(frozen=True)
class Encoded:
    """Texts as the network takes them: token ids, and whether each text was truncated."""

    ids: list[list[int]]
    truncated: list[bool]


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
    def version(self) -> str:
        """The first 12 hex digits of the weights' sha256 (what the server calls version)."""
        return self.card.version if self.card is not None else "unsaved"

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
        with collection_paused():
            if self.fast_encoder is not None:
                return Encoded(*self.fast_encoder.encode(texts))
            encodings = encode_batch(self.tokenizer, texts)
            return Encoded([e.ids for e in encodings], [bool(e.overflowing) for e in encodings])

    @torch.inference_mode()
    def predict_proba(self, texts: Sequence[str] | Encoded, batch_size: int = 1024) -> torch.Tensor:
        """N x classes probabilities of texts (or of their :meth:`encode`), in input order.
        Batches are cut from the texts sorted by length, so little work goes into padding."""
        ids = (texts if isinstance(texts, Encoded) else self.encode(texts)).ids
        out = torch.empty(len(ids), len(self.labels))
        if self.network is self.model:  # the convolutions: one text at a time (see above)
            batch_size = 1
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        for start in range(0, len(ids), batch_size):
            rows = order[start : start + batch_size]
            batch = pad_batch([ids[i] for i in rows]).to(self._device())
            out[rows] = torch.softmax(self.network(batch).float(), dim=-1).cpu()
        return out

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
        if top_k is not None and top_k < 1:
            raise ValueError(f"top_k must be at least 1 or None, got {top_k}")
        k = len(self.labels) if top_k is None else min(top_k, len(self.labels))
        encoded = self.encode(texts)
        probs = self.predict_proba(encoded, batch_size)
        scores, indices = probs.topk(k, dim=-1)
        evidence = (
            self._evidence(
                [clean_text(t) for t in texts], indices[:, 0], batch_size, evidence_spans
            )
            if explain
            else [None] * len(probs)
        )
        labels = self.labels
        with collection_paused():
            return [
                Result([Prediction(labels[i], p) for p, i in zip(ps, ix, strict=True)], cut, why)
                for ps, ix, cut, why in zip(
                    scores.tolist(), indices.tolist(), encoded.truncated, evidence, strict=True
                )
            ]

    def _evidence(
        self, texts: list[str], classes: torch.Tensor, batch_size: int, spans: int
    ) -> list[list[Evidence]]:
        """For each text and its class, the windows that won max-pooling in the filters
        that add most to the class's logit, as character spans of the text (the tokenizer's
        offsets map windows back to it)."""
        out: list[list[Evidence]] = []
        for start in range(0, len(texts), batch_size):
            chunk = texts[start : start + batch_size]
            encodings = encode_batch(self.tokenizer, chunk)
            ids = pad_batch([e.ids for e in encodings]).to(self._device())
            # contributions N x C x F, first and last token of each winning window N x F
            contributions, first, last = self.network.ngram_evidence(ids)
            for row, (text, encoding) in enumerate(zip(chunk, encodings, strict=True)):
                votes = contributions[row, int(classes[start + row])]  # F
                out.append(self._spans(text, encoding, votes, first[row], last[row], spans))
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
        best = sorted(merged.items(), key=lambda item: -item[1])[:spans]
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
