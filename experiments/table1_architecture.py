"""Table 1: layer counts, fc shapes, parameter storage and conv vs fc forward time per network.

Everything comes from the deploy prototxts loaded in pycaffe; their weights are Caffe's default
fillers (zeros), which is enough: shapes fix the storage, and dense convolutions and inner
products cost the same whatever the values. Forward times are measured with Caffe's CPU build on
this machine: from the first layer to the layer before the first fc layer (the conv part, last
conv/pool included), then from the first fc layer to the output (the fc part). At batch 1 an fc
layer is a matrix-vector product bound by reading its weights from memory, so the fc share of
the time depends on the batch: AlexNet and VGG-16 are also timed at their deploy batch of 10.
"""
import os
import statistics
import sys

import numpy as np

from deepsz_caffe import timing
from deepsz_caffe.paper.values import PROTOTXT

from . import common

# Batch 1 keeps VGG-16 on a CPU to about a second per pass; the LeNets run a typical batch.
BATCHES = {"lenet300": (64,), "lenet5": (64,), "alexnet": (1, 10), "vgg16": (1, 10)}
REPEATS = {"lenet300": 50, "lenet5": 50, "alexnet": 5, "vgg16": 3}


def _median_ms(net, start: str, end: str, repeats: int) -> float:
    return 1000 * statistics.median(timing.timings(repeats, net.forward, start=start, end=end)[1])


def measure(name: str) -> dict:
    import caffe

    caffe.set_mode_cpu()
    deploy = PROTOTXT / name / "deploy.prototxt"
    net = caffe.Net(str(deploy), caffe.TEST)
    names = list(net._layer_names)
    types = [layer.type for layer in net.layers]
    first_fc = types.index("InnerProduct")
    conv = [n for n, t in zip(names, types) if t == "Convolution"]
    fc = [n for n, t in zip(names, types) if t == "InnerProduct"]
    param_bytes = {n: sum(4 * b.count for b in blobs) for n, blobs in net.params.items()}
    total = sum(param_bytes.values())
    fc_bytes = sum(param_bytes[n] for n in fc)
    timings = []
    for batch in BATCHES[name]:
        data = net.inputs[0]
        shape = (batch, *net.blobs[data].data.shape[1:])
        net.blobs[data].reshape(*shape)
        net.reshape()
        net.blobs[data].data[...] = np.random.default_rng(0).standard_normal(shape)
        net.forward()  # warm-up: allocates and fills every blob
        repeats = REPEATS[name]
        timings.append({
            "batch": batch, "repeats": repeats,
            "conv_fwd_ms": _median_ms(net, names[0], names[first_fc - 1], repeats) if conv else 0.0,
            "fc_fwd_ms": _median_ms(net, names[first_fc], names[-1], repeats)})
    return {
        "deploy": str(deploy.relative_to(PROTOTXT.parent)), "conv_layers": len(conv),
        "fc_layers": len(fc), "fc_shapes": {n: list(net.params[n][0].data.shape) for n in fc},
        "total_bytes": total, "fc_bytes": fc_bytes, "fc_share_pct": 100 * fc_bytes / total,
        "timings": timings,
    }


def _cpu() -> str:
    return f"{timing.cpu_name()}, {os.cpu_count()} cores"


def _fc_share(t: dict) -> float:
    return 100 * t["fc_fwd_ms"] / (t["fc_fwd_ms"] + t["conv_fwd_ms"])


def compute(args) -> dict:
    nets = {}
    for name in common.NETS:
        print(f"[table1] {common.TITLES[name]}: timing batches {BATCHES[name]}", file=sys.stderr)
        nets[name] = measure(name)
    # the machine may be shared: a load above the core count inflates every time
    return {"machine": _cpu(), "caffe": "BVLC Caffe, CPU build", "load_average": os.getloadavg()[0],
            "nets": nets}


def render(data: dict, figures=common.FIGURES) -> list:
    paper = common.paper_values()["table1"]
    nets = data["nets"]
    order = [n for n in common.NETS if n in nets]
    theirs = {n: paper["nets"][n] for n in order}

    def cell(ours: str, paper_value: str) -> str:
        return ours if ours == paper_value else f"{ours} ({paper_value})"

    def shape(shapes: dict, i: int) -> str:
        shapes = list(shapes.values())
        return " × ".join(map(str, shapes[i])) if i < len(shapes) else "-"

    rows = [[label] + [cell(str(nets[n][key]), str(theirs[n][key])) for n in order]
            for key, label in (("conv_layers", "conv layers"), ("fc_layers", "fc layers"))]
    for i, label in enumerate(("ip1 / fc6", "ip2 / fc7", "ip3 / fc8")):
        rows.append([label] + [cell(shape(nets[n]["fc_shapes"], i), shape(theirs[n]["fc_shapes"], i))
                               for n in order])
    for i in range(max(len(nets[n]["timings"]) for n in order)):
        times = {n: nets[n]["timings"][i] if i < len(nets[n]["timings"]) else None for n in order}
        rows.append([f"batch (ours, timing {i + 1})"]
                    + [str(t["batch"]) if t else "-" for t in times.values()])
        for key, label in (("conv_fwd_ms", "conv fwd time"), ("fc_fwd_ms", "fc fwd time")):
            rows.append([label] + [f"{t[key]:.2f} ms ({theirs[n][key]} ms)" if t else "-"
                                   for n, t in times.items()])
        rows.append(["fc share of fwd time"] + [
            f"{_fc_share(t):.1f}% ({_fc_share(theirs[n]):.1f}%)" if t else "-"
            for n, t in times.items()])
    rows.append(["total size"] + [f"{nets[n]['total_bytes'] / 1e6:.1f} MB ({theirs[n]['total_mb']} MB)"
                                  for n in order])
    rows.append(["fc layers' size (%)"] + [
        f"{nets[n]['fc_share_pct']:.1f}% ({theirs[n]['fc_share_pct']}%)" for n in order])
    md = [
        "# Table 1: architectures (ours; the paper's value in parentheses where it differs)", "",
        common.markdown_table(["", *(common.TITLES[n] for n in order)], rows), "",
        (f"Ours: deploy prototxts of `prototxt/<net>/` in pycaffe; sizes = weights + biases x 4 B "
         f"(MB = 10^6 B). Forward times: median of several passes with {data['caffe']} on "
         f"{data['machine']} (1-minute load average {data['load_average']:.1f} "
         "after timing); weights are zeros (shapes only). Conv part = first layer up to the "
         "first fc layer, fc part = first fc layer to the output. At batch 1 the fc layers are "
         "matrix-vector products that read all of their weights from memory per image, which is "
         "why their share of the time falls at batch 10."),
        "", f"Notes on the paper's {paper['source']}:", "", *(f"- {note}" for note in paper["notes"]),
    ]
    return [common.write_table("table1_architecture", "\n".join(md), figures)]


def main(argv=None) -> None:
    common.main("table1_architecture", compute, render, argv, description=__doc__.splitlines()[0])


if __name__ == "__main__":
    main()
