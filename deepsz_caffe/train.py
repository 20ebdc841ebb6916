"""Training with Caffe's own SGD solver through pycaffe, optionally with pruning masks.

Prototxts in `prototxt/` name their LMDBs relative to the repository; `runtime_files` writes
copies that point at the LMDBs actually built, so the shipped prototxts stay Caffe-runnable.
"""
import time
from pathlib import Path

import numpy as np
from google.protobuf import text_format
from tqdm import tqdm

from . import atomic
from .caffe_io import caffe_pb2, read_prototxt
from .errors import CaffeIOError
from .evaluate import _in_phase

PHASES = {"TRAIN": 0, "TEST": 1}


def runtime_files(solver, out_dir, sources: dict[str, str]) -> tuple[Path, Path]:
    """Copies of `solver` and its net with Data sources set per phase ({"TRAIN": lmdb, ...}).

    Returns (solver path, train_test path) inside `out_dir`."""
    solver = Path(solver)
    param = caffe_pb2().SolverParameter()
    try:
        text_format.Merge(solver.read_text(), param)
    except (OSError, text_format.ParseError) as e:
        raise CaffeIOError(f"cannot read solver {solver}: {e}") from None
    net_path = Path(param.net)
    if not net_path.is_absolute() and not net_path.is_file():
        net_path = solver.parent / net_path.name
    net = read_prototxt(net_path)
    for layer in net.layer:
        if layer.type == "Data":
            for phase, source in sources.items():
                if _in_phase(layer, PHASES[phase]):
                    layer.data_param.source = str(Path(source).resolve())
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = atomic.write_text(out_dir / "train_test.prototxt", text_format.MessageToString(net))
    param.net = str(model.resolve())
    param.snapshot = 0
    param.snapshot_prefix = str((out_dir / "snapshot").resolve())
    param.test_initialization = False
    return atomic.write_text(out_dir / "solver.prototxt", text_format.MessageToString(param)), model


def run_solver(solver_path, *, iterations: int | None = None, init_weights=None, masks=None,
               seed: int | None = None, lr_scale: float = 1.0, desc: str = "train"):
    """Run Caffe SGD; with `masks` ({layer: 0/1 array}) pruned weights are re-zeroed after every
    step, so they stay exactly zero. Returns (solver, stats)."""
    import caffe

    caffe.set_mode_cpu()
    param = caffe_pb2().SolverParameter()
    text_format.Merge(Path(solver_path).read_text(), param)
    if seed is not None:
        param.random_seed = seed
    param.base_lr *= lr_scale
    if iterations is not None:
        param.max_iter = iterations
    tuned = atomic.write_text(Path(solver_path).with_suffix(".run.prototxt"),
                              text_format.MessageToString(param))
    if seed is not None:
        caffe.set_random_seed(seed)
    solver = caffe.SGDSolver(str(tuned))
    if init_weights is not None:
        solver.net.copy_from(str(init_weights))
    loss = next((b for b in solver.net.outputs if "loss" in b), solver.net.outputs[0])
    live = {name: solver.net.params[name][0].data for name in (masks or {})}
    for name, mask in (masks or {}).items():
        live[name] *= mask
    t0, losses, chunk = time.perf_counter(), [], 1 if masks else 100
    with tqdm(total=param.max_iter, desc=desc, unit="it", dynamic_ncols=True, mininterval=1) as bar:
        while solver.iter < param.max_iter:
            n = min(chunk, param.max_iter - solver.iter)
            solver.step(n)
            for name, mask in (masks or {}).items():
                live[name] *= mask
            losses.append(float(solver.net.blobs[loss].data))
            bar.update(n)
            if len(losses) % max(1, 100 // chunk) == 0:
                bar.set_postfix(loss=f"{np.mean(losses[-20:]):.4f}")
    return solver, {"iterations": int(param.max_iter), "seconds": time.perf_counter() - t0,
                    "final_loss": float(np.mean(losses[-20:])) if losses else None}
