"""The foundation: real pycaffe builds nets, saves/loads weights, reads LMDBs and trains."""
import caffe
import numpy as np

from deepsz_caffe.caffe import lmdb as lmdb_io
from deepsz_caffe.paper import mnist

SMALL_NET = """
name: "small"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 2 dim: 1 dim: 12 dim: 12 } } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 4 kernel_size: 3 weight_filler { type: "xavier" } } }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
        pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "ip1" type: "InnerProduct" bottom: "pool1" top: "ip1"
        inner_product_param { num_output: 10 weight_filler { type: "xavier" } } }
layer { name: "relu1" type: "ReLU" bottom: "ip1" top: "ip1" }
layer { name: "prob" type: "Softmax" bottom: "ip1" top: "prob" }
"""


def _data_net(lmdb_path, batch):
    return f"""
name: "lmdbnet"
layer {{ name: "data" type: "Data" top: "data" top: "label" include {{ phase: TEST }}
        transform_param {{ scale: 0.00390625 }}
        data_param {{ source: "{lmdb_path}" batch_size: {batch} backend: LMDB }} }}
layer {{ name: "data" type: "Data" top: "data" top: "label" include {{ phase: TRAIN }}
        transform_param {{ scale: 0.00390625 }}
        data_param {{ source: "{lmdb_path}" batch_size: {batch} backend: LMDB }} }}
layer {{ name: "ip" type: "InnerProduct" bottom: "data" top: "ip"
        inner_product_param {{ num_output: 10 weight_filler {{ type: "xavier" }} }} }}
layer {{ name: "accuracy" type: "Accuracy" bottom: "ip" bottom: "label" top: "accuracy"
        include {{ phase: TEST }} }}
layer {{ name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss" }}
"""


def test_net_forward_edit_save_reload_exact(tmp_path):
    caffe.set_mode_cpu()
    proto = tmp_path / "small.prototxt"
    proto.write_text(SMALL_NET)
    net = caffe.Net(str(proto), caffe.TEST)
    net.blobs["data"].data[...] = np.random.default_rng(0).random((2, 1, 12, 12))
    prob = net.forward()["prob"]
    np.testing.assert_allclose(prob.sum(axis=1), 1.0, rtol=1e-5)
    edited = np.random.default_rng(1).standard_normal(net.params["ip1"][0].data.shape).astype(np.float32)
    net.params["ip1"][0].data[...] = edited
    model = tmp_path / "small.caffemodel"
    net.save(str(model))
    again = caffe.Net(str(proto), str(model), caffe.TEST)
    assert np.array_equal(again.params["ip1"][0].data, edited)
    assert np.array_equal(again.params["conv1"][0].data, net.params["conv1"][0].data)


def test_lmdb_datum_data_layer_with_accuracy(tmp_path):
    caffe.set_mode_cpu()
    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, size=(40, 8, 8), dtype=np.uint8)
    labels = np.arange(40) % 10
    db = lmdb_io.write(tmp_path / "db", images, labels)
    assert lmdb_io.count(db) == 40
    proto = tmp_path / "net.prototxt"
    proto.write_text(_data_net(db, 20))
    net = caffe.Net(str(proto), caffe.TEST)
    out = net.forward()
    # The Data layer delivers exactly what was stored: pixels scaled by 1/256, labels in order.
    np.testing.assert_allclose(net.blobs["data"].data[:, 0], images[:20] / 256.0, rtol=1e-6)
    assert net.blobs["label"].data.tolist() == labels[:20].tolist()
    assert 0.0 <= float(out["accuracy"]) <= 1.0


def test_sgd_solver_lowers_loss(tmp_path):
    caffe.set_mode_cpu()
    caffe.set_random_seed(0)
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 10, size=200)
    # Separable toy data: the label's pixel is bright.
    images = rng.integers(0, 40, size=(200, 4, 4), dtype=np.uint8)
    images.reshape(200, 16)[np.arange(200), labels] = 255
    db = lmdb_io.write(tmp_path / "db", images, labels)
    (tmp_path / "net.prototxt").write_text(_data_net(db, 50))
    (tmp_path / "solver.prototxt").write_text(
        f'net: "{tmp_path / "net.prototxt"}"\nbase_lr: 0.1\nmomentum: 0.9\nlr_policy: "fixed"\n'
        "max_iter: 100\nsolver_mode: CPU\nrandom_seed: 0\n")
    solver = caffe.SGDSolver(str(tmp_path / "solver.prototxt"))
    solver.step(1)
    first = float(solver.net.blobs["loss"].data)
    solver.step(30)
    assert float(solver.net.blobs["loss"].data) < 0.5 * first


def test_mnist_loader_is_genuine():
    data = mnist.load()
    xtr, ytr = data["train"]
    xte, yte = data["test"]
    assert xtr.shape == (60000, 28, 28) and xte.shape == (10000, 28, 28)
    assert xtr.dtype == np.uint8 and ytr.shape == (60000,)
    assert np.bincount(yte).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert yte[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
