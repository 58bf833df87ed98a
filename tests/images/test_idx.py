import gzip

import numpy as np
import pytest

from textcnn.images.data import load_fashion_mnist, read_images
from textcnn.images.idx import read_idx, write_idx


@pytest.mark.parametrize("name", ["images-idx3-ubyte", "images-idx3-ubyte.gz"])
def test_idx_round_trip_plain_and_gzip(tmp_path, name):
    images = np.random.default_rng(0).integers(0, 256, (7, 5, 4), dtype=np.uint8)
    write_idx(tmp_path / name, images)
    raw = (tmp_path / name).read_bytes()
    if name.endswith(".gz"):
        raw = gzip.decompress(raw)
    assert raw[:4] == bytes([0, 0, 0x08, 3])  # the MNIST magic number of a 3D ubyte file
    assert raw[4:8] == (7).to_bytes(4, "big")
    read = read_idx(tmp_path / name, ndim=3)
    assert read.dtype == np.uint8 and np.array_equal(read, images)


def test_truncated_idx_file_is_a_clear_error(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    write_idx(path, np.zeros((10, 28, 28), dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ValueError, match=r"10 x 28 x 28 values \(7,840 bytes\).*holds 7,740"):
        read_idx(path)


def test_truncated_gzip_is_a_clear_error(tmp_path):
    path = tmp_path / "labels.gz"
    write_idx(path, np.arange(100, dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(ValueError, match="labels.gz: damaged gzip data"):
        read_idx(path)


def test_wrong_magic_number_is_a_clear_error(tmp_path):
    path = tmp_path / "labels-idx1-ubyte"
    path.write_bytes(b"\x12\x34\x08\x01" + (3).to_bytes(4, "big") + b"\x01\x02\x03")
    with pytest.raises(ValueError, match=r"not an idx file \(magic number 0x12340801"):
        read_idx(path)
    write_idx(path, np.arange(3, dtype=np.uint8))
    with pytest.raises(ValueError, match="1-dimensional idx data, expected 3"):
        read_idx(path, ndim=3)


def write_fashion(folder, n_train=12, n_test=6):
    rng = np.random.default_rng(1)
    for split, n in (("train", n_train), ("t10k", n_test)):
        write_idx(
            folder / f"{split}-images-idx3-ubyte.gz",
            rng.integers(0, 256, (n, 28, 28)).astype(np.uint8),
        )
        write_idx(folder / f"{split}-labels-idx1-ubyte.gz", (np.arange(n) % 10).astype(np.uint8))


def test_fashion_mnist_from_a_configured_folder(tmp_path, monkeypatch):
    write_fashion(tmp_path)
    monkeypatch.setenv("TEXTCNN_FASHION_MNIST_DIR", str(tmp_path))
    train = load_fashion_mnist("train")
    assert train.images.shape == (12, 1, 28, 28) and train.labels[9] == "Ankle boot"
    test = read_images("fashion-mnist", "test", channels=3, size=32)
    assert test.images.shape == (6, 3, 32, 32) and test.source == "fashion-mnist:test"


def test_fashion_mnist_missing_or_mismatched_files(tmp_path):
    with pytest.raises(ValueError, match="apt-get install dataset-fashion-mnist"):
        load_fashion_mnist("train", tmp_path)
    write_fashion(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(5, dtype=np.uint8))
    with pytest.raises(ValueError, match="6 images but 5 labels in the test split"):
        load_fashion_mnist("test", tmp_path)


def test_the_installed_fashion_mnist(monkeypatch):
    monkeypatch.delenv("TEXTCNN_FASHION_MNIST_DIR", raising=False)
    try:
        test = load_fashion_mnist("test")
    except ValueError as error:
        pytest.skip(f"Fashion-MNIST is not installed: {error}")
    assert test.images.shape == (10_000, 1, 28, 28)
    assert np.bincount(test.targets.numpy()).tolist() == [1000] * 10
