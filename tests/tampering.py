"""Tampered and damaged model directories: each a change to a copy of a good text model, and
a piece of the message that must refuse it. Used by the loader, CLI and service tests."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

Change = Callable[[Path], None]


def copy_model(model_dir: Path, target: Path, change: Change | None = None) -> Path:
    shutil.copytree(model_dir, target)
    if change is not None:
        change(target)
    return target


def resign(folder: Path) -> None:
    """Record the weights' current sha256 in the card, as a careful tamperer would."""
    card = json.loads((folder / "config.json").read_text())
    card["weights_sha256"] = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
    (folder / "config.json").write_text(json.dumps(card))


def card(**fields) -> Change:
    """Set card fields; ``section__name`` sets a field of a section."""

    def change(folder: Path) -> None:
        config = json.loads((folder / "config.json").read_text())
        for key, value in fields.items():
            section, _, name = key.partition("__")
            if name:
                config[section][name] = value
            else:
                config[section] = value
        (folder / "config.json").write_text(json.dumps(config))

    return change


def card_literal(section: str, name: str, literal: str) -> Change:
    """Set a card field to a JSON literal Python's json writes but JSON forbids (NaN)."""

    def change(folder: Path) -> None:
        config = json.loads((folder / "config.json").read_text())
        config[section][name] = "@@"
        (folder / "config.json").write_text(json.dumps(config).replace('"@@"', literal))

    return change


def card_text(text: str) -> Change:
    def change(folder: Path) -> None:
        (folder / "config.json").write_text(text)

    return change


def drop_card_field(name: str) -> Change:
    def change(folder: Path) -> None:
        config = json.loads((folder / "config.json").read_text())
        del config[name]
        (folder / "config.json").write_text(json.dumps(config))

    return change


def weights(edit: Callable[[dict], None], sign: bool = True) -> Change:
    """Edit the weights' tensors; ``sign``: record their new sha256 in the card too."""

    def change(folder: Path) -> None:
        state = load_file(folder / "model.safetensors")
        edit(state)
        save_file(state, folder / "model.safetensors")
        if sign:
            resign(folder)

    return change


def weights_bytes(edit: Callable[[bytes], bytes]) -> Change:
    def change(folder: Path) -> None:
        path = folder / "model.safetensors"
        path.write_bytes(edit(path.read_bytes()))

    return change


def tokenizer(edit: Callable[[dict], None]) -> Change:
    def change(folder: Path) -> None:
        spec = json.loads((folder / "tokenizer.json").read_text())
        edit(spec)
        (folder / "tokenizer.json").write_text(json.dumps(spec))

    return change


def replaced_by(name: str, make: Callable[[Path], None]) -> Change:
    def change(folder: Path) -> None:
        (folder / name).unlink()
        make(folder / name)

    return change


def removed(name: str) -> Change:
    return lambda folder: (folder / name).unlink()


def _set(state: dict, key: str, value) -> None:
    state[key] = value


def _scale(state: dict, key: str, factor: float) -> None:
    state[key] = state[key] * factor


def _overflowing(state: dict) -> None:
    """Finite weights whose products are not: 1e30 x 1e30 is past float32's 3e38."""
    _scale(state, "embedding.weight", 1e30)
    _scale(state, "ngrams.width2.conv.conv.weight", 1e30)


def _first_nan(state: dict) -> None:
    state["classifier.weight"][0, 0] = float("nan")


def _vocab(spec: dict, **entries) -> None:
    spec["model"]["vocab"].update(entries)


def _key(spec: dict, path: str, value) -> None:
    *parents, last = path.split(".")
    target = spec
    for part in parents:
        target = target[part]
    target[last] = value


# name -> (change, a piece of the error message)
TAMPERED: dict[str, tuple[Change, str]] = {
    # the card
    "card missing": (removed("config.json"), "config.json: missing"),
    "card not JSON": (card_text("{not json"), "damaged JSON"),
    "card nested too deep": (card_text("[" * 100_000 + "]" * 100_000), "nested too deep"),
    "card an array": (card_text("[1, 2]"), "not a model card"),
    "card too large": (card_text(" " * (17 << 20) + "{}"), "over the"),
    "format version 2": (card(format_version=2), "format version 2 is not supported"),
    "task audio": (card(task="audio"), "a model of task 'audio'"),
    "unknown field": (card(surprise=1), "unknown field surprise"),
    "labels missing": (drop_card_field("labels"), "labels is missing"),
    "fewer labels": (card(labels=["positive"]), "1 labels for a network with 2 outputs"),
    "labels not strings": (card(labels=[1, 2]), "labels[0] must be a string"),
    "duplicate labels": (card(labels=["a", "a"]), "labels must be distinct"),
    "float size": (card(model__embed_dim=16.0), "embed_dim must be an integer"),
    "huge vocabulary": (card(model__vocab_size=10**8), "weights do not match config"),
    "no widths": (card(model__kernel_sizes=[]), "kernel_sizes must be positive widths"),
    "n-gram weight NaN": (card_literal("model", "ngram_weight", "NaN"), "finite"),
    "n-gram weight Infinity": (card_literal("model", "ngram_weight", "Infinity"), "finite"),
    "n-gram weight 1e308": (card(model__ngram_weight=1e308), "ngram_weight must be from 0 to"),
    "padding index 5": (card(model__padding_idx=5), "padding_idx is 5"),
    "dropout 2": (card(model__dropout=2.0), "dropout must be in [0, 1)"),
    "maximum length 0": (card(tokenizer__max_length=0), "max_length must be 1 to"),
    "maximum length huge": (card(tokenizer__max_length=10**9), "max_length must be 1 to"),
    "weights sha256 of another file": (card(weights_sha256="0" * 64), "its sha256 is not"),
    # the weights
    "weights missing": (removed("model.safetensors"), "model.safetensors: missing"),
    "weights truncated": (weights_bytes(lambda b: b[: len(b) // 2]), "damaged weights file"),
    "weights garbage": (weights_bytes(lambda b: b"\x00\x01garbage" * 100), "damaged weights file"),
    "weights header claims 2**60 bytes": (
        weights_bytes(lambda b: (2**60).to_bytes(8, "little") + b[8:]),
        "damaged weights file",
    ),
    "NaN weights": (weights(_first_nan), "NaN or infinite"),
    "weights that overflow": (weights(_overflowing), "too large for n-gram tables"),
    "int64 weights": (
        weights(lambda s: _set(s, "classifier.bias", s["classifier.bias"].long())),
        "holds torch.int64",
    ),
    "weights of another shape": (
        weights(lambda s: _set(s, "classifier.bias", torch.zeros(3))),
        "classifier.bias has shape (3,)",
    ),
    "an extra tensor": (weights(lambda s: _set(s, "surprise", torch.zeros(2))), "unexpected"),
    # the tokenizer
    "tokenizer missing": (removed("tokenizer.json"), "tokenizer.json: missing"),
    "tokenizer not JSON": (
        replaced_by("tokenizer.json", lambda p: p.write_text("{")),
        "not a readable",
    ),
    "token id past the embedding": (tokenizer(lambda t: _vocab(t, zzzz=10**6)), "token id 1000000"),
    "unknown token not in the vocabulary": (
        tokenizer(lambda t: _key(t, "model.unk_token", "<nope>")),
        "its unknown token '<nope>' is not in its vocabulary",
    ),
    "tokenizer pads": (
        tokenizer(lambda t: _key(t, "padding", {"pad_id": 999999, "pad_token": "[PAD]"})),
        "it pads texts",
    ),
    "tokenizer of another type": (
        tokenizer(lambda t: _key(t, "model.type", "Unigram")),
        "a tokenizer of type 'Unigram'",
    ),
    "[PAD] not id 0": (
        tokenizer(lambda t: _vocab(t, **{"[PAD]": 7})),
        "[PAD] and [UNK] must have ids 0 and 1",
    ),
    "tokenizer another maximum length": (
        tokenizer(
            lambda t: _key(
                t,
                "truncation",
                {"max_length": 3, "strategy": "LongestFirst", "stride": 0, "direction": "Right"},
            )
        ),
        "maximum length is not config.json's",
    ),
    # what is not a plain file of the directory
    "tokenizer a FIFO": (
        replaced_by("tokenizer.json", lambda p: os.mkfifo(p)),
        "not a regular file",
    ),
    "card a FIFO": (replaced_by("config.json", lambda p: os.mkfifo(p)), "not a regular file"),
    "tokenizer a directory": (
        replaced_by("tokenizer.json", lambda p: p.mkdir()),
        "not a regular file",
    ),
    "tokenizer a link out": (
        replaced_by("tokenizer.json", lambda p: p.symlink_to("/etc/passwd")),
        "a link out of the model directory",
    ),
    "weights a link out": (
        replaced_by("model.safetensors", lambda p: p.symlink_to("/dev/zero")),
        "a link out of the model directory",
    ),
}
