"""VGG (Simonyan & Zisserman 2014): a config table and a builder."""

from __future__ import annotations

import math

from torch import nn

from ..layers import ConvBlock, pool
from .base import SequentialClassifier, infer_output_shape
from .registry import register_model

# numbers are 3×3 conv widths, "M" a 2×2 max-pool
CFGS: dict[str, list[int | str]] = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
          512, 512, 512, 512, "M"],
}  # fmt: skip


def make_layers(
    cfg: list[int | str], in_channels: int, batch_norm: bool, dim: int = 2
) -> nn.Sequential:
    layers: list[nn.Module] = []
    norm = "post" if batch_norm else None
    for v in cfg:
        if v == "M":
            layers.append(pool("max", dim, 2, 2))
        else:
            layers.append(ConvBlock(dim, in_channels, v, 3, padding=1, norm=norm, bias=True))
            in_channels = v
    return nn.Sequential(*layers)


class VGG(SequentialClassifier):
    """Stacks of 3×3 convolutions and 2×2 max-pools, then 4096-4096-classes."""

    def __init__(
        self,
        cfg: list[int | str],
        batch_norm: bool = False,
        num_classes: int = 1000,
        in_channels: int = 3,
        input_size: int = 224,
        dropout: float = 0.5,
        dim: int = 2,
    ) -> None:
        super().__init__(num_classes)
        self.features = make_layers(cfg, in_channels, batch_norm, dim)  # N x 512 x 7 x 7 at 224
        shape = (in_channels, *[input_size] * dim)
        flat = math.prod(infer_output_shape(make_layers, shape, cfg, in_channels, batch_norm, dim))
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(flat, 4096),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(4096, num_classes),
        )


def vgg(cfg: str, batch_norm: bool = False, **config) -> VGG:
    """VGG with configuration A/B/D/E (11/13/16/19 weight layers)."""
    return VGG(CFGS[cfg], batch_norm=batch_norm, **config)


_SMALL = {"input_size": 32, "num_classes": 10}
for _depth, _cfg in {11: "A", 13: "B", 16: "D", 19: "E"}.items():
    for _bn in (False, True):
        register_model(
            f"vgg{_depth}{'_bn' if _bn else ''}",
            kind="image",
            input_shape=(3, 224, 224),
            small_input_shape=(3, 32, 32),
            small_config=_SMALL,
            cfg=_cfg,
            batch_norm=_bn,
            description=f"VGG-{_depth}{' with batch norm' if _bn else ''} (config {_cfg})",
        )(vgg)
