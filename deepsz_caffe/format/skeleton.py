"""The skeleton a .dsz carries (its caffemodel with every blob's values removed), described as
decode will write it: read with caffe.wire's record reader, the one `wire.write_caffemodel` fills,
so what is checked is what is written, and no Caffe is imported (except to name the layer types
of a legacy V1 net)."""
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
    which, records = wire._layer_records(buf)
    layers = []
    for _, start, end in records:
        layer = wire._Layer(buf, start, end, which)
        blobs = [wire._Blob(buf, vs, ve) for _, vs, ve in layer.blobs]
        layers.append(SkeletonLayer(layer.name, _layer_type(buf, start, end, which),
                                    tuple(b.shape() for b in blobs),
                                    any(any(b.chunks.values()) for b in blobs)))
    return _text(_last(buf, 0, len(buf), _NET_NAME, wire.LEN)), layers


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

    try:
        name = caffe_pb2().V1LayerParameter.LayerType.Name(layer_type)
    except ValueError:
        return f"<unknown V1 layer type {layer_type}>"
    return "".join(part.capitalize() for part in name.split("_"))


def _layer_type(buf, start: int, end: int, which: int) -> str | int:
    field, wire_type = _TYPE[which]
    value = _last(buf, start, end, field, wire_type)
    if wire_type == wire.VARINT:
        return wire._varint(value, 0, len(value))[0] if value is not None else 0
    return _text(value)


def _last(buf, start: int, end: int, field: int, wire_type: int):
    """The raw value of the last `field` record between start and end (protobuf's "last one
    wins" for a singular field), or None."""
    found, pos = None, start
    while pos < end:
        f, w, vs, ve = wire._field(buf, pos, end)
        if f == field and w == wire_type:
            found = buf[vs:ve]
        pos = ve
    return found


def _text(value) -> str | bytes:
    raw = bytes(value) if value is not None else b""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw
