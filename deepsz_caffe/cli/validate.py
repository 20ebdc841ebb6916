"""One check of every command's arguments, run before the command starts (build_parser wraps
each command in `checked`), so that a refused run has done no work and created no file. The
rules live with what they guard (deepsz.settings: counts, numbers, layer names, scheduler
addresses; pipeline.check_targets: accuracy targets; atomic: input and output paths;
synth_lmdb and compare: their own limits); this module says which flag gets which, once for
every command that has the flag."""
import functools
import os
import tempfile
from pathlib import Path

from ..errors import ConfigError

INPUT_FILES = {"weights": "weights", "model": "model", "solver": "solver", "assessment": "assessment"}
LMDB_FLAGS = ("test_lmdb", "train_lmdb", "assess_lmdb")


def checked(command):
    """`command` (a cmd_* function) run only once `check` has passed its arguments."""
    @functools.wraps(command)
    def run(a):
        check(a)
        return command(a)

    return run


def check(a) -> None:
    """Raise a DeepSZError (one line) for the first argument of `a` that cannot be honoured;
    cheap checks first, then files, then the GPUs (probed in a child process, ~1 s)."""
    _values(a)
    _paths(a)
    gpus = ([a.gpu] if _get(a, "gpu") is not None else []) + list(_get(a, "gpus") or [])
    if gpus:
        from ..caffe.phase import check_gpus

        check_gpus(gpus)


def _get(a, name):
    return getattr(a, name, None)


def _values(a) -> None:
    _flags(a)
    _command_rules(a)


def _flags(a) -> None:
    """Flags shared by several commands: counts, ids, names, addresses."""
    from ..deepsz import settings as rule
    from . import parse_kept, parse_layers

    if _get(a, "iterations") is not None:
        rule.integer("--iterations", a.iterations)
    if _get(a, "seed") is not None:
        rule.integer("--seed", a.seed, 0, rule.SEED_MAX)
    if _get(a, "workers") is not None:
        rule.integer("--workers", a.workers, 1, rule.MAX_WORKERS)
    if _get(a, "gpu") is not None:
        rule.integer("--gpu", a.gpu, 0)
    if _get(a, "gpus") is not None:
        rule.gpu_ids(a.gpus)
    if _get(a, "layers") is not None:
        rule.layer_names(parse_layers(a.layers) or ())
    if _get(a, "scheduler") is not None:
        rule.scheduler_address(a.scheduler)
    if _get(a, "lr_scale") is not None:
        rule.number("--lr-scale", a.lr_scale, above=True)
    if _get(a, "kept") is not None and not parse_kept(a.kept):
        raise ConfigError("--kept names no layer: give LAYER=FRACTION[,LAYER=FRACTION...]")


def _command_rules(a) -> None:
    """Targets, codecs and the limits one command has of its own."""
    from ..deepsz.pipeline import check_targets
    from . import _codecs

    if hasattr(a, "expected_loss") and a.command in ("compress", "assess", "optimize", "reproduce"):
        check_targets(a.expected_loss, _get(a, "expected_ratio"))
    if hasattr(a, "lossless"):
        _codecs(a)
    if a.command == "reproduce":
        from ..presets import resolve

        resolve(a.preset)
    if a.command == "compare":
        from ..baselines.compare import check_budget

        check_budget(a.max_loss, a.repeat)
    if a.command == "synth-lmdb":
        from ..caffe.synth_lmdb import check_request

        check_request(a.output, a.images, a.size, a.classes, a.seed, overwrite=a.force)


def _paths(a) -> None:
    from .. import atomic
    from ..caffe import lmdb

    for name, what in INPUT_FILES.items():
        if _get(a, name) is not None:
            with atomic.open_regular(_get(a, name), what, ConfigError):
                pass
    for name in LMDB_FLAGS:
        if _get(a, name) is not None:
            lmdb.count(_get(a, name))
    if _get(a, "work_dir") is not None:
        usable_dir(a.work_dir, "--work-dir")
    if a.command == "optimize" and a.output is not None:
        atomic.check_output(a.output, [a.assessment], ConfigError)
    if a.command == "compare":
        out = Path(a.output or Path(a.results) / "compare" / f"{a.net}.json")
        if out.is_dir():
            raise ConfigError(f"cannot write {out}: it is a directory")
        usable_dir(out.parent, "output directory")
        usable_dir(a.figures, "--figures")
    if a.command == "reproduce":
        usable_dir(a.results, "--results")
        usable_dir(a.data, "--data")


def usable_dir(path, what: str) -> Path:
    """A directory that is, or can be created, and written in: refused if it (or the nearest
    existing directory above it) is a file, or no directory can be made there (tried: a mode
    says nothing to root, nor about /proc or a read-only mount)."""
    if not str(path).strip():
        raise ConfigError(f"{what}: the path is empty")
    path = Path(path)
    probe = path
    while not os.path.lexists(probe) and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise ConfigError(f"{what} {path}: {probe} is not a directory")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".deepsz-probe-", dir=probe))
    except OSError as e:
        raise ConfigError(f"{what} {path}: cannot create files in {probe} ({e.strerror})") from None
    return path
