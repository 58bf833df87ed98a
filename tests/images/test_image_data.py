import pytest
import torch
from PIL import Image

from textcnn.images.data import (
    ImageBatches,
    ImageSet,
    Normalization,
    load_image_folder,
    random_crop_flip,
)

from .conftest import QUADRANTS, write_image_folder


def test_image_folder_is_read_per_class_converted_and_resized(tmp_path):
    root = write_image_folder(tmp_path / "images", n=8)
    Image.new("RGB", (20, 10), (255, 0, 0)).save(root / "top-left" / "wide.jpg")
    (root / "top-left" / "notes.txt").write_text("not an image")
    data, skipped = load_image_folder(root, channels=3, size=12)
    assert skipped == 0 and data.labels == sorted(QUADRANTS)
    assert data.images.shape == (9, 3, 12, 12) and data.images.dtype == torch.uint8
    assert data.targets.bincount().tolist() == [2, 2, 3, 2]  # top-left has the JPEG
    grey, _ = load_image_folder(root, channels=1, size=12)
    assert grey.images.shape == (9, 1, 12, 12)


def test_images_of_different_sizes_need_a_size(tmp_path):
    root = write_image_folder(tmp_path / "images", n=4)
    Image.new("L", (20, 10)).save(root / "top-left" / "wide.png")
    with pytest.raises(ValueError, match=r"wide.png: \(1, 10, 20\) differs .* pass an image size"):
        load_image_folder(root, channels=1, size=None)


def test_unreadable_images_stop_or_are_skipped(tmp_path):
    root = write_image_folder(tmp_path / "images", n=8)
    (root / "top-right" / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(ValueError, match="broken.png: not a readable image .* remove or replace"):
        load_image_folder(root, channels=1, size=16)
    data, skipped = load_image_folder(root, channels=1, size=16, skip_bad=True)
    assert skipped == 1 and len(data) == 8


def test_folder_with_classes_a_model_does_not_know(tmp_path):
    root = write_image_folder(tmp_path / "images", n=8)
    with pytest.raises(ValueError, match="classes the model was not trained on: top-right"):
        load_image_folder(root, labels=["bottom-left", "bottom-right", "top-left"])
    with pytest.raises(ValueError, match="no class sub-folders"):
        load_image_folder(tmp_path / "images" / "top-left")


def test_normalisation_and_augmentation():
    images = torch.randint(0, 256, (64, 3, 8, 8), dtype=torch.uint8)
    norm = Normalization.of(images)
    x = norm(images)
    assert x.mean(dim=(0, 2, 3)).abs().max() < 1e-5
    assert (x.std(dim=(0, 2, 3)) - 1).abs().max() < 1e-3
    torch.manual_seed(0)
    shifted = random_crop_flip(x, padding=2, flip=True)
    assert shifted.shape == x.shape
    # every output is the input shifted by at most 2 pixels (zeros moved in), maybe mirrored
    for i in range(8):
        found = False
        for image in (x[i], x[i].flip(-1)):
            padded = torch.nn.functional.pad(image, (2, 2, 2, 2))
            for dy in range(5):
                for dx in range(5):
                    found |= torch.equal(padded[:, dy : dy + 8, dx : dx + 8], shifted[i])
        assert found
    batches = ImageBatches(ImageSet(images, torch.zeros(64), ["a"], "test"), norm)
    assert torch.equal(batches.batch([0, 1])[0], x[:2])  # no augmentation unless asked
