"""REPRODUCTION.md: every rendered table (paper beside ours, each with its source) and figure,
assembled in the paper's order with the notes on where and why we differ.

Run after the table/figure scripts (`make figures` or `make experiments`); it only reads
figures/*.md, deepsz_caffe/paper/paper_values.json and docs/reproduction.md (whose numbers
experiments/docs.py renders), so no number in the report is typed by hand except the paper's own.
"""
from pathlib import Path

from deepsz_caffe import atomic
from experiments import common

SECTIONS = [  # (rendered table or figure name, heading)
    ("table1_architecture", "Table 1: the four networks"),
    ("table2_sizes", "Table 2: per-layer sizes and ratios"),
    ("table3_accuracy", "Table 3: accuracy"),
    ("table4_methods", "Table 4: DeepSZ vs Deep Compression vs Weightless"),
    ("table5_degradation", "Table 5: accuracy degradation at comparable ratio"),
    ("fig2_sz_vs_zfp", "Figure 2: SZ vs ZFP"),
    ("fig3_accuracy_vs_eb", "Figures 3 and 5: accuracy vs error bound"),
    ("fig4_index_lossless", "Figure 4: lossless coding of index arrays"),
    ("fig6_linearity", "Figure 6: expected vs actual loss"),
    ("fig7_time_breakdown", "Figure 7: encode and decode time"),
    ("presets_seeds", "Beyond the paper: presets and seeds"),
    ("fig_compare", "Beyond the paper: NNCodec (MPEG NNR) and other methods on the same pruned nets"),
]
ROOT = Path(__file__).resolve().parents[1]
NOTES = ROOT / "docs" / "reproduction.md"


def compute(args) -> dict:
    """Nothing to measure: the report is assembled from what is rendered when it is drawn."""
    return {"sections": [name for name, _ in SECTIONS]}


def render(data: dict, figures) -> list[Path]:
    figures = Path(figures)
    paper_notes = [(key, note) for key, entry in common.paper_values().items() if isinstance(entry, dict)
                   for note in entry.get("notes", [])]
    out = [NOTES.read_text().rstrip(), "", "## Inconsistencies inside the paper", ""]
    out += [f"- {key}: {note}" for key, note in paper_notes]
    for name, heading in SECTIONS:  # drawn from the files present now, not from `data`
        out += ["", f"## {heading}", ""]
        table = figures / f"{name}.md"
        if not table.is_file():
            out.append(f"(not rendered yet: run `python -m experiments.{name}`)")
            continue
        body = table.read_text().strip().splitlines()
        out += body[1:] if body and body[0].startswith("# ") else body  # our heading replaces it
        if (figures / f"{name}.png").is_file():
            out += ["", f"![{heading}]({figures.name}/{name}.png)"]
    report = ROOT / "REPRODUCTION.md" if figures.resolve() == (ROOT / "figures").resolve() \
        else figures / "REPRODUCTION.md"
    return [atomic.write_text(report, "\n".join(out) + "\n")]


def main(argv=None):
    common.main("reproduction_report", compute, render, argv, description=__doc__.splitlines()[0])


if __name__ == "__main__":
    main()
