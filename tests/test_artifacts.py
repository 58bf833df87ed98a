"""Model directories are replaced atomically, and what an interruption leaves is recovered."""

import os

import pytest

import textcnn.artifacts as artifacts
from textcnn.artifacts import atomic_directory
from textcnn.card import load_card


def write(folder, text):
    with atomic_directory(folder) as tmp:
        (tmp / "config.json").write_text(text)


def test_a_failure_between_the_renames_puts_the_old_directory_back(tmp_path, monkeypatch):
    final = tmp_path / "model-best"
    write(final, "old")
    real = os.replace
    calls = []

    def failing_second_rename(source, target):
        calls.append(target)
        if len(calls) == 2:  # the new folder into place
            raise OSError("disk full")
        real(source, target)

    monkeypatch.setattr(artifacts.os, "replace", failing_second_rename)
    with pytest.raises(OSError, match="disk full"):
        write(final, "new")
    monkeypatch.undo()
    assert (final / "config.json").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model-best"]


def test_a_kill_between_the_renames_is_recovered_by_the_next_write(tmp_path):
    final = tmp_path / "model-best"
    write(final, "old")
    # what a kill -9 between the renames leaves: the old one aside, a finished temporary
    os.replace(final, tmp_path / ".model-best.old")
    (tmp_path / ".model-best.abc123.tmp").mkdir()
    with pytest.raises(ValueError, match=r"\.model-best\.old; rename it back"):
        load_card(final)
    write(final, "new")
    assert (final / "config.json").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model-best"]
    # and when the writer does not come back, the recovery alone restores the old one
    os.replace(final, tmp_path / ".model-best.old")
    artifacts.recover_directory(final)
    assert (final / "config.json").read_text() == "new"


def test_a_model_built_during_a_lazy_load_is_still_initialised():
    import torch
    from torch import nn

    with artifacts._initialisers_skipped():  # a load elsewhere builds on the meta device
        with torch.device("meta"):
            skipped = nn.Linear(64, 64)
        real = nn.Linear(64, 64)
    assert skipped.weight.is_meta
    assert real.weight.abs().sum() > 0 and real.weight.std() > 0
    assert nn.init.normal_(torch.zeros(8)).abs().sum() > 0  # restored afterwards
