"""How `compress` measures a candidate .dsz: by the suffix net from the earliest selected layer
over the features the assessment's kept pass recorded (the same numbers as a full pass, for a
fraction of its cost), or by the paper's full TEST pass."""
from ..caffe import wire
from ..caffe.phase import TestPhase, use_device
from ..caffe.prototxt import read_prototxt
from ..caffe.suffix import PrefixStore, SuffixPhase
from .assess import log
from .probe import layer_runner, reference_labels, run_with
from .settings import Settings


def drop_features(assessed: dict) -> None:
    """Delete the kept pass's features once every round is measured."""
    store = PrefixStore.open(assessed["prefix_dir"])
    if store is not None:
        store.drop_features()


def verifier(model, assessed: dict, s: Settings, labels):
    """measure(decoded caffemodel) -> top-1 of the decoded net on the test set, with `.how`.

    "suffix from L" (the default, s.verify == "suffix"): decoding changes only the selected
    layers, so the suffix net from the earliest of them, fed the features the prefix pass kept
    and given every selected layer's decoded blobs, sees what a full pass would (the runner
    checks that it reproduces the kept pass before it is used). A full TEST pass, as the paper
    verifies, with s.verify == "full", when the test set is not the assessed one (--assess-lmdb),
    or when no kept features cover the earliest layer (a resumed run whose features were dropped)."""
    layers = list(assessed["fc_bytes"])
    store = None
    if s.verify == "suffix" and not s.assess_lmdb:
        order = [layer.name for layer in read_prototxt(model).layer]
        first = min(layers, key=lambda n: order.index(n) if n in order else len(order))
        store = PrefixStore.open(assessed["prefix_dir"], [first])
        if store is not None and (first not in store.entries
                                  or store.iterations != assessed.get("iterations")):
            store = None
    if store is None:
        def measure(decoded):
            # No child-process probe: `decoded` is our own rebuild of the weights' skeleton,
            # and (model, weights) were probed already by `assess`.
            phase = TestPhase(str(model), str(decoded), s.iterations, s.gpu, probed=True,
                              labels=labels)
            return phase.run()["top1"]
        measure.how = "full"
        return measure
    use_device(s.gpu if s.gpu is not None or not s.gpus else s.gpus[0])
    if assessed.get("suffix_checked", {}).get(first):  # reproduced the kept pass in the walk
        runner = SuffixPhase(store, first, reference_labels(store) if s.agreement else None)
    else:
        runner, _ = layer_runner(store, first, agreement=s.agreement, gpu=s.gpu, log=log)

    def measure(decoded):
        blobs, _skeleton = wire.read_caffemodel(decoded)
        return run_with(runner, {layer: blobs[layer] for layer in layers})["top1"]
    measure.how = f"suffix from {first}" if isinstance(runner, SuffixPhase) else "full"
    return measure
