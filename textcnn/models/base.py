"""The interface every registered model shares: features, then a head."""

from __future__ import annotations

import torch
from torch import nn


class Classifier(nn.Module):
    """A network that maps an input batch to class logits of shape N x num_classes.

    Subclasses implement :meth:`forward_head` and either hold their feature extractor as
    ``features`` or implement :meth:`forward_features`. Models with auxiliary classifiers
    (GoogLeNet) override :meth:`forward`; a trainer calls ``model(x, return_aux=True)``
    and always gets ``(logits, [auxiliary logits...])``, the list empty outside training.
    The image architectures take ``dim`` (2 by default): with ``dim=1`` the same network
    runs over sequences (N x C x L), every layer from the dimension-generic core.
    """

    num_classes: int
    #: weight of each auxiliary loss relative to the main loss (GoogLeNet: 0.3)
    aux_loss_weight: float = 0.0
    #: the pooling that ends the features, as timm declares it: "avg" (global average
    #: pooling, what class activation maps need), "max" (over time), None (a flatten)
    global_pool: str | None = None

    def __init__(self, num_classes: int = 0) -> None:
        super().__init__()
        self.num_classes = num_classes

    def get_classifier(self) -> nn.Linear | None:
        """The final linear layer (the trainer's max-norm bounds its class weight vectors);
        None for a head without one (NiN's last convolution makes the class maps)."""
        return None

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(
        self, x: torch.Tensor, return_aux: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        logits = self.forward_head(self.forward_features(x))
        return (logits, []) if return_aux else logits


class SequentialClassifier(Classifier):
    """A ``features`` stack, then a ``head`` stack whose last layer is the classifier
    (LeNet, AlexNet, VGG): subclasses build the two ``nn.Sequential``."""

    features: nn.Sequential
    head: nn.Sequential

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)

    def get_classifier(self) -> nn.Linear:
        return self.head[-1]


def infer_output_shape(build: nn.Module | type, input_shape: tuple[int, ...], *args) -> torch.Size:
    """Output shape (without batch) of ``build(*args)`` on one input, computed on the meta device.

    Used to size a classifier after a feature extractor without running real
    arithmetic or hard-coding the spatial size for every input resolution.
    """
    with torch.device("meta"):
        module = (build(*args) if args else build()).eval()  # batch norm takes a batch of 1
        return module(torch.zeros(1, *input_shape)).shape[1:]
