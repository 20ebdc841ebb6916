"""`deepsz` command line: thin wrappers over the Python API with Caffe-style flags.

Every DeepSZError (bad input, corrupt file, unknown layer...) becomes one line on stderr and
exit status 1; argparse usage errors exit 2. No traceback reaches the user for expected errors.
"""
import argparse
import json
import sys
import warnings

from . import dsz
from .errors import ConfigError, DeepSZError


def parse_bounds(text: str) -> dict[str, float]:
    """`ip1=0.02,ip2=0.03` -> {"ip1": 0.02, "ip2": 0.03} (values checked later, per layer)."""
    bounds = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ConfigError(f"--eb expects LAYER=VALUE[,LAYER=VALUE...], got {item!r}")
        bounds[name.strip()] = dsz.check_error_bound(name.strip(), value)
    return bounds


def parse_layers(text: str | None) -> list[str] | None:
    return [s.strip() for s in text.split(",") if s.strip()] if text else None


def _flag(p, name, **kw):
    """Accept Caffe's single-dash spelling too (`-weights` as well as `--weights`)."""
    p.add_argument(f"--{name}", f"-{name}", **kw)


def cmd_encode(a):
    header = dsz.encode(a.weights, a.output, error_bounds=parse_bounds(a.eb or ""),
                        eb_all=a.eb_all, layers=parse_layers(a.layers), lossy=a.lossy,
                        lossless=a.lossless)
    report = dsz.inspect(a.output)
    print(f"wrote {a.output}: {len(header['layers'])} layer(s) compressed, "
          f"fc ratio {report['ratio']:.1f}x ({report['fc_weight_bytes']} -> "
          f"{report['fc_compressed_bytes']} bytes)")


def cmd_decode(a):
    print(f"wrote {dsz.decode(a.input, a.output)}")


def format_inspect(r: dict) -> str:
    head = (f"{'layer':<10} {'shape':>12} {'nnz':>9} {'density':>8} {'eb':>9} {'CSR B':>10} "
            f"{'data B':>9} {'index B':>9} {'codec':>6} {'ratio':>7}")
    lines = [f"network: {r['network'] or '(unnamed)'}   SZ: {r['sz2_version'] or '-'}", head,
             "-" * len(head)]
    for m in r["layers"]:
        shape = "x".join(map(str, m["shape"]))
        lines.append(f"{m['name']:<10} {shape:>12} {m['nnz']:>9} {m['density']:>8.2%} "
                     f"{m['error_bound']:>9.2g} {m['csr_bytes']:>10} {m['data_bytes']:>9} "
                     f"{m['index_bytes']:>9} {m['index_codec']:>6} {m['ratio']:>6.1f}x")
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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="deepsz", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    e = sub.add_parser("encode", help="compress a pruned .caffemodel into a .dsz")
    _flag(e, "weights", required=True, help="pruned .caffemodel")
    e.add_argument("--eb", help="per-layer absolute error bounds: ip1=0.02,ip2=0.03")
    e.add_argument("--eb-all", type=float, help="error bound for every selected layer without --eb")
    _flag(e, "layers", help="layers to compress (default: every InnerProduct layer)")
    e.add_argument("--lossy", default="sz2", help="sz2 (default, the paper) | sz3 | zfp")
    e.add_argument("--lossless", default="best", help="best (default) | zstd | gzip | blosc")
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
