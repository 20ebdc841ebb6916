"""The `.dsz` model file: a versioned, checksummed bag of named byte sections plus a JSON header.

Layout (little endian):
    magic b"DSZ\\x89" | u16 format version | u16 flags (0; none defined yet) | u32 header length
    | u32 header CRC32 | header (UTF-8 JSON) | section payloads, in the order the header lists them

The header's "sections" list gives each section's name, length and CRC32. Reading checks the
magic, version, header (strict JSON in UTF-8 without a BOM: an object, no duplicate keys, no
NaN/Infinity, bounded size and nesting), the section table (types, unique names), that the file
is exactly as long as the table says, what the caller's `check` says of the header and table
(format/validate.check_table: every section referred to and bounded by what it decodes to), and
only then reads the sections, one by one, and checks every CRC: a refused file costs O(header)
memory whatever its size. The file is read once: the bytes hashed for `expect_sha256` are the
bytes parsed, and a file changed while being read is refused. A CRC catches accidents, not
forgeries: what the header declares is checked by format/validate.py.
"""
import hashlib
import json
import os
import re
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

from .. import atomic
from ..errors import ContainerError

MAGIC = b"DSZ\x89"
FORMAT_VERSION = 1
MAX_HEADER_BYTES = 8 << 20  # a header lists layers and blobs: a few hundred bytes each
_PREAMBLE = struct.Struct("<4sHHII")
_TABLE_KEYS = {"name", "length", "crc32"}
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class DszFile:
    """A checked .dsz: its header (without the section table), sections and size; `sha256` of
    the file's bytes if read_file was asked for it (else None)."""
    header: dict
    sections: dict[str, bytes]
    sha256: str | None
    size: int


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
    head_len, head_crc = _preamble(bytes(buf[:_PREAMBLE.size]), len(buf), source)
    end = _PREAMBLE.size + head_len
    header, spans = _header(bytes(buf[_PREAMBLE.size:end]), head_crc, source)
    _check_length(end, spans, len(buf), source)
    return header, _sections(buf[end:], spans, source)


def _preamble(pre: bytes, size: int, source: str) -> tuple[int, int]:
    """(header length, header CRC) from the first bytes of a file of `size` bytes."""
    if size < _PREAMBLE.size:
        raise ContainerError(f"{source}: not a .dsz file (only {size} bytes)")
    magic, version, flags, head_len, head_crc = _PREAMBLE.unpack_from(pre)
    if magic != MAGIC:
        raise ContainerError(f"{source}: not a .dsz file (bad magic {bytes(magic)!r})")
    if version != FORMAT_VERSION:
        raise ContainerError(f"{source}: .dsz format version {version}; this build reads version "
                             f"{FORMAT_VERSION} (upgrade deepsz-caffe)")
    if flags:
        raise ContainerError(f"{source}: unknown flags {flags:#x} (written by a newer deepsz-caffe?)")
    if _PREAMBLE.size + head_len > size:
        raise ContainerError(f"{source}: truncated (header needs {_PREAMBLE.size + head_len} bytes, "
                             f"file has {size})")
    if head_len > MAX_HEADER_BYTES:
        raise ContainerError(f"{source}: header of {head_len} bytes, over the {MAX_HEADER_BYTES}-byte "
                             "limit (corrupt or forged)")
    return head_len, head_crc


def _header(head: bytes, head_crc: int, source: str) -> tuple[dict, list[tuple[str, int, int]]]:
    """(header without its section table, [(name, length, crc32)]), both checked."""
    if zlib.crc32(head) != head_crc:
        raise ContainerError(f"{source}: header is corrupted (CRC mismatch)")
    header = _loads(head, source)
    if not isinstance(header, dict):
        raise ContainerError(f"{source}: header is a JSON {type(header).__name__}, not an object")
    table = header.pop("sections", None)
    if not isinstance(table, list):
        raise ContainerError(f"{source}: header has no section table")
    spans = []
    for entry in table:
        if not isinstance(entry, dict) or set(entry) != _TABLE_KEYS or not isinstance(entry["name"], str) \
                or not all(_is_int(entry[k]) and entry[k] >= 0 for k in ("length", "crc32")) \
                or entry["crc32"] >> 32:
            raise ContainerError(f"{source}: malformed section table entry {_clip(entry)}")
        spans.append((entry["name"], entry["length"], entry["crc32"]))
    names = [name for name, _, _ in spans]
    if len(set(names)) != len(names):
        raise ContainerError(f"{source}: section table names a section twice")
    return header, spans


def _loads(head: bytes, source: str):
    """Strict JSON in UTF-8 (json.loads would also take UTF-16/32 and a BOM): duplicate keys and
    NaN/Infinity are errors, as is nesting Python cannot hold."""
    def pairs(items):
        keys = [k for k, _ in items]
        if len(set(keys)) != len(keys):
            raise ValueError(f"duplicate key {next(k for k in keys if keys.count(k) > 1)!r}")
        return dict(items)

    def constant(name):
        raise ValueError(f"{name} is not a JSON number")

    if head.startswith(b"\xef\xbb\xbf"):
        raise ContainerError(f"{source}: header starts with a byte-order mark (the header is UTF-8 "
                             "JSON without one; corrupt or forged)")
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ContainerError(f"{source}: header is not UTF-8 ({_clip(e)})") from None
    try:
        return json.loads(text, object_pairs_hook=pairs, parse_constant=constant)
    except RecursionError:
        raise ContainerError(f"{source}: header is nested too deeply (corrupt or forged)") from None
    except ValueError as e:  # JSONDecodeError and UnicodeDecodeError among them
        raise ContainerError(f"{source}: header is not valid JSON ({_clip(e)})") from None


def _check_length(end: int, spans, size: int, source: str) -> None:
    expected = end + sum(length for _, length, _ in spans)
    if expected != size:
        what = "truncated" if expected > size else "has trailing bytes"
        raise ContainerError(f"{source}: {what} (expected {expected} bytes, found {size})")


def _sections(body, spans, source: str) -> dict[str, bytes]:
    sections, pos = {}, 0
    for name, length, crc in spans:
        data = bytes(body[pos:pos + length])
        if zlib.crc32(data) != crc:
            raise ContainerError(f"{source}: section '{name}' is corrupted (CRC mismatch)")
        sections[name] = data
        pos += length
    return sections


def _is_int(v) -> bool:
    return type(v) is int  # not bool, not a float that happens to be whole


def _clip(obj, width: int = 80) -> str:
    text = repr(obj) if not isinstance(obj, Exception) else str(obj)
    return text if len(text) <= width else text[:width - 3] + "..."


def check_sha256(text) -> str:
    """A sha256 as 64 lowercase hex digits, or ContainerError."""
    digest = str(text).strip().lower()
    if not _SHA256.fullmatch(digest):
        raise ContainerError(f"--expect-sha256 wants 64 hex digits, got {_clip(text, 40)}")
    return digest


def write(path, header: dict, sections: dict[str, bytes]) -> Path:
    """Write a `.dsz` file atomically."""
    return atomic.write_bytes(path, pack(header, sections))


def read(path, expect_sha256: str | None = None, check=None) -> tuple[dict, dict[str, bytes]]:
    f = read_file(path, expect_sha256, check=check)
    return f.header, f.sections


def read_file(path, expect_sha256: str | None = None, *, sha256: bool = False, check=None) -> DszFile:
    """Read and check a .dsz, once. `check(header, {section: length})`, called before any
    section is read, may refuse the file (ContainerError). With `expect_sha256`, the sha256 of
    the bytes read (those returned) must match, and a file that does not is refused as such
    even if it fails another check first; `sha256`: report it (DszFile.sha256). A file that
    changes while it is read is refused."""
    source = str(path)
    expect = check_sha256(expect_sha256) if expect_sha256 is not None else None
    with atomic.open_regular(path, ".dsz file", ContainerError) as (f, size):
        before, sha = _identity(f), hashlib.sha256()
        try:
            header, spans, body = _read_checked(f, size, sha, check, source)
        except ContainerError:
            if expect is not None:  # hashed on without keeping it: O(1) memory
                _hash_rest(f, size, sha)
                _expect(sha.hexdigest(), expect, source)
            raise
        if f.read(1) or _identity(f) != before:
            raise ContainerError(f"{source}: the file changed while it was being read")
    digest = sha.hexdigest()
    if expect is not None:
        _expect(digest, expect, source)
    for name, _, crc in spans:
        if zlib.crc32(body[name]) != crc:
            raise ContainerError(f"{source}: section '{name}' is corrupted (CRC mismatch)")
    return DszFile(header, body, digest if sha256 else None, size)


def _read_checked(f, size: int, sha, check, source: str):
    """(header, spans, {name: bytes}) read from the start of `f`, every byte fed to `sha`;
    `check(header, lengths)` runs before any section is read."""
    pre = atomic.read_exactly(f, _PREAMBLE.size)
    sha.update(pre)
    head_len, head_crc = _preamble(pre, size if len(pre) == _PREAMBLE.size else len(pre), source)
    head = _read(f, head_len, source)
    sha.update(head)
    header, spans = _header(head, head_crc, source)
    _check_length(_PREAMBLE.size + head_len, spans, size, source)
    if check is not None:
        check(dict(header), {name: length for name, length, _ in spans})
    body = {}
    for name, length, _ in spans:
        body[name] = _read(f, length, source)
        sha.update(body[name])
    return header, spans, body


def _hash_rest(f, size: int, sha) -> None:
    left = size - f.tell()
    while left > 0 and (chunk := f.read(min(left, 1 << 20))):
        sha.update(chunk)
        left -= len(chunk)


def _expect(digest: str, expect: str, source: str) -> None:
    if digest != expect:
        raise ContainerError(f"{source}: sha256 is {digest}, not the expected {expect}")


def _read(f, length: int, source: str) -> bytes:
    data = atomic.read_exactly(f, length)
    if len(data) != length:
        raise ContainerError(f"{source}: the file shrank while it was being read")
    return data


def _identity(f) -> tuple:
    info = os.fstat(f.fileno())
    return info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns
