"""The convolution block shared by the text and image models."""

from __future__ import annotations

from collections import OrderedDict
from typing import Literal

from torch import nn

from .factories import BATCH_NORM, CONV, activation, layer_for
from .geometry import same_padding

Norm = Literal["post", "pre"] | None


class ConvBlock(nn.Sequential):
    """Convolution with optional batch norm and activation, in 1D or 2D.

    ``norm`` places the normalisation:

    - ``None``: conv → activation (LeNet, AlexNet, VGG, Kim's text CNN)
    - ``"post"``: conv → BN → activation (classic ResNet, VGG-BN)
    - ``"pre"``: BN → activation → conv (pre-activation ResNet, Wide ResNet)

    ``padding`` is an int or ``"same"`` (stride 1, odd kernel span only).
    Like PyTorch, a window that does not reach the last rows crops them; use
    :func:`textcnn.layers.output_size` or ``textcnn summary`` to see where.
    The bias is dropped by default right before a batch norm, which cancels it.
    """

    def __init__(
        self,
        dim: int,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int | Literal["same"] = 0,
        dilation: int = 1,
        groups: int = 1,
        bias: bool | None = None,
        activation_name: str | None = "relu",
        norm: Norm = None,
    ) -> None:
        if norm not in (None, "post", "pre"):
            raise ValueError(f"norm must be None, 'post' or 'pre', got {norm!r}")
        if padding == "same":
            if stride != 1:
                raise ValueError("'same' padding is only defined for stride 1")
            padding = same_padding(kernel_size, dilation)
        if bias is None:
            bias = norm != "post"
        conv = layer_for(CONV, dim)(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
            bias=bias,
        )
        norm_cls = layer_for(BATCH_NORM, dim)
        if norm == "pre":
            layers = {
                "norm": norm_cls(in_channels),
                "act": activation(activation_name),
                "conv": conv,
            }
        elif norm == "post":
            layers = {
                "conv": conv,
                "norm": norm_cls(out_channels),
                "act": activation(activation_name),
            }
        else:
            layers = {"conv": conv, "act": activation(activation_name)}
        super().__init__(
            OrderedDict(
                (name, layer)
                for name, layer in layers.items()
                if not isinstance(layer, nn.Identity)
            )
        )
