"""Tables and figures of comparison records (baselines/compare.py), drawn only from the records.

`deepsz compare` and experiments/fig_compare.py both render through here; matplotlib is
imported only by `figure`.
"""
import math
from pathlib import Path

from deepsz_caffe import atomic
from deepsz_caffe.baselines.compare import chosen_point
from deepsz_caffe.style import color, markdown_lines, title


def _seconds(s: float) -> str:
    return f"{s:.3g} s" if s >= 1 else f"{1e3 * s:.3g} ms"


def _how(entry: dict) -> str:
    if entry["operating_point"] is not None:
        return "its operating point"
    return "smallest file within budget"


def _row(name: str, entry: dict, budget: float) -> list:
    p = chosen_point(entry)
    how = _how(entry) if p else f"none within {budget:g} (least loss shown)"
    if p is None:
        p = min(entry["points"], key=lambda q: (q["loss"], q["bytes"]))
    t = entry.get("timing") or p
    s = entry["points"][entry["stable"]] if entry.get("stable") is not None else None
    stable = f"{s['setting']}: {s['ratio']:.1f}×" if s else "none"
    return [entry["label"], p["setting"], f"{p['bytes']:,}", f"{p['ratio']:.1f}×", f"{p['top1']:.2f}%",
            f"{p['loss']:+.2f}", how, stable, _seconds(t["encode_seconds"]), _seconds(t["decode_seconds"]),
            f"{p['pruned_made_nonzero']:,}", _bound(p)]


def _bound(p: dict) -> str:
    """Max |error| of the point, and whether every layer kept its error bound (float64)."""
    if "bound_held" not in p:
        return f"{p['max_abs_error']:.3g} (no bound)"
    held = "every layer within its bound" if p["bound_held"] else "BOUND BROKEN"
    return f"{p['max_abs_error']:.3g} ({held})"


def stream_rows(methods: dict, layers: list[str]) -> list[list]:
    """Per layer at the chosen point: positions / levels / side-information bytes of the methods
    that report their streams (DeepSZ's), beside the per-layer bytes of the others (NNCodec's
    bitstream does not separate positions from levels)."""
    rows = []
    for e in methods.values():
        sb, lb = e.get("stream_bytes"), e.get("layer_bytes")
        if chosen_point(e) is None or not (sb or lb):
            continue
        cells = [f"{sb[n]['positions']:,} / {sb[n]['levels']:,} / {sb[n]['side']:,} ({sb[n]['lossy']})"
                 if sb else f"{lb[n]:,} (one stream)" for n in layers]
        total = sum(sb[n]["positions"] + sb[n]["levels"] + sb[n]["side"] for n in layers) if sb else \
            sum(lb[n] for n in layers)
        rows.append([e["label"], *cells, f"{total:,}"])
    return rows


def net_markdown(record: dict) -> list[str]:
    """The comparison table and the per-layer ratios of one net."""
    methods, budget = record["methods"], record["max_loss"]
    ran = {n: e for n, e in methods.items() if not e.get("skipped")}
    md = [f"## {title(record['net'])}", "",
          (f"Pruned model {record['weights']} (sha256 {record['weights_sha256'][:12]}...): top-1 "
           f"{record['top1_pruned']:.2f}% over {record['test_images']:,} test images; fc weights "
           f"{record['fc_weight_bytes']:,} B. Loss budget {budget:g} points."), ""]
    header = ["method", "setting", "file bytes", "ratio", "top-1", "loss", "chosen as",
              "stable pick", "encode", "decode", "pruned zeros made nonzero", "max abs error"]
    md += markdown_lines(header, [_row(n, e, budget) for n, e in ran.items()])
    layers = [r["name"] for r in record["layers"]]
    dense = {r["name"]: r["dense_bytes"] for r in record["layers"]}
    rows = []
    for e in ran.values():
        p, lb = chosen_point(e), e.get("layer_bytes")
        if p is None or not lb:
            continue
        rows.append([e["label"], *(f"{dense[n] / lb[n]:.1f}×" for n in layers), f"{p['ratio']:.1f}×"])
    if rows:
        md += ["", "Ratio per layer (the layer's own stream) and of the whole file, at the chosen point:",
               "", *markdown_lines(["method", *layers, "file"], rows)]
    streams = stream_rows({n: e for n, e in ran.items() if n.startswith(("deepsz", "nncodec"))}, layers)
    if streams:
        md += ["", "Bytes per layer at the chosen point: positions / levels / side information "
               "(DeepSZ: index stream / data stream / its frame), beside NNCodec's per-layer bytes:",
               "", *markdown_lines(["method", *layers, "sum"], streams)]
    md += [f"- {e['label']}: {e['source']}" for e in ran.values() if e.get("source")]
    md += [f"- {e['label']} ({n}) skipped: {e['skipped']}" for n, e in methods.items() if e.get("skipped")]
    return md + [""]


def challenge_rows(records: dict, bounded: str = "deepsz-max", rival: str = "nncodec") -> list[list]:
    """Per net: the error-bounded method's file against the rival's chosen (smallest within
    budget) and stable picks, with the guarantees each point keeps (docs/nncodec-challenge.md)."""
    rows = []
    for record in records.values():
        m, n = record["methods"].get(bounded), record["methods"].get(rival)
        if not m or not n or chosen_point(m) is None or chosen_point(n) is None:
            continue
        p, q = chosen_point(m), chosen_point(n)
        s = n["points"][n["stable"]] if n.get("stable") is not None else None
        sel = m["points"][m["selected"]] if m.get("selected") is not None else None
        own = m["points"][m["stable"]] if m.get("stable") is not None else None
        rows.append([title(record["net"]), f"{p['bytes']:,} ({p['ratio']:.1f}×, {p['loss']:+.2f})",
                     f"{sel['bytes']:,} ({sel['ratio']:.1f}×, {sel['loss']:+.2f}; {sel['setting']})"
                     f"{'' if sel.get('bound_held') else ' BOUND BROKEN'}" if sel else "none",
                     f"{own['bytes']:,} ({own['ratio']:.1f}×, {own['loss']:+.2f})" if own else "none",
                     f"{q['bytes']:,} ({q['ratio']:.1f}×, {q['loss']:+.2f})",
                     f"{s['bytes']:,} ({s['ratio']:.1f}×, {s['loss']:+.2f})" if s else "none",
                     f"{p['bytes'] / q['bytes']:.3f}",
                     f"{sel['bytes'] / q['bytes']:.3f}" if sel else "-",
                     f"{own['bytes'] / s['bytes']:.3f}" if s and own else "-",
                     "yes" if p.get("bound_held") else "NO",
                     f"{p['pruned_made_nonzero']} / {q['pruned_made_nonzero']}",
                     f"{q['max_abs_error']:.3g}"])
    return rows


def markdown(records: dict) -> str:
    versions = sorted({e["version"] for r in records.values() for e in r["methods"].values()
                       if e.get("version")})
    md = ["# Rate vs accuracy: DeepSZ beside other methods on the same pruned nets", "",
          ("Every method codes the same pruned fc weight blobs; file bytes = everything its decoder "
           "is given; top-1 measured by Caffe on the full test set with the decoded layers in "
           "place; loss = pruned top-1 - that. A method is shown at its operating point (DeepSZ: "
           "the bounds its measured run chose) or else at its smallest file with loss within the "
           "budget. Measured losses are noisy (a coarser setting can measure better than a finer "
           "one), so 'stable pick' names the smallest file from which every larger file of the "
           "sweep is within budget too. Encode/decode: wall time of the chosen point, best of a "
           "few runs, child processes included (DeepSZ's encode here is the final encode only, not "
           "its assessment)."), ""]
    if versions:
        md += ["Versions: " + ", ".join(versions) + ".", ""]
    rows = challenge_rows(records)
    if rows:
        md += ["## Error-bounded DeepSZ (max preset) against NNCodec", "",
               "Bytes (ratio, measured loss) at the compared points; NNCodec's chosen point is its "
               "smallest file within budget, its stable pick the smallest from which every larger "
               "file is within budget too. DeepSZ max: its verified operating point (the bounds "
               "its `compress` run chose and verified), and the smallest file within budget of "
               "its sweep (those bounds scaled, 4 scales per octave as NNCodec's qps; every point "
               "within its scaled bounds) (docs/nncodec-challenge.md).", "",
               *markdown_lines(["net", "DeepSZ max (operating point)", "DeepSZ max (smallest within budget)",
                        "DeepSZ max (stable)", "NNCodec chosen", "NNCodec stable",
                        "operating / NNCodec chosen", "smallest / NNCodec chosen",
                        "stable / NNCodec stable",
                        "every weight within its bound", "pruned zeros made nonzero (max / NNCodec)",
                        "NNCodec max abs error"], rows), ""]
    for record in records.values():
        md += net_markdown(record)
    return "\n".join(md).rstrip("\n") + "\n"


def _curve(ax, name: str, entry: dict, c: str) -> None:
    pts = sorted(entry["points"], key=lambda p: p["ratio"])
    ax.plot([p["ratio"] for p in pts], [p["loss"] for p in pts], "o-", ms=3, lw=1.2, color=c,
            label=entry["label"])
    p = chosen_point(entry)
    if p is not None:
        ax.plot([p["ratio"]], [p["loss"]], "*", ms=12, color=c, mec="black", mew=0.6)


LOSS_SHOWN = 10.0   # points; curves are clipped above (the interesting part is below 1)


def figure(records: dict, plt):
    """Rate vs accuracy (top row) and encode/decode time at the chosen point (bottom row), one
    column per net, one legend on top (the caller leaves the top ~10% free); `plt` is
    matplotlib.pyplot with the caller's style."""
    fig, axes = plt.subplots(2, len(records), figsize=(5.2 * len(records), 7.8), squeeze=False)
    handles = {}
    for col, record in enumerate(records.values()):
        ran = {n: e for n, e in record["methods"].items() if not e.get("skipped")}
        ax = axes[0][col]
        for name, e in ran.items():
            _curve(ax, name, e, color(name, list(ran)))
        ax.axhline(record["max_loss"], color="0.3", ls="--", lw=0.8)
        _axes(ax, [p for e in ran.values() for p in e["points"]])
        ax.set_xlabel("compression ratio (fc weights / file bytes)")
        ax.set_ylabel(f"top-1 loss (points; clipped at {LOSS_SHOWN:g})")
        ax.set_title(f"{title(record['net'])} (★ compared point; dashed: {record['max_loss']:g})")
        handles.update(zip(*reversed(ax.get_legend_handles_labels())))
        _time_bars(axes[1][col], ran)
    fig.legend(list(handles.values()), list(handles), loc="upper center", ncol=3, fontsize=8,
               bbox_to_anchor=(0.5, 0.95))
    return fig


def _axes(ax, points: list[dict]) -> None:
    """Log ratio axis with plain labels over the points shown; loss linear up to 1 point,
    logarithmic above, clipped at LOSS_SHOWN."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    ax.set_xscale("log")
    ratios = [p["ratio"] for p in points if p["loss"] <= LOSS_SHOWN] or [1.0]
    lo, hi = min(ratios) / 1.15, max(ratios) * 1.15
    ticks = [m * 10 ** e for e in range(0, 5) for m in (1, 1.5, 2, 3, 5, 7)]
    ax.set_xlim(lo, hi)
    ax.xaxis.set_major_locator(FixedLocator([t for t in ticks if lo <= t <= hi]))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_yscale("symlog", linthresh=1.0, linscale=2.0)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_ylim(min(-0.3, min((p["loss"] for p in points), default=0) - 0.1), LOSS_SHOWN)


def _time_bars(ax, ran: dict) -> None:
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter, NullFormatter

    names = [n for n, e in ran.items() if e.get("timing")]
    width = 0.38
    for i, hatch in enumerate(("", "//")):
        values = [ran[n]["timing"][f"{('encode', 'decode')[i]}_seconds"] for n in names]
        xs = [j + (i - 0.5) * width for j in range(len(names))]
        ax.bar(xs, values, width, color=[color(n, list(ran)) for n in names], hatch=hatch,
               edgecolor="black", linewidth=0.4)
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: _seconds(v)))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xticks(range(len(names)), names, fontsize=8, rotation=25, ha="right")
    ax.set_ylabel("wall time at the compared point")
    ax.legend(handles=[Patch(facecolor="white", edgecolor="black", hatch=h, label=k)
                       for k, h in (("encode", ""), ("decode", "//"))], fontsize=7)
    lo = min((ran[n]["timing"]["decode_seconds"] for n in names), default=1e-3)
    ax.set_ylim(bottom=10 ** math.floor(math.log10(max(lo, 1e-6))))


def write(text: str, records: dict, figures, name: str) -> list[Path]:
    """figures/<name>.md and the figure as <name>.png (Agg backend, plain style)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures = Path(figures)
    figures.mkdir(parents=True, exist_ok=True)
    paths = [atomic.write_text(figures / f"{name}.md", text)]
    fig = figure(records, plt)
    fig.tight_layout(rect=(0, 0, 1, 0.88))
    with atomic.replacing(figures / f"{name}.png") as tmp:
        fig.savefig(tmp, format="png", dpi=130, metadata={"Software": None})
    plt.close(fig)
    return paths + [figures / f"{name}.png"]
