"""Codecs beyond the paper: "ctx" position coding against gzip/zstd/blosc for the index array,
and "quant" (quantisation without prediction) against SZ 2 / SZ 3 for the data array.

Layers measured:
- lenet300/*: the pruned LeNet-300-100 of --model (skipped, with a note, if the file is absent);
- synthetic/mnist-like: 300x784 at 8%, weights N(0, 1) scaled per column by a Gaussian blob
  over the 28x28 pixel grid (border inputs matter little, as in MNIST) and per row by a
  log-normal factor, then magnitude-pruned: the column and row structure ctx is built for;
- synthetic/uniform: 300x784 at 8% of i.i.d. weights, a mask with no structure to learn;
- AlexNet's and VGG-16's fc6-fc8 (deepsz_caffe.synthetic, as the decode benchmark: i.i.d. masks)
  and fc6-shaped layers with row and column structure (the ctx grouped mode's split path), for
  decode speed: the index stage alone (decompress + cumsum) and the whole layer
  (layer_codec.decode_layer: index, SZ 2 data at the paper's bound, rebuild), zstd index against
  ctx index, interleaved run by run.
Every stream is decoded and checked (exact for index codecs, |x - x'| <= eb for data codecs).
SZ 3 without prediction is pysz with cmprAlgo = NOPRED; its size is counted with the same
13-byte frame the registered backends carry.

    taskset -c 0 .venv/bin/python -m benchmarks.beyond_codecs [--model PATH] [--repeat N] [--out PATH]
"""
import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # must precede the numpy import to take effect

import argparse
import sys
from pathlib import Path

import numpy as np

from deepsz_caffe import sparse
from deepsz_caffe.atomic import write_json
from deepsz_caffe.codecs import compress_bounded, get_lossy
from deepsz_caffe.codecs.base import FRAME_HEADER
from deepsz_caffe.codecs.lossless import ALL_INDEX_CODECS, compress_index, decompress_index
from deepsz_caffe.deepsz.prune import magnitude_masks
from deepsz_caffe.format import layer as layer_codec
from deepsz_caffe.paper import synthetic

from .common import summary, timed

SEED = 20190622
BOUNDS = (0.01, 0.02, 0.03, 0.05)
DATA_CODECS = ("quant", "sz2", "sz3", "sz3-nopred")
FRAME_BYTES = FRAME_HEADER.size


def row_column_structured(rng: np.random.Generator, shape, keep: float) -> np.ndarray:
    """Gaussian weights scaled by a log-normal factor per row and per column, magnitude-pruned."""
    rows, cols = shape
    w = rng.standard_normal(shape, dtype=np.float32)
    w *= rng.lognormal(0.0, 0.5, rows).astype(np.float32)[:, None]
    w *= rng.lognormal(0.0, 0.5, cols).astype(np.float32)[None, :]
    return magnitude_prune(w * np.float32(0.01), keep)


def mnist_like(rng: np.random.Generator, rows=300, side=28, keep=0.08) -> np.ndarray:
    """fc weights [rows, side*side] whose columns matter by pixel position and rows by neuron."""
    yy, xx = np.mgrid[:side, :side] - (side - 1) / 2
    column = np.exp(-(xx ** 2 + yy ** 2) / (2 * (side / 5) ** 2)).reshape(-1)
    row = rng.lognormal(0.0, 0.5, rows)
    w = rng.standard_normal((rows, side * side)) * row[:, None] * column[None, :]
    return magnitude_prune(w.astype(np.float32) * np.float32(0.05), keep)


def magnitude_prune(w: np.ndarray, keep: float) -> np.ndarray:
    return w * magnitude_masks({"w": w}, {"w": keep})["w"]


def lenet_layers(path: Path) -> dict[str, np.ndarray]:
    from deepsz_caffe.caffe.wire import read_caffemodel

    return {f"lenet300/{name}": blobs[0] for name, blobs in read_caffemodel(path)[0].items()
            if blobs and blobs[0].ndim >= 2}


def index_sizes(w: np.ndarray) -> dict:
    sp = sparse.to_sparse(w)
    raw = sp.index.tobytes()
    out = {"nnz": sp.nnz, "n_entries": sp.n_entries}
    for name in ALL_INDEX_CODECS:
        _, blob = compress_index(raw, name, row_length=row_length(w))
        if decompress_index(blob, name, len(raw)) != raw:
            raise AssertionError(f"{name} does not round-trip")
        out[name] = len(blob)
    out["ctx_vs_zstd"] = out["ctx"] / out["zstd"] - 1
    return out


def row_length(w: np.ndarray) -> int:
    """The ctx hint: weights per output neuron, prod(shape[1:])."""
    return int(np.prod(w.shape[1:]))


def sz3_nopred(x: np.ndarray, eb: float) -> int:
    from pysz import sz, szAlgorithm, szConfig, szErrorBoundMode
    config = szConfig(x.shape)
    config.errorBoundMode = szErrorBoundMode.ABS
    config.absErrorBound = eb
    config.cmprAlgo = szAlgorithm.NOPRED
    compressed, _ = sz.compress(x, config)
    y, _ = sz.decompress(compressed, np.float32, x.shape)
    if np.max(np.abs(x.astype(np.float64) - y), initial=0.0) > eb:
        raise AssertionError("SZ3 NOPRED broke the bound")
    return FRAME_BYTES + compressed.nbytes


def data_sizes(x: np.ndarray, eb: float) -> dict:
    out = {name: len(compress_bounded(get_lossy(name), x, eb)) for name in DATA_CODECS[:-1]}
    out["sz3-nopred"] = sz3_nopred(x, eb)
    out["quant_vs_sz2"] = out["quant"] / out["sz2"] - 1
    return out


def positions(gaps: bytes) -> np.ndarray:
    return np.cumsum(np.frombuffer(gaps, np.uint8), dtype=np.int64) - 1


def index_path(blob: bytes, name: str, size: int) -> float:
    """Seconds to decompress an index stream and turn it into positions, as decode_layer does."""
    gaps, t = timed(decompress_index, blob, name, size)
    return t + timed(positions, gaps)[1]


def index_decode_speed(w: np.ndarray, repeat: int) -> dict:
    """zstd path vs ctx path of the index stage alone."""
    sp = sparse.to_sparse(w)
    raw = sp.index.tobytes()
    out = {}
    for name in ("zstd", "ctx"):
        _, blob = compress_index(raw, name, row_length=row_length(w))
        out[name] = {"bytes": len(blob), **summary([index_path(blob, name, len(raw)) for _ in range(repeat)])}
    out["ctx_over_zstd_time"] = out["ctx"]["best_ms"] / out["zstd"]["best_ms"]
    return out


def layer_decode_speed(w: np.ndarray, eb: float, repeat: int) -> dict:
    """Index stage and whole-layer decode, zstd index vs ctx index (SZ 2 data), interleaved."""
    encoded = {name: layer_codec.encode_layer(w, eb, lossy="sz2", lossless=name) for name in ("zstd", "ctx")}
    runs = {name: {"index": [], "layer": []} for name in encoded}
    for i in range(repeat):
        for name in (("zstd", "ctx") if i % 2 == 0 else ("ctx", "zstd")):  # alternate who goes first
            enc = encoded[name]
            runs[name]["index"].append(index_path(enc.index, name, enc.meta["n_entries"]))
            runs[name]["layer"].append(timed(layer_codec.decode_layer, enc.meta, enc.data, enc.index,
                                             enc.gap255_kept, trusted=True)[1])
    out = {name: {"index_bytes": enc.meta["index_bytes"], "data_bytes": enc.meta["data_bytes"],
                  "index_bits_per_nnz": 8 * enc.meta["index_bytes"] / enc.meta["nnz"],
                  "index": summary(runs[name]["index"]), "layer": summary(runs[name]["layer"])}
           for name, enc in encoded.items()}
    out["ctx_over_zstd"] = {stage: out["ctx"][stage]["best_ms"] / out["zstd"][stage]["best_ms"]
                            for stage in ("index", "layer")}
    # ctx version byte: 1 bitmap, 2 grouped (then row and column splits at payload bytes 16, 17)
    blob = encoded["ctx"].index
    out["ctx_mode"] = "bitmap" if blob[0] == 1 else f"r{blob[9 + 16]}c{blob[9 + 17]}"
    return out


def index_table(layers: dict, repeat: int) -> dict:
    """Index array sizes of every codec and zstd/ctx decode times, printed and returned."""
    print("index array, bytes (ctx codes the positions, row length = prod(shape[1:]))")
    print(f"{'layer':<26}{'nnz':>8}" + "".join(f"{c:>9}" for c in ALL_INDEX_CODECS)
          + f"{'ctx/zstd':>10}{'decode ms zstd/ctx':>20}")
    index = {}
    for name, w in layers.items():
        r = index[name] = index_sizes(w)
        r["decode"] = index_decode_speed(w, repeat)
        print(f"{name:<26}{r['nnz']:>8}" + "".join(f"{r[c]:>9}" for c in ALL_INDEX_CODECS)
              + f"{r['ctx_vs_zstd']:>+10.1%}{r['decode']['zstd']['best_ms']:>12.2f}"
              + f"{r['decode']['ctx']['best_ms']:>8.2f}")
    lenet = [r for n, r in index.items() if n.startswith("lenet300/")]
    if lenet:
        totals = {c: sum(r[c] for r in lenet) for c in ALL_INDEX_CODECS}
        index["lenet300/total"] = {**totals, "ctx_vs_zstd": totals["ctx"] / totals["zstd"] - 1}
        print(f"{'lenet300/total':<26}{'':>8}" + "".join(f"{totals[c]:>9}" for c in ALL_INDEX_CODECS)
              + f"{index['lenet300/total']['ctx_vs_zstd']:>+10.1%}")
    return index


def data_table(layers: dict, rng, lenet: bool) -> dict:
    """Data array sizes of every lossy codec at each bound, printed and returned."""
    print("\ndata array (fillers included), bytes at each error bound")
    print(f"{'layer':<26}{'eb':>6}" + "".join(f"{c:>12}" for c in DATA_CODECS) + f"{'quant/sz2':>11}")
    data = {}
    data_layers = {**layers, "synthetic/top8%-N(0,0.02)": magnitude_prune(
        rng.normal(0, 0.02, 13 * 20_000).astype(np.float32), 1 / 13)}
    for name, w in data_layers.items():
        x = sparse.to_sparse(w).data
        for eb in BOUNDS:
            r = data[f"{name}@{eb}"] = data_sizes(x, eb)
            print(f"{name:<26}{eb:>6}" + "".join(f"{r[c]:>12}" for c in DATA_CODECS)
                  + f"{r['quant_vs_sz2']:>+11.1%}")
    for eb in BOUNDS if lenet else ():
        keys = [f"{n}@{eb}" for n in layers if n.startswith("lenet300/")]
        totals = {c: sum(data[k][c] for k in keys) for c in DATA_CODECS}
        data[f"lenet300/total@{eb}"] = {**totals, "quant_vs_sz2": totals["quant"] / totals["sz2"] - 1}
        print(f"{'lenet300/total':<26}{eb:>6}" + "".join(f"{totals[c]:>12}" for c in DATA_CODECS)
              + f"{totals['quant'] / totals['sz2'] - 1:>+11.1%}")
    return data


def large_table(rng, repeat: int) -> tuple[float, dict]:
    """(load average, whole-layer decode times of the AlexNet/VGG-16 shapes, zstd against ctx)."""
    load = os.getloadavg()[0]
    print(f"\nlarge layers: decode ms, best of {repeat} (load average {load:.2f}); index = decompress"
          " + cumsum, layer = decode_layer (index + SZ 2 data + rebuild);\nctx mode rXcY: grouped, X row and"
          " Y column density buckets (0: axis unsplit)")
    print(f"{'layer':<26}{'ctx mode':>9}{'idx bits/nnz zstd/ctx':>23}{'index zstd/ctx':>18}{'ratio':>7}"
          f"{'layer zstd/ctx':>18}{'ratio':>7}")
    large = {}
    for net in ("alexnet", "vgg16"):
        for i, (layer, shape) in enumerate(synthetic.FC_SHAPES[net].items()):
            keep, eb = synthetic.PAPER_KEPT[net][layer], synthetic.PAPER_ERROR_BOUNDS[net][layer]
            large[f"{net}/{layer}"] = (synthetic.pruned_layer(shape, keep, seed=i), eb)
    shape, keep = synthetic.FC_SHAPES["alexnet"]["fc6"], synthetic.PAPER_KEPT["alexnet"]["fc6"]
    large["structured/alexnet-fc6"] = (row_column_structured(rng, shape, keep),
                                       synthetic.PAPER_ERROR_BOUNDS["alexnet"]["fc6"])
    speed = {}
    for name, (w, eb) in large.items():
        r = speed[name] = layer_decode_speed(w, eb, repeat)
        r["shape"], r["keep"], r["error_bound"] = list(w.shape), float(np.count_nonzero(w) / w.size), eb
        z, c = r["zstd"], r["ctx"]
        print(f"{name:<26}{r['ctx_mode']:>9}{z['index_bits_per_nnz']:>12.3f}/{c['index_bits_per_nnz']:<10.3f}"
              f"{z['index']['best_ms']:>9.1f}/{c['index']['best_ms']:<8.1f}{r['ctx_over_zstd']['index']:>6.2f}x"
              f"{z['layer']['best_ms']:>9.1f}/{c['layer']['best_ms']:<8.1f}{r['ctx_over_zstd']['layer']:>6.2f}x")
    return load, speed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, default=Path("results/lenet300/pruned.caffemodel"))
    ap.add_argument("--repeat", type=int, default=3, help="timed decodes; best and median are reported")
    ap.add_argument("--out", type=Path, default=Path("results/bench/beyond_codecs.json"))
    args = ap.parse_args()
    if args.repeat < 1:
        ap.error("--repeat must be >= 1")

    rng = np.random.default_rng(SEED)  # the synthetic MNIST-like and uniform layers
    layers = {}
    if args.model.is_file():
        layers.update(lenet_layers(args.model))
    else:
        print(f"note: {args.model} not found; LeNet-300-100 rows skipped")
    layers["synthetic/mnist-like"] = mnist_like(rng)
    layers["synthetic/uniform"] = magnitude_prune(rng.standard_normal((300, 784)).astype(np.float32), 0.08)

    index = index_table(layers, args.repeat)
    lenet = [n for n in index if n.startswith("lenet300/")]
    data = data_table(layers, rng, bool(lenet))
    load, speed = large_table(rng, args.repeat)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_json(args.out, {
        "model": str(args.model) if lenet else None, "seed": SEED, "repeat": args.repeat,
        "load_average": load, "index_bytes": index, "data_bytes": data,
        "large_layer_decode": speed,
    })
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
