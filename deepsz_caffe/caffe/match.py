"""Whether a prototxt describes the net whose weights a caffemodel holds.

Caffe's own loading does not tell: it copies weights by layer name, silently skipping caffemodel
layers the prototxt lacks and leaving prototxt layers the caffemodel lacks at their random
fillers. Compared here: the learnable blobs Caffe builds from the prototxt (in a child process,
as phase.probe loads nets: a bad prototxt can abort Caffe) with the caffemodel's, by layer name
and blob shape. phase.probe then runs the pair, as the Caffe-level check.
"""
import json

from ..errors import CaffeIOError
from . import prototxt, wire
from .phase import caffe_child

_PARAMS = ("import json, sys, caffe; caffe.set_mode_cpu(); net = caffe.Net(sys.argv[1], caffe.TEST); "
           "print(json.dumps([[n, [list(b.data.shape) for b in bs]] for n, bs in net.params.items()]))")
_SHOWN = 8  # layers listed per side in a refusal


def model_params(model) -> dict[str, list[tuple[int, ...]]]:
    """{layer: [blob shapes]} of the learnable blobs Caffe builds from `model` (TEST phase)."""
    prototxt.read_prototxt(model)  # UTF-8 and syntax, with a clear message, before Caffe sees it
    out = caffe_child(_PARAMS, [model], f"Caffe cannot build {model}")
    return {name: [tuple(s) for s in shapes] for name, shapes in json.loads(out.splitlines()[-1])}


def check_model_matches(model, weights) -> None:
    """CaffeIOError listing both sides unless `model` declares exactly the caffemodel's layers
    with weights, with the same blob shapes (legacy 4-d shapes as Caffe compares them)."""
    declared = model_params(model)
    held = {name: [a.shape for a in arrays] for name, arrays in wire.read_caffemodel(weights)[0].items()}
    differ = [name for name in {**declared, **held}
              if name not in declared or name not in held or not _same(declared[name], held[name])]
    if differ:
        raise CaffeIOError(f"{model} does not describe the net in {weights} (layers that differ: "
                           f"{', '.join(differ[:_SHOWN])}{'...' if len(differ) > _SHOWN else ''}); "
                           f"prototxt: {_listing(declared, differ)}; caffemodel: {_listing(held, differ)}")


def _same(a: list, b: list) -> bool:
    return len(a) == len(b) and all(x == y or (len(x) <= 4 and len(y) <= 4 and _pad4(x) == _pad4(y))
                                    for x, y in zip(a, b))


def _pad4(shape) -> tuple:
    return (1,) * (4 - len(shape)) + tuple(shape)


def _listing(params: dict, first: list) -> str:
    """The layers with weights and their shapes, those that differ first."""
    names = [n for n in first if n in params] + [n for n in params if n not in first]
    items = [f"{n} {' '.join('x'.join(map(str, s)) for s in params[n])}" for n in names[:_SHOWN]]
    return ", ".join(items) + (f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else "") \
        if items else "(none)"
