"""Decode time of AlexNet's and VGG-16's pruned fc layers, broken down as in DeepSZ section 5.2.3 /
Figure 7b.

Each net's fc6-fc8 come from deepsz_caffe.synthetic, the layers the experiments use: the paper's
shapes (Table 1), kept fractions (Table 2) and error bounds (section 5.2.2), weights Gaussian with
the Xavier-like std sqrt(1/fan_in), magnitude-pruned, layer i drawn with seed --seed + i
(synthetic.pruned_net). They are synthetic: sizes and times belong to the shapes and the codecs,
not to the trained nets. Each layer is encoded with layer_codec.encode_layer, then the three decode
stages (lossless index decompression, SZ data decompression, sparse rebuild) are timed beside two
machine-local yardsticks measured in the same runs: a dense memcpy of the same matrices into
preallocated arrays (the goal: a total decode within GOAL_X_MEMCPY times it), and the page faults of
freshly allocated dense outputs, which any decoder returning new arrays pays. Every decoded layer
is checked against its error bound; the script exits non-zero if one exceeds it.

Each net gets its own entry in --out (others already there are kept). Thread pools are capped at 1
before numpy loads; pin the process too so the numbers are per core:
    taskset -c 0 .venv/bin/python benchmarks/decode_speed.py [--net alexnet vgg16] [--repeat N]
"""
import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # must precede the numpy import to take effect

import argparse
import json
import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from deepsz_caffe import layer_codec, sparse, synthetic
from deepsz_caffe.atomic import write_json
from deepsz_caffe.codecs import get_lossy
from deepsz_caffe.codecs.lossless import decompress_index
from deepsz_caffe.codecs.sz2 import sz2_version

NETS = {"alexnet": "AlexNet", "vgg16": "VGG-16"}
STAGES = ("lossless", "sz", "rebuild")
REFERENCES = ("end_to_end", "memcpy", "fresh_alloc")
GOAL_X_MEMCPY = 4.0  # the goal: decoding all fc layers costs at most 4 dense copies of them
# DeepSZ's decode times, in ms, on one CPU core (section 5.1 gives the machine): section 5.2.3,
# Figure 7b. The stage breakdown is given for AlexNet only.
PAPER_DECODE_MS = {
    "source": "DeepSZ (Jin et al., HPDC 2019), section 5.2.3 / Figure 7b",
    "alexnet": {"lossless": 26.0, "sz": 108.0, "rebuild": 162.0, "total": 296.0},
    "vgg16": {"total": 341.0},
}


def cpu_model() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.machine()
    names = (ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name"))
    return next(names, platform.machine())


def timed(fn, *args):
    t0 = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - t0


def decode_stages(enc: layer_codec.EncodedLayer) -> tuple[np.ndarray, dict[str, float]]:
    """layer_codec.decode_layer split into its three calls, each timed."""
    meta, n = enc.meta, enc.meta["n_entries"]
    raw, t_lossless = timed(decompress_index, enc.index, meta["index_codec"], n)
    values, t_sz = timed(get_lossy(meta["lossy_codec"]).decompress, enc.data, n)
    dense, t_rebuild = timed(sparse.to_dense, values, np.frombuffer(raw, np.uint8), tuple(meta["shape"]))
    return dense, {"lossless": t_lossless, "sz": t_sz, "rebuild": t_rebuild}


def fresh_alloc(shape: tuple[int, ...]) -> None:
    """np.zeros of `shape`, then one store per 4 KiB page to fault it in (the kernel zeroes it)."""
    np.zeros(shape, np.float32).reshape(-1)[::1024] = 1.0


def summary(seconds: list[float]) -> dict[str, float]:
    return {"best_ms": 1e3 * min(seconds), "median_ms": 1e3 * statistics.median(seconds)}


def layer_sizes(enc: layer_codec.EncodedLayer) -> dict:
    m = enc.meta
    return {
        "shape": m["shape"], "nnz": m["nnz"], "n_entries": m["n_entries"], "error_bound": m["error_bound"],
        "index_codec": m["index_codec"], "data_bytes": m["data_bytes"], "index_bytes": m["index_bytes"],
        "data_bits_per_nnz": 8 * m["data_bytes"] / m["nnz"],
        "index_bits_per_nnz": 8 * m["index_bytes"] / m["nnz"],
        "ratio": m["dense_bytes"] / enc.size,
    }


def bench_net(net: str, seed: int, repeat: int) -> dict:
    """Encode, check and time one net's fc layers; prints its table and returns its JSON entry."""
    originals = synthetic.pruned_net(net, seed)
    bounds = synthetic.PAPER_ERROR_BOUNDS[net]
    encoded = {name: layer_codec.encode_layer(w, bounds[name]) for name, w in originals.items()}

    # Correctness through the public path before any timing: |decoded - original| <= eb everywhere.
    max_err = {}
    for name, enc in encoded.items():
        decoded = layer_codec.decode_layer(enc.meta, enc.data, enc.index)
        max_err[name] = float(np.max(np.abs(decoded.astype(np.float64) - originals[name])))
        del decoded
    ok = all(max_err[name] <= bounds[name] for name in encoded)

    # times[layer][key] -> seconds per run; memcpy and fresh_alloc are the references,
    # end_to_end is decode_layer in one call (checks that the staged split adds nothing).
    times = {name: {k: [] for k in STAGES + REFERENCES} for name in encoded}
    targets = {name: np.empty_like(w) for name, w in originals.items()}
    for name in encoded:  # fault the reference's pages in once so it measures copying, not mmap
        np.copyto(targets[name], originals[name])
    for _ in range(repeat):
        for name, enc in encoded.items():
            dense, stage_s = decode_stages(enc)
            del dense  # free before the next layer, as a loader would hand it off
            for s, t in stage_s.items():
                times[name][s].append(t)
            _, t = timed(np.copyto, targets[name], originals[name])
            times[name]["memcpy"].append(t)
            _, t = timed(fresh_alloc, originals[name].shape)
            times[name]["fresh_alloc"].append(t)
            _, t = timed(layer_codec.decode_layer, enc.meta, enc.data, enc.index)
            times[name]["end_to_end"].append(t)
    # Totals are per-run sums over layers, then best/median, not sums of per-layer bests.
    total = {k: [sum(times[n][k][i] for n in encoded) for i in range(repeat)] for k in STAGES + REFERENCES}
    total["total"] = [sum(total[s][i] for s in STAGES) for i in range(repeat)]
    timing = {k: summary(total[k]) for k in STAGES + ("total",) + REFERENCES}
    ref = timing["memcpy"]
    x_memcpy = {k: {"best": v["best_ms"] / ref["best_ms"], "median": v["median_ms"] / ref["median_ms"]}
                for k, v in timing.items()}
    goal_met = x_memcpy["total"]["median"] <= GOAL_X_MEMCPY  # judged on medians, not the luckiest run

    paper = PAPER_DECODE_MS[net]
    print(f"{NETS[net]} fc layers (synthetic, seed {seed}), runs: {repeat}")
    print(f"  {'stage':<12}{'best ms':>9}{'median ms':>11}{'x memcpy':>10}{'paper ms':>10}")
    for k, st in timing.items():
        ref_note = f"{paper[k]:10.0f}" if k in paper else ""
        print(f"  {k:<12}{st['best_ms']:9.1f}{st['median_ms']:11.1f}{x_memcpy[k]['median']:10.2f}{ref_note}")
    print(f"  goal total <= {GOAL_X_MEMCPY:g}x memcpy: {'met' if goal_met else 'NOT met'} (median "
          f"{timing['total']['median_ms']:.1f} ms = {x_memcpy['total']['median']:.2f}x the median memcpy of "
          f"{ref['median_ms']:.1f} ms; best {x_memcpy['total']['best']:.2f}x); paper {paper['total']:.0f} ms")

    sizes = {name: layer_sizes(enc) for name, enc in encoded.items()}
    for name, s in sizes.items():
        print(f"  {name} {s['shape'][0]}x{s['shape'][1]}: nnz {s['nnz']:,}, "
              f"data {s['data_bits_per_nnz']:.2f} bit/nnz, index {s['index_bits_per_nnz']:.2f} bit/nnz "
              f"({s['index_codec']}), ratio "
              f"{s['ratio']:.1f}x, max err {max_err[name]:.3g} "
              f"{'<=' if max_err[name] <= bounds[name] else '> (VIOLATED)'} eb {bounds[name]:g}")
    nnz = sum(s["nnz"] for s in sizes.values())
    fc = {
        "nnz": nnz,
        "data_bits_per_nnz": 8 * sum(s["data_bytes"] for s in sizes.values()) / nnz,
        "index_bits_per_nnz": 8 * sum(s["index_bytes"] for s in sizes.values()) / nnz,
        "ratio": sum(e.meta["dense_bytes"] for e in encoded.values()) / sum(e.size for e in encoded.values()),
    }
    print(f"  fc overall: {nnz:,} nonzeros, data {fc['data_bits_per_nnz']:.2f} + index "
          f"{fc['index_bits_per_nnz']:.2f} bit/nnz, ratio {fc['ratio']:.1f}x")

    return {
        "config": {"seed": seed, "repeat": repeat, "synthetic": True,
                   "layers": {n: {"shape": list(w.shape), "kept": synthetic.PAPER_KEPT[net][n],
                                  "error_bound": bounds[n], "std": synthetic.default_std(w.shape)}
                              for n, w in originals.items()}},
        "timing_ms": {"total": timing,
                      "layers": {n: {k: summary(v) for k, v in t.items()} for n, t in times.items()}},
        "x_memcpy": x_memcpy, "goal_x_memcpy": GOAL_X_MEMCPY, "goal_met_by_median": goal_met,
        "paper_ms": paper, "sizes": sizes, "fc": fc,
        "check": {"max_abs_error": max_err, "ok": ok},
    }


def previous_entries(path: Path) -> dict:
    """The per-net entries already in `path`, if it is in this script's format."""
    try:
        nets = json.loads(path.read_text()).get("nets")
    except (OSError, ValueError, AttributeError):
        return {}
    return nets if isinstance(nets, dict) else {}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--net", nargs="+", choices=tuple(NETS), default=list(NETS),
                    help="nets to run (default: all)")
    ap.add_argument("--repeat", type=int, default=5, help="timed runs; best and median are reported")
    ap.add_argument("--seed", type=int, default=0,
                    help="seed of the synthetic layers (default 0, as in the experiments)")
    ap.add_argument("--out", type=Path, default=Path("results/bench/decode_speed.json"))
    args = ap.parse_args()
    if args.repeat < 1:
        ap.error("--repeat must be >= 1")

    load = os.getloadavg()[0]  # read before our own work raises it
    environment = {"cpu": cpu_model(), "python": platform.python_version(), "numpy": np.__version__,
                   "sz2": sz2_version(), "cpus_allowed": sorted(os.sched_getaffinity(0)),
                   "load_average_at_start": load}
    busy = " (>= 1: other work may share the CPU and memory bandwidth)" if load >= 1 else ""
    print(f"decode on {environment['cpu']}, CPUs allowed: {environment['cpus_allowed']}, "
          f"load average at start {load:.2f}{busy}")
    print(f"paper: {PAPER_DECODE_MS['source']}; x memcpy = median / median memcpy of the same runs")
    entries = previous_entries(args.out)
    for net in dict.fromkeys(args.net):  # each net once, in the order given
        entries[net] = {**bench_net(net, args.seed, args.repeat), "environment": environment,
                        "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}

    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_json(args.out, {"paper_decode_ms": PAPER_DECODE_MS, "goal_x_memcpy": GOAL_X_MEMCPY,
                          "nets": entries})
    print(f"wrote {args.out}")
    failed = [net for net in args.net if not entries[net]["check"]["ok"]]
    if failed:
        print(f"FAIL: a decoded layer of {', '.join(failed)} exceeds its error bound", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
