"""Figure 2: compression ratio of SZ2 vs ZFP (and SZ3) on every fc layer's data array.

The data array is the float32 array of nonzero weights (fillers included) of a pruned layer,
compressed as 1-D data at absolute error bounds 1e-2, 1e-3 and 1e-4; every stream is decoded
again and checked against its bound. Ratio = 4 B x values / compressed bytes. LeNets: their
pruned caffemodels from `deepsz reproduce`; AlexNet/VGG-16: see common.fc_layers (synthetic
unless --alexnet-weights / --vgg16-weights).
"""
import sys

from deepsz_caffe.codecs import compress_bounded, get_lossy

from . import common

CODECS = {"sz2": "SZ 2 (DeepSZ)", "zfp": "ZFP", "sz3": "SZ 3"}


def compute(args) -> dict:
    bounds = common.paper_values()["figure2"]["error_bounds"]
    nets = {}
    for net, src in common.sparse_fc_layers(args).items():
        layers = []
        for name, sp in src["layers"].items():
            print(f"[fig2] {common.TITLES[net]} {name}: {sp.n_entries} values", file=sys.stderr)
            sizes = {codec: {f"{eb:g}": len(compress_bounded(get_lossy(codec), sp.data, eb))
                             for eb in bounds} for codec in CODECS}
            layers.append({"name": name, "n_values": sp.n_entries, "raw_bytes": 4 * sp.n_entries,
                           "bytes": sizes})
        nets[net] = {"source": src["source"], "synthetic": src["synthetic"], "layers": layers}
    return {"error_bounds": bounds, "nets": nets}


def _ratios(data: dict, codec: str, eb: float) -> list[float]:
    return [layer["raw_bytes"] / layer["bytes"][codec][f"{eb:g}"]
            for e in data["nets"].values() for layer in e["layers"]]


def render(data: dict, figures=common.FIGURES) -> list:
    plt = common.apply_style()
    paper = common.paper_values()["figure2"]
    labels, notes = common.layer_groups(data["nets"])
    bounds = data["error_bounds"]
    fig, axes = plt.subplots(len(bounds), 1, figsize=(11, 3.2 * len(bounds)), sharex=True)
    for ax, eb in zip(axes, bounds):
        common.grouped_bars(ax, labels, {c: _ratios(data, c, eb) for c in CODECS}, CODECS)
        ax.set_yscale("log")
        ax.set_ylabel("compression ratio\n(log scale)")
        ax.set_title(f"absolute error bound {eb:g}", loc="left")
    axes[0].legend(ncol=len(CODECS), loc="upper right")
    fig.suptitle("Figure 2 (reproduced): SZ vs ZFP on the fc layers' data arrays")
    if notes:
        fig.text(0.01, -0.01, " ".join(notes), fontsize=9, ha="left", va="top")
    fig.tight_layout()
    outputs = common.save_figure(fig, "fig2_sz_vs_zfp", figures)

    header = ["network", "layer", "values", *(f"eb {eb:g}: SZ2 / ZFP / SZ3" for eb in bounds)]
    rows, wins, total = [], 0, 0
    for net, e in data["nets"].items():
        for layer in e["layers"]:
            cells = []
            for eb in bounds:
                r = {c: layer["raw_bytes"] / layer["bytes"][c][f"{eb:g}"] for c in CODECS}
                wins += r["sz2"] > r["zfp"]
                total += 1
                cells.append(" / ".join(f"{r[c]:.1f}" for c in CODECS))
            title = common.TITLES[net] + (" (synthetic)" if e["synthetic"] else "")
            rows.append([title, layer["name"], layer["n_values"], *cells])
    sources = [f"- {common.TITLES[net]}: {e['source']}" for net, e in data["nets"].items()]
    md = ["# Figure 2: compression ratio of the fc data arrays, SZ2 vs ZFP (and SZ3)", "",
          common.markdown_table(header, rows), "",
          f"SZ2 beats ZFP in {wins} of {total} (layer, bound) cases. Paper ({paper['source']}): "
          f"{paper['claim']}", "", "Weights:", "", *sources]
    return outputs + [common.write_table("fig2_sz_vs_zfp", "\n".join(md), figures)]


if __name__ == "__main__":
    common.main("fig2_sz_vs_zfp", compute, render, add_arguments=common.add_weights_arguments,
                description=__doc__.splitlines()[0])
