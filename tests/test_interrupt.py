"""deepsz_caffe.cli.interrupt: SIGINT/SIGTERM end a command with one line, exit 128 + signal, and
no temp file, whenever they come (issue 23); the real-process moments, the first 0.25 s
included, are covered by tests/test_hostile.py's signal cases."""
import os
import signal

import numpy as np
import pytest

from deepsz_caffe import cli
from deepsz_caffe.cli import interrupt


@pytest.fixture
def dsz(tmp_path):
    """A small genuine .dsz, written by the wire writer and encoder (no Caffe run)."""
    from deepsz_caffe.caffe import wire
    from deepsz_caffe.format import network

    rng = np.random.default_rng(0)
    w = (rng.normal(0, 0.05, (40, 50)) * (rng.random((40, 50)) < 0.1)).astype(np.float32)
    skeleton = _skeleton()
    model = wire.write_caffemodel(skeleton, {"ip": [w, np.zeros(40, np.float32)]}, tmp_path / "m.caffemodel")
    return network.encode(model, tmp_path / "m.dsz", eb_all=0.01) and tmp_path / "m.dsz"


def _skeleton() -> bytes:
    from deepsz_caffe.caffe.io import net_parameter_class

    net = net_parameter_class()(name="n")
    layer = net.layer.add(name="ip", type="InnerProduct")
    for shape in ((40, 50), (40,)):
        layer.blobs.add().shape.dim.extend(shape)
    return net.SerializeToString()


@pytest.fixture(autouse=True)
def _handlers():
    saved = {sig: signal.getsignal(sig) for sig in interrupt.SIGNALS}
    yield
    interrupt.received.clear()
    for sig, handler in saved.items():
        signal.signal(sig, handler)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_the_write_removes_the_temp_file(dsz, tmp_path, monkeypatch, capsys, signum):
    out = tmp_path / "out" / "m.caffemodel"
    out.parent.mkdir()
    real_fsync = os.fsync

    def fsync_then_signal(fd):
        real_fsync(fd)
        os.kill(os.getpid(), signum)

    monkeypatch.setattr(os, "fsync", fsync_then_signal)
    assert cli.main(["decode", str(dsz), "-o", str(out)]) == 128 + signum
    assert list(out.parent.iterdir()) == []
    assert capsys.readouterr().err.strip().splitlines() == ["deepsz: interrupted"]


def test_a_signal_during_the_imports_ends_main_at_once(dsz, tmp_path, capsys):
    """Before main, the handler only records the signal (nothing could catch an exception)."""
    interrupt.defer()
    os.kill(os.getpid(), signal.SIGTERM)
    assert interrupt.received == [signal.SIGTERM]
    assert cli.main(["decode", str(dsz), "-o", str(tmp_path / "o")]) == 143
    assert not (tmp_path / "o").exists()
    assert capsys.readouterr().err.strip() == "deepsz: interrupted"


def test_a_signal_turned_into_another_exception_still_reads_interrupted(dsz, tmp_path, monkeypatch, capsys):
    """A C extension importing may replace the handler's exception by its own (numpy's
    ImportError was seen): main goes by the signal received, not by the exception."""
    def decode(a):
        try:
            os.kill(os.getpid(), signal.SIGINT)
        except KeyboardInterrupt:
            raise ImportError("PyCapsule_Import could not import module") from None

    parser = cli.build_parser()
    parser._subparsers._group_actions[0].choices["decode"].set_defaults(func=decode)
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    assert cli.main(["decode", str(dsz), "-o", str(tmp_path / "o")]) == 130
    assert capsys.readouterr().err.strip() == "deepsz: interrupted"


def test_main_called_with_argv_restores_the_callers_handlers(dsz, tmp_path):
    before = signal.getsignal(signal.SIGINT)
    cli.main(["inspect", str(dsz)])
    assert signal.getsignal(signal.SIGINT) is before
