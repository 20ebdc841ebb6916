"""Atomic file writes (temp file in the target directory + fsync + rename): an interrupted run
never leaves a half-written model, cache or result behind."""
import json
import os
import tempfile
from pathlib import Path

from .errors import DeepSZError


def write_bytes(path, data: bytes) -> Path:
    path = Path(path)
    if not path.parent.is_dir():
        raise DeepSZError(f"cannot write {path}: directory {path.parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text(path, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def write_json(path, obj) -> Path:
    return write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")
