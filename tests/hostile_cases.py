"""Jobs for hostile_driver.py and what each must end in: the forged corpus (decode and inspect
every file), the careless-user CLI cases of issue 12 items 5-7 (output paths, inputs that are
not files, bad bounds and names, a missing LMDB) and those of issue 23 part A (special files at
-o, a 2 GiB file whose table names an unreferenced section, a file rewritten while
--expect-sha256 runs, SIGINT/SIGTERM at random moments), plus, if tests/hostile_commands.py
exists, its cases (every command's arguments). Shared by tests/test_hostile.py and
tests/hostile_report.py, so both judge alike."""
import importlib
import json
import os
import random
import re
import signal
import zlib
import shutil
import subprocess
import sys
from pathlib import Path

from hostile_driver import classify, file_kind, make_special

from deepsz_caffe.digest import sha256_file

DRIVER = Path(__file__).with_name("hostile_driver.py")

TIMEOUT = 20.0      # s per command: a genuine LeNet-300-100 decode takes ~0.3 s
RSS_FACTOR = 2.0    # a refused file may peak at most this many times a genuine decode's RSS
RSS_COMMANDS = ("decode", "inspect", "encode")  # the file commands; others load Caffe by design


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=+#-]", "_", text.replace("/", "__"))


def _pair(job_id: str, path: str, run: Path, expect: dict, **meta) -> list[dict]:
    """A decode and an inspect job for one .dsz file, each in its own empty directory."""
    base = run / _slug(job_id)
    return [{"id": f"{job_id}/decode", "argv": ["decode", path, "-o", "out.caffemodel"],
             "cwd": str(base / "decode"), "output": "out.caffemodel", "timeout": TIMEOUT,
             "command": "decode", "expect": expect["decode"], **meta},
            {"id": f"{job_id}/inspect", "argv": ["inspect", path], "cwd": str(base / "inspect"),
             "output": None, "timeout": TIMEOUT, "command": "inspect", "expect": expect["inspect"], **meta}]


def corpus_jobs(manifest: dict, root) -> list[dict]:
    """Genuine files first (they give the references), then every forged file."""
    run = Path(root) / "run"
    jobs = []
    for name, path in manifest["genuine"].items():
        jobs += _pair(f"{name}/genuine", path, run, {"decode": "accept", "inspect": "accept"},
                      source=name, category="genuine", genuine=True)
    for f in manifest["files"]:
        jobs += _pair(f["id"], f["path"], run, f, source=f["source"], category=f["category"])
    return jobs


def run_batch(jobs: list[dict], workdir, parallel: int = 2, mode: str = "exec") -> list[dict]:
    """Run `jobs` through a fresh driver process; one result per job, in order."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    jobs_file, results_file = workdir / "jobs.json", workdir / "results.json"
    jobs_file.write_text(json.dumps(jobs))
    budget = 300 + sum(job["timeout"] for job in jobs) / parallel  # a safety net, never reached
    subprocess.run([sys.executable, str(DRIVER), str(jobs_file), str(results_file),
                    "--parallel", str(parallel), "--mode", mode], check=True, timeout=budget)
    return json.loads(results_file.read_text())


def references(jobs: list[dict], results: list[dict]) -> dict:
    """{source: (output sha256, peak RSS)} of each genuine file's decode."""
    return {job["source"]: (r["output_sha256"], r["maxrss"]) for job, r in zip(jobs, results)
            if job.get("genuine") and job["command"] == "decode"}


# what each expectation admits; "interrupt": a signal sent while the command runs (see
# signal_outcome), "accept-or-reject": the genuine output or a clean refusal, nothing else
ADMITS = {"accept": ("accepted",), "reject": ("clean",), "safe": ("clean", "accepted", "wrong-output"),
          "accept-or-reject": ("clean", "accepted"),
          "interrupt": ("interrupted", "accepted", "before-start")}


def verdict(job: dict, result: dict, refs: dict) -> tuple[str, bool, str]:
    """(outcome, whether it is what issue 12 requires, why not)."""
    sha, rss = refs.get(job.get("source"), (None, None))
    outcome = signal_outcome(job, result, sha) if job.get("signal") else classify(result, sha)
    expect = job["expect"]
    if outcome not in ADMITS[expect]:
        return outcome, False, {"accept": "a genuine file must be accepted (exit 0)",
                                "reject": "must be refused: exit 1, one stderr line, nothing left",
                                "safe": "may be refused or decoded, but must not crash, hang, "
                                        "print a traceback or exit 0 without output",
                                "accept-or-reject": "must decode the genuine file or be refused cleanly",
                                "interrupt": "must end with one line 'interrupted', exit 128 + signal, "
                                             "nothing left behind (or finish first)"}[expect]
    if rss and result["maxrss"] and result["maxrss"] > RSS_FACTOR * rss and not job.get("genuine") \
            and job["command"] in RSS_COMMANDS:
        return outcome, False, f"peak RSS {result['maxrss'] / rss:.1f}x a genuine decode's"
    if expect == "accept" and result["leftovers"]:
        return outcome, False, f"left {result['leftovers']} behind"
    if job.get("expect_mode") is not None and result["output_mode"] != job["expect_mode"]:
        return outcome, False, f"output mode {result['output_mode']:o}, umask asks {job['expect_mode']:o}"
    return outcome, True, ""


# ---- careless-user CLI cases (issue 12 items 5-7) --------------------------------------------

def signal_outcome(job: dict, result: dict, reference_sha: str | None) -> str:
    """How a command sent a signal ended: "interrupted" (exit 128 + signal, one line saying so,
    no temp file, the output absent or complete), "accepted" (it finished first), "before-start"
    (the signal came while the interpreter was starting, before any deepsz code ran: killed by
    it, or Python's own KeyboardInterrupt message from its start-up code; nothing written yet),
    else what classify says."""
    signum = job["signal"]["signum"]
    err = result["stderr"]
    complete = not result["output_exists"] or job.get("any_output") \
        or result["output_sha256"] == reference_sha
    if job.get("any_output") and result["rc"] == 0 and result["output_exists"] and not result["leftovers"]:
        return "accepted"
    if result["timed_out"]:
        return "hang"
    if result["rc"] == 128 + signum and result["stderr_lines"] == 1 and "interrupted" in err \
            and not result["leftovers"] and complete:
        return "interrupted"
    startup = result["signal"] == signum or "KeyboardInterrupt" in err
    ours = re.search(r'File "[^"]*/deepsz_caffe/', err)  # a frame of this package's code
    if startup and not ours and not result["leftovers"] and not result["output_exists"]:
        return "before-start"
    return classify(result, reference_sha)


def _read_only_dir(path: Path) -> Path:
    """A directory nobody may create files in: mode 0555, and immutable when we are root (root
    ignores the mode). Returns the directory to write into (/sys if neither works)."""
    path.mkdir(parents=True, exist_ok=True)
    try:
        path.chmod(0o555)
    except PermissionError:  # immutable already: made by an earlier call on the same root
        return path
    if os.geteuid() == 0:
        done = shutil.which("chattr") and subprocess.run(["chattr", "+i", str(path)],
                                                         capture_output=True).returncode == 0
        return path if done else Path("/sys")
    return path


def release(root) -> None:
    """Undo _read_only_dir (and what hostile_commands.py sets up) so the tree can be deleted."""
    release_other(root)
    for d in Path(root).glob("cases/readonly*"):
        if os.geteuid() == 0 and shutil.which("chattr"):
            subprocess.run(["chattr", "-i", str(d)], capture_output=True)
        d.chmod(0o755)


def _tiny_lmdb(path: Path, n: int = 64) -> Path:
    """An LMDB of n random 28x28 MNIST-like records (enough for compress to start working)."""
    import lmdb
    import numpy as np
    from caffe.proto import caffe_pb2

    rng = np.random.default_rng(3)
    with lmdb.open(str(path), map_size=1 << 24) as env, env.begin(write=True) as txn:
        for i in range(n):
            datum = caffe_pb2.Datum(channels=1, height=28, width=28, label=i % 10,
                                    data=rng.integers(0, 256, 784, np.uint8).tobytes())
            txn.put(f"{i:08d}".encode(), datum.SerializeToString())
    return path


def cli_inputs(root, manifest: dict) -> dict:
    """The files the CLI cases need, under root/cases."""
    cases = Path(root) / "cases"
    cases.mkdir(parents=True, exist_ok=True)
    genuine = Path(next(iter(manifest["genuine"].values())))
    paths = {"dsz": genuine, "model": Path(manifest["model"]), "fifo": cases / "fifo",
             "huge_zero": cases / "huge-zero.dsz", "huge_tail": cases / "huge-tail.dsz",
             "bad_utf8": cases / "bad-utf8.prototxt", "lmdb": cases / "lmdb"}
    if not paths["fifo"].exists():
        os.mkfifo(paths["fifo"])
    with open(paths["huge_zero"], "wb") as f:
        f.truncate(64 << 30)  # sparse: no disk used
    with open(paths["huge_tail"], "wb") as f:  # a genuine file followed by a 2 GiB hole
        f.write(genuine.read_bytes())
        f.truncate(2 << 30)
    from forge import DEPLOY

    paths["unreferenced_2g"] = _with_unreferenced_section(genuine, cases / "unreferenced-2GiB.dsz", 2 << 30)
    deploy = DEPLOY.read_bytes()
    paths["bad_utf8"].write_bytes(deploy.replace(b'name: "LeNet-300-100"', b'name: "LeNet\xff\xfe"'))
    if not paths["lmdb"].exists():
        _tiny_lmdb(paths["lmdb"])
    text = (DEPLOY.parent / "train_test.prototxt").read_text().replace("batch_size: 100", "batch_size: 32")
    for name, source in (("train_test", paths["lmdb"]), ("train_test_missing", cases / "no-such-lmdb")):
        paths[name] = cases / f"{name}.prototxt"
        paths[name].write_text(re.sub(r'source: "[^"]*"', f'source: "{source}"', text))
    paths["readonly"] = _read_only_dir(cases / "readonly")
    return paths


def _with_unreferenced_section(genuine: Path, path: Path, size: int) -> Path:
    """The genuine file plus a `size`-byte section of zeros that its header does not refer to,
    every CRC right (the zeros are a hole: no disk used). Issue 23: it was read, all of it,
    twice over, before the table was checked."""
    from forge import parse, serialize, section_table

    if path.exists():
        return path
    header, sections = parse(genuine)
    crc, chunk, left = 0, bytes(1 << 20), size
    while left:
        crc = zlib.crc32(chunk[:min(left, len(chunk))], crc)
        left -= min(left, len(chunk))
    table = section_table(sections) + [{"name": "ip9/data", "length": size, "crc32": crc}]
    image = serialize(header, sections, table=table)
    with open(path, "wb") as f:
        f.write(image)
        f.truncate(len(image) + size)
    return path


def _job(run: Path, job_id: str, argv: list, **kw) -> dict:
    cwd = run / _slug(job_id)
    for d in kw.pop("mkdirs", ()):
        (cwd / d).mkdir(parents=True, exist_ok=True)
    cwd.mkdir(parents=True, exist_ok=True)
    return {"id": f"cli/{job_id}", "argv": argv, "cwd": str(cwd), "output": None, "timeout": TIMEOUT,
            "command": argv[0], "expect": "reject", "source": "sz2-zstd", "category": "cli", **kw}


def _output_cases(run: Path, p: dict, cmd: list) -> list[dict]:
    """Item 5: where -o points (for `cmd` = decode/encode argv without -o)."""
    what = cmd[0]
    return [
        _job(run, f"{what}/o-is-a-directory", [*cmd, "-o", "outdir"], mkdirs=["outdir"], keep=["outdir"],
             watch=["outdir"]),
        _job(run, f"{what}/o-in-missing-directory", [*cmd, "-o", "missing/out"]),
        _job(run, f"{what}/o-in-read-only-directory", [*cmd, "-o", str(p["readonly"] / "out")],
             watch=[str(p["readonly"])]),
        _job(run, f"{what}/o-proc-file", [*cmd, "-o", "/proc/version"]),
        _job(run, f"{what}/o-in-proc", [*cmd, "-o", "/proc/self/out"]),
        _job(run, f"{what}/o-empty", [*cmd, "-o", ""]),
        _job(run, f"{what}/o-full-disk", [*cmd, "-o", "out"], output="out", fsize=16 << 10),
    ]


def _input_cases(run: Path, p: dict) -> list[dict]:
    """Item 6: inputs that are not (sane) files, for decode, inspect and encode."""
    out = []
    for name, path, timeout in (("dev-zero", "/dev/zero", TIMEOUT), ("fifo", p["fifo"], 10.0),
                                ("huge-sparse-zeros", p["huge_zero"], TIMEOUT),
                                ("huge-sparse-after-genuine", p["huge_tail"], TIMEOUT),
                                ("directory", p["lmdb"], TIMEOUT), ("missing", "/nonexistent.dsz", TIMEOUT)):
        out += [_job(run, f"decode/input-{name}", ["decode", str(path), "-o", "out"], output="out",
                     timeout=timeout),
                _job(run, f"inspect/input-{name}", ["inspect", str(path)], timeout=timeout),
                _job(run, f"encode/weights-{name}", ["encode", "--weights", str(path), "--eb-all", "0.01",
                                                     "-o", "out.dsz"], output="out.dsz", timeout=timeout)]
    out.append(_job(run, "encode/model-not-utf8", ["encode", "--weights", str(p["model"]), "--model",
                                                   str(p["bad_utf8"]), "--eb-all", "0.01", "-o", "out.dsz"],
                    output="out.dsz"))
    out.append(_job(run, "encode/weights-is-a-prototxt", ["encode", "--weights", str(p["bad_utf8"]),
                                                          "--eb-all", "0.01", "-o", "out.dsz"],
                    output="out.dsz"))
    return out


def _same_file_cases(run: Path, p: dict) -> list[dict]:
    """-o equal to an input: refused, the input left as it was."""
    jobs = []
    compress = ["compress", "--model", str(p["train_test"]), "--weights", "in", "--expected-loss", "0.2"]
    encode = ["encode", "--weights", "in", "--eb-all", "0.01"]
    for what, src, argv in (("decode", p["dsz"], ["decode", "in", "-o", "in"]),
                            ("encode", p["model"], [*encode, "-o", "in"]),
                            ("compress", p["model"], [*compress, "-o", "in"])):
        job = _job(run, f"{what}/o-equals-input", argv, keep=["in"], timeout=60.0)
        target = Path(job["cwd"]) / "in"
        target.write_bytes(Path(src).read_bytes())
        job["inputs_sha"] = {str(target): sha256_file(target)}
        jobs.append(job)
    return jobs


def _argument_cases(run: Path, p: dict) -> list[dict]:
    """Item 7 and friends: bounds <= 0 or not finite, unknown layers, a missing LMDB."""
    enc = ["encode", "--weights", str(p["model"]), "-o", "out.dsz"]
    jobs = [_job(run, f"encode/eb-all-{v}", [*enc, f"--eb-all={v}"], output="out.dsz")
            for v in ("0", "-0.01", "nan", "inf", "-inf", "1e400")]
    jobs += [_job(run, f"encode/eb-{v}", [*enc, f"--eb={v}"], output="out.dsz")
             for v in ("ip1=0", "ip1=-1", "ip1=nan", "ip1=inf", "ip1=abc", "nosuch=0.01", "=0.01")]
    jobs.append(_job(run, "encode/layers-nosuch", [*enc, "--eb-all", "0.01", "--layers", "nosuch"],
                     output="out.dsz"))
    comp = ["compress", "--weights", str(p["model"]), "--expected-loss", "0.2"]
    jobs += [
        _job(run, "compress/missing-lmdb", [*comp, "--model", str(p["train_test_missing"]), "-o", "out.dsz"],
             output="out.dsz", timeout=60.0),
        _job(run, "compress/o-in-missing-directory", [*comp, "--model", str(p["train_test"]), "-o",
                                                      "missing/out.dsz"], timeout=60.0),
        # refused before any work: no OUTPUT.work/ directory may appear beside it
        _job(run, "compress/o-is-a-directory", [*comp, "--model", str(p["train_test"]), "-o", "outdir"],
             mkdirs=["outdir"], keep=["outdir"], watch=["outdir"], timeout=60.0),
        _job(run, "compress/expected-loss-nan", ["compress", "--weights", str(p["model"]), "--model",
                                                 str(p["train_test"]), "--expected-loss", "nan",
                                                 "-o", "out.dsz"], output="out.dsz", timeout=60.0),
    ]
    return jobs


def _good_cases(run: Path, p: dict) -> list[dict]:
    """Careful writes of a genuine decode: a stale temp file of a killed run is removed, and the
    output honours the umask."""
    stale = _job(run, "decode/stale-temp-removed", ["decode", str(p["dsz"]), "-o", "out.caffemodel"],
                 output="out.caffemodel", expect="accept")
    # named as atomic.replacing names its temp files (random part, writer's pid), the writer gone
    (Path(stale["cwd"]) / f".out.caffemodel.k3j9x2_1.{_dead_pid()}.tmp").write_bytes(b"half a model")
    umask = _job(run, "decode/output-honours-umask", ["decode", str(p["dsz"]), "-o", "out.caffemodel"],
                 output="out.caffemodel", expect="accept", umask=0o022, expect_mode=0o644)
    return [stale, umask]


def _dead_pid() -> int:
    """A pid no process has: one above the kernel's pid_max."""
    return int(Path("/proc/sys/kernel/pid_max").read_text()) + 1


# ---- issue 23 part A: special outputs, oversized files, the sha race, signals --------------

SIGNAL_SEED = 20231205


def _special_output_cases(run: Path, p: dict, cmd: list) -> list[dict]:
    """-o naming a FIFO, a socket, or a link to a device: refused, the special file left as it
    was (links to /dev/null and /dev/zero stand in for the devices: were the check to fail, the
    rename would replace the link, never the system's device)."""
    what, jobs = cmd[0], []
    for kind in ("fifo", "socket", "link-to-dev-null", "link-to-dev-zero"):
        job = _job(run, f"{what}/o-is-{kind}", [*cmd, "-o", "special"], keep=["special"])
        target = Path(job["cwd"]) / "special"
        if not (target.exists() or target.is_symlink()):
            make_special(target, kind)
        job["special"] = {str(target): file_kind(target)}
        jobs.append(job)
    return jobs


def _oversized_cases(run: Path, p: dict) -> list[dict]:
    return [_job(run, f"{cmd}/input-2GiB-unreferenced-section",
                 [cmd, str(p["unreferenced_2g"]), *(["-o", "out"] if cmd == "decode" else [])],
                 output="out" if cmd == "decode" else None) for cmd in ("decode", "inspect")]


def _sha_race_cases(run: Path, manifest: dict) -> list[dict]:
    """decode --expect-sha256 of genuine file A, rewritten in place with genuine file B (same net,
    other codecs, other weights) while it runs: A's model or a refusal, never B's (issue 23: the
    file was hashed, then parsed again from disk)."""
    (a_name, a), (_, b) = list(manifest["genuine"].items())[:2]
    sha = sha256_file(a)
    jobs = []
    for after in (0.0, 0.03, 0.06, 0.1, 0.15, 0.2, 0.3, 0.5):
        job = _job(run, f"decode/expect-sha256-rewritten-after-{after}s",
                   ["decode", "in.dsz", "--expect-sha256", sha, "-o", "out.caffemodel"],
                   output="out.caffemodel", keep=["in.dsz"], expect="accept-or-reject", source=a_name,
                   rewrite={"path": "", "data_from": b, "after": after})
        target = Path(job["cwd"]) / "in.dsz"
        target.write_bytes(Path(a).read_bytes())
        job["rewrite"]["path"] = str(target)
        jobs.append(job)
    return jobs


def _signal_cases(run: Path, p: dict, manifest: dict) -> list[dict]:
    """SIGINT (to the process, or to its group as Ctrl-C sends it) and SIGTERM at seeded random
    moments: half in the first 0.25 s (imports), half during the work, for decode and encode."""
    rng = random.Random(SIGNAL_SEED)
    genuine = list(manifest["genuine"].items())
    jobs = []
    for k in range(40):
        signum, group = [(signal.SIGINT, False), (signal.SIGINT, True), (signal.SIGTERM, False)][k % 3]
        after = round(rng.uniform(0.0, 0.25) if k % 2 == 0 else rng.uniform(0.25, 1.2), 3)
        name, dsz = genuine[k % len(genuine)]
        encode = k % 4 == 3  # an encode's output is not a decode's: any complete one will do
        cmd, out = (["encode", "--weights", str(p["model"]), "--eb-all", "0.01"], "out.dsz") if encode \
            else (["decode", dsz], "out.caffemodel")
        tag = f"{signal.Signals(signum).name}{'-group' if group else ''}"
        jobs.append(_job(run, f"{cmd[0]}/{tag}-after-{after}s-{k}", [*cmd, "-o", out], output=out,
                         expect="interrupt", signal={"signum": int(signum), "after": after, "group": group},
                         source=name, any_output=encode))
    return jobs


def _other_command_jobs(root, manifest: dict) -> list[dict]:
    """The cases of tests/hostile_commands.py (issue 23 part B: every command's arguments), if
    that module exists: its `jobs(root, manifest)` (or `command_jobs`/`cli_jobs`)."""
    try:
        module = importlib.import_module("hostile_commands")
    except ModuleNotFoundError as e:
        if e.name != "hostile_commands":
            raise
        return []
    for name in ("jobs", "command_jobs", "cli_jobs"):
        if hasattr(module, name):
            return list(getattr(module, name)(root, manifest))
    return []


def release_other(root) -> None:
    try:
        module = importlib.import_module("hostile_commands")
    except ModuleNotFoundError:
        return
    if hasattr(module, "release"):
        module.release(root)


def cli_jobs(root, manifest: dict) -> list[dict]:
    """Every careless-user case; release(root) afterwards undoes the read-only directory."""
    p = cli_inputs(root, manifest)
    run = Path(root) / "cli-run"
    source = next(iter(manifest["genuine"]))
    jobs = (_output_cases(run, p, ["decode", str(p["dsz"])])
            + _output_cases(run, p, ["encode", "--weights", str(p["model"]), "--eb-all", "0.01"])
            + _input_cases(run, p) + _same_file_cases(run, p) + _argument_cases(run, p) + _good_cases(run, p)
            + _special_output_cases(run, p, ["decode", str(p["dsz"])])
            + _special_output_cases(run, p, ["encode", "--weights", str(p["model"]), "--eb-all", "0.01"])
            + _oversized_cases(run, p) + _sha_race_cases(run, manifest))
    jobs = [{"source": source, **job} for job in jobs]
    jobs += [{"source": source, **job, "category": "signal"} for job in _signal_cases(run, p, manifest)]
    others = _other_command_jobs(root, manifest)
    return jobs + [{"source": source, "category": "commands", **job} for job in others]
