"""The package's shape: light pure modules, no import loops, no scripts imported by the library,
small modules and functions, prototxts shipped as package data."""
import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "deepsz_caffe"
HEAVY = ("caffe", "lmdb", "tqdm", "deepsz_caffe.deepsz", "deepsz_caffe.caffe.phase",
         "deepsz_caffe.deepsz.pipeline")
MAX_MODULE_LINES = 350
MAX_FUNCTION_LINES = 60


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


def test_modules_and_functions_stay_small():
    too_long = []
    for name, path in _modules():
        lines = path.read_text().splitlines()
        if len(lines) > MAX_MODULE_LINES:
            too_long.append(f"{name}: {len(lines)} lines")
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and \
                    node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES and \
                    not node.name.startswith("build_parser"):
                too_long.append(f"{name}.{node.name}: {node.end_lineno - node.lineno + 1} lines")
    assert not too_long, too_long


def test_a_plain_install_ships_the_prototxts_and_the_papers_numbers(tmp_path):
    """`pip install .` (not editable) must carry what `deepsz reproduce` reads."""
    src = tmp_path / "src"  # a copy, so setuptools' build/ never lands in the checkout
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".*", "results", "figures", "build", "data",
                                                             "__pycache__", "*.egg-info"))
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(tmp_path / "site"), str(src)], check=True, capture_output=True)
    paper = tmp_path / "site" / "deepsz_caffe" / "paper"
    assert (paper / "paper_values.json").is_file()
    for net in ("lenet300", "lenet5", "alexnet", "vgg16"):
        assert list((paper / "prototxt" / net).glob("*.prototxt")), net
    assert not (tmp_path / "site" / "experiments").exists()
