"""The two methods DeepSZ is compared against (its Tables 4-5, Fig. 7), behind one interface.

Each entry of METHODS is a module with encode(weights, **params), decode(enc), to_bytes(enc),
from_bytes(blob) and report(enc, weights, decoded). evaluate_method runs the full round trip
(encode -> bytes -> parse -> decode) with wall times and returns the result schema DeepSZ's
layers use, so experiment scripts loop over methods and layers alike. No Caffe here: the
retraining both papers rely on belongs to a Caffe driver.
"""
import inspect
import math
import time

import numpy as np

from deepsz_caffe.baselines import deep_compression, weightless
from deepsz_caffe.errors import ConfigError

METHODS = {"deep_compression": deep_compression, "weightless": weightless}


def evaluate_method(name: str, weights: np.ndarray, layer: str = "", **params) -> dict:
    """Round-trip one layer through a method -> result dict (JSON-able).

    encode_seconds covers encode + serialisation, decode_seconds parsing + decode: what storing
    and loading a model would cost. Method-specific figures (false-positive rate, bit split,
    sizes) come from the method's report and sit alongside the common keys.
    """
    if name not in METHODS:
        raise ConfigError(f"unknown baseline {name!r}; choose one of {sorted(METHODS)}")
    method = METHODS[name]
    signature = inspect.signature(method.encode)
    accepted = list(signature.parameters)[1:]
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ConfigError(f"{name} takes no parameter(s) {unknown}; it accepts {accepted}")
    weights = np.asarray(weights, dtype=np.float32)
    bound = signature.bind(weights, **params)
    bound.apply_defaults()
    params = {p: bound.arguments[p] for p in accepted}  # record the defaults actually used

    t0 = time.perf_counter()
    blob = method.to_bytes(method.encode(weights, **params))
    t1 = time.perf_counter()
    enc = method.from_bytes(blob)
    decoded = method.decode(enc)
    t2 = time.perf_counter()

    nnz = int(np.count_nonzero(weights))
    result = {
        "method": name, "layer": layer, "shape": list(weights.shape), "nnz": nnz,
        "density": nnz / max(weights.size, 1), "params": params,
        "dense_bytes": 4 * math.prod(weights.shape), "bytes": len(blob),
        "encode_seconds": t1 - t0, "decode_seconds": t2 - t1,
    }
    result.update(method.report(enc, weights, decoded))  # ratio, bits_per_nonzero, max_abs_error, ...
    return result
