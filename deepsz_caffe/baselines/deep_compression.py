"""Deep Compression (Han et al., ICLR 2016) stages 2 and 3 on an already-pruned layer.

What DeepSZ compares against (DeepSZ sections 4.3, 5.2): the nonzero weights share 2**bits
values found by 1-D k-means with linear initialisation (evenly spaced between the smallest and
largest nonzero, which Han et al. found kept the large weights best); each stored entry keeps a
cluster code, positions are relative-index gaps split by filler entries, and both the codes and
the gaps are Huffman coded.

Choices where the papers leave room:
- Defaults bits=5, index_bits=5: Han et al.'s widths for fc layers (5-bit shared weights and 5-bit
  relative indices; conv layers used 8 and 8). DeepSZ quotes the 5-bit fc setting.
- Fillers (gap runs longer than 2**index_bits - 1) get their own Huffman symbol, 2**bits, meaning
  exact 0.0. Reserving a centroid for them would cost nonzeros a cluster, and giving them the
  nearest centroid would write a nonzero into a pruned position; after Huffman coding the extra
  symbol costs only what its frequency warrants.
- Huffman codes are canonical and length-limited to 16 bits (frequencies are halved until they
  fit, which only bites on pathological distributions). Every 4096th symbol's bit offset is
  stored (4 bytes per 4096 symbols, ~0.15% of a 5-bit stream) so numpy decodes all blocks in
  lockstep; a stream whose blocks do not end exactly on the next offset is rejected as corrupt.
- `nbytes` is the full serialised size: header, codebook, code-length tables, offsets, both
  bitstreams and a CRC32, i.e. everything a decoder needs.

Han et al. also retrain the centroids (their Fig. 3: the gradients of all weights sharing a
centroid are summed and applied to it). That needs Caffe; `finetune_codebook` is the pure step a
Caffe driver calls, after which `dataclasses.replace(enc, codebook=new)` re-encodes for free.
The quantisation error is not bounded, unlike DeepSZ's: `report` gives the maximum measured.
"""
import heapq
import math
import struct
import zlib
from dataclasses import dataclass

import numpy as np

from deepsz_caffe import sparse
from deepsz_caffe.errors import CodecError, ConfigError

MAGIC = b"DCB1"
MAX_CODE_LEN = 16          # decode table of 2**16 entries; windows of <= 25 bits stay exact
BLOCK = 4096               # symbols between stored bit offsets
MAX_ELEMENTS = 1 << 32     # refuse headers asking for absurd dense buffers
_CRC = struct.Struct("<I")


# ---------------------------------------------------------------- k-means (also used by Weightless)

def kmeans_1d(values: np.ndarray, n_clusters: int, max_iter: int = 300):
    """Lloyd's k-means on scalars with linear initialisation -> (float32 codebook, codes).

    In 1-D every cluster is a contiguous run of the sorted values, so after one sort an
    iteration is a searchsorted of the midpoints plus prefix-sum differences: O(K log n).
    Stops when no boundary moves. Empty clusters keep their centroid. Codes are then assigned
    against the float32 codebook actually stored, so each value gets its nearest stored centroid.
    """
    values = np.asarray(values, dtype=np.float32).reshape(-1)
    if values.size == 0:
        return np.zeros(n_clusters, dtype=np.float32), np.zeros(0, dtype=np.int64)
    sv = np.sort(values).astype(np.float64)
    prefix = np.concatenate(([0.0], np.cumsum(sv)))
    centroids = np.linspace(sv[0], sv[-1], n_clusters)
    bounds = None
    for _ in range(max_iter):
        mids = (centroids[1:] + centroids[:-1]) / 2
        new_bounds = np.concatenate(([0], np.searchsorted(sv, mids, side="right"), [sv.size]))
        if bounds is not None and np.array_equal(new_bounds, bounds):
            break
        bounds = new_bounds
        counts = np.diff(bounds)
        sums = prefix[bounds[1:]] - prefix[bounds[:-1]]
        centroids = np.sort(np.where(counts > 0, sums / np.maximum(counts, 1), centroids))
    codebook = np.sort(centroids.astype(np.float32))
    return codebook, assign(values, codebook)


def assign(values: np.ndarray, codebook: np.ndarray) -> np.ndarray:
    """Index of the nearest entry of a sorted codebook (ties go to the lower one)."""
    cb = np.asarray(codebook, dtype=np.float64)
    return np.searchsorted((cb[1:] + cb[:-1]) / 2, np.asarray(values, dtype=np.float64), side="left")


def finetune_codebook(codebook: np.ndarray, codes_dense: np.ndarray, grad_dense: np.ndarray,
                      lr: float) -> np.ndarray:
    """One centroid update of Han et al.'s Fig. 3: each centroid moves by -lr times the sum of
    the gradients of the weights sharing it. codes_dense < 0 marks pruned positions (no update)."""
    codes = np.asarray(codes_dense).reshape(-1)
    grads = np.asarray(grad_dense, dtype=np.float64).reshape(-1)
    if codes.shape != grads.shape:
        raise ConfigError(f"codes {np.shape(codes_dense)} and gradients {np.shape(grad_dense)} differ")
    kept = codes >= 0
    total = np.bincount(codes[kept], weights=grads[kept], minlength=len(codebook))
    return (np.asarray(codebook, dtype=np.float64) - lr * total).astype(np.float32)


# ---------------------------------------------------------------- canonical Huffman

def huffman_lengths(freqs: np.ndarray, max_len: int = MAX_CODE_LEN) -> np.ndarray:
    """Code length per symbol (0 = absent) of a Huffman code limited to max_len bits.

    A lone symbol gets length 1 so every stream has a well-formed code.
    """
    freqs = np.asarray(freqs, dtype=np.int64)
    present = np.flatnonzero(freqs)
    lengths = np.zeros(len(freqs), dtype=np.uint8)
    if present.size == 1:
        lengths[present] = 1
    if present.size <= 1:
        return lengths
    f = freqs[present]
    while True:
        heap = [(int(w), i, [i]) for i, w in enumerate(f)]
        heapq.heapify(heap)
        depth = np.zeros(present.size, dtype=np.int64)
        tiebreak = present.size
        while len(heap) > 1:
            w1, _, s1 = heapq.heappop(heap)
            w2, _, s2 = heapq.heappop(heap)
            merged = s1 + s2
            depth[merged] += 1
            heapq.heappush(heap, (w1 + w2, tiebreak, merged))
            tiebreak += 1
        if depth.max() <= max_len:
            lengths[present] = depth
            return lengths
        f = (f + 1) // 2  # flatten the distribution; stays >= 1


def canonical_codes(lengths: np.ndarray) -> np.ndarray:
    """Canonical code values: symbols ordered by (length, symbol) take consecutive codes."""
    lengths = np.asarray(lengths, dtype=np.int64)
    codes = np.zeros(len(lengths), dtype=np.int64)
    code, prev = 0, 0
    for sym in sorted(np.flatnonzero(lengths), key=lambda s: (lengths[s], s)):
        code <<= int(lengths[sym]) - prev
        prev = int(lengths[sym])
        codes[sym] = code
        code += 1
    return codes


@dataclass(frozen=True, eq=False)
class HuffmanStream:
    """One Huffman-coded symbol stream: its code lengths, bits, and per-block bit offsets."""

    lengths: np.ndarray   # uint8 per alphabet symbol, 0 = absent
    nbits: int
    offsets: np.ndarray   # uint32 bit offset of symbols BLOCK, 2*BLOCK, ...
    data: bytes

    @property
    def nbytes(self) -> int:
        return len(self.lengths) + 8 + 4 * len(self.offsets) + len(self.data)


def huffman_encode(symbols: np.ndarray, alphabet: int) -> HuffmanStream:
    symbols = np.asarray(symbols, dtype=np.int64)
    lengths = huffman_lengths(np.bincount(symbols, minlength=alphabet))
    codes = canonical_codes(lengths)
    sym_len = lengths.astype(np.int64)[symbols]
    sym_code = codes[symbols]
    ends = np.cumsum(sym_len)
    nbits = int(ends[-1]) if symbols.size else 0
    if nbits >= 1 << 32:
        raise CodecError(f"Huffman stream of {nbits} bits exceeds the 32-bit offsets")
    starts = ends - sym_len
    bits = np.zeros(nbits, dtype=np.uint8)
    for j in range(int(sym_len.max()) if symbols.size else 0):  # j-th bit of every code at once
        has = sym_len > j
        bits[starts[has] + j] = (sym_code[has] >> (sym_len[has] - 1 - j)) & 1
    return HuffmanStream(lengths=lengths, nbits=nbits, offsets=starts[BLOCK::BLOCK].astype(np.uint32),
                         data=np.packbits(bits).tobytes())


def _decode_table(lengths: np.ndarray):
    """(symbol, length) for every max-length bit window; length 0 marks an invalid prefix."""
    lengths = np.asarray(lengths, dtype=np.int64)
    width = int(lengths.max()) if lengths.size else 0
    if width == 0 or width > MAX_CODE_LEN:
        raise CodecError(f"Huffman table: code lengths must lie in 1..{MAX_CODE_LEN}")
    present = np.flatnonzero(lengths)
    if np.sum(2.0 ** -lengths[present]) > 1.0:
        raise CodecError("Huffman table: code lengths violate the Kraft inequality")
    codes = canonical_codes(lengths)
    table_sym = np.zeros(1 << width, dtype=np.int64)
    table_len = np.zeros(1 << width, dtype=np.int64)
    for sym in present:
        lo = int(codes[sym]) << (width - int(lengths[sym]))
        hi = (int(codes[sym]) + 1) << (width - int(lengths[sym]))
        table_sym[lo:hi] = sym
        table_len[lo:hi] = lengths[sym]
    return width, table_sym, table_len


def huffman_decode(stream: HuffmanStream, count: int) -> np.ndarray:
    """Decode `count` symbols; all blocks advance together, one numpy step per symbol in a block."""
    n_blocks = -(-count // BLOCK)
    if len(stream.offsets) != max(n_blocks - 1, 0):
        raise CodecError(f"Huffman stream: {len(stream.offsets)} block offsets for {count} symbols")
    if len(stream.data) != -(-stream.nbits // 8):
        raise CodecError("Huffman stream: bit count does not match the data length")
    if count == 0:
        if stream.nbits:
            raise CodecError("Huffman stream: bits present but no symbols declared")
        return np.zeros(0, dtype=np.int64)
    width, table_sym, table_len = _decode_table(stream.lengths)
    starts = np.concatenate(([0], stream.offsets.astype(np.int64)))
    if np.any(np.diff(starts) <= 0) or starts[-1] >= max(stream.nbits, 1):
        raise CodecError("Huffman stream: block offsets are not increasing within the stream")
    raw = np.frombuffer(stream.data + bytes(4), dtype=np.uint8).astype(np.int64)
    words = (raw[:-3] << 24) | (raw[1:-2] << 16) | (raw[2:-1] << 8) | raw[3:]  # 32 bits from each byte
    last_byte = len(words) - 1
    last_len = count - (n_blocks - 1) * BLOCK
    steps = BLOCK if n_blocks > 1 else count
    out = np.empty((steps, n_blocks), dtype=np.int64)
    pos = starts.copy()
    last_end = None
    for i in range(steps):
        # A short last block runs on past its end; the clamp keeps the reads in the buffer
        # and its surplus symbols are neither checked nor kept.
        window = ((words[np.minimum(pos >> 3, last_byte)] << (pos & 7)) & 0xFFFFFFFF) >> (32 - width)
        out[i] = table_sym[window]
        step = table_len[window]
        if not step[:n_blocks if i < last_len else -1].all():
            raise CodecError("Huffman stream: bit pattern matches no code")
        pos += step
        if i == last_len - 1:
            last_end = int(pos[-1])
    if np.any(pos[:-1] != starts[1:]) or last_end != stream.nbits:
        raise CodecError("Huffman stream: decoded blocks do not end where the offsets say")
    return out.T.reshape(-1)[:count]


# ---------------------------------------------------------------- framing shared with weightless

def seal(magic: bytes, body: bytes) -> bytes:
    """magic + body + CRC32 of both: truncation and bit flips are caught before parsing."""
    blob = magic + body
    return blob + _CRC.pack(zlib.crc32(blob))


class Reader:
    """Bounds-checked reader of a sealed blob; every shortfall is a CodecError."""

    def __init__(self, blob: bytes, magic: bytes, what: str):
        blob = bytes(blob)
        self.what = what
        if len(blob) < len(magic) + _CRC.size or blob[:len(magic)] != magic:
            raise CodecError(f"{what}: not a {magic.decode()} stream (bad magic or too short)")
        (crc,) = _CRC.unpack(blob[-_CRC.size:])
        if zlib.crc32(blob[:-_CRC.size]) != crc:
            raise CodecError(f"{what}: checksum mismatch (corrupted or truncated)")
        self.buf = blob[:-_CRC.size]
        self.at = len(magic)

    def take(self, n: int) -> bytes:
        if n < 0 or self.at + n > len(self.buf):
            raise CodecError(f"{self.what}: truncated (wanted {n} bytes at offset {self.at})")
        self.at += n
        return self.buf[self.at - n:self.at]

    def unpack(self, fmt: str):
        s = struct.Struct("<" + fmt)
        return s.unpack(self.take(s.size))

    def array(self, dtype, count: int) -> np.ndarray:
        dt = np.dtype(dtype)
        return np.frombuffer(self.take(dt.itemsize * count), dtype=dt).copy()

    def shape(self, ndim: int) -> tuple[int, ...]:
        shape = tuple(int(d) for d in self.unpack(f"{ndim}Q"))
        if math.prod(shape) > MAX_ELEMENTS:
            raise CodecError(f"{self.what}: shape {shape} is implausibly large")
        return shape

    def done(self) -> None:
        if self.at != len(self.buf):
            raise CodecError(f"{self.what}: {len(self.buf) - self.at} unexpected trailing bytes")


def shape_header(shape) -> bytes:
    return struct.pack(f"<B{len(shape)}Q", len(shape), *shape)


# ---------------------------------------------------------------- the layer codec

@dataclass(frozen=True, eq=False)
class DCEncoded:
    """A Deep-Compression-coded layer; `nbytes` counts everything `decode` needs."""

    shape: tuple[int, ...]
    bits: int
    index_bits: int
    n_entries: int            # stored entries incl. fillers: symbols in each stream
    codebook: np.ndarray      # float32, 2**bits centroids (sorted by encode)
    codes: HuffmanStream      # alphabet 2**bits + 1 (last symbol = filler, exact 0.0)
    gaps: HuffmanStream       # alphabet 2**index_bits (symbol = gap, 0 unused)

    @property
    def sizes(self) -> dict:
        header = len(MAGIC) + 3 + 8 + len(shape_header(self.shape))
        return {"header": header, "codebook": 4 * len(self.codebook),
                "codes": self.codes.nbytes, "index": self.gaps.nbytes, "crc": _CRC.size}

    @property
    def nbytes(self) -> int:
        return sum(self.sizes.values())


def _check_widths(bits: int, index_bits: int) -> None:
    if not 1 <= bits <= 8:
        raise ConfigError(f"bits must be 1..8 (Han et al.: 5 for fc, 8 for conv), got {bits}")
    if not 1 <= index_bits <= 8:
        raise ConfigError(f"index_bits must be 1..8 (gaps are bytes at most), got {index_bits}")


def encode(weights: np.ndarray, bits: int = 5, index_bits: int = 5) -> DCEncoded:
    _check_widths(bits, index_bits)
    weights = np.asarray(weights, dtype=np.float32)
    flat = weights.reshape(-1)
    gaps, real_at, pos = sparse.gap_entries(flat, (1 << index_bits) - 1)
    codebook, codes = kmeans_1d(flat[pos], 1 << bits)
    symbols = np.full(len(gaps), 1 << bits, dtype=np.int64)
    symbols[real_at] = codes
    return DCEncoded(shape=tuple(int(d) for d in weights.shape), bits=bits, index_bits=index_bits,
                     n_entries=len(gaps), codebook=codebook,
                     codes=huffman_encode(symbols, (1 << bits) + 1),
                     gaps=huffman_encode(gaps, 1 << index_bits))


def _decode_entries(enc: DCEncoded):
    symbols = huffman_decode(enc.codes, enc.n_entries)
    gaps = huffman_decode(enc.gaps, enc.n_entries)
    if gaps.size and (gaps.min() < 1 or gaps.sum() > math.prod(enc.shape)):
        raise CodecError(f"deep_compression: index stream does not fit shape {enc.shape}")
    return symbols, gaps


def decode(enc: DCEncoded) -> np.ndarray:
    symbols, gaps = _decode_entries(enc)
    values = np.append(enc.codebook.astype(np.float32), np.float32(0.0))[symbols]
    return sparse.to_dense(values, gaps.astype(np.uint8), enc.shape)


def dense_codes(enc: DCEncoded) -> np.ndarray:
    """Cluster index at every position, -1 where pruned: what finetune_codebook takes."""
    symbols, gaps = _decode_entries(enc)
    out = np.full(math.prod(enc.shape), -1, dtype=np.int64)
    real = symbols < len(enc.codebook)
    out[(np.cumsum(gaps) - 1)[real]] = symbols[real]
    return out.reshape(enc.shape)


def _stream_bytes(s: HuffmanStream) -> bytes:
    return s.lengths.tobytes() + struct.pack("<Q", s.nbits) + s.offsets.astype("<u4").tobytes() + s.data


def to_bytes(enc: DCEncoded) -> bytes:
    body = (struct.pack("<BBBQ", 1, enc.bits, enc.index_bits, enc.n_entries) + shape_header(enc.shape)
            + enc.codebook.astype("<f4").tobytes() + _stream_bytes(enc.codes) + _stream_bytes(enc.gaps))
    return seal(MAGIC, body)


def _read_stream(r: Reader, alphabet: int, count: int) -> HuffmanStream:
    lengths = r.array(np.uint8, alphabet)
    (nbits,) = r.unpack("Q")
    offsets = r.array("<u4", max(-(-count // BLOCK) - 1, 0))
    return HuffmanStream(lengths=lengths, nbits=nbits, offsets=offsets, data=r.take(-(-nbits // 8)))


def from_bytes(blob: bytes) -> DCEncoded:
    r = Reader(blob, MAGIC, "deep_compression")
    version, bits, index_bits, n_entries = r.unpack("BBBQ")
    if version != 1:
        raise CodecError(f"deep_compression: unknown version {version}")
    try:
        _check_widths(bits, index_bits)
    except ConfigError as e:
        raise CodecError(f"deep_compression: corrupt header ({e})") from None
    shape = r.shape(r.unpack("B")[0])
    if n_entries > max(math.prod(shape), 0):
        raise CodecError(f"deep_compression: {n_entries} entries cannot fit shape {shape}")
    codebook = r.array("<f4", 1 << bits).astype(np.float32)
    codes = _read_stream(r, (1 << bits) + 1, n_entries)
    gaps = _read_stream(r, 1 << index_bits, n_entries)
    r.done()
    return DCEncoded(shape=shape, bits=bits, index_bits=index_bits, n_entries=n_entries,
                     codebook=codebook, codes=codes, gaps=gaps)


def report(enc: DCEncoded, weights: np.ndarray, decoded: np.ndarray) -> dict:
    """Size and error figures; bits are per real nonzero weight, as DeepSZ counts them."""
    weights = np.asarray(weights, dtype=np.float32)
    nnz = int(np.count_nonzero(weights))
    sizes = enc.sizes
    per_nz = 8 / max(nnz, 1)
    return {
        "bits": enc.bits, "index_bits": enc.index_bits, "n_entries": enc.n_entries,
        "fillers": enc.n_entries - nnz, "sizes": sizes,
        "bits_per_nonzero_data": per_nz * sizes["codes"],
        "bits_per_nonzero_index": per_nz * sizes["index"],
        "bits_per_nonzero": per_nz * enc.nbytes,
        "ratio": 4 * weights.size / enc.nbytes,
        "max_abs_error": float(np.max(np.abs(decoded - weights), initial=0.0)),
        "distinct_nonzero_values": int(np.unique(decoded[decoded != 0]).size),
    }
