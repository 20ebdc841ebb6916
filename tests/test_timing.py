"""The one timer: a with-block's wall time and best-of-N of a call."""
import time

import pytest

from deepsz_caffe import timing


def test_stopwatch_times_its_block_and_runs_while_open():
    with timing.Stopwatch() as watch:
        assert watch.seconds is None
        time.sleep(0.02)
        assert watch.elapsed() >= 0.02
    assert 0.02 <= watch.seconds < 1.0


def test_stopwatch_keeps_the_time_of_a_block_that_raised():
    with pytest.raises(ValueError):
        with timing.Stopwatch() as watch:
            time.sleep(0.01)
            raise ValueError
    assert watch.seconds >= 0.01


def test_timings_and_best_return_the_result_and_one_time_per_call():
    calls = []
    out, seconds = timing.timings(3, lambda x: calls.append(x) or x * 2, 5)
    assert out == 10 and calls == [5, 5, 5] and len(seconds) == 3 and min(seconds) >= 0
    out, fastest = timing.best(2, time.sleep, 0.01)
    assert out is None and fastest >= 0.01
