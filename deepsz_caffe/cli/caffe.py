"""deepsz prune | synth-lmdb: magnitude pruning + masked retraining with Caffe's own solver, and
ImageNet-shaped LMDBs for users without ImageNet."""
from . import _flag, parse_kept


def cmd_prune(a):
    from ..caffe import io as caffe_io
    from ..deepsz.prune import magnitude_masks, retrain

    kept = parse_kept(a.kept)
    weights = {k: v[0] for k, v in caffe_io.blobs(caffe_io.read_net(a.weights)).items()}
    stats = retrain(a.solver, a.weights, magnitude_masks(weights, kept), a.output,
                    iterations=a.iterations, lr_scale=a.lr_scale, seed=a.seed)
    print(f"wrote {a.output}: kept {stats['kept']} after {stats['iterations']} masked iterations")


def cmd_synth_lmdb(a):
    import time

    from ..caffe.synth_lmdb import write_synthetic_imagenet

    t = time.perf_counter()
    path = write_synthetic_imagenet(a.output, a.images, size=a.size, classes=a.classes, seed=a.seed,
                                    overwrite=a.force)
    size = sum(f.stat().st_size for f in path.iterdir())
    print(f"wrote {path}: {a.images} images of 3x{a.size}x{a.size} (BGR uint8), {a.classes} classes, "
          f"seed {a.seed}, {size} bytes in {time.perf_counter() - t:.1f} s")


def register(sub) -> None:
    pr = sub.add_parser("prune", help="magnitude pruning + masked retraining with Caffe's solver")
    _flag(pr, "solver", required=True, help="solver prototxt (its net must have a TRAIN Data layer)")
    _flag(pr, "weights", required=True, help="trained .caffemodel")
    pr.add_argument("--kept", required=True, help="kept fraction per layer: ip1=0.08,ip2=0.09")
    _flag(pr, "iterations", type=int, default=10000, help="retraining iterations (default 10000)")
    pr.add_argument("--lr-scale", type=float, default=1.0, help="scale of the solver's base_lr")
    pr.add_argument("--seed", type=int)
    pr.add_argument("-o", "--output", required=True)
    pr.set_defaults(func=cmd_prune)

    sl = sub.add_parser("synth-lmdb", help="ImageNet-shaped LMDB of synthetic natural-looking images "
                                           "(for users without ImageNet)")
    sl.add_argument("--images", type=int, required=True, help="number of images")
    sl.add_argument("--size", type=int, default=256, help="height = width (default: 256, as ImageNet LMDBs)")
    sl.add_argument("--classes", type=int, default=1000, help="labels are uniform over 0..CLASSES-1")
    sl.add_argument("--seed", type=int, default=0)
    sl.add_argument("-o", "--output", required=True, help="LMDB directory to create")
    sl.add_argument("--force", action="store_true", help="replace an existing LMDB at OUTPUT")
    sl.set_defaults(func=cmd_synth_lmdb)
