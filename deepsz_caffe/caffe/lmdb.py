"""Write and count Caffe LMDBs of raw uint8 `Datum` records (what Caffe's Data layer reads).

Records are raw (not PNG/JPEG encoded): our Caffe is built without OpenCV, and encoded Datums
would abort it. An LMDB is built in a temporary directory and renamed into place, so a killed
run never leaves a half-written database that looks complete.
"""
import os
import shutil
from pathlib import Path

import lmdb
import numpy as np

from .io import caffe_pb2
from ..log import progress
from ..errors import CaffeIOError


def count(path) -> int:
    """Number of records in the LMDB at `path`; CaffeIOError if it is not a readable LMDB."""
    path = Path(path)
    if not (path / "data.mdb").is_file():
        raise CaffeIOError(f"LMDB {path} does not exist (no {path / 'data.mdb'})")
    try:
        with lmdb.open(str(path), readonly=True, lock=False) as env:
            return env.stat()["entries"]
    except lmdb.Error as e:
        raise CaffeIOError(f"cannot read LMDB {path}: {e}") from None


def write(path, images: np.ndarray, labels: np.ndarray, desc: str = "lmdb") -> Path:
    """Store `images` (uint8, [N,H,W] or [N,C,H,W]) with integer `labels` as an LMDB at `path`."""
    path = Path(path)
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim not in (3, 4) or len(images) != len(labels):
        raise ValueError("images must be uint8 [N,H,W] or [N,C,H,W] with one label per image")
    if images.ndim == 3:
        images = images[:, None]
    n, c, h, w = images.shape
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    datum = caffe_pb2().Datum(channels=c, height=h, width=w)
    with lmdb.open(str(tmp), map_size=max(1 << 24, 2 * images.nbytes + 64 * n)) as env:
        txn = env.begin(write=True)
        for i in progress(range(n), desc=desc, unit="img", leave=False, mininterval=1):
            datum.data = images[i].tobytes()
            datum.label = int(labels[i])
            txn.put(f"{i:08d}".encode(), datum.SerializeToString())
            if i % 10000 == 9999:
                txn.commit()
                txn = env.begin(write=True)
        txn.commit()
    shutil.rmtree(path, ignore_errors=True)
    os.replace(tmp, path)
    return path


def ensure(path, images: np.ndarray, labels: np.ndarray, desc: str = "lmdb") -> Path:
    """Build the LMDB unless one with the right record count already exists."""
    try:
        if count(path) == len(images):
            return Path(path)
    except CaffeIOError:
        pass
    return write(path, images, labels, desc)
