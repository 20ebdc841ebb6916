"""Lossless codecs for the uint8 index (gap) arrays and the network's other blobs.

Choices, measured on gap arrays of 4096x4096 layers with random positions:
- gzip: zlib format, level 9.
- zstd: level 19; level 22 gave byte-identical sizes at 4%, 8% and 20%
  density, with a larger window to allocate. A 4-byte content checksum is
  written so corruption is detected, not decoded into wrong gaps.
- blosc: internal zstd, clevel 9, no shuffle, typesize 1: the best of its
  compressor/shuffle combinations at every density (bit-shuffle only helps
  the weaker lz4/blosclz). Blosc has no checksum: corruption inside a block
  can decode silently, so containers must checksum what they store.
- ctx: not a byte compressor but a context model of the positions the gaps
  encode (codecs/index/context.py); smaller on structured masks, but it only
  accepts gap arrays and decodes far slower, so "best" (the paper's best of
  gzip/zstd/blosc) leaves it out and "best-all" includes it.
Decoders check the declared size before allocating, so a corrupt header
cannot request a huge buffer (the caller's `size` comes from the skeleton's
shapes), and refuse a stream with bytes after its end: every byte of a
section must be accounted for. An index stream of an untrusted file is
decoded in the same sandboxed child as the lossy streams (`index_job`,
codecs/isolate.py: memory cap and deadline), since blosc's C code and ctx's
coders parse bytes no up-front check can vouch for; zstd alone, with its
exact declared size, decodes the skeleton and other blobs in-process.
"""

import functools
import zlib

import blosc
import numpy as np
import zstandard

from deepsz_caffe.errors import CodecError
from deepsz_caffe.registry import Registry

_ZSTD_LEVEL = 19
_LIB_ERRORS = (zlib.error, zstandard.ZstdError, blosc.blosc_extension.error, ValueError, TypeError)


class Gzip:
    def encode(self, raw: bytes, row_length: int = 0) -> bytes:
        return zlib.compress(raw, 9)

    def decode(self, blob: bytes, size: int, positions: int | None = None) -> bytes:
        d = zlib.decompressobj()
        out = d.decompress(blob, size + 1)  # max_length 0 would mean unlimited
        if not d.eof:
            raise CodecError("gzip: stream is truncated or decodes to more than expected")
        if d.unused_data:
            raise CodecError(f"gzip: {len(d.unused_data)} bytes after the end of the stream")
        return out

    def library_version(self) -> str:
        return f"zlib {zlib.ZLIB_VERSION}"


class Zstd:
    def encode(self, raw: bytes, row_length: int = 0) -> bytes:
        return zstandard.ZstdCompressor(level=_ZSTD_LEVEL, write_checksum=True).compress(raw)

    def decode(self, blob: bytes, size: int, positions: int | None = None) -> bytes:
        declared = zstandard.frame_content_size(blob)
        if declared != size:
            raise CodecError(f"zstd: frame declares {declared} bytes, expected {size}")
        if not zstandard.get_frame_parameters(blob).has_checksum:  # we always write one
            raise CodecError("zstd: frame carries no checksum")
        return zstandard.ZstdDecompressor().decompress(blob, allow_extra_data=False)

    def library_version(self) -> str:
        return "zstd " + ".".join(map(str, zstandard.ZSTD_VERSION))


class Blosc:
    def encode(self, raw: bytes, row_length: int = 0) -> bytes:
        return blosc.compress(raw, typesize=1, clevel=9, shuffle=blosc.NOSHUFFLE, cname="zstd")

    def decode(self, blob: bytes, size: int, positions: int | None = None) -> bytes:
        declared, stored, _block = blosc.get_cbuffer_sizes(blob)
        if declared != size or stored != len(blob):
            raise CodecError(f"blosc: buffer declares {declared} bytes in {stored}, expected {size} "
                             f"in {len(blob)}")
        return blosc.decompress(blob)

    def library_version(self) -> str:
        return f"blosc {blosc.VERSION_STRING}"


# Index coders: id, class (encode(raw, row_length), decode(blob, size, positions): `positions`, the
# layer's weight count, bounds the mask a stream may claim; library_version()), pip requirement;
# "paper" marks the paper's three, the candidates of "best".
INDEX = Registry("index codec", CodecError)
INDEX.register("gzip", "deepsz_caffe.codecs.lossless:Gzip", tags=("paper",))
INDEX.register("zstd", "deepsz_caffe.codecs.lossless:Zstd", "zstandard", tags=("paper",))
INDEX.register("blosc", "deepsz_caffe.codecs.lossless:Blosc", "blosc", tags=("paper",))
INDEX.register("ctx", "deepsz_caffe.codecs.index.context:ContextIndex", "constriction pcodec")
PAPER_INDEX_CODECS = INDEX.ids("paper")
ALL_INDEX_CODECS = INDEX.ids()
_CHOICES = {"best": PAPER_INDEX_CODECS, "best-all": ALL_INDEX_CODECS}


def index_codec_version(codec: str) -> str:
    """Version of the library behind an index codec (recorded in every .dsz header)."""
    return INDEX.version(codec)


def _lookup(codec: str, allowed: tuple[str, ...]) -> None:
    if codec not in allowed:
        raise CodecError(f"unknown index codec {codec!r}; valid: {', '.join(allowed)}")


def compress_index(raw: bytes, codec: str, *, row_length: int = 0) -> tuple[str, bytes]:
    """Compress with `codec`, or with each of a set for "best"/"best-all", keeping the smallest.

    Returns (codec actually used, stream); ties go to the earlier in ALL_INDEX_CODECS.
    row_length is the layer's row width (prod(shape[1:])), a context a coder may use (ctx does);
    0 means unknown.
    """
    _lookup(codec, ALL_INDEX_CODECS + tuple(_CHOICES))
    names = _CHOICES.get(codec, (codec,))
    try:
        blobs = [(name, INDEX.create(name).encode(raw, row_length)) for name in names]
    except _LIB_ERRORS as e:
        raise CodecError(f"index compression failed: {e}") from e
    return min(blobs, key=lambda nb: len(nb[1]))

def decompress_index(blob: bytes, codec: str, size: int, positions: int | None = None) -> bytes:
    """Decode and insist on exactly `size` bytes; any library failure becomes CodecError.
    `positions`: the layer's weight count, which bounds the mask a ctx stream may claim."""
    _lookup(codec, ALL_INDEX_CODECS)
    try:
        out = INDEX.create(codec).decode(bytes(blob), size, positions)
    except _LIB_ERRORS as e:
        raise CodecError(f"{codec}: corrupt stream: {e}") from e
    if len(out) != size:
        raise CodecError(f"{codec}: decoded {len(out)} bytes, expected {size}")
    return out


def index_job(blob: bytes, codec: str, size: int, positions: int) -> tuple:
    """A job for codecs.isolate.decode_all (or base.decompress_all's `extra`): decode an
    untrusted index stream in the sandboxed child, to `size` uint8 gaps."""
    _lookup(codec, ALL_INDEX_CODECS)
    return (f"{codec} index", functools.partial(_gaps, codec, positions), bytes(blob), size, np.uint8)


def _gaps(codec: str, positions: int, payload: bytes, n: int) -> np.ndarray:
    return np.frombuffer(decompress_index(payload, codec, n, positions), np.uint8)


def compress_lossless(raw: bytes) -> bytes:
    """zstd for the network's other blobs (biases, unpruned layers, ...)."""
    return compress_index(raw, "zstd")[1]

def decompress_lossless(blob: bytes, size: int) -> bytes:
    return decompress_index(blob, "zstd", size)
