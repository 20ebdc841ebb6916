"""Table 5: top-1 degradation of DeepSZ, Deep Compression and Weightless at comparable ratios.

On the LeNets' pruned models (results/<net>/pruned.caffemodel), each method's decoded
reconstruction of every fc layer is put into the loaded TEST net in place, and Caffe measures
top-1 over the whole MNIST test set (suffix-only passes from the first fc layer, equal to full
ones); degradation = pruned model's top-1 - that. DeepSZ: the measured run's .dsz decoded again
(and summary.json's own figure beside it). Deep Compression: 5-bit codebook (Table 4's setting)
and the codebook width whose overall ratio is nearest DeepSZ's, without Han et al.'s centroid
fine-tuning. Weightless: defaults, on every layer and on the largest layer only (as the paper
uses it), without Reagen et al.'s retraining. Both through the method interface
(baselines/method.py). Beyond the paper: the methods `deepsz compare` measured on the same pruned
model and test set (results/compare/<net>.json), each at its chosen point and at its sweep point
of ratio nearest DeepSZ's. AlexNet/VGG-16 need ImageNet.
"""
import sys
import tempfile
from pathlib import Path

import numpy as np

from deepsz_caffe.baselines.compare import chosen_point, nearest_ratio
from deepsz_caffe.baselines.method import load_method
from deepsz_caffe.caffe.wire import read_caffemodel
from deepsz_caffe.deepsz.probe import LayerProbe
from deepsz_caffe.format import network as dsz

from . import common

DC_BITS = 5                  # Deep Compression's fc codebook width (Han et al.; DeepSZ Table 4)
DC_SEARCH_BITS = (2, 3, 4)   # widths tried for the ratio nearest DeepSZ's


def _round_trip(method: str, layers: dict, only=None, **params) -> dict:
    """Every layer (or those in `only`) through `method` (an interface name) at its defaults
    updated by `params`: per-layer bytes and errors, the decoded layers, and the overall ratio
    with each layer's own stream counted and uncompressed layers counted dense."""
    m = load_method(method)
    target = {**m.default, **params}
    chosen = {n: layers[n] for n in (list(layers) if only is None else only)}
    blob = m.encode(chosen, target)
    sizes, decoded = m.layer_bytes(chosen, target, blob), m.decode(blob)
    dense = sum(4 * w.size for w in layers.values())
    stored = sum(sizes.values()) + sum(4 * layers[n].size for n in layers if n not in chosen)
    return {"ratio": dense / stored,
            "layers": [{"layer": n, "bytes": sizes[n],
                        "max_abs_error": float(np.max(np.abs(decoded[n] - w), initial=0.0))}
                       for n, w in chosen.items()],
            "params": target, "decoded": decoded}


def _compared(net: str, results, deepsz_ratio: float) -> list[dict]:
    """Rows of the other methods `deepsz compare` measured (results/compare/<net>.json): each at
    its chosen point and at the sweep point of ratio nearest DeepSZ's."""
    path = Path(results) / "compare" / f"{net}.json"
    if not path.is_file():
        return []
    record, rows = common.load_json(path), []
    for name, e in record["methods"].items():
        if name in ("deepsz", "deep-compression", "weightless") or e.get("skipped"):
            continue
        label = e["label"] + (f" ({e['version']})" if e.get("version") else "")
        picks = [(chosen_point(e), f"smallest file within {record['max_loss']:g}"),
                 (nearest_ratio(e, deepsz_ratio), "ratio nearest DeepSZ's")]
        if e.get("operating_point") is not None:
            picks[0] = (picks[0][0], "its operating point")
        for p, why in picks:
            if p is not None and not any(r["setting"] == p["setting"] and r["method"] == name for r in rows):
                rows.append({"method": name, "label": f"{label}, {p['setting']} ({why})",
                             "setting": p["setting"], "ratio": p["ratio"], "top1": p["top1"],
                             "degradation": p["loss"], "source": str(path)})
    return rows


def _measure(probe: LayerProbe, entry: dict) -> dict:
    top1 = probe.top1_with(entry.pop("decoded"))
    return {**entry, "top1": top1, "degradation": probe.base_top1 - top1}


def compute(args) -> dict:
    nets = {}
    for net in common.MNIST_NETS:
        summary = common.measured_summary(net, args.results)
        stream = Path(args.results) / net / f"{net}.dsz"
        if summary is None or not stream.is_file():
            nets[net] = {"available": False, "how_to_run": common.HOW_TO_RUN[net]}
            continue
        print(f"[table5] {common.TITLES[net]}", file=sys.stderr)
        with tempfile.TemporaryDirectory() as work:
            probe = common.probe_for(net, args.results, work)
            decoded = read_caffemodel(dsz.decode(stream, Path(work) / "decoded.caffemodel"))[0]
            layers = probe.weights
            deepsz = {"ratio": dsz.inspect(stream)["ratio"], "params": summary["error_bounds"],
                      "decoded": {n: decoded[n][0] for n in probe.layers}}
            candidates = {bits: _round_trip("deep-compression", layers, bits=bits)
                          for bits in (DC_BITS, *DC_SEARCH_BITS)}
            near = min(DC_SEARCH_BITS, key=lambda b: abs(candidates[b]["ratio"] - deepsz["ratio"]))
            largest = max(layers, key=lambda n: layers[n].size)
            methods = {
                "deepsz": deepsz,
                f"deep-compression_{DC_BITS}": candidates[DC_BITS],
                f"deep-compression_{near}": candidates[near],
                "weightless": _round_trip("weightless", layers),
                "weightless_largest": _round_trip("weightless", layers, only=[largest]),
            }
            nets[net] = {"available": True, "top1_pruned": probe.base_top1,
                         "summary_top1_pruned": summary["top1_pruned"],
                         "summary_top1_decoded": summary["top1_decoded"], "largest": largest,
                         "methods": {k: _measure(probe, v) for k, v in methods.items()},
                         "compared": _compared(net, args.results, deepsz["ratio"])}
    return {"nets": nets}


def _label(key: str, e: dict) -> str:
    if key == "deepsz":
        return "DeepSZ (decoded .dsz; bounds " + ", ".join(
            f"{n} {eb:g}" for n, eb in e["methods"][key]["params"].items()) + ")"
    if key.startswith("deep-compression_"):
        bits = key.rsplit("_", 1)[1]
        why = "Table 4's setting" if int(bits) == DC_BITS else "ratio nearest DeepSZ's"
        return f"Deep Compression, {bits}-bit codebook ({why}; no centroid fine-tuning)"
    p = e["methods"][key]["params"]
    scope = f"{e['largest']} only, others dense" if key == "weightless_largest" else "every fc layer"
    return (f"Weightless, {p['value_bits']}-bit values in {p['t_bits']}-bit cells ({scope}; "
            "no retraining)")


def render(data: dict, figures=common.FIGURES) -> list:
    pv = common.paper_values()["table5"]
    header = ["network", "method", "fc ratio", "top-1", "degradation ours", "degradation paper"]
    rows, todo = [], []
    for net, e in data["nets"].items():
        if not e["available"]:
            todo.append(f"- {common.TITLES[net]}: `{e['how_to_run']}`")
            continue
        paper = pv["nets"][net]
        rows.append([common.TITLES[net], "pruned model (reference)", "", f"{e['top1_pruned']:.2f}%", "", ""])
        for key, m in e["methods"].items():
            family = "deep-compression" if key.startswith("deep-compression") else key.split("_")[0]
            p = paper.get(family)
            lower = pv["lower_bound"].get(net, {}).get(family)
            ours = f"{m['degradation']:+.2f}"
            if key == "deepsz":
                ours += f" (summary.json: {e['summary_top1_pruned'] - e['summary_top1_decoded']:+.2f})"
            rows.append(["", _label(key, e), f"{m['ratio']:.1f}×", f"{m['top1']:.2f}%", ours,
                         ("> " if lower else "") + common.fmt(p, "+.2f")])
        rows += [["", f"{c['label']}; `deepsz compare`", f"{c['ratio']:.1f}×", f"{c['top1']:.2f}%",
                  f"{c['degradation']:+.2f}", "-"] for c in e.get("compared", [])]
    md = ["# Table 5: top-1 degradation at comparable compression ratio (MNIST, Caffe)", "",
          common.markdown_table(header, rows), "",
          ("Degradation = top-1 of the pruned model - top-1 with every listed layer replaced by the "
           "method's decoded reconstruction, in points, over the 10,000 MNIST test images. Ratio = "
           "original fc weight bytes / stored bytes (layers a method leaves alone counted dense). "
           "The paper's numbers are repeated on every row of a method family."), "",
          *([("Rows marked `deepsz compare` come from results/compare/<net>.json: the same pruned "
              "model and test set, top-1 measured the same way, the method's whole file counted; "
              "NNCodec runs in its own environment (.venv-nncodec, `make nncodec`)."), ""]
            if any(e.get("compared") for e in data["nets"].values()) else []),
          ("Neither baseline is retrained here: Deep Compression's centroids are not fine-tuned "
           "and Weightless's network is not retrained around its false positives, although both "
           "methods rely on retraining (DeepSZ sections 4.2, 4.3). DeepSZ needs none."), "",
          *[f"- Paper note: {n}" for n in pv["notes"]], "",
          "AlexNet and VGG-16 are not measured (not available here): " + common.IMAGENET_NOTE]
    if todo:
        md += ["", "Not run yet:", "", *todo]
    return [common.write_table("table5_degradation", "\n".join(md), figures)]


def main(argv=None) -> None:
    common.main("table5_degradation", compute, render, argv, description=__doc__.splitlines()[0])


if __name__ == "__main__":
    main()
