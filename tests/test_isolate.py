"""codecs.isolate: a decoder run in a forked child; its death, exit() or runaway is one CodecError."""
import ctypes
import os
import resource
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from deepsz_caffe.codecs import isolate
from deepsz_caffe.errors import CodecError


def _ok(payload, n):
    return np.frombuffer(payload, np.float32, n).copy() * 2


def _segfault(payload, n):
    ctypes.string_at(0)  # reads address 0: SIGSEGV, as SZ 2 on a flipped Huffman tree


def _exit0(payload, n):
    ctypes.CDLL(None).exit(0)  # as SZ 2 on a version it does not know, after printing to stdout


def _hang(payload, n):
    time.sleep(60)


def _allocate(payload, n):
    return np.ones(1 << 40, np.uint8)  # 1 TiB: past the child's address-space budget


def _codec_error(payload, n):
    raise CodecError("zfp: cannot decode stream: nope")


def _wrong_shape(payload, n):
    return np.zeros(n + 1, np.float32)


def test_values_come_back_through_shared_memory():
    x = np.arange(100, dtype=np.float32)
    out = isolate.decode("t", _ok, x.tobytes(), 100)
    assert out.dtype == np.float32 and np.array_equal(out, 2 * x)


@pytest.mark.parametrize("decoder, message", [
    (_segfault, r"t: the decoder crashed \(SIGSEGV\) on this stream"),
    (_exit0, "t: the decoder gave up on this stream without a result"),
    (_allocate, "t: the decoder needs more memory than this stream can justify"),
    (_codec_error, "^zfp: cannot decode stream: nope$"),
    (_wrong_shape, "t: decoder returned \\(101,\\), expected 100 float32 values"),
])
def test_a_failing_decoder_is_one_codec_error(decoder, message, capfd):
    with pytest.raises(CodecError, match=message):
        isolate.decode("t", decoder, bytes(400), 100)
    out, err = capfd.readouterr()
    assert out == "" and err == ""  # the child's stdout/stderr went to /dev/null


def test_a_decoder_past_its_deadline_is_killed(monkeypatch):
    monkeypatch.setattr(isolate, "SECONDS_BASE", 0.5)
    t0 = time.monotonic()
    with pytest.raises(CodecError, match="ran past its deadline"):
        isolate.decode("t", _hang, bytes(400), 100)
    assert time.monotonic() - t0 < 10


def _zombie_children() -> int:
    """Exited children of this process that nobody has waited for (from /proc)."""
    count = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:  # the process went away while we looked
            continue
        count += fields[0] == "Z" and int(fields[1]) == os.getpid()
    return count


def test_children_do_not_pile_up_as_zombies():
    """A child is reaped lazily (by the next call), so many calls leave at most the last one."""
    for _ in range(6):
        isolate.decode("t", _ok, bytes(400), 100)
        time.sleep(0.05)  # each child has exited before the next call
    assert _zombie_children() <= 1


def test_the_parent_keeps_its_own_limits():
    before = resource.getrlimit(resource.RLIMIT_AS)
    with pytest.raises(CodecError):
        isolate.decode("t", _allocate, bytes(400), 100)
    assert resource.getrlimit(resource.RLIMIT_AS) == before


def _pid_bytes(payload, n):
    return np.frombuffer(os.getpid().to_bytes(8, "little"), np.uint8)[:n].copy()


def test_jobs_of_other_dtypes_run_in_the_child():
    """Index decoders (uint8 gaps) share the lossy decoders' child (issue 23)."""
    out = isolate.decode_all([("t", _ok, np.arange(100, dtype=np.float32).tobytes(), 100),
                              ("gaps", _pid_bytes, b"x", 8, np.uint8)])
    assert out[0].dtype == np.float32 and out[1].dtype == np.uint8
    assert int.from_bytes(out[1].tobytes(), "little") != os.getpid()


def test_index_streams_of_a_file_are_decoded_in_the_child(monkeypatch):
    """network.decode hands every index stream to the sandbox with the layer's size."""
    from deepsz_caffe.codecs import lossless

    job = lossless.index_job(lossless.compress_index(bytes([1, 2, 3]), "zstd")[1], "zstd", 3, 10)
    assert job[0] == "zstd index" and job[3] == 3 and job[4] == np.uint8
    assert isolate.decode_all([job])[0].tolist() == [1, 2, 3]


def test_a_signal_during_the_fork_is_delivered_not_swallowed():
    """os.fork runs Python callbacks (logging's locks) in which a handler's exception would be
    printed ("Exception ignored in ...") and lost; signals wait until the fork is done, so the
    interrupt reaches the caller. Here the signal arrives from inside such a callback."""
    script = textwrap.dedent("""
        import os, signal
        import numpy as np
        from deepsz_caffe.cli import interrupt
        from deepsz_caffe.codecs import isolate

        def ok(payload, n):
            return np.frombuffer(payload, np.float32)

        interrupt.install()
        os.register_at_fork(after_in_parent=lambda: os.kill(os.getpid(), signal.SIGINT))
        try:
            isolate.decode_all([("t", ok, np.arange(4, dtype=np.float32).tobytes(), 4)])
        except interrupt.Interrupted as e:
            print("interrupted", e.signum)
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert r.stdout.strip() == f"interrupted {int(signal.SIGINT)}", r.stdout + r.stderr
    assert "Exception ignored" not in r.stderr and "Traceback" not in r.stderr, r.stderr


def _signals_blocked(payload, n):
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    return np.array([signal.SIGINT in blocked, signal.SIGTERM in blocked], np.float32)


def test_the_child_keeps_interrupts_blocked():
    """A Ctrl-C sent to the process group reaches the child too: were SIGINT unblocked there, the
    parent's handler would run in it and print a second 'deepsz: interrupted' (hostile case
    cli/decode/SIGINT-group-after-*, about once in a few hundred runs). The parent's mask is back."""
    assert isolate.decode("t", _signals_blocked, b"", 2).tolist() == [1, 1]
    assert signal.SIGINT not in signal.pthread_sigmask(signal.SIG_BLOCK, [])
