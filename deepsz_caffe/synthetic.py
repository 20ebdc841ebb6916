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

from .prune import magnitude_masks

# fc weight blob shapes (num_output, fan_in), as Caffe stores them: paper Table 1.
FC_SHAPES = {
    "alexnet": {"fc6": (4096, 9216), "fc7": (4096, 4096), "fc8": (1000, 4096)},
    "vgg16": {"fc6": (4096, 25088), "fc7": (4096, 4096), "fc8": (1000, 4096)},
    "lenet300": {"ip1": (300, 784), "ip2": (100, 300), "ip3": (10, 100)},
    "lenet5": {"ip1": (500, 800), "ip2": (10, 500)},
}

# Kept (nonzero) fraction per layer after pruning, the paper's "pruning ratio": Tables 2c, 2d,
# 2a, 2b. Mirrors experiments/paper_values.json (a test keeps the two equal).
PAPER_KEPT = {
    "alexnet": {"fc6": 0.09, "fc7": 0.09, "fc8": 0.25},
    "vgg16": {"fc6": 0.03, "fc7": 0.04, "fc8": 0.24},
    "lenet300": {"ip1": 0.08, "ip2": 0.09, "ip3": 0.26},
    "lenet5": {"ip1": 0.08, "ip2": 0.19},
}

# Absolute error bounds DeepSZ chose at the paper's expected loss: section 5.2.2.
PAPER_ERROR_BOUNDS = {
    "alexnet": {"fc6": 7e-3, "fc7": 7e-3, "fc8": 5e-3},
    "vgg16": {"fc6": 1e-2, "fc7": 9e-3, "fc8": 5e-3},
    "lenet300": {"ip1": 0.02, "ip2": 0.03, "ip3": 0.04},
    "lenet5": {"ip1": 0.03, "ip2": 0.08},
}


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
