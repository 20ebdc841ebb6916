"""One full TEST pass, kept; then suffix-only TEST phases fed from it.

When only layer L changes, every layer before L computes the same blobs for every candidate
bound. `PrefixStore.record` runs the full net once and keeps, batch by batch, the blob entering
each selected layer (one pass serves every layer), the LMDB's labels, the net's own top-1
(agreement labels) and Caffe's accuracy of that pass. `SuffixPhase` then evaluates candidates
with a truncated Caffe net: an Input layer of the entry blob's shape (and the labels) followed
by the original layers from L on (Accuracy included). The numbers are those of a full TEST
phase: the same Caffe layers see the same inputs.

Only chains qualify: every layer from L on must read L's input, the labels, or blobs made from L
on, and none may overwrite L's input in place. Otherwise `prototxt.suffix_plan` says why and the
caller falls back to full passes.

Features are written to .npy files in the store's directory with plain writes and read back
batch by batch with pread (only small ones are loaded whole): a memory map would count every
touched page in the process's RSS, and VGG-16's fc6 input is 5 GB at 50,000 images.
"""
import json
import math
import os
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from .. import atomic
from ..timing import Stopwatch
from .phase import accuracy_pass, agreement_labels, check_model
from .prototxt import suffix_net, suffix_plan

IN_MEMORY_LIMIT = 512 << 20   # bytes of one feature file; larger ones are read batch by batch
MANIFEST = "prefix.json"
FIRST_SCORES = "first-scores.npy"  # the score blob of the kept pass's first batch


class Features:
    """The stored batches of one blob, [iterations, *batch shape] float32; `features[i]` is
    batch i (for a large file, a buffer overwritten by the next read)."""

    def __init__(self, path):
        self.path = Path(path)
        header = np.load(self.path, mmap_mode="r")  # parses the header; maps, touches no page
        self.shape, self.offset = header.shape, header.offset
        del header
        self._all = self._fd = None
        if 4 * math.prod(self.shape) <= IN_MEMORY_LIMIT:
            self._all = np.fromfile(self.path, np.float32, offset=self.offset).reshape(self.shape)
        else:
            self._fd = os.open(self.path, os.O_RDONLY)
            self._buf = np.empty(self.shape[1:], np.float32)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, i: int) -> np.ndarray:
        if self._all is not None:
            return self._all[i]
        view, pos = memoryview(self._buf).cast("B"), self.offset + i * self._buf.nbytes
        while view:
            n = os.preadv(self._fd, [view], pos)
            if n == 0:
                raise OSError(f"{self.path}: truncated at batch {i}")
            view, pos = view[n:], pos + n
        return self._buf

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __del__(self):
        self.close()


def _feature_writer(stack: ExitStack, path: Path, shape: tuple):
    """An open .npy file of `shape` (float32) taking batches in order; renamed into place when
    `stack` closes without error."""
    f = stack.enter_context(open(stack.enter_context(atomic.replacing(path)), "wb"))
    np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False,
                                             "shape": tuple(int(d) for d in shape)})
    return f


class PrefixStore:
    """The kept full pass of a dataset-label `phase.TestPhase` (see the module docstring)."""

    def __init__(self, directory, manifest: dict):
        self.directory, self.manifest = Path(directory), manifest
        for key in ("model", "weights", "iterations", "batch", "tops", "accuracy", "entries",
                    "not_chains"):
            setattr(self, key, manifest[key])
        self.labels = np.load(self.directory / "labels.npy")
        reference = self.directory / "reference.npy"
        self.reference = np.load(reference) if reference.is_file() else None

    @classmethod
    def record(cls, phase, layers, directory, suffix: bool = True) -> "PrefixStore":
        """One full pass of `phase` keeping the entry blob of every layer in `layers` that has a
        suffix plan (the others, or all with suffix=False, are in `not_chains` with the reason)."""
        if phase.labels is not None:
            raise ValueError("a prefix pass reads the LMDB's own labels, not fed ones")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / MANIFEST).unlink(missing_ok=True)
        plans = {layer: suffix_plan(phase.model, layer) if suffix else "suffix phases turned off"
                 for layer in layers}
        entries = {layer: p[2] for layer, p in plans.items() if not isinstance(p, str)}
        net, n, batch = phase.net, phase.iterations, phase.batch
        label, score = check_model(phase.model)["label"], phase.score
        labels = np.zeros((n, batch), np.float32)
        reference = np.zeros((n, batch), np.float32) if _ranked(net.blobs[score].data) else None
        files = {blob: f"features-{i}.npy" for i, blob in enumerate(sorted(set(entries.values())))}
        agree, clock, first = [0], Stopwatch.started(), {}
        with ExitStack() as stack:
            out = {blob: _feature_writer(stack, directory / name, (n, *net.blobs[blob].data.shape))
                   for blob, name in files.items()}

            def keep(i):
                if i == 0:  # the scores a suffix net must reproduce bit for bit (`SuffixPhase.exact`)
                    first["scores"] = np.array(net.blobs[score].data, np.float32)
                for blob, f in out.items():
                    f.write(np.ascontiguousarray(net.blobs[blob].data, np.float32).data)
                if label is not None:
                    labels[i] = net.blobs[label].data.reshape(batch)
                if reference is not None:
                    scores = net.blobs[score].data.reshape(batch, -1)
                    reference[i] = agreement_labels(scores)
                    agree[0] += unique_top1(scores)

            accuracy = accuracy_pass(net, phase.tops, n, after=keep, desc="prefix pass")
        np.save(directory / "labels.npy", labels)
        if "scores" in first:
            np.save(directory / FIRST_SCORES, first["scores"])
        if reference is not None:
            np.save(directory / "reference.npy", reference)
        manifest = {"model": str(phase.model), "weights": str(phase.weights), "iterations": n,
                    "batch": batch, "records": phase.records, "tops": phase.tops, "score": score,
                    "accuracy": accuracy, "agreement_count": agree[0] if reference is not None else None,
                    "entries": entries, "features": files,
                    "not_chains": {layer: p for layer, p in plans.items() if isinstance(p, str)},
                    "feature_bytes": sum((directory / f).stat().st_size for f in files.values()),
                    "seconds": clock.elapsed()}
        atomic.write_json(directory / MANIFEST, manifest)
        return cls(directory, manifest)

    @classmethod
    def open(cls, directory, layers=()) -> "PrefixStore | None":
        """The store recorded in `directory` if it is complete and covers `layers`, else None."""
        directory = Path(directory)
        try:
            manifest = json.loads((directory / MANIFEST).read_text())
        except (OSError, ValueError):
            return None
        entries, files = manifest.get("entries", {}), manifest.get("features", {})
        for layer in layers:
            if layer in entries:
                if not (directory / files.get(entries[layer], "-")).is_file():
                    return None
            elif layer not in manifest.get("not_chains", {}):
                return None
        if manifest.get("agreement_count") is not None and not (directory / "reference.npy").is_file():
            return None
        return cls(directory, manifest)

    def features(self, layer: str) -> Features:
        return Features(self.directory / self.manifest["features"][self.entries[layer]])

    def drop_features(self) -> None:
        """Delete the feature files (disk back once every layer is assessed); labels, reference
        and the manifest stay, so a later open() for a layer finds it needs a new pass."""
        for name in self.manifest["features"].values():
            (self.directory / name).unlink(missing_ok=True)


def unique_top1(scores: np.ndarray) -> int:
    """Rows whose top score no other class ties: those Caffe's Accuracy layer (a class counts as
    better when its score is >= the label's) scores correct against their own argmax."""
    top = scores.max(axis=1, keepdims=True)
    return int(np.count_nonzero((scores >= top).sum(axis=1) == 1))


def _ranked(scores: np.ndarray) -> bool:
    """Whether a score blob is [batch, classes] (trailing 1s aside): agreement labels apply."""
    return scores.ndim >= 2 and math.prod(scores.shape[2:]) == 1


class SuffixPhase:
    """A TEST phase that re-runs only the layers from `layer` on, fed the store's batches; same
    `net`/`run()` surface as `phase.TestPhase`. `labels` (default: the LMDB's) are what the
    Accuracy layers compare against; the caller sets Caffe's device (`phase.use_device`)."""

    def __init__(self, store: PrefixStore, layer: str, labels: np.ndarray | None = None):
        import caffe

        plan = suffix_plan(store.model, layer)
        if isinstance(plan, str):
            raise ValueError(plan)
        name, layers, self.entry, self.label = plan
        self.store, self.layer = store, layer
        self.tops, self.iterations = store.tops, store.iterations
        self.labels = store.labels if labels is None else labels
        self.features = store.features(layer)
        proto = suffix_net(name, layer, layers, self.entry, self.label, self.features.shape[1:],
                           store.directory / f"suffix-{layer}.prototxt")
        self.net = caffe.Net(str(proto), str(store.weights), caffe.TEST)

    def run(self, labels: np.ndarray | None = None, desc: str = "suffix pass") -> dict[str, float]:
        blobs, labels = self.net.blobs, self.labels if labels is None else labels

        def feed(i):
            # `.data` is read afresh for every write: reading it is what marks pycaffe's CPU copy
            # as the newest, so a held array's writes would never reach a GPU after one forward.
            blobs[self.entry].data[...] = self.features[i]
            blobs[self.label].data[...] = labels[i]

        return accuracy_pass(self.net, self.tops, self.iterations, feed, desc=f"{desc} {self.layer}")

    def exact(self) -> bool | None:
        """Whether this suffix net, on the first kept batch, computes the kept pass's scores bit
        for bit (None: the store kept no scores, as before this check existed). Every TEST layer
        is stateless between forwards, so the same layers on the same inputs with the same
        weights compute the same thing on every batch: one batch shows what a whole pass would."""
        path = self.store.directory / FIRST_SCORES
        score = self.store.manifest.get("score")
        if score is None or not path.is_file():
            return None
        self.net.blobs[self.entry].data[...] = self.features[0]
        self.net.blobs[self.label].data[...] = self.labels[0]
        self.net.forward()
        return bool(np.array_equal(self.net.blobs[score].data, np.load(path)))
