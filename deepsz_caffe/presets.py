"""Named codec choices, so comparison studies can cite exactly what they ran.

- "paper": SZ 2 on data arrays, best of gzip/zstd/blosc on index arrays: DeepSZ as published.
- "best": also SZ3 and prediction-free quantisation + entropy coding for data, and the
  context-modelled index coder; Algorithm 1 assesses every (backend, bound) pair and
  Algorithm 2 picks each layer's coder.
- "max": "best" plus "zquant", quantisation that drops the kept weights within the bound of 0
  from positions and levels (docs/nncodec-challenge.md).
"""
from dataclasses import dataclass

from .codecs import LOSSY_CODECS
from .codecs.lossless import ALL_INDEX_CODECS
from .errors import ConfigError


@dataclass(frozen=True)
class Preset:
    lossy: tuple[str, ...]
    lossless: str


PRESETS = {
    "paper": Preset(("sz2",), "best"),
    "best": Preset(("sz2", "sz3", "quant"), "best-all"),
    "max": Preset(("sz2", "sz3", "quant", "zquant"), "best-all"),
}
INDEX_CHOICES = ALL_INDEX_CODECS + ("best", "best-all")


def resolve(preset: str | None = None, lossy=None, lossless: str | None = None) -> Preset:
    """The preset (default "paper") with explicit `lossy` (name or names) / `lossless` on top."""
    name = preset or "paper"
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    base = PRESETS[name]
    if isinstance(lossy, str):
        lossy = tuple(s.strip() for s in lossy.split(",") if s.strip())
    lossy = tuple(lossy) if lossy else base.lossy
    unknown = [c for c in lossy if c not in LOSSY_CODECS]
    if unknown:
        raise ConfigError(f"unknown lossy codec(s) {', '.join(unknown)}; valid: {', '.join(LOSSY_CODECS)}")
    lossless = lossless or base.lossless
    if lossless not in INDEX_CHOICES:
        raise ConfigError(f"unknown lossless codec {lossless!r}; valid: {', '.join(INDEX_CHOICES)}")
    return Preset(lossy, lossless)
