"""Where the bytes of an error-bounded layer go, and what context modelling could still take off
them (docs/nncodec-challenge.md): for each LeNet's largest fc layer at the bound its max-preset
run chose, the zquant streams (positions by ctx, levels by quant's order-0 table) beside ideal
adaptive code lengths of richer models, and the rate-optimal level choice against plain rounding,
its top-1 measured by Caffe.

Ideal code lengths are -log2 of adaptive (Krichevsky-Trofimov-like) counts, no coder overhead:
  positions: row-parallel contexts (column density so far x bits of the row's count, as a coder
    that codes a row in one call can use), + the left neighbour (needs a coder call per bit),
    + left and right neighbours on odd columns after the even ones (row-parallel, two calls a row);
    and ctx's own rank-1 model (row count sent, column profile scaled), alone, + the three
    neighbours in the input's previous image row (a call per image row), + the left neighbour;
  signs: no context (1 bit each) and the signs so far in the same column and row;
  levels: rint(w / step) at step 1.5 eb (zquant) and the smallest-magnitude level within the bound
    (greedy rate-optimal: the most probable level, as levels peak at +-1); and rint at steps of
    2, 1.5 and 1.25 eb (the bound allows up to 2), each with its top-1.
  floor: the max preset's chosen file in results/compare/<net>.json less all those gains at once,
    beside NNCodec's chosen file.

    .venv/bin/python -m benchmarks.zquant_entropy [--net lenet300 lenet5] [--results DIR]
"""
import argparse
import json
import math
import sys
import tempfile
from pathlib import Path

import numpy as np

from deepsz_caffe import atomic
from deepsz_caffe.codecs import get_lossy
from deepsz_caffe.deepsz.probe import LayerProbe
from deepsz_caffe.format.layer import encode_layer

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results" / "bench" / "zquant_entropy.json"
# The width of the map each net's largest fc layer reads: LeNet-300-100's ip1 the 28 x 28 image,
# LeNet-5's ip1 pool2's 50 x 4 x 4 maps.
INPUT_WIDTH = {"lenet300": 28, "lenet5": 4}


def adaptive_bytes(rows) -> float:
    """Ideal code length of [(context ids, bits)] coded row after row, counts updated per row."""
    k = max(int(c.max()) for c, _ in rows if c.size) + 1
    ones, zeros, bits = np.full(k, 0.4), np.full(k, 0.4), 0.0
    for c, b in rows:
        p = ones[c] / (ones[c] + zeros[c])
        bits -= np.log2(np.where(b == 1, p, 1 - p)).sum()
        np.add.at(ones, c, b)
        np.add.at(zeros, c, 1 - b)
    return bits / 8


def order0_bytes(symbols: np.ndarray) -> float:
    _, counts = np.unique(symbols, return_counts=True)
    return float(-(counts * np.log2(counts / counts.sum())).sum() / 8)


def positions(mask: np.ndarray, width: int) -> dict:
    """Ideal adaptive code lengths of the mask under several models; `width` is the width of the
    image or feature map the layer's input is (the column j - width is the pixel above j)."""
    rows, cols = mask.shape
    column = np.zeros(cols)
    plain, left, checker, rank1, image, left_image = [], [], [], [], [], []
    odd = np.arange(cols) % 2 == 1
    mean = mask.mean()
    for i in range(rows):
        row = mask[i].astype(np.int64)
        k = int(row.sum())
        density = (column + 0.5) / (i + 1)
        base = np.minimum(11, (np.log2(density * 256 + 1) * 1.5).astype(np.int64)) * 8 + \
            min(7, int(np.log2(k + 1)))
        lft, rgt = np.r_[0, row[:-1]], np.r_[row[1:], 0]
        plain.append((base, row))
        left.append((base * 2 + lft, row))
        checker += [(base[~odd], row[~odd]), ((base * 3 + lft + rgt)[odd] + 1000, row[odd])]
        if 0 < k < cols:  # ctx's bitmap: the row's count is sent, the bits scale the column profile
            profile = column + 4.0 * mean
            p = np.clip(k * profile / profile.sum(), 2.0 ** -16, 1 - 2.0 ** -16)
            bucket = np.minimum(31, (-np.log2(p) * 2).astype(np.int64))
            above = sum(np.r_[np.zeros(width + d, np.int64), row[:cols - width - d]] for d in (-1, 0, 1))
            rank1.append((bucket, row))
            image.append((bucket * 4 + np.minimum(3, above), row))
            left_image.append((bucket * 8 + lft * 4 + np.minimum(3, above), row))
        column += row
    p = mask.mean()
    return {"iid_entropy_bytes": mask.size * -(p * math.log2(p) + (1 - p) * math.log2(1 - p)) / 8,
            "row_parallel_bytes": adaptive_bytes(plain), "left_neighbour_bytes": adaptive_bytes(left),
            "checkerboard_bytes": adaptive_bytes(checker), "input_width": width,
            "rank1_bytes": adaptive_bytes(rank1), "rank1_image_neighbours_bytes": adaptive_bytes(image),
            "rank1_left_image_neighbours_bytes": adaptive_bytes(left_image)}


def signs(w: np.ndarray, mask: np.ndarray) -> dict:
    r, c = np.nonzero(mask)
    s = (w[r, c] < 0).astype(np.int64)
    col, row, ctx = np.zeros(w.shape[1]), np.zeros(w.shape[0]), np.empty(s.size, np.int64)
    for k, (i, j) in enumerate(zip(r, c)):
        ctx[k] = 3 * int(np.sign(col[j]) + 1) + int(np.sign(row[i]) + 1)
        col[j] += 1 - 2 * s[k]
        row[i] += 1 - 2 * s[k]
    return {"count": int(s.size), "raw_bytes": s.size / 8,
            "column_row_context_bytes": adaptive_bytes([(ctx[k:k + 1], s[k:k + 1]) for k in range(s.size)])}


def bench(net: str, results: Path, work: Path) -> dict:
    run = json.loads((results / net / "compress-max.json").read_text())
    probe = LayerProbe(results / net / "prototxt" / "train_test.prototxt",
                       results / net / "pruned.caffemodel", work)
    layer = max(probe.weights, key=lambda n: probe.weights[n].size)
    w = probe.weights[layer].reshape(probe.weights[layer].shape[0], -1).astype(np.float32)
    eb = run["error_bounds"][layer]
    z = get_lossy("zquant")
    enc = encode_layer(w, eb, "zquant", run["lossless"])
    mask = (w != 0) & ~z.zero_small(w, eb)
    step = z.step_ratio * eb
    v = w[mask].astype(np.float64)
    rounded = np.rint(v / step)
    cheapest = np.sign(v) * np.maximum(1, np.ceil((np.abs(v) - eb) / step - 1e-12))
    assert np.all(np.abs(v - cheapest * step) <= eb + 1e-12)

    def top1(levels):
        rec = np.zeros_like(w)
        rec[mask] = (levels * step).astype(np.float32)
        return probe.top1_with({layer: rec.reshape(probe.weights[layer].shape)})

    steps = {}
    for ratio in (2.0, 1.5, 1.25):  # step / eb of the survivors' rounding (zquant: 1.5)
        levels = np.rint(v / (ratio * eb))
        rec = np.zeros_like(w)
        rec[mask] = (levels * ratio * eb).astype(np.float32)
        steps[str(ratio)] = {"levels_order0_bytes": order0_bytes(levels),
                             "top1": probe.top1_with({layer: rec.reshape(probe.weights[layer].shape)})}

    return {
        "step_ratios": steps,
        "layer": layer, "shape": list(w.shape), "error_bound": eb, "step": step,
        "kept": int(np.count_nonzero(w)), "zeroed": enc.meta["zeroed"], "coded": int(mask.sum()),
        "zquant_bytes": {"positions": enc.meta["index_bytes"], "levels": enc.meta["data_bytes"],
                         "index_codec": enc.meta["index_codec"]},
        "positions": positions(mask, INPUT_WIDTH[net]), "signs": signs(w, mask),
        "levels": {"rounded_order0_bytes": order0_bytes(rounded),
                   "rate_optimal_order0_bytes": order0_bytes(cheapest),
                   "rounded_magnitude_order0_bytes": order0_bytes(np.abs(rounded)),
                   "base_top1": probe.base_top1, "rounded_top1": top1(rounded),
                   "rate_optimal_top1": top1(cheapest)},
    }


def floor(entry: dict, record: dict) -> dict:
    """The max preset's file at its chosen point in `deepsz compare`, less every gain measured
    above at once (2-D position contexts, rate-optimal levels), beside NNCodec's chosen file."""
    def chosen(method):
        m = record["methods"][method]
        return m["points"][m["chosen"]]["bytes"]

    pos, lev = entry["positions"], entry["levels"]
    positions_gain = entry["zquant_bytes"]["positions"] * \
        (1 - pos["rank1_left_image_neighbours_bytes"] / pos["rank1_bytes"])
    levels_gain = lev["rounded_order0_bytes"] - lev["rate_optimal_order0_bytes"]
    return {"deepsz_max_bytes": chosen("deepsz-max"), "nncodec_bytes": chosen("nncodec"),
            "positions_gain_bytes": positions_gain, "levels_gain_bytes": levels_gain,
            "best_case_bytes": chosen("deepsz-max") - positions_gain - levels_gain}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--net", nargs="+", default=["lenet300", "lenet5"])
    ap.add_argument("--results", type=Path, default=ROOT / "results")
    ap.add_argument("--out", type=Path, default=OUT)
    a = ap.parse_args()
    entries = json.loads(a.out.read_text()) if a.out.is_file() else {}
    with tempfile.TemporaryDirectory() as tmp:
        for net in a.net:
            entries[net] = e = bench(net, a.results, Path(tmp) / net)
            compare = ROOT / "results" / "compare" / f"{net}.json"
            if compare.is_file():
                e["floor"] = floor(e, json.loads(compare.read_text()))
            print(json.dumps({net: e}, indent=1))
    atomic.write_json(a.out, entries)
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
