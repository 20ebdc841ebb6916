"""Skeleton forgeries (the caffemodel structure a .dsz carries) and decompression bombs.

Skeletons: empty, carrying blob data or diffs, layers renamed, removed, duplicated or retyped,
blob shapes that disagree with the header (same size or not, legacy 4-d fields), a blob too many
or too few, a network name the header does not give, non-protobuf bytes, a truncated message
and 100,000 nested groups. The header's skeleton_bytes is kept consistent, so only the
skeleton's content is wrong.

Bombs: zstd frames of RLE blocks (4 bytes per 128 KiB of output: 1 GiB in 32 KiB) whose declared
content size matches a forged header size, for the skeleton, a blob and an index stream."""
import struct

import zstandard

from deepsz_caffe.varint import encode_one as _varint

from forge import Forgery, with_value

NEST_DEPTH = 100_000
_RLE_BLOCK = 1 << 17  # zstd's largest block


def zstd_rle(size: int, byte: int = 0) -> bytes:
    """A valid zstd frame of `size` copies of `byte`, declaring its size (single segment)."""
    head = b"\x28\xb5\x2f\xfd" + bytes([0xE0]) + struct.pack("<Q", size)  # FCS 8 bytes, single segment
    full, rest = divmod(size, _RLE_BLOCK)
    sizes = [_RLE_BLOCK] * full + ([rest] if rest else [])
    out = bytearray(head)
    for k, n in enumerate(sizes):  # block header: last-block bit, type 1 (RLE), size; then the byte
        out += struct.pack("<I", (n << 3) | (1 << 1) | int(k == len(sizes) - 1))[:3] + bytes([byte])
    return bytes(out)


def _net(g):
    from caffe.proto import caffe_pb2

    net = caffe_pb2.NetParameter()
    raw = zstandard.ZstdDecompressor().decompress(g.sections["skeleton"])
    net.ParseFromString(raw)
    return net


def _layer(net, name: str):
    return next(layer for layer in net.layer if layer.name == name)


def _with_skeleton(g, raw: bytes) -> bytes:
    header = with_value(g.header, ("skeleton_bytes",), len(raw))
    # with the checksum the encoder writes: without one the file is refused for that alone
    return g.image(header, skeleton=zstandard.ZstdCompressor(level=3, write_checksum=True).compress(raw))


def _edits(g, model_bytes: bytes) -> dict:
    """{what: skeleton bytes}, each edit applied to a fresh copy of the genuine skeleton."""
    out = {"empty": b"", "full-model": model_bytes, "not-protobuf": b"\xff" * 64}
    out["truncated"] = _net(g).SerializeToString()[:-7]
    field = 999 << 3  # an unknown field: parsers descend into its groups all the same
    out["nested-groups"] = _varint(field | 3) * NEST_DEPTH + _varint(field | 4) * NEST_DEPTH

    def edit(what, fn):
        net = _net(g)
        fn(net)
        out[what] = net.SerializeToString()

    edit("diff", lambda net: _layer(net, "ip3").blobs[1].diff.extend([1.0] * 10))
    edit("renamed", lambda net: setattr(_layer(net, "ip2"), "name", "ipX"))
    edit("layer-removed", lambda net: net.layer.remove(_layer(net, "ip3")))
    edit("layer-duplicated", lambda net: net.layer.add().CopyFrom(_layer(net, "ip2")))
    edit("retyped", lambda net: setattr(_layer(net, "ip1"), "type", "Convolution"))
    edit("transposed", lambda net: _set_dims(_layer(net, "ip1").blobs[0], [784, 300]))
    edit("resized", lambda net: _set_dims(_layer(net, "ip1").blobs[0], [300, 785]))
    edit("legacy-shape", lambda net: _legacy_dims(_layer(net, "ip2").blobs[0]))
    edit("blob-added", lambda net: _layer(net, "ip2").blobs.add().CopyFrom(_layer(net, "ip2").blobs[1]))
    edit("blob-removed", lambda net: _layer(net, "scale").ClearField("blobs"))
    edit("network-renamed", lambda net: setattr(net, "name", "LeNet-5"))
    edit("huge-bias", lambda net: _set_dims(_layer(net, "ip1").blobs[1], [2 ** 31, 2 ** 31]))
    # layer parameters the record reader skips but protobuf (and so Caffe) cannot parse: decode
    # must refuse them, not write a caffemodel Caffe refuses (issue 23)
    genuine = _net(g).SerializeToString()
    for what, param in (("truncated-varint", b"\x08\xff"), ("field-zero", b"\x00\x01"),
                        ("overrunning-length", b"\x1a\x7f\x00"), ("stray-end-group", b"\x0c")):
        out[f"unparseable-layer-param-{what}"] = _with_layer_param(genuine, param)
    return out


def _with_layer_param(skeleton: bytes, param: bytes) -> bytes:
    """The skeleton with an inner_product_param (LayerParameter field 117) holding `param`
    appended to its first layer (a LEN record, which the record reader does not descend into)."""
    from deepsz_caffe.caffe import wire

    layer = wire.net_layers(memoryview(skeleton))[0]
    body = skeleton[layer.start:layer.end] + _varint(117 << 3 | 2) + _varint(len(param)) + param
    # the layer record's tag and length are rebuilt with the new length
    return (skeleton[:layer.record] + _varint(layer.which << 3 | 2) + _varint(len(body)) + body
            + skeleton[layer.end:])


def _set_dims(blob, dims):
    blob.shape.ClearField("dim")
    blob.shape.dim.extend(dims)


def _legacy_dims(blob):
    dims = list(blob.shape.dim)
    blob.ClearField("shape")
    blob.num, blob.channels, blob.height, blob.width = 1, 1, *dims


def _bombs(g):
    where = f"{g.name}/bomb"
    for what, size in (("1GiB", 1 << 30), ("16GiB", 1 << 34)):
        header = with_value(g.header, ("skeleton_bytes",), size)
        yield Forgery(f"{where}/skeleton-{what}", g.image(header, skeleton=zstd_rle(size)))
    blob = next(k for k, b in enumerate(g.header["blobs"]) if b["raw_bytes"] > 100)
    header = with_value(g.header, ("blobs", blob, "raw_bytes"), 1 << 30)
    yield Forgery(f"{where}/blob-1GiB", g.image(header, **{g.header["blobs"][blob]["name"].replace("/", "__"):
                                                           zstd_rle(1 << 30)}))
    for i, meta in enumerate(g.header["layers"]):
        if meta["index_codec"] == "zstd":
            header = with_value(g.header, ("layers", i, "n_entries"), 1 << 30)
            yield Forgery(f"{where}/{meta['name']}-index-1GiB",
                          g.image(header, **{f"{meta['name']}__index": zstd_rle(1 << 30, 1)}))
            break


def generate(genuine: dict, model_bytes: bytes):
    g = next(iter(genuine.values()))
    for what, raw in _edits(g, model_bytes).items():
        yield Forgery(f"{g.name}/skeleton/{what}", _with_skeleton(g, raw))
    yield from _bombs(g)
