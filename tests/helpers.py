"""Shared test data: pruned weights, gap arrays and hypothesis strategies for sparse layers."""
import numpy as np
from hypothesis import strategies as st

from deepsz_caffe.sparse import to_sparse

# Gaps clustered around the filler thresholds, plus long runs.
_gaps = st.one_of(
    st.integers(1, 3),
    st.integers(254, 257),
    st.integers(509, 512),
    st.integers(1, 2000),
)
_values = st.floats(width=32, allow_nan=False, allow_infinity=False).filter(lambda v: v != 0)


def pruned(n, seed=0, sigma=0.02):
    """n weights that survived magnitude pruning: the top 8% of N(0, sigma), in random order."""
    rng = np.random.default_rng(seed)
    w = rng.normal(0, sigma, max(13 * n, 1)).astype(np.float32)
    return rng.permutation(w[np.argpartition(-np.abs(w), n - 1)[:n]] if n else w[:0])


def max_error(x, y):
    return float(np.max(np.abs(x.astype(np.float64) - y.astype(np.float64)), initial=0.0))


def gap_bytes(n=200_000, keep=0.08, seed=0):
    rng = np.random.default_rng(seed)
    w = np.where(rng.random(n) < keep, rng.normal(0, 0.02, n), 0).astype(np.float32)
    return to_sparse(w).index.tobytes()


@st.composite
def sparse_layers(draw):
    """A layer built from its gaps, so long leading runs and exact thresholds are common."""
    gaps = draw(st.lists(_gaps, max_size=40))
    positions = np.cumsum(np.array(gaps, dtype=np.int64)) - 1
    trailing = draw(st.sampled_from([0, 1, 255, 256, 700]))
    size = max(int(positions[-1]) + 1 if gaps else 0, 1) + trailing
    flat = np.zeros(size, dtype=np.float32)
    flat[positions] = draw(st.lists(_values, min_size=len(gaps), max_size=len(gaps)))
    shapes = [(size,), (1, size), (size, 1), (1, 1, 1, size)]
    if size % 2 == 0:
        shapes.append((2, size // 2))
    return flat.reshape(draw(st.sampled_from(shapes)))


def gpu_available() -> str | None:
    """None when a GPU test can run here, else the reason it cannot (for pytest.skip)."""
    import shutil
    import subprocess

    if shutil.which("nvidia-smi") is None:
        return "no GPU on this machine (nvidia-smi not found)"
    code = "import caffe; caffe.set_device(0); caffe.set_mode_gpu()"
    import sys

    if subprocess.run([sys.executable, "-c", code], capture_output=True).returncode != 0:
        return "this venv's Caffe is a CPU_ONLY build (make setup GPU=1 builds the GPU one)"
    return None


def devices():
    """pytest params: the CPU always, GPU 0 where it can run (else a skip saying why)."""
    import pytest

    why = gpu_available()
    return ["cpu", pytest.param(0, marks=pytest.mark.skipif(why is not None, reason=why or ""))]


def full_forwards(monkeypatch) -> list:
    """A list that grows by one per forward pass of a net that reads the LMDB (a full TEST net,
    not a suffix net fed from a kept pass)."""
    import caffe

    calls, forward = [], caffe.Net.forward

    def counting(net, *args, **kwargs):
        if any(layer.type == "Data" for layer in net.layers):
            calls.append(1)
        return forward(net, *args, **kwargs)

    monkeypatch.setattr(caffe.Net, "forward", counting)
    return calls
