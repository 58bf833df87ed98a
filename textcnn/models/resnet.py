"""ResNet (He et al. 2015), pre-activation ResNet (He et al. 2016) and Wide ResNet
(Zagoruyko & Komodakis 2016): one network, the variants are keyword arguments."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..layers import ConvBlock, GlobalPool, layer_for, pool
from ..layers.conv import Norm
from ..layers.factories import BATCH_NORM
from .base import Classifier
from .registry import IMAGENET_CIFAR, register_model


class Shortcut(nn.Module):
    """Identity, or a 1×1 projection (with BN in the post-activation net) when the shape changes."""

    def __init__(
        self, in_channels: int, out_channels: int, stride: int, norm: Norm, dim: int = 2
    ) -> None:
        super().__init__()
        if stride == 1 and in_channels == out_channels:
            self.project = None
        else:
            self.project = ConvBlock(
                dim,
                in_channels,
                out_channels,
                1,
                stride,
                activation_name=None,
                norm="post" if norm == "post" else None,
                bias=False,
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.project is None else self.project(x)


class ResidualBlock(nn.Module):
    """``out = body(x) + shortcut(x)``; in the post-activation net a ReLU follows the sum."""

    def __init__(self, body: nn.Sequential, shortcut: Shortcut, norm: Norm) -> None:
        super().__init__()
        self.body = body
        self.shortcut = shortcut
        self.act = nn.ReLU() if norm == "post" else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.shortcut(x))


def basic_block(
    in_channels: int, width: int, stride: int, norm: Norm, dropout: float = 0.0, dim: int = 2
) -> ResidualBlock:
    """Two 3×3 convolutions (ResNet-18/34, Wide ResNet, with dropout between them in WRN)."""
    last_act = "relu" if norm == "pre" else None  # post: the ReLU comes after the sum
    body = nn.Sequential(
        ConvBlock(dim, in_channels, width, 3, stride, 1, norm=norm, bias=False),
        *([nn.Dropout(dropout)] if dropout else []),
        ConvBlock(dim, width, width, 3, 1, 1, norm=norm, bias=False, activation_name=last_act),
    )
    return ResidualBlock(body, Shortcut(in_channels, width, stride, norm, dim), norm)


def bottleneck_block(
    in_channels: int, width: int, stride: int, norm: Norm, dropout: float = 0.0, dim: int = 2
) -> ResidualBlock:
    """1×1 reduce, 3×3 (carrying the stride), 1×1 expand ×4 (ResNet-50)."""
    out = width * 4
    last_act = "relu" if norm == "pre" else None
    body = nn.Sequential(
        ConvBlock(dim, in_channels, width, 1, norm=norm, bias=False),
        ConvBlock(dim, width, width, 3, stride, 1, norm=norm, bias=False),
        *([nn.Dropout(dropout)] if dropout else []),
        ConvBlock(dim, width, out, 1, norm=norm, bias=False, activation_name=last_act),
    )
    return ResidualBlock(body, Shortcut(in_channels, out, stride, norm, dim), norm)


BLOCKS = {"basic": (basic_block, 1), "bottleneck": (bottleneck_block, 4)}


class ResNet(Classifier):
    """Stem, stages of residual blocks (the first at stride 1, the rest halving), GAP, fc.

    ``norm="post"``: conv → BN → ReLU (ResNet); ``norm="pre"``: BN → ReLU → conv
    (pre-activation ResNet, Wide ResNet), with a final BN → ReLU before pooling.
    ``stem="imagenet"``: 7×7/2 conv + 3×3/2 max-pool; ``stem="cifar"``: one 3×3 conv.
    """

    def __init__(
        self,
        block: str = "basic",
        layers: tuple[int, ...] = (2, 2, 2, 2),
        widths: tuple[int, ...] = (64, 128, 256, 512),
        norm: Norm = "post",
        stem: str = "imagenet",
        num_classes: int = 1000,
        in_channels: int = 3,
        dropout: float = 0.0,
        dim: int = 2,  # 1: the same network over a sequence (see text_resnet)
    ) -> None:
        super().__init__(num_classes)
        if block not in BLOCKS:
            raise ValueError(f"block must be one of {sorted(BLOCKS)}, got {block!r}")
        if len(layers) != len(widths):
            raise ValueError("layers and widths need one entry per stage")
        make_block, expansion = BLOCKS[block]
        if stem == "imagenet":
            stem_width = widths[0]
            stem_layers = [
                ConvBlock(dim, in_channels, stem_width, 7, 2, 3, norm="post", bias=False),  # /2
                pool("max", dim, 3, 2, padding=1),  # /4
            ]
        elif stem == "cifar":
            stem_width = 16
            # In the pre-activation net the first block normalises; no BN here.
            stem_layers = [
                ConvBlock(
                    dim,
                    in_channels,
                    stem_width,
                    3,
                    1,
                    1,
                    bias=False,
                    norm="post" if norm == "post" else None,
                    activation_name="relu" if norm == "post" else None,
                )
            ]
        else:
            raise ValueError(f"stem must be 'imagenet' or 'cifar', got {stem!r}")
        stages: list[nn.Module] = [nn.Sequential(*stem_layers)]
        channels = stem_width
        for i, (count, width) in enumerate(zip(layers, widths, strict=True)):
            blocks = []
            for j in range(count):
                stride = 2 if i > 0 and j == 0 else 1
                blocks.append(make_block(channels, width, stride, norm, dropout, dim))
                channels = width * expansion
            stages.append(nn.Sequential(*blocks))
        if norm == "pre":  # the last block's output has not been normalised yet
            stages.append(nn.Sequential(layer_for(BATCH_NORM, dim)(channels), nn.ReLU()))
        self.features = nn.Sequential(*stages)  # N x C x 7 x 7 at 224, x 8 x 8 at 32 (cifar)
        self.pool = GlobalPool("avg")
        self.fc = nn.Linear(channels, num_classes)

    global_pool = "avg"

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(features))  # N x num_classes

    def get_classifier(self) -> nn.Linear:
        return self.fc


def wide_resnet(depth: int, widen_factor: int, **config) -> ResNet:
    """WRN-d-k for 32×32 inputs: 3 stages of (d-4)/6 pre-activation blocks, widths 16k/32k/64k."""
    if depth < 10 or (depth - 4) % 6:
        raise ValueError(f"Wide ResNet depth must be 6n+4 (10, 16, 22, 28, 40, ...), got {depth}")
    n = (depth - 4) // 6
    k = widen_factor
    return ResNet(
        "basic",
        (n, n, n),
        (16 * k, 32 * k, 64 * k),
        norm="pre",
        stem="cifar",
        **{"num_classes": 10, **config},
    )


_DEPTHS = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
}
_SMALL = {"num_classes": 10}
for _depth, (_block, _layers) in _DEPTHS.items():
    for _prefix, _norm in (("", "post"), ("preact_", "pre")):
        register_model(
            f"{_prefix}resnet{_depth}",
            **IMAGENET_CIFAR,
            small_config=_SMALL,
            description=f"{'Pre-activation ' if _prefix else ''}ResNet-{_depth} ({_block} blocks)",
            block=_block,
            layers=_layers,
            norm=_norm,
        )(ResNet)

for _depth, _k in ((16, 1), (16, 2), (16, 4), (16, 8), (28, 10), (40, 4)):
    register_model(
        f"wrn_{_depth}_{_k}",
        kind="image",
        input_shape=(3, 32, 32),
        small_config={"num_classes": 10},
        description=f"Wide ResNet WRN-{_depth}-{_k} for 32×32 inputs",
        depth=_depth,
        widen_factor=_k,
    )(wide_resnet)


@dataclass
class TextResNetConfig:
    vocab_size: int = 20_000  # rows of the embedding table, padding and unknown included
    embed_dim: int = 128
    num_classes: int = 2
    layers: tuple[int, ...] = (1, 1, 1)  # pre-activation basic blocks per stage
    widths: tuple[int, ...] = (64, 128, 256)  # channels per stage; stages 2+ halve the length
    padding_idx: int = 0


class TextResNet(Classifier):
    """A pre-activation ResNet over a sentence: the image network built with ``dim=1`` (its
    only change) behind an embedding, then max over time and the classifier."""

    global_pool = "max"

    def __init__(self, config: TextResNetConfig) -> None:
        super().__init__()
        self.config = config
        self.num_classes = config.num_classes
        self.embedding = nn.Embedding(
            config.vocab_size, config.embed_dim, padding_idx=config.padding_idx
        )
        self.body = ResNet(
            "basic",
            tuple(config.layers),
            tuple(config.widths),
            norm="pre",
            stem="cifar",
            num_classes=config.num_classes,
            in_channels=config.embed_dim,
            dim=1,
        )
        self.pool = GlobalPool("max")

    def forward_features(self, token_ids: torch.Tensor) -> torch.Tensor:
        x = self.embedding(token_ids).transpose(1, 2)  # N x E x L
        return self.body.forward_features(x)  # N x C x L/4

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.body.fc(self.pool(features))  # N x num_classes

    def get_classifier(self) -> nn.Linear:
        return self.body.fc


@register_model(
    "text_resnet",
    kind="text",
    input_shape=(64,),
    small_input_shape=(9,),
    small_config={"vocab_size": 50, "embed_dim": 16, "widths": (8, 16, 32), "num_classes": 3},
)
def text_resnet(**config) -> TextResNet:
    """Pre-activation ResNet in 1D over word embeddings: the 2D zoo's blocks with dim=1."""
    return TextResNet(TextResNetConfig(**config))
