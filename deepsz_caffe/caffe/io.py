"""Caffe model files <-> numpy, directly through `caffe_pb2.NetParameter` (no prototxt needed).

A `.caffemodel` is split into a *skeleton* (the NetParameter with every blob's data removed but
its shape kept) and the blob arrays, so a `.dsz` can carry the skeleton and rebuild a complete,
structurally identical caffemodel. Both current (`layer`) and legacy V1 (`layers`) nets, such as
the original BVLC AlexNet release, are handled.
"""
import functools
import hashlib
import os
from collections import OrderedDict
from pathlib import Path

import numpy as np

from .. import atomic
from ..atomic import read_bytes
from .wire import MAX_CAFFEMODEL_BYTES
from ..errors import CaffeIOError

os.environ.setdefault("GLOG_minloglevel", "2")


def caffe_pb2():
    """caffe's generated protobuf module (imported lazily: importing caffe loads libcaffe)."""
    try:
        from caffe.proto import caffe_pb2 as pb2
    except ImportError as e:  # pragma: no cover - setup installs caffe
        raise CaffeIOError(f"pycaffe is not importable ({e}); run `make setup`") from None
    return pb2


@functools.lru_cache(maxsize=1)
def net_parameter_class():
    """Caffe's NetParameter message class, for checking that bytes parse as Caffe will parse
    them, without loading libcaffe (importing caffe.proto runs caffe/__init__, ~0.2 s): built in
    a private descriptor pool from the descriptor caffe_pb2.py registers, so it cannot clash
    with the real module if that is imported later. Falls back to the real module if the
    generated file does not have the expected form."""
    import ast
    import importlib.util

    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    try:
        spec = importlib.util.find_spec("caffe")
        text = (Path(spec.origin).parent / "proto" / "caffe_pb2.py").read_text()
        start = text.index("AddSerializedFile(") + len("AddSerializedFile(")
        serialized = ast.literal_eval(text[start:text.index(")\n", start)])
        pool = descriptor_pool.DescriptorPool()
        pool.Add(descriptor_pb2.FileDescriptorProto.FromString(serialized))
        return message_factory.GetMessageClass(pool.FindMessageTypeByName("caffe.NetParameter"))
    except (AttributeError, OSError, ValueError, SyntaxError, TypeError, KeyError):
        return caffe_pb2().NetParameter


def _layers(net):
    """The net's layer list: `layer` for current nets, `layers` for legacy V1 nets."""
    return net.layer if len(net.layer) else net.layers


def layer_type(layer) -> str:
    """Layer type as a string; V1 enum types are mapped to their modern names."""
    if isinstance(layer.type, str):
        return layer.type
    name = caffe_pb2().V1LayerParameter.LayerType.Name(layer.type)
    return "".join(part.capitalize() for part in name.split("_"))


def blob_shape(blob) -> tuple[int, ...]:
    if blob.HasField("shape"):
        return tuple(int(d) for d in blob.shape.dim)
    return tuple(int(d) for d in (blob.num, blob.channels, blob.height, blob.width))


def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_net(path):
    """Parse a binary `.caffemodel` into a NetParameter; raise CaffeIOError if it is not one."""
    net = parse_net(read_bytes(path, "weights", CaffeIOError, MAX_CAFFEMODEL_BYTES,
                               " (Caffe reads no larger model)"), path)
    if not any(len(layer.blobs) for layer in _layers(net)):
        raise CaffeIOError(f"{path} holds no weights: is it a .caffemodel (not a prototxt/solverstate)?")
    return net


def parse_net(data: bytes, source):
    """A NetParameter from serialised bytes; CaffeIOError naming `source` if they are not one."""
    net = caffe_pb2().NetParameter()
    try:
        net.ParseFromString(data)
    except Exception as e:  # protobuf's DecodeError and friends
        raise CaffeIOError(f"{source} is not a Caffe model (protobuf parse failed: {e})") from None
    return net


def blobs(net) -> "OrderedDict[str, list[np.ndarray]]":
    """{layer name: [blob arrays]} for every layer with parameters, in net order."""
    out = OrderedDict()
    for layer in _layers(net):
        if len(layer.blobs):
            out[layer.name] = [_blob_array(b, layer.name) for b in layer.blobs]
    return out


def _blob_array(blob, layer_name) -> np.ndarray:
    shape = blob_shape(blob)
    data = blob.double_data if len(blob.double_data) else blob.data
    arr = np.asarray(data, dtype=np.float32)
    if arr.size != int(np.prod(shape)):
        raise CaffeIOError(f"layer '{layer_name}': blob has {arr.size} values but shape {shape}")
    return arr.reshape(shape)


def layer_types(net) -> "OrderedDict[str, str]":
    return OrderedDict((layer.name, layer_type(layer)) for layer in _layers(net) if len(layer.blobs))


def skeleton(net) -> bytes:
    """The net serialised with all blob values removed (shapes kept)."""
    bare = caffe_pb2().NetParameter()
    bare.CopyFrom(net)
    for layer in _layers(bare):
        for b in layer.blobs:
            b.ClearField("data")
            b.ClearField("double_data")
            b.ClearField("diff")
            b.ClearField("double_diff")
    return bare.SerializeToString()


def fill(net_bytes: bytes, values: "dict[str, list[np.ndarray]]"):
    """A NetParameter from a skeleton with every blob filled from `values` (float32)."""
    net = caffe_pb2().NetParameter()
    net.ParseFromString(net_bytes)
    for layer in _layers(net):
        if not len(layer.blobs):
            continue
        arrays = values.get(layer.name)
        if arrays is None or len(arrays) != len(layer.blobs):
            raise CaffeIOError(f"no values for the {len(layer.blobs)} blobs of layer '{layer.name}'")
        for blob, arr in zip(layer.blobs, arrays):
            shape = blob_shape(blob)
            if arr.size != int(np.prod(shape)):
                raise CaffeIOError(f"layer '{layer.name}': {arr.size} values for blob shape {shape}")
            blob.data.extend(np.ascontiguousarray(arr, dtype=np.float32).ravel().tolist())
    return net


def write_net(net, path) -> Path:
    """Write a NetParameter as a binary `.caffemodel`, atomically."""
    return atomic.write_bytes(path, net.SerializeToString())


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
