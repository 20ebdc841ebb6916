"""Lossy backend "quant": error-bounded linear quantisation with no prediction.

The data array of a pruned layer holds the surviving weights in row-major order;
neighbours are weights of unrelated inputs, so SZ's Lorenzo/regression predictors
have nothing to predict and their residuals are wider than the values themselves.
This codec quantises each value on its own, q = rint(x / (2 eb)), decodes it as
float32(2 eb q), and codes q with a static categorical model whose exact counts are
stored in the stream, through constriction's range coder. Conditioning on the
previous value would gain 4-7% on LeNet's ip1 (ideal code lengths), but would make
decoding one Python call per value. SZ 3 with its NOPRED algorithm is the nearest
off-the-shelf equivalent: on LeNet-300-100 it is 0.7-1.9% larger in total, larger on the
small layers (its own headers), and 1-2% smaller on ip1 at eb >= 0.02 (its zstd stage
finds the correlation this order-0 model ignores). Its Huffman tree also beats this
table when q spans hundreds of values (1.5% on N(0, 1) weights at eb 0.01).

Escapes, stored verbatim as float32: values whose float32 reconstruction misses the
bound (only when eb nears float32 resolution of |x|; measured 4 in 10**6 N(0, 0.02)
values at eb 1e-4, none at 1e-5 or 1e-3..1e-1, so the step is not shrunk), values
not finite or with |q| > 2**30, and outliers whose table slots would cost more than
escaping them. If coding does not beat storing every value verbatim, every value is
escaped, so a stream never exceeds raw storage by more than 10 bytes.

Payload, little-endian (the framing of codecs/__init__ adds n and a CRC):

    step:    float64  2 eb
    table:   LEB128   K, then if K > 0: zigzag(lo) and the counts of q = lo .. lo+K-1;
                      the escape count is n minus their sum
    escapes:          float32 verbatim values, in order
    coded:            range-coded uint32 words of the symbols q - lo, K for an escape;
                      none if only one symbol occurs
"""

import struct

import constriction
import numpy as np

from deepsz_caffe.codecs.base import FramedCodec, unzigzag, zigzag
from deepsz_caffe import varint
from deepsz_caffe.errors import CodecError

_STEP = struct.Struct("<d")
_Q_MAX = 2 ** 30
_ESCAPE_BYTES = 4  # what an escaped value costs, against about a byte per table slot
# _table_range spans at most _ESCAPE_BYTES slots per escaped-instead value on each side of the
# mode, so a table never has more than 4n slots: a longer one is forged, and refused before the
# table is read (a 40-million-slot table once cost 1 GB to decode 40 MB).
_MAX_SLOTS_PER_VALUE = _ESCAPE_BYTES
# constriction raises AssertionError on data invalid for the model
_ERRORS = (struct.error, ValueError, RuntimeError, IndexError, OverflowError, TypeError, AssertionError)


class QuantCodec(FramedCodec):
    name, package = "quant", "constriction"
    mode_id = 4
    step_ratio = 2.0  # step / eb: 2 is the widest step that rounding keeps within the bound
    isolated = True  # constriction's coder parses untrusted words: decoded in the sandbox

    def _encode(self, data: np.ndarray, error_bound: float) -> bytes:
        step = self.step_ratio * error_bound
        x = data.astype(np.float64)
        with np.errstate(invalid="ignore", over="ignore"):
            q = np.rint(x / step)
            fits = np.abs(q) <= _Q_MAX
            q = np.where(fits, q, 0.0)
            fits &= np.abs(x - (q * step).astype(np.float32)) <= error_bound
        q = q.astype(np.int64)
        if fits.any():
            lo, hi = _table_range(q[fits])
            fits &= (q >= lo) & (q <= hi)
            payload = _payload(step, lo, hi - lo + 1, q, fits, data)
            if len(payload) < _STEP.size + 1 + data.nbytes:
                return payload
        return _payload(step, 0, 0, q, np.zeros(data.size, bool), data)

    def _decode(self, payload: bytes, n: int) -> np.ndarray:
        try:
            return _decode(payload, n)
        except _ERRORS as e:
            raise CodecError(f"quant: corrupt stream: {e}") from e


def _table_range(q: np.ndarray) -> tuple[int, int]:
    """[lo, hi] of the table: grown from the most frequent q while a slot is cheaper than escaping."""
    values, counts = np.unique(q, return_counts=True)
    m = int(np.argmax(counts))
    below = np.cumsum(counts) - counts       # values escaped if the table starts at values[i]
    above = counts.sum() - np.cumsum(counts)  # values escaped if it ends at values[i]
    lo = int(np.argmin((values[m] - values[:m + 1]) + _ESCAPE_BYTES * below[:m + 1]))
    hi = m + int(np.argmin((values[m:] - values[m]) + _ESCAPE_BYTES * above[m:]))
    return int(values[lo]), int(values[hi])


def _payload(step: float, lo: int, slots: int, q: np.ndarray, fits: np.ndarray, data: np.ndarray) -> bytes:
    """The stream coding q - lo where `fits` (all within 0..slots-1), escaping the other values."""
    symbols = np.full(data.size, slots, dtype=np.int32)
    symbols[fits] = q[fits] - lo
    counts = np.bincount(symbols, minlength=slots + 1)
    table = [slots] + ([zigzag(lo)] + counts[:slots].tolist() if slots else [])
    words = b""
    if np.count_nonzero(counts) > 1:
        enc = constriction.stream.queue.RangeEncoder()
        enc.encode(symbols, _model(counts))
        words = enc.get_compressed().astype("<u4").tobytes()
    return _STEP.pack(step) + varint.encode(table) + data[~fits].astype("<f4").tobytes() + words


def _decode(payload: bytes, n: int) -> np.ndarray:
    (step,) = _STEP.unpack_from(payload)
    if not (np.isfinite(step) and step > 0):
        raise CodecError(f"quant: step {step} is not finite and positive")
    try:
        (slots,), pos = varint.decode_many(payload, _STEP.size, 1)
        if slots > _MAX_SLOTS_PER_VALUE * n:  # never written (see _table_range): a forged table
            raise CodecError(f"quant: table of {slots} slots for {n} values")
        table, pos = varint.decode_many(payload, pos, slots + 1 if slots else 0)
    except varint.VarintError:
        raise CodecError("quant: table runs past the stream") from None
    lo = unzigzag(table[0]) if slots else 0
    counts = table[1:] + [n - sum(table[1:])]
    if counts[-1] < 0 or lo < -_Q_MAX or lo + slots - 1 > _Q_MAX:
        raise CodecError("quant: table does not describe the stream")
    escapes = np.frombuffer(payload, dtype="<f4", count=counts[-1], offset=pos).astype(np.float32)
    words = payload[pos + 4 * counts[-1]:]
    if np.count_nonzero(counts) > 1:
        if len(words) % 4:
            raise CodecError("quant: coded part is not whole 32-bit words")
        dec = constriction.stream.queue.RangeDecoder(np.frombuffer(words, dtype="<u4").astype(np.uint32))
        symbols = dec.decode(_model(counts), n)
    elif words:
        raise CodecError("quant: trailing bytes after a one-symbol stream")
    else:
        symbols = np.full(n, int(np.argmax(counts)), dtype=np.int32)
    is_escape = symbols == slots
    if int(np.count_nonzero(is_escape)) != counts[-1]:
        raise CodecError("quant: escape count does not match the table")
    out = np.empty(n, dtype=np.float32)
    with np.errstate(over="ignore", invalid="ignore"):  # a forged step: caught as non-finite values
        out[~is_escape] = ((symbols[~is_escape] + np.int64(lo)) * step).astype(np.float32)
    out[is_escape] = escapes
    return out


def _model(counts):
    return constriction.stream.model.Categorical(np.asarray(counts, dtype=np.float64), perfect=False)
