"""Caffe TEST phases: top-1 (and top-5) accuracy of a net over its whole test LMDB.

Caffe abort()s the process on many bad inputs (a CHECK failure). So before a user's net is
handed to Caffe in this process, `probe` loads it once in a child process and turns a crash
into a CaffeIOError carrying Caffe's own message; cheap checks (prototxt parses, an Accuracy
layer exists in TEST, every LMDB exists) run even before that.
"""
import math
import os
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

from ..errors import CaffeIOError
from . import lmdb
from .io import caffe_pb2
from .prototxt import read_prototxt, test_layers


def check_model(model) -> dict:
    """Validate a train_test prototxt for TEST use; return {"lmdb", "batch", "records", "accuracy"}."""
    net = read_prototxt(model)
    accuracy = test_layers(net, "Accuracy")
    if not accuracy:
        raise CaffeIOError(f"{model}: no Accuracy layer in the TEST phase; add one "
                           "(type: \"Accuracy\", include { phase: TEST }) to measure top-1")
    data = test_layers(net, "Data")
    if len(data) != 1:
        raise CaffeIOError(f"{model}: expected one Data layer in TEST (LMDB), found {len(data)}")
    param = data[0].data_param
    if param.backend != caffe_pb2().DataParameter.LMDB:
        raise CaffeIOError(f"{model}: the TEST Data layer must use backend: LMDB")
    source = Path(param.source)
    records = lmdb.count(source)
    return {"lmdb": str(source), "batch": int(param.batch_size), "records": records,
            "accuracy": {layer.top[0]: int(layer.accuracy_param.top_k) for layer in accuracy}}


def probe(model, weights) -> None:
    """Load (model, weights) in a child process and run one TEST forward; a Caffe abort there
    becomes a CaffeIOError here, with Caffe's own last words."""
    for p in (model, weights):
        if not Path(p).is_file():
            raise CaffeIOError(f"file not found: {p}")
    code = ("import sys, caffe; caffe.set_mode_cpu(); "
            "net = caffe.Net(sys.argv[1], sys.argv[2], caffe.TEST); net.forward()")
    env = {**os.environ, "GLOG_minloglevel": "0", "GLOG_logtostderr": "1"}
    proc = subprocess.run([sys.executable, "-c", code, str(model), str(weights)], env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        fatal = [ln for ln in lines if ln.startswith(("F", "E")) or "Check failed" in ln
                 or "Error" in ln]
        why = (fatal or lines or ["(no output)"])[-1]
        raise CaffeIOError(f"Caffe cannot run {model} with {weights}: {why.strip()}")


@dataclass
class TestPhase:
    """A loaded TEST net over its whole LMDB: `run()` -> {"top1": %, "top5": %}.

    Weights are edited in place through `net.params` between runs (the assessment perturbs one layer
    at a time); each run is exactly one epoch of the test set when the batch divides it.
    """
    __test__ = False  # not a pytest test class, despite the name
    model: str
    weights: str
    iterations: int | None = None
    gpu: int | None = None
    probed: bool = False  # True when the caller already ran `probe` on (model, weights)

    def __post_init__(self):
        info = check_model(self.model)
        if not self.probed:
            probe(self.model, self.weights)
        import caffe

        if self.gpu is None:
            caffe.set_mode_cpu()
        else:
            caffe.set_device(self.gpu)
            caffe.set_mode_gpu()
        if self.iterations is None:
            self.iterations = math.ceil(info["records"] / info["batch"])
            if info["records"] % info["batch"]:
                warnings.warn(f"test batch {info['batch']} does not divide the {info['records']} "
                              "test records: some images are counted twice per pass", stacklevel=2)
        self.records = info["records"]
        self.tops = info["accuracy"]
        self.net = caffe.Net(str(self.model), str(self.weights), caffe.TEST)

    def run(self) -> dict[str, float]:
        return accuracy_pass(self.net, self.tops, self.iterations)


def accuracy_pass(net, tops: dict[str, int], iterations: int, feed=None) -> dict[str, float]:
    """Mean of the Accuracy tops over `iterations` forward passes, in percent (as `caffe test`).
    `feed(i)`, if given, fills the input blobs before pass i."""
    sums = dict.fromkeys(tops, 0.0)
    for i in range(iterations):
        if feed is not None:
            feed(i)
        out = net.forward()
        for top in sums:
            sums[top] += float(out[top])
    return {f"top{k}": 100.0 * sums[top] / iterations for top, k in tops.items()}


def accuracy(model, weights, *, iterations=None, gpu=None) -> dict[str, float]:
    """One full TEST phase of (model, weights): {"top1": %, ...}."""
    return TestPhase(str(model), str(weights), iterations, gpu).run()
