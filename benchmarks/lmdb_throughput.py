"""`deepsz lmdb` throughput (images/s) on 500x375 JPEGs (ImageNet's median size), against
Pillow's decode alone measured in the same run, and what the real convert_imageset's decode and
resize (OpenCV's imread + resize, opencv-python) cost and store: every image's stored array is
compared with OpenCV's.

The reference is the least any converter must do: open and decode each JPEG to RGB in one
process. `deepsz lmdb` (as a user runs it, a child process: decode, EXIF, resize to 256x256
with INTER_LINEAR sampling, BGR/CHW, Datum, LMDB write, fsync) is run with 1 worker and with
one per core, and its peak RSS sampled at two set sizes (memory flat in N).

    GLOG_minloglevel=2 nice .venv/bin/python -m benchmarks.lmdb_throughput [--images 500,1500]
"""
import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from deepsz_caffe import atomic, timing

from .common import BENCH, cli, measured

OUT = BENCH / "lmdb_throughput.json"
WIDTH, HEIGHT = 500, 375


def make_jpegs(directory: Path, n: int) -> list[tuple[str, int]]:
    """n photo-like 500x375 JPEGs (quality 90, 4:2:0, as most of ImageNet) and their list."""
    from PIL import Image

    directory.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    entries = []
    for i in range(n):
        path = directory / f"img_{i:06d}.JPEG"
        if not path.is_file():
            rng = np.random.default_rng(i)
            planes = [128 + 90 * np.sin(xx / rng.uniform(5, 40) + yy / rng.uniform(5, 40) + rng.uniform(0, 6))
                      for _ in range(3)]
            a = np.stack(planes, -1) + rng.normal(0, 12, (HEIGHT, WIDTH, 3))
            Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).save(path, quality=90)
        entries.append((path.name, i % 1000))
    return entries


def pillow_decode(directory: Path, entries) -> float:
    """Seconds to open and decode every file to an RGB array, one process."""
    from PIL import Image

    with timing.Stopwatch() as watch:
        for name, _ in entries:
            with Image.open(directory / name) as im:
                np.asarray(im.convert("RGB"))
    return watch.seconds


def opencv_reference(directory: Path, entries) -> dict:
    """OpenCV's imread + resize to 256x256 of every file, one process: its seconds, and how many
    of `deepsz lmdb`'s decoded arrays (imageset.decode) are identical to it."""
    import cv2

    from deepsz_caffe.caffe.imageset import decode

    with timing.Stopwatch() as watch:
        for name, _ in entries:
            cv2.resize(cv2.imread(str(directory / name), cv2.IMREAD_COLOR), (256, 256))
    same = sum(np.array_equal(decode(directory / name, height=256, width=256),
                              cv2.resize(cv2.imread(str(directory / name)), (256, 256)).transpose(2, 0, 1))
               for name, _ in entries)
    return {"opencv": cv2.__version__, "seconds": watch.seconds, "images_per_s": len(entries) / watch.seconds,
            "identical_images": int(same)}


def deepsz_lmdb(directory: Path, listing: Path, out: Path, workers: int) -> tuple[float, int]:
    """(wall seconds, peak RSS of the largest process) of `deepsz lmdb` in a child process."""
    seconds, peaks = measured(cli("lmdb", directory, listing, "-o", out, "--resize-height", 256,
                                  "--resize-width", 256, "--workers", workers, "--force"))
    return seconds, peaks["peak"]


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", default="500,1500", help="set sizes, comma-separated")
    p.add_argument("--dir", default=str(Path(tempfile.gettempdir()) / "deepsz-lmdb-throughput"))
    p.add_argument("--out", default=str(OUT))
    a = p.parse_args(argv)
    d, runs = Path(a.dir), []
    cores = os.cpu_count() or 1
    for n in (int(x) for x in a.images.split(",")):
        entries = make_jpegs(d / "jpeg", n)
        listing = d / f"list-{n}.txt"
        listing.write_text("".join(f"{name} {label}\n" for name, label in entries))
        pillow_decode(d / "jpeg", entries[:50])  # warm the page cache and Pillow
        decode_s = pillow_decode(d / "jpeg", entries)
        row = {"images": n, "pillow_decode_seconds": decode_s, "pillow_decode_images_per_s": n / decode_s,
               "opencv_imread_resize": opencv_reference(d / "jpeg", entries)}
        for workers in sorted({1, cores}):
            seconds, peak = deepsz_lmdb(d / "jpeg", listing, d / f"lmdb-{n}", workers)
            row[f"deepsz_lmdb_workers_{workers}"] = {
                "seconds": seconds, "images_per_s": n / seconds, "peak_rss_bytes": peak,
                "throughput_vs_pillow_decode": (n / seconds) / (n / decode_s)}
            print(f"[lmdb] N={n} workers={workers}: {n / seconds:.0f} images/s = "
                  f"{decode_s / seconds:.2f}x Pillow's decode alone ({n / decode_s:.0f} images/s); "
                  f"peak RSS {peak / 2**20:.0f} MiB", file=sys.stderr)
        runs.append(row)
    atomic.write_json(a.out, {
        "benchmark": "lmdb_throughput", "jpeg": f"{WIDTH}x{HEIGHT} quality 90", "resize": "256x256",
        "machine": {"cpu": timing.cpu_name(), "cpu_count": cores, "load_average": os.getloadavg()[0],
                    "date": time.strftime("%Y-%m-%d")},
        "note": "deepsz lmdb timed as a child process (start-up, worker spawn and fsync included)",
        "runs": runs})
    print(f"wrote {a.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
