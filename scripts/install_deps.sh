#!/usr/bin/env bash
# Installs every Debian package cdbnet's build, data and tests need.
# Idempotent: installs only what is missing. Run as root or with sudo.
#   scripts/install_deps.sh           build, data and the test suite
#   scripts/install_deps.sh --arm64   also the aarch64 cross compiler, qemu-user
#                                     and arm64 zlib (the ARM check of .ci/run)
#   scripts/install_deps.sh --bench   also Debian's PyTorch (CPU), for
#                                     scripts/bench_torch.py and the fixtures
#   scripts/install_deps.sh --fuzz    also clang, for scripts/fuzz.sh (libFuzzer)
#   scripts/install_deps.sh --opencv  also OpenCV, for make OPENCV=1
set -euo pipefail

packages=(
  build-essential       # gcc, make
  zlib1g-dev            # .gz datasets
  libopenblas-dev       # CPU GEMM
  libopenblas0-openmp   # OpenBLAS sharing cdbnet's OpenMP thread pool
  libstb-dev            # image files for `cdbnet predict`
  dataset-fashion-mnist # real Fashion-MNIST in /usr/share/datasets/fashion-mnist
  gnuplot-nox           # the training chart (cdbnet train draws it when gnuplot is there)
  libopenmpi-dev        # make MPI=1: data-parallel training over processes
  openmpi-bin           # mpirun, for the MPI tests
)
arm64=0
for arg in "$@"; do
  case "$arg" in
    --arm64) arm64=1
             packages+=(gcc-aarch64-linux-gnu qemu-user zlib1g-dev:arm64) ;;
    --bench) packages+=(python3-torch) ;;
    --fuzz)  packages+=(clang libclang-rt-14-dev) ;;  # libFuzzer and the sanitizers' runtimes
    --opencv) packages+=(libopencv-dev pkg-config) ;;  # image decoding with make OPENCV=1
    *) echo "install_deps: unknown option '$arg' (--arm64, --bench, --fuzz, --opencv)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install_deps: all packages present"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    sudo="sudo"
  else
    echo "install_deps: need root to install: ${missing[*]}" >&2
    exit 1
  fi
fi

echo "install_deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
if [ "$arm64" = 1 ] && ! dpkg --print-foreign-architectures | grep -qx arm64; then
  $sudo dpkg --add-architecture arm64
fi
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
