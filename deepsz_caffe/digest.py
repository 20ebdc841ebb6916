"""The one sha256 of a file and the one fingerprint of a computation's inputs (file contents and
settings), which result caches and resumable stages are keyed by."""
import hashlib
import json
from pathlib import Path

CHUNK = 1 << 20


def sha256_stream(f, size: int | None = None) -> str:
    """Hex sha256 of what is left in the open binary file `f` (at most `size` bytes)."""
    h, left = hashlib.sha256(), size
    while left is None or left > 0:
        chunk = f.read(CHUNK if left is None else min(left, CHUNK))
        if not chunk:
            break
        h.update(chunk)
        left = None if left is None else left - len(chunk)
    return h.hexdigest()


def sha256_file(path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks."""
    with open(path, "rb") as f:
        return sha256_stream(f)


def fingerprint(*parts) -> str:
    """20 hex digits over `parts` in order: a Path by its contents' sha256, anything else by its
    JSON (sorted keys; other objects as str). Equal inputs, equal key, across runs."""
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, Path):
            h.update(sha256_file(part).encode())
        else:
            h.update(json.dumps(part, sort_keys=True, default=str).encode())
    return h.hexdigest()[:20]
