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

The format alone cannot tell a filler from a kept weight whose gap is exactly 255 (both carry
index 255; [255, 10] is a filler then a weight at +265, or weights at +255 and +10). Exact data
tells them apart (fillers hold 0.0); after a lossy step it no longer does, so the encoder lists
the kept weights at gap 255 (`kept_at_max_gap`, usually none) and the decoder zeroes every other
gap-255 entry (`filler_entries`, `to_dense(..., fillers=)`).
"""

import math
from dataclasses import dataclass

import numpy as np

from deepsz_caffe.errors import CodecError

_MAX_GAP = 255
_CHUNK = 1 << 16  # entries per to_dense step: their int64 positions (512 KiB) fit in L2 cache
CSR_BYTES_PER_ENTRY = 5  # 32-bit value + 8-bit gap: the paper's "40 bits"
# A kept weight a lossy step rounded to 0 is written as this, so it stays in the mask; it is
# within any bound the zero was (float32 |w - FLT_MIN| rounds to |w| for bounds above 1e-30).
KEPT_NONZERO = np.finfo(np.float32).tiny


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


def gap_entries(flat: np.ndarray, max_gap: int = _MAX_GAP):
    """Gaps of the nonzeros of a 1-D array, split by fillers so each fits 1..max_gap.

    Returns (gaps int64 with fillers = max_gap, where each real entry landed, flat positions of
    the nonzeros). Deep Compression's 5-bit variant uses max_gap = 31."""
    pos = np.flatnonzero(flat)
    gaps = np.diff(pos, prepend=-1)
    big, fillers = _fillers(gaps, max_gap)
    real_at = np.arange(gaps.size)  # where each real entry lands after the fillers before it
    if big.size:
        shift = np.zeros(gaps.size, dtype=np.int64)
        shift[big] = fillers
        real_at += np.cumsum(shift)
    return _insert_fillers(gaps, big, fillers, max_gap), real_at, pos


def split_gaps(gaps: np.ndarray, max_gap: int = _MAX_GAP) -> np.ndarray:
    """Gaps with fillers (value max_gap) inserted before each gap over max_gap, as the paper."""
    return _insert_fillers(gaps, *_fillers(gaps, max_gap), max_gap)


def _fillers(gaps: np.ndarray, max_gap: int) -> tuple[np.ndarray, np.ndarray]:
    """(indices of the gaps over max_gap, how many fillers each needs)."""
    big = np.flatnonzero(gaps > max_gap)
    return big, (gaps[big] - 1) // max_gap


def _insert_fillers(gaps: np.ndarray, big: np.ndarray, fillers: np.ndarray, max_gap: int) -> np.ndarray:
    if not big.size:  # the common case: nothing to insert, no copy
        return gaps
    out = gaps.copy()
    out[big] -= max_gap * fillers  # leaves each real gap in 1..max_gap
    return np.insert(out, np.repeat(big, fillers), max_gap)


def to_sparse(weights: np.ndarray) -> SparseLayer:
    """Encode a layer of any ndim; inverse of to_dense."""
    flat = np.ascontiguousarray(weights, dtype=np.float32).reshape(-1)
    gaps, real_at, pos = gap_entries(flat)
    data = np.zeros(len(gaps), dtype=np.float32)
    data[real_at] = flat[pos]
    return SparseLayer(data=data, index=gaps.astype(np.uint8), shape=tuple(int(d) for d in np.shape(weights)))


def kept_at_max_gap(data: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Ordinals, among the entries of gap 255, of those that hold a kept weight (not a filler).

    Needs exact data (fillers are 0.0 there); usually empty, as a kept weight must follow
    exactly 254 zeros."""
    return np.flatnonzero(np.asarray(data)[np.asarray(index) == _MAX_GAP])


def filler_entries(index: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """Entry numbers of the fillers: every gap-255 entry except the `kept_at_max_gap` ordinals."""
    at_max = np.flatnonzero(np.asarray(index) == _MAX_GAP)
    kept = np.asarray(kept)
    if kept.size and (kept.ndim != 1 or not np.issubdtype(kept.dtype, np.integer)
                      or kept[0] < 0 or kept[-1] >= at_max.size or np.any(np.diff(kept) <= 0)):
        raise CodecError(f"sparse layer: the kept weights at gap {_MAX_GAP} must be increasing "
                         f"ordinals below {at_max.size} (the gap-{_MAX_GAP} entries)")
    return np.delete(at_max, kept) if kept.size else at_max


def to_dense(data: np.ndarray, index: np.ndarray, shape: tuple[int, ...],
             fillers: np.ndarray | None = None) -> np.ndarray:
    """Decode to a float32 array of `shape`.

    Without `fillers`, every entry writes its own data value: exact for exact data, and within
    the error bound of 0 at a filler after a lossy round trip. With `fillers` (entry numbers,
    from `filler_entries`) the nonzeros of the result are exactly the kept positions: fillers
    write 0.0 and a kept weight that came back as 0 writes KEPT_NONZERO.
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
    patches = []  # (sorted entry numbers, value written there): no copy of data needed
    if fillers is not None:
        fillers = np.sort(fillers)
        if fillers.size and (not np.issubdtype(fillers.dtype, np.integer)
                             or fillers[0] < 0 or fillers[-1] >= data.size):
            raise CodecError(f"sparse layer: fillers must be entry numbers below {data.size}")
        fillers = fillers.astype(np.int64, copy=False)  # an empty list comes as float64
        patches = [(np.flatnonzero(data == 0), KEPT_NONZERO), (fillers, 0.0)]  # fillers last
    size = math.prod(shape)
    out = np.zeros(size, dtype=np.float32)
    # positions = cumsum(index) - 1, built a chunk at a time in one reused int64 buffer that stays
    # in cache (a full-length one costs n * 8 bytes of fresh pages); widening first and summing in
    # place is ~3x faster than cumsum(uint8, dtype=int64), which casts through a buffer. int64
    # because fancy indexing would convert narrower positions to it anyway.
    buf = np.empty(min(_CHUNK, index.size), dtype=np.int64)
    last = -1
    for start in range(0, index.size, _CHUNK):
        positions = buf[:index.size - start]
        positions[...] = index[start:start + _CHUNK]
        positions[0] += last
        np.cumsum(positions, out=positions)
        last = int(positions[-1])
        if last >= size:
            raise CodecError(
                f"sparse layer: index reaches position {last} but shape {tuple(shape)} "
                f"holds only {size} values"
            )
        out[positions] = data[start:start + _CHUNK]
        for entries, value in patches:
            lo, hi = np.searchsorted(entries, (start, start + _CHUNK))
            out[positions[entries[lo:hi] - start]] = value
    return out.reshape(shape)
