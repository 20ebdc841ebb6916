"""deepsz train | prune | test | synth-lmdb: Caffe's own solver and TEST phase on a user's net
(runtime copies of the prototxts go to a work dir, never beside the user's files), and
ImageNet-shaped LMDBs for users without ImageNet."""
from ..errors import ConfigError
from . import _flag, parse_bytes, parse_kept


def _sources(a) -> dict:
    return {phase: path for phase, path in (("TRAIN", a.train_lmdb), ("TEST", a.test_lmdb)) if path}


def cmd_train(a):
    from ..atomic import check_output
    from ..caffe.train import train, workspace

    check_output(a.output, [a.solver, a.weights], ConfigError)
    with workspace(a.work_dir) as work:
        s = train(a.solver, a.output, work_dir=work, iterations=a.iterations, seed=a.seed,
                  sources=_sources(a), init_weights=a.weights)
    print(f"wrote {a.output}: {s['iterations']} iterations in {s['seconds']:.1f} s, final loss "
          f"{s['final_loss']:.4f}; test top-1 {s['top1']:.2f}%")


def cmd_prune(a):
    from ..atomic import check_output
    from ..caffe.train import test_top1, workspace
    from ..deepsz.prune import prune

    check_output(a.output, [a.solver, a.weights], ConfigError)
    kept = parse_kept(a.kept)
    with workspace(a.work_dir) as work:
        _, s = prune(a.solver, a.weights, kept, a.output, iterations=a.iterations,
                     lr_scale=a.lr_scale, seed=a.seed, work_dir=work, sources=_sources(a))
        top1 = test_top1(s["net"], a.output)
    kept_text = ", ".join(f"{k}={v:.2%}" for k, v in s["kept"].items())
    print(f"wrote {a.output}: kept {kept_text} after {s['iterations']} masked iterations "
          f"in {s['seconds']:.1f} s; test top-1 {top1:.2f}%")


def cmd_test(a):
    from ..caffe.phase import TestPhase, check_model
    from ..caffe.prototxt import with_test_source
    from ..caffe.train import workspace
    from ..deepsz.pipeline import within_memory
    from ..deepsz.settings import Settings

    with workspace() as work:
        model = with_test_source(a.model, a.test_lmdb, work / "test.prototxt") if a.test_lmdb else a.model
        model, iterations = within_memory(model, a.weights, work / "batch.prototxt",
                                          Settings(iterations=a.iterations, max_memory=a.max_memory))
        info = check_model(model)
        phase = TestPhase(str(model), str(a.weights), iterations, a.gpu, probed=True)
        result = phase.run()
    images = phase.iterations * info["batch"]
    print(f"{a.weights}: " + ", ".join(f"{k.replace('top', 'top-')} {v:.2f}%" for k, v in result.items())
          + f" ({phase.iterations} iterations of {info['batch']} = {images} images of {info['lmdb']})")


def cmd_synth_lmdb(a):
    from ..caffe.synth_lmdb import write_synthetic_imagenet
    from ..timing import best

    path, seconds = best(1, write_synthetic_imagenet, a.output, a.images, size=a.size,
                         classes=a.classes, seed=a.seed, overwrite=a.force)
    size = sum(f.stat().st_size for f in path.iterdir())
    print(f"wrote {path}: {a.images} images of 3x{a.size}x{a.size} (BGR uint8), {a.classes} classes, "
          f"seed {a.seed}, {size} bytes in {seconds:.1f} s")


def _solver_flags(p) -> None:
    _flag(p, "solver", required=True, help="solver prototxt; its `net:` is read relative to the "
                                           "solver file (then the current directory)")
    _flag(p, "iterations", type=int, help="iterations (default: the solver's max_iter)")
    p.add_argument("--train-lmdb", help="LMDB for the TRAIN Data layer (default: its `source:`)")
    p.add_argument("--test-lmdb", help="LMDB for the TEST Data layer (default: its `source:`)")
    p.add_argument("--seed", type=int, help="Caffe's random seed (default: the solver's)")
    p.add_argument("--work-dir", help="where the runtime copies of the prototxts go (default: a "
                                      "temporary directory, removed afterwards)")


def register(sub) -> None:
    t = sub.add_parser("train", help="train a net with Caffe's solver, then test its top-1")
    _solver_flags(t)
    _flag(t, "weights", help="start from these weights (fine-tuning) instead of the fillers")
    t.add_argument("-o", "--output", required=True, help="trained .caffemodel to write")
    t.set_defaults(func=cmd_train)

    pr = sub.add_parser("prune", help="magnitude pruning + masked retraining with Caffe's solver, "
                                      "then test its top-1")
    _solver_flags(pr)
    _flag(pr, "weights", required=True, help="trained .caffemodel")
    pr.add_argument("--kept", required=True, help="kept fraction per layer: ip1=0.08,ip2=0.09")
    pr.add_argument("--lr-scale", type=float, default=1.0, help="scale of the solver's base_lr")
    pr.add_argument("-o", "--output", required=True, help="pruned .caffemodel to write")
    pr.set_defaults(func=cmd_prune)

    te = sub.add_parser("test", help="one TEST phase of a net (as `caffe test`): top-1/top-5")
    _flag(te, "model", required=True, help="train_test prototxt with a TEST Data layer and Accuracy")
    _flag(te, "weights", required=True, help=".caffemodel (e.g. from deepsz decode)")
    _flag(te, "iterations", type=int, help="TEST iterations (default: one pass over the LMDB)")
    _flag(te, "gpu", type=int, help="GPU id (CPU when omitted)")
    te.add_argument("--test-lmdb", help="LMDB for the TEST Data layer (default: its `source:`)")
    te.add_argument("--max-memory", type=parse_bytes, default="4G",
                    help="memory the TEST net may take (default 4G): a smaller divisor of the "
                         "prototxt's batch where needed, over the same images")
    te.set_defaults(func=cmd_test)

    sl = sub.add_parser("synth-lmdb", help="ImageNet-shaped LMDB of synthetic natural-looking images "
                                           "(for users without ImageNet)")
    sl.add_argument("--images", type=int, required=True, help="number of images")
    sl.add_argument("--size", type=int, default=256, help="height = width (default: 256, as ImageNet LMDBs)")
    sl.add_argument("--classes", type=int, default=1000, help="labels are uniform over 0..CLASSES-1")
    sl.add_argument("--seed", type=int, default=0)
    sl.add_argument("-o", "--output", required=True, help="LMDB directory to create")
    sl.add_argument("--force", action="store_true", help="replace an existing LMDB at OUTPUT")
    sl.set_defaults(func=cmd_synth_lmdb)
