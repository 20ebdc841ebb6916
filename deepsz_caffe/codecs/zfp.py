"""ZFP through zfpy, fixed-accuracy mode on 1-D float32.

ZFP rounds the tolerance down to a power of two t and keeps errors below
about t, but not strictly: on float32 arrays whose values are all smaller
than t, errors up to 1.43 t were measured (eb = 1e-2 gave 1.12 eb). Passing
tolerance = eb / 2 makes t <= eb / 2, so the worst measured error is 0.72 eb;
it costs ratio (4.30 -> 3.79 at eb = 1e-2 on pruned-like data).
compress_bounded still checks every result.

Untrusted streams are checked against n before zfpy sees them (its header, written LSB first
in 64-bit words: magic "zfp" and codec version in bits 0-31, scalar type 32-33, dimensions - 1
34-35, nx - 1 36-83, mode 84-95) and decoded in a child process: ZFP reads its bit stream without
bounds checks. There the stream is followed by zeros, as many as ZFP can read past a truncated
stream (one bit per remaining block of 4 values, at most ZFP_MAX_BITS in the block it stopped
in), so it reads nothing but the stream and those zeros.
"""
import functools

import numpy as np
import zfpy

from deepsz_caffe.codecs.base import FramedCodec
from deepsz_caffe.errors import CodecError

_TOLERANCE_FACTOR = 0.5
_HEADER_BYTES = 12  # 96 bits: magic, version, type, dimensions, nx - 1, short mode
_MAX_BLOCK_BYTES = (16658 + 7) // 8 + 16  # ZFP_MAX_BITS, and a 64-bit word either side


class ZFPCodec(FramedCodec):
    name, package = "zfp", "zfpy"
    mode_id = 3
    isolated = True

    def _encode(self, data: np.ndarray, error_bound: float) -> bytes:
        return zfpy.compress_numpy(data, tolerance=error_bound * _TOLERANCE_FACTOR)

    def _decode(self, payload: bytes, n: int) -> np.ndarray:
        try:
            return zfpy.decompress_numpy(payload)
        except (ValueError, IndexError, RuntimeError, MemoryError) as e:
            raise CodecError(f"zfp: cannot decode stream: {e}") from e

    def _isolated_job(self, payload: bytes, n: int) -> tuple:
        return self._decode, payload + bytes((n + 3) // 4 // 8 + 1 + 2 * _MAX_BLOCK_BYTES)

    def _check(self, payload: bytes, n: int) -> None:
        super()._check(payload, n)
        if len(payload) < _HEADER_BYTES:
            raise CodecError(f"zfp: stream of {len(payload)} bytes is shorter than its header")
        bits = int.from_bytes(payload[:_HEADER_BYTES], "little")
        magic, kind, nx = bits & 0xFFFFFFFF, bits >> 32 & 0xF, (bits >> 36 & (1 << 48) - 1) + 1
        if magic != _written_by() or kind != _FLOAT_1D:
            raise CodecError("zfp: stream header is not that of zfpy's 1-D float32 streams "
                             "(corrupt or forged)")
        if nx != n:
            raise CodecError(f"zfp: stream holds {nx} values, expected {n}")


_FLOAT_1D = 2  # scalar type float (3) - 1 in bits 32-33, one dimension (0) in 34-35


@functools.cache
def _written_by() -> int:
    """Bits 0-31 of the streams the installed zfpy writes: "zfp" and its codec version."""
    stream = zfpy.compress_numpy(np.zeros(8, np.float32), tolerance=1.0)
    return int.from_bytes(stream[:4], "little")
