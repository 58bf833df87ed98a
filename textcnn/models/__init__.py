"""The model zoo: one file per family, all registered by name."""

from . import alexnet, googlenet, lenet, nin, resnet, textcnn, vgg  # noqa: F401  (register)
from .base import Classifier
from .registry import ModelEntry, create_model, list_models, model_entry, register_model
from .textcnn import TextCNN, TextCNNConfig

__all__ = [
    "Classifier",
    "ModelEntry",
    "TextCNN",
    "TextCNNConfig",
    "create_model",
    "list_models",
    "model_entry",
    "register_model",
]
