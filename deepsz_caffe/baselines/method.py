"""The interface every compared method implements, built-in or yours (`deepsz compare`).

A method turns the pruned fc weight blobs of a net into one file and back:

    class MyMethod(Method):
        name = "my-method"                 # id in tables, JSON and figure legends
        knob = "bits"                      # what a target means
        def sweep(self):                   # the targets of its rate-vs-accuracy curve
            return [4, 6, 8]
        def encode(self, layers, target):  # {layer: float32 ndarray} -> bytes (the whole file)
            ...
        def decode(self, blob):            # bytes -> {layer: float32 ndarray}, same shapes
            ...

and is named by import path: `deepsz compare --method mypkg.mod:MyMethod` (the class is
instantiated with no arguments). Targets must be JSON values (numbers, strings, lists, dicts).
The harness (baselines/compare.py) counts len(encode(...)) as the method's size: every byte
`decode` is given, nothing estimated. Methods that code each layer on its own can subclass
`LayerwiseMethod` and get the file framing and per-layer sizes for free.
"""
import importlib
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from deepsz_caffe.baselines._framing import Reader, seal
from deepsz_caffe.errors import CodecError, ConfigError

# Built-in methods by name (deepsz_caffe.baselines.builtin); a user's by "module:Class".
BUILTIN = {
    "deepsz": "DeepSZPaper", "deepsz-best": "DeepSZBest", "deepsz-max": "DeepSZMax",
    "deep-compression": "DeepCompression", "weightless": "Weightless",
    "nncodec": "NNCodec", "nncodec-sparse": "NNCodecSparse",
}
PACK_MAGIC = b"DSZM"


@dataclass
class Context:
    """What the harness knows about the net before a sweep: methods that need more than the
    weights (DeepSZ's measured run) read it here in `setup`."""
    net: str                                  # "lenet300", "lenet5" or a user's label
    layers: dict[str, np.ndarray]             # the pruned fc weight blobs, float32
    results: Path | None = None               # results directory of `deepsz reproduce`, if any
    extra: dict = field(default_factory=dict)


class Method:
    """Base class of a compared method; see the module docstring."""

    name = ""
    label = ""         # longer name for tables and figures (default: name)
    knob = "target"    # what a target is, e.g. "qp", "bits", "error-bound scale"
    version = ""       # the library/codec version to cite, when there is one

    def unavailable(self) -> str | None:
        """Why this method cannot run here (the harness skips it with that reason), or None."""
        return None

    def setup(self, context: Context) -> None:
        """Called once per net before `sweep`."""

    def sweep(self) -> Iterable:
        raise NotImplementedError(f"{type(self).__name__}.sweep")

    def operating_point(self):
        """The target the method itself would choose (DeepSZ: its pipeline's bounds), or None:
        then the harness picks the smallest file within the loss budget."""
        return None

    def encode(self, layers: dict[str, np.ndarray], target) -> bytes:
        raise NotImplementedError(f"{type(self).__name__}.encode")

    def decode(self, blob: bytes) -> dict[str, np.ndarray]:
        raise NotImplementedError(f"{type(self).__name__}.decode")

    def layer_bytes(self, layers: dict[str, np.ndarray], target, blob: bytes) -> dict[str, int]:
        """Bytes per layer (Table 4's per-layer ratios). Default: each layer encoded alone, so
        the parts may add up to more than the joint file."""
        return {n: len(self.encode({n: w}, target)) for n, w in layers.items()}

    def error_bounds(self, target) -> dict[str, float] | None:
        """{layer: absolute error bound} an error-bounded method promises at `target`, or None:
        the harness then records each layer's max |error| against it and `bound_held`."""
        return None

    def describe(self, target) -> str:
        """A target as tables print it."""
        if isinstance(target, dict):
            return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in target.items())
        return f"{self.knob} {target:g}" if isinstance(target, float) else f"{self.knob} {target}"


class LayerwiseMethod(Method):
    """A method that codes each layer alone: implement encode_layer / decode_layer; the file is
    the layers' streams in one frame (names, lengths, CRC32: 13 bytes + 5 per layer + names)."""

    def encode_layer(self, weights: np.ndarray, target) -> bytes:
        raise NotImplementedError(f"{type(self).__name__}.encode_layer")

    def decode_layer(self, blob: bytes) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__}.decode_layer")

    def encode(self, layers, target) -> bytes:
        return pack_layers({n: self.encode_layer(w, target) for n, w in layers.items()})

    def decode(self, blob) -> dict[str, np.ndarray]:
        return {n: self.decode_layer(b) for n, b in unpack_layers(blob).items()}

    def layer_bytes(self, layers, target, blob) -> dict[str, int]:
        """Each layer's own stream, without the frame around them."""
        return {n: len(b) for n, b in unpack_layers(blob).items()}


def pack_layers(streams: dict[str, bytes]) -> bytes:
    """{layer: bytes} -> one sealed blob (magic, count, then name + length + bytes per layer)."""
    body = [struct.pack("<I", len(streams))]
    for name, data in streams.items():
        raw = name.encode()
        if not 0 < len(raw) < 256:
            raise ConfigError(f"layer name {name!r} must be 1..255 bytes of UTF-8")
        body += [struct.pack("<B", len(raw)), raw, struct.pack("<I", len(data)), bytes(data)]
    return seal(PACK_MAGIC, b"".join(body))


def unpack_layers(blob: bytes) -> dict[str, bytes]:
    r = Reader(blob, PACK_MAGIC, "layer pack")
    (count,) = r.unpack("I")
    out = {}
    for _ in range(count):
        try:
            name = r.take(r.unpack("B")[0]).decode()
        except UnicodeDecodeError:
            raise CodecError("layer pack: a layer name is not UTF-8") from None
        if name in out:
            raise CodecError(f"layer pack: layer {name!r} twice")
        out[name] = r.take(r.unpack("I")[0])
    r.done()
    return out


def load_method(spec: str) -> Method:
    """A built-in method by name (see BUILTIN) or a user's class by "module:Class"."""
    if spec in BUILTIN:
        module, attr = "deepsz_caffe.baselines.builtin", BUILTIN[spec]
    else:
        module, sep, attr = spec.partition(":")
        if not sep or not module or not attr:
            raise ConfigError(f"unknown method {spec!r}: built-in ones are {', '.join(BUILTIN)}; "
                              "name your own as module:Class (e.g. mypkg.mod:MyMethod)")
    try:
        cls = getattr(importlib.import_module(module), attr)
    except ImportError as e:
        raise ConfigError(f"method {spec!r}: cannot import {module} ({e})") from None
    except AttributeError:
        raise ConfigError(f"method {spec!r}: {module} has no {attr}") from None
    if not (isinstance(cls, type) and issubclass(cls, Method)):
        raise ConfigError(f"method {spec!r}: {module}.{attr} is not a subclass of "
                          "deepsz_caffe.baselines.method.Method")
    method = cls()
    if not method.name:
        raise ConfigError(f"method {spec!r}: {module}.{attr} sets no `name`")
    method.label = method.label or method.name
    return method
