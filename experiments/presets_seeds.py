"""Beyond the paper: the "paper", "best" and "max" presets side by side, and every training seed tried.

LeNets: reads the end-to-end MNIST runs (`deepsz reproduce --net NET [--preset best] [--seed S
--results results/seeds/seedS]`): results/<net>/summary[-best|-max].json and
results/seeds/seed*/<net>/summary[-best|-max].json; nothing is recomputed for them.
AlexNet / VGG-16: their fc layers (see common.fc_layers: synthetic unless --<net>-weights) are
encoded under each preset at the paper's bounds (section 5.2.2), giving bits per nonzero for the
data and the index arrays. Without ImageNet no accuracy is measured, so `best` gives each layer
the smallest of its coders at that same bound (what Algorithm 2 picks when drops tie).
"""
from pathlib import Path

from deepsz_caffe.paper import synthetic
from deepsz_caffe.format.layer import encode_layer
from deepsz_caffe.presets import PRESETS as CODEC_PRESETS
from experiments import common

PRESETS = {"paper": "summary.json", "best": "summary-best.json", "max": "summary-max.json"}
TARGETS = {"lenet300": 61.0, "lenet5": 63.0}  # issue targets for the "best" preset (fc ratio)


def _runs(results: Path) -> list[dict]:
    roots = [results] + sorted((results / "seeds").glob("seed*"))
    runs = []
    for root in roots:
        for net in ("lenet300", "lenet5"):
            for preset, name in PRESETS.items():
                path = root / net / name
                if path.is_file():
                    s = common.load_json(path)
                    runs.append({
                        "net": net, "preset": preset, "seed": s["seed"], "source": str(path),
                        "ratio": s["ratio"], "ratio_with_biases": s["ratio_with_biases"],
                        "top1_original": s["top1_original"], "top1_pruned": s["top1_pruned"],
                        "top1_decoded": s["top1_decoded"], "expected_loss": s["expected_loss"],
                        "actual_loss": s["actual_loss"], "rounds": s["rounds"],
                        "plan": s.get("plan", "literal"),  # runs from before the planner choice
                        "layers": [{k: m[k] for k in ("name", "error_bound", "lossy_codec", "index_codec",
                                                      "data_bytes", "index_bytes", "nnz", "ratio")}
                                   for m in s["layers"]],
                    })
    return runs


def _large_nets(args) -> dict:
    """{net: {"source", "presets": {preset: [per-layer sizes]}}} at the paper's bounds."""
    nets = {}
    for net in ("alexnet", "vgg16"):
        src = common.fc_layers(net, args)
        presets = {}
        for preset, codecs in CODEC_PRESETS.items():
            layers = []
            for name, w in src["layers"].items():
                print(f"[presets_seeds] {common.TITLES[net]} {name} preset {preset}")
                m = encode_layer(w, synthetic.PAPER_ERROR_BOUNDS[net][name], lossy=codecs.lossy,
                                 lossless=codecs.lossless).meta
                layers.append({"name": name, **{k: m[k] for k in (
                    "nnz", "dense_bytes", "error_bound", "lossy_codec", "index_codec", "data_bytes",
                    "index_bytes")}})
            presets[preset] = layers
        nets[net] = {"source": src["source"], "presets": presets}
    return nets


def compute(args) -> dict:
    runs = _runs(args.results)
    if not runs:
        raise SystemExit("error: no results/<net>/summary*.json: run `make reproduce` first")
    return {"runs": runs, "targets": TARGETS, "large_nets": _large_nets(args)}


def _large_table(nets: dict) -> list[str]:
    measured = list(next(iter(nets.values()))["presets"])  # the presets these results hold
    header = ["net", "layer", "eb"] + [f"`{p}`: {col}" for p in measured
                                       for col in ("coders", "data + index bits/nnz", "ratio")]
    rows = []
    for net, entry in nets.items():
        by_preset = entry["presets"]
        first = next(iter(by_preset.values()))
        for i in range(len(first) + 1):  # each layer, then the net overall
            overall = i == len(first)
            row = [common.TITLES[net], "overall" if overall else first[i]["name"],
                   "" if overall else f"{first[i]['error_bound']:g}"]
            for layers in by_preset.values():
                sel = layers if overall else [layers[i]]
                nnz = sum(m["nnz"] for m in sel)
                data, index = sum(m["data_bytes"] for m in sel), sum(m["index_bytes"] for m in sel)
                row += ["" if overall else f"{sel[0]['lossy_codec']}+{sel[0]['index_codec']}",
                        f"{8 * data / nnz:.2f} + {8 * index / nnz:.2f}",
                        f"{sum(m['dense_bytes'] for m in sel) / (data + index):.1f}×"]
            rows.append(row)
    sources = sorted({f"{common.TITLES[n]}: {e['source']}" for n, e in nets.items()})
    return ["## AlexNet and VGG-16 fc layers under each preset", "",
            "At the paper's error bounds (section 5.2.2); no accuracy is measured here (no ImageNet), "
            "so `best` gives each layer the smallest of its coders at the same bound. Bits per nonzero "
            "= 8 x bytes / nonzero weights.", "", common.markdown_table(header, rows), "",
            *[f"- {s}" for s in sources], ""]


def render(data: dict, figures) -> list[Path]:
    paper = common.paper_values()["table3"]["nets"]
    header = ["net", "seed", "preset", "fc ratio", "ratio incl. biases", "top-1 pruned -> DeepSZ",
              "actual / expected loss", "rounds (plan)", "per layer: eb, coder (data + index bits/nnz)"]
    rows = []
    for r in sorted(data["runs"], key=lambda r: (r["net"], r["seed"], r["preset"])):
        layers = "; ".join(f"{m['name']} {m['error_bound']:g} {m['lossy_codec']}+{m['index_codec']} "
                           f"({8 * m['data_bytes'] / m['nnz']:.2f} + {8 * m['index_bytes'] / m['nnz']:.2f})"
                           for m in r["layers"])
        rows.append([common.TITLES[r["net"]], r["seed"], r["preset"], f"{r['ratio']:.1f}×",
                     f"{r['ratio_with_biases']:.1f}×",
                     f"{r['top1_pruned']:.2f}% -> {r['top1_decoded']:.2f}%",
                     f"{r['actual_loss']:.2f} / {r['expected_loss']:g}",
                     f"{r['rounds']} ({r.get('plan', 'literal')})", layers])
    lines = ["# Presets and seeds (measured end to end on MNIST with Caffe)", "",
             "`paper` = SZ2 + best of gzip/zstd/blosc (DeepSZ as published); `best` = SZ2, SZ3 and "
             "prediction-free quantisation for data, plus the context-modelled index coder; each layer "
             "gets the coder Algorithm 2 picks. Ratio = fc weight bytes / compressed bytes, as the "
             "paper. Every actual loss is measured by Caffe on the decoded .caffemodel (10,000 test "
             "images). `max` adds `zquant`: kept weights within the bound of 0 are coded as pruned "
             "(docs/nncodec-challenge.md).", "", common.markdown_table(header, rows), ""]
    for net, target in data["targets"].items():
        best = [r["ratio"] for r in data["runs"] if r["net"] == net and r["preset"] == "best"]
        paper_ratio = paper[net]["deepsz"]["ratio"]
        if best:
            lines.append(f"- {common.TITLES[net]}: `best` preset {min(best):.1f}×-{max(best):.1f}× over "
                         f"{len(best)} seed(s) (issue target >= {target:g}×; paper {paper_ratio}×).")
    lines += [""] + _large_table(data["large_nets"])
    return [common.write_table("presets_seeds", "\n".join(lines) + "\n", figures)]


def main(argv=None):
    common.main("presets_seeds", compute, render, argv, add_arguments=common.add_weights_arguments,
                description=__doc__.splitlines()[0])


if __name__ == "__main__":
    main()
