"""deepsz_caffe.paper.values: the paper's numbers exist once (paper_values.json), with sources."""
import re
from pathlib import Path

import pytest

from deepsz_caffe.paper import synthetic, values

ROOT = Path(__file__).resolve().parents[1]
# Numbers that only the paper could have given us: headline ratios and accuracies (Tables 2-3).
DISTINCTIVE = ("55.8", "57.3", "45.5", "115.6", "98.35", "98.31", "99.13", "99.16", "57.41", "68.05",
               "57.28", "67.8")


def test_every_entry_names_its_source():
    for key, entry in values.paper_values().items():
        if key != "about":
            assert entry.get("source"), f"paper_values.json: {key} has no source"
    for entry in values.paper_values()["table2"]["nets"].values():
        assert entry["source"].startswith("Table 2")
    assert "3.16" in " ".join(values.paper_values()["table2"]["nets"]["lenet300"]["notes"])


def test_accessors_read_the_tables():
    assert values.kept_fractions("lenet300") == {"ip1": 0.08, "ip2": 0.09, "ip3": 0.26}
    assert values.fc_shapes("vgg16")["fc6"] == (4096, 25088)
    assert values.error_bounds("alexnet") == {"fc6": 7e-3, "fc7": 7e-3, "fc8": 5e-3}
    assert values.headline("lenet300")["fc_kb"] == 941 + 120 + 4  # Table 2's layers, not Table 3's 1056
    assert values.decode_ms("alexnet")["total"] == 296
    assert synthetic.PAPER_KEPT["vgg16"] == values.kept_fractions("vgg16")
    assert values.PROTOTXT.joinpath("lenet300", "solver.prototxt").is_file()


@pytest.mark.parametrize("folder", ["deepsz_caffe", "experiments", "benchmarks"])
def test_no_second_copy_of_the_papers_numbers(folder):
    """A paper number typed into code instead of read from paper_values.json is a second copy."""
    found = []
    for path in (ROOT / folder).rglob("*.py"):
        text = path.read_text()
        found += [f"{path.relative_to(ROOT)}: {n}" for n in DISTINCTIVE
                  if re.search(rf"(?<![\d.]){re.escape(n)}(?![\d])", text)]
    assert not found, "paper numbers typed outside paper_values.json: " + ", ".join(found)
