"""Image classification: images → a registered 2D architecture, through the shared pipeline
(:mod:`textcnn.training.pipeline`)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import torch

from ..card import ImageCard, Preprocessing
from ..images.classifier import ImageClassifier
from ..images.data import FASHION_MNIST, ImageBatches, ImageSet, Normalization, read_images
from ..images.models import ImageModelConfig, build_image_model, image_model_config
from ..text.corpora import ReaderOptions
from .calibration import fit_scales
from .config import ImageTrainConfig, run_settings
from .task import Fitted, Run, Splits
from .trainer import Trainer


@torch.no_grad()
def dev_logits(model, batches: ImageBatches, size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """(N x classes logits, class indices) of every dev image, in eval mode."""
    model.eval()
    device = next(model.parameters()).device
    logits, targets = [], []
    for start in range(0, len(batches), size):
        images, classes = batches.batch(list(range(start, min(start + size, len(batches)))))
        logits.append(model(images.to(device)).float().cpu())
        targets.append(classes)
    return torch.cat(logits), torch.cat(targets)


class ImageTask:
    """Images → a registered image architecture (``image.arch``)."""

    def read(self, config: ImageTrainConfig, spec: str, like: ImageSet | None = None) -> ImageSet:
        """Training images as the settings say; with ``like`` (the training set), images of
        its channels, size and labels."""
        d, im = config.data, config.image
        if like is None:
            channels = im.channels or (1 if spec.startswith(FASHION_MNIST) else 3)
            size, labels, split = im.image_size, None, "train"
        else:
            channels, size, labels, split = like.channels, like.size, like.labels, "test"
        return read_images(
            spec, split, channels, size, labels, d.skip_bad_rows, im.fashion_mnist_dir
        )

    def read_for(self, predictor: ImageClassifier, spec: str, options: ReaderOptions) -> ImageSet:
        """Images of the model's channels, size and labels (Fashion-MNIST: its test split)."""
        p = predictor
        return read_images(spec, "test", p.channels, p.size, p.labels, options.skip_bad_rows)

    def class_names(self, data: ImageSet) -> list[str]:
        return data.label_names

    def describe(self, splits: Splits) -> str:
        train = splits.train
        test = f", {len(splits.test)} test" if splits.test else ""
        shape = "x".join(map(str, train.images.shape[1:]))
        labels = dict(Counter(train.label_names))
        return f"{len(train)} train, {len(splits.dev)} dev{test} images of {shape}; labels {labels}"

    def examples(self, predictor: ImageClassifier, data: ImageSet) -> tuple[torch.Tensor, ...]:
        return data.images, data.targets

    def write_files(self, predictor: ImageClassifier, folder: Path) -> None:
        """An image model directory has no files of its own."""

    def finish(self, workdir: Path) -> None:
        """Nothing beyond the checkpoint."""

    def fit(self, config: ImageTrainConfig, train: ImageSet, dev: ImageSet, run: Run) -> Fitted:
        im = config.image
        shape = (train.channels, train.size, train.size)
        model_config = image_model_config(
            im.arch, len(train.labels), train.channels, train.size, im.arch_options
        )
        torch.manual_seed(config.training.seed)
        model = build_image_model(im.arch, model_config, shape)
        normalization = Normalization.of(train.images)
        crop, flip = (im.crop_padding, im.flip) if im.augment else (0, False)
        trainer = Trainer(model, config.training, run.workdir, world=run.world)
        result = trainer.fit(
            ImageBatches(train, normalization, crop, flip),
            ImageBatches(dev, normalization),
            resume=run.resume,
            on_epoch_end=run.on_epoch_end,
            data=run.data,
        )
        temperature = 1.0
        if config.decision.calibrate:  # temperature scaling of the best weights, on dev
            model.load_state_dict(result.best_state)
            logits, targets = dev_logits(model, ImageBatches(dev, normalization))
            temperature = 1 / fit_scales(logits, None, targets, multi_label=False)[0]
        card = ImageCard(
            architecture=im.arch,
            name=run.workdir.name,
            labels=train.labels,
            model=ImageModelConfig(arch=im.arch, options=model_config),
            preprocessing=Preprocessing(
                channels=train.channels,
                size=train.size,
                mean=list(normalization.mean),
                std=list(normalization.std),
            ),
            settings=run_settings(config),
            data={
                "train": {"source": train.source, "examples": len(train)},
                "dev": {"source": dev.source, "examples": len(dev)},
            },
            temperature=temperature,
        )
        classifier = ImageClassifier(
            model.to("cpu"), train.labels, normalization, train.channels, train.size, card
        )
        return Fitted(classifier, card, result)
