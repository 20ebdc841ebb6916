"""Figures 3/5, 6, 7 and Tables 4, 5: every script's render path on small fabricated data, and
the pure pieces (Algorithm 1's feasible range, Figure 6's sampler, Table 4's ratios) on known
inputs; one real Caffe check of the probe the accuracy scripts share."""
import shutil

import numpy as np
import pytest

from deepsz_caffe.paper import synthetic
from experiments import (common, fig3_accuracy_vs_eb, fig6_linearity, fig7_time_breakdown,
                         table4_methods, table5_degradation)

SCRIPTS = [fig3_accuracy_vs_eb, fig6_linearity, fig7_time_breakdown, table4_methods, table5_degradation]
LENET5_TODO = {"available": False, "how_to_run": common.HOW_TO_RUN["lenet5"]}


def _points(drops: dict) -> list[dict]:
    return [{"eb": eb, "drop": d, "top1": 98.0 - d, "size": 1000} for eb, d in drops.items()]


# LeNet-300-100 as the paper describes it (section 5.2.2): ip1's 1e-1 distorts, so its range
# starts at 1e-2 and ends at 3e-2; no decade of ip3 distorts, and its range is [1e-2, 2e-1].
IP1 = _points({1e-3: 0.0, 1e-2: 0.05, 0.1: 12.0, 0.02: 0.1, 0.03: 0.3})
IP3 = _points({1e-3: 0.0, 1e-2: 0.0, 0.1: 0.05, **{m / 100: 0.02 for m in range(2, 10)}, 0.2: 0.4})

BOUNDS = [1e-4, 1e-3, 1e-2, 0.02, 0.03, 0.1, 0.2]


def _dc(nbytes):
    return {"bytes": nbytes, "params": {"bits": 5, "index_bits": 5}, "max_abs_error": 0.01}


def _wl(nbytes):
    return {"bytes": nbytes, "params": {"t_bits": 6, "value_bits": 3, "k": 3, "seed": 0},
            "max_abs_error": 0.05}


def _stages(method, phase, seconds):
    return {k: seconds for k in fig7_time_breakdown.STAGES[phase][method]}


def _fig7_net(synthetic_layers: bool) -> dict:
    methods = {m: {"encode": _stages(m, "encode", 0.5), "decode": _stages(m, "decode", 0.01)}
               for m in fig7_time_breakdown.NAMES}
    methods["deepsz"].update(assessment_points=12, error_bounds={"ip1": 0.03})
    if synthetic_layers:
        methods["deepsz"]["encode"]["tests"] = None
    return {"source": common.SYNTHETIC_LABEL if synthetic_layers else "real", "synthetic": synthetic_layers,
            "measured_run": None if synthetic_layers else "results/lenet5/compress.json",
            "methods": methods}


def _combo(expected, actual):
    return {"bounds": {"ip1": 0.02, "ip2": 0.03}, "layer_drops": {"ip1": expected / 2, "ip2": expected / 2},
            "expected": expected, "actual": actual}


def _table5_method(ratio, degradation, params):
    return {"ratio": ratio, "params": params, "top1": 98.0 - degradation, "degradation": degradation,
            "layers": []}


FABRICATED = {
    "fig3_accuracy_vs_eb": {
        "bounds": BOUNDS, "distortion": 0.1,
        "nets": {"lenet300": {
            "available": True, "base_top1": 98.0, "expected_loss": 0.2, "source": "test",
            "layers": {"ip1": {"top1": [98.0, 98.0, 97.95, 97.9, 97.7, 86.0, 10.0], "assessment": IP1,
                               "chosen": 0.02},
                       "ip3": {"top1": [98.0] * 6 + [97.6], "assessment": IP3, "chosen": 0.1}}},
            "lenet5": LENET5_TODO}},
    "fig6_linearity": {
        "linear_below_pct": 2.0,
        "nets": {"lenet300": {"available": True, "base_top1": 98.0, "seed": 0,
                              "candidates": {"ip1": [0.01, 0.02], "ip2": [0.01, 0.03]},
                              "combinations": [_combo(x, 1.1 * x) for x in (0.1, 0.5, 1.0, 1.5, 3.0, 8.0)]},
                 "lenet5": LENET5_TODO}},
    "fig7_time_breakdown": {"repeat": 1, "load_average": 0.2,
                            "nets": {"lenet5": _fig7_net(False), "alexnet": _fig7_net(True)},
                            "scale": {"alexnet": {
                                "images": 1000, "wall_seconds": 420.0, "peak_rss_bytes": 3 << 30,
                                "rounds": 1, "expected_loss": 5.0, "points": 24,
                                "extrapolated_seconds_at_50000": 15000.0,
                                "extrapolated_seconds_at_50000_paper_tests": 18000.0,
                                "cpu": "Some CPU", "gpu": None, "synthetic": True}}},
    "table4_methods": {"nets": {
        "lenet300": {"source": "real", "synthetic": False, "deepsz_source": "summary.json", "layers": [
            {"name": "ip1", "shape": [300, 784], "nnz": 18816, "dense_bytes": 940800,
             "deepsz": {"bytes": 15000, "error_bound": 0.03}, "deep-compression": _dc(22000),
             "weightless": _wl(17000)},
            {"name": "ip3", "shape": [10, 100], "nnz": 260, "dense_bytes": 4000,
             "deepsz": {"bytes": 500, "error_bound": 0.1}, "deep-compression": _dc(480),
             "weightless": _wl(350)}]},
        "vgg16": {"source": common.SYNTHETIC_LABEL, "synthetic": True, "deepsz_source": "encode_layer",
                  "layers": [{"name": "fc8", "shape": [1000, 4096], "nnz": 983040,
                              "dense_bytes": 16384000, "deepsz": {"bytes": 830000, "error_bound": 0.005},
                              "deep-compression": _dc(950000), "weightless": _wl(900000)}]}}},
    "table5_degradation": {"nets": {
        "lenet300": {"available": True, "top1_pruned": 98.14, "summary_top1_pruned": 98.14,
                     "summary_top1_decoded": 97.98, "largest": "ip1", "methods": {
                         "deepsz": _table5_method(57.4, 0.16, {"ip1": 0.03, "ip2": 0.07}),
                         "deep-compression_5": _table5_method(40.0, 0.01, {"bits": 5, "index_bits": 5}),
                         "deep-compression_2": _table5_method(54.6, 1.2, {"bits": 2, "index_bits": 5}),
                         "weightless": _table5_method(52.1, 26.6, {"t_bits": 6, "value_bits": 3}),
                         "weightless_largest": _table5_method(7.5, 1.5, {"t_bits": 6, "value_bits": 3})}},
        "lenet5": LENET5_TODO}},
}
FIGURES = {"fig3_accuracy_vs_eb", "fig6_linearity", "fig7_time_breakdown"}


def _name(module) -> str:
    return module.__name__.rsplit(".", 1)[1]


@pytest.mark.parametrize("module", SCRIPTS, ids=_name)
def test_render_from_fabricated_data(module, render_check):
    name = _name(module)
    expected = [f"{name}.{ext}" for ext in (("png", "pdf", "md") if name in FIGURES else ("md",))]
    text = render_check(module, FABRICATED[name], expected)
    if any(not e.get("available", True) for e in FABRICATED[name]["nets"].values()):
        assert "deepsz reproduce --net lenet5" in text


@pytest.mark.parametrize("module", SCRIPTS, ids=_name)
def test_render_only_without_data_is_a_clear_error(module, tmp_path):
    with pytest.raises(SystemExit) as e:
        module.main(["--render-only", "--results", str(tmp_path), "--figures", str(tmp_path / "f")])
    assert f"{_name(module)}.json does not exist" in str(e.value.code)


def test_rendered_numbers_come_from_the_data_and_the_paper(tmp_path):
    table4_methods.render(FABRICATED["table4_methods"], tmp_path)
    text = (tmp_path / "table4_methods.md").read_text()
    assert "62.7 (61.81)" in text          # ip1: 940800 / 15000, beside Table 4's DeepSZ ratio
    assert "37.97× (120 KB / 3.16 KB)" in text and "1.6 KB" in text
    fig6_linearity.render(FABRICATED["fig6_linearity"], tmp_path)
    assert "| LeNet-300-100 | 4 | expected < 2 |" in (tmp_path / "fig6_linearity.md").read_text()
    fig3_accuracy_vs_eb.render(FABRICATED["fig3_accuracy_vs_eb"], tmp_path)
    assert "[0.01, 0.03] ([0.01, 0.03])" in (tmp_path / "fig3_accuracy_vs_eb.md").read_text()


def test_combination_sampler_is_deterministic_and_distinct():
    cands = {"ip1": [0.01, 0.02, 0.03], "ip2": [0.01, 0.05, 0.09, 0.1], "ip3": [0.04, 0.2]}
    a = fig6_linearity.sample_combinations(cands, 10, seed=3)
    assert a == fig6_linearity.sample_combinations(cands, 10, seed=3)
    assert a != fig6_linearity.sample_combinations(cands, 10, seed=4)
    assert len({tuple(c.items()) for c in a}) == 10
    assert all(c[layer] in cands[layer] for c in a for layer in cands)
    every = fig6_linearity.sample_combinations(cands, 40, seed=0)  # 24 exist: all of them
    assert len({tuple(c.items()) for c in every}) == 24


def test_table4_ratios_include_the_papers_weightless_accounting():
    r = table4_methods.ratios(FABRICATED["table4_methods"]["nets"]["lenet300"]["layers"], "weightless")
    assert r["ip1"] == pytest.approx(940800 / 17000)
    assert r["overall"] == pytest.approx(944800 / 17350)
    assert r["largest_only"] == pytest.approx(944800 / (17000 + 4000))


@pytest.mark.parametrize("method", ["deep-compression", "weightless"])
def test_fig7_baseline_stages_add_up_to_the_measured_totals(method, monkeypatch):
    """Each layer's measured encode/decode time is split into stages that sum back to it (timings
    fixed here so the sums are exact): k-means + the rest = encode; Huffman + rebuild = decode."""
    layers = {"ip1": synthetic.pruned_layer((60, 200), 0.09, seed=1),
              "ip2": synthetic.pruned_layer((100, 300), 0.09, seed=2)}
    real = fig7_time_breakdown.evaluate_method
    monkeypatch.setattr(fig7_time_breakdown, "evaluate_method",
                        lambda *a: {**real(*a), "encode_seconds": 2.0, "decode_seconds": 0.5})
    fixed = {"kmeans_1d": 0.3, "huffman_decode": 0.1}
    monkeypatch.setattr(fig7_time_breakdown, "best", lambda _r, fn, *a: (fn(*a), fixed[fn.__name__]))
    r = fig7_time_breakdown._baseline(method, layers, repeat=1)
    assert list(r["encode"]) == list(fig7_time_breakdown.STAGES["encode"][method])
    assert list(r["decode"]) == list(fig7_time_breakdown.STAGES["decode"][method])
    assert sum(r["encode"].values()) == pytest.approx(2 * 2.0)
    assert sum(r["decode"].values()) == pytest.approx(2 * 0.5)
    assert r["encode"]["kmeans"] == pytest.approx(2 * 0.3)
    if method == "deep-compression":  # two Huffman streams (codes, gaps) per layer
        assert r["decode"] == pytest.approx({"huffman": 2 * 2 * 0.1, "rebuild": 2 * (0.5 - 0.2)})


def test_layer_probe_matches_the_full_pass(tmp_path, lenet300, monkeypatch):
    """On the session's small trained LeNet-300-100, laid out as `deepsz reproduce` does."""
    root = tmp_path / "results" / "lenet300"
    (root / "prototxt").mkdir(parents=True)
    shutil.copy(lenet300["model"], root / "prototxt" / "train_test.prototxt")
    shutil.copy(lenet300["pruned"], root / "pruned.caffemodel")
    probe = common.probe_for("lenet300", tmp_path / "results", tmp_path / "work")
    assert probe.top1_with({"ip2": probe.weights["ip2"]}) == probe.base_top1
    assert probe.runner("ip2") is not probe.phase  # a suffix phase that agreed with the full pass
    wrecked = {"ip1": np.zeros_like(probe.weights["ip1"])}
    assert probe.top1_with(wrecked) < 20  # every input maps to the bias: near chance
    assert np.array_equal(probe.runner("ip1").net.params["ip1"][0].data, probe.weights["ip1"])  # restored
    first = probe.top1({"ip3": 1e-4})
    assert first == probe.top1_with({"ip3": probe.reconstruct("ip3", 1e-4)})  # measured again: same
    monkeypatch.setattr(probe, "top1_with", lambda _w: pytest.fail("a cached bound was measured again"))
    assert probe.top1({"ip3": 1e-4}) == first


def test_fig7_scale_rows_come_from_the_benchmark_json(tmp_path):
    fig7_time_breakdown.render(FABRICATED["fig7_time_breakdown"], tmp_path)
    text = (tmp_path / "fig7_time_breakdown.md").read_text()
    row = next(ln for ln in text.splitlines() if ln.startswith("| AlexNet (synthetic) | 1,000"))
    assert "7.0 min" in row and "3.00 GiB" in row and "250 min" in row and "300 min" in row
    assert "8 min" in row  # the paper's DeepSZ encode time for AlexNet, from paper_values.json


@pytest.mark.parametrize("name", ["table4_methods", "table5_degradation"])
def test_records_with_the_older_method_id_render_alike(tmp_path, name):
    """Committed results spell Deep Compression's id "deep_compression"; they still render."""
    import json

    module = {"table4_methods": table4_methods, "table5_degradation": table5_degradation}[name]
    legacy = json.dumps(FABRICATED[name]).replace('"deep-compression', '"deep_compression')
    assert '"deep_compression' in legacy
    (tmp_path / "old.json").write_text(legacy)
    module.render(FABRICATED[name], tmp_path / "new")
    module.render(common.load_json(tmp_path / "old.json"), tmp_path / "old")
    assert (tmp_path / "old" / f"{name}.md").read_text() == (tmp_path / "new" / f"{name}.md").read_text()
