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
import os
import threading

import numpy as np

from deepsz_caffe.codecs.base import FramedCodec
from deepsz_caffe.errors import CodecError

_ENV = "DEEPSZ_SZ_LIB"
_INSTALL = f"pip install --no-deps hdf5plugin==7.1.0, or set {_ENV}=/path/to/libSZ.so"
_SZ_FLOAT = 0
_ABS = 0
_LOCK = threading.Lock()
_M_PERTURB = -6  # mallopt parameter (glibc malloc.h)
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
        if len(payload) <= len(_version):
            raise CodecError(f"sz2: stream of {len(payload)} bytes is too short")
        if payload[:4] != _version:
            raise CodecError(
                f"sz2: stream written by SZ {_dotted(payload[:4])}, loaded library "
                f"is {_dotted(_version)}; point {_ENV} at the writing library"
            )
        stream = ctypes.create_string_buffer(payload[4:], len(payload) - 4)  # SZ takes a non-const pointer
        with _LOCK:
            ptr = _lib.SZ_decompress(_SZ_FLOAT, stream, len(payload) - 4, 0, 0, 0, 0, n)
        if not ptr:
            raise CodecError("sz2: decompress failed")
        return np.asarray(_Malloced(ptr, 4 * n)).view(np.float32)
