"""Lossy backend "zquant": the quantiser of codecs/quant.py with bound-aware zeroing.

A kept weight with |w| <= eb may decode to 0 and still meet the bound, and once it is 0 it
need not be coded at all: it leaves the index array (positions) and the data array (levels)
together. On LeNet-300-100's ip1 at eb 0.04 (step 2 eb) this drops 28% of the kept weights
and 29% of the layer's bytes (13,428 -> 9,529 B), positions and levels alike; it is what NNCodec's
rate-distortion search does to 24-25% of the weights, but here every zero is within the
bound. The zeroing happens before the sparse form is built (format.layer.zeroed_sparse), so
the data array this codec sees holds only weights with |w| > eb and the fillers; its stream
is quant's (which stores its step) behind a version byte and the value count, under its own
mode id, and decodes with quant's decoder. The count makes a frame that lies about n fail
before decoding (quant derives its escape count from n, so a lie there can decode).

Payload: version uint8 (1), n LEB128, then quant's payload.

Which weights are zeroed is decided in float64 (|w| <= eb), never by rint(w / 2 eb) == 0, so
that a quotient rounded onto 0.5 cannot zero a weight just above the bound.
"""
import numpy as np

from deepsz_caffe import varint
from deepsz_caffe.codecs.quant import QuantCodec
from deepsz_caffe.errors import CodecError

VERSION = 1


class ZeroingQuantCodec(QuantCodec):
    name = "zquant"
    mode_id = 5
    zeroes_within_bound = True  # format.layer builds the sparse form from zero_small(weights)
    # The survivors are rounded finer than the bound allows: on LeNet-300-100's ip1 at eb 0.04,
    # step 2 eb lost 0.35 points of top-1, step 1.5 eb 0.11 for 33% more level bytes
    # (3,550 against 2,665 B; its 6,825 B of positions unchanged), which beats a smaller eb.
    step_ratio = 1.5

    def _encode(self, data: np.ndarray, error_bound: float) -> bytes:
        return bytes([VERSION]) + varint.encode([data.size]) + super()._encode(data, error_bound)

    def _inner(self, payload: bytes, n: int) -> bytes:
        """quant's payload, once the version and the stored count check out."""
        if not payload or payload[0] != VERSION:
            raise CodecError(f"zquant: stream version {payload[0] if payload else None}, this "
                             f"decoder reads {VERSION}")
        try:
            (stored,), pos = varint.decode_many(payload, 1, 1)
        except varint.VarintError:
            raise CodecError("zquant: value count runs past the stream") from None
        if stored != n:
            raise CodecError(f"zquant: stream holds {stored} values, its frame says {n}")
        return payload[pos:]

    def _check(self, payload: bytes, n: int) -> None:
        super()._check(payload, n)
        self._inner(payload, n)

    def _decode(self, payload: bytes, n: int) -> np.ndarray:
        return super()._decode(self._inner(payload, n), n)

    fills_fillers = True  # format.layer.coded_values: fillers take the most frequent level

    def fill(self, data: np.ndarray, fillers: np.ndarray, error_bound: float) -> np.ndarray:
        """`data` with its filler entries set to the most frequent level of the other values.

        Decode zeroes fillers by position (they are in the index stream), so their values are
        free; as 0.0 they would be the one level 0 of a zeroed layer (LeNet-300-100 ip1: 270
        fillers, 5.6 bits each), as the most frequent level they cost its ~2 bits."""
        step = self.step_ratio * error_bound
        others = np.delete(data, fillers).astype(np.float64)
        if not others.size:
            return data
        with np.errstate(invalid="ignore", over="ignore"):
            levels = np.rint(others / step)
        levels = levels[np.isfinite(levels) & (np.abs(levels) <= 2 ** 30)]
        if not levels.size:
            return data
        values, counts = np.unique(levels, return_counts=True)
        out = data.copy()
        out[fillers] = np.float32(values[np.argmax(counts)] * step)
        return out

    @staticmethod
    def zero_small(weights: np.ndarray, error_bound: float) -> np.ndarray:
        """Mask of the kept weights that decode to 0 within the bound: 0 < |w| <= eb."""
        w = np.asarray(weights)
        return (w != 0) & (np.abs(w.astype(np.float64)) <= error_bound)
