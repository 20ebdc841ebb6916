"""The plug-in interface (baselines/method.py): the layer frame, LayerwiseMethod's accounting and
loading methods by name or import path, with every mistake a user can make refused in one line.
No Caffe and no NNCodec needed."""
import sys

import numpy as np
import pytest

from deepsz_caffe.baselines import method
from deepsz_caffe.baselines.method import (METHODS, LayerwiseMethod, Method, load_method, pack_layers,
                                           unpack_layers, upgrade_ids)
from deepsz_caffe.errors import CodecError, ConfigError


class Float16(LayerwiseMethod):
    name = "float16"

    def sweep(self):
        return [0]

    def encode_layer(self, weights, target):
        return np.asarray(weights, np.float16).tobytes()

    def decode_layer(self, blob):
        return np.frombuffer(blob, np.float16).astype(np.float32).reshape(-1)


def test_pack_round_trip_and_size():
    streams = {"ip1": b"abc", "conv/2": b"", "ünïcode": bytes(range(256))}
    blob = pack_layers(streams)
    assert unpack_layers(blob) == streams
    names = sum(len(n.encode()) for n in streams)
    assert len(blob) == 4 + 4 + 4 + sum(1 + 4 + len(b) for b in streams.values()) + names


def test_pack_refuses_corruption_and_bad_names():
    blob = pack_layers({"ip1": b"x" * 50, "ip2": b"y"})
    for cut in (0, 5, 12, len(blob) - 1):
        with pytest.raises(CodecError):
            unpack_layers(blob[:cut])
    for at in (0, 4, 9, 30):
        bad = bytearray(blob)
        bad[at] ^= 1
        with pytest.raises(CodecError):
            unpack_layers(bytes(bad))
    with pytest.raises(ConfigError, match="1..255 bytes"):
        pack_layers({"": b"x"})
    with pytest.raises(ConfigError, match="1..255 bytes"):
        pack_layers({"x" * 256: b"x"})


def test_layerwise_method_frames_layers_and_counts_each_stream():
    m = Float16()
    layers = {"a": np.linspace(-1, 1, 10, dtype=np.float32), "b": np.ones(3, np.float32)}
    blob = m.encode(layers, 0)
    assert m.layer_bytes(layers, 0, blob) == {"a": 20, "b": 6}
    assert len(blob) == 26 + 4 + 4 + 4 + 2 * (1 + 4 + 1)   # streams + magic, count, CRC, frames
    out = m.decode(blob)
    assert list(out) == ["a", "b"] and np.allclose(out["a"], layers["a"], atol=1e-3)


def test_default_layer_bytes_encode_each_layer_alone():
    class Joint(Method):
        name = "joint"

        def encode(self, layers, target):
            return b"H" * 10 + b"".join(w.tobytes() for w in layers.values())

    layers = {"a": np.zeros(4, np.float32), "b": np.zeros(2, np.float32)}
    assert Joint().layer_bytes(layers, None, b"") == {"a": 26, "b": 18}


def test_describe_targets():
    m = Float16()
    m.knob = "qp"
    assert m.describe(-16) == "qp -16"
    assert m.describe(0.5) == "qp 0.5"
    assert m.describe({"bits": 5, "scale": 0.25}) == "bits=5, scale=0.25"


def test_load_builtin_and_user_methods(tmp_path, monkeypatch):
    assert {load_method(n).name for n in METHODS.ids()} == set(METHODS.ids())
    (tmp_path / "usermod.py").write_text(
        "from deepsz_caffe.baselines.method import Method\n"
        "class Mine(Method):\n    name = 'mine'\n"
        "class Nameless(Method):\n    pass\n"
        "class NotAMethod:\n    name = 'x'\n"
        "def function():\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    mine = load_method("usermod:Mine")
    assert mine.name == "mine" and mine.label == "mine" and mine.unavailable() is None
    for spec, match in [("nosuch", "unknown method 'nosuch'.*module:Class"),
                        ("usermod:", "unknown method"),
                        ("no_such_module_xyz:Mine", "cannot import no_such_module_xyz"),
                        ("usermod:Missing", "usermod has no Missing"),
                        ("usermod:NotAMethod", "not a subclass of deepsz_caffe.baselines.method.Method"),
                        ("usermod:function", "not a subclass"),
                        ("usermod:Nameless", "sets no `name`")]:
        with pytest.raises(ConfigError, match=match):
            load_method(spec)
    sys.modules.pop("usermod", None)


def test_the_interface_refuses_unimplemented_parts():
    m = Method()
    for call in (m.sweep, lambda: m.encode({}, 0), lambda: m.decode(b"")):
        with pytest.raises(NotImplementedError):
            call()
    assert m.operating_point() is None and method.Context("n", {}).results is None


def test_one_id_per_method_and_old_records_still_read():
    assert "deep-compression" in METHODS.ids() and "deep_compression" not in METHODS.ids()
    with pytest.raises(ConfigError, match="unknown method 'deep_compression'"):
        load_method("deep_compression")  # the CLI takes the one id
    old = {"methods": {"deep_compression": {"method": "deep_compression", "bytes": 1},
                       "deep_compression_5": {"bytes": 2}, "deepsz": {"method": "deepsz"}},
           "rows": [{"deep_compression": 3, "weightless": 4}]}
    assert upgrade_ids(old) == {"methods": {"deep-compression": {"method": "deep-compression", "bytes": 1},
                                            "deep-compression_5": {"bytes": 2},
                                            "deepsz": {"method": "deepsz"}},
                                "rows": [{"deep-compression": 3, "weightless": 4}]}
    assert list(upgrade_ids(old)["methods"]) == ["deep-compression", "deep-compression_5", "deepsz"]
