"""Suffix-only TEST phases, fed from one kept full pass, count exactly the same correct
predictions as full TEST phases."""
import numpy as np
import pytest
from google.protobuf import text_format
from helpers import full_forwards

from deepsz_caffe.caffe import suffix as suffix_mod
from deepsz_caffe.caffe.phase import TestPhase
from deepsz_caffe.caffe.prototxt import read_prototxt, suffix_plan
from deepsz_caffe.caffe.suffix import PrefixStore, SuffixPhase


def correct(phase, records):
    return round(phase.run()["top1"] * records / 100)


def check_equal_to_full(full, store, layers, seed=0):
    rng = np.random.default_rng(seed)
    for layer in layers:
        suffix = SuffixPhase(store, layer)
        assert correct(suffix, full.records) == correct(full, full.records)
        # Perturb the layer the same way in both nets: still the same count.
        noise = rng.uniform(-0.05, 0.05, full.net.params[layer][0].data.shape).astype(np.float32)
        original = full.net.params[layer][0].data.copy()
        full.net.params[layer][0].data[...] = original + noise
        suffix.net.params[layer][0].data[...] = original + noise
        assert correct(suffix, full.records) == correct(full, full.records)
        full.net.params[layer][0].data[...] = original


@pytest.mark.parametrize("net, layers", [("lenet300", ["ip1", "ip2", "ip3"]), ("lenet5", ["ip1", "ip2"])])
def test_one_pass_feeds_every_layer_exactly(request, tmp_path, monkeypatch, net, layers):
    fixture = request.getfixturevalue(net)
    full = TestPhase(str(fixture["model"]), str(fixture["pruned"]))
    passes = full_forwards(monkeypatch)
    store = PrefixStore.record(full, layers, tmp_path)
    assert len(passes) == full.iterations            # one pass for every layer
    assert set(store.entries) == set(layers) and not store.not_chains
    assert store.accuracy == full.run()
    check_equal_to_full(full, store, layers)


def test_large_features_are_read_batch_by_batch(lenet300, tmp_path, monkeypatch):
    """Above IN_MEMORY_LIMIT a feature file is read with pread into one buffer, not loaded."""
    full = TestPhase(str(lenet300["model"]), str(lenet300["pruned"]))
    store = PrefixStore.record(full, ["ip1", "ip2"], tmp_path)
    small = store.features("ip2")
    monkeypatch.setattr(suffix_mod, "IN_MEMORY_LIMIT", 0)
    large = store.features("ip2")
    assert large._all is None and small._all is not None
    for i in range(len(large)):
        assert np.array_equal(large[i], small[i])
    check_equal_to_full(full, store, ["ip1", "ip2"], seed=1)


def test_store_reopens_until_its_features_are_dropped(lenet300, tmp_path):
    full = TestPhase(str(lenet300["model"]), str(lenet300["pruned"]))
    PrefixStore.record(full, ["ip2", "ip3"], tmp_path)
    again = PrefixStore.open(tmp_path, ["ip3"])
    assert again is not None and np.array_equal(again.labels.shape, (full.iterations, full.batch))
    assert PrefixStore.open(tmp_path, ["ip1"]) is None     # not recorded: a new pass is needed
    again.drop_features()
    assert PrefixStore.open(tmp_path, ["ip3"]) is None
    assert PrefixStore.open(tmp_path, []) is not None      # labels and reference stay


def test_non_chain_is_refused(tmp_path, lenet300):
    net = read_prototxt(lenet300["model"])
    # A skip connection: ip3 reads concat(ip2, data), so data is needed after ip2.
    cat = net.layer.add(name="cat", type="Concat")
    cat.bottom.extend(["ip2", "data"])
    cat.top.append("cat")
    layers = list(net.layer)
    ip3 = next(i for i, lay in enumerate(layers) if lay.name == "ip3")
    layers.insert(ip3, layers.pop())
    layers[ip3 + 1].bottom[0] = "cat"
    del net.layer[:]
    net.layer.extend(layers)
    model = tmp_path / "skip.prototxt"
    model.write_text(text_format.MessageToString(net))
    assert isinstance(suffix_plan(model, "ip3"), tuple)        # from ip3 on it is still a chain
    why = suffix_plan(model, "ip2")
    assert isinstance(why, str) and "['data']" in why and "not a chain" in why


@pytest.mark.parametrize("agreement", [False, True])
def test_one_batch_checks_the_suffix_and_a_mismatch_falls_back(lenet300, tmp_path, agreement):
    """A suffix net is trusted when its first batch's scores equal the kept ones bit for bit;
    its base is then the kept pass's, the same number a whole suffix pass gives. Off by one
    ulp, the runner is a full TEST phase instead."""
    from deepsz_caffe.deepsz.probe import layer_runner

    full = TestPhase(str(lenet300["model"]), str(lenet300["pruned"]))
    store = PrefixStore.record(full, ["ip2"], tmp_path)
    del full
    suffix = SuffixPhase(store, "ip2", store.reference if agreement else None)
    assert suffix.exact() is True
    runner, base = layer_runner(store, "ip2", agreement=agreement, log=lambda _m: None)
    assert isinstance(runner, SuffixPhase) and base == suffix.run()["top1"]
    kept = np.load(tmp_path / suffix_mod.FIRST_SCORES)
    np.save(tmp_path / suffix_mod.FIRST_SCORES, np.nextafter(kept, np.inf))
    assert SuffixPhase(store, "ip2").exact() is False
    said = []
    runner, base = layer_runner(store, "ip2", agreement=agreement, log=said.append)
    assert isinstance(runner, TestPhase) and "disagrees" in said[0]
    assert base == suffix.run()["top1"]
