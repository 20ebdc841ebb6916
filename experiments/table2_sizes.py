"""Table 2 (a-d): per fc layer, original size, kept fraction, CSR size and DeepSZ size, and ratios.

LeNets: the measured end-to-end runs (results/<net>/summary.json: trained, pruned, compressed at
the bounds DeepSZ chose, accuracy verified). AlexNet/VGG-16: fc layers encoded with
deepsz_caffe.layer_codec at the paper's error bounds (section 5.2.2) -- real weights from
--alexnet-weights / --vgg16-weights when given, otherwise synthetic weights of the real shapes
pruned to the paper's fractions, labelled as such. For the LeNets the synthetic model is also
encoded at the measured bounds, to show how far synthetic sizes are from real ones.
"""
from deepsz_caffe.paper import synthetic
from deepsz_caffe.format.layer import encode_layer

from . import common

FIELDS = ("shape", "nnz", "n_entries", "dense_bytes", "csr_bytes", "data_bytes", "index_bytes",
          "error_bound", "index_codec")
UNITS = {"KB": 1e3, "MB": 1e6}


def _row(name: str, meta: dict) -> dict:
    return {"name": name, **{k: meta[k] for k in FIELDS}}


def _encode(layers: dict, bounds: dict) -> list[dict]:
    return [_row(name, encode_layer(w, bounds[name]).meta) for name, w in layers.items()]


def compute(args) -> dict:
    nets = {}
    for net in ("lenet300", "lenet5"):
        summary = common.measured_summary(net, args.results)
        if summary is None:
            nets[net] = {"available": False, "how_to_run": common.HOW_TO_RUN[net]}
            continue
        bounds = summary["error_bounds"]
        nets[net] = {
            "available": True, "synthetic": False,
            "source": (f"measured end to end ({args.results}/{net}/summary.json, seed "
                       f"{summary['seed']}, expected loss {summary['expected_loss']}, top-1 "
                       f"{summary['top1_pruned']:.2f}% -> {summary['top1_decoded']:.2f}%)"),
            "layers": [_row(m["name"], m) for m in summary["layers"]],
            "synthetic_check": _encode(synthetic.pruned_net(net, args.seed), bounds),
        }
    for net in ("alexnet", "vgg16"):
        src = common.fc_layers(net, args)
        nets[net] = {"available": True, "synthetic": src["synthetic"], "source": src["source"],
                     "layers": _encode(src["layers"], synthetic.PAPER_ERROR_BOUNDS[net])}
    return {"nets": nets}


def _totals(layers: list[dict]) -> dict:
    keys = ("nnz", "dense_bytes", "csr_bytes", "data_bytes", "index_bytes")
    total = {k: sum(r[k] for r in layers) for k in keys}
    total["size"] = sum(r["dense_bytes"] // 4 for r in layers)
    return total


def _ratio(r: dict) -> float:
    """The paper's ratio: original fc weight bytes / DeepSZ bytes (data + index)."""
    return r["dense_bytes"] / (r["data_bytes"] + r["index_bytes"])


def _net_table(net: str, entry: dict, pv: dict) -> list[str]:
    """Markdown lines of one net's sub-table, paper values (Tables 2, 4, section 5.2.2) beside."""
    paper = pv["table2"]["nets"][net]
    paper_ratios = {layer: v["deepsz"] for layer, v in pv["table4"]["nets"][net].items()}
    paper_bounds = pv["error_bounds"]["nets"][net]
    title = f"### ({'abcd'[common.NETS.index(net)]}) {common.TITLES[net]}"
    if entry.get("synthetic"):
        title += f": {common.SYNTHETIC_LABEL.upper()}"
    if not entry["available"]:
        return [title, "", f"Not run yet: `{entry['how_to_run']}`", ""]
    unit = paper["unit"]

    def size(b) -> str:
        x = b / UNITS[unit]
        return f"{x:.{0 if x >= 100 else 1 if x >= 10 else 2}f} {unit}"

    rows = []
    for r in entry["layers"]:
        p = paper["layers"].get(r["name"], {})
        rows.append([
            r["name"], " × ".join(map(str, r["shape"])),
            f"{size(r['dense_bytes'])} ({p.get('original', '-')})",
            f"{100 * r['nnz'] / (r['dense_bytes'] // 4):.2f}% ({p.get('kept_pct', '-')}%)",
            f"{size(r['csr_bytes'])} ({p.get('csr', '-')})",
            (f"{size(r['data_bytes'] + r['index_bytes'])} = {size(r['data_bytes'])} + "
             f"{size(r['index_bytes'])} ({p.get('deepsz', '-')})"),
            f"{r['error_bound']:g} ({common.fmt(paper_bounds.get(r['name']), 'g')})",
            r["index_codec"],
            f"{_ratio(r):.1f}× ({common.fmt(paper_ratios.get(r['name']), 'g', '×')})",
        ])
    t, o = _totals(entry["layers"]), paper["overall"]
    rows.append([
        "**overall**", "", f"{size(t['dense_bytes'])} ({o['original']})",
        f"{100 * t['nnz'] / t['size']:.2f}% ({o['kept_pct']}%)",
        (f"{size(t['csr_bytes'])}, {t['dense_bytes'] / t['csr_bytes']:.1f}× "
         f"({o['csr']}, {o['csr_ratio']}×)"),
        f"{size(t['data_bytes'] + t['index_bytes'])} ({o['deepsz']})", "", "",
        f"**{_ratio(t):.1f}×** ({o['deepsz_ratio']}×)",
    ])
    header = ["layer", "shape", "original", "kept", "CSR", "DeepSZ = data + index", "error bound",
              "index codec", "ratio"]
    lines = [title, "",
             f"Source: {entry['source']}. Paper: {paper['source']} (ratios per layer: Table 4).",
             "", common.markdown_table(header, rows), ""]
    if "synthetic_check" in entry:
        check = entry["synthetic_check"]
        per_layer = ", ".join(f"{r['name']} {_ratio(r):.1f}×" for r in check)
        lines += [(f"Synthetic check: {common.SYNTHETIC_LABEL} at the same fractions and bounds "
                   f"give {_ratio(_totals(check)):.1f}× overall ({per_layer}) against the measured "
                   f"{_ratio(t):.1f}×."), ""]
    lines += [f"- Paper note: {n}" for n in paper.get("notes", [])]
    return lines


def render(data: dict, figures=common.FIGURES) -> list:
    md = ["# Table 2: fc layers' compression statistics (ours, paper in parentheses)", "",
          ("Sizes in the paper's units (KB = 10^3 B, MB = 10^6 B). CSR = the paper's sparse form, "
           "5 B per stored entry (fillers included). DeepSZ = SZ2 data array + best lossless index "
           "array. Ratio = original / DeepSZ (fc weights only, as the paper)."), ""]
    for net in (n for n in common.NETS if n in data["nets"]):
        md += [*_net_table(net, data["nets"][net], common.paper_values()), ""]
    return [common.write_table("table2_sizes", "\n".join(md), figures)]


def main(argv=None) -> None:
    common.main("table2_sizes", compute, render, argv, add_arguments=common.add_weights_arguments,
                description=__doc__.splitlines()[0])


if __name__ == "__main__":
    main()
