"""Word vectors through gensim: load word2vec/GloVe/fastText files or train them, then
turn them into an embedding matrix for a tokenizer's vocabulary."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from .tokenizer import PAD_ID

log = logging.getLogger(__name__)

VectorFormat = Literal["auto", "word2vec-binary", "word2vec-text", "glove", "fasttext-vec"]
VECTOR_FORMATS = ("auto", "word2vec-binary", "word2vec-text", "glove", "fasttext-vec")


@dataclass
class EmbeddingInit:
    matrix: torch.Tensor  # vocab_size x dim
    found: int  # vocabulary entries that had a vector
    total: int  # vocabulary entries, special tokens excluded

    @property
    def coverage(self) -> float:
        return self.found / self.total if self.total else 0.0


def _detect(path: Path) -> str:
    if path.suffix == ".bin":
        return "word2vec-binary"
    with path.open("rb") as handle:
        first = handle.readline().split()
    if len(first) == 2 and all(part.isdigit() for part in first):
        return "word2vec-text"  # a "count dim" header: word2vec text or fastText .vec
    return "glove"


def load_vectors(path: str | Path, fmt: VectorFormat = "auto", limit: int | None = None):
    """A gensim ``KeyedVectors`` from a word2vec (binary/text), GloVe or fastText ``.vec`` file."""
    from gensim.models import KeyedVectors

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such word-vector file")
    if fmt not in VECTOR_FORMATS:
        raise ValueError(f"unknown vector format {fmt!r}; choose one of {VECTOR_FORMATS}")
    kind = _detect(path) if fmt == "auto" else fmt
    try:
        return KeyedVectors.load_word2vec_format(
            str(path),
            binary=kind == "word2vec-binary",
            no_header=kind == "glove",
            limit=limit,
            unicode_errors="replace",
        )
    except Exception as error:  # gensim raises ValueError, EOFError, UnicodeError, ...
        raise ValueError(
            f"{path}: cannot read it as {kind} vectors ({type(error).__name__}: {error}); "
            "check the file or pass --vectors-format"
        ) from None


def train_vectors(
    sentences: Iterable[list[str]],
    kind: Literal["word2vec", "fasttext"],
    dim: int,
    seed: int = 0,
    epochs: int = 5,
):
    """Train word2vec or fastText vectors on tokenised sentences (one worker: reproducible)."""
    from gensim.models import FastText, Word2Vec

    if kind not in ("word2vec", "fasttext"):
        raise ValueError(f"--train-vectors must be word2vec or fasttext, got {kind!r}")
    sentences = [s for s in sentences if s]
    cls = Word2Vec if kind == "word2vec" else FastText
    model = cls(
        sentences=sentences,
        vector_size=dim,
        window=5,
        min_count=1,
        workers=1,
        seed=seed,
        epochs=epochs,
    )
    return model.wv


def embedding_matrix(
    vocab: dict[str, int], vectors, special_ids: set[int], seed: int = 0
) -> EmbeddingInit:
    """Rows from ``vectors`` for the words it has; U[-0.25, 0.25] for the rest, as Kim did.

    The padding row is zero. Words are looked up as they are, then lower-cased.
    """
    dim = vectors.vector_size
    rng = np.random.default_rng(seed)
    matrix = rng.uniform(-0.25, 0.25, size=(len(vocab), dim)).astype(np.float32)
    found = 0
    for word, index in vocab.items():
        if index in special_ids:
            continue
        for key in (word, word.lower()):
            if key in vectors.key_to_index:
                matrix[index] = vectors[key]
                found += 1
                break
    matrix[PAD_ID] = 0.0
    init = EmbeddingInit(torch.from_numpy(matrix), found, len(vocab) - len(special_ids))
    log.info(
        "word vectors cover %d of %d vocabulary words (%.1f%%)",
        init.found,
        init.total,
        100 * init.coverage,
    )
    return init
