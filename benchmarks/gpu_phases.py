"""TEST-phase time per candidate: full vs suffix-only, GPU vs CPU (issue 15).

For LeNet-5 (results/lenet5 from `deepsz reproduce --net lenet5`, MNIST test set) and AlexNet/VGG-16
(real train_val prototxts, synthetic weights and a synthetic ImageNet-shaped LMDB, as
benchmarks/imagenet_scale.py builds them), at each batch size: one full TEST pass (the kept prefix
pass, which stores every fc layer's input) and each fc layer's suffix pass (what one Algorithm 1
candidate costs), on the CPU and, with --gpu, on that GPU in the same run. The assessment time at
the paper's scale is extrapolated: one full pass plus --candidates suffix passes, scaled from the
images used to 50,000 (ImageNet's validation set); goals: AlexNet <= 60 s, VGG-16 <= 120 s on one
H100 (the paper: 8 and 16 min on four V100s).

    GLOG_minloglevel=2 .venv/bin/python -m benchmarks.gpu_phases --images 200 --batches 50   # CPU only
    GLOG_minloglevel=2 python -m benchmarks.gpu_phases --gpu 0 --images 5000 --batches 50,256
"""
import os

os.environ.setdefault("GLOG_minloglevel", "2")

import argparse  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

from deepsz_caffe import atomic, log, timing  # noqa: E402
from deepsz_caffe.caffe.phase import TestPhase  # noqa: E402
from deepsz_caffe.caffe.prototxt import with_test_source  # noqa: E402
from deepsz_caffe.caffe.suffix import PrefixStore, SuffixPhase  # noqa: E402
from deepsz_caffe.paper import synthetic  # noqa: E402
from deepsz_caffe.paper.values import PROTOTXT  # noqa: E402

from .common import ROOT, lmdb_of, synthetic_model  # noqa: E402
PAPER_IMAGES = 50_000
GOALS_S = {"alexnet": 60.0, "vgg16": 120.0}  # one H100, 50,000 images (issue 15)


def inputs(net: str, images: int, work: Path):
    """(train_test prototxt, weights, LMDB, fc layers) of one net."""
    if net == "lenet5":
        root = ROOT / "results" / "lenet5"
        model, weights = root / "prototxt" / "train_test.prototxt", root / "pruned.caffemodel"
        if not weights.is_file():
            sys.exit(f"{weights} missing: run `deepsz reproduce --net lenet5` first")
        from deepsz_caffe.caffe.phase import check_model

        return model, weights, Path(check_model(model)["lmdb"]), ["ip1", "ip2"]
    weights = synthetic_model(net, work / f"{net}.caffemodel")
    layers = list(synthetic.FC_SHAPES[net])
    return PROTOTXT / net / "train_val.prototxt", weights, lmdb_of(work, images), layers


def phases(model, weights, layers, images: int, batch: int, gpu, work: Path) -> dict:
    """Seconds of one full pass and of each layer's suffix pass over `images` images."""
    iterations = max(1, images // batch)
    phase = TestPhase(str(model), str(weights), iterations, gpu, probed=True)
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        store, full = timing.best(1, PrefixStore.record, phase, layers, tmp)
        del phase
        suffix = {layer: timing.best(2, SuffixPhase(store, layer).run)[1] for layer in layers}
    return {"images": iterations * batch, "full_s": full, "suffix_s": suffix,
            "speedup": {layer: full / t for layer, t in suffix.items()}}


def extrapolate(row: dict, candidates: int) -> float:
    """An assessment at the paper's scale: one kept full pass + `candidates` suffix passes (the
    mean layer's), scaled to 50,000 images."""
    per_candidate = sum(row["suffix_s"].values()) / len(row["suffix_s"])
    return (row["full_s"] + candidates * per_candidate) * PAPER_IMAGES / row["images"]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nets", default="lenet5,alexnet,vgg16")
    p.add_argument("--images", type=int, default=1000, help="images per pass (ImageNet-shaped nets)")
    p.add_argument("--batches", default="50,256", help="TEST batch sizes")
    p.add_argument("--gpu", type=int, help="also time this GPU (CPU only without it)")
    p.add_argument("--candidates", type=int, default=30, help="Algorithm 1 tests for the extrapolation")
    p.add_argument("--dir", type=Path, help="keep the synthetic models and LMDBs here between runs")
    p.add_argument("--out", type=Path, default=ROOT / "results" / "bench" / "gpu_phases.json")
    a = p.parse_args(argv)
    log.configure()  # the library's stage lines and progress bars, as the CLI shows them
    work = a.dir or Path(tempfile.mkdtemp(prefix="gpu-phases-"))
    work.mkdir(parents=True, exist_ok=True)
    devices = {"cpu": None, **({f"gpu{a.gpu}": a.gpu} if a.gpu is not None else {})}
    rows = []
    for net in a.nets.split(","):
        model, weights, db, layers = inputs(net, a.images, work)
        images = 10_000 if net == "lenet5" else a.images
        for batch in map(int, a.batches.split(",")):
            prototxt = with_test_source(model, db, work / f"{net}-b{batch}.prototxt", batch=batch)
            for device, gpu in devices.items():
                row = {"net": net, "batch": batch, "device": device,
                       **phases(prototxt, weights, layers, images, batch, gpu, work)}
                row["assessment_50000_s"] = extrapolate(row, a.candidates)
                row["goal_s"] = GOALS_S.get(net) if gpu is not None else None
                rows.append(row)
                print(f"{net} batch {batch} {device}: full {row['full_s']:.2f} s, suffix "
                      + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in row["suffix_s"].items())
                      + f"; assessment at 50,000 images ~{row['assessment_50000_s']:.0f} s",
                      file=sys.stderr)
    for r in rows:  # GPU against CPU, measured in the same run
        cpu = next(c for c in rows
                   if c["device"] == "cpu" and c["net"] == r["net"] and c["batch"] == r["batch"])
        r["x_cpu"] = cpu["full_s"] / r["full_s"] if r["device"] != "cpu" else 1.0
    atomic.write_json(a.out, {"benchmark": "gpu_phases", "cpu": timing.cpu_name(),
                              "cores": os.cpu_count(),
                              "candidates": a.candidates, "paper_images": PAPER_IMAGES,
                              "extrapolation": "(full pass + candidates x mean suffix pass)"
                                               " x 50,000 / images",
                              "rows": rows})
    print(f"wrote {a.out}", file=sys.stderr)
    return 0 if all(r["goal_s"] is None or r["assessment_50000_s"] <= r["goal_s"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
