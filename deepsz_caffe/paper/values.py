"""The paper's numbers (Jin et al., HPDC 2019), read from paper_values.json: the one place they
are typed, each with its table, figure or section. Everything that needs one asks here."""
import json
from functools import cache
from pathlib import Path

PAPER_VALUES = Path(__file__).with_name("paper_values.json")
PROTOTXT = Path(__file__).with_name("prototxt")


@cache
def paper_values() -> dict:
    return json.loads(PAPER_VALUES.read_text())


def fc_shapes(net: str) -> dict[str, tuple[int, int]]:
    """fc weight blob shapes (num_output, fan_in), as Caffe stores them: Table 1."""
    return {k: tuple(v) for k, v in paper_values()["table1"]["nets"][net]["fc_shapes"].items()}


def kept_fractions(net: str) -> dict[str, float]:
    """Kept (nonzero) fraction per fc layer after pruning, the paper's "pruning ratio": Table 2."""
    return {k: v["kept_pct"] / 100 for k, v in paper_values()["table2"]["nets"][net]["layers"].items()}


def error_bounds(net: str) -> dict[str, float]:
    """Absolute error bounds DeepSZ chose at the paper's expected loss: section 5.2.2."""
    return dict(paper_values()["error_bounds"]["nets"][net])


def expected_loss(net: str) -> float:
    """The accuracy budget of the paper's runs, in points of top-1: section 5.1."""
    return paper_values()["expected_loss"]["nets"][net]


def decode_ms(net: str) -> dict[str, float]:
    """DeepSZ's decode time (total) and, for AlexNet, its stage breakdown: Figure 7b."""
    fig7 = paper_values()["figure7"]
    return {**fig7["deepsz_decode_breakdown_ms"].get(net, {}), "total": fig7["decode_ms"][net]["deepsz"]}


def headline(net: str) -> dict:
    """Tables 2 and 3 for one LeNet: accuracies, fc sizes (kB), ratio and chosen bounds. The fc
    size is the layers' sum from Table 2 (Table 3's 1056 kB for LeNet-300-100 is a misprint)."""
    t3 = paper_values()["table3"]["nets"][net]
    layers = paper_values()["table2"]["nets"][net]["layers"]
    return {"top1_original": t3["original"]["top1"], "top1_decoded": t3["deepsz"]["top1"],
            "ratio": t3["deepsz"]["ratio"], "fc_kb": sum(v["original"] for v in layers.values()),
            "deepsz_kb": t3["deepsz"]["fc_size"], "error_bounds": error_bounds(net)}
