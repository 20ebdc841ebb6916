"""ImageNet-shaped LMDBs for people without ImageNet (issue 14, item 1).

Writes raw uint8 Caffe `Datum` records (3 x size x size, BGR channel order, C x H x W bytes:
what `convert_imageset` stores) that Caffe's Data layer reads with crop_size/mean_value exactly
like the ImageNet validation LMDB. The pictures are smooth random fields with a natural-image
power spectrum (amplitude ~ 1/f^alpha, alpha in [1, 1.4], i.e. power ~ 1/f^2..1/f^2.8),
correlated colour (one luminance field, two weaker opponent-colour fields), region boundaries
(a thresholded field) and per-image brightness/contrast/colour cast, so conv nets see
activations with realistic statistics rather than white noise.

Every image and label is drawn from its own generator seeded by (seed, index): the bytes depend
on neither the chunk size nor the number of images, and any prefix of a 50,000-image database
equals the smaller database (with one numpy build: another build or CPU may round exp, tanh
or the FFT differently in the last bit, moving a rare pixel by 1). Memory stays bounded whatever
N: one image at a time is generated, and each chunk is committed in its own write transaction.
"""
import functools
import operator
import os
import resource
import shutil
from pathlib import Path

import lmdb
import numpy as np

from ..log import progress as progress_bar
from ..errors import ConfigError
from .lmdb import building, check_target

BGR_MEAN = np.array([104.0, 117.0, 123.0], np.float32)  # Caffe's ImageNet mean_value, B G R
# Rows B, G, R from (luminance, blue-yellow, red-green): natural colour is mostly luminance.
_MIX = np.array([[1.0, 0.35, -0.15], [1.0, -0.05, 0.25], [1.0, -0.30, -0.10]], np.float32)
INT32_MAX = 2**31 - 1    # Datum's label, height and width are int32; protobuf messages < 2 GiB
BYTES_PER_PIXEL = 128    # peak memory of one image: ~110 B per pixel measured (FFT fields), + record


@functools.lru_cache(maxsize=4)
def _log_frequency(size: int) -> np.ndarray:
    """log of the radial frequency on the rfft2 grid, +inf at DC so that the amplitude
    exp(-alpha * log f) is 0 there (each field has mean 0; brightness is added apart)."""
    fy = np.fft.fftfreq(size).astype(np.float32)[:, None]
    fx = np.fft.rfftfreq(size).astype(np.float32)[None, :]
    radius = np.sqrt(fy * fy + fx * fx)
    radius[0, 0] = 1.0
    logf = np.log(radius)
    logf[0, 0] = np.inf
    logf.setflags(write=False)
    return logf


def synthetic_image(seed: int, index: int, size: int = 256, classes: int = 1000):
    """Image `index` of the set `seed`: (uint8 array [3, size, size] in BGR order, label)."""
    rng = np.random.default_rng([seed, index])
    label = int(rng.integers(classes))
    alpha, edge, chroma, contrast = rng.uniform([1.0, 0.0, 0.3, 30.0], [1.4, 0.8, 0.7, 60.0])
    offset = BGR_MEAN + np.float32(rng.normal(0.0, 20.0)) + rng.normal(0.0, 8.0, 3).astype(np.float32)
    # Uniform real/imaginary parts are 5x cheaper than normals; after the inverse FFT each pixel
    # sums thousands of them, so the fields are Gaussian all the same.
    noise = rng.random((4, size, size // 2 + 1, 2), dtype=np.float32)
    noise -= 0.5
    spectrum = noise.view(np.complex64)[..., 0] * np.exp(np.float32(-alpha) * _log_frequency(size))
    fields = np.fft.irfft2(spectrum, s=(size, size))
    fields /= fields.std(axis=(1, 2), keepdims=True)
    luminance = fields[0] + np.float32(edge) * np.tanh(np.float32(6.0) * fields[3])
    opponent = np.stack([luminance, np.float32(chroma) * fields[1], np.float32(chroma) * fields[2]])
    bgr = np.tensordot(_MIX, opponent, 1) * np.float32(contrast) + offset[:, None, None]
    return np.clip(np.rint(bgr), 0, 255).astype(np.uint8), label


def _count(name: str, value, minimum: int, maximum: int | None = None) -> int:
    try:
        value = operator.index(value)
    except TypeError:
        raise ConfigError(f"{name} must be an integer, got {value!r}") from None
    if value < minimum or (maximum is not None and value > maximum):
        raise ConfigError(f"{name} must be >= {minimum}" + (f" and <= {maximum}" if maximum else "")
                          + f", got {value}")
    return value


def check_request(path, n_images, size, classes, seed=0, overwrite=False) -> tuple[int, int, int, int]:
    """(n, size, classes, seed) checked before anything is written: counts in range, one record
    within protobuf's 2 GiB, one image's working memory within what this process may allocate,
    the database within the free disk space, and a target that may be (re)placed."""
    n = _count("number of images", n_images, 1, INT32_MAX)
    size = _count("image size", size, 8, INT32_MAX)
    classes = _count("classes", classes, 1, INT32_MAX)
    seed = _count("seed", seed, 0)
    if 3 * size * size + 64 > INT32_MAX:
        raise ConfigError(f"image size {size}: one 3x{size}x{size} record is over protobuf's 2 GiB "
                          "message limit (at most 26754)")
    memory, available = BYTES_PER_PIXEL * size * size, _available_memory()
    if memory > available:
        raise ConfigError(f"image size {size}: generating one image needs ~{memory / 2**30:.1f} GiB "
                          f"of memory, {available / 2**30:.1f} GiB available")
    if not str(path).strip():
        raise ConfigError("the LMDB path is empty")
    path = Path(path)
    check_target(path, overwrite)
    parent = path.parent
    while not os.path.lexists(parent) and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"cannot create LMDB {path}: {parent} is not a writable directory")
    need, free = _database_bytes(n, size), shutil.disk_usage(parent).free
    if need > free:
        raise ConfigError(f"{n} images of 3x{size}x{size} need ~{need / 2**30:.1f} GiB, "
                          f"{free / 2**30:.1f} GiB free on the disk of {parent}")
    return n, size, classes, seed


def _available_memory() -> int:
    """Bytes this process may still allocate: MemAvailable, or less under an address-space limit."""
    try:
        with open("/proc/meminfo") as f:
            available = next(int(line.split()[1]) << 10 for line in f if line.startswith("MemAvailable:"))
    except (OSError, StopIteration, ValueError):
        return 1 << 62
    limit = resource.getrlimit(resource.RLIMIT_AS)[0]
    if limit != resource.RLIM_INFINITY:
        with open("/proc/self/status") as f:
            used = next(int(line.split()[1]) << 10 for line in f if line.startswith("VmSize:"))
        available = min(available, limit - used)
    return available


def _database_bytes(n: int, size: int) -> int:
    """What `n` records fill: whole overflow pages each, plus a page of B-tree."""
    page = 4096
    return n * (-(-(3 * size * size + 64) // page) + 1) * page


def _map_size(n: int, size: int) -> int:
    """Upper bound on the database size: each record fills whole overflow pages, plus B-tree
    pages; a generous bound costs nothing (the map is virtual, the file grows as written)."""
    return int(1.5 * _database_bytes(n, size)) + (64 << 20)


def _open(tmp: Path, n: int, size: int) -> lmdb.Environment:
    # sync=False: a crash leaves only the temp dir, which is never renamed into place; _fill
    # syncs once at the end, so the finished database is durable before the rename.
    return lmdb.open(str(tmp), map_size=_map_size(n, size), mode=0o666, sync=False, metasync=False,
                     meminit=False)


def _fill(tmp: Path, n: int, size: int, classes: int, seed: int, chunk: int, progress: bool) -> None:
    """One environment and one write transaction per chunk. Reopening keeps the peak RSS flat:
    LMDB maps the file and the pages a write touches stay resident until the map is closed."""
    from .io import caffe_pb2  # here, not at the top: it loads libcaffe, which synthetic_image needs not

    pb2 = caffe_pb2()
    width = max(8, len(str(n - 1)))  # Caffe's %08d keys: cursor order == index order
    with progress_bar(total=n, desc="synth lmdb", unit="img", disable=not progress, mininterval=1) as bar:
        for start in range(0, n, chunk):
            stop = min(n, start + chunk)
            with _open(tmp, n, size) as env, env.begin(write=True) as txn:
                for i in range(start, stop):
                    image, label = synthetic_image(seed, i, size, classes)
                    # A fresh Datum per record: protobuf keeps every bytes value ever assigned to
                    # a message in its arena until the message dies, so reusing one grows as N.
                    datum = pb2.Datum(channels=3, height=size, width=size, data=image.tobytes(), label=label)
                    txn.put(b"%0*d" % (width, i), datum.SerializeToString(), append=True)
            bar.update(stop - start)
    with _open(tmp, n, size) as env:
        env.sync(True)


def write_synthetic_imagenet(path, n_images: int, size: int = 256, classes: int = 1000, seed: int = 0,
                             chunk: int = 256, overwrite: bool = False, progress: bool = True) -> Path:
    """Write `n_images` synthetic ImageNet-shaped records to a new LMDB directory at `path`.

    Labels are uniform over `classes`. The database is built in a hidden directory beside
    `path` and renamed into place, so an interrupted run never leaves a partial LMDB at `path`.
    """
    n, size, classes, seed = check_request(path, n_images, size, classes, seed, overwrite)
    chunk = _count("chunk", chunk, 1)
    path = Path(path)
    with building(path) as tmp:
        _fill(tmp, n, size, classes, seed, chunk, progress)
    return path
