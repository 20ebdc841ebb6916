"""Every edit of a Caffe NetParameter or SolverParameter, in one place: which layers a phase
holds, where Data layers read, the runtime copies of a solver and its net, and the truncated
(suffix) net that re-runs only the layers from one layer on."""
from pathlib import Path

from google.protobuf import text_format

from .. import atomic
from ..errors import CaffeIOError
from ..atomic import read_bytes
from .io import caffe_pb2
from .upgrade import upgrade_v1
from ..log import get as get_logger

PHASES = {"TRAIN": 0, "TEST": 1}
log = get_logger("prototxt")
_UPGRADED: set[str] = set()  # said once per file, however often a run reads it


def read_prototxt(path):
    """Parse a text prototxt into a NetParameter (CaffeIOError if missing or malformed); a legacy
    V1 net comes back upgraded to `layer` entries, as Caffe upgrades it on load."""
    net = _parse(path, caffe_pb2().NetParameter(), "prototxt")
    if upgrade_v1(net, path) and str(path) not in _UPGRADED:
        _UPGRADED.add(str(path))
        log.info("%s: legacy V1 layers upgraded to the current format", path)
    return net


def read_solver(path):
    """Parse a solver prototxt into a SolverParameter (CaffeIOError if missing or malformed)."""
    return _parse(path, caffe_pb2().SolverParameter(), "solver")


def _parse(path, message, what: str):
    raw = read_bytes(path, what, CaffeIOError)
    try:
        text_format.Merge(raw.decode("utf-8"), message)
    except UnicodeDecodeError as e:
        raise CaffeIOError(f"{path}: not a text {what} (not UTF-8 at byte {e.start})") from None
    except text_format.ParseError as e:
        raise CaffeIOError(f"{path}: not a valid Caffe {what} ({e})") from None
    return message


def write_prototxt(message, path) -> Path:
    return atomic.write_text(path, text_format.MessageToString(message))


def in_phase(layer, phase: int) -> bool:
    """Whether `layer` is part of the net in `phase` (only include/exclude by phase are used)."""
    if layer.include:
        return any(r.HasField("phase") and r.phase == phase for r in layer.include)
    return not any(r.HasField("phase") and r.phase == phase for r in layer.exclude)


def test_layers(net, type_name: str | None = None) -> list:
    """The layers of the TEST net, optionally only those of one type."""
    test = caffe_pb2().TEST
    return [layer for layer in net.layer
            if in_phase(layer, test) and (type_name is None or layer.type == type_name)]


def set_data_sources(net, sources: dict) -> None:
    """Point each phase's Data layers at an LMDB: {"TRAIN": path, "TEST": path} (paths as given
    on the command line: relative to the current directory, stored absolute)."""
    for phase, source in sources.items():
        layers = [layer for layer in net.layer
                  if layer.type == "Data" and in_phase(layer, PHASES[phase])]
        if not layers:
            raise CaffeIOError(f"net '{net.name}' has no {phase} Data layer to read {source}")
        for layer in layers:
            layer.data_param.source = str(Path(source).resolve())


def with_test_source(model, lmdb_path, out, batch: int | None = None) -> Path:
    """A copy of `model` whose TEST Data layer reads `lmdb_path` (for --assess-lmdb), optionally
    in batches of `batch` images."""
    net = read_prototxt(model)
    data = test_layers(net, "Data")
    if len(data) != 1:
        raise CaffeIOError(f"{model}: expected one Data layer in TEST, found {len(data)}")
    set_data_sources(net, {"TEST": lmdb_path})
    if batch is not None:
        data[0].data_param.batch_size = batch
    return write_prototxt(net, out)


def solver_net_path(solver: Path, param) -> Path:
    """The solver's `net:`: an absolute path as is; a relative one against the solver file's own
    directory first, so a copied solver works where it lands, then against the current directory
    (Caffe's own rule, so solvers written for `caffe train` run from their directory still work)."""
    if not param.net:
        raise CaffeIOError(f"{solver}: no `net:` line; deepsz needs `net: \"train_test.prototxt\"` "
                           "(one net for TRAIN and TEST; train_net/test_net/net_param are not read)")
    net = Path(param.net)
    candidates = [net] if net.is_absolute() else [solver.parent / net, net]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    where = (f"neither beside the solver ({solver.parent / net}) nor in the current directory"
             if len(candidates) == 2 else "(no such file)")
    raise CaffeIOError(f"{solver}: net {param.net!r} found {where}")


def _no_snapshots(param, out_dir: Path) -> None:
    """Caffe writes nothing of its own: no periodic or final snapshots, and a prefix inside our
    work dir should anything still ask for one (a user's `snapshot_prefix` may point anywhere)."""
    param.snapshot = 0
    param.snapshot_after_train = False
    param.snapshot_prefix = str((out_dir / "snapshot").resolve())


def runtime_files(solver, out_dir, sources: dict, net=None) -> tuple[Path, Path]:
    """Copies of `solver` and its net in `out_dir` with Data sources set per phase, snapshots off
    and the net path absolute. Returns (solver path, net path)."""
    solver = Path(solver)
    param = read_solver(solver)
    net_param = read_prototxt(Path(net) if net else solver_net_path(solver, param))
    set_data_sources(net_param, sources)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = write_prototxt(net_param, out_dir / "train_test.prototxt")
    param.net = str(model.resolve())
    param.snapshot = 0  # as tuned_solver; these bytes key deepsz reproduce's cached stages
    param.snapshot_prefix = str((out_dir / "snapshot").resolve())
    param.test_initialization = False
    return write_prototxt(param, out_dir / "solver.prototxt"), model


def tuned_solver(solver_path, out, *, seed=None, lr_scale: float = 1.0, iterations=None,
                 sources: dict | None = None) -> Path:
    """A copy of a solver with a seed, a scaled base_lr and max_iter set, its net path absolute
    and snapshots off (nothing is written beside the user's files), written to `out`. With
    `sources` ({"TRAIN": lmdb, "TEST": lmdb}, either optional) the net is copied beside `out`
    (train_test.run.prototxt) with its Data layers reading those LMDBs."""
    solver_path, out = Path(solver_path), Path(out)
    param = read_solver(solver_path)
    net = solver_net_path(solver_path, param)
    if sources:
        net_param = read_prototxt(net)
        set_data_sources(net_param, sources)
        net = write_prototxt(net_param, out.with_name("train_test.run.prototxt"))
    param.net = str(net.resolve())
    _no_snapshots(param, out.parent)
    # No test nets inside the solver: their periodic output is Caffe's log, which deepsz
    # silences; callers measure one full TEST phase at the end instead.
    del param.test_iter[:]
    del param.test_state[:]
    if seed is not None:
        param.random_seed = seed
    param.base_lr *= lr_scale
    if iterations is not None:
        param.max_iter = iterations
    return write_prototxt(param, out)


def suffix_plan(model, layer: str):
    """(net name, suffix layers, input blob, label blob), or the reason the TEST net is not a
    chain from `layer` on: every layer from `layer` must read its input, the labels, or blobs
    made from `layer` on, and none may overwrite that input in place."""
    net = read_prototxt(model)
    test = test_layers(net)
    names = [lay.name for lay in test]
    if layer not in names:
        return f"layer '{layer}' is not in the TEST net"
    data = [lay for lay in test if lay.type == "Data"]
    if len(data) != 1 or len(data[0].top) != 2:
        return "the TEST net does not have exactly one Data layer with (data, label) tops"
    label = data[0].top[1]
    suffix = test[names.index(layer):]
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


def suffix_net(name: str, layer: str, layers, entry: str, label: str, shape, out) -> Path:
    """Write the suffix net: an Input layer of `entry`'s shape (and the labels) followed by
    `layers`, the original layers from `layer` on (Accuracy included)."""
    suffix = caffe_pb2().NetParameter(name=f"{name}-from-{layer}")
    inputs = suffix.layer.add(name="suffix_input", type="Input")
    inputs.top.extend([entry, label])
    inputs.input_param.shape.add().dim.extend(shape)
    inputs.input_param.shape.add().dim.extend([shape[0]])
    suffix.layer.extend(layers)
    return write_prototxt(suffix, out)


def with_fed_labels(model, out) -> Path:
    """A copy of `model` whose TEST labels come from an Input layer the caller fills before each
    forward (agreement labels: the original net's own top-1), not from the Data layer, which
    keeps only its data top. Every layer that read the labels (Accuracy, loss) reads the fed ones."""
    net = read_prototxt(model)
    data = test_layers(net, "Data")
    if len(data) != 1 or len(data[0].top) != 2:
        raise CaffeIOError(f"{model}: agreement labels need one TEST Data layer with (data, label) "
                           "tops")
    label = data[0].top[1]
    del data[0].top[1]
    fed = caffe_pb2().LayerParameter(name="fed_labels", type="Input", top=[label])
    fed.include.add(phase=PHASES["TEST"])
    fed.input_param.shape.add().dim.append(data[0].data_param.batch_size)
    layers = list(net.layer)
    layers.insert(layers.index(data[0]) + 1, fed)
    del net.layer[:]
    net.layer.extend(layers)
    return write_prototxt(net, out)
