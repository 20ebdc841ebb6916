"""Writing and reading an AlexNet-shaped fc6-fc8 .caffemodel (weights and biases, float32, dense:
234 MB): the wire-format path (deepsz_caffe.caffe.wire) against protobuf's Python objects
(fill + write_net, read_net + blobs: the route the library took before wire.py, kept as the
tests' oracle in benchmarks/protobuf_route.py), beside
numpy tofile/fromfile of the same bytes, measured in the same run as the reference.

Shapes are the paper's (Table 1, deepsz_caffe.paper.values); the values are Gaussian float32,
dense (a pruned net's zeros are stored all the same), so the numbers belong to the shapes, not
to AlexNet. Every mode runs in its own child process, so its peak RSS is its own: VmHWM of the
whole child (interpreter, numpy, the arrays it holds, what the operation adds), reset through
/proc/self/clear_refs just before the timed calls where the kernel allows it (else the child's
lifetime peak). Write modes start holding the arrays, as a decoder does; read modes start with
nothing but the file, which the write modes have just put in the page cache. Old-path modes
also load pycaffe (counted: see rss_before). Goals (issue 14): write <= 3x tofile, peak RSS
<= 1.5x the dense size; the caffemodel byte-identical to protobuf's.

    .venv/bin/python -m benchmarks.caffemodel_io [--repeat 3] [--old-repeat 1] [--rounds 2] [--dir DIR]
"""
import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # must precede the numpy import to take effect
os.environ.setdefault("GLOG_minloglevel", "2")

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from deepsz_caffe.digest import sha256_file
from deepsz_caffe import timing
from deepsz_caffe.atomic import write_json
from deepsz_caffe.caffe import wire
from deepsz_caffe.paper.values import fc_shapes

ROOT = Path(__file__).resolve().parents[1]
GOAL_WRITE_X_TOFILE, GOAL_PEAK_X_DENSE = 3.0, 1.5
# mode -> (what it does, reference mode); write modes first: the read modes read their file
MODES = {
    "tofile": ("numpy tofile of every array into one file", None),
    "wire_write": ("wire.write_caffemodel(fsync=False)", "tofile"),
    "tofile_fsync": ("tofile + fsync", None),
    "wire_write_fsync": ("wire.write_caffemodel (fsync, its default)", "tofile_fsync"),
    "old_write": ("caffe.io.write_net(caffe.io.fill(...)): fill, SerializeToString, write, fsync",
                  "tofile_fsync"),
    "fromfile": ("numpy fromfile of the whole file", None),
    "wire_read": ("wire.read_caffemodel", "fromfile"),
    "old_read": ("caffe.io.blobs(caffe.io.read_net(...))", "fromfile"),
}
OLD = {"old_write", "old_read"}


def values(seed: int) -> dict[str, list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    return {name: [rng.standard_normal(shape, dtype=np.float32),
                   rng.standard_normal(shape[0], dtype=np.float32)]
            for name, shape in fc_shapes("alexnet").items()}


def skeleton() -> bytes:
    """A NetParameter of the fc layers, blobs with shapes and no data (as wire.skeleton)."""
    from deepsz_caffe.caffe import io as caffe_io

    net = caffe_io.caffe_pb2().NetParameter(name="AlexNet fc6-fc8 (synthetic)")
    bottom = "pool5"
    for name, (n_out, fan_in) in fc_shapes("alexnet").items():
        layer = net.layer.add(name=name, type="InnerProduct", bottom=[bottom], top=[name])
        layer.param.add(lr_mult=1)
        layer.param.add(lr_mult=2)
        layer.inner_product_param.num_output = n_out
        layer.blobs.add().shape.dim.extend([n_out, fan_in])
        layer.blobs.add().shape.dim.extend([n_out])
        bottom = name
    return net.SerializeToString()


def status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def tofile(arrays, path, fsync: bool) -> None:
    with open(path, "wb") as f:
        for arr in arrays:
            arr.tofile(f)
        if fsync:
            f.flush()
            os.fsync(f.fileno())


def operation(mode: str, work: Path, seed: int):
    """(the call to time in this child, the file it writes or None); what the call starts
    holding (the arrays) is built here."""
    skel, out = (work / "skeleton.bin").read_bytes(), work / f"{mode}.caffemodel"
    held = values(seed) if "write" in mode or "tofile" in mode else None
    model = work / "wire_write.caffemodel"
    if mode.startswith("tofile"):
        arrays = [a for blobs in held.values() for a in blobs]
        return lambda: tofile(arrays, out, mode.endswith("fsync")), out
    if mode.startswith("wire_write"):
        return lambda: wire.write_caffemodel(skel, held, out, fsync=mode.endswith("fsync")), out
    if mode == "fromfile":  # `is None`: each result is dropped before the next call
        return lambda: np.fromfile(model, np.uint8) is None, None
    if mode == "wire_read":
        return lambda: wire.read_caffemodel(model) is None, None
    from benchmarks import protobuf_route as caffe_oracle  # loads pycaffe: part of the old path's cost

    if mode == "old_write":
        return lambda: caffe_oracle.write_net(caffe_oracle.fill(skel, held), out), out
    return lambda: caffe_oracle.blobs(caffe_oracle.read_net(model)) is None, None


def child(mode: str, work: Path, seed: int, repeat: int) -> None:
    fn, out = operation(mode, work, seed)
    rss_before = status_kb("VmRSS")
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
        reset = True
    except OSError:
        reset = False
    seconds = []
    for _ in range(repeat):  # every write makes a new file: replacing or truncating the last
        if out is not None:  # one would add freeing its blocks (a TRIM on "discard" mounts)
            out.unlink(missing_ok=True)
        seconds += timing.timings(1, fn)[1]
    print(json.dumps({"seconds": seconds, "rss_before_bytes": rss_before << 10,
                      "peak_rss_bytes": status_kb("VmHWM") << 10, "hwm_reset": reset}))


def run_child(mode: str, work: Path, seed: int, repeat: int) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.caffemodel_io", "--child", mode, "--dir", str(work),
           "--seed", str(seed), "--repeat", str(repeat)]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if done.returncode:
        sys.exit(f"{mode} failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def merge(rounds: list[dict]) -> dict:
    """One mode's rounds together: every time, the highest peak, the lowest RSS before."""
    seconds = [s for r in rounds for s in r["seconds"]]
    return {"seconds": seconds, "best_s": min(seconds), "median_s": statistics.median(seconds),
            "peak_rss_bytes": max(r["peak_rss_bytes"] for r in rounds),
            "rss_before_bytes": min(r["rss_before_bytes"] for r in rounds),
            "hwm_reset": all(r["hwm_reset"] for r in rounds)}


def report(results: dict, dense: int) -> dict:
    """Print the table; return ratios and goals."""
    print(f"\n{'mode':<18}{'best s':>8}{'median s':>10}{'x ref':>8}{'peak RSS MB':>13}"
          f"{'x dense':>9}{'RSS before MB':>15}  ref")
    ratios = {}
    for mode, r in results.items():
        ref = MODES[mode][1]
        x = r["best_s"] / results[ref]["best_s"] if ref else 1.0
        ratios[mode] = {"x_reference_best": x, "reference": ref,
                        "peak_rss_x_dense": r["peak_rss_bytes"] / dense}
        print(f"{mode:<18}{r['best_s']:8.3f}{r['median_s']:10.3f}{x:8.2f}"
              f"{r['peak_rss_bytes'] / 1e6:13.0f}{r['peak_rss_bytes'] / dense:9.2f}"
              f"{r['rss_before_bytes'] / 1e6:15.0f}  {ref or '-'}")
    goals = {
        "wire_write_le_3x_tofile": ratios["wire_write"]["x_reference_best"] <= GOAL_WRITE_X_TOFILE,
        "wire_write_fsync_le_3x_tofile_fsync":
            ratios["wire_write_fsync"]["x_reference_best"] <= GOAL_WRITE_X_TOFILE,
        "wire_write_peak_rss_le_1.5x_dense": ratios["wire_write"]["peak_rss_x_dense"] <= GOAL_PEAK_X_DENSE,
        "wire_read_peak_rss_le_1.5x_dense": ratios["wire_read"]["peak_rss_x_dense"] <= GOAL_PEAK_X_DENSE,
    }
    return {"ratios": ratios, "goals": goals}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3, help="timed calls per mode (best and median)")
    ap.add_argument("--old-repeat", type=int, default=1, help="timed calls of the slow old modes")
    ap.add_argument("--rounds", type=int, default=2,
                    help="times every mode's child runs, the modes in turn (spreads load changes)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dir", type=Path, default=None,
                    help="where the caffemodels go (default: a temporary directory, removed after)")
    ap.add_argument("--out", type=Path, default=ROOT / "results/bench/caffemodel_io.json")
    ap.add_argument("--child", choices=tuple(MODES), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if min(args.repeat, args.old_repeat, args.rounds) < 1:
        ap.error("--repeat, --old-repeat and --rounds must be >= 1")
    if args.dir is not None and not args.dir.is_dir():
        ap.error(f"--dir {args.dir} is not a directory")
    if args.child:
        child(args.child, args.dir, args.seed, args.repeat)
        return 0
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="caffemodel_io.") as tmp:
        return measure(Path(tmp), args)


def measure(work: Path, args) -> int:
    (work / "skeleton.bin").write_bytes(skeleton())
    shapes = fc_shapes("alexnet")
    dense = 4 * sum(n * f + n for n, f in shapes.values())
    load = os.getloadavg()[0]
    print(f"AlexNet-shaped fc6-fc8, {dense / 1e6:.1f} MB dense float32 (synthetic), files in "
          f"{work}; {timing.cpu_name()}, load average {load:.2f}")
    rounds = {mode: [] for mode in MODES}
    for i in range(args.rounds):
        for mode, (what, _) in MODES.items():
            repeat = args.old_repeat if mode in OLD else args.repeat
            print(f"  round {i + 1}/{args.rounds} {mode}: {what} (x{repeat})", flush=True)
            rounds[mode].append(run_child(mode, work, args.seed, repeat))
    results = {mode: merge(r) for mode, r in rounds.items()}
    digests = {m: sha256_file(work / f"{m}.caffemodel")
               for m in ("wire_write", "wire_write_fsync", "old_write")}
    identical = len(set(digests.values())) == 1
    tofile_bytes = (work / "tofile.caffemodel").stat().st_size
    summary = report(results, dense)
    print(f"\ncaffemodel {(work / 'old_write.caffemodel').stat().st_size:,} bytes "
          f"(tofile {tofile_bytes:,}); wire == protobuf byte for byte: {identical}")
    print("goals: " + ", ".join(f"{k} {'met' if v else 'NOT met'}" for k, v in summary["goals"].items()))
    write_json(args.out, {
        "description": __doc__.split("\n\n")[0], "synthetic": True,
        "layers": {k: list(v) for k, v in shapes.items()}, "dense_bytes": dense,
        "modes": {m: {"what": MODES[m][0], **r} for m, r in results.items()}, **summary,
        "identical_to_protobuf": identical, "sha256": digests,
        "config": {"repeat": args.repeat, "old_repeat": args.old_repeat, "rounds": args.rounds,
                   "seed": args.seed, "dir": str(args.dir or tempfile.gettempdir()),
                   "goal_write_x_tofile": GOAL_WRITE_X_TOFILE, "goal_peak_x_dense": GOAL_PEAK_X_DENSE},
        "environment": {"cpu": timing.cpu_name(), "python": platform.python_version(),
                        "numpy": np.__version__, "load_average_at_start": load,
                        "load_average_at_end": os.getloadavg()[0]},
        "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    })
    print(f"wrote {args.out}")
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
