"""Writes the golden .dsz files beside this script and manifest.json with their decoded sha256.

    python tests/data/golden/make_golden.py            # every file, this checkout's encoder
    python tests/data/golden/make_golden.py --old      # also the older header variants

tiny.caffemodel (not committed: the test rebuilds it from the same seed and checks its sha256)
is a two-layer net built here from a fixed seed (no training): ip1 48x40 about
12% kept with a long zero run (so gap-255 fillers appear, and a kept weight sits exactly where a
filler would, the case the exact-mask format handles), ip2 10x48. Each codec pair is one file
written by this checkout. `--old` writes one file per older header layout, with the encoder of
the commit that introduced it (`git archive REV` into a temporary directory, run with the same
interpreter); one of them (d47e869's zstd gap255_kept section) is no longer read, and the
manifest records the one-line error it is refused with instead of a sha256. Rewrite the files
only on purpose: tests/test_golden.py exists to prove that files written earlier still decode
to the same bytes.
"""
import argparse
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
SOURCE = HERE / "tiny.caffemodel"
EB = 0.01
LOSSY = ("sz2", "sz3", "zfp", "quant")
INDEX = ("zstd", "gzip", "blosc", "ctx")
# Older layouts: the commit whose encoder wrote each, and what sets it apart from today's.
OLD = {
    "v0-sz2-version": ("c024ee7", "deepsz_caffe.dsz",
                       "the first layout: sz2_version only (no codec_versions), no exact-mask fields"),
    "v1-codec-versions": ("ca6cb18", "deepsz_caffe.format.network",
                          "codec_versions; no gap255_kept (the mask is the decoded nonzeros)"),
    # Refused today (manifest "refused"): f02e187 changed this section to LEB128 varints.
    "v2-gap255-kept-zstd": ("d47e869", "deepsz_caffe.format.network",
                            "exact mask: gap255_kept section as a zstd frame"),
}


def tiny_net() -> bytes:
    """A serialized NetParameter: Input, ip1 (48x40), ReLU, ip2 (10x48), biases included."""
    from deepsz_caffe.caffe.io import caffe_pb2

    pb2, rng = caffe_pb2(), np.random.default_rng(20190622)
    ip1 = rng.normal(0, 0.05, (48, 40)).astype(np.float32)
    ip1[rng.random(ip1.shape) > 0.12] = 0
    flat = ip1.reshape(-1)
    flat[600:1200] = 0                       # a run longer than 255: fillers
    last = int(np.flatnonzero(flat[:600])[-1])
    flat[[last + 255, last + 510]] = 0.0423  # kept weights exactly at filler positions
    ip2 = rng.normal(0, 0.1, (10, 48)).astype(np.float32)
    ip2[rng.random(ip2.shape) > 0.3] = 0
    net = pb2.NetParameter(name="golden-tiny")
    net.layer.add(name="data", type="Input", top=["data"]).input_param.shape.add(dim=[1, 40])
    for name, bottom, w in (("ip1", "data", ip1), ("ip2", "ip1", ip2)):
        layer = net.layer.add(name=name, type="InnerProduct", bottom=[bottom], top=[name])
        layer.inner_product_param.num_output = w.shape[0]
        for arr in (w, rng.normal(0, 0.01, w.shape[0]).astype(np.float32)):
            blob = layer.blobs.add()
            blob.shape.dim.extend(arr.shape)
            blob.data.extend(arr.ravel().tolist())
        if name == "ip1":
            net.layer.add(name="relu1", type="ReLU", bottom=["ip1"], top=["ip1"])
    return net.SerializeToString()


def decoded(dsz: Path) -> dict:
    """{"decoded_sha256": ...}, or {"refused": the one-line error} for a layout no longer read."""
    from deepsz_caffe.errors import DeepSZError
    from deepsz_caffe.format import network

    with tempfile.TemporaryDirectory() as tmp:
        try:
            out = network.decode(dsz, Path(tmp) / "decoded.caffemodel")
        except DeepSZError as e:
            return {"refused": str(e).replace(str(dsz), "<file>")}
        return {"decoded_sha256": hashlib.sha256(out.read_bytes()).hexdigest()}


def write_current() -> dict:
    from deepsz_caffe.format import network

    rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], check=True,
                         capture_output=True, text=True).stdout.strip()
    entries = {}
    for lossy in LOSSY:
        for index in INDEX:
            name = f"{lossy}-{index}"
            path = HERE / f"{name}.dsz"
            path.unlink(missing_ok=True)
            network.encode(SOURCE, path, eb_all=EB, lossy=lossy, lossless=index)
            entries[name] = {"file": path.name, "lossy": lossy, "index": index, "written_by": rev}
    return entries


def write_old() -> dict:
    entries = {}
    for name, (rev, module, what) in OLD.items():
        path = HERE / f"{name}.dsz"
        path.unlink(missing_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            tar = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "deepsz_caffe"],
                                 check=True, capture_output=True).stdout
            tarfile.open(fileobj=io.BytesIO(tar)).extractall(tmp, filter="data")
            code = (f"import {module} as m; m.encode({str(SOURCE)!r}, {str(path)!r}, eb_all={EB}, "
                    "lossy='sz2', lossless='zstd')")
            subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp,
                           env={**os.environ, "PYTHONPATH": tmp})
        entries[name] = {"file": path.name, "lossy": "sz2", "index": "zstd", "written_by": rev,
                         "layout": what}
    return entries


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--old", action="store_true", help="also the older header variants (git archive)")
    args = p.parse_args()
    SOURCE.write_bytes(tiny_net())
    manifest_path = HERE / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {"files": {}}
    manifest["files"].update(write_current())
    if args.old:
        manifest["files"].update(write_old())
    manifest["source"] = {"file": SOURCE.name, "sha256": hashlib.sha256(SOURCE.read_bytes()).hexdigest(),
                          "error_bound": EB}
    for entry in manifest["files"].values():
        entry.pop("decoded_sha256", None), entry.pop("refused", None)
        entry.update(decoded(HERE / entry["file"]))
    manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    total = sum((HERE / e["file"]).stat().st_size for e in manifest["files"].values())
    print(f"wrote {len(manifest['files'])} files, {total:,} B")


if __name__ == "__main__":
    main()
