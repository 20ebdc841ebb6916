"""`deepsz decode` of the LeNets' max-preset file against the paper preset's, same run (issue 19
item 5: LeNet decode <= 2x the paper preset's). Each .dsz is encoded here from results/<net>/
pruned.caffemodel with the error bounds and coders of that preset's measured run
(compress.json, compress-max.json), then decoded file -> file in-process, interleaved, best of
--repeat. The AlexNet-shaped goal (fc6-fc8 decode <= 1.5 s on one core) is measured by
benchmarks/decode_speed.py --lossy sz2 zquant --lossless best-all (results/bench/zquant_decode_speed.json).

    taskset -c 0 .venv/bin/python benchmarks/zquant_lenet_decode.py [--net lenet300 lenet5] [--repeat 20]
"""
import argparse
import json
import sys
import tempfile
from pathlib import Path

from deepsz_caffe import atomic, timing
from deepsz_caffe.format import network as dsz
from deepsz_caffe.timing import Stopwatch

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results" / "bench" / "zquant_lenet_decode.json"
GOAL_X_PAPER = 2.0
RUNS = {"paper": "compress.json", "max": "compress-max.json"}


def bench(net: str, results: Path, repeat: int, work: Path) -> dict:
    root = results / net
    files, sizes = {}, {}
    for preset, record in RUNS.items():
        run = json.loads((root / record).read_text())
        files[preset] = work / f"{net}-{preset}.dsz"
        dsz.encode(root / "pruned.caffemodel", files[preset], error_bounds=run["error_bounds"],
                   lossy=run["lossy"], lossless=run["lossless"])
        sizes[preset] = dsz.inspect(files[preset])["selected_compressed_bytes"]
    seconds = {p: [] for p in RUNS}
    for _ in range(repeat):  # interleaved: a change of load reaches both alike
        for preset, path in files.items():
            with Stopwatch() as watch:
                dsz.decode(path, work / f"{net}-{preset}.caffemodel")
            seconds[preset].append(watch.seconds)
    best = {p: min(s) for p, s in seconds.items()}
    return {"compressed_bytes": sizes, "decode_seconds_best": best,
            "stages_best": {p: stages(path, repeat) for p, path in files.items()},
            "decode_seconds_all": seconds, "max_x_paper": best["max"] / best["paper"],
            "goal_x_paper": GOAL_X_PAPER, "goal_met": best["max"] / best["paper"] <= GOAL_X_PAPER}


def stages(path: Path, repeat: int) -> dict:
    """Per layer: best-of-`repeat` seconds of its index decode and its data decode."""
    from deepsz_caffe.codecs import get_lossy
    from deepsz_caffe.codecs.lossless import decompress_index
    from deepsz_caffe.format import container

    f, out = container.read_file(path), {}
    for m in f.header["layers"]:
        name, n = m["name"], m["n_entries"]
        index = timing.best(repeat, decompress_index, f.sections[f"{name}/index"], m["index_codec"], n)[1]
        data = timing.best(repeat, get_lossy(m["lossy_codec"]).decompress, f.sections[f"{name}/data"], n)[1]
        out[name] = {"index_codec": m["index_codec"], "index_seconds": index,
                     "lossy_codec": m["lossy_codec"], "data_seconds": data}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--net", nargs="+", default=["lenet300", "lenet5"])
    ap.add_argument("--results", type=Path, default=ROOT / "results")
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--out", type=Path, default=OUT)
    a = ap.parse_args()
    entries = {}
    with tempfile.TemporaryDirectory() as tmp:
        for net in a.net:
            entries[net] = e = bench(net, a.results, a.repeat, Path(tmp))
            best, size = e["decode_seconds_best"], e["compressed_bytes"]
            print(f"{net}: decode paper {best['paper'] * 1e3:.1f} ms ({size['paper']:,} B), max "
                  f"{best['max'] * 1e3:.1f} ms ({size['max']:,} B): {e['max_x_paper']:.2f}x "
                  f"(goal <= {GOAL_X_PAPER}x)")
    atomic.write_json(a.out, {"cpu": timing.cpu_name(), "repeat": a.repeat, "nets": entries})
    print(f"wrote {a.out}")
    return 0 if all(e["goal_met"] for e in entries.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
