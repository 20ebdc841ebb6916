"""deepsz encode | decode | inspect: a .caffemodel <-> a .dsz, and what a .dsz holds."""
import json

from ..format import network as dsz
from . import _codec_flags, _codecs, _flag, parse_bounds, parse_layers


def cmd_encode(a):
    if a.model:  # optional, as in Caffe: prove the weights fit the net before compressing them
        from ..caffe.phase import probe

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


def register(sub) -> None:
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
