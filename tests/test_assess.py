"""Algorithm 1's search order, and magnitude masks: pure logic, known answers."""
import numpy as np
import pytest

from deepsz_caffe.assess import bound, bound_walk
from deepsz_caffe.errors import ConfigError
from deepsz_caffe.cli import parse_kept
from deepsz_caffe.prune import magnitude_masks


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


def test_magnitude_masks_keep_exact_count_of_largest():
    w = np.random.default_rng(0).standard_normal((300, 784)).astype(np.float32)
    masks = magnitude_masks({"ip1": w}, {"ip1": 0.08})
    m = masks["ip1"]
    assert m.shape == w.shape and int(m.sum()) == round(0.08 * w.size)
    assert np.abs(w[m == 1]).min() >= np.abs(w[m == 0]).max()


def test_mask_errors():
    with pytest.raises(ConfigError, match="not a layer"):
        magnitude_masks({"ip1": np.ones(3)}, {"fc6": 0.1})
    with pytest.raises(ConfigError, match=r"\(0, 1\]"):
        magnitude_masks({"ip1": np.ones(3)}, {"ip1": 0})
    assert parse_kept("ip1=0.08, ip2=0.09") == {"ip1": 0.08, "ip2": 0.09}
    with pytest.raises(ConfigError, match="LAYER=FRACTION"):
        parse_kept("ip1:0.08")
    with pytest.raises(ConfigError, match="LAYER=FRACTION"):
        parse_kept("ip1=eight")
