"""README "Your own net": the tutorial's command block, run verbatim through bash on a net and
LMDBs that are not MNIST (helpers.own_net: 10 classes of blurred-blob 16x16 images, a conv+fc
net), from an empty current directory. It must hold the loss budget, give back the pruned mask
exactly, and write nothing outside $OUT: not in the current directory, not beside the user's
prototxts or LMDBs, not in this repository's results/ (where the copied solver's snapshot_prefix
points)."""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from helpers import own_net

ROOT = Path(__file__).resolve().parents[1]
MAX_ITER = 300  # the solver's; train and prune must default to it


def _tutorial() -> tuple[str, str]:
    """(the block that sets NET and OUT, the command block) of README's "Your own net"."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Your own net\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    assert len(blocks) == 2, "the tutorial has a variables block and a command block"
    return blocks[0], blocks[1]


def _listing(root: Path, content: bool = False) -> dict:
    """Every path under `root` (with its bytes if `content`)."""
    return {str(p.relative_to(root)): (p.read_bytes() if content and p.is_file() else None)
            for p in sorted(root.rglob("*"))}


def _deepsz_bin(tmp_path: Path) -> Path:
    """The directory holding this interpreter's `deepsz` (a shim running the same CLI module
    when the package was not installed with its script)."""
    here = Path(sys.executable).parent
    if (here / "deepsz").is_file():
        return here
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "deepsz").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m deepsz_caffe.cli "$@"\n')
    (shim / "deepsz").chmod(0o755)
    return shim


def _number(pattern: str, text: str) -> float:
    m = re.search(pattern, text)
    assert m, f"no {pattern!r} in:\n{text}"
    return float(m.group(1))


def test_tutorial_commands_verbatim(tmp_path):
    from deepsz_caffe.caffe.wire import read_caffemodel
    from deepsz_caffe.format import network as dsz

    variables, commands = _tutorial()
    assert sorted(re.findall(r"^(\w+)=", variables, re.M)) == ["NET", "OUT"]
    user = own_net(tmp_path / "user", max_iter=MAX_ITER)
    # A copied solver whose snapshot_prefix points into our results/ (as ours once did).
    solver = user["net"] / "solver.prototxt"
    solver.write_text(solver.read_text().replace('"snapshots/own"', f'"{ROOT / "results" / "own"}"'))
    out, cwd = tmp_path / "user" / "out", tmp_path / "cwd"
    cwd.mkdir()
    env = {**os.environ, "NET": str(user["net"]), "OUT": str(out),
           "PATH": f"{_deepsz_bin(tmp_path)}{os.pathsep}{os.environ.get('PATH', '')}"}
    before = {"tmp": sorted(p.name for p in tmp_path.iterdir()), "net": _listing(user["net"], True),
              "data": _listing(user["data"]), "results": _listing(ROOT / "results")}

    run = subprocess.run(["bash", "-c", "set -euo pipefail\n" + commands], cwd=cwd, env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    lines = run.stdout.splitlines()
    train, prune = (next(ln for ln in lines if ln.startswith(f"wrote {out}/{name}"))
                    for name in ("trained.caffemodel", "pruned.caffemodel"))
    tested = next(ln for ln in lines if ln.startswith(f"{out}/decoded.caffemodel: top-1"))

    # train and prune ran the solver's max_iter and printed a real top-1 (10 classes: chance 10%).
    assert f"{MAX_ITER} iterations" in train and _number(r"test top-1 ([\d.]+)%", train) > 50
    assert f"after {MAX_ITER} masked iterations" in prune
    top1_pruned = _number(r"test top-1 ([\d.]+)%", prune)
    top1_decoded = _number(r"top-1 ([\d.]+)%", tested)
    expected_loss = _number(r"--expected-loss ([\d.]+)", commands)
    assert top1_decoded >= top1_pruned - expected_loss - 1e-6, run.stdout

    # The decoded net keeps the pruned mask exactly, fillers (zero runs > 255) included.
    layers = [m["name"] for m in dsz.inspect(out / "net.dsz")["layers"]]
    assert sorted(layers) == ["ip1", "ip2"]
    pruned, decoded = (read_caffemodel(out / f"{name}.caffemodel")[0]
                       for name in ("pruned", "decoded"))
    runs = 0
    for layer in layers:
        p, d = pruned[layer][0], decoded[layer][0]
        assert np.array_equal(d == 0, p == 0), f"{layer}: decoded zeros differ from the pruned mask"
        runs += int(np.count_nonzero(np.diff(np.flatnonzero(p.ravel())) > 256))
    assert runs > 0, "no zero run over 255: the filler path was not exercised"

    # Nothing outside $OUT: not the cwd, not beside the prototxts or LMDBs, not in results/.
    assert not list(cwd.iterdir())
    assert _listing(user["net"], True) == before["net"]
    assert _listing(user["data"]) == before["data"]
    assert sorted(p.name for p in tmp_path.iterdir()) == before["tmp"]
    # results/ is shared with concurrent runs (e.g. `deepsz reproduce`): what appeared there
    # must not be ours (snapshots "own_iter_*", runtime prototxts, the tutorial's outputs).
    ours = ("own", ".run.prototxt", "trained.caffemodel", "pruned.caffemodel", "decoded.caffemodel",
            "net.dsz", "net.work")
    new = set(_listing(ROOT / "results")) - set(before["results"])
    assert not [p for p in new if any(o in Path(p).name for o in ours)], new
    assert sorted(p.name for p in out.iterdir()) == ["decoded.caffemodel", "net.dsz", "net.work",
                                                     "pruned.caffemodel", "trained.caffemodel"]
    shutil.rmtree(out)
