#!/usr/bin/env bash
# Data-parallel throughput: `cdbnet benchmark` in one process and under
# mpirun -np 2 (each rank one thread), alternately (A B A B ...), on
# synthetic data, for smallcnn, resnet18 and vit_tiny: the median images/s of
# each, their ratio, and the time the gradient sum over the ranks took per
# step, with the bytes it moved.
#
# usage: scripts/bench_mpi.sh [-rounds N] [-batch N] [-steps N] [CFG...]
# (default 2 rounds, batch 64; ./cdbnet-mpi is built when missing)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=2
batch=64
steps=
cfgs=()
while [ $# -gt 0 ]; do
  case "$1" in
    -rounds) rounds=$2; shift 2 ;;
    -batch) batch=$2; shift 2 ;;
    -steps) steps=$2; shift 2 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) cfgs+=("$1"); shift ;;
  esac
done
[ ${#cfgs[@]} -gt 0 ] || cfgs=(cfg/smallcnn.cfg cfg/resnet18.cfg cfg/vit_tiny.cfg)
[ -x ./cdbnet-mpi ] || scripts/build_mpi.sh
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_WAIT_POLICY=passive
median() { sort -g | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) CPUs"
for cfg in "${cfgs[@]}"; do
  n=${steps:-$(case "$cfg" in *smallcnn*) echo 10 ;; *) echo 2 ;; esac)}
  args=(benchmark "$cfg" -batch "$batch" -steps "$n" -repeats 3 -warmup 1 -threads 1)
  one=(); two=(); comm=(); bytes=
  for r in $(seq "$rounds"); do
    one+=("$(./cdbnet-mpi "${args[@]}" | awk '/^images\/s:/ {print $3}')")
    out=$(mpirun -np 2 --bind-to core ./cdbnet-mpi "${args[@]}")
    two+=("$(echo "$out" | awk '/^images\/s:/ {print $3}')")
    comm+=("$(echo "$out" | sed -n 's/.*ranks took \([0-9.]*\) ms per step.*/\1/p')")
    bytes=$(echo "$out" | sed -n 's/.*(\([0-9.]*\) MB in all.*/\1/p')
  done
  m1=$(printf '%s\n' "${one[@]}" | median)
  m2=$(printf '%s\n' "${two[@]}" | median)
  mc=$(printf '%s\n' "${comm[@]}" | median)
  printf '%-22s batch %3d: 1 rank %8.1f images/s, 2 ranks %8.1f (x%.2f); gradient sum %.1f ms per step, %s MB\n' \
    "$(basename "$cfg")" "$batch" "$m1" "$m2" "$(echo "$m2 $m1" | awk '{print $1 / $2}')" "$mc" "$bytes"
  echo "  rounds: 1 rank ${one[*]}; 2 ranks ${two[*]}"
done
