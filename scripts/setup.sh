#!/usr/bin/env bash
# One idempotent setup: Debian build/runtime packages, the .venv, pinned Python packages,
# BVLC Caffe (built once, cached), and this project installed editable (.venv/bin/deepsz).
# DEEPSZ_GPU=1 (make setup GPU=1) builds the CUDA Caffe instead, DEEPSZ_GPU=0 the CPU_ONLY one again;
# unset keeps the venv's last choice, so `make test` after `make setup GPU=1` keeps the GPU build.
# Each step says what it does; a failure names the step and what to do. A re-run skips done work.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
STAMPS=$VENV/.deepsz-stamps

step() { printf '[setup] %s\n' "$*"; }
fail() { printf '[setup] FAILED at step "%s": %s\n' "$1" "$2" >&2; exit 1; }

APT_PACKAGES=(build-essential cmake dpkg-dev libboost-system-dev libboost-thread-dev
  libboost-filesystem-dev libboost-regex-dev libboost-python-dev libgoogle-glog-dev libgflags-dev
  libprotobuf-dev protobuf-compiler libhdf5-dev liblmdb-dev libleveldb-dev libsnappy-dev
  libopenblas-dev)

# 1. Debian packages (compilers and the libraries Caffe links against).
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  step "apt: installing ${#missing[@]} Debian packages (${missing[*]})"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null && sudo -n true 2>/dev/null && SUDO="sudo -n" \
      || fail apt "not root and no password-less sudo: run 'sudo apt-get install ${missing[*]}' then rerun make setup"
  fi
  $SUDO apt-get update -qq || fail apt "apt-get update failed: check network access to Debian's mirror"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null \
    || fail apt "apt-get install failed (see above)"
fi

# 2. The virtualenv (Python 3.11: the Caffe wheel is built for exactly this interpreter).
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
    || fail venv "$PYTHON is not Python 3.11; set PYTHON=/path/to/python3.11"
  step "venv: creating $VENV"
  "$PYTHON" -m venv "$VENV" || fail venv "python -m venv failed (Debian: apt-get install python3-venv)"
fi
mkdir -p "$STAMPS"

# 3. Pinned Python packages (all of them, --no-deps: requirements.txt is a full lock).
req_hash=$(sha256sum requirements.txt | cut -c1-16)
if [ "$(cat "$STAMPS/requirements" 2>/dev/null)" != "$req_hash" ]; then
  step "pip: installing pinned packages from requirements.txt"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps -r requirements.txt \
    || fail pip "pip install failed: check access to PyPI"
  echo "$req_hash" > "$STAMPS/requirements"
fi

# 4. Caffe (pycaffe), from Debian's source package or the PyPI fallback; cached wheel on re-runs.
gpu=${DEEPSZ_GPU:-$(cat "$STAMPS/gpu" 2>/dev/null || echo 0)}
case "$gpu" in 0|1) ;; *) fail caffe "DEEPSZ_GPU (make setup GPU=...) must be 0 or 1, not '$gpu'";; esac
if [ "$gpu" = 1 ]; then
  # The arch list this venv was built for stays unless CUDA_ARCH_BIN names another (no surprise rebuild).
  CUDA_ARCH_BIN=${CUDA_ARCH_BIN:-$(cat "$STAMPS/cuda_arch_bin" 2>/dev/null || true)}; export CUDA_ARCH_BIN
  step "caffe: checking the GPU build (CUDA 13 from PyPI wheels; running it needs an NVIDIA driver >= 580)"
  nvidia-smi -L >/dev/null 2>&1 || step "no NVIDIA driver here: the GPU build compiles and imports (its check logs \
'Cannot create Cublas handle'), but cannot run Data-layer nets, even in CPU mode; make setup GPU=0 for CPU work"
else
  step "caffe: checking pycaffe"
fi
DEEPSZ_GPU=$gpu bash scripts/build_caffe.sh "$VENV/bin/python" || fail caffe "could not build or install Caffe (see above)"
echo "$gpu" > "$STAMPS/gpu"
if [ "$gpu" = 1 ]; then echo "${CUDA_ARCH_BIN:-}" > "$STAMPS/cuda_arch_bin"; fi

# 5. This project, editable, so .venv/bin/deepsz exists.
proj_hash=$(sha256sum pyproject.toml | cut -c1-16)
if [ "$(cat "$STAMPS/project" 2>/dev/null)" != "$proj_hash" ] || [ ! -x "$VENV/bin/deepsz" ]; then
  step "project: installing deepsz_caffe (editable)"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e . \
    || fail project "pip install -e . failed"
  echo "$proj_hash" > "$STAMPS/project"
fi
step "ready: $VENV/bin/python -c 'import caffe, deepsz_caffe' works; CLI: $VENV/bin/deepsz"
