"""Error-bound selection: hand-checked answers, brute force on random instances, validation."""

import itertools
import math
import time
from fractions import Fraction

import numpy as np
import pytest

from deepsz_caffe.errors import ConfigError
from deepsz_caffe.deepsz.optimize import (Candidate, Plan, min_drop_plan, optimize_for_loss,
                                          optimize_for_ratio, plan)


def exact(x):
    """The optimizer compares drops as the decimals they print as; so must the oracle."""
    return Fraction(str(float(x)))


def drop_sum(plan_or_combo):
    combo = plan_or_combo.choice.values() if isinstance(plan_or_combo, Plan) else plan_or_combo
    return sum((exact(c.drop) for c in combo), Fraction(0))


def combos(candidates):
    return itertools.product(*candidates.values())


def brute_loss(candidates, expected_loss):
    """(size, drop) of the best combination within the loss budget, or None."""
    feasible = [
        (sum(c.size for c in combo), drop_sum(combo))
        for combo in combos(candidates)
        if drop_sum(combo) <= exact(expected_loss)
    ]
    return min(feasible, default=None)


def brute_ratio(candidates, max_total_size):
    """(drop, size) of the best combination within the size budget, or None."""
    feasible = [
        (drop_sum(combo), sum(c.size for c in combo))
        for combo in combos(candidates)
        if sum(c.size for c in combo) <= max_total_size
    ]
    return min(feasible, default=None)


def check_plan(plan, candidates):
    assert list(plan.choice) == list(candidates)
    for layer, chosen in plan.choice.items():
        assert any(chosen is c for c in candidates[layer])
    assert plan.total_size == sum(c.size for c in plan.choice.values())
    assert plan.expected_loss == float(drop_sum(plan))

def solved_or_refused(candidates, expected_loss, steps):
    """(brute force's best, the optimiser's checked plan), or (None, None) after checking that
    the optimiser refuses an instance without a feasible combination."""
    best = brute_loss(candidates, expected_loss)
    if best is None:
        with pytest.raises(ConfigError):
            optimize_for_loss(candidates, expected_loss, steps)
        return None, None
    plan = optimize_for_loss(candidates, expected_loss, steps)
    check_plan(plan, candidates)
    return best, plan


def bounds(plan):
    return {layer: c.error_bound for layer, c in plan.choice.items()}


def layer(*rows, backend="sz2"):
    return [Candidate(eb, size, drop, backend) for eb, size, drop in rows]


# --- hand-built instances -------------------------------------------------------------------

VGG_LIKE = {
    "fc6": layer((1e-3, 1000, 0.0), (1e-2, 600, 0.05), (2e-2, 400, 0.12), (3e-2, 300, 0.40)),
    "fc7": layer((1e-3, 200, 0.0), (1e-2, 120, 0.03), (2e-2, 90, 0.10)),
    "fc8": layer((1e-3, 50, 0.0), (1e-2, 30, 0.02), (2e-2, 25, 0.08)),
}


def test_loss_mode_known_answer():
    plan = optimize_for_loss(VGG_LIKE, 0.2)
    check_plan(plan, VGG_LIKE)
    # fc6@2e-2 (0.12) + fc7@1e-2 (0.03) + fc8@1e-2 (0.02) = 0.17 -> 550 bytes; every cheaper mix
    # (e.g. fc7@2e-2 with fc6@2e-2: 0.22) breaks the budget.
    assert bounds(plan) == {"fc6": 2e-2, "fc7": 1e-2, "fc8": 1e-2}
    assert plan.total_size == 550
    assert plan.expected_loss == pytest.approx(0.17)


def test_loss_mode_budget_exactly_met():
    plan = optimize_for_loss(VGG_LIKE, 0.17, steps=17)
    assert plan.total_size == 550 and drop_sum(plan) == Fraction(17, 100)
    # 0.1 + 0.2 is 0.30000000000000004 in binary floats but fits 0.3 as the user means it.
    cands = {
        "a": layer((1e-3, 10, 0.0), (1e-2, 5, 0.1)),
        "b": layer((1e-3, 10, 0.0), (1e-2, 5, 0.2)),
    }
    plan = optimize_for_loss(cands, 0.3, steps=3)
    assert plan.total_size == 10 and plan.expected_loss == 0.3


@pytest.mark.parametrize("order", [("fc6", "fc7"), ("fc7", "fc6")])
def test_negative_drop_lets_another_layer_take_a_larger_bound(order):
    table = {
        "fc6": layer((1e-3, 100, 0.0), (1e-2, 40, 0.15)),
        "fc7": layer((1e-3, 50, 0.0), (1e-2, 55, -0.05)),  # bigger, but improves accuracy
    }
    cands = {name: table[name] for name in order}
    # Without fc7's negative drop fc6 could not afford 1e-2 (0.15 > 0.1): 150 bytes.
    assert optimize_for_loss({"fc6": table["fc6"]}, 0.1).total_size == 100
    plan = optimize_for_loss(cands, 0.1)
    check_plan(plan, cands)
    assert bounds(plan) == {"fc6": 1e-2, "fc7": 1e-2}
    assert plan.total_size == 95 and drop_sum(plan) == Fraction(1, 10)
    # A zero budget still works: fc6's 0.05 is cancelled by fc7's -0.05.
    table["fc6"].append(Candidate(5e-3, 70, 0.05))
    plan = optimize_for_loss(cands, 0)
    assert bounds(plan) == {"fc6": 5e-3, "fc7": 1e-2} and plan.expected_loss == 0


def test_loss_mode_infeasible():
    cands = {"fc6": layer((1e-3, 10, 0.3), (1e-2, 5, 0.5)), "fc7": layer((1e-3, 10, 0.1))}
    with pytest.raises(ConfigError, match=r"smallest achievable sum of drops is 0\.4"):
        optimize_for_loss(cands, 0.35)


def test_coarse_steps_stay_feasible():
    # eps* = 0.1/3: each 0.05 rounds up to 2 bins, so the DP cannot see that both fit; it must
    # still return a plan that meets the exact budget rather than fail or overshoot.
    cands = {name: layer((1e-3, 10, 0.0), (1e-2, 5, 0.05)) for name in ("a", "b")}
    coarse = optimize_for_loss(cands, 0.1, steps=3)
    assert coarse.total_size == 15 and drop_sum(coarse) <= Fraction(1, 10)
    assert optimize_for_loss(cands, 0.1, steps=20).total_size == 10


def test_loss_mode_ties_prefer_smaller_drop():
    cands = {"a": layer((1e-2, 5, 0.08), (2e-2, 5, 0.03), (3e-2, 5, 0.05))}
    assert bounds(optimize_for_loss(cands, 0.1)) == {"a": 2e-2}


def test_ratio_mode_known_answer():
    plan = optimize_for_ratio(VGG_LIKE, 700)
    check_plan(plan, VGG_LIKE)
    # Budget 700: fc6 has to go to 2e-2 or beyond; 400 + 200 + 50 = 650 with drop 0.12 beats
    # 300 + ... (0.40) and 600 + 90 + 25 = 715 does not fit.
    assert bounds(plan) == {"fc6": 2e-2, "fc7": 1e-3, "fc8": 1e-3}
    assert plan.total_size == 650 and plan.expected_loss == pytest.approx(0.12)


def test_ratio_mode_ties_prefer_smaller_size_and_negative_drops():
    cands = {
        "a": layer((1e-3, 100, 0.0), (1e-2, 60, 0.0), (2e-2, 40, 0.1)),
        "b": layer((1e-3, 30, 0.0), (1e-2, 35, -0.02)),
    }
    plan = optimize_for_ratio(cands, 200)
    assert bounds(plan) == {"a": 1e-2, "b": 1e-2} and plan.total_size == 95
    assert plan.expected_loss == -0.02


def test_ratio_mode_infeasible():
    with pytest.raises(ConfigError, match="smallest achievable total size is 415"):
        optimize_for_ratio(VGG_LIKE, 414)
    assert optimize_for_ratio(VGG_LIKE, 415).total_size == 415


def test_ratio_mode_scales_to_vgg_sizes():
    rng = np.random.default_rng(7)
    cands = {
        name: [Candidate(eb, int(full / (1 + 40 * eb)), float(rng.uniform(0, 2 * eb * 10)))
               for eb in np.geomspace(1e-3, 1e-1, 12)]
        for name, full in (("fc6", 10_000_000), ("fc7", 1_700_000), ("fc8", 400_000))
    }
    start = time.perf_counter()
    plan = optimize_for_ratio(cands, 3_000_000)
    assert time.perf_counter() - start < 1.0
    assert (drop_sum(plan), plan.total_size) == brute_ratio(cands, 3_000_000)


def test_backend_is_carried_through():
    cands = {"a": layer((1e-2, 5, 0.0), backend="sz3") + layer((1e-2, 9, 0.0))}
    assert optimize_for_loss(cands, 0.1).choice["a"].backend == "sz3"
    assert optimize_for_ratio(cands, 9).choice["a"].backend == "sz3"


# --- brute force on random instances --------------------------------------------------------


def random_instance(rng, on_grid):
    cands = {}
    for k in range(int(rng.integers(1, 5))):
        rows = []
        for j in range(int(rng.integers(1, 7))):
            drop = int(rng.integers(-10, 51)) / 100 if on_grid else float(rng.uniform(-0.1, 0.5))
            rows.append(Candidate(10.0 ** -(j + 1), int(rng.integers(0, 60)), drop))
        cands[f"fc{k}"] = rows
    return cands


def test_loss_mode_matches_brute_force_on_grid():
    rng = np.random.default_rng(2019)
    for _ in range(300):
        cands = random_instance(rng, on_grid=True)
        hundredths = int(rng.integers(1, 41))
        expected_loss = hundredths / 100
        steps = hundredths * int(rng.integers(1, 3))  # eps* = 0.01 or 0.005 divides the grid
        best, plan = solved_or_refused(cands, expected_loss, steps)
        if best is not None:
            assert (plan.total_size, drop_sum(plan)) == best


def test_loss_mode_off_grid_is_feasible_and_never_beats_brute_force():
    rng = np.random.default_rng(12)
    for _ in range(300):
        cands = random_instance(rng, on_grid=False)
        expected_loss = float(rng.uniform(0, 0.4)) if rng.random() > 0.1 else 0.0
        steps = int(rng.integers(1, 60))
        best, plan = solved_or_refused(cands, expected_loss, steps)
        if best is None:
            continue
        assert drop_sum(plan) <= exact(expected_loss)
        assert plan.expected_loss <= expected_loss
        assert plan.total_size >= best[0]


@pytest.mark.parametrize("on_grid", [True, False])
def test_ratio_mode_matches_brute_force(on_grid):
    rng = np.random.default_rng(5 + on_grid)
    for _ in range(300):
        cands = random_instance(rng, on_grid)
        max_total_size = int(rng.integers(1, 200))
        best = brute_ratio(cands, max_total_size)
        if best is None:
            with pytest.raises(ConfigError):
                optimize_for_ratio(cands, max_total_size)
            continue
        plan = optimize_for_ratio(cands, max_total_size)
        check_plan(plan, cands)
        assert (drop_sum(plan), plan.total_size) == best


# --- validation -----------------------------------------------------------------------------

GOOD = {"fc6": layer((1e-2, 10, 0.1))}


@pytest.mark.parametrize(
    "candidates, match",
    [
        ({}, "non-empty dict"),
        ([("fc6", GOOD["fc6"])], "non-empty dict"),
        ({"fc6": []}, "layer 'fc6' has no candidates"),
        ({"fc6": [(1e-2, 10, 0.1)]}, "not a Candidate"),
        ({"fc6": [Candidate(1e-2, -1, 0.1)]}, "size must be an int >= 0"),
        ({"fc6": [Candidate(1e-2, 10.5, 0.1)]}, "size must be an int >= 0"),
        ({"fc6": [Candidate(1e-2, True, 0.1)]}, "size must be an int >= 0"),
        ({"fc6": [Candidate(1e-2, 10, math.nan)]}, "drop must be a finite number"),
        ({"fc6": [Candidate(1e-2, 10, math.inf)]}, "drop must be a finite number"),
        ({"fc6": [Candidate(1e-2, 10, "0.1")]}, "drop must be a finite number"),
    ],
)
def test_bad_candidates_rejected_by_both_modes(candidates, match):
    with pytest.raises(ConfigError, match=match):
        optimize_for_loss(candidates, 0.5)
    with pytest.raises(ConfigError, match=match):
        optimize_for_ratio(candidates, 100)


@pytest.mark.parametrize("expected_loss", [-0.01, math.nan, math.inf, None, "0.2", True])
def test_bad_expected_loss(expected_loss):
    with pytest.raises(ConfigError, match="expected_loss must be a finite number >= 0"):
        optimize_for_loss(GOOD, expected_loss)


@pytest.mark.parametrize("steps", [0, -3, 2.5, None, True])
def test_bad_steps(steps):
    with pytest.raises(ConfigError, match="steps must be an int >= 1"):
        optimize_for_loss(GOOD, 0.2, steps)


@pytest.mark.parametrize("max_total_size", [0, -5, 10.0, None, True])
def test_bad_max_total_size(max_total_size):
    with pytest.raises(ConfigError, match="max_total_size must be an int > 0"):
        optimize_for_ratio(GOOD, max_total_size)


def test_numpy_scalars_accepted():
    cands = {"fc6": [Candidate(1e-2, np.int64(10), np.float64(0.1))]}
    assert optimize_for_loss(cands, np.float64(0.1), np.int64(10)).total_size == 10
    assert optimize_for_ratio(cands, np.int64(10)).expected_loss == 0.1


NO_FIT = {"a": [Candidate(1e-3, 100, 0.2), Candidate(1e-2, 40, 0.5)],
          "b": [Candidate(1e-3, 90, 0.15, "sz3"), Candidate(1e-2, 30, 0.4)]}


def test_planner_is_the_optimizers_where_a_plan_fits():
    assert plan(VGG_LIKE, 1000, expected_loss=0.2) == optimize_for_loss(VGG_LIKE, 0.2)
    assert plan(VGG_LIKE, 7000, expected_ratio=10) == optimize_for_ratio(VGG_LIKE, 700)


@pytest.mark.parametrize("budget", [0.3, 0.0, -0.05])
def test_planner_falls_back_to_the_smallest_drops_when_no_plan_fits(budget):
    """The one rule of compress and optimize: over budget is a plan that says so, not an error."""
    got = plan(NO_FIT, 1000, expected_loss=budget)
    assert got == min_drop_plan(NO_FIT)
    assert {k: c.error_bound for k, c in got.choice.items()} == {"a": 1e-3, "b": 1e-3}
    assert got.choice["b"].backend == "sz3" and got.total_size == 190
    assert got.expected_loss == pytest.approx(0.35) and got.expected_loss > budget


def test_planner_refuses_a_ratio_nothing_reaches():
    with pytest.raises(ConfigError, match="fits in"):
        plan(NO_FIT, 1000, expected_ratio=20)  # 50 bytes < the smallest sizes' 70


def test_cli_optimize_reports_an_unfit_plan(tmp_path, capsys):
    import json

    from deepsz_caffe.cli import main

    points = {layer: [{"eb": c.error_bound, "size": c.size, "drop": c.drop, "backend": c.backend}
                      for c in cs] for layer, cs in NO_FIT.items()}
    path = tmp_path / "assessment.json"
    path.write_text(json.dumps({"points": points, "fc_bytes": {"a": 400, "b": 400}}))
    for budget, fits in (("0.3", False), ("0.7", True)):
        assert main(["optimize", str(path), "--expected-loss", budget, "--plan", "literal"]) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["fits"] is fits
        assert out["predicted_loss"] == pytest.approx(0.35 if not fits else 0.6)
