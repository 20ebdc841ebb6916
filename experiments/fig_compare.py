"""Beyond the paper: rate vs accuracy of DeepSZ (both presets), Deep Compression, Weightless and
NNCodec on both LeNets, and their encode/decode times, from `deepsz compare`.

Reads results/compare/<net>.json (written by `deepsz compare --net <net>`); a net without one is
compared here with the default methods (NNCodec skipped, with its reason, when .venv-nncodec is
absent). Needs the measured runs of `deepsz reproduce` (pruned models, summary*.json).
"""
import sys
from pathlib import Path

from deepsz_caffe.baselines import compare, report
from deepsz_caffe.errors import ConfigError

from . import common


def compute(args) -> dict:
    nets = {}
    for net in common.MNIST_NETS:
        path = Path(args.results) / "compare" / f"{net}.json"
        if not path.is_file():
            try:
                model, weights = compare.net_files(net, args.results)
            except ConfigError as why:
                print(f"[{net}] {why}", file=sys.stderr)
                continue
            methods = compare.load_methods(list(compare.DEFAULT_METHODS))
            compare.write(compare.compare(model, weights, methods, net=net, results=args.results,
                                          log=lambda m: print(m, file=sys.stderr)), path)
        nets[net] = common.load_json(path)
    return {"nets": nets}


def render(data: dict, figures=common.FIGURES) -> list:
    nets = data["nets"]
    if not nets:
        return [common.write_table("fig_compare", "# Rate vs accuracy\n\nNot run yet: "
                                   + "; ".join(f"`{common.HOW_TO_RUN[n]}`" for n in common.MNIST_NETS),
                                   figures)]
    out = [common.write_table("fig_compare", report.markdown(nets), figures)]
    plt = common.apply_style()
    fig = report.figure(nets, plt)
    out += common.finish_figure(
        fig, "fig_compare", figures, "Rate vs accuracy on the same pruned nets (Caffe, full test set)",
        footnote=("Top: loss of top-1 in points (linear below 1, log above, clipped at 10) vs fc "
                  "ratio of the whole file;\n★ the point each method is compared at. Bottom: wall "
                  "time at that point (DeepSZ: final encode only; NNCodec: child process included)."),
        top=0.88)
    return out


def main(argv=None) -> None:
    common.main("fig_compare", compute, render, argv, description=__doc__.splitlines()[0])


if __name__ == "__main__":
    main()
