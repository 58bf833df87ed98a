from pathlib import Path

import numpy as np
import torch
from PIL import Image

QUADRANTS = ["top-left", "top-right", "bottom-left", "bottom-right"]


def square_images(n: int, size: int = 16, side: int = 4, seed: int = 0):
    """Grey images with one bright side x side square; the class is the quadrant it lies in.

    Each quadrant has its own background grey (noisy), as a place has its own surroundings
    in a photo, so that a convolution can tell where it is from what it sees around it.
    Returns (uint8 N x 1 x size x size, class indices, the squares' (top, left) corners).
    """
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 30, (n, 1, size, size)).astype(np.uint8)
    half = size // 2
    for quadrant, grey in enumerate((0, 50, 100, 150)):
        rows, cols = divmod(quadrant, 2)
        images[:, :, rows * half : (rows + 1) * half, cols * half : (cols + 1) * half] += grey
    targets, corners = [], []
    for i in range(n):
        quadrant = i % 4
        top = rng.integers(0, half - side + 1) + half * (quadrant // 2)
        left = rng.integers(0, half - side + 1) + half * (quadrant % 2)
        images[i, 0, top : top + side, left : left + side] = 255
        targets.append(quadrant)
        corners.append((int(top), int(left)))
    return torch.from_numpy(images), torch.tensor(targets), corners


def write_image_folder(root: Path, n: int = 40, size: int = 16, seed: int = 0) -> Path:
    """``square_images`` as PNG files in one folder per quadrant."""
    images, targets, _ = square_images(n, size, seed=seed)
    for i, (image, target) in enumerate(zip(images, targets, strict=True)):
        folder = root / QUADRANTS[int(target)]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image[0].numpy()).save(folder / f"{i:03d}.png")
    return root


def squares_on_ground(n: int, cells: int = 3, cell: int = 8, side: int = 5, seed: int = 0):
    """Grey images tiled with cells of light or dark ground at random, with one bright
    side x side square inside one cell; the class is the ground under the square (0 dark,
    1 light), so only the square's position in the picture decides it.

    Returns (uint8 N x 1 x S x S with S = cells * cell, class indices, (top, left) corners).
    """
    rng = np.random.default_rng(seed)
    size = cells * cell
    ground = rng.integers(0, 2, (n, cells, cells)) * 100
    images = ground.repeat(cell, axis=1).repeat(cell, axis=2)[:, None] + rng.integers(
        0, 30, (n, 1, size, size)
    )
    targets, corners = [], []
    for i in range(n):
        row, col = rng.integers(0, cells, 2)
        top = row * cell + rng.integers(0, cell - side + 1)
        left = col * cell + rng.integers(0, cell - side + 1)
        images[i, 0, top : top + side, left : left + side] = 255
        targets.append(int(ground[i, row, col] > 0))
        corners.append((int(top), int(left)))
    return torch.from_numpy(images.astype(np.uint8)), torch.tensor(targets), corners
