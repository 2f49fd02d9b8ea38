#!/usr/bin/env bash
# Builds ./cdbnet-mpi, cdbnet with Open MPI, beside the plain build and from
# the same objects (make cdbnet-mpi: only core/dist.c is compiled again,
# with mpicc's flags).
#   scripts/build_mpi.sh [make switches, e.g. OPENBLAS=0, GPU=1 CUDNN=1 NCCL=1]
# make test builds it when Open MPI is installed; the MPI tests use it.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v mpicc > /dev/null 2>&1; then
  echo "build_mpi: Open MPI is not installed (scripts/install_deps.sh installs libopenmpi-dev)" >&2
  exit 1
fi
make -j"$(nproc)" "$@" cdbnet-mpi
