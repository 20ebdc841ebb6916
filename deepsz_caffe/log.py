"""The library's one voice: stage lines, verify rounds and progress bars go through the
`deepsz_caffe` logger, never print. An API user gets silence by default (logging's rules for a
library) and can capture or show them with ordinary logging configuration; the CLI installs
`TqdmHandler`, so its lines interleave cleanly with the bars on stderr. Bars follow the same
switch: shown only while the logger lets INFO through.
"""
import logging
import sys

logger = logging.getLogger("deepsz_caffe")
logger.addHandler(logging.NullHandler())


def get(name: str) -> logging.Logger:
    """A child logger, e.g. get("compress") -> `deepsz_caffe.compress`."""
    return logger.getChild(name)


class TqdmHandler(logging.Handler):
    """Writes each record with tqdm.write, which clears and redraws any live bar around it."""

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm import tqdm

        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # noqa: BLE001 - logging's own contract: a handler never raises
            self.handleError(record)


def configure(level: int = logging.INFO) -> logging.Handler:
    """What the CLI does: the library's records to stderr at `level` (replacing a previous call's)."""
    for h in [h for h in logger.handlers if isinstance(h, TqdmHandler)]:
        logger.removeHandler(h)
    handler = TqdmHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level)
    return handler


def showing_progress() -> bool:
    """Whether bars are drawn: the same switch as the INFO lines (--quiet hides both)."""
    return logger.isEnabledFor(logging.INFO)


def progress(*args, disable: bool = False, **kwargs):
    """A tqdm bar, disabled when the logger is not showing INFO."""
    from tqdm import tqdm

    return tqdm(*args, disable=disable or not showing_progress(), **kwargs)


def handed_down() -> int | None:
    """The level a spawned worker should log at: the CLI's, or None when nothing is configured."""
    if any(isinstance(h, TqdmHandler) for h in logger.handlers):
        return logger.getEffectiveLevel()
    return None


def inherit(level: int | None) -> None:
    """Worker-process initializer: the parent's configuration (spawned children start bare)."""
    if level is not None:
        configure(level)
