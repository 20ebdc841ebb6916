"""SIGINT and SIGTERM end a command with one line and exit status 128 + signal (130, 143), at any
moment: the handler raises `Interrupted` (a KeyboardInterrupt, so library code that cleans up on
one cleans up on both), which unwinds through atomic.replacing (temp files removed) and the
sandboxed decoder (its child killed) to cli.main. Once one signal has arrived, further ones are
ignored, so that the cleanup cannot itself be interrupted."""
import signal

from .. import _defer_signals
from .. import received_signals as received  # also those recorded before main (deepsz_caffe/__init__)

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum

    @property
    def exit_status(self) -> int:
        return 128 + self.signum


def _handler(signum, _frame):
    ignore()
    received.append(signum)
    raise Interrupted(signum)


def install() -> dict:
    """Raise Interrupted on SIGINT or SIGTERM (main thread only, as Python runs handlers), now if
    one was recorded by `defer`'s handler; returns the handlers replaced, for `restore`."""
    previous = {sig: signal.signal(sig, _handler) for sig in SIGNALS}
    check()
    return previous


def defer() -> None:
    """Record SIGINT or SIGTERM without raising (deepsz_caffe/__init__ does this first thing when
    run as the program, for the imports that precede cli.main, where nothing could catch an
    exception); cli.main then ends at once."""
    _defer_signals()


def check() -> None:
    """Raise Interrupted if a signal arrived (its exception may have been replaced by another)."""
    if received:
        raise Interrupted(received[0])


def restore(previous: dict) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler if handler is not None else signal.SIG_DFL)


def ignore() -> None:
    for sig in SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
