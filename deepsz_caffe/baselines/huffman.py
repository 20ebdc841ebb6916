"""Canonical, length-limited Huffman codes with block offsets, so numpy decodes all blocks of a
stream in lockstep (Deep Compression's stage 3)."""
import heapq
from dataclasses import dataclass

import numpy as np

from deepsz_caffe.errors import CodecError

MAX_CODE_LEN = 16          # decode table of 2**16 entries; windows of <= 25 bits stay exact
BLOCK = 4096               # symbols between stored bit offsets


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


