"""Image data: Fashion-MNIST from its idx files, or a folder per class of ordinary images.

Images are kept as N x C x H x W uint8 tensors; :class:`ImageBatches` turns them
into normalised float batches for the trainer, with optional augmentation
(random crop after zero padding, horizontal flip).
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .idx import read_idx

FASHION_MNIST = "fashion-mnist"
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"  # Debian package dataset-fashion-mnist
FASHION_MNIST_LABELS = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
FASHION_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


@dataclass
class ImageSet:
    images: torch.Tensor  # N x C x H x W, uint8
    targets: torch.Tensor  # N class indices into labels
    labels: list[str]
    source: str

    def __len__(self) -> int:
        return len(self.targets)

    def subset(self, indices: list[int]) -> ImageSet:
        return ImageSet(self.images[indices], self.targets[indices], self.labels, self.source)

    def fingerprint(self) -> str:
        """sha256 of the images, their classes and the label names: identifies the data."""
        digest = hashlib.sha256(self.images.contiguous().numpy().tobytes())
        digest.update(self.targets.numpy().tobytes())
        digest.update("\n".join(self.labels).encode())
        return digest.hexdigest()

    @property
    def channels(self) -> int:
        return self.images.shape[1]

    @property
    def size(self) -> int:
        """The side of the (square) images."""
        return self.images.shape[-1]

    @property
    def label_names(self) -> list[str]:
        """The label of every image, as text (for stratified splits)."""
        return [self.labels[i] for i in self.targets.tolist()]


def fashion_mnist_dir(folder: str | Path | None = None) -> Path:
    """``folder``, else ``$TEXTCNN_FASHION_MNIST_DIR``, else the Debian package's location."""
    return Path(folder or os.environ.get("TEXTCNN_FASHION_MNIST_DIR") or FASHION_MNIST_DIR)


def _idx_file(folder: Path, stem: str) -> Path:
    for name in (stem, f"{stem}.gz"):
        if (folder / name).is_file():
            return folder / name
    raise ValueError(
        f"{folder}: no Fashion-MNIST file {stem}(.gz); install the Debian package "
        "dataset-fashion-mnist (apt-get install dataset-fashion-mnist) or point "
        "TEXTCNN_FASHION_MNIST_DIR at a folder holding the four idx files"
    )


def load_fashion_mnist(split: str = "train", folder: str | Path | None = None) -> ImageSet:
    """The train (60,000) or test (10,000) split as 1 x 28 x 28 uint8 images."""
    if split not in FASHION_MNIST_FILES:
        raise ValueError(f"Fashion-MNIST has the splits train and test, not {split!r}")
    root = fashion_mnist_dir(folder)
    image_stem, label_stem = FASHION_MNIST_FILES[split]
    images = read_idx(_idx_file(root, image_stem), ndim=3)
    labels = read_idx(_idx_file(root, label_stem), ndim=1)
    if len(images) != len(labels):
        raise ValueError(
            f"{root}: {len(images)} images but {len(labels)} labels in the {split} split; "
            "the files do not belong together"
        )
    if labels.size and labels.max() >= len(FASHION_MNIST_LABELS):
        raise ValueError(f"{root}: label {labels.max()} in the {split} split; expected 0-9")
    return ImageSet(
        torch.from_numpy(images.copy()).unsqueeze(1),
        torch.from_numpy(labels.astype(np.int64)),
        list(FASHION_MNIST_LABELS),
        f"{FASHION_MNIST}:{split}",
    )


def read_image(path: str | Path, channels: int, size: int | None) -> torch.Tensor:
    """One image file as C x H x W uint8, converted to grey (1) or RGB (3), resized to size²."""
    from PIL import Image, UnidentifiedImageError

    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grey) or 3 (RGB), got {channels}")
    try:
        with Image.open(path) as image:
            image = image.convert("L" if channels == 1 else "RGB")
            if size is not None and image.size != (size, size):
                image = image.resize((size, size), Image.Resampling.BILINEAR)
            array = np.asarray(image, dtype=np.uint8)
    except FileNotFoundError:
        raise ValueError(f"{path}: no such image file") from None
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise ValueError(f"{path}: not a readable image ({error}); remove or replace it") from None
    tensor = torch.from_numpy(array.copy())
    return tensor.unsqueeze(0) if channels == 1 else tensor.permute(2, 0, 1)


def load_image_folder(
    path: str | Path,
    channels: int = 3,
    size: int | None = 32,
    labels: list[str] | None = None,
    skip_bad: bool = False,
) -> tuple[ImageSet, int]:
    """A folder with one sub-folder of images per class; returns the set and the skipped count.

    Images of different sizes need ``size``. ``labels`` (a trained model's) fixes the class
    order; a sub-folder that is not among them is an error.
    """
    root = Path(path)
    if not root.is_dir():
        raise ValueError(f"{root}: not a folder (expected one sub-folder of images per class)")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise ValueError(f"{root}: no class sub-folders; put each class's images in its own folder")
    labels = list(labels) if labels is not None else classes
    unknown = sorted(set(classes) - set(labels))
    if unknown:
        raise ValueError(
            f"{root}: classes the model was not trained on: {', '.join(unknown)}; "
            f"it knows {', '.join(labels)}"
        )
    images, targets, skipped = [], [], 0
    for name in classes:
        files = sorted(f for f in (root / name).iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        for file in files:
            try:
                image = read_image(file, channels, size)
            except ValueError:
                if not skip_bad:
                    raise
                skipped += 1
                continue
            if images and image.shape != images[0].shape:
                raise ValueError(
                    f"{file}: {tuple(image.shape)} differs from {tuple(images[0].shape)}; "
                    "pass an image size to resize every image"
                )
            images.append(image)
            targets.append(labels.index(name))
    if not images:
        raise ValueError(f"{root}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in the folders")
    return ImageSet(torch.stack(images), torch.tensor(targets), labels, str(root)), skipped


def read_images(
    spec: str,
    split: str,
    channels: int | None = None,
    size: int | None = None,
    labels: list[str] | None = None,
    skip_bad: bool = False,
    fashion_dir: str | None = None,
) -> ImageSet:
    """``fashion-mnist`` (the given split), ``fashion-mnist:train|test``, or a class folder."""
    name, _, chosen = spec.partition(":")
    if name == FASHION_MNIST and not Path(spec).exists():
        data = load_fashion_mnist(chosen or split, fashion_dir)
        if channels == 3:
            data.images = data.images.expand(-1, 3, -1, -1).contiguous()
        if size is not None and size != data.images.shape[-1]:
            data.images = resize(data.images, size)
        return data
    data, skipped = load_image_folder(spec, channels or 3, size, labels, skip_bad)
    if skipped:
        log.warning("%s: skipped %d unreadable images", spec, skipped)
    return data


def resize(images: torch.Tensor, size: int, chunk: int = 4096) -> torch.Tensor:
    """uint8 N x C x H x W images resized (bilinear) to size x size."""
    out = [
        F.interpolate(part.float(), size=(size, size), mode="bilinear", align_corners=False)
        .round()
        .clamp(0, 255)
        .to(torch.uint8)
        for part in images.split(chunk)
    ]
    return torch.cat(out)


@dataclass(frozen=True)
class Normalization:
    """Per-channel mean and standard deviation of the training images, in [0, 1] units."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def of(cls, images: torch.Tensor) -> Normalization:
        x = images.float().div(255).transpose(0, 1).flatten(1)  # C x (N*H*W)
        return cls(tuple(x.mean(1).tolist()), tuple(x.std(1).clamp(min=1e-6).tolist()))

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 N x C x H x W -> normalised float32."""
        mean = torch.tensor(self.mean).view(1, -1, 1, 1)
        std = torch.tensor(self.std).view(1, -1, 1, 1)
        return (images.float().div(255) - mean) / std


def random_crop_flip(x: torch.Tensor, padding: int, flip: bool) -> torch.Tensor:
    """Each image shifted by a random crop of its zero-padded self, and mirrored half the time."""
    n, c, h, w = x.shape
    if padding:
        padded = F.pad(x, (padding,) * 4)
        top = torch.randint(0, 2 * padding + 1, (n,))
        left = torch.randint(0, 2 * padding + 1, (n,))
        rows = (top[:, None] + torch.arange(h))[:, None, :, None]  # N x 1 x H x 1
        cols = (left[:, None] + torch.arange(w))[:, None, None, :]  # N x 1 x 1 x W
        x = padded[
            torch.arange(n)[:, None, None, None], torch.arange(c)[None, :, None, None], rows, cols
        ]
    if flip:
        mirrored = torch.rand(n) < 0.5
        x = torch.where(mirrored[:, None, None, None], x.flip(-1), x)
    return x


@dataclass
class ImageBatches:
    """Normalised float batches of an :class:`ImageSet`, augmented when ``crop_padding``/``flip``
    are set (training data only)."""

    data: ImageSet
    normalization: Normalization
    crop_padding: int = 0
    flip: bool = False

    def __len__(self) -> int:
        return len(self.data)

    def batch(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.normalization(self.data.images[indices])
        if self.crop_padding or self.flip:
            x = random_crop_flip(x, self.crop_padding, self.flip)
        return x, self.data.targets[indices]
