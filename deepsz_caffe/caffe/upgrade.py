"""Legacy V1 nets (`layers { type: INNER_PRODUCT ... }`, as the model zoo's VGG-16 prototxt) upgraded
to today's `layer` format, as Caffe's own UpgradeV1Net does when it loads one. Caffe upgrades in
C++ on load, but every edit of a prototxt here (data sources, suffix nets, batch size) works on
`layer`, so a V1 net is upgraded once, when it is read. Pure protobuf: no Caffe import."""
from ..errors import CaffeIOError

# Caffe's UpgradeV1LayerType (src/caffe/util/upgrade_proto.cpp): the V1 enum by its type string.
V1_TYPES = {
    "NONE": "", "ABSVAL": "AbsVal", "ACCURACY": "Accuracy", "ARGMAX": "ArgMax", "BNLL": "BNLL",
    "CONCAT": "Concat", "CONTRASTIVE_LOSS": "ContrastiveLoss", "CONVOLUTION": "Convolution",
    "DECONVOLUTION": "Deconvolution", "DATA": "Data", "DROPOUT": "Dropout",
    "DUMMY_DATA": "DummyData", "EUCLIDEAN_LOSS": "EuclideanLoss", "ELTWISE": "Eltwise",
    "EXP": "Exp", "FLATTEN": "Flatten", "HDF5_DATA": "HDF5Data", "HDF5_OUTPUT": "HDF5Output",
    "HINGE_LOSS": "HingeLoss", "IM2COL": "Im2col", "IMAGE_DATA": "ImageData",
    "INFOGAIN_LOSS": "InfogainLoss", "INNER_PRODUCT": "InnerProduct", "LRN": "LRN",
    "MEMORY_DATA": "MemoryData", "MULTINOMIAL_LOGISTIC_LOSS": "MultinomialLogisticLoss",
    "MVN": "MVN", "POOLING": "Pooling", "POWER": "Power", "RELU": "ReLU", "SIGMOID": "Sigmoid",
    "SIGMOID_CROSS_ENTROPY_LOSS": "SigmoidCrossEntropyLoss", "SILENCE": "Silence",
    "SOFTMAX": "Softmax", "SOFTMAX_LOSS": "SoftmaxWithLoss", "SPLIT": "Split", "SLICE": "Slice",
    "TANH": "TanH", "WINDOW_DATA": "WindowData", "THRESHOLD": "Threshold",
}
# V1 fields that are not copied by name: they become ParamSpecs, or are V0 (refused).
_RENAMED = {"type", "param", "blob_share_mode", "blobs_lr", "weight_decay", "layer"}


def v1_type_name(enum_name: str) -> str:
    """A V1 LayerType enum name as today's type string (KeyError if it has none)."""
    return V1_TYPES[enum_name]


def upgrade_v1(net, path) -> bool:
    """Rewrite a V1 NetParameter's `layers` as `layer`, in place; False if there was nothing to do.
    CaffeIOError for what Caffe would refuse too: both formats at once, or a V0 layer inside."""
    if not len(net.layers):
        return False
    if len(net.layer):
        raise CaffeIOError(f"{path}: the net mixes `layer` and legacy V1 `layers` entries; "
                           "keep one format (Caffe refuses it too)")
    v1_type = type(net.layers[0]).LayerType
    for old in net.layers:
        if old.HasField("layer"):
            name = old.name or old.layer.name
            raise CaffeIOError(f"{path}: layer '{name}' is in the V0 format (layers {{ layer {{ }} }}); "
                               "upgrade it with Caffe's upgrade_net_proto_text first")
        new = net.layer.add()
        for field, value in old.ListFields():
            if field.name not in _RENAMED:
                _copy(new, field, value)
        new.type = v1_type_name(v1_type.Name(old.type))
        _param_specs(old, new)
    net.ClearField("layers")
    return True


def _copy(new, field, value) -> None:
    """One field of a V1 layer into the same-named field of a LayerParameter."""
    if hasattr(value, "extend"):  # a repeated field (FieldDescriptor.label is gone in upb)
        target = getattr(new, field.name)
        if field.message_type:
            for item in value:
                target.add().CopyFrom(item)
        else:
            target.extend(value)
    elif field.message_type:
        getattr(new, field.name).CopyFrom(value)
    else:
        setattr(new, field.name, value)


def _param_specs(old, new) -> None:
    """V1 per-blob settings -> ParamSpec: param names, blob_share_mode, blobs_lr, weight_decay."""
    count = max(len(old.param), len(old.blob_share_mode), len(old.blobs_lr), len(old.weight_decay))
    specs = [new.param.add() for _ in range(count)]
    for spec, name in zip(specs, old.param):
        spec.name = name
    for spec, mode in zip(specs, old.blob_share_mode):
        spec.share_mode = mode  # DimCheckMode: the same numbers in V1 and ParamSpec
    for spec, lr in zip(specs, old.blobs_lr):
        spec.lr_mult = lr
    for spec, decay in zip(specs, old.weight_decay):
        spec.decay_mult = decay
