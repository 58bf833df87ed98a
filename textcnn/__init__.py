"""textcnn: convolutional text classifiers (Kim 2014) and classic image CNNs on one core."""

from .loading import load
from .models import create_model, list_models
from .predictor import Evidence, Prediction, Predictor, Result
from .text.classifier import TextClassifier
from .version import __version__

__all__ = [
    "Evidence",
    "Prediction",
    "Predictor",
    "Result",
    "TextClassifier",
    "__version__",
    "create_model",
    "list_models",
    "load",
]
