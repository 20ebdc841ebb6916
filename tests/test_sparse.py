"""Sparse form: exact round trips, the filler rule at its edges, and refusal of bad input."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deepsz_caffe.errors import CodecError
from deepsz_caffe.sparse import (KEPT_NONZERO, density, filler_entries, kept_at_max_gap, to_dense,
                                 to_sparse)

from helpers import sparse_layers


def _expected_entries(w):
    gaps = np.diff(np.flatnonzero(w), prepend=-1)
    return len(gaps) + int(np.sum((gaps - 1) // 255))


@settings(max_examples=300, deadline=None)
@given(sparse_layers())
def test_round_trip_is_exact(w):
    s = to_sparse(w)
    assert s.data.dtype == np.float32 and s.index.dtype == np.uint8
    assert s.shape == w.shape
    assert s.index.min(initial=1) >= 1
    assert s.n_entries == _expected_entries(w)
    assert s.nnz == np.count_nonzero(w)
    fillers = s.data == 0
    assert np.all(s.index[fillers] == 255)
    back = to_dense(s.data, s.index, s.shape)
    assert back.dtype == np.float32 and back.shape == w.shape
    assert np.array_equal(back, w)


@settings(max_examples=100, deadline=None)
@given(
    st.integers(1, 40),
    st.integers(1, 40),
    st.floats(0, 1),
    st.integers(0, 2**32 - 1),
)
def test_round_trip_random_matrices(rows, cols, keep, seed):
    rng = np.random.default_rng(seed)
    w = rng.normal(0, 0.02, (rows, cols)).astype(np.float32)
    w[rng.random(w.shape) >= keep] = 0
    s = to_sparse(w)
    assert np.array_equal(to_dense(s.data, s.index, s.shape), w)


@pytest.mark.parametrize(
    "pos, index",
    [
        (0, [1]),
        (254, [255]),  # gap exactly 255 fits: no filler
        (255, [255, 1]),  # gap 256
        (509, [255, 255]),  # gap 510
        (510, [255, 255, 1]),  # gap 511
        (600, [255, 255, 91]),  # gap 601 = 255 + 255 + 91
    ],
)
def test_single_nonzero_known_answer(pos, index):
    w = np.zeros(pos + 5, dtype=np.float32)
    w[pos] = 0.5
    s = to_sparse(w)
    assert s.index.tolist() == index
    assert s.data.tolist() == [0.0] * (len(index) - 1) + [0.5]
    assert s.nnz == 1
    assert s.csr_bytes == 5 * len(index)
    assert np.array_equal(to_dense(s.data, s.index, s.shape), w)


def test_gaps_between_nonzeros():
    w = np.zeros(1000, dtype=np.float32)
    w[[0, 256, 257, 767]] = [1, 2, 3, 4]  # gaps 1, 256, 1, 510
    s = to_sparse(w)
    assert s.index.tolist() == [1, 255, 1, 1, 255, 255]
    assert s.data.tolist() == [1, 0, 2, 3, 0, 4]


def test_all_zero_layer():
    w = np.zeros((3, 700), dtype=np.float32)
    s = to_sparse(w)
    assert s.n_entries == 0 and s.nnz == 0 and s.csr_bytes == 0
    assert s.dense_bytes == 4 * 3 * 700
    assert np.array_equal(to_dense(s.data, s.index, s.shape), w)


def test_dense_layer_has_unit_gaps():
    w = np.arange(1, 13, dtype=np.float32).reshape(3, 4)
    s = to_sparse(w)
    assert s.index.tolist() == [1] * 12
    assert s.data.tolist() == list(range(1, 13))
    assert s.csr_bytes == 60 and s.dense_bytes == 48


def test_row_major_order_of_4d_conv_weights():
    w = np.zeros((2, 3, 4, 5), dtype=np.float32)
    w[1, 2, 3, 4] = 7.0  # the last element in C order
    s = to_sparse(w)
    assert s.index.tolist() == [120]


def test_density():
    assert density(np.array([0, 1, 0, 2.0])) == 0.5
    assert density(np.zeros((0, 3))) == 0.0


def test_lossy_filler_is_written_where_it_stands():
    """A filler perturbed by a lossy codec lands at its own (originally zero) position."""
    s = to_sparse(np.array([0] * 300 + [1.0], dtype=np.float32))
    out = to_dense(np.array([1e-3, 1.0], dtype=np.float32), s.index, s.shape)
    assert out[254] == np.float32(1e-3) and out[300] == 1.0
    assert np.count_nonzero(out) == 2


@pytest.mark.parametrize(
    "data, index, shape, message",
    [
        ([1.0, 2.0], [1], (5,), "equal length"),
        ([1.0], [1, 1], (5,), "equal length"),
        ([[1.0]], [[1]], (5,), "1-D"),
        ([1.0, 2.0], [3, 3], (5,), "position 5"),
        ([1.0], [255], (10, 10), "position 254"),
        ([1.0], [0], (5,), "gaps"),
        ([1.0], [256], (500,), "gaps"),
        ([1.0], [-1], (5,), "gaps"),
        ([1.0], [1.5], (5,), "integers"),
        ([1.0], [1], (0,), "position 0"),
    ],
)
def test_malformed_input_raises_codec_error(data, index, shape, message):
    with pytest.raises(CodecError, match=message):
        to_dense(np.array(data, dtype=np.float32), np.array(index), shape)


@settings(max_examples=300, deadline=None)
@given(sparse_layers(), st.integers(0, 2**32 - 1))
def test_fillers_come_back_exactly_zero_after_any_perturbation(w, seed):
    """Whatever a lossy step does to the data array (within a bound, or to 0), the kept-at-255
    list gives back exactly the pruned mask."""
    s = to_sparse(w)
    kept = kept_at_max_gap(s.data, s.index)
    fillers = filler_entries(s.index, kept)
    assert np.array_equal(np.sort(fillers), np.flatnonzero(s.data == 0))
    rng = np.random.default_rng(seed)
    noisy = (s.data + rng.uniform(-1e-3, 1e-3, s.n_entries)).astype(np.float32)
    noisy[rng.random(s.n_entries) < 0.2] = 0.0  # kept weights a coder rounded to zero
    out = to_dense(noisy, s.index, s.shape, fillers=fillers)
    assert np.array_equal(out == 0, w == 0)
    assert np.all(out[(w != 0) & (out == KEPT_NONZERO)] != 0)


@pytest.mark.parametrize(
    "positions, size, kept",
    [
        ([254], 300, [0]),              # gap 255: a kept weight, no filler
        ([254, 264], 300, [0]),         # [255, 10]: weights at +255 and +265
        ([264], 300, []),               # [255, 10]: a filler, then a weight at +265
        ([509], 600, [1]),              # gap 510: a filler, then a kept weight at gap 255
        ([510], 600, []),               # gap 511: two fillers, then gap 1
        ([254, 509, 1019], 1300, [0, 1, 3]),  # 255, 255, 510 = filler + 255
        ([700], 1000, []),              # a leading run > 255, a trailing run > 255
    ],
)
def test_kept_at_max_gap_known_answers(positions, size, kept):
    w = np.zeros(size, dtype=np.float32)
    w[positions] = 0.5
    s = to_sparse(w)
    assert kept_at_max_gap(s.data, s.index).tolist() == kept
    lossy = np.where(s.data == 0, np.float32(3e-3), s.data)  # fillers perturbed, as SZ may
    assert np.array_equal(to_dense(lossy, s.index, s.shape, filler_entries(s.index, kept)), w)


@pytest.mark.parametrize("kept", [[1], [0, 0], [-1], [0.5]])
def test_bad_kept_ordinals_raise_codec_error(kept):
    index = np.array([255, 10], dtype=np.uint8)
    with pytest.raises(CodecError, match="ordinals"):
        filler_entries(index, np.array(kept))


def test_no_fillers_given_as_an_empty_list():
    s = to_sparse(np.array([0] * 300 + [1.0], dtype=np.float32))
    out = to_dense(np.array([1e-3, 0.0], dtype=np.float32), s.index, s.shape, fillers=[])
    assert out[254] == np.float32(1e-3) and out[300] == KEPT_NONZERO


@pytest.mark.parametrize("fillers", [[2], [-1], [0.5]])
def test_bad_fillers_raise_codec_error(fillers):
    with pytest.raises(CodecError, match="fillers"):
        to_dense(np.ones(2, np.float32), np.array([255, 10], np.uint8), (300,), np.array(fillers))
