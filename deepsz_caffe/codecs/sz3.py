"""SZ3 through its pysz binding, absolute-error mode on 1-D float32.

pysz raises ValueError on most bad streams but silently decodes many
corrupted ones into garbage (measured), so it gets the common framing and
CRC check like the other backends. The default SZ3 algorithm is kept.
"""

import numpy as np
from pysz import sz, szConfig, szErrorBoundMode

from deepsz_caffe.codecs.base import FramedCodec, package_version
from deepsz_caffe.errors import CodecError


class SZ3Codec(FramedCodec):
    name = "sz3"
    mode_id = 2

    def library_version(self) -> str:
        return f"pysz {package_version('pysz')}"

    def _encode(self, data: np.ndarray, error_bound: float) -> bytes:
        config = szConfig(data.shape)
        config.errorBoundMode = szErrorBoundMode.ABS
        config.absErrorBound = error_bound
        compressed, _ratio = sz.compress(data, config)
        return compressed.tobytes()

    def _decode(self, payload: bytes, n: int) -> np.ndarray:
        try:
            out, _config = sz.decompress(np.frombuffer(payload, dtype=np.uint8), np.float32, (n,))
        except (ValueError, RuntimeError) as e:
            raise CodecError(f"sz3: cannot decode stream: {e}") from e
        return out
