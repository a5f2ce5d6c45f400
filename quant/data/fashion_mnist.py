"""Fashion-MNIST from the Debian package ``dataset-fashion-mnist`` (``make setup`` installs it): 60 000
training and 10 000 test images, 28x28 grey, 10 classes, read from the package's IDX files; nothing
is downloaded. ``hwcsp train MODEL --data fashion-mnist`` trains on the training set and scores on
the test set (the folder can be moved with ``$FASHION_MNIST``)."""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np

from hwcsp.errors import UserError

DEFAULT_DIR = Path("/usr/share/datasets/fashion-mnist")
CLASS_NAMES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
FILES = {"train": "train", "val": "t10k"}


class FashionMnistError(UserError, FileNotFoundError):
    pass


def data_dir() -> Path:
    return Path(os.environ.get("FASHION_MNIST") or DEFAULT_DIR)


def _idx(path: Path, magic: int, ndim: int) -> np.ndarray:
    if not path.is_file():
        raise FashionMnistError(
            f"{path} is missing: install the Debian package dataset-fashion-mnist (make setup does), "
            "or point $FASHION_MNIST at a folder with its IDX files"
        )
    raw = gzip.open(path).read()
    head = struct.unpack(f">{ndim + 1}i", raw[: 4 * (ndim + 1)])
    if head[0] != magic:
        raise FashionMnistError(
            f"{path}: not an IDX file of the expected kind (magic {head[0]}, expected {magic})"
        )
    shape = head[1:]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 * (ndim + 1))
    if data.size != int(np.prod(shape)):
        raise FashionMnistError(f"{path}: {data.size} bytes of data, the header says {shape}")
    return data.reshape(shape)


def load(split: str, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 [N, 28, 28], labels int64 [N]) of ``split`` ("train" or "val" = the test set)."""
    d, stem = data_dir(), FILES[split]
    images = _idx(d / f"{stem}-images-idx3-ubyte.gz", 2051, 3)
    labels = _idx(d / f"{stem}-labels-idx1-ubyte.gz", 2049, 1).astype(np.int64)
    if len(images) != len(labels):
        raise FashionMnistError(f"{d}: {len(images)} {split} images but {len(labels)} labels")
    return (images, labels) if n is None else (images[:n], labels[:n])
