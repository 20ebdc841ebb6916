"""deepsz_caffe.deepsz.walk: Algorithm 1's search order and feasible ranges (pure logic, known answers)."""
import pytest

from deepsz_caffe.deepsz.walk import bound, bound_walk, feasible_range
from deepsz_caffe.paper.values import paper_values


def drops_from(table):
    """A measure() whose drop is the value of the first threshold the bound reaches."""
    def measure(eb):
        for limit, drop in table:
            if eb <= limit * (1 + 1e-12):
                return drop
        return 50.0
    return measure


def test_paper_example_range():
    # 1e-3 fine, 1e-2 distorts (> 0.1): walk from 1e-3 up by 1e-3, then by 1e-2, until > 0.2.
    measure = drops_from([(9e-3, 0.0), (1e-2, 0.12), (3e-2, 0.18), (4e-2, 0.5)])
    tested = bound_walk(measure, expected_loss=0.2)
    assert tested == [1e-3, 1e-2] + [bound(m, -3) for m in range(2, 10)] + [2e-2, 3e-2, 4e-2]


def test_distortion_at_first_bound_starts_a_decade_lower():
    tested = bound_walk(drops_from([(2e-4, 0.0), (3e-4, 0.3)]), expected_loss=0.2)
    assert tested == [1e-3, 1e-4, 2e-4, 3e-4]


def test_no_distortion_walks_on_from_the_last_decade():
    measure = drops_from([(9e-2, 0.05), (2e-1, 0.15), (3e-1, 0.4)])
    tested = bound_walk(measure, expected_loss=0.2)
    assert tested == [1e-3, 1e-2, 1e-1] + [bound(m, -2) for m in range(2, 10)] + [2e-1, 3e-1]


def test_walk_stops_at_max_bound_when_nothing_hurts():
    tested = bound_walk(lambda eb: 0.0, expected_loss=0.2)
    assert max(tested) == 1.0 and tested[-1] == 1.0


def test_each_bound_measured_once_and_walk_terminates():
    calls = []
    tested = bound_walk(lambda eb: calls.append(eb) or (0.15 if eb >= 1e-3 else 0.0), expected_loss=5)
    assert len(calls) == len(set(calls)) == len(tested)
    assert max(tested) <= 1.0


def test_bounds_are_exact_decimals():
    assert bound(3, -2) == 0.03 and repr(bound(7, -3)) == "0.007"


def _points(drops: dict) -> list[dict]:
    return [{"eb": eb, "drop": d, "top1": 98.0 - d, "size": 1000} for eb, d in drops.items()]


# LeNet-300-100 as the paper describes it (section 5.2.2): ip1's 1e-1 distorts, so its range
# starts at 1e-2; ip3's never does, so it starts at 1e-2 as well and ends at 2e-1.
IP1 = _points({1e-3: 0.0, 1e-2: 0.05, 0.1: 12.0, 0.02: 0.1, 0.03: 0.3})
IP3 = _points({1e-3: 0.0, 1e-2: 0.0, 0.1: 0.05, **{m / 100: 0.02 for m in range(2, 10)}, 0.2: 0.4})


def test_feasible_range_gives_the_papers_lenet300_ranges():
    assert feasible_range(IP1, 0.2) == (0.01, 0.03)
    assert feasible_range(IP3, 0.2) == (0.01, 0.2)
    paper = paper_values()["figure5"]["feasible_ranges"]["lenet300"]
    assert paper["ip1"] == [0.01, 0.03] and paper["ip3"] == [0.01, 0.2]
    assert feasible_range(IP3, 1.0) == (0.01, None)  # never exceeds: open
    assert feasible_range(_points({1e-3: 0.5}), 0.2) == (1e-4, 1e-3)
    with pytest.raises(ValueError, match="not Algorithm 1"):
        feasible_range(_points({0.02: 0.1}), 0.2)
