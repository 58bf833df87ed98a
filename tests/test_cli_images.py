import json

from PIL import Image
from typer.testing import CliRunner

from textcnn.cli import app

from .images.conftest import write_image_folder

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_train_predict_evaluate_and_cam_on_an_image_folder(tmp_path):
    root = write_image_folder(tmp_path / "images", n=40)
    common = ["--data", root, "--epochs", "1", "--batch-size", "8", "--image-size", "16"]
    result = invoke(
        "train", "--arch", "nin", "-o", tmp_path / "run", *common, "--set", "channels=1"
    )
    assert result.exit_code == 0, result.output
    model = tmp_path / "run" / "model-best"
    config = json.loads((model / "config.json").read_text())
    assert config["task"] == "image" and config["architecture"] == "nin"
    assert config["preprocessing"]["size"] == 16 and config["model"]["small_input"] is True

    image = root / "top-left" / "000.png"
    result = invoke("predict", model, image, "--top-k", "2", "--json")
    assert result.exit_code == 0, result.output
    row = json.loads(result.output)
    assert row["text"] == str(image) and len(row["predictions"]) == 2

    result = invoke("evaluate", model, "--data", root, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["examples"] == 40

    result = invoke("cam", model, image, "-o", tmp_path / "cam.png")
    assert result.exit_code == 0, result.output
    assert "class activation map written" in result.output
    with Image.open(tmp_path / "cam.png") as picture:
        assert picture.size[0] > 100

    result = invoke("cam", model, image, "--label", "nowhere")
    assert result.exit_code == 1 and "unknown label 'nowhere'" in result.output


def test_image_errors_are_one_line_messages(tmp_path):
    root = write_image_folder(tmp_path / "images", n=8)
    base = ["train", "--data", root, "--epochs", "1", "-o", tmp_path / "run", "--image-size", "16"]
    result = invoke(*base, "--arch", "resnet18x")
    assert result.exit_code == 1 and "unknown model 'resnet18x'" in result.output
    result = invoke(*base, "--arch", "lenet5", "--arch-option", "pool_mode=median")
    assert result.exit_code == 1 and "unknown pooling 'median'" in result.output
    result = invoke(*base, "--arch", "textcnn")
    assert result.exit_code == 1 and "textcnn is a text model" in result.output
    result = invoke(*base, "--arch", "lenet5", "--arch-option", "depth=3")
    assert result.exit_code == 1 and "lenet5: unknown model option" in result.output

    result = invoke(*base, "--arch", "lenet5", "--image-size", "28", "--set", "channels=1")
    assert result.exit_code == 0, result.output
    result = invoke("cam", tmp_path / "run" / "model-best", root / "top-left" / "000.png")
    assert result.exit_code == 1 and "does not end in global average pooling" in result.output
    result = invoke("predict", tmp_path / "run" / "model-best", tmp_path / "missing.png")
    assert result.exit_code == 1 and "missing.png: no such image file" in result.output
    result = invoke("score", tmp_path / "run" / "model-best", root / "top-left" / "000.png")
    assert result.exit_code == 1 and "an image model; `textcnn score` scores text" in result.output
    result = invoke("serve", "--model", tmp_path / "run" / "model-best")
    assert result.exit_code == 1 and "an image model; `textcnn serve` serves text" in result.output
