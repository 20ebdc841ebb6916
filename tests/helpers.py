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


OWN_SOLVER = """net: "train_test.prototxt"
base_lr: 0.01
momentum: 0.9
weight_decay: 0.0005
lr_policy: "inv"
gamma: 0.0001
power: 0.75
max_iter: {max_iter}
snapshot: 100
snapshot_prefix: "snapshots/own"
random_seed: 1
"""

OWN_NET = """name: "own"
layer {{ name: "data" type: "Data" top: "data" top: "label" include {{ phase: TRAIN }}
  transform_param {{ scale: 0.00390625 }}
  data_param {{ source: "{train}" batch_size: 32 backend: LMDB }} }}
layer {{ name: "data" type: "Data" top: "data" top: "label" include {{ phase: TEST }}
  transform_param {{ scale: 0.00390625 }}
  data_param {{ source: "{test}" batch_size: 100 backend: LMDB }} }}
layer {{ name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  convolution_param {{ num_output: 8 kernel_size: 5 weight_filler {{ type: "xavier" }} }} }}
layer {{ name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
  pooling_param {{ pool: MAX kernel_size: 2 stride: 2 }} }}
layer {{ name: "ip1" type: "InnerProduct" bottom: "pool1" top: "ip1"
  inner_product_param {{ num_output: 64 weight_filler {{ type: "xavier" }} }} }}
layer {{ name: "relu1" type: "ReLU" bottom: "ip1" top: "ip1" }}
layer {{ name: "ip2" type: "InnerProduct" bottom: "ip1" top: "ip2"
  inner_product_param {{ num_output: {classes} weight_filler {{ type: "xavier" }} }} }}
layer {{ name: "accuracy" type: "Accuracy" bottom: "ip2" bottom: "label" top: "accuracy"
  include {{ phase: TEST }} }}
layer {{ name: "loss" type: "SoftmaxWithLoss" bottom: "ip2" bottom: "label" top: "loss" }}
"""


def blob_images(n, seed, classes=10, noise=0.35):
    """A learnable problem that is not MNIST: 16x16 grey images, one template of three blurred
    blobs per class (the same for every seed), shifted by up to a pixel, under heavy noise
    (a small conv net reaches ~85-90% top-1). Returns (uint8 [n,16,16], int labels)."""
    rng, layout = np.random.default_rng(seed), np.random.default_rng(1234)
    yy, xx = np.mgrid[0:16, 0:16]
    templates = []
    for _ in range(classes):
        t = np.zeros((16, 16))
        for _ in range(3):
            cy, cx = layout.uniform(3, 13, 2)
            t += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * layout.uniform(1.2, 2.5) ** 2))
        templates.append(t / t.max())
    labels = rng.integers(0, classes, n)
    x = np.stack([np.roll(templates[k], tuple(rng.integers(-1, 2, 2)), (0, 1)) for k in labels])
    x = 255 * (0.6 * x + rng.normal(0, noise, x.shape))
    return np.clip(x, 0, 255).astype(np.uint8), labels


def own_net(root, *, max_iter=300, classes=10, train=2000, test=1000):
    """A user's own setup: LMDBs of `blob_images` in root/data, and a small conv+fc net
    (conv1 8x5x5, ip1 64x288, ip2 CLASSESx64) with its solver in root/net whose Data sources
    point at them (the tutorial's two-line change). Returns {"data", "net"} paths."""
    from pathlib import Path

    from deepsz_caffe.caffe import lmdb as lmdb_io

    root = Path(root)
    data, net = root / "data", root / "net"
    data.mkdir(parents=True)
    net.mkdir(parents=True)
    lmdb_io.write(data / "train_lmdb", *blob_images(train, 1))
    lmdb_io.write(data / "test_lmdb", *blob_images(test, 2))
    (net / "solver.prototxt").write_text(OWN_SOLVER.format(max_iter=max_iter))
    (net / "train_test.prototxt").write_text(OWN_NET.format(
        train=data / "train_lmdb", test=data / "test_lmdb", classes=classes))
    return {"data": data, "net": net}


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


def nncodec_skip():
    """A skipif mark for tests that need .venv-nncodec (built by `make nncodec`), with the
    harness's own reason (baselines.builtin.NNCodec.unavailable)."""
    import pytest

    from deepsz_caffe.baselines.builtin import NNCodec

    why = NNCodec().unavailable()
    return pytest.mark.skipif(why is not None, reason=why or "")
