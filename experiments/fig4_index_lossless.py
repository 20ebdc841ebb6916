"""Figure 4: size of each fc layer's index array under the lossless codecs gzip, zstd and blosc.

The index array holds one uint8 gap per stored entry (fillers included); it must be stored
losslessly. Codec settings are deepsz_caffe.codecs.lossless's (gzip 9, zstd 19, blosc-zstd 9).
Bits per nonzero = 8 x compressed bytes / nonzero weights; uncompressed it is 8 x entries / nnz.
Layers as in Figure 2 (see common.fc_layers).
"""
from deepsz_caffe.codecs.lossless import PAPER_INDEX_CODECS, compress_index

from . import common

NAMES = {"gzip": "gzip", "zstd": "Zstandard", "blosc": "Blosc"}


def compute(args) -> dict:
    nets = {}
    for net, src in common.sparse_fc_layers(args).items():
        layers = []
        for name, sp in src["layers"].items():
            raw = sp.index.tobytes()
            layers.append({"name": name, "nnz": sp.nnz, "n_entries": sp.n_entries,
                           "bytes": {c: len(compress_index(raw, c)[1]) for c in PAPER_INDEX_CODECS}})
        nets[net] = {"source": src["source"], "synthetic": src["synthetic"], "layers": layers}
    return {"codecs": list(PAPER_INDEX_CODECS), "nets": nets}


def _layers(data: dict) -> list[dict]:
    return [layer for e in data["nets"].values() for layer in e["layers"]]


def render(data: dict, figures=common.FIGURES) -> list:
    plt = common.apply_style()
    paper = common.paper_values()["figure4"]
    codecs = data["codecs"]
    names = {c: NAMES[c] for c in codecs}
    labels, groups, notes = common.layer_groups(data["nets"])
    layers = _layers(data)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 7.5), sharex=True)
    common.grouped_bars(top, labels, {c: [r["bytes"][c] for r in layers] for c in codecs}, names,
                        groups)
    common.plain_log_axis(top, subs=(1.0,), label=common.human_bytes)
    top.set_ylabel("compressed index array\n(log scale)")
    top.set_title("size of the index array", loc="left")
    common.grouped_bars(bottom, labels, {c: [8 * r["bytes"][c] / r["nnz"] for r in layers]
                                         for c in codecs}, names, groups)
    raw = [8 * r["n_entries"] / r["nnz"] for r in layers]
    bottom.scatter(range(len(layers)), raw, marker="_", s=400, color="black", zorder=3,
                   label="uncompressed (8 bits per entry)")
    bottom.set_ylabel("bits per nonzero weight")
    bottom.set_title("bits per nonzero weight (black: uncompressed)", loc="left")
    common.label_groups(bottom, groups)
    handles, legend = bottom.get_legend_handles_labels()
    fig.legend(handles, legend, ncol=len(handles), loc="upper center", bbox_to_anchor=(0.5, 0.96))
    outputs = common.finish_figure(
        fig, "fig4_index_lossless", figures,
        "Figure 4 (reproduced): lossless compression of the fc layers' index arrays", " ".join(notes),
        top=0.94)

    header = ["network", "layer", "nonzeros", "entries (raw bytes)",
              *(f"{names[c]} bytes (bits/nnz)" for c in codecs), "smallest"]
    rows, best = [], []
    for net, e in data["nets"].items():
        for r in e["layers"]:
            winner = min(codecs, key=lambda c: r["bytes"][c])
            best.append(winner)
            rows.append([common.TITLES[net] + (" (synthetic)" if e["synthetic"] else ""), r["name"],
                         r["nnz"], r["n_entries"],
                         *(f"{r['bytes'][c]} ({8 * r['bytes'][c] / r['nnz']:.2f})" for c in codecs),
                         names[winner]])
    counts = ", ".join(f"{names[c]} {best.count(c)}" for c in codecs)
    sources = [f"- {common.TITLES[net]}: {e['source']}" for net, e in data["nets"].items()]
    md = ["# Figure 4: lossless compression of the index arrays", "",
          common.markdown_table(header, rows), "",
          (f"Smallest per layer: {counts} (of {len(best)} layers). Paper ({paper['source']}): "
           f"{paper['claim']}"), "", "Weights:", "", *sources]
    return outputs + [common.write_table("fig4_index_lossless", "\n".join(md), figures)]


def main(argv=None) -> None:
    common.main("fig4_index_lossless", compute, render, argv,
                add_arguments=common.add_weights_arguments, description=__doc__.splitlines()[0])


if __name__ == "__main__":
    main()
