"""deepsz_caffe.deepsz.prune: exact top-k magnitude masks (masked retraining runs in test_pipeline)."""
import numpy as np
import pytest

from deepsz_caffe.deepsz.prune import magnitude_masks
from deepsz_caffe.errors import ConfigError


def test_magnitude_masks_keep_exact_count_of_largest():
    w = np.random.default_rng(0).standard_normal((300, 784)).astype(np.float32)
    masks = magnitude_masks({"ip1": w}, {"ip1": 0.08})
    m = masks["ip1"]
    assert m.shape == w.shape and int(m.sum()) == round(0.08 * w.size)
    assert np.abs(w[m == 1]).min() >= np.abs(w[m == 0]).max()


def test_mask_errors():
    with pytest.raises(ConfigError, match="not a layer"):
        magnitude_masks({"ip1": np.ones(3)}, {"fc6": 0.1})
    with pytest.raises(ConfigError, match=r"\(0, 1\]"):
        magnitude_masks({"ip1": np.ones(3)}, {"ip1": 0})
