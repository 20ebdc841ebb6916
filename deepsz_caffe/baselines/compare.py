"""The comparison harness behind `deepsz compare`: every method, built-in or plugged in, on the
same pruned net, the same test set and the same accounting.

For each method and each target of its sweep: encode the pruned fc layers, count len(bytes)
(the whole file its decode is given), decode, put the decoded layers into the loaded Caffe TEST
net and measure top-1 over the full test set (deepsz.probe, suffix passes equal to full ones).
A method's result is its operating point when it has one (DeepSZ: its measured run), otherwise
its smallest file whose measured loss is within `max_loss` points: the rule DeepSZ's verified
result is held to. Selecting on the test set favours the swept methods, if anything, and losses
are noisy (a coarser setting can measure better than a finer one), so the record also names the
"stable" pick: the smallest file from which every larger file of the sweep is within budget.
"""
import json
import math
import tempfile
from pathlib import Path

import numpy as np

from deepsz_caffe import atomic
from deepsz_caffe.baselines.method import Context, Method, load_method
from deepsz_caffe.errors import CodecError, ConfigError
from deepsz_caffe.timing import best

MAX_LOSS = 0.2
DEFAULT_METHODS = ("deepsz", "deepsz-best", "deepsz-max", "deep-compression", "weightless", "nncodec",
                   "nncodec-sparse")


def _checked(method: Method, layers: dict, decoded) -> dict[str, np.ndarray]:
    """The decoded layers as float32, refused unless names and shapes match the input."""
    if not isinstance(decoded, dict) or sorted(decoded) != sorted(layers):
        got = sorted(decoded) if isinstance(decoded, dict) else type(decoded).__name__
        raise CodecError(f"{method.name}: decode returned {got}, expected layers {sorted(layers)}")
    out = {}
    for name, w in layers.items():
        a = np.asarray(decoded[name])
        if a.shape != w.shape or not np.all(np.isfinite(a)):
            raise CodecError(f"{method.name}: layer {name!r} decoded as {a.shape} "
                             f"(finite: {bool(np.all(np.isfinite(a)))}), expected {w.shape}")
        out[name] = a.astype(np.float32, copy=False)
    return out


def _target(method: Method, target):
    try:
        return json.loads(json.dumps(target))
    except (TypeError, ValueError):
        raise ConfigError(f"{method.name}: target {target!r} is not a JSON value") from None


def measure(method: Method, layers: dict, target, probe) -> tuple[dict, bytes]:
    """One point of the sweep: sizes, times, errors and measured top-1; and the file's bytes."""
    target = _target(method, target)
    blob, t_encode = best(1, method.encode, layers, target)
    codec_seconds = dict(getattr(method, "codec_seconds", None) or {})
    decoded, t_decode = best(1, method.decode, blob)
    codec_seconds.update(getattr(method, "codec_seconds", None) or {})
    if not isinstance(blob, (bytes, bytearray)):
        raise CodecError(f"{method.name}: encode returned {type(blob).__name__}, not bytes")
    decoded = _checked(method, layers, decoded)
    top1 = probe.top1_with(decoded)
    dense = sum(4 * w.size for w in layers.values())
    bounds = method.error_bounds(target)
    bounded = {}
    if bounds is not None:  # in float64, as compress_bounded checks it
        for n, w in layers.items():
            err = float(np.max(np.abs(decoded[n].astype(np.float64) - w.astype(np.float64)), initial=0.0))
            bounded[n] = {"error_bound": float(bounds[n]), "max_abs_error": err,
                          "bound_held": err <= float(bounds[n])}
        bounded = {"layer_errors": bounded, "bound_held": all(b["bound_held"] for b in bounded.values())}
    return {
        "target": target, "setting": method.describe(target), "bytes": len(blob),
        "ratio": dense / max(len(blob), 1), "top1": top1, "loss": probe.base_top1 - top1,
        "encode_seconds": t_encode, "decode_seconds": t_decode, "codec_seconds": codec_seconds,
        "max_abs_error": max(float(np.max(np.abs(decoded[n] - w), initial=0.0)) for n, w in layers.items()),
        "pruned_made_nonzero": int(sum(np.count_nonzero(decoded[n][w == 0]) for n, w in layers.items())),
        "kept_made_zero": int(sum(np.count_nonzero(decoded[n][w != 0] == 0) for n, w in layers.items())),
        **bounded,
    }, bytes(blob)


def select(points: list[dict], max_loss: float) -> int | None:
    """Index of the smallest file with measured loss <= max_loss (None if no point qualifies)."""
    ok = [i for i, p in enumerate(points) if p["loss"] <= max_loss + 1e-9]
    return min(ok, key=lambda i: (points[i]["bytes"], points[i]["loss"])) if ok else None


def select_stable(points: list[dict], max_loss: float) -> int | None:
    """Index of the smallest file from which every larger file of the sweep is within max_loss
    too: a pick that one lucky test-set measurement cannot make (losses are noisy)."""
    order = sorted(range(len(points)), key=lambda i: (points[i]["bytes"], points[i]["loss"]))
    pick = None
    for i in reversed(order):
        if points[i]["loss"] > max_loss + 1e-9:
            break
        pick = i
    return pick


def _retime(method: Method, layers: dict, target, repeat: int) -> dict:
    """Best-of-`repeat` encode and decode wall seconds at one target (Figure 7's bars)."""
    blob, enc = best(repeat, method.encode, layers, target)
    codec = dict(getattr(method, "codec_seconds", None) or {})
    _, dec = best(repeat, method.decode, blob)
    codec.update(getattr(method, "codec_seconds", None) or {})
    return {"encode_seconds": enc, "decode_seconds": dec, "codec_seconds": codec, "repeat": repeat}


def run_method(method: Method, context: Context, probe, max_loss: float = MAX_LOSS,
               repeat: int = 3, log=print) -> dict:
    """A method's sweep, selection and per-layer sizes on one net (JSON-able)."""
    entry = {"label": method.label, "knob": method.knob, "class": f"{type(method).__module__}."
             f"{type(method).__qualname__}"}
    reason = method.unavailable()
    if reason is None:
        method.setup(context)
        reason = method.unavailable()
    if reason is not None:
        log(f"[compare] {context.net} {method.name}: skipped: {reason}")
        return {**entry, "skipped": reason}
    layers, points, blobs = context.layers, [], []
    for target in method.sweep():
        point, blob = measure(method, layers, target, probe)
        points.append(point)
        blobs.append(blob)
        log(f"[compare] {context.net} {method.name} {point['setting']}: {point['bytes']:,} B "
            f"({point['ratio']:.1f}x), loss {point['loss']:+.2f}")
    if not points:
        raise ConfigError(f"{method.name}: sweep() yielded no targets")
    selected = select(points, max_loss)
    op = method.operating_point()
    chosen = selected
    if op is not None:
        op = _target(method, op)
        chosen = next((i for i, p in enumerate(points) if p["target"] == op), None)
        if chosen is None:
            point, blob = measure(method, layers, op, probe)
            points.append(point)
            blobs.append(blob)
            chosen = len(points) - 1
    entry.update(version=getattr(method, "version", "") or "", source=getattr(method, "source", ""),
                 points=points, selected=selected, stable=select_stable(points, max_loss),
                 operating_point=chosen if op is not None else None, chosen=chosen)
    if chosen is not None:
        target = points[chosen]["target"]
        entry["layer_bytes"] = method.layer_bytes(layers, target, blobs[chosen])
        if hasattr(method, "stream_bytes"):  # positions / levels / side information per layer
            entry["stream_bytes"] = method.stream_bytes(layers, target, blobs[chosen])
        entry["timing"] = _retime(method, layers, target, repeat)
    return entry


def context_for(net: str, layers: dict, results) -> Context:
    return Context(net=net, layers=layers, results=Path(results) if results else None)


def compare(model, weights, methods: list[Method], *, net: str, results="results",
            max_loss: float = MAX_LOSS, repeat: int = 3, gpu=None, log=print) -> dict:
    """Run every method on the pruned fc layers of (model, weights); the comparison record."""
    from deepsz_caffe.caffe.io import sha256_file
    from deepsz_caffe.deepsz.probe import LayerProbe

    with tempfile.TemporaryDirectory(prefix="deepsz-compare-") as work:
        probe = LayerProbe(model, weights, work, gpu=gpu)
        layers = {n: np.asarray(w, np.float32) for n, w in probe.weights.items()}
        context = context_for(net, layers, results)
        entries = {m.name: run_method(m, context, probe, max_loss, repeat, log) for m in methods}
        images = probe.phase.records
    return {
        "net": net, "model": str(model), "weights": str(weights),
        "weights_sha256": sha256_file(weights), "test_images": images,
        "top1_pruned": probe.base_top1, "max_loss": max_loss,
        "layers": [{"name": n, "shape": list(w.shape), "nnz": int(np.count_nonzero(w)),
                    "dense_bytes": 4 * w.size} for n, w in layers.items()],
        "fc_weight_bytes": sum(4 * w.size for w in layers.values()),
        "methods": entries,
    }


def net_files(net: str, results="results") -> tuple[Path, Path]:
    """The TEST prototxt and pruned caffemodel of `deepsz reproduce --net NET`."""
    root = Path(results) / net
    model, weights = root / "prototxt" / "train_test.prototxt", root / "pruned.caffemodel"
    for path in (model, weights):
        if not path.is_file():
            raise ConfigError(f"{path} not found: run `deepsz reproduce --net {net} --results "
                              f"{results}` first, or give --model and --weights")
    return model, weights


def load_methods(names: list[str]) -> list[Method]:
    methods = [load_method(n) for n in names]
    seen = [m.name for m in methods]
    dupes = sorted({n for n in seen if seen.count(n) > 1})
    if dupes:
        raise ConfigError(f"method name(s) {dupes} given twice")
    return methods


def write(record: dict, path) -> Path:
    """The record as JSON (atomically), creating its directory (results/compare/) if needed."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return atomic.write_json(path, record)


def chosen_point(entry: dict) -> dict | None:
    """The point a method is compared at (see the module docstring), or None."""
    if entry.get("skipped") or entry.get("chosen") is None:
        return None
    return entry["points"][entry["chosen"]]


def nearest_ratio(entry: dict, ratio: float) -> dict | None:
    """The sweep point whose ratio is nearest `ratio` on a log scale (Table 5's comparison)."""
    points = [] if entry.get("skipped") else entry["points"]
    return min(points, key=lambda p: abs(math.log(p["ratio"] / ratio)), default=None)
