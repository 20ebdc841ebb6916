"""Misbehaving `deepsz compare` plug-ins (tests/hostile_commands.py): each breaks one promise of
the Method interface, in one call, and the harness must refuse it in one line naming the call."""

import numpy as np

from deepsz_caffe.baselines.method import Method


class Plain(Method):
    """A correct method (weights stored raw): the base the broken ones change one call of."""

    name, knob = "plain", "copy"

    def sweep(self):
        return [1]

    def encode(self, layers, target):
        return b"".join(np.ascontiguousarray(w, np.float32).tobytes() for w in layers.values())

    def decode(self, blob):
        out, at = {}, 0
        for name, shape in self.shapes.items():
            n = int(np.prod(shape))
            out[name] = np.frombuffer(blob, np.float32, n, at).reshape(shape).copy()
            at += 4 * n
        return out

    def setup(self, context):
        self.shapes = {n: w.shape for n, w in context.layers.items()}


def _boom(*_args, **_kw):
    raise RuntimeError("plug-in bug")


def _raising(method: str) -> type:
    """A plug-in whose `method` raises."""
    return type("RaiseIn" + method.title().replace("_", ""), (Plain,), {method: _boom})


def _returning(name: str, method: str, value) -> type:
    """A plug-in whose `method` returns `value()`, which breaks its contract."""
    return type(name, (Plain,), {method: lambda self, *args: value()})


def _decoding(name: str, make, doc: str = "") -> type:
    """A plug-in whose decode gives, per layer, make(shape) instead of its float32 weights."""
    return type(name, (Plain,), {"__doc__": doc, "decode": lambda self, blob: {
        n: make(s) for n, s in self.shapes.items()}})


class RaiseInInit(Plain):
    def __init__(self):
        raise RuntimeError("plug-in bug")


(RaiseInSetup, RaiseInUnavailable, RaiseInSweep, RaiseInEncode, RaiseInDecode, RaiseInDescribe,
 RaiseInLayerBytes, RaiseInOperatingPoint) = map(_raising, (
    "setup", "unavailable", "sweep", "encode", "decode", "describe", "layer_bytes", "operating_point"))
SweepNotIterable = _returning("SweepNotIterable", "sweep", lambda: 42)
LayerBytesNotADict = _returning("LayerBytesNotADict", "layer_bytes", lambda: 12)
DescribeNotAString = _returning("DescribeNotAString", "describe", object)
EncodeNone = _returning("EncodeNone", "encode", lambda: None)
EncodeList = _returning("EncodeList", "encode", lambda: [1, 2, 3])
DecodeObjects = _decoding("DecodeObjects", lambda s: np.full(s, object(), dtype=object))
DecodeStrings = _decoding("DecodeStrings", lambda s: np.full(s, "1.5"))
DecodeFloat64Huge = _decoding("DecodeFloat64Huge", lambda s: np.full(s, 1e300),
                              "Finite as float64, inf once cast to the float32 a Caffe blob holds.")
DecodeWrongShape = _decoding("DecodeWrongShape", lambda s: np.zeros(int(np.prod(s)) + 1, np.float32))


class MutatesReference(Plain):
    """Zeroes the arrays it is given: the harness's max error must not then read 0."""

    def encode(self, layers, target):
        for w in layers.values():
            w[...] = 0
        return super().encode(layers, target)


class MutatesContext(Plain):
    def setup(self, context):
        super().setup(context)
        for w in context.layers.values():
            w[...] = 0


class ExitInEncode(Plain):
    def encode(self, layers, target):
        raise SystemExit(0)


class ExitInDecode(Plain):
    def decode(self, blob):
        raise SystemExit("bye")


class InterruptInEncode(Plain):
    def encode(self, layers, target):
        raise KeyboardInterrupt


class NameNotAString(Plain):
    name = 3
