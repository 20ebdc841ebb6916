"""Safe file IO. Writes are atomic (temp file in the target directory + rename), so an interrupted
run never leaves a half-written model, cache or result behind; reads refuse what is not a regular
file of sane size, so a FIFO or /dev/zero given as input cannot block or exhaust memory."""
import errno
import json
import os
import signal
import stat
import tempfile
from contextlib import contextmanager
from glob import escape as glob_escape
from pathlib import Path

from .errors import DeepSZError


def check_output(path, inputs=(), error=DeepSZError) -> Path:
    """Refuse, before any work, an output that cannot be written: empty, a directory, in a missing
    or read-only directory, or the same file as one of `inputs` (which it would overwrite)."""
    if not str(path).strip():
        raise error("the output path is empty")
    path = Path(path)
    if path.is_dir():
        raise error(f"cannot write {path}: it is a directory")
    _refuse_special(path, error)
    parent = path.parent
    if not parent.is_dir():
        raise error(f"cannot write {path}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise error(f"cannot write {path}: directory {parent} is not writable")
    for source in inputs:
        if source is not None and path.exists() and Path(source).exists() and path.samefile(source):
            raise error(f"output {path} is the input {source}: choose another output path")
    return path


def _refuse_special(path: Path, error=DeepSZError) -> None:
    """An output must be a regular file or not exist: the rename would replace a FIFO, a device
    node (as root, /dev/null itself) or a socket with a regular file."""
    try:
        mode = os.stat(path).st_mode
    except OSError:  # missing (or a dangling link: the rename replaces the link, not a target)
        return
    if stat.S_ISDIR(mode):
        raise error(f"cannot write {path}: it is a directory")
    if not stat.S_ISREG(mode):
        raise error(f"cannot write {path}: it is not a regular file (a device, FIFO or socket)")


@contextmanager
def replacing(path):
    """Yield a temporary path beside `path`; on success it is renamed over `path`, on failure
    removed. For writers that want a file name (Caffe's Net.save) rather than bytes."""
    path = Path(path)
    if not path.parent.is_dir():
        raise DeepSZError(f"cannot write {path}: directory {path.parent} does not exist")
    _remove_stale_temps(path)
    # Signals wait while the temp file is made, so that the handler's exception (cli.interrupt)
    # is raised inside the block that removes it, never between its creation and that block.
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".{os.getpid()}.tmp", dir=path.parent)
        os.close(fd)
    except OSError as e:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        raise DeepSZError(f"cannot write {path}: {e.strerror}") from None
    try:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a plain open() would honour the umask
        _refuse_special(path)  # again: it may have appeared since check_output
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise DeepSZError(f"cannot write {path}: {e.strerror}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def _umask() -> int:
    """The process umask, read without changing it (os.umask would, briefly, for every thread)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _remove_stale_temps(path: Path) -> None:
    """Temp files of this output left by a killed writer (its pid no longer runs) are removed."""
    for tmp in path.parent.glob(f".{glob_escape(path.name)}.*.tmp"):
        pid = tmp.name.rsplit(".", 2)[-2]
        if pid.isdigit() and not _running(int(pid)):
            tmp.unlink(missing_ok=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_bytes(path, data: bytes) -> Path:
    with replacing(path) as tmp:
        with open(tmp, "r+b") as f:  # "wb" would truncate the empty file: ext4 then flushes at close
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    return Path(path)


def write_text(path, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def write_json(path, obj) -> Path:
    return write_text(path, json.dumps(obj, indent=2) + "\n")


MAX_INPUT_BYTES = 16 << 30  # a larger "model" is a mistake (/dev/zero, a disk image), not a net


@contextmanager
def open_regular(path, what: str, error=DeepSZError, limit: int = MAX_INPUT_BYTES, why: str = ""):
    """Yield (unbuffered binary file, size) of a regular file, or raise `error` saying why not
    (missing, a FIFO/device/directory, over `limit` bytes, `why` saying why that is the limit,
    unreadable); read errors inside the block become `error` too."""
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; regular files ignore the flag.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as e:
        raise error(f"cannot read {what} {path}: {e.strerror}") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
        os.close(fd)
        if stat.S_ISDIR(info.st_mode):
            raise error(f"cannot read {what} {path}: {os.strerror(errno.EISDIR)}")
        if not stat.S_ISREG(info.st_mode):
            raise error(f"{what} {path} is not a regular file")
        raise error(f"{what} {path} is {info.st_size} bytes, over the {limit}-byte limit{why}")
    with open(fd, "rb", buffering=0) as f:
        try:
            yield f, info.st_size
        except OSError as e:
            raise error(f"cannot read {what} {path}: {e.strerror or e}") from None


def read_bytes(path, what: str, error=DeepSZError, limit: int = MAX_INPUT_BYTES, why: str = "") -> bytes:
    """A regular file's bytes, or `error` saying why not (missing, a FIFO/device/directory, over
    `limit` bytes: `why` says why that is the limit)."""
    with open_regular(path, what, error, limit, why) as (f, size):
        return read_exactly(f, size)


def read_array(path, what: str, error=DeepSZError, limit: int = MAX_INPUT_BYTES, why: str = ""):
    """read_bytes into one uint8 numpy array (uninitialised before the read, unlike a bytearray:
    no extra pass; arrays viewing it are writable); shorter if the file shrank meanwhile."""
    import numpy as np

    with open_regular(path, what, error, limit, why) as (f, size):
        buf, got = np.empty(size, np.uint8), 0
        while got < len(buf) and (n := f.readinto(memoryview(buf[got:]))):  # <= 2 GiB a call
            got += n
    return buf[:got]


def read_exactly(f, size: int) -> bytes:
    """Up to `size` bytes (fewer only at end of file): a raw read returns at most ~2 GiB a call,
    and no more than fstat said is read even if the file grows meanwhile."""
    parts, got = [], 0
    while got < size and (chunk := f.read(size - got)):
        parts.append(chunk)
        got += len(chunk)
    return parts[0] if len(parts) == 1 else b"".join(parts)
