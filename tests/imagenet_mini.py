"""A miniature of what a researcher holds for the paper's AlexNet experiments: ILSVRC2012-style
image folders (train: one folder per synset; val: flat, with val.txt), BVLC-style train_val /
deploy / solver prototxts, and a trained `bvlc_alexnet.caffemodel` in Caffe's legacy V1 format.

The net is AlexNet cut down (227x227 crops of 256x256 images, average-pooled 4x4, one
convolution and pooling, then fc6-fc8 as AlexNet names them) so that a few hundred images
train and test in seconds; the images are generated: per class an oriented colour grating
under noise, at mixed sizes, as JPEG (some grayscale, some CMYK, as ImageNet has) and PNG."""
from pathlib import Path

import numpy as np

CLASSES = [f"n{1440764 + 17 * k:08d}" for k in range(10)]  # wnid-like folder names, sorted

TRAIN_VAL = """name: "MiniAlexNet"
layer {{ name: "data" type: "Data" top: "data" top: "label" include {{ phase: TRAIN }}
  transform_param {{ mirror: true crop_size: 227 mean_file: "data/ilsvrc12/imagenet_mean.binaryproto"
    scale: 0.0078125 }}
  data_param {{ source: "examples/imagenet/ilsvrc12_train_lmdb" batch_size: 20 backend: LMDB }} }}
layer {{ name: "data" type: "Data" top: "data" top: "label" include {{ phase: TEST }}
  transform_param {{ mirror: false crop_size: 227 mean_file: "data/ilsvrc12/imagenet_mean.binaryproto"
    scale: 0.0078125 }}
  data_param {{ source: "examples/imagenet/ilsvrc12_val_lmdb" batch_size: 50 backend: LMDB }} }}
{body}
layer {{ name: "accuracy" type: "Accuracy" bottom: "fc8" bottom: "label" top: "accuracy"
  include {{ phase: TEST }} }}
layer {{ name: "accuracy_top5" type: "Accuracy" bottom: "fc8" bottom: "label" top: "accuracy_top5"
  include {{ phase: TEST }} accuracy_param {{ top_k: 5 }} }}
layer {{ name: "loss" type: "SoftmaxWithLoss" bottom: "fc8" bottom: "label" top: "loss" }}
"""

BODY = """layer { name: "pool0" type: "Pooling" bottom: "data" top: "pool0"
  pooling_param { pool: AVE kernel_size: 4 stride: 4 } }
layer { name: "conv1" type: "Convolution" bottom: "pool0" top: "conv1"
  convolution_param { num_output: 8 kernel_size: 5 stride: 2
    weight_filler { type: "xavier" } bias_filler { type: "constant" value: 0 } } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
  pooling_param { pool: MAX kernel_size: 3 stride: 2 } }
layer { name: "fc6" type: "InnerProduct" bottom: "pool1" top: "fc6"
  inner_product_param { num_output: 64 weight_filler { type: "xavier" } } }
layer { name: "relu6" type: "ReLU" bottom: "fc6" top: "fc6" }
layer { name: "fc7" type: "InnerProduct" bottom: "fc6" top: "fc7"
  inner_product_param { num_output: 64 weight_filler { type: "xavier" } } }
layer { name: "relu7" type: "ReLU" bottom: "fc7" top: "fc7" }
layer { name: "fc8" type: "InnerProduct" bottom: "fc7" top: "fc8"
  inner_product_param { num_output: 10 weight_filler { type: "xavier" } } }"""

DEPLOY = """name: "MiniAlexNet"
layer { name: "data" type: "Input" top: "data" input_param { shape: { dim: 10 dim: 3 dim: 227 dim: 227 } } }
""" + BODY + """
layer { name: "prob" type: "Softmax" bottom: "fc8" top: "prob" }
"""

SOLVER = """net: "train_val.prototxt"
test_iter: 2
test_interval: 1000
base_lr: 0.01
lr_policy: "step"
gamma: 0.1
stepsize: 1000
momentum: 0.9
weight_decay: 0.0005
max_iter: {max_iter}
snapshot: 100000
snapshot_prefix: "snapshots/mini_alexnet"
random_seed: 1
"""


def image(label: int, rng) -> np.ndarray:
    """An RGB picture of class `label`: a grating at the class's angle and colours, noisy, of a
    random size around ImageNet's aspect ratios."""
    h, w = int(rng.integers(60, 140)), int(rng.integers(60, 160))
    yy, xx = np.mgrid[0:h, 0:w]
    angle = np.pi * label / len(CLASSES)
    wave = np.sin((xx * np.cos(angle) + yy * np.sin(angle)) / 3.0 + rng.uniform(0, 6))
    colour = np.array([np.sin(label), np.cos(label * 1.7), np.sin(label * 2.3 + 1)])
    a = 128 + 50 * colour + 40 * wave[..., None] * colour + rng.normal(0, 25, (h, w, 3))
    return np.clip(a, 0, 255).astype(np.uint8)


def _save(a: np.ndarray, path: Path, kind: str) -> Path:
    from PIL import Image

    im = Image.fromarray(a)
    if kind == "png":
        path = path.with_suffix(".png")
        im.save(path)
    elif kind == "gray":
        im.convert("L").save(path, "JPEG", quality=90)
    elif kind == "cmyk":
        im.convert("CMYK").save(path, "JPEG", quality=90)
    else:
        im.save(path, "JPEG", quality=90)
    return path


def _kind(i: int) -> str:
    return "png" if i % 5 == 1 else "gray" if i % 23 == 7 else "cmyk" if i % 29 == 11 else "jpeg"


def make(root, train_per_class: int = 20, val: int = 100, seed: int = 0) -> Path:
    """The miniature ILSVRC layout under `root` (images and prototxts; no caffemodel)."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    for label, wnid in enumerate(CLASSES):
        (root / "ILSVRC2012_img_train" / wnid).mkdir(parents=True)
        for i in range(train_per_class):
            _save(image(label, rng), root / "ILSVRC2012_img_train" / wnid / f"{wnid}_{i}.JPEG",
                  _kind(i + label))
    (root / "ILSVRC2012_img_val").mkdir()
    lines = []
    for i in range(1, val + 1):
        label = int(rng.integers(len(CLASSES)))
        path = _save(image(label, rng), root / "ILSVRC2012_img_val" / f"ILSVRC2012_val_{i:08d}.JPEG",
                     _kind(i))
        lines.append(f"{path.name} {label}")
    (root / "val.txt").write_text("\n".join(lines) + "\n")
    (root / "train_val.prototxt").write_text(TRAIN_VAL.format(body=BODY))
    (root / "deploy.prototxt").write_text(DEPLOY)
    (root / "solver.prototxt").write_text(SOLVER.format(max_iter=120))
    return root


def to_v1(weights, out) -> Path:
    """Rewrite a caffemodel in Caffe's legacy V1 format (`layers`, enum types, 4-d legacy blob
    dimensions), as the model zoo's bvlc_alexnet.caffemodel is stored."""
    from deepsz_caffe.caffe.io import caffe_pb2

    pb2 = caffe_pb2()
    new = pb2.NetParameter.FromString(Path(weights).read_bytes())
    v1 = pb2.NetParameter(name=new.name)
    kinds = {"Data": "DATA", "Convolution": "CONVOLUTION", "ReLU": "RELU", "Pooling": "POOLING",
             "InnerProduct": "INNER_PRODUCT", "Accuracy": "ACCURACY", "SoftmaxWithLoss": "SOFTMAX_LOSS",
             "Softmax": "SOFTMAX", "Input": None}
    for layer in new.layer:
        kind = kinds[layer.type]
        if kind is None:
            continue
        old = v1.layers.add(name=layer.name, type=pb2.V1LayerParameter.LayerType.Value(kind))
        old.bottom.extend(layer.bottom)
        old.top.extend(layer.top)
        for blob in layer.blobs:
            dims = [1] * (4 - len(blob.shape.dim)) + list(blob.shape.dim)
            old.blobs.add(num=dims[0], channels=dims[1], height=dims[2], width=dims[3],
                          data=blob.data)
    Path(out).write_bytes(v1.SerializeToString())
    return Path(out)
