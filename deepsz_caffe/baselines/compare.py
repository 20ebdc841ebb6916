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
from deepsz_caffe.baselines.method import Context, Method, call, load_method
from deepsz_caffe.errors import CodecError, ConfigError
from deepsz_caffe.log import get as get_logger
from deepsz_caffe.timing import best

_logger = get_logger("compare")
MAX_LOSS = 0.2
MAX_REPEAT = 1000   # timing runs per chosen point: more measures nothing the best of 1000 does not
DEFAULT_METHODS = ("deepsz", "deepsz-best", "deepsz-max", "deep-compression", "weightless", "nncodec",
                   "nncodec-sparse")


def check_budget(max_loss, repeat) -> None:
    """The loss budget (finite, >= 0 points) and timing repeats (1..MAX_REPEAT)."""
    from deepsz_caffe.deepsz.settings import integer, number

    number("--max-loss", max_loss)
    integer("--repeat", repeat, 1, MAX_REPEAT)


def _frozen(layers: dict) -> dict[str, np.ndarray]:
    """Read-only copies of the reference arrays, what every call into a method is given: an
    in-place edit fails, and one that forces its way (through `.base`) changes only the copy."""
    out = {}
    for n, w in layers.items():
        copy = np.array(w, copy=True)
        copy.setflags(write=False)
        out[n] = copy.view()  # a view of a read-only array cannot be made writable
    return out


def _checked(method: Method, layers: dict, decoded) -> dict[str, np.ndarray]:
    """The decoded layers as float32, refused unless names, dtype (real numbers), shapes match the
    input and every value is finite once cast to the float32 a Caffe blob holds."""
    if not isinstance(decoded, dict) or set(decoded) != set(layers):
        got = sorted(map(str, decoded)) if isinstance(decoded, dict) else type(decoded).__name__
        raise CodecError(f"{method.name}: decode returned {got}, expected layers {sorted(layers)}")
    out = {}
    for name, w in layers.items():
        a = call(method, f"decode's layer {name!r}", np.asarray, decoded[name])
        if a.dtype.kind not in "biuf":
            raise CodecError(f"{method.name}: layer {name!r} decoded as {a.dtype} values, not real numbers")
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported just below
            a = a.astype(np.float32, copy=False)
        if a.shape != w.shape or not np.all(np.isfinite(a)):
            raise CodecError(f"{method.name}: layer {name!r} decoded as {a.shape} "
                             f"(finite: {bool(np.all(np.isfinite(a)))} as float32), expected {w.shape}")
        out[name] = a
    return out


def _target(method: Method, target):
    try:
        return json.loads(json.dumps(target))
    except (TypeError, ValueError, RecursionError):
        raise ConfigError(f"{method.name}: target {target!r:.100} is not a JSON value") from None


def _encode(method: Method, layers: dict, target, repeat: int = 1) -> tuple[bytes, float]:
    blob, seconds = call(method, f"encode(layers, {target!r:.60})", best, repeat, method.encode,
                         _frozen(layers), target)
    if not isinstance(blob, (bytes, bytearray)):
        raise CodecError(f"{method.name}: encode returned {type(blob).__name__}, not bytes")
    return bytes(blob), seconds


def _codec_seconds(method: Method) -> dict:
    seconds = call(method, "codec_seconds", getattr, method, "codec_seconds", None) or {}
    if not isinstance(seconds, dict):
        raise CodecError(f"{method.name}: codec_seconds is {type(seconds).__name__}, not a dict")
    return dict(seconds)


def describe(method: Method, target) -> str:
    text = call(method, f"describe({target!r:.60})", method.describe, target)
    if not isinstance(text, str):
        raise CodecError(f"{method.name}: describe returned {type(text).__name__}, not a string")
    return text


def measure(method: Method, layers: dict, target, probe) -> tuple[dict, bytes]:
    """One point of the sweep: sizes, times, errors and measured top-1; and the file's bytes."""
    target = _target(method, target)
    blob, t_encode = _encode(method, layers, target)
    codec_seconds = _codec_seconds(method)
    decoded, t_decode = call(method, f"decode({len(blob)} bytes)", best, 1, method.decode, blob)
    codec_seconds.update(_codec_seconds(method))
    decoded = _checked(method, layers, decoded)
    top1 = probe.top1_with(decoded)
    dense = sum(4 * w.size for w in layers.values())
    bounds = call(method, "error_bounds(target)", method.error_bounds, target)
    bounded = {}
    if bounds is not None:  # in float64, as compress_bounded checks it
        _check_bounds(method, layers, bounds)
        for n, w in layers.items():
            err = float(np.max(np.abs(decoded[n].astype(np.float64) - w.astype(np.float64)), initial=0.0))
            bounded[n] = {"error_bound": float(bounds[n]), "max_abs_error": err,
                          "bound_held": err <= float(bounds[n])}
        bounded = {"layer_errors": bounded, "bound_held": all(b["bound_held"] for b in bounded.values())}
    return {
        "target": target, "setting": describe(method, target), "bytes": len(blob),
        "ratio": dense / max(len(blob), 1), "top1": top1, "loss": probe.base_top1 - top1,
        "encode_seconds": t_encode, "decode_seconds": t_decode, "codec_seconds": codec_seconds,
        "max_abs_error": max(float(np.max(np.abs(decoded[n] - w), initial=0.0)) for n, w in layers.items()),
        "pruned_made_nonzero": int(sum(np.count_nonzero(decoded[n][w == 0]) for n, w in layers.items())),
        "kept_made_zero": int(sum(np.count_nonzero(decoded[n][w != 0] == 0) for n, w in layers.items())),
        **bounded,
    }, bytes(blob)


def _check_bounds(method: Method, layers: dict, bounds) -> None:
    """error_bounds must name every layer with a bound that passes the one bound rule."""
    from deepsz_caffe.codecs import check_error_bound

    try:
        if not (isinstance(bounds, dict) and set(bounds) == set(layers)):
            raise ConfigError("not one bound per layer")
        for b in bounds.values():
            check_error_bound(b)
    except ConfigError:
        raise CodecError(f"{method.name}: error_bounds returned {str(bounds)[:80]!r}, "
                         "not {layer name: finite bound > 0} for every layer") from None


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
    blob, enc = _encode(method, layers, target, repeat)
    codec = _codec_seconds(method)
    _, dec = call(method, f"decode({len(blob)} bytes)", best, repeat, method.decode, blob)
    codec.update(_codec_seconds(method))
    return {"encode_seconds": enc, "decode_seconds": dec, "codec_seconds": codec, "repeat": repeat}


def _unavailable(method: Method):
    reason = call(method, "unavailable()", method.unavailable)
    if reason is not None and not isinstance(reason, str):
        raise CodecError(f"{method.name}: unavailable returned {type(reason).__name__}, not a string or None")
    return reason


def _layer_bytes(method: Method, layers: dict, target, blob: bytes) -> dict[str, int]:
    sizes = call(method, f"layer_bytes(layers, {target!r:.60}, blob)", method.layer_bytes,
                 _frozen(layers), target, blob)
    if not (isinstance(sizes, dict) and all(isinstance(k, str) and isinstance(v, int) and v >= 0
                                            for k, v in sizes.items())):
        raise CodecError(f"{method.name}: layer_bytes returned {type(sizes).__name__}, "
                         "not {layer name: bytes}")
    return sizes


def run_method(method: Method, context: Context, probe, max_loss: float = MAX_LOSS,
               repeat: int = 3, log=None) -> dict:
    """A method's sweep, selection and per-layer sizes on one net (JSON-able). Every call into
    the method is guarded (`call`) and given read-only views of the reference arrays."""
    log = log or _logger.info
    entry = {"label": str(method.label), "knob": str(method.knob), "class": f"{type(method).__module__}."
             f"{type(method).__qualname__}"}
    layers = context.layers
    reason = _unavailable(method)
    if reason is None:
        call(method, "setup(context)", method.setup,
             Context(context.net, _frozen(layers), context.results, dict(context.extra)))
        reason = _unavailable(method)
    if reason is not None:
        log(f"[compare] {context.net} {method.name}: skipped: {reason}")
        return {**entry, "skipped": reason}
    points, blobs = [], []
    targets = call(method, "sweep()", lambda: list(method.sweep()))
    for target in targets:
        point, blob = measure(method, layers, target, probe)
        points.append(point)
        blobs.append(blob)
        log(f"[compare] {context.net} {method.name} {point['setting']}: {point['bytes']:,} B "
            f"({point['ratio']:.1f}x), loss {point['loss']:+.2f}")
    if not points:
        raise ConfigError(f"{method.name}: sweep() yielded no targets")
    selected = select(points, max_loss)
    op = call(method, "operating_point()", method.operating_point)
    chosen = selected
    if op is not None:
        op = _target(method, op)
        chosen = next((i for i, p in enumerate(points) if p["target"] == op), None)
        if chosen is None:
            point, blob = measure(method, layers, op, probe)
            points.append(point)
            blobs.append(blob)
            chosen = len(points) - 1
    entry.update(version=str(getattr(method, "version", "") or ""), source=str(getattr(method, "source", "")),
                 points=points, selected=selected, stable=select_stable(points, max_loss),
                 operating_point=chosen if op is not None else None, chosen=chosen)
    if chosen is not None:
        target = points[chosen]["target"]
        entry["layer_bytes"] = _layer_bytes(method, layers, target, blobs[chosen])
        if hasattr(method, "stream_bytes"):  # positions / levels / side information per layer
            entry["stream_bytes"] = call(method, "stream_bytes(layers, target, blob)", method.stream_bytes,
                                         _frozen(layers), target, blobs[chosen])
        entry["timing"] = _retime(method, layers, target, repeat)
    return entry


def context_for(net: str, layers: dict, results) -> Context:
    return Context(net=net, layers=layers, results=Path(results) if results else None)


def compare(model, weights, methods: list[Method], *, net: str, results="results",
            max_loss: float = MAX_LOSS, repeat: int = 3, gpu=None, log=None) -> dict:
    """Run every method on the pruned fc layers of (model, weights); the comparison record."""
    from deepsz_caffe.digest import sha256_file
    from deepsz_caffe.deepsz.probe import LayerProbe

    check_budget(max_loss, repeat)
    with tempfile.TemporaryDirectory(prefix="deepsz-compare-") as work:
        probe = LayerProbe(model, weights, work, gpu=gpu)
        layers = {n: np.array(w, np.float32) for n, w in probe.weights.items()}  # copies, then
        for w in layers.values():                                               # read-only
            w.setflags(write=False)
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
