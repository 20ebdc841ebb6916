"""Suffix-only TEST phases: when only layer L changes, every layer before L computes the same
blobs for every candidate bound. Run the full net once, keep the blob entering L (and the
labels), and evaluate candidates with a truncated Caffe net: an Input layer of that blob's shape
followed by the original layers from L on (Accuracy included). The numbers are those of a full
TEST phase: the same Caffe layers see the same inputs.

Only chains qualify: every layer from L on must read L's input, the labels, or blobs made from L
on, and none may overwrite L's input in place. Otherwise `SuffixPhase.split` says why and the
caller falls back to full passes.
"""
from pathlib import Path

import numpy as np
from google.protobuf import text_format

from . import atomic
from .caffe_io import caffe_pb2
from .caffe_io import read_prototxt
from .evaluate import _in_phase, accuracy_pass

IN_MEMORY_LIMIT = 512 << 20   # bytes of stored features; larger ones go to a memory-mapped file


def split(model, layer: str):
    """(net name, suffix layers, input blob, label blob), or the reason it is not a chain."""
    net = read_prototxt(model)
    test = [lay for lay in net.layer if _in_phase(lay, caffe_pb2().TEST)]
    names = [lay.name for lay in test]
    if layer not in names:
        return f"layer '{layer}' is not in the TEST net"
    data = [lay for lay in test if lay.type == "Data"]
    if len(data) != 1 or len(data[0].top) != 2:
        return "the TEST net does not have exactly one Data layer with (data, label) tops"
    label = data[0].top[1]
    start = names.index(layer)
    suffix = test[start:]
    if len(suffix[0].bottom) != 1:
        return f"layer '{layer}' has {len(suffix[0].bottom)} inputs"
    entry = suffix[0].bottom[0]
    available = {entry, label}
    for lay in suffix:
        outside = [b for b in lay.bottom if b not in available]
        if outside:
            return f"layer '{lay.name}' reads blob(s) {outside} computed before '{layer}' (not a chain)"
        if lay is not suffix[0] and entry in lay.top:
            return f"layer '{lay.name}' overwrites '{entry}' in place"
        available.update(lay.top)
    return net.name, suffix, entry, label


class SuffixPhase:
    """A TEST phase that re-runs only the layers from `layer` on; same `net`/`run()` surface as
    `evaluate.TestPhase`, whose loaded net provides the stored inputs."""

    def __init__(self, full, layer: str, work_dir):
        import caffe

        plan = split(full.model, layer)
        if isinstance(plan, str):
            raise ValueError(plan)
        name, layers, self.entry, self.label = plan
        self.tops, self.iterations = full.tops, full.iterations
        work = Path(work_dir)
        work.mkdir(parents=True, exist_ok=True)
        shape = full.net.blobs[self.entry].data.shape
        batch = shape[0]
        nbytes = 4 * int(np.prod(shape)) * self.iterations
        if nbytes > IN_MEMORY_LIMIT:
            self.features = np.lib.format.open_memmap(work / f"features-{layer}.npy", mode="w+",
                                                      dtype=np.float32, shape=(self.iterations, *shape))
        else:
            self.features = np.empty((self.iterations, *shape), dtype=np.float32)
        self.labels = np.empty((self.iterations, batch), dtype=np.float32)
        for i in range(self.iterations):
            full.net.forward()
            self.features[i] = full.net.blobs[self.entry].data
            self.labels[i] = full.net.blobs[self.label].data.reshape(batch)

        suffix = caffe_pb2().NetParameter(name=f"{name}-from-{layer}")
        inputs = suffix.layer.add(name="suffix_input", type="Input")
        inputs.top.extend([self.entry, self.label])
        inputs.input_param.shape.add().dim.extend(shape)
        inputs.input_param.shape.add().dim.extend([batch])
        suffix.layer.extend(layers)
        proto = atomic.write_text(work / f"suffix-{layer}.prototxt", text_format.MessageToString(suffix))
        self.net = caffe.Net(str(proto), str(full.weights), caffe.TEST)

    def run(self) -> dict[str, float]:
        data, label = self.net.blobs[self.entry].data, self.net.blobs[self.label].data

        def feed(i):
            data[...] = self.features[i]
            label[...] = self.labels[i]

        return accuracy_pass(self.net, self.tops, self.iterations, feed)
