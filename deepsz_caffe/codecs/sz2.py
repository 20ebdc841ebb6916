"""SZ 2.x (the paper's compressor) through ctypes.

The library is the SZ 2.1.12 build shipped in the hdf5plugin wheel, or any
libSZ.so named by DEEPSZ_SZ_LIB (e.g. the paper's SZ 2.0). It is loaded on
first use, initialised once with SZ_Init(NULL) (built-in defaults: best
compression, 65536 quantisation intervals), and every call is serialised by
one process-wide lock because SZ 2 keeps global state and is not
thread-safe. The SZ payload starts with the 4 version bytes of the library
that wrote it: streams from another build are refused, not handed to a
decoder that could exit(0) on them.
"""

import ctypes
import importlib.util
import os
import threading

import numpy as np

from deepsz_caffe.codecs import FramedCodec
from deepsz_caffe.errors import CodecError

_ENV = "DEEPSZ_SZ_LIB"
_INSTALL = f"pip install --no-deps hdf5plugin==7.1.0, or set {_ENV}=/path/to/libSZ.so"
_SZ_FLOAT = 0
_ABS = 0
_LOCK = threading.Lock()
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


def _checked(ptr: int, what: str) -> int:
    if not ptr:  # SZ returns NULL on failure
        raise CodecError(f"sz2: {what} failed")
    return ptr


def _take(ptr: int, nbytes: int, what: str) -> np.ndarray:
    """Copy a buffer SZ malloc'ed into a uint8 array and free it."""
    _checked(ptr, what)
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

    def _encode(self, data: np.ndarray, error_bound: float) -> bytes:
        out_size = ctypes.c_size_t()
        with _LOCK:
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
            ptr = _checked(_lib.SZ_decompress(_SZ_FLOAT, stream, len(payload) - 4, 0, 0, 0, 0, n), "decompress")
        return np.asarray(_Malloced(ptr, 4 * n)).view(np.float32)
