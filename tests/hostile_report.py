"""Hostile-input counts (issues 12 and 23): how `deepsz decode` and `deepsz inspect` end on the
forged corpus of tests/forge*.py (valid CRCs; header fields and encodings, codec streams, index
streams, skeletons, section tables, decompression bombs of every decoder, oversized sections) and
how the CLI ends on the cases of tests/hostile_cases.py (output paths incl. special files, inputs
that are not files or are huge, bad bounds, names, LMDBs, the --expect-sha256 race, SIGINT and
SIGTERM at random moments) and, if present, tests/hostile_commands.py (every command's arguments).

Commands run through tests/hostile_driver.py (a fresh `python -m deepsz_caffe.cli` each:
timeout, address-space limit, signal and peak-RSS capture from exec). Per category and command,
the table counts the tries and how they ended: clean (exit 1, one stderr line, nothing left),
crash (killed by a signal), traceback, hang (past the timeout), exit 0 without output, wrong
output (exit 0 with a model unlike the genuine decode), accepted (exit 0 with the genuine model,
or an inspect report), clobbered (an input overwritten, a special file at -o replaced), unclean
(any other exit), interrupted (a signal case: exit 128 + signal, one line, nothing left),
pre-start (the signal came during Python's own start-up, before deepsz ran); "ok" counts those
that meet what each case requires (forge.py: reject / safe; hostile_cases.ADMITS). The RSS ratio is a
command's peak RSS over a genuine decode's of the same net, measured in the same run. Distinct
failure modes (exception class and innermost frame, signal, ...) are listed with an example
each. Writes results/bench/hostile.json.

It lives beside the corpus it runs (not in benchmarks/, which imports nothing from tests/).

    .venv/bin/python tests/hostile_report.py [--parallel 2] [--mode exec|fork] [--only CATS]
                                             [--keep DIR] [--out PATH]
"""
import argparse
import json
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import forge  # tests/ is on sys.path: it is this script's directory
import hostile_cases
from hostile_driver import OUTCOMES

from deepsz_caffe.atomic import write_json
from deepsz_caffe.timing import Stopwatch

ROOT = Path(__file__).resolve().parents[1]

_FRAME = re.compile(r'File "([^"]+)", line (\d+), in (\S+)')
_SIGNALS = {4: "SIGILL", 6: "SIGABRT", 7: "SIGBUS", 8: "SIGFPE", 9: "SIGKILL", 11: "SIGSEGV"}


def run(workdir: Path, parallel: int, mode: str = "exec", only=None) -> tuple[list, list, float]:
    manifest = forge.write_corpus(workdir / "corpus")
    jobs = hostile_cases.corpus_jobs(manifest, workdir / "corpus")
    jobs += hostile_cases.cli_jobs(workdir, manifest)
    if only:
        jobs = [job for job in jobs if job.get("genuine") or job["category"] in only]
    try:
        with Stopwatch() as watch:
            results = hostile_cases.run_batch(jobs, workdir / "batch", parallel, mode)
    finally:
        hostile_cases.release(workdir)
    return jobs, results, watch.seconds


def signature(job: dict, outcome: str, result: dict, why: str) -> str:
    """What a failure looks like: exception class and innermost frame, signal, exit status; for
    a forgery that was accepted, which part of the file it forged."""
    err = result["stderr"]
    if outcome in ("accepted", "wrong-output", "clean") and \
            job["category"] not in ("cli", "signal", "commands"):
        part = "/".join(job["id"].split("/")[1:3])
        return f"{outcome}: {part}" + (f" ({why})" if outcome == "clean" else "")
    if outcome == "traceback":
        lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith(" ")]
        exc = lines[-1].split(":")[0] if lines else "?"
        frames = _FRAME.findall(err)
        where = (f"{re.sub(r'.*/(site-packages|work/main)/', '', frames[-1][0])}:{frames[-1][1]} "
                 f"in {frames[-1][2]}") if frames else "?"
        return f"traceback {exc} at {where}"
    if outcome == "crash":
        return f"crash {_SIGNALS.get(result['signal'], result['signal'])}: {err.strip()[-120:]!r}"
    if outcome == "exit0-no-output":
        return f"exit 0 without output; stdout {result['stdout_head'].strip()[:80]!r}"
    if outcome == "unclean":
        return (f"exit {result['rc']}, {result['stderr_lines']} stderr lines, "
                f"{len(result['leftovers'])} files left")
    return f"{outcome} ({why})" if outcome == "clean" else outcome


def summarise(jobs: list, results: list) -> tuple[list, list, list]:
    """(table rows, failure modes, per-job records)."""
    refs = hostile_cases.references(jobs, results)
    rows, modes, records = {}, {}, []
    for job, result in zip(jobs, results):
        outcome, ok, why = hostile_cases.verdict(job, result, refs)
        ref_rss = refs.get(job.get("source"), (None, None))[1]
        ratio = result["maxrss"] / ref_rss if ref_rss and result["maxrss"] else None
        key = (job["category"], job["command"])
        row = rows.setdefault(key, {"category": key[0], "command": key[1], "tries": 0, "ok": 0,
                                    **dict.fromkeys(OUTCOMES, 0), "max_rss_ratio": 0.0})
        row["tries"] += 1
        row["ok"] += ok
        row[outcome] += 1
        row["max_rss_ratio"] = max(row["max_rss_ratio"], round(ratio or 0.0, 2))
        records.append({"id": job["id"], "expect": job["expect"], "outcome": outcome, "ok": ok,
                        "why": why, "rss_ratio": round(ratio, 3) if ratio else None,
                        "seconds": result["seconds"], "stderr_tail": result["stderr"].strip()[-200:]})
        if not ok:
            mode = modes.setdefault((job["command"], signature(job, outcome, result, why)),
                                    {"count": 0, "example": job["id"]})
            mode["count"] += 1
    failure_modes = [{"command": c, "mode": m, **v} for (c, m), v in
                     sorted(modes.items(), key=lambda kv: -kv[1]["count"])]
    return list(rows.values()), failure_modes, records


def print_table(rows: list, failure_modes: list, seconds: float, refs: dict) -> None:
    cols = ["tries", "ok", *OUTCOMES, "max_rss_ratio"]
    names = {"exit0-no-output": "exit0-noout", "wrong-output": "wrong-out", "max_rss_ratio": "RSS x",
             "before-start": "pre-start"}
    print(f"{'category':<10}{'cmd':<9}" + "".join(f"{names.get(c, c):>12}" for c in cols))
    for r in rows:
        print(f"{r['category']:<10}{r['command']:<9}" + "".join(f"{r[c]:>12}" for c in cols))
    total = {c: sum(r[c] for r in rows) for c in cols[:-1]}
    print(f"{'total':<19}" + "".join(f"{total[c]:>12}" for c in cols[:-1]))
    print(f"{len(rows)} rows in {seconds:.1f} s; genuine decode peak RSS (MiB): "
          + ", ".join(f"{k} {v[1] / 2**20:.0f}" for k, v in refs.items()))
    print(f"\n{len(failure_modes)} failure modes, most frequent first (all in the JSON):")
    for m in failure_modes[:60]:
        print(f"  {m['command']:<8}{m['count']:>5}  {m['mode'][:110]}\n{'':15}e.g. {m['example']}")


def _git() -> dict:
    def git(*args):
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain"))}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--parallel", type=int, default=2, help="commands at a time (default 2)")
    p.add_argument("--keep", type=Path, help="build the corpus here and keep it (default: a temp dir)")
    p.add_argument("--out", type=Path, default=ROOT / "results/bench/hostile.json")
    p.add_argument("--mode", choices=("exec", "fork"), default="exec",
                   help="exec (default): a fresh process per command, peak RSS from exec; fork: "
                        "forks of a warmed driver, ~10x faster, RSS ratios meaningless")
    p.add_argument("--only", help="comma-separated categories to run (default: all), e.g. bomb,cli")
    p.add_argument("--summarise", nargs=3, metavar=("JOBS", "RESULTS", "SECONDS"),
                   help="judge the driver's jobs.json and results.json of an earlier run instead")
    a = p.parse_args(argv)
    only = set(a.only.split(",")) if a.only else None
    if a.summarise:
        jobs, results = (json.loads(Path(f).read_text()) for f in a.summarise[:2])
        seconds = float(a.summarise[2])
    else:
        workdir = a.keep or Path(tempfile.mkdtemp(prefix="deepsz-hostile-bench-"))
        try:
            jobs, results, seconds = run(workdir, a.parallel, a.mode, only)
        finally:
            if a.keep is None:
                hostile_cases.release(workdir)
                shutil.rmtree(workdir, ignore_errors=True)
    rows, failure_modes, records = summarise(jobs, results)
    refs = hostile_cases.references(jobs, results)
    print_table(rows, failure_modes, seconds, refs)
    write_json(a.out, {
        "benchmark": "hostile", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": platform.platform(), "python": platform.python_version(), "git": _git(),
        "parallel": a.parallel, "mode": a.mode, "only": sorted(only) if only else None,
        "seconds": round(seconds, 1),
        "forged_files": sum(j["category"] not in ("cli", "genuine", "signal", "commands") for j in jobs) // 2,
        "reference_rss_bytes": {k: v[1] for k, v in refs.items()}, "table": rows,
        "failure_modes": failure_modes, "jobs": records,
    })
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
