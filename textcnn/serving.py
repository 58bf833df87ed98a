"""``textcnn serve``: the HTTP service (the ``service`` package) under uvicorn.

The service is started by import strings, so that the library never imports it: the app
factory ``service.main:create_app`` and the connection guard
``service.protocol:GuardedHttpToolsProtocol`` (header size and time limits, a cap on
connections), which replaces uvicorn's own HTTP protocol.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from .card import TextCard, load_card


def run_server(model: Path, host: str, port: int, workers: int = 1) -> None:
    """Serve the text model of directory ``model`` until the process is stopped. With several
    workers, every worker counts its metrics into a shared folder and a scrape adds them up."""
    if not isinstance(load_card(model), TextCard):  # a clear message now, not a 503
        raise ValueError(f"{model}: an image model; `textcnn serve` serves text classifiers")
    import uvicorn

    os.environ["TEXTCNN_MODEL_DIR"] = str(model)
    counts = None
    if workers > 1 and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        counts = tempfile.mkdtemp(prefix="textcnn-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = counts
    try:
        uvicorn.run(
            "service.main:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            http="service.protocol:GuardedHttpToolsProtocol",
            log_level="info",
        )
    finally:
        if counts is not None:
            shutil.rmtree(counts, ignore_errors=True)
