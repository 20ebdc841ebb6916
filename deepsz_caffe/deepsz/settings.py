"""How an assessment runs, in one value: which layers, which coders, which test set and devices.
The CLI builds one from its flags; `assess`, `compress` and every per-layer task take it whole."""
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, fields

from ..errors import ConfigError

INT32_MAX = 2**31 - 1      # Caffe's iteration counts, device ids and LMDB labels are C ints
SEED_MAX = 2**32 - 1       # caffe.set_random_seed takes an unsigned int
MAX_WORKERS = 1024         # local processes: far beyond any machine's cores, short of a fork bomb
SCHEMES = ("tcp", "tls", "ucx", "ws", "wss")  # Dask's network protocols
DEFAULT_MAX_MEMORY = 4 << 30  # VGG-16 at its prototxt's batch 50 needs 4.2 GiB; at 25, 2.6
VERIFY = ("suffix", "full")  # how compress measures each candidate .dsz
_ADDRESS = re.compile(r"^(?:(?P<scheme>[a-z]+)://)?"
                      r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(?P<port>[0-9]+)$")


def integer(name: str, value, lo: int = 1, hi: int = INT32_MAX) -> int:
    """`value` as an int in [lo, hi], else ConfigError naming the flag."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    if not lo <= value <= hi:
        raise ConfigError(f"{name} must be between {lo} and {hi}, got {value}")
    return value


def number(name: str, value, lo: float = 0.0, *, above: bool = False) -> float:
    """`value` as a finite float >= lo (> lo with above=True), else ConfigError naming the flag."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(value) or value < lo or (above and value == lo):
        raise ConfigError(f"{name} must be a finite number {'>' if above else '>='} {lo:g}, got {value}")
    return value


def gpu_ids(ids, what: str = "--gpus") -> tuple[int, ...]:
    """Device ids (>= 0, at least one); whether they exist is phase.check_gpus's question."""
    ids = tuple(ids)
    if not ids:
        raise ConfigError(f"{what} names no GPU: give ids like 0,1")
    return tuple(integer(what, g, 0) for g in ids)


def layer_names(names, what: str = "--layers") -> tuple[str, ...]:
    """Non-empty layer names; an empty list (`--layers ,`) names nothing and is refused."""
    names = tuple(names)
    if not names or not all(isinstance(n, str) and n.strip() for n in names):
        raise ConfigError(f"{what} names no layer: give comma-separated layer names, e.g. ip1,ip2")
    return names


def scheduler_address(text) -> str:
    """A Dask scheduler address: host:port or scheme://host:port (scheme one of SCHEMES)."""
    m = _ADDRESS.match(text) if isinstance(text, str) else None
    if not m or (m["scheme"] and m["scheme"] not in SCHEMES) or not 1 <= int(m["port"]) <= 65535:
        raise ConfigError(f"--scheduler expects host:port or tcp://host:port (port 1-65535), got {text!r}")
    return text


@dataclass(frozen=True)
class Settings:
    layers: tuple[str, ...] | None = None  # None: every InnerProduct layer
    iterations: int | None = None          # TEST iterations; None: one pass over the LMDB
    gpu: int | None = None                 # one GPU id; None: CPU
    assess_lmdb: str | None = None         # assess on this LMDB, verify on the prototxt's own
    lossy: tuple[str, ...] = ("sz2",)      # each (layer, codec) pair is assessed
    lossless: str = "best"                 # index coder choice
    workers: int = 1                       # local processes, one layer each
    gpus: tuple[int, ...] | None = None    # one worker per GPU
    scheduler: str | None = None           # Dask scheduler address
    suffix: bool = True                    # suffix-only TEST phases where they are exact
    agreement: bool = False                # label-free: top-1 against the original net's top-1
    verify: str = "suffix"                 # "suffix": from the kept features; "full": the paper's pass
    max_memory: int = DEFAULT_MAX_MEMORY   # bytes a TEST net may hold; 0: the prototxt's batch as is

    def __post_init__(self):
        fix = object.__setattr__  # frozen: normalise once, here
        if isinstance(self.lossy, str):
            fix(self, "lossy", (self.lossy,))
        for name in ("layers", "gpus", "lossy"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, tuple):
                fix(self, name, tuple(value))
        if self.layers is not None:
            layer_names(self.layers)
        if self.iterations is not None:
            integer("--iterations", self.iterations)
        if self.gpu is not None:
            integer("--gpu", self.gpu, 0)
        if self.gpus is not None:
            gpu_ids(self.gpus)
        integer("--workers", self.workers, 1, MAX_WORKERS)
        if self.scheduler is not None:
            scheduler_address(self.scheduler)
        if self.verify not in VERIFY:
            raise ConfigError(f"--verify must be one of {', '.join(VERIFY)}, got {self.verify!r}")
        if self.max_memory < 0:
            raise ConfigError(f"--max-memory must be >= 0, got {self.max_memory}")

    @classmethod
    def of(cls, settings: "Settings | None" = None, **overrides) -> "Settings":
        """`settings` (default: all defaults) with keyword overrides; None values are ignored,
        so API callers can pass `gpu=None` and keep the default."""
        base = settings or cls()
        unknown = set(overrides) - {f.name for f in fields(cls)}
        if unknown:
            raise TypeError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        kept = {k: v for k, v in overrides.items() if v is not None}
        return cls(**{**{f.name: getattr(base, f.name) for f in fields(cls)}, **kept})

    def layer_list(self) -> list[str] | None:
        return list(self.layers) if self.layers is not None else None


def as_tuple(value: str | Sequence[str]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)
