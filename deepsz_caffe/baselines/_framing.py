"""The byte framing the baselines' files share: magic + body + CRC32, and a bounds-checked
reader, so truncation and bit flips are caught before parsing."""
import math
import struct
import zlib

import numpy as np

from deepsz_caffe.errors import CodecError

MAX_ELEMENTS = 1 << 32     # refuse headers asking for absurd dense buffers
_CRC = struct.Struct("<I")
CRC_BYTES = _CRC.size


def seal(magic: bytes, body: bytes) -> bytes:
    """magic + body + CRC32 of both: truncation and bit flips are caught before parsing."""
    blob = magic + body
    return blob + _CRC.pack(zlib.crc32(blob))


class Reader:
    """Bounds-checked reader of a sealed blob; every shortfall is a CodecError."""

    def __init__(self, blob: bytes, magic: bytes, what: str):
        blob = bytes(blob)
        self.what = what
        if len(blob) < len(magic) + _CRC.size or blob[:len(magic)] != magic:
            raise CodecError(f"{what}: not a {magic.decode()} stream (bad magic or too short)")
        (crc,) = _CRC.unpack(blob[-_CRC.size:])
        if zlib.crc32(blob[:-_CRC.size]) != crc:
            raise CodecError(f"{what}: checksum mismatch (corrupted or truncated)")
        self.buf = blob[:-_CRC.size]
        self.at = len(magic)

    def take(self, n: int) -> bytes:
        if n < 0 or self.at + n > len(self.buf):
            raise CodecError(f"{self.what}: truncated (wanted {n} bytes at offset {self.at})")
        self.at += n
        return self.buf[self.at - n:self.at]

    def unpack(self, fmt: str):
        s = struct.Struct("<" + fmt)
        return s.unpack(self.take(s.size))

    def array(self, dtype, count: int) -> np.ndarray:
        dt = np.dtype(dtype)
        return np.frombuffer(self.take(dt.itemsize * count), dtype=dt).copy()

    def shape(self, ndim: int) -> tuple[int, ...]:
        shape = tuple(int(d) for d in self.unpack(f"{ndim}Q"))
        if math.prod(shape) > MAX_ELEMENTS:
            raise CodecError(f"{self.what}: shape {shape} is implausibly large")
        return shape

    def done(self) -> None:
        if self.at != len(self.buf):
            raise CodecError(f"{self.what}: {len(self.buf) - self.at} unexpected trailing bytes")


def shape_header(shape) -> bytes:
    return struct.pack(f"<B{len(shape)}Q", len(shape), *shape)


