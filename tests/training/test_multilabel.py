"""Several labels per text: reading them, training one sigmoid per label, thresholds picked
on dev, the metrics, and every way a user meets the model (Python, CLI, scoring)."""

import json
import logging
import random

import pytest
import torch
from typer.testing import CliRunner

import textcnn
from tests.conftest import tiny_config
from textcnn.cli import app
from textcnn.text.corpora import ReaderOptions, read_corpus
from textcnn.training.pipeline import cross_validate, fit_and_save

runner = CliRunner()
CUES = {"joy": ["happy", "glad"], "anger": ["angry", "mad"], "fear": ["scared", "afraid"]}
FILLER = ["the", "a", "it", "was", "is", "and", "of", "to", "movie", "day"]


def emotions(n: int, seed: int = 0) -> list[dict]:
    """Texts with one or two emotions, each given by one of its cue words among filler."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        labels = rng.sample(sorted(CUES), rng.choice([1, 1, 2]))
        words = rng.choices(FILLER, k=5) + [rng.choice(CUES[label]) for label in labels]
        rng.shuffle(words)
        rows.append({"text": " ".join(words), "label": labels})
    return rows


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("multi")
    data = write_jsonl(tmp / "train.jsonl", emotions(400))
    test = write_jsonl(tmp / "test.jsonl", emotions(60, seed=1))
    settings = {"epochs": 12, "ngram_buckets": 256, "test": str(test), "dev_fraction": 0.2}
    return fit_and_save(tiny_config(data, tmp / "run", **settings)), test


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("a.txt", "__label__joy __label__fear so happy and scared\n__label__joy glad\n", None),
        ("a.csv", 'label,text\n"joy,fear",so happy and scared\njoy,glad\n', None),
        ("a.tsv", "label\ttext\njoy;fear\tso happy and scared\njoy\tglad\n", ";"),
        (
            "a.jsonl",
            '{"text": "so happy and scared", "label": ["joy", "fear"]}\n'
            '{"text": "glad", "label": "joy"}\n',
            None,
        ),
    ],
)
def test_every_reader_takes_several_labels(tmp_path, name, content, expected):
    (tmp_path / name).write_text(content)
    options = ReaderOptions(label_separator=expected or ",")
    corpus = read_corpus(tmp_path / name, options)
    assert corpus.multi_label and corpus.labels == [("joy", "fear"), ("joy",)]


def test_detection_is_said_declaring_forces_it_and_refusing_it_names_the_row(tmp_path, caplog):
    data = tmp_path / "a.txt"
    data.write_text("__label__joy glad\n__label__joy __label__fear happy and scared\n")
    with caplog.at_level(logging.INFO):
        assert read_corpus(data).multi_label
    assert "multi-label (1 of 2 rows have several labels)" in caplog.text
    single = tmp_path / "b.txt"
    single.write_text("__label__joy glad\n__label__fear scared\n")
    assert not read_corpus(single).multi_label
    assert read_corpus(single, ReaderOptions(multi_label=True)).labels == [("joy",), ("fear",)]
    with pytest.raises(ValueError, match=r"a.txt:2: several labels; pass --multi-label"):
        read_corpus(data, ReaderOptions(multi_label=False))


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{"text": "hi", "label": []}], r"a.jsonl:1: an empty list of labels"),
        ([{"text": "hi", "label": ["joy,ful", "fear"]}], r"holds the label separator ','"),
        ([{"text": "hi", "label": ["joy", True]}], r"a label must be text or a number"),
    ],
)
def test_bad_label_lists_are_messages(tmp_path, rows, message):
    with pytest.raises(ValueError, match=message):
        read_corpus(write_jsonl(tmp_path / "a.jsonl", rows))


def test_a_multi_label_model_learns_every_label_and_says_which_it_gives(trained):
    model_dir, _ = trained
    card = json.loads((model_dir / "config.json").read_text())
    assert card["multi_label"] and card["labels"] == ["anger", "fear", "joy"]
    assert len(card["thresholds"]) == 3 and all(0 < t < 1 for t in card["thresholds"])
    assert card["metrics"]["test"]["micro_f1"] > 0.9
    metrics = json.loads((model_dir / "metrics.json").read_text())["test"]
    assert {"micro_f1", "macro_f1", "subset_accuracy", "hamming_loss"} <= set(metrics)
    assert set(metrics["per_class"]["joy"]) == {"precision", "recall", "f1", "support"}
    assert (model_dir / "label_f1.png").is_file() and not (model_dir / "confusion.png").exists()
    classifier = textcnn.load(model_dir)
    [both, one] = classifier.predict(["so happy yet so scared", "angry and mad"])
    assert {p.label for p in both} == {"joy", "fear"} and [p.label for p in one] == ["anger"]
    assert len(classifier.predict(["angry"], top_k=None)[0]) == 3
    [explained] = classifier.classify(["so happy yet so scared"], explain=True)
    assert set(explained.label_evidence) == {"joy", "fear"}
    assert {span.text for span in explained.label_evidence["joy"]} & {"happy", "so happy"}
    conv = textcnn.load(model_dir, inference="conv")
    texts = [row["text"] for row in emotions(50, seed=3)]
    torch.testing.assert_close(
        conv.predict_proba(texts), classifier.predict_proba(texts), atol=1e-5, rtol=0
    )


def test_min_labels_zero_lets_a_text_have_none(trained, tmp_path):
    model_dir, _ = trained
    card = json.loads((model_dir / "config.json").read_text())
    card["min_labels"], card["thresholds"] = 0, [1.0] * 3  # no score reaches them
    copy = tmp_path / "none"
    copy.mkdir()
    for item in model_dir.iterdir():
        (copy / item.name).write_bytes(item.read_bytes())
    (copy / "config.json").write_text(json.dumps(card))
    [result] = textcnn.load(copy).classify(["the movie was a day"])
    assert result.assigned == () and result.label is None and not result.abstained
    card["min_labels"] = 1
    (copy / "config.json").write_text(json.dumps(card))
    [result] = textcnn.load(copy).classify(["the movie was a day"])
    assert len(result.assigned) == 1  # min_labels 1: the top label at least


def test_score_writes_the_labels_as_a_list_or_a_joined_column(trained, tmp_path):
    model_dir, test = trained
    for suffix, reader in (("jsonl", json.loads), ("csv", None)):
        output = tmp_path / f"scores.{suffix}"
        result = runner.invoke(app, ["score", str(model_dir), str(test), "-o", str(output)])
        assert result.exit_code == 0, result.output
        lines = output.read_text().splitlines()
        if reader:
            rows = [reader(line) for line in lines]
            assert any(len(row["labels"]) == 2 for row in rows)
            assert all(row["label"] == row["labels"][0] for row in rows)
        else:
            assert lines[0] == "id,label,labels,score,truncated"
            assert any('"fear,joy"' in line or '"joy,fear"' in line for line in lines)


def test_evaluate_reports_multi_label_metrics_and_calibration(trained):
    model_dir, test = trained
    result = runner.invoke(app, ["evaluate", str(model_dir), "--data", str(test), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["multi_label"] and report["micro_f1"] > 0.9
    calibration = report["calibration"]
    assert set(calibration) >= {"ece_before", "ece_after", "log_loss_before", "log_loss_after"}


def test_labels_the_model_does_not_know_and_rare_ones_are_said(tmp_path, caplog):
    rows = emotions(120) + [{"text": "oddly calm", "label": ["calm"]}]
    data = write_jsonl(tmp_path / "train.jsonl", rows)
    dev = write_jsonl(tmp_path / "dev.jsonl", emotions(20, seed=2) + [
        {"text": "so bored", "label": ["boredom"]}
    ])  # fmt: skip
    with pytest.raises(ValueError, match="labels the model was not trained on: boredom"):
        fit_and_save(tiny_config(data, tmp_path / "run", dev=str(dev), epochs=1))
    assert "1 labels are seen fewer than 5 times in training (calm)" in caplog.text


def test_ten_thousand_and_one_labels_are_refused_with_a_message(tmp_path):
    rows = [{"text": f"text {i}", "label": [f"l{i}", f"m{i}"]} for i in range(5001)]
    data = write_jsonl(tmp_path / "many.jsonl", rows)
    with pytest.raises(ValueError, match="10,002 distinct labels; a model takes at most 10,000"):
        fit_and_save(tiny_config(data, tmp_path / "run", epochs=1))


def test_cross_validation_of_a_multi_label_corpus(tmp_path):
    data = write_jsonl(tmp_path / "train.jsonl", emotions(150))
    result = cross_validate(tiny_config(data, tmp_path / "cv", epochs=2), folds=3)
    assert len(result["folds"]) == 3 and 0 < result["macro_f1_mean"] <= 1
