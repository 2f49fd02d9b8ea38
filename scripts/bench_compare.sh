#!/usr/bin/env bash
# cdbnet vs PyTorch training throughput, side by side in one run: for each
# cfg and thread count, runs `cdbnet benchmark` and scripts/bench_torch.py
# alternately (A B A B ...) and prints the medians and their ratio.
#
# usage: scripts/bench_compare.sh [-rounds N] [-threads "1 2"] [-batch N] [-steps N] [CFG...]
# default cfgs: smallcnn resnet18 vit_micro vit_tiny; default threads "1 2"; -steps N
# sets the steps per repeat (default: 1 to 10 by the model's size).
# CDBNET=path/to/cdbnet benchmarks another build (default ./cdbnet).
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=2
threads="1 2"
batch=64
steps_override=
cfgs=()
while [ $# -gt 0 ]; do
  case "$1" in
    -rounds) rounds=$2; shift 2 ;;
    -threads) threads=$2; shift 2 ;;
    -batch) batch=$2; shift 2 ;;
    -steps) steps_override=$2; shift 2 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) cfgs+=("$1"); shift ;;
  esac
done
[ ${#cfgs[@]} -gt 0 ] || cfgs=(cfg/smallcnn.cfg cfg/resnet18.cfg cfg/vit_micro.cfg cfg/vit_tiny.cfg)
cdbnet=${CDBNET:-./cdbnet}
[ -x "$cdbnet" ] || make -j2 cdbnet >/dev/null
/usr/bin/python3 -c "import torch" 2>/dev/null || { echo "needs Debian's python3-torch (apt-get install python3-torch)" >&2; exit 1; }
export OMP_WAIT_POLICY=passive

median() { sort -g | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
rate() { sed -n 's/^images\/s: median \([0-9.]*\).*/\1/p'; }
busy() { sed -n 's/^cpu: \([0-9.]*\) cores.*/\1/p'; }

# Steps per repeat: fewer for the big models so that a round stays short.
steps_for() {
  if [ -n "$steps_override" ]; then echo "$steps_override"; return; fi
  case "$1" in
    *resnet50*|*densenet*|*preact*) echo 1 ;;
    *resnet18*|*vit_tiny*|*_cifar*) echo 2 ;;
    *) echo 10 ;;
  esac
}

# Each side reports the cores its timed steps kept busy (CPU time / wall
# time): both should be close to the thread count, or the comparison is off.
printf "%-24s %7s %12s %12s %8s %12s\n" "cfg" "threads" "cdbnet img/s" "torch img/s" "ratio" "cores used"
for cfg in "${cfgs[@]}"; do
  steps=$(steps_for "$cfg")
  for t in $threads; do
    ours=(); theirs=(); ours_busy=(); theirs_busy=()
    for ((r = 0; r < rounds; r++)); do
      out=$("$cdbnet" benchmark "$cfg" -batch "$batch" -threads "$t" -steps "$steps" -repeats 3 -warmup 1)
      ours+=("$(rate <<<"$out")"); ours_busy+=("$(busy <<<"$out")")
      out=$(/usr/bin/python3 scripts/bench_torch.py "$cfg" -batch "$batch" -threads "$t" -steps "$steps" -repeats 3 -warmup 1)
      theirs+=("$(rate <<<"$out")"); theirs_busy+=("$(busy <<<"$out")")
    done
    a=$(printf "%s\n" "${ours[@]}" | median)
    b=$(printf "%s\n" "${theirs[@]}" | median)
    ca=$(printf "%s\n" "${ours_busy[@]}" | median)
    cb=$(printf "%s\n" "${theirs_busy[@]}" | median)
    printf "%-24s %7s %12.1f %12.1f %8.2f %5.2f / %4.2f\n" "$(basename "$cfg")" "$t" "$a" "$b" \
      "$(awk -v a="$a" -v b="$b" 'BEGIN {print a / b}')" "$ca" "$cb"
  done
done
echo "($(date -u +%Y-%m-%d), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'))"
