"""``textcnn serve``: the HTTP service (the ``service`` package) under uvicorn.

The service is started by import strings, so that the library never imports it: the app
factory ``service.main:create_app`` and the connection guard
``service.protocol:GuardedHttpToolsProtocol`` (header size and time limits, a cap on
connections), which replaces uvicorn's own HTTP protocol.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path

from .card import ImageCard, load_card

DEFAULT_MODEL = Path("runs/tweets/model-best")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  # as the service's


def model_sources(given: list[str], models_dir: Path | None) -> dict[str, Path]:
    """``--model DIR`` / ``--model NAME=DIR`` options (or every sub-folder of ``models_dir``)
    as name → directory; a bare directory is named after its card. Names are checked and
    must differ; a directory that is missing is refused now, a broken one when served."""
    if models_dir is not None:
        if given:
            raise ValueError("give --model or --models-dir, not both")
        if not models_dir.is_dir():
            raise ValueError(f"{models_dir}: no such folder of models")
        given = [
            str(p)
            for p in sorted(models_dir.iterdir())
            if p.is_dir() and not p.name.startswith(".")
        ]
        if not given:
            raise ValueError(f"{models_dir}: no model folders in it")
        pairs = [(Path(path).name, Path(path)) for path in given]
    else:
        pairs = [_pair(item) for item in given or [str(DEFAULT_MODEL)]]
    sources: dict[str, Path] = {}
    for name, path in pairs:
        if not NAME.fullmatch(name):
            raise ValueError(
                f"model name {name[:80]!r}: use 1 to 64 letters, digits, '.', '_' or '-', "
                "starting with a letter or digit (--model NAME=DIR)"
            )
        if name in sources:
            raise ValueError(f"two models named {name!r}; name them: --model NAME=DIR")
        if not path.is_dir():
            raise ValueError(f"{path}: not a model directory (train one with `textcnn train`)")
        if isinstance(_card(path), ImageCard):  # a clear message now, not a 503
            raise ValueError(f"{path}: an image model; `textcnn serve` serves text classifiers")
        sources[name] = path
    return sources


def _pair(item: str) -> tuple[str, Path]:
    name, sep, path = item.partition("=")
    if sep and name and not Path(item).exists():
        return name, Path(path)
    card = _card(Path(item))
    return (card.name if card is not None and NAME.fullmatch(card.name) else Path(item).name), Path(
        item
    )


def _card(path: Path):
    try:
        return load_card(path)
    except ValueError:
        return None  # the server says why when it loads it


def run_server(
    sources: dict[str, Path], default: str | None, host: str, port: int, workers: int = 1
) -> None:
    """Serve the text models of ``sources`` (name → directory) until the process is
    stopped. With several workers, every worker counts its metrics into a shared folder and
    a scrape adds them up."""
    if default is not None and default not in sources:
        raise ValueError(f"--default {default!r}: not one of {', '.join(sources)}")
    import uvicorn

    os.environ["TEXTCNN_MODELS"] = json.dumps({name: str(path) for name, path in sources.items()})
    if default is not None:
        os.environ["TEXTCNN_DEFAULT_MODEL"] = default
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
