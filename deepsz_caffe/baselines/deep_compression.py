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

Han et al. also retrain the centroids (their Fig. 3); this baseline does not, so its accuracy at
a given size is, if anything, pessimistic. The quantisation error is not bounded, unlike
DeepSZ's: `report` gives the maximum measured.
"""
import math
import struct
from dataclasses import dataclass

import numpy as np

from deepsz_caffe import sparse
from deepsz_caffe.baselines._framing import CRC_BYTES, Reader, seal, shape_header
from deepsz_caffe.baselines.huffman import BLOCK, HuffmanStream, huffman_decode, huffman_encode
from deepsz_caffe.baselines.kmeans import kmeans_1d
from deepsz_caffe.errors import CodecError, ConfigError

MAGIC = b"DCB1"


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
                "codes": self.codes.nbytes, "index": self.gaps.nbytes, "crc": CRC_BYTES}

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
