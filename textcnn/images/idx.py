"""The idx format of MNIST and Fashion-MNIST (plain or gzip), read with every size checked.

An idx file is a 4-byte magic number (two zero bytes, a type code, the number of
dimensions), one big-endian int32 per dimension, then the values in C order.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

# type code -> big-endian numpy dtype
IDX_TYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
GZIP_MAGIC = b"\x1f\x8b"


def _raw_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    if not data.startswith(GZIP_MAGIC):
        return data
    try:
        return gzip.decompress(data)
    except (EOFError, OSError, zlib.error) as error:
        raise ValueError(f"{path}: damaged gzip data ({error})") from None


def read_idx(path: str | Path, ndim: int | None = None) -> np.ndarray:
    """The array in an idx file; ``ndim`` (3 for images, 1 for labels) is checked when given.

    A wrong magic number, a size that does not match the file's length, or damaged
    compression is a ``ValueError`` that names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    data = _raw_bytes(path)
    fix = "; the file is damaged: reinstall or download it again"
    if len(data) < 4:
        raise ValueError(f"{path}: {len(data)} bytes is too short for an idx file{fix}")
    zero, code, dims = struct.unpack(">HBB", data[:4])
    if zero != 0 or code not in IDX_TYPES or dims == 0:
        raise ValueError(
            f"{path}: not an idx file (magic number 0x{data[:4].hex()}, expected 0x0000 "
            f"then a type code and the number of dimensions){fix}"
        )
    if ndim is not None and dims != ndim:
        raise ValueError(f"{path}: {dims}-dimensional idx data, expected {ndim} dimensions")
    header = 4 + 4 * dims
    if len(data) < header:
        raise ValueError(f"{path}: the header is cut short{fix}")
    shape = struct.unpack(f">{dims}I", data[4:header])
    dtype = IDX_TYPES[code]
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) - header != expected:
        raise ValueError(
            f"{path}: the header promises {' x '.join(map(str, shape))} values "
            f"({expected:,} bytes) but the file holds {len(data) - header:,}{fix}"
        )
    return (
        np.frombuffer(data, dtype=dtype, offset=header)
        .reshape(shape)
        .astype(dtype.newbyteorder("="))
    )


def write_idx(path: str | Path, array: np.ndarray) -> None:
    """Write ``array`` as an idx file (gzip when the name ends in .gz)."""
    array = np.asarray(array)
    codes = {dtype.newbyteorder("="): code for code, dtype in IDX_TYPES.items()}
    native = array.dtype.newbyteorder("=")
    if native not in codes:
        raise ValueError(f"idx cannot hold {array.dtype} values")
    payload = (
        struct.pack(">HBB", 0, codes[native], array.ndim)
        + struct.pack(f">{array.ndim}I", *array.shape)
        + array.astype(IDX_TYPES[codes[native]]).tobytes()
    )
    path = Path(path)
    path.write_bytes(gzip.compress(payload) if path.suffix == ".gz" else payload)
