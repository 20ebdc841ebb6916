"""GPU TEST phases give the CPU's answers (run where a GPU and the GPU build of Caffe are present;
elsewhere every test here skips, saying which of the two is missing).

Tolerance: GPU and CPU sum in different orders (cuBLAS vs OpenBLAS), so a logit within float
rounding of another can flip an argmax; on the H100 the counts were equal (9904 = 9904), and a
handful of the 1,000 test images is allowed."""
import pytest
from helpers import gpu_available

from deepsz_caffe.caffe.phase import TestPhase, accuracy
from deepsz_caffe.deepsz.pipeline import assess
from deepsz_caffe.deepsz.probe import LayerProbe
from deepsz_caffe.deepsz.settings import Settings

WHY = gpu_available()
pytestmark = pytest.mark.skipif(WHY is not None, reason=WHY or "")
HANDFUL = 3  # images


def _correct(top1: float, records: int) -> int:
    return round(top1 * records / 100)


def test_lenet_test_phase_on_gpu_counts_what_the_cpu_counts(lenet300):
    records = TestPhase(str(lenet300["model"]), str(lenet300["pruned"])).records
    cpu = accuracy(lenet300["model"], lenet300["pruned"])["top1"]
    gpu = accuracy(lenet300["model"], lenet300["pruned"], gpu=0)["top1"]
    assert abs(_correct(cpu, records) - _correct(gpu, records)) <= HANDFUL


def test_suffix_phase_on_gpu_equals_a_full_gpu_pass(lenet300, tmp_path):
    probe = LayerProbe(lenet300["model"], lenet300["pruned"], tmp_path, gpu=0)
    full = TestPhase(str(lenet300["model"]), str(lenet300["pruned"]), gpu=0).run()["top1"]
    for layer in probe.layers:
        assert probe.runner(layer) is not probe.phase, f"{layer}: no suffix phase on the GPU"
        assert probe.top1_with({layer: probe.weights[layer]}) == full


@pytest.mark.parametrize("devices", [{"gpu": 0}, {"gpus": (0,)}], ids=["gpu", "gpus"])
def test_assessment_on_gpu_finds_the_cpus_points(lenet300, tmp_path, devices):
    def points(work, **kw):
        r = assess(lenet300["model"], lenet300["pruned"], work, expected_loss=0.2, settings=Settings(**kw))
        return r["records"], {layer: {p["eb"]: p["top1"] for p in pts} for layer, pts in r["points"].items()}

    records, cpu = points(tmp_path / "cpu")
    _, gpu = points(tmp_path / "gpu", **devices)
    for layer in cpu:
        common = set(cpu[layer]) & set(gpu[layer])
        assert len(common) >= min(len(cpu[layer]), len(gpu[layer])) - 1, layer  # the same walk
        for eb in common:
            assert abs(_correct(cpu[layer][eb], records) - _correct(gpu[layer][eb], records)) <= HANDFUL
