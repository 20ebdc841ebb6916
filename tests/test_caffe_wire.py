"""deepsz_caffe.caffe.wire against protobuf itself: byte-identical caffemodels, equal blobs and
skeletons, on real Caffe nets, a legacy V1 net, hand-made unpacked encodings and hypothesis-made
nets; malformed bytes only ever raise CaffeIOError."""
import os
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks import protobuf_route as caffe_io
from deepsz_caffe.caffe import wire
from deepsz_caffe.varint import encode_one as varint
from deepsz_caffe.errors import CaffeIOError
from deepsz_caffe.paper.values import PROTOTXT
pb = caffe_io.caffe_pb2()
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def same_blobs(got, want) -> bool:
    """Same layer order, shapes, dtypes and bits (NaNs included)."""
    return list(got) == list(want) and all(
        len(got[k]) == len(want[k]) and all(
            a.dtype == b.dtype == np.float32 and a.shape == b.shape
            and np.array_equal(a.view(np.uint32), b.view(np.uint32))
            for a, b in zip(got[k], want[k])) for k in want)


def outcome(fn, *args):
    """fn's result, or the CaffeIOError message it raised."""
    try:
        return fn(*args)
    except CaffeIOError as e:
        return f"CaffeIOError: {e}"


def check_against_protobuf(net) -> None:
    """Reading, skeleton and writing of `net`'s bytes agree with caffe_io's protobuf path."""
    raw = net.SerializeToString()
    want = outcome(caffe_io.blobs, net)
    got = outcome(wire.read_blobs, raw)
    if isinstance(want, str):
        assert got == want
    else:
        assert same_blobs(got[0], want) and got[1] == caffe_io.skeleton(net)
    skeleton = caffe_io.skeleton(net)
    assert wire.skeleton(raw) == skeleton
    values = want if not isinstance(want, str) else {}
    written = outcome(lambda: caffe_io.fill(skeleton, values).SerializeToString())
    assert outcome(lambda: b"".join(wire.chunks(skeleton, values))) == written
    if not isinstance(written, str):  # round trip
        back, back_skeleton = wire.read_blobs(written)
        assert same_blobs(back, values) and back_skeleton == skeleton


# -- real nets, saved by pycaffe --------------------------------------------------------------

@pytest.mark.parametrize("name", ["lenet300", "lenet5"])
def test_pycaffe_save_is_reproduced_byte_for_byte(name, tmp_path):
    import caffe

    net = caffe.Net(str(PROTOTXT / name / "deploy.prototxt"), caffe.TEST)
    rng = np.random.default_rng(len(name))
    for blobs in net.params.values():
        for b in blobs:
            b.data[...] = rng.standard_normal(b.data.shape)
    saved = tmp_path / "saved.caffemodel"
    net.save(str(saved))
    proto = caffe_io.read_net(saved)
    blobs, skeleton = wire.read_caffemodel(saved)
    assert same_blobs(blobs, caffe_io.blobs(proto)) and skeleton == caffe_io.skeleton(proto)
    assert blobs["ip1"][0].flags.writeable  # views into the buffer read, not read-only
    out = tmp_path / "out.caffemodel"
    old = os.umask(0o027)
    try:
        wire.write_caffemodel(skeleton, blobs, out)
    finally:
        os.umask(old)
    assert out.read_bytes() == saved.read_bytes()
    assert out.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.caffemodel", "saved.caffemodel"]


def test_packed_blobs_are_views_of_the_input():
    net = v1_net()
    buf = bytearray(net.SerializeToString())
    blobs, _ = wire.read_blobs(buf)
    arr = blobs["fc"][0]
    assert np.shares_memory(arr, np.frombuffer(buf, np.uint8))
    arr[0, 0, 0, 0] = 42.0  # a writable view: the bytes change with it
    assert wire.read_blobs(bytes(buf))[0]["fc"][0][0, 0, 0, 0] == 42.0


# -- legacy V1 nets and encodings protobuf never writes itself ------------------------------

def v1_net():
    net = pb.NetParameter(name="v1", input=["data"], input_dim=[1, 3, 2, 2])
    rng = np.random.default_rng(1)
    for name, kind, dims in (("conv", "CONVOLUTION", (2, 3, 1, 1)), ("relu", "RELU", None),
                             ("fc", "INNER_PRODUCT", (1, 1, 4, 2))):
        layer = net.layers.add(name=name, type=pb.V1LayerParameter.LayerType.Value(kind),
                               bottom=["data"], top=[name])
        if dims:
            for shape in (dims, (1, 1, 1, dims[0])):
                blob = layer.blobs.add(num=shape[0], channels=shape[1], height=shape[2], width=shape[3])
                blob.data.extend(rng.standard_normal(int(np.prod(shape))).astype(np.float32).tolist())
            layer.blobs_lr.extend([1.0, 2.0])
    return net


def test_legacy_v1_net():
    net = v1_net()
    check_against_protobuf(net)
    assert list(wire.read_blobs(net.SerializeToString())[0]) == ["conv", "fc"]


def key(field, wire_type) -> bytes:
    return varint(field << 3 | wire_type)


def length_delimited(field, body: bytes) -> bytes:
    return key(field, 2) + varint(len(body)) + body


@pytest.mark.filterwarnings("ignore:overflow encountered in cast")  # caffe_io's 1e300
def test_unpacked_and_double_encodings_decode_as_protobuf_does():
    values = np.arange(1, 1001, dtype=np.float32) / 7
    unpacked = b"".join(key(5, 5) + struct.pack("<f", v) for v in values[:700])
    packed_tail = length_delimited(5, values[700:].tobytes())
    diff = b"".join(key(6, 5) + struct.pack("<f", 1.0) for _ in range(33))
    blob = (key(1, 0) + varint(9) + unpacked + packed_tail + diff + key(2, 0) + varint(1)
            + length_delimited(7, length_delimited(1, varint(1000))))  # the shape wins over num
    doubles = b"".join(key(8, 1) + struct.pack("<d", v) for v in (0.1, 0.2, 1e300))
    blob2 = length_delimited(7, length_delimited(1, varint(3))) + doubles
    layer = length_delimited(1, "ü".encode()) + length_delimited(7, blob) + length_delimited(7, blob2)
    net = pb.NetParameter.FromString(length_delimited(100, layer))
    blobs, skeleton = wire.read_blobs(length_delimited(100, layer))
    assert same_blobs(blobs, caffe_io.blobs(net)) and skeleton == caffe_io.skeleton(net)
    assert blobs["ü"][1][2] == np.float32(np.inf)  # 1e300 as float32, as numpy casts it


def test_repeated_records_merge_as_in_protobuf():
    """Last name wins, shape records concatenate their dims, int32 fields are signed."""
    shape = length_delimited(7, length_delimited(1, varint(2))) + length_delimited(7, key(1, 0) + varint(3))
    floats = length_delimited(5, np.ones(6, np.float32).tobytes())
    negative = key(1, 0) + varint(2**64 - 1) + b"".join(key(f, 0) + varint(1) for f in (2, 3, 4))
    layer = (length_delimited(1, b"first") + length_delimited(7, shape + floats)
             + length_delimited(7, negative) + length_delimited(1, b"\xff"))  # not UTF-8: bytes
    raw = length_delimited(100, layer)
    got, want = outcome(wire.read_blobs, raw), outcome(caffe_io.blobs, pb.NetParameter.FromString(raw))
    assert got == want == "CaffeIOError: layer 'b'\\xff'': blob has 0 values but shape (-1, 1, 1, 1)"
    layer = layer[:-len(length_delimited(7, negative) + length_delimited(1, b"\xff"))]
    raw = length_delimited(100, layer + length_delimited(1, b"last"))
    blobs, _ = wire.read_blobs(raw)
    assert list(blobs) == ["last"] and blobs["last"][0].shape == (2, 3)


def test_double_data_wins_over_data():
    net = pb.NetParameter()
    blob = net.layer.add(name="l").blobs.add(num=1, channels=1, height=1, width=2)
    blob.data.extend([1.0, 2.0, 3.0])
    blob.double_data.extend([0.1, 0.2])
    check_against_protobuf(net)
    assert wire.read_blobs(net.SerializeToString())[0]["l"][0].ravel().tolist() == \
        np.array([0.1, 0.2], np.float32).tolist()


def test_skeleton_with_unknown_fields_keeps_protobufs_order():
    legacy = b"".join(key(f, 0) + varint(v) for f, v in ((1, 2), (2, 1), (3, 1), (4, 1)))
    blob = pb.BlobProto.FromString(legacy + length_delimited(3, b"x") + key(12, 0) + varint(5))
    net = pb.NetParameter()
    net.layer.add(name="l").blobs.add().CopyFrom(blob)
    check_against_protobuf(net)
    values = {"l": [np.array([1.5, -2.0], np.float32).reshape(2, 1, 1, 1)]}  # num=2: 4-D legacy
    skeleton = net.SerializeToString()
    assert b"".join(wire.chunks(skeleton, values)) == \
        caffe_io.fill(skeleton, values).SerializeToString()


def test_fill_errors_are_caffe_ios():
    net = v1_net()
    skeleton = caffe_io.skeleton(net)
    good = caffe_io.blobs(net)
    for values in ({}, {**good, "fc": good["fc"][:1]},
                   {**good, "fc": [good["fc"][0][:, :, :2], good["fc"][1]]}):
        assert outcome(wire.chunks, skeleton, values) == outcome(caffe_io.fill, skeleton, values)
        assert outcome(wire.chunks, skeleton, values).startswith("CaffeIOError: ")


def test_files_unreadable_or_without_weights(tmp_path):
    assert "cannot read weights" in outcome(wire.read_caffemodel, tmp_path / "missing")
    assert "cannot read weights" in outcome(wire.read_caffemodel, tmp_path)  # a directory
    os.mkfifo(tmp_path / "fifo")  # refused without waiting for a writer
    assert "not a regular file" in outcome(wire.read_caffemodel, tmp_path / "fifo")
    (tmp_path / "fifo").unlink()
    (tmp_path / "deploy").write_bytes((PROTOTXT / "lenet5" / "deploy.prototxt").read_bytes())
    assert outcome(wire.read_caffemodel, tmp_path / "deploy").startswith("CaffeIOError: ")
    (tmp_path / "bare").write_bytes(pb.NetParameter(name="x").SerializeToString())
    assert "holds no weights" in outcome(wire.read_caffemodel, tmp_path / "bare")
    net = v1_net()
    assert "cannot write" in outcome(wire.write_caffemodel, caffe_io.skeleton(net),
                                     caffe_io.blobs(net), tmp_path / "no" / "x.caffemodel")
    (tmp_path / "dir").mkdir()  # os.replace fails after the write: the temporary file goes
    assert "cannot write" in outcome(wire.write_caffemodel, caffe_io.skeleton(net),
                                     caffe_io.blobs(net), tmp_path / "dir")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bare", "deploy", "dir"]
    assert "already holds data" in outcome(wire.chunks, net.SerializeToString(), caffe_io.blobs(net))


@pytest.mark.parametrize("raw, message", [
    (b"\x80", "truncated varint"),
    (b"\xa2\x06" + b"\xff" * 9 + b"\x7f", "runs past the end"),  # a 2**63-byte layer
    (b"\xa2\x06\x02\x3a\x05", "runs past the end"),
    (b"\x0b", "wire type 3"),
    (b"\x0f", "wire type 7"),
    (b"\x00\x00", "invalid field key 0"),
    (b"\x08" + b"\xff" * 10 + b"\x01", "longer than 10 bytes"),
    (b"\xa2\x06\x05\x3a\x03\x2a\x01\x00", "not a multiple of 4"),
])
def test_malformed_bytes_are_one_clear_error(raw, message):
    with pytest.raises(CaffeIOError, match=message):
        wire.read_blobs(raw)


# -- hypothesis: random nets, then random damage ---------------------------------------------

SPECIAL = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, 3.4e38], np.float32)


@st.composite
def nets(draw):
    legacy = draw(st.booleans())
    net = pb.NetParameter(name=draw(st.text(max_size=4)), force_backward=draw(st.booleans()))
    if draw(st.booleans()):
        net.input.append("data")
        net.input_shape.add(dim=[1, 2])
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    for _ in range(draw(st.integers(0, 4))):
        add_layer(draw, net, legacy, rng)
    if draw(st.integers(0, 9)) == 0:  # both lists: protobuf and wire must both pick `layer`
        add_layer(draw, net, not legacy, rng)
    return net


def add_layer(draw, net, legacy, rng):
    name = draw(st.text(max_size=5))
    if legacy:
        layer = net.layers.add(name=name, type=draw(st.sampled_from([4, 14, 18])))
        if draw(st.booleans()):
            layer.blobs_lr.append(1.0)
    else:
        layer = net.layer.add(name=name, type=draw(st.sampled_from(["InnerProduct", "Convolution", ""])))
        if draw(st.booleans()):
            layer.param.add(lr_mult=1.0)
            layer.inner_product_param.num_output = draw(st.integers(0, 300))
    layer.bottom.extend(draw(st.lists(st.text(max_size=3), max_size=2)))
    for _ in range(draw(st.integers(0, 3))):
        add_blob(draw, layer.blobs.add(), rng)


def add_blob(draw, blob, rng):
    if draw(st.booleans()):
        dims = draw(st.lists(st.integers(0, 5), max_size=3))
        blob.shape.SetInParent()  # an empty BlobShape is a scalar: 1 value
        blob.shape.dim.extend(dims)
        count = int(np.prod(dims))
    else:
        legacy = draw(st.lists(st.integers(0, 3), min_size=4, max_size=4))
        for field, value in zip(("num", "channels", "height", "width"), legacy):
            if value or draw(st.booleans()):
                setattr(blob, field, value)
        count = int(np.prod(legacy))
    values = rng.standard_normal(count).astype(np.float32)
    values[rng.random(count) < 0.1] = rng.choice(SPECIAL)
    as_double = draw(st.integers(0, 4)) == 0
    (blob.double_data if as_double else blob.data).extend(values.tolist())
    if as_double and draw(st.booleans()):  # ignored: double_data wins
        blob.data.extend(values[:1].tolist())
    if draw(st.integers(0, 4)) == 0:
        blob.diff.extend([0.5] * count)


@FAST
@given(nets())
def test_random_nets_match_protobuf(net):
    check_against_protobuf(net)


def mutate(raw: bytes, data) -> bytes:
    kind = data.draw(st.sampled_from(["truncate", "set", "insert", "delete"]))
    at = data.draw(st.integers(0, max(0, len(raw) - 1)))
    if kind == "truncate":
        return raw[:at]
    if kind == "insert":
        return raw[:at] + data.draw(st.binary(min_size=1, max_size=4)) + raw[at:]
    if kind == "delete":
        return raw[:at] + raw[at + 1:]
    return raw[:at] + bytes([data.draw(st.integers(0, 255))]) + raw[at + 1:]


@FAST
@given(nets(), st.data())
def test_damaged_bytes_raise_only_caffe_io_error(net, data):
    raw = net.SerializeToString()
    for _ in range(data.draw(st.integers(1, 3))):
        raw = mutate(raw, data)
    got = outcome(wire.read_blobs, raw)
    assert isinstance(got, (str, tuple))
    outcome(wire.chunks, raw, {})  # as a skeleton
    try:
        parsed = pb.NetParameter.FromString(raw)
    except Exception:  # protobuf rejects it; wire may accept what it does not need to parse
        return
    want = outcome(caffe_io.blobs, parsed)
    if isinstance(got, str):  # protobuf skips unknown groups, wire refuses them
        assert got == want or "wire type 3" in got or "wire type 4" in got
    elif not isinstance(want, str):
        assert list(got[0]) == list(want) and all(
            np.array_equal(a, b, equal_nan=True) and a.shape == b.shape
            for k in want for a, b in zip(got[0][k], want[k]))
        assert pb.NetParameter.FromString(got[1]) == pb.NetParameter.FromString(caffe_io.skeleton(parsed))
