"""Synthetic ImageNet-shaped LMDB writer (issue 14 item 1): time, bytes on disk and peak RSS
for N images of 3 x 256 x 256, against a reference measured in the same run: the same writer
storing one constant image N times (protobuf + LMDB alone, no generation).

Each (writer, N) runs in its own process so that its peak RSS (ru_maxrss) is its own; bounded
memory shows as the same RSS for every N.

    nice -n 10 .venv/bin/python -m benchmarks.synth_lmdb [--images 1000,5000] [--size 256] [--out PATH]
"""
import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # must precede the numpy import to take effect

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from deepsz_caffe import log, timing
from deepsz_caffe.atomic import write_json

ROOT = Path(__file__).resolve().parent.parent


def child(mode: str, n: int, size: int, path: str) -> dict:
    """Write one database in this process; report seconds, bytes on disk and peak RSS."""
    from deepsz_caffe.caffe import synth_lmdb

    if mode == "constant":
        image = np.full((3, size, size), 117, np.uint8)
        synth_lmdb.synthetic_image = lambda seed, index, size, classes: (image, index % classes)
    _, seconds = timing.best(1, synth_lmdb.write_synthetic_imagenet, path, n, size=size, progress=False)
    files = list(Path(path).iterdir())
    return {"seconds": seconds, "images_per_s": n / seconds,
            "bytes_apparent": sum(f.stat().st_size for f in files),
            "bytes_on_disk": sum(f.stat().st_blocks * 512 for f in files),
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def measure(mode: str, n: int, size: int, scratch: Path) -> dict:
    path = scratch / f"{mode}-{n}"
    out = subprocess.run([sys.executable, __file__, "--child", mode, str(n), str(size), str(path)],
                         check=True, capture_output=True, text=True).stdout
    shutil.rmtree(path)
    return json.loads(out.splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", default="1000,5000", help="comma-separated image counts")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--out", default=str(ROOT / "results/bench/synth_lmdb.json"))
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    a = ap.parse_args()
    log.configure()  # the library's stage lines and progress bars, as the CLI shows them
    if a.child:
        mode, n, size, path = a.child
        print(json.dumps(child(mode, int(n), int(size), path)))
        return 0
    try:
        counts = [int(s) for s in a.images.split(",")]
    except ValueError:
        print(f"--images expects comma-separated integers, got {a.images!r}", file=sys.stderr)
        return 2
    rows = []
    with tempfile.TemporaryDirectory(prefix="synth-lmdb-bench-") as scratch:
        for n in counts:
            synth, const = (measure(m, n, a.size, Path(scratch)) for m in ("synthetic", "constant"))
            rows.append({"images": n, "size": a.size, "synthetic": synth, "constant_reference": const,
                         "time_ratio_vs_reference": synth["seconds"] / const["seconds"]})
            print(f"N={n:>6}  synthetic {synth['seconds']:6.1f} s ({synth['images_per_s']:5.0f} img/s, "
                  f"{synth['bytes_on_disk'] / 2**20:7.1f} MiB, RSS {synth['peak_rss_mib']:5.0f} MiB)  "
                  f"reference {const['seconds']:5.1f} s (RSS {const['peak_rss_mib']:5.0f} MiB)  "
                  f"ratio {rows[-1]['time_ratio_vs_reference']:.1f}x")
    write_json(a.out, {"benchmark": "synth_lmdb", "cpu_count": os.cpu_count(), "runs": rows})
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
