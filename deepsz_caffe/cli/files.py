"""deepsz encode | decode | inspect: a .caffemodel <-> a .dsz, and what a .dsz holds."""
import json

from ..format import network as dsz
from . import _codec_flags, _codecs, _flag, parse_bounds, parse_layers


def cmd_encode(a):
    if a.model:  # optional, as in Caffe: prove the weights fit the net before compressing them
        from ..caffe.match import check_model_matches
        from ..caffe.phase import probe

        check_model_matches(a.model, a.weights)
        probe(a.model, a.weights)
    header = dsz.encode(a.weights, a.output, error_bounds=parse_bounds(a.eb or ""),
                        eb_all=a.eb_all, layers=parse_layers(a.layers), force=a.force_layers,
                        **_codecs(a))
    report = dsz.inspect(a.output)
    print(f"wrote {a.output}: {len(header['layers'])} layer(s) compressed, selected layers "
          f"{report['ratio']:.1f}x ({report['selected_weight_bytes']} -> "
          f"{report['selected_compressed_bytes']} bytes)")


def cmd_decode(a):
    print(f"wrote {dsz.decode(a.input, a.output, expect_sha256=a.expect_sha256)}")


_COLUMNS = [("shape", ">", 12), ("nnz", ">", 9), ("zeroed", ">", 6), ("density", ">", 8), ("eb", ">", 9),
            ("CSR B", ">", 10), ("data B", ">", 9), ("lossy", ">", 6), ("index B", ">", 9),
            ("codec", ">", 6), ("ratio", ">", 7)]


def _cells(m: dict) -> list[str]:
    # zeroed: kept weights within eb of 0 that a zeroing codec (zquant) stored as pruned
    return ["x".join(map(str, m["shape"])), str(m["nnz"]), str(m.get("zeroed", 0)), f"{m['density']:.2%}",
            f"{m['error_bound']:.2g}", str(m["csr_bytes"]), str(m["data_bytes"]), m["lossy_codec"],
            str(m["index_bytes"]), m["index_codec"], f"{m['ratio']:.1f}x"]


def format_inspect(r: dict) -> str:
    """The inspect report as a table; columns widen to fit long layer names and values."""
    rows = [[m["name"], *_cells(m)] for m in r["layers"]]
    head = ["layer", *(c for c, _, _ in _COLUMNS)]
    widths = [max([len(head[0]), 10] + [len(row[0]) for row in rows])]
    widths += [max([w, len(c)] + [len(row[k + 1]) for row in rows]) for k, (c, _, w) in enumerate(_COLUMNS)]
    aligns = ["<"] + [a for _, a, _ in _COLUMNS]

    def line(cells):
        return " ".join(f"{c:{a}{w}}" for c, a, w in zip(cells, aligns, widths)).rstrip()

    versions = ", ".join(f"{c}={v}" for c, v in r["codec_versions"].items()) or "-"
    rule = "-" * len(line(head))
    return "\n".join([
        f"network: {r['network'] or '(unnamed)'}   codecs: {versions}",
        f"sha256: {r['sha256']}   (check it with: deepsz decode --expect-sha256 ...)",
        line(head), rule, *(line(row) for row in rows), rule,
        f"selected layers: {r['selected_weight_bytes']} B -> {r['selected_compressed_bytes']} B   "
        f"ratio {r['ratio']:.1f}x (paper's definition: weight bytes / compressed bytes)",
        f"their biases: {r['selected_bias_bytes']} B (stored {r['selected_bias_stored_bytes']} B)   "
        f"ratio with biases {r['ratio_with_biases']:.1f}x",
        f"other blobs (stored losslessly): {r['other_blob_bytes']} B   .dsz file: {r['file_bytes']} B",
    ])


def cmd_inspect(a):
    report = dsz.inspect(a.input)
    print(json.dumps(report, indent=2) if a.json else format_inspect(report))


def register(sub) -> None:
    e = sub.add_parser("encode", help="compress a pruned .caffemodel into a .dsz")
    _flag(e, "weights", required=True, help="pruned .caffemodel")
    _flag(e, "model", help="prototxt to check the weights against first: same layers with weights, "
                           "same shapes, and Caffe runs them (optional: the .caffemodel itself "
                           "carries the net structure)")
    e.add_argument("--eb", help="per-layer absolute error bounds: ip1=0.02,ip2=0.03")
    e.add_argument("--eb-all", type=float, help="error bound for every selected layer without --eb")
    _flag(e, "layers", help="layers to compress (default: every InnerProduct layer)")
    e.add_argument("--force-layers", action="store_true",
                   help="compress selected layers that are not Convolution or InnerProduct too")
    _codec_flags(e)
    e.add_argument("-o", "--output", required=True, help="output .dsz")
    e.set_defaults(func=cmd_encode)
    d = sub.add_parser("decode", help="rebuild a complete .caffemodel from a .dsz")
    d.add_argument("input")
    d.add_argument("-o", "--output", required=True)
    d.add_argument("--expect-sha256", metavar="HEX",
                   help="refuse the .dsz unless its sha256 is HEX (as `deepsz inspect` prints it), "
                        "checked before the file is parsed")
    d.set_defaults(func=cmd_decode)
    i = sub.add_parser("inspect", help="per-layer sizes and ratios of a .dsz, and its sha256")
    i.add_argument("input")
    i.add_argument("--json", action="store_true", help="machine-readable output")
    i.set_defaults(func=cmd_inspect)
