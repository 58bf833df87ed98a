import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from textcnn.cli import app

ROOT = Path(__file__).parents[1]


@pytest.mark.skipif(
    shutil.which("docker-compose") is None,
    reason="docker-compose not installed (Debian package docker-compose; .ci/run installs it)",
)
def test_compose_file_is_valid_and_trains_then_serves():
    result = subprocess.run(
        ["docker-compose", "config", "--services"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert set(result.stdout.split()) == {"train", "api"}
    config = subprocess.run(
        ["docker-compose", "config"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert "service_completed_successfully" in config and "/ready" in config


def test_serve_refuses_a_missing_model_with_a_message(tmp_path):
    result = CliRunner().invoke(app, ["serve", "--model", str(tmp_path / "none")])
    assert result.exit_code == 1
    assert "not a model directory" in result.output
