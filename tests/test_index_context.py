"""deepsz_caffe.codecs.index (the ctx coder and its grouped mode): exact round trips, refusal of
bad streams, sizes against the paper's coders."""

import struct
import sys
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from helpers import gap_bytes, sparse_layers

from deepsz_caffe.codecs.index import context as context_index
from deepsz_caffe.codecs.index import grouped as grouped_index
from deepsz_caffe.codecs.lossless import (
    ALL_INDEX_CODECS,
    PAPER_INDEX_CODECS,
    compress_index,
    decompress_index,
)
from deepsz_caffe.errors import CodecError
from deepsz_caffe.sparse import to_sparse



def structured_layer(rows=300, side=28, keep=0.08, seed=0):
    """MNIST-like fc weights: column importance by pixel position, row importance per neuron."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:side, :side] - (side - 1) / 2
    column = np.exp(-(xx ** 2 + yy ** 2) / (2 * (side / 5) ** 2)).reshape(-1)
    w = rng.standard_normal((rows, side * side)) * rng.lognormal(0, 0.5, rows)[:, None] * column
    cut = np.quantile(np.abs(w), 1 - keep)
    return np.where(np.abs(w) > cut, w, 0).astype(np.float32)


def ctx_round_trip(raw: bytes, row_length: int) -> bytes:
    blob = context_index.encode(raw, row_length)
    assert context_index.decode(blob, len(raw)) == raw
    mask = context_index._canonical_mask(np.frombuffer(raw, np.uint8))
    if mask.size:  # the grouped mode by itself, whichever mode won above
        width = min(row_length, mask.size) if row_length else mask.size
        assert np.array_equal(grouped_index.decode(grouped_index.encode(mask, width), mask.size, mask.sum()),
                              np.diff(np.flatnonzero(mask), prepend=-1))
    used, via = compress_index(raw, "ctx", row_length=row_length)
    assert used == "ctx" and decompress_index(via, "ctx", len(raw)) == raw
    return blob


# ---- ctx: exact round trips ----

@settings(max_examples=200, deadline=None)
@given(sparse_layers(), st.integers(0, 3000))
def test_ctx_round_trip_of_layers(w, other_hint):
    """Layers built from gaps at the filler thresholds and long (>= 256) runs, every shape."""
    raw = to_sparse(w).index.tobytes()
    for hint in (0, int(np.prod(w.shape[1:])), other_hint):
        ctx_round_trip(raw, hint)


@settings(max_examples=100, deadline=None)
@given(
    st.integers(1, 30), st.integers(1, 300),
    st.sampled_from([0.0, 0.002, 0.05, 0.5, 0.97, 1.0]),
    st.integers(0, 1000), st.integers(0, 2**32 - 1),
)
def test_ctx_round_trip_of_masks(rows, cols, keep, lead, seed):
    """Random masks: empty, dense, one row, one column, and leading zero runs up to 1000."""
    rng = np.random.default_rng(seed)
    w = (rng.random((rows, cols)) < keep).astype(np.float32)
    w.reshape(-1)[:lead] = 0
    ctx_round_trip(to_sparse(w).index.tobytes(), cols)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.integers(1, 255), st.just(255)), max_size=300), st.integers(0, 50))
def test_ctx_round_trip_of_any_gap_array(gaps, hint):
    """Arrays no to_sparse would write (255 runs ending the array, 255 before 255) come back exactly."""
    ctx_round_trip(bytes(gaps), hint)


def test_ctx_edge_arrays():
    for raw in (b"", b"\x01", b"\xff", b"\xff" * 1000, b"\x01" * 5000, gap_bytes(20_000)):
        for hint in (0, 1, 7, 784, 10**9):
            ctx_round_trip(raw, hint)
    for raw in (gap_bytes(), gap_bytes(keep=0.01)):  # 200,000 positions
        for hint in (0, 784, 10**9):
            ctx_round_trip(raw, hint)


def test_ctx_merges_rows_beyond_its_limit():
    """Row length 1 over 100,000 positions: merged into at most 2**16 rows, so it stays fast."""
    raw = gap_bytes(100_000, keep=0.3)
    blob = context_index.encode(raw, 1)
    assert context_index.decode(blob, len(raw)) == raw and len(blob) < len(raw)


def test_ctx_refuses_what_is_not_a_gap_array():
    with pytest.raises(CodecError, match="gap"):
        context_index.encode(b"\x03\x00\x02", 0)
    with pytest.raises(CodecError, match="row_length"):
        context_index.encode(b"\x03", -1)
    with pytest.raises(CodecError, match="gap"):
        compress_index(b"\x00", "best-all")


# ---- ctx: refusal of bad streams ----

def test_ctx_refuses_every_corrupted_byte_and_truncation():
    raw = to_sparse(structured_layer(rows=20)).index.tobytes()
    blob = context_index.encode(raw, 784)
    for size in (0, len(raw) - 1, len(raw) + 1):
        with pytest.raises(CodecError):
            decompress_index(blob, "ctx", size)
    for pos in range(len(blob)):
        bad = bytearray(blob)
        bad[pos] ^= 0x5A
        with pytest.raises(CodecError):
            decompress_index(bytes(bad), "ctx", len(raw))
    for length in range(len(blob)):
        with pytest.raises(CodecError):
            decompress_index(blob[:length], "ctx", len(raw))


@pytest.mark.parametrize("rows, mode", [(20, 1), (1400, 2)])  # 1400 rows: > 2**20 positions
def test_ctx_refuses_garbage_with_valid_checksums(rows, mode):
    """The model's own checks, past the CRC: garbage payloads, truncated ones, wrong versions."""
    raw = to_sparse(structured_layer(rows=rows)).index.tobytes()
    blob = context_index.encode(raw, 784)
    version, _, crc_gaps = struct.unpack_from("<BII", blob)
    assert version == mode
    payload = blob[9:]
    rng = np.random.default_rng(0)
    step = 4 * max(1, len(payload) // 800)
    payloads = [payload[:k] for k in range(0, len(payload), step)]
    payloads += [rng.bytes(4 * int(rng.integers(1, 200))) for _ in range(200)]
    payloads += [payload[:18] + rng.bytes(int(rng.integers(0, 200))) for _ in range(200)]  # grouped head kept
    for p in payloads:
        with pytest.raises(CodecError):
            context_index.decode(struct.pack("<BII", version, zlib.crc32(p), crc_gaps) + p, len(raw))
    with pytest.raises(CodecError, match="version"):
        context_index.decode(bytes([3]) + blob[1:], len(raw))


@pytest.mark.parametrize("structured", [False, True])  # one block / density-split blocks
def test_ctx_grouped_refuses_more_ones_than_entries(structured):
    """A forged count cannot make the decoder allocate more than the layer's entries allow."""
    w = structured_layer(rows=400) if structured else \
        (np.random.default_rng(4).random((400, 784)) < 0.08).astype(np.float32)
    mask = (w != 0).reshape(-1)
    payload = grouped_index.encode(mask, 784)
    assert (payload[16:18] != bytes(2)) == structured
    ones = int(mask.sum())
    assert grouped_index.decode(payload, mask.size, ones).size == ones
    with pytest.raises(CodecError, match="more ones"):
        grouped_index.decode(payload, mask.size, ones - 1)


def test_ctx_mode_choice():
    """Small masks get the smaller of both modes; beyond 2**20 positions only the grouped mode
    is tried, which keeps decoding AlexNet-sized layers fast."""
    small = to_sparse(structured_layer(rows=100, seed=3)).index.tobytes()
    blob = context_index.encode(small, 784)
    mask = context_index._canonical_mask(np.frombuffer(small, np.uint8))
    grouped = grouped_index.encode(mask, 784)
    assert blob[0] == 1 and len(blob) - 9 < len(grouped)  # bitmap wins here (rows adapt early)
    large = to_sparse(structured_layer(rows=1400)).index.tobytes()
    blob = context_index.encode(large, 784)
    assert blob[0] == 2 and len(blob) < 0.9 * len(compress_index(large, "zstd")[1])
    assert blob[9 + 16:9 + 18] != bytes(2)  # rows and/or columns split into density classes
    rng = np.random.default_rng(2)  # i.i.d.: splits would save < 1% and cost a sort: none
    iid = to_sparse((rng.random((1400, 784)) < 0.08).astype(np.float32)).index.tobytes()
    blob = context_index.encode(iid, 784)
    assert blob[0] == 2 and blob[9 + 16:9 + 18] == bytes(2)


@pytest.mark.parametrize("package", ["constriction", "pcodec"])
def test_ctx_without_its_packages_names_them(monkeypatch, package):
    """A ctx stream met by a build lacking a library it needs: an error naming it, never a guess."""
    import deepsz_caffe.codecs.index as index_pkg

    raw = to_sparse(structured_layer(rows=20)).index.tobytes()
    blob = compress_index(raw, "ctx", row_length=784)[1]
    monkeypatch.setitem(sys.modules, package, None)  # makes `import <package>` fail
    for module in ("context", "grouped"):
        monkeypatch.delitem(sys.modules, f"deepsz_caffe.codecs.index.{module}", raising=False)
        monkeypatch.delattr(index_pkg, module, raising=False)
    with pytest.raises(CodecError, match=f"codec 'ctx' needs a missing package: pip install .*{package}"):
        decompress_index(blob, "ctx", len(raw))


# ---- ctx: how it relates to the paper's codecs ----

def test_best_is_still_the_papers_choice():
    """"best" never returns ctx, even where ctx is the smallest; "best-all" does."""
    assert "ctx" not in PAPER_INDEX_CODECS and set(ALL_INDEX_CODECS) == set(PAPER_INDEX_CODECS) | {"ctx"}
    raw = to_sparse(structured_layer()).index.tobytes()
    sizes = {name: len(compress_index(raw, name, row_length=784)[1]) for name in ALL_INDEX_CODECS}
    used, blob = compress_index(raw, "best", row_length=784)
    assert used in PAPER_INDEX_CODECS and len(blob) == min(sizes[c] for c in PAPER_INDEX_CODECS)
    used, blob = compress_index(raw, "best-all", row_length=784)
    assert used == "ctx" and len(blob) == min(sizes.values())


def test_ctx_beats_zstd_on_column_structured_layer():
    # Measured 6,861 B vs zstd 8,622 B (-20%) on this 300x784 8% layer; the benchmark's
    # variant of it gives -20% too. Asserting -10% leaves room for model retuning.
    raw = to_sparse(structured_layer()).index.tobytes()
    ctx = len(compress_index(raw, "ctx", row_length=784)[1])
    assert ctx < 0.9 * len(compress_index(raw, "zstd")[1])
    # The row length is what exposes the columns: without it the layer is coded as one
    # row of constant density (measured 11,845 B, worse than zstd).
    assert ctx < 0.9 * len(compress_index(raw, "ctx")[1])


def test_ctx_costs_little_on_masks_without_structure():
    # i.i.d. positions: zstd is within ~1.5% of the entropy, and ctx pays for learning 784
    # column rates and 300 row counts; measured 12,009 B vs 11,971 B (+0.3%). Bound: +3%.
    rng = np.random.default_rng(1)
    raw = to_sparse((rng.random((300, 784)) < 0.08).astype(np.float32)).index.tobytes()
    assert len(compress_index(raw, "ctx", row_length=784)[1]) < 1.03 * len(compress_index(raw, "zstd")[1])


def test_ctx_large_bitmap_must_save_two_percent(monkeypatch):
    """Above 2**18 positions the bitmap (~100x slower to decode) is written only when it is at
    least _BITMAP_GAIN of the grouped mode's size; below 2**18 the smaller mode wins as before."""
    raw = to_sparse(structured_layer(rows=400, seed=3)).index.tobytes()   # 313,600 positions
    mask = context_index._canonical_mask(np.frombuffer(raw, np.uint8))
    assert mask.size > context_index._BITMAP_SLOW
    grouped = grouped_index.encode(mask, 784)
    bitmap = context_index._bitmap_encode(mask, 784, len(raw))
    ratio = len(bitmap) / len(grouped)
    assert ratio < context_index._BITMAP_GAIN           # saves more than 2% here: kept
    assert context_index.encode(raw, 784)[0] == 1
    monkeypatch.setattr(context_index, "_BITMAP_GAIN", ratio - 1e-3)   # as if it saved less
    blob = context_index.encode(raw, 784)
    assert blob[0] == 2 and len(blob) - 9 == len(grouped)
    assert decompress_index(blob, "ctx", len(raw)) == raw
    small = to_sparse(structured_layer(rows=100, seed=3)).index.tobytes()   # below 2**18: min
    assert context_index.encode(small, 784)[0] == 1


@pytest.mark.parametrize("mode", ["bitmap", "grouped"])
def test_ctx_mask_is_bounded_by_the_layer(mode):
    """A consistent stream of n entries 255 positions apart claims 255 x n positions: refused
    when the layer has fewer (issue 23: sized from 255 x entries, a 929-byte stream decoded for
    153 s and 2.2 GB), decoded when it has as many."""
    n = 400
    mask = np.zeros(255 * n, np.uint8)
    mask[254::255] = 1
    gaps = np.full(n, 255, np.uint8)
    payload = (context_index._bitmap_encode(mask, mask.size, n) if mode == "bitmap"
               else grouped_index.encode(mask, mask.size))
    version = 1 if mode == "bitmap" else 2
    blob = struct.pack("<BII", version, zlib.crc32(payload), zlib.crc32(gaps.tobytes())) + payload
    assert decompress_index(blob, "ctx", n, positions=mask.size) == gaps.tobytes()
    with pytest.raises(CodecError, match="impossible"):
        decompress_index(blob, "ctx", n, positions=mask.size - 1)
