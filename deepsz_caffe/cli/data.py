"""deepsz lmdb | mean: Caffe's convert_imageset and compute_image_mean, for a Caffe built
without OpenCV (images decoded with Pillow)."""
import argparse

from ..errors import ConfigError

LMDB_EPILOG = """convert_imageset equivalents:
  convert_imageset ROOT/ LIST DB                  deepsz lmdb ROOT LIST -o DB
  -resize_height H -resize_width W                --resize-height H --resize-width W
  -shuffle                                        --shuffle [--seed S] (Python's RNG, reproducible)
  -gray                                           --gray
  -check_size                                     --check-size
  -backend lmdb                                   always LMDB (leveldb is not written)
  -encoded -encode_type                           not offered: this Caffe cannot decode them
  (no equivalent)                                 --limit N, --folders, --strict, --workers,
                                                  --no-exif-orientation, --force
Records: raw uint8 Datum, BGR, C x H x W, keys %08d_<path>; resize = cv::resize INTER_LINEAR
sampling (see docs/imagenet.md). Unreadable files are named on stderr and skipped.

compute_image_mean DB mean.binaryproto           deepsz mean DB -o mean.binaryproto
"""


def cmd_lmdb(a):
    from pathlib import Path

    from ..atomic import write_text
    from ..caffe.imageset import convert, folder_list, read_list

    if a.folders:
        if a.list:
            raise ConfigError("give a LIST file or --folders, not both")
        entries, classes = folder_list(a.root)
    else:
        if not a.list:
            raise ConfigError("give a LIST file (`relative/path label` per line) or --folders "
                              "(ROOT/<class>/<image>)")
        entries, classes = read_list(a.list), None
    s = convert(a.root, entries, a.output, resize_height=a.resize_height,
                resize_width=a.resize_width, gray=a.gray, shuffle=a.shuffle, seed=a.seed,
                limit=a.limit, strict=a.strict, check_size=a.check_size,
                exif_orientation=not a.no_exif_orientation, overwrite=a.force, workers=a.workers)
    out = Path(a.output)
    if classes is not None:  # beside the LMDB: an LMDB directory holds data.mdb/lock.mdb only
        mapping = out.with_name(out.name + ".classes.txt")
        write_text(mapping, "".join(f"{i} {name}\n" for i, name in enumerate(classes)))
        print(f"wrote {mapping}: {len(classes)} classes (label = index of the sorted folder name)")
    sizes = ", ".join(f"{w}x{h}" for h, w in sorted(s.sizes)[:3]) + (" ..." if len(s.sizes) > 3 else "")
    print(f"wrote {out}: {s.written} images ({sizes}) in {s.seconds:.1f} s "
          f"({s.written / max(s.seconds, 1e-9):.0f} images/s)"
          + (f"; skipped {len(s.skipped)} unreadable file(s), named above" if s.skipped else ""))
    if len(s.sizes) > 1:
        print(f"deepsz: warning: {len(s.sizes)} different image sizes: Caffe's Data layer batches "
              "one size (give --resize-height/--resize-width, or a crop_size below all of them)")


def cmd_mean(a):
    from ..caffe.lmdb import mean_image, write_mean

    from pathlib import Path

    mean = mean_image(a.lmdb)
    Path(a.output).parent.mkdir(parents=True, exist_ok=True)  # e.g. data/ilsvrc12/, as BVLC's
    write_mean(mean, a.output)
    c, h, w = mean.shape
    print(f"wrote {a.output}: mean of {a.lmdb} ({c}x{h}x{w}); per channel "
          + " ".join(f"{v:.2f}" for v in mean.reshape(c, -1).mean(axis=1)))


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def register(sub) -> None:
    lm = sub.add_parser("lmdb", help="image files -> Caffe LMDB (convert_imageset, decoded with Pillow)",
                        epilog=LMDB_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    lm.add_argument("root", help="folder the list's paths are relative to (ROOT/ of convert_imageset)")
    lm.add_argument("list", nargs="?", help="LISTFILE: `relative/path label` per line")
    lm.add_argument("-o", "--output", required=True, help="LMDB directory to create")
    lm.add_argument("--folders", action="store_true",
                    help="no list: ROOT/<class>/<image>, label = index of the sorted class folder "
                         "name (mapping written to OUTPUT.classes.txt)")
    lm.add_argument("--resize-height", type=int, default=0, help="resize to this height (0: keep)")
    lm.add_argument("--resize-width", type=int, default=0, help="resize to this width (0: keep)")
    lm.add_argument("--gray", action="store_true", help="one grayscale channel")
    lm.add_argument("--shuffle", action="store_true", help="shuffle the list before writing")
    lm.add_argument("--seed", type=int, default=0, help="seed of --shuffle (default 0)")
    lm.add_argument("--limit", type=_positive, help="only the first N images (after --shuffle)")
    lm.add_argument("--check-size", action="store_true", help="fail unless every image has one size")
    lm.add_argument("--strict", action="store_true", help="fail on the first unreadable file "
                                                          "(default: name it, skip it, count it)")
    lm.add_argument("--no-exif-orientation", action="store_true",
                    help="ignore EXIF orientation (as OpenCV < 3.1 did; default: apply it, as "
                         "convert_imageset on OpenCV >= 3.1)")
    lm.add_argument("--workers", type=_positive, help="decoding processes (default: one per core)")
    lm.add_argument("--force", action="store_true", help="replace an existing LMDB at OUTPUT")
    lm.set_defaults(func=cmd_lmdb)

    me = sub.add_parser("mean", help="mean image of an LMDB as .binaryproto (compute_image_mean)")
    me.add_argument("lmdb", help="LMDB of raw Datums (e.g. from deepsz lmdb)")
    me.add_argument("-o", "--output", required=True, help="mean .binaryproto for transform_param "
                                                          "{ mean_file }")
    me.set_defaults(func=cmd_mean)
