"""The dimension-generic conv/pool core shared by the text and image models.

Nothing here imports the rest of the project.
"""

from .branches import Parallel
from .conv import ConvBlock
from .factories import activation, layer_for
from .geometry import effective_kernel, output_size, same_padding
from .pooling import GlobalPool, KMaxPool, PoolMode, StochasticPool, max_over_time, pool

__all__ = [
    "ConvBlock",
    "GlobalPool",
    "KMaxPool",
    "Parallel",
    "PoolMode",
    "StochasticPool",
    "activation",
    "effective_kernel",
    "layer_for",
    "max_over_time",
    "output_size",
    "pool",
    "same_padding",
]
