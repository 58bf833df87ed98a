"""textcnn: convolutional text classifiers (Kim 2014) and classic image CNNs on one core."""

from .models import create_model, list_models

__all__ = ["create_model", "list_models"]
__version__ = "0.1.0"
