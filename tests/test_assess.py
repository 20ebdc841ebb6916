"""deepsz_caffe.deepsz.assess through pipeline.assess: agreement labels, one full pass for every
layer, and what a rerun reuses and says."""
import logging

import numpy as np
import pytest
from helpers import full_forwards

from deepsz_caffe.caffe.phase import TestPhase
from deepsz_caffe.caffe.suffix import PrefixStore, SuffixPhase
from deepsz_caffe.deepsz.pipeline import assess
from deepsz_caffe.errors import ConfigError

LAYERS = ["ip1", "ip2", "ip3"]


def test_agreement_of_the_original_is_total_and_a_perturbed_net_disagrees(lenet300, tmp_path):
    model, weights = str(lenet300["model"]), str(lenet300["pruned"])
    store = PrefixStore.record(TestPhase(model, weights), ["ip2"], tmp_path)
    reference = store.reference
    assert reference.shape == store.labels.shape and not np.array_equal(reference, store.labels)
    full = TestPhase(model, weights, probed=True, labels=reference)
    suffix = SuffixPhase(store, "ip2", reference)
    assert full.run()["top1"] == suffix.run()["top1"] == 100.0
    # The reference is the net's own top-1, not the LMDB's labels: accuracy differs from 100%.
    assert store.accuracy["top1"] < 100.0
    noise = np.random.default_rng(0).normal(0, 0.05, full.net.params["ip2"][0].data.shape)
    for phase in (full, suffix):
        phase.net.params["ip2"][0].data[...] += noise.astype(np.float32)
    perturbed = full.run()["top1"]
    assert 50.0 < perturbed < 100.0 and suffix.run()["top1"] == perturbed


def test_reference_labels_must_align_with_every_pass(lenet300, tmp_path):
    model, weights = str(lenet300["model"]), str(lenet300["pruned"])
    store = PrefixStore.record(TestPhase(model, weights), [], tmp_path)
    with pytest.raises(ConfigError, match="start at the first record"):  # 3 x 100 of 1000 images
        TestPhase(model, weights, iterations=3, probed=True, labels=store.reference[:3])
    with pytest.raises(ConfigError, match="do not fit"):
        TestPhase(model, weights, probed=True, labels=store.reference[:3])


def test_assessment_makes_one_full_pass_and_reruns_none(lenet300, tmp_path, monkeypatch, capsys, caplog):
    caplog.set_level(logging.INFO, logger="deepsz_caffe")  # what the CLI shows; bars drawn too
    model, weights = lenet300["model"], lenet300["pruned"]
    passes = full_forwards(monkeypatch)
    first = assess(model, weights, tmp_path / "w", expected_loss=0.3, agreement=True)
    iterations = first["prefix_pass"]["iterations"]
    assert len(passes) == iterations                 # three layers, one full pass
    assert first["labels"] == "agreement" and first["base_top1"] == 100.0
    assert all(p["top1"] <= 100.0 for pts in first["points"].values() for p in pts)
    assert not list((tmp_path / "w").glob("assess-*/prefix/features-*"))  # disk given back
    err = caplog.text
    assert err.count("prefix pass: 1000 images") == 1
    assert all(f"{layer} (sz2): " in err and " tests in " in err for layer in LAYERS)
    assert "assess ip" in capsys.readouterr().err  # the walk's bars
    caplog.clear()

    again = assess(model, weights, tmp_path / "w", expected_loss=0.3, agreement=True)
    assert len(passes) == iterations and again["points"] == first["points"]
    err = caplog.text
    for layer in LAYERS:
        assert f"{layer} (sz2): reused {len(first['points'][layer])} cached points" in err
    assert "prefix pass" not in err and "assess ip" not in capsys.readouterr().err  # no pass, no empty bars


def test_one_pass_measures_what_full_passes_measure(lenet300, tmp_path):
    """Suffix phases fed from the kept pass against a full TEST pass for every point."""
    kw = {"expected_loss": 0.3, "layers": ["ip2", "ip3"]}
    fed = assess(lenet300["model"], lenet300["pruned"], tmp_path / "a", **kw)
    full = assess(lenet300["model"], lenet300["pruned"], tmp_path / "b", suffix=False, **kw)

    def strip(r):
        return {k: [{f: v for f, v in p.items() if f != "seconds"} for p in pts]
                for k, pts in r["points"].items()}
    assert strip(fed) == strip(full) and fed["base_top1"] == full["base_top1"]
    assert full["prefix_pass"]["entries"] == {} and set(fed["prefix_pass"]["entries"]) == {"ip2", "ip3"}
