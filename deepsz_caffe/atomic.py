"""Atomic file writes (temp file in the target directory + rename): an interrupted run never
leaves a half-written model, cache or result behind."""
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

from .errors import DeepSZError


@contextmanager
def replacing(path):
    """Yield a temporary path beside `path`; on success it is renamed over `path`, on failure
    removed. For writers that want a file name (Caffe's Net.save) rather than bytes."""
    path = Path(path)
    if not path.parent.is_dir():
        raise DeepSZError(f"cannot write {path}: directory {path.parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_bytes(path, data: bytes) -> Path:
    with replacing(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    return Path(path)


def write_text(path, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def write_json(path, obj) -> Path:
    return write_text(path, json.dumps(obj, indent=2) + "\n")
