"""The comparison harness (baselines/compare.py) and `deepsz compare`: a method written OUTSIDE
the package, registered by import path, gets the same Caffe-measured rows as the built-in ones
on a small trained and pruned LeNet-300-100 (the `lenet300` fixture, 1000 test images)."""
import json
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from deepsz_caffe.baselines import builtin, compare, nncodec
from deepsz_caffe.baselines.method import load_method
from deepsz_caffe.caffe.wire import read_caffemodel
from deepsz_caffe.cli import main
from deepsz_caffe.errors import CodecError
from experiments import fig_compare
from helpers import nncodec_skip

EXAMPLES = Path(__file__).resolve().parents[1] / "docs" / "examples"
# The README's plug-in is docs/examples/my_method.py, run here as a user would: from outside the
# package, by import path. Broken is a user's mistake built on it.
BROKEN = textwrap.dedent('''
    from my_method import Toy

    class Broken(Toy):
        name = "broken"

        def decode(self, blob):
            return {n: v[:1] for n, v in super().decode(blob).items()}
''')


@pytest.fixture
def toy(tmp_path, monkeypatch):
    (tmp_path / "toy_plugin.py").write_text(BROKEN)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.syspath_prepend(str(EXAMPLES))
    yield "my_method"
    sys.modules.pop("my_method", None)
    sys.modules.pop("toy_plugin", None)


def _fc(weights) -> dict:
    blobs = read_caffemodel(weights)[0]
    return {n: blobs[n][0] for n in ("ip1", "ip2", "ip3")}


def test_select_and_nearest_ratio():
    pts = [{"bytes": b, "loss": loss, "ratio": 1000 / b} for b, loss in
           [(100, 0.5), (120, 0.1), (150, 0.25), (200, 0.0), (110, 0.2)]]
    assert compare.select(pts, 0.2) == 4            # 0.2 is within the budget
    assert compare.select(pts, 0.05) == 3
    assert compare.select(pts, -1) is None
    assert compare.select_stable(pts, 0.2) == 3     # 150 B measures 0.25: only 200 B is stable
    assert compare.select_stable(pts, 0.3) == 4
    assert compare.select_stable(pts, -1) is None
    assert compare.nearest_ratio({"points": pts}, 8.5)["bytes"] == 120
    assert compare.nearest_ratio({"skipped": "why"}, 8.5) is None


def test_a_method_from_outside_the_package_gets_its_rows(lenet300, toy, tmp_path):
    methods = compare.load_methods([f"{toy}:Toy", "deep-compression"])
    record = compare.compare(lenet300["model"], lenet300["pruned"], methods, net="lenet300",
                             results=tmp_path, repeat=1, log=lambda _m: None)
    assert record["test_images"] == 1000
    assert record["fc_weight_bytes"] == 4 * (784 * 300 + 300 * 100 + 100 * 10)
    layers = _fc(lenet300["pruned"])
    entry = record["methods"]["toy"]
    assert [p["target"] for p in entry["points"]] == [2, 4, 8] and entry["knob"] == "bits"
    user = load_method(f"{toy}:Toy")
    for p in entry["points"]:
        assert p["bytes"] == len(user.encode(layers, p["target"]))     # file bytes, not estimates
        assert p["ratio"] == pytest.approx(record["fc_weight_bytes"] / p["bytes"])
        assert p["loss"] == pytest.approx(record["top1_pruned"] - p["top1"])
    assert entry["points"][0]["loss"] > entry["points"][2]["loss"]      # 2 bits hurt, 8 do not
    assert entry["selected"] == compare.select(entry["points"], 0.2) == entry["chosen"]
    assert entry["stable"] == compare.select_stable(entry["points"], 0.2)
    assert entry["operating_point"] is None
    assert set(entry["layer_bytes"]) == {"ip1", "ip2", "ip3"}
    assert entry["timing"]["encode_seconds"] > 0 and entry["timing"]["decode_seconds"] > 0
    dc = record["methods"]["deep-compression"]
    assert len(dc["points"]) == 7 and dc["points"][3]["setting"] == "bits=5, index_bits=5"
    assert sum(dc["layer_bytes"].values()) < compare.chosen_point(dc)["bytes"]


def test_cli_compare_prints_the_table_and_writes_json_and_figure(lenet300, toy, tmp_path, capsys,
                                                                 render_check):
    out = tmp_path / "compare" / "lenet300.json"      # the default: RESULTS/compare/NET.json
    rc = main(["compare", "--net", "lenet300", "--model", str(lenet300["model"]), "--weights",
               str(lenet300["pruned"]), "--methods", "deepsz,deep-compression", "--method",
               f"{toy}:Toy", "--results", str(tmp_path), "--figures", str(tmp_path / "fig"),
               "--repeat", "1"])
    text = capsys.readouterr().out
    assert rc == 0
    record = json.loads(out.read_text())
    assert list(record["methods"]) == ["deepsz", "deep-compression", "toy"]
    deepsz = record["methods"]["deepsz"]
    assert compare.chosen_point(deepsz)["target"] == 1.0 and "paper's bounds" in deepsz["source"]
    assert "| toy | bits " in text and "stable pick" in text
    assert "| DeepSZ (paper preset) | ip1 0.02, ip2 0.03, ip3 0.04 |" in text
    assert (tmp_path / "fig" / "compare_lenet300.png").stat().st_size > 10_000
    assert (tmp_path / "fig" / "compare_lenet300.md").read_text() in text
    # the experiment script draws the same record (both LeNets in one figure when both exist)
    md = render_check(fig_compare, {"nets": {"lenet300": record}},
                      ["fig_compare.md", "fig_compare.png", "fig_compare.pdf"])
    assert "| toy | bits " in md


def test_cli_compare_errors_are_one_line(lenet300, toy, tmp_path, capsys):
    base = ["compare", "--results", str(tmp_path), "--figures", str(tmp_path), "--repeat", "1"]
    assert main([*base, "--net", "lenet5", "--methods", "deepsz"]) == 1
    assert capsys.readouterr().err.strip() == (
        f"deepsz: error: {tmp_path}/lenet5/prototxt/train_test.prototxt not found: run `deepsz "
        f"reproduce --net lenet5 --results {tmp_path}` first, or give --model and --weights")
    model = ["--model", str(lenet300["model"]), "--weights", str(lenet300["pruned"])]
    assert main([*base, *model, "--methods", "toy_plugin:Broken"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("deepsz: error: broken: layer 'ip1' decoded as (1, 784)") and "\n" not in err
    assert main([*base, *model, "--methods", "toy,toy"]) == 1
    assert "unknown method 'toy'" in capsys.readouterr().err
    assert main([*base, "--model", str(lenet300["model"])]) == 1
    assert "both --model and --weights" in capsys.readouterr().err


def test_decoded_layers_are_checked():
    m = load_method("deep-compression")
    layers = {"ip1": np.zeros((2, 3), np.float32)}
    with pytest.raises(CodecError, match="decode returned"):
        compare._checked(m, layers, {"ip9": np.zeros((2, 3))})
    with pytest.raises(CodecError, match="finite: False"):
        compare._checked(m, layers, {"ip1": np.full((2, 3), np.nan)})
    assert compare._checked(m, layers, {"ip1": np.zeros((2, 3), np.float64)})["ip1"].dtype == np.float32


class FewQps(builtin.NNCodec):
    qps = (-12, -20)


@nncodec_skip()
def test_nncodec_in_the_harness(lenet300, tmp_path):
    record = compare.compare(lenet300["model"], lenet300["pruned"], [FewQps()], net="lenet300",
                             results=tmp_path, repeat=1, log=lambda _m: None)
    entry = record["methods"]["nncodec"]
    assert entry["version"] == "nncodec 2.1.3"
    coarse, fine = entry["points"]
    assert coarse["bytes"] < fine["bytes"] and coarse["max_abs_error"] > fine["max_abs_error"]
    assert fine["codec_seconds"]["encode"] > 0 and fine["codec_seconds"]["decode"] > 0
    assert nncodec.step_size(-20) / 2 < fine["max_abs_error"] <= 2 * nncodec.step_size(-20)


def test_nncodec_is_skipped_with_its_reason(lenet300, tmp_path, monkeypatch):
    monkeypatch.setenv(nncodec.ENV_VAR, "/nonexistent/python")
    record = compare.compare(lenet300["model"], lenet300["pruned"], [FewQps()], net="lenet300",
                             results=tmp_path, repeat=1, log=lambda _m: None)
    assert record["methods"]["nncodec"]["skipped"] == builtin.NNCODEC_MISSING


# ---- a plug-in cannot break the harness (issue 23, finding 10) --------------------------------

def test_every_call_into_a_method_is_guarded():
    from deepsz_caffe.baselines.method import Method, call

    m = Method()
    m.name = "mine"
    with pytest.raises(CodecError, match=r"method mine: encode\(x\) raised RuntimeError: bug"):
        call(m, "encode(x)", lambda: (_ for _ in ()).throw(RuntimeError("bug\nsecond line")))
    with pytest.raises(CodecError, match=r"decode raised SystemExit\(0\)"):
        call(m, "decode", lambda: (_ for _ in ()).throw(SystemExit(0)))
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C inside a plug-in is still an interrupt
        call(m, "decode", lambda: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(CodecError) as info:
        call(m, "sweep()", lambda: (_ for _ in ()).throw(ValueError("a\nb")))
    assert "\n" not in str(info.value)


def test_decoded_arrays_are_checked_after_the_float32_cast():
    from deepsz_caffe.baselines.method import Method

    m = Method()
    m.name = "mine"
    layers = {"ip1": np.ones((2, 3), np.float32)}
    assert compare._checked(m, layers, {"ip1": np.ones((2, 3))})["ip1"].dtype == np.float32
    for bad, why in ((np.full((2, 3), 1e300), "finite: False as float32"),  # finite only as float64
                     (np.full((2, 3), "1.5"), "not real numbers"),
                     (np.full((2, 3), object()), "not real numbers"),
                     (np.ones((3, 2)), r"\(3, 2\)"),
                     (np.full((2, 3), np.nan, np.float32), "finite: False as float32")):
        with pytest.raises(CodecError, match=why):
            compare._checked(m, layers, {"ip1": bad})
    with pytest.raises(CodecError, match="expected layers"):
        compare._checked(m, layers, {"ip1": layers["ip1"], 3: layers["ip1"]})


def test_methods_get_read_only_copies_of_the_reference_arrays():
    reference = np.arange(6, dtype=np.float32)
    view = compare._frozen({"ip1": reference})["ip1"]
    with pytest.raises(ValueError):
        view[0] = 7
    with pytest.raises(ValueError):
        view.setflags(write=True)
    view.base.setflags(write=True)  # forcing its way in changes only its own copy
    view.base[0] = 7
    assert reference[0] == 0 and np.array_equal(compare._frozen({"ip1": reference})["ip1"], reference)


def test_budget_and_repeats_are_finite_and_in_range():
    compare.check_budget(0.0, 1)
    for loss, repeat in ((float("nan"), 1), (float("inf"), 1), (-1, 1), (0.2, 0), (0.2, 10**20)):
        with pytest.raises(Exception, match="--max-loss|--repeat"):
            compare.check_budget(loss, repeat)


def test_report_sets_the_bounded_method_beside_nncodec():
    from deepsz_caffe.baselines import report

    def point(b, loss, **kw):
        return {"bytes": b, "ratio": 1000 / b, "loss": loss, "top1": 98 - loss, "setting": f"s{b}",
                "max_abs_error": 0.05, "pruned_made_nonzero": kw.pop("pz", 0), "encode_seconds": 1e-3,
                "decode_seconds": 1e-3, **kw}

    bounded = {"label": "DeepSZ (max preset)", "points": [point(120, 0.1, bound_held=True),
                                                        point(90, 0.2, bound_held=True)],
               "chosen": 0, "selected": 1, "stable": 0, "operating_point": 0, "layer_bytes": {"a": 100},
               "stream_bytes": {"a": {"positions": 60, "levels": 30, "side": 10, "lossy": "zquant"}}}
    rival = {"label": "NNCodec", "points": [point(100, 0.15, pz=7), point(150, 0.05, pz=3)], "chosen": 0,
             "stable": 1, "operating_point": None, "layer_bytes": {"a": 95}}
    record = {"net": "lenet300", "methods": {"deepsz-max": bounded, "nncodec": rival}}
    (row,) = report.challenge_rows({"lenet300": record})
    assert row[2].startswith("90 (11.1×, +0.20; s90)") and "BROKEN" not in row[2]
    assert row[3].startswith("120 (8.3×") and row[6:11] == ["1.200", "0.900", "0.800", "yes", "0 / 7"]
    rows = report.stream_rows(record["methods"], ["a"])
    assert rows == [["DeepSZ (max preset)", "60 / 30 / 10 (zquant)", "100"],
                    ["NNCodec", "95 (one stream)", "95"]]
    assert report._bound(point(1, 0)) == "0.05 (no bound)"
    assert "BOUND BROKEN" in report._bound(point(1, 0, bound_held=False))


def test_error_bounds_of_a_plugin_pass_the_one_bound_rule():
    from deepsz_caffe.baselines.method import Method

    m = Method()
    m.name = "mine"
    layers = {"ip1": np.ones((2, 3), np.float32)}
    compare._check_bounds(m, layers, {"ip1": 0.1})
    for bad in ({"ip1": float("nan")}, {"ip1": 0}, {"ip1": "q"}, {}, None, {"ip1": 1e400},
                {"ip1": 0.1, "ip2": 1.0}):
        with pytest.raises(CodecError, match="method mine|mine: error_bounds"):
            compare._check_bounds(m, layers, bad)
