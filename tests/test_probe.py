"""deepsz_caffe.deepsz.probe: an in-place weight edit is what the net then evaluates, on every
device. On a GPU, an array held across a forward stops reaching the device (pycaffe marks the CPU
copy newest only when `.data` is read): these tests fail on that bug there."""
import pytest
from helpers import devices

from deepsz_caffe.caffe import wire
from deepsz_caffe.caffe.phase import TestPhase
from deepsz_caffe.deepsz.probe import LayerProbe


@pytest.mark.parametrize("gpu", devices())
def test_in_place_edit_equals_a_net_loaded_from_the_edited_weights(lenet300, tmp_path, gpu):
    gpu = None if gpu == "cpu" else gpu
    probe = LayerProbe(lenet300["model"], lenet300["pruned"], tmp_path / "work", gpu=gpu)
    edited = probe.reconstruct("ip2", 0.2)  # far from the pruned weights
    top1_in_place = probe.top1_with({"ip2": edited})
    values, skeleton = wire.read_caffemodel(lenet300["pruned"])
    values["ip2"][0] = edited
    path = wire.write_caffemodel(skeleton, values, tmp_path / "edited.caffemodel")
    assert top1_in_place == TestPhase(str(lenet300["model"]), str(path), gpu=gpu).run()["top1"]
    assert probe.phase.run()["top1"] == probe.base_top1  # the edit was undone


@pytest.mark.parametrize("gpu", devices())
def test_two_distant_bounds_measure_different_accuracies(lenet300, tmp_path, gpu):
    probe = LayerProbe(lenet300["model"], lenet300["pruned"], tmp_path / "work",
                       gpu=None if gpu == "cpu" else gpu)
    assert probe.top1({"ip1": 1e-4}) > probe.top1({"ip1": 0.5}) + 5  # every layer's suffix too
    assert probe.top1({"ip3": 1e-4}) > probe.top1({"ip3": 0.5}) + 5
