#!/usr/bin/env bash
# `make nncodec`: NNCodec 2.1.3 (MPEG NNR / DeepCABAC reference codec) in its own venv,
# .venv-nncodec, pinned by requirements-nncodec.txt. Never touches .venv: deepsz runs the codec
# as a child process (deepsz_caffe/baselines/nncodec.py). Idempotent: a re-run with the same
# lock file only re-checks the import.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${NNCODEC_VENV:-.venv-nncodec}
PYTHON=${PYTHON:-python3}
LOCK=requirements-nncodec.txt
STAMP=$VENV/.deepsz-stamp

step() { printf '[nncodec] %s\n' "$*"; }
fail() { printf '[nncodec] FAILED at step "%s": %s\n' "$1" "$2" >&2; exit 1; }
pip() { "$VENV/bin/python" -m pip -q --disable-pip-version-check "$@"; }

lock_hash=$(sha256sum "$LOCK" | cut -c1-16)
if [ "$(cat "$STAMP" 2>/dev/null)" != "$lock_hash" ] || [ ! -x "$VENV/bin/python" ]; then
  # 1. The venv (Python 3.11, like .venv; nncodec's extension is built for this interpreter).
  if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
      || fail venv "$PYTHON is not Python 3.11; set PYTHON=/path/to/python3.11"
    step "venv: creating $VENV"
    "$PYTHON" -m venv "$VENV" || fail venv "python -m venv failed (Debian: apt-get install python3-venv)"
  fi
  # 2. numpy<2 and the build tools, exactly as locked.
  step "pip: numpy and build tools from $LOCK"
  pip install --no-deps -c "$LOCK" numpy pybind11 setuptools wheel \
    || fail pip "pip install failed: check access to PyPI"
  # 3. nncodec from its sdist, compiled against the tools above (about 1.5 min on 2 cores).
  step "nncodec: building from its sdist (C++ DeepCABAC extension, pybind11)"
  pip install --no-deps --no-build-isolation --no-binary nncodec --force-reinstall -c "$LOCK" nncodec \
    || fail nncodec "building nncodec failed (needs g++ and the Python 3.11 headers; see above)"
fi

# 4. The codec path deepsz uses must import with numpy<2 (and without torch).
"$VENV/bin/python" -I -c 'import numpy, nncodec.extensions.deepCABAC, nncodec.nnc_core
assert numpy.__version__.startswith("1."), numpy.__version__' \
  || fail check "nncodec does not import in $VENV: delete $VENV and rerun make nncodec"
echo "$lock_hash" > "$STAMP"
step "ready: $VENV/bin/python (nncodec $("$VENV/bin/python" -I -c 'from importlib.metadata import version; print(version("nncodec"))'))"
