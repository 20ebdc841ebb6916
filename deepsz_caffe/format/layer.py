"""One weight blob <-> (metadata, lossy data stream, lossless index stream): DeepSZ section 3.5.

Pure (no Caffe): the sparse form, a lossy codec for the data array (bound checked on every
call), and the best-fit lossless codec for the index array. The two streams are the paper's,
byte for byte; a third, usually empty, lists the kept weights at gap exactly 255, which the
paper's format cannot tell from fillers (see `sparse`), so that decoding restores the pruned
mask exactly: zeros at every pruned position, nonzeros at every kept one.
"""
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .. import sparse, timing, varint
from ..codecs import compress_bounded, get_lossy
from ..codecs.lossless import compress_index, decompress_index
from ..errors import CodecError

DENSE_WARNING_DENSITY = 0.5


@dataclass(frozen=True)
class EncodedLayer:
    meta: dict          # JSON-able: shape, nnz, n_entries, error_bound, codecs, byte sizes
    data: bytes         # lossy stream of the data array
    index: bytes        # lossless stream of the index (gap) array
    gap255_kept: bytes = b""  # which gap-255 entries are kept weights; b"" when none (the usual case)

    @property
    def size(self) -> int:
        """Compressed bytes of the layer (data + index), as the paper counts them."""
        return len(self.data) + len(self.index)


def index_stream(sp: sparse.SparseLayer, lossless: str) -> tuple[str, bytes]:
    """(codec, bytes) of the index array; the row length lets the context model see columns. A
    V1 caffemodel's InnerProduct blob has the legacy 4-D shape (1, 1, out, in): its rows are
    those of the (out, in) matrix it is, as Caffe reads it."""
    shape = sp.shape[2:] if len(sp.shape) == 4 and sp.shape[:2] == (1, 1) else sp.shape
    row_length = math.prod(shape[1:]) if len(shape) > 1 else 0
    return compress_index(sp.index.tobytes(), lossless, row_length=row_length)


def zeroed_sparse(codec, weights: np.ndarray, error_bound: float) -> tuple[sparse.SparseLayer, int]:
    """(sparse form the codec codes, how many kept weights it zeroed): a codec that
    `zeroes_within_bound` (zquant) codes the weights with 0 < |w| <= eb as pruned, in the
    positions and in the values alike; every other codec codes all kept weights."""
    weights = np.asarray(weights, dtype=np.float32)
    if not getattr(codec, "zeroes_within_bound", False):
        return sparse.to_sparse(weights), 0
    small = codec.zero_small(weights, error_bound)
    zeroed = int(np.count_nonzero(small))
    return sparse.to_sparse(np.where(small, np.float32(0), weights) if zeroed else weights), zeroed


def coded_values(codec, sp: sparse.SparseLayer, error_bound: float) -> np.ndarray:
    """The data array the codec is given. Decode writes 0.0 at every filler whatever its value
    (`_rebuild`), so a codec that `fills_fillers` (zquant) may give them its cheapest value."""
    if not getattr(codec, "fills_fillers", False):
        return sp.data
    fillers = sparse.filler_entries(sp.index, sparse.kept_at_max_gap(sp.data, sp.index))
    return codec.fill(sp.data, fillers, error_bound) if fillers.size else sp.data


def round_trip(codec, sp: sparse.SparseLayer, error_bound: float) -> tuple[bytes, np.ndarray]:
    """(data stream, rebuilt dense blob) of one layer's data array at `error_bound` (checked),
    rebuilt exactly as `decode_layer` rebuilds it: Algorithm 1 measures what decode delivers."""
    blob = compress_bounded(codec, coded_values(codec, sp, error_bound), error_bound)
    kept = sparse.kept_at_max_gap(sp.data, sp.index)
    values = codec.decompress(blob, sp.n_entries, trusted=True)  # our stream, just made
    return blob, _rebuild(values, sp.index, sp.shape, kept)


def _rebuild(values, gaps, shape, kept: np.ndarray) -> np.ndarray:
    return sparse.to_dense(values, gaps, shape, fillers=sparse.filler_entries(gaps, kept))


def pack_kept(kept: np.ndarray) -> bytes:
    """The kept-at-gap-255 ordinals as LEB128 varints of their gaps (1 byte each for gaps < 128)."""
    return varint.encode(np.diff(np.asarray(kept, dtype=np.int64), prepend=-1).tolist())


def unpack_kept(blob: bytes, count: int) -> np.ndarray:
    """Inverse of pack_kept: exactly `count` varints of at most 5 bytes, filling `blob`."""
    try:
        gaps = varint.decode_array(blob, count, max_bytes=5)
    except varint.VarintError:
        raise CodecError(f"layer lists {count} kept weights at gap 255 but its gap255_kept "
                         f"section holds {np.count_nonzero(np.frombuffer(blob, np.uint8) < 0x80)} "
                         f"in {len(blob)} bytes") from None
    return np.cumsum(gaps) - 1


def encode_layer(weights: np.ndarray, error_bound: float, lossy: str | Sequence[str] = "sz2",
                 lossless: str = "best") -> EncodedLayer:
    """Encode one blob; with several lossy codecs the smallest layer (data + index) wins, all
    meeting the bound. A zeroing codec (zquant) codes a sparse form without the kept weights
    within eb of 0, so its index stream is its own."""
    weights = np.asarray(weights, dtype=np.float32)
    options, index_of = {}, {}
    for name in ((lossy,) if isinstance(lossy, str) else lossy):
        codec = get_lossy(name)
        sp, zeroed = zeroed_sparse(codec, weights, error_bound)
        data = compress_bounded(codec, coded_values(codec, sp, error_bound), error_bound)
        key = name if zeroed else None  # the plain sparse form's index stream is shared by all
        if key not in index_of:
            index_of[key] = index_stream(sp, lossless)
        options[name] = (sp, zeroed, data, *index_of[key])
    lossy = min(options, key=lambda name: len(options[name][2]) + len(options[name][4]))
    sp, zeroed, data, index_codec, index = options[lossy]
    kept = sparse.kept_at_max_gap(sp.data, sp.index)
    gap255_kept = pack_kept(kept)
    meta = {
        "shape": list(sp.shape), "nnz": sp.nnz, "n_entries": sp.n_entries,
        "density": sp.nnz / max(1, int(np.prod(sp.shape))),
        "error_bound": float(error_bound), "lossy_codec": lossy, "index_codec": index_codec,
        "dense_bytes": sp.dense_bytes, "csr_bytes": sp.csr_bytes,
        "data_bytes": len(data), "index_bytes": len(index),
        "gap255_kept": len(kept), "gap255_kept_bytes": len(gap255_kept),
    }
    if zeroed:
        meta["zeroed"] = zeroed  # kept weights within eb of 0, stored as pruned: nnz + zeroed kept
    return EncodedLayer(meta, data, index, gap255_kept)


def decode_layer(meta: dict, data: bytes, index: bytes, gap255_kept: bytes | None = None, *,
                 trusted: bool = False) -> np.ndarray:
    """Rebuild the dense float32 blob with the pruned mask exact. A layer whose meta has no
    "gap255_kept" (written before it existed) is rebuilt as then: fillers come back within eb of 0.
    `trusted`: streams this process made (decoded in-process; see codecs.base)."""
    n = int(meta["n_entries"])
    gaps = np.frombuffer(decompress_index(index, meta["index_codec"], n), dtype=np.uint8)
    values = get_lossy(meta["lossy_codec"]).decompress(data, n, trusted=trusted)
    return rebuild_layer(meta, values, gaps, gap255_kept)


def decode_stages(meta: dict, data: bytes, index: bytes, gap255_kept: bytes | None = None, *,
                  repeat: int = 1) -> tuple[np.ndarray, dict[str, float]]:
    """decode_layer of a stream this process made, split into its three stages as the paper's
    Figure 7b times them: (dense blob, {"lossless": index decode, "lossy": data decode (in
    process), "rebuild": sparse rebuild}), each the fastest of `repeat` wall times."""
    n = int(meta["n_entries"])
    raw, t_lossless = timing.best(repeat, decompress_index, index, meta["index_codec"], n)
    codec = get_lossy(meta["lossy_codec"])
    values, t_lossy = timing.best(repeat, codec.decompress, data, n, trusted=True)
    gaps = np.frombuffer(raw, dtype=np.uint8)
    dense, t_rebuild = timing.best(repeat, rebuild_layer, meta, values, gaps, gap255_kept)
    return dense, {"lossless": t_lossless, "lossy": t_lossy, "rebuild": t_rebuild}


def rebuild_layer(meta: dict, values: np.ndarray, gaps: np.ndarray,
                  gap255_kept: bytes | None = None) -> np.ndarray:
    """The dense blob from the decoded data and index arrays (format.network.decode decodes the
    data arrays of all layers at once, and checks the gaps against the header first)."""
    if "gap255_kept" not in meta:
        return sparse.to_dense(values, gaps, tuple(meta["shape"]))
    kept = unpack_kept(gap255_kept or b"", int(meta["gap255_kept"]))
    return _rebuild(values, gaps, tuple(meta["shape"]), kept)
