"""Jobs for hostile_driver.py: every command's arguments given as a careless or hostile user
would (issue 23, findings 7-11): absurd numbers (0, -1, nan, inf, 1e400, huge integers), empty
layer lists, malformed scheduler addresses, GPU ids that do not exist, special files and
directories where files go, work dirs held by another run, `compare` plug-ins that break each
call of the Method interface, and synth-lmdb sizes no machine holds. Each must be refused before
any work: exit 1, one stderr line, nothing left behind. Same job format as hostile_cases.py;
shared by tests/test_hostile_commands.py and tests/hostile_report.py."""

import fcntl
import json
import shutil
from pathlib import Path

import hostile_cases
from hostile_cases import TIMEOUT, _slug

from deepsz_caffe.digest import sha256_file

PACKAGE_PROTOTXT = Path(__file__).resolve().parents[1] / "deepsz_caffe" / "paper" / "prototxt"
CAFFE_TIMEOUT = 60.0  # s: cases that may load a net (compare builds its Caffe probe first)
_HELD = []  # open, flocked .lock files: work dirs "in use by another run"


def _job(run: Path, job_id: str, argv: list, **kw) -> dict:
    cwd = run / _slug(job_id)
    for d in kw.pop("mkdirs", ()):
        (cwd / d).mkdir(parents=True, exist_ok=True)
    cwd.mkdir(parents=True, exist_ok=True)
    return {
        "id": f"cmd/{job_id}",
        "argv": [str(a) for a in argv],
        "cwd": str(cwd),
        "output": None,
        "timeout": TIMEOUT,
        "command": argv[0],
        "expect": "reject",
        "category": "commands",
        **kw,
    }


def _flags(run: Path, prefix: str, argv: list, cases, **kw) -> list[dict]:
    """One job per (name, extra arguments) case: `argv` + extra, its id `prefix/name`."""
    return [_job(run, f"{prefix}/{name}", [*argv, *extra], **kw) for name, extra in cases]


def _held_work_dir(path: Path) -> Path:
    """A work dir whose lock this process holds (as a running `compress` would) until it exits."""
    path.mkdir(parents=True, exist_ok=True)
    f = open(path / ".lock", "w")
    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    _HELD.append(f)
    return path


def inputs(root, manifest: dict) -> dict:
    """hostile_cases.cli_inputs plus an assessment.json, a plain file and held work dirs."""
    p = hostile_cases.cli_inputs(root, manifest)
    cases = Path(root) / "commands"
    cases.mkdir(parents=True, exist_ok=True)
    p["assessment"] = cases / "assessment.json"
    p["assessment"].write_text(
        json.dumps(
            {
                "fc_bytes": {"ip1": 940800, "ip2": 120000},
                "points": {
                    layer: [
                        {"eb": eb, "size": size, "drop": drop, "backend": "sz2"}
                        for eb, size, drop in ((0.01, 9000, 0.0), (0.02, 6000, 0.05), (0.04, 4000, 0.3))
                    ]
                    for layer in ("ip1", "ip2")
                },
            }
        )
    )
    p["not_json"] = cases / "not-json.json"
    p["not_json"].write_bytes(b"\x00\xffnot json at all")
    p["json_list"] = cases / "list.json"
    p["json_list"].write_text("[1, 2, 3]")
    p["file"] = cases / "a-file"
    p["file"].write_text("not a directory\n")
    p["held"] = _held_work_dir(cases / "held.work")
    p["held_assessment"] = p["held"] / "assessment.json"
    p["held_assessment"].write_text(p["assessment"].read_text())
    p["solver"] = PACKAGE_PROTOTXT / "lenet300" / "solver.prototxt"
    p["misfit"] = cases / "misfit.prototxt"  # ip1 one output wider: the weights do not fit it
    p["misfit"].write_text(p["train_test"].read_text().replace("num_output: 300", "num_output: 301", 1))
    p["v0"] = cases / "v0.prototxt"  # the pre-V1 format Caffe upgrades and deepsz refuses
    p["v0"].write_text('name: "v0" layers { layer { name: "ip1" type: "innerproduct" num_output: 10 } }\n')
    p["mixed"] = cases / "mixed.prototxt"  # `layer` and V1 `layers` in one net: Caffe refuses it
    old = 'layers { name: "old" type: RELU bottom: "ip3" top: "ip3" }\n'
    p["mixed"].write_text(p["train_test"].read_text() + old)
    return p


HUGE = str(10**20)  # above every C int Caffe and LMDB take
NOT_FINITE = ("nan", "inf", "-inf", "1e400")


def _compress_cases(run: Path, p: dict) -> list[dict]:
    """Finding 7: compress's own flags, and refusals that used to leave OUT.work/.lock behind."""
    base = ["compress", "--model", p["train_test"], "--weights", p["model"], "-o", "out.dsz"]
    loss = ["--expected-loss", "0.2"]
    flags = [
        ("iterations-0", ["--iterations", "0"]),
        ("iterations--1", ["--iterations", "-1"]),
        ("iterations-huge", ["--iterations", HUGE]),
        ("layers-comma", ["--layers", ","]),
        ("layers-blank", ["--layers", " , "]),
        ("layers-nosuch", ["--layers", "nosuch"]),
        ("scheduler-not-a-url", ["--scheduler", "not a url"]),
        ("scheduler-no-port", ["--scheduler", "tcp://host"]),
        ("scheduler-bad-port", ["--scheduler", "host:99999"]),
        ("scheduler-empty", ["--scheduler", ""]),
        ("gpu--1", ["--gpu", "-1"]),
        ("gpu-99", ["--gpu", "99"]),
        ("gpu-huge", ["--gpu", HUGE]),
        ("gpus-comma", ["--gpus", ","]),
        ("gpus--1", ["--gpus", "-1"]),
        ("gpus-99", ["--gpus", "0,99"]),
        ("workers-0", ["--workers", "0"]),
        ("workers--1", ["--workers", "-1"]),
        ("workers-huge", ["--workers", HUGE]),
        ("assess-lmdb-missing", ["--assess-lmdb", "no-such-lmdb"]),
        ("assess-lmdb-fifo", ["--assess-lmdb", p["fifo"]]),
        ("assess-lmdb-a-file", ["--assess-lmdb", p["file"]]),
        ("lossy-nosuch", ["--lossy", "nosuch"]),
        ("lossless-nosuch", ["--lossless", "nosuch"]),
    ]
    jobs = _flags(run, "compress", [*base, *loss], flags, output="out.dsz", timeout=CAFFE_TIMEOUT)
    jobs += [
        _job(run, f"compress/expected-loss-{v}", [*base, f"--expected-loss={v}"], output="out.dsz")
        for v in (*NOT_FINITE, "-1")
    ]
    jobs += [
        _job(run, f"compress/expected-ratio-{v}", [*base, f"--expected-ratio={v}"], output="out.dsz")
        for v in (*NOT_FINITE, "0", "-2")
    ]
    odd = (("fifo", p["fifo"]), ("dev-zero", "/dev/zero"), ("directory", p["lmdb"]))
    for flag, other, cases in (
        ("weights", ["--model", p["train_test"]],
         (("missing", "no-such.caffemodel"), *odd, ("prototxt", p["train_test"]))),
        ("model", ["--weights", p["model"]], (("missing", "no-such.prototxt"), *odd)),
    ):
        for name, path in cases:
            jobs.append(_job(run, f"compress/{flag}-{name}",
                             ["compress", *other, *loss, "-o", "out.dsz", f"--{flag}", path],
                             output="out.dsz", timeout=CAFFE_TIMEOUT))
    jobs += [
        _job(run, "compress/work-dir-is-a-file", [*base, *loss, "--work-dir", p["file"]], output="out.dsz"),
        _job(
            run,
            "compress/work-dir-read-only",
            [*base, *loss, "--work-dir", p["readonly"] / "work"],
            output="out.dsz",
            watch=[str(p["readonly"])],
        ),
        _job(
            run,
            "compress/work-dir-held",
            [*base, *loss, "--work-dir", p["held"]],
            output="out.dsz",
            timeout=CAFFE_TIMEOUT,
        ),
        # refused inside the work dir (Caffe cannot run the net): the dir it made is removed again
        _job(
            run,
            "compress/weights-do-not-fit-the-net",
            ["compress", "--model", p["misfit"], "--weights", p["model"], *loss, "-o", "out.dsz"],
            output="out.dsz",
            timeout=CAFFE_TIMEOUT,
        ),
        _job(
            run,
            "compress/plan-via-api-literal-missing-weights",
            [
                "compress",
                "--model",
                p["train_test"],
                "--weights",
                "no-such",
                *loss,
                "--plan",
                "literal",
                "--work-dir",
                "work",
                "-o",
                "out.dsz",
            ],
            output="out.dsz",
        ),
    ]
    return jobs


def _assess_cases(run: Path, p: dict) -> list[dict]:
    """Finding 8: assess's target as compress's, its flags, and no empty work dir left behind."""
    base = ["assess", "--model", p["train_test"], "--weights", p["model"], "--work-dir", "work"]
    loss = ["--expected-loss", "0.2"]
    jobs = [
        _job(run, f"assess/expected-loss-{v}", [*base, f"--expected-loss={v}"], timeout=CAFFE_TIMEOUT)
        for v in (*NOT_FINITE, "-1")
    ]
    flags = [
        ("iterations-0", ["--iterations", "0"]),
        ("layers-comma", ["--layers", ","]),
        ("layers-nosuch", ["--layers", "nosuch"]),
        ("gpu--1", ["--gpu", "-1"]),
        ("gpu-99", ["--gpu", "99"]),
        ("scheduler-not-a-url", ["--scheduler", "not a url"]),
        ("workers-0", ["--workers", "0"]),
    ]
    jobs += _flags(run, "assess", [*base, *loss], flags, timeout=CAFFE_TIMEOUT)
    model = ["assess", "--model", p["train_test"], *loss, "--work-dir", "work"]
    jobs += [
        _job(run, f"assess/weights-{name}", [*model, "--weights", path], timeout=CAFFE_TIMEOUT)
        for name, path in (("missing", "no-such.caffemodel"), ("fifo", p["fifo"]), ("dev-zero", "/dev/zero"))
    ]
    jobs += [
        _job(
            run,
            "assess/missing-lmdb",
            [
                "assess",
                "--model",
                p["train_test_missing"],
                "--weights",
                p["model"],
                *loss,
                "--work-dir",
                "work",
            ],
            timeout=CAFFE_TIMEOUT,
        ),
        _job(
            run,
            "assess/weights-do-not-fit-the-net-nested-work-dir",
            ["assess", "--model", p["misfit"], "--weights", p["model"], *loss, "--work-dir", "a/b/work"],
            timeout=CAFFE_TIMEOUT,
        ),
        _job(
            run,
            "assess/work-dir-is-a-file",
            ["assess", "--model", p["train_test"], "--weights", p["model"], *loss, "--work-dir", p["file"]],
        ),
        _job(
            run,
            "assess/work-dir-read-only",
            [
                "assess",
                "--model",
                p["train_test"],
                "--weights",
                p["model"],
                *loss,
                "--work-dir",
                p["readonly"] / "work",
            ],
            watch=[str(p["readonly"])],
        ),
        _job(
            run,
            "assess/work-dir-held",
            ["assess", "--model", p["train_test"], "--weights", p["model"], *loss, "--work-dir", p["held"]],
            timeout=CAFFE_TIMEOUT,
        ),
    ]
    return jobs


def _optimize_cases(run: Path, p: dict) -> list[dict]:
    """Finding 9: optimize's input read as every other input is; its targets; its lock."""
    loss = ["--expected-loss", "0.2"]
    jobs = [
        _job(run, f"optimize/input-{name}", ["optimize", path, *loss], timeout=timeout)
        for name, path, timeout in (
            ("fifo", p["fifo"], 10.0),
            ("dev-zero", "/dev/zero", TIMEOUT),
            ("huge-sparse", p["huge_zero"], TIMEOUT),
            ("directory", p["lmdb"], TIMEOUT),
            ("missing", "no-such.json", TIMEOUT),
            ("not-json", p["not_json"], TIMEOUT),
            ("json-list", p["json_list"], TIMEOUT),
            ("a-caffemodel", p["model"], TIMEOUT),
        )
    ]
    jobs += [
        _job(run, f"optimize/expected-loss-{v}", ["optimize", p["assessment"], f"--expected-loss={v}"])
        for v in (*NOT_FINITE, "-1")
    ]
    jobs += [
        _job(run, f"optimize/expected-ratio-{v}", ["optimize", p["assessment"], f"--expected-ratio={v}"])
        for v in (*NOT_FINITE, "0", "-2")
    ]
    jobs += [
        _job(
            run,
            "optimize/o-in-read-only-directory",
            ["optimize", p["assessment"], *loss, "-o", p["readonly"] / "plan.json"],
            watch=[str(p["readonly"])],
        ),
        _job(
            run,
            "optimize/o-is-a-directory",
            ["optimize", p["assessment"], *loss, "-o", "outdir"],
            mkdirs=["outdir"],
            keep=["outdir"],
            watch=["outdir"],
        ),
        _job(
            run, "optimize/o-equals-input", ["optimize", "in.json", *loss, "-o", "in.json"], keep=["in.json"]
        ),
        _job(run, "optimize/work-dir-held", ["optimize", p["held_assessment"], *loss]),
        _job(run, "optimize/genuine", ["optimize", p["assessment"], *loss], expect="accept"),
    ]
    same = jobs[-3]
    target = Path(same["cwd"]) / "in.json"
    target.write_text(p["assessment"].read_text())
    same["inputs_sha"] = {str(target): sha256_file(target)}
    return jobs


def compare_argv(p: dict, *extra, weights=None, output="out.json") -> list:
    """`--quiet`: compare's progress lines go to stderr, and the verdict counts stderr's lines."""
    return [
        "compare",
        "--quiet",
        "--net",
        "hostile",
        "--methods",
        "",
        "--model",
        p["train_test"],
        "--weights",
        weights or p["model"],
        "--results",
        "results",
        "--figures",
        "figures",
        "-o",
        output,
        "--repeat",
        "1",
        *extra,
    ]


PLUGIN_MODULES = ("hostile_plugins.py", "hostile_plugin_broken.py")


def plugin_job(run: Path, job_id: str, argv: list, **kw) -> dict:
    """A compare job whose cwd holds the plug-in modules: `python -m deepsz_caffe.cli` imports
    module:Class from the current directory (sys.path[0]), as a user's own module would be."""
    job = _job(run, job_id, argv, keep=[*PLUGIN_MODULES, "__pycache__"], **kw)
    for name in PLUGIN_MODULES:
        shutil.copyfile(Path(__file__).with_name(name), Path(job["cwd"]) / name)
    return job


PLUGINS = (
    "RaiseInInit",
    "RaiseInSetup",
    "RaiseInUnavailable",
    "RaiseInSweep",
    "SweepNotIterable",
    "RaiseInEncode",
    "RaiseInDecode",
    "RaiseInDescribe",
    "RaiseInLayerBytes",
    "RaiseInOperatingPoint",
    "LayerBytesNotADict",
    "DescribeNotAString",
    "EncodeNone",
    "EncodeList",
    "DecodeObjects",
    "DecodeStrings",
    "DecodeFloat64Huge",
    "DecodeWrongShape",
    "MutatesReference",
    "MutatesContext",
    "ExitInEncode",
    "ExitInDecode",
    "NameNotAString",
)


def _compare_cases(run: Path, p: dict) -> list[dict]:
    """Finding 10 (and compare's numbers, finding 8): every plug-in call guarded."""
    jobs = [
        plugin_job(
            run,
            f"compare/plugin-{name}",
            compare_argv(p, "--method", f"hostile_plugins:{name}"),
            output="out.json",
            timeout=CAFFE_TIMEOUT,
        )
        for name in PLUGINS
    ]
    jobs += [
        plugin_job(
            run,
            f"compare/plugin-{name}",
            compare_argv(p, "--method", spec),
            output="out.json",
            timeout=CAFFE_TIMEOUT,
        )
        for name, spec in (
            ("module-raises-on-import", "hostile_plugin_broken:X"),
            ("module-missing", "no_such_module_xyz:X"),
            ("class-missing", "hostile_plugins:Nope"),
            ("not-a-method", "hostile_plugins:np"),
            ("no-colon", "justaname"),
        )
    ]
    good = ["--method", "hostile_plugins:Plain"]
    jobs += [
        _job(run, f"compare/max-loss-{v}", compare_argv(p, *good, f"--max-loss={v}"), output="out.json")
        for v in (*NOT_FINITE, "-1")
    ]
    jobs += [
        _job(run, f"compare/repeat-{v}", compare_argv(p, *good, "--repeat", v), output="out.json")
        for v in ("0", "-1", HUGE)
    ]
    jobs += [
        _job(
            run,
            f"compare/gpu-{v}",
            compare_argv(p, *good, "--gpu", v),
            output="out.json",
            timeout=CAFFE_TIMEOUT,
        )
        for v in ("-1", "99")
    ]
    jobs += [
        _job(
            run,
            "compare/weights-fifo",
            compare_argv(p, *good, weights=p["fifo"]),
            output="out.json",
            timeout=CAFFE_TIMEOUT,
        ),
        _job(
            run,
            "compare/o-in-read-only-directory",
            compare_argv(p, *good, output=p["readonly"] / "x.json"),
            watch=[str(p["readonly"])],
            timeout=CAFFE_TIMEOUT,
        ),
        _job(
            run,
            "compare/figures-in-proc",
            compare_argv(p, *good, "--figures", "/proc/figures"),
            output="out.json",
            timeout=CAFFE_TIMEOUT,
        ),
        _job(
            run,
            "compare/figures-is-a-file",
            compare_argv(p, *good, "--figures", p["file"]),
            output="out.json",
            timeout=CAFFE_TIMEOUT,
        ),
    ]
    return jobs


def _synth_cases(run: Path, p: dict) -> list[dict]:
    """Finding 11: sizes no machine holds are refused up front; odd output paths."""
    cases = [
        ("classes-1e12", ["--images", "1", "--size", "8", "--classes", "1000000000000"]),
        ("classes-0", ["--images", "1", "--size", "8", "--classes", "0"]),
        ("size-20000", ["--images", "1", "--size", "20000"]),
        ("size-huge", ["--images", "1", "--size", HUGE]),
        ("images-1e12", ["--images", "1000000000000", "--size", "256"]),
        ("images-huge", ["--images", HUGE, "--size", "8"]),
        ("images-0", ["--images", "0"]),
        ("images--1", ["--images", "-1"]),
        ("size-0", ["--images", "1", "--size", "0"]),
        ("seed--1", ["--images", "1", "--size", "8", "--seed", "-1"]),
        ("seed-huge", ["--images", "1", "--size", "8", "--seed", HUGE]),
    ]
    jobs = _flags(run, "synth-lmdb", ["synth-lmdb", "-o", "db"], cases, output="db")
    small = ["synth-lmdb", "--images", "2", "--size", "8"]
    jobs += [
        _job(run, f"synth-lmdb/o-{name}", [*small, "-o", path], timeout=10.0)
        for name, path in (
            ("fifo", p["fifo"]),
            ("dev-zero", "/dev/zero"),
            ("a-file", p["file"]),
            ("in-read-only-directory", p["readonly"] / "db"),
            ("empty", ""),
            ("proc", "/proc/self/db"),
        )
    ]
    jobs[-3]["watch"] = [str(p["readonly"])]
    jobs += [
        _job(run, f"synth-lmdb/o-{name}-force", [*small, "--force", "-o", path], timeout=10.0)
        for name, path in (("fifo", p["fifo"]), ("dev-zero", "/dev/zero"), ("a-file", p["file"]))
    ]
    return jobs


def _caffe_cases(run: Path, p: dict) -> list[dict]:
    """train / prune / test / reproduce: the same rules for the same flags."""
    test = ["test", "--model", p["train_test"], "--weights", p["model"]]
    jobs = _flags(run, "test", test, [
        ("iterations-0", ["--iterations", "0"]),
        ("iterations--1", ["--iterations", "-1"]),
        ("iterations-huge", ["--iterations", HUGE]),
        ("gpu--1", ["--gpu", "-1"]),
        ("gpu-99", ["--gpu", "99"]),
        ("test-lmdb-missing", ["--test-lmdb", "nope"]),
        ("test-lmdb-fifo", ["--test-lmdb", p["fifo"]]),
    ], timeout=CAFFE_TIMEOUT)
    files = (
        ("model-fifo", p["fifo"], p["model"]),
        ("model-dev-zero", "/dev/zero", p["model"]),
        ("model-v0-format", p["v0"], p["model"]),
        ("model-mixed-v1-and-current", p["mixed"], p["model"]),
        ("weights-fifo", p["train_test"], p["fifo"]),
        ("weights-dev-zero", p["train_test"], "/dev/zero"),
        ("weights-directory", p["train_test"], p["lmdb"]),
    )
    jobs += _flags(run, "test", ["test"], [(name, ["--model", model, "--weights", weights])
                                           for name, model, weights in files], timeout=CAFFE_TIMEOUT)
    caffemodel = {"output": "out.caffemodel", "timeout": CAFFE_TIMEOUT}
    lmdbs = ["--train-lmdb", p["lmdb"], "--test-lmdb", p["lmdb"], "-o", "out.caffemodel"]
    jobs += _flags(run, "train", ["train", "--solver", p["solver"], *lmdbs], [
        ("iterations-0", ["--iterations", "0"]),
        ("iterations--1", ["--iterations", "-1"]),
        ("iterations-huge", ["--iterations", HUGE]),
        ("seed--5", ["--seed", "-5"]),
        ("seed-huge", ["--seed", HUGE]),
        ("weights-fifo", ["--weights", p["fifo"]]),
        ("weights-dev-zero", ["--weights", "/dev/zero"]),
        ("train-lmdb-missing", ["--train-lmdb", "nope"]),
        ("work-dir-is-a-file", ["--work-dir", p["file"]]),
    ], **caffemodel)
    solvers = (("fifo", p["fifo"]), ("dev-zero", "/dev/zero"), ("directory", p["lmdb"]),
               ("missing", "nope.prototxt"))
    jobs += _flags(run, "train", ["train", "-o", "out.caffemodel"],
                   [(f"solver-{name}", ["--solver", path]) for name, path in solvers], **caffemodel)
    jobs += _flags(run, "prune", ["prune", "--solver", p["solver"], "--weights", p["model"], *lmdbs], [
        ("lr-scale-nan", ["--kept", "ip1=0.1", "--lr-scale=nan"]),
        ("lr-scale-inf", ["--kept", "ip1=0.1", "--lr-scale=inf"]),
        ("lr-scale-0", ["--kept", "ip1=0.1", "--lr-scale=0"]),
        ("lr-scale--1", ["--kept", "ip1=0.1", "--lr-scale=-1"]),
        ("iterations-0", ["--kept", "ip1=0.1", "--iterations", "0"]),
        ("kept-2", ["--kept", "ip1=2"]),
        ("kept-nan", ["--kept", "ip1=nan"]),
        ("kept-comma", ["--kept", ","]),
        ("kept-nosuch", ["--kept", "nosuch=0.1"]),
    ], **caffemodel)
    jobs += _flags(run, "reproduce", ["reproduce", "--results", "results", "--data", "data"], [
        ("expected-loss-nan", ["--expected-loss=nan"]),
        ("expected-loss--1", ["--expected-loss=-1"]),
        ("expected-loss-1e400", ["--expected-loss=1e400"]),
        ("seed--1", ["--seed", "-1"]),
        ("seed-huge", ["--seed", HUGE]),
        ("net-nosuch", ["--net", "nosuch"]),
        ("preset-nosuch", ["--preset", "nosuch"]),
        ("results-is-a-file", ["--results", p["file"]]),
        ("data-in-proc", ["--data", "/proc/data"]),
        ("results-in-read-only-directory", ["--results", p["readonly"] / "r"]),
    ])
    encode = ["encode", "--weights", p["model"], "--eb-all", "0.01", "-o", "out.dsz"]
    jobs += _flags(run, "encode", encode, [("layers-comma", ["--layers", ","]),
                                           ("layers-blank", ["--layers", " , "])], output="out.dsz")
    return jobs


def command_jobs(root, manifest: dict) -> list[dict]:
    """Every case; hostile_cases.release(root) afterwards undoes the read-only directory."""
    p = inputs(root, manifest)
    run = Path(root) / "cmd-run"
    source = next(iter(manifest["genuine"]))
    jobs = (
        _compress_cases(run, p)
        + _assess_cases(run, p)
        + _optimize_cases(run, p)
        + _compare_cases(run, p)
        + _synth_cases(run, p)
        + _caffe_cases(run, p)
    )
    for job in jobs:  # nothing may appear in the read-only directory either
        if str(p["readonly"]) in " ".join(job["argv"]):
            job["watch"] = sorted({*job.get("watch", ()), str(p["readonly"])})
    return [{**job, "source": source} for job in jobs]
