"""DeepSZ end to end on any Caffe classification net: assess (Alg. 1) -> optimise (Alg. 2) ->
encode -> decode -> verify with Caffe, tightening until the user's accuracy constraint holds.

Per-layer drops measured on one test set are noisy (+-0.05-0.1 point on 10,000 images) and the
optimiser favours bounds whose drops were lucky, so the sum of drops can under-predict the real
loss. The delivered model is therefore measured. Round 1 is the paper's Algorithm 2 on the
measured drops. If its actual loss exceeds the expected loss, later rounds stop trusting lucky
dips: each layer's drop curve is replaced by its running maximum over growing bounds (a larger
bound cannot be expected to hurt less), and from the third round on the budget is also lowered
by the overshoot. Every round is logged.
"""
import math
import time
from collections.abc import Sequence
from pathlib import Path

from . import atomic, caffe_io, dsz
from .assess import ASSESSMENT_VERSION, cache_key, candidates, monotone_drops
from .errors import ConfigError
from .evaluate import TestPhase, check_model, probe, with_test_source
from .optimize import Plan, optimize_for_loss, optimize_for_ratio
from .parallel import LayerTask, run_tasks

RATIO_MODE_WALK_LOSS = 1.0   # how far Alg. 1 walks when only a ratio is given (points of top-1)
MIN_TIGHTENING = 0.01        # lower the budget by at least this much per failed round
COMPRESS_VERSION = 2         # bump when planning or verification changes what compress delivers


def check_targets(expected_loss, expected_ratio) -> None:
    if (expected_loss is None) == (expected_ratio is None):
        raise ConfigError("give exactly one of --expected-loss (points of top-1) or --expected-ratio")
    if expected_loss is not None and not (math.isfinite(expected_loss) and expected_loss >= 0):
        raise ConfigError(f"--expected-loss must be a finite number >= 0, got {expected_loss}")
    if expected_ratio is not None and not (math.isfinite(expected_ratio) and expected_ratio > 0):
        raise ConfigError(f"--expected-ratio must be > 0, got {expected_ratio}")


def _min_drop_plan(cands) -> Plan:
    choice = {layer: min(cs, key=lambda c: (c.drop, c.size)) for layer, cs in cands.items()}
    return Plan(choice, sum(c.size for c in choice.values()), sum(c.drop for c in choice.values()))


def assess(model, weights, work_dir, *, expected_loss: float, layers: list[str] | None = None,
           iterations: int | None = None, gpu: int | None = None, assess_lmdb=None,
           lossy: str | Sequence[str] = "sz2", lossless: str = "best", workers: int = 1,
           gpus: list[int] | None = None, scheduler: str | None = None, suffix: bool = True) -> dict:
    """Algorithm 1 on (model, weights), resumable; writes and returns `work_dir`/assessment.json.

    With several lossy backends every (layer, backend) pair is assessed, so Algorithm 2 can give
    each layer its best coder. One cache file per pair under `work_dir`/assess-<key>/, key = hash
    of the prototxt, weights, test data and index codec; pairs run in parallel with `workers`,
    `gpus` or `scheduler`."""
    backends = (lossy,) if isinstance(lossy, str) else tuple(lossy)
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    net = caffe_io.read_net(weights)
    layers = caffe_io.select_layers(caffe_io.layer_types(net), layers)
    t0 = time.perf_counter()
    assess_model = with_test_source(model, assess_lmdb, work / "assess.prototxt") if assess_lmdb else model
    info = check_model(assess_model)
    probe(assess_model, weights)
    if iterations is None:
        iterations = math.ceil(info["records"] / info["batch"])
    key = cache_key(assess_model, weights, [Path(info["lmdb"]) / "data.mdb"],
                    {"lossless": lossless, "iterations": iterations, "walk": ASSESSMENT_VERSION})
    cache_dir = work / f"assess-{key}"
    cache_dir.mkdir(exist_ok=True)
    tasks = [LayerTask(str(assess_model), str(weights), layer, str(cache_dir / f"{layer}.{backend}.json"),
                       expected_loss, backend, lossless, iterations, gpu, suffix)
             for layer in layers for backend in backends]
    results = run_tasks(tasks, workers=workers, gpus=gpus, scheduler=scheduler)
    points: dict[str, list[dict]] = {layer: [] for layer in layers}
    for r in results:
        points[r["layer"]] += r["points"]
    blobs = caffe_io.blobs(net)
    result = {"model": str(model), "weights": str(weights), "lmdb": info["lmdb"],
              "records": info["records"], "lossy": list(backends), "lossless": lossless,
              "base_top1": results[0]["base_top1"], "walk_loss": expected_loss,
              "fc_bytes": {layer: 4 * blobs[layer][0].size for layer in layers},
              "points": points,
              "seconds": time.perf_counter() - t0}
    atomic.write_json(work / "assessment.json", result)
    return result


def compress(model, weights, output, *, expected_loss: float | None = None,
             expected_ratio: float | None = None, layers: list[str] | None = None,
             iterations: int | None = None, gpu: int | None = None, assess_lmdb=None,
             lossy: str | Sequence[str] = "sz2", lossless: str = "best", work_dir=None, max_rounds: int = 8,
             workers: int = 1, gpus: list[int] | None = None, scheduler: str | None = None) -> dict:
    """Compress `weights` (pruned, for the train_test prototxt `model`) into the `.dsz` `output`.

    Returns (and writes to `work_dir`/compress.json) the assessment points, chosen bounds,
    sizes, ratios, accuracies, every verification round and stage wall times."""
    check_targets(expected_loss, expected_ratio)
    output = Path(output)
    if not output.parent.is_dir():
        raise ConfigError(f"cannot write {output}: directory {output.parent} does not exist")
    work = Path(work_dir) if work_dir else output.with_name(output.stem + ".work")
    test_info = check_model(model)
    walk = expected_loss if expected_loss is not None else RATIO_MODE_WALK_LOSS
    assessed = assess(model, weights, work, expected_loss=walk, layers=layers, iterations=iterations,
                      gpu=gpu, assess_lmdb=assess_lmdb, lossy=lossy, lossless=lossless,
                      workers=workers, gpus=gpus, scheduler=scheduler)
    layers, points = list(assessed["fc_bytes"]), assessed["points"]
    cands = candidates(points)
    seconds = {"assess": assessed["seconds"]}

    t0 = time.perf_counter()
    if assess_lmdb:
        top1_pruned = TestPhase(str(model), str(weights), iterations, gpu).run()["top1"]
    else:
        top1_pruned = assessed["base_top1"]
    seconds["baseline"] = time.perf_counter() - t0

    fc_bytes = sum(assessed["fc_bytes"].values())
    decoded, candidate = work / "decoded.caffemodel", work / "candidate.dsz"
    rounds, budget, drops = [], expected_loss, "measured"
    for round_no in range(1, max_rounds + 1):
        t0 = time.perf_counter()
        if expected_ratio is not None:
            plan = optimize_for_ratio(cands, int(fc_bytes / expected_ratio))
        else:
            try:
                plan = optimize_for_loss(cands, budget)
            except ConfigError:
                plan = _min_drop_plan(cands)
        bounds = {layer: c.error_bound for layer, c in plan.choice.items()}
        coders = {layer: c.backend for layer, c in plan.choice.items()}
        dsz.encode(weights, candidate, error_bounds=bounds, layers=layers, lossy=coders, lossless=lossless)
        dsz.decode(candidate, decoded)
        # No child-process probe: `decoded` is our own rebuild of `weights`' skeleton, and
        # (model, weights) were probed already (by `assess`, or just above with --assess-lmdb).
        top1 = TestPhase(str(model), str(decoded), iterations, gpu, probed=True).run()["top1"]
        report = dsz.inspect(candidate)
        actual = top1_pruned - top1
        rounds.append({"round": round_no, "budget": budget, "drops": drops, "error_bounds": bounds,
                       "lossy": coders,
                       "predicted_loss": plan.expected_loss, "actual_loss": actual, "top1": top1,
                       "ratio": report["ratio"], "seconds": time.perf_counter() - t0})
        print(f"[verify] round {round_no} ({drops} drops): bounds {bounds} predicted loss "
              f"{plan.expected_loss:+.3f} actual {actual:+.3f} top-1 {top1:.2f}% "
              f"ratio {report['ratio']:.1f}x")
        if expected_ratio is not None or actual <= expected_loss + 1e-9:
            break
        if budget <= _min_drop_plan(cands).expected_loss:
            raise ConfigError(f"even the smallest assessed bounds lose {actual:.3f} points > expected "
                              f"loss {expected_loss}: assess smaller bounds or allow a larger loss")
        if drops == "measured":
            cands, drops = monotone_drops(cands), "monotone"
        else:
            budget = min(budget, plan.expected_loss) - max(actual - expected_loss, MIN_TIGHTENING)
    else:
        raise ConfigError(f"the accuracy constraint still fails after {max_rounds} rounds "
                          f"(last actual loss {actual:.3f} > {expected_loss})")
    atomic.write_bytes(output, candidate.read_bytes())  # only a verified model reaches `output`
    seconds["generate_and_verify"] = sum(r["seconds"] for r in rounds)

    result = {
        "model": str(model), "weights": str(weights), "output": str(output), "layers": layers,
        "lossy": coders, "lossless": lossless, "test_records": test_info["records"],
        "assess_lmdb": str(assess_lmdb) if assess_lmdb else None,
        "expected_loss": expected_loss, "expected_ratio": expected_ratio,
        "top1_pruned": top1_pruned, "top1_decoded": top1, "actual_loss": actual,
        "predicted_loss": plan.expected_loss, "error_bounds": bounds,
        "ratio": report["ratio"], "ratio_with_biases": report["ratio_with_biases"],
        "fc_weight_bytes": report["fc_weight_bytes"], "fc_compressed_bytes": report["fc_compressed_bytes"],
        "layer_sizes": report["layers"], "assessment": points,
        "assessment_base_top1": assessed["base_top1"], "rounds": rounds, "seconds": seconds,
    }
    atomic.write_json(work / "compress.json", result)
    return result
