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


class RaiseInInit(Plain):
    def __init__(self):
        raise RuntimeError("plug-in bug")


class RaiseInSetup(Plain):
    setup = _boom


class RaiseInUnavailable(Plain):
    unavailable = _boom


class RaiseInSweep(Plain):
    sweep = _boom


class SweepNotIterable(Plain):
    def sweep(self):
        return 42


class RaiseInEncode(Plain):
    encode = _boom


class RaiseInDecode(Plain):
    decode = _boom


class RaiseInDescribe(Plain):
    describe = _boom


class RaiseInLayerBytes(Plain):
    layer_bytes = _boom


class RaiseInOperatingPoint(Plain):
    operating_point = _boom


class LayerBytesNotADict(Plain):
    def layer_bytes(self, layers, target, blob):
        return 12


class DescribeNotAString(Plain):
    def describe(self, target):
        return object()


class EncodeNone(Plain):
    def encode(self, layers, target):
        return None


class EncodeList(Plain):
    def encode(self, layers, target):
        return [1, 2, 3]


class DecodeObjects(Plain):
    def decode(self, blob):
        return {n: np.full(s, object(), dtype=object) for n, s in self.shapes.items()}


class DecodeStrings(Plain):
    def decode(self, blob):
        return {n: np.full(s, "1.5") for n, s in self.shapes.items()}


class DecodeFloat64Huge(Plain):
    """Finite as float64, inf once cast to the float32 a Caffe blob holds."""

    def decode(self, blob):
        return {n: np.full(s, 1e300) for n, s in self.shapes.items()}


class DecodeWrongShape(Plain):
    def decode(self, blob):
        return {n: np.zeros(int(np.prod(s)) + 1, np.float32) for n, s in self.shapes.items()}


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
