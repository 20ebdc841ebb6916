"""deepsz_caffe.codecs.zquant and bound-aware zeroing (format.layer.zeroed_sparse): every weight
within its bound in float64, every pruned zero exactly zero, the zeroed weights out of positions
and levels alike, forged streams refused with one CodecError, and the harness's bound record."""
import json
import struct
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from helpers import max_error

from deepsz_caffe import sparse
from deepsz_caffe.baselines import compare
from deepsz_caffe.baselines.method import Method
from deepsz_caffe.codecs import LOSSY_CODECS, compress_bounded, get_lossy
from deepsz_caffe.codecs.base import FRAME_HEADER
from deepsz_caffe.varint import encode as _leb128
from deepsz_caffe.errors import CodecError, ContainerError
from deepsz_caffe.format.layer import decode_layer, encode_layer, zeroed_sparse
from deepsz_caffe.format.validate import _layer_fields, _layer_sizes
from deepsz_caffe.presets import resolve


def _layer(rows, cols, density, sigma, seed):
    rng = np.random.default_rng(seed)
    w = rng.normal(0, sigma, (rows, cols)).astype(np.float32)
    return np.where(rng.random((rows, cols)) < density, w, np.float32(0))


def test_registered_beside_quant_and_in_the_max_preset():
    z = get_lossy("zquant")
    assert "zquant" in LOSSY_CODECS and z.mode_id == 5 and z.zeroes_within_bound
    assert not getattr(get_lossy("quant"), "zeroes_within_bound", False)
    assert "zquant" in resolve("max").lossy and "zquant" not in resolve("best").lossy


@settings(max_examples=40, deadline=None)
@given(rows=st.integers(1, 40), cols=st.integers(1, 700), density=st.floats(0.0, 1.0),
       sigma=st.sampled_from([1e-3, 0.02, 0.5]), eb=st.sampled_from([1e-4, 1e-3, 0.01, 0.03, 0.2]),
       seed=st.integers(0, 2 ** 16), lossless=st.sampled_from(["zstd", "ctx"]))
def test_bound_and_exact_zeros(rows, cols, density, sigma, eb, seed, lossless):
    w = _layer(rows, cols, density, sigma, seed)
    enc = encode_layer(w, eb, "zquant", lossless)
    out = decode_layer(enc.meta, enc.data, enc.index, enc.gap255_kept)
    assert out.dtype == np.float32 and out.shape == w.shape
    assert max_error(w, out) <= eb                      # float64, every weight
    assert np.all(out[w == 0] == 0)                     # pruned zeros stay exactly zero
    small = (w != 0) & (np.abs(w.astype(np.float64)) <= eb)
    assert np.all(out[small] == 0)                      # zeroed within the bound...
    assert np.all(out[(w != 0) & ~small] != 0)          # ...and nothing else
    assert enc.meta.get("zeroed", 0) == int(small.sum())
    assert enc.meta["nnz"] == int(np.count_nonzero(w)) - int(small.sum())


def test_zeroed_weights_leave_positions_and_levels():
    w = _layer(300, 784, 0.08, 0.05, 1)
    plain, zeroed = encode_layer(w, 0.04, "quant", "ctx"), encode_layer(w, 0.04, "zquant", "ctx")
    assert zeroed.meta["zeroed"] > 0.5 * np.count_nonzero(w)
    assert zeroed.meta["n_entries"] < plain.meta["n_entries"]
    assert zeroed.meta["index_bytes"] < 0.75 * plain.meta["index_bytes"]
    assert zeroed.meta["data_bytes"] < plain.meta["data_bytes"]
    # several codecs: the smallest layer (data + index) wins, with its own index stream
    both = encode_layer(w, 0.04, ("quant", "zquant"), "ctx")
    assert both.meta["lossy_codec"] == "zquant" and both.index == zeroed.index


def test_zeroing_is_decided_in_float64_at_the_bound():
    eb = 0.1
    w = np.array([eb, np.nextafter(np.float32(eb), np.float32(1)), -eb, 0.0, 0.5] * 10, np.float32)
    sp, zeroed = zeroed_sparse(get_lossy("zquant"), w, eb)
    kept = np.abs(w.astype(np.float64)) > eb
    assert zeroed == int(np.count_nonzero((w != 0) & ~kept))
    assert sp.nnz == int(kept.sum())
    # a non-zeroing codec codes every kept weight
    assert zeroed_sparse(get_lossy("quant"), w, eb)[1] == 0


def test_survivors_are_rounded_at_step_one_and_a_half_bounds():
    z = get_lossy("zquant")
    x = np.linspace(0.2, 3.0, 400).astype(np.float32)
    blob = compress_bounded(z, x, 0.1)
    (step,) = struct.unpack_from("<d", blob, FRAME_HEADER.size + 1 + len(_leb128([x.size])))
    assert step == pytest.approx(0.15)
    assert max_error(x, z.decompress(blob, x.size)) <= 0.075 + 1e-7


@pytest.fixture(scope="module")
def stream():
    x = sparse.to_sparse(_layer(50, 200, 0.2, 0.05, 3)).data
    x = x[np.abs(x) > 0.03]
    return x, compress_bounded(get_lossy("zquant"), x, 0.03)


def _frame(mode, n, payload):
    return FRAME_HEADER.pack(mode, n, zlib.crc32(payload)) + payload


@pytest.mark.parametrize("forge", [
    "truncated", "crc", "mode-quant", "mode-raw", "count", "version", "stored-count",
    "stored-count-unterminated", "quant-payload", "step-nan", "step-zero", "slots-huge",
    "odd-tail", "empty"])
def test_forged_streams_are_refused(stream, forge):
    x, blob = stream
    z, n = get_lossy("zquant"), x.size
    mode, _, _ = FRAME_HEADER.unpack_from(blob)
    whole = blob[FRAME_HEADER.size:]
    head = 1 + len(_leb128([n]))
    assert whole[:head] == bytes([1]) + _leb128([n])   # version 1, then the value count
    prefix, payload = whole[:head], whole[head:]
    quant_stream = compress_bounded(get_lossy("quant"), x, 0.03)[FRAME_HEADER.size:]
    forged = {
        "version": _frame(mode, n, bytes([2]) + whole[1:]),
        "stored-count": _frame(mode, n, bytes([1]) + _leb128([n - 1]) + payload),
        "stored-count-unterminated": _frame(mode, n, bytes([1]) + b"\xff" * 12),
        "quant-payload": _frame(mode, n, quant_stream),
        "truncated": blob[:len(blob) // 2],
        "crc": blob[:-1] + bytes([blob[-1] ^ 1]),
        "mode-quant": _frame(4, n, whole),           # quant's id: not this codec's stream
        "mode-raw": _frame(0, n, whole),
        "count": _frame(mode, n + 1, whole),
        "step-nan": _frame(mode, n, prefix + struct.pack("<d", float("nan")) + payload[8:]),
        "step-zero": _frame(mode, n, prefix + struct.pack("<d", 0.0) + payload[8:]),
        "slots-huge": _frame(mode, n, prefix + payload[:8] + b"\xff" * 9 + b"\x01" + payload[9:]),
        "odd-tail": _frame(mode, n, whole + b"\0"),
        "empty": _frame(mode, n, b""),
    }[forge]
    with pytest.raises(CodecError):
        z.decompress(forged, n)


def test_header_zeroed_field_is_checked():
    w = _layer(30, 40, 0.3, 0.05, 5)
    enc = encode_layer(w, 0.03, "zquant", "zstd")
    meta = {"name": "ip", "type": "InnerProduct", **enc.meta}
    sections = {"ip/data": len(enc.data), "ip/index": len(enc.index)}  # section lengths
    _layer_fields(meta, 0, "f")
    _layer_sizes(meta, sections, "f")
    for bad in (-1, 0, True, 1.5, "3"):
        with pytest.raises(ContainerError, match="zeroed"):
            _layer_fields({**meta, "zeroed": bad}, 0, "f")
    with pytest.raises(ContainerError, match="do not fit"):
        _layer_sizes({**meta, "zeroed": w.size}, sections, "f")


class _Bounded(Method):
    name = "bounded"

    def __init__(self, slack):
        self.slack = slack

    def error_bounds(self, target):
        return {"a": 0.125, "b": 0.25}

    def encode(self, layers, target):
        return b"x"

    def decode(self, blob):
        return {"a": np.full((2, 2), 0.125 + self.slack, np.float32), "b": np.zeros(3, np.float32)}


class _Probe:
    base_top1 = 99.0

    def top1_with(self, decoded):
        return 98.9


@pytest.mark.parametrize("slack,held", [(0.0, True), (1e-6, False)])
def test_harness_records_each_layers_bound_and_error(slack, held):
    layers = {"a": np.zeros((2, 2), np.float32), "b": np.array([0.0, 0.25, -0.25], np.float32)}
    point, _ = compare.measure(_Bounded(slack), layers, 1, _Probe())
    assert point["bound_held"] is held
    assert point["layer_errors"]["b"] == {"error_bound": 0.25, "max_abs_error": 0.25,
                                          "bound_held": True}
    assert point["layer_errors"]["a"]["bound_held"] is held


def test_compress_preset_max_on_a_net(lenet5, tmp_path):
    """`deepsz compress --preset max` on a net of the user's (here a briefly trained LeNet-5):
    zquant is assessed beside the others, the file decodes within every bound, pruned zeros
    exact, and the zeroed weights are reported by layer."""
    import subprocess
    import sys

    from deepsz_caffe import inspect
    from deepsz_caffe.caffe.wire import read_caffemodel
    from deepsz_caffe.format import network as dsz

    out = tmp_path / "m.dsz"
    r = subprocess.run([sys.executable, "-m", "deepsz_caffe.cli", "compress", "--model",
                        str(lenet5["model"]), "--weights", str(lenet5["pruned"]), "--preset", "max",
                        "--expected-loss", "0.5", "-o", str(out), "--work-dir", str(tmp_path / "w")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    record = json.loads((tmp_path / "w" / "compress.json").read_text())
    assert {p["backend"] for pts in record["assessment"].values() for p in pts} == \
        {"sz2", "sz3", "quant", "zquant"}
    zq = [p for pts in record["assessment"].values() for p in pts if p["backend"] == "zquant"]
    assert all("zeroed" in p for p in zq) and any(p["zeroed"] > 0 for p in zq)
    report = inspect(out)
    dsz.decode(out, tmp_path / "d.caffemodel")
    before = read_caffemodel(lenet5["pruned"])[0]
    after = read_caffemodel(tmp_path / "d.caffemodel")[0]
    for m in report["layers"]:
        w, d = before[m["name"]][0], after[m["name"]][0]
        assert max_error(w, d) <= m["error_bound"] and np.all(d[w == 0] == 0)
        small = (w != 0) & (np.abs(w.astype(np.float64)) <= m["error_bound"])
        assert m.get("zeroed", 0) == (int(small.sum()) if m["lossy_codec"] == "zquant" else 0)


def test_fillers_cost_the_cheapest_level_and_decode_to_zero():
    w = _layer(300, 784, 0.02, 0.05, 7)
    w[:, :400] = 0                                      # long runs: many fillers
    z = get_lossy("zquant")
    sp, _ = zeroed_sparse(z, w, 0.03)
    fillers = sparse.filler_entries(sp.index, sparse.kept_at_max_gap(sp.data, sp.index))
    assert fillers.size > 100
    filled = z.fill(sp.data, fillers, 0.03)
    assert np.all(filled[fillers] != 0)
    assert np.array_equal(np.delete(filled, fillers), np.delete(sp.data, fillers))
    assert len(compress_bounded(z, filled, 0.03)) < len(compress_bounded(z, sp.data, 0.03))
    enc = encode_layer(w, 0.03, "zquant", "zstd")
    out = decode_layer(enc.meta, enc.data, enc.index, enc.gap255_kept)
    assert np.all(out[w == 0] == 0) and max_error(w, out) <= 0.03
