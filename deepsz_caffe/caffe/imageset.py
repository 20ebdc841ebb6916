"""Image files -> a Caffe LMDB, as Caffe's `convert_imageset` writes it, decoded with Pillow
(this Caffe is built without OpenCV, so its own tool cannot read a JPEG).

Records are what convert_imageset stores without -encoded: a raw uint8 `Datum`, channels in
BGR order, C x H x W, keyed `%08d_<path>` by the image's line in the (shuffled) list. Pixels
are those OpenCV's imread(IMREAD_COLOR / IMREAD_GRAYSCALE) gives:
- EXIF orientation applied (OpenCV does so by default since 3.1; `exif_orientation=False` for
  an LMDB built with OpenCV 2.4);
- alpha dropped, not composited (palette PNGs with transparency, RGBA, LA); CMYK converted;
- 16-bit images reduced to their high byte (libpng's strip_16, which OpenCV's PNG reader uses);
- with `gray`, JPEGs are decoded to their luma by libjpeg itself (as OpenCV asks libjpeg to),
  PNGs by libpng's weights, other formats by cvtColor's (see `_luma`).
Resizing is cv::resize's default INTER_LINEAR in OpenCV's own fixed-point arithmetic (see
`_inter_linear`): no antialiasing, unlike Pillow's resize(BILINEAR), which would give other
pixels than the LMDB a published model was measured on. tests/test_imageset.py checks every
input kind, resized or not, against opencv-python's imread and resize, pixel for pixel.

Files are decoded in worker processes, a bounded window of chunks at a time (memory flat in
the number of images), and written in list order, one LMDB transaction per chunk; the map
grows when full. The database is built beside the target and renamed into place at the end:
an interrupted run never leaves a half-written LMDB at the target. An unreadable file is
reported by name and skipped (convert_imageset logs and skips it too), or, with `strict`, stops
the run.
"""
import os
import random
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import CaffeIOError, ConfigError
from ..log import get as get_logger
from ..timing import Stopwatch
from ..log import progress as progress_bar

_log = get_logger("lmdb")

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".pbm", ".tif", ".tiff",
                  ".webp", ".gif"}
CHUNK = 64                   # images per worker task and per LMDB transaction
WINDOW_PER_WORKER = 3        # chunks in flight per worker: memory stays flat in N


@dataclass
class Summary:
    """What `convert` did: records written, files skipped (path, reason), image sizes seen."""
    output: Path
    written: int = 0
    skipped: list = field(default_factory=list)
    sizes: set = field(default_factory=set)
    seconds: float = 0.0
    classes: list | None = None


def read_list(list_file) -> list[tuple[str, int]]:
    """convert_imageset's LISTFILE: `relative/path label` per line, split at the last space (a
    path may contain spaces); blank lines ignored. ConfigError naming the line otherwise."""
    try:
        text = Path(list_file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read list file {list_file}: {getattr(e, 'strerror', None) or e}") from None
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.rstrip()
        if not line:
            continue
        path, _, label = line.rpartition(" ")
        try:
            entries.append((path.strip(), int(label)))
        except ValueError:
            raise ConfigError(f"{list_file}:{number}: expected `path label` with an integer label, "
                              f"got {line[:80]!r}") from None
        if not path.strip():
            raise ConfigError(f"{list_file}:{number}: no path before the label")
    if not entries:
        raise ConfigError(f"list file {list_file} names no images")
    return entries


def folder_list(root) -> tuple[list[tuple[str, int]], list[str]]:
    """The folder-per-class layout (ROOT/<class>/<image>): (entries, class names), the label of
    a class being its index among the sorted folder names, images sorted within each."""
    root = Path(root)
    if not root.is_dir():
        raise ConfigError(f"image folder {root} does not exist")
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise ConfigError(f"{root} has no class folders (expected ROOT/<class>/<image files>)")
    entries = [(f"{name}/{f.relative_to(root / name).as_posix()}", label)
               for label, name in enumerate(classes)
               for f in sorted((root / name).rglob("*"))
               if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file()]
    if not entries:
        raise ConfigError(f"no image files ({', '.join(sorted(IMAGE_SUFFIXES))}) under {root}")
    return entries, classes


def _linear_taps(n_in: int, n_out: int, clamp: bool) -> tuple:
    """cv::resize(INTER_LINEAR)'s taps along one axis: the source index of each output sample,
    the next one, and their 11-bit fixed-point weights. The position is computed as OpenCV does
    (float32, from the double 1 / (out / in)); along x a sample beyond an edge takes the edge
    pixel whole, along y only the rows are clamped (`clamp` False), which weights differently."""
    position = ((np.arange(n_out) + 0.5) * (1.0 / (n_out / n_in)) - 0.5).astype(np.float32)
    index = np.floor(position).astype(np.int64)
    frac = position - index.astype(np.float32)
    if clamp:
        frac[(index < 0) | (index >= n_in - 1)] = 0
    first = np.clip(index, 0, n_in - 1)
    w0 = np.rint((np.float32(1) - frac) * np.float32(2048)).astype(np.int32)
    w1 = np.rint(frac * np.float32(2048)).astype(np.int32)
    return first, np.clip(index + 1, 0, n_in - 1), w0, w1


def _inter_linear(a: np.ndarray, width: int, height: int) -> np.ndarray:
    """cv::resize(INTER_LINEAR) of a uint8 [H, W(, C)] image, bit for bit as OpenCV's x86 build
    computes it (checked against opencv-python by tests/test_imageset.py): a horizontal pass in
    11-bit fixed point, then each output row from two of those rows as its SIMD loop rounds,
    (((r0 >> 4) * w0 >> 16) + ((r1 >> 4) * w1 >> 16) + 2) >> 2."""
    x0, x1, u0, u1 = _linear_taps(a.shape[1], width, clamp=True)
    y0, y1, v0, v1 = _linear_taps(a.shape[0], height, clamp=False)
    c = a.shape[2] if a.ndim == 3 else 1
    flat = a.reshape(a.shape[0], -1)  # channels interleaved along a row: long inner loops for numpy

    def taps(index, weight):  # gathered before widening: int32 arrays as wide as the output
        columns = flat[:, (index[:, None] * c + np.arange(c)).ravel()].astype(np.int32)
        columns *= np.repeat(weight, c)
        return columns

    rows = taps(x0, u0)
    rows += taps(x1, u1)   # <= 255 * 2048
    rows >>= 4
    out = rows[y0] * v0[:, None]
    out >>= 16
    lower = rows[y1] * v1[:, None]
    lower >>= 16
    out += lower
    out += 2
    out >>= 2
    return out.astype(np.uint8).reshape((height, width) + a.shape[2:])  # within [0, 255]


def _rgb(img, image_format: str, adobe: bool) -> np.ndarray:
    """uint8 [H, W, 3] RGB as imread(IMREAD_COLOR) gives it (in RGB order); `image_format`
    and `adobe` (an Adobe marker) are the file's (a transposed copy may not say). CMYK: OpenCV's JPEG
    reader converts the samples libjpeg hands it (an Adobe file's are inverted, which Pillow
    undoes) as x = k - ((255 - x) * k >> 8); its TIFF reader leaves it to libtiff's RGBA
    interface, x = (255 - K) * (255 - X) / 255, truncated."""
    if img.mode != "CMYK":
        return np.asarray(img if img.mode == "RGB" else img.convert("RGB"), np.uint8)
    if image_format != "JPEG":
        return _by_rows(np.asarray(img), lambda c: (255 - c[..., 3:]) * (255 - c[..., :3]) // 255, 3)
    return _by_rows(np.asarray(img), lambda c: _cmyk_jpeg(255 - c if adobe else c), 3)


def _cmyk_jpeg(raw: np.ndarray) -> np.ndarray:
    k = raw[..., 3:]
    return k - ((255 - raw[..., :3]) * k >> 8)


def _by_rows(a: np.ndarray, fn, channels: int, rows: int = 256) -> np.ndarray:
    """fn (integer arithmetic on int32 pixels) over `a` a block of rows at a time, into uint8
    [H, W(, channels)]: work arrays stay a few MB however large the image."""
    out = np.empty(a.shape[:2] + ((channels,) if channels > 1 else ()), np.uint8)
    for top in range(0, a.shape[0], rows):
        block = out[top:top + rows]
        block[...] = fn(a[top:top + rows].astype(np.int32)).reshape(block.shape)
    return out


def _luma(rgb: np.ndarray, image_format: str) -> np.ndarray:
    """IMREAD_GRAYSCALE of a colour image, by the reader's own rule: PNG asks libpng for
    rgb_to_gray with weights 0.299 and 0.587 (15-bit, truncated); WebP decodes to BGR and calls
    cvtColor (BT.601, 15-bit, rounded); the others use imgcodecs' converter (14-bit, rounded)."""
    weights, add, shift = {"PNG": ((9797, 19234, 3737), 0, 15),
                           "WEBP": ((9798, 19235, 3735), 1 << 14, 15)}.get(
        image_format, ((4899, 9617, 1868), 1 << 13, 14))
    return _by_rows(rgb, lambda c: (c @ np.array(weights, np.int32) + add) >> shift, 1)


def decode(path, *, height: int = 0, width: int = 0, gray: bool = False,
           exif_orientation: bool = True) -> np.ndarray:
    """One image file -> uint8 [C, H, W] in BGR order (C = 1 with `gray`), as convert_imageset
    stores it; resized to height x width when both are > 0. Raises on an unreadable file."""
    from PIL import Image, ImageOps

    with Image.open(path) as img:
        if gray and img.format == "JPEG" and img.mode in ("RGB", "YCbCr"):
            img.draft("L", img.size)  # libjpeg outputs its luma: OpenCV's IMREAD_GRAYSCALE
        img.load()
        image_format, adobe = img.format, "adobe" in img.info
        if exif_orientation:
            ImageOps.exif_transpose(img, in_place=True)  # no second copy of a large image
        eight = _eight_bit(img, image_format)
        if eight.mode == "L":
            a = np.asarray(eight, np.uint8)
            a = a if gray else np.repeat(a[:, :, None], 3, axis=2)
        else:
            a = _rgb(eight, image_format, adobe)
            a = _luma(a, image_format) if gray else a
        del eight  # a converted copy (palette, alpha, 16-bit) is not needed for the resize
    if height > 0 and width > 0 and a.shape[:2] != (height, width):
        a = _inter_linear(a, width, height)
    return a[None] if gray else np.ascontiguousarray(a[:, :, ::-1].transpose(2, 0, 1))


def _eight_bit(img, image_format: str | None = None):
    """8-bit modes for Pillow's converters: 16/32-bit integer images keep their high byte,
    alpha is dropped (not composited), palettes are expanded. An RGBA TIFF's alpha is multiplied in
    first, (x * alpha + 127) / 255: OpenCV reads it through libtiff's RGBA interface, which does
    that to unassociated alpha and keeps associated (premultiplied) values, which Pillow hands over
    divided by alpha: multiplying back gives them within one level."""
    from PIL import Image

    if image_format == "TIFF" and img.mode == "RGBA":
        a = np.asarray(img)
        return Image.fromarray(_by_rows(a, lambda x: (x[..., :3] * x[..., 3:] + 127) // 255, 3), "RGB")
    if img.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        a = np.asarray(img)
        shift = 8 if img.mode.startswith("I;16") or a.max(initial=0) <= 0xFFFF else 24
        return Image.fromarray((a.astype(np.uint32) >> shift).clip(0, 255).astype(np.uint8), "L")
    if img.mode == "F":
        return Image.fromarray(np.asarray(img).clip(0, 255).astype(np.uint8), "L")
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "RGBa", "PA"):
        return img.convert("RGBA").convert("RGB")
    if img.mode == "LA":
        return img.getchannel("L")
    return img


def _decode_chunk(root: str, chunk: list, options: dict) -> list:
    """Worker: [(index, path, label)] -> [(index, path, label, bytes | None, shape | reason)]."""
    import warnings

    from PIL import Image

    out = []
    for index, rel, label in chunk:
        try:
            with warnings.catch_warnings():  # a decompression bomb is a bad file, not a warning
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                a = decode(os.path.join(root, rel), **options)
            out.append((index, rel, label, a.tobytes(), a.shape))
        except Exception as e:  # noqa: BLE001 - any decoder failure is a bad file, by name
            out.append((index, rel, label, None, _reason(e, rel)))
    return out


def _reason(e: Exception, rel: str) -> str:
    """Why a file could not be read, in a few words (its path is printed beside it)."""
    if isinstance(e, FileNotFoundError):
        return "no such file"
    text = " ".join(str(e).replace(repr(rel), "").replace(rel, "").split()) or type(e).__name__
    return text[:160]


def _ordered(root: Path, entries: list, options: dict, workers: int):
    """Decoded chunks in list order, `workers` processes, a bounded number in flight."""
    chunks = ([(i, rel, label) for i, (rel, label) in enumerate(entries[s:s + CHUNK], s)]
              for s in range(0, len(entries), CHUNK))  # made as they are submitted
    if workers <= 1:
        for c in chunks:
            yield _decode_chunk(str(root), c, options)
        return
    import multiprocessing

    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        pending = deque()
        try:
            for c in chunks:
                pending.append(pool.submit(_decode_chunk, str(root), c, options))
                if len(pending) >= WINDOW_PER_WORKER * workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for f in pending:
                f.cancel()


def _map_size(entries: int, record: int | None) -> int:
    """A first LMDB map size; it doubles whenever a transaction finds it full."""
    if record is None:
        return 1 << 30
    pages = -(-(record + 64) // 4096) + 1
    return int(1.2 * entries * pages * 4096) + (64 << 20)


def convert(root, entries: list[tuple[str, int]], output, *, resize_height: int = 0,
            resize_width: int = 0, gray: bool = False, shuffle: bool = False, seed: int = 0,
            limit: int | None = None, strict: bool = False, check_size: bool = False,
            exif_orientation: bool = True, overwrite: bool = False, workers: int | None = None,
            progress: bool = True, report=None) -> Summary:
    """Write the images `entries` ([(path relative to `root`, label)]) to a new LMDB `output`.

    `shuffle` permutes the list with Python's random.Random(`seed`) (convert_imageset's own
    shuffle uses Caffe's RNG: not reproducible outside it); `limit` keeps the first N after
    shuffling. Unreadable files: `report(path, reason)` (default: one line on stderr) and
    skipped, or CaffeIOError with `strict`. `check_size`: every image must have the first one's
    size (convert_imageset -check_size). Returns a Summary."""
    from .lmdb import building, check_target

    if (resize_height > 0) != (resize_width > 0) or resize_height < 0 or resize_width < 0:
        raise ConfigError("give both --resize-height and --resize-width (> 0), or neither")
    if limit is not None and limit < 1:
        raise ConfigError(f"--limit must be >= 1, got {limit}")
    entries = list(entries)
    if shuffle:
        random.Random(seed).shuffle(entries)
    if limit is not None:
        entries = entries[:limit]
    root, output = Path(root), Path(output)
    if not root.is_dir():
        raise ConfigError(f"image root {root} is not a directory")
    check_target(output, overwrite)
    workers = max(1, workers if workers is not None else (os.cpu_count() or 1))
    options = {"height": resize_height, "width": resize_width, "gray": gray,
               "exif_orientation": exif_orientation}
    record = (1 if gray else 3) * resize_height * resize_width if resize_height else None
    report = report or (lambda path, why: _log.warning(f"deepsz: skipped {path}: {why}"))
    summary = Summary(output)
    with Stopwatch() as watch, building(output) as tmp:
        _fill(tmp, root, entries, options, workers, record, strict, check_size, report, summary,
              progress)
        if summary.written == 0:
            raise CaffeIOError(f"no image of the {len(entries)} listed could be read; nothing written")
    summary.seconds = watch.seconds
    return summary


def _fill(tmp: Path, root: Path, entries, options, workers, record, strict, check_size, report,
          summary: Summary, progress: bool) -> None:
    import lmdb

    from .io import caffe_pb2

    pb2 = caffe_pb2()
    map_size = _map_size(len(entries), record)
    env = lmdb.open(str(tmp), map_size=map_size, mode=0o666, sync=False, metasync=False,
                    meminit=False)
    try:
        with progress_bar(total=len(entries), desc="lmdb", unit="img", disable=not progress,
                  dynamic_ncols=True, mininterval=1) as bar:
            for chunk in _ordered(root, entries, options, workers):
                records = []
                for index, rel, label, data, shape in chunk:
                    if data is None:
                        if strict:
                            raise CaffeIOError(f"cannot read image {root / rel}: {shape} "
                                               "(--strict; without it the file is skipped)")
                        report(root / rel, shape)
                        summary.skipped.append((rel, shape))
                        continue
                    if check_size and summary.sizes and tuple(shape[1:]) not in summary.sizes:
                        raise CaffeIOError(f"{root / rel} is {shape[2]}x{shape[1]}, not "
                                           f"{'x'.join(map(str, next(iter(summary.sizes))[::-1]))} "
                                           "as the images before it (--check-size)")
                    summary.sizes.add(tuple(shape[1:]))
                    datum = pb2.Datum(channels=shape[0], height=shape[1], width=shape[2],
                                      data=data, label=label)
                    records.append((f"{index:08d}_{rel}".encode(), datum.SerializeToString()))
                while True:
                    try:
                        with env.begin(write=True) as txn:
                            for key, value in records:
                                txn.put(key, value)
                        break
                    except lmdb.MapFullError:
                        map_size *= 2  # the aborted transaction is redone in a larger map
                        env.set_mapsize(map_size)
                summary.written += len(records)
                bar.update(len(chunk))
                bar.set_postfix_str(f"skipped {len(summary.skipped)}", refresh=False)
        env.sync(True)
    finally:
        env.close()
