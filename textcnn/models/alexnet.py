"""AlexNet (Krizhevsky et al. 2012) and ZFNet (Zeiler & Fergus 2013): one builder, two tables."""

from __future__ import annotations

import math

from torch import nn

from ..layers import ConvBlock, pool
from .base import SequentialClassifier, infer_output_shape
from .registry import register_model

# ("conv", out_channels, kernel, stride, padding, split) — split layers use `groups`,
# reproducing the two-GPU connectivity of the original AlexNet when groups=2;
# ("pool", kernel, stride, padding); ("lrn",) local response normalisation.
CFGS: dict[str, list[tuple]] = {
    "alexnet": [
        ("conv", 96, 11, 4, 0, False), ("lrn",), ("pool", 3, 2, 0),  # 55x55x96 -> 27x27x96
        ("conv", 256, 5, 1, 2, True), ("lrn",), ("pool", 3, 2, 0),  # 27x27x256 -> 13x13x256
        ("conv", 384, 3, 1, 1, False),  # 13x13x384
        ("conv", 384, 3, 1, 1, True),  # 13x13x384
        ("conv", 256, 3, 1, 1, True), ("pool", 3, 2, 0),  # 13x13x256 -> 6x6x256
    ],
    "zfnet": [
        ("conv", 96, 7, 2, 1, False), ("lrn",), ("pool", 3, 2, 1),  # 110x110x96 -> 55x55x96
        ("conv", 256, 5, 2, 0, False), ("lrn",), ("pool", 3, 2, 1),  # 26x26x256 -> 13x13x256
        ("conv", 384, 3, 1, 1, False),
        ("conv", 384, 3, 1, 1, False),
        ("conv", 256, 3, 1, 1, False), ("pool", 3, 2, 0),  # 6x6x256
    ],
}  # fmt: skip


def make_layers(cfg: list[tuple], in_channels: int, groups: int, dim: int = 2) -> nn.Sequential:
    layers: list[nn.Module] = []
    for spec in cfg:
        if spec[0] == "conv":
            _, out_channels, kernel, stride, padding, split = spec
            layers.append(
                ConvBlock(
                    dim,
                    in_channels,
                    out_channels,
                    kernel,
                    stride,
                    padding,
                    groups=groups if split else 1,
                )
            )
            in_channels = out_channels
        elif spec[0] == "pool":
            layers.append(pool("max", dim, spec[1], spec[2], spec[3]))
        else:
            layers.append(nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0))
    return nn.Sequential(*layers)


class AlexNet(SequentialClassifier):
    """Five conv layers, three max-pools, two 4096-wide fully connected layers with dropout.

    Features: N x 256 x 6 x 6 at 227 x 227."""

    def __init__(
        self,
        cfg: list[tuple],
        num_classes: int = 1000,
        in_channels: int = 3,
        input_size: int = 227,
        groups: int = 1,
        dropout: float = 0.5,
        dim: int = 2,
    ) -> None:
        super().__init__(num_classes)
        self.features = make_layers(cfg, in_channels, groups, dim)
        shape = (in_channels, *[input_size] * dim)
        flat = math.prod(infer_output_shape(make_layers, shape, cfg, in_channels, groups, dim))
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(flat, 4096),  # 4096
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(4096, 4096),  # 4096
            nn.ReLU(),
            nn.Linear(4096, num_classes),
        )


@register_model(
    "alexnet", kind="image", input_shape=(3, 227, 227), small_config={"num_classes": 10}
)
def alexnet(**config) -> AlexNet:
    """AlexNet for 227×227 inputs; groups=2 gives the original two-GPU connectivity."""
    return AlexNet(CFGS["alexnet"], **config)


@register_model("zfnet", kind="image", input_shape=(3, 224, 224), small_config={"num_classes": 10})
def zfnet(**config) -> AlexNet:
    """ZFNet: AlexNet with a 7×7 stride-2 first layer and stride-2 second layer."""
    return AlexNet(CFGS["zfnet"], **{"input_size": 224, **config})
