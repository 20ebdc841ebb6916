"""Beyond the paper: rate vs accuracy of DeepSZ (both presets), Deep Compression, Weightless and
NNCodec on both LeNets, and their encode/decode times, from `deepsz compare`.

Reads results/compare/<net>.json (written by `deepsz compare --net <net>`); a net without one, or
with one of other pruned weights or older than DeepSZ's runs (summary*.json), is compared here
with the default methods (NNCodec skipped, with its reason, when .venv-nncodec is absent). Needs
the measured runs of `deepsz reproduce` (pruned models, summary*.json).
"""
import sys
from pathlib import Path

from deepsz_caffe.baselines import compare, report
from deepsz_caffe.digest import sha256_file
from deepsz_caffe.errors import ConfigError

from . import common


def _current(path: Path, weights: Path) -> bool:
    """The record exists, is of these pruned weights and is newer than DeepSZ's runs."""
    if not path.is_file():
        return False
    runs = [r.stat().st_mtime for r in weights.parent.glob("summary*.json")]
    return (common.load_json(path).get("weights_sha256") == sha256_file(weights)
            and path.stat().st_mtime >= max(runs, default=0))


def compute(args) -> dict:
    nets = {}
    for net in common.MNIST_NETS:
        path = Path(args.results) / "compare" / f"{net}.json"
        try:
            model, weights = compare.net_files(net, args.results)
        except ConfigError as why:
            if path.is_file():  # no pruned model here to check the record against: take it as is
                nets[net] = common.load_json(path)
            else:
                print(f"[{net}] {why}", file=sys.stderr)
            continue
        if not _current(path, weights):
            print(f"[{net}] {path} missing or older than the pruned model / DeepSZ's runs: comparing",
                  file=sys.stderr)
            methods = compare.load_methods(list(compare.DEFAULT_METHODS))
            compare.write(compare.compare(model, weights, methods, net=net, results=args.results), path)
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
