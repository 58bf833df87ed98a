"""textcnn: convolutional text classifiers (Kim 2014) and classic image CNNs on one core."""

from .classifier import Evidence, Prediction, Result, TextClassifier, load
from .models import create_model, list_models

__all__ = [
    "Evidence",
    "Prediction",
    "Result",
    "TextClassifier",
    "create_model",
    "list_models",
    "load",
]
__version__ = "0.1.0"
