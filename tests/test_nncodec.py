"""NNCodec over the process boundary: facts about the codec that a comparison relies on (rate
and error move with qp, what happens to pruned zeros, determinism), and the bridge's errors.
Round trips need .venv-nncodec (`make nncodec`) and are skipped without it; the error paths
and the step formula are tested everywhere."""
import subprocess

import numpy as np
import pytest

from helpers import nncodec_skip

from deepsz_caffe.baselines import nncodec
from deepsz_caffe.baselines.nncodec import nncodec_round_trip, step_size
from deepsz_caffe.errors import CodecError, ConfigError

needs_venv = nncodec_skip()


@pytest.fixture(scope="module")
def pruned():
    """A 200x300 fc-like layer with 10% of its weights kept, as after DeepSZ's pruning."""
    rng = np.random.default_rng(7)
    w = rng.normal(0, 0.05, (200, 300)).astype(np.float32)
    w[rng.random(w.shape) >= 0.10] = 0
    return w


def test_step_size_matches_nncodec_table():
    assert step_size(-38) == 6 * 2.0 ** -12          # NNCodec's default qp: ~0.00146
    assert step_size(-32) == 2.0 ** -8
    assert step_size(-28) == 2 * step_size(-32)      # 4 qps per octave
    assert step_size(-29) > step_size(-30)


def test_missing_environment_is_one_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("DEEPSZ_NNCODEC_PYTHON", "/nonexistent")
    with pytest.raises(CodecError, match=r"^NNCodec environment not found: run `make nncodec`"):
        nncodec_round_trip({"ip1": np.ones((2, 2), np.float32)}, -30, tmp_path)
    assert not (tmp_path / "bitstream.nnc").exists()


@pytest.mark.parametrize("arrays, qp_per_tensor, match", [
    ({}, None, "no arrays"),
    ({"ip1_G": np.ones((2, 2))}, None, "_G/_H"),
    ({"ip1": np.array([1.0, np.nan])}, None, "finite"),
    ({"ip1": np.ones((2, 2))}, {"ip2": -30}, "names no input array"),
])
def test_bad_input_is_refused_before_the_child_runs(tmp_path, arrays, qp_per_tensor, match):
    with pytest.raises(ConfigError, match=match):
        nncodec_round_trip(arrays, -30, tmp_path, qp_per_tensor=qp_per_tensor)


@needs_venv
def test_child_rejects_bad_input_with_one_line(tmp_path):
    np.savez(tmp_path / "in.npz", ip1=np.ones((2, 2)))  # float64: not what the child takes
    done = subprocess.run([str(nncodec.nncodec_python()), "-I", str(nncodec.CHILD),
                           str(tmp_path / "in.npz"), str(tmp_path), "--qp", "-30"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == [
        "nncodec_child: array 'ip1' must be a non-empty float32 array, got float64 (2, 2)"]


def _round_trip(tmp_path, w, qp, dq):
    work = tmp_path / f"qp{qp}-dq{int(dq)}"
    work.mkdir()
    r = nncodec_round_trip({"ip1": w}, qp, work, dq=dq)
    assert r.version == "2.1.3"
    assert r.bitstream == (work / "bitstream.nnc").read_bytes()
    assert r.decoded["ip1"].shape == w.shape and r.decoded["ip1"].dtype == np.float32
    assert r.seconds["encode"] > 0 and r.seconds["wall"] >= r.seconds["encode"]
    return r, float(np.abs(r.decoded["ip1"] - w).max())


@needs_venv
@pytest.mark.parametrize("dq", [False, True])
def test_finer_qp_costs_bytes_and_buys_accuracy(tmp_path, pruned, dq):
    coarse, err_coarse = _round_trip(tmp_path, pruned, -22, dq)
    fine, err_fine = _round_trip(tmp_path, pruned, -34, dq)
    assert len(fine.bitstream) > len(coarse.bitstream)
    assert err_fine < err_coarse
    # Under 2 bytes per kept weight (value and position) at the finer step, against 4 for the
    # value alone in float32: DeepCABAC codes the 90% zeros of the dense layer cheaply.
    assert len(fine.bitstream) < 2 * np.count_nonzero(pruned)


@needs_venv
def test_plain_uniform_quantisation_bounds_error_and_keeps_zeros(tmp_path, pruned):
    for qp in (-34, -22):
        r, err = _round_trip(tmp_path, pruned, qp, dq=False)
        assert err <= step_size(qp) / 2 * (1 + 1e-6)
        assert np.all(r.decoded["ip1"][pruned == 0] == 0)


@needs_venv
def test_dependent_quantisation_moves_a_few_zeros_by_at_most_one_step(tmp_path, pruned):
    """Measured, not assumed: with DQ (NNCodec's default) the trellis sets a few pruned weights
    to +-1 step and the error exceeds half a step, so sparsity is not preserved exactly."""
    qp = -30
    r, err = _round_trip(tmp_path, pruned, qp, dq=True)
    moved = r.decoded["ip1"][pruned == 0]
    assert 0 < np.count_nonzero(moved) < 0.01 * moved.size
    assert np.abs(moved).max() <= step_size(qp) * (1 + 1e-6)
    assert step_size(qp) / 2 < err <= 2 * step_size(qp)


@needs_venv
def test_same_input_same_bytes_and_1d_arrays_use_the_given_qp(tmp_path, pruned):
    data = pruned[pruned != 0]  # the sparse data array DeepSZ codes, 1-D
    dirs = [tmp_path / d for d in "abc"]
    for d in dirs:
        d.mkdir()
    both = {"ip1": pruned, "data": data}
    ra = nncodec_round_trip(both, -30, dirs[0], dq=False)
    assert ra.bitstream == nncodec_round_trip(both, -30, dirs[1], dq=False).bitstream
    # NNCodec alone would code a 1-D array as a non-weight at qp -75 (error ~1e-6).
    err = np.abs(ra.decoded["data"] - data).max()
    assert step_size(-30) / 4 < err <= step_size(-30) / 2 * (1 + 1e-6)
    rb = nncodec_round_trip(both, -30, dirs[2], dq=False, qp_per_tensor={"data": -22})
    assert np.abs(rb.decoded["data"] - data).max() > step_size(-30) / 2
    assert np.array_equal(rb.decoded["ip1"], ra.decoded["ip1"])
    assert len(rb.bitstream) < len(ra.bitstream)
