#!/usr/bin/env bash
# On a machine with an NVIDIA GPU, in one call bounded by BUDGET seconds
# (default 450): build with GPU=1 CUDNN=1 on every core, run the GPU suite
# (CPU against GPU for every layer type, masked gradients, training steps,
# save and resume), the suite again under compute-sanitizer on a reduced
# set, then vit_tiny and resnet18 training throughput at batch 128 next to
# PyTorch on the same GPU (float32, TF32 off on both sides), and with Open
# MPI installed 2 data-parallel ranks on the one GPU (summing through the
# host: NCCL takes one rank per GPU). Every step has
# its own time limit and none starts past the budget. Writes every figure to
# SUMMARY (default gpu_check_summary.txt) as it goes; exits non-zero when the
# build, the suite or the sanitizer fails.
#   scripts/gpu_check.sh [--dry-run] [--summary FILE]
# --dry-run prints the steps with their limits and checks that their inputs
# exist, without building or running anything (for machines without a GPU).
set -uo pipefail
cd "$(dirname "$0")/.."
export OMP_WAIT_POLICY=passive
budget=${BUDGET:-450}
summary=gpu_check_summary.txt
dry=0
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) dry=1 ;;
    --summary) summary=$2; shift ;;
    *) echo "gpu_check: unknown option '$1' (--dry-run, --summary FILE)" >&2; exit 2 ;;
  esac
  shift
done
start=$(date +%s)
status=0
planned=0
: > "$summary"
note() { echo "$*" | tee -a "$summary"; }

logs=$(mktemp -d)
# step NAME LIMIT COMMAND...: runs COMMAND under min(LIMIT, what is left of
# the budget), its output shown and kept in $logs/last.log; skipped when
# less than 10 s are left.
step() {
  local name=$1 limit=$2
  shift 2
  planned=$((planned + limit))
  local left=$((budget - ($(date +%s) - start)))
  [ "$limit" -lt "$left" ] || limit=$left
  if [ "$dry" = 1 ]; then
    note "[dry-run] $name: limit ${limit}s: $*"
    return 0
  fi
  if [ "$limit" -lt 10 ]; then
    note "$name: skipped, the ${budget}s budget is spent"
    return 1
  fi
  echo "== $name (limit ${limit}s)"
  local t0=$(date +%s)
  timeout "$limit" "$@" > "$logs/last.log" 2>&1
  local rc=$?
  cat "$logs/last.log"
  note "$name: exit $rc in $(($(date +%s) - t0))s"
  return $rc
}

for f in cfg/vit_tiny.cfg cfg/resnet18.cfg scripts/bench_torch.py tests/gpu/gpu_tests.c; do
  [ -f "$f" ] || { note "missing $f"; exit 1; }
done
if [ "$dry" = 0 ]; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | sed 's/^/gpu: /' | tee -a "$summary"
fi

step "build GPU=1 CUDNN=1" 120 make -j"$(nproc)" GPU=1 CUDNN=1 cdbnet tests/gpu_tests || { note "build failed"; exit 1; }
step "GPU suite" 90 ./tests/gpu_tests || status=1
if [ "$dry" = 1 ] || command -v compute-sanitizer >/dev/null; then
  step "GPU suite under compute-sanitizer (layers and masks)" 60 \
    compute-sanitizer --error-exitcode=1 --leak-check=full ./tests/gpu_tests conv masked attention route || status=1
else
  note "compute-sanitizer not found: not run"
fi

py=python3
[ -x /usr/bin/python3 ] && /usr/bin/python3 -c "import torch" 2>/dev/null && py=/usr/bin/python3
for cfg in cfg/vit_tiny.cfg cfg/resnet18.cfg; do
  if step "cdbnet $cfg batch 128" 15 ./cdbnet benchmark "$cfg" -batch 128 -steps 10 -repeats 3 -warmup 3; then
    grep -E "^images/s|^ms per step" "$logs/last.log" 2>/dev/null | sed "s|^|cdbnet $cfg: |" >> "$summary"
  else
    status=1
  fi
  if [ "$dry" = 1 ] || $py -c "import torch; assert torch.cuda.is_available()" 2>/dev/null; then
    step "PyTorch $cfg batch 128" 30 $py scripts/bench_torch.py "$cfg" -device cuda -batch 128 -steps 10 -repeats 3 \
      -warmup 3 && tail -3 "$logs/last.log" 2>/dev/null | sed "s|^|torch $cfg: |" >> "$summary"
  else
    note "PyTorch with CUDA not available: no comparison for $cfg"
  fi
done
if [ "$dry" = 1 ] || command -v mpirun >/dev/null; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  if step "build MPI=1 GPU=1 CUDNN=1 (./cdbnet-mpi)" 60 scripts/build_mpi.sh GPU=1 CUDNN=1; then
    step "2 ranks on one GPU, smallcnn 20 steps" 30 mpirun -np 2 --oversubscribe ./cdbnet-mpi train cfg/smallcnn.cfg \
      -set net.max_batches=20 -set net.dropback_layer_rate=1 -set net.dropback_layer_rate_init=1 -quiet -log none \
      -backup "$logs/mpi" -out "$logs/mpi/final.weights" || status=1
    grep -q "bit-identical on all 2 ranks" "$logs/last.log" 2>/dev/null || [ "$dry" = 1 ] || { note "the ranks disagree"; status=1; }
  else
    status=1
  fi
else
  note "mpirun not found: the 2-rank check not run"
fi
note "planned limits: ${planned}s of a ${budget}s budget; took $(($(date +%s) - start))s"
[ "$planned" -le "$budget" ] || { note "the steps' limits add up to more than the budget"; status=1; }
rm -rf "$logs"
exit $status
