"""One NNCodec (MPEG NNR, DeepCABAC) round trip, run INSIDE .venv-nncodec by baselines/nncodec.py.

    python -I nncodec_child.py IN.npz OUTDIR --qp N [--qp-tensor NAME=N ...] [--no-dq]
    python -I nncodec_child.py --decode IN.nnc OUTDIR

IN.npz holds named float32 arrays. Writes OUTDIR/bitstream.nnc (the NNR bitstream of all arrays),
OUTDIR/decoded.npz (decoded from that file alone) and OUTDIR/meta.json (encode/decode seconds,
qps used, nncodec version). With --decode, IN.nnc is a bitstream: only decoded.npz and
meta.json are written. Imports only the standard library, numpy and nncodec: it must not
see deepsz_caffe (whose numpy is 2.x), nor the sibling module nncodec.py, which would shadow the
real package (hence -I, and the sys.path filter below). Bad input: one line on stderr, exit 1.
"""
import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import argparse  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import types  # noqa: E402
from importlib.metadata import version  # noqa: E402

import numpy as np  # noqa: E402


def _placeholder_framework():
    """nncodec.nnc imports nncodec.framework at import time: its PyTorch/TensorFlow model
    adapters and datasets, which need torch, torchvision, OpenCV, pandas and scikit-learn.
    compress()/decompress() on a dict of numpy arrays never use it, so the venv does not install
    them; an empty stand-in lets the codec's own entry points load, and any use of it fails."""
    def refuse(name):
        raise ImportError(f"nncodec.framework.{name} is not installed in .venv-nncodec "
                          "(only the array codec path is)")

    package = types.ModuleType("nncodec.framework")
    package.__path__ = []
    for sub in ("tensorflow_model", "pytorch_model", "use_case_init"):
        module = types.ModuleType(f"nncodec.framework.{sub}")
        module.__getattr__ = refuse
        setattr(package, sub, module)
        sys.modules[module.__name__] = module
    sys.modules[package.__name__] = package


def _write(path: Path, data: bytes):
    """Atomic write (temp file + rename) with the umask's permissions, like deepsz_caffe.atomic."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("inp", type=Path, help=".npz of named float32 arrays (.nnc with --decode)")
    p.add_argument("outdir", type=Path)
    p.add_argument("--decode", action="store_true", help="decode the bitstream IN only")
    p.add_argument("--qp", type=int, help="NNR quantisation parameter (lower = finer)")
    p.add_argument("--qp-tensor", action="append", default=[], metavar="NAME=QP",
                   help="per-array qp overriding --qp")
    p.add_argument("--no-dq", action="store_true", help="plain uniform quantisation, no trellis DQ")
    return p.parse_args(argv)


def _load(args):
    """The input arrays and the qp of each (every array at --qp unless overridden: NNCodec would
    otherwise quantise 1-D arrays, which it takes for non-weights, at a fixed qp of -75)."""
    try:
        with np.load(args.inp, allow_pickle=False) as z:
            arrays = {name: z[name] for name in z.files}
    except (OSError, ValueError) as e:
        sys.exit(f"nncodec_child: cannot read {args.inp}: {e}")
    if not arrays:
        sys.exit(f"nncodec_child: {args.inp} holds no arrays")
    for name, a in arrays.items():
        if a.dtype != np.float32 or a.ndim == 0 or a.size == 0:
            sys.exit(f"nncodec_child: array {name!r} must be a non-empty float32 array, "
                     f"got {a.dtype} {a.shape}")
    qps = {name: args.qp for name in arrays}
    for item in args.qp_tensor:
        name, _, qp = item.partition("=")
        if name not in arrays or not qp.lstrip("-").isdigit():
            sys.exit(f"nncodec_child: bad --qp-tensor {item!r} (NAME must be one of the arrays)")
        qps[name] = int(qp)
    return arrays, qps


def _decoded(decoded: dict, names, outdir: Path, meta: dict) -> None:
    buf = io.BytesIO()
    np.savez(buf, **{name: np.asarray(decoded[name], dtype=np.float32) for name in names})
    _write(outdir / "decoded.npz", buf.getvalue())
    meta = {"nncodec_version": version("nncodec"), "numpy_version": np.__version__, **meta}
    _write(outdir / "meta.json", (json.dumps(meta, indent=2) + "\n").encode())


def decode_only(args) -> int:
    """Decode a bitstream file, as a user of the stored file would."""
    try:
        blob = bytearray(args.inp.read_bytes())
    except OSError as e:
        sys.exit(f"nncodec_child: cannot read {args.inp}: {e.strerror}")
    _placeholder_framework()
    from nncodec.nnc import decompress

    t0 = time.perf_counter()
    try:
        decoded = decompress(blob)
    except Exception as e:  # the codec's own exceptions are untyped
        sys.exit(f"nncodec_child: {args.inp} is not a decodable NNR bitstream ({type(e).__name__})")
    seconds = time.perf_counter() - t0
    _decoded(decoded, sorted(decoded), args.outdir, {"decode_seconds": seconds})
    return 0


def main(argv=None) -> int:
    args = _args(argv)
    if not args.outdir.is_dir():
        sys.exit(f"nncodec_child: output directory {args.outdir} does not exist")
    if args.decode:
        return decode_only(args)
    if args.qp is None:
        sys.exit("nncodec_child: --qp is required to encode")
    arrays, qps = _load(args)
    _placeholder_framework()
    from nncodec.nnc import compress, decompress

    t0 = time.perf_counter()
    stream = compress(arrays, bitstream_path=None, qp=args.qp, qp_per_tensor=qps,
                      use_dq=not args.no_dq, return_bitstream=True)
    t1 = time.perf_counter()
    _write(args.outdir / "bitstream.nnc", bytes(stream))
    # Decode what was written, so the file alone is shown to carry everything.
    blob = bytearray((args.outdir / "bitstream.nnc").read_bytes())
    t2 = time.perf_counter()
    decoded = decompress(blob)
    t3 = time.perf_counter()

    _decoded(decoded, arrays, args.outdir, {"qp": qps, "dq": not args.no_dq, "bitstream_bytes": len(stream),
                                            "encode_seconds": t1 - t0, "decode_seconds": t3 - t2})
    return 0


if __name__ == "__main__":
    sys.exit(main())
