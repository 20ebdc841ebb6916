"""Top-1 of a loaded TEST net with chosen layers' weights replaced: the measurement behind
Algorithm 1 and every accuracy-vs-bound experiment.

A layer is evaluated with a suffix-only phase (the layers from it on, fed the blobs of one kept
full pass, `caffe.suffix.PrefixStore`) when that phase reproduces the full pass exactly,
otherwise with the full phase. With `agreement`, top-1 is measured against the original net's
own predictions instead of the LMDB's labels. Weights are edited in place and restored;
pycaffe's `.data` is read afresh for every write, because reading it is what marks the CPU copy
newest: an array held across a GPU forward would be written where the GPU never looks."""
from collections.abc import Callable
from pathlib import Path

from .. import sparse
from ..caffe.wire import read_caffemodel
from ..format.skeleton import layer_types, select_layers
from ..caffe.phase import TestPhase
from ..caffe.suffix import PrefixStore, SuffixPhase
from ..codecs import get_lossy
from ..errors import ConfigError
from ..format.layer import round_trip, zeroed_sparse


def _correct(top1: float, store: PrefixStore) -> int:
    return round(top1 * store.iterations * store.batch / 100)


def reference_labels(store: PrefixStore):
    if store.reference is None:
        raise ConfigError(f"{store.model}: agreement labels need the Accuracy layer's input to be "
                          "a [batch, classes] score blob")
    return store.reference


def layer_runner(store: PrefixStore, layer: str, *, agreement: bool = False, gpu=None, full=None,
                 log: Callable[[str], None] = print):
    """(runner, base top-1) for measuring `layer`: the suffix phase from `layer`, or a full TEST
    phase (`full` if given and it has the right labels) when the net is not a chain from there or
    the suffix does not reproduce the kept pass exactly; base = top-1 of the unchanged weights."""
    reference = reference_labels(store) if agreement else None
    why = store.not_chains.get(layer)
    if why is None:
        runner = SuffixPhase(store, layer, reference)
        exact = runner.exact()  # one batch against the kept scores, when the store has them
        if exact is None:  # else a whole pass against the kept accuracy
            base = runner.run()["top1"]
            exact = (_correct(base, store) == store.manifest["agreement_count"] if agreement
                     else base == store.accuracy["top1"])
        else:  # the unchanged net's pass is the kept one: its numbers, as a run would count them
            base = (100.0 * store.manifest["agreement_count"] / (store.iterations * store.batch)
                    if agreement else store.accuracy["top1"])
        if exact:
            return _checked(runner, layer), base
        why = "suffix net disagrees with the full net"
    log(f"{layer}: full TEST passes ({why})")
    if full is None or agreement:
        full = TestPhase(store.model, store.weights, store.iterations, gpu, probed=True,
                         labels=reference)
    base = full.run()["top1"] if agreement else store.accuracy["top1"]
    return _checked(full, layer), base


def _checked(runner, layer: str):
    if layer not in runner.net.params:
        raise ConfigError(f"layer '{layer}' has no weights in the TEST net; layers with weights: "
                          f"{', '.join(runner.net.params.keys())}")
    return runner


def run_with(runner, weights: dict) -> dict[str, float]:
    """`runner.run()` with the blobs of `weights` set, then restored: {layer: array} sets the
    weight blob, {layer: [arrays]} every blob of the layer (weights, bias)."""
    params = runner.net.params
    given = {n: list(w) if isinstance(w, (list, tuple)) else [w] for n, w in weights.items()}
    originals = {n: [params[n][i].data.copy() for i in range(len(ws))] for n, ws in given.items()}
    try:
        for n, ws in given.items():
            for i, w in enumerate(ws):
                params[n][i].data[...] = w.reshape(params[n][i].data.shape)
        return runner.run()
    finally:
        for n, arrays in originals.items():
            for i, a in enumerate(arrays):
                params[n][i].data[...] = a


class LayerProbe:
    """Top-1 of (model, weights) with chosen layers replaced by their lossy round trip at given
    bounds, or by any method's reconstruction. `top1({layer: eb})` caches every result. One full
    pass (at construction) feeds every layer's suffix."""

    def __init__(self, model, weights, work_dir, layers=None, codec: str = "sz2", gpu=None,
                 agreement: bool = False):
        self.phase = TestPhase(str(model), str(weights), gpu=gpu)
        self.layers = select_layers(layer_types(read_caffemodel(weights)[1]), layers)
        self.weights = {n: self.phase.net.params[n][0].data.copy() for n in self.layers}
        self.sparse = {n: sparse.to_sparse(w) for n, w in self.weights.items()}
        self.codec = get_lossy(codec)
        self.store = PrefixStore.record(self.phase, self.layers, Path(work_dir) / "prefix")
        self.gpu, self.agreement = gpu, agreement
        self._runners, self._bases, self._cache = {}, {}, {}
        self.base_top1 = self.store.accuracy["top1"]
        if agreement:  # agreement of the unchanged net with itself, as its runner measures it
            self.runner(self.layers[0])
            self.base_top1 = self._bases[self.layers[0]]

    def runner(self, layer: str):
        if layer not in self._runners:
            self._runners[layer], self._bases[layer] = layer_runner(
                self.store, layer, agreement=self.agreement, gpu=self.gpu, full=self.phase,
                log=lambda _msg: None)
        return self._runners[layer]

    def reconstruct(self, layer: str, eb: float):
        if getattr(self.codec, "zeroes_within_bound", False):
            return round_trip(self.codec, zeroed_sparse(self.codec, self.weights[layer], eb)[0], eb)[1]
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
