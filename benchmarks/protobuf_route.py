"""The protobuf route to a .caffemodel (caffe_pb2.NetParameter), kept only as a reference: the
oracle tests/test_caffe_wire.py checks the library's zero-copy reader/writer (caffe/wire.py)
against, and the baseline benchmarks/caffemodel_io.py times it against."""
from collections import OrderedDict

import numpy as np

from deepsz_caffe import atomic
from deepsz_caffe.caffe.io import caffe_pb2
from deepsz_caffe.caffe.wire import MAX_CAFFEMODEL_BYTES
from deepsz_caffe.errors import CaffeIOError


def _layers(net):
    """The net's layer list: `layer` for current nets, `layers` for legacy V1 nets."""
    return net.layer if len(net.layer) else net.layers


def blob_shape(blob) -> tuple[int, ...]:
    if blob.HasField("shape"):
        return tuple(int(d) for d in blob.shape.dim)
    return tuple(int(d) for d in (blob.num, blob.channels, blob.height, blob.width))


def read_net(path):
    """Parse a binary `.caffemodel` into a NetParameter; raise CaffeIOError if it is not one."""
    net = parse_net(atomic.read_bytes(path, "weights", CaffeIOError, MAX_CAFFEMODEL_BYTES), path)
    if not any(len(layer.blobs) for layer in _layers(net)):
        raise CaffeIOError(f"{path} holds no weights")
    return net


def parse_net(data: bytes, source):
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


def skeleton(net) -> bytes:
    """The net serialised with all blob values removed (shapes kept)."""
    bare = caffe_pb2().NetParameter()
    bare.CopyFrom(net)
    for layer in _layers(bare):
        for b in layer.blobs:
            for f in ("data", "double_data", "diff", "double_diff"):
                b.ClearField(f)
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


def write_net(net, path):
    """Write a NetParameter as a binary `.caffemodel`, atomically."""
    return atomic.write_bytes(path, net.SerializeToString())
