"""Top-1 of a loaded TEST net with chosen layers' weights replaced: the measurement behind
Algorithm 1 and every accuracy-vs-bound experiment.

A layer is evaluated with a suffix-only phase (the layers from it on, fed stored inputs) when
that phase reproduces the full pass's accuracy exactly, otherwise with the full phase. Weights
are edited in place and restored; pycaffe's `.data` is read afresh for every write, because
reading it is what marks the CPU copy newest: an array held across a GPU forward would be
written where the GPU never looks."""
from collections.abc import Callable
from pathlib import Path

from .. import sparse
from ..caffe.io import layer_types, read_net, select_layers
from ..caffe.phase import TestPhase
from ..caffe.suffix import SuffixPhase
from ..codecs import get_lossy
from ..format.layer import round_trip


def layer_runner(phase, layer: str, work_dir, base_top1: float, log: Callable[[str], None] = print):
    """The suffix phase from `layer`, or `phase` itself when the net is not a chain from there or
    the suffix does not reproduce `base_top1` (the same weights must give the same accuracy)."""
    try:
        runner = SuffixPhase(phase, layer, work_dir)
    except ValueError as why:
        log(f"{layer}: full TEST passes ({why})")
        return phase
    if runner.run()["top1"] != base_top1:
        log(f"{layer}: full TEST passes (suffix net disagrees with the full net)")
        return phase
    return runner


def run_with(runner, weights: dict) -> dict[str, float]:
    """`runner.run()` with the weight blobs of `weights` ({layer: array}) set, then restored."""
    params = runner.net.params
    originals = {n: params[n][0].data.copy() for n in weights}
    try:
        for n, w in weights.items():
            params[n][0].data[...] = w
        return runner.run()
    finally:
        for n, a in originals.items():
            params[n][0].data[...] = a


class LayerProbe:
    """Top-1 of (model, weights) with chosen layers replaced by their lossy round trip at given
    bounds, or by any method's reconstruction. `top1({layer: eb})` caches every result."""

    def __init__(self, model, weights, work_dir, layers=None, codec: str = "sz2", gpu=None):
        self.phase = TestPhase(str(model), str(weights), gpu=gpu)
        self.base_top1 = self.phase.run()["top1"]
        self.layers = select_layers(layer_types(read_net(weights)), layers)
        self.weights = {n: self.phase.net.params[n][0].data.copy() for n in self.layers}
        self.sparse = {n: sparse.to_sparse(w) for n, w in self.weights.items()}
        self.codec = get_lossy(codec)
        self.work_dir = Path(work_dir)
        self._runners, self._cache = {}, {}

    def runner(self, layer: str):
        if layer not in self._runners:
            self._runners[layer] = layer_runner(self.phase, layer, self.work_dir, self.base_top1,
                                                log=lambda _msg: None)
        return self._runners[layer]

    def reconstruct(self, layer: str, eb: float):
        return round_trip(self.codec, self.sparse[layer], eb)[1]

    def top1_with(self, weights: dict) -> float:
        """Top-1 over the whole test set with the given layers' weight blobs replaced; the suffix
        from the earliest replaced layer holds every later one."""
        return run_with(self.runner(min(weights, key=self.layers.index)), weights)["top1"]

    def top1(self, bounds: dict[str, float]) -> float:
        """top1_with the lossy round trip of each layer at its bound, cached."""
        key = tuple(sorted(bounds.items()))
        if key not in self._cache:
            self._cache[key] = self.top1_with({n: self.reconstruct(n, eb) for n, eb in bounds.items()})
        return self._cache[key]
