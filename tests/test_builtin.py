"""The built-in methods through the plug-in interface (baselines/builtin.py): the same bytes as
the baseline modules, DeepSZ's streams at its run's bounds, NNCodec's file and its decode-only
child. NNCodec round trips need .venv-nncodec and are skipped without it."""
import json

import numpy as np
import pytest

from helpers import nncodec_skip

from deepsz_caffe import sparse
from deepsz_caffe.baselines import builtin, deep_compression, nncodec, weightless
from deepsz_caffe.baselines.method import Context, load_method, unpack_layers
from deepsz_caffe.errors import CodecError, ConfigError
from deepsz_caffe.format.layer import encode_layer

needs_venv = nncodec_skip()


@pytest.fixture(scope="module")
def layers():
    rng = np.random.default_rng(3)
    out = {}
    for name, shape in (("ip1", (60, 400)), ("ip2", (10, 60))):
        w = rng.normal(0, 0.05, shape).astype(np.float32)
        w[rng.random(shape) >= 0.1] = 0
        out[name] = w
    return out


@pytest.mark.parametrize("name, module", [("deep-compression", deep_compression),
                                          ("weightless", weightless)])
def test_baseline_streams_are_the_modules_bytes(layers, name, module):
    m = load_method(name)
    blob = m.encode(layers, m.default)
    streams = unpack_layers(blob)
    for layer, w in layers.items():
        assert streams[layer] == module.to_bytes(module.encode(w, **m.default))
    assert m.layer_bytes(layers, m.default, blob) == {n: len(b) for n, b in streams.items()}
    decoded = m.decode(blob)
    for layer in layers:
        assert np.array_equal(decoded[layer], module.decode(module.from_bytes(streams[layer])))
    assert all(isinstance(t, dict) for t in m.sweep()) and m.default in m.sweep()


def _run(tmp_path, net, summary: dict | None, name="deepsz", file="summary.json"):
    if summary is not None:
        (tmp_path / net).mkdir(exist_ok=True)
        (tmp_path / net / file).write_text(json.dumps(summary))
    m = load_method(name)
    m.setup(Context(net, {}, tmp_path))
    return m


def test_deepsz_codes_its_runs_bounds_and_restores_the_mask(tmp_path, layers):
    bounds = {"ip1": 0.01, "ip2": 0.02}
    m = _run(tmp_path, "mynet", {"error_bounds": bounds, "lossy": {"ip1": "sz2", "ip2": "sz2"},
                                 "lossless": "best"})
    assert m.operating_point() == 1.0 and "measured run" in m.source
    blob = m.encode(layers, 1.0)
    sizes = m.layer_bytes(layers, 1.0, blob)
    for name, w in layers.items():
        enc = encode_layer(w, bounds[name], "sz2", "best")
        # the paper's data + index streams, plus shape, codec names and lengths (under 64 bytes)
        assert 0 < sizes[name] - enc.size - len(enc.gap255_kept) < 64
    decoded = m.decode(blob)
    for name, w in layers.items():
        assert np.abs(decoded[name] - w).max() <= bounds[name] * (1 + 1e-6)
        assert np.array_equal(decoded[name] != 0, w != 0)
    assert len(m.encode(layers, 4.0)) < len(blob)
    assert m.describe(2.0) == "ip1 0.02, ip2 0.04"
    bad = bytearray(unpack_layers(blob)["ip2"])
    bad[10] ^= 1
    with pytest.raises(CodecError):
        m.decode_layer(bytes(bad))


def test_deepsz_without_a_run_uses_the_papers_bounds_or_says_what_to_run(tmp_path):
    m = _run(tmp_path, "lenet300", None)
    assert m.bounds == {"ip1": 0.02, "ip2": 0.03, "ip3": 0.04} and "paper's bounds" in m.source
    with pytest.raises(ConfigError, match="no measured run at .*summary.json or compress.json.* "
                                          "run deepsz reproduce, or deepsz compress --work-dir"):
        _run(tmp_path, "mynet", None)
    run = {"error_bounds": {"ip1": 0.05}, "lossy": {"ip1": "sz3"}, "lossless": "zstd"}
    own = _run(tmp_path, "mynet", run, file="compress.json")   # deepsz compress --work-dir
    assert (own.bounds, own.lossy, own.lossless) == ({"ip1": 0.05}, {"ip1": "sz3"}, "zstd")
    assert str(tmp_path / "mynet" / "compress.json") in own.source
    best = _run(tmp_path, "lenet5", None, "deepsz-best")
    with pytest.raises(ConfigError, match="no error bound for layer"):
        best.encode({"conv1": np.ones((2, 2), np.float32)}, 1.0)


def test_nncodec_methods_say_how_to_build_their_environment(monkeypatch):
    monkeypatch.setenv(nncodec.ENV_VAR, "/nonexistent/python")
    for name in ("nncodec", "nncodec-sparse"):
        assert load_method(name).unavailable() == builtin.NNCODEC_MISSING
    assert builtin.NNCODEC_MISSING == "NNCodec environment .venv-nncodec not built (make nncodec)"


@needs_venv
def test_nncodec_file_is_the_bitstream_and_decodes_in_a_separate_child(tmp_path, layers):
    m = load_method("nncodec")
    assert m.unavailable() is None
    blob = m.encode(layers, -24)
    assert m.version == "nncodec 2.1.3" and m.codec_seconds["encode"] > 0
    same = nncodec.nncodec_round_trip(layers, -24, tmp_path)
    assert blob == same.bitstream
    decoded = m.decode(blob)
    assert sorted(decoded) == sorted(layers) and m.codec_seconds["decode"] > 0
    for name in layers:
        assert np.array_equal(decoded[name], same.decoded[name])
    with pytest.raises(CodecError, match="not a decodable NNR bitstream"):
        m.decode(b"\0" * 40)


@needs_venv
def test_nncodec_sparse_codes_data_arrays_beside_deepsz_index_streams(layers):
    m = load_method("nncodec-sparse")
    blob = m.encode(layers, -24)
    decoded = m.decode(blob)
    for name, w in layers.items():
        sp = sparse.to_sparse(w)
        made_nonzero = np.count_nonzero(decoded[name][w == 0])
        assert made_nonzero <= sp.n_entries - sp.nnz     # only fillers can move
        assert np.abs(decoded[name] - w).max() < 4 * nncodec.step_size(-24)
