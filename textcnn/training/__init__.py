"""Training: the shared loop, metrics, settings and the text pipeline."""
