"""benchmarks/ is a package run as `python -m benchmarks.<name>`, like experiments/: no sys.path
edits, nothing imported from tests/, siblings reached through the package (benchmarks.common)."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = sorted(p.stem for p in (ROOT / "benchmarks").glob("*.py")
                    if p.stem not in ("__init__", "common", "protobuf_route"))
TESTS_MODULES = {p.stem for p in (ROOT / "tests").glob("*.py")}


def _imports(path: Path) -> list[tuple[int, str]]:
    """(level, module) of every import statement, anywhere in the file."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(0, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            out.append((node.level, node.module or ""))
    return out


@pytest.mark.parametrize("name", [*BENCHMARKS, "common"])
def test_a_benchmark_imports_only_the_library_and_its_package(name):
    path = ROOT / "benchmarks" / f"{name}.py"
    assert "sys.path" not in path.read_text()
    siblings = set(BENCHMARKS) | {"common", "protobuf_route"}
    for level, module in _imports(path):
        top = module.split(".")[0]
        assert level or top not in siblings | TESTS_MODULES, f"{name}: import {module}"
        assert top != "tests", f"{name}: import {module}"


@pytest.mark.parametrize("name", BENCHMARKS)
def test_a_benchmark_runs_as_a_module(name, tmp_path):
    """`python -m benchmarks.<name> --help` from the checkout (not from benchmarks/)."""
    r = subprocess.run([sys.executable, "-m", f"benchmarks.{name}", "--help"], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.startswith("usage:"), r.stderr
