"""DeepSZ end to end on any Caffe classification net: assess (Alg. 1) -> optimise (Alg. 2) ->
encode -> decode -> verify with Caffe, tightening until the user's accuracy constraint holds.

Per-layer drops measured on one test set are noisy (+-0.05-0.1 point on 10,000 images) and the
optimiser favours bounds whose drops were lucky, so the sum of drops can under-predict the real
loss. The delivered model is therefore measured, and Algorithm 2 plans on de-noised drops: with
plan="envelope" (the default) each layer's drop curve is replaced from round 1 on by its running
maximum over growing bounds, starting at 0 (a larger bound cannot be expected to hurt less, and no
bound to improve accuracy); every failed round then lowers the budget by the overshoot.
plan="literal" is the paper's Algorithm 2 on the measured drops in round 1; if that fails, round 2
uses the running maximum (not floored at 0) and later rounds lower the budget. Every round is logged.
"""
import math
import os
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from .. import atomic
from ..caffe import lmdb, wire
from ..caffe.phase import TestPhase, check_model, fitting_batch, memory_probe
from ..caffe.prototxt import with_test_source
from ..errors import ConfigError
from ..format import network as dsz
from ..format.skeleton import layer_types, select_layers
from ..log import get as get_logger
from ..caffe.suffix import PrefixStore
from ..timing import Stopwatch
from .assess import ASSESSMENT_VERSION, Assessment, cache_key, candidates, log, monotone_drops
from .optimize import PLANS, min_drop_plan
from .optimize import plan as make_plan
from .parallel import LayerTask, run_tasks
from .probe import reference_labels
from .settings import Settings
from .verify import drop_features, verifier
from .workdir import locked

_logger = get_logger("compress")

RATIO_MODE_WALK_LOSS = 1.0   # how far Alg. 1 walks when only a ratio is given (points of top-1)
MIN_TIGHTENING = 0.01        # lower the budget by at least this much per failed round
COMPRESS_VERSION = 3         # bump when planning or verification changes what compress delivers


def check_targets(expected_loss, expected_ratio) -> None:
    if (expected_loss is None) == (expected_ratio is None):
        raise ConfigError("give exactly one of --expected-loss (points of top-1) or --expected-ratio")
    if expected_loss is not None and not (math.isfinite(expected_loss) and expected_loss >= 0):
        raise ConfigError(f"--expected-loss must be a finite number >= 0, got {expected_loss}")
    if expected_ratio is not None and not (math.isfinite(expected_ratio) and expected_ratio > 0):
        raise ConfigError(f"--expected-ratio must be > 0, got {expected_ratio}")


def assess(model, weights, work_dir, *, expected_loss: float, settings: Settings | None = None,
           keep_features: bool = False, **overrides) -> dict:
    """Algorithm 1 on (model, weights), resumable; writes and returns `work_dir`/assessment.json.

    With several lossy backends every (layer, backend) pair is assessed, so Algorithm 2 can give
    each layer its best coder. One cache file per pair under `work_dir`/assess-<key>/, key = hash
    of the prototxt, weights, test data, index codec and labels; pairs run in parallel with the
    settings' `workers`, `gpus` or `scheduler`, all fed by one kept full pass (`_prefix_pass`).
    With `keep_features` the kept pass's features stay on disk for the caller (`compress`
    verifies from them, then drops them). Keyword `overrides` set single fields of `settings`."""
    check_targets(expected_loss, None)
    s = Settings.of(settings, **overrides)
    _, fc_bytes = _preflight(model, weights, s)
    with locked(Path(work_dir)) as work:
        return _assess(model, weights, work, expected_loss, s, fc_bytes, keep_features)


def _assess(model, weights, work: Path, expected_loss: float, s: Settings, fc_bytes: dict,
            keep_features: bool = False) -> dict:
    layers = list(fc_bytes)
    clock = Stopwatch.started()
    assess_model = (with_test_source(model, s.assess_lmdb, work / "assess.prototxt") if s.assess_lmdb
                    else model)
    assess_model, iterations = within_memory(assess_model, weights, work / "assess-batch.prototxt", s)
    info = check_model(assess_model)
    key = cache_key(assess_model, weights, [Path(info["lmdb"]) / "data.mdb"],
                    {"lossless": s.lossless, "iterations": iterations, "walk": ASSESSMENT_VERSION,
                     **({"labels": "agreement"} if s.agreement else {})})
    cache_dir = work / f"assess-{key}"
    cache_dir.mkdir(exist_ok=True)
    tasks = [LayerTask(layer, str(cache_dir / f"{layer}.{backend}.json"), expected_loss,
                       str(cache_dir / "prefix"), backend, s.lossless, s.gpu, s.agreement)
             for layer in layers for backend in s.lossy]
    store = _prefix_pass(assess_model, weights, iterations, tasks, s)
    results = run_tasks(tasks, workers=s.workers, gpus=s.gpus, scheduler=s.scheduler)
    if store is not None and not keep_features:
        store.drop_features()  # every walk is cached now: the disk back (VGG-16: 5 GB per 50,000)
    points: dict[str, list[dict]] = {layer: [] for layer in layers}
    for r in results:
        points[r["layer"]] += r["points"]
    result = {"model": str(model), "weights": str(weights), "lmdb": info["lmdb"],
              "records": info["records"], "lossy": list(s.lossy), "lossless": s.lossless,
              "labels": "agreement" if s.agreement else "dataset",
              "reference_labels": str(cache_dir / "prefix" / "reference.npy") if s.agreement else None,
              "prefix_pass": store.manifest if store is not None else None,
              "prefix_dir": str(cache_dir / "prefix"), "iterations": iterations,
              "test_batch": info["batch"], "run_model": str(assess_model),
              "base_top1": results[0]["base_top1"], "walk_loss": expected_loss,
              "fc_bytes": fc_bytes,
              "suffix_checked": {r["layer"]: r.get("suffix") for r in results},
              "points": points,
              "seconds": clock.elapsed()}
    atomic.write_json(work / "assessment.json", result)
    return result


def within_memory(model, weights, out, s: Settings) -> tuple[Path, int]:
    """(prototxt, TEST iterations) for one pass over `model`'s test set within s.max_memory:
    `model` itself, or a copy at the largest divisor of its batch that fits (`out`) with the
    iterations scaled to cover the same images (the same correct count: the same result).
    Runs `probe`'s check in a child process on the way."""
    info = check_model(model)
    iterations = s.iterations or math.ceil(info["records"] / info["batch"])
    memory = memory_probe(model, weights)
    batch = fitting_batch(info["batch"], memory, s.max_memory)
    if batch == info["batch"]:
        return Path(model), iterations
    log(f"TEST batch {info['batch']} -> {batch} to stay within --max-memory "
        f"{s.max_memory / 2**30:.1f} GiB (about {memory['peak_bytes'] / 2**30:.2f} GiB + "
        f"{memory['image_bytes'] / 2**20:.0f} MiB per image); {iterations * info['batch'] // batch} "
        "iterations, the same images")
    return with_test_source(model, info["lmdb"], out, batch=batch), iterations * info["batch"] // batch


def _preflight(model, weights, s: Settings) -> tuple[dict, dict[str, int]]:
    """(check_model's info, _weight_bytes): what `assess` and `compress` check before their work
    dir exists, so that a refusal (bad net, missing LMDB, unknown layer) leaves none behind."""
    info = check_model(model)
    fc_bytes = _weight_bytes(weights, s.layer_list())
    if s.assess_lmdb:
        lmdb.count(s.assess_lmdb)
    return info, fc_bytes


def _weight_bytes(weights, requested) -> dict[str, int]:
    """{selected layer: bytes of its float32 weights}. The caffemodel is read zero-copy and let
    go here: no copy of the weights (VGG-16: 553 MB) stays alive while Caffe's nets run."""
    blobs, skeleton = wire.read_caffemodel(weights)
    return {layer: 4 * blobs[layer][0].size
            for layer in select_layers(layer_types(skeleton), requested)}


def _prefix_pass(model, weights, iterations: int, tasks: list[LayerTask], s: Settings):
    """The kept full pass (`caffe.suffix.PrefixStore`) covering every layer whose walk is not
    cached yet: reused when complete on disk, else recorded now, once for all of them. None when
    nothing is left to measure (and, for agreement, the reference labels are kept)."""
    need = list(dict.fromkeys(t.layer for t in tasks
                              if not Assessment.finished(t.cache_path, t.layer, t.expected_loss)))
    directory = Path(tasks[0].prefix_dir)
    if not need and not (s.agreement and not (directory / "reference.npy").is_file()):
        return None
    store = PrefixStore.open(directory, need)
    if store is not None:
        log(f"prefix pass reused ({directory})")
        return store
    clock = Stopwatch.started()
    gpu = s.gpu if s.gpu is not None or not s.gpus else s.gpus[0]
    store = PrefixStore.record(TestPhase(str(model), str(weights), iterations, gpu, probed=True),
                               need, directory, suffix=s.suffix)
    m = store.manifest
    log(f"prefix pass: {m['iterations'] * m['batch']} images in {clock.elapsed():.1f} s, "
        f"{m['feature_bytes'] / 2**20:.1f} MiB of features for {', '.join(m['entries']) or 'no layer'}")
    return store


def stage(name: str, seconds: float, detail: str = "") -> None:
    """One line as a stage of `compress` ends."""
    _logger.info(f"[compress] {name}: {seconds:.1f} s" + (f" ({detail})" if detail else ""))


def compress(model, weights, output, *, expected_loss: float | None = None,
             expected_ratio: float | None = None, settings: Settings | None = None, work_dir=None,
             max_rounds: int = 8, plan: str = "envelope", **overrides) -> dict:
    """Compress `weights` (pruned, for the train_test prototxt `model`) into the `.dsz` `output`.

    `plan`: "envelope" (noise-aware, the default) or "literal" (the paper's Algorithm 2 on the
    measured drops first); see the module docstring.
    Returns (and writes to `work_dir`/compress.json) the assessment points, chosen bounds,
    sizes, ratios, accuracies, every verification round and stage wall times."""
    check_targets(expected_loss, expected_ratio)
    if plan not in PLANS:
        raise ConfigError(f"unknown plan {plan!r}; choose from {', '.join(PLANS)}")
    s = Settings.of(settings, **overrides)
    output = atomic.check_output(output, [model, weights], ConfigError)
    work = Path(work_dir) if work_dir else output.with_name(output.stem + ".work")
    test_info, fc_bytes = _preflight(model, weights, s)
    with locked(work):
        walk = expected_loss if expected_loss is not None else RATIO_MODE_WALK_LOSS
        assessed = _assess(model, weights, work, walk, s, fc_bytes, keep_features=True)
        seconds = {"assess": assessed["seconds"]}
        stage("assess", seconds["assess"], _assess_summary(assessed))
        clock = Stopwatch.started()
        if s.assess_lmdb:  # the test set's own pass within the memory budget
            test_model, iterations = within_memory(model, weights, work / "test-batch.prototxt", s)
        else:
            test_model, iterations = Path(assessed["run_model"]), assessed["iterations"]
        s = replace(s, iterations=iterations)
        top1_pruned, labels = _baseline(test_model, weights, work, s, assessed)
        seconds["baseline"] = clock.elapsed()
        stage("baseline", seconds["baseline"], f"{_metric(s)} {top1_pruned:.2f}%")
        try:
            v = _verified(test_model, weights, work, assessed, top1_pruned, s, expected_loss,
                          expected_ratio, max_rounds, plan, labels)
        finally:  # every round is measured: the disk back (AlexNet: 3.5 GB per 50,000 images)
            drop_features(assessed)
        clock = Stopwatch.started()
        atomic.write_bytes(output, v["bytes"])  # only the bytes verification measured reach `output`
        seconds["write"] = clock.elapsed()
        stage("write", seconds["write"], f"{output}, {len(v['bytes']):,} bytes")
        seconds["generate_and_verify"] = sum(r["seconds"] for r in v["rounds"])
        report, last = v["report"], v["rounds"][-1]
        result = {
            "model": str(model), "weights": str(weights), "output": str(output),
            "layers": list(assessed["fc_bytes"]), "lossy": last["lossy"], "lossless": s.lossless,
            "test_records": test_info["records"], "test_batch": check_model(test_model)["batch"],
            "test_iterations": iterations,
            "assess_lmdb": str(s.assess_lmdb) if s.assess_lmdb else None,
            "labels": assessed["labels"],
            "expected_loss": expected_loss, "expected_ratio": expected_ratio, "plan": plan,
            "top1_pruned": top1_pruned, "top1_decoded": last["top1"], "actual_loss": last["actual_loss"],
            "predicted_loss": last["predicted_loss"], "error_bounds": last["error_bounds"],
            "ratio": report["ratio"], "ratio_with_biases": report["ratio_with_biases"],
            "fc_weight_bytes": report["fc_weight_bytes"],
            "fc_compressed_bytes": report["fc_compressed_bytes"],
            "layer_sizes": report["layers"], "assessment": assessed["points"],
            "assessment_base_top1": assessed["base_top1"], "rounds": v["rounds"], "seconds": seconds,
            "verify": v["rounds"][-1]["verify"],
        }
        atomic.write_json(work / "compress.json", result)
    return result


def _metric(s: Settings) -> str:
    return "agreement" if s.agreement else "top-1"


def _assess_summary(assessed: dict) -> str:
    tests = sum(len(p) for p in assessed["points"].values())
    metric = "agreement" if assessed["labels"] == "agreement" else "top-1"
    prefix = assessed["prefix_pass"]
    return (f"{tests} points, base {metric} {assessed['base_top1']:.2f}%"
            + (f", prefix pass {prefix['seconds']:.1f} s" if prefix else ""))


def _baseline(model, weights, work: Path, s: Settings, assessed: dict):
    """(top-1 of the pruned net on the prototxt's own test set, the labels verification compares
    against: None for the LMDB's, else the pruned net's own top-1 on that set)."""
    if not s.assess_lmdb:
        labels = np.load(assessed["reference_labels"]) if s.agreement else None
        return assessed["base_top1"], labels
    phase = TestPhase(str(model), str(weights), s.iterations, s.gpu, probed=True)
    if not s.agreement:
        return phase.run()["top1"], None
    with tempfile.TemporaryDirectory(dir=work) as tmp:  # one pass: the test set's reference labels
        labels = reference_labels(PrefixStore.record(phase, [], tmp))
    del phase
    return TestPhase(str(model), str(weights), s.iterations, s.gpu, probed=True,
                     labels=labels).run()["top1"], labels


def round_one(cands, plan: str = "envelope"):
    """(candidates, name of their drops) that round 1 plans on: the measured drops for "literal",
    else each curve's running maximum from 0. A negative drop on 10,000 test images is noise (a
    dip of -0.49 once paid for +0.38 elsewhere), not accuracy another layer may spend."""
    return (cands, "measured") if plan == "literal" else (monotone_drops(cands, floor=0.0), "envelope")


def _verified(model, weights, work: Path, assessed: dict, top1_pruned: float, s: Settings,
              expected_loss, expected_ratio, max_rounds: int, planner: str = "envelope",
              labels=None) -> dict:
    """Plan, encode, decode and measure until the accuracy constraint holds (see the module
    docstring); {"bytes": the verified .dsz, "report": its inspect(), "rounds": [...]}."""
    layers, (cands, drops) = list(assessed["fc_bytes"]), round_one(candidates(assessed["points"]), planner)
    fc_bytes = sum(assessed["fc_bytes"].values())
    candidate = work / f"candidate-{os.getpid()}.dsz"
    decoded = work / f"decoded-{os.getpid()}.caffemodel"
    rounds, budget = [], expected_loss
    measure = verifier(model, assessed, s, labels)
    try:
        for round_no in range(1, max_rounds + 1):
            clock = Stopwatch.started()
            plan = make_plan(cands, fc_bytes, expected_loss=budget, expected_ratio=expected_ratio)
            bounds = {layer: c.error_bound for layer, c in plan.choice.items()}
            coders = {layer: c.backend for layer, c in plan.choice.items()}
            dsz.encode(weights, candidate, error_bounds=bounds, layers=layers, lossy=coders,
                       lossless=s.lossless, force=True)  # the layers were chosen by assess
            blob = candidate.read_bytes()
            dsz.decode(candidate, decoded)
            with Stopwatch() as test_watch:  # the pass alone
                top1 = measure(decoded)
            t_test = test_watch.seconds
            report, actual = dsz.inspect(candidate), top1_pruned - top1
            rounds.append({"round": round_no, "budget": budget, "drops": drops, "error_bounds": bounds,
                           "lossy": coders, "predicted_loss": plan.expected_loss, "actual_loss": actual,
                           "top1": top1, "ratio": report["ratio"], "seconds": clock.elapsed(),
                           "test_seconds": t_test, "verify": measure.how})
            _logger.info(f"[verify] round {round_no} ({drops} drops): bounds {bounds} predicted loss "
                         f"{plan.expected_loss:+.3f} actual {actual:+.3f} "
                         f"{'agreement' if labels is not None else 'top-1'} {top1:.2f}% "
                         f"ratio {report['ratio']:.1f}x: {rounds[-1]['seconds']:.1f} s")
            if expected_ratio is not None or actual <= expected_loss + 1e-9:
                return {"bytes": blob, "report": report, "rounds": rounds}
            if budget <= min_drop_plan(cands).expected_loss:
                raise ConfigError(f"even the smallest assessed bounds lose {actual:.3f} points > "
                                  f"expected loss {expected_loss}: assess smaller bounds or allow a "
                                  "larger loss")
            if drops == "measured":
                cands, drops = monotone_drops(cands), "monotone"
            else:
                budget = min(budget, plan.expected_loss) - max(actual - expected_loss, MIN_TIGHTENING)
    finally:
        candidate.unlink(missing_ok=True)
        decoded.unlink(missing_ok=True)
    raise ConfigError(f"the accuracy constraint still fails after {max_rounds} rounds "
                      f"(last actual loss {rounds[-1]['actual_loss']:.3f} > {expected_loss})")
