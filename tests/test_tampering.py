"""Every tampered or damaged model directory of tests/tampering.py is refused when it is
loaded, with one line that says what is wrong, by the library and by `textcnn score` and
`textcnn evaluate` (the service: tests/service/test_hardening.py): none loads and then fails."""

import pytest
from typer.testing import CliRunner

import textcnn
from tests.conftest import tiny_config, tiny_texts, write_tsv
from tests.tampering import TAMPERED, copy_model
from textcnn.cli import app
from textcnn.training.pipeline import fit_and_save

runner = CliRunner()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small model with the n-gram channel, and a labelled file to evaluate it on."""
    tmp = tmp_path_factory.mktemp("good")
    data = write_tsv(tmp / "train.tsv", tiny_texts(80))
    best = fit_and_save(tiny_config(data, tmp / "run", max_length=12, ngram_buckets=64))
    return best, data


@pytest.mark.parametrize("case", TAMPERED)
def test_a_tampered_model_is_refused_by_load_score_and_evaluate(trained, tmp_path, case):
    good, data = trained
    change, reason = TAMPERED[case]
    target = copy_model(good, tmp_path / "model", change)
    with pytest.raises(ValueError, match=None) as refused:
        textcnn.load(target)
    assert reason in str(refused.value)
    texts = tmp_path / "texts.txt"
    texts.write_text("a good film\nça a l'air génial\n")
    output = tmp_path / "out.jsonl"
    for args in (
        ["score", str(target), str(texts), "-o", str(output)],
        ["evaluate", str(target), "--data", str(data)],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 1, (args, result.output)
        assert result.output.startswith("error: ") and result.output.count("\n") == 1
        assert reason in result.output
        assert "Traceback" not in result.output
    assert not output.exists()


def test_the_good_model_loads_and_scores(trained, tmp_path):
    good, data = trained
    result = runner.invoke(
        app, ["evaluate", str(copy_model(good, tmp_path / "m")), "--data", str(data)]
    )
    assert result.exit_code == 0, result.output
