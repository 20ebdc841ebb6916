"""Pruned fc layers of the paper's real shapes, for users without the BVLC AlexNet/VGG-16 files.

What DeepSZ gains on a layer depends on its shape and kept fraction (known exactly: Tables 1
and 2) and on how widely the kept weights spread relative to the error bound (modelled here).
Weights are Gaussian with std sqrt(1/fan_in), the variance Caffe's "xavier" filler draws from;
trained nets stay within a small factor of it: our trained LeNet-300-100 ip1 (fan-in 784) has
std 0.023 against 0.036, and after pruning to 8% and retraining its nonzeros have std 0.071
against 0.078 for this module's ip1. Trained weights are not Gaussian, so every number made
from these layers is a property of the shapes and the codecs, not of AlexNet or VGG-16: outputs
must label them synthetic. Pure numpy (no Caffe).
"""
import math

import numpy as np

from ..deepsz.prune import magnitude_masks
from . import values

NETS = ("alexnet", "vgg16", "lenet300", "lenet5")
FC_SHAPES = {net: values.fc_shapes(net) for net in NETS}
PAPER_KEPT = {net: values.kept_fractions(net) for net in NETS}
PAPER_ERROR_BOUNDS = {net: values.error_bounds(net) for net in NETS}


def default_std(shape) -> float:
    """sqrt(1/fan_in), fan_in being every dimension but the first (Caffe's blob layout)."""
    return 1.0 / math.sqrt(math.prod(shape[1:]))


def pruned_layer(shape, kept: float, seed: int, std: float | None = None) -> np.ndarray:
    """A float32 Gaussian layer magnitude-pruned to exactly round(kept * size) nonzeros.

    The same (shape, kept, seed, std) always gives the same array."""
    shape = tuple(int(d) for d in shape)
    rng = np.random.default_rng(seed)
    weights = rng.standard_normal(math.prod(shape), dtype=np.float32).reshape(shape)
    weights *= np.float32(default_std(shape) if std is None else std)
    weights *= magnitude_masks({"layer": weights}, {"layer": kept})["layer"]
    return weights


def pruned_net(net: str, seed: int = 0) -> dict[str, np.ndarray]:
    """{layer: pruned weights} of `net` at the paper's kept fractions; layer i uses seed + i."""
    return {layer: pruned_layer(shape, PAPER_KEPT[net][layer], seed + i)
            for i, (layer, shape) in enumerate(FC_SHAPES[net].items())}
