"""deepsz reproduce: the paper's MNIST experiments from scratch; deepsz compare: other methods
(built-in or yours, by import path) beside DeepSZ on the same pruned nets."""


def cmd_reproduce(a):
    from ..paper.reproduce import paper_table, reproduce

    summary = reproduce(a.net, results=a.results, data=a.data, expected_loss=a.expected_loss,
                        seed=a.seed, assess_split=a.assess_split, preset=a.preset, plan=a.plan)
    print(paper_table(summary))


def cmd_compare(a):
    from pathlib import Path

    from ..baselines import compare, report
    from ..errors import ConfigError
    from . import parse_layers

    names = parse_layers(a.methods) or []
    names += [m for m in a.method if m not in names]
    if not names:
        raise ConfigError("no methods: give --methods and/or --method module:Class")
    if (a.model is None) != (a.weights is None):
        raise ConfigError("give both --model and --weights, or neither (then results/NET/ is used)")
    model, weights = (a.model, a.weights) if a.model else compare.net_files(a.net, a.results)
    methods = compare.load_methods(names)
    record = compare.compare(model, weights, methods, net=a.net, results=a.results,
                             max_loss=a.max_loss, repeat=a.repeat, gpu=a.gpu)
    out = Path(a.output or Path(a.results) / "compare" / f"{a.net}.json")
    compare.write(record, out)
    text = report.markdown({a.net: record})
    print(text)
    for path in report.write(text, {a.net: record}, Path(a.figures), f"compare_{a.net}"):
        print(f"wrote {path}")
    print(f"wrote {out}")


def register(sub) -> None:
    from ..baselines.compare import DEFAULT_METHODS
    from ..deepsz.optimize import PLANS

    r = sub.add_parser("reproduce", help="the paper's MNIST experiment from scratch (make reproduce)")
    r.add_argument("--net", default="lenet300", help="lenet300 | lenet5")
    r.add_argument("--expected-loss", type=float, default=0.2)
    r.add_argument("--seed", type=int, default=1)
    r.add_argument("--assess-split", action="store_true",
                   help="train on 50000 images, assess on the held-out 10000, verify on the test set")
    r.add_argument("--preset", default="paper", help="paper (default) | best | max")
    r.add_argument("--plan", choices=PLANS,
                   help="compress's planner (default: literal for the paper preset, as Algorithm 2; "
                        "envelope otherwise); a non-default plan adds its name to the output files")
    r.add_argument("--results", default="results")
    r.add_argument("--data", default="data")
    r.set_defaults(func=cmd_reproduce)

    c = sub.add_parser("compare", help="rate vs accuracy of DeepSZ and other methods (yours too) "
                                       "on the same pruned net, Caffe-measured")
    c.add_argument("--net", default="lenet300", help="lenet300 | lenet5 (or a label with --model/--weights)")
    c.add_argument("--methods", default=",".join(DEFAULT_METHODS),
                   help="comma-separated built-in names or module:Class "
                        f"(default: {','.join(DEFAULT_METHODS)})")
    c.add_argument("--method", action="append", default=[], metavar="MODULE:CLASS",
                   help="your method's class (a deepsz_caffe.baselines.method.Method); repeatable")
    c.add_argument("--model", "-model",
                   help="TEST prototxt (default: results/NET/prototxt/train_test.prototxt)")
    c.add_argument("--weights", "-weights", help="pruned caffemodel (default: results/NET/pruned.caffemodel)")
    c.add_argument("--max-loss", type=float, default=0.2, help="loss budget in top-1 points (default 0.2)")
    c.add_argument("--repeat", type=int, default=3, help="timing runs at each chosen point (best kept)")
    c.add_argument("--gpu", "-gpu", type=int, help="GPU id for the TEST phases (default: CPU)")
    c.add_argument("--results", default="results")
    c.add_argument("--figures", default="figures")
    c.add_argument("-o", "--output", help="JSON record (default: RESULTS/compare/NET.json)")
    c.set_defaults(func=cmd_compare)
