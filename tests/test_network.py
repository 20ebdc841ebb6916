"""encode -> .dsz -> decode -> pycaffe loads it: bounded on compressed layers, exact elsewhere."""
import subprocess
import sys

import caffe
import numpy as np
import pytest

from deepsz_caffe import decode, encode, inspect
from deepsz_caffe.errors import ContainerError

NET = """
name: "tiny"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 1 dim: 20 dim: 20 } } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 8 kernel_size: 5 weight_filler { type: "gaussian" std: 0.1 } } }
layer { name: "ip1" type: "InnerProduct" bottom: "conv1" top: "ip1"
        inner_product_param { num_output: 300 weight_filler { type: "gaussian" std: 0.02 } } }
layer { name: "relu1" type: "ReLU" bottom: "ip1" top: "ip1" }
layer { name: "ip2" type: "InnerProduct" bottom: "ip1" top: "ip2"
        inner_product_param { num_output: 10 weight_filler { type: "gaussian" std: 0.05 }
        bias_filler { type: "gaussian" std: 0.1 } } }
layer { name: "prob" type: "Softmax" bottom: "ip2" top: "prob" }
"""


@pytest.fixture(scope="module")
def pruned(tmp_path_factory):
    """A pruned net: ip1 keeps 8%, ip2 keeps 30% (leading zero runs > 255 included)."""
    d = tmp_path_factory.mktemp("net")
    proto = d / "tiny.prototxt"
    proto.write_text(NET)
    caffe.set_mode_cpu()
    caffe.set_random_seed(0)
    net = caffe.Net(str(proto), caffe.TEST)
    for layer, keep in (("ip1", 0.08), ("ip2", 0.30)):
        w = net.params[layer][0].data
        w[np.abs(w) < np.quantile(np.abs(w), 1 - keep)] = 0
    net.params["ip1"][0].data[0, :600] = 0
    weights = d / "tiny.caffemodel"
    net.save(str(weights))
    return proto, weights, {k: [b.data.copy() for b in v] for k, v in net.params.items()}


def test_round_trip_through_pycaffe(pruned, tmp_path):
    proto, weights, original = pruned
    bounds = {"ip1": 0.01, "ip2": 0.003}
    encode(weights, tmp_path / "m.dsz", error_bounds=bounds)
    decode(tmp_path / "m.dsz", tmp_path / "back.caffemodel")
    net = caffe.Net(str(proto), str(tmp_path / "back.caffemodel"), caffe.TEST)
    for layer, blobs in original.items():
        for i, want in enumerate(blobs):
            got = net.params[layer][i].data
            if i == 0 and layer in bounds:
                err = np.max(np.abs(got.astype(np.float64) - want))
                assert err <= bounds[layer]
                assert np.array_equal(got == 0, want == 0)  # the pruned mask, exactly
            else:
                assert np.array_equal(got, want), (layer, i)


def test_inspect_reports_paper_ratio(pruned, tmp_path):
    _, weights, original = pruned
    encode(weights, tmp_path / "m.dsz", eb_all=0.01)
    r = inspect(tmp_path / "m.dsz")
    assert [m["name"] for m in r["layers"]] == ["ip1", "ip2"]
    dense = sum(original[k][0].size * 4 for k in ("ip1", "ip2"))
    assert r["fc_weight_bytes"] == dense
    assert r["ratio"] == pytest.approx(dense / r["fc_compressed_bytes"])
    assert r["ratio"] > 10  # 8%-dense ip1 alone bounds this from below at ~ 1/(0.08*5/4)
    assert r["fc_bias_bytes"] == 4 * (300 + 10)


def test_conv_layer_can_be_compressed(pruned, tmp_path):
    _, weights, original = pruned
    one_line = r"1 of 1 selected layer\(s\) over 50% dense \(not pruned\?\): conv1 100%"
    with pytest.warns(UserWarning, match=one_line):
        encode(weights, tmp_path / "m.dsz", error_bounds={"conv1": 1e-3}, layers=["conv1"])
    assert [m["name"] for m in inspect(tmp_path / "m.dsz")["layers"]] == ["conv1"]
    decode(tmp_path / "m.dsz", tmp_path / "b.caffemodel")


def deepsz(*args):
    return subprocess.run([sys.executable, "-m", "deepsz_caffe.cli", *map(str, args)],
                          capture_output=True, text=True)


def test_cli_encode_inspect_decode(pruned, tmp_path):
    _, weights, _ = pruned
    out = tmp_path / "m.dsz"
    r = deepsz("encode", "-weights", weights, "--eb", "ip1=0.02,ip2=0.01", "-o", out)
    assert r.returncode == 0, r.stderr
    r = deepsz("inspect", out)
    assert r.returncode == 0 and "ip1" in r.stdout and "ratio" in r.stdout
    r = deepsz("decode", out, "-o", tmp_path / "b.caffemodel")
    assert r.returncode == 0 and (tmp_path / "b.caffemodel").stat().st_size > 0


@pytest.mark.parametrize("args, message", [
    (["--eb", "ip9=0.01"], "'ip9' not in the net"),
    (["--eb", "ip1=0"], "must be finite and > 0"),
    (["--eb", "ip1=-1"], "must be finite and > 0"),
    (["--eb", "ip1=nan"], "must be finite and > 0"),
    (["--eb", "ip1"], "LAYER=VALUE"),
    (["--eb", "ip1=0.01"], "no error bound for layer(s) ip2"),
    (["--eb-all", "0.01", "--layers", "fc7"], "'fc7' not in the net"),
    (["--eb-all", "0.01", "--lossy", "lz4"], "unknown lossy codec"),
    (["--eb-all", "0.01", "--lossless", "brotli"], "brotli"),
])
def test_cli_bad_arguments(pruned, tmp_path, args, message):
    _, weights, _ = pruned
    out = tmp_path / "m.dsz"
    r = deepsz("encode", "--weights", weights, *args, "-o", out)
    assert r.returncode == 1 and message in r.stderr and "Traceback" not in r.stderr
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_cli_bad_files(pruned, tmp_path):
    _, weights, _ = pruned
    notproto = tmp_path / "x.caffemodel"
    notproto.write_bytes(b"\xff" * 100)
    r = deepsz("encode", "--weights", notproto, "--eb-all", "0.01", "-o", tmp_path / "m.dsz")
    assert r.returncode == 1 and "not a Caffe model" in r.stderr
    r = deepsz("encode", "--weights", weights, "--eb-all", "0.01", "-o", tmp_path / "no" / "m.dsz")
    assert r.returncode == 1 and "does not exist" in r.stderr
    good = tmp_path / "m.dsz"
    assert deepsz("encode", "--weights", weights, "--eb-all", "0.01", "-o", good).returncode == 0
    blob = good.read_bytes()
    for i, pos in enumerate(range(0, len(blob), max(1, len(blob) // 40))):
        bad = tmp_path / f"bad{i}.dsz"
        bad.write_bytes(blob[:pos] + bytes([blob[pos] ^ 0xFF]) + blob[pos + 1:])
        r = deepsz("decode", bad, "-o", tmp_path / f"bad{i}.caffemodel")
        assert r.returncode == 1 and "deepsz: error:" in r.stderr, (pos, r.stderr)
        assert not (tmp_path / f"bad{i}.caffemodel").exists()
    r = deepsz("decode", tmp_path / "missing.dsz", "-o", tmp_path / "x.caffemodel")
    assert r.returncode == 1 and "cannot read" in r.stderr


def test_cli_encode_checks_weights_against_model(pruned, tmp_path):
    proto, weights, _ = pruned
    r = deepsz("encode", "-model", proto, "-weights", weights, "--eb-all", "0.01", "-o", tmp_path / "a.dsz")
    assert r.returncode == 0, r.stderr
    other = tmp_path / "other.prototxt"
    other.write_text(proto.read_text().replace("num_output: 300", "num_output: 299"))
    r = deepsz("encode", "--model", other, "--weights", weights, "--eb-all", "0.01", "-o", tmp_path / "b.dsz")
    assert r.returncode == 1 and not (tmp_path / "b.dsz").exists()
    assert "does not describe the net" in r.stderr and "ip1 299x2048 299" in r.stderr \
        and "ip1 300x2048 300" in r.stderr and len(r.stderr.splitlines()) == 1
    # Caffe itself accepts a renamed layer (it keeps the filler's random weights): refused here
    renamed = tmp_path / "renamed.prototxt"
    renamed.write_text(proto.read_text().replace('name: "ip2"', 'name: "fc2"'))
    r = deepsz("encode", "--model", renamed, "--weights", weights, "--eb-all", "0.01",
               "-o", tmp_path / "c.dsz")
    assert r.returncode == 1 and "layers that differ: fc2, ip2" in r.stderr, r.stderr
    not_utf8 = tmp_path / "latin1.prototxt"
    not_utf8.write_bytes(proto.read_bytes().replace(b'name: "tiny"', b'name: "tiny\xff"'))
    r = deepsz("encode", "--model", not_utf8, "--weights", weights, "--eb-all", "0.01",
               "-o", tmp_path / "d.dsz")
    assert r.returncode == 1 and "not UTF-8" in r.stderr and "Traceback" not in r.stderr


def test_dense_layer_warns_but_round_trips(pruned, tmp_path):
    _, weights, _ = pruned
    r = deepsz("encode", "--weights", weights, "--eb-all", "0.01", "--layers", "conv1", "-o",
               tmp_path / "m.dsz")
    assert r.returncode == 0 and "warning" in r.stderr and "dense" in r.stderr


# ---- files from elsewhere: validated before anything is believed (format/validate.py) ---------

def _forged(tmp_path, good, edit=None, sections=None):
    """`good` re-packed with `edit(header)` applied and sections replaced, CRCs all valid."""
    import copy

    from deepsz_caffe.format import container

    f = container.read_file(good)
    header = copy.deepcopy(f.header)
    if edit:
        edit(header)
    path = tmp_path / "forged.dsz"
    container.write(path, header, {**f.sections, **(sections or {})})
    return path


def _set(path, value):
    def edit(header):
        target = header
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return edit


@pytest.mark.parametrize("edit, message", [
    (_set(("layers", 1, "name"), "ip1"), "lists layer 'ip1' twice"),
    (_set(("layers", 0, "shape"), [2048, 300]), "only the header has blob 0|is InnerProduct \\[2048, 300\\]"),
    (_set(("layers", 0, "nnz"), 10 ** 12), "density"),
    (_set(("layers", 0, "n_entries"), float("inf")), "Infinity is not a JSON number"),
    (_set(("layers", 0, "n_entries"), 2.0 ** 40), "field 'n_entries' is invalid"),
    (_set(("layers", 0, "error_bound"), -0.01), "field 'error_bound' is invalid"),
    (_set(("layers", 0, "data_bytes"), 1), "data_bytes is 1, its shape and streams say"),
    (_set(("blobs", 0, "index"), True), "field 'index' is invalid"),
    (_set(("blobs", 0, "shape"), [10 ** 12]), "raw_bytes"),
    (_set(("skeleton_bytes",), 1 << 34), "skeleton of 17179869184 bytes"),
    (_set(("network",), "other"), "skeleton names network 'tiny', the header 'other'"),
    (_set(("codec_versions",), {"sz2": "x"}), "codec_versions names"),
    (lambda h: h["layers"].append(dict(h["layers"][0])), "lists layer 'ip1' twice"),
    (lambda h: h.pop("format"), "header has no 'format'"),
])
def test_forged_headers_are_refused_by_decode_and_inspect(pruned, tmp_path, edit, message):
    _, weights, _ = pruned
    good = tmp_path / "m.dsz"
    encode(weights, good, eb_all=0.01)
    bad = _forged(tmp_path, good, edit)
    for run in (lambda: decode(bad, tmp_path / "out.caffemodel"), lambda: inspect(bad)):
        with pytest.raises(ContainerError, match=message):
            run()
    assert not (tmp_path / "out.caffemodel").exists()


def test_skeleton_must_agree_with_the_header(pruned, tmp_path):
    from caffe.proto import caffe_pb2

    from deepsz_caffe.codecs.lossless import compress_lossless, decompress_lossless
    from deepsz_caffe.format import container

    _, weights, _ = pruned
    good = tmp_path / "m.dsz"
    encode(weights, good, eb_all=0.01)
    f = container.read_file(good)
    net = caffe_pb2.NetParameter.FromString(decompress_lossless(f.sections["skeleton"],
                                                                f.header["skeleton_bytes"]))
    def ip2(n):
        return next(layer for layer in n.layer if layer.name == "ip2")

    for what, change in (("two layers named 'ip2'", lambda n: n.layer.append(ip2(n))),
                         ("carries blob values", lambda n: n.layer[1].blobs[0].data.extend([1.0])),
                         ("in the skeleton", lambda n: n.layer[1].blobs[0].shape.dim.__setitem__(0, 7))):
        forged = caffe_pb2.NetParameter()
        forged.CopyFrom(net)
        change(forged)
        raw = forged.SerializeToString()
        bad = _forged(tmp_path, good, _set(("skeleton_bytes",), len(raw)),
                      {"skeleton": compress_lossless(raw)})
        with pytest.raises(ContainerError, match=what):
            inspect(bad)


def test_decode_checks_nnz_against_the_decoded_mask(pruned, tmp_path):
    _, weights, _ = pruned
    good = tmp_path / "m.dsz"
    encode(weights, good, eb_all=0.01)
    meta = inspect(good)["layers"][1]

    def edit(header):  # nnz and density forged together: the header alone is consistent
        layer = header["layers"][1]
        layer["nnz"] -= 1
        layer["density"] = layer["nnz"] / (layer["dense_bytes"] // 4)

    bad = _forged(tmp_path, good, edit)
    assert inspect(bad)["layers"][1]["nnz"] == meta["nnz"] - 1  # what only decoding can show
    with pytest.raises(ContainerError, match=f"decodes to {meta['nnz']} nonzero weights"):
        decode(bad, tmp_path / "out.caffemodel")


def test_inspect_reports_sha256_and_selected_keys(pruned, tmp_path):
    import hashlib

    _, weights, _ = pruned
    path = tmp_path / "m.dsz"
    encode(weights, path, eb_all=0.01)
    r = inspect(path)
    assert r["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert r["selected_weight_bytes"] == r["fc_weight_bytes"] and r["ratio"] > 1
    assert r["selected_compressed_bytes"] == r["fc_compressed_bytes"]
    decode(path, tmp_path / "a.caffemodel", expect_sha256=r["sha256"])
    with pytest.raises(ContainerError, match="not the expected"):
        decode(path, tmp_path / "b.caffemodel", expect_sha256="ab" * 32)
    assert not (tmp_path / "b.caffemodel").exists()


def test_output_equal_to_an_input_is_refused(pruned, tmp_path):
    from deepsz_caffe.errors import DeepSZError

    _, weights, _ = pruned
    copy = tmp_path / "w.caffemodel"
    copy.write_bytes(weights.read_bytes())
    with pytest.raises(DeepSZError, match="is the input"):
        encode(copy, copy, eb_all=0.01)
    assert copy.read_bytes() == weights.read_bytes()
    encode(copy, tmp_path / "m.dsz", eb_all=0.01)
    with pytest.raises(DeepSZError, match="is the input"):
        decode(tmp_path / "m.dsz", tmp_path / "m.dsz")


def test_layers_of_other_types_need_force():
    from deepsz_caffe.errors import ConfigError
    from deepsz_caffe.format.network import resolve_bounds

    types = {"conv1": "Convolution", "bn1": "BatchNorm", "scale1": "Scale", "fc": "InnerProduct"}
    with pytest.raises(ConfigError, match=r"bn1 \(BatchNorm\), scale1 \(Scale\) are not Convolution"):
        resolve_bounds(types, None, 0.01, ["conv1", "bn1", "scale1"])
    assert resolve_bounds(types, None, 0.01, ["bn1"], force=True) == {"bn1": 0.01}
    assert resolve_bounds(types, None, 0.01, None) == {"fc": 0.01}


def test_two_weighted_layers_of_one_name_are_refused(tmp_path):
    """Encoding them would give both the second one's weights (a .dsz keys layers by name)."""
    from caffe.proto import caffe_pb2

    from deepsz_caffe.errors import CaffeIOError

    net = caffe_pb2.NetParameter(name="twice")
    for _ in range(2):
        layer = net.layer.add(name="fc", type="InnerProduct")
        blob = layer.blobs.add()
        blob.shape.dim.extend([4, 8])
        blob.data.extend(np.arange(32, dtype=np.float32).tolist())
    path = tmp_path / "twice.caffemodel"
    path.write_bytes(net.SerializeToString())
    with pytest.raises(CaffeIOError, match="several layers with weights are named 'fc'"):
        encode(path, tmp_path / "m.dsz", eb_all=0.01)


def test_dense_layers_give_one_summary_line():
    from deepsz_caffe.format.network import dense_summary

    line = dense_summary({f"conv{i}": 1.0 for i in range(54)}, 60)
    assert line.startswith("54 of 60 selected layer(s) over 50% dense (not pruned?): conv0 100%, ")
    assert "and 48 more" in line and "\n" not in line


def test_non_finite_weights_are_refused(pruned, tmp_path):
    """quant stores non-finite values verbatim (compress_bounded refuses them, encode never writes
    them): a stream that carries some is forged."""
    from deepsz_caffe.codecs import get_lossy

    _, weights, _ = pruned
    good = tmp_path / "m.dsz"
    encode(weights, good, eb_all=0.01, lossy="quant")
    meta = inspect(good)["layers"][1]
    values = np.zeros(meta["n_entries"], np.float32)
    values[7] = np.nan
    stream = get_lossy("quant").compress(values, 0.01)
    bad = _forged(tmp_path, good, _set(("layers", 1, "data_bytes"), len(stream)),
                  {f"{meta['name']}/data": stream})
    inspect(bad)  # the header is consistent
    with pytest.raises(ContainerError, match="decodes to NaN or infinite weights"):
        decode(bad, tmp_path / "out.caffemodel")
