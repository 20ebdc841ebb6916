"""The one wall-clock timer of the package, its experiments and benchmarks, and the one CPU-name probe."""
import platform
import time
from pathlib import Path


class Stopwatch:
    """Wall seconds of a `with` block: `.seconds` once it ends (`elapsed()` while it runs)."""

    def __enter__(self):
        self.seconds, self._start = None, time.perf_counter()
        return self

    @classmethod
    def started(cls) -> "Stopwatch":
        """A running watch, for spans that are not one block: read it with `elapsed()`."""
        return cls().__enter__()

    def __exit__(self, *exc) -> None:
        self.seconds = self.elapsed()

    def elapsed(self) -> float:
        return time.perf_counter() - self._start


def timings(repeat: int, fn, *args, **kwargs) -> tuple[object, list[float]]:
    """(the last fn(*args, **kwargs), the wall seconds of each of `repeat` calls)."""
    seconds, out = [], None
    for _ in range(max(1, repeat)):
        with Stopwatch() as watch:
            out = fn(*args, **kwargs)
        seconds.append(watch.seconds)
    return out, seconds


def best(repeat: int, fn, *args, **kwargs) -> tuple[object, float]:
    """(fn(*args, **kwargs), its fastest wall time over `repeat` calls)."""
    out, seconds = timings(repeat, fn, *args, **kwargs)
    return out, min(seconds)


def cpu_name() -> str:
    """The CPU model as /proc/cpuinfo names it (the machine type where it cannot be read)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor() or platform.machine()
    names = (ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name"))
    return next(names, platform.processor() or platform.machine())
