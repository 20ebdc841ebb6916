"""Weightless (Reagen et al., ICML 2018): a pruned, clustered layer stored in a Bloomier filter.

What DeepSZ compares against (sections 4.2, 5.2). The nonzero weights are clustered by k-means
(linear initialisation, shared with Deep Compression) into 2**value_bits centroids. The filter
maps every kept position (a key) to its cluster id and stores no positions at all: a query
XORs k table cells of t_bits each with a mask hash M(x) (Chazelle et al.'s Bloomier filter).
Keys decode exactly. A pruned position is not a key, so its query returns a uniformly random
t-bit number; numbers >= 2**value_bits mean "zero weight", the rest are false positives that
put a centroid where the weight was pruned. Hence

    false-positive rate = 2**value_bits / 2**t_bits = 2**(value_bits - t_bits)

and storage is m * t_bits bits with m ~ 1.23 * nnz cells, independent of the layer's zeros.
The price is decoding: every position of the dense layer is hashed (k + 1 hashes: with the
default k=3 these are the four hash functions DeepSZ cites), which is why the paper finds
Weightless the slowest to decode.

Defaults, with the reasons:
- t_bits=6, value_bits=3: 8 clusters and 12.5% false positives. 7.4 bits per nonzero at the
  table's load, i.e. ~54x on an 8%-dense fc layer, the same order as the 60x DeepSZ's Table 4
  quotes for Weightless on LeNet-300-100 ip1. Each extra t bit halves the false positives for
  ~1.23 bits per nonzero.
- k=3 cells per key in a table split into k equal segments (one cell per segment, so a key's
  cells are distinct); m = k * ceil((1.23 * nnz + 32) / k), just above the k=3 peeling
  threshold (~1.222). If peeling fails the seed is bumped, and every second failure adds 0.02
  to the load; the seed and m that worked are stored. k=4 uses 1.30.
- Hashes are a splitmix64 finaliser of (position, seed); each 64-bit hash gives two 32-bit words
  mapped onto a segment by multiply-shift.

Reagen et al. then retrain the network around the false positives; that needs Caffe and is out
of scope here, so decoded layers carry the full, unbounded error that `report` measures.
"""
import math
import struct
from dataclasses import dataclass

import numpy as np

from deepsz_caffe.baselines._framing import Reader, seal, shape_header
from deepsz_caffe.baselines.kmeans import kmeans_1d
from deepsz_caffe.errors import CodecError, ConfigError

MAGIC = b"WLB1"
LOADS = {3: 1.23, 4: 1.30}   # cells per key just above the peeling threshold for k hashes
SLACK_CELLS = 32             # small filters need a little room beyond the asymptotic load
MAX_ATTEMPTS = 16
CHUNK = 1 << 20              # positions hashed at once when decoding

_GOLDEN = 0x9E3779B97F4A7C15   # odd constants: hash j of seed s is salted by s*_SEED_MUL + (j+1)*_GOLDEN
_SEED_MUL = 0xD1B54A32D192ED03
_U64 = (1 << 64) - 1
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_LOW32 = np.uint64(0xFFFFFFFF)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser, in place on a uint64 array (wrap-around multiplication intended)."""
    x ^= x >> np.uint64(30)
    x *= _MIX1
    x ^= x >> np.uint64(27)
    x *= _MIX2
    x ^= x >> np.uint64(31)
    return x


def _hash(positions: np.ndarray, seed: int, k: int, segment: int, t_bits: int):
    """(k cell indices of shape (k, n), t-bit mask) for flat positions."""
    base = positions.astype(np.uint64)
    words = []
    for j in range((k + 2) // 2):  # k cell words + 1 mask word, two per 64-bit hash
        h = _mix(base + np.uint64((seed * _SEED_MUL + (j + 1) * _GOLDEN) & _U64))
        words += [h & _LOW32, h >> np.uint64(32)]
    seg = np.uint64(segment)
    cells = np.stack([((words[i] * seg) >> np.uint64(32)) + np.uint64(i * segment) for i in range(k)])
    mask = words[k] >> np.uint64(32 - t_bits)
    return cells.astype(np.int64), mask.astype(np.int64)


def _peel(cells: np.ndarray, m: int):
    """Order keys so each owns a cell no later key touches -> list of (keys, owned cells) rounds,
    or None if the hypergraph has a core that cannot be peeled.

    Every round takes all cells touched by exactly one remaining key at once (such keys cannot
    interfere), finding each one's key as the XOR of the ids of the keys touching the cell.
    """
    k, n = cells.shape
    ids = np.broadcast_to(np.arange(n, dtype=np.int64), (k, n)).reshape(-1)
    flat = cells.reshape(-1)
    count = np.bincount(flat, minlength=m)
    key_xor = np.zeros(m, dtype=np.int64)
    np.bitwise_xor.at(key_xor, flat, ids)
    rounds, peeled = [], 0
    singles = np.flatnonzero(count == 1)
    while singles.size:
        keys, first = np.unique(key_xor[singles], return_index=True)
        rounds.append((keys, singles[first]))
        peeled += keys.size
        touched = cells[:, keys].reshape(-1)
        np.subtract.at(count, touched, 1)
        np.bitwise_xor.at(key_xor, touched, np.tile(keys, k))
        singles = np.sort(touched[count[touched] == 1])  # sort-based dedupe: np.unique hashes, slowly
        singles = singles[np.diff(singles, prepend=-1) != 0]
    return rounds if peeled == n else None


def _cell_dtype(t_bits: int):
    """Narrowest cell type: decoding gathers k random cells per position, so cache size matters."""
    return np.uint8 if t_bits <= 8 else np.uint16


def _pack(values: np.ndarray, width: int) -> bytes:
    """Concatenate the low `width` bits of each value (MSB first), via byte-wise unpackbits."""
    as_bytes = values.astype(">u2").view(np.uint8).reshape(-1, 2)
    return np.packbits(np.unpackbits(as_bytes, axis=1)[:, 16 - width:]).tobytes()


def _unpack(data: bytes, width: int, count: int) -> np.ndarray:
    bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8), count=count * width).reshape(count, width)
    padded = np.zeros((count, 16), dtype=np.uint8)
    padded[:, 16 - width:] = bits
    return np.packbits(padded, axis=1).view(">u2")[:, 0].astype(_cell_dtype(width))


@dataclass(frozen=True, eq=False)
class WLEncoded:
    """A Weightless-coded layer; `nbytes` counts everything `decode` needs."""

    shape: tuple[int, ...]
    t_bits: int
    value_bits: int
    k: int
    seed: int                 # the seed whose hashes peeled (encode's seed + failed attempts)
    n_keys: int               # kept weights (informational: decode needs only the table)
    codebook: np.ndarray      # float32, 2**value_bits sorted centroids
    table: np.ndarray         # cells in [0, 2**t_bits), length m (a multiple of k)

    @property
    def m(self) -> int:
        return len(self.table)

    @property
    def false_positive_rate(self) -> float:
        """Chance that a pruned position decodes to a centroid."""
        return 2.0 ** (self.value_bits - self.t_bits) if self.m else 0.0

    @property
    def sizes(self) -> dict:
        header = len(MAGIC) + struct.calcsize("<BBBBQQQ") + len(shape_header(self.shape))
        return {"header": header, "codebook": 4 * len(self.codebook),
                "table": -(-self.m * self.t_bits // 8), "crc": 4}

    @property
    def nbytes(self) -> int:
        return sum(self.sizes.values())


def _check(t_bits: int, value_bits: int, k: int) -> None:
    if k not in LOADS:
        raise ConfigError(f"k must be one of {sorted(LOADS)} hash functions, got {k}")
    if not 1 <= value_bits <= 8:
        raise ConfigError(f"value_bits must be 1..8, got {value_bits}")
    if not value_bits <= t_bits <= 16:
        raise ConfigError(f"t_bits must lie in value_bits..16 ({value_bits}..16), got {t_bits}")


def encode(weights: np.ndarray, t_bits: int = 6, value_bits: int = 3, k: int = 3,
           seed: int = 0) -> WLEncoded:
    _check(t_bits, value_bits, k)
    if not 0 <= seed < 1 << 62:
        raise ConfigError(f"seed must be a non-negative 62-bit integer, got {seed}")
    weights = np.asarray(weights, dtype=np.float32)
    flat = weights.reshape(-1)
    keys = np.flatnonzero(flat)
    codebook, values = kmeans_1d(flat[keys], 1 << value_bits)
    shape = tuple(int(d) for d in weights.shape)
    if keys.size == 0:
        return WLEncoded(shape, t_bits, value_bits, k, seed, 0, codebook, np.zeros(0, _cell_dtype(t_bits)))
    for attempt in range(MAX_ATTEMPTS):
        load = LOADS[k] + 0.02 * (attempt // 2)
        segment = math.ceil((load * keys.size + SLACK_CELLS) / k)
        cells, mask = _hash(keys, seed + attempt, k, segment, t_bits)
        rounds = _peel(cells, k * segment)
        if rounds is not None:
            break
    else:
        raise CodecError(f"weightless: Bloomier filter did not peel in {MAX_ATTEMPTS} attempts")
    table = np.zeros(k * segment, dtype=_cell_dtype(t_bits))
    for ks, owned in reversed(rounds):  # cells of later-peeled keys are final by now
        table[owned] = values[ks] ^ mask[ks] ^ np.bitwise_xor.reduce(table[cells[:, ks]], axis=0)
    return WLEncoded(shape, t_bits, value_bits, k, seed + attempt, int(keys.size), codebook, table)


def query(enc: WLEncoded, positions: np.ndarray) -> np.ndarray:
    """Raw t-bit filter output at flat positions: the cluster id for keys, noise elsewhere."""
    cells, mask = _hash(positions, enc.seed, enc.k, enc.m // enc.k, enc.t_bits)
    return np.bitwise_xor.reduce(enc.table[cells], axis=0) ^ mask


def decode(enc: WLEncoded) -> np.ndarray:
    """Query every position of the layer, in chunks; ids >= 2**value_bits read as zero."""
    size = math.prod(enc.shape)
    out = np.zeros(size, dtype=np.float32)
    if enc.m == 0:
        return out.reshape(enc.shape)
    lut = np.zeros(1 << enc.t_bits, dtype=np.float32)
    lut[:len(enc.codebook)] = enc.codebook
    for start in range(0, size, CHUNK):
        out[start:start + CHUNK] = lut[query(enc, np.arange(start, min(start + CHUNK, size)))]
    return out.reshape(enc.shape)


def to_bytes(enc: WLEncoded) -> bytes:
    body = (struct.pack("<BBBBQQQ", 1, enc.t_bits, enc.value_bits, enc.k, enc.seed, enc.n_keys, enc.m)
            + shape_header(enc.shape) + enc.codebook.astype("<f4").tobytes()
            + _pack(enc.table, enc.t_bits))
    return seal(MAGIC, body)


def from_bytes(blob: bytes) -> WLEncoded:
    r = Reader(blob, MAGIC, "weightless")
    version, t_bits, value_bits, k, seed, n_keys, m = r.unpack("BBBBQQQ")
    if version != 1:
        raise CodecError(f"weightless: unknown version {version}")
    try:
        _check(t_bits, value_bits, k)
    except ConfigError as e:
        raise CodecError(f"weightless: corrupt header ({e})") from None
    shape = r.shape(r.unpack("B")[0])
    if m % k or m // k >= 1 << 32 or n_keys > math.prod(shape) or (m == 0) != (n_keys == 0):
        raise CodecError(f"weightless: inconsistent header (m={m}, k={k}, keys={n_keys}, shape={shape})")
    codebook = r.array("<f4", 1 << value_bits).astype(np.float32)
    table = _unpack(r.take(-(-m * t_bits // 8)), t_bits, m)
    r.done()
    return WLEncoded(shape, t_bits, value_bits, k, seed, n_keys, codebook, table)


def report(enc: WLEncoded, weights: np.ndarray, decoded: np.ndarray) -> dict:
    """Size and error figures, with the measured false-positive rate next to the theoretical one."""
    weights = np.asarray(weights, dtype=np.float32)
    zeros = weights == 0
    nnz = weights.size - int(zeros.sum())
    return {
        "t_bits": enc.t_bits, "value_bits": enc.value_bits, "k": enc.k, "seed": enc.seed,
        "cells": enc.m, "load": enc.m / max(nnz, 1), "sizes": enc.sizes,
        "bits_per_nonzero": 8 * enc.nbytes / max(nnz, 1),
        "ratio": 4 * weights.size / enc.nbytes,
        "false_positive_rate": float(np.count_nonzero(decoded[zeros]) / max(int(zeros.sum()), 1)),
        "false_positive_rate_theory": enc.false_positive_rate,
        "max_abs_error": float(np.max(np.abs(decoded - weights), initial=0.0)),
        "max_abs_error_kept": float(np.max(np.abs(decoded - weights)[~zeros], initial=0.0)),
    }
