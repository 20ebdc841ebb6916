"""Whole LeNet-5 DeepSZ encode (assess + optimise + generate + verify) with 1 and 2 workers.

Paper (section 5.2.3): under a minute on 4 V100 GPUs. Goal here: <= 60 s on 2 CPU cores.
Each run starts from an empty work directory (no assessment cache). Needs results/lenet5/
(`make reproduce-lenet5`).

    GLOG_minloglevel=2 .venv/bin/python -m benchmarks.encode_lenet5 [--workers 1 2]
"""
import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("GLOG_minloglevel", "2")
ROOT = Path(__file__).resolve().parents[1]

from deepsz_caffe import atomic, log, timing
from deepsz_caffe.deepsz.pipeline import compress


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--expected-loss", type=float, default=0.2)
    p.add_argument("--out", default=str(ROOT / "results/bench/encode_lenet5.json"))
    a = p.parse_args(argv)
    log.configure()  # the library's stage lines and progress bars, as the CLI shows them
    model = ROOT / "results/lenet5/prototxt/train_test.prototxt"
    weights = ROOT / "results/lenet5/pruned.caffemodel"
    if not (model.is_file() and weights.is_file()):
        sys.exit("run `make reproduce-lenet5` first (needs results/lenet5/)")
    rows = []
    for workers in a.workers:
        with tempfile.TemporaryDirectory() as tmp:
            r, total = timing.best(1, compress, model, weights, Path(tmp) / "lenet5.dsz",
                                   expected_loss=a.expected_loss, work_dir=Path(tmp) / "work",
                                   workers=workers)
        rows.append({"workers": workers, "seconds": total, "stages": r["seconds"], "ratio": r["ratio"],
                     "error_bounds": r["error_bounds"], "actual_loss": r["actual_loss"]})
        print(f"workers {workers}: {total:6.1f} s total (assess {r['seconds']['assess']:.1f} s, "
              f"generate+verify {r['seconds']['generate_and_verify']:.1f} s), ratio {r['ratio']:.1f}x, "
              f"bounds {r['error_bounds']}")
    if len(rows) > 1:
        speedup = rows[0]["seconds"] / rows[-1]["seconds"]
        print(f"speed-up with {rows[-1]['workers']} workers: {speedup:.2f}x; "
              "paper: < 60 s on 4 V100 GPUs; goal here <= 60 s on 2 cores")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    atomic.write_json(a.out, {"rows": rows})
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
