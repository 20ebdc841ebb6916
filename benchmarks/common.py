"""What several benchmarks share: the command line of `deepsz` as a child, a command's wall
time and peak memory sampled from /proc, per-call timing summaries, and the synthetic inputs
(paper-shaped nets and LMDBs) the ImageNet-scale benchmarks build once and reuse."""
import os
import statistics
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np

from deepsz_caffe import atomic, timing
from deepsz_caffe.paper import synthetic
from deepsz_caffe.paper.values import PROTOTXT

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "results" / "bench"


def timed(fn, *args, **kwargs):
    """(result, seconds) of one call."""
    return timing.best(1, fn, *args, **kwargs)


def summary(seconds: list[float]) -> dict[str, float]:
    return {"best_ms": 1e3 * min(seconds), "median_ms": 1e3 * statistics.median(seconds)}


def cli(*args) -> list[str]:
    return [sys.executable, "-m", "deepsz_caffe.cli", *map(str, args)]


def measured(cmd: list[str]) -> tuple[float, dict]:
    """(wall seconds, {"peak", "anon", "file", "cpu_seconds"}): the largest VmHWM, RssAnon and
    RssFile of any process in the command's tree, sampled every 0.05 s, and the CPU time (user
    + system) of the tree from wait4 (on a shared machine, less sensitive to the load than wall
    time). VmHWM starts afresh at exec (wait4's ru_maxrss keeps the spawning parent's);
    file-backed pages include the LMDB Caffe reads through mmap: clean, reclaimable."""
    peaks, stop = {"peak": 0, "anon": 0, "file": 0}, threading.Event()

    def sample():
        while not stop.wait(0.05):
            for pid in _tree(proc.pid):
                for key, value in _resident(pid).items():
                    peaks[key] = max(peaks[key], value)

    with timing.Stopwatch() as watch:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        code = proc.returncode = os.waitstatus_to_exitcode(status)
    peaks["cpu_seconds"] = usage.ru_utime + usage.ru_stime
    stop.set()
    sampler.join()
    if code:
        sys.exit(f"failed ({code}): {' '.join(cmd)}")
    return watch.seconds, peaks


def _tree(pid: int) -> list[int]:
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    return [pid] + [p for c in children for p in _tree(int(c))]


def _resident(pid: int) -> dict:
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return {}
    kb = {ln.split(":")[0]: int(ln.split()[1]) for ln in lines
          if ln.startswith(("VmHWM", "RssAnon", "RssFile"))}
    return {"peak": kb.get("VmHWM", 0) << 10, "anon": kb.get("RssAnon", 0) << 10,
            "file": kb.get("RssFile", 0) << 10}


def synthetic_model(net: str, path: Path, seed: int = 0) -> Path:
    """The deploy net with Gaussian conv weights (variance 1/fan_in) and the paper's pruned fc
    shapes from deepsz_caffe.paper.synthetic; biases 0."""
    if path.is_file():
        return path
    import caffe

    caffe.set_mode_cpu()
    model = caffe.Net(str(PROTOTXT / net / "deploy.prototxt"), caffe.TEST)
    fc, rng = synthetic.pruned_net(net, seed), np.random.default_rng(seed)
    for name, blobs in model.params.items():
        shape = blobs[0].data.shape
        blobs[0].data[...] = fc[name] if name in fc else (
            rng.standard_normal(shape, np.float32) * np.float32(synthetic.default_std(shape)))
        for bias in blobs[1:]:
            bias.data[...] = 0
    with atomic.replacing(path) as tmp:
        model.save(str(tmp))
    return path


def lmdb_of(directory: Path, images: int) -> Path:
    from deepsz_caffe.caffe.synth_lmdb import write_synthetic_imagenet

    path = directory / f"synthetic-{images}"
    return path if path.is_dir() else write_synthetic_imagenet(path, images, seed=0)


def fc_caffemodel(name: str, layers: dict[str, np.ndarray], path: Path) -> Path:
    """A net of InnerProduct layers only (no prototxt needed): `layers`' weights, zero biases."""
    from caffe.proto import caffe_pb2

    from deepsz_caffe.caffe import wire

    net, values = caffe_pb2.NetParameter(name=name), {}
    for layer_name, w in layers.items():
        layer = net.layer.add(name=layer_name, type="InnerProduct")
        for shape in (w.shape, (w.shape[0],)):
            layer.blobs.add().shape.dim.extend(shape)
        values[layer_name] = [w.astype(np.float32), np.zeros(w.shape[0], np.float32)]
    return wire.write_caffemodel(net.SerializeToString(), values, path)
