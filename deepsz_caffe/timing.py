"""The one wall-clock timer of the experiments and benchmarks, and the one CPU-name probe."""
import platform
import time
from pathlib import Path


def timings(repeat: int, fn, *args, **kwargs) -> tuple[object, list[float]]:
    """(the last fn(*args, **kwargs), the wall seconds of each of `repeat` calls)."""
    seconds, out = [], None
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        out = fn(*args, **kwargs)
        seconds.append(time.perf_counter() - t0)
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
