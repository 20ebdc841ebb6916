"""What every table and figure script shares, so all of them look, behave and label alike.

Each script is `python -m experiments.<name> [--render-only] [--results DIR] [--figures DIR]`:
`compute(args)` measures and returns JSON-able data, saved to DIR/experiments/<name>.json;
`render(data, figures)` draws only from that data (and the paper's numbers,
deepsz_caffe.paper.values), so figures can be redrawn without recomputing.
"""
import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from deepsz_caffe import atomic, log, sparse
from deepsz_caffe.baselines.method import upgrade_ids
from deepsz_caffe.caffe.wire import read_caffemodel
from deepsz_caffe.paper import synthetic
from deepsz_caffe.deepsz import walk
from deepsz_caffe.deepsz.probe import LayerProbe
from deepsz_caffe.errors import DeepSZError
from deepsz_caffe.paper.values import paper_values  # noqa: F401  (the scripts' one source of paper numbers)
from deepsz_caffe.format.layer import DENSE_WARNING_DENSITY
from deepsz_caffe.style import COLORS, TITLES, markdown_table  # noqa: F401  (the scripts' names)
from deepsz_caffe.deepsz.prune import magnitude_masks

RESULTS = Path("results")
FIGURES = Path("figures")
MNIST_NETS = ("lenet300", "lenet5")
# 1..9 x 10^e for e = -4..-2, then 1e-1 and 2e-1: the paper's axis (its ip3 range ends at 2e-1).
SWEEP = [walk.bound(m, e) for e in (-4, -3, -2) for m in range(1, 10)] + [0.1, 0.2]

NETS = ("lenet300", "lenet5", "alexnet", "vgg16")
SYNTHETIC_LABEL = "synthetic weights of the real shapes"


# How a user produces the measured results a script reads, per net.
HOW_TO_RUN = {
    "lenet300": "deepsz reproduce --net lenet300",
    "lenet5": "deepsz reproduce --net lenet5",
    **{net: (f"deepsz compress --model prototxt/{net}/train_val.prototxt --weights "
             f"{net}_pruned.caffemodel --expected-loss 0.4 --work-dir results/{net} "
             f"-o results/{net}/{net}.dsz") for net in ("alexnet", "vgg16")},
}
IMAGENET_NOTE = ("AlexNet and VGG-16 need the ILSVRC2012 validation set as an LMDB at "
                 "data/ilsvrc12_val_lmdb and fc layers pruned to the paper's fractions "
                 "(deepsz prune --kept fc6=...,fc7=...,fc8=... with a solver for train_val.prototxt).")


def apply_style():
    """The Agg backend and one look for every figure; returns matplotlib.pyplot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({
        "font.size": 10, "axes.titlesize": 11, "axes.labelsize": 10, "legend.fontsize": 9,
        "xtick.labelsize": 9, "ytick.labelsize": 9, "figure.titlesize": 12,
        "axes.grid": True, "grid.alpha": 0.3, "axes.axisbelow": True,
        "axes.spines.top": False, "axes.spines.right": False,
        "savefig.dpi": 150, "savefig.bbox": "tight", "pdf.fonttype": 42,
    })
    return plt


_NO_STAMPS = {"png": {"Software": None}, "pdf": {"CreationDate": None, "Producer": None, "Creator": None}}


def save_figure(fig, name: str, figures=FIGURES) -> list[Path]:
    """Write figures/<name>.png and .pdf, each atomically; close the figure. No creation date or
    software version is embedded, so redrawing unchanged data gives identical files."""
    import matplotlib.pyplot as plt

    figures = Path(figures)
    figures.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in ("png", "pdf"):
        path = figures / f"{name}.{fmt}"
        with atomic.replacing(path) as tmp:
            fig.savefig(tmp, format=fmt, metadata=_NO_STAMPS[fmt])
        paths.append(path)
    plt.close(fig)
    return paths


def finish_figure(fig, name: str, figures, title: str, footnote: str = "", top: float = 0.95) -> list[Path]:
    """Every figure's ending: its title, a footnote under the axes (if any), a layout that keeps
    the area above `top` for the title and legend, then `save_figure`."""
    fig.suptitle(title)
    if footnote:
        fig.text(0.01, 0.0, footnote, fontsize=9, ha="left", va="top")
    fig.tight_layout(rect=(0, 0, 1, top))
    return save_figure(fig, name, figures)


def write_table(name: str, markdown: str, figures=FIGURES) -> Path:
    figures = Path(figures)
    figures.mkdir(parents=True, exist_ok=True)
    return atomic.write_text(figures / f"{name}.md", markdown.rstrip("\n") + "\n")


def fmt(value, spec: str = ".2f", suffix: str = "") -> str:
    """`value` formatted, or "-" when the paper or a run gives none."""
    return "-" if value is None else f"{value:{spec}}{suffix}"


def load_json(path):
    """A results record, with method ids older records spell otherwise made today's."""
    return upgrade_ids(json.loads(Path(path).read_text()))


def save_json(path, obj) -> Path:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return atomic.write_json(path, obj)


def probe_for(net: str, results, work_dir) -> LayerProbe:
    """A LayerProbe of a LeNet's measured run (`deepsz reproduce`): its runtime prototxt and
    pruned caffemodel under results/<net>/."""
    root = Path(results) / net
    return LayerProbe(root / "prototxt" / "train_test.prototxt", root / "pruned.caffemodel", work_dir)


def measured_nets(results):
    """(net, summary, assessment points, LayerProbe) per MNIST net with a measured run, or
    (net, None, None, None) without one; each probe's scratch directory lives until the next."""
    for net in MNIST_NETS:
        summary = measured_summary(net, results)
        compressed = Path(results) / net / "compress.json"
        if summary is None or not compressed.is_file():
            yield net, None, None, None
            continue
        with tempfile.TemporaryDirectory() as work:
            yield net, summary, load_json(compressed)["assessment"], probe_for(net, results, work)


def data_path(name: str, results=RESULTS) -> Path:
    return Path(results) / "experiments" / f"{name}.json"


def measured_summary(net: str, results=RESULTS) -> dict | None:
    """A net's end-to-end DeepSZ record: results/<net>/summary.json (`deepsz reproduce`) or
    results/<net>/compress.json (`deepsz compress --work-dir results/<net>`); None, after
    printing how to produce it, when neither exists."""
    for name in ("summary.json", "compress.json"):
        path = Path(results) / net / name
        if path.is_file():
            return load_json(path)
    note = f". {IMAGENET_NOTE}" if net in ("alexnet", "vgg16") else ""
    print(f"[{net}] no results under {Path(results) / net}: run {HOW_TO_RUN[net]}{note}")
    return None


def add_weights_arguments(parser) -> None:
    """Flags of the scripts that work on pruned fc layers (see `fc_layers`)."""
    for net in ("alexnet", "vgg16"):
        parser.add_argument(f"--{net}-weights", metavar="CAFFEMODEL",
                            help=f"real {TITLES[net]} weights (e.g. BVLC's); dense fc layers are "
                                 f"pruned to the paper's fractions. Default: {SYNTHETIC_LABEL}")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic layers")


def fc_layers(net: str, args) -> dict:
    """The pruned fc weight blobs of `net` and where they come from: {"source", "synthetic",
    "layers": {name: array}}. LeNets: results/<net>/pruned.caffemodel; AlexNet/VGG-16: the
    caffemodel given with --<net>-weights; otherwise synthetic layers of the real shapes."""
    path = getattr(args, f"{net}_weights", None)
    if path is None and net in ("lenet300", "lenet5"):
        pruned = Path(args.results) / net / "pruned.caffemodel"
        if pruned.is_file():
            path = pruned
        else:
            print(f"[{net}] {pruned} missing (run {HOW_TO_RUN[net]}); using {SYNTHETIC_LABEL}")
    if path is None:
        return {"source": f"{SYNTHETIC_LABEL} (Gaussian, std sqrt(1/fan_in), magnitude-pruned to "
                          f"the paper's fractions, seed {args.seed})",
                "synthetic": True, "layers": synthetic.pruned_net(net, args.seed)}
    blobs = read_caffemodel(path)[0]
    layers = {}
    for name, shape in synthetic.FC_SHAPES[net].items():
        if name not in blobs or blobs[name][0].shape != shape:
            raise DeepSZError(f"{path}: no {TITLES[net]} fc layer '{name}' of shape {shape}")
        layers[name] = blobs[name][0]
    dense = {n: synthetic.PAPER_KEPT[net][n] for n, w in layers.items()
             if np.count_nonzero(w) > DENSE_WARNING_DENSITY * w.size}
    masks = magnitude_masks(layers, dense)
    layers = {n: w * masks[n] if n in masks else w for n, w in layers.items()}
    source = f"real fc blobs of {path}"
    if dense:
        source += f" ({', '.join(dense)} magnitude-pruned here to the paper's fractions, no retraining)"
    return {"source": source, "synthetic": False, "layers": layers}


def sparse_fc_layers(args) -> dict:
    """{net: {"source", "synthetic", "layers": {name: SparseLayer}}} for every net (see fc_layers)."""
    out = {}
    for net in NETS:
        src = fc_layers(net, args)
        out[net] = {**src, "layers": {n: sparse.to_sparse(w) for n, w in src["layers"].items()}}
    return out


def layer_groups(nets: dict) -> tuple[list[str], list[tuple[str, int, int]], list[str]]:
    """For bar charts over every fc layer of `nets` ({net: {"synthetic", "layers": [{"name"}]}}):
    the layer names, the (net title, first, last + 1) span of each net (synthetic ones starred),
    and the footnote the star needs."""
    labels, groups, start = [], [], 0
    for net, e in nets.items():
        labels += [layer["name"] for layer in e["layers"]]
        groups.append((TITLES[net] + ("*" if e["synthetic"] else ""), start, len(labels)))
        start = len(labels)
    notes = [f"* {SYNTHETIC_LABEL} (no trained weights here)"] if any(
        e["synthetic"] for e in nets.values()) else []
    return labels, groups, notes


def grouped_bars(ax, labels: list[str], series: dict[str, list[float]], names: dict[str, str],
                 groups: list[tuple[str, int, int]] = ()) -> None:
    """One group of bars per label, one bar per series key coloured by COLORS[key]; a thin line
    between `groups` (see layer_groups)."""
    width = 0.8 / len(series)
    x = np.arange(len(labels))
    for i, (key, values) in enumerate(series.items()):
        ax.bar(x + (i - (len(series) - 1) / 2) * width, values, width, label=names[key],
               color=COLORS[key])
    for _, _, stop in groups[:-1]:
        ax.axvline(stop - 0.5, color="0.6", linewidth=0.8)
    ax.set_xticks(x, labels)
    ax.set_xlim(-0.6, len(labels) - 0.4)


def label_groups(ax, groups: list[tuple[str, int, int]]) -> None:
    """Write each group's name centred under its tick labels (call on the bottom axes)."""
    transform = ax.get_xaxis_transform()
    for title, start, stop in groups:
        ax.text((start + stop - 1) / 2, -0.16, title, transform=transform, ha="center", va="top",
                fontweight="bold")


def human_bytes(n: float) -> str:
    """1500 -> "1.5 kB" (decimal units, as the paper)."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:g} {unit}"
    return f"{n:g} B"


def plain_log_axis(ax, subs=(1.0, 2.0, 3.0, 5.0), label=lambda v: f"{v:g}") -> None:
    """Log-scale y with ticks at `subs` x 10^k labelled `label(v)` (plain 2, 5, 10 by default,
    never 2x10^0)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(subs=subs))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: label(v)))
    ax.yaxis.set_minor_formatter(NullFormatter())


def main(name: str, compute, render, argv=None, add_arguments=None, description=None) -> None:
    """The command line every experiment script shares."""
    parser = argparse.ArgumentParser(prog=f"python -m experiments.{name}", description=description)
    parser.add_argument("--render-only", action="store_true",
                        help=f"redraw from RESULTS/experiments/{name}.json without recomputing")
    parser.add_argument("--results", type=Path, default=RESULTS,
                        help="results directory (default: results)")
    parser.add_argument("--figures", type=Path, default=FIGURES,
                        help="tables and figures directory (default: figures)")
    if add_arguments:
        add_arguments(parser)
    args = parser.parse_args(argv)
    log.configure()  # the library's stage lines and bars, as the CLI shows them
    path = data_path(name, args.results)
    try:
        if args.render_only:
            if not path.is_file():
                raise SystemExit(f"error: {path} does not exist; run `python -m experiments.{name}` "
                                 "(without --render-only) to compute it first")
            data = load_json(path)
        else:
            data = compute(args)
            save_json(path, data)
            print(f"wrote {path}")
        for out in render(data, args.figures):
            print(f"wrote {out}")
    except DeepSZError as e:
        raise SystemExit(f"error: {e}") from None
