"""caffe/upgrade.py: legacy V1 prototxts read as Caffe reads them. Each paper net, written back in
the V1 format, upgrades to exactly the NetParameter it came from; Caffe builds the same net from
the V1 text as from ours, with the same outputs; every command then works on a V1 prototxt."""
import subprocess
import sys

import numpy as np
import pytest
from google.protobuf import text_format

from deepsz_caffe.caffe.io import caffe_pb2
from deepsz_caffe.caffe.prototxt import read_prototxt, set_data_sources, write_prototxt
from deepsz_caffe.caffe.upgrade import V1_TYPES, upgrade_v1
from deepsz_caffe.errors import CaffeIOError
from deepsz_caffe.paper.values import PROTOTXT

NETS = {"lenet300": "train_test", "lenet5": "train_test", "alexnet": "train_val", "vgg16": "train_val"}


def to_v1(net):
    """The V1 form of a modern NetParameter (the inverse of upgrade_v1, for what V1 can say)."""
    pb = caffe_pb2()
    enum = {name: number for number, name in
            ((pb.V1LayerParameter.LayerType.Value(k), v) for k, v in V1_TYPES.items())}
    v1 = pb.NetParameter()
    v1.CopyFrom(net)
    v1.ClearField("layer")
    for layer in net.layer:
        old = v1.layers.add()
        for field, value in layer.ListFields():
            if field.name in ("type", "param", "phase"):
                continue
            if hasattr(value, "extend"):
                getattr(old, field.name).extend(value)
            elif field.message_type:
                getattr(old, field.name).CopyFrom(value)
            else:
                setattr(old, field.name, value)
        old.type = enum[layer.type]
        for spec in layer.param:
            if spec.name:
                old.param.append(spec.name)
            old.blobs_lr.append(spec.lr_mult)
            old.weight_decay.append(spec.decay_mult)
    return v1


@pytest.mark.parametrize("net", NETS)
def test_a_paper_net_in_v1_form_upgrades_to_itself(net, tmp_path):
    modern = read_prototxt(PROTOTXT / net / f"{NETS[net]}.prototxt")
    for layer in modern.layer:  # V1 writes every blob's lr and decay: make the defaults explicit
        for spec in layer.param:
            spec.lr_mult, spec.decay_mult = spec.lr_mult, spec.decay_mult
    path = tmp_path / "v1.prototxt"
    path.write_text(text_format.MessageToString(to_v1(modern)))
    assert "layers {" in path.read_text() and "type: INNER_PRODUCT" in path.read_text()
    assert read_prototxt(path) == modern


def test_every_v1_layer_type_has_its_modern_name():
    """Each V1 enum maps to a type this Caffe registers (its own list), but for NONE and the two
    image-file layers this build has no OpenCV for."""
    import caffe

    enum = caffe_pb2().V1LayerParameter.LayerType
    assert set(V1_TYPES) == set(enum.keys())
    unregistered = set(V1_TYPES.values()) - set(caffe.layer_type_list())
    assert unregistered == {"", "ImageData", "WindowData"}


def test_per_blob_v1_settings_become_param_specs():
    net = text_format.Parse("""layers { name: "ip" type: INNER_PRODUCT bottom: "x" top: "y"
        param: "shared_w" blobs_lr: 1 blobs_lr: 2 weight_decay: 1 weight_decay: 0
        blob_share_mode: PERMISSIVE include { phase: TEST } inner_product_param { num_output: 3 } }""",
                            caffe_pb2().NetParameter())
    assert upgrade_v1(net, "x") and not len(net.layers)
    (layer,) = net.layer
    assert (layer.type, layer.include[0].phase, layer.inner_product_param.num_output) == \
        ("InnerProduct", 1, 3)
    assert [(p.name, p.lr_mult, p.decay_mult, p.share_mode) for p in layer.param] == \
        [("shared_w", 1, 1, 1), ("", 2, 0, 0)]


@pytest.mark.parametrize("text, message", [
    ('layer { name: "a" type: "ReLU" } layers { name: "b" type: RELU }', "mixes `layer` and legacy V1"),
    ('layers { layer { name: "a" type: "relu" } }', "layer 'a' is in the V0 format"),
])
def test_what_caffe_refuses_is_one_clear_error(text, message, tmp_path):
    path = tmp_path / "net.prototxt"
    path.write_text(text)
    with pytest.raises(CaffeIOError, match=message):
        read_prototxt(path)


@pytest.mark.parametrize("net", ["lenet300", "lenet5"])
def test_caffe_builds_the_same_net_from_the_v1_text_as_from_the_upgraded_one(net, mnist_small, tmp_path):
    import caffe

    modern = read_prototxt(PROTOTXT / net / "train_test.prototxt")
    set_data_sources(modern, {"TRAIN": mnist_small["TRAIN"], "TEST": mnist_small["TEST"]})
    v1 = tmp_path / "v1.prototxt"
    v1.write_text(text_format.MessageToString(to_v1(modern)))
    ours = write_prototxt(read_prototxt(v1), tmp_path / "upgraded.prototxt")
    caffe.set_mode_cpu()
    theirs, upgraded = caffe.Net(str(v1), caffe.TEST), caffe.Net(str(ours), caffe.TEST)
    assert [(n, layer.type) for n, layer in zip(theirs._layer_names, theirs.layers)] == \
        [(n, layer.type) for n, layer in zip(upgraded._layer_names, upgraded.layers)]
    weights = tmp_path / "w.caffemodel"
    theirs.save(str(weights))
    upgraded.copy_from(str(weights))
    a, b = theirs.forward(), upgraded.forward()
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_deepsz_test_reads_a_v1_prototxt(lenet300, tmp_path):
    v1 = tmp_path / "v1.prototxt"
    v1.write_text(text_format.MessageToString(to_v1(read_prototxt(lenet300["model"]))))
    outs = [subprocess.run([sys.executable, "-m", "deepsz_caffe.cli", "test", "-model", str(model),
                            "-weights", str(lenet300["pruned"])], capture_output=True, text=True)
            for model in (lenet300["model"], v1)]
    assert [r.returncode for r in outs] == [0, 0], outs[1].stderr
    assert "top-1" in outs[0].stdout and outs[0].stdout == outs[1].stdout
    assert "legacy V1 layers upgraded" in outs[1].stderr
