"""Beyond the paper: the "paper" and "best" presets side by side, and every training seed tried.

Reads the end-to-end MNIST runs (`deepsz reproduce --net NET [--preset best] [--seed S
--results results/seeds/seedS]`): results/<net>/summary[-best].json and
results/seeds/seed*/<net>/summary[-best].json. Nothing is recomputed here.
"""
from pathlib import Path

from experiments import common

PRESETS = {"paper": "summary.json", "best": "summary-best.json"}
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
                        "layers": [{k: m[k] for k in ("name", "error_bound", "lossy_codec", "index_codec",
                                                      "data_bytes", "index_bytes", "nnz", "ratio")}
                                   for m in s["layers"]],
                    })
    return runs


def compute(args) -> dict:
    runs = _runs(args.results)
    if not runs:
        raise SystemExit("error: no results/<net>/summary*.json: run `make reproduce` first")
    return {"runs": runs, "targets": TARGETS}


def render(data: dict, figures) -> list[Path]:
    paper = common.paper_values()["table3"]["nets"]
    header = ["net", "seed", "preset", "fc ratio", "ratio incl. biases", "top-1 pruned -> DeepSZ",
              "actual / expected loss", "rounds", "per layer: eb, coder (data + index bits/nnz)"]
    rows = []
    for r in sorted(data["runs"], key=lambda r: (r["net"], r["seed"], r["preset"])):
        layers = "; ".join(f"{m['name']} {m['error_bound']:g} {m['lossy_codec']}+{m['index_codec']} "
                           f"({8 * m['data_bytes'] / m['nnz']:.2f} + {8 * m['index_bytes'] / m['nnz']:.2f})"
                           for m in r["layers"])
        rows.append([common.TITLES[r["net"]], r["seed"], r["preset"], f"{r['ratio']:.1f}×",
                     f"{r['ratio_with_biases']:.1f}×",
                     f"{r['top1_pruned']:.2f}% -> {r['top1_decoded']:.2f}%",
                     f"{r['actual_loss']:.2f} / {r['expected_loss']:g}", r["rounds"], layers])
    lines = ["# Presets and seeds (measured end to end on MNIST with Caffe)", "",
             "`paper` = SZ2 + best of gzip/zstd/blosc (DeepSZ as published); `best` = SZ2, SZ3 and "
             "prediction-free quantisation for data, plus the context-modelled index coder; each layer "
             "gets the coder Algorithm 2 picks. Ratio = fc weight bytes / compressed bytes, as the "
             "paper. Every actual loss is measured by Caffe on the decoded .caffemodel (10,000 test "
             "images).", "", common.markdown_table(header, rows), ""]
    for net, target in data["targets"].items():
        best = [r["ratio"] for r in data["runs"] if r["net"] == net and r["preset"] == "best"]
        paper_ratio = paper[net]["deepsz"]["ratio"]
        if best:
            lines.append(f"- {common.TITLES[net]}: `best` preset {min(best):.1f}×-{max(best):.1f}× over "
                         f"{len(best)} seed(s) (issue target >= {target:g}×; paper {paper_ratio}×).")
    return [common.write_table("presets_seeds", "\n".join(lines) + "\n", figures)]


def main(argv=None):
    common.main("presets_seeds", compute, render, argv, description=__doc__.splitlines()[0])


if __name__ == "__main__":
    main()
