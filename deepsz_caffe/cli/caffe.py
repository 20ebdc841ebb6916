"""deepsz prune: magnitude pruning + masked retraining with Caffe's own solver."""
from . import _flag, parse_kept


def cmd_prune(a):
    from ..caffe import io as caffe_io
    from ..deepsz.prune import magnitude_masks, retrain

    kept = parse_kept(a.kept)
    weights = {k: v[0] for k, v in caffe_io.blobs(caffe_io.read_net(a.weights)).items()}
    stats = retrain(a.solver, a.weights, magnitude_masks(weights, kept), a.output,
                    iterations=a.iterations, lr_scale=a.lr_scale, seed=a.seed)
    print(f"wrote {a.output}: kept {stats['kept']} after {stats['iterations']} masked iterations")


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
