"""The codecs of DeepSZ's two arrays, behind one registry: lossy backends for the data array
(`sz2`, `sz3`, `zfp`, `quant`, all framed by `base.FramedCodec`) and lossless ones for the index
array and the other blobs (`lossless`, `index/`), each in a `registry.Registry`. A backend's
third-party package is imported only when it is first used, and a missing one is named with its
pip requirement."""
import math

import numpy as np

from deepsz_caffe.codecs.base import FramedCodec
from deepsz_caffe.errors import BoundViolation, CodecError, ConfigError
from deepsz_caffe.registry import Registry

# Lossy coders of the data array: id, FramedCodec subclass, pip requirement of its package.
LOSSY = Registry("lossy codec", CodecError)
LOSSY.register("sz2", "deepsz_caffe.codecs.sz2:SZ2Codec", "--no-deps hdf5plugin==7.1.0")
LOSSY.register("sz3", "deepsz_caffe.codecs.sz3:SZ3Codec", "pysz")
LOSSY.register("zfp", "deepsz_caffe.codecs.zfp:ZFPCodec", "zfpy")
LOSSY.register("quant", "deepsz_caffe.codecs.quant:QuantCodec", "constriction")
LOSSY.register("zquant", "deepsz_caffe.codecs.zquant:ZeroingQuantCodec", "constriction")
LOSSY_CODECS = LOSSY.ids()


def get_lossy(name: str) -> FramedCodec:
    """Instantiate a backend by name, importing its package only now."""
    return LOSSY.create(name)


def check_error_bound(eb, what: str = "error bound") -> float:
    """The one rule for an absolute error bound: a finite number > 0 (ConfigError otherwise)."""
    try:
        eb = float(eb)
    except (TypeError, ValueError):
        raise ConfigError(f"{what} is not a number: {eb!r}") from None
    if not math.isfinite(eb) or eb <= 0:
        raise ConfigError(f"{what} must be finite and > 0, got {eb}")
    return eb


def compress_bounded(codec: FramedCodec, data: np.ndarray, error_bound: float) -> bytes:
    """Compress and prove the bound: decode again and check max|x - x'| <= eb in float64.

    This is the single place where lossy output is accepted; a stream that
    breaks the bound is never returned.
    """
    eb = check_error_bound(error_bound)
    if not np.all(np.isfinite(data)):
        raise CodecError(f"{codec.name}: data contains NaN or Inf; no error bound can hold")
    blob = codec.compress(data, eb)
    decoded = codec.decompress(blob, data.size, trusted=True)  # our own stream, just made
    if data.size:
        err = float(np.max(np.abs(data.astype(np.float64) - decoded.astype(np.float64))))
        if not err <= eb:
            raise BoundViolation(
                f"{codec.name}: layer of {data.size} values decoded with max error {err:.6g} "
                f"> error bound {eb:.6g}"
            )
    return blob
