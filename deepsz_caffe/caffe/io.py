"""Caffe's generated protobuf module, for prototxts, solvers, Datums and the small skeleton of a
net. Model files themselves (.caffemodel bytes <-> numpy) go through caffe/wire.py only."""
import functools
import os
from pathlib import Path

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
