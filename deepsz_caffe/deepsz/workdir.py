"""Work directories of `assess` and `compress`: one run at a time (an flock on WORK/.lock), readers
(`optimize`) refused while a run holds one, and no empty directory left by a refused run."""
import fcntl
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

from ..errors import ConfigError


@contextmanager
def locked(work: Path):
    """One run per work dir (a second `compress` or `assess` on it would share its files); yields
    `work`. The lock is an flock on work/.lock. A run that fails in a work dir it created, before
    anything worth resuming from was cached there (an `assess-*` file), removes the directory
    again: a refusal leaves nothing behind."""
    work = Path(work)
    created = _missing_top(work)
    try:
        work.mkdir(parents=True, exist_ok=True)
        f = open(work / ".lock", "a")
    except OSError as e:
        raise ConfigError(f"cannot use work dir {work}: {e.strerror}") from None
    ok = False
    with f:
        _flock(f, fcntl.LOCK_EX, work, "; wait for it or give --work-dir another directory")
        try:
            yield work
            ok = True
        finally:
            if not ok and created is not None and not _worth_keeping(work):
                shutil.rmtree(created, ignore_errors=True)


@contextmanager
def reading(work: Path):
    """A shared lock on `work` while its files are read (`deepsz optimize`): refused while a run
    holds it. Nothing is created: a directory without a .lock was never a run's work dir."""
    try:
        f = open(Path(work) / ".lock", "rb")
    except OSError:
        yield
        return
    with f:
        _flock(f, fcntl.LOCK_SH, work, "; wait for it to finish")
        yield


def _flock(f, mode: int, work, advice: str) -> None:
    """Take the lock without waiting; a held one is refused in one line."""
    try:
        fcntl.flock(f, mode | fcntl.LOCK_NB)
    except BlockingIOError:
        raise ConfigError(f"work dir {work} is in use by another deepsz run{advice}") from None


def _missing_top(path: Path) -> Path | None:
    """The outermost directory of `path` that does not exist yet (None if `path` exists)."""
    top = None
    while not os.path.lexists(path):
        top, path = path, path.parent
    return top


def _worth_keeping(work: Path) -> bool:
    """Whether a failed run cached any assessment there (resumable work)."""
    return any(p.is_file() for d in work.glob("assess-*") for p in d.rglob("*"))
