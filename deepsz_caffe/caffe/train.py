"""Training with Caffe's own solver through pycaffe, optionally with pruning masks.

Caffe runs a tuned copy of the solver (seed, iterations, learning-rate scale, Data sources;
`prototxt.tuned_solver`) written to a work directory (default: a temporary one), never beside
the user's solver. Before Caffe sees it in this process, the LMDBs are checked and one training
step plus one TEST forward run in a child process: a Caffe abort there (a CHECK failure, e.g.
weights that do not fit) becomes one line of error instead of a crash, and so do labels outside
the classes the loss layer scores (release Caffe does not check them and corrupts memory).
"""
import json
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..log import progress
from .. import atomic
from ..errors import CaffeIOError
from ..timing import Stopwatch
from . import lmdb
from .phase import TestPhase, caffe_child, check_model
from .prototxt import PHASES, in_phase, read_prototxt, read_solver, tuned_solver

_PROBE = """import json, os, sys, caffe
caffe.set_mode_cpu()
solver, net, weights, losses = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])

def labels_fit(n, phase):  # release Caffe only DCHECKs this: a bad label corrupts memory
    for name, ignore in losses.items():
        if name in n.layer_dict:
            score, label = n.bottom_names[name][:2]
            classes, labels = n.blobs[score].data.shape[1], n.blobs[label].data.ravel()
            labels = labels[labels != ignore] if ignore is not None else labels
            if labels.size and (labels.min() < 0 or labels.max() >= classes):
                print(f"Error: {phase} labels reach {int(labels.max())} but layer '{name}' scores "
                      f"{classes} classes (labels must be 0..{classes - 1})", file=sys.stderr, flush=True)
                os._exit(1)

s = caffe.get_solver(solver)
if weights:
    s.net.copy_from(weights)
s.net.forward()
labels_fit(s.net, "TRAIN")
s.step(1)
t = caffe.Net(net, caffe.TEST)
if weights:
    t.copy_from(weights)
t.forward()
labels_fit(t, "TEST")
"""


@contextmanager
def workspace(path=None):
    """`path` (created if missing), or a temporary directory removed on exit."""
    if path is not None:
        Path(path).mkdir(parents=True, exist_ok=True)
        yield Path(path)
        return
    with tempfile.TemporaryDirectory(prefix="deepsz-train-") as tmp:
        yield Path(tmp)


def check_sources(net_path, solver_path) -> None:
    """Every Data layer reads an existing LMDB (Caffe would abort on a missing one)."""
    net = read_prototxt(net_path)
    for layer in net.layer:
        for phase, flag in (("TRAIN", "--train-lmdb"), ("TEST", "--test-lmdb")):
            if layer.type != "Data" or not in_phase(layer, PHASES[phase]):
                continue
            source = layer.data_param.source
            try:
                lmdb.count(source)
            except CaffeIOError as e:
                raise CaffeIOError(
                    f"{e}: the {phase} Data layer '{layer.name}' of {net_path} (net of {solver_path}) "
                    f"reads {source!r}; set its `source:` to your LMDB (absolute, or relative to the "
                    f"current directory as in Caffe) or pass {flag}") from None


def prepare(solver_path, work: Path, *, iterations=None, seed=None, lr_scale: float = 1.0,
            sources: dict | None = None, init_weights=None) -> tuple[Path, Path]:
    """Write the tuned solver into `work`, check its LMDBs and Accuracy layer, and probe it in a
    child process. Returns (tuned solver, net Caffe will run)."""
    tuned = tuned_solver(solver_path, Path(work) / "solver.run.prototxt", seed=seed,
                         lr_scale=lr_scale, iterations=iterations, sources=sources)
    param = read_solver(tuned)
    net = Path(param.net)
    check_sources(net, solver_path)
    check_model(net)
    if param.max_iter <= 0:
        raise CaffeIOError(f"{solver_path}: max_iter is {param.max_iter}; set it or pass --iterations")
    losses = {layer.name: layer.loss_param.ignore_label if layer.loss_param.HasField("ignore_label")
              else None for layer in read_prototxt(net).layer if layer.type == "SoftmaxWithLoss"}
    caffe_child(_PROBE, [tuned, net, init_weights or "", json.dumps(losses)],
                f"Caffe cannot train {solver_path}" + (f" from {init_weights}" if init_weights else ""))
    return tuned, net


def run_solver(solver_path, *, iterations: int | None = None, init_weights=None, masks=None,
               seed: int | None = None, lr_scale: float = 1.0, desc: str = "train", work_dir=None,
               sources: dict | None = None):
    """Run the solver (default: its own max_iter); with `masks` ({layer: 0/1 array}) pruned
    weights are re-zeroed after every step, so they stay exactly zero. Runtime files go to
    `work_dir` (default: a temporary directory). Returns (solver, stats); with a `work_dir`,
    stats["net"] is the net prototxt Caffe ran, there to measure the result with."""
    with workspace(work_dir) as work:
        tuned, net = prepare(solver_path, work, iterations=iterations, seed=seed, lr_scale=lr_scale,
                             sources=sources, init_weights=init_weights)
        solver, stats = _run(tuned, read_solver(tuned).max_iter, init_weights, masks, seed, desc)
        return solver, ({**stats, "net": str(net)} if work_dir is not None else stats)


def train(solver_path, output, *, work_dir, iterations=None, seed=None, sources=None,
          init_weights=None) -> dict:
    """Train, save the net to `output`, then measure its top-1 over one full TEST phase."""
    solver, stats = run_solver(solver_path, iterations=iterations, seed=seed, sources=sources,
                               init_weights=init_weights, work_dir=work_dir)
    save(solver, output)
    del solver  # its LMDB readers close before the TEST phase opens its own
    stats["top1"] = test_top1(stats["net"], output)
    return stats


def save(solver, output) -> Path:
    with atomic.replacing(output) as tmp:
        solver.net.save(str(tmp))
    return Path(output)


def test_top1(net, weights) -> float:
    """Top-1 (%) of weights this package just trained with `net` (already probed)."""
    return TestPhase(str(net), str(weights), probed=True).run()["top1"]


def _run(tuned: Path, max_iter: int, init_weights, masks, seed, desc):
    import caffe

    caffe.set_mode_cpu()
    if seed is not None:
        caffe.set_random_seed(seed)
    solver = caffe.get_solver(str(tuned))  # the solver's own `type:` (SGD unless it says otherwise)
    if init_weights is not None:
        solver.net.copy_from(str(init_weights))
    loss = next((b for b in solver.net.outputs if "loss" in b), solver.net.outputs[0])
    _apply(solver.net, masks)
    clock, losses, chunk = Stopwatch.started(), [], 1 if masks else min(100, max(1, max_iter // 50))
    with progress(total=max_iter, desc=desc, unit="it", dynamic_ncols=True, mininterval=1) as bar:
        while solver.iter < max_iter:
            n = min(chunk, max_iter - solver.iter)
            solver.step(n)
            _apply(solver.net, masks)
            losses.append(float(solver.net.blobs[loss].data))
            bar.update(n)
            if len(losses) % max(1, 100 // chunk) == 0 or solver.iter == max_iter:
                bar.set_postfix(loss=f"{np.mean(losses[-20:]):.4f}")
    return solver, {"iterations": int(max_iter), "seconds": clock.elapsed(),
                    "final_loss": float(np.mean(losses[-20:])) if losses else None}


def _apply(net, masks) -> None:
    """Re-zero pruned weights. `.data` is read afresh each time: a held array stops reaching the
    GPU copy after the first forward (pycaffe marks the CPU copy newest only when `.data` is read).
    A mask from a legacy V1 caffemodel has its 4-d blob shape (1, 1, out, in): same order."""
    for name, mask in (masks or {}).items():
        data = net.params[name][0].data
        data[...] *= mask.reshape(data.shape)
