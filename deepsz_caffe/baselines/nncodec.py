"""NNCodec (Fraunhofer's MPEG NNR reference codec, DeepCABAC) as a baseline, over a process boundary.

NNCodec pins numpy<2 and ships torch adapters, so it lives in its own environment, .venv-nncodec
(`make nncodec`); this module never imports it. `nncodec_round_trip` writes the arrays to an
.npz in a work directory, runs nncodec_child.py with that environment's Python, and reads back
the bitstream file, the arrays decoded from it and the codec's own timings; `nncodec_decode`
decodes a stored bitstream alone in a fresh child. The bitstream file stays in the work
directory: its size is what a comparison should count. Only nncodec.nnc.compress/decompress
run (numpy arrays in, numpy arrays out), so .venv-nncodec holds numpy and nncodec's C++
extension but no torch: the child replaces nncodec.framework (PyTorch/TensorFlow model
adapters, imported by nncodec.nnc at import time, never called on arrays) by empty modules
that raise if anything touches them.

Codec facts measured with nncodec 2.1.3 (see tests/test_nncodec.py): a lower qp means a finer
step (4 qps per octave: step = (4 + qp % 4) * 2**(qp // 4 - 2)); with dependent quantisation
(`dq=True`, NNCodec's default) the error can exceed half a step and a few pruned zeros decode to
small nonzero values; with `dq=False` the error is at most half a step and zeros stay zero.
"""
import io
import json
import os
import subprocess
from pathlib import Path
from typing import NamedTuple

import numpy as np

from deepsz_caffe.atomic import write_bytes
from deepsz_caffe.errors import CodecError, ConfigError
from ..timing import Stopwatch

CHILD = Path(__file__).with_name("nncodec_child.py")
VENV = Path(__file__).resolve().parents[2] / ".venv-nncodec"
ENV_VAR = "DEEPSZ_NNCODEC_PYTHON"
MISSING = "NNCodec environment not found: run `make nncodec`"


class RoundTrip(NamedTuple):
    bitstream: bytes                 # the NNR bitstream, as written to workdir/bitstream.nnc
    decoded: dict[str, np.ndarray]   # float32, same names and shapes as the input
    seconds: dict[str, float]        # encode and decode (inside the codec), wall (whole child run)
    version: str                     # nncodec's version, as the child environment reports it


def nncodec_python() -> Path:
    """The interpreter of .venv-nncodec, or $DEEPSZ_NNCODEC_PYTHON; CodecError if it is absent."""
    python = Path(os.environ.get(ENV_VAR) or VENV / "bin" / "python")
    if not (python.is_file() and os.access(python, os.X_OK)):
        raise CodecError(f"{MISSING} (no interpreter at {python})")
    return python


def step_size(qp: int, qp_density: int = 2) -> float:
    """NNCodec's quantisation step for `qp` (its get_stepsize_from_qp, for reading sweeps)."""
    k = 1 << qp_density
    return (k + (qp & (k - 1))) * 2.0 ** ((qp >> qp_density) - qp_density)


def _check_input(arrays) -> dict[str, np.ndarray]:
    if not arrays:
        raise ConfigError("nncodec: no arrays to code")
    out = {}
    for name, a in arrays.items():
        a = np.asarray(a)
        # NNCodec reserves the _G/_H suffixes for the factors of decomposed tensors.
        if not isinstance(name, str) or not name or name.endswith(("_G", "_H")):
            raise ConfigError(f"nncodec: array name {name!r} is empty or ends in _G/_H")
        if a.ndim == 0 or a.size == 0 or not np.all(np.isfinite(a)):
            raise ConfigError(f"nncodec: array {name!r} must be non-empty and finite")
        out[name] = np.ascontiguousarray(a, dtype=np.float32)
    return out


def _run_child(python: Path, args: list[str], timeout: float, what: str) -> None:
    cmd = [str(python), "-I", str(CHILD), *args]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise CodecError(f"nncodec: no result after {timeout:.0f} s ({what})") from None
    except OSError as e:
        raise CodecError(f"{MISSING} ({python}: {e.strerror})") from None
    if done.returncode != 0:
        lines = (done.stderr.strip() or done.stdout.strip() or "no message").splitlines()
        raise CodecError(f"nncodec failed (exit {done.returncode}): {lines[-1]}")


def _read_output(workdir: Path) -> tuple[dict, dict[str, np.ndarray]]:
    try:
        meta = json.loads((workdir / "meta.json").read_text())
        with np.load(workdir / "decoded.npz", allow_pickle=False) as z:
            decoded = {name: z[name] for name in z.files}
    except (OSError, ValueError) as e:
        raise CodecError(f"nncodec: unreadable child output in {workdir}: {e}") from None
    for name, a in decoded.items():
        if a.dtype != np.float32:
            raise CodecError(f"nncodec: {name!r} decoded as {a.dtype}, expected float32")
    return meta, decoded


def nncodec_round_trip(arrays: dict, qp: int, workdir, *, qp_per_tensor: dict | None = None,
                       dq: bool = True, timeout: float = 600) -> RoundTrip:
    """Encode `arrays` into one NNR bitstream at `qp` (per-array overrides in `qp_per_tensor`),
    decode it, and check the decoded names and shapes. Every array is quantised at its qp, 1-D
    ones included. `workdir` (an existing directory) receives input.npz, bitstream.nnc,
    decoded.npz and meta.json."""
    arrays = _check_input(arrays)
    unknown = sorted(set(qp_per_tensor or {}) - set(arrays))
    if unknown:
        raise ConfigError(f"nncodec: qp_per_tensor names no input array: {unknown}")
    workdir = Path(workdir)
    if not workdir.is_dir():
        raise ConfigError(f"nncodec: work directory {workdir} does not exist")
    python = nncodec_python()
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    write_bytes(workdir / "input.npz", buf.getvalue())

    args = [str(workdir / "input.npz"), str(workdir), "--qp", str(int(qp))]
    args += [f"--qp-tensor={name}={int(q)}" for name, q in (qp_per_tensor or {}).items()]
    args += [] if dq else ["--no-dq"]
    with Stopwatch() as watch:
        _run_child(python, args, timeout, f"qp {qp}")
    wall = watch.seconds
    meta, decoded = _read_output(workdir)
    try:
        bitstream = (workdir / "bitstream.nnc").read_bytes()
    except OSError as e:
        raise CodecError(f"nncodec: unreadable child output in {workdir}: {e}") from None
    if sorted(decoded) != sorted(arrays) or meta.get("bitstream_bytes") != len(bitstream):
        raise CodecError(f"nncodec: decoded {sorted(decoded)}, expected {sorted(arrays)}")
    for name, a in arrays.items():
        if decoded[name].shape != a.shape:
            raise CodecError(f"nncodec: {name!r} decoded as {decoded[name].shape}, expected {a.shape}")
    seconds = {"encode": meta["encode_seconds"], "decode": meta["decode_seconds"], "wall": wall}
    return RoundTrip(bitstream, decoded, seconds, meta["nncodec_version"])



def nncodec_decode(bitstream: bytes, workdir, *, timeout: float = 600) -> RoundTrip:
    """Decode an NNR bitstream (as `nncodec_round_trip` wrote it) in a child process; seconds
    holds decode (inside the codec) and wall (the whole child run). `workdir` receives
    bitstream.nnc, decoded.npz and meta.json."""
    workdir = Path(workdir)
    if not workdir.is_dir():
        raise ConfigError(f"nncodec: work directory {workdir} does not exist")
    python = nncodec_python()
    write_bytes(workdir / "bitstream.nnc", bytes(bitstream))
    with Stopwatch() as watch:
        _run_child(python, ["--decode", str(workdir / "bitstream.nnc"), str(workdir)], timeout, "decode")
    wall = watch.seconds
    meta, decoded = _read_output(workdir)
    return RoundTrip(bytes(bitstream), decoded, {"decode": meta["decode_seconds"], "wall": wall},
                     meta["nncodec_version"])
