"""Index codec "ctx": the positions the gap array encodes, coded under a model of the mask.

A pruned fc layer is far from a uniformly random mask: input neurons (columns of the
row-major [out, in] weights) and output neurons (rows) differ in importance, and
whole rows or columns die (measured on LeNet-300-100: 286 of ip1's 784 columns are
empty). A byte-oriented coder such as zstd sees only the stream of gaps and cannot
learn per-column statistics. A ctx stream holds one of two modes, whichever is smaller (above
2**18 positions the slow bitmap must be 2% smaller):

- grouped (codecs/index/grouped.py): rows and columns split into density classes, each
  block's zero runs coded by pcodec. Work is per kept weight, so it decodes AlexNet's
  fc6 in tens of milliseconds; it is the only mode tried above _BITMAP_MAX positions.
- bitmap (this module): one bit per weight position, with P(bit = 1) predicted from

    p_ij = k_i * (c_j + w) / sum_j (c_j + w)

  where c_j counts the ones of column j in the rows already coded, w is a prior worth
  _PRIOR_ROWS rows of the layer's mean density, and k_i, the number of ones in row i,
  is sent before the row (Rice code around the running mean). Knowing k_i scales the
  column profile to the row's own density and lets empty and full rows cost no bits;
  a secondary estimation step then recalibrates p from the bits seen so far at
  similar p. Because every p of a row is known before its first bit, a row is coded by
  one call to constriction's range coder. In ideal code lengths on LeNet-300-100 this
  rank-1 model beat a logistic mix of column and within-row running densities (which
  would also need a coder call per bit) by 3.5%, and came within 0.5% of a
  Newton-calibrated logistic row scaling that needs exp/log. It adapts from the first
  row, so it wins on small layers (LeNet-300-100 ip2: 1408 B against 1622 B grouped),
  but costs ~40 ns per position, zeros included (15 ms for LeNet-300-100 ip1, 1.5 s
  for AlexNet's fc6).

Only "canonical" entries are coded: an entry whose gap is 255 and which is not the
last is treated as a filler, and the exact gap array is rebuilt by sparse.split_gaps
from the canonical positions. This is lossless for any array of gaps in 1..255: between
two canonical entries every entry has gap 255, which is exactly what its fillers are.
Fillers thus cost nothing, whereas as bitmap ones they would be the most expensive
bits of all (ones in dead regions).

The row length is a hint given at encoding (0: unknown, coded as a single row); in the
bitmap mode rows are merged if there would be more than _MAX_ROWS. The width used is
stored in the stream, so decoding needs only the stream and the entry count.

The bitmap model uses only integer counts and correctly rounded float operations
(+ - * /), never exp/log or float reductions, so encoder and decoder compute
bit-identical probabilities on any IEEE-754 machine. Stream, little-endian:

    version: uint8   1 = bitmap, 2 = grouped
    crc:     uint32  CRC-32 of the payload (fail fast on corrupt input)
    gaps:    uint32  CRC-32 of the gap array (catches a decoder whose model or
                     library versions differ from the encoder's)
    payload          bitmap: range-coded uint32 words: L and row length (Elias gamma),
                     then per row its count and, unless 0 or full, its bits;
                     grouped: see codecs/index/grouped.py
"""

import math
import operator
import struct
import zlib

import constriction
import numpy as np

from deepsz_caffe import sparse
from deepsz_caffe.codecs.base import unzigzag, zigzag
from deepsz_caffe.codecs.index import grouped as grouped_index
from deepsz_caffe.errors import CodecError

_BITMAP, _GROUPED = 1, 2  # the stream's version byte names its mode
_BITMAP_MAX = 1 << 20  # positions: the adaptive bitmap decodes in ~40 ms or less
# Above this many positions the bitmap (~40-70 ns a position) is kept only when it is at least
# 2% smaller than the grouped mode (~100x faster): on LeNet-5's zeroed ip1 (400,000 positions)
# it saved 1.9% (9,448 against 9,629 B) for 34.7 ms of decode against 0.14 ms.
_BITMAP_SLOW, _BITMAP_GAIN = 1 << 18, 0.98
_HEADER = struct.Struct("<BII")
_MAX_GAP = 255
_PRIOR_ROWS = 4.0   # best of 1, 2, 4, 8 on LeNet-300-100 (ip1 ip2 ip3 together)
_P_MIN = 2.0 ** -16  # caps the cost of a surprising bit at 16 bits
_SSE_BUCKETS = 32    # half-octaves of p in [2**-16, 1)
_SSE_WEIGHT = 32.0   # pseudo-count of the rank-1 estimate in its bucket
_SQRT_HALF = 0.7071067811865476  # a literal: pow() need not round alike everywhere
_CHUNK = 1 << 16     # bits per coder call: bounds the (n, 2) probability array
_MAX_ROWS = 1 << 16  # more rows are merged: a row costs ~30 us of Python whatever its width
_RICE_QMAX = 24      # unary part beyond which the count is escaped to Elias gamma
_GAMMA_MAX = 64      # Elias gamma prefix limit: values below 2**64

_FAMILY = constriction.stream.model.Categorical(perfect=False)
_FAIR = constriction.stream.model.Categorical(np.array([0.5, 0.5]), perfect=False)
# constriction raises AssertionError on data that is invalid for the model
_DECODE_ERRORS = (ValueError, RuntimeError, TypeError, OverflowError, AssertionError)


class _Model:
    """State shared by encoder and decoder, so both derive the same probabilities."""

    def __init__(self, length: int, row_length: int, entries: int):
        self.length, self.row_length = length, row_length
        self.rows = -(-length // row_length)
        density = entries / length
        self.prior = _PRIOR_ROWS * density           # w: per-column pseudo-count
        self.column = np.zeros(row_length, np.int64)  # c_j
        # Rice state: sum of |count - prediction|, seeded with a binomial deviation
        self.abs_residual = 1 + math.isqrt(row_length * entries // length)
        self.bucket = np.zeros(row_length, np.int64)  # SSE bucket of each bit of the current row
        self.sse_ones = np.zeros(_SSE_BUCKETS, np.int64)
        self.sse_seen = np.zeros(_SSE_BUCKETS, np.int64)

    def width(self, i: int) -> int:
        return min(self.row_length, self.length - i * self.row_length)

    def predict(self, i: int, width: int) -> tuple[int, int]:
        """(expected count of row i, Rice parameter), both from previous rows only."""
        seen = int(self.column[:width].sum())
        pred = round((seen + width * self.prior) / (i + _PRIOR_ROWS))
        k = 0
        while ((i + 1) << k) < self.abs_residual:
            k += 1
        return pred, k

    def probabilities(self, width: int, count: int, start: int, stop: int) -> np.ndarray:
        """Categorical parameters [P(0), P(1)] for bits start..stop of a row holding `count` ones.

        The rank-1 estimate is then corrected by secondary estimation: the bits seen so
        far in its half-octave bucket (exact frexp, no log) pull it towards their
        frequency, which fixes its calibration (measured -0.3% on LeNet-300-100).
        """
        total = int(self.column[:width].sum()) + width * self.prior
        p = (self.column[start:stop] + self.prior) * (count / total)
        np.clip(p, _P_MIN, 1.0 - _P_MIN, out=p)
        mantissa, exponent = np.frexp(p)
        b = self.bucket[start:stop]
        np.subtract(mantissa < _SQRT_HALF, 2 * exponent, out=b)
        p = (self.sse_ones[b] + _SSE_WEIGHT * p) / (self.sse_seen[b] + _SSE_WEIGHT)
        np.clip(p, _P_MIN, 1.0 - _P_MIN, out=p)
        return np.column_stack((1.0 - p, p))

    def update(self, bits: np.ndarray, residual: int, coded: bool) -> None:
        """Learn from a finished row; `coded` says whether its bits went through the coder."""
        self.column[:bits.size] += bits
        self.abs_residual += abs(residual)
        if coded:
            b = self.bucket[:bits.size]
            self.sse_ones += np.bincount(b[bits == 1], minlength=_SSE_BUCKETS)
            self.sse_seen += np.bincount(b, minlength=_SSE_BUCKETS)


def encode(raw: bytes, row_length: int = 0) -> bytes:
    """Code a uint8 gap array; row_length (0 = unknown) is the layer's row width.

    Writes the smaller of the two modes; the adaptive bitmap is tried only on masks of at
    most _BITMAP_MAX positions, which bounds its decode time, and above _BITMAP_SLOW kept only
    when it saves at least 2%."""
    gaps = np.frombuffer(raw, dtype=np.uint8)
    row_length = operator.index(row_length)
    if gaps.size and gaps.min() == 0:
        raise CodecError("ctx: codes gap arrays only; a gap of 0 is not one")
    if row_length < 0:
        raise CodecError(f"ctx: row_length must be >= 0, got {row_length}")
    mask = _canonical_mask(gaps)
    width = min(row_length, mask.size) if row_length else mask.size
    options = []
    if mask.size:
        options.append((_GROUPED, grouped_index.encode(mask, width)))
    if mask.size <= _BITMAP_MAX:
        bitmap = _bitmap_encode(mask, width, gaps.size)
        if mask.size <= _BITMAP_SLOW or not options or len(bitmap) < _BITMAP_GAIN * len(options[0][1]):
            options.append((_BITMAP, bitmap))
    version, payload = min(options, key=lambda option: len(option[1]))
    return _HEADER.pack(version, zlib.crc32(payload), zlib.crc32(raw)) + payload


def _canonical_mask(gaps: np.ndarray) -> np.ndarray:
    """0/1 mask of the canonical entries' positions (fillers dropped, the last entry kept)."""
    if gaps.size == 0:
        return np.zeros(0, dtype=np.uint8)
    positions = np.cumsum(gaps, dtype=np.int64) - 1
    canonical = gaps != _MAX_GAP
    canonical[-1] = True
    mask = np.zeros(int(positions[-1]) + 1, dtype=np.uint8)
    mask[positions[canonical]] = 1
    return mask


def _bitmap_encode(mask: np.ndarray, width: int, entries: int) -> bytes:
    enc = constriction.stream.queue.RangeEncoder()
    _put_uint(enc, mask.size)
    if mask.size:
        rows = -(-mask.size // width)
        width *= -(-rows // _MAX_ROWS)  # merge rows so that there are at most _MAX_ROWS
        _put_uint(enc, width)
        model = _Model(mask.size, width, entries)
        for i in range(model.rows):
            row = mask[i * width:i * width + model.width(i)]
            count = int(row.sum())
            pred, k = model.predict(i, row.size)
            _put_rice(enc, zigzag(count - pred), k)
            if 0 < count < row.size:
                for start in range(0, row.size, _CHUNK):
                    stop = min(start + _CHUNK, row.size)
                    params = model.probabilities(row.size, count, start, stop)
                    enc.encode(row[start:stop].astype(np.int32), _FAMILY, params)
            model.update(row, count - pred, 0 < count < row.size)
    return enc.get_compressed().astype("<u4").tobytes()


def decode(blob: bytes, size: int, positions: int | None = None) -> bytes:
    """Rebuild exactly the gap array of `size` entries, or raise CodecError. `positions` (the
    layer's weight count, if known) bounds the mask the stream may claim: every entry advances
    the position by 1..255, so the mask has at most 255 * size positions, and the canonical
    entries all lie inside the layer. Work and memory are then those of a genuine stream."""
    blob = bytes(blob)
    max_length = _MAX_GAP * size if positions is None else min(_MAX_GAP * size, positions)
    if len(blob) < _HEADER.size:
        raise CodecError(f"ctx: stream of {len(blob)} bytes is shorter than its header")
    version, crc, crc_gaps = _HEADER.unpack_from(blob)
    payload = blob[_HEADER.size:]
    if version not in (_BITMAP, _GROUPED):
        raise CodecError(f"ctx: stream version {version}, this decoder reads {_BITMAP} and {_GROUPED}")
    if zlib.crc32(payload) != crc:
        raise CodecError("ctx: stream checksum mismatch (corrupted or truncated)")
    try:
        if version == _GROUPED:
            gaps = sparse.split_gaps(grouped_index.decode(payload, max_length, size)).astype(np.uint8)
        elif len(payload) % 4:
            raise CodecError("ctx: stream checksum mismatch (corrupted or truncated)")
        else:
            gaps = _decode_gaps(np.frombuffer(payload, dtype="<u4").astype(np.uint32), size, max_length)
    except _DECODE_ERRORS + grouped_index.DECODE_ERRORS as e:
        raise CodecError(f"ctx: corrupt stream: {e}") from e
    if gaps.size != size:
        raise CodecError(f"ctx: decoded {gaps.size} entries, expected {size}")
    raw = gaps.tobytes()
    if zlib.crc32(raw) != crc_gaps:
        raise CodecError("ctx: decoded gaps fail their checksum (encoder/decoder model mismatch?)")
    return raw


def _decode_gaps(words: np.ndarray, size: int, max_length: int) -> np.ndarray:
    dec = constriction.stream.queue.RangeDecoder(words)
    length = _get_uint(dec)
    if length == 0:
        return np.zeros(0, dtype=np.uint8)
    if not size <= length <= max_length:
        raise CodecError(f"ctx: bitmap length {length} impossible for {size} entries")
    width = _get_uint(dec)
    if not 1 <= width <= length or -(-length // width) > _MAX_ROWS:
        raise CodecError(f"ctx: row length {width} impossible for bitmap length {length}")
    model = _Model(length, width, size)
    mask = np.zeros(length, dtype=np.uint8)
    for i in range(model.rows):
        row = mask[i * width:i * width + model.width(i)]
        pred, k = model.predict(i, row.size)
        count = pred + unzigzag(_get_rice(dec, k))
        if not 0 <= count <= row.size:
            raise CodecError(f"ctx: row {i} claims {count} entries in {row.size} positions")
        if count == row.size:
            row[:] = 1
        elif count:
            for start in range(0, row.size, _CHUNK):
                stop = min(start + _CHUNK, row.size)
                row[start:stop] = dec.decode(_FAMILY, model.probabilities(row.size, count, start, stop))
            if int(row.sum()) != count:
                raise CodecError(f"ctx: row {i} decoded to the wrong number of entries")
        model.update(row, count - pred, 0 < count < row.size)
    return sparse.gap_entries(mask)[0].astype(np.uint8)


def _put_bits(enc, value: int, nbits: int) -> None:
    if nbits:
        enc.encode(np.array([(value >> s) & 1 for s in range(nbits - 1, -1, -1)], np.int32), _FAIR)


def _get_bits(dec, nbits: int) -> int:
    value = 0
    for bit in (dec.decode(_FAIR, nbits) if nbits else ()):
        value = (value << 1) | int(bit)
    return value


def _put_uint(enc, value: int) -> None:
    """Elias gamma code of value + 1."""
    nbits = (value + 1).bit_length()
    _put_bits(enc, 0, nbits - 1)
    _put_bits(enc, value + 1, nbits)


def _get_uint(dec) -> int:
    zeros = 0
    while dec.decode(_FAIR) == 0:
        zeros += 1
        if zeros >= _GAMMA_MAX:
            raise CodecError("ctx: integer longer than 64 bits")
    return ((1 << zeros) | _get_bits(dec, zeros)) - 1


def _put_rice(enc, value: int, k: int) -> None:
    """Rice code with parameter k; a quotient of _RICE_QMAX or more escapes to Elias gamma."""
    q = value >> k
    if q >= _RICE_QMAX:
        _put_bits(enc, (1 << _RICE_QMAX) - 1, _RICE_QMAX)
        _put_uint(enc, value)
    else:
        _put_bits(enc, ((1 << q) - 1) << 1, q + 1)
        _put_bits(enc, value, k)


def _get_rice(dec, k: int) -> int:
    q = 0
    while dec.decode(_FAIR) == 1:
        q += 1
        if q == _RICE_QMAX:
            return _get_uint(dec)
    return (q << k) | _get_bits(dec, k)


class ContextIndex:
    """This coder as the index-codec registry (codecs/lossless.py) takes it."""

    def encode(self, raw: bytes, row_length: int = 0) -> bytes:
        return encode(raw, row_length)

    def decode(self, blob: bytes, size: int, positions: int | None = None) -> bytes:
        return decode(blob, size, positions)

    def library_version(self) -> str:
        from deepsz_caffe.codecs.base import package_version

        return f"constriction {package_version('constriction')}, pcodec {package_version('pcodec')}"
