"""The paper's two-array sparse form of a pruned layer (DeepSZ section 3.2).

A layer is flattened row-major (C order, as Caffe stores blobs) and kept as
a float32 *data* array of nonzero weights plus a uint8 *index* array of gaps.

Gap convention: the gap of an entry is its flat position minus the position
of the previous entry, with the first entry counted from position -1; so a
nonzero at position 0 has gap 1, and positions = cumsum(index) - 1.
A gap above 255 does not fit a byte: as in the paper and Han et al.'s Deep
Compression, it is split by filler entries (data 0.0, index 255), each
advancing the position by 255, followed by the real entry carrying the
remaining gap in 1..255. Trailing zeros need no entries: shape gives the
length. Zeros are dropped whatever their sign, so -0.0 comes back as +0.0.
"""

import math
from dataclasses import dataclass

import numpy as np

from deepsz_caffe.errors import CodecError

_MAX_GAP = 255
CSR_BYTES_PER_ENTRY = 5  # 32-bit value + 8-bit gap: the paper's "40 bits"


@dataclass(frozen=True, eq=False)  # eq=False: element-wise array == has no single truth value
class SparseLayer:
    """One pruned layer in sparse form; fillers are ordinary entries of data/index."""

    data: np.ndarray
    index: np.ndarray
    shape: tuple[int, ...]

    @property
    def n_entries(self) -> int:
        """Stored entries, fillers included: what the compressors see."""
        return len(self.data)

    @property
    def nnz(self) -> int:
        """Real nonzero weights (fillers hold exact 0.0 until a lossy step)."""
        return int(np.count_nonzero(self.data))

    @property
    def csr_bytes(self) -> int:
        """Size in the paper's sparse form, the baseline for its ratios."""
        return CSR_BYTES_PER_ENTRY * self.n_entries

    @property
    def dense_bytes(self) -> int:
        """Size of the original float32 layer."""
        return 4 * math.prod(self.shape)


def density(weights: np.ndarray) -> float:
    """Fraction of nonzero weights (0.0 for an empty array)."""
    return np.count_nonzero(weights) / weights.size if weights.size else 0.0


def to_sparse(weights: np.ndarray) -> SparseLayer:
    """Encode a layer of any ndim; inverse of to_dense."""
    flat = np.ascontiguousarray(weights, dtype=np.float32).reshape(-1)
    pos = np.flatnonzero(flat)
    gaps = np.diff(pos, prepend=-1)
    fillers = (gaps - 1) // _MAX_GAP  # leaves each real gap in 1..255
    real_at = np.cumsum(fillers + 1) - 1  # where each real entry lands after its fillers
    n_entries = int(real_at[-1]) + 1 if pos.size else 0
    data = np.zeros(n_entries, dtype=np.float32)
    index = np.full(n_entries, _MAX_GAP, dtype=np.uint8)
    data[real_at] = flat[pos]
    index[real_at] = gaps - _MAX_GAP * fillers
    return SparseLayer(data=data, index=index, shape=tuple(int(d) for d in np.shape(weights)))


def to_dense(data: np.ndarray, index: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Decode to a float32 array of `shape`.

    Fillers write their own data value. That is 0.0 for exact data; after a
    lossy round trip it is within the error bound of 0, the same error any
    stored weight may carry, so it is written rather than special-cased.
    """
    data = np.asarray(data)
    index = np.asarray(index)
    if data.ndim != 1 or index.ndim != 1 or len(data) != len(index):
        raise CodecError(
            f"sparse layer: data {data.shape} and index {index.shape} must be 1-D of equal length"
        )
    if index.size and not np.issubdtype(index.dtype, np.integer):
        raise CodecError(f"sparse layer: index must be integers, got {index.dtype}")
    if index.size and (index.min() < 1 or index.max() > _MAX_GAP):
        raise CodecError(f"sparse layer: gaps must lie in 1..{_MAX_GAP}")
    size = math.prod(shape)
    # positions = cumsum(index) - 1, in one int64 buffer: widening first and summing in place is
    # ~2.5x faster than cumsum(uint8, dtype=int64), which casts through a buffer; folding the -1
    # into the first gap saves a pass. int64 because fancy indexing converts narrower ints anyway.
    positions = index.astype(np.int64)
    if positions.size:
        positions[0] -= 1
        np.cumsum(positions, out=positions)
        if positions[-1] >= size:
            raise CodecError(
                f"sparse layer: index reaches position {positions[-1]} but shape {tuple(shape)} "
                f"holds only {size} values"
            )
    out = np.zeros(size, dtype=np.float32)
    out[positions] = data
    return out.reshape(shape)
