"""Network in Network (Lin et al. 2013): mlpconv blocks and global average pooling."""

from __future__ import annotations

from itertools import pairwise

import torch
from torch import nn

from ..layers import ConvBlock, GlobalPool, pool
from .base import Classifier
from .registry import IMAGENET_CIFAR, register_model

# ("mlpconv", widths, kernel, stride, padding): a k×k conv followed by 1×1 convs;
# "M" 3×3/2 max-pool, "A" 3×3/2 average pool, "D" dropout 0.5. The last mlpconv
# ends in one map per class ("classes"), averaged into the logits.
CFGS: dict[str, list] = {
    "imagenet": [
        ("mlpconv", (96, 96, 96), 11, 4, 0), "M",
        ("mlpconv", (256, 256, 256), 5, 1, 2), "M",
        ("mlpconv", (384, 384, 384), 3, 1, 1), "M", "D",
        ("mlpconv", (1024, 1024, "classes"), 3, 1, 1),
    ],
    "cifar": [
        ("mlpconv", (192, 160, 96), 5, 1, 2), "M", "D",
        ("mlpconv", (192, 192, 192), 5, 1, 2), "A", "D",
        ("mlpconv", (192, 192, "classes"), 3, 1, 1),
    ],
}  # fmt: skip


def mlpconv(
    in_channels: int, widths: tuple[int, ...], kernel: int, stride: int, padding: int, dim: int
) -> nn.Sequential:
    """A k×k convolution then 1×1 convolutions: a small MLP slid over the image."""
    layers = [ConvBlock(dim, in_channels, widths[0], kernel, stride, padding)]
    for i, (c_in, c_out) in enumerate(pairwise(widths)):
        last = i == len(widths) - 2
        layers.append(ConvBlock(dim, c_in, c_out, 1, activation_name=None if last else "relu"))
    return nn.Sequential(*layers)


class NiN(Classifier):
    """Network in Network: mlpconv blocks, one feature map per class, global average pooling."""

    def __init__(
        self, cfg: list, num_classes: int = 1000, in_channels: int = 3, dim: int = 2
    ) -> None:
        super().__init__(num_classes)
        blocks: list[nn.Module] = []
        channels = in_channels
        for spec in cfg:
            if spec == "M":
                blocks.append(pool("max", dim, 3, 2, ceil_mode=True))
            elif spec == "A":
                blocks.append(pool("avg", dim, 3, 2, ceil_mode=True))
            elif spec == "D":
                blocks.append(nn.Dropout(0.5))
            else:
                _, widths, kernel, stride, padding = spec
                widths = tuple(num_classes if w == "classes" else w for w in widths)
                blocks.append(mlpconv(channels, widths, kernel, stride, padding, dim))
                channels = widths[-1]
        self.features = nn.Sequential(*blocks)  # N x classes x h x w: the class maps
        self.pool = GlobalPool("avg")

    global_pool = "avg"

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.pool(features)  # N x classes: no fully connected layer


@register_model(
    "nin",
    **IMAGENET_CIFAR,
    small_config={"small_input": True, "num_classes": 10},
)
def nin(small_input: bool = False, **config) -> NiN:
    """Network in Network; small_input=True gives the paper's CIFAR-10 model (32×32)."""
    return NiN(CFGS["cifar" if small_input else "imagenet"], **config)
