"""SZ3 through its pysz binding, absolute-error mode on 1-D float32.

pysz raises on most bad streams but silently decodes many corrupted ones into garbage (measured),
so it gets the common framing and CRC check like the other backends; untrusted streams are
checked against n and decoded in a child process (codecs/isolate.py). The default SZ3 algorithm
is kept.

Stream (pysz 1.1, SZ3 3.x), little endian: magic (4 bytes), data version (4), payload size P
(uint64), payload (P bytes: flat size (uint64), then a zstd frame of the flat bytes), then the
Config: its own length (1 byte), the number of dimensions, a bit width w, then the dimension and
the value count in ceil(w / 8) bytes each, and the rest of the configuration.
"""
import functools
import struct

import numpy as np
import zstandard
from pysz import sz, szConfig, szErrorBoundMode

from deepsz_caffe.codecs.base import FramedCodec, package_version
from deepsz_caffe.errors import CodecError

_HEAD = struct.Struct("<4s4sQQ")  # magic, version, payload size, flat size
_FLAT_PER_VALUE = 16  # flat bytes per value, with margin (4 + a few measured)
_FLAT_BASE = 1 << 20
# pysz raises IndexError (its bounds checks), ValueError and RuntimeError on bad streams
_ERRORS = (ValueError, RuntimeError, IndexError, OverflowError, MemoryError)


class SZ3Codec(FramedCodec):
    name, package = "sz3", "pysz"
    mode_id = 2
    isolated = True

    def _encode(self, data: np.ndarray, error_bound: float) -> bytes:
        config = szConfig(data.shape)
        config.errorBoundMode = szErrorBoundMode.ABS
        config.absErrorBound = error_bound
        compressed, _ratio = sz.compress(data, config)
        return compressed.tobytes()

    def _decode(self, payload: bytes, n: int) -> np.ndarray:
        try:
            out, _config = sz.decompress(np.frombuffer(payload, dtype=np.uint8), np.float32, (n,))
        except _ERRORS as e:
            raise CodecError(f"sz3: cannot decode stream: {e}") from e
        return out

    def _check(self, payload: bytes, n: int) -> None:
        super()._check(payload, n)
        if len(payload) < _HEAD.size:
            raise CodecError(f"sz3: stream of {len(payload)} bytes is shorter than its header")
        magic, version, size, flat = _HEAD.unpack_from(payload)
        if (magic, version) != _written_by():
            raise CodecError(f"sz3: stream magic/version {magic.hex()}/{version.hex()} are not "
                             f"those pysz {package_version('pysz')} writes (corrupt or forged)")
        end = 16 + size
        if not 8 <= size <= len(payload) - 16 or flat > _FLAT_BASE + _FLAT_PER_VALUE * n:
            raise CodecError(f"sz3: stream declares {size} payload and {flat} flat bytes, "
                             f"impossible in {len(payload)} bytes for {n} values")
        try:
            declared = zstandard.frame_content_size(payload[24:end])
        except zstandard.ZstdError as e:
            raise CodecError(f"sz3: payload is not a zstd frame ({e})") from None
        if declared != flat:
            raise CodecError(f"sz3: zstd frame declares {declared} bytes, the stream {flat}")
        _check_config(payload[end:], n)


def _check_config(config: bytes, n: int) -> None:
    """The Config after the payload: its length, one dimension, and n values in it."""
    if len(config) < 5 or config[0] != len(config) or config[1] != 1 or not 1 <= config[2] <= 64:
        raise CodecError("sz3: stream configuration is missing or malformed (corrupt or forged)")
    k = (config[2] + 7) // 8
    dim, count = (int.from_bytes(config[3 + i * k:3 + (i + 1) * k], "little") for i in range(2))
    if dim != n or count != n:
        raise CodecError(f"sz3: stream holds {count} values in {dim}, expected {n}")


@functools.cache
def _written_by() -> tuple[bytes, bytes]:
    """(magic, data version) that the installed pysz writes, read off a stream made here."""
    config = szConfig((32,))
    config.errorBoundMode = szErrorBoundMode.ABS
    config.absErrorBound = 1.0
    compressed, _ratio = sz.compress(np.zeros(32, np.float32), config)
    magic, version, _size, _flat = _HEAD.unpack_from(compressed.tobytes())
    return magic, version
