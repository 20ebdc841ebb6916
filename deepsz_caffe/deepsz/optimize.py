"""Choose one error bound per fc-layer (DeepSZ section 3.4, Algorithm 2).

For every layer the assessment step (section 3.3) measured, at each tested error bound, the
compressed size and the accuracy drop. The paper observes that drops add up across layers
(Equation 1), so picking one candidate per layer is a multiple-choice knapsack:

* expected-accuracy mode, `optimize_for_loss`: smallest total size with sum of drops <= budget,
  solved like Algorithm 2 by a DP over an accuracy axis discretised into eps* = budget / steps;
* expected-ratio mode, `optimize_for_ratio`: smallest sum of drops with total size <= budget.
  Sizes are integers of up to ~1e7 bytes, so instead of a DP over bytes it keeps the exact
  Pareto frontier of (size, drop) over the layers seen so far.

`plan` is what `compress` and `optimize` call: one of the two, with one rule when no plan fits.

Drops are taken as the decimals they print as (`str(float(drop))`) and all sums and
comparisons are exact. Accuracy drops are decimal measurements, so this makes 0.1 + 0.2 fit a
budget of 0.3 (binary floats would say 0.30000000000000004 > 0.3) and makes the DP exactly
optimal when the drops lie on the eps* grid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from numbers import Integral, Real

from deepsz_caffe.errors import ConfigError

# What compress's round 1 feeds these optimisers (deepsz.pipeline.round_one): "envelope", each
# layer's drops as their running maximum over growing bounds from 0 (noise-aware, the default), or
# "literal", the measured drops as the paper's Algorithm 2 takes them.
PLANS = ("envelope", "literal")


@dataclass(frozen=True)
class Candidate:
    """One tested error bound of one layer and what it costs."""

    error_bound: float
    size: int  # compressed bytes of this layer at this bound (data + index)
    drop: float  # accuracy degradation in percentage points; negative if accuracy improved
    backend: str = "sz2"  # lossy codec that produced it, so layers may mix backends


@dataclass(frozen=True)
class Plan:
    """The chosen candidate per layer, in the order the layers were given."""

    choice: dict[str, Candidate]
    total_size: int
    expected_loss: float  # sum of the chosen drops, exact (not discretised), then rounded once


def optimize_for_loss(
    candidates: dict[str, list[Candidate]], expected_loss: float, steps: int = 100
) -> Plan:
    """Smallest total size whose summed drop stays within `expected_loss` (expected-accuracy mode).

    Follows Algorithm 2: a knapsack DP over the layers in dict order, on an accuracy axis of
    bins of eps* = expected_loss / steps, with a trace-back table. Drops are rounded up to whole
    bins, so the plan always meets the exact constraint and can only miss the true optimum by
    that rounding (finer `steps` narrows the gap; drops on the eps* grid lose nothing).
    Ties go to the smaller sum of drops, then to the first solution found.
    Cost is O(layers * candidates * bins) with roughly `steps` + (negative headroom / eps*) bins.
    """
    layers = _validated(candidates)
    if not _is_real(expected_loss) or not math.isfinite(expected_loss) or expected_loss < 0:
        raise ConfigError(f"expected_loss must be a finite number >= 0, got {expected_loss!r}")
    if not _is_int(steps) or steps < 1:
        raise ConfigError(f"steps must be an int >= 1, got {steps!r}")
    drops, budget, unit = _exact_drops(layers, expected_loss)

    lowest = [min(d) for d in drops]
    if sum(lowest) > budget:
        raise ConfigError(
            f"no combination of error bounds keeps the accuracy drop within {expected_loss}: "
            f"the smallest achievable sum of drops is {float(Fraction(sum(lowest), unit))}"
        )

    # The axis counts each layer's drop above that layer's own lowest drop, so every cost is
    # >= 0 and the running sum only grows; the budget correspondingly becomes the headroom
    # budget - sum(lowest). This is how negative drops are handled: a layer that can improve
    # accuracy raises the headroom left for the others, and no state ever needs to go below 0
    # or temporarily above the final cap. Costs are rounded up (ceil) and the headroom down
    # (floor), so sum(costs) <= headroom implies sum(drops) <= budget exactly, and the
    # all-lowest combination (0 bins) keeps the DP feasible whenever the exact problem is.
    # A zero budget makes eps* = 0; then the headroom (from negative drops) is split into
    # `steps` bins instead. Any positive bin width keeps the rounding conservative.
    slack = budget - sum(lowest)
    width = budget or slack or 1  # = steps * bin width, in exact units
    cost = [[-((low - x) * steps // width) for x in d] for d, low in zip(drops, lowest)]
    headroom = slack * steps // width
    top = min(headroom, sum(max(c) for c in cost))  # beyond this every combination fits

    best, trace = _knapsack(layers, cost, drops, top)
    _, b = min((value, b) for b, value in enumerate(best) if value is not None)
    picks = []
    for layer_trace, layer_cost in zip(reversed(trace), reversed(cost)):
        i = layer_trace[b]
        picks.append(i)
        b -= layer_cost[i]
    picks.reverse()
    assert sum(d[i] for d, i in zip(drops, picks)) <= budget, "conservative rounding broken"
    return _plan(candidates, picks, drops, unit)


def _knapsack(layers, cost, drops, top: int):
    """Algorithm 2's DP: best[b] = lexicographically smallest (size, drop) of the layers using
    exactly b bins; trace[layer][b] = index of the candidate that reached b."""
    best: list[tuple[int, int] | None] = [None] * (top + 1)
    best[0] = (0, 0)
    trace: list[list[int]] = []
    for cands, layer_cost, layer_drops in zip(layers, cost, drops):
        nxt: list[tuple[int, int] | None] = [None] * (top + 1)
        pick = [-1] * (top + 1)
        for b, reached in enumerate(best):
            if reached is None:
                continue
            for i, (c, step, d) in enumerate(zip(cands, layer_cost, layer_drops)):
                to = b + step
                if to > top:
                    continue
                value = (reached[0] + int(c.size), reached[1] + d)
                if nxt[to] is None or value < nxt[to]:
                    nxt[to] = value
                    pick[to] = i
        best = nxt
        trace.append(pick)
    return best, trace


def optimize_for_ratio(candidates: dict[str, list[Candidate]], max_total_size: int) -> Plan:
    """Smallest summed drop whose total size fits `max_total_size` bytes (expected-ratio mode).

    Algorithm 2 with size and drop swapped, but exact: after each layer only the partial
    combinations not dominated in (size, drop) are kept, which stays small for real candidate
    lists where a DP over every byte count would not. Ties go to the smaller total size, then
    to the lexicographically first candidate indices.
    """
    layers = _validated(candidates)
    if not _is_int(max_total_size) or max_total_size <= 0:
        raise ConfigError(f"max_total_size must be an int > 0, got {max_total_size!r}")
    drops, _, unit = _exact_drops(layers)

    # rest[k] = smallest possible size of layers k.. ; lets every kept state still fit.
    rest = [0] * (len(layers) + 1)
    for k in reversed(range(len(layers))):
        rest[k] = rest[k + 1] + min(int(c.size) for c in layers[k])
    if rest[0] > max_total_size:
        raise ConfigError(
            f"no combination of error bounds fits in {max_total_size} bytes: "
            f"the smallest achievable total size is {rest[0]}"
        )

    frontier: list[tuple[int, int, tuple[int, ...]]] = [(0, 0, ())]  # (size, drop, picks)
    for k, (cands, layer_drops) in enumerate(zip(layers, drops)):
        room = max_total_size - rest[k + 1]
        grown = sorted(
            (size + int(c.size), drop + d, picks + (i,))
            for size, drop, picks in frontier
            for i, (c, d) in enumerate(zip(cands, layer_drops))
            if size + int(c.size) <= room
        )
        # Sorted by size, a state survives only if its drop beats every smaller-or-equal state.
        frontier = []
        for state in grown:
            if not frontier or state[1] < frontier[-1][1]:
                frontier.append(state)

    return _plan(candidates, list(frontier[-1][2]), drops, unit)


def min_drop_plan(candidates: dict[str, list[Candidate]]) -> Plan:
    """Each layer's smallest-drop candidate (the smaller size on a tie)."""
    choice = {layer: min(cs, key=lambda c: (c.drop, c.size)) for layer, cs in candidates.items()}
    return Plan(choice, sum(c.size for c in choice.values()), sum(c.drop for c in choice.values()))


def plan(candidates: dict[str, list[Candidate]], fc_bytes: int, *,
         expected_loss: float | None = None, expected_ratio: float | None = None) -> Plan:
    """The one planner of `compress` (every verification round) and `optimize`: Algorithm 2 for
    a loss budget (`optimize_for_loss`) or for a ratio of the `fc_bytes` selected weight bytes
    (`optimize_for_ratio`, ConfigError if not even the smallest sizes fit).

    When no combination keeps the summed drop within `expected_loss`, the plan is the
    smallest-drop one (`min_drop_plan`), not an error (a budget below 0 too): drops are noisy
    estimates, and only a measured loss decides whether the budget holds. `compress` encodes it
    and measures (a round fails only on the measured loss); `optimize` reports it with
    "fits": false. Either way its expected_loss above the budget says that it is over."""
    if expected_ratio is not None:
        return optimize_for_ratio(candidates, int(fc_bytes / expected_ratio))
    _validated(candidates)
    try:
        return optimize_for_loss(candidates, expected_loss)
    except ConfigError:  # no plan fits, or a budget below 0 (compress's tightened ones may be)
        return min_drop_plan(candidates)


def _validated(candidates: dict[str, list[Candidate]]) -> list[list[Candidate]]:
    """Check the candidate table and return its lists in layer order."""
    if not isinstance(candidates, dict) or not candidates:
        raise ConfigError("candidates must be a non-empty dict of layer -> list of Candidate")
    for layer, cands in candidates.items():
        if not cands:
            raise ConfigError(f"layer {layer!r} has no candidates")
        for i, c in enumerate(cands):
            where = f"layer {layer!r} candidate {i}"
            if not isinstance(c, Candidate):
                raise ConfigError(f"{where} is not a Candidate: {c!r}")
            if not _is_int(c.size) or c.size < 0:
                raise ConfigError(f"{where}: size must be an int >= 0, got {c.size!r}")
            if not _is_real(c.drop) or not math.isfinite(c.drop):
                raise ConfigError(f"{where}: drop must be a finite number, got {c.drop!r}")
    return list(candidates.values())


def _exact_drops(
    layers: list[list[Candidate]], budget: float = 0.0
) -> tuple[list[list[int]], int, int]:
    """Drops and budget as integers in units of 1/unit, exact (see the module docstring)."""
    drops = [[Fraction(str(float(c.drop))) for c in cands] for cands in layers]
    limit = Fraction(str(float(budget)))
    unit = math.lcm(limit.denominator, *(x.denominator for d in drops for x in d))
    return [[int(x * unit) for x in d] for d in drops], int(limit * unit), unit


def _plan(
    candidates: dict[str, list[Candidate]], picks: list[int], drops: list[list[int]], unit: int
) -> Plan:
    choice = {layer: cands[i] for (layer, cands), i in zip(candidates.items(), picks)}
    return Plan(
        choice=choice,
        total_size=sum(int(c.size) for c in choice.values()),
        expected_loss=float(Fraction(sum(d[i] for d, i in zip(drops, picks)), unit)),
    )


def _is_int(x: object) -> bool:
    return isinstance(x, Integral) and not isinstance(x, bool)


def _is_real(x: object) -> bool:
    return isinstance(x, Real) and not isinstance(x, bool)
