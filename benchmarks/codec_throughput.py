"""Lossy codec throughput on real pruned LeNet layers: SZ2 / SZ3 / ZFP / quant, MB/s of float32
data-array input, compress and decompress, one core; a memcpy of the same bytes is measured in
the same run as the reference (absolute times on shared machines are noisy).

Needs results/lenet300/pruned.caffemodel and/or results/lenet5/pruned.caffemodel.

    GLOG_minloglevel=2 .venv/bin/python -m benchmarks.codec_throughput [--eb 0.01] [--repeat 7]
"""
import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import sys
from pathlib import Path

import numpy as np

from deepsz_caffe import atomic, sparse
from deepsz_caffe.caffe.wire import read_caffemodel
from deepsz_caffe import timing
from deepsz_caffe.codecs import compress_bounded, get_lossy

ROOT = Path(__file__).resolve().parents[1]
CODECS = ("sz2", "sz3", "zfp", "quant")


def best_seconds(repeat, fn, *args):
    return timing.best(repeat, fn, *args)[1]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--eb", type=float, default=0.01)
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--out", default=str(ROOT / "results/bench/codec_throughput.json"))
    a = p.parse_args(argv)
    layers = {}
    for net in ("lenet300", "lenet5"):
        path = ROOT / f"results/{net}/pruned.caffemodel"
        if path.is_file():
            for name, blobs in read_caffemodel(path)[0].items():
                if name.startswith("ip"):
                    layers[f"{net}/{name}"] = sparse.to_sparse(blobs[0]).data
    if not layers:
        sys.exit("run `make reproduce` (and/or make reproduce-lenet5) first")
    rows = []
    print(f"eb {a.eb}; MB/s of float32 input (memcpy reference in brackets)")
    for layer, data in layers.items():
        mb = data.nbytes / 1e6
        copy = np.empty_like(data)
        memcpy = mb / best_seconds(a.repeat, np.copyto, copy, data)
        for name in CODECS:
            codec = get_lossy(name)
            blob = compress_bounded(codec, data, a.eb)
            comp = mb / best_seconds(a.repeat, codec.compress, data, a.eb)
            decomp = mb / best_seconds(a.repeat, codec.decompress, blob, data.size)
            rows.append({"layer": layer, "codec": name, "values": int(data.size), "eb": a.eb,
                         "ratio": data.nbytes / len(blob), "compress_mb_s": comp,
                         "decompress_mb_s": decomp, "memcpy_mb_s": memcpy})
            print(f"{layer:16} {name:6} ratio {data.nbytes / len(blob):6.2f}  compress {comp:8.1f}  "
                  f"decompress {decomp:8.1f}  [memcpy {memcpy:8.0f}]")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    atomic.write_json(a.out, {"eb": a.eb, "rows": rows})
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
