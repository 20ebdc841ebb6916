"""Decoders run on untrusted streams in a forked child, so that a stream which crashes one, makes
it call exit() or allocate or loop without end costs one CodecError, not the process: the native
lossy ones, quant's range coder and every index decoder (blosc's C code, ctx's coders; issue 23:
a 929-byte ctx stream once decoded in-process for 153 s and 2.2 GB).

A .dsz is a file people exchange and a CRC is no authentication: a forged stream reaches the
decoder with every checksum right. The backends check what a stream declares (versions, counts,
sizes) before any C code runs, but SZ 2, SZ3 and ZFP also parse coded bytes no such check can
vouch for (a bit flipped in SZ 2's Huffman tree segfaults it; SZ 2 calls exit(0) on a version it
does not know). The child writes the decoded float32 values into a shared anonymous mapping that
the parent then views without a copy; it runs with stdout and stderr on /dev/null (SZ prints its
complaints there), under an address-space limit and a deadline. All the streams of a file go to
one child (`decode_all`), forked before the file's layers are rebuilt, while the parent is small;
a job may decode to another dtype than float32 (an index stream's uint8 gaps).
"""
import atexit
import faulthandler
import mmap
import os
import resource
import select
import signal
import struct

import numpy as np

from deepsz_caffe.errors import CodecError

_STATE = struct.Struct("<III")  # state, message length, the job being decoded
_MESSAGE = 1024                 # bytes kept of a child's error message
_DONE, _FAILED = 1, 2
# Address space a child may add to its parent's: a genuine decode (SZ 2, SZ3, ZFP; LeNet to
# AlexNet-sized layers, cold process) fits in 8 MiB + 2 bytes per byte of payload and output
# (measured), so this leaves margin, while a forged stream cannot take a decode of LeNet-300-100
# (38 MiB) past twice its peak RSS.
MEMORY_BASE = 32 << 20
MEMORY_PER_BYTE = 8
SECONDS_BASE = 10.0             # a child gets this long, plus
SECONDS_PER_VALUE = 1e-6        # this per value (SZ 2 decodes ~10**8 values a second)


def decode(name: str, decoder, payload: bytes, n: int, dtype=np.float32) -> np.ndarray:
    """decoder(payload, n) -> n values of `dtype`, run in a child; CodecError if it fails or dies."""
    return decode_all([(name, decoder, payload, n, dtype)])[0]


def decode_all(jobs: list) -> list[np.ndarray]:
    """[(codec name, decoder, payload, n[, dtype])] -> each decoder(payload, n), n values of dtype
    (default float32), all run in one child, in order; CodecError naming the codec of the first
    job that fails or kills it. Every job is budgeted as if its n values were 4 bytes each (an
    index decoder's work arrays are per entry, like a lossy one's)."""
    _reap()
    if not jobs:
        return []
    jobs = [(*job, np.float32) if len(job) == 4 else tuple(job) for job in jobs]
    sizes = [-(-n * np.dtype(dtype).itemsize // 8) * 8 for _, _, _, n, dtype in jobs]  # 8-aligned
    offsets = np.cumsum([_STATE.size + _MESSAGE] + sizes).tolist()
    shared = mmap.mmap(-1, offsets[-1])  # MAP_SHARED | MAP_ANONYMOUS: the child's writes show
    budget = MEMORY_BASE + MEMORY_PER_BYTE * sum(len(p) + 4 * n for _, _, p, n, _ in jobs)
    ready, done = os.pipe()
    try:
        # Signals wait during the fork: os.fork runs Python callbacks (logging's locks) in which
        # the interrupt handler's exception would be printed and swallowed, not delivered. The
        # child keeps them blocked: a Ctrl-C to the process group must not run the parent's
        # handler in it (a second "interrupted", the parent's cleanup done twice); the parent
        # reports the interruption and kills the child.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            pid = os.fork()
        except BaseException:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            raise
        if pid == 0:  # pragma: no cover - runs in the child, which never returns
            os.close(ready)
            _child(shared, offsets, jobs, budget, done)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    finally:
        os.close(done)
    try:
        finished = _ready(ready, pid, SECONDS_BASE + SECONDS_PER_VALUE * sum(job[3] for job in jobs))
    finally:
        os.close(ready)
    state, length, current = _STATE.unpack_from(shared)
    if state == _DONE:
        _ZOMBIES.append(pid)  # reaped later: its exit (unmapping a copy of us) takes milliseconds
        return [np.frombuffer(shared, dtype, n, offset) for (*_, n, dtype), offset in zip(jobs, offsets)]
    status = os.waitpid(pid, 0)[1]
    name = jobs[min(current, len(jobs) - 1)][0]
    if not finished:
        raise CodecError(f"{name}: the decoder ran past its deadline on this stream (corrupt or forged)")
    if os.WIFSIGNALED(status):
        sig = signal.Signals(os.WTERMSIG(status)).name
        raise CodecError(f"{name}: the decoder crashed ({sig}) on this stream (corrupt or forged)")
    if state == _FAILED:
        raise CodecError(shared[_STATE.size:_STATE.size + length].decode("utf-8", "replace"))
    raise CodecError(f"{name}: the decoder gave up on this stream without a result "
                     f"(exit status {os.waitstatus_to_exitcode(status)}; corrupt or forged)")


def _child(shared, offsets: list[int], jobs: list, budget: int, done: int) -> None:
    """Decode every job into `shared`, report through its head and the `done` pipe, and leave
    with os._exit (no cleanup of the parent's state: atexit handlers, buffered output and temp
    files are its own)."""
    state, message, current = _FAILED, b"", 0
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.dup2(null, 2)
        faulthandler.disable()  # a crash here is reported by the parent, in one line
        for sig in (signal.SIGINT, signal.SIGTERM):  # the parent reports an interruption, not us
            signal.signal(sig, signal.SIG_DFL)
        _limit_memory(budget)
        for current, ((name, decoder, payload, n, dtype), offset) in enumerate(zip(jobs, offsets)):
            _STATE.pack_into(shared, 0, 0, 0, current)  # if this job kills us, the parent knows which
            out = decoder(payload, n)
            if not isinstance(out, np.ndarray) or out.dtype != dtype or out.shape != (n,):
                raise CodecError(f"{name}: decoder returned {getattr(out, 'shape', type(out).__name__)}, "
                                 f"expected {n} {np.dtype(dtype).name} values")
            np.frombuffer(shared, dtype, n, offset)[...] = out
            del out
        state = _DONE
    except CodecError as e:
        message = str(e).encode("utf-8", "replace")
    except MemoryError:
        message = (f"{jobs[current][0]}: the decoder needs more memory than this stream can "
                   "justify (corrupt or forged)").encode()
    except BaseException as e:  # noqa: BLE001 - the child reports whatever it met, then exits
        message = f"{jobs[current][0]}: the decoder failed on this stream ({type(e).__name__}: " \
                  f"{e})".encode("utf-8", "replace")
    finally:
        try:
            message = message[:_MESSAGE]
            _STATE.pack_into(shared, 0, state, len(message), current)
            shared[_STATE.size:_STATE.size + len(message)] = message
            os.write(done, b"\1")
        finally:
            os._exit(0)


def _limit_memory(budget: int) -> None:
    with open("/proc/self/status") as f:
        vm = next(int(line.split()[1]) << 10 for line in f if line.startswith("VmSize:"))
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = vm + budget
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    if soft == resource.RLIM_INFINITY or limit < soft:
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _ready(fd: int, pid: int, seconds: float) -> bool:
    """Whether the child reported (or died: the pipe closes) within `seconds`; else it is killed."""
    try:
        if select.select([fd], [], [], seconds)[0]:
            return True
    except BaseException:  # Ctrl-C while waiting: take the child along
        _kill(pid)
        raise
    _kill(pid)
    return False


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


_ZOMBIES: list[int] = []


def _reap() -> None:
    """Collect the children that reported and exited since (never blocks)."""
    for pid in list(_ZOMBIES):
        try:
            if os.waitpid(pid, os.WNOHANG)[0]:
                _ZOMBIES.remove(pid)
        except ChildProcessError:
            _ZOMBIES.remove(pid)


atexit.register(_reap)
