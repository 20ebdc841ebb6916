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
from deepsz_caffe.errors import CodecError, ConfigError, DeepSZError
from deepsz_caffe.registry import Registry

# Built-in methods by id, as codecs are registered (a user's is named by "module:Class").
METHODS = Registry("method", ConfigError)
METHODS.register("deepsz", "deepsz_caffe.baselines.builtin:DeepSZPaper")
METHODS.register("deepsz-best", "deepsz_caffe.baselines.builtin:DeepSZBest")
METHODS.register("deepsz-max", "deepsz_caffe.baselines.builtin:DeepSZMax")
METHODS.register("deep-compression", "deepsz_caffe.baselines.builtin:DeepCompression")
METHODS.register("weightless", "deepsz_caffe.baselines.builtin:Weightless")
METHODS.register("nncodec", "deepsz_caffe.baselines.builtin:NNCodec", "-r requirements-nncodec.txt")
METHODS.register("nncodec-sparse", "deepsz_caffe.baselines.builtin:NNCodecSparse",
                 "-r requirements-nncodec.txt")
# Spellings older result records use for a method, and its one id now.
LEGACY_IDS = {"deep_compression": "deep-compression"}
PACK_MAGIC = b"DSZM"


def method_id(name: str) -> str:
    """A method's id, from the id or a spelling older records use."""
    return LEGACY_IDS.get(name, name)


def upgrade_ids(record):
    """A JSON record with every legacy method id in a key (alone or before "_<suffix>", as in
    table5's "deep_compression_5") or a "method" value replaced by the method's id."""
    def key(k):
        for old, new in LEGACY_IDS.items():
            if isinstance(k, str) and (k == old or k.startswith(old + "_")):
                return new + k[len(old):]
        return k

    if isinstance(record, dict):
        return {key(k): (method_id(v) if k == "method" and isinstance(v, str) else upgrade_ids(v))
                for k, v in record.items()}
    if isinstance(record, list):
        return [upgrade_ids(v) for v in record]
    return record


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

    def library_version(self) -> str:
        """What the registry reports as its version (`version`)."""
        return self.version

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


def call(method, what: str, fn, *args):
    """fn(*args), a call into a method (possibly a user's plug-in): any exception it raises, and
    SystemExit, become one CodecError naming the method and the call; KeyboardInterrupt (Ctrl-C
    while a plug-in runs) stays an interrupt; a DeepSZError is already a message for the user."""
    try:
        return fn(*args)
    except (KeyboardInterrupt, DeepSZError):
        raise
    except SystemExit as e:
        raise CodecError(f"method {_name(method)}: {what} raised SystemExit({e.code!r}); a method "
                         "must return or raise, not exit") from None
    except BaseException as e:  # noqa: BLE001 - a plug-in's bug, whatever its class
        text = " ".join(str(e).split())[:200]
        raise CodecError(f"method {_name(method)}: {what} raised {type(e).__name__}"
                         + (f": {text}" if text else "")) from None


def _name(method) -> str:
    name = getattr(method, "name", None)
    return name if isinstance(name, str) and name else type(method).__name__


def load_method(spec: str) -> Method:
    """A built-in method by id (see METHODS) or a user's class by "module:Class"."""
    if spec in METHODS:
        module, _, attr = METHODS.entry(spec).target.partition(":")
    else:
        module, sep, attr = spec.partition(":")
        if not sep or not module or not attr:
            raise ConfigError(f"unknown method {spec!r}: built-in ones are {', '.join(METHODS.ids())}; "
                              "name your own as module:Class (e.g. mypkg.mod:MyMethod)")
    try:
        cls = getattr(importlib.import_module(module), attr)
    except ImportError as e:
        raise ConfigError(f"method {spec!r}: cannot import {module} ({e})") from None
    except AttributeError:
        raise ConfigError(f"method {spec!r}: {module} has no {attr}") from None
    except (KeyboardInterrupt, DeepSZError):
        raise
    except BaseException as e:  # noqa: BLE001 - the module's own code failed while importing
        text = " ".join(str(e).split())[:200]
        raise ConfigError(f"method {spec!r}: import {module} raised {type(e).__name__}"
                          + (f": {text}" if text else "")) from None
    if not (isinstance(cls, type) and issubclass(cls, Method)):
        raise ConfigError(f"method {spec!r}: {module}.{attr} is not a subclass of "
                          "deepsz_caffe.baselines.method.Method")
    method = call(cls, f"{attr}.__init__()", cls)
    if not (isinstance(method.name, str) and method.name):
        raise ConfigError(f"method {spec!r}: {module}.{attr} sets no `name` (a non-empty string)")
    method.label = method.label or method.name
    return method
