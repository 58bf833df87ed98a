"""Scores that mean what they say (a temperature fitted on dev, applied on every path) and
the right to say "not sure" (min_score)."""

import json

import pytest
import torch
from typer.testing import CliRunner

import textcnn
from tests.conftest import tiny_config, tiny_texts, write_tsv
from textcnn.cli import app
from textcnn.training.calibration import (
    expected_calibration_error,
    fit_scales,
    log_loss,
    pick_thresholds,
)
from textcnn.training.pipeline import fit_and_save

runner = CliRunner()


def test_temperature_scaling_recovers_the_temperature_that_made_the_labels():
    """Labels drawn from softmax(z / 3): logits z are three times too confident, and the
    fit finds a = 1/3 (temperature 3), lowering ECE and log-loss."""
    generator = torch.Generator().manual_seed(0)
    logits = 4 * torch.randn(20_000, 4, generator=generator)
    labels = torch.multinomial(torch.softmax(logits / 3, dim=1), 1, generator=generator)[:, 0]
    a, b = fit_scales(logits, None, labels, multi_label=False)
    assert b == 0 and 1 / a == pytest.approx(3.0, rel=0.05)
    before, after = torch.softmax(logits, 1), torch.softmax(logits * a, 1)
    assert expected_calibration_error(after, labels, False) < 0.01
    assert expected_calibration_error(before, labels, False) > 0.1
    assert log_loss(after, labels, False) < log_loss(before, labels, False)


def test_the_expected_calibration_error_of_a_hand_made_case():
    # two predictions at 0.9 (one right), two at 0.6 (both right): |0.9 - 0.5| and |0.6 - 1|
    probabilities = torch.tensor([[0.9, 0.1], [0.9, 0.1], [0.4, 0.6], [0.4, 0.6]])
    labels = torch.tensor([0, 1, 1, 1])
    assert expected_calibration_error(probabilities, labels, False) == pytest.approx(
        (2 * 0.4 + 2 * 0.4) / 4
    )


def test_each_label_gets_the_threshold_of_its_best_f1_and_rare_ones_the_global_one():
    probabilities = torch.tensor([[0.9, 0.2], [0.7, 0.8], [0.3, 0.1], [0.2, 0.3]])
    targets = torch.tensor([[1, 0], [1, 1], [0, 0], [0, 0]])
    thresholds, overall = pick_thresholds(probabilities, targets, min_support=2)
    assert 0.3 < thresholds[0] <= 0.7  # anywhere between the negatives and the positives
    assert thresholds[1] == overall  # one positive on dev: too rare for its own


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("calibrated")
    data = write_tsv(tmp / "train.tsv", tiny_texts(120))
    test = write_tsv(tmp / "test.tsv", tiny_texts(40, seed=8))
    return fit_and_save(tiny_config(data, tmp / "run", test=str(test), epochs=8)), test


def test_a_trained_model_is_calibrated_on_every_path(model_dir):
    model_dir, _ = model_dir
    card = json.loads((model_dir / "config.json").read_text())
    temperature = card["temperature"]
    assert temperature != 1.0 and 0.01 <= temperature <= 100
    metrics = json.loads((model_dir / "metrics.json").read_text())
    for split in ("dev", "test"):
        calibration = metrics[split]["calibration"]
        assert {"ece_before", "ece_after", "log_loss_before", "log_loss_after"} <= set(calibration)
    assert (model_dir / "reliability.png").read_bytes()[:4] == b"\x89PNG"
    texts = ["a good film", "boring plot", "x"]
    for inference in ("folded", "conv"):
        classifier = textcnn.load(model_dir, inference=inference)
        calibrated = classifier.predict_proba(texts)
        raw = classifier.predict_proba(texts, calibrated=False)
        logits = torch.log(raw)  # softmax(logits / T) is the calibrated probability
        expected = torch.softmax(logits / temperature, dim=1)
        torch.testing.assert_close(calibrated, expected, atol=1e-5, rtol=0)
        assert torch.equal(calibrated.argmax(1), raw.argmax(1))  # the answers stay
        assert [r[0].score for r in classifier.predict(texts)] == pytest.approx(
            calibrated.max(1).values.tolist()
        )


def test_below_min_score_the_model_abstains_and_keeps_its_scores(model_dir):
    model_dir, test = model_dir
    classifier = textcnn.load(model_dir)
    texts = ["the the the", "plot story scene"]  # no cue word: no sure answer
    tops = classifier.predict_proba(texts).max(1).values
    results = classifier.classify(texts, min_score=float(tops.max()) + 1e-6)
    assert all(r.abstained and r.label is None for r in results)
    assert all(len(r.predictions) == 1 and r.predictions[0].score > 0 for r in results)
    assert not any(r.abstained for r in classifier.classify(texts, min_score=0.0))
    result = runner.invoke(
        app, ["evaluate", str(model_dir), "--data", str(test), "--min-score", "0.9", "--json"]
    )
    assert result.exit_code == 0, result.output
    abstention = json.loads(result.output)["abstention"]
    covered = abstention["coverage"]
    assert 0 <= covered <= 1 and abstention["covered"] == round(covered * 40)
    if abstention["covered"]:
        assert 0 <= abstention["accuracy_covered"] <= 1
    unsure = texts[int(tops.argmin())]
    result = runner.invoke(app, ["predict", str(model_dir), unsure, "--min-score", "1"])
    assert result.exit_code == 0 and result.output.startswith("(not sure) ")


def test_score_min_score_writes_no_label_and_says_it_abstained(model_dir, tmp_path):
    model_dir, _ = model_dir
    lines = ["the the the", "plot story scene", "a good film"]
    tops = textcnn.load(model_dir).predict_proba(lines).max(1).values
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(lines) + "\n")
    output = tmp_path / "scores.jsonl"
    limit = str(float(tops.sort().values[1]))  # the middle score: one text under it at least
    args = ["score", str(model_dir), str(texts), "-o", str(output), "--min-score", limit]
    assert runner.invoke(app, args).exit_code == 0
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    under = [float(top) < float(limit) for top in tops]
    assert [row.get("abstained", False) for row in rows] == under and any(under)
    assert all((row["label"] is None) == gave_up for row, gave_up in zip(rows, under, strict=True))
    plain = tmp_path / "plain.jsonl"
    assert (
        runner.invoke(app, ["score", str(model_dir), str(texts), "-o", str(plain)]).exit_code == 0
    )
    assert all("abstained" not in json.loads(line) for line in plain.read_text().splitlines())
