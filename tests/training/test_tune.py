"""`textcnn tune`: a search on a tiny corpus ends with a model directory and a report, is
repeatable, survives a kill, and refuses bad input with a message."""

import csv
import json
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
import torch
from typer.testing import CliRunner

import textcnn
from tests.conftest import tiny_texts, write_tsv
from textcnn.cli import app
from textcnn.training.tune import available_recipes, metric_of, parse_budget

pytest.importorskip("optuna", reason="textcnn tune needs the tune extra (optuna)")
runner = CliRunner()
# a small network whatever the search picks for the rest (epochs fixed: seconds a trial)
FIXED = ["--recipe", "rand", "--embed-dim", "16", "--batch-size", "20", "--dev-fraction", "0.25"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tune")
    rows = tiny_texts(480, seed=3)
    for i in range(0, len(rows), 7):  # some label noise: trials score differently
        rows[i] = (rows[i][0], "negative" if rows[i][1] == "positive" else "positive")
    return write_tsv(folder / "train.tsv", rows[:400]), write_tsv(folder / "test.tsv", rows[400:])


def tune(*args):
    result = runner.invoke(app, ["tune", *FIXED, *map(str, args)])
    return result


def trial_table(run):
    with (run / "search" / "trials.csv").open() as handle:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(handle)]


def test_a_tiny_budget_writes_a_model_directory_and_a_report(corpus, tmp_path):
    train, test = corpus
    run = tmp_path / "run"
    result = tune("--data", train, "--test", test, "-o", run, "--budget", "5m", "--trials", "3",
                  "--epochs", "2")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "3 trials" in result.output
    card = json.loads((run / "model-best" / "config.json").read_text())
    search = card["search"]
    assert search["trials"] == 3 and search["budget_s"] == 300
    assert search["recipe"] == "rand"
    metrics = json.loads((run / "model-best" / "metrics.json").read_text())
    assert search["dev_score"] == pytest.approx(metrics["dev"]["accuracy"])
    assert metrics["test"]["examples"] == 80  # the test split, scored by the final model
    assert card["metrics"]["test"]["accuracy"] == pytest.approx(metrics["test"]["accuracy"])
    assert len(trial_table(run)) == 3
    assert (run / "search" / "progress.png").stat().st_size > 1000
    assert set(json.loads((run / "search" / "importance.json").read_text())) >= {"dropout"}
    assert not (run / "trials").exists()  # the other trials' models are gone
    predictions = textcnn.load(run / "model-best").predict(["great"])
    assert predictions[0][0].label in ("positive", "negative")


def test_the_same_seed_gives_the_same_trials_and_best_settings(corpus, tmp_path):
    train, _ = corpus
    runs = [tmp_path / "a", tmp_path / "b"]
    for run in runs:
        result = tune("--data", train, "-o", run, "--trials", "4", "--epochs", "1", "--seed", "5")
        assert result.exit_code == 0, result.output
    first, second = (trial_table(run) for run in runs)
    assert first == second
    assert len({row["score"] for row in first}) > 1  # the trials differ: a real comparison
    settings = [json.loads((r / "search" / "search.json").read_text())["settings"] for r in runs]
    assert settings[0] == settings[1]


def test_metric_f1_of_a_label_ranks_by_that_labels_f1(corpus, tmp_path):
    train, _ = corpus
    run = tmp_path / "run"
    result = tune("--data", train, "-o", run, "--trials", "3", "--epochs", "1",
                  "--metric", "f1:negative")  # fmt: skip
    assert result.exit_code == 0, result.output
    metrics = json.loads((run / "model-best" / "metrics.json").read_text())
    search = json.loads((run / "search" / "search.json").read_text())
    negative = metrics["dev"]["per_class"]["negative"]["f1"]
    assert search["dev_score"] == pytest.approx(negative)
    assert negative != pytest.approx(metrics["dev"]["accuracy"])
    scores = [float(row["score"]) for row in trial_table(run) if row["score"]]
    assert search["dev_score"] == pytest.approx(max(scores), abs=1e-4)  # the table: 4 digits


def test_a_killed_search_resumes_with_its_finished_trials(corpus, tmp_path):
    train, _ = corpus
    run = tmp_path / "run"
    command = [sys.executable, "-m", "textcnn.cli", "tune", *FIXED, "--data", str(train),
               "-o", str(run), "--trials", "40", "--epochs", "3"]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    database = run / "study.db"
    deadline = time.time() + 240
    done: list = []
    while time.time() < deadline and process.poll() is None:
        time.sleep(0.5)
        if database.exists():
            try:
                with sqlite3.connect(database) as db:
                    done = db.execute(
                        "select number, value from trials t left join trial_values v "
                        "on t.trial_id = v.trial_id where state = 'COMPLETE' order by number"
                    ).fetchall()
            except sqlite3.OperationalError:  # the file is there, its tables not yet
                continue
            if len(done) >= 2:
                break
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert len(done) >= 2, "two trials did not finish in time"
    result = tune("--data", train, "-o", run, "--trials", str(len(done) + 2), "--epochs", "3",
                  "--resume")  # fmt: skip
    assert result.exit_code == 0, result.output
    table = trial_table(run)
    kept = {int(row["trial"]): float(row["score"]) for row in table if row["status"] == "complete"}
    for number, value in done:  # the finished trials, as they were
        assert kept[number] == pytest.approx(value)
    assert any(row["status"] == "fail" for row in table) or len(table) == len(done) + 2


def test_bad_input_is_a_message(corpus, tmp_path):
    train, _ = corpus
    result = tune("--data", train, "-o", tmp_path / "a", "--metric", "f1:neutral")
    assert result.exit_code == 1
    assert "no label 'neutral'" in result.output and "negative, positive" in result.output
    result = tune("--data", train, "-o", tmp_path / "b", "--dev-fraction", "0.1")
    assert result.exit_code == 1 and "cannot rank them" in result.output
    assert "--folds 5" in result.output
    result = tune("--data", train, "-o", tmp_path / "c", "--budget", "0.1", "--epochs", "25")
    assert result.exit_code == 1
    assert "shorter than one trial" in result.output and "--budget" in result.output
    result = tune("--data", train, "-o", tmp_path / "c", "--budget", "5m")  # no --resume
    assert result.exit_code == 1 and "--resume" in result.output
    result = tune("--data", train, "-o", tmp_path / "d", "--budget", "soon")
    assert result.exit_code == 1 and "20m" in result.output
    result = tune("--data", train, "-o", tmp_path / "e", "--trials", "2", "--epochs", "1",
                  "--max-model-mb", "0.001")  # fmt: skip
    assert result.exit_code == 1 and "--max-model-mb" in result.output


def test_budget_and_metric_parsing():
    assert parse_budget("20m") == 1200
    assert parse_budget("1h30m") == 5400
    assert parse_budget("90s") == 90 and parse_budget("600") == 600
    with pytest.raises(ValueError, match="positive"):
        parse_budget("0")
    with pytest.raises(ValueError, match="20m"):
        parse_budget("3 days")
    report = {"accuracy": 0.9, "macro_f1": 0.8, "per_class": {"a": {"f1": 0.7}}}
    assert metric_of(report, "f1:a") == 0.7
    assert metric_of(report, "macro_f1") == 0.8
    assert metric_of({"accuracy": 0.5, "f1": {"a": 0.4}}, "f1:a") == 0.4  # a CV fold


def test_the_teacher_is_searched_only_when_the_budget_or_a_gpu_allows():
    short, long = available_recipes(20 * 60), available_recipes(3600)
    assert {"rand", "ngram"} <= set(short) <= set(long)
    assert "distilled" not in short or torch.cuda.is_available()
