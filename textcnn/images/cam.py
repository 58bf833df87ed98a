"""Class activation maps (Zhou et al. 2016) for networks that end in global average pooling.

When the head is global average pooling followed only by affine layers (NiN, GoogLeNet,
the ResNets), the class score is the average over positions of the head applied at each
position; that per-position score is the class activation map.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from ..artifacts import atomic_file
from ..models import Classifier


def supports_cam(model: Classifier) -> bool:
    return model.global_pool == "avg"  # the head declares it


@torch.inference_mode()
def class_activation_maps(model: Classifier, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits N x K, maps N x K x h x w) for a batch ``x``; the maps average to the logits."""
    if not supports_cam(model):
        raise ValueError(
            f"{type(model).__name__} does not end in global average pooling; class activation "
            "maps need one that does (nin, googlenet, resnet*, preact_resnet*, wrn_*)"
        )
    model.eval()
    features = model.forward_features(x)  # N x C x h x w
    n, c, h, w = features.shape
    positions = features.permute(0, 2, 3, 1).reshape(n * h * w, c, 1, 1)
    maps = model.forward_head(positions).view(n, h, w, -1).permute(0, 3, 1, 2)
    return model.forward_head(features), maps


def upsample(heat: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """An h x w map scaled (bilinear) to ``size`` and to [0, 1]."""
    heat = F.interpolate(heat[None, None], size=size, mode="bilinear", align_corners=False)[0, 0]
    heat = heat - heat.min()
    return heat / heat.max().clamp(min=1e-12)


def save_overlay(image: torch.Tensor, heat: torch.Tensor, path: Path, title: str) -> None:
    """Write ``image`` (C x H x W uint8) with ``heat`` (H x W in [0, 1]) over it as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    picture = image.permute(1, 2, 0).numpy()
    figure, axis = plt.subplots(figsize=(4, 4.3), dpi=100)
    axis.imshow(picture.squeeze(-1) if picture.shape[-1] == 1 else picture, cmap="gray")
    axis.imshow(heat.numpy(), cmap="jet", alpha=0.45)
    axis.set_title(title, fontsize=10)
    axis.axis("off")
    figure.tight_layout()
    with atomic_file(path) as tmp:
        figure.savefig(tmp, format="png")
    plt.close(figure)
