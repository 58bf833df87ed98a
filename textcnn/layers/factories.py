"""Pick a layer class by spatial dimension, so one builder serves text (1D) and images (2D)."""

from __future__ import annotations

from torch import nn

CONV = {1: nn.Conv1d, 2: nn.Conv2d}
BATCH_NORM = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d}
MAX_POOL = {1: nn.MaxPool1d, 2: nn.MaxPool2d}
AVG_POOL = {1: nn.AvgPool1d, 2: nn.AvgPool2d}

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
    "identity": nn.Identity,
}


def layer_for(table: dict[int, type[nn.Module]], dim: int) -> type[nn.Module]:
    """The class of ``table`` for spatial dimension ``dim`` (1 for text, 2 for images)."""
    try:
        return table[dim]
    except KeyError:
        raise ValueError(f"dim must be one of {sorted(table)}, got {dim!r}") from None


def activation(name: str | None) -> nn.Module:
    """A fresh activation module by name; ``None`` means no activation."""
    if name is None:
        return nn.Identity()
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(
            f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)} or None"
        ) from None
