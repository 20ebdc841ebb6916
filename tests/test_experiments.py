"""The paper's tables and figures: synthetic layers, the paper's numbers, every script's render
path on small fabricated data, the shared command line, and the ImageNet prototxts."""

import numpy as np
import pytest

from deepsz_caffe.paper import synthetic
from deepsz_caffe.errors import ConfigError
from experiments import (common, fig2_sz_vs_zfp, fig4_index_lossless, table1_architecture,
                         table2_sizes, table3_accuracy)

SCRIPTS = [table1_architecture, table2_sizes, table3_accuracy, fig2_sz_vs_zfp, fig4_index_lossless]


def _layer_meta(name, shape, nnz, eb):
    size = int(np.prod(shape))
    return {"name": name, "shape": list(shape), "nnz": nnz, "n_entries": nnz + 3,
            "dense_bytes": 4 * size, "csr_bytes": 5 * (nnz + 3), "data_bytes": nnz // 3,
            "index_bytes": nnz // 2, "error_bound": eb, "index_codec": "zstd"}


def _sparse_layers(data_key):
    """Figure 2/4 style layers: one real LeNet-300-100 layer, one synthetic AlexNet layer."""
    def layer(name, n):
        if data_key == "fig2":
            sizes = {c: {"0.01": n // 5, "0.001": n // 2, "0.0001": n} for c in ("sz2", "zfp", "sz3")}
            return {"name": name, "n_values": n, "raw_bytes": 4 * n, "bytes": sizes}
        return {"name": name, "nnz": n, "n_entries": n + 2,
                "bytes": {"gzip": n // 2, "zstd": n // 3, "blosc": n // 3 + 1}}
    return {"lenet300": {"source": "real fc blobs of x", "synthetic": False,
                         "layers": [layer("ip1", 18816)]},
            "alexnet": {"source": common.SYNTHETIC_LABEL, "synthetic": True,
                        "layers": [layer("fc6", 3397386), layer("fc8", 1024000)]}}


FABRICATED = {
    "table1_architecture": {
        "machine": "test cpu", "caffe": "BVLC Caffe, CPU build", "load_average": 0.5,
        "nets": {
            "lenet300": {"deploy": "d", "conv_layers": 0, "fc_layers": 3,
                         "fc_shapes": {"ip1": [300, 784], "ip2": [100, 300], "ip3": [10, 100]},
                         "total_bytes": 1066444, "fc_bytes": 1066440, "fc_share_pct": 99.9,
                         "timings": [{"batch": 64, "repeats": 5, "conv_fwd_ms": 0.0, "fc_fwd_ms": 0.2}]},
            "alexnet": {"deploy": "d", "conv_layers": 5, "fc_layers": 3,
                        "fc_shapes": {"fc6": [4096, 9216], "fc7": [4096, 4096], "fc8": [1000, 4096]},
                        "total_bytes": 243860896, "fc_bytes": 234524576, "fc_share_pct": 96.2,
                        "timings": [
                            {"batch": 1, "repeats": 5, "conv_fwd_ms": 12.0, "fc_fwd_ms": 13.0},
                            {"batch": 10, "repeats": 5, "conv_fwd_ms": 117.0, "fc_fwd_ms": 27.0}]},
        },
    },
    "table2_sizes": {"nets": {
        "lenet300": {"available": True, "synthetic": False, "source": "measured",
                     "layers": [_layer_meta("ip1", (300, 784), 18816, 0.03),
                                _layer_meta("ip2", (100, 300), 2700, 0.07)],
                     "synthetic_check": [_layer_meta("ip1", (300, 784), 18816, 0.03)]},
        "lenet5": {"available": False, "how_to_run": "deepsz reproduce --net lenet5"},
        "alexnet": {"available": True, "synthetic": True, "source": common.SYNTHETIC_LABEL,
                    "layers": [_layer_meta("fc6", (4096, 9216), 3397386, 0.007)]},
    }},
    "table3_accuracy": {"nets": {
        "lenet300": {"available": True, "top1_original": 98.16, "top1_pruned": 98.14,
                     "top1_decoded": 97.98, "top5_original": None, "top5_pruned": None,
                     "top5_decoded": None, "fc_weight_bytes": 1064800, "fc_compressed_bytes": 18557,
                     "ratio": 57.4, "expected_loss": 0.2, "actual_loss": 0.16,
                     "error_bounds": {"ip1": 0.03, "ip2": 0.07, "ip3": 0.1}},
        "alexnet": {"available": False, "how_to_run": common.HOW_TO_RUN["alexnet"]},
        "vgg16": {"available": True, "top1_original": None, "top1_pruned": 68.0,
                  "top1_decoded": 67.8, "top5_original": None, "top5_pruned": None,
                  "top5_decoded": None, "fc_weight_bytes": 494452736,
                  "fc_compressed_bytes": 4300000, "ratio": 115.0, "expected_loss": 0.4,
                  "actual_loss": 0.2, "error_bounds": {"fc6": 0.01}},
    }},
    "fig2_sz_vs_zfp": {"error_bounds": [0.01, 0.001, 0.0001], "nets": _sparse_layers("fig2")},
    "fig4_index_lossless": {"codecs": ["gzip", "zstd", "blosc"], "nets": _sparse_layers("fig4")},
}
OUTPUTS = {
    "table1_architecture": ["table1_architecture.md"],
    "table2_sizes": ["table2_sizes.md"],
    "table3_accuracy": ["table3_accuracy.md"],
    "fig2_sz_vs_zfp": ["fig2_sz_vs_zfp.png", "fig2_sz_vs_zfp.pdf", "fig2_sz_vs_zfp.md"],
    "fig4_index_lossless": ["fig4_index_lossless.png", "fig4_index_lossless.pdf",
                            "fig4_index_lossless.md"],
}


def _name(module) -> str:
    return module.__name__.rsplit(".", 1)[1]


@pytest.mark.parametrize("shape,kept", [((300, 784), 0.08), ((10, 100), 0.26), ((7, 3, 5), 0.5),
                                        ((1000, 40), 1.0)])
def test_pruned_layer_keeps_exactly_round_kept_size(shape, kept):
    w = synthetic.pruned_layer(shape, kept, seed=3)
    assert w.dtype == np.float32 and w.shape == shape
    assert np.count_nonzero(w) == round(kept * w.size)
    kept_min = np.abs(w[w != 0]).min()
    assert np.all(np.abs(w[w == 0]) <= kept_min)  # magnitude pruning: no kept weight is smaller


def test_pruned_layer_is_deterministic_per_seed():
    a = synthetic.pruned_layer((100, 300), 0.09, seed=1)
    assert np.array_equal(a, synthetic.pruned_layer((100, 300), 0.09, seed=1))
    assert not np.array_equal(a, synthetic.pruned_layer((100, 300), 0.09, seed=2))
    dense = synthetic.pruned_layer((100, 300), 1.0, seed=1)
    assert np.std(dense) == pytest.approx(1 / np.sqrt(300), rel=0.05)
    assert np.abs(synthetic.pruned_layer((10, 10), 1.0, seed=1, std=0.01)).max() < 0.06


def test_pruned_layer_rejects_bad_fractions():
    for kept in (0.0, 1.5, -0.1):
        with pytest.raises(ConfigError):
            synthetic.pruned_layer((10, 10), kept, seed=0)


@pytest.mark.parametrize("module", SCRIPTS, ids=_name)
def test_render_from_fabricated_data(module, render_check):
    name = _name(module)
    render_check(module, FABRICATED[name], OUTPUTS[name])


@pytest.mark.parametrize("module", SCRIPTS, ids=_name)
def test_render_only_without_data_is_a_clear_error(module, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        module.main(["--render-only", "--results", str(tmp_path), "--figures", str(tmp_path / "f")])
    assert e.value.code != 0
    assert f"{_name(module)}.json does not exist" in str(e.value.code)
    assert "without --render-only" in str(e.value.code)


def test_render_only_redraws_from_saved_data(tmp_path, capsys):
    common.save_json(common.data_path("table3_accuracy", tmp_path), FABRICATED["table3_accuracy"])
    table3_accuracy.main(["--render-only", "--results", str(tmp_path), "--figures", str(tmp_path / "f")])
    text = (tmp_path / "f" / "table3_accuracy.md").read_text()
    assert "97.98%" in text and "needs ImageNet" in text and "deepsz compress" in text


def test_table3_compute_reads_summaries_and_says_what_to_run(tmp_path, capsys):
    (tmp_path / "lenet300").mkdir()
    summary = {k: FABRICATED["table3_accuracy"]["nets"]["lenet300"][k] for k in (
        "top1_original", "top1_pruned", "top1_decoded", "fc_weight_bytes", "fc_compressed_bytes",
        "ratio", "expected_loss", "actual_loss", "error_bounds")}
    common.save_json(tmp_path / "lenet300" / "summary.json", summary)
    table3_accuracy.main(["--results", str(tmp_path), "--figures", str(tmp_path / "f")])
    data = common.load_json(common.data_path("table3_accuracy", tmp_path))
    assert data["nets"]["lenet300"]["top1_decoded"] == 97.98
    assert not data["nets"]["lenet5"]["available"]
    assert "deepsz reproduce --net lenet5" in capsys.readouterr().out


def test_table1_measures_lenet300_with_caffe():
    m = table1_architecture.measure("lenet300")
    assert (m["conv_layers"], m["fc_layers"]) == (0, 3)
    assert m["fc_shapes"]["ip1"] == [300, 784]
    assert m["total_bytes"] == 4 * (266200 + 410 + 1)  # weights + biases + the input Scale
    assert m["timings"][0]["fc_fwd_ms"] > 0 and m["timings"][0]["conv_fwd_ms"] == 0


@pytest.mark.parametrize("net,fc6,crop", [("alexnet", (4096, 9216), 227), ("vgg16", (4096, 25088), 224)])
def test_imagenet_prototxts_load_in_caffe(net, fc6, crop):
    import caffe

    from deepsz_caffe.caffe.prototxt import read_prototxt, test_layers
    from deepsz_caffe.paper.values import PROTOTXT

    caffe.set_mode_cpu()
    deploy = caffe.Net(str(PROTOTXT / net / "deploy.prototxt"), caffe.TEST)
    shapes = {k: v[0].data.shape for k, v in deploy.params.items() if k.startswith("fc")}
    assert shapes == {"fc6": fc6, "fc7": (4096, 4096), "fc8": (1000, 4096)}
    assert shapes == synthetic.FC_SHAPES[net]
    train_val = read_prototxt(PROTOTXT / net / "train_val.prototxt")
    (data,) = test_layers(train_val, "Data")
    assert data.data_param.source == "data/ilsvrc12_val_lmdb" and data.data_param.batch_size == 50
    assert data.transform_param.crop_size == crop and not data.transform_param.mirror
    assert deploy.blobs["data"].data.shape[2:] == (crop, crop)
    assert list(data.transform_param.mean_value) == [104, 117, 123]
    assert sorted(a.accuracy_param.top_k for a in test_layers(train_val, "Accuracy")) == [1, 5]
