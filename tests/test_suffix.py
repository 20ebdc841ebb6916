"""Suffix-only TEST phases count exactly the same correct predictions as full TEST phases."""
import numpy as np
import pytest

from google.protobuf import text_format

from deepsz_caffe.caffe.prototxt import read_prototxt
from deepsz_caffe.caffe.phase import TestPhase
from deepsz_caffe.caffe.prototxt import suffix_plan
from deepsz_caffe.caffe.suffix import SuffixPhase


def correct(phase, records):
    return round(phase.run()["top1"] * records / 100)


@pytest.mark.parametrize("net, layers", [("lenet300", ["ip1", "ip2", "ip3"]), ("lenet5", ["ip1", "ip2"])])
def test_suffix_equals_full_for_every_fc_layer(request, tmp_path, net, layers):
    fixture = request.getfixturevalue(net)
    full = TestPhase(str(fixture["model"]), str(fixture["pruned"]))
    rng = np.random.default_rng(0)
    for layer in layers:
        suffix = SuffixPhase(full, layer, tmp_path)
        assert correct(suffix, full.records) == correct(full, full.records)
        # Perturb the layer the same way in both nets: still the same count.
        noise = rng.uniform(-0.05, 0.05, full.net.params[layer][0].data.shape).astype(np.float32)
        original = full.net.params[layer][0].data.copy()
        full.net.params[layer][0].data[...] = original + noise
        suffix.net.params[layer][0].data[...] = original + noise
        assert correct(suffix, full.records) == correct(full, full.records)
        full.net.params[layer][0].data[...] = original


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
