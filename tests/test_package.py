"""The package's shape: light pure modules, no import loops, no scripts imported by the library;
`pip install .` beside a Caffe gives a working CLI with every dependency declared. (Small
functions are ruff's C901/PLR0912/PLR0915, run by `make test`.)"""
import ast
import hashlib
import importlib.metadata
import json
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "deepsz_caffe"
HEAVY = ("caffe", "lmdb", "tqdm", "deepsz_caffe.deepsz", "deepsz_caffe.caffe.phase",
         "deepsz_caffe.deepsz.pipeline")


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        name = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        yield name, path


@pytest.mark.parametrize("module", ["deepsz_caffe", "deepsz_caffe.sparse", "deepsz_caffe.codecs",
                                    "deepsz_caffe.format", "deepsz_caffe.format.network"])
def test_pure_modules_load_no_caffe_lmdb_tqdm_or_pipeline(module):
    code = f"import json, sys, {module}; print(json.dumps(sorted(sys.modules)))"
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                       check=True).stdout)
    assert not [m for m in loaded if m.split(".")[0] in HEAVY[:3] or m.startswith(HEAVY[3:])]


def _imports(name: str, path: Path) -> set[str]:
    """Package modules imported at module level (function-level imports are deliberate: lazy)."""
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            out |= {base} | {f"{base}.{a.name}" for a in node.names}
    return {m for m in out if m.startswith("deepsz_caffe")}


def test_no_import_loops_and_no_scripts_imported():
    known = dict(_modules())
    graph = {name: {m for m in _imports(name, path) if m in known and m != name}
             for name, path in known.items()}
    for name, path in known.items():
        assert not any(line.lstrip().startswith(("import experiments", "from experiments"))
                       for line in path.read_text().splitlines()), f"{name} imports a script"

    state: dict[str, int] = {}

    def visit(node, stack):
        state[node] = 1
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                raise AssertionError("import loop: " + " -> ".join(stack[stack.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for name in graph:
        if name not in state:
            visit(name, [name])


def _beside(tmp_path) -> Path:
    """This venv's site-packages without deepsz_caffe: "a Caffe (and the pinned stack) already there"."""
    site = Path(sysconfig.get_paths()["purelib"])
    beside = tmp_path / "beside"
    beside.mkdir()
    for entry in site.iterdir():
        if not entry.name.startswith(("deepsz_caffe", "__editable__", "_deepsz")) and entry.suffix != ".pth":
            (beside / entry.name).symlink_to(entry)
    return beside


def test_pip_install_beside_an_existing_caffe_gives_a_working_cli(tmp_path, golden_source):
    """`pip install .` (not editable) into a fresh venv that sees a Caffe installed elsewhere: pip
    finds every declared dependency there (offline: --no-index), and the installed `deepsz`
    encodes and decodes with the default codec; the prototxts and the paper's numbers ship."""
    src = tmp_path / "src"  # a copy, so setuptools' build/ never lands in the checkout
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".*", "results", "figures", "build", "data",
                                                             "__pycache__", "*.egg-info"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = Path(subprocess.run([venv / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_paths()"
                                "['purelib'])"], check=True, capture_output=True, text=True).stdout.strip())
    (site / "existing-caffe.pth").write_text(f"{_beside(tmp_path)}\n")
    r = subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install",
                        "-q", "--no-index", "--no-build-isolation", str(src)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    paper = site / "deepsz_caffe" / "paper"
    assert (paper / "paper_values.json").is_file()
    for net in ("lenet300", "lenet5", "alexnet", "vgg16"):
        assert list((paper / "prototxt" / net).glob("*.prototxt")), net
    assert not (site / "experiments").exists() and not (site / "benchmarks").exists()

    deepsz = venv / "bin" / "deepsz"
    r = subprocess.run([deepsz, "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "encode" in r.stdout and "--quiet" in r.stdout, r.stderr
    dsz, out = tmp_path / "tiny.dsz", tmp_path / "tiny.caffemodel"
    for argv in (["encode", "--weights", golden_source, "--eb-all", "0.01", "-o", dsz],
                 ["decode", dsz, "-o", out]):
        r = subprocess.run([deepsz, *map(str, argv)], capture_output=True, text=True, cwd=tmp_path)
        assert r.returncode == 0, r.stderr
    manifest = json.loads((ROOT / "tests" / "data" / "golden" / "manifest.json").read_text())
    assert hashlib.sha256(out.read_bytes()).hexdigest() == manifest["files"]["sz2-zstd"]["decoded_sha256"]
    r = subprocess.run([venv / "bin" / "python", "-c", "import deepsz_caffe; print(deepsz_caffe.__file__)"],
                       capture_output=True, text=True, check=True, cwd=tmp_path)
    assert r.stdout.startswith(str(site))  # the installed copy ran, not this checkout


def test_every_third_party_import_is_a_declared_dependency():
    """What `pip install .` brings: each distribution the library imports (top level or lazily)
    is in pyproject's dependencies, or an optional extra, or Caffe (built by scripts/), or NNCodec
    (imported only by baselines/nncodec_child.py, run by .venv-nncodec's interpreter: it pins numpy<2)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {re.split(r"[\[<>=!~ ;]", d)[0].lower() for d in project["dependencies"]}
    optional = {re.split(r"[\[<>=!~ ;]", d)[0].lower()
                for extra in project.get("optional-dependencies", {}).values() for d in extra}
    dists = importlib.metadata.packages_distributions()
    needed = {}
    for name, path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            tops = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                    [node.module] if isinstance(node, ast.ImportFrom) and not node.level and node.module
                    else [])
            for top in (t.split(".")[0] for t in tops):
                if top not in sys.stdlib_module_names and top not in ("deepsz_caffe", "caffe", "nncodec"):
                    needed.setdefault(top, name)
    missing = {top: where for top, where in needed.items()
               if not {d.lower() for d in dists.get(top, [top])} & (declared | optional)}
    assert not missing, missing
    assert "hdf5plugin" in declared  # the default codec's library is found through it, not imported
