"""deepsz compress | assess | optimize: DeepSZ's Algorithms 1 and 2 on a Caffe net, verified."""
import argparse
import json

from ..deepsz.optimize import PLANS
from ..errors import ConfigError
from . import _codec_flags, _codecs, _flag, _print_json, parse_bytes, parse_layers


def cmd_compress(a):
    from ..deepsz.pipeline import compress

    r = compress(a.model, a.weights, a.output, expected_loss=a.expected_loss,
                 expected_ratio=a.expected_ratio, settings=_settings(a), work_dir=a.work_dir,
                 plan=a.plan)
    metric = "top-1 agreement" if r["labels"] == "agreement" else "top-1"
    print(f"wrote {a.output}: selected layers {r['ratio']:.1f}x, {metric} {r['top1_pruned']:.2f}% -> "
          f"{r['top1_decoded']:.2f}% (actual loss {r['actual_loss']:+.2f}, predicted "
          f"{r['predicted_loss']:+.2f}), bounds {r['error_bounds']}")


def cmd_assess(a):
    from ..deepsz.pipeline import assess

    r = assess(a.model, a.weights, a.work_dir, expected_loss=a.expected_loss, settings=_settings(a))
    for layer, points in r["points"].items():
        print(f"{layer}: " + ", ".join(f"{p['eb']:g}:{p['drop']:+.2f}/{p['size']}B" for p in points))
    metric = "top-1 agreement" if r["labels"] == "agreement" else "top-1"
    print(f"wrote {a.work_dir}/assessment.json (base {metric} {r['base_top1']:.2f}%)")


ASSESSMENT_LIMIT = 256 << 20  # an assessment.json holds a few points per layer: kilobytes


def cmd_optimize(a):
    from pathlib import Path

    from .. import atomic
    from ..deepsz.assess import candidates
    from ..deepsz.optimize import plan as make_plan
    from ..deepsz.pipeline import check_targets, round_one
    from ..deepsz.workdir import reading

    check_targets(a.expected_loss, a.expected_ratio)
    with reading(Path(a.assessment).parent):  # not while a run in that work dir rewrites it
        data = atomic.read_bytes(a.assessment, "assessment", ConfigError, ASSESSMENT_LIMIT,
                                 " (an assessment.json is kilobytes)")
    try:
        r = json.loads(data.decode("utf-8"))  # strict: JSON is UTF-8, and no BOM
        cands, fc_bytes = round_one(candidates(r["points"]), a.plan)[0], sum(r["fc_bytes"].values())
        plan = make_plan(cands, fc_bytes, expected_loss=a.expected_loss, expected_ratio=a.expected_ratio)
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError, OverflowError) as e:
        raise ConfigError(f"{a.assessment} is not an assessment.json from `deepsz assess` "
                          f"({type(e).__name__}: {' '.join(str(e).split())[:120]})") from None
    fits = a.expected_ratio is not None or plan.expected_loss <= a.expected_loss
    _print_json({"error_bounds": {k: c.error_bound for k, c in plan.choice.items()},
                 "predicted_loss": plan.expected_loss, "total_size": plan.total_size,
                 "ratio": fc_bytes / max(1, plan.total_size), "plan": a.plan, "fits": fits},
                a.output)


def _plan_flag(p):
    p.add_argument("--plan", choices=PLANS, default="envelope",
                   help="plan on each layer's drops made monotone from 0 (envelope, default: "
                        "noise-aware) or on the measured drops (literal: the paper's Algorithm 2)")


def _target_flags(p):
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--expected-loss", type=float, help="allowed top-1 loss in points (paper: 0.2)")
    g.add_argument("--expected-ratio", type=float, help="target fc compression ratio instead")


def _caffe_flags(p):
    _flag(p, "model", required=True, help="train_test prototxt with an LMDB Data layer and Accuracy in TEST")
    _flag(p, "weights", required=True, help="pruned .caffemodel")
    _flag(p, "layers", help="layers to compress (default: every InnerProduct layer)")
    _flag(p, "iterations", type=int, help="TEST iterations (default: one pass over the LMDB)")
    _flag(p, "gpu", type=int, help="GPU id (CPU when omitted)")
    p.add_argument("--assess-lmdb", help="assess on this LMDB (e.g. held-out training images) "
                                         "and verify on the prototxt's own test LMDB")
    p.add_argument("--agreement", action="store_true",
                   help="label-free: measure top-1 agreement with the uncompressed net's own "
                        "predictions instead of accuracy against the LMDB's labels")
    _codec_flags(p)
    p.add_argument("--workers", type=int, default=1, help="assess layers in N processes (CPU)")
    p.add_argument("--gpus", type=parse_gpus, help="one worker per GPU: 0,1,2,3")
    p.add_argument("--scheduler", help="Dask scheduler address, e.g. tcp://host:8786")
    p.add_argument("--max-memory", type=parse_bytes, default="4G",
                   help="memory a TEST net may take (K/M/G = KiB/MiB/GiB; default 4G; 0: no "
                        "limit): the TEST batch is lowered to the largest divisor of the "
                        "prototxt's that fits, over the same images (the same results)")


def parse_gpus(text: str) -> list[int]:
    try:
        return [int(g) for g in text.split(",") if g.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--gpus expects ids like 0,1,2, got {text!r}") from None


def _settings(a):
    """The flags of compress/assess as one deepsz.settings.Settings."""
    from ..deepsz.settings import Settings

    return Settings(layers=parse_layers(a.layers), iterations=a.iterations, gpu=a.gpu,
                    assess_lmdb=a.assess_lmdb, agreement=a.agreement, workers=a.workers, gpus=a.gpus,
                    scheduler=a.scheduler, verify=getattr(a, "verify", "suffix"),
                    max_memory=a.max_memory,
                    **_codecs(a))


def register(sub) -> None:
    c = sub.add_parser("compress", help="DeepSZ end to end: assess, optimise, encode, verify")
    _caffe_flags(c)
    _target_flags(c)
    c.add_argument("--verify", choices=("suffix", "full"), default="suffix",
                   help="measure each candidate .dsz by the suffix from the earliest selected "
                        "layer over the kept features (default: the same numbers, faster) or "
                        "by a full TEST pass (full: as the paper)")
    c.add_argument("--work-dir", help="assessment cache and results (default: <output stem>.work/ "
                                      "beside the output: net.dsz -> net.work/)")
    _plan_flag(c)
    c.add_argument("-o", "--output", required=True, help="output .dsz")
    c.set_defaults(func=cmd_compress)
    s = sub.add_parser("assess", help="Algorithm 1: per-layer (bound, size, accuracy drop)")
    _caffe_flags(s)
    s.add_argument("--expected-loss", type=float, required=True, help="walk until a drop exceeds this")
    s.add_argument("--work-dir", required=True, help="where assessment.json and its cache go")
    s.set_defaults(func=cmd_assess)
    o = sub.add_parser("optimize", help="Algorithm 2 over an assessment.json")
    o.add_argument("assessment")
    _target_flags(o)
    o.add_argument("-o", "--output", help="write the plan as JSON here")
    _plan_flag(o)
    o.set_defaults(func=cmd_optimize)
