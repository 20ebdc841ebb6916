"""caffe.phase: the TEST batch chosen from a memory budget changes no result."""

from deepsz_caffe.caffe.phase import TestPhase, fitting_batch, memory_probe
from deepsz_caffe.deepsz.pipeline import within_memory
from deepsz_caffe.deepsz.settings import Settings


def test_fitting_batch_is_the_largest_divisor_that_fits():
    memory = {"peak_bytes": 1000, "image_bytes": 100.0}
    assert fitting_batch(50, memory, 3500) == 25      # 1000 + 24 * 100 fits, 26 does not divide
    assert fitting_batch(50, memory, 10_000) == 50
    assert fitting_batch(50, memory, 0) == 50          # 0: no limit
    assert fitting_batch(50, memory, 500) == 1         # nothing fits: the smallest batch
    assert fitting_batch(48, memory, 3500) == 24


def test_batch_does_not_change_the_correct_count(lenet300, tmp_path, monkeypatch):
    """One pass at the prototxt's batch 100 and at the divisors a budget picks: the same
    images, so the same number of correct predictions (top-1 equal up to float rounding)."""
    model, weights = lenet300["model"], lenet300["pruned"]
    memory = memory_probe(model, weights)
    assert memory["peak_bytes"] > 20 << 20 and memory["image_bytes"] >= 4 * (784 + 300 + 100 + 10)
    # One measurement for every budget (RSS growth varies a little from one probe to the next).
    monkeypatch.setitem(within_memory.__globals__, "memory_probe", lambda *_a: memory)
    counts, batches = set(), []
    for images in (None, 19, 4, 0):  # budgets of: no limit, ~20 images, ~5, under one image
        budget = 0 if images is None else int(memory["peak_bytes"] + images * memory["image_bytes"])
        run, iterations = within_memory(model, weights, tmp_path / f"b{images}.prototxt",
                                        Settings(max_memory=budget))
        phase = TestPhase(str(run), str(weights), iterations, probed=True)
        batches.append(phase.batch)
        assert phase.batch * iterations == 1000
        counts.add(round(phase.run()["top1"] * 10))
    assert batches == [100, 20, 5, 1] and len(counts) == 1
