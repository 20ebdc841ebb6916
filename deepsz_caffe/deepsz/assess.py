"""Algorithm 1 (paper section 3.3) measured on a real network: `walk` decides which bounds a
layer is tested at; here each is measured with Caffe: compress the layer's data array (bound
checked), rebuild the layer, run a TEST phase (suffix-only when the net allows; the same numbers
as a full pass), restore the layer. Every point goes to a JSON cache, written atomically after
each test, keyed by (prototxt, weights, data, codecs, labels): a killed run resumes where it
stopped, and a rerun builds no Caffe net for a layer whose walk is cached.
"""
import json
import math
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from .. import atomic, sparse
from ..digest import fingerprint
from ..log import get as get_logger
from ..log import progress as progress_bar
from ..codecs import get_lossy
from ..format.layer import index_stream, round_trip, zeroed_sparse
from ..timing import Stopwatch
from .optimize import Candidate
from .probe import run_with
from .walk import bound_walk

ASSESSMENT_VERSION = 5  # part of the cache key: bump when the walk's bounds, a coder or the rebuild change


def cache_key(model, weights, data_files, settings: dict) -> str:
    """The assessment cache's key: the files' contents and the settings."""
    return fingerprint(*(Path(p) for p in (model, weights, *data_files)), settings)


_logger = get_logger("assess")


def log(message: str) -> None:
    _logger.info(f"[assess] {message}")


class Assessment:
    """Algorithm 1 for some layers, with a resumable cache. `runner_for(layer)` -> (TEST phase,
    top-1 of the unchanged net on it) is called only for a layer that still has bounds to test;
    `metric` names what top-1 measures in messages ("top-1" or "agreement")."""

    def __init__(self, layers: list[str], cache_path, runner_for: Callable, *, lossy="sz2",
                 lossless="best", metric: str = "top-1"):
        self.layers, self.cache_path, self.runner_for = layers, Path(cache_path), runner_for
        self.codec, self.lossless, self.metric = get_lossy(lossy), lossless, metric
        self.cache = self._load()
        for key in ("points", "index_bytes", "done"):
            self.cache.setdefault(key, {})

    @property
    def base_top1(self) -> float | None:
        return self.cache.get("base_top1")

    @staticmethod
    def finished(cache_path, layer: str, expected_loss: float) -> bool:
        """Whether `cache_path` holds a walk of `layer` at least `expected_loss` far."""
        try:
            cache = json.loads(Path(cache_path).read_text())
            return "base_top1" in cache and cache["done"].get(layer, -1.0) >= expected_loss
        except (OSError, ValueError, KeyError, AttributeError):
            return False

    def _load(self) -> dict:
        if not self.cache_path.is_file():
            return {}
        try:
            return json.loads(self.cache_path.read_text())
        except (OSError, ValueError) as e:
            log(f"ignoring unreadable cache {self.cache_path} ({e}); starting afresh")
            return {}

    def _save(self):
        atomic.write_json(self.cache_path, self.cache)

    def run(self, expected_loss: float, progress: bool = True) -> dict[str, list[dict]]:
        """Assess every layer; return {layer: [points]} with eb, size, drop, top1, seconds."""
        for layer in self.layers:
            self._assess_layer(layer, expected_loss, progress)
        return {layer: sorted(self.cache["points"][layer].values(), key=lambda p: p["eb"])
                for layer in self.layers}

    def _assess_layer(self, layer: str, expected_loss: float, progress: bool) -> None:
        points = self.cache["points"].setdefault(layer, {})
        name = f"{layer} ({self.codec.name})"
        if self.base_top1 is not None and self.cache["done"].get(layer, -1.0) >= expected_loss:
            log(f"{name}: reused {len(points)} cached points")  # walked before at least this far
            return
        clock, reused = Stopwatch.started(), len(points)
        runner, base = self.runner_for(layer)
        self.cache.setdefault("base_top1", base)
        # Whether the suffix phase reproduced the kept pass (verification may then reuse it).
        self.cache.setdefault("suffix", {})[layer] = type(runner).__name__ == "SuffixPhase"
        weights = runner.net.params[layer][0].data.copy()
        sp = sparse.to_sparse(weights)
        if layer not in self.cache["index_bytes"]:
            self.cache["index_bytes"][layer] = len(index_stream(sp, self.lossless)[1])
        plain_index_bytes = self.cache["index_bytes"][layer]
        zeroing = getattr(self.codec, "zeroes_within_bound", False)
        bar = progress_bar(desc=f"assess {name}", unit="test", dynamic_ncols=True, disable=not progress)

        def measure(eb: float) -> float:
            key = repr(eb)
            if key not in points:
                watch = Stopwatch.started()
                coded, zeroed, index_bytes = sp, 0, plain_index_bytes
                if zeroing:  # the sparse form without the weights within eb of 0: its own index
                    coded, zeroed = zeroed_sparse(self.codec, weights, eb)
                    index_bytes = len(index_stream(coded, self.lossless)[1])
                blob, dense = round_trip(self.codec, coded, eb)
                top1 = run_with(runner, {layer: dense})["top1"]
                points[key] = {"eb": eb, "backend": self.codec.name,
                               "size": len(blob) + index_bytes, "data_bytes": len(blob),
                               "index_bytes": index_bytes, "top1": top1,
                               "drop": self.base_top1 - top1,
                               "seconds": watch.elapsed(),
                               **({"zeroed": zeroed} if zeroing else {})}
                self._save()
                bar.update()
                _logger.debug(f"[assess] {name} eb={eb:g}: {self.metric} {top1:.2f}%, "
                              f"{points[key]['size']:,} B, {points[key]['seconds']:.2f} s")
            p = points[key]
            bar.set_postfix_str(f"eb={eb:g} {self.metric} {p['top1']:.2f}% drop {p['drop']:+.2f}")
            return p["drop"]

        try:
            bound_walk(measure, expected_loss)
        finally:
            bar.close()
        done = self.cache["done"]
        done[layer] = max(expected_loss, done.get(layer, -1.0))
        self._save()
        log(f"{name}: {len(points) - reused} tests in {clock.elapsed():.1f} s"
            + (f", {reused} cached points reused" if reused else ""))


def candidates(points: dict[str, list[dict]]) -> dict[str, list[Candidate]]:
    """Assessment points (of any backends) -> optimiser candidates."""
    return {layer: [Candidate(p["eb"], int(p["size"]), float(p["drop"]), p["backend"]) for p in pts]
            for layer, pts in points.items()}


def monotone_drops(cands: dict[str, list[Candidate]], floor: float = -math.inf) -> dict[str, list[Candidate]]:
    """Each (layer, backend) drop curve replaced by its running maximum over increasing bounds,
    starting from `floor`: a dip below a smaller bound's drop (or below 0, with floor=0) is
    measurement noise the optimiser should not chase."""
    out = {}
    for layer, cs in cands.items():
        worst: dict[str, float] = {}
        out[layer] = []
        for c in sorted(cs, key=lambda c: (c.backend, c.error_bound)):
            worst[c.backend] = max(worst.get(c.backend, floor), c.drop)
            out[layer].append(replace(c, drop=worst[c.backend]))
    return out
