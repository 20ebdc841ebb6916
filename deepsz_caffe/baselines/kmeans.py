"""1-D k-means with linear initialisation (Han et al., ICLR 2016): the weight sharing of Deep
Compression and Weightless."""
import numpy as np


def kmeans_1d(values: np.ndarray, n_clusters: int, max_iter: int = 300):
    """Lloyd's k-means on scalars with linear initialisation -> (float32 codebook, codes).

    In 1-D every cluster is a contiguous run of the sorted values, so after one sort an
    iteration is a searchsorted of the midpoints plus prefix-sum differences: O(K log n).
    Stops when no boundary moves. Empty clusters keep their centroid. Codes are then assigned
    against the float32 codebook actually stored, so each value gets its nearest stored centroid.
    """
    values = np.asarray(values, dtype=np.float32).reshape(-1)
    if values.size == 0:
        return np.zeros(n_clusters, dtype=np.float32), np.zeros(0, dtype=np.int64)
    sv = np.sort(values).astype(np.float64)
    prefix = np.concatenate(([0.0], np.cumsum(sv)))
    centroids = np.linspace(sv[0], sv[-1], n_clusters)
    bounds = None
    for _ in range(max_iter):
        mids = (centroids[1:] + centroids[:-1]) / 2
        new_bounds = np.concatenate(([0], np.searchsorted(sv, mids, side="right"), [sv.size]))
        if bounds is not None and np.array_equal(new_bounds, bounds):
            break
        bounds = new_bounds
        counts = np.diff(bounds)
        sums = prefix[bounds[1:]] - prefix[bounds[:-1]]
        centroids = np.sort(np.where(counts > 0, sums / np.maximum(counts, 1), centroids))
    codebook = np.sort(centroids.astype(np.float32))
    return codebook, assign(values, codebook)


def assign(values: np.ndarray, codebook: np.ndarray) -> np.ndarray:
    """Index of the nearest entry of a sorted codebook (ties go to the lower one)."""
    cb = np.asarray(codebook, dtype=np.float64)
    return np.searchsorted((cb[1:] + cb[:-1]) / 2, np.asarray(values, dtype=np.float64), side="left")
