"""Caffe's generated protobuf module, for prototxts, solvers, Datums and the small skeleton of a
net. Model files themselves (.caffemodel bytes <-> numpy) go through caffe/wire.py only."""
import os

from ..errors import CaffeIOError

os.environ.setdefault("GLOG_minloglevel", "2")


def caffe_pb2():
    """caffe's generated protobuf module (imported lazily: importing caffe loads libcaffe)."""
    try:
        from caffe.proto import caffe_pb2 as pb2
    except ImportError as e:  # pragma: no cover - setup installs caffe
        raise CaffeIOError(f"pycaffe is not importable ({e}); run `make setup`") from None
    return pb2
