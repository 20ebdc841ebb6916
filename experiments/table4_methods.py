"""Table 4: compression ratio per fc layer and overall of Deep Compression, Weightless and DeepSZ.

Every ratio is original fc weight bytes / compressed bytes (the paper's). LeNets: the real pruned
layers of results/<net>/pruned.caffemodel; DeepSZ's sizes are those of the measured end-to-end
run (summary.json: bounds DeepSZ chose, accuracy verified). AlexNet/VGG-16: see common.fc_layers
(synthetic unless --alexnet-weights / --vgg16-weights), DeepSZ encoded with layer_codec at the
paper's bounds (section 5.2.2). The baselines run through the method interface
(baselines/method.py) at their defaults (Deep Compression 5-bit codebook and 5-bit relative
indices, Weightless 3-bit values in 6-bit Bloomier cells), each layer's own stream counted, every
stream decoded again. LeNets, beyond the paper: the methods `deepsz compare` measured
(results/compare/<net>.json: NNCodec, DeepSZ's best preset, ...) at their chosen points.
"""
import sys
from pathlib import Path

import numpy as np

from deepsz_caffe.baselines.method import load_method
from deepsz_caffe.format.layer import encode_layer
from deepsz_caffe.paper import synthetic

from . import common

METHODS = {"deep-compression": "Deep Compression", "weightless": "Weightless", "deepsz": "DeepSZ"}
BASELINES = ("deep-compression", "weightless")
COMPARED = ("deepsz", "deep-compression", "weightless")  # in the table already; others from compare


def _baseline(method: str, layers: dict) -> dict:
    """{layer: {"bytes", "params", "max_abs_error"}} of a baseline at its defaults: one file of
    every layer through the interface, each layer's own stream counted."""
    m = load_method(method)
    blob = m.encode(layers, m.default)
    sizes, decoded = m.layer_bytes(layers, m.default, blob), m.decode(blob)
    return {n: {"bytes": sizes[n], "params": dict(m.default),
                "max_abs_error": float(np.max(np.abs(decoded[n] - w), initial=0.0))}
            for n, w in layers.items()}


def _compared(net: str, results) -> dict | None:
    """Other methods' chosen points from `deepsz compare` (results/compare/<net>.json)."""
    path = Path(results) / "compare" / f"{net}.json"
    if not path.is_file():
        return None
    record = common.load_json(path)
    out = {}
    for name, e in record["methods"].items():
        if name in COMPARED or e.get("skipped") or e.get("chosen") is None:
            continue
        p = e["points"][e["chosen"]]
        out[name] = {"label": e["label"], "version": e.get("version", ""), "setting": p["setting"],
                     "layer_bytes": e["layer_bytes"], "file_bytes": p["bytes"], "loss": p["loss"]}
    return {"source": str(path), "max_loss": record["max_loss"], "methods": out}


def compute(args) -> dict:
    nets = {}
    for net in common.NETS:
        src = common.fc_layers(net, args)
        summary = common.measured_summary(net, args.results) if not src["synthetic"] and \
            net in ("lenet300", "lenet5") else None
        if summary is not None:
            deepsz = {m["name"]: m for m in summary["layers"]}
            deepsz_source = f"measured run {args.results}/{net}/summary.json (bounds DeepSZ chose)"
        else:
            bounds = synthetic.PAPER_ERROR_BOUNDS[net]
            deepsz = {n: encode_layer(w, bounds[n]).meta for n, w in src["layers"].items()}
            deepsz_source = "layer_codec.encode_layer at the paper's bounds (section 5.2.2)"
        print(f"[table4] {common.TITLES[net]}", file=sys.stderr)
        baselines = {m: _baseline(m, src["layers"]) for m in BASELINES}
        layers = []
        for name, w in src["layers"].items():
            row = {"name": name, "shape": list(w.shape), "nnz": int((w != 0).sum()),
                   "dense_bytes": 4 * w.size,
                   "deepsz": {"bytes": deepsz[name]["data_bytes"] + deepsz[name]["index_bytes"],
                              "error_bound": deepsz[name]["error_bound"]}}
            row.update({m: baselines[m][name] for m in BASELINES})
            layers.append(row)
        nets[net] = {"source": src["source"], "synthetic": src["synthetic"],
                     "deepsz_source": deepsz_source, "layers": layers,
                     "compared": None if src["synthetic"] else _compared(net, args.results)}
    return {"nets": nets}


def ratios(layers: list[dict], method: str) -> dict:
    """Per-layer ratios, the overall one, and the paper's Weightless accounting: only the largest
    layer compressed, the others left dense."""
    dense = sum(r["dense_bytes"] for r in layers)
    out = {r["name"]: r["dense_bytes"] / r[method]["bytes"] for r in layers}
    out["overall"] = dense / sum(r[method]["bytes"] for r in layers)
    largest = max(layers, key=lambda r: r["dense_bytes"])
    out["largest_only"] = dense / (dense - largest["dense_bytes"] + largest[method]["bytes"])
    return out


def _compared_rows(e: dict) -> list[str]:
    """Beyond the paper: the other methods `deepsz compare` measured on this net."""
    c = e.get("compared")
    if not c or not c["methods"]:
        return []
    dense = {r["name"]: r["dense_bytes"] for r in e["layers"]}
    total = sum(dense.values())
    rows = [[m["label"] + (f" ({m['version']})" if m["version"] else ""), m["setting"],
             *(f"{dense[n] / m['layer_bytes'][n]:.1f}" for n in dense),
             f"**{total / m['file_bytes']:.1f}**", f"{m['loss']:+.2f}"] for m in c["methods"].values()]
    return [(f"Beyond the paper, measured by `deepsz compare` ({c['source']}) on the same pruned "
             f"layers: each method at its chosen point (its operating point, or its smallest file "
             f"with measured loss within {c['max_loss']:g} points). Per layer: the layer coded alone; "
             "overall: the whole file."), "",
            common.markdown_table(["method", "setting", *dense, "overall", "loss (points)"], rows), ""]


def render(data: dict, figures=common.FIGURES) -> list:
    pv = common.paper_values()["table4"]
    header = ["layer", *(f"{name} ours (paper)" for name in METHODS.values()),
              "DeepSZ / Deep Compression ours (paper)", "DeepSZ bound", "bits per nonzero: DC / WL / DeepSZ"]
    md = ["# Table 4: compression ratios of Deep Compression, Weightless and DeepSZ (paper in parentheses)",
          "", ("Ratio = original fc weight bytes / compressed bytes, every stream counted in full "
               "(headers, codebooks, tables). Baselines at their defaults, no retraining (it does not "
               "change sizes). 'Improvement' as the paper prints it: DeepSZ over Deep Compression."), ""]
    for net, e in data["nets"].items():
        paper = pv["nets"][net]
        ours = {m: ratios(e["layers"], m) for m in METHODS}
        title = f"## {common.TITLES[net]}"
        if e["synthetic"]:
            title += f": {common.SYNTHETIC_LABEL.upper()}"
        rows = []
        for r in e["layers"] + [None]:
            name = r["name"] if r else "overall"
            p = paper.get(name, {})
            cells = [f"{ours[m][name]:.1f} ({common.fmt(p.get(m), 'g')})" for m in METHODS]
            improvement = ours["deepsz"][name] / ours["deep-compression"][name]
            bits = ("" if r is None else " / ".join(
                f"{8 * r[m]['bytes'] / r['nnz']:.2f}" for m in METHODS))
            rows.append([f"**{name}**" if r is None else name, *cells,
                         f"{improvement:.2f}× ({common.fmt(p.get('improvement'), 'g', '×')})",
                         "" if r is None else f"{r['deepsz']['error_bound']:g}", bits])
        wl = ours["weightless"]
        md += [title, "", f"Weights: {e['source']}. DeepSZ: {e['deepsz_source']}.", "",
               common.markdown_table(header, rows), "",
               (f"Weightless compressing only the largest layer, the others left dense (how the "
                f"paper's overall Weightless ratio comes out): {wl['largest_only']:.1f}× "
                f"(paper {common.fmt(paper['overall'].get('weightless'), 'g', '×')})."), ""]
        md += _compared_rows(e)
    wp = next(iter(data["nets"].values()))["layers"][0]["weightless"]["params"]
    md += [f"- Paper note: {n}" for n in pv["notes"]]
    t2 = common.paper_values()["table2"]["nets"]["lenet300"]["layers"]["ip2"]
    t4 = pv["nets"]["lenet300"]["ip2"]["deepsz"]
    md += [f"- LeNet-300-100 ip2: we compare against Table 4's DeepSZ ratio {t4:g}× ({t2['original']:g} "
           f"KB / {t2['original'] / t4:.2f} KB), not Table 2a's {t2['deepsz']:g} KB, which does not add "
           "up to the paper's overall size (see paper_values.json, table2.nets.lenet300.notes).",
           "- The paper's Weightless numbers exist only for the largest layers (LeNets, VGG-16); "
           "ours run on every layer. Weightless's error is unbounded: pruned positions decode to "
           f"centroids with a false-positive rate of 2^({wp['value_bits']}-{wp['t_bits']}) = "
           f"{100 * 2.0 ** (wp['value_bits'] - wp['t_bits']):g}% (see table5_degradation)."]
    return [common.write_table("table4_methods", "\n".join(md), figures)]


def main(argv=None) -> None:
    common.main("table4_methods", compute, render, argv, add_arguments=common.add_weights_arguments,
                description=__doc__.splitlines()[0])


if __name__ == "__main__":
    main()
