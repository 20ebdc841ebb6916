"""deepsz-caffe: DeepSZ (Jin et al., HPDC 2019) for Caffe models.

Pipeline, one module per step: prune -> sparse -> assess -> optimize -> dsz (encode/decode);
`compress` runs steps 3-5 and verifies the result with Caffe.
"""
__version__ = "0.1.0"

from .dsz import decode, encode, inspect  # noqa: E402
from .pipeline import compress  # noqa: E402  (not `assess`: that name is the Algorithm 1 module)

__all__ = ["__version__", "encode", "decode", "inspect", "compress"]
