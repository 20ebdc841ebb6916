"""Algorithm 1 (paper section 3.3): error-bound assessment, one layer perturbed at a time.

`bound_walk` is the pure search: starting at 1e-3 it goes up by 10x while the accuracy drop
stays within the distortion criterion (0.1 point); at the first distorting decade beta it walks
the feasible range from beta/10 in steps of the current decade (eb += base, base x10 at each
decade) until the drop exceeds the expected loss (or the bound reaches MAX_BOUND). Bounds are
kept as (mantissa, exponent) pairs so that 3e-2 is exactly "3e-2", not 0.030000000000000006.

`Assessment` measures those points on a real network with Caffe: compress the layer's data array
(bound checked), rebuild the layer, run a TEST phase (suffix-only when the net allows; the same
numbers as a full pass), restore the layer. Every point goes
to a JSON cache, written atomically after each test, keyed by (prototxt, weights, data, codecs):
a killed run resumes where it stopped.
"""
import hashlib
import json
import math
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

from tqdm import tqdm

from . import atomic, sparse
from .caffe_io import sha256_file
from .codecs import compress_bounded, get_lossy
from .errors import ConfigError
from .layer_codec import index_stream
from .optimize import Candidate
from .suffix import SuffixPhase

DISTORTION_CRITERION = 0.1   # accuracy points (the paper's 0.1%)
START_EXPONENTS = (-3, -2, -1)  # the paper's [1E-3, 1E-2, 1E-1]
MAX_BOUND = 1.0              # weights are ~1e-2: beyond 1 nothing is left of a layer
ASSESSMENT_VERSION = 3       # part of the cache key: bump when the walk's choice of bounds or a coder changes


def bound(mantissa: int, exponent: int) -> float:
    return float(f"{mantissa}e{exponent}")


def bound_walk(measure: Callable[[float], float], expected_loss: float,
               distortion: float = DISTORTION_CRITERION,
               start_exponents=START_EXPONENTS) -> list[float]:
    """Bounds Algorithm 1 tests for one layer, in test order; `measure(eb)` returns the drop.

    Each bound is measured at most once (the range walk revisits the decade starts)."""
    drops: dict[float, float] = {}

    def drop(m, e):
        eb = bound(m, e)
        if eb not in drops:
            drops[eb] = measure(eb)
        return drops[eb]

    # The first distorting decade beta starts the range at beta/10. If even the last start does
    # not distort, the range starts at its tenth too: the walk then finds where the expected
    # loss is exceeded (the paper's own ranges, e.g. [1e-2, 2e-1] for LeNet-300-100's ip3, go
    # past 1e-1), instead of leaving the layer with three candidates.
    first = next((e for e in start_exponents if drop(1, e) > distortion), start_exponents[-1])
    m, e = 1, first - 1          # Check(l, beta/10, beta/10)
    while bound(m, e) <= MAX_BOUND and drop(m, e) <= expected_loss:
        m += 1
        if m == 10:
            m, e = 1, e + 1
    return list(drops)


def cache_key(model, weights, data_files, settings: dict) -> str:
    h = hashlib.sha256()
    for path in (model, weights, *data_files):
        h.update(sha256_file(path).encode())
    h.update(json.dumps(settings, sort_keys=True).encode())
    return h.hexdigest()[:20]


class Assessment:
    """Algorithm 1 on a loaded TEST net (`evaluate.TestPhase`), with a resumable cache."""

    def __init__(self, phase, layers: list[str], cache_path, *, lossy="sz2", lossless="best",
                 suffix: bool = True):
        self.phase, self.layers, self.cache_path = phase, layers, Path(cache_path)
        self.suffix = suffix
        self.codec = get_lossy(lossy)
        self.lossless = lossless
        missing = [name for name in layers if name not in phase.net.params]
        if missing:
            raise ConfigError(f"layer(s) {', '.join(missing)} not in the net; layers with weights: "
                              f"{', '.join(phase.net.params.keys())}")
        self.cache = self._load()
        if "base_top1" not in self.cache:
            self.cache["base_top1"] = phase.run()["top1"]
        for key in ("points", "index_bytes", "done"):
            self.cache.setdefault(key, {})

    @property
    def base_top1(self) -> float:
        return self.cache["base_top1"]

    def _load(self) -> dict:
        if not self.cache_path.is_file():
            return {}
        try:
            return json.loads(self.cache_path.read_text())
        except (OSError, ValueError) as e:
            tqdm.write(f"[assess] ignoring unreadable cache {self.cache_path} ({e}); starting afresh")
            return {}

    def _save(self):
        atomic.write_json(self.cache_path, self.cache)

    def run(self, expected_loss: float, progress: bool = True) -> dict[str, list[dict]]:
        """Assess every layer; return {layer: [points]} with eb, size, drop, top1, seconds."""
        bar = tqdm(total=None, desc="assess", unit="test", dynamic_ncols=True, disable=not progress)
        try:
            for layer in self.layers:
                self._assess_layer(layer, expected_loss, bar)
        finally:
            bar.close()
        return {layer: sorted(self.cache["points"][layer].values(), key=lambda p: p["eb"])
                for layer in self.layers}

    def _runner(self, layer: str):
        """A suffix-only phase for `layer` when the net allows it and it reproduces the full
        phase's accuracy exactly; otherwise the full phase (the log says why)."""
        if not self.suffix:
            return self.phase
        try:
            runner = SuffixPhase(self.phase, layer, self.cache_path.parent / "suffix")
        except ValueError as why:
            tqdm.write(f"[assess] {layer}: full TEST passes ({why})")
            return self.phase
        if runner.run()["top1"] != self.base_top1:  # same weights: must match the full pass
            tqdm.write(f"[assess] {layer}: full TEST passes (suffix net disagrees with the full net)")
            return self.phase
        return runner

    def _assess_layer(self, layer: str, expected_loss: float, bar) -> None:
        if self.cache["done"].get(layer, -1.0) >= expected_loss:
            return  # walked before at least this far: every point is cached, skip building nets
        runner = self._runner(layer)
        live = runner.net.params[layer][0].data
        original = live.copy()
        sp = sparse.to_sparse(original)
        if layer not in self.cache["index_bytes"]:
            self.cache["index_bytes"][layer] = len(index_stream(sp, self.lossless)[1])
        index_bytes = self.cache["index_bytes"][layer]
        points = self.cache["points"].setdefault(layer, {})

        def measure(eb: float) -> float:
            key = repr(eb)
            if key not in points:
                t0 = time.perf_counter()
                blob = compress_bounded(self.codec, sp.data, eb)
                values = self.codec.decompress(blob, sp.n_entries)
                live[...] = sparse.to_dense(values, sp.index, sp.shape)
                try:
                    top1 = runner.run()["top1"]
                finally:
                    live[...] = original
                points[key] = {"eb": eb, "backend": self.codec.name,
                               "size": len(blob) + index_bytes, "data_bytes": len(blob),
                               "index_bytes": index_bytes, "top1": top1,
                               "drop": self.base_top1 - top1,
                               "seconds": time.perf_counter() - t0}
                self._save()
            p = points[key]
            bar.set_postfix_str(f"{layer} eb={eb:g} top1={p['top1']:.2f}% drop={p['drop']:+.2f}")
            bar.update()
            return p["drop"]

        bound_walk(measure, expected_loss)
        done = self.cache["done"]
        done[layer] = max(expected_loss, done.get(layer, -1.0))
        self._save()


def candidates(points: dict[str, list[dict]]) -> dict[str, list[Candidate]]:
    """Assessment points (of any backends) -> optimiser candidates."""
    return {layer: [Candidate(p["eb"], int(p["size"]), float(p["drop"]), p["backend"]) for p in pts]
            for layer, pts in points.items()}


def monotone_drops(cands: dict[str, list[Candidate]]) -> dict[str, list[Candidate]]:
    """Each (layer, backend) drop curve replaced by its running maximum over increasing bounds:
    a dip below a smaller bound's drop is measurement noise the optimiser should not chase."""
    out = {}
    for layer, cs in cands.items():
        worst: dict[str, float] = {}
        out[layer] = []
        for c in sorted(cs, key=lambda c: (c.backend, c.error_bound)):
            worst[c.backend] = max(worst.get(c.backend, -math.inf), c.drop)
            out[layer].append(replace(c, drop=worst[c.backend]))
    return out
