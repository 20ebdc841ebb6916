"""Table 3: top-1 (and top-5) accuracy of the original and DeepSZ-compressed nets, fc size, ratio.

Only measured runs are reported: results/<net>/summary.json (`deepsz reproduce`, the LeNets) or
results/<net>/compress.json (`deepsz compress --work-dir results/<net>`, e.g. AlexNet/VGG-16 with
an ImageNet validation LMDB). A net without results gets a row saying what to run.
"""
from . import common

UNITS = {"KB": 1e3, "MB": 1e6}


def compute(args) -> dict:
    nets = {}
    for net in common.NETS:
        s = common.measured_summary(net, args.results)
        if s is None:
            nets[net] = {"available": False, "how_to_run": common.HOW_TO_RUN[net]}
            continue
        nets[net] = {
            "available": True,
            # compress.json knows no unpruned net (its reference is the pruned input): None
            "top1_original": s.get("top1_original"), "top1_pruned": s["top1_pruned"],
            "top1_decoded": s["top1_decoded"],
            # top-5 only where a run recorded it (pipeline.compress keeps top-1 only today)
            "top5_original": s.get("top5_original"), "top5_pruned": s.get("top5_pruned"),
            "top5_decoded": s.get("top5_decoded"),
            "fc_weight_bytes": s["fc_weight_bytes"], "fc_compressed_bytes": s["fc_compressed_bytes"],
            "ratio": s["ratio"], "expected_loss": s["expected_loss"], "actual_loss": s["actual_loss"],
            "error_bounds": s["error_bounds"],
            "plan": s.get("plan", "literal"),  # runs from before the planner choice were literal
        }
    return {"nets": nets}


def _row(title: str, model: str, ours: dict, theirs: dict | None, unit: str) -> list:
    """One table row; `ours` and `theirs` hold top1, top5 (%), fc_size (in `unit`) and ratio."""
    theirs = theirs or {}

    def pct(v):
        return common.fmt(v, ".2f", "%")

    def size(v):
        return common.fmt(v, ".4g", f" {unit}")

    return [title, model, pct(ours.get("top1")), pct(theirs.get("top1")), pct(ours.get("top5")),
            pct(theirs.get("top5")), size(ours.get("fc_size")), size(theirs.get("fc_size")),
            common.fmt(ours.get("ratio"), ".1f", "×"), common.fmt(theirs.get("ratio"), "g", "×")]


def render(data: dict, figures=common.FIGURES) -> list:
    paper = common.paper_values()["table3"]
    header = ["network", "model", "top-1 ours", "top-1 paper", "top-5 ours", "top-5 paper",
              "fc size ours", "fc size paper", "ratio ours", "ratio paper"]
    rows, todo = [], []
    for net in (n for n in common.NETS if n in data["nets"]):
        e, p = data["nets"][net], paper["nets"][net]
        unit, title = p["unit"], common.TITLES[net]
        if not e["available"]:
            need = "needs ImageNet" if net in ("alexnet", "vgg16") else "not run yet"
            rows.append(_row(title, f"original ({need}, see below)", {}, p["original"], unit))
            todo.append(f"- {title}: `{e['how_to_run']}`")
            rows.append(_row(title, "DeepSZ", {}, p["deepsz"], unit))
            continue
        fc = e["fc_weight_bytes"] / UNITS[unit]
        has_original = e["top1_original"] is not None
        if has_original:
            rows.append(_row(title, "original", {"top1": e["top1_original"], "top5": e["top5_original"],
                                                 "fc_size": fc}, p["original"], unit))
        rows.append(_row(title, "pruned (DeepSZ input)",
                         {"top1": e["top1_pruned"], "top5": e["top5_pruned"], "fc_size": fc},
                         None if has_original else p["original"], unit))
        bounds = ", ".join(f"{k} {v:g}" for k, v in e["error_bounds"].items())
        rows.append(_row(title, f"DeepSZ (decoded .dsz; Algorithm 2 {e.get('plan', 'literal')}; "
                                f"bounds {bounds}; loss {e['actual_loss']:.2f} "
                                f"of {e['expected_loss']} allowed)",
                         {"top1": e["top1_decoded"], "top5": e["top5_decoded"],
                          "fc_size": e["fc_compressed_bytes"] / UNITS[unit], "ratio": e["ratio"]},
                         p["deepsz"], unit))
    md = ["# Table 3: inference accuracy of DeepSZ-compressed nets (ours measured with Caffe)", "",
          common.markdown_table(header, rows), "",
          *(["To fill the empty rows:", "", *todo, "", common.IMAGENET_NOTE, ""] if todo else []),
          "Accuracies are full Caffe TEST passes (MNIST: 10,000 test images; ImageNet: the 50,000 "
          "validation images). 'pruned' is the net DeepSZ compresses; the loss is measured against it. "
          "fc size = fc weights only (KB = 10^3 B, MB = 10^6 B); ratio = fc weights / DeepSZ bytes. "
          f"Paper: {paper['source']}. " + " ".join(paper["notes"])]
    return [common.write_table("table3_accuracy", "\n".join(md), figures)]


def main(argv=None) -> None:
    common.main("table3_accuracy", compute, render, argv, description=__doc__.splitlines()[0])


if __name__ == "__main__":
    main()
