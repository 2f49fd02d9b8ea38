#!/usr/bin/env bash
# Builds ./cdbnet-mpi, cdbnet with MPI=1 (Open MPI), beside the plain build:
# the tree is copied into obj-mpi/tree (file times kept, so a rebuild
# compiles only what changed) and built there with the same switches.
#   scripts/build_mpi.sh [make switches, e.g. OPENBLAS=0]
# make test runs it when Open MPI is installed; the MPI tests use the binary.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v mpicc > /dev/null 2>&1; then
  echo "build_mpi: Open MPI is not installed (scripts/install_deps.sh installs libopenmpi-dev)" >&2
  exit 1
fi
mkdir -p obj-mpi/tree
git ls-files -co --exclude-standard | grep -v '^obj-mpi/' | tar cf - -T - | (cd obj-mpi/tree && tar xf -)
make -C obj-mpi/tree -j"$(nproc)" MPI=1 "$@" cdbnet > obj-mpi/build.log 2>&1 || { tail -20 obj-mpi/build.log; exit 1; }
cp obj-mpi/tree/cdbnet cdbnet-mpi
