"""SZ 2.x (the paper's compressor) through ctypes.

The library is the SZ 2.1.12 build shipped in the hdf5plugin wheel, or any
libSZ.so named by DEEPSZ_SZ_LIB (e.g. the paper's SZ 2.0). It is loaded on
first use, initialised once with SZ_Init(NULL) (built-in defaults: best
compression, 65536 quantisation intervals), and every call is serialised by
one process-wide lock because SZ 2 keeps global state and is not
thread-safe. The SZ payload starts with the 4 version bytes of the library
that wrote it: streams from another build are refused, not handed to a
decoder that could exit(0) on them.

SZ 2 compresses a buffer with bytes it never initialised (valgrind: convertTDPStoFlatBytes_float
mallocs it, zstd reads it), so its output varied from process to process, by up to a few bytes
in length. While it runs we set glibc's M_PERTURB so malloc hands out memory filled with one
fixed byte: streams, and the sizes Algorithm 1 records, are the same in any process.
"""

import contextlib
import ctypes
import importlib.util
import math
import os
import struct
import threading

import numpy as np
import zstandard

from deepsz_caffe.codecs.base import FramedCodec
from deepsz_caffe.errors import CodecError

_ENV = "DEEPSZ_SZ_LIB"
_INSTALL = f"pip install --no-deps hdf5plugin==7.1.0, or set {_ENV}=/path/to/libSZ.so"
_SZ_FLOAT = 0
_ABS = 0
_LOCK = threading.Lock()
_M_PERTURB = -6  # mallopt parameter (glibc malloc.h)
# An SZ 2.1 stream (after our 4 version bytes) is a zstd frame of "flat" bytes, or the flat bytes
# themselves when they are 40 or 44 long (constant data; SZ decides by the length alone). Flat,
# big endian: version 0-2, flags 3 (ABS mode with 64-bit sizes: 0x40 predicted, 0x41 constant,
# 0x50 stored losslessly: n float32 follow), parameters 4-31, n 32-39; if predicted: max
# intervals, intervals, median, reqLength, precision, bytes of the type array (its first 4: the
# Huffman tree's node count), count and bytes of the exact values, then 2 bits per exact value
# and the residual bits.
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_UNCOMPRESSED = (40, 44)
_N_END = 40
_FLAT = struct.Struct(">40xIIfBdQQQ")
_CONSTANT, _LOSSLESS, _PREDICTED = 0x41, 0x50, 0x40
_FLAGS = (_CONSTANT, _LOSSLESS, _PREDICTED)
_INTERVALS_MAX = 1 << 20
_FLAT_PER_VALUE = 16   # flat bytes per value, with margin: at most 4 + 1/4 measured
_TREE_MAX = 4 << 20    # bytes of a Huffman tree of up to _INTERVALS_MAX states, with margin
_lib = None
_version = b""


def _library_path() -> str:
    path = os.environ.get(_ENV)
    if path:
        return path
    spec = importlib.util.find_spec("hdf5plugin")  # located, not imported: it needs h5py
    if spec is None or not spec.submodule_search_locations:
        raise CodecError(f"SZ 2 library not found: {_INSTALL}")
    return os.path.join(spec.submodule_search_locations[0], "plugins", "libh5sz.so")


def _load() -> None:
    """Open and initialise the library once; caller holds _LOCK."""
    global _lib, _version
    if _lib is not None:
        return
    path = _library_path()
    try:
        lib = ctypes.CDLL(path)
    except OSError as e:
        raise CodecError(f"cannot load SZ 2 library {path}: {e}; {_INSTALL}") from e
    size_t = ctypes.c_size_t
    lib.SZ_Init.argtypes = [ctypes.c_char_p]
    lib.SZ_Init.restype = ctypes.c_int
    lib.SZ_compress_args.argtypes = [
        ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(size_t), ctypes.c_int,
        ctypes.c_double, ctypes.c_double, ctypes.c_double,
    ] + [size_t] * 5
    lib.SZ_compress_args.restype = ctypes.c_void_p
    lib.SZ_decompress.argtypes = [ctypes.c_int, ctypes.c_void_p, size_t] + [size_t] * 5
    lib.SZ_decompress.restype = ctypes.c_void_p
    with _perturbed_malloc():
        if lib.SZ_Init(None) != 0:
            raise CodecError(f"SZ_Init failed in {path}")
    try:
        _version = bytes(int(v) for v in (ctypes.c_int * 4).in_dll(lib, "versionNumber"))
    except ValueError:  # builds without the export still work; their streams carry 0.0.0.0
        _version = bytes(4)
    _lib = lib


_libc = ctypes.CDLL(None)  # the process's libc: SZ's buffers come from its malloc
_libc.free.argtypes = [ctypes.c_void_p]
_libc.free.restype = None


_libc.malloc.argtypes = [ctypes.c_size_t]
_libc.malloc.restype = ctypes.c_void_p
# glibc's per-thread cache hands out small chunks (<= 1032 bytes, 7 per size) without applying
# M_PERTURB; holding them during the SZ call routes SZ's small mallocs through the perturbed path.
_TCACHE_SIZES = range(8, 1033, 16)
_TCACHE_DEPTH = 7


@contextlib.contextmanager
def _perturbed_malloc():
    """malloc hands SZ memory filled with one fixed byte meanwhile (see the module docstring)."""
    _libc.mallopt(_M_PERTURB, 0x5A)
    held = [_libc.malloc(size) for size in _TCACHE_SIZES for _ in range(_TCACHE_DEPTH)]
    try:
        yield
    finally:
        for ptr in held:
            _libc.free(ptr)
        _libc.mallopt(_M_PERTURB, 0)


def _take(ptr: int, nbytes: int, what: str) -> np.ndarray:
    """Copy a buffer SZ malloc'ed into a uint8 array and free it (SZ returns NULL on failure)."""
    if not ptr:
        raise CodecError(f"sz2: {what} failed")
    out = np.empty(nbytes, dtype=np.uint8)
    ctypes.memmove(out.ctypes.data, ptr, nbytes)
    _libc.free(ptr)
    return out


class _Malloced:
    """Lends a buffer SZ malloc'ed to numpy, freeing it with the last array that views it.

    Decoded layers are tens of MB: handing SZ's buffer over instead of copying it saves a
    fresh allocation, its page faults and a full pass (~2 ms of ~60 ms SZ time on AlexNet's
    fc layers).
    """

    def __init__(self, ptr: int, nbytes: int) -> None:
        self._ptr = ptr
        self.__array_interface__ = {"data": (ptr, False), "shape": (nbytes,), "typestr": "|u1", "version": 3}

    def __del__(self, _free=_libc.free) -> None:  # bound now: module globals may be gone at exit
        _free(self._ptr)


def _dotted(version: bytes) -> str:
    return ".".join(map(str, version))


def sz2_version() -> str:
    """Version of the loaded SZ 2 library, e.g. "2.1.12.4" ("0.0.0.0" if it exports none)."""
    with _LOCK:
        _load()
        return _dotted(_version)


class SZ2Codec(FramedCodec):
    """SZ 2 in absolute-error mode on 1-D float32."""

    name = "sz2"
    mode_id = 1
    isolated = True

    def __init__(self) -> None:
        with _LOCK:
            _load()  # fail at selection time, not in the middle of a network

    def library_version(self) -> str:
        return f"SZ {sz2_version()}"

    def _encode(self, data: np.ndarray, error_bound: float) -> bytes:
        out_size = ctypes.c_size_t()
        with _LOCK:
            with _perturbed_malloc():
                ptr = _lib.SZ_compress_args(
                    _SZ_FLOAT, data.ctypes.data, ctypes.byref(out_size), _ABS,
                    error_bound, 0.0, 0.0, 0, 0, 0, 0, data.size,
                )
            return _version + _take(ptr, out_size.value, "compress").tobytes()

    def _decode(self, payload: bytes, n: int) -> np.ndarray:
        with _LOCK:
            return _native_decode(payload, n)

    def _isolated_job(self, payload: bytes, n: int) -> tuple:
        return _native_decode, payload  # the child has SZ to itself: no lock there

    def _fork_lock(self):
        return _LOCK  # no thread is inside SZ while we fork: the child gets its state whole

    def _check(self, payload: bytes, n: int) -> None:
        super()._check(payload, n)
        _check_prefix(payload)
        stream = payload[4:]
        if len(stream) in _UNCOMPRESSED:  # SZ reads streams of these sizes as flat bytes
            head, flat_size = stream, len(stream)
        elif stream[:4] == _ZSTD_MAGIC:
            head, flat_size = _flat_head(stream, n)
        else:
            raise CodecError("sz2: stream is not zstd-compressed (SZ 2 writes raw bytes for constant "
                             "data only)")
        if _version[:2] == b"\x02\x01":  # the layout below is SZ 2.1's
            _check_flat(head, flat_size, n)
        elif head[:3] != _version[:3]:
            raise CodecError(f"sz2: stream written by SZ {_dotted(head[:3])}, not {_dotted(_version)}")


def _check_prefix(payload: bytes) -> None:
    if len(payload) <= len(_version):
        raise CodecError(f"sz2: stream of {len(payload)} bytes is too short")
    if payload[:4] != _version:
        raise CodecError(
            f"sz2: stream written by SZ {_dotted(payload[:4])}, loaded library "
            f"is {_dotted(_version)}; point {_ENV} at the writing library"
        )


def _native_decode(payload: bytes, n: int) -> np.ndarray:
    """SZ_decompress on a checked prefix; the caller holds _LOCK, or is a child with SZ to itself."""
    _check_prefix(payload)
    stream = ctypes.create_string_buffer(payload[4:], len(payload) - 4)  # SZ takes a non-const pointer
    ptr = _lib.SZ_decompress(_SZ_FLOAT, stream, len(payload) - 4, 0, 0, 0, 0, n)
    if not ptr:
        raise CodecError("sz2: decompress failed")
    return np.asarray(_Malloced(ptr, 4 * n)).view(np.float32)


def _flat_head(stream: bytes, n: int) -> tuple[bytes, int]:
    """(first bytes, declared size) of the flat bytes a zstd-compressed SZ stream holds."""
    try:
        size = zstandard.frame_content_size(stream)
        head = zstandard.ZstdDecompressor().stream_reader(stream).read(_FLAT.size + 4)
    except zstandard.ZstdError as e:
        raise CodecError(f"sz2: stream is not a valid zstd frame ({e})") from None
    if not 0 <= size <= _FLAT.size + _FLAT_PER_VALUE * n + _TREE_MAX:
        raise CodecError(f"sz2: stream declares {size} bytes, impossible for {n} values")
    return head, size


def _check_flat(head: bytes, size: int, n: int) -> None:
    """What SZ 2.1 declares in its flat bytes, against n and the flat size (see _FLAT)."""
    if len(head) < _N_END:
        raise CodecError(f"sz2: stream of {size} bytes is truncated")
    if head[:3] != _version[:3]:
        raise CodecError(f"sz2: stream written by SZ {_dotted(head[:3])}, not {_dotted(_version)}")
    flags, declared = head[3], int.from_bytes(head[_N_END - 8:_N_END], "big")
    if declared != n:
        raise CodecError(f"sz2: stream holds {declared} values, expected {n}")
    if flags not in _FLAGS:
        raise CodecError(f"sz2: stream flags {flags:#04x} are not those of ABS mode (corrupt or forged)")
    expected = {_CONSTANT: 44, _LOSSLESS: _N_END + 4 * n}.get(flags)
    if expected is not None:
        if size != expected:
            raise CodecError(f"sz2: stream of {size} bytes, expected {expected} for flags {flags:#04x}")
        return
    if len(head) < _FLAT.size + 4:
        raise CodecError(f"sz2: stream of {size} bytes is truncated")
    max_intervals, intervals, median, _req, precision, types, exact, exact_bytes = \
        _FLAT.unpack_from(head)
    nodes = int.from_bytes(head[_FLAT.size:_FLAT.size + 4], "big")
    fixed = _FLAT.size + types + (2 * exact + 7) // 8 + exact_bytes
    if not (1 <= intervals <= max_intervals <= _INTERVALS_MAX and math.isfinite(median)
            and math.isfinite(precision) and precision > 0 and exact <= n and exact_bytes <= 4 * exact
            and 4 <= types and fixed <= size and 1 <= nodes <= 4 * intervals):
        raise CodecError("sz2: stream header is inconsistent (corrupt or forged)")
