"""How an assessment runs, in one value: which layers, which coders, which test set and devices.
The CLI builds one from its flags; `assess`, `compress` and every per-layer task take it whole."""
from collections.abc import Sequence
from dataclasses import dataclass, fields

from ..errors import ConfigError

DEFAULT_MAX_MEMORY = 4 << 30  # VGG-16 at its prototxt's batch 50 needs 4.2 GiB; at 25, 2.6
VERIFY = ("suffix", "full")  # how compress measures each candidate .dsz


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
        if self.verify not in VERIFY:
            raise ConfigError(f"--verify must be one of {', '.join(VERIFY)}, got {self.verify!r}")
        if self.max_memory < 0:
            raise ConfigError(f"--max-memory must be >= 0, got {self.max_memory}")
        if self.workers < 1:
            raise ConfigError(f"--workers must be >= 1, got {self.workers}")

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
