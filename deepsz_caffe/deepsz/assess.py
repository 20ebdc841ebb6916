"""Algorithm 1 (paper section 3.3) measured on a real network: `walk` decides which bounds a
layer is tested at; here each is measured with Caffe: compress the layer's data array (bound
checked), rebuild the layer, run a TEST phase (suffix-only when the net allows; the same numbers
as a full pass), restore the layer. Every point goes to a JSON cache, written atomically after
each test, keyed by (prototxt, weights, data, codecs): a killed run resumes where it stopped.
"""
import hashlib
import json
import math
import time
from dataclasses import replace
from pathlib import Path

from tqdm import tqdm

from .. import atomic, sparse
from ..caffe.io import sha256_file
from ..codecs import get_lossy
from ..errors import ConfigError
from ..format.layer import index_stream, round_trip
from .optimize import Candidate
from .probe import layer_runner, run_with
from .walk import bound_walk

ASSESSMENT_VERSION = 4  # part of the cache key: bump when the walk's bounds, a coder or the rebuild change


def cache_key(model, weights, data_files, settings: dict) -> str:
    h = hashlib.sha256()
    for path in (model, weights, *data_files):
        h.update(sha256_file(path).encode())
    h.update(json.dumps(settings, sort_keys=True).encode())
    return h.hexdigest()[:20]


class Assessment:
    """Algorithm 1 on a loaded TEST net (`caffe.phase.TestPhase`), with a resumable cache."""

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

    def _assess_layer(self, layer: str, expected_loss: float, bar) -> None:
        if self.cache["done"].get(layer, -1.0) >= expected_loss:
            return  # walked before at least this far: every point is cached, skip building nets
        runner = self.phase if not self.suffix else layer_runner(
            self.phase, layer, self.cache_path.parent / "suffix", self.base_top1,
            log=lambda msg: tqdm.write(f"[assess] {msg}"))
        sp = sparse.to_sparse(runner.net.params[layer][0].data.copy())
        if layer not in self.cache["index_bytes"]:
            self.cache["index_bytes"][layer] = len(index_stream(sp, self.lossless)[1])
        index_bytes = self.cache["index_bytes"][layer]
        points = self.cache["points"].setdefault(layer, {})

        def measure(eb: float) -> float:
            key = repr(eb)
            if key not in points:
                t0 = time.perf_counter()
                blob, dense = round_trip(self.codec, sp, eb)
                top1 = run_with(runner, {layer: dense})["top1"]
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
