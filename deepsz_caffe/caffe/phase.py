"""Caffe TEST phases: top-1 (and top-5) accuracy of a net over its whole test LMDB, against the
LMDB's labels or, label-free, against fed reference labels (the original net's own top-1:
"agreement").

Caffe abort()s the process on many bad inputs (a CHECK failure). So before a user's net is
handed to Caffe in this process, `probe` loads it once in a child process and turns a crash
into a CaffeIOError carrying Caffe's own message; cheap checks (prototxt parses, an Accuracy
layer exists in TEST, every LMDB exists) run even before that.
"""
import math
import os
import re
import subprocess
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..log import progress
from ..errors import CaffeIOError, ConfigError
from . import lmdb
from .io import caffe_pb2
from .prototxt import read_prototxt, test_layers, with_fed_labels, with_test_source

PROGRESS_DELAY = 3.0   # seconds before a pass shows a progress bar: short passes stay silent


def check_model(model) -> dict:
    """Validate a train_test prototxt for TEST use; return {"lmdb", "batch", "records",
    "accuracy": {top: k}, "score": the blob the Accuracy layers rank, "label": the labels' blob}."""
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
            "accuracy": {layer.top[0]: int(layer.accuracy_param.top_k) for layer in accuracy},
            "score": accuracy[0].bottom[0], "label": data[0].top[1] if len(data[0].top) > 1 else None}


def use_device(gpu: int | None) -> None:
    """Caffe's process-wide mode: CPU, or GPU `gpu`."""
    import caffe

    if gpu is None:
        caffe.set_mode_cpu()
    else:
        caffe.set_device(gpu)
        caffe.set_mode_gpu()


def check_gpus(ids) -> None:
    """Every id in `ids` is a GPU this Caffe can use. Caffe abort()s the process on an unknown
    device (and a CPU-only build on any), so the devices are tried in a child process."""
    ids = [int(g) for g in ids]
    for g in ids:
        if g < 0:
            raise ConfigError(f"GPU id {g}: must be >= 0 (omit --gpu to run on the CPU)")
    code = "import sys, caffe\nfor g in sys.argv[1:]:\n    caffe.set_device(int(g)); caffe.set_mode_gpu()"
    caffe_child(code, ids, f"GPU id(s) {','.join(map(str, ids))} not usable here")


def probe(model, weights, gpu: int | None = None) -> None:
    """Load (model, weights) in a child process and run one TEST forward (on GPU `gpu`, if
    given); a Caffe abort there becomes a CaffeIOError here, with Caffe's own last words."""
    for p in (model, weights):
        if not Path(p).is_file():
            raise CaffeIOError(f"file not found: {p}")
    device = "caffe.set_mode_cpu()" if gpu is None else f"caffe.set_device({int(gpu)}); caffe.set_mode_gpu()"
    code = (f"import sys, caffe; {device}; "
            "net = caffe.Net(sys.argv[1], sys.argv[2], caffe.TEST); net.forward()")
    caffe_child(code, [model, weights], f"Caffe cannot run {model} with {weights}"
                + (f" on GPU {gpu}" if gpu is not None else ""))


MEMORY_PROBE = """
import sys, caffe
caffe.set_mode_cpu()
def rss(key):
    return next(int(ln.split()[1]) for ln in open("/proc/self/status") if ln.startswith(key)) << 10
net = caffe.Net(sys.argv[1], sys.argv[3], caffe.TEST); net.forward()
peak, one = rss("VmHWM"), rss("RssAnon")
blobs = 4 * sum(b.count for b in net.blobs.values())
del net
net = caffe.Net(sys.argv[2], sys.argv[3], caffe.TEST); net.forward()
print(peak, one, rss("RssAnon"), blobs)
"""


def memory_probe(model, weights, batch: int = 4) -> dict:
    """`probe` at TEST batch 1, then again at `batch`: {"peak_bytes": the peak RSS of the
    process at batch 1 (loading included), "image_bytes": the resident memory each more image
    of a batch adds}. Measured, not modelled: Caffe layers keep buffers of their own (max
    pooling's argmax mask, LRN's scale) beside the blobs."""
    for p in (model, weights):
        if not Path(p).is_file():
            raise CaffeIOError(f"file not found: {p}")
    info = check_model(model)
    batch = max(2, min(batch, info["batch"]))
    with tempfile.TemporaryDirectory(prefix="deepsz-memory-") as tmp:
        one = with_test_source(model, info["lmdb"], Path(tmp) / "one.prototxt", batch=1)
        more = with_test_source(model, info["lmdb"], Path(tmp) / "more.prototxt", batch=batch)
        out = caffe_child(MEMORY_PROBE, [one, more, weights], f"Caffe cannot run {model} with {weights}")
    peak, rss_one, rss_more, blobs = map(int, out.split()[-4:])
    return {"peak_bytes": peak, "image_bytes": max(blobs, -(-(rss_more - rss_one) // (batch - 1)))}


def fitting_batch(batch: int, memory: dict, max_memory: int | None) -> int:
    """The largest divisor of the prototxt's TEST `batch` whose estimated peak (`memory_probe`'s
    batch-1 peak + each further image's bytes: the measured growth, at least its blobs) fits
    `max_memory` bytes (1 if none does). A divisor, with the iterations scaled by batch /
    divisor, keeps every pass over exactly the same images, so the correct count (and top-1)
    does not change."""
    if not max_memory:
        return batch
    fits = [b for b in range(1, batch + 1) if batch % b == 0
            and memory["peak_bytes"] + (b - 1) * memory["image_bytes"] <= max_memory]
    return max(fits, default=1)


_GLOG_PREFIX = re.compile(r"^([IWEF]\d{8} [\d:.]+ +\d+ [\w.]+:\d+\] |Error: )")


def caffe_child(code: str, args, failure: str) -> str:
    """Run `code` (pycaffe) in a child process; its stdout, or if it dies, CaffeIOError(`failure`:
    Caffe's last fatal line)."""
    env = {**os.environ, "GLOG_minloglevel": "0", "GLOG_logtostderr": "1"}
    proc = subprocess.run([sys.executable, "-c", code, *map(str, args)], env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        fatal = [ln for ln in lines if ln.startswith(("F", "E")) or "Check failed" in ln
                 or "Error" in ln]
        why = (fatal or lines or ["(no output)"])[-1]
        raise CaffeIOError(f"{failure}: {_GLOG_PREFIX.sub('', why.strip())}")
    return proc.stdout


@dataclass
class TestPhase:
    """A loaded TEST net over its whole LMDB: `run()` -> {"top1": %, "top5": %}.

    Weights are edited in place through `net.params` between runs (the assessment perturbs one layer
    at a time); each run is exactly one epoch of the test set when the batch divides it. With
    `labels` ([iterations, batch] class ids, e.g. `agreement_labels` of the original net) the
    Accuracy layers compare against those instead of the LMDB's labels.
    """
    __test__ = False  # not a pytest test class, despite the name
    model: str
    weights: str
    iterations: int | None = None
    gpu: int | None = None
    probed: bool = False  # True when the caller already ran `probe` on (model, weights)
    labels: np.ndarray | None = None

    def __post_init__(self):
        info = check_model(self.model)
        if not self.probed:
            probe(self.model, self.weights, self.gpu)
        import caffe

        use_device(self.gpu)
        if self.iterations is None:
            self.iterations = math.ceil(info["records"] / info["batch"])
            if info["records"] % info["batch"]:
                warnings.warn(f"test batch {info['batch']} does not divide the {info['records']} "
                              "test records: some images are counted twice per pass", stacklevel=2)
        self.records, self.batch = info["records"], info["batch"]
        self.tops, self.score = info["accuracy"], info["score"]
        if self.labels is None:
            self.net = caffe.Net(str(self.model), str(self.weights), caffe.TEST)
            return
        self._check_labels()
        with tempfile.TemporaryDirectory(prefix="deepsz-fed-") as tmp:
            fed = with_fed_labels(self.model, Path(tmp) / "fed.prototxt")
            self.net = caffe.Net(str(fed), str(self.weights), caffe.TEST)
        self.label_blob = info["label"]

    def _check_labels(self) -> None:
        if self.labels.shape != (self.iterations, self.batch):
            raise ConfigError(f"{self.model}: reference labels of shape {self.labels.shape} do not "
                              f"fit {self.iterations} TEST iterations of batch {self.batch}")
        if (self.iterations * self.batch) % self.records:
            raise ConfigError(
                f"{self.model}: reference labels need every TEST pass to start at the first "
                f"record, but {self.iterations} iterations x batch {self.batch} is not a multiple "
                f"of the {self.records} records: choose a batch size or --iterations that makes it one")

    def run(self, desc: str = "TEST pass") -> dict[str, float]:
        feed = None
        if self.labels is not None:
            def feed(i):
                self.net.blobs[self.label_blob].data[...] = self.labels[i]
        return accuracy_pass(self.net, self.tops, self.iterations, feed, desc=desc)


def accuracy_pass(net, tops: dict[str, int], iterations: int, feed=None, after=None,
                  desc: str = "TEST pass") -> dict[str, float]:
    """Mean of the Accuracy tops over `iterations` forward passes, in percent (as `caffe test`).
    `feed(i)`, if given, fills the input blobs before pass i; `after(i)` reads blobs after it. A
    progress bar (with ETA) appears once a pass has run for PROGRESS_DELAY seconds.

    Each batch's accuracy (a float32 count / batch) is summed as its count of correct images,
    so the result is correct / images whatever the batch size: the same number, bit for bit,
    at any divisor of a batch (the mean of per-batch floats would differ in the last digit).
    An Accuracy with ignore_label, whose fractions are not counts, is averaged as Caffe does."""
    sums, counts = dict.fromkeys(tops, 0.0), dict.fromkeys(tops, 0)
    batch, exact = net.blobs[next(iter(net.blobs))].shape[0], True
    with progress(total=iterations, desc=desc, unit="batch", leave=False, dynamic_ncols=True,
                  delay=PROGRESS_DELAY) as bar:
        for i in range(iterations):
            if feed is not None:
                feed(i)
            out = net.forward()
            for top in sums:
                value = float(out[top])
                sums[top] += value
                count = round(value * batch)
                exact = exact and abs(value * batch - count) < 1e-3
                counts[top] += count
            if after is not None:
                after(i)
            bar.update()
    if exact:
        return {f"top{k}": 100.0 * counts[top] / (iterations * batch) for top, k in tops.items()}
    return {f"top{k}": 100.0 * sums[top] / iterations for top, k in tops.items()}


def agreement_labels(scores: np.ndarray) -> np.ndarray:
    """The top-1 class of each row of a [batch, classes] score blob, as Caffe label floats."""
    if scores.ndim != 2:
        raise ConfigError(f"agreement labels need a [batch, classes] score blob, got shape "
                          f"{scores.shape}")
    return scores.argmax(axis=1).astype(np.float32)


def accuracy(model, weights, *, iterations=None, gpu=None) -> dict[str, float]:
    """One full TEST phase of (model, weights): {"top1": %, ...}."""
    return TestPhase(str(model), str(weights), iterations, gpu).run()
