"""deepsz-caffe: DeepSZ (Jin et al., HPDC 2019) for Caffe models.

The pipeline, one subpackage per concept: `sparse` (data + index arrays) -> `codecs` (lossy data,
lossless index) -> `format` (one layer, a whole net, the `.dsz` container); `caffe` (model files,
prototxt edits, TEST phases, training); `deepsz` (pruning, Algorithm 1 assessment, Algorithm 2
optimisation, the end-to-end `compress`); `paper` (the paper's numbers and experiments' inputs);
`baselines` (the comparison methods).

The public API is loaded lazily, so `import deepsz_caffe.sparse` (or `.codecs`, `.format`) loads
no Caffe, LMDB or pipeline module.
"""
import sys as _sys

# When deepsz runs as the program (the `deepsz` script, `python -m deepsz_caffe.cli`), SIGINT and
# SIGTERM are recorded from this line on, before any other import (an exception raised in an
# import half done could only end in a traceback); cli.main then ends at once, in one line
# (cli/interrupt.py). Imported as a library, nothing is touched.
received_signals: list[int] = []


def _defer_signals() -> None:
    import _signal  # the C module: importing `signal` itself takes long enough to be hit

    def record(signum, _frame):
        for sig in (_signal.SIGINT, _signal.SIGTERM):
            _signal.signal(sig, _signal.SIG_IGN)
        received_signals.append(signum)

    for sig in (_signal.SIGINT, _signal.SIGTERM):
        _signal.signal(sig, record)


def _as_program() -> bool:
    argv = getattr(_sys, "orig_argv", [])
    return _sys.argv[0].rsplit("/", 1)[-1] == "deepsz" or \
        any(a == "-m" and b == "deepsz_caffe.cli" for a, b in zip(argv, argv[1:]))


if _as_program():
    _defer_signals()

from importlib import import_module  # noqa: E402

from ._version import __version__  # noqa: E402

_API = {"encode": "format.network", "decode": "format.network", "inspect": "format.network",
        "compress": "deepsz.pipeline"}

__all__ = ["__version__", *_API]


def __getattr__(name):
    if name in _API:
        return getattr(import_module(f".{_API[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
