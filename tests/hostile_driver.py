"""Run `deepsz` CLI commands on hostile input, one process per command, and record how each
ended: exit status or killing signal, stderr, files left behind, peak RSS, wall time.

Each job is a fresh `python -m deepsz_caffe.cli ARGV` (fork, then exec), in its own process
group, working directory and resource limits (an address-space cap, so a runaway allocation fails
instead of swapping). Its peak RSS is wait4's ru_maxrss: the largest of the exec'd process and its
reaped children (the sandboxed decoder); VmHWM starts afresh at exec, and the forked copy of this
driver, which imports nothing heavy, stays far below any command's (issue 21: a fork of a warmed
driver started at the driver's own memory). A child that outlives its timeout is killed with its
group and counted as a hang; one killed by a signal (SIGSEGV inside a native decoder) is a crash.
`--mode fork` runs cli.main in a fork of a warmed driver instead (~10x faster, RSS meaningless).

    python tests/hostile_driver.py JOBS.json RESULTS.json [--parallel N] [--mode exec|fork]

A job: {"id", "argv", "cwd", "output" (where a decoded model would appear, or null),
"timeout" (s)}, optionally "fsize" (RLIMIT_FSIZE bytes: a full disk), "stdin" (a path), "umask",
"watch" (more directories to check for leftovers), "keep" (names there that are not leftovers),
"inputs_sha" ({path: sha256} of inputs that must come out unchanged), "signal" ({"signum",
"after" (s), "group" (to the process group, as a terminal's Ctrl-C)}: sent while it runs),
"rewrite" ({"path", "data_from", "after" (s)}: the file's bytes overwritten in place with
another file's while the command runs, as a racing attacker would), "special" ({path:
file_kind}: files at -o that must keep their kind, a FIFO staying a FIFO).
"""
import argparse
import json
import os
import resource
import signal
import sys
import time
import traceback
from pathlib import Path

from deepsz_caffe.digest import sha256_file  # hashlib only: nothing heavy before warm_up

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy loads (in warm_up): no thread pools to fork
os.environ.setdefault("GLOG_minloglevel", "2")

HEADROOM = 2 << 30  # address space a child may add to the driver's before allocations fail
EXEC_AS_LIMIT = 6 << 30  # a fresh command's address space (decode of LeNet: ~1.2 GiB, mostly libraries)
STDERR_KEEP = 4000
OUTCOMES = ("clean", "crash", "traceback", "hang", "exit0-no-output", "wrong-output", "accepted",
            "clobbered", "unclean", "interrupted", "before-start")


def warm_up() -> None:
    """Import what a decode touches, so that children fork it instead of loading it each."""
    import deepsz_caffe.cli
    from caffe.proto import caffe_pb2  # noqa: F401
    from deepsz_caffe.codecs import LOSSY_CODECS, get_lossy
    from deepsz_caffe.codecs.index import context  # noqa: F401

    deepsz_caffe.cli.build_parser()  # imports every command's module (~0.14 s a child otherwise)
    for name in LOSSY_CODECS:
        get_lossy(name)


def _vm_bytes() -> int:
    with open("/proc/self/status") as f:
        kb = next(int(line.split()[1]) for line in f if line.startswith("VmSize:"))
    return kb << 10


def _child(job: dict, logs: Path, as_limit: int, mode: str) -> None:
    """In the forked child: isolate, limit, then exec the CLI (or, `mode` fork, run it here, in
    this warmed copy) and exit with its status. Never returns."""
    code = 1
    try:
        os.setpgid(0, 0)
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)
        os.chdir(job["cwd"])
        stdin = os.open(job.get("stdin") or os.devnull, os.O_RDONLY | os.O_NONBLOCK)
        os.dup2(stdin, 0)
        for fd, name in ((1, "out"), (2, "err")):
            os.dup2(os.open(logs / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), fd)
        resource.setrlimit(resource.RLIMIT_AS, (as_limit, as_limit))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if job.get("fsize") is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (job["fsize"], job["fsize"]))
        os.umask(job.get("umask", 0o022))
        if mode == "exec":
            os.execv(sys.executable, [sys.executable, "-m", "deepsz_caffe.cli", *job["argv"]])
        from deepsz_caffe import cli

        code = cli.main(job["argv"])
    except SystemExit as e:  # argparse and sys.exit, as the interpreter reports them
        if isinstance(e.code, str):
            print(e.code, file=sys.stderr)
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(code if isinstance(code, int) else 1)


def make_special(path: Path, kind: str) -> Path:
    """A FIFO, a UNIX socket, or a link to /dev/<name> for kind "link-to-dev-<name>"."""
    import socket

    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "socket":
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(path))
        sock.close()
    else:
        path.symlink_to("/dev/" + kind.removeprefix("link-to-dev-"))
    return path


def file_kind(path: Path) -> str | None:
    """"link:TARGET", "fifo", "socket", "regular", another mode, or None if missing: what a
    "special" file of a job was, and must still be after it."""
    import stat

    try:
        mode = path.lstat().st_mode
    except OSError:
        return None
    if stat.S_ISLNK(mode):
        return "link:" + os.readlink(path)
    return {stat.S_IFIFO: "fifo", stat.S_IFSOCK: "socket", stat.S_IFREG: "regular"}.get(
        stat.S_IFMT(mode), oct(stat.S_IFMT(mode)))


def _leftovers(job: dict) -> list[str]:
    """Files the job left in its working directory or in its "watch" directories, its output and
    the names in "keep" excepted (a temp file of an interrupted write, a partial output)."""
    output = Path(job["cwd"], job["output"]) if job.get("output") else None
    found = []
    for d in [job["cwd"], *job.get("watch", ())]:
        try:
            found += [str(p) for p in Path(job["cwd"], d).iterdir()
                      if p != output and p.name not in job.get("keep", ())]
        except OSError:
            pass
    return sorted(found)


def _collect(job: dict, logs: Path, status: int | None, usage, seconds: float) -> dict:
    err = (logs / "err").read_bytes().decode("utf-8", "replace")
    out = (logs / "out").read_bytes()
    output = Path(job["cwd"], job["output"]) if job.get("output") else None
    exists = bool(output) and output.is_file()
    result = {
        "id": job["id"], "timed_out": status is None, "seconds": round(seconds, 3),
        "rc": os.waitstatus_to_exitcode(status) if status is not None else None,
        "stderr": err[-STDERR_KEEP:], "stderr_lines": len([ln for ln in err.splitlines() if ln.strip()]),
        "stdout_bytes": len(out), "stdout_head": out[:300].decode("utf-8", "replace"),
        "writes_output": output is not None, "output_exists": exists,
        "output_sha256": sha256_file(output) if exists else None,
        "leftovers": _leftovers(job), "maxrss": usage.ru_maxrss << 10 if usage else None,
        "output_mode": output.stat().st_mode & 0o777 if exists else None,
        "clobbered": [p for p, sha in job.get("inputs_sha", {}).items()
                      if not Path(p).is_file() or sha256_file(Path(p)) != sha]
                     + [p for p, was in job.get("special", {}).items() if file_kind(Path(p)) != was],
    }
    result["signal"] = -result["rc"] if result["rc"] is not None and result["rc"] < 0 else None
    if exists and not job.get("keep_output"):
        output.unlink()
    return result


def run_jobs(jobs: list[dict], workdir, parallel: int = 2, mode: str = "exec") -> list[dict]:
    """Run every job (at most `parallel` at a time) and return one result per job, in order."""
    workdir = Path(workdir)
    as_limit = EXEC_AS_LIMIT if mode == "exec" else _vm_bytes() + HEADROOM
    pending, running, results = list(enumerate(jobs)), {}, {}
    sys.stdout.flush()
    sys.stderr.flush()
    while pending or running:
        while pending and len(running) < parallel:
            k, job = pending.pop(0)
            logs = workdir / f"log{k}"
            logs.mkdir(parents=True, exist_ok=True)
            Path(job["cwd"]).mkdir(parents=True, exist_ok=True)
            pid = os.fork()
            if pid == 0:
                _child(job, logs, as_limit, mode)
            running[pid] = (k, job, logs, time.monotonic(), _events(job))
        pid, status, usage = os.wait4(-1, os.WNOHANG)
        if pid:
            k, job, logs, start, _ = running.pop(pid)
            results[k] = _collect(job, logs, status, usage, time.monotonic() - start)
            continue
        now = time.monotonic()
        for pid, (k, job, logs, start, events) in list(running.items()):
            while events and now - start >= events[0][0]:
                events.pop(0)[1](pid)
            if now - start > job["timeout"]:
                _kill_group(pid)
                _, _, usage = os.wait4(pid, 0)
                running.pop(pid)
                results[k] = _collect(job, logs, None, usage, now - start)
        time.sleep(0.001)
    return [results[k] for k in range(len(jobs))]


def _events(job: dict) -> list:
    """[(seconds after start, action(pid))] of the job's signal and rewrite, in time order."""
    events = []
    if job.get("signal"):
        sig = job["signal"]

        def send(pid, sig=sig):
            try:
                os.kill(-pid if sig.get("group") else pid, sig["signum"])
            except ProcessLookupError:
                pass
        events.append((sig["after"], send))
    if job.get("rewrite"):
        rw = job["rewrite"]

        def rewrite(_pid, rw=rw):
            data = Path(rw["data_from"]).read_bytes()
            with open(rw["path"], "r+b") as f:  # in place: same inode, as a racing writer does
                f.write(data)
                f.truncate()
        events.append((rw["after"], rewrite))
    return sorted(events, key=lambda e: e[0])


def _kill_group(pid: int) -> None:
    for target in (-pid, pid):  # the group (the child's own helpers too), then the child itself
        try:
            os.kill(target, signal.SIGKILL)
        except ProcessLookupError:
            pass


def classify(result: dict, reference_sha: str | None = None) -> str:
    """One word for how a command ended (see OUTCOMES). "accepted": exit 0 with the genuine
    file's output (decode: the same model as `reference_sha`; inspect: a report on stdout)."""
    if result["timed_out"]:
        return "hang"
    if result["signal"]:
        return "crash"
    if result.get("clobbered"):
        return "clobbered"
    if "Traceback (most recent call last)" in result["stderr"]:
        return "traceback"
    if result["rc"] == 0:
        if result["writes_output"]:
            if not result["output_exists"]:
                return "exit0-no-output"
            return "accepted" if result["output_sha256"] == reference_sha else "wrong-output"
        return "accepted" if result["stdout_bytes"] else "exit0-no-output"
    if result["rc"] == 1 and result["stderr_lines"] == 1 and not result["output_exists"] \
            and not result["leftovers"]:
        return "clean"
    return "unclean"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("jobs")
    p.add_argument("results")
    p.add_argument("--parallel", type=int, default=2)
    p.add_argument("--mode", choices=("exec", "fork"), default="exec")
    a = p.parse_args(argv)
    jobs = json.loads(Path(a.jobs).read_text())
    if a.mode == "fork":
        warm_up()
    results = run_jobs(jobs, Path(a.results).parent / (Path(a.results).name + ".logs"), a.parallel, a.mode)
    tmp = Path(a.results).with_name(f".{Path(a.results).name}.tmp")
    tmp.write_text(json.dumps(results))
    os.replace(tmp, a.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
