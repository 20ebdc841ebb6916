"""What checking untrusted files costs a genuine decode (issue 12): `deepsz decode` of the same
.dsz files by this checkout and by an older one (--before, a git revision's package extracted
with `git archive` into a temporary directory), cold, as users run it: a fresh process per decode,
the two checkouts interleaved round by round (their order alternating) so that load on a shared
machine reaches both alike.

Files: LeNet-300-100 with random weights pruned to the paper's densities, and
AlexNet-shaped fc6-fc8 (deepsz_caffe.paper.synthetic.pruned_net: the paper's shapes and kept
fractions, Gaussian weights; the numbers belong to the shapes), each SZ 2 + best index codec,
encoded once by this checkout (the format is the older one's too). Per file and checkout: the
whole command's wall time, and the wall and CPU time (its own and its children's) of the one
network.decode call; the ratios after/before are of the medians. Also, in this checkout, the
wire writer against numpy's tofile of the same decoded arrays (both fsynced; goal <= 3x).

    .venv/bin/python -m benchmarks.decode_cost --before 93a4c34 [--rounds 7] [--out PATH]
"""
import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from .common import BENCH, ROOT

os.environ.setdefault("GLOG_minloglevel", "2")  # Caffe builds LeNet quietly
LENET_BOUNDS = {"ip1": 0.02, "ip2": 0.01, "ip3": 0.005}

_DECODE = """
import os, resource, sys
os.environ.setdefault("GLOG_minloglevel", "2")
from deepsz_caffe import timing
from deepsz_caffe.format import network
import deepsz_caffe.cli
def cpu():
    a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime
c = cpu()
_, (wall,) = timing.timings(1, network.decode, sys.argv[1], sys.argv[2])
while True:  # reap the decoder's child, so that its CPU time counts
    try:
        os.waitpid(-1, 0)
    except ChildProcessError:
        break
print(wall, cpu() - c)
"""


def make_inputs(directory: Path) -> dict[str, Path]:
    from deepsz_caffe.format import network
    from deepsz_caffe.paper import synthetic

    from .common import fc_caffemodel, synthetic_model

    synthetic_model("lenet300", directory / "lenet300.caffemodel", seed=12)
    network.encode(directory / "lenet300.caffemodel", directory / "lenet300.dsz", error_bounds=LENET_BOUNDS)
    fc_caffemodel("alexnet-fc", synthetic.pruned_net("alexnet", seed=0), directory / "alexnet.caffemodel")
    network.encode(directory / "alexnet.caffemodel", directory / "alexnet.dsz",
                   error_bounds={"fc6": 0.007, "fc7": 0.007, "fc8": 0.005})
    return {"lenet300": directory / "lenet300.dsz", "alexnet": directory / "alexnet.dsz"}


def run_once(tree: Path, dsz: Path, out: Path) -> dict:
    from deepsz_caffe import timing

    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1", "GLOG_minloglevel": "2"}
    _, (command,) = timing.timings(1, subprocess.run, [sys.executable, "-m", "deepsz_caffe.cli", "decode",
                                                       str(dsz), "-o", str(out)],
                                   env=env, check=True, capture_output=True, cwd=tree)
    wall, cpu = map(float, subprocess.run([sys.executable, "-c", _DECODE, str(dsz), str(out)], env=env,
                                          check=True, capture_output=True, text=True,
                                          cwd=tree).stdout.split()[-2:])
    return {"command_s": command, "decode_s": wall, "decode_cpu_s": cpu}


def wire_vs_tofile(dsz: Path, work: Path, repeat: int = 3) -> dict:
    import numpy as np

    from deepsz_caffe import timing
    from deepsz_caffe.caffe import wire
    from deepsz_caffe.format import network

    values, skeleton = wire.read_caffemodel(network.decode(dsz, work / "w.caffemodel"))
    flat = np.concatenate([a.reshape(-1) for arrays in values.values() for a in arrays])

    def tofile():
        with open(work / "t.bin", "wb") as f:
            flat.tofile(f)
            f.flush()
            os.fsync(f.fileno())

    _, write = timing.best(repeat, wire.write_caffemodel, skeleton, values, work / "w2.caffemodel")
    _, raw = timing.best(repeat, tofile)
    return {"wire_write_s": write, "tofile_s": raw, "wire_x_tofile": write / raw}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--before", required=True, help="git revision to compare with (e.g. 93a4c34)")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--out", type=Path, default=BENCH / "decode_cost.json")
    a = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="deepsz-decode-cost-") as tmp:
        tmp = Path(tmp)
        (tmp / "before").mkdir()  # the package as of --before (an archive: no worktree to clean up)
        archive = subprocess.run(["git", "archive", a.before, "deepsz_caffe"], cwd=ROOT, check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(tmp / "before")], input=archive, check=True)
        trees = {"before": tmp / "before", "after": ROOT}
        files = make_inputs(tmp)
        runs = {f: {t: [] for t in trees} for f in files}
        for rnd in range(a.rounds):
            for name, dsz in files.items():
                for tree in (list(trees) if rnd % 2 == 0 else list(reversed(trees))):
                    runs[name][tree].append(run_once(trees[tree], dsz, tmp / f"{name}.{tree}.caffemodel"))
        wire = wire_vs_tofile(files["alexnet"], tmp)
    summary = {}
    for name, by_tree in runs.items():
        med = {t: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for t, rs in by_tree.items()}
        summary[name] = {"median": med, "after_over_before": {k: med["after"][k] / med["before"][k]
                                                              for k in med["after"]}}
        ratio = summary[name]["after_over_before"]
        print(f"{name:9}" + "  ".join(f"{k} {med['before'][k] * 1e3:.0f} -> {med['after'][k] * 1e3:.0f} ms "
                                      f"({ratio[k]:.2f}x)" for k in med["after"]))
    print(f"wire write {wire['wire_write_s']:.3f} s = {wire['wire_x_tofile']:.2f}x tofile (goal <= 3x)")
    from deepsz_caffe.atomic import write_json

    date = datetime.now(timezone.utc).isoformat(timespec="seconds")
    write_json(a.out, {"benchmark": "decode_cost", "date": date, "machine": platform.platform(),
                       "before": a.before, "rounds": a.rounds, "summary": summary, "wire": wire,
                       "runs": runs})
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
