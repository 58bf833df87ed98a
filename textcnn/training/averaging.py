"""An exponential moving average of a model's weights (Polyak averaging).

The average moves less from batch to batch than the weights themselves, so the
dev accuracy that picks the best epoch is measured on a steadier model.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn


class WeightAverage:
    """``average = d * average + (1 - d) * weights`` after every step, for every floating-point
    parameter and buffer. Early on ``d`` is ``min(decay, (1 + t) / (10 + t))``, so the average
    does not cling to the initial weights."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0 < decay < 1:
            raise ValueError(f"the weight average's decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.updates = 0
        self.shadow = {
            name: value.detach().clone()
            for name, value in model.state_dict().items()
            if value.is_floating_point()
        }

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        current = model.state_dict()
        for name, average in self.shadow.items():
            average.lerp_(current[name].detach(), 1 - d)

    @contextlib.contextmanager
    def applied(self, model: nn.Module) -> Iterator[None]:
        """Within the block the model holds the averaged weights; its own come back after."""
        own = {name: model.state_dict()[name].detach().clone() for name in self.shadow}
        model.load_state_dict(self.shadow, strict=False)
        try:
            yield
        finally:
            model.load_state_dict(own, strict=False)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {f"average.{name}": value for name, value in self.shadow.items()}

    def load_state_dict(self, tensors: dict[str, torch.Tensor], updates: int) -> None:
        for name, average in self.shadow.items():
            average.copy_(tensors[f"average.{name}"])
        self.updates = updates
