"""ONNX export: the file ONNX Runtime runs answers as the model directory does."""

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import textcnn
from tests.conftest import tiny_config, tiny_texts, write_tsv
from tests.training.test_multilabel import emotions, write_jsonl
from textcnn.cli import app
from textcnn.training.pipeline import fit_and_save

ort = pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
from textcnn.export import OnnxClassifier, export_onnx  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures"
runner = CliRunner()
TEXTS = [
    "good fun",
    "a dull and boring evening , truly awful",
    "",
    "   ",
    "great " * 300,  # truncated at max_length
    "naïve café ☕ good",  # not ASCII
    "[PAD] [UNK] wonderful",
    "x",
]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A single-label model with the n-gram channel, and a multi-label one."""
    tmp = tmp_path_factory.mktemp("export")
    data = write_tsv(tmp / "train.tsv", tiny_texts(120))
    single = fit_and_save(tiny_config(data, tmp / "single", ngram_buckets=512, max_length=24))
    card = json.loads((single / "config.json").read_text())
    card["model"]["ngram_weight"] = 0.5  # whatever dev chose: the channel counts here
    (single / "config.json").write_text(json.dumps(card))
    labelled = write_jsonl(tmp / "emotions.jsonl", emotions(300))
    multi = fit_and_save(tiny_config(labelled, tmp / "multi", ngram_buckets=256, epochs=8))
    return {"single": single, "multi": multi}


@pytest.mark.parametrize("kind", ["single", "multi"])
def test_onnx_runtime_answers_as_the_model_directory(models, kind, tmp_path):
    model_dir = models[kind]
    out = tmp_path / "model.onnx"
    result = runner.invoke(app, ["export", str(model_dir), "-o", str(out)])
    assert result.exit_code == 0, result.output
    description = json.loads((tmp_path / "onnx.json").read_text())
    loaded = textcnn.load(model_dir)
    assert description["labels"] == loaded.labels
    assert description["multi_label"] == (kind == "multi")
    assert (tmp_path / "tokenizer.json").read_bytes() == (model_dir / "tokenizer.json").read_bytes()
    exported = OnnxClassifier(out)
    expected, got = loaded.predict_proba(TEXTS), exported.predict_proba(TEXTS)
    assert torch.allclose(expected, got, atol=1e-5), (expected - got).abs().max()
    for top_k in ("auto", 2, None):
        ours, theirs = loaded.predict(TEXTS, top_k), exported.predict(TEXTS, top_k)
        assert [[p.label for p in r] for r in ours] == [[p.label for p in r] for r in theirs]


def test_the_graph_takes_ids_of_any_batch_and_length(models, tmp_path):
    out = tmp_path / "model.onnx"
    export_onnx(models["single"], out)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    loaded = textcnn.load(models["single"], inference="conv")
    for shape in ((1, 1), (1, 30), (7, 3)):
        ids = torch.randint(2, loaded.model.config.vocab_size, shape)
        logits, scores = session.run(None, {"input_ids": ids.numpy()})
        assert np.allclose(logits, loaded.model(ids).detach().numpy(), atol=1e-5)
        assert np.allclose(scores.sum(1), 1, atol=1e-5)


def test_int8_is_smaller_and_gives_the_same_labels_here(models, tmp_path):
    fp32, int8 = tmp_path / "fp32" / "m.onnx", tmp_path / "int8" / "m.onnx"
    export_onnx(models["single"], fp32)
    result = runner.invoke(app, ["export", str(models["single"]), "-o", str(int8), "--int8"])
    assert result.exit_code == 0, result.output
    assert json.loads((int8.parent / "onnx.json").read_text())["int8"] is True
    assert int8.stat().st_size < fp32.stat().st_size
    texts = [text for text, _ in tiny_texts(40, seed=3)]
    a, b = OnnxClassifier(fp32).predict_proba(texts), OnnxClassifier(int8).predict_proba(texts)
    assert (a.argmax(1) == b.argmax(1)).float().mean() >= 0.95
    assert (a - b).abs().max() < 0.1


def test_an_image_model_exports_and_takes_uint8_images(tmp_path):
    out = tmp_path / "image.onnx"
    description = export_onnx(FIXTURES / "image-v1", out)
    loaded = textcnn.load(FIXTURES / "image-v1")
    pre = loaded.card.preprocessing
    assert "images" in description["inputs"] and not (tmp_path / "tokenizer.json").exists()
    images = torch.randint(0, 256, (3, pre.channels, pre.size, pre.size), dtype=torch.uint8)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    _, scores = session.run(None, {"images": images.numpy()})
    assert np.allclose(scores, loaded.predict_proba(images).numpy(), atol=1e-5)
    with pytest.raises(ValueError, match="an image model"):
        OnnxClassifier(out)


def test_bad_exports_are_messages_and_write_nothing(models, tmp_path):
    wrong = runner.invoke(app, ["export", str(models["single"]), "-o", str(tmp_path / "m.bin")])
    assert wrong.exit_code == 1 and "name the file *.onnx" in wrong.output
    broken = tmp_path / "broken"
    shutil.copytree(models["single"], broken)
    (broken / "model.safetensors").write_bytes(b"not weights")
    failed = runner.invoke(app, ["export", str(broken), "-o", str(tmp_path / "out" / "m.onnx")])
    assert failed.exit_code == 1 and "model.safetensors" in failed.output
    assert not list((tmp_path / "out").glob("*"))  # nothing half-written
    export_onnx(models["single"], tmp_path / "one" / "a.onnx")
    other = runner.invoke(
        app, ["export", str(models["multi"]), "-o", str(tmp_path / "one" / "b.onnx")]
    )
    assert other.exit_code == 1 and "a folder of its own" in other.output
    assert OnnxClassifier(tmp_path / "one" / "a.onnx").labels == ["negative", "positive"]


def test_a_pipe_or_a_damaged_description_beside_the_file_is_a_message(models, tmp_path):
    out = tmp_path / "m.onnx"
    export_onnx(models["single"], out)
    card = tmp_path / "onnx.json"
    description = json.loads(card.read_text())
    description["card"]["model"]["embed_dim"] = "wide"
    card.write_text(json.dumps(description))
    with pytest.raises(ValueError, match="onnx.json: damaged"):
        OnnxClassifier(out)
    card.unlink()
    os.mkfifo(card)  # read, it would wait for ever
    with pytest.raises(ValueError, match="not a regular file"):
        OnnxClassifier(out)
