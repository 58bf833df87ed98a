"""The release of this textcnn (pyproject.toml gives the same), recorded in every model card."""

__version__ = "0.1.0"
