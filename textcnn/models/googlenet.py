"""GoogLeNet / Inception v1 (Szegedy et al. 2014), with its two auxiliary classifiers."""

from __future__ import annotations

import torch
from torch import nn

from ..layers import ConvBlock, GlobalPool, Parallel, pool
from .base import Classifier
from .registry import IMAGENET_CIFAR, register_model

# name: (#1×1, #3×3 reduce, #3×3, #5×5 reduce, #5×5, pool proj), the paper's table 1
INCEPTION: dict[str, tuple[int, int, int, int, int, int]] = {
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}
AUX_AFTER = ("4a", "4d")  # auxiliary classifiers branch off these outputs
POOL_AFTER = ("3b", "4e")  # 3×3/2 max-pool between the stages


def inception(
    in_channels: int, c1: int, c3r: int, c3: int, c5r: int, c5: int, pool_proj: int, dim: int = 2
) -> Parallel:
    """Four parallel branches concatenated along channels; 1×1 convs reduce before 3×3/5×5."""
    return Parallel(
        {
            "branch1x1": ConvBlock(dim, in_channels, c1, 1),
            "branch3x3": nn.Sequential(
                ConvBlock(dim, in_channels, c3r, 1), ConvBlock(dim, c3r, c3, 3, padding=1)
            ),
            "branch5x5": nn.Sequential(
                ConvBlock(dim, in_channels, c5r, 1), ConvBlock(dim, c5r, c5, 5, padding=2)
            ),
            "branch_pool": nn.Sequential(
                pool("max", dim, 3, 1, padding=1), ConvBlock(dim, in_channels, pool_proj, 1)
            ),
        }
    )


def out_channels(widths: tuple[int, ...]) -> int:
    c1, _, c3, _, c5, pool_proj = widths
    return c1 + c3 + c5 + pool_proj


def stem(in_channels: int, small_input: bool, dim: int = 2) -> nn.Sequential:
    if small_input:  # 28×28/32×32 inputs: one 3×3 conv and no early down-sampling
        return nn.Sequential(ConvBlock(dim, in_channels, 192, 3, padding=1))
    return nn.Sequential(
        ConvBlock(dim, in_channels, 64, 7, stride=2, padding=3),  # N x 64 x 112 x 112
        pool("max", dim, 3, 2, ceil_mode=True),  # N x 64 x 56 x 56
        nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0),
        ConvBlock(dim, 64, 64, 1),  # the second conv's 1×1 reduction
        ConvBlock(dim, 64, 192, 3, padding=1),  # N x 192 x 56 x 56
        nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0),
        pool("max", dim, 3, 2, ceil_mode=True),  # N x 192 x 28 x 28
    )


def stages(in_channels: int, small_input: bool, dim: int = 2) -> nn.ModuleDict:
    """The stem and the nine Inception modules, in order, keyed by the paper's names."""
    layers: dict[str, nn.Module] = {"stem": stem(in_channels, small_input, dim)}
    channels = 192
    for name, widths in INCEPTION.items():
        layers[f"inception{name}"] = inception(channels, *widths, dim=dim)
        channels = out_channels(widths)
        if name in POOL_AFTER:
            layers[f"pool{name[0]}"] = pool("max", dim, 3, 2, ceil_mode=True)
    return nn.ModuleDict(layers)


def stage_shapes(
    in_channels: int, small_input: bool, input_size: int, dim: int = 2
) -> dict[str, torch.Size]:
    """Output shape (C, H, W) of every stage, computed on the meta device."""
    shapes = {}
    with torch.device("meta"):
        x = torch.zeros(1, in_channels, *[input_size] * dim)
        for name, stage in stages(in_channels, small_input, dim).items():
            x = stage(x)
            shapes[name] = x.shape[1:]
    return shapes


class AuxiliaryClassifier(nn.Module):
    """5×5/3 average pool, 1×1 conv 128, fc 1024, dropout 0.7, fc classes (training only)."""

    def __init__(self, in_channels: int, num_classes: int, spatial: int, dim: int = 2) -> None:
        super().__init__()
        kernel = min(5, spatial)  # small inputs reach 4a with less than 5×5 left
        pooled = (spatial - kernel) // 3 + 1
        self.layers = nn.Sequential(
            pool("avg", dim, kernel, 3),  # N x C x 4 x 4 at 224 x 224
            ConvBlock(dim, in_channels, 128, 1),
            nn.Flatten(),
            nn.Linear(128 * pooled**dim, 1024),
            nn.ReLU(),
            nn.Dropout(0.7),
            nn.Linear(1024, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class GoogLeNet(Classifier):
    """Inception v1: stem, nine Inception modules, global average pooling, dropout 0.4, fc."""

    aux_loss_weight = 0.3
    global_pool = "avg"

    def __init__(
        self,
        num_classes: int = 1000,
        in_channels: int = 3,
        input_size: int = 224,
        small_input: bool = False,
        aux_classifiers: bool = True,
        dropout: float = 0.4,
        dim: int = 2,
    ) -> None:
        super().__init__(num_classes)
        self.stage_names = []
        for name, stage in stages(in_channels, small_input, dim).items():
            self.add_module(name, stage)  # stem, inception3a, ..., inception5b
            self.stage_names.append(name)
        self.aux = nn.ModuleDict()
        if aux_classifiers:
            shapes = stage_shapes(in_channels, small_input, input_size, dim)
            for name in AUX_AFTER:
                channels, *_, spatial = shapes[f"inception{name}"]
                self.aux[name] = AuxiliaryClassifier(channels, num_classes, spatial, dim)
        self.pool = GlobalPool("avg")
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(out_channels(INCEPTION["5b"]), num_classes)

    def _features(self, x: torch.Tensor, aux: list[torch.Tensor] | None) -> torch.Tensor:
        for name in self.stage_names:
            x = self.get_submodule(name)(x)
            tap = name.removeprefix("inception")
            if aux is not None and tap in self.aux:
                aux.append(self.aux[tap](x))
        return x  # N x 1024 x 7 x 7 at 224 x 224

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self._features(x, None)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.pool(features)))  # N x num_classes

    def get_classifier(self) -> nn.Linear:
        return self.fc

    def forward(self, x: torch.Tensor, return_aux: bool = False):
        aux: list[torch.Tensor] | None = [] if return_aux and self.training else None
        logits = self.forward_head(self._features(x, aux))
        return (logits, aux or []) if return_aux else logits


@register_model(
    "googlenet",
    **IMAGENET_CIFAR,
    small_config={"small_input": True, "input_size": 32, "num_classes": 10},
)
def googlenet(**config) -> GoogLeNet:
    """GoogLeNet (Inception v1) with two auxiliary classifiers weighted 0.3 in training."""
    return GoogLeNet(**config)
