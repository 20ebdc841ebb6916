"""Suffix-only vs full TEST phases (issue: speed and scale; paper section 4.1).

For each fc layer, time one full TEST pass and one suffix-only pass over the same images and
print the speed-up (both measured in this run). Accuracies must be identical.

- LeNet-5 on the MNIST test LMDB, with results/lenet5/pruned.caffemodel (run
  `make reproduce-lenet5` first) or, if absent, the net's filler weights.
- AlexNet on synthetic 256x256 images (random uint8; ImageNet is not available here), BVLC
  architecture with filler weights: the work per layer does not depend on the values.

    GLOG_minloglevel=2 .venv/bin/python -m benchmarks.suffix_speedup [--alexnet-images 100]
"""
import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("GLOG_minloglevel", "2")
ROOT = Path(__file__).resolve().parents[1]

import numpy as np

from deepsz_caffe import atomic, log
from deepsz_caffe.caffe import lmdb as lmdb_io
from deepsz_caffe import timing
from deepsz_caffe.caffe.phase import TestPhase
from deepsz_caffe.caffe.prototxt import with_test_source
from deepsz_caffe.caffe.suffix import PrefixStore, SuffixPhase


def best_of(fn, repeat):
    result, seconds = timing.best(repeat, fn)
    return seconds, result


def measure(net_name, model, weights, layers, work, repeat):
    full = TestPhase(str(model), str(weights))
    t_full, acc_full = best_of(full.run, repeat)
    rows = []
    # one kept pass feeds every layer
    store, setup = timing.best(1, PrefixStore.record, full, layers, work / net_name)
    for layer in layers:
        suffix = SuffixPhase(store, layer)
        t_suffix, acc_suffix = best_of(suffix.run, repeat)
        assert acc_suffix == acc_full, (layer, acc_suffix, acc_full)
        rows.append({"net": net_name, "layer": layer, "full_s": t_full, "suffix_s": t_suffix,
                     "setup_s": setup, "speedup": t_full / t_suffix, "top1": acc_full["top1"],
                     "images": full.records})
        print(f"{net_name:8} {layer:5} full {t_full * 1e3:8.1f} ms  suffix {t_suffix * 1e3:7.1f} ms  "
              f"speed-up {t_full / t_suffix:6.1f}x  (one feature pass for all layers {setup:.2f} s)")
    return rows


def lenet5(work, repeat):
    weights = ROOT / "results/lenet5/pruned.caffemodel"
    model = ROOT / "results/lenet5/prototxt/train_test.prototxt"
    if not (weights.is_file() and model.is_file()):
        sys.exit("run `make reproduce-lenet5` first (needs results/lenet5/)")
    return measure("LeNet-5", model, weights, ["ip1", "ip2"], work, repeat)


def alexnet(work, repeat, images):
    rng = np.random.default_rng(0)
    db = lmdb_io.write(work / "images", rng.integers(0, 256, (images, 3, 256, 256), dtype=np.uint8),
                       rng.integers(0, 1000, images), "synthetic images")
    model = with_test_source(ROOT / "prototxt/alexnet/train_val.prototxt", db, work / "alexnet.prototxt")
    text = model.read_text().replace("batch_size: 50", f"batch_size: {min(50, images)}")
    model.write_text(text)
    import caffe

    caffe.set_mode_cpu()
    net = caffe.Net(str(ROOT / "prototxt/alexnet/deploy.prototxt"), caffe.TEST)
    weights = work / "alexnet_fillers.caffemodel"
    net.save(str(weights))
    return measure("AlexNet", model, weights, ["fc6", "fc7", "fc8"], work, repeat)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--alexnet-images", type=int, default=100)
    p.add_argument("--out", default=str(ROOT / "results/bench/suffix_speedup.json"))
    a = p.parse_args(argv)
    log.configure()  # the library's stage lines and progress bars, as the CLI shows them
    with tempfile.TemporaryDirectory() as tmp:
        rows = lenet5(Path(tmp), a.repeat) + alexnet(Path(tmp), a.repeat, a.alexnet_images)
    goals = {"LeNet-5": 10, "AlexNet": 30}
    for net, goal in goals.items():
        worst = min(r["speedup"] for r in rows if r["net"] == net)
        print(f"{net}: slowest layer speed-up {worst:.1f}x (goal >= {goal}x)")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    atomic.write_json(a.out, {"rows": rows, "goals": goals})
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
