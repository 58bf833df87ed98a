"""Image classification end to end: images → a registered 2D architecture → model directory.

The loop, checkpoints, metrics and model directory are the text path's own
(:class:`~textcnn.training.trainer.Trainer`, :func:`~textcnn.training.model_dir.write_model_dir`).
"""

from __future__ import annotations

import logging
import statistics
from collections import Counter
from pathlib import Path

import torch

from ..images.classifier import ImageClassifier
from ..images.data import (
    FASHION_MNIST,
    ImageBatches,
    ImageSet,
    Normalization,
    read_images,
)
from ..images.models import build_image_model, image_model_config
from ..text.splits import stratified_split
from .config import TrainConfig
from .metrics import classification_report
from .model_dir import model_meta, write_model_dir
from .trainer import Trainer, remove_checkpoint

log = logging.getLogger(__name__)


def load_image_splits(config: TrainConfig) -> tuple[ImageSet, ImageSet, ImageSet | None]:
    """(train, dev, test): given dev/test as they are, else a stratified dev split of train;
    Fashion-MNIST's own test split is the test set unless another is given."""
    d, im = config.data, config.image
    channels = im.channels or (1 if d.data.startswith(FASHION_MNIST) else 3)

    def read(spec: str, split: str, labels: list[str] | None = None) -> ImageSet:
        return read_images(
            spec, split, channels, im.image_size, labels, d.skip_bad_rows, im.fashion_mnist_dir
        )

    train = read(d.data, "train")
    if d.dev:
        dev = read(d.dev, "test", train.labels)
    else:
        kept, held = stratified_split(train.label_names, d.dev_fraction, config.training.seed)
        train, dev = train.subset(kept), train.subset(held)
    test_spec = d.test or (f"{FASHION_MNIST}:test" if d.data.startswith(FASHION_MNIST) else None)
    test = read(test_spec, "test", train.labels) if test_spec else None
    return train, dev, test


def evaluate_images(classifier: ImageClassifier, data: ImageSet, name: str = "") -> dict:
    """Accuracy, macro-F1, per-class scores and confusion matrix on ``data``."""
    predicted = classifier.predict_proba(data.images).argmax(dim=1)
    report = classification_report(data.targets.numpy(), predicted.numpy(), classifier.labels)
    report["data"] = name or data.source
    return report


def train_image(config: TrainConfig, resume: bool = False, on_epoch_end=None) -> Path:
    """Train ``config.image.arch``; write ``output/model-best`` and ``output/model-last``."""
    im = config.image
    output = config.data.run_folder()
    train, dev, test = load_image_splits(config)
    log.info(
        "data: %d train, %d dev%s images of %s; labels %s",
        len(train),
        len(dev),
        f", {len(test)} test" if test else "",
        "x".join(map(str, train.images.shape[1:])),
        dict(Counter(train.label_names)),
    )
    shape = tuple(train.images.shape[1:])
    model_config = image_model_config(
        im.arch, len(train.labels), shape[0], shape[1], im.arch_options
    )
    torch.manual_seed(config.training.seed)
    model = build_image_model(im.arch, model_config, shape)
    normalization = Normalization.of(train.images)
    crop, flip = (im.crop_padding, im.flip) if im.augment else (0, False)
    trainer = Trainer(model, config.training, output)
    result = trainer.fit(
        ImageBatches(train, normalization, crop, flip),
        ImageBatches(dev, normalization),
        resume=resume,
        on_epoch_end=on_epoch_end,
    )
    meta = {
        **model_meta("image", im.arch, output.name),
        "model": model_config,
        "labels": train.labels,
        "preprocessing": {
            "channels": shape[0],
            "size": shape[1],
            "mean": list(normalization.mean),
            "std": list(normalization.std),
        },
        "settings": config.to_dict(),  # everything the run was given
        "data": {
            "train": {"source": train.source, "examples": len(train)},
            "dev": {"source": dev.source, "examples": len(dev)},
        },
        "best_epoch": result.best_epoch,
        "epochs_run": len(result.history),
        "seconds_per_epoch": statistics.median(h["seconds"] for h in result.history),
    }
    classifier = ImageClassifier(
        model.to("cpu"), train.labels, normalization, shape[0], shape[1], meta
    )
    # The test set scores the chosen model only, as for text; model-last gets its dev scores.
    for folder, state in (("model-best", result.best_state), ("model-last", result.last_state)):
        model.load_state_dict(state)
        metrics = {"dev": evaluate_images(classifier, dev, "dev")}
        if test is not None and folder == "model-best":
            metrics["test"] = evaluate_images(classifier, test, "test")
        write_model_dir(output / folder, model, meta, metrics)
    remove_checkpoint(output)
    return output / "model-best"
