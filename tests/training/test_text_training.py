import json

import pytest
import torch
from safetensors.torch import load_file

import textcnn
from tests.conftest import tiny_config, tiny_texts, write_tsv
from textcnn.artifacts import load_tensors
from textcnn.training.labels import class_weights
from textcnn.training.pipeline import fit_and_save


def test_a_tiny_corpus_is_learned_completely(tiny_corpus, tmp_path):
    model_dir = fit_and_save(
        tiny_config(tiny_corpus, tmp_path / "run", epochs=15, dev_fraction=0.2)
    )
    classifier = textcnn.load(model_dir)
    texts, labels = zip(*tiny_texts(), strict=True)
    predictions = classifier.predict(list(texts))
    accuracy = sum(p[0].label == y for p, y in zip(predictions, labels, strict=True)) / len(labels)
    assert accuracy == 1.0
    history = [
        json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    ]
    assert [h["epoch"] for h in history] == list(range(1, 16))
    assert history[-1]["train_loss"] < history[0]["train_loss"] / 5


def test_model_directory_contents(tiny_corpus, tmp_path):
    test_file = write_tsv(tmp_path / "test.tsv", tiny_texts(20, seed=5))
    model_dir = fit_and_save(tiny_config(tiny_corpus, tmp_path / "run", test=str(test_file)))
    names = {p.name for p in model_dir.iterdir()}
    assert names == {
        "config.json",
        "tokenizer.json",
        "model.safetensors",
        "metrics.json",
        "confusion.png",
        "reliability.png",
    }
    assert (tmp_path / "run" / "model-last" / "model.safetensors").is_file()
    assert not (tmp_path / "run" / "checkpoint").exists()  # removed once the run is complete
    config = json.loads((model_dir / "config.json").read_text())
    assert config["format_version"] == 1 and config["task"] == "text"
    assert config["labels"] == ["negative", "positive"]
    assert len(config["data"]["train"]["fingerprint"]) == 64
    assert set(config["metrics"]) == {"dev", "test"}
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert metrics["test"]["examples"] == 20
    assert sum(map(sum, metrics["test"]["confusion_matrix"])) == 20
    assert (model_dir / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # no temporary leftovers beside the model directories
    assert not [p for p in (tmp_path / "run").iterdir() if p.name.startswith(".")]


def test_saved_model_reloads_with_identical_outputs(tiny_corpus, tmp_path):
    model_dir = fit_and_save(tiny_config(tiny_corpus, tmp_path / "run"))
    texts = ["a good film", "boring plot", "x"]
    first = textcnn.load(model_dir).predict_proba(texts)
    second = textcnn.load(model_dir).predict_proba(texts)
    assert torch.equal(first, second)
    state = load_file(str(model_dir / "model.safetensors"))
    assert "embedding.weight" in state


def test_interrupted_run_resumed_ends_with_the_same_weights(tiny_corpus, tmp_path):
    straight = fit_and_save(
        tiny_config(tiny_corpus, tmp_path / "straight", optimizer="adadelta", lr=1.0)
    )

    def interrupt(record):
        if record["epoch"] == 1:
            raise KeyboardInterrupt

    cfg = tiny_config(tiny_corpus, tmp_path / "resumed", optimizer="adadelta", lr=1.0)
    with pytest.raises(KeyboardInterrupt):
        fit_and_save(cfg, on_epoch_end=interrupt)
    assert not (tmp_path / "resumed" / "model-best").exists()  # never a half model
    with pytest.raises(ValueError, match="unfinished run.*--resume"):
        fit_and_save(cfg)
    resumed = fit_and_save(cfg, resume=True)
    for name in ("model-best", "model-last"):
        a = load_tensors(straight.parent / name / "model.safetensors")
        b = load_tensors(resumed.parent / name / "model.safetensors")
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), (name, key)
    assert (tmp_path / "straight" / "metrics.jsonl").read_text().count("\n") == 6
    straight_log = [
        json.loads(x)["train_loss"] for x in (tmp_path / "straight" / "metrics.jsonl").open()
    ]
    resumed_log = [
        json.loads(x)["train_loss"] for x in (tmp_path / "resumed" / "metrics.jsonl").open()
    ]
    assert straight_log == resumed_log


@pytest.mark.parametrize("other", ["same labels", "other labels"])
def test_resume_refuses_other_data(tiny_corpus, tmp_path, other):
    def interrupt(record):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit_and_save(tiny_config(tiny_corpus, tmp_path / "run"), on_epoch_end=interrupt)
    rows = tiny_texts(60, seed=4)
    if other == "other labels":
        rows = [(text, "good" if label == "positive" else "bad") for text, label in rows]
    changed = write_tsv(tmp_path / "other.tsv", rows)
    with pytest.raises(ValueError, match=r"trained on other data \(train .*train.tsv.*other.tsv"):
        fit_and_save(tiny_config(changed, tmp_path / "run"), resume=True)
    assert (tmp_path / "run" / "checkpoint" / "state.json").is_file()  # still resumable
    fit_and_save(tiny_config(tiny_corpus, tmp_path / "run"), resume=True)


def test_model_files_are_readable_by_all(tiny_corpus, tmp_path):
    model_dir = fit_and_save(tiny_config(tiny_corpus, tmp_path / "run", epochs=1))
    modes = {p.name: p.stat().st_mode & 0o777 for p in model_dir.iterdir()}
    assert set(modes.values()) == {0o644}, modes


def test_many_classes_keep_the_n_gram_table_within_its_memory(tmp_path, caplog):
    """2,000 classes with the channel's default 2^18 bigram rows would take 4 GB to count;
    the rows are cut to fit model.ngram_max_mb, and the log says so."""
    rows = [(f"{w} word{i % 7}", f"class{i // 2}") for i, w in enumerate(["a", "b"] * 2000)]
    data = write_tsv(tmp_path / "many.tsv", rows)
    settings = {"epochs": 1, "ngram_buckets": 2**18, "ngram_max_mb": 32}
    model_dir = fit_and_save(tiny_config(data, tmp_path / "run", **settings))
    card = json.loads((model_dir / "config.json").read_text())
    assert len(card["labels"]) == 2000 and 0 < card["model"]["ngram_buckets"] <= 2048
    assert "fits in 32 MB (model.ngram_max_mb)" in caplog.text
    assert not (model_dir / "confusion.png").exists()  # no 2,000 x 2,000 picture either
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert "confusion_matrix" not in metrics["dev"] and len(metrics["dev"]["per_class"]) == 2000


def test_resume_without_a_checkpoint_is_a_clear_error(tiny_corpus, tmp_path):
    with pytest.raises(ValueError, match="no checkpoint to resume"):
        fit_and_save(tiny_config(tiny_corpus, tmp_path / "run"), resume=True)


def test_early_stopping(tiny_corpus, tmp_path):
    fit_and_save(tiny_config(tiny_corpus, tmp_path / "run", epochs=30, patience=2))
    epochs = (tmp_path / "run" / "metrics.jsonl").read_text().count("\n")
    assert epochs < 30


def test_balanced_class_weights_reweigh_an_imbalanced_corpus(tmp_path):
    rows = tiny_texts(200)
    rows = [r for r in rows if r[1] == "positive"] + [r for r in rows if r[1] == "negative"][:20]
    data = write_tsv(tmp_path / "imbalanced.tsv", rows)  # 100 positive, 20 negative
    weights = class_weights(torch.tensor([0] * 20 + [1] * 100), 2)
    assert weights.tolist() == pytest.approx([120 / (2 * 20), 120 / (2 * 100)])

    def first_loss(name, **settings):
        fit_and_save(tiny_config(data, tmp_path / name, epochs=1, **settings))
        return json.loads((tmp_path / name / "metrics.jsonl").read_text())["train_loss"]

    # the same seed and batches: only the weighting differs, and it reaches the loss
    assert first_loss("plain") != pytest.approx(first_loss("balanced", class_weights="balanced"))


def test_labels_unknown_to_the_training_data_are_rejected(tiny_corpus, tmp_path):
    dev = write_tsv(tmp_path / "dev.tsv", [("good film", "positive"), ("meh", "neutral")])
    with pytest.raises(ValueError, match="labels the model was not trained on: neutral"):
        fit_and_save(tiny_config(tiny_corpus, tmp_path / "run", dev=str(dev)))


def test_embedding_modes_with_trained_and_loaded_vectors(tiny_corpus, tmp_path):
    for mode in ("static", "non-static", "multichannel"):
        cfg = tiny_config(
            tiny_corpus, tmp_path / mode, embedding_mode=mode, train_vectors="word2vec", epochs=2
        )
        model_dir = fit_and_save(cfg)
        config = json.loads((model_dir / "config.json").read_text())
        assert config["model"]["embedding_mode"] == mode
        assert config["vector_coverage"] == 1.0
        state = load_file(str(model_dir / "model.safetensors"))
        assert ("static_embedding.weight" in state) == (mode == "multichannel")
        probabilities = textcnn.load(model_dir).predict_proba(["good", "bad film"])
        torch.testing.assert_close(probabilities.sum(1), torch.ones(2))
    vec = tmp_path / "v.vec"
    vec.write_text("2 4\ngood 1 1 1 1\nbad -1 -1 -1 -1\n")
    model_dir = fit_and_save(
        tiny_config(
            tiny_corpus, tmp_path / "loaded", embedding_mode="static", vectors=str(vec), epochs=1
        )
    )
    config = json.loads((model_dir / "config.json").read_text())
    assert config["model"]["embed_dim"] == 4
    assert 0 < config["vector_coverage"] < 1
    with pytest.raises(ValueError, match="needs word vectors"):
        fit_and_save(tiny_config(tiny_corpus, tmp_path / "none", embedding_mode="static"))


def test_killed_while_writing_the_model_the_run_can_still_be_resumed(
    tiny_corpus, tmp_path, monkeypatch
):
    import textcnn.training.pipeline as pipeline

    cfg = tiny_config(tiny_corpus, tmp_path / "run", epochs=2)
    real = pipeline.write_model_dir

    def killed_at_model_last(path, *args, **kwargs):
        if path.name == "model-last":
            (path.parent / ".model-last.x1.tmp").mkdir()  # what the kill leaves behind
            raise KeyboardInterrupt
        return real(path, *args, **kwargs)

    monkeypatch.setattr(pipeline, "write_model_dir", killed_at_model_last)
    with pytest.raises(KeyboardInterrupt):
        fit_and_save(cfg)
    monkeypatch.undo()
    assert (tmp_path / "run" / "checkpoint" / "state.json").is_file()
    best = fit_and_save(cfg, resume=True)
    assert textcnn.load(best).predict(["a good film"])[0][0].label == "positive"
    assert textcnn.load(best.parent / "model-last").labels == ["negative", "positive"]
    left = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert left == ["metrics.jsonl", "model-best", "model-last"]


def test_too_few_rows_for_a_dev_split_say_so(tmp_path):
    data = write_tsv(tmp_path / "two.tsv", [("good film", "positive"), ("bad film", "negative")])
    with pytest.raises(ValueError, match=r"2 rows are too few to hold out a dev split.*--dev"):
        fit_and_save(tiny_config(data, tmp_path / "run"))
