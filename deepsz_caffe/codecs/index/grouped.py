"""The ctx codec's fast mode: the position mask as zero runs, grouped by row and column density.

The adaptive bitmap model of codecs/index/context.py costs ~40 ns for every weight position, zeros
included: 1.5 s for AlexNet's fc6. Here only the kept positions cost work. Rows and
columns of the [rows, row_length] mask are split into density classes (empty, full, and
up to 8 quantile buckets of the rest; the class of every row and column is sent), so that
inside each (row class, column class) block the mask is close to i.i.d. at the block's
own density. Each block, read in row-major order, is sent as the lengths of its zero runs,
coded by pcodec: a tANS coder over an adaptive binning, measured within 0.2-0.8% of the
runs' order-0 entropy and decoding ~1.5 ns per run, 15x faster than constriction's batch
ANS decode of the same runs (benchmarks/beyond_codecs.py). The encoder tries every split
in _SPLITS on both axes and keeps the smallest stream if it saves _SPLIT_MIN_GAIN over
leaving both axes whole (split 0: no classes sent; right when the row length is unknown,
and a single block decodes without sorting).

Payload, little-endian: _HEAD (bitmap length, row length, row split, column split), then
sections, each a uint32 byte count and a stream: row classes if split, column classes if
split (uint8, zstd), then every block (a, b) of bucket classes, row class major (pcodec
uint32 runs; empty for a block without ones).
"""

import itertools
import struct

import numpy as np
import pcodec
import zstandard

from deepsz_caffe.errors import CodecError

_HEAD = struct.Struct("<QQBB")
_SECTION = struct.Struct("<I")
_EMPTY, _FULL, _FIRST_BUCKET = 0, 1, 2
_SPLITS = (0, 1, 2, 4, 8)
# A split must pay for its decode time (sorting the blocks' positions back together: ~45 ms
# against ~13 ms unsplit on AlexNet's fc6), so it is kept only if it saves at least this much.
_SPLIT_MIN_GAIN = 0.01
_CONFIG = pcodec.ChunkConfig(compression_level=8, delta_spec=pcodec.DeltaSpec.no_op(),
                             mode_spec=pcodec.ModeSpec.classic())
# pcodec raises RuntimeError on streams it cannot parse (TypeError: another dtype), zstandard ZstdError
DECODE_ERRORS = (RuntimeError, TypeError, ValueError, struct.error, zstandard.ZstdError)


def encode(mask: np.ndarray, row_length: int) -> bytes:
    """Code a flat 0/1 mask (length > 0) laid out in rows of row_length."""
    grid = _grid(mask.astype(bool), row_length)
    # Splitting an axis needs the other one longer than 1 (else its classes are the mask itself).
    row_density, col_density = grid.mean(axis=1), grid.mean(axis=0)
    rows = {k: _classes(row_density, k) for k in (_SPLITS if grid.shape[1] > 1 else (0,))}
    cols = {k: _classes(col_density, k) for k in (_SPLITS if grid.shape[0] > 1 else (0,))}
    payloads = [_payload(grid, mask.size, row_split, col_split, rows[row_split], cols[col_split])
                for row_split, col_split in itertools.product(rows, cols)]
    unsplit, best = payloads[0], min(payloads, key=len)
    return best if len(best) < (1 - _SPLIT_MIN_GAIN) * len(unsplit) else unsplit


def _payload(grid: np.ndarray, length: int, row_split: int, col_split: int, rows, cols) -> bytes:
    sections = [_pack_classes(c) for c in (rows, cols) if c is not None]
    for r, c in _blocks(rows, cols, row_split, col_split, grid.shape):
        sections.append(_pack_runs(grid[np.ix_(r, c)].reshape(-1)))
    return _HEAD.pack(length, grid.shape[1], row_split, col_split) + b"".join(
        _SECTION.pack(len(s)) + s for s in sections)


def decode(payload: bytes, max_length: int, max_ones: int) -> np.ndarray:
    """Gaps between the ones (first from position -1).

    max_length and max_ones bound what the stream may claim, so that a forged stream cannot
    make the decoder allocate more than a genuine one would."""
    if len(payload) < _HEAD.size:
        raise CodecError("ctx: grouped stream shorter than its header")
    length, row_length, row_split, col_split = _HEAD.unpack_from(payload)
    if not 1 <= length <= max_length or not 1 <= row_length <= length:
        raise CodecError(f"ctx: bitmap length {length} / row length {row_length} impossible")
    if row_split not in _SPLITS or col_split not in _SPLITS:
        raise CodecError(f"ctx: unknown density split {row_split}/{col_split}")
    sections = _Sections(payload, _HEAD.size)
    n_rows = -(-length // row_length)
    rows = _read_classes(sections, n_rows, row_split)
    cols = _read_classes(sections, row_length, col_split)
    if rows is None and cols is None:  # one block in flat order: its runs are the answer
        gaps = _unpack_runs(sections.next(), max_ones) + np.uint32(1)
        if gaps.size and gaps.min() == 0:
            raise CodecError("ctx: a zero run of 2**32 - 1 positions")
    else:  # blocks interleave: place every one, then sort (measured 2.5x faster than
        # marking a bool grid and scanning it, on AlexNet's fc6; uint32 keys sort 2x faster)
        key = np.uint32 if n_rows * row_length <= 1 << 32 else np.int64
        full_rows = np.flatnonzero(rows == _FULL) if rows is not None else np.zeros(0, np.int64)
        full_cols = np.flatnonzero(cols == _FULL) if cols is not None else np.zeros(0, np.int64)
        others = np.arange(n_rows) if rows is None else np.flatnonzero(rows != _FULL)
        budget = max_ones - full_rows.size * row_length - others.size * full_cols.size
        if budget < 0:
            raise CodecError("ctx: full rows and columns hold more ones than the layer has entries")
        parts = [_cells(full_rows, np.arange(row_length), row_length).astype(key),
                 _cells(others, full_cols, row_length).astype(key)]  # full columns of other rows
        width = key(row_length)
        for r, c in _blocks(rows, cols, row_split, col_split, (n_rows, row_length)):
            runs = _unpack_runs(sections.next(), budget)
            budget -= runs.size
            block = np.cumsum(runs.astype(np.int64) + 1) - 1
            if block.size and block[-1] >= r.size * c.size:
                raise CodecError("ctx: a block's runs overflow the block")
            block, n_cols = block.astype(key), key(c.size)
            parts.append(r.astype(key)[block // n_cols] * width + c.astype(key)[block % n_cols])
        pos = np.sort(np.concatenate(parts))
        gaps = np.empty_like(pos)
        if pos.size:  # np.diff with prepend=-1 would not fit an unsigned key
            gaps[0] = pos[0] + 1
            np.subtract(pos[1:], pos[:-1], out=gaps[1:])
    if not sections.done():
        raise CodecError("ctx: grouped stream has trailing bytes")
    if gaps.sum(dtype=np.uint64) > length:
        raise CodecError("ctx: grouped stream sets positions beyond the bitmap")
    return gaps


def _grid(mask: np.ndarray, row_length: int) -> np.ndarray:
    """The mask as rows, the last padded with zeros (the decoder insists they stay zero)."""
    rows = -(-mask.size // row_length)
    grid = np.zeros(rows * row_length, dtype=bool)
    grid[:mask.size] = mask
    return grid.reshape(rows, row_length)


def _cells(rows: np.ndarray, cols: np.ndarray, row_length: int) -> np.ndarray:
    """Flat positions of every (row, column) pair."""
    return (rows[:, None] * row_length + cols[None, :]).reshape(-1)


def _classes(density: np.ndarray, split: int):
    """Class of each row or column: empty, full, or one of `split` density quantiles; None if 0."""
    if split == 0:
        return None
    classes = np.where(density >= 1, _FULL, _EMPTY).astype(np.uint32)
    rest = np.flatnonzero((density > 0) & (density < 1))
    ranked = rest[np.argsort(density[rest], kind="stable")]
    classes[ranked] = _FIRST_BUCKET + np.arange(ranked.size) * split // max(ranked.size, 1)
    return classes


def _members(classes, split: int, n: int) -> list[np.ndarray]:
    """Indices of each bucket class along one axis (everything, if the axis is not split)."""
    if classes is None:
        return [np.arange(n)]
    return [np.flatnonzero(classes == k) for k in range(_FIRST_BUCKET, _FIRST_BUCKET + split)]


def _blocks(rows, cols, row_split: int, col_split: int, shape: tuple[int, int]):
    """(row indices, column indices) of every coded block, in stream order."""
    col_sets = _members(cols, col_split, shape[1])
    return [(r, c) for r in _members(rows, row_split, shape[0]) for c in col_sets]


def _pack_classes(classes: np.ndarray) -> bytes:
    """zstd, not pcodec: classes come in spatial runs (dead border pixels), which LZ finds and
    an order-0 coder cannot (LeNet-300-100 ip1 columns: 101 B against pcodec's 195 B)."""
    return zstandard.ZstdCompressor(level=19).compress(classes.astype(np.uint8).tobytes())


def _pack_runs(bits: np.ndarray) -> bytes:
    """Zero-run lengths before each one; the zeros after the last one are implied."""
    pos = np.flatnonzero(bits)
    runs = np.diff(pos, prepend=-1) - 1
    return pcodec.standalone.simple_compress(runs.astype(np.uint32), _CONFIG) if runs.size else b""


def _unpack_runs(blob: bytes, budget: int) -> np.ndarray:
    """A block's zero runs (none for an empty section); more than `budget` is an error."""
    if not blob:
        return np.zeros(0, dtype=np.uint32)
    out = np.empty(budget + 1, dtype=np.uint32)  # untouched pages cost no memory
    progress = pcodec.standalone.simple_decompress_into(blob, out)
    if not progress.finished or progress.n_processed > budget:
        raise CodecError("ctx: a block holds more ones than the layer has entries")
    return out[:progress.n_processed]


def _read_classes(sections, n: int, split: int):
    if split == 0:
        return None
    blob = sections.next()
    if zstandard.frame_content_size(blob) != n:
        raise CodecError("ctx: row or column classes do not fit the layer")
    classes = np.frombuffer(zstandard.ZstdDecompressor().decompress(blob), dtype=np.uint8)
    if classes.size != n or classes.max(initial=0) >= _FIRST_BUCKET + split:
        raise CodecError("ctx: row or column classes do not fit the layer")
    return classes


class _Sections:
    """Reads the length-prefixed sections of a payload, refusing any that overrun it."""

    def __init__(self, payload: bytes, offset: int):
        self.payload, self.offset = payload, offset

    def next(self) -> bytes:
        (size,) = _SECTION.unpack_from(self.payload, self.offset)
        start = self.offset + _SECTION.size
        if start + size > len(self.payload):
            raise CodecError("ctx: grouped section overruns the stream")
        self.offset = start + size
        return self.payload[start:self.offset]

    def done(self) -> bool:
        return self.offset == len(self.payload)
