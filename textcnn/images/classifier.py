"""A trained image classifier: network + labels + preprocessing, with a batched ``predict``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import torch

from ..artifacts import checked_labels, load_weights
from ..card import ImageCard
from ..models import Classifier
from ..predictor import Prediction, Result, TopK, assigned_labels, check_top_k
from .cam import class_activation_maps, save_overlay, upsample
from .data import Normalization, read_image
from .models import build_image_model


class ImageClassifier:
    """Predicts labels for uint8 C x H x W images of the size it was trained on."""

    task = "image"

    def __init__(
        self,
        model: Classifier,
        labels: list[str],
        normalization: Normalization,
        channels: int,
        size: int,
        card: ImageCard | None = None,
    ) -> None:
        self.model = model.eval()
        self.labels = list(labels)
        self.normalization = normalization
        self.channels = channels
        self.size = size
        self.card = card

    multi_label = False  # one class per image

    @property
    def version(self) -> str:
        """The first 12 hex digits of the weights' sha256."""
        return self.card.version if self.card is not None else "unsaved"

    def read(self, path: str | Path) -> torch.Tensor:
        """An image file converted and resized as the model expects."""
        return read_image(path, self.channels, self.size)

    def _inputs(self, images: torch.Tensor) -> torch.Tensor:
        expected = (self.channels, self.size, self.size)
        if images.dtype != torch.uint8 or images.ndim != 4 or tuple(images.shape[1:]) != expected:
            raise ValueError(
                f"expected uint8 images of shape N x {' x '.join(map(str, expected))}, "
                f"got {images.dtype} {tuple(images.shape)}"
            )
        device = next(self.model.parameters()).device
        return self.normalization(images).to(device)

    @torch.inference_mode()
    def predict_proba(
        self, images: torch.Tensor, batch_size: int = 256, calibrated: bool = True
    ) -> torch.Tensor:
        """N x num_classes class probabilities of uint8 N x C x H x W images: the softmax of
        the logits divided by the card's temperature (``calibrated=False``: by 1)."""
        temperature = self.card.temperature if calibrated and self.card is not None else 1.0
        out = [
            torch.softmax(self.model(self._inputs(part)).float() / temperature, dim=-1).cpu()
            for part in images.split(batch_size)
        ]
        return torch.cat(out) if out else torch.empty(0, len(self.labels))

    def assigned(self, probabilities: torch.Tensor) -> torch.Tensor:
        """N x classes: the top class of each image."""
        return assigned_labels(probabilities)

    def predict(
        self, images: torch.Tensor | Sequence[str | Path], top_k: TopK = "auto"
    ) -> list[list[Prediction]]:
        """For every image (a uint8 batch, or image files), its ``top_k`` labels (auto: the
        top one; None: all), best first."""
        return [result.predictions for result in self.classify(images, top_k)]

    def classify(
        self,
        images: torch.Tensor | Sequence[str | Path],
        top_k: TopK = "auto",
        min_score: float | None = None,
    ) -> list[Result]:
        """Predictions of every image; below ``min_score`` the model abstains."""
        check_top_k(top_k)
        if not isinstance(images, torch.Tensor):
            images = torch.stack([self.read(p) for p in images])
        k = len(self.labels) if top_k is None else 1 if top_k == "auto" else top_k
        scores, indices = self.predict_proba(images).topk(min(k, len(self.labels)), dim=-1)
        return [
            Result(
                [Prediction(self.labels[i], float(p)) for p, i in zip(s, ix, strict=True)],
                truncated=False,
                assigned=(self.labels[ix[0]],),
                abstained=min_score is not None and s[0] < min_score,
            )
            for s, ix in zip(scores.tolist(), indices.tolist(), strict=True)
        ]

    def class_activation_map(
        self, image: torch.Tensor, label: str | None = None
    ) -> tuple[Prediction, torch.Tensor]:
        """(the prediction, its class activation map at the image's size in [0, 1]) for one
        uint8 C x H x W image; ``label`` picks another class's map."""
        logits, maps = class_activation_maps(self.model, self._inputs(image[None]))
        probs = torch.softmax(logits[0].float(), dim=-1)
        index = int(probs.argmax()) if label is None else self.labels.index(label)
        heat = upsample(maps[0, index].float().cpu(), tuple(image.shape[1:]))
        return Prediction(self.labels[index], float(probs[index])), heat

    def save_class_activation_map(
        self, image_path: str | Path, output: str | Path, label: str | None = None
    ) -> Prediction:
        """Write the image of ``image_path`` with the predicted (or ``label``'s) class
        activation map over it to the PNG ``output``; the prediction."""
        if label is not None and label not in self.labels:
            raise ValueError(f"unknown label {label!r}; the model knows {', '.join(self.labels)}")
        picture = self.read(image_path)
        prediction, heat = self.class_activation_map(picture, label)
        title = f"{prediction.label} ({prediction.score:.2f})"
        save_overlay(picture, heat, Path(output), title)
        return prediction


def load_image_classifier(
    path: Path, card: ImageCard, device: str | torch.device = "cpu"
) -> ImageClassifier:
    """The image model of directory ``path`` (its card read as ``card``)."""
    pre = card.preprocessing
    shape = (pre.channels, pre.size, pre.size)
    normalization = Normalization(tuple(pre.mean), tuple(pre.std))
    labels = checked_labels(card.labels, card.model.num_classes, path)
    model, digest = load_weights(
        lambda: build_image_model(card.architecture, card.model.options, shape),
        path,
        card.weights_sha256,
        lazy=True,
    )
    card = replace(card, weights_sha256=digest)
    return ImageClassifier(model.to(device), labels, normalization, pre.channels, pre.size, card)
