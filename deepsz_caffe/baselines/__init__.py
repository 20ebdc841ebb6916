"""The methods DeepSZ is compared against, behind the plug-in interface of `method.py`.

`method.py`: the interface (Method, LayerwiseMethod, load_method) a user's method implements,
and the registry of built-in methods (METHODS: one id each);
`builtin.py`: DeepSZ, Deep Compression, Weightless and NNCodec through it; `compare.py`: the
harness (`deepsz compare`); `report.py`: its tables and figures. The paper's two baselines are
modules (encode(weights, **params), decode, to_bytes, from_bytes, report) behind builtin's
classes (LAYER_METHODS);
evaluate_method runs one layer through the interface's per-layer round trip with wall times and
returns the result schema DeepSZ's layers use. Caffe is loaded only by `compare.py`, for the
TEST phases it measures every method with; nothing here retrains (both papers' fine-tuning is not
reproduced).
"""
import inspect
import math

import numpy as np

from deepsz_caffe.baselines.method import METHODS, method_id
from deepsz_caffe.errors import ConfigError
from deepsz_caffe.timing import best

LAYER_METHODS = ("deep-compression", "weightless")  # the paper's baselines: evaluate_method's


def layer_module(name: str):
    """The module (encode, decode, to_bytes, from_bytes, report) behind a paper baseline."""
    if method_id(name) not in LAYER_METHODS:
        raise ConfigError(f"unknown baseline {name!r}; choose one of {list(LAYER_METHODS)}")
    return METHODS.load(method_id(name)).module


def evaluate_method(name: str, weights: np.ndarray, layer: str = "", **params) -> dict:
    """Round-trip one layer through a method -> result dict (JSON-able).

    encode_seconds covers encode + serialisation, decode_seconds parsing + decode (the interface's
    encode_layer and decode_layer, i.e. what `deepsz compare` codes per layer): what storing
    and loading a model would cost. Method-specific figures (false-positive rate, bit split,
    sizes) come from the method's report and sit alongside the common keys.
    """
    method, name = layer_module(name), method_id(name)
    signature = inspect.signature(method.encode)
    accepted = list(signature.parameters)[1:]
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ConfigError(f"{name} takes no parameter(s) {unknown}; it accepts {accepted}")
    weights = np.asarray(weights, dtype=np.float32)
    bound = signature.bind(weights, **params)
    bound.apply_defaults()
    params = {p: bound.arguments[p] for p in accepted}  # record the defaults actually used

    through = METHODS.create(name)
    blob, t_encode = best(1, through.encode_layer, weights, params)
    decoded, t_decode = best(1, through.decode_layer, blob)
    enc = method.from_bytes(blob)

    nnz = int(np.count_nonzero(weights))
    result = {
        "method": name, "layer": layer, "shape": list(weights.shape), "nnz": nnz,
        "density": nnz / max(weights.size, 1), "params": params,
        "dense_bytes": 4 * math.prod(weights.shape), "bytes": len(blob),
        "encode_seconds": t_encode, "decode_seconds": t_decode,
    }
    result.update(method.report(enc, weights, decoded))  # ratio, bits_per_nonzero, max_abs_error, ...
    return result
