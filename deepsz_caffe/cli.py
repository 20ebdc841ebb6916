"""`deepsz` command line: thin wrappers over the Python API with Caffe-style flags.

Every DeepSZError (bad input, corrupt file, unknown layer...) becomes one line on stderr and
exit status 1; argparse usage errors exit 2. No traceback reaches the user for expected errors.
"""
import argparse
import json
import sys
import warnings

from . import atomic
from .errors import ConfigError, DeepSZError
from .format import network as dsz


def parse_assignments(text: str, usage: str) -> dict[str, str]:
    """`ip1=0.02,ip2=0.03` -> {"ip1": "0.02", "ip2": "0.03"}; ConfigError(usage) if malformed."""
    pairs = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        name, sep, value = (part.strip() for part in item.partition("="))
        if not sep or not name:
            raise ConfigError(f"{usage}, got {item!r}")
        pairs[name] = value
    return pairs


def parse_bounds(text: str) -> dict[str, float]:
    """--eb: per-layer error bounds, each checked (finite, > 0)."""
    pairs = parse_assignments(text, "--eb expects LAYER=VALUE[,LAYER=VALUE...]")
    return {name: _number(value, f"--eb {name}") for name, value in pairs.items()}


def parse_kept(text: str) -> dict[str, float]:
    """--kept: per-layer kept fractions (their range is checked by prune.magnitude_masks)."""
    pairs = parse_assignments(text, "--kept expects LAYER=FRACTION[,LAYER=FRACTION...]")
    return {name: _number(value, f"--kept {name}") for name, value in pairs.items()}


def _number(text: str, what: str) -> float:
    """A float; its range is checked once, by the API the value goes to."""
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"{what}: {text!r} is not a number") from None


def parse_layers(text: str | None) -> list[str] | None:
    return [s.strip() for s in text.split(",") if s.strip()] if text else None


def _flag(p, name, **kw):
    """Accept Caffe's single-dash spelling too (`-weights` as well as `--weights`)."""
    p.add_argument(f"--{name}", f"-{name}", **kw)


def cmd_encode(a):
    if a.model:  # optional, as in Caffe: prove the weights fit the net before compressing them
        from .caffe.phase import probe

        probe(a.model, a.weights)
    header = dsz.encode(a.weights, a.output, error_bounds=parse_bounds(a.eb or ""),
                        eb_all=a.eb_all, layers=parse_layers(a.layers), **_codecs(a))
    report = dsz.inspect(a.output)
    print(f"wrote {a.output}: {len(header['layers'])} layer(s) compressed, "
          f"fc ratio {report['ratio']:.1f}x ({report['fc_weight_bytes']} -> "
          f"{report['fc_compressed_bytes']} bytes)")


def cmd_decode(a):
    print(f"wrote {dsz.decode(a.input, a.output)}")


def format_inspect(r: dict) -> str:
    head = (f"{'layer':<10} {'shape':>12} {'nnz':>9} {'density':>8} {'eb':>9} {'CSR B':>10} "
            f"{'data B':>9} {'lossy':>6} {'index B':>9} {'codec':>6} {'ratio':>7}")
    versions = ", ".join(f"{c}={v}" for c, v in r["codec_versions"].items()) or "-"
    lines = [f"network: {r['network'] or '(unnamed)'}   codecs: {versions}", head,
             "-" * len(head)]
    for m in r["layers"]:
        shape = "x".join(map(str, m["shape"]))
        lines.append(f"{m['name']:<10} {shape:>12} {m['nnz']:>9} {m['density']:>8.2%} "
                     f"{m['error_bound']:>9.2g} {m['csr_bytes']:>10} {m['data_bytes']:>9} "
                     f"{m['lossy_codec']:>6} {m['index_bytes']:>9} {m['index_codec']:>6} {m['ratio']:>6.1f}x")
    lines += [
        "-" * len(head),
        f"fc weights: {r['fc_weight_bytes']} B -> {r['fc_compressed_bytes']} B   "
        f"ratio {r['ratio']:.1f}x (paper's definition: fc weight bytes / compressed bytes)",
        f"fc biases: {r['fc_bias_bytes']} B (stored {r['fc_bias_stored_bytes']} B)   "
        f"ratio with biases {r['ratio_with_biases']:.1f}x",
        f"other blobs (stored losslessly): {r['other_blob_bytes']} B   .dsz file: {r['file_bytes']} B",
    ]
    return "\n".join(lines)


def cmd_inspect(a):
    report = dsz.inspect(a.input)
    print(json.dumps(report, indent=2) if a.json else format_inspect(report))


def _print_json(obj, path=None):
    if path:
        atomic.write_json(path, obj)
        print(f"wrote {path}")
    else:
        print(json.dumps(obj, indent=2))


def cmd_compress(a):
    from .deepsz.pipeline import compress

    r = compress(a.model, a.weights, a.output, expected_loss=a.expected_loss,
                 expected_ratio=a.expected_ratio, settings=_settings(a), work_dir=a.work_dir)
    print(f"wrote {a.output}: fc ratio {r['ratio']:.1f}x, top-1 {r['top1_pruned']:.2f}% -> "
          f"{r['top1_decoded']:.2f}% (actual loss {r['actual_loss']:+.2f}, predicted "
          f"{r['predicted_loss']:+.2f}), bounds {r['error_bounds']}")


def cmd_assess(a):
    from .deepsz.pipeline import assess

    r = assess(a.model, a.weights, a.work_dir, expected_loss=a.expected_loss, settings=_settings(a))
    for layer, points in r["points"].items():
        print(f"{layer}: " + ", ".join(f"{p['eb']:g}:{p['drop']:+.2f}/{p['size']}B" for p in points))
    print(f"wrote {a.work_dir}/assessment.json (base top-1 {r['base_top1']:.2f}%)")


def cmd_optimize(a):
    from .deepsz.assess import candidates
    from .deepsz.optimize import optimize_for_loss, optimize_for_ratio
    from .deepsz.pipeline import check_targets

    check_targets(a.expected_loss, a.expected_ratio)
    try:
        r = json.loads(open(a.assessment).read())
        cands, fc_bytes = candidates(r["points"]), sum(r["fc_bytes"].values())
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"{a.assessment} is not an assessment.json from `deepsz assess` ({e})") from None
    plan = (optimize_for_loss(cands, a.expected_loss) if a.expected_ratio is None
            else optimize_for_ratio(cands, int(fc_bytes / a.expected_ratio)))
    _print_json({"error_bounds": {k: c.error_bound for k, c in plan.choice.items()},
                 "predicted_loss": plan.expected_loss, "total_size": plan.total_size,
                 "ratio": fc_bytes / max(1, plan.total_size)}, a.output)


def cmd_prune(a):
    from .caffe import io as caffe_io
    from .deepsz.prune import magnitude_masks, retrain

    kept = parse_kept(a.kept)
    weights = {k: v[0] for k, v in caffe_io.blobs(caffe_io.read_net(a.weights)).items()}
    stats = retrain(a.solver, a.weights, magnitude_masks(weights, kept), a.output,
                    iterations=a.iterations, lr_scale=a.lr_scale, seed=a.seed)
    print(f"wrote {a.output}: kept {stats['kept']} after {stats['iterations']} masked iterations")


def cmd_reproduce(a):
    from .paper.reproduce import reproduce

    reproduce(a.net, results=a.results, data=a.data, expected_loss=a.expected_loss, seed=a.seed,
              assess_split=a.assess_split, preset=a.preset)


def _codec_flags(p):
    p.add_argument("--preset", help="paper (default: SZ2 + best of gzip/zstd/blosc, as published) | "
                                    "best (also SZ3, quant, ctx; each layer gets its best coder)")
    p.add_argument("--lossy", help="lossy codec(s), comma-separated: sz2 | sz3 | zfp | quant")
    p.add_argument("--lossless", help="index codec: best | best-all | zstd | gzip | blosc | ctx")


def _codecs(a) -> dict:
    from .presets import resolve

    preset = resolve(a.preset, a.lossy, a.lossless)
    return {"lossy": preset.lossy, "lossless": preset.lossless}


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
    _codec_flags(p)
    p.add_argument("--workers", type=int, default=1, help="assess layers in N processes (CPU)")
    p.add_argument("--gpus", type=parse_gpus, help="one worker per GPU: 0,1,2,3")
    p.add_argument("--scheduler", help="Dask scheduler address, e.g. tcp://host:8786")


def parse_gpus(text: str) -> list[int]:
    try:
        return [int(g) for g in text.split(",") if g.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--gpus expects ids like 0,1,2, got {text!r}") from None


def _settings(a):
    """The flags of compress/assess as one deepsz.settings.Settings."""
    from .deepsz.settings import Settings

    return Settings(layers=parse_layers(a.layers), iterations=a.iterations, gpu=a.gpu,
                    assess_lmdb=a.assess_lmdb, workers=a.workers, gpus=a.gpus,
                    scheduler=a.scheduler, **_codecs(a))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="deepsz", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    e = sub.add_parser("encode", help="compress a pruned .caffemodel into a .dsz")
    _flag(e, "weights", required=True, help="pruned .caffemodel")
    _flag(e, "model", help="prototxt to check the weights against with Caffe first (optional: the "
                           ".caffemodel itself carries the net structure)")
    e.add_argument("--eb", help="per-layer absolute error bounds: ip1=0.02,ip2=0.03")
    e.add_argument("--eb-all", type=float, help="error bound for every selected layer without --eb")
    _flag(e, "layers", help="layers to compress (default: every InnerProduct layer)")
    _codec_flags(e)
    e.add_argument("-o", "--output", required=True, help="output .dsz")
    e.set_defaults(func=cmd_encode)

    d = sub.add_parser("decode", help="rebuild a complete .caffemodel from a .dsz")
    d.add_argument("input")
    d.add_argument("-o", "--output", required=True)
    d.set_defaults(func=cmd_decode)

    i = sub.add_parser("inspect", help="per-layer sizes and ratios of a .dsz")
    i.add_argument("input")
    i.add_argument("--json", action="store_true", help="machine-readable output")
    i.set_defaults(func=cmd_inspect)

    c = sub.add_parser("compress", help="DeepSZ end to end: assess, optimise, encode, verify")
    _caffe_flags(c)
    _target_flags(c)
    c.add_argument("--work-dir", help="assessment cache and results (default: OUTPUT.work/)")
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
    o.set_defaults(func=cmd_optimize)

    pr = sub.add_parser("prune", help="magnitude pruning + masked retraining with Caffe's solver")
    _flag(pr, "solver", required=True, help="solver prototxt (its net must have a TRAIN Data layer)")
    _flag(pr, "weights", required=True, help="trained .caffemodel")
    pr.add_argument("--kept", required=True, help="kept fraction per layer: ip1=0.08,ip2=0.09")
    _flag(pr, "iterations", type=int, default=10000, help="retraining iterations (default 10000)")
    pr.add_argument("--lr-scale", type=float, default=1.0, help="scale of the solver's base_lr")
    pr.add_argument("--seed", type=int)
    pr.add_argument("-o", "--output", required=True)
    pr.set_defaults(func=cmd_prune)

    r = sub.add_parser("reproduce", help="the paper's MNIST experiment from scratch (make reproduce)")
    r.add_argument("--net", default="lenet300", help="lenet300 | lenet5")
    r.add_argument("--expected-loss", type=float, default=0.2)
    r.add_argument("--seed", type=int, default=1)
    r.add_argument("--assess-split", action="store_true",
                   help="train on 50000 images, assess on the held-out 10000, verify on the test set")
    r.add_argument("--preset", default="paper", help="paper (default) | best")
    r.add_argument("--results", default="results")
    r.add_argument("--data", default="data")
    r.set_defaults(func=cmd_reproduce)

    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = lambda msg, *_a, **_k: print(f"deepsz: warning: {msg}", file=sys.stderr)
        try:
            args.func(args)
        except DeepSZError as e:
            print(f"deepsz: error: {e}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("deepsz: interrupted", file=sys.stderr)
            return 130
        except BrokenPipeError:  # output piped into `head`: not an error of ours
            sys.stderr.close()
            return 141
    return 0


if __name__ == "__main__":
    sys.exit(main())
