"""LeNet-5 (LeCun et al. 1998), with the pooling a choice for the pooling study."""

from __future__ import annotations

import math

from torch import nn

from ..layers import ConvBlock, PoolMode, activation, pool
from .base import SequentialClassifier, infer_output_shape
from .registry import register_model


class LeNet5(SequentialClassifier):
    """LeNet-5: two 5×5 conv/pool stages, then 120-84-classes fully connected."""

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        input_size: int = 32,
        pool_mode: PoolMode = "max",
        activation_name: str = "relu",
        dim: int = 2,
    ) -> None:
        super().__init__(num_classes)
        # The original takes 32×32; a 28×28 digit gets 2 pixels of padding instead.
        padding = max(0, (32 - input_size) // 2)

        def features() -> nn.Sequential:
            return nn.Sequential(
                ConvBlock(dim, in_channels, 6, 5, padding=padding, activation_name=activation_name),
                pool(pool_mode, dim, 2),  # N x 6 x 14 x 14 (max/avg/stochastic)
                ConvBlock(dim, 6, 16, 5, activation_name=activation_name),
                pool(pool_mode, dim, 2),  # N x 16 x 5 x 5
            )

        self.features = features()
        flat = math.prod(infer_output_shape(features, (in_channels, *[input_size] * dim)))
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(flat, 120),
            activation(activation_name),
            nn.Linear(120, 84),
            activation(activation_name),
            nn.Linear(84, num_classes),
        )


@register_model(
    "lenet5",
    kind="image",
    input_shape=(1, 32, 32),
    small_input_shape=(1, 28, 28),
    small_config={"input_size": 28},
)
def lenet5(**config) -> LeNet5:
    """LeNet-5 for 32×32 (or 28×28) grey images; pooling max/avg/stochastic/fractional."""
    return LeNet5(**config)
