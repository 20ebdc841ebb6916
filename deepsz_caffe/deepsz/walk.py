"""Algorithm 1's rule (paper section 3.3), once: which error bounds a layer is tested at, and the
feasible range those tests imply.

Starting at 1e-3 the walk goes up by 10x while the accuracy drop stays within the distortion
criterion (0.1 point); at the first distorting decade beta it walks the feasible range from
beta/10 in steps of the current decade (eb += base, base x10 at each decade) until the drop
exceeds the expected loss (or the bound reaches MAX_BOUND). Bounds are (mantissa, exponent)
pairs so that 3e-2 is exactly "3e-2", not 0.030000000000000006. Pure: no Caffe.
"""
from typing import Callable

DISTORTION_CRITERION = 0.1   # accuracy points (the paper's 0.1%)
START_EXPONENTS = (-3, -2, -1)  # the paper's [1E-3, 1E-2, 1E-1]
MAX_BOUND = 1.0              # weights are ~1e-2: beyond 1 nothing is left of a layer


def bound(mantissa: int, exponent: int) -> float:
    return float(f"{mantissa}e{exponent}")


def range_start(drop_at: Callable[[float], float], distortion: float = DISTORTION_CRITERION,
                start_exponents=START_EXPONENTS) -> tuple[int, int]:
    """(mantissa, exponent) of the feasible range's start: beta/10 for the first decade beta whose
    drop exceeds `distortion`. If even the last start does not distort, the range starts at its
    tenth too: the walk then finds where the expected loss is exceeded (the paper's own ranges,
    e.g. [1e-2, 2e-1] for LeNet-300-100's ip3, go past 1e-1)."""
    first = next((e for e in start_exponents if drop_at(bound(1, e)) > distortion), start_exponents[-1])
    return 1, first - 1


def bound_walk(measure: Callable[[float], float], expected_loss: float,
               distortion: float = DISTORTION_CRITERION,
               start_exponents=START_EXPONENTS) -> list[float]:
    """Bounds Algorithm 1 tests for one layer, in test order; `measure(eb)` returns the drop.

    Each bound is measured at most once (the range walk revisits the decade starts)."""
    drops: dict[float, float] = {}

    def drop(eb):
        if eb not in drops:
            drops[eb] = measure(eb)
        return drops[eb]

    m, e = range_start(drop, distortion, start_exponents)
    while bound(m, e) <= MAX_BOUND and drop(bound(m, e)) <= expected_loss:
        m += 1
        if m == 10:
            m, e = 1, e + 1
    return list(drops)


def feasible_range(points: list[dict], expected_loss: float,
                   distortion: float = DISTORTION_CRITERION):
    """The feasible range (start, end) that one layer's measured {"eb", "drop"} points imply:
    start by `range_start`; end = the first bound from start on whose drop exceeds the expected
    loss, None if none did (the walk stopped at MAX_BOUND)."""
    drops = {p["eb"]: p["drop"] for p in points}

    def drop_at(eb):
        if eb not in drops:
            raise ValueError(f"no point at eb {eb:g}: these are not Algorithm 1's points")
        return drops[eb]

    start = bound(*range_start(drop_at, distortion))
    over = sorted(eb for eb, d in drops.items() if eb >= start and d > expected_loss)
    return start, (over[0] if over else None)
