"""README.md and docs/*.md: every measured number sits between markers and is filled from JSON.

Two markers, both HTML comments (invisible once rendered):

- `<!--= FILE KEY [FORMAT] -->57.0<!--/-->`: one value. FILE is a path under results/ without
  `.json` (`paper` is deepsz_caffe/paper/paper_values.json), KEY a dotted path into it (list
  items by number; a key holding dots, `1.5`, is found whole; `@PICK[+N]` is a compare record's
  point, e.g. `methods.nncodec.@chosen.bytes`), FORMAT `[*N|/N]:SPEC` (scale, then a Python
  format spec; default `:g`).
- `<!-- begin:NAME [ARG...] -->...<!-- end:NAME -->`: a table or derived text drawn by
  BLOCKS[NAME] (`include PATH` embeds a file, e.g. a runnable example, verbatim).

`python -m experiments.docs` rewrites every marked file in place (`make figures` runs it);
`--check` only names the stale files and exits 1. tests/test_docs.py fails on a stale one.
"""
import argparse
import ast
import fnmatch
import json
import math
import os
import re
import sys
from pathlib import Path

from deepsz_caffe import atomic
from deepsz_caffe.errors import DeepSZError
from deepsz_caffe.style import markdown_lines

ROOT = Path(__file__).resolve().parents[1]
VALUE = re.compile(r"<!--= (\S+) (\S+)(?: (\S+))? -->(.*?)<!--/-->", re.S)
BLOCK = re.compile(r"<!-- begin:(\S+)((?: [^ >]+)*) -->(.*?)<!-- end:\1 -->", re.S)
TITLES = {"lenet300": "LeNet-300-100", "lenet5": "LeNet-5", "alexnet": "AlexNet", "vgg16": "VGG-16"}
MAP_WIDTH = 90  # a module's line in the package map: its docstring's first sentence, cut here
CLI_WIDTH = 100  # help is wrapped at a fixed width, so docs/cli.md does not depend on the terminal


def doc_files(root=ROOT) -> list[Path]:
    root = Path(root)
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


class Sources:
    """The JSON files a document reads, each parsed once."""

    def __init__(self, root=ROOT):
        self.root = Path(root)
        self._parsed = {}

    def json(self, name: str):
        if name not in self._parsed:
            path = (self.root / "deepsz_caffe" / "paper" / "paper_values.json" if name == "paper"
                    else self.root / "results" / f"{name}.json")
            if not path.is_file():
                raise DeepSZError(f"{path.relative_to(self.root)} not found")
            self._parsed[name] = json.loads(path.read_text())
        return self._parsed[name]

    def value(self, name: str, key: str):
        node, parts = self.json(name), key.split(".")
        while parts:
            part = parts.pop(0)
            while isinstance(node, dict) and part not in node and parts and not part.startswith("@"):
                part += "." + parts.pop(0)  # a key with dots: step_ratios.1.5
            try:
                node = _step(node, part)
            except (KeyError, IndexError, ValueError, TypeError):
                raise DeepSZError(f"{name}.json has no {key!r} (at {part!r})") from None
        return node


def _step(node, part: str):
    if part.startswith("@"):  # a compare record's point by its pick: @chosen, @stable, @selected+1
        pick, _, offset = part[1:].partition("+")
        return node["points"][node[pick] + int(offset or 0)]
    return node[int(part)] if isinstance(node, list) else node[part]


def formatted(value, spec: str | None) -> str:
    """`value` scaled and formatted by a marker's FORMAT (`*100:.1f`, `/60:.0f`, `:,d`)."""
    if isinstance(value, str) and spec is None:
        return value
    scale, _, fmt = (spec or ":g").partition(":")
    try:
        if scale:
            if scale[0] not in "*/":
                raise ValueError("a scale starts with * or /")
            value = value * float(scale[1:]) if scale[0] == "*" else value / float(scale[1:])
        return format(value, fmt or "g")
    except (TypeError, ValueError) as e:
        raise DeepSZError(f"cannot format {value!r} with {spec!r}: {e}") from None


def render_text(text: str, src: Sources) -> str:
    """`text` with every marker's content drawn afresh; DeepSZError names the first bad one."""
    def value(m):
        spec = f" {m[3]}" if m[3] else ""
        return f"<!--= {m[1]} {m[2]}{spec} -->{formatted(src.value(m[1], m[2]), m[3])}<!--/-->"

    def block(m):
        name, args = m[1], m[2].split()
        if name not in BLOCKS:
            raise DeepSZError(f"unknown block {name!r} (known: {', '.join(sorted(BLOCKS))})")
        body = BLOCKS[name](src, *args)
        body = f"\n{body}\n" if "\n" in body else body
        return f"<!-- begin:{name}{m[2]} -->{body}<!-- end:{name} -->"

    return VALUE.sub(value, BLOCK.sub(block, text))


def render_files(root=ROOT, src: Sources | None = None) -> dict[Path, tuple[str, str]]:
    """{doc: (its text now, as rendered)} for every marked document under `root`."""
    src = src or Sources(root)
    out = {}
    for path in doc_files(root):
        text = path.read_text()
        try:
            out[path] = (text, render_text(text, src))
        except DeepSZError as e:
            raise DeepSZError(f"{path.relative_to(root)}: {e}") from None
    return out


# ---- blocks ------------------------------------------------------------------------------------

def _x(ratio: float) -> str:
    return f"{ratio:.1f}x"


def _span(values: list[float], fmt=_x) -> str:
    lo, hi = fmt(min(values)), fmt(max(values))
    if lo == hi:
        return lo
    (lo_n, lo_unit), (_, hi_unit) = (re.fullmatch(r"([\d.,]+)(.*)", v).groups() for v in (lo, hi))
    return f"{lo_n if lo_unit == hi_unit else lo}-{hi}"  # 60.8-61.4x, not 60.8x-61.4x


def _runs(src, net: str, preset: str) -> list[dict]:
    runs = [r for r in src.json("experiments/presets_seeds")["runs"]
            if r["net"] == net and r["preset"] == preset]
    return sorted(runs, key=lambda r: r["seed"])


def _seeds(runs) -> str:
    seeds = [r["seed"] for r in runs]
    return f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {seeds[0]}-{seeds[-1]}"


def block_results(src) -> str:
    """The LeNets end to end, paper (Table 3) beside our three presets, seed 1 and the seed range."""
    paper = src.json("paper")["table3"]["nets"]
    rows = ["| | paper (Table 3) | ours, preset `paper` (SZ2 + best lossless) | ours, preset `best` "
            "| ours, preset `max` (zeroing within the bound) |", "|---|---|---|---|---|"]
    for net in ("lenet300", "lenet5"):
        ratio, top1 = [f"{TITLES[net]} fc ratio", _x(paper[net]["deepsz"]["ratio"])], \
            [f"{TITLES[net]} top-1 original -> DeepSZ",
             f"{paper[net]['original']['top1']:.2f}% -> {paper[net]['deepsz']['top1']:.2f}%"]
        for preset in ("paper", "best", "max"):
            runs = _runs(src, net, preset)
            first = runs[0]
            cell = _x(first["ratio"])
            if len(runs) > 1:
                cell += f" ({_seeds(runs)}: {_span([r['ratio'] for r in runs])})"
            ratio.append(cell)
            top1.append(f"{first['top1_original']:.2f}% -> {first['top1_decoded']:.2f}% "
                        f"({_seeds(runs[:1])})")
        rows += ["| " + " | ".join(ratio) + " |", "| " + " | ".join(top1) + " |"]
    return "\n".join(rows)


def block_large_presets(src) -> str:
    """AlexNet and VGG-16 fc layers overall under each preset (synthetic weights, paper's bounds)."""
    rows = ["| fc layers overall | preset `paper`: data + index bits/nnz, ratio | "
            "preset `best`: data + index bits/nnz, ratio |", "|---|---|---|"]
    for net, entry in src.json("experiments/presets_seeds")["large_nets"].items():
        cells = [TITLES[net]]
        for preset in ("paper", "best"):
            layers = entry["presets"][preset]
            nnz = sum(m["nnz"] for m in layers)
            data, index = (sum(m[k] for m in layers) for k in ("data_bytes", "index_bytes"))
            dense = sum(m["dense_bytes"] for m in layers)
            cells.append(f"{8 * data / nnz:.2f} + {8 * index / nnz:.2f}, {_x(dense / (data + index))}")
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def block_best_span(src, net: str) -> str:
    """The `best` preset's fc ratio over every recorded seed of `net`, e.g. `60.8-61.4x`."""
    return _span([r["ratio"] for r in _runs(src, net, "best")])


def block_reproduce_time(src) -> str:
    """The stage times `deepsz reproduce --net lenet300` recorded, in words. The run recorded may
    have reused a cached assessment, so the assessment counts its points' own test times."""
    s = src.value("lenet300/summary", "seconds")
    c = src.json("lenet300/compress")
    points = [p for pts in c["assessment"].values() for p in pts]
    verify = sum(r["seconds"] for r in c["rounds"])
    return (f"MNIST {s['data']:.0f} s, training {s['train']:.0f} s, pruning {s['prune']:.0f} s, "
            f"assessment {sum(p['seconds'] for p in points):.0f} s ({len(points)} tests), "
            f"{len(c['rounds'])} rounds of encode + decode + verify {verify:.1f} s")


def _ms(timing: dict) -> float:
    return timing["median_ms"]


def block_speed(src) -> str:
    """Speed, one figure per quantity, each naming the benchmark that measured it."""
    paper = src.json("paper")["figure7"]
    enc = {r["workers"]: r["seconds"] for r in src.json("bench/encode_lenet5")["rows"]}
    bound = "< " if paper["encode_upper_bound"]["lenet5"]["deepsz"] else ""
    rows = ["| | paper | ours (2 CPU cores) | benchmark |", "|---|---|---|---|",
            f"| LeNet-5 whole encode (assess + optimise + generate + verify) | {bound}"
            f"{paper['encode_minutes']['lenet5']['deepsz']} min on 4 V100 | "
            + ", ".join(f"{s:.1f} s ({w} worker{'s' if w > 1 else ''})" for w, s in sorted(enc.items()))
            + " | `encode_lenet5` |"]
    suffix = {}
    for r in src.json("bench/suffix_speedup")["rows"]:
        suffix.setdefault(r["net"], []).append(f"{r['speedup']:.0f}x ({r['layer']})")
    rows.append("| suffix-only vs full TEST phase | - | "
                + "; ".join(f"{net}: {', '.join(v)}" for net, v in suffix.items()) + " | `suffix_speedup` |")
    for net in ("alexnet", "vgg16"):
        cells = []
        for lossy in ("sz2", "sz3"):
            total = src.json("bench/decode_speed")["nets"][net]["lossy"][lossy]["timing_ms"]["total"]
            cells.append(f"{lossy.upper()} {_ms(total['end_to_end']):.0f} ms "
                         f"({_ms(total['end_to_end']) / _ms(total['memcpy']):.1f}x a dense memcpy)")
        rows.append(f"| decode, {TITLES[net]}-shaped fc layers (synthetic), one core | "
                    f"{paper['decode_ms'][net]['deepsz']:g} ms (SZ2) | {'; '.join(cells)} | `decode_speed` |")
    ctx = src.json("bench/beyond_codecs")["large_layer_decode"]
    iid = [e["ctx_over_zstd"] for k, e in ctx.items() if not k.startswith("structured/")]
    rows.append(f"| decode of one layer, `ctx` index vs zstd index (SZ2 data), AlexNet/VGG-16 shapes | - | "
                f"{_span([e['layer'] for e in iid])} the zstd path (index stage alone "
                f"{_span([e['index'] for e in iid])}) | `beyond_codecs` |")
    return "\n".join(rows)


def block_ctx_size(src) -> str:
    """How much smaller the ctx index coder is than zstd: on i.i.d. masks and on LeNet-300-100."""
    index = src.json("bench/beyond_codecs")["index_bytes"]
    large = src.json("experiments/presets_seeds")["large_nets"]
    iid = []
    for entry in large.values():
        paper, best = ({m["name"]: m for m in entry["presets"][k]} for k in ("paper", "best"))
        iid += [1 - best[n]["index_bytes"] / paper[n]["index_bytes"] for n in paper
                if (paper[n]["index_codec"], best[n]["index_codec"]) == ("zstd", "ctx")]
    return (f"{_span([100 * v for v in iid], lambda v: f'{v:.1f}%')} smaller than zstd on the i.i.d. masks "
            f"of the synthetic AlexNet/VGG-16 layers, {-100 * index['lenet300/total']['ctx_vs_zstd']:.1f}% "
            "on LeNet-300-100's trained masks")


def block_planning(src) -> str:
    """Seed 1's runs under each planner: rounds, round-1 actual loss, final ratio and actual loss."""
    runs = {"paper": ("compress", "compress-envelope"), "best": ("compress-best-literal", "compress-best")}
    rows = ["| net, preset | `--plan literal` | `--plan envelope` |", "|---|---|---|"]
    for net in ("lenet300", "lenet5"):
        for preset, names in runs.items():
            cells = []
            for name in names:
                r = src.json(f"{net}/{name}")
                n = len(r["rounds"])
                first = f" (round 1: {r['rounds'][0]['actual_loss']:.2f})" if n > 1 else ""
                cells.append(f"{n} round{'s' if n > 1 else ''}{first}, {_x(r['ratio'])}, "
                             f"{r['actual_loss']:.2f}")
            rows.append(f"| {TITLES[net]}, {preset} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def block_drop_noise(src) -> str:
    """How noisy measured drops are, over the seed-1 assessments of both presets and LeNets."""
    negative, dips, lowest, deepest = 0, 0, 0.0, 0.0
    for net in ("lenet300", "lenet5"):
        for name in ("compress", "compress-best"):
            for points in src.json(f"{net}/{name}")["assessment"].values():
                for backend in {p["backend"] for p in points}:
                    running = -math.inf
                    for p in sorted((p for p in points if p["backend"] == backend), key=lambda p: p["eb"]):
                        negative += p["drop"] < 0
                        lowest = min(lowest, p["drop"])
                        if p["drop"] < running:
                            dips, deepest = dips + 1, max(deepest, running - p["drop"])
                        running = max(running, p["drop"])
    return (f"{negative} points measured a negative drop (down to {lowest:.2f} point) and {dips} "
            f"dipped below a smaller bound's drop (by up to {deepest:.2f})")


def block_stderr(src, net: str) -> str:
    """One binomial standard error of top-1 over the test set, in points, and its sum over the fc layers."""
    s = src.json(f"{net}/summary")
    p, n = s["top1_pruned"] / 100, src.json(f"{net}/compress")["test_records"]
    se = 100 * math.sqrt(p * (1 - p) / n)
    return f"{se:.2f} point at {100 * p:.1f}% ({len(s['layers'])} layers: {len(s['layers']) * se:.2f})"


def _loss(point: dict) -> str:
    return f"{round(point['loss'], 2) + 0.0:+.2f}"  # never "-0.00"


def block_compare(src) -> str:
    """Each compared method at its chosen point (and its stable pick), both LeNets."""
    from deepsz_caffe.baselines.compare import chosen_point

    records = {net: src.json(f"compare/{net}") for net in ("lenet300", "lenet5")}
    rows = ["| method | " + " | ".join(f"{TITLES[n]}: ratio (loss)" for n in records)
            + " | stable pick |", "|---|---|---|---|"]
    first = next(iter(records.values()))
    for method, entry in first["methods"].items():
        cells, stable = [entry["label"]], []
        for net, record in records.items():
            e = record["methods"].get(method, {"skipped": "not run"})
            point = chosen_point(e)
            cells.append("-" if point is None else f"{_x(point['ratio'])} ({_loss(point)})")
            if point is not None and e.get("stable") not in (None, e["chosen"]):
                stable.append(f"{TITLES[net]}: {_x(e['points'][e['stable']]['ratio'])}")
        rows.append("| " + " | ".join(cells + ["; ".join(stable) or "same"]) + " |")
    return "\n".join(rows)


def _times(records: dict, method: str) -> list[float]:
    """Encode and decode seconds of `method` at its chosen point, over every record."""
    return [r["methods"][method]["timing"][f"{what}_seconds"] for r in records.values()
            for what in ("encode", "decode")]


def block_nncodec(src) -> str:
    """The NNCodec findings on both LeNets, from results/compare/<net>.json."""
    from deepsz_caffe.baselines.compare import chosen_point

    nets = {net: src.json(f"compare/{net}") for net in ("lenet300", "lenet5")}
    at, stable, deepsz, best, sparse, kept = {}, {}, {}, {}, {}, {}
    for net, r in nets.items():
        m = r["methods"]
        at[net], deepsz[net] = chosen_point(m["nncodec"]), chosen_point(m["deepsz"])
        best[net], sparse[net] = chosen_point(m["deepsz-best"]), chosen_point(m["nncodec-sparse"])
        stable[net] = m["nncodec"]["points"][m["nncodec"]["stable"]]
        kept[net] = sum(layer["nnz"] for layer in r["layers"])
    budget = nets["lenet300"]["max_loss"]
    out = [f"At its smallest file within {budget:g} points, NNCodec on the dense pruned layers (one qp for "
           "all layers, its default dependent quantisation) reaches"]
    for net, sep in (("lenet300", " and"), ("lenet5", ".")):
        a, d, b = at[net], deepsz[net], best[net]
        out.append(f"{_x(a['ratio'])} on {TITLES[net]} ({a['setting']}; DeepSZ {_x(d['ratio'])} with "
                   f"the paper preset, {_x(b['ratio'])} with `best`: {a['ratio'] / d['ratio']:.2f}x and "
                   f"{a['ratio'] / b['ratio']:.2f}x smaller){sep}")
    for net in nets:
        e = nets[net]["methods"]["nncodec"]
        if e["stable"] != e["selected"]:
            lost = [p for p in e["points"][e["selected"] + 1:e["stable"]] if p["loss"] > budget]
            out.append(f"The {TITLES[net]} point is a lucky measurement: "
                       + " and ".join(p["setting"] for p in lost) + ", finer, lose "
                       + " and ".join(f"{p['loss']:.2f}" for p in lost) + " points; the smallest file from "
                       f"which every finer qp stays within budget is {stable[net]['setting']}, "
                       f"{_x(stable[net]['ratio'])}.")
    out.append("Why it wins: it quantises "
               + _span([at[n]["kept_made_zero"] / kept[n] * 100 for n in nets], lambda v: f"{v:.0f}%")
               + " of the kept weights to zero ("
               + "; ".join(f"{at[n]['kept_made_zero']:,} of {kept[n]:,}" for n in nets) + "), and in its "
               "significance coding of the dense matrix a weight coded as zero costs what a pruned one "
               "does, so it re-prunes for free; DeepSZ's error bound keeps every kept weight and its "
               "index pays for every kept position. Fed only DeepSZ's data arrays beside DeepSZ's index "
               "(`nncodec-sparse`), it lands at "
               + ", ".join(_x(sparse[n]["ratio"]) for n in nets) + ". The price: no error bound (max error "
               + " and ".join(f"{at[n]['max_abs_error']:.3f}" for n in nets) + " against DeepSZ's "
               + " and ".join(dict.fromkeys(f"{deepsz[n]['max_abs_error']:.2f}" for n in nets))
               + "), the pruned mask not kept (dependent quantisation sets "
               + " and ".join(f"{at[n]['pruned_made_nonzero']:,}" for n in nets) + " pruned weights to +-1 "
               "step; `dq=False` keeps zeros), and "
               + _span(_times(nets, "nncodec"), lambda v: f"{v:.1f} s")
               + " to encode or decode against "
               + _span([1000 * t for t in _times(nets, "deepsz")], lambda v: f"{v:.0f} ms")
               + " for DeepSZ's paper preset here (a child process, Python around the C++ coder).")
    return " ".join(out)


def block_lenet5_limit(src) -> str:
    """Why LeNet-5's `best` preset stops short of its target, from its measured run and assessment."""
    target = src.json("experiments/presets_seeds")["targets"]["lenet5"]
    s, assessment = src.json("lenet5/summary-best"), src.json("lenet5/compress-best")["assessment"]
    ip1, rest = s["layers"][0], s["layers"][1:]
    budget = s["fc_weight_bytes"] / target
    p = ip1["nnz"] / (ip1["dense_bytes"] / 4)
    entropy = -(p * math.log2(p) + (1 - p) * math.log2(1 - p)) / p
    left = budget - ip1["index_bytes"] - sum(m["data_bytes"] + m["index_bytes"] for m in rest)
    points = assessment[ip1["name"]]
    within = min((q for q in points if q["drop"] <= s["expected_loss"]), key=lambda q: q["data_bytes"])
    coarser = min((q for q in points if q["eb"] > within["eb"]), key=lambda q: (q["eb"], q["data_bytes"]))
    return (f"A {target:g}x LeNet-5 would have to fit its fc weights in {budget / 1e3:.1f} kB. "
            f"{ip1['name']}'s index alone takes {ip1['index_bytes'] / 1e3:.1f} kB: its pruned mask is as "
            f"random as an i.i.d. {100 * p:.0f}% mask ({entropy:.2f} bits per nonzero is that entropy; the "
            f"ctx coder takes {8 * ip1['index_bytes'] / ip1['nnz']:.2f}), which leaves under "
            f"{left / 1e3:.1f} kB for {ip1['name']}'s {ip1['nnz']:,} values once the other layers are "
            f"stored. The smallest {ip1['name']} data stream measured within the "
            f"{s['expected_loss']:g}-point budget is {within['data_bytes'] / 1e3:.1f} kB "
            f"({within['backend']}, eb {within['eb']:g}); "
            f"eb {coarser['eb']:g}, which alone costs {coarser['drop']:.2f} points, still needs "
            f"{coarser['data_bytes'] / 1e3:.1f} kB")


def block_deepsz_overhead(src) -> str:
    """Bytes per layer DeepSZ's compared file holds beyond its data + index streams (LeNet-300-100)."""
    from deepsz_caffe.baselines.compare import chosen_point

    record, summary = src.json("compare/lenet300"), src.json("lenet300/summary")
    extra = chosen_point(record["methods"]["deepsz"])["bytes"] - summary["fc_compressed_bytes"]
    return f"{extra / len(summary['layers']):.0f}"


CHALLENGE = (("DeepSZ max, verified operating point", "deepsz-max", "chosen"),
             ("DeepSZ max, stable pick", "deepsz-max", "stable"),
             ("NNCodec, smallest file within budget", "nncodec", "chosen"),
             ("NNCodec, stable pick", "nncodec", "stable"),
             ("DeepSZ best preset, same run", "deepsz-best", "chosen"))


def _kept(point: dict) -> str:
    """Max |error| of a point, whether every layer kept its bound, and pruned zeros made nonzero."""
    bound = "no bound" if "bound_held" not in point else \
        "bounds held" if point["bound_held"] else "BOUND BROKEN"
    return f"{point['max_abs_error']:.3g} ({bound}) / {point['pruned_made_nonzero']:,}"


def block_max_challenge(src) -> str:
    """The max preset against NNCodec on both LeNets (results/compare/<net>.json): each pick's
    bytes, ratio and measured loss, then what DeepSZ max and NNCodec's chosen point keep."""
    nets = {net: src.json(f"compare/{net}")["methods"] for net in ("lenet300", "lenet5")}
    rows = []
    for label, method, pick in CHALLENGE:
        cells = [label]
        for methods in nets.values():
            e = methods[method]
            p = e["points"][e[pick]]
            setting = f" ({p['setting']})" if method == "nncodec" else ""
            cells.append(f"{p['bytes']:,} B, {_x(p['ratio'])}, {_loss(p)}{setting}")
        rows.append(cells)
    for label, method in (("max abs error / pruned zeros made nonzero: DeepSZ max", "deepsz-max"),
                          ("same, NNCodec at its chosen point", "nncodec")):
        rows.append([label, *(_kept(m[method]["points"][m[method]["chosen"]]) for m in nets.values())])
    return "\n".join(markdown_lines(["", *(TITLES[n] for n in nets)], rows))


CALC = {"minus": lambda a, b: a - b, "over": lambda a, b: a / b,
        "above": lambda a, b: a / b - 1, "below": lambda a, b: 1 - a / b}


def block_calc(src, name: str, a: str, op: str, b: str, spec: str | None = None) -> str:
    """One number derived from two values of one record: A minus|over|above|below B, formatted as
    a value marker is (`above` is A / B - 1 and `below` 1 - A / B, so `*100:.0f` gives percent)."""
    if op not in CALC:
        raise DeepSZError(f"calc: unknown operation {op!r} (known: {', '.join(CALC)})")
    return formatted(CALC[op](src.value(name, a), src.value(name, b)), spec)


def block_span(src, name: str, key: str, spec: str | None = None) -> str:
    """The range of the values under KEY (a list or a dict's values), each formatted, e.g. `40-43`."""
    values = src.value(name, key)
    return _span(list(values.values() if isinstance(values, dict) else values),
                 lambda v: formatted(v, spec))


def block_scale(src) -> str:
    """The largest run of each net through `deepsz compress --agreement` (benchmarks/imagenet_scale.py)."""
    paper = src.json("paper")["figure7"]["encode_minutes"]
    rows = ["| net | images | whole `compress` | ÷ one full TEST pass, wall (CPU) | TEST batch | "
            "prefix pass | tests | verification pass | encode | peak RSS (anonymous) | "
            "at 50,000 images | paper, 4 V100 |", "|" + "---|" * 12]
    for net, entry in src.json("bench/imagenet_scale")["nets"].items():
        r = max(entry["runs"], key=lambda r: r["images"])
        tests = sum(t["points"] for t in r["tests"].values())
        test_s = sum(t["seconds"] for t in r["tests"].values())
        ratio = (f"{r['compress_over_full_test_pass']:.2f}x ({r['compress_over_full_test_pass_cpu']:.2f}x)"
                 if "compress_over_full_test_pass" in r else "-")
        batch = f"{r['test_batch']} (prototxt {r.get('prototxt_test_batch', r['test_batch'])})"
        rows.append(f"| {TITLES[net]} | {r['images']:,} | {r['wall_seconds']:.0f} s | {ratio} | {batch} | "
                    f"{r['prefix_pass']['seconds']:.0f} s | {tests}, {test_s:.0f} s | "
                    f"{sum(r['verify_test_pass_seconds']):.0f} s | {r['encode']:.1f} s | "
                    f"{r['peak_rss_bytes'] / 2**30:.2f} GiB ({r['peak_anon_rss_bytes'] / 2**30:.2f}) | "
                    f"{_duration(r['extrapolated_seconds_at_50000'])} | {paper[net]['deepsz']} min |")
    return "\n".join(rows)


def _duration(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def block_scale_runs(src, net: str, key: str) -> str:
    """One quantity over every run of `net` in imagenet_scale.json, e.g. anonymous peak per run."""
    runs = src.json("bench/imagenet_scale")["nets"][net]["runs"]
    if key == "images":
        return "/".join(f"{r['images']:,}" for r in runs)
    if key == "anon":
        return "/".join(f"{r['peak_anon_rss_bytes'] / 2**30:.2f}" for r in runs)
    if key == "extrapolated":
        r = max(runs, key=lambda r: r["images"])
        return _duration(r["extrapolated_seconds_at_50000"])
    if key == "extrapolated-paper-tests":
        r = max(runs, key=lambda r: r["images"])
        return _duration(r["extrapolated_seconds_at_50000_paper_tests"])
    raise DeepSZError(f"scale-runs: unknown quantity {key!r}")


def block_hostile(src) -> str:
    """What tests/hostile_report.py recorded, in words."""
    h = src.json("bench/hostile")
    table = h["table"]
    ok = sum(r["ok"] for r in table)
    tries = sum(r["tries"] for r in table)
    failures = sum(r[k] for r in table for k in ("crash", "traceback", "hang", "exit0-no-output"))
    rss = max(r["max_rss_ratio"] for r in table)
    return (f"{ok:,} of {tries:,} runs ended as required, {failures} with a crash, traceback, "
            f"hang or exit 0 without output, none above {rss:.2f}x a genuine decode's peak RSS")


def block_jobs(src, name: str, *args: str) -> str:
    """How many jobs of a hostile run (tests/hostile_report.py) match every `KEY=GLOB` and
    `KEY!=GLOB`, or with `max:KEY:SPEC` / `min:KEY:SPEC` the largest / smallest KEY among them."""
    jobs, stat = src.json(name)["jobs"], None
    for arg in args:
        if arg.startswith(("max:", "min:")):
            stat = arg.split(":", 2)
            continue
        m = re.fullmatch(r"(\w+)(!?)=(.+)", arg)
        if m is None:
            raise DeepSZError(f"jobs: {arg!r} is not KEY=GLOB, KEY!=GLOB, max:KEY:SPEC or min:KEY:SPEC")
        jobs = [j for j in jobs if fnmatch.fnmatchcase(str(j.get(m[1])), m[3]) != bool(m[2])]
    if stat is None:
        return f"{len(jobs):,}"
    if len(stat) != 3 or not jobs:
        raise DeepSZError(f"jobs: no {':'.join(stat)!r} of {len(jobs)} jobs")
    return formatted((max if stat[0] == "max" else min)(j[stat[1]] for j in jobs), f":{stat[2]}")


def block_package_map(src, package: str = "deepsz_caffe") -> str:
    """Every module of the package with its docstring's first sentence, so the map is the tree."""
    root = src.root / package
    lines = ["```", f"{package}/"]
    def order(p):  # each package's __init__ first, then its modules, then its subpackages
        return p.parent.relative_to(root).parts, p.name != "__init__.py", p.name

    for path in sorted(root.rglob("*.py"), key=order):
        rel = path.relative_to(root)
        if path.name == "__main__.py" or any(p.startswith("_") and p != "__init__.py" for p in rel.parts):
            continue
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        first = " ".join(doc.split("\n\n")[0].split())
        first = re.split(r"(?<=\.)\s(?=[A-Z`])", first, maxsplit=1)[0].rstrip(".")
        if len(first) > MAP_WIDTH:
            first = first[:MAP_WIDTH].rsplit(" ", 1)[0].rstrip(",;:") + " ..."
        name = rel.parent.name + "/" if path.name == "__init__.py" and rel.parts[:-1] else rel.name
        indent = "  " * max(len(rel.parts) - (path.name == "__init__.py" and len(rel.parts) > 1), 1)
        lines.append(f"{indent}{name:<{max(22 - len(indent), 1)}} {first}")
    return "\n".join(lines + ["```"])


def block_include(src, path: str, lang: str = "") -> str:
    """A file verbatim in a fenced block: the doc shows what the tests run."""
    file = src.root / path
    if not file.is_file():
        raise DeepSZError(f"include: {path} not found")
    return f"```{lang}\n{file.read_text().rstrip()}\n```"


def block_cli(src) -> str:
    """`deepsz --help` and every command's help, at a fixed width: the reference cannot go stale."""
    from deepsz_caffe.cli import build_parser

    parser = build_parser()
    subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    parts = [("deepsz", parser)] + [(f"deepsz {name}", p) for name, p in subs.choices.items()]
    out = []
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(CLI_WIDTH)
    try:
        for title, p in parts:
            out += [f"### `{title}`", "", "```text", p.format_help().rstrip(), "```", ""]
    finally:
        if old is None:
            os.environ.pop("COLUMNS")
        else:
            os.environ["COLUMNS"] = old
    return "\n".join(out).rstrip()


BLOCKS = {
    "results": block_results, "large-presets": block_large_presets, "best-span": block_best_span,
    "reproduce-time": block_reproduce_time, "speed": block_speed, "planning": block_planning,
    "drop-noise": block_drop_noise, "stderr": block_stderr, "compare": block_compare,
    "deepsz-overhead": block_deepsz_overhead, "nncodec": block_nncodec, "lenet5-limit": block_lenet5_limit,
    "ctx-size": block_ctx_size,
    "max-challenge": block_max_challenge, "calc": block_calc, "span": block_span, "jobs": block_jobs,
    "scale": block_scale, "scale-runs": block_scale_runs, "hostile": block_hostile,
    "package-map": block_package_map, "include": block_include, "cli": block_cli,
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.docs", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a document is stale")
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout (default: this one)")
    args = parser.parse_args(argv)
    try:
        rendered = render_files(args.root)
    except DeepSZError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    stale = [path for path, (old, new) in rendered.items() if old != new]
    for path in stale:
        if args.check:
            print(f"stale: {path.relative_to(args.root)} (run `make figures`)", file=sys.stderr)
        else:
            atomic.write_text(path, rendered[path][1])
            print(f"wrote {path.relative_to(args.root)}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
