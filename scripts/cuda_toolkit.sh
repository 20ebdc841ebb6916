# The GPU route of scripts/build_caffe.sh (sourced by it when CPU_ONLY=OFF / DEEPSZ_GPU=1; not run alone).
#
# CUDA 13.0 comes from pinned PyPI wheels, installed once under $CACHE/cuda-$CUDA_TAG next to a directory
# of links that gives cmake's FindCUDA the toolkit layout it expects: no system CUDA and no driver are
# needed to compile. Running needs an NVIDIA driver >= 580 (CUDA 13). Caffe is built with USE_CUDNN=OFF:
# BVLC's cuDNN layers call cudnnGetConvolutionForwardAlgorithm, removed in cuDNN 8, and the cuDNN wheels
# for CUDA 13 are cuDNN 9. The venv gets the cudart/cuBLAS/cuRAND wheels, and _caffe.so finds them through
# its RUNPATH ($ORIGIN/../nvidia/cu13/lib), so `import caffe` needs no LD_LIBRARY_PATH.
# This file's hash keys only the GPU wheel: editing it never rebuilds the CPU_ONLY one.
# Uses from build_caffe.sh: PY, CACHE, say, die, and CUDA_ARCHS (which it sets from cuda_archs).

CUDA_TAG=13.0.88
CUDA_BUILD_WHEELS=(nvidia-cuda-nvcc==13.0.88 nvidia-cuda-crt==13.0.88 nvidia-nvvm==13.0.88
  nvidia-cuda-cccl==13.0.85)
CUDA_RUNTIME_WHEELS=(nvidia-cuda-runtime==13.0.96 nvidia-cublas==13.0.2.14 nvidia-curand==10.4.0.35)
CUDA_LIB_RPATH='$ORIGIN/../nvidia/cu13/lib'  # _caffe.so sits in site-packages/caffe/
MIN_PER_ARCH=10  # nvcc minutes per architecture on 2 cores (63 .cu files); C++ adds ~3 min

cuda_archs() {  # -> "80 90": CUDA_ARCH_BIN, else the cards nvidia-smi lists, else 90 (H100)
  local a=${CUDA_ARCH_BIN:-} x
  if [ -z "$a" ] && command -v nvidia-smi >/dev/null 2>&1; then
    a=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null) || a=""
  fi
  a=$(echo "${a:-90}" | tr -s ' ,;\n' '\n' | tr -d '.' | grep -v '^$' | sort -n -u | tr '\n' ' ')
  for x in $a; do
    [[ $x =~ ^[0-9]{2,3}$ ]] || die "CUDA_ARCH_BIN: '$x' is not a compute capability like 90 or 8.6"
  done
  echo "${a% }"
}

gpu_key_suffix() {  # CUDA version, arch list (PTX for the newest), hash of this file
  echo "-cuda${CUDA_TAG}-sm${CUDA_ARCHS// /_}-ptx${CUDA_ARCHS##* }-$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-8)"
}

cache_dir_mode() {  # mktemp -d makes 0700 directories; give cache entries the umask's mode
  chmod "$(printf '%o' $((0777 & ~0$(umask))))" "$1"
}

cuda_toolkit_root() {  # -> the toolkit root; pip-downloads and installs the pinned wheels once
  local d=$CACHE/cuda-$CUDA_TAG tmp P f
  if [ ! -f "$d/DONE" ]; then
    say "downloading the pinned CUDA $CUDA_TAG wheels once (~560 MB; cached in $d)"
    mkdir -p "$CACHE"; tmp=$(mktemp -d "$CACHE/.tmp.XXXXXX")
    "$PY" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: -d "$tmp/wheels" \
      "${CUDA_BUILD_WHEELS[@]}" "${CUDA_RUNTIME_WHEELS[@]}" >&2 || { rm -rf "$tmp"; return 1; }
    "$PY" -m pip install -q --disable-pip-version-check --no-deps --no-index --target "$tmp/pip" \
      "$tmp"/wheels/*.whl >&2 || { rm -rf "$tmp"; return 1; }
    # Relative links, so the tree can be renamed into place. bin must be a real directory:
    # nvcc.profile sets TOP=$(_HERE_)/.., and nvcc links expect TOP/lib64.
    P=../../pip/nvidia/cu13
    mkdir -p "$tmp/root/bin" "$tmp/root/lib64"
    ln -s ../pip/nvidia/cu13/include "$tmp/root/include"; ln -s ../pip/nvidia/cu13/nvvm "$tmp/root/nvvm"
    for f in "$tmp"/pip/nvidia/cu13/bin/*; do ln -s "$P/bin/${f##*/}" "$tmp/root/bin/"; done
    for f in "$tmp"/pip/nvidia/cu13/lib/*; do ln -s "$P/lib/${f##*/}" "$tmp/root/lib64/"; done
    (cd "$tmp/root/lib64" && ln -s libcudart.so.13 libcudart.so && ln -s libcublas.so.13 libcublas.so \
      && ln -s libcublasLt.so.13 libcublasLt.so && ln -s libcurand.so.10 libcurand.so) || return 1
    [ -x "$tmp/root/bin/nvcc" ] && [ -f "$tmp/root/include/cuda_runtime.h" ] && [ -e "$tmp/root/lib64/libcudart.so" ] \
      || { say "the CUDA wheels lack the expected nvidia/cu13 layout (kept: $tmp)"; return 1; }
    touch "$tmp/DONE"; cache_dir_mode "$tmp"
    rm -rf "$d"; mv "$tmp" "$d"
  fi
  [ -x "$d/root/bin/nvcc" ] || return 1
  echo "$d/root"
}

cuda_check_archs() {  # $1 = toolkit root: every requested arch must be one this nvcc can build
  local known x; known=$("$1/bin/nvcc" --list-gpu-code 2>/dev/null | tr '\n' ' ')
  for x in $CUDA_ARCHS; do
    [[ " $known " == *" sm_$x "* ]] || die "CUDA $CUDA_TAG cannot build sm_$x (it builds: $known). \
Volta (70) and older need CUDA 12, which this route does not pin; pick archs from that list."
  done
}

gpu_patch_source() {  # $1 = caffe source: CUDA 13 removed three cudaDeviceProp fields DeviceQuery prints
  "$PY" - "$1/src/caffe/common.cpp" <<'PYEOF'
import sys
path = sys.argv[1]
src = open(path).read()
helper = ("// deepsz-caffe: CUDA 13 removed these cudaDeviceProp fields; the attribute API has them on\n"
          "// every CUDA version.\n"
          "static int DeviceAttribute(cudaDeviceAttr attr, int device) {\n"
          "  int value = 0;\n  CUDA_CHECK(cudaDeviceGetAttribute(&value, attr, device));\n  return value;\n}\n\n")
anchor = "void Caffe::DeviceQuery() {\n  cudaDeviceProp prop;"  # the GPU build's DeviceQuery
edits = [(anchor, helper + anchor),
         ("prop.clockRate", "DeviceAttribute(cudaDevAttrClockRate, device)"),
         ("prop.deviceOverlap", "DeviceAttribute(cudaDevAttrGpuOverlap, device)"),
         ("prop.kernelExecTimeoutEnabled", "DeviceAttribute(cudaDevAttrKernelExecTimeout, device)")]
for old, new in edits:
    if src.count(old) != 1:
        sys.exit(f"[caffe] ERROR: CUDA 13 patch: expected one '{old}' in {path}")
    src = src.replace(old, new)
open(path, "w").write(src)
PYEOF
}

gpu_cmake_flags() {  # $1 = toolkit root -> cmake flags, one per line
  printf '%s\n' -DUSE_CUDNN=OFF -DUSE_NCCL=OFF "-DCUDA_TOOLKIT_ROOT_DIR=$1" -DCUDA_ARCH_NAME=Manual \
    "-DCUDA_ARCH_BIN=$CUDA_ARCHS" "-DCUDA_ARCH_PTX=${CUDA_ARCHS##* }" \
    -DCMAKE_SKIP_RPATH=ON "-DCMAKE_SHARED_LINKER_FLAGS=-Wl,-rpath,$CUDA_LIB_RPATH"
}

gpu_install_runtime() {  # cudart, cuBLAS, cuRAND into the venv, from the cached wheel files
  local d=$CACHE/cuda-$CUDA_TAG/wheels w files=()
  [ -d "$d" ] || cuda_toolkit_root >/dev/null || die "could not fetch the CUDA $CUDA_TAG wheels"
  for w in "${CUDA_RUNTIME_WHEELS[@]}"; do
    files+=("$(ls "$d/$(echo "${w%%==*}" | tr - _)-${w##*==}"-*.whl | head -n1)")
  done
  "$PY" -m pip install -q --disable-pip-version-check --no-deps --no-index "${files[@]}" \
    || die "could not install the CUDA runtime wheels into the venv"
}
