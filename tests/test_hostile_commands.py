"""Every command's arguments given as a careless or hostile user would (tests/hostile_commands.py,
issue 23 findings 7-11), through the real CLI in tests/hostile_driver.py's forked children, judged
by hostile_cases.verdict as the other careless-user cases: refused in one line, exit 1, nothing
left behind, no traceback, crash or hang. Each case is its own test id, "cmd/<command>/<case>"."""

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

import forge
import hostile_cases
import hostile_commands
from hostile_driver import classify

PARALLEL = int(os.environ.get("DEEPSZ_HOSTILE_PARALLEL", min(2, os.cpu_count() or 1)))
ROOT = Path(tempfile.mkdtemp(prefix="deepsz-hostile-cmd-"))


def _cleanup():
    hostile_cases.release(ROOT)
    shutil.rmtree(ROOT, ignore_errors=True)


atexit.register(_cleanup)
MANIFEST = forge.write_corpus(ROOT / "corpus")  # its genuine .dsz and caffemodel are the inputs
JOBS = hostile_commands.command_jobs(ROOT, MANIFEST)
_RESULTS: dict[str, tuple[dict, dict]] = {}


def _outcome(job_id: str) -> tuple[dict, dict]:
    if not _RESULTS:
        try:
            results = hostile_cases.run_batch(JOBS, ROOT / "batch", PARALLEL)
        finally:
            hostile_cases.release(ROOT)
        _RESULTS.update({j["id"]: (j, r) for j, r in zip(JOBS, results)})
    return _RESULTS[job_id]


@pytest.mark.parametrize("job_id", [job["id"] for job in JOBS])
def test_command_case(job_id):
    job, result = _outcome(job_id)
    outcome, ok, why = hostile_cases.verdict(job, result, {})
    assert ok, (
        f"{job_id}: {outcome}: {why}\n  argv: {job['argv']}\n  exit {result['rc']}, "
        f"{result['seconds']} s, left {result['leftovers']}\n  stderr: {result['stderr'][-1500:]}"
    )


def test_plugin_failures_name_the_method_and_the_call():
    expected = {
        "RaiseInEncode": "encode",
        "RaiseInDecode": "decode",
        "RaiseInSweep": "sweep",
        "RaiseInInit": "__init__",
        "RaiseInUnavailable": "unavailable",
        "RaiseInSetup": "setup",
        "RaiseInDescribe": "describe",
        "RaiseInLayerBytes": "layer_bytes",
        "ExitInEncode": "encode",
        "module-raises-on-import": "import",
    }
    for name, call in expected.items():
        _, result = _outcome(f"cmd/compare/plugin-{name}")
        assert result["rc"] == 1 and f"{call}" in result["stderr"], (name, result["rc"], result["stderr"])


def test_interrupt_inside_a_plugin_is_an_interrupt_not_a_success(tmp_path):
    p = hostile_commands.inputs(tmp_path / "in", MANIFEST)
    job = hostile_commands.plugin_job(
        tmp_path / "run",
        "compare/plugin-InterruptInEncode",
        hostile_commands.compare_argv(p, "--method", "hostile_plugins:InterruptInEncode"),
        output="out.json",
        timeout=hostile_commands.CAFFE_TIMEOUT,
    )
    try:
        (result,) = hostile_cases.run_batch([job], tmp_path / "batch", 1)
    finally:
        hostile_cases.release(tmp_path / "in")
    assert classify(result) == "unclean" and result["rc"] == 130, result
    assert result["stderr"].strip() == "deepsz: interrupted" and not result["output_exists"]
    assert not result["leftovers"], result["leftovers"]


def test_optimize_reads_its_input_without_a_warning():
    _, result = _outcome("cmd/optimize/genuine")
    assert result["rc"] == 0 and result["stderr"] == "", result["stderr"]
    assert '"error_bounds"' in result["stdout_head"]
