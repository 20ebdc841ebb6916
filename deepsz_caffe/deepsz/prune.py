"""Step 1 (paper section 3.2): magnitude pruning plus masked retraining (Han et al. 2015).

`prune` is the whole step: read the trained weights, `magnitude_masks` (pure: per layer, keep
exactly round(kept * size) weights of largest |w|), `retrain` (Caffe's solver with the masks
re-applied after every step), write the pruned net.
"""
import numpy as np

from ..errors import ConfigError


def magnitude_masks(weights: dict[str, np.ndarray], kept: dict[str, float]) -> dict[str, np.ndarray]:
    """{layer: float32 0/1 mask keeping the round(kept*size) largest-magnitude weights}."""
    masks = {}
    for name, fraction in kept.items():
        if name not in weights:
            raise ConfigError(f"cannot prune '{name}': not a layer with weights "
                              f"({', '.join(weights)})")
        if not 0 < fraction <= 1:
            raise ConfigError(f"kept fraction for '{name}' must be in (0, 1], got {fraction}")
        w = np.asarray(weights[name])
        k = int(round(fraction * w.size))
        flat = np.zeros(w.size, dtype=np.float32)
        if k:
            flat[np.argpartition(np.abs(w).ravel(), w.size - k)[w.size - k:]] = 1
        masks[name] = flat.reshape(w.shape)
    return masks


def retrain(solver_path, weights, masks: dict[str, np.ndarray], out_weights, *,
            iterations: int | None = None, lr_scale: float = 1.0, seed: int | None = None,
            work_dir=None, sources: dict | None = None):
    """Masked retraining from `weights` (default: the solver's max_iter iterations); saves the
    pruned net to `out_weights`. Runtime files go to `work_dir` (default: a temporary directory);
    `sources` overrides the Data layers' LMDBs. Returns stats (see caffe.train.run_solver)."""
    from ..caffe.train import run_solver, save

    solver, stats = run_solver(solver_path, iterations=iterations, init_weights=weights,
                               masks=masks, seed=seed, lr_scale=lr_scale, desc="retrain",
                               work_dir=work_dir, sources=sources)
    for name, mask in masks.items():
        w = solver.net.params[name][0].data
        assert not np.any(w[mask.reshape(w.shape) == 0]), f"pruned weights of {name} moved"  # invariant
        stats.setdefault("kept", {})[name] = float(np.count_nonzero(w)) / w.size
    save(solver, out_weights)
    return stats


def prune(solver_path, weights, kept: dict[str, float], output, **retrain_options):
    """Prune the trained `weights` to the `kept` fraction per layer and retrain with the masks;
    write the pruned net to `output`. `retrain_options` as `retrain`'s (iterations, lr_scale,
    seed, work_dir, sources). Returns (masks, retrain's stats)."""
    from ..caffe.wire import read_caffemodel

    blobs = read_caffemodel(weights)[0]
    masks = magnitude_masks({name: arrays[0] for name, arrays in blobs.items()}, kept)
    del blobs  # the file's buffer goes before Caffe loads the net
    return masks, retrain(solver_path, weights, masks, output, **retrain_options)
