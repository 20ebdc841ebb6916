"""Table 5: top-1 degradation of DeepSZ, Deep Compression and Weightless at comparable ratios.

On the LeNets' pruned models (results/<net>/pruned.caffemodel), each method's decoded
reconstruction of every fc layer is put into the loaded TEST net in place, and Caffe measures
top-1 over the whole MNIST test set (suffix-only passes from the first fc layer, equal to full
ones); degradation = pruned model's top-1 - that. DeepSZ: the measured run's .dsz decoded again
(and summary.json's own figure beside it). Deep Compression: 5-bit codebook (Table 4's setting)
and the codebook width whose overall ratio is nearest DeepSZ's, without Han et al.'s centroid
fine-tuning. Weightless: defaults, on every layer and on the largest layer only (as the paper
uses it), without Reagen et al.'s retraining. AlexNet/VGG-16 need ImageNet.
"""
import sys
import tempfile
from pathlib import Path

from deepsz_caffe.caffe import io as caffe_io
from deepsz_caffe.format import network as dsz
from deepsz_caffe.baselines import METHODS, evaluate_method
from deepsz_caffe.deepsz.probe import LayerProbe

from . import common

DC_BITS = 5                  # Deep Compression's fc codebook width (Han et al.; DeepSZ Table 4)
DC_SEARCH_BITS = (2, 3, 4)   # widths tried for the ratio nearest DeepSZ's


def _round_trip(method: str, layers: dict, only=None, **params) -> dict:
    """Every layer (or those in `only`) through `method`: evaluate_method's records, the decoded
    layers, and the overall ratio with uncompressed layers counted dense."""
    names = list(layers) if only is None else only
    records, decoded = [], {}
    for name in names:
        records.append(evaluate_method(method, layers[name], name, **params))
        m = METHODS[method]
        decoded[name] = m.decode(m.from_bytes(m.to_bytes(m.encode(layers[name], **params))))
    dense = sum(4 * w.size for w in layers.values())
    stored = sum(r["bytes"] for r in records) + sum(4 * layers[n].size for n in layers if n not in names)
    return {"ratio": dense / stored, "layers": [{k: r[k] for k in ("layer", "bytes", "max_abs_error")}
                                                for r in records],
            "params": records[0]["params"], "decoded": decoded}


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
            decoded = caffe_io.blobs(caffe_io.read_net(dsz.decode(stream, Path(work) / "decoded.caffemodel")))
            layers = probe.weights
            deepsz = {"ratio": dsz.inspect(stream)["ratio"], "params": summary["error_bounds"],
                      "decoded": {n: decoded[n][0] for n in probe.layers}}
            candidates = {bits: _round_trip("deep_compression", layers, bits=bits)
                          for bits in (DC_BITS, *DC_SEARCH_BITS)}
            near = min(DC_SEARCH_BITS, key=lambda b: abs(candidates[b]["ratio"] - deepsz["ratio"]))
            largest = max(layers, key=lambda n: layers[n].size)
            methods = {
                "deepsz": deepsz,
                f"deep_compression_{DC_BITS}": candidates[DC_BITS],
                f"deep_compression_{near}": candidates[near],
                "weightless": _round_trip("weightless", layers),
                "weightless_largest": _round_trip("weightless", layers, only=[largest]),
            }
            nets[net] = {"available": True, "top1_pruned": probe.base_top1,
                         "summary_top1_pruned": summary["top1_pruned"],
                         "summary_top1_decoded": summary["top1_decoded"], "largest": largest,
                         "methods": {k: _measure(probe, v) for k, v in methods.items()}}
    return {"nets": nets}


def _label(key: str, e: dict) -> str:
    if key == "deepsz":
        return "DeepSZ (decoded .dsz; bounds " + ", ".join(
            f"{n} {eb:g}" for n, eb in e["methods"][key]["params"].items()) + ")"
    if key.startswith("deep_compression_"):
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
            family = "deep_compression" if key.startswith("deep_compression") else key.split("_")[0]
            p = paper.get(family)
            lower = pv["lower_bound"].get(net, {}).get(family)
            ours = f"{m['degradation']:+.2f}"
            if key == "deepsz":
                ours += f" (summary.json: {e['summary_top1_pruned'] - e['summary_top1_decoded']:+.2f})"
            rows.append(["", _label(key, e), f"{m['ratio']:.1f}×", f"{m['top1']:.2f}%", ours,
                         ("> " if lower else "") + common.fmt(p, "+.2f")])
    md = ["# Table 5: top-1 degradation at comparable compression ratio (MNIST, Caffe)", "",
          common.markdown_table(header, rows), "",
          ("Degradation = top-1 of the pruned model - top-1 with every listed layer replaced by the "
           "method's decoded reconstruction, in points, over the 10,000 MNIST test images. Ratio = "
           "original fc weight bytes / stored bytes (layers a method leaves alone counted dense). "
           "The paper's numbers are repeated on every row of a method family."), "",
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
