"""Jobs for hostile_driver.py and what each must end in: the forged corpus (decode and inspect
every file) and the careless-user CLI cases of issue 12 items 5-7 (output paths, inputs that are
not files, bad bounds and names, a missing LMDB). Shared by tests/test_hostile.py and
tests/hostile_report.py, so both judge alike."""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from hostile_driver import classify

from deepsz_caffe.digest import sha256_file

DRIVER = Path(__file__).with_name("hostile_driver.py")

TIMEOUT = 20.0      # s per command: a genuine LeNet-300-100 decode takes ~0.3 s
RSS_FACTOR = 2.0    # a refused file may peak at most this many times a genuine decode's RSS


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


def run_batch(jobs: list[dict], workdir, parallel: int = 2) -> list[dict]:
    """Run `jobs` through a fresh driver process; one result per job, in order."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    jobs_file, results_file = workdir / "jobs.json", workdir / "results.json"
    jobs_file.write_text(json.dumps(jobs))
    budget = 300 + sum(job["timeout"] for job in jobs) / parallel  # a safety net, never reached
    subprocess.run([sys.executable, str(DRIVER), str(jobs_file), str(results_file),
                    "--parallel", str(parallel)], check=True, timeout=budget)
    return json.loads(results_file.read_text())


def references(jobs: list[dict], results: list[dict]) -> dict:
    """{source: (output sha256, peak RSS)} of each genuine file's decode."""
    return {job["source"]: (r["output_sha256"], r["maxrss"]) for job, r in zip(jobs, results)
            if job.get("genuine") and job["command"] == "decode"}


# what each expectation admits
ADMITS = {"accept": ("accepted",), "reject": ("clean",), "safe": ("clean", "accepted", "wrong-output")}


def verdict(job: dict, result: dict, refs: dict) -> tuple[str, bool, str]:
    """(outcome, whether it is what issue 12 requires, why not)."""
    sha, rss = refs.get(job.get("source"), (None, None))
    outcome = classify(result, sha)
    expect = job["expect"]
    if outcome not in ADMITS[expect]:
        return outcome, False, {"accept": "a genuine file must be accepted (exit 0)",
                                "reject": "must be refused: exit 1, one stderr line, nothing left",
                                "safe": "may be refused or decoded, but must not crash, hang, "
                                        "print a traceback or exit 0 without output"}[expect]
    if rss and result["maxrss"] and result["maxrss"] > RSS_FACTOR * rss and not job.get("genuine"):
        return outcome, False, f"peak RSS {result['maxrss'] / rss:.1f}x a genuine decode's"
    if expect == "accept" and result["leftovers"]:
        return outcome, False, f"left {result['leftovers']} behind"
    if job.get("expect_mode") is not None and result["output_mode"] != job["expect_mode"]:
        return outcome, False, f"output mode {result['output_mode']:o}, umask asks {job['expect_mode']:o}"
    return outcome, True, ""


# ---- careless-user CLI cases (issue 12 items 5-7) --------------------------------------------

def _read_only_dir(path: Path) -> Path:
    """A directory nobody may create files in: mode 0555, and immutable when we are root (root
    ignores the mode). Returns the directory to write into (/sys if neither works)."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o555)
    if os.geteuid() == 0:
        done = shutil.which("chattr") and subprocess.run(["chattr", "+i", str(path)],
                                                         capture_output=True).returncode == 0
        return path if done else Path("/sys")
    return path


def release(root) -> None:
    """Undo _read_only_dir so the tree can be deleted."""
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


def cli_jobs(root, manifest: dict) -> list[dict]:
    """Every careless-user case; release(root) afterwards undoes the read-only directory."""
    p = cli_inputs(root, manifest)
    run = Path(root) / "cli-run"
    source = next(iter(manifest["genuine"]))
    jobs = (_output_cases(run, p, ["decode", str(p["dsz"])])
            + _output_cases(run, p, ["encode", "--weights", str(p["model"]), "--eb-all", "0.01"])
            + _input_cases(run, p) + _same_file_cases(run, p) + _argument_cases(run, p) + _good_cases(run, p))
    return [{**job, "source": source} for job in jobs]
