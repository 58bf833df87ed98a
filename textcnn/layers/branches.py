"""Parallel branches whose outputs are concatenated along the channels."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn


class Parallel(nn.ModuleDict):
    """Apply every branch to the same input and concatenate the results.

    Serves both Kim's bank of n-gram extractors (one branch per kernel width,
    each ending in max-over-time) and GoogLeNet's Inception module (1×1, 3×3,
    5×5 and pool branches). Extra arguments (such as the text lengths) are
    passed to every branch.
    """

    def __init__(self, branches: Mapping[str, nn.Module], dim: int = 1) -> None:
        super().__init__(branches)
        self.dim = dim

    def forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        return torch.cat([branch(x, *args, **kwargs) for branch in self.values()], dim=self.dim)
