"""The `.dsz` model file: a versioned, checksummed bag of named byte sections plus a JSON header.

Layout (little endian):
    magic b"DSZ\\x89" | u16 format version | u16 flags (0; none defined yet) | u32 header length
    | u32 header CRC32 | header (UTF-8 JSON) | section payloads, in the order the header lists them

The header's "sections" list gives each section's name, length and CRC32. `unpack` checks the
magic, version, every length (the file size must match exactly) and every CRC before returning,
so no decoder (in particular the SZ C library, which calls exit() on bad input) ever sees
bytes that were not written by `pack`.
"""
import json
import struct
import zlib
from pathlib import Path

from .. import atomic
from ..errors import ContainerError

MAGIC = b"DSZ\x89"
FORMAT_VERSION = 1
_PREAMBLE = struct.Struct("<4sHHII")


def pack(header: dict, sections: dict[str, bytes]) -> bytes:
    """Serialise `header` (JSON-able; the key "sections" is reserved) and the named sections."""
    if "sections" in header:
        raise ValueError('header key "sections" is reserved for the container')
    table = [{"name": n, "length": len(b), "crc32": zlib.crc32(b)} for n, b in sections.items()]
    head = json.dumps({**header, "sections": table}, sort_keys=True).encode("utf-8")
    pre = _PREAMBLE.pack(MAGIC, FORMAT_VERSION, 0, len(head), zlib.crc32(head))
    return b"".join([pre, head, *sections.values()])


def unpack(buf: bytes, source: str = "<bytes>") -> tuple[dict, dict[str, bytes]]:
    """Validate and split a `.dsz` image; raise ContainerError saying what is wrong."""
    buf = memoryview(buf)
    if len(buf) < _PREAMBLE.size:
        raise ContainerError(f"{source}: not a .dsz file (only {len(buf)} bytes)")
    magic, version, flags, head_len, head_crc = _PREAMBLE.unpack_from(buf)
    if magic != MAGIC:
        raise ContainerError(f"{source}: not a .dsz file (bad magic {bytes(magic)!r})")
    if version != FORMAT_VERSION:
        raise ContainerError(f"{source}: .dsz format version {version}; this build reads version "
                             f"{FORMAT_VERSION} (upgrade deepsz-caffe)")
    if flags:
        raise ContainerError(f"{source}: unknown flags {flags:#x} (written by a newer deepsz-caffe?)")
    end = _PREAMBLE.size + head_len
    if end > len(buf):
        raise ContainerError(f"{source}: truncated (header needs {end} bytes, file has {len(buf)})")
    head = bytes(buf[_PREAMBLE.size:end])
    if zlib.crc32(head) != head_crc:
        raise ContainerError(f"{source}: header is corrupted (CRC mismatch)")
    try:
        header = json.loads(head)
        table = header.pop("sections")
        spans = [(str(s["name"]), int(s["length"]), int(s["crc32"])) for s in table]
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise ContainerError(f"{source}: header is malformed ({e})") from None
    expected = end + sum(length for _, length, _ in spans)
    if expected != len(buf) or any(length < 0 for _, length, _ in spans):
        what = "truncated" if expected > len(buf) else "has trailing bytes"
        raise ContainerError(f"{source}: {what} (expected {expected} bytes, found {len(buf)})")
    sections, pos = {}, end
    for name, length, crc in spans:
        data = bytes(buf[pos:pos + length])
        if zlib.crc32(data) != crc:
            raise ContainerError(f"{source}: section '{name}' is corrupted (CRC mismatch)")
        sections[name] = data
        pos += length
    return header, sections


def write(path, header: dict, sections: dict[str, bytes]) -> Path:
    """Write a `.dsz` file atomically."""
    return atomic.write_bytes(path, pack(header, sections))


def read(path) -> tuple[dict, dict[str, bytes]]:
    return unpack(atomic.read_bytes(path, ".dsz file", ContainerError), str(path))
