"""The skeleton a .dsz carries (its caffemodel with every blob's values removed), described as
decode will write it: read with caffe.wire's record reader, the one `wire.write_caffemodel` fills,
so what is checked is what is written, and no Caffe is imported (except to name the layer types
of a legacy V1 net, and in `canonical`)."""
from collections import OrderedDict
from dataclasses import dataclass

from ..caffe import wire
from ..errors import CaffeIOError

_NET_NAME = 1                                           # NetParameter.name
_TYPE = {wire.NET_LAYER: (2, wire.LEN), wire.NET_V1_LAYERS: (5, wire.VARINT)}  # string / V1 enum


@dataclass(frozen=True)
class SkeletonLayer:
    name: str | bytes                  # bytes if not valid UTF-8, as pycaffe gives it
    type: str | int                    # a V1 net's LayerType enum number (see type_name)
    shapes: tuple[tuple[int, ...], ...]
    carries_values: bool               # a blob holds data, diff or double values


def describe(skeleton: bytes) -> tuple[str | bytes, list[SkeletonLayer]]:
    """(network name, every layer in order); CaffeIOError if the bytes are not a Caffe net."""
    buf = memoryview(skeleton)
    layers = []
    for layer in wire.net_layers(buf):
        blobs = layer.blob_values(buf)
        layers.append(SkeletonLayer(layer.name, _layer_type(buf, layer),
                                    tuple(b.shape() for b in blobs), any(b.has_values for b in blobs)))
    return wire.text(wire.last_value(buf, 0, len(buf), _NET_NAME, wire.LEN)), layers


def layer_types(skeleton: bytes) -> "OrderedDict[str, str]":
    """{layer name: type} of every layer with blobs, in net order (V1 types by modern names)."""
    return OrderedDict((layer.name, type_name(layer.type)) for layer in describe(skeleton)[1]
                       if layer.shapes)


def select_layers(types: "dict[str, str]", requested=None) -> list[str]:
    """Layers whose weight blob is compressed: every InnerProduct by default, or `requested`."""
    if requested is None:
        chosen = [name for name, t in types.items() if t == "InnerProduct"]
        if not chosen:
            raise CaffeIOError("the net has no InnerProduct layers; name layers with --layers")
        return chosen
    unknown = [name for name in requested if name not in types]
    if unknown:
        raise CaffeIOError(f"layer(s) {', '.join(map(repr, unknown))} not in the net; "
                           f"layers with weights: {', '.join(types)}")
    return list(requested)


def canonical(skeleton: bytes, source) -> tuple[str, bytes]:
    """(network name, the skeleton as protobuf writes it). The .dsz stores this form: protobuf
    has checked every nested message the record reader carries as opaque bytes (so a decoded
    model is one Caffe can parse), and fields are in its canonical order whatever the input's.
    Only the small skeleton is parsed, never the blob values."""
    from ..caffe.io import caffe_pb2

    net = caffe_pb2().NetParameter()
    try:
        net.ParseFromString(bytes(skeleton))
    except Exception as e:  # protobuf's DecodeError and friends
        raise CaffeIOError(f"{source} is not a Caffe model (protobuf parse failed: {e})") from None
    return net.name, net.SerializeToString()


def check_parses(skeleton: bytes) -> None:
    """CaffeIOError unless protobuf parses the skeleton as Caffe's NetParameter: decode writes it
    with blob values added, and Caffe must then load it (a forged layer parameter of the wrong
    wire type passes the record reader above but not protobuf)."""
    from google.protobuf.message import DecodeError

    from ..caffe.io import net_parameter_class

    try:
        net_parameter_class().FromString(bytes(skeleton))
    except (DecodeError, RecursionError, ValueError) as e:
        raise CaffeIOError(f"protobuf cannot parse it as a NetParameter: {e}") from None


def type_name(layer_type: str | int) -> str:
    """A layer type as format.network's header records it (V1 enums by their modern names)."""
    if isinstance(layer_type, str):
        return layer_type
    from ..caffe.io import caffe_pb2
    from ..caffe.upgrade import v1_type_name

    try:
        return v1_type_name(caffe_pb2().V1LayerParameter.LayerType.Name(layer_type))
    except ValueError:
        return f"<unknown V1 layer type {layer_type}>"


def _layer_type(buf, layer: wire.Layer) -> str | int:
    field, wire_type = _TYPE[layer.which]
    value = wire.last_value(buf, layer.start, layer.end, field, wire_type)
    if wire_type == wire.VARINT:
        return wire.read_varint(value, 0, len(value))[0] if value is not None else 0
    return wire.text(value)
