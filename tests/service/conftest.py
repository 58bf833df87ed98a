import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import tiny_config, tiny_texts, write_tsv
from textcnn.training.pipeline import fit_and_save


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("served")
    data = write_tsv(tmp / "train.tsv", tiny_texts(80))
    # a short maximum length, so that truncation is easy to provoke
    return fit_and_save(tiny_config(data, tmp / "run", max_length=12, epochs=8))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    def __init__(self, model_dir: Path, *args: str, **env: str) -> None:
        """``textcnn serve --model MODEL_DIR ARGS`` with ``TEXTCNN_<KEY>=value`` for ``env``."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115 (closed in stop)
        environment = {**os.environ, **{f"TEXTCNN_{k.upper()}": v for k, v in env.items()}}
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "textcnn.cli",
                "serve",
                "--model",
                str(model_dir),
                "--port",
                str(self.port),
                *args,
            ],
            env=environment,
            # a file, not a pipe: nobody reads a pipe while the server runs, and once its
            # buffer is full of access-log lines the server blocks on its next write
            stdout=self.log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.output()}")
            try:
                if httpx.get(f"{self.url}/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("server not ready within 60 s")

    def output(self) -> str:
        """What the server has printed so far."""
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


@pytest.fixture(scope="session")
def server(model_dir):
    running = Server(
        model_dir, max_texts_per_request="150", max_text_chars="2000", max_body_bytes="20000"
    )
    yield running
    running.stop()
