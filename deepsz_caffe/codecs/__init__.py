"""Error-bounded lossy codecs for the data arrays, behind one interface.

Every backend frames its stream the same way so that bad input is refused
in Python before any C code sees it: the SZ 2 library calls exit(0) on
corrupt or truncated input, and pysz decodes many corrupted streams into
garbage without complaint (both measured). Frame layout, little-endian:

    mode: uint8   RAW (0) or the backend's own id (1 sz2, 2 sz3, 3 zfp, 4 quant)
    n:    uint64  number of float32 values
    crc:  uint32  CRC-32 of the payload
    payload       RAW: n float32 values; otherwise the backend's stream

Arrays of at most RAW_MAX values are stored RAW and exact: SZ 2 mishandles
them (wrong values or a double free), and at 80 bytes or less nothing is
gained by compressing them with the others either.
"""

import importlib
import struct
import zlib
from abc import ABC, abstractmethod

import numpy as np

from deepsz_caffe.errors import BoundViolation, CodecError

LOSSY_CODECS = ("sz2", "sz3", "zfp", "quant")

RAW_MAX = 20
_RAW = 0
_HEADER = struct.Struct("<BQI")

# codec name -> (module, class, pip requirement of its third-party package)
_BACKENDS = {
    "sz2": ("deepsz_caffe.codecs.sz2", "SZ2Codec", "--no-deps hdf5plugin==7.1.0"),
    "sz3": ("deepsz_caffe.codecs.sz3", "SZ3Codec", "pysz"),
    "zfp": ("deepsz_caffe.codecs.zfp", "ZFPCodec", "zfpy"),
    "quant": ("deepsz_caffe.codecs.quant", "QuantCodec", "constriction"),
}


class FramedCodec(ABC):
    """Base of the lossy backends: framing, RAW storage and input checks.

    Subclasses set `name` and `mode_id` and implement `_encode(data, eb)`
    and `_decode(payload, n)`; they only ever see n > RAW_MAX and a payload
    whose length and checksum were verified.
    """

    name: str
    mode_id: int

    def compress(self, data: np.ndarray, error_bound: float) -> bytes:
        """Frame one 1-D float32 array; use compress_bounded to get the bound checked."""
        if not isinstance(data, np.ndarray) or data.dtype != np.float32 or data.ndim != 1:
            raise CodecError(f"{self.name}: expected a 1-D float32 array, got {_describe(data)}")
        data = np.ascontiguousarray(data)
        if data.size <= RAW_MAX:
            mode, payload = _RAW, data.tobytes()
        else:
            mode, payload = self.mode_id, self._encode(data, error_bound)
        return _HEADER.pack(mode, data.size, zlib.crc32(payload)) + payload

    def decompress(self, blob: bytes, n: int) -> np.ndarray:
        """Decode n float32 values, refusing any blob that does not check out."""
        if len(blob) < _HEADER.size:
            raise CodecError(f"{self.name}: stream of {len(blob)} bytes is shorter than its header")
        mode, stored_n, crc = _HEADER.unpack_from(blob)
        payload = bytes(blob[_HEADER.size:])
        if mode not in (_RAW, self.mode_id):
            raise CodecError(f"{self.name}: stream mode {mode} is not RAW or {self.name}")
        if stored_n != n:
            raise CodecError(f"{self.name}: stream holds {stored_n} values, expected {n}")
        if zlib.crc32(payload) != crc:
            raise CodecError(f"{self.name}: stream checksum mismatch (corrupted or truncated)")
        if mode == _RAW:
            if len(payload) != 4 * n:
                raise CodecError(f"{self.name}: raw stream has {len(payload)} bytes, expected {4 * n}")
            return np.frombuffer(payload, dtype=np.float32).copy()
        if n <= RAW_MAX:
            raise CodecError(f"{self.name}: {n} values must be stored raw")
        out = self._decode(payload, n)
        if out.dtype != np.float32 or out.shape != (n,):
            raise CodecError(f"{self.name}: decoder returned {_describe(out)}, expected {n} float32")
        return out

    @abstractmethod
    def _encode(self, data: np.ndarray, error_bound: float) -> bytes: ...

    @abstractmethod
    def _decode(self, payload: bytes, n: int) -> np.ndarray: ...


def _describe(a) -> str:
    return f"{a.dtype} array of shape {a.shape}" if isinstance(a, np.ndarray) else type(a).__name__


def import_codec(module: str, name: str, requirement: str):
    """Import a codec's module only when it is used, naming the package to install if missing."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name is not None and e.name.startswith("deepsz_caffe"):
            raise
        raise CodecError(f"codec {name!r} needs a missing package: pip install {requirement}") from e


def get_lossy(name: str) -> FramedCodec:
    """Instantiate a backend by name, importing its package only now."""
    if name not in _BACKENDS:
        raise CodecError(f"unknown lossy codec {name!r}; valid: {', '.join(LOSSY_CODECS)}")
    module, cls, requirement = _BACKENDS[name]
    return getattr(import_codec(module, name, requirement), cls)()


def zigzag(v: int) -> int:
    """Signed to unsigned, small magnitudes first (0, -1, 1, -2, ... -> 0, 1, 2, 3, ...)."""
    return 2 * v if v >= 0 else -2 * v - 1


def unzigzag(z: int) -> int:
    return z // 2 if z % 2 == 0 else -(z + 1) // 2


def compress_bounded(codec: FramedCodec, data: np.ndarray, error_bound: float) -> bytes:
    """Compress and prove the bound: decode again and check max|x - x'| <= eb in float64.

    This is the single place where lossy output is accepted; a stream that
    breaks the bound is never returned.
    """
    eb = float(error_bound)
    if not np.isfinite(eb) or eb <= 0:
        raise CodecError(f"error bound must be finite and > 0, got {error_bound!r}")
    if not np.all(np.isfinite(data)):
        raise CodecError(f"{codec.name}: data contains NaN or Inf; no error bound can hold")
    blob = codec.compress(data, eb)
    decoded = codec.decompress(blob, data.size)
    if data.size:
        err = float(np.max(np.abs(data.astype(np.float64) - decoded.astype(np.float64))))
        if not err <= eb:
            raise BoundViolation(
                f"{codec.name}: layer of {data.size} values decoded with max error {err:.6g} "
                f"> error bound {eb:.6g}"
            )
    return blob
