"""`deepsz decode` and `deepsz encode` end to end on AlexNet-shaped fc6-fc8 (issue 14 item 4):
file -> file against numpy `tofile` of the dense caffemodel's size, measured in the same run.

The caffemodel holds deepsz_caffe.paper.synthetic's fc6-fc8 (the paper's kept fractions, zero
biases: 234 MB dense); encode uses the paper's error bounds. Each mode runs in its own child
process, best of --repeat: the library call alone (imports done, VmHWM reset through
/proc/self/clear_refs just before it, so its peak RSS is the call's) and the whole CLI command
(interpreter start included; peak RSS: the largest VmHWM of its processes, sampled). decode writes through
deepsz_caffe.atomic (fsync, rename), so tofile is measured with and without fsync. Goals:
decode <= 3x tofile, peak RSS <= 1.5x the dense size.

    .venv/bin/python -m benchmarks.dsz_end_to_end [--repeat 3] [--dir DIR]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from deepsz_caffe import atomic, timing
from deepsz_caffe.paper import synthetic

from .common import BENCH, ROOT, cli, measured

OUT = BENCH / "dsz_end_to_end.json"
GOALS = {"decode_x_tofile": 3.0, "decode_peak_x_dense": 1.5}


CHILD = """
import json, os, sys
from pathlib import Path
import numpy as np
from deepsz_caffe import decode, encode
from deepsz_caffe.timing import Stopwatch
mode, a, b = sys.argv[1:4]
data = np.ones(int(a) // 4, np.float32) if mode.startswith("tofile") else None
try:
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM from here on
except OSError:
    pass
with Stopwatch() as watch:
    if mode == "decode":
        decode(a, b)
    elif mode == "encode":
        encode(a, b, error_bounds=json.loads(sys.argv[4]))
    else:
        with open(b, "wb") as f:
            data.tofile(f)
            f.flush()
            if mode == "tofile_fsync":
                os.fsync(f.fileno())
seconds = watch.seconds
hwm = next(int(ln.split()[1]) for ln in open("/proc/self/status") if ln.startswith("VmHWM"))
print(json.dumps({"seconds": seconds, "peak_rss_bytes": hwm << 10}))
"""


def child(mode: str, *args) -> dict:
    done = subprocess.run([sys.executable, "-c", CHILD, mode, *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def fc_caffemodel(path: Path) -> Path:
    """AlexNet-shaped fc6-fc8 (synthetic, the paper's kept fractions) with zero biases."""
    from deepsz_caffe.caffe.io import caffe_pb2
    from deepsz_caffe.caffe.wire import write_caffemodel

    net = caffe_pb2().NetParameter(name="alexnet-fc")
    values = {}
    for name, w in synthetic.pruned_net("alexnet").items():
        layer = net.layer.add(name=name, type="InnerProduct")
        for shape in (w.shape, w.shape[:1]):
            layer.blobs.add().shape.dim.extend(shape)
        values[name] = [w, np.zeros(w.shape[0], np.float32)]
    return write_caffemodel(net.SerializeToString(), values, path)


def run_decode(args) -> dict:
    """decode/encode in-process (in a child) and through the CLI vs tofile, best of --repeat."""
    d = Path(args.dir)
    d.mkdir(parents=True, exist_ok=True)
    weights, dsz = fc_caffemodel(d / "alexnet-fc.caffemodel"), d / "alexnet-fc.dsz"
    out = d / "decoded.caffemodel"
    bounds = json.dumps(synthetic.PAPER_ERROR_BOUNDS["alexnet"])
    size = weights.stat().st_size
    best = {}
    for mode, a, b in (("encode", weights, dsz), ("decode", dsz, out), ("tofile", size, d / "t.bin"),
                       ("tofile_fsync", size, d / "t.bin")):
        runs = [child(mode, a, b, bounds) for _ in range(args.repeat)]
        best[mode] = min(runs, key=lambda r: r["seconds"])
    eb = ",".join(f"{k}={v}" for k, v in synthetic.PAPER_ERROR_BOUNDS["alexnet"].items())
    cli_decode = min((measured(cli("decode", dsz, "-o", out)) for _ in range(args.repeat)),
                     key=lambda r: r[0])
    cli_encode = min((measured(cli("encode", "--weights", weights, "--eb", eb, "-o", dsz))
                      for _ in range(args.repeat)), key=lambda r: r[0])
    (d / "t.bin").unlink(missing_ok=True)
    r = {"dense_bytes": size, "dsz_bytes": dsz.stat().st_size, **best,
         "cli_decode": {"seconds": cli_decode[0], "peak_rss_bytes": cli_decode[1]["peak"]},
         "cli_encode": {"seconds": cli_encode[0], "peak_rss_bytes": cli_encode[1]["peak"]},
         "decode_x_tofile": best["decode"]["seconds"] / best["tofile"]["seconds"],
         "decode_x_tofile_fsync": best["decode"]["seconds"] / best["tofile_fsync"]["seconds"],
         "decode_peak_x_dense": best["decode"]["peak_rss_bytes"] / size,
         "encode_peak_x_dense": best["encode"]["peak_rss_bytes"] / size}
    print(f"[decode] {size / 1e6:.0f} MB dense: decode {best['decode']['seconds']:.2f} s = "
          f"{r['decode_x_tofile']:.1f}x tofile ({r['decode_x_tofile_fsync']:.1f}x tofile+fsync), peak "
          f"RSS {r['decode_peak_x_dense']:.2f}x dense; CLI {cli_decode[0]:.2f} s; encode "
          f"{best['encode']['seconds']:.2f} s, {r['encode_peak_x_dense']:.2f}x dense", file=sys.stderr)
    return r


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=3, help="best of this many runs per mode")
    p.add_argument("--dir", default=str(Path(tempfile.gettempdir()) / "deepsz-dsz-end-to-end"))
    p.add_argument("--out", default=str(OUT))
    a = p.parse_args(argv)
    machine = {"cpu": timing.cpu_name(), "cpu_count": os.cpu_count(),
               "load_average": os.getloadavg()[0], "date": time.strftime("%Y-%m-%d")}
    result = {**run_decode(a), "goals": GOALS, "machine": machine}
    atomic.write_json(a.out, result)
    print(f"wrote {a.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
