"""caffe.imageset (deepsz lmdb) and caffe.lmdb.mean_image (deepsz mean): every kind of input
decodes, resized or not, in colour or gray, to the very pixels OpenCV's imread and resize give
(opencv-python, as convert_imageset uses them); bad files; what Caffe's Data layer reads."""
import io
import os
import re
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import lmdb
import numpy as np
import pytest
from PIL import Image

from deepsz_caffe.caffe import imageset
from deepsz_caffe.caffe.imageset import convert, decode, folder_list, read_list
from deepsz_caffe.caffe.io import caffe_pb2
from deepsz_caffe.caffe.lmdb import mean_image, read_mean, write_mean
from deepsz_caffe.errors import CaffeIOError, ConfigError

RNG = np.random.default_rng(7)


def smooth(h, w, c=3, seed=0):
    """A photo-like uint8 image (smooth gradients and noise: JPEG-friendly)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    planes = [127 + 100 * np.sin(xx / (7 + 3 * k) + yy / (11 + k) + rng.uniform(0, 6)) for k in range(c)]
    a = np.stack(planes, -1) + rng.normal(0, 6, (h, w, c))
    return np.clip(a, 0, 255).astype(np.uint8)


def bgr(rgb):
    """An RGB (or gray) HxW[xC] array as convert_imageset stores it: BGR, C x H x W."""
    rgb = np.asarray(rgb)
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[:, :, None], 3, axis=2)
    return np.ascontiguousarray(rgb[:, :, ::-1].transpose(2, 0, 1))


def pillow_rgb(path):
    """The reference decode: Pillow's own RGB conversion of the file, nothing else."""
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def png16(path, a: np.ndarray):
    """A 16-bit PNG (gray [H,W] or RGB [H,W,3], uint16) written by hand: Pillow cannot write RGB 16."""
    h, w = a.shape[:2]
    color = 0 if a.ndim == 2 else 2
    rows = a.astype(">u2").reshape(h, -1).tobytes()
    raw = b"".join(b"\0" + rows[i * len(rows) // h:(i + 1) * len(rows) // h] for i in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, color, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def opencv(path, gray: bool = False, size: tuple | None = None) -> np.ndarray:
    """What convert_imageset stores for `path`: OpenCV's imread (and resize to `size`, width x
    height), as C x H x W."""
    a = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE if gray else cv2.IMREAD_COLOR)
    assert a is not None, path
    if size is not None:
        a = cv2.resize(a, size)
    return a[None] if gray else np.ascontiguousarray(a.transpose(2, 0, 1))


def records(path):
    pb2 = caffe_pb2()
    with lmdb.open(str(path), readonly=True, lock=False) as env, env.begin() as txn:
        out = []
        for key, value in txn.cursor():
            d = pb2.Datum.FromString(value)
            out.append((key.decode(), d.label, np.frombuffer(d.data, np.uint8).reshape(
                d.channels, d.height, d.width), d.encoded))
        return out


# -- every input kind --------------------------------------------------------------------------

def test_rgb_and_gray_jpeg_and_png(tmp_path):
    a = smooth(37, 53)
    Image.fromarray(a).save(tmp_path / "c.png")
    Image.fromarray(a).save(tmp_path / "c.jpg", quality=90)
    Image.fromarray(a[:, :, 1]).save(tmp_path / "g.jpg", quality=90)
    assert np.array_equal(decode(tmp_path / "c.png"), bgr(a))  # lossless: the very pixels
    assert np.array_equal(decode(tmp_path / "c.jpg"), bgr(pillow_rgb(tmp_path / "c.jpg")))
    gray = decode(tmp_path / "g.jpg")
    assert gray.shape == (3, 37, 53) and np.array_equal(gray[0], gray[2])  # gray replicated
    assert np.array_equal(gray, bgr(pillow_rgb(tmp_path / "g.jpg")))


def test_exif_orientation_is_applied_as_opencv_does(tmp_path):
    a = smooth(20, 32)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    Image.fromarray(a).save(tmp_path / "o.jpg", quality=95, exif=exif)
    raw = pillow_rgb(tmp_path / "o.jpg")  # the stored pixels, 20 x 32
    assert raw.shape[:2] == (20, 32)
    assert np.array_equal(decode(tmp_path / "o.jpg"), bgr(np.rot90(raw, k=-1)))
    assert np.array_equal(decode(tmp_path / "o.jpg", exif_orientation=False), bgr(raw))


def test_cmyk(tmp_path):
    cmy = smooth(16, 24)
    cmyk = np.concatenate([cmy, np.zeros((16, 24, 1), np.uint8)], axis=2)  # K = 0: RGB = 255 - CMY
    Image.fromarray(cmyk, "CMYK").save(tmp_path / "k.tif")
    assert np.array_equal(decode(tmp_path / "k.tif"), bgr(255 - cmy))
    Image.fromarray(cmyk, "CMYK").save(tmp_path / "k.jpg", quality=95)  # as ImageNet's CMYK JPEGs
    assert np.array_equal(decode(tmp_path / "k.jpg"), opencv(tmp_path / "k.jpg"))


def test_alpha_is_dropped_not_composited(tmp_path):
    a = smooth(12, 10)
    alpha = RNG.integers(0, 256, (12, 10), dtype=np.uint8)
    alpha[:3] = 0  # fully transparent rows keep their colour, as OpenCV's IMREAD_COLOR does
    Image.fromarray(np.dstack([a, alpha]), "RGBA").save(tmp_path / "a.png")
    assert np.array_equal(decode(tmp_path / "a.png"), bgr(a))
    Image.fromarray(np.dstack([a[:, :, 0], alpha]), "LA").save(tmp_path / "la.png")
    assert np.array_equal(decode(tmp_path / "la.png"), bgr(a[:, :, 0]))


def test_palette_png_with_transparency(tmp_path):
    palette = RNG.integers(0, 256, (16, 3), dtype=np.uint8)
    index = RNG.integers(0, 16, (9, 14), dtype=np.uint8)
    im = Image.fromarray(index, "P")
    im.putpalette(palette.ravel().tolist())
    im.save(tmp_path / "p.png", transparency=bytes([0, 128] + [255] * 14))
    with Image.open(tmp_path / "p.png") as check:
        assert check.mode == "P" and "transparency" in check.info
    assert np.array_equal(decode(tmp_path / "p.png"), bgr(palette[index]))


def test_16_bit_keeps_the_high_byte(tmp_path):
    g = RNG.integers(0, 65536, (8, 11), dtype=np.uint16)
    png16(tmp_path / "g16.png", g)
    assert np.array_equal(decode(tmp_path / "g16.png"), bgr((g >> 8).astype(np.uint8)))
    rgb = RNG.integers(0, 65536, (8, 11, 3), dtype=np.uint16)
    png16(tmp_path / "c16.png", rgb)
    assert np.array_equal(decode(tmp_path / "c16.png"), bgr((rgb >> 8).astype(np.uint8)))


def test_gray_option(tmp_path):
    a = smooth(30, 40)
    Image.fromarray(a).save(tmp_path / "c.png")
    Image.fromarray(a).save(tmp_path / "c.jpg", quality=92)
    assert np.array_equal(decode(tmp_path / "c.png", gray=True), opencv(tmp_path / "c.png", gray=True))
    luma = decode(tmp_path / "c.jpg", gray=True)  # libjpeg's own luma, as OpenCV asks for it
    assert luma.shape == (1, 30, 40)
    via_rgb = np.asarray(Image.fromarray(pillow_rgb(tmp_path / "c.jpg")).convert("L")).astype(int)
    assert np.abs(luma[0].astype(int) - via_rgb).max() <= 3


@pytest.mark.parametrize("src, dst", [((53, 71), (32, 32)), ((500, 375), (256, 256)),
                                      ((512, 512), (256, 256)), ((17, 23), (40, 30)), ((60, 20), (30, 45)),
                                      ((3, 2), (227, 227))])
def test_resize_is_cv_inter_linear_bit_for_bit(tmp_path, src, dst):
    a = smooth(src[1], src[0], seed=3)
    Image.fromarray(a).save(tmp_path / "r.png")
    got = decode(tmp_path / "r.png", width=dst[0], height=dst[1])
    assert got.shape == (3, dst[1], dst[0])
    assert np.array_equal(got, opencv(tmp_path / "r.png", size=dst))
    # Pillow's antialiasing resize differs by far more when shrinking.
    if dst[0] < src[0] / 1.5:
        aa = bgr(np.asarray(Image.fromarray(a).resize(dst, Image.Resampling.BILINEAR)))
        assert np.abs(aa.astype(int) - got).max() > 2


def test_resize_of_noise_at_random_sizes_is_cv_inter_linear():
    """Random sizes up and down, 1 and 3 channels: every rounding of OpenCV's fixed point."""
    rng = np.random.default_rng(11)
    for _ in range(60):
        (h, w), (height, width) = rng.integers(1, 300, 2), rng.integers(1, 300, 2)
        a = rng.integers(0, 256, (h, w) if rng.random() < 0.5 else (h, w, 3), dtype=np.uint8)
        assert np.array_equal(imageset._inter_linear(a, int(width), int(height)),
                              cv2.resize(a, (int(width), int(height)))), (a.shape, width, height)


def _exif(path, a, orientation, **options):
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(a).save(path, exif=exif, **options)


def _palette(path, a):
    im = Image.fromarray((a[..., 0] >> 4).astype(np.uint8), "P")
    im.putpalette(np.random.default_rng(2).integers(0, 256, 48).tolist())
    im.save(path, transparency=bytes([0, 128] + [255] * 14))


A = smooth(45, 61, seed=9)
KINDS = {  # name -> writer of a 61 x 45 file of that kind
    "rgb.jpg": lambda p: Image.fromarray(A).save(p, quality=90),
    "gray.jpg": lambda p: Image.fromarray(A[..., 0]).save(p, quality=90),
    "cmyk.jpg": lambda p: Image.fromarray(np.dstack([A, A[..., :1] // 3]), "CMYK").save(p, quality=90),
    "exif3.jpg": lambda p: _exif(p, A, 3, quality=90), "exif6.jpg": lambda p: _exif(p, A, 6, quality=90),
    "exif8.jpg": lambda p: _exif(p, A, 8, quality=90), "exif6.png": lambda p: _exif(p, A, 6),
    "exif6.webp": lambda p: _exif(p, A, 6, lossless=True),
    "rgb.png": lambda p: Image.fromarray(A).save(p), "gray.png": lambda p: Image.fromarray(A[..., 1]).save(p),
    "palette.png": lambda p: _palette(p, A),
    "rgba.png": lambda p: Image.fromarray(np.dstack([A, A[..., 0]]), "RGBA").save(p),
    "la.png": lambda p: Image.fromarray(A[..., :2].copy(), "LA").save(p),
    "gray16.png": lambda p: png16(p, A[..., 0].astype(np.uint16) * 257),
    "rgb.bmp": lambda p: Image.fromarray(A).save(p), "rgb.tif": lambda p: Image.fromarray(A).save(p),
    "cmyk.tif": lambda p: Image.fromarray(np.dstack([A, A[..., :1] // 3]), "CMYK").save(p),
    "rgba.tif": lambda p: Image.fromarray(np.dstack([A, A[..., 0]]), "RGBA").save(p),
    "la.tif": lambda p: Image.fromarray(A[..., :2].copy(), "LA").save(p),
    "rgb.webp": lambda p: Image.fromarray(A).save(p, lossless=True),
    "palette.gif": lambda p: Image.fromarray(A).convert("P").save(p),
    "rgb.ppm": lambda p: Image.fromarray(A).save(p), "gray.pgm": lambda p: Image.fromarray(A[..., 2]).save(p),
}


@pytest.mark.parametrize("size", [None, (32, 24), (80, 70)], ids=["as-is", "shrunk", "grown"])
@pytest.mark.parametrize("gray", [False, True], ids=["colour", "gray"])
@pytest.mark.parametrize("kind", KINDS)
def test_every_input_kind_reads_as_opencv_reads_it(tmp_path, kind, gray, size):
    path = tmp_path / kind
    KINDS[kind](path)
    got = decode(path, gray=gray, **({"width": size[0], "height": size[1]} if size else {}))
    assert np.array_equal(got, opencv(path, gray, size))


@pytest.mark.parametrize("kind", ["cmyk.jpg", "cmyk.tif", "rgb.png", "rgb.webp", "rgb.bmp"])
def test_a_tall_image_converts_block_by_block_as_opencv_does(tmp_path, kind):
    """Conversions run 256 rows at a time (memory); an image of 600 rows crosses the seams."""
    tall = smooth(600, 37, seed=4)
    path = tmp_path / kind
    if kind.startswith("cmyk"):
        Image.fromarray(np.dstack([tall, tall[..., :1] // 2]), "CMYK").save(path, quality=90)
    else:
        Image.fromarray(tall).save(path, **({"lossless": True} if kind.endswith("webp") else {}))
    for gray in (False, True):
        assert np.array_equal(decode(path, gray=gray), opencv(path, gray))


def test_a_tiff_with_associated_alpha_is_within_1_of_opencv(tmp_path):
    """OpenCV keeps the stored (premultiplied) colour; Pillow divides it by alpha on reading, and
    multiplying back loses at most one level."""
    alpha = A[..., :1]
    stored = (A.astype(int) * alpha // 255).astype(np.uint8)
    path = tmp_path / "associated.tif"
    Image.fromarray(np.dstack([stored, alpha]), "RGBA").save(path)
    raw = bytearray(path.read_bytes())  # ExtraSamples (tag 338, one SHORT) 2 -> 1: associated alpha
    at = raw.find(bytes.fromhex("5201 0300 01000000 0200"))
    assert at > 0
    raw[at + 8] = 1
    path.write_bytes(raw)
    with Image.open(path) as im:
        assert im.tag_v2[338] == (1,)
    assert np.array_equal(opencv(path), bgr(stored))
    assert np.abs(decode(path).astype(int) - opencv(path)).max() <= 1


def test_a_16_bit_colour_png_read_as_gray_is_within_2_of_opencv(tmp_path):
    """The one measured difference: libpng converts to gray at 16 bits, then drops the low
    byte; Pillow hands over only the high bytes of a 16-bit colour PNG."""
    png16(tmp_path / "c16.png", RNG.integers(0, 65536, (30, 40, 3), dtype=np.uint16))
    got, want = decode(tmp_path / "c16.png", gray=True), opencv(tmp_path / "c16.png", gray=True)
    assert np.array_equal(decode(tmp_path / "c16.png"), opencv(tmp_path / "c16.png"))  # colour: exact
    assert 0 < np.abs(got.astype(int) - want).max() <= 2


# -- the LMDB ------------------------------------------------------------------------------------

@pytest.fixture
def small_set(tmp_path):
    """ROOT with 12 images in 3 class folders (PNG and JPEG, two sizes) and a list file."""
    root = tmp_path / "root"
    lines = []
    for i in range(12):
        cls = ["b_dog", "a_cat", "c_eel"][i % 3]
        (root / cls).mkdir(parents=True, exist_ok=True)
        ext = "png" if i % 2 else "jpg"
        Image.fromarray(smooth(20 + i % 2, 24, seed=i)).save(root / cls / f"im {i}.{ext}")
        lines.append(f"{cls}/im {i}.{ext} {i % 3}")
    (tmp_path / "list.txt").write_text("\n".join(lines) + "\n")
    return root, tmp_path / "list.txt"


def test_records_are_convert_imagesets(small_set, tmp_path):
    root, listing = small_set
    entries = read_list(listing)
    assert entries[0] == ("b_dog/im 0.jpg", 0)  # a path with a space, split at the last space
    s = convert(root, entries, tmp_path / "db", resize_height=16, resize_width=18, workers=1,
                progress=False)
    assert s.written == 12 and not s.skipped and s.sizes == {(16, 18)}
    recs = records(tmp_path / "db")
    assert [k for k, *_ in recs] == [f"{i:08d}_{p}" for i, (p, _) in enumerate(entries)]
    for (_key, label, pixels, encoded), (path, expected_label) in zip(recs, entries):
        assert label == expected_label and not encoded
        assert np.array_equal(pixels, decode(root / path, height=16, width=18))
    assert not list(tmp_path.glob(".db.partial*"))


def test_shuffle_limit_and_workers_agree(small_set, tmp_path):
    root, listing = small_set
    a = convert(root, read_list(listing), tmp_path / "a", shuffle=True, seed=3, limit=7,
                workers=1, progress=False)
    # Two worker processes, in a child (its pool's helper processes end with it).
    r = subprocess.run([sys.executable, "-m", "deepsz_caffe.cli", "lmdb", root, listing, "-o",
                        tmp_path / "b", "--shuffle", "--seed", "3", "--limit", "7", "--workers", "2"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    ra, rb = records(tmp_path / "a"), records(tmp_path / "b")
    assert a.written == len(rb) == 7 and a.sizes == {(20, 24), (21, 24)}
    assert [(k, y, p.tobytes()) for k, y, p, _ in ra] == [(k, y, p.tobytes()) for k, y, p, _ in rb]
    unshuffled = [f"{i:08d}_{p}" for i, (p, _) in enumerate(read_list(listing)[:7])]
    assert [k for k, *_ in ra] != unshuffled


def test_folder_mode(small_set, tmp_path):
    root, _ = small_set
    entries, classes = folder_list(root)
    assert classes == ["a_cat", "b_dog", "c_eel"]
    assert {label for path, label in entries if path.startswith("b_dog/")} == {1}
    r = subprocess.run([sys.executable, "-m", "deepsz_caffe.cli", "lmdb", root, "--folders",
                        "-o", tmp_path / "f", "--resize-height", "8", "--resize-width", "8"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "f.classes.txt").read_text() == "0 a_cat\n1 b_dog\n2 c_eel\n"
    assert len(records(tmp_path / "f")) == 12


def test_bad_files_are_named_skipped_and_counted(small_set, tmp_path):
    root, listing = small_set
    good = (root / "a_cat" / "im 1.png").read_bytes()
    (root / "a_cat" / "trunc.png").write_bytes(good[: len(good) // 2])
    jpg = (root / "b_dog" / "im 0.jpg").read_bytes()
    (root / "b_dog" / "trunc.jpg").write_bytes(jpg[: len(jpg) // 2])
    (root / "a_cat" / "notes.jpg").write_text("not an image")
    listing.write_text(listing.read_text() + "a_cat/trunc.png 1\nb_dog/trunc.jpg 0\n"
                       "a_cat/notes.jpg 1\na_cat/missing.jpg 1\n")
    cmd = [sys.executable, "-m", "deepsz_caffe.cli", "lmdb", root, listing, "-o", tmp_path / "db"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    skipped = [ln for ln in r.stderr.splitlines() if "deepsz: skipped" in ln]
    assert len(skipped) == 4 and all(name in r.stderr for name in
                                     ("trunc.png", "trunc.jpg", "notes.jpg", "missing.jpg: no such file"))
    assert "wrote" in r.stdout and "12 images" in r.stdout and "skipped 4" in r.stdout
    assert len(records(tmp_path / "db")) == 12 and "Traceback" not in r.stderr

    r = subprocess.run(cmd[:-2] + ["-o", str(tmp_path / "strict"), "--strict"], capture_output=True,
                       text=True)
    assert r.returncode == 1 and "deepsz: error: cannot read image" in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()[-1]) < 300
    assert not (tmp_path / "strict").exists() and not list(tmp_path.glob(".strict.partial*"))


def test_interrupted_run_leaves_no_lmdb(small_set, tmp_path):
    root, listing = small_set

    def interrupt(path, why):
        raise KeyboardInterrupt
    (root / "a_cat" / "bad.jpg").write_text("x")
    entries = read_list(listing)
    entries.insert(5, ("a_cat/bad.jpg", 1))
    with pytest.raises(KeyboardInterrupt):
        convert(root, entries, tmp_path / "db", report=interrupt, workers=1, progress=False)
    assert not (tmp_path / "db").exists() and not list(tmp_path.glob(".db.partial*"))


def test_map_grows_as_needed(small_set, tmp_path, monkeypatch):
    root, listing = small_set
    monkeypatch.setattr(imageset, "_map_size", lambda *_a: 32 << 10)  # far too small at first
    monkeypatch.setattr(imageset, "CHUNK", 3)
    s = convert(root, read_list(listing), tmp_path / "db", workers=1, progress=False)
    assert s.written == 12 and len(records(tmp_path / "db")) == 12


def test_bad_arguments(small_set, tmp_path):
    root, listing = small_set
    with pytest.raises(ConfigError, match="both --resize-height and --resize-width"):
        convert(root, read_list(listing), tmp_path / "x", resize_height=10)
    with pytest.raises(ConfigError, match="integer label"):
        (tmp_path / "l2").write_text("a.jpg cat\n")
        read_list(tmp_path / "l2")
    with pytest.raises(CaffeIOError, match="--check-size"):
        convert(root, read_list(listing), tmp_path / "x", check_size=True, workers=1, progress=False)
    convert(root, read_list(listing)[:2], tmp_path / "x", workers=1, progress=False)
    with pytest.raises(ConfigError, match="already exists"):
        convert(root, read_list(listing)[:2], tmp_path / "x", workers=1, progress=False)
    r = subprocess.run([sys.executable, "-m", "deepsz_caffe.cli", "lmdb", root, "-o", tmp_path / "y"],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "give a LIST file" in r.stderr


def test_help_lists_convert_imageset_equivalents():
    r = subprocess.run([sys.executable, "-m", "deepsz_caffe.cli", "lmdb", "--help"],
                       capture_output=True, text=True)
    for flag in ("-resize_height", "-shuffle", "-gray", "-check_size", "-encoded", "compute_image_mean"):
        assert flag in r.stdout


# -- the mean ------------------------------------------------------------------------------------

def test_mean_is_compute_image_means_and_caffe_subtracts_it(small_set, tmp_path):
    """deepsz mean -> .binaryproto; a TEST phase with transform_param { mean_file } feeds the
    net exactly (pixels - mean)."""
    import caffe

    root, listing = small_set
    convert(root, read_list(listing), tmp_path / "db", resize_height=8, resize_width=10,
            workers=1, progress=False)
    r = subprocess.run([sys.executable, "-m", "deepsz_caffe.cli", "mean", tmp_path / "db",
                        "-o", tmp_path / "mean.binaryproto"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    pixels = np.stack([p for _, _, p, _ in records(tmp_path / "db")]).astype(np.float64)
    mean = read_mean(tmp_path / "mean.binaryproto")
    assert mean.shape == (3, 8, 10) and np.array_equal(mean, pixels.mean(axis=0).astype(np.float32))
    assert np.array_equal(mean_image(tmp_path / "db", progress=False), mean)
    (tmp_path / "net.prototxt").write_text(f"""name: "m"
layer {{ name: "data" type: "Data" top: "data" top: "label" include {{ phase: TEST }}
  transform_param {{ mean_file: "{tmp_path / 'mean.binaryproto'}" }}
  data_param {{ source: "{tmp_path / 'db'}" batch_size: 4 backend: LMDB }} }}
layer {{ name: "fc" type: "InnerProduct" bottom: "data" top: "fc"
  inner_product_param {{ num_output: 3 weight_filler {{ type: "xavier" }} }} }}
layer {{ name: "acc" type: "Accuracy" bottom: "fc" bottom: "label" top: "acc" }}
""")
    caffe.set_mode_cpu()
    net = caffe.Net(str(tmp_path / "net.prototxt"), caffe.TEST)
    net.forward()
    assert np.allclose(net.blobs["data"].data, (pixels[:4] - mean).astype(np.float32), atol=1e-5)


def test_mean_refuses_encoded_and_mixed_sizes(tmp_path):
    pb2 = caffe_pb2()
    with lmdb.open(str(tmp_path / "enc"), map_size=1 << 24) as env, env.begin(write=True) as txn:
        buf = io.BytesIO()
        Image.fromarray(smooth(4, 4)).save(buf, "PNG")
        txn.put(b"0", pb2.Datum(channels=3, height=4, width=4, data=buf.getvalue(),
                                encoded=True).SerializeToString())
    with pytest.raises(CaffeIOError, match="encoded"):
        mean_image(tmp_path / "enc", progress=False)
    with lmdb.open(str(tmp_path / "mix"), map_size=1 << 24) as env, env.begin(write=True) as txn:
        txn.put(b"0", pb2.Datum(channels=1, height=2, width=2, data=bytes(4)).SerializeToString())
        txn.put(b"1", pb2.Datum(channels=1, height=2, width=3, data=bytes(6)).SerializeToString())
    with pytest.raises(CaffeIOError, match="one image size"):
        mean_image(tmp_path / "mix", progress=False)
    with pytest.raises(CaffeIOError, match="does not exist"):
        mean_image(tmp_path / "none", progress=False)
    write_mean(np.ones((1, 2, 2), np.float32), tmp_path / "m.binaryproto")
    assert read_mean(tmp_path / "m.binaryproto").shape == (1, 2, 2)


# -- the README's recipe, verbatim, on a miniature ILSVRC layout ----------------------------------

RECIPE = re.compile(r"<!-- recipe:imagenet -->\s*```sh\n(.*?)```\s*<!-- /recipe:imagenet -->", re.S)
README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture(scope="module")
def mini_imagenet(tmp_path_factory):
    """The miniature layout (tests/imagenet_mini.py) with its `bvlc_alexnet.caffemodel`: trained
    here on LMDBs built as the recipe builds them (removed again), saved in the V1 format."""
    import imagenet_mini
    from deepsz_caffe.caffe.lmdb import mean_image, write_mean
    from deepsz_caffe.caffe.train import train

    root = imagenet_mini.make(tmp_path_factory.mktemp("ilsvrc"))
    train_db = root / "examples/imagenet/ilsvrc12_train_lmdb"
    val_db = root / "examples/imagenet/ilsvrc12_val_lmdb"
    convert(root / "ILSVRC2012_img_train", folder_list(root / "ILSVRC2012_img_train")[0], train_db,
            resize_height=256, resize_width=256, shuffle=True, workers=1, progress=False)
    convert(root / "ILSVRC2012_img_val", read_list(root / "val.txt"), val_db,
            resize_height=256, resize_width=256, workers=1, progress=False)
    (root / "data/ilsvrc12").mkdir(parents=True)
    write_mean(mean_image(train_db, progress=False), root / "data/ilsvrc12/imagenet_mean.binaryproto")
    cwd = os.getcwd()
    os.chdir(root)  # the prototxt's paths are relative, as BVLC's
    try:
        stats = train(root / "solver.prototxt", root.parent / "trained.caffemodel",
                      work_dir=root.parent / "train-work", seed=1)
    finally:
        os.chdir(cwd)
    imagenet_mini.to_v1(root.parent / "trained.caffemodel", root / "bvlc_alexnet.caffemodel")
    shutil.rmtree(root / "examples")
    shutil.rmtree(root / "data")
    return {"root": root, "top1": stats["top1"]}


def test_readme_recipe_runs_verbatim(mini_imagenet, tmp_path):
    """README's block, as written, from images to a verified .dsz; Caffe's Data layer then
    reads exactly the pixels Pillow decoded (and a float cv::resize(INTER_LINEAR) gives)."""
    import caffe

    from deepsz_caffe.caffe.io import caffe_pb2

    block = RECIPE.search(README.read_text()).group(1)
    assert block.count("deepsz ") == 8
    work = tmp_path / "ilsvrc"
    shutil.copytree(mini_imagenet["root"], work)
    v1 = caffe_pb2().NetParameter.FromString((work / "bvlc_alexnet.caffemodel").read_bytes())
    assert len(v1.layers) > 0 and not len(v1.layer)  # the V1 format, as the zoo's
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "GLOG_minloglevel": "2"}
    r = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=work, env=env,
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    tests = re.findall(r"top-1 ([\d.]+)%, top-5 ([\d.]+)% \((\d+) iterations of (\d+) = (\d+) images",
                       r.stdout)
    assert len(tests) == 2 and all(t[4] == "100" for t in tests), r.stdout
    original, decoded = float(tests[0][0]), float(tests[1][0])
    assert original >= 60 and original == pytest.approx(mini_imagenet["top1"])
    compressed = re.search(r"wrote alexnet.dsz: .*top-1 ([\d.]+)% -> ([\d.]+)%", r.stdout)
    assert compressed and float(compressed[1]) - float(compressed[2]) <= 0.2
    assert decoded == pytest.approx(float(compressed[2]))  # compress verified what decode gives
    assert (work / "alexnet.dsz").stat().st_size < (work / "pruned.caffemodel").stat().st_size / 4

    # What Caffe's Data layer sees, image by image in val.txt's order.
    entries = read_list(work / "val.txt")
    (tmp_path / "read.prototxt").write_text(
        'name: "read" layer { name: "data" type: "Data" top: "data" top: "label" '
        f'data_param {{ source: "{work / "examples/imagenet/ilsvrc12_val_lmdb"}" batch_size: 1 '
        "backend: LMDB } }")
    caffe.set_mode_cpu()
    net = caffe.Net(str(tmp_path / "read.prototxt"), caffe.TEST)
    kinds = set()
    for path, label in entries:
        net.forward()
        seen = net.blobs["data"].data[0]
        assert net.blobs["label"].data[0] == label
        assert np.array_equal(seen, decode(work / "ILSVRC2012_img_val" / path, height=256, width=256))
        with Image.open(work / "ILSVRC2012_img_val" / path) as im:
            kinds.add((im.format, im.mode))
        assert np.array_equal(seen, opencv(work / "ILSVRC2012_img_val" / path, size=(256, 256)))
    assert {("JPEG", "RGB"), ("PNG", "RGB"), ("JPEG", "L"), ("JPEG", "CMYK")} <= kinds
