import json

from typer.testing import CliRunner

from textcnn.cli import app

runner = CliRunner()


def test_models_lists_names_kinds_and_parameter_counts():
    result = runner.invoke(app, ["models", "vgg16*"])
    assert result.exit_code == 0, result.output
    assert "vgg16_bn" in result.output and "138,357,544" in result.output
    assert "image" in result.output


def test_summary_json_has_records_and_totals():
    result = runner.invoke(app, ["summary", "alexnet", "--set", "groups=2", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["totals"]["params"] == 60_965_224
    assert data["totals"]["macs"] == sum(layer["macs"] for layer in data["layers"])
    first = data["layers"][0]
    assert first["output_shape"] == [96, 55, 55]
    assert first["receptive_field"] == [11, 11] and first["jump"] == [4, 4]


def test_summary_table_for_a_text_model_with_an_input_length():
    result = runner.invoke(app, ["summary", "textcnn", "--input-size", "40", "--depth", "2"])
    assert result.exit_code == 0, result.output
    assert "ngrams.width5" in result.output
    assert "total" in result.output


def test_summary_errors_are_messages_not_tracebacks():
    for args, message in [
        (["summary", "resnet99"], "unknown model"),
        (["summary", "alexnet", "--input-size", "64"], "does not accept an input"),
        (["summary", "alexnet", "--input-size", "a,b"], "not a list of integers"),
        (["summary", "resnet18", "--set", "bogus=1"], "bogus"),
    ]:
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output
        assert "Traceback" not in result.output
