"""Hostile and careless input (issues 12 and 23): a forged corpus of >= 300 .dsz files with valid
CRCs (tests/forge*.py) and the careless-user CLI cases (tests/hostile_cases.py, and
tests/hostile_commands.py where it exists) go through the real `deepsz` CLI
(tests/hostile_driver.py: a fresh process per command, with a timeout and an address-space
limit, peak RSS measured from exec). Every file and case is its own test id,
"<file>/<decode|inspect>". The two largest batches (header and payload forgeries, ~1,800
commands, each refused or decoded before it allocates anything sizeable) run as forks of a warmed
driver, ~10x faster; DEEPSZ_HOSTILE_MODE=exec runs them fresh too (tests/hostile_report.py does).

A forged file must be refused by decode (exit 1, exactly one stderr line, no traceback, no output
or temp file left, no hang, no signal death, peak RSS at most 2x a genuine decode's), unless
forge.py marks it "safe" (changed entropy-coded bytes may decode to other weights, safely).
`inspect` reads only the header, so it must refuse the header-visible forgeries and stay safe on
the rest. The commands run in batches (one driver process each, cached per session), so that a
test id pays only for its own batch and the batches can be spread over workers.
"""
import atexit
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import forge
import hostile_cases
from hostile_driver import classify

PARALLEL = int(os.environ.get("DEEPSZ_HOSTILE_PARALLEL", min(2, os.cpu_count() or 1)))
FORKED = set() if os.environ.get("DEEPSZ_HOSTILE_MODE") == "exec" else {"header", "payload"}
ROOT = Path(tempfile.mkdtemp(prefix="deepsz-hostile-"))


def _cleanup():
    hostile_cases.release(ROOT)  # and whatever hostile_commands.py set up
    shutil.rmtree(ROOT, ignore_errors=True)


atexit.register(_cleanup)
# Built at collection, so that every forged file gets a test id (~3 s; ids are stable).
MANIFEST = forge.write_corpus(ROOT / "corpus")
CORPUS = hostile_cases.corpus_jobs(MANIFEST, ROOT / "corpus")
GENUINE = [job for job in CORPUS if job.get("genuine")]
BATCHES = {"genuine": GENUINE}
for _job in CORPUS:
    if not _job.get("genuine"):
        BATCHES.setdefault(_job["category"], list(GENUINE)).append(_job)
CLI = hostile_cases.cli_jobs(ROOT, MANIFEST)
BATCHES["cli"] = [*GENUINE, *CLI]
_BATCH_OF = {job["id"]: name for name, jobs in BATCHES.items() for job in jobs
             if name == "genuine" or not job.get("genuine")}
_RESULTS: dict[str, dict] = {}


def _outcome(job_id: str):
    """(job, result, references) for one job, running its batch on first use."""
    name = _BATCH_OF[job_id]
    if name not in _RESULTS:
        jobs = BATCHES[name]
        try:
            results = hostile_cases.run_batch(jobs, ROOT / "batches" / name, PARALLEL,
                                              "fork" if name in FORKED else "exec")
        finally:
            if name == "cli":
                hostile_cases.release(ROOT)
        _RESULTS[name] = {"by_id": {j["id"]: (j, r) for j, r in zip(jobs, results)},
                          "refs": hostile_cases.references(jobs, results)}
    job, result = _RESULTS[name]["by_id"][job_id]
    return job, result, _RESULTS[name]["refs"]


def _check(job_id: str) -> None:
    job, result, refs = _outcome(job_id)
    outcome, ok, why = hostile_cases.verdict(job, result, refs)
    assert ok, (f"{job_id}: {outcome}: {why}\n  argv: {job['argv']}\n  exit {result['rc']}, "
                f"{result['seconds']} s, left {result['leftovers']}\n  stderr: {result['stderr'][-1500:]}")


@pytest.mark.parametrize("job_id", [job["id"] for job in CORPUS])
def test_forged_file(job_id):
    _check(job_id)


@pytest.mark.parametrize("job_id", [job["id"] for job in CLI])
def test_cli_case(job_id):
    _check(job_id)


def test_corpus_covers_every_codec_and_field():
    from deepsz_caffe.codecs import LOSSY_CODECS
    from deepsz_caffe.codecs.lossless import ALL_INDEX_CODECS

    ids = [f["id"] for f in MANIFEST["files"]]
    assert len(ids) >= 300 and len(set(ids)) == len(ids)
    for codec in LOSSY_CODECS:
        assert sum(f"/payload/{codec}/" in i for i in ids) >= 5, f"no stream-header forgeries for {codec}"
    for codec in [c for c in ALL_INDEX_CODECS if c != "ctx"] + ["ctx-bitmap", "ctx-grouped"]:
        assert sum(f"/index/{codec}/" in i for i in ids) >= 3, f"no forgeries of index codec {codec}"
    header, _ = forge.parse(next(iter(MANIFEST["genuine"].values())))
    fields = {f"{k}" for k in header} | {f"{k}.1.{f}" for k in ("layers", "blobs") for f in header[k][1]}
    forged = {i.split("/")[2] for i in ids if "/header/" in i}
    assert not fields - forged, f"header fields never forged: {sorted(fields - forged)}"
    assert {"skeleton", "bomb", "table"} <= {f["category"] for f in MANIFEST["files"]}
    # issue 23: index-coder and quant-table bombs, oversized sections, unparseable layer
    # parameters, header encodings other than UTF-8
    for part in ("/bomb/ctx-", "/bomb/quant-table-", "/bomb/oversized/", "/skeleton/unparseable-",
                 "/header/encoding-"):
        assert sum(part in i for i in ids) >= 2, f"no forgeries {part}"


def test_cli_cases_cover_issue_23():
    ids = [job["id"] for job in CLI]
    for part in ("/o-is-fifo", "/o-is-socket", "/o-is-link-to-dev-null", "2GiB-unreferenced-section",
                 "expect-sha256-rewritten", "SIGINT-after", "SIGINT-group-after", "SIGTERM-after"):
        assert any(part in i for i in ids), part
    early = [job for job in CLI if job.get("signal") and job["signal"]["after"] < 0.25]
    assert len(early) >= 10


def test_forgeries_pass_the_crc_checks():
    """Every forgery is re-serialised with recomputed CRCs: only what lies behind them is tested."""
    for f in MANIFEST["files"]:
        assert forge.crcs_check_out(Path(f["path"]).read_bytes()), f["id"]


def test_serialize_reproduces_the_encoder_bytes():
    for path in MANIFEST["genuine"].values():
        data = Path(path).read_bytes()
        assert forge.serialize(*forge.parse(data)) == data


def test_corpus_is_reproducible(tmp_path):
    again = forge.write_corpus(tmp_path)
    assert [f["id"] for f in again["files"]] == [f["id"] for f in MANIFEST["files"]]
    for a, b in zip(again["files"], MANIFEST["files"]):
        assert Path(a["path"]).read_bytes() == Path(b["path"]).read_bytes(), a["id"]


@pytest.mark.parametrize("pick", ["genuine", "header/layers.1.nnz/nan=nan", "skeleton/not-protobuf",
                                  "payload/frame/n+1"])
def test_driver_matches_a_real_cli_process(pick, tmp_path):
    """The fork driver judges a file as `python -m deepsz_caffe.cli` in its own process does."""
    path = next((f["path"] for f in MANIFEST["files"] if f["id"].endswith(pick)),
                next(iter(MANIFEST["genuine"].values())))
    job_id = next(j["id"] for j in CORPUS if j["argv"][1] == path and j["command"] == "decode")
    job, result, refs = _outcome(job_id)
    proc = subprocess.run([sys.executable, "-m", "deepsz_caffe.cli", "decode", path, "-o", "out.caffemodel"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    out = tmp_path / "out.caffemodel"
    rc = proc.returncode
    real = {"timed_out": False, "rc": rc, "signal": -rc if rc < 0 else None, "stderr": proc.stderr,
            "stderr_lines": len([ln for ln in proc.stderr.splitlines() if ln.strip()]),
            "stdout_bytes": len(proc.stdout), "writes_output": True, "output_exists": out.is_file(),
            "output_sha256": hashlib.sha256(out.read_bytes()).hexdigest() if out.is_file() else None,
            "leftovers": [str(p) for p in tmp_path.iterdir() if p != out]}
    sha = refs[job["source"]][0]
    assert classify(real, sha) == classify(result, sha)
    assert real["rc"] == result["rc"] and real["stderr_lines"] == result["stderr_lines"]
