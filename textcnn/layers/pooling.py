"""Pooling in 1D and 2D: local, global, k-max over time, stochastic, fractional."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from .factories import AVG_POOL, MAX_POOL, layer_for

PoolMode = Literal["max", "avg", "stochastic", "fractional"]


def padding_mask(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """True at positions of ``x`` (N x C x L) at or past each row's length: N x 1 x L."""
    positions = torch.arange(x.shape[-1], device=x.device)  # L
    return (positions[None, :] >= lengths[:, None]).unsqueeze(1)


def max_over_time(
    x: torch.Tensor, lengths: torch.Tensor | None = None, return_positions: bool = False
):
    """Max over the last axis, ignoring positions at or past ``lengths``.

    ``x``: N x C x L, ``lengths``: N (valid positions per row).
    Masked positions are set to -inf first, so padding can never win; a row with no valid
    position pools to 0 (a wide width-1 filter over a text of no tokens: -inf would make
    the classifier's logits NaN), as ReLU(-inf) does in the folded tables.
    With ``return_positions``, also the winning position of every channel.
    """
    if lengths is not None:
        x = x.masked_fill(padding_mask(x, lengths), float("-inf"))
    values, positions = x.max(dim=-1) if return_positions else (x.amax(dim=-1), None)  # N x C
    if lengths is not None:
        values = values.masked_fill(values.isneginf(), 0.0)
    return (values, positions) if return_positions else values


class GlobalPool(nn.Module):
    """Pool every spatial position into one value per channel: N x C x *S -> N x C.

    ``mode="max"`` over a 1D sequence is Kim's max-over-time pooling; ``lengths``
    (1D only) masks padding. ``mode="avg"`` is the global average pooling of
    NiN, GoogLeNet and ResNet.
    """

    def __init__(self, mode: Literal["max", "avg"] = "avg") -> None:
        super().__init__()
        if mode not in ("max", "avg"):
            raise ValueError(f"global pooling mode must be 'max' or 'avg', got {mode!r}")
        self.mode = mode

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        if self.mode == "max":
            return max_over_time(x.flatten(2), lengths)
        if lengths is not None:
            raise ValueError("lengths are only supported with global max pooling")
        return x.flatten(2).mean(dim=-1)

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}"


class KMaxPool(nn.Module):
    """k-max pooling over time (Kalchbrenner et al. 2014): N x C x L -> N x C x k.

    Keeps the k largest values of each channel in their original order.
    Positions past ``lengths`` never win; a row with fewer than k real
    positions gets zeros in the places it cannot fill.
    """

    def __init__(self, k: int) -> None:
        super().__init__()
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        self.k = k

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        if x.shape[-1] < self.k:
            raise ValueError(
                f"k-max pooling with k={self.k} needs at least {self.k} positions, "
                f"got {x.shape[-1]}; pad the input"
            )
        if lengths is not None:
            x = x.masked_fill(padding_mask(x, lengths), float("-inf"))
        indices = x.topk(self.k, dim=-1).indices.sort(dim=-1).values  # N x C x k
        out = x.gather(-1, indices)
        return out.masked_fill(out.isneginf(), 0.0)

    def extra_repr(self) -> str:
        return f"k={self.k}"


class StochasticPool(nn.Module):
    """Stochastic pooling (Zeiler & Fergus 2013), 1D or 2D.

    In training one activation per window is picked with probability
    proportional to its value, and only that cell receives gradient. In
    evaluation the output is the probability-weighted average
    ``sum(a_i^2) / sum(a_i)``. Inputs are expected non-negative (after a
    ReLU); negative values are treated as zero, and an all-zero window gives 0.
    """

    def __init__(self, dim: int, kernel_size: int, stride: int | None = None) -> None:
        super().__init__()
        if dim not in (1, 2):
            raise ValueError(f"dim must be 1 or 2, got {dim!r}")
        self.dim = dim
        self.kernel_size = kernel_size
        self.stride = stride or kernel_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.dim == 1:  # N x C x L -> N x C x 1 x L, windows of 1 x k
            x = x.unsqueeze(2)
            kernel, stride = (1, self.kernel_size), (1, self.stride)
        else:
            kernel, stride = (self.kernel_size,) * 2, (self.stride,) * 2
        n, c, h, w = x.shape
        out_h = (h - kernel[0]) // stride[0] + 1
        out_w = (w - kernel[1]) // stride[1] + 1
        windows = F.unfold(x.clamp(min=0), kernel, stride=stride)  # N x C*K x P
        windows = windows.view(n, c, kernel[0] * kernel[1], -1)  # N x C x K x P
        total = windows.sum(dim=2, keepdim=True)  # N x C x 1 x P
        probs = windows / total.clamp(min=torch.finfo(x.dtype).tiny)
        if self.training:
            flat = probs.permute(0, 1, 3, 2).reshape(-1, probs.shape[2])  # N*C*P x K
            empty = flat.sum(dim=1) == 0
            flat = flat.masked_fill(empty[:, None], 1.0)  # any cell of an all-zero window is 0
            picked = torch.multinomial(flat, 1).view(n, c, -1, 1).permute(0, 1, 3, 2)
            out = windows.gather(2, picked).squeeze(2)  # N x C x P
        else:
            out = (probs * windows).sum(dim=2)  # N x C x P
        out = out.view(n, c, out_h, out_w)
        return out.squeeze(2) if self.dim == 1 else out

    def extra_repr(self) -> str:
        return f"dim={self.dim}, kernel_size={self.kernel_size}, stride={self.stride}"


class FractionalMaxPool(nn.FractionalMaxPool2d):
    """Fractional max pooling (Graham 2014): shrinks by a non-integer ratio (1/√2 by default)
    with pseudo-random pooling regions drawn anew for every batch in training.

    In evaluation the regions are fixed (PyTorch would draw them at random there too), so a
    trained model gives the same output for the same input every time.
    """

    def __init__(self, kernel_size: int, output_ratio: float = 2**-0.5) -> None:
        super().__init__(kernel_size, output_ratio=output_ratio)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            return super().forward(x)
        fixed = torch.full((x.shape[0], x.shape[1], 2), 0.5, dtype=x.dtype, device=x.device)
        return F.fractional_max_pool2d(
            x, self.kernel_size, output_ratio=self.output_ratio, _random_samples=fixed
        )


def pool(
    mode: PoolMode,
    dim: int,
    kernel_size: int,
    stride: int | None = None,
    padding: int = 0,
    ceil_mode: bool = False,
) -> nn.Module:
    """A local pooling layer by name and dimension: every architecture's pooling, in 1D or 2D.

    ``padding`` and ``ceil_mode`` (keep a last, partial window, as Caffe did) apply to max
    and average pooling."""
    stride = stride or kernel_size
    if mode in ("max", "avg"):
        table = MAX_POOL if mode == "max" else AVG_POOL
        return layer_for(table, dim)(kernel_size, stride, padding, ceil_mode=ceil_mode)
    if padding or ceil_mode:
        raise ValueError(f"{mode} pooling takes neither padding nor ceil_mode")
    if mode == "stochastic":
        return StochasticPool(dim, kernel_size, stride)
    if mode == "fractional":
        if dim != 2:
            raise ValueError("fractional max pooling is only available in 2D")
        return FractionalMaxPool(kernel_size)
    raise ValueError(f"unknown pooling {mode!r}; choose max, avg, stochastic or fractional")
