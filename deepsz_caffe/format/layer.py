"""One weight blob <-> (metadata, lossy data stream, lossless index stream): DeepSZ section 3.5.

Pure (no Caffe): the sparse form, a lossy codec for the data array (bound checked on every
call), and the best-fit lossless codec for the index array.
"""
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .. import sparse
from ..codecs import compress_bounded, get_lossy
from ..codecs.lossless import compress_index, decompress_index

DENSE_WARNING_DENSITY = 0.5


@dataclass(frozen=True)
class EncodedLayer:
    meta: dict          # JSON-able: shape, nnz, n_entries, error_bound, codecs, byte sizes
    data: bytes         # lossy stream of the data array
    index: bytes        # lossless stream of the index (gap) array

    @property
    def size(self) -> int:
        """Compressed bytes of the layer (data + index), as the paper counts them."""
        return len(self.data) + len(self.index)


def index_stream(sp: sparse.SparseLayer, lossless: str) -> tuple[str, bytes]:
    """(codec, bytes) of the index array; the row length lets the context model see columns."""
    row_length = math.prod(sp.shape[1:]) if len(sp.shape) > 1 else 0
    return compress_index(sp.index.tobytes(), lossless, row_length=row_length)


def round_trip(codec, sp: sparse.SparseLayer, error_bound: float) -> tuple[bytes, np.ndarray]:
    """(data stream, rebuilt dense blob) of one layer's data array at `error_bound` (checked)."""
    blob = compress_bounded(codec, sp.data, error_bound)
    return blob, sparse.to_dense(codec.decompress(blob, sp.n_entries), sp.index, sp.shape)


def encode_layer(weights: np.ndarray, error_bound: float, lossy: str | Sequence[str] = "sz2",
                 lossless: str = "best") -> EncodedLayer:
    """Encode one blob; with several lossy codecs the smallest stream wins (all meet the bound)."""
    sp = sparse.to_sparse(np.asarray(weights, dtype=np.float32))
    streams = {name: compress_bounded(get_lossy(name), sp.data, error_bound)
               for name in ((lossy,) if isinstance(lossy, str) else lossy)}
    lossy = min(streams, key=lambda name: len(streams[name]))
    data = streams[lossy]
    index_codec, index = index_stream(sp, lossless)
    meta = {
        "shape": list(sp.shape), "nnz": sp.nnz, "n_entries": sp.n_entries,
        "density": sp.nnz / max(1, int(np.prod(sp.shape))),
        "error_bound": float(error_bound), "lossy_codec": lossy, "index_codec": index_codec,
        "dense_bytes": sp.dense_bytes, "csr_bytes": sp.csr_bytes,
        "data_bytes": len(data), "index_bytes": len(index),
    }
    return EncodedLayer(meta, data, index)


def decode_layer(meta: dict, data: bytes, index: bytes) -> np.ndarray:
    """Rebuild the dense float32 blob. Filler entries come back within eb of 0 (SZ is lossy)."""
    n = int(meta["n_entries"])
    gaps = np.frombuffer(decompress_index(index, meta["index_codec"], n), dtype=np.uint8)
    values = get_lossy(meta["lossy_codec"]).decompress(data, n)
    return sparse.to_dense(values, gaps, tuple(meta["shape"]))
