"""Write, count and average Caffe LMDBs of raw uint8 `Datum` records (what Caffe's Data layer
reads).

Records are raw (not PNG/JPEG encoded): our Caffe is built without OpenCV, and encoded Datums
would abort it. An LMDB is built in a temporary directory and renamed into place, so a killed
run never leaves a half-written database that looks complete.
"""
import os
import secrets
import shutil
from contextlib import contextmanager
from pathlib import Path

import lmdb
import numpy as np
from google.protobuf.message import DecodeError

from .io import caffe_pb2
from ..log import progress as progress_bar
from ..errors import CaffeIOError, ConfigError


_LMDB_FILES = {"data.mdb", "lock.mdb"}


def check_target(path: Path, overwrite: bool) -> None:
    """Refuse to replace anything but an empty directory or (with overwrite) an LMDB."""
    if not os.path.lexists(path) or (path.is_dir() and not any(path.iterdir())):
        return
    if path.is_symlink() or not path.is_dir():
        raise ConfigError(f"{path} already exists and is not an LMDB directory; choose another path")
    if not overwrite:
        raise ConfigError(f"{path} already exists and is not empty; pass --force (overwrite=True) "
                          "to replace it")
    if not set(os.listdir(path)) <= _LMDB_FILES:
        raise ConfigError(f"refusing to overwrite {path}: it is not an LMDB directory "
                          "(data.mdb/lock.mdb only)")


@contextmanager
def building(path: Path):
    """A hidden directory beside `path` to build an LMDB in: renamed over `path` when the block
    ends, removed if it raises, so an interrupted run never leaves a half-written LMDB at `path`.
    OSError and LMDB errors become CaffeIOError."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.partial-{os.getpid()}-{secrets.token_hex(4)}")
        os.mkdir(tmp)  # mode 0o777 & ~umask, like any directory the user creates
    except OSError as e:
        raise CaffeIOError(f"cannot create LMDB {path}: {e.strerror} ({e.filename})") from None
    try:
        yield tmp
        _move_into_place(tmp, path)
    except (lmdb.Error, OSError) as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise CaffeIOError(f"cannot write LMDB {path}: {e}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _move_into_place(tmp: Path, path: Path) -> None:
    """Rename the finished database over `path`; an old LMDB there is moved aside first (a
    directory cannot be renamed over a non-empty one) and removed only afterwards."""
    old = None
    if os.path.lexists(path):
        if path.is_dir() and not any(path.iterdir()):
            path.rmdir()
        else:
            old = path.with_name(f".{path.name}.old-{os.getpid()}-{secrets.token_hex(4)}")
            os.rename(path, old)
    try:
        os.rename(tmp, path)
    except OSError:
        if old is not None:
            os.rename(old, path)  # put the previous database back
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


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
    datum = caffe_pb2().Datum(channels=c, height=h, width=w)
    with building(path) as tmp, lmdb.open(str(tmp), map_size=max(1 << 24, 2 * images.nbytes + 64 * n)) as env:
        txn = env.begin(write=True)
        for i in progress_bar(range(n), desc=desc, unit="img", leave=False, mininterval=1):
            datum.data = images[i].tobytes()
            datum.label = int(labels[i])
            txn.put(f"{i:08d}".encode(), datum.SerializeToString())
            if i % 10000 == 9999:
                txn.commit()
                txn = env.begin(write=True)
        txn.commit()
    return path


def ensure(path, images: np.ndarray, labels: np.ndarray, desc: str = "lmdb") -> Path:
    """Build the LMDB unless one with the right record count already exists."""
    try:
        if count(path) == len(images):
            return Path(path)
    except CaffeIOError:
        pass
    return write(path, images, labels, desc)


def mean_image(path, progress: bool = True) -> np.ndarray:
    """Caffe's compute_image_mean: the per-pixel mean of every raw Datum in the LMDB at `path`,
    float32 [C, H, W] (summed in float64, divided once, as the tool does). CaffeIOError for an
    empty or unreadable LMDB, encoded (JPEG/PNG) Datums, or records of different shapes."""
    n = count(path)
    if n == 0:
        raise CaffeIOError(f"LMDB {path} has no records")
    datum = caffe_pb2().Datum()
    total, shape = None, None
    try:
        with lmdb.open(str(path), readonly=True, lock=False, readahead=False) as env, \
                env.begin(buffers=True) as txn:
            for key, value in progress_bar(txn.cursor(), total=n, desc="mean", unit="img", leave=False,
                                           disable=not progress, mininterval=1):
                datum.ParseFromString(bytes(value))
                if datum.encoded:
                    raise CaffeIOError(f"{path}: record {bytes(key).decode(errors='replace')} is an "
                                       "encoded image (convert_imageset -encoded); this Caffe cannot "
                                       "decode those: rebuild the LMDB with `deepsz lmdb`")
                here = (datum.channels, datum.height, datum.width)
                values = (np.frombuffer(datum.data, np.uint8) if datum.data
                          else np.asarray(datum.float_data, np.float64))
                if values.size != here[0] * here[1] * here[2]:
                    raise CaffeIOError(f"{path}: record {bytes(key).decode(errors='replace')} holds "
                                       f"{values.size} values for shape {here}")
                if shape is None:
                    shape, total = here, np.zeros(values.size, np.float64)
                elif here != shape:
                    raise CaffeIOError(f"{path}: record {bytes(key).decode(errors='replace')} is "
                                       f"{here}, the first was {shape}: a mean needs one image size")
                total += values
    except lmdb.Error as e:
        raise CaffeIOError(f"cannot read LMDB {path}: {e}") from None
    except DecodeError:
        raise CaffeIOError(f"{path}: a record is not a Caffe Datum") from None
    return (total / n).astype(np.float32).reshape(shape)


def write_mean(mean: np.ndarray, out) -> Path:
    """A [C, H, W] mean as the .binaryproto BlobProto that `transform_param { mean_file }` reads."""
    from .. import atomic

    c, h, w = mean.shape
    blob = caffe_pb2().BlobProto(num=1, channels=c, height=h, width=w)
    blob.data.extend(mean.astype(np.float32).ravel().tolist())
    return atomic.write_bytes(out, blob.SerializeToString())


def read_mean(path) -> np.ndarray:
    """A .binaryproto mean back as float32 [C, H, W]."""
    from ..atomic import read_bytes

    blob = caffe_pb2().BlobProto()
    try:
        blob.ParseFromString(read_bytes(path, "mean file", CaffeIOError))
    except DecodeError:
        raise CaffeIOError(f"{path} is not a .binaryproto") from None
    return np.asarray(blob.data, np.float32).reshape(blob.channels, blob.height, blob.width)
