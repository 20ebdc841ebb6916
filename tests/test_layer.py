"""One layer <-> streams: the decoded mask is the pruned mask for every codec, the paper's streams
are unchanged byte for byte, and Algorithm 1's rebuild is decode's."""
import hashlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deepsz_caffe import sparse
from deepsz_caffe.codecs import LOSSY_CODECS, get_lossy
from deepsz_caffe.errors import CodecError
from deepsz_caffe.format.layer import (decode_layer, encode_layer, index_stream, pack_kept, round_trip,
                                      unpack_kept, zeroed_sparse)

from helpers import max_error

EB = 0.01
INDEX_CODERS = ("gzip", "zstd", "blosc", "ctx", "best", "best-all")
# Gaps at the filler edges: 255 (a kept weight the format cannot tell from a filler), 510 and 765
# (a filler, then a kept weight at gap 255), 511, and long runs.
_gaps = st.sampled_from([1, 2, 3, 254, 255, 256, 509, 510, 511, 765, 1000])
# Magnitudes both sides of EB: a kept weight below it may come back as 0 from a lossy codec.
_values = st.one_of(st.floats(0.02, 0.2), st.floats(1e-6, 0.009)).map(np.float32)


@st.composite
def pruned_layers(draw):
    """A pruned row-major layer from its gaps (so the first gap is the leading zero run)."""
    gaps = draw(st.lists(_gaps, min_size=0, max_size=30))
    trailing = draw(st.sampled_from([0, 1, 255, 256, 300, 511]))
    pos = np.cumsum(np.array(gaps, dtype=np.int64)) - 1
    size = (int(pos[-1]) + 1 if gaps else 1) + trailing
    w = np.zeros(size, dtype=np.float32)
    signs = np.array(draw(st.lists(st.sampled_from([-1, 1]), min_size=len(gaps), max_size=len(gaps))))
    w[pos] = signs * np.array(draw(st.lists(_values, min_size=len(gaps), max_size=len(gaps))))
    return w.reshape((1, size)) if draw(st.booleans()) else w


def known_layer() -> np.ndarray:
    """8% kept, a leading run of 700, kept weights at gaps 255, 1530 and 510 (the last two land at
    gap 255 after their fillers), a long run and a trailing run of 600."""
    rng = np.random.default_rng(13)
    w = np.where(rng.random((300, 784)) < 0.08, rng.normal(0, 0.03, (300, 784)), 0).astype(np.float32)
    w[0, :700] = 0
    w[0, 783], w[1, 254] = 0.07, 0.05           # flat 783 -> 1038: gap 255
    w[1, :254], w[1, 255:], w[2] = 0, 0, 0
    w[3] = 0
    w[3, 216], w[3, 726] = -0.04, 0.03           # gaps 1530 = 6 * 255 and 510 = 2 * 255
    w[4:7] = 0
    w[7, :765], w[7, 765] = 0, 0.02              # a run over three rows
    w[-1, -600:] = 0
    return w


def _decode(enc):
    return decode_layer(enc.meta, enc.data, enc.index, enc.gap255_kept)


@pytest.mark.parametrize("lossless", INDEX_CODERS)
@pytest.mark.parametrize("lossy", LOSSY_CODECS)
@settings(max_examples=40, deadline=None)
@given(w=pruned_layers())
def test_decoded_mask_is_the_pruned_mask(lossy, lossless, w):
    """Every codec keeps the pruned mask; a zeroing one (zquant) also zeroes exactly the kept
    weights within EB of 0 (tests/test_zquant.py), and Algorithm 1 rebuilds what decode does."""
    enc = encode_layer(w, EB, lossy, lossless)
    out = _decode(enc)
    codec = get_lossy(enc.meta["lossy_codec"])
    sp, zeroed = zeroed_sparse(codec, w, EB)
    expected_zero = sparse.to_dense(sp.data, sp.index, sp.shape) == 0
    assert np.array_equal(out == 0, expected_zero) and np.all(expected_zero[w == 0])
    assert zeroed == int(np.count_nonzero(expected_zero)) - int(np.count_nonzero(w == 0))
    assert max_error(out, w) <= EB
    assert enc.meta["gap255_kept"] == len(sparse.kept_at_max_gap(sp.data, sp.index))
    assert np.array_equal(round_trip(codec, sp, EB)[1], out)


@pytest.mark.parametrize("lossy", [c for c in LOSSY_CODECS if c != "zquant"])  # zquant zeroes
def test_known_layer_keeps_its_mask(lossy):
    w = known_layer()
    enc = encode_layer(w, EB, lossy, "best")
    sp = sparse.to_sparse(w)
    assert enc.meta["gap255_kept"] == 3 and enc.gap255_kept  # gap 255 itself, and after fillers
    assert np.count_nonzero(sp.index == 255) > enc.meta["gap255_kept"]  # and real fillers
    out = _decode(enc)
    assert np.array_equal(out == 0, w == 0) and max_error(out, w) <= EB


def test_paper_streams_are_unchanged():
    """The data and index streams of `--preset paper` (sz2 + best) are those the paper's format
    gives: byte-identical to the streams written before the kept-at-255 list existed."""
    enc = encode_layer(known_layer(), EB, "sz2", "best")
    assert enc.meta["index_codec"] == "zstd"
    # sha256 of the streams written by commit 93a4c34 (before this list existed) for this layer
    assert hashlib.sha256(enc.data).hexdigest()[:16] == "8cdc80c44d030de6"
    assert hashlib.sha256(enc.index).hexdigest()[:16] == "bda8655f0570acec"
    assert enc.size == len(enc.data) + len(enc.index)  # the paper's size: the two streams only


def test_the_ambiguous_pair_is_resolved_by_the_list():
    """[255, 10] is a filler then a weight at +265, or weights at +255 and +265: same index bytes."""
    a = np.zeros(300, dtype=np.float32)
    a[[254, 264]] = 0.5, 0.25
    b = np.zeros(300, dtype=np.float32)
    b[264] = 0.25
    ea, eb_ = encode_layer(a, EB, "sz2", "zstd"), encode_layer(b, EB, "sz2", "zstd")
    assert ea.index == eb_.index
    assert (ea.meta["gap255_kept"], eb_.meta["gap255_kept"]) == (1, 0)
    assert np.array_equal(_decode(ea) != 0, a != 0) and np.array_equal(_decode(eb_) != 0, b != 0)


def test_files_without_the_list_decode_as_before():
    """A layer meta from before "gap255_kept" existed: fillers keep their decoded values."""
    w = known_layer()
    enc = encode_layer(w, EB, "quant", "zstd")
    old = {k: v for k, v in enc.meta.items() if not k.startswith("gap255_kept")}
    sp = sparse.to_sparse(w)
    values = get_lossy("quant").decompress(enc.data, sp.n_entries)
    assert np.array_equal(decode_layer(old, enc.data, enc.index),
                          sparse.to_dense(values, sp.index, sp.shape))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 2**31), unique=True, max_size=50))
def test_kept_ordinals_pack_round_trip(ordinals):
    kept = np.array(sorted(ordinals), dtype=np.int64)
    blob = pack_kept(kept)
    one_byte_each = bool(np.all(np.diff(kept, prepend=-1) < 128))
    assert len(blob) <= 5 * len(kept) and (len(blob) == len(kept)) == one_byte_each
    assert np.array_equal(unpack_kept(blob, len(kept)), kept)


@pytest.mark.parametrize("count, blob", [(2, b""), (0, b"x"), (-1, b""), (1, b"\x80"), (1, b"\x01\x01"),
                                         (1, b"\x81\x81\x81\x81\x81\x01")])
def test_kept_count_and_section_must_agree(count, blob):
    enc = encode_layer(known_layer(), EB, "sz2", "zstd")
    with pytest.raises(CodecError, match="gap 255"):
        decode_layer({**enc.meta, "gap255_kept": count}, enc.data, enc.index, blob)


def test_kept_ordinals_out_of_range_are_refused():
    enc = encode_layer(known_layer(), EB, "sz2", "zstd")
    n255 = int(np.count_nonzero(sparse.to_sparse(known_layer()).index == 255))
    with pytest.raises(CodecError, match="ordinals below"):
        decode_layer({**enc.meta, "gap255_kept": 1}, enc.data, enc.index, pack_kept(np.array([n255])))


def test_a_legacy_4d_inner_product_blob_codes_its_positions_as_the_matrix_it_is():
    """A V1 caffemodel stores an fc layer as (1, 1, out, in): ctx must see `out` rows of width
    `in`, as for (out, in), not one row of out * in (LeNet-300-100's ip1: 7,143 B against 6,825 B)."""
    rng = np.random.default_rng(5)
    w = np.where(rng.random((300, 784)) < rng.random(784) * 0.15, rng.normal(0, 0.1, (300, 784)), 0)
    w = w.astype(np.float32)
    modern = index_stream(sparse.to_sparse(w), "ctx")
    legacy = index_stream(sparse.to_sparse(w.reshape(1, 1, 300, 784)), "ctx")
    single_row = index_stream(sparse.to_sparse(w.reshape(1, -1)), "ctx")
    assert legacy == modern and len(modern[1]) < len(single_row[1])
