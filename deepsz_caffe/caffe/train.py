"""Training with Caffe's own SGD solver through pycaffe, optionally with pruning masks.

Caffe runs a tuned copy of the solver (seed, iterations, learning-rate scale; `prototxt.tuned_solver`)
written to a work or temporary directory, never beside the user's solver.
"""
import tempfile
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .prototxt import read_solver, tuned_solver


def run_solver(solver_path, *, iterations: int | None = None, init_weights=None, masks=None,
               seed: int | None = None, lr_scale: float = 1.0, desc: str = "train", work_dir=None):
    """Run Caffe SGD; with `masks` ({layer: 0/1 array}) pruned weights are re-zeroed after every
    step, so they stay exactly zero. The solver copy Caffe runs goes to `work_dir` (default: a
    temporary directory). Returns (solver, stats)."""
    with tempfile.TemporaryDirectory(prefix="deepsz-solver-") as tmp:
        tuned = tuned_solver(solver_path, Path(work_dir or tmp) / "solver.run.prototxt", seed=seed,
                             lr_scale=lr_scale, iterations=iterations)
        return _run(tuned, read_solver(tuned).max_iter, init_weights, masks, seed, desc)


def _run(tuned: Path, max_iter: int, init_weights, masks, seed, desc):
    import caffe

    caffe.set_mode_cpu()
    if seed is not None:
        caffe.set_random_seed(seed)
    solver = caffe.SGDSolver(str(tuned))
    if init_weights is not None:
        solver.net.copy_from(str(init_weights))
    loss = next((b for b in solver.net.outputs if "loss" in b), solver.net.outputs[0])
    _apply(solver.net, masks)
    t0, losses, chunk = time.perf_counter(), [], 1 if masks else 100
    with tqdm(total=max_iter, desc=desc, unit="it", dynamic_ncols=True, mininterval=1) as bar:
        while solver.iter < max_iter:
            n = min(chunk, max_iter - solver.iter)
            solver.step(n)
            _apply(solver.net, masks)
            losses.append(float(solver.net.blobs[loss].data))
            bar.update(n)
            if len(losses) % max(1, 100 // chunk) == 0:
                bar.set_postfix(loss=f"{np.mean(losses[-20:]):.4f}")
    return solver, {"iterations": int(max_iter), "seconds": time.perf_counter() - t0,
                    "final_loss": float(np.mean(losses[-20:])) if losses else None}


def _apply(net, masks) -> None:
    """Re-zero pruned weights. `.data` is read afresh each time: a held array stops reaching the
    GPU copy after the first forward (pycaffe marks the CPU copy newest only when `.data` is read)."""
    for name, mask in (masks or {}).items():
        net.params[name][0].data[...] *= mask
