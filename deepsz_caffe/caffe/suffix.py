"""Suffix-only TEST phases: when only layer L changes, every layer before L computes the same
blobs for every candidate bound. Run the full net once, keep the blob entering L (and the
labels), and evaluate candidates with a truncated Caffe net: an Input layer of that blob's shape
followed by the original layers from L on (Accuracy included). The numbers are those of a full
TEST phase: the same Caffe layers see the same inputs.

Only chains qualify: every layer from L on must read L's input, the labels, or blobs made from L
on, and none may overwrite L's input in place. Otherwise `prototxt.suffix_plan` says why and the
caller falls back to full passes.
"""
from pathlib import Path

import numpy as np

from .phase import accuracy_pass
from .prototxt import suffix_net, suffix_plan

IN_MEMORY_LIMIT = 512 << 20   # bytes of stored features; larger ones go to a memory-mapped file


class SuffixPhase:
    """A TEST phase that re-runs only the layers from `layer` on; same `net`/`run()` surface as
    `phase.TestPhase`, whose loaded net provides the stored inputs."""

    def __init__(self, full, layer: str, work_dir):
        import caffe

        plan = suffix_plan(full.model, layer)
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

        proto = suffix_net(name, layer, layers, self.entry, self.label, shape,
                           work / f"suffix-{layer}.prototxt")
        self.net = caffe.Net(str(proto), str(full.weights), caffe.TEST)

    def run(self) -> dict[str, float]:
        blobs = self.net.blobs

        def feed(i):
            # `.data` is read afresh for every write: reading it is what marks pycaffe's CPU copy
            # as the newest, so a held array's writes would never reach a GPU after one forward.
            blobs[self.entry].data[...] = self.features[i]
            blobs[self.label].data[...] = self.labels[i]

        return accuracy_pass(self.net, self.tops, self.iterations, feed)
