"""The frame every lossy backend shares, so bad input is refused in Python before any C code
sees it: the SZ 2 library calls exit(0) on corrupt or truncated input, and pysz decodes many
corrupted streams into garbage without complaint (both measured). Frame layout, little-endian:

    mode: uint8   RAW (0) or the backend's own id (1 sz2, 2 sz3, 3 zfp, 4 quant, 5 zquant)
    n:    uint64  number of float32 values
    crc:  uint32  CRC-32 of the payload
    payload       RAW: n float32 values; otherwise the backend's stream

Arrays of at most RAW_MAX values are stored RAW and exact: SZ 2 mishandles them (wrong values or
a double free), and at 80 bytes or less nothing is gained by compressing them with the others.
A RAW frame of more values is refused: the encoder never writes one.

Streams are untrusted unless the caller just made them (`trusted=True`, as compress_bounded
does): the backend first checks what the stream declares (`_check`: versions, counts, sizes
against n), and a backend over a native library (`isolated`) then decodes in a forked child
(codecs/isolate.py), so that coded bytes no check can vouch for cannot take the process down.
"""
import contextlib
import struct
import zlib
from abc import ABC, abstractmethod

import numpy as np

from deepsz_caffe.codecs.isolate import decode_all as decode_isolated_all
from deepsz_caffe.errors import CodecError

RAW_MAX = 20
_RAW = 0
FRAME_HEADER = struct.Struct("<BQI")


class FramedCodec(ABC):
    """Base of the lossy backends: framing, RAW storage and input checks.

    Subclasses set `name` and `mode_id` and implement `_encode(data, eb)`
    and `_decode(payload, n)`; they only ever see n > RAW_MAX and a payload
    whose length and checksum were verified (and, if untrusted, that `_check` passed).
    """

    name: str
    mode_id: int
    isolated = False  # decode untrusted streams in a child process (native code)

    def compress(self, data: np.ndarray, error_bound: float) -> bytes:
        """Frame one 1-D float32 array; use compress_bounded to get the bound checked."""
        if not isinstance(data, np.ndarray) or data.dtype != np.float32 or data.ndim != 1:
            raise CodecError(f"{self.name}: expected a 1-D float32 array, got {_describe(data)}")
        data = np.ascontiguousarray(data)
        if data.size <= RAW_MAX:
            mode, payload = _RAW, data.tobytes()
        else:
            mode, payload = self.mode_id, self._encode(data, error_bound)
        return FRAME_HEADER.pack(mode, data.size, zlib.crc32(payload)) + payload

    def decompress(self, blob: bytes, n: int, *, trusted: bool = False) -> np.ndarray:
        """Decode n float32 values, refusing any blob that does not check out. `trusted`: the
        caller made the blob itself (no stream checks, no child process)."""
        return decompress_all([(self, blob, n)], trusted=trusted)[0]

    def _frame(self, blob: bytes, n: int) -> tuple[int, bytes]:
        """(mode, payload) of a frame whose mode, count and checksum check out."""
        if len(blob) < FRAME_HEADER.size:
            raise CodecError(f"{self.name}: stream of {len(blob)} bytes is shorter than its header")
        mode, stored_n, crc = FRAME_HEADER.unpack_from(blob)
        payload = bytes(blob[FRAME_HEADER.size:])
        if mode not in (_RAW, self.mode_id):
            raise CodecError(f"{self.name}: stream mode {mode} is not RAW or {self.name}")
        if stored_n != n:
            raise CodecError(f"{self.name}: stream holds {stored_n} values, expected {n}")
        if zlib.crc32(payload) != crc:
            raise CodecError(f"{self.name}: stream checksum mismatch (corrupted or truncated)")
        if mode != _RAW and n <= RAW_MAX:
            raise CodecError(f"{self.name}: {n} values must be stored raw")
        return mode, payload

    def _raw(self, payload: bytes, n: int) -> np.ndarray:
        if n > RAW_MAX:
            raise CodecError(f"{self.name}: {n} values stored raw; only up to {RAW_MAX} ever are")
        if len(payload) != 4 * n:
            raise CodecError(f"{self.name}: raw stream has {len(payload)} bytes, expected {4 * n}")
        return np.frombuffer(payload, dtype=np.float32).copy()

    def _check(self, payload: bytes, n: int) -> None:
        """Refuse an untrusted payload whose own header disagrees with n (backends extend it)."""
        if not payload:
            raise CodecError(f"{self.name}: empty stream for {n} values")

    def _isolated_job(self, payload: bytes, n: int) -> tuple:
        """(decoder, payload) that the child process runs, for an `isolated` backend."""
        return self._decode, payload

    def _fork_lock(self):
        """Held while the child is forked (a library with global state: no thread inside it)."""
        return contextlib.nullcontext()

    def _result(self, out, n: int) -> np.ndarray:
        if not isinstance(out, np.ndarray) or out.dtype != np.float32 or out.shape != (n,):
            raise CodecError(f"{self.name}: decoder returned {_describe(out)}, expected {n} float32")
        return out

    @abstractmethod
    def _encode(self, data: np.ndarray, error_bound: float) -> bytes: ...

    @abstractmethod
    def _decode(self, payload: bytes, n: int) -> np.ndarray: ...

    package = ""  # the distribution behind the backend, when its version is that package's

    def library_version(self) -> str:
        """Version of the library behind this backend (recorded in every .dsz header)."""
        return f"{self.package} {package_version(self.package)}"


def decompress_all(streams: list, *, trusted: bool = False, extra: list = ()) -> list[np.ndarray]:
    """[(codec, blob, n)] -> n float32 values each, every blob checked as `decompress` checks it;
    the untrusted streams of `isolated` backends are decoded together in one child process, with
    the `extra` jobs (codecs.isolate.decode_all's, e.g. lossless.index_job), whose results follow
    the streams' in the list returned."""
    out, queued = [None] * len(streams), []
    for k, (codec, blob, n) in enumerate(streams):
        mode, payload = codec._frame(blob, n)
        if mode == _RAW:
            out[k] = codec._raw(payload, n)
        elif trusted:
            out[k] = codec._decode(payload, n)
        else:
            codec._check(payload, n)
            if codec.isolated:
                queued.append((k, codec, *codec._isolated_job(payload, n), n))
            else:
                out[k] = codec._decode(payload, n)
    values = []
    if queued or extra:
        with contextlib.ExitStack() as locks:
            for lock in {id(c._fork_lock()): c._fork_lock() for _, c, *_ in queued}.values():
                locks.enter_context(lock)
            values = decode_isolated_all([(c.name, fn, p, n) for _, c, fn, p, n in queued] + list(extra))
        for (k, *_), v in zip(queued, values):
            out[k] = v
    return [codec._result(v, n) for (codec, _, n), v in zip(streams, out)] + values[len(queued):]


def _describe(a) -> str:
    return f"{a.dtype} array of shape {a.shape}" if isinstance(a, np.ndarray) else type(a).__name__


def package_version(dist: str) -> str:
    """An installed distribution's version, for codecs whose module does not say."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "unknown"


def zigzag(v: int) -> int:
    """Signed to unsigned, small magnitudes first (0, -1, 1, -2, ... -> 0, 1, 2, 3, ...)."""
    return 2 * v if v >= 0 else -2 * v - 1


def unzigzag(z: int) -> int:
    return z // 2 if z % 2 == 0 else -(z + 1) // 2
