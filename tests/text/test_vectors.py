import numpy as np
import pytest
import torch

from textcnn.text.tokenizer import PAD_ID, UNK_ID
from textcnn.text.vectors import embedding_matrix, load_vectors, train_vectors

WORDS = {"good": [1.0, 2.0, 3.0], "bad": [-1.0, -2.0, -3.0], "film": [0.5, 0.0, 0.5]}
VOCAB = {"[PAD]": 0, "[UNK]": 1, "good": 2, "film": 3, "plot": 4, "bad": 5}


def write_text(path, header: bool):
    lines = [f"{len(WORDS)} 3"] if header else []
    lines += [f"{w} " + " ".join(map(str, v)) for w, v in WORDS.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_binary(path):
    with path.open("wb") as handle:
        handle.write(f"{len(WORDS)} 3\n".encode())
        for word, vector in WORDS.items():
            handle.write(word.encode() + b" " + np.asarray(vector, dtype=np.float32).tobytes())
    return path


@pytest.mark.parametrize("kind", ["word2vec-text", "word2vec-binary", "glove", "fasttext-vec"])
def test_vectors_land_in_the_right_rows(tmp_path, kind):
    if kind == "word2vec-binary":
        path = write_binary(tmp_path / "vectors.bin")
    elif kind == "glove":
        path = write_text(tmp_path / "glove.txt", header=False)
    else:
        path = write_text(
            tmp_path / ("vectors.vec" if kind == "fasttext-vec" else "w2v.txt"), header=True
        )
    vectors = load_vectors(path)  # format detected
    assert vectors.vector_size == 3
    init = embedding_matrix(VOCAB, vectors, {PAD_ID, UNK_ID})
    for word, vector in WORDS.items():
        torch.testing.assert_close(init.matrix[VOCAB[word]], torch.tensor(vector))
    assert init.matrix[PAD_ID].eq(0).all()
    unknown = init.matrix[VOCAB["plot"]]  # no vector: U[-0.25, 0.25]
    assert unknown.abs().max() <= 0.25 and unknown.abs().sum() > 0
    assert (init.found, init.total) == (3, 4)
    assert init.coverage == 0.75


def test_damaged_vector_file_is_a_clear_error(tmp_path):
    path = tmp_path / "broken.bin"
    path.write_bytes(b"3 300\ngood \x00\x01")
    with pytest.raises(ValueError, match="cannot read it as word2vec-binary"):
        load_vectors(path)
    with pytest.raises(ValueError, match="no such word-vector file"):
        load_vectors(tmp_path / "missing.vec")


@pytest.mark.parametrize("kind", ["word2vec", "fasttext"])
def test_trained_vectors_cover_the_corpus(kind):
    sentences = [["good", "film"], ["bad", "film"], ["good", "plot"]] * 10
    vectors = train_vectors(sentences, kind, dim=8, epochs=2)
    init = embedding_matrix(VOCAB, vectors, {PAD_ID, UNK_ID})
    assert init.coverage == 1.0 and init.matrix.shape == (6, 8)
