"""deepsz reproduce: the paper's MNIST experiments from scratch."""


def cmd_reproduce(a):
    from ..paper.reproduce import reproduce

    reproduce(a.net, results=a.results, data=a.data, expected_loss=a.expected_loss, seed=a.seed,
              assess_split=a.assess_split, preset=a.preset)


def register(sub) -> None:
    r = sub.add_parser("reproduce", help="the paper's MNIST experiment from scratch (make reproduce)")
    r.add_argument("--net", default="lenet300", help="lenet300 | lenet5")
    r.add_argument("--expected-loss", type=float, default=0.2)
    r.add_argument("--seed", type=int, default=1)
    r.add_argument("--assess-split", action="store_true",
                   help="train on 50000 images, assess on the held-out 10000, verify on the test set")
    r.add_argument("--preset", default="paper", help="paper (default) | best")
    r.add_argument("--results", default="results")
    r.add_argument("--data", default="data")
    r.set_defaults(func=cmd_reproduce)
