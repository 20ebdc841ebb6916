"""The one timer (timing.py): a with-block's wall time, a running watch, best-of-N of a call."""
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


def test_a_started_watch_runs_until_read():
    watch = timing.Stopwatch.started()
    time.sleep(0.01)
    assert watch.seconds is None and watch.elapsed() >= 0.01


def test_the_package_and_benchmarks_time_with_this_module_only():
    """One timer: no other module reads the clock itself, but nncodec_child.py, which runs in
    NNCodec's interpreter and must not import this package."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    readers = {str(p.relative_to(root)) for folder in ("deepsz_caffe", "benchmarks", "experiments")
               for p in (root / folder).rglob("*.py") if "perf_counter" in p.read_text()}
    assert readers == {"deepsz_caffe/timing.py", "deepsz_caffe/baselines/nncodec_child.py"}
