"""deepsz-caffe: DeepSZ (Jin et al., HPDC 2019) for Caffe models.

The pipeline, one subpackage per concept: `sparse` (data + index arrays) -> `codecs` (lossy data,
lossless index) -> `format` (one layer, a whole net, the `.dsz` container); `caffe` (model files,
prototxt edits, TEST phases, training); `deepsz` (pruning, Algorithm 1 assessment, Algorithm 2
optimisation, the end-to-end `compress`); `paper` (the paper's numbers and experiments' inputs);
`baselines` (the comparison methods).

The public API is loaded lazily, so `import deepsz_caffe.sparse` (or `.codecs`, `.format`) loads
no Caffe, LMDB or pipeline module.
"""
from importlib import import_module

from ._version import __version__

_API = {"encode": "format.network", "decode": "format.network", "inspect": "format.network",
        "compress": "deepsz.pipeline"}

__all__ = ["__version__", *_API]


def __getattr__(name):
    if name in _API:
        return getattr(import_module(f".{_API[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
