#!/usr/bin/env bash
# On a machine with an NVIDIA GPU, in one call bounded by BUDGET seconds
# (default 420, for a 600 s call): build with GPU=1 CUDNN=1 on every core,
# run the GPU suite (CPU against GPU for every layer type, masked gradients,
# training steps, save and resume) with each test in its own process and
# synchronous launches, the suite again under compute-sanitizer on a
# reduced set, vit_tiny and resnet18 training throughput at batch 128 next
# to PyTorch on the same GPU (float32, TF32 off on both sides), and with
# Open MPI 2 data-parallel ranks on the one GPU (summing through the host:
# NCCL takes one rank per GPU) on a synthetic dataset the script writes.
# docs/gpu.md is the plan of this run.
#
# Every step has its own time limit and none starts past the budget; a
# step that fails does not stop the ones after it (only a failed build
# does). A step whose prerequisite is missing (compute-sanitizer, PyTorch
# with CUDA, Open MPI) is skipped with the reason, not counted as a
# failure. Missing build libraries are installed with apt-get when it works
# (the machine may have no network), else the build falls back (no
# OpenBLAS: the portable GEMM) or stops saying what is missing (zlib).
# Writes every figure to SUMMARY (default gpu_check_summary.txt) as it goes;
# exits non-zero when the build, the suite or another step that ran failed.
#   scripts/gpu_check.sh [--dry-run] [--summary FILE]
# --dry-run prints the steps with their limits and what would be skipped
# and why, checks their inputs, and builds and runs nothing (for machines
# without a GPU; the CPU suite runs it).
set -uo pipefail
cd "$(dirname "$0")/.."
export OMP_WAIT_POLICY=passive
budget=${BUDGET:-420}
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
# skip NAME LIMIT REASON: a step that cannot run here (its limit still
# counts in the plan, so that the plan is the same on every machine)
skip() {
  planned=$((planned + $2))
  note "$([ "$dry" = 1 ] && echo "[dry-run] ")$1: skipped: $3"
}

for f in cfg/vit_tiny.cfg cfg/resnet18.cfg cfg/smallcnn.cfg scripts/bench_torch.py tests/gpu/gpu_tests.c \
         tests/gpu/gpu_networks.h; do
  [ -f "$f" ] || { note "missing $f"; exit 1; }
done

# What the machine has. The build needs nvcc, a C compiler and zlib; the
# rest is optional.
has_header() { [ -f "/usr/include/$1" ] || [ -f "/usr/include/$(gcc -print-multiarch 2>/dev/null)/$1" ]; }
missing=()
has_header zlib.h || missing+=(zlib1g-dev)
has_header cblas.h || has_header openblas/cblas.h || missing+=(libopenblas-dev)
command -v mpicc >/dev/null || missing+=(libopenmpi-dev openmpi-bin)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$dry" = 1 ]; then
    note "[dry-run] would try: apt-get install ${missing[*]} (60 s), else fall back"
  elif command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    note "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive timeout 60 apt-get install -y -qq --no-install-recommends "${missing[@]}" \
      > "$logs/apt.log" 2>&1 || note "apt-get could not install them (no network?): falling back"
  fi
fi
switches=(GPU=1 CUDNN=1)
if ! has_header cblas.h && ! has_header openblas/cblas.h; then
  switches+=(OPENBLAS=0)
  note "no OpenBLAS: the portable GEMM on the CPU side (OPENBLAS=0)"
fi
if ! has_header zlib.h && [ "$dry" = 0 ]; then
  note "zlib.h is missing and could not be installed (zlib1g-dev): cdbnet cannot be built"
  exit 1
fi
have_nvcc=1
[ -x "${CUDA_PATH:-/usr/local/cuda}/bin/nvcc" ] || have_nvcc=0
if [ "$have_nvcc" = 0 ] && [ "$dry" = 0 ]; then
  note "no nvcc at ${CUDA_PATH:-/usr/local/cuda}/bin: cannot build the GPU path"
  exit 1
fi
if [ "$dry" = 0 ]; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | sed 's/^/gpu: /' | tee -a "$summary"
fi

step "build ${switches[*]}" 120 make -j"$(nproc)" "${switches[@]}" cdbnet tests/gpu_tests || { note "build failed"; exit 1; }
# each test in its own process (a CUDA error stays in its test, which
# prints it), launches synchronous (a kernel fault names its own launch)
step "GPU suite" 90 env CUDA_LAUNCH_BLOCKING=1 ./tests/gpu_tests --isolate || status=1
if command -v compute-sanitizer >/dev/null; then
  step "GPU suite under compute-sanitizer (layers and masks)" 60 \
    compute-sanitizer --error-exitcode=1 --leak-check=full ./tests/gpu_tests conv masked attention route || status=1
else
  skip "GPU suite under compute-sanitizer (layers and masks)" 60 "compute-sanitizer not found"
fi

py=python3
[ -x /usr/bin/python3 ] && /usr/bin/python3 -c "import torch" 2>/dev/null && py=/usr/bin/python3
torch_cuda=0
$py -c "import torch; assert torch.cuda.is_available()" 2>/dev/null && torch_cuda=1
for cfg in cfg/vit_tiny.cfg cfg/resnet18.cfg; do
  if step "cdbnet $cfg batch 128" 15 ./cdbnet benchmark "$cfg" -batch 128 -steps 10 -repeats 3 -warmup 3; then
    [ "$dry" = 1 ] || grep -E "^images/s|^ms per step" "$logs/last.log" | sed "s|^|cdbnet $cfg: |" >> "$summary"
  else
    status=1
  fi
  if [ "$torch_cuda" = 1 ] || [ "$dry" = 1 ]; then
    [ "$torch_cuda" = 1 ] || note "[dry-run] (here PyTorch with CUDA is not available: this step would be skipped)"
    step "PyTorch $cfg batch 128" 30 $py scripts/bench_torch.py "$cfg" -device cuda -batch 128 -steps 10 -repeats 3 \
      -warmup 3 && { [ "$dry" = 1 ] || tail -3 "$logs/last.log" | sed "s|^|torch $cfg: |" >> "$summary"; }
  else
    skip "PyTorch $cfg batch 128" 30 "PyTorch with CUDA is not available to $py"
  fi
done

# A synthetic IDX dataset (random 28x28 images, labels 0-9), so that the
# two ranks need no download: 512 training and 128 validation images.
be32() { printf '\\x%02x\\x%02x\\x%02x\\x%02x' $(($1 >> 24 & 255)) $(($1 >> 16 & 255)) $(($1 >> 8 & 255)) $(($1 & 255)); }
write_idx() { # write_idx IMAGES LABELS COUNT
  local n=$3
  { printf '\x00\x00\x08\x03'; printf "$(be32 "$n")$(be32 28)$(be32 28)"; head -c $((n * 784)) /dev/urandom; } > "$1"
  { printf '\x00\x00\x08\x01'; printf "$(be32 "$n")"
    head -c "$n" /dev/urandom | tr '\000-\377' "$(for _ in $(seq 26); do printf '\\000-\\011'; done)"; } > "$2"
}
if command -v mpirun >/dev/null && command -v mpicc >/dev/null; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  mkdir -p "$logs/data"
  write_idx "$logs/data/train-images" "$logs/data/train-labels" 512
  write_idx "$logs/data/valid-images" "$logs/data/valid-labels" 128
  printf 'classes=10\ntrain=%s\ntrain_labels=%s\nvalid=%s\nvalid_labels=%s\nbackup=%s\n' "$logs/data/train-images" \
    "$logs/data/train-labels" "$logs/data/valid-images" "$logs/data/valid-labels" "$logs/mpi" > "$logs/data/synthetic.data"
  if step "build ./cdbnet-mpi (${switches[*]}; dist.c alone recompiled)" 30 make -j"$(nproc)" "${switches[@]}" cdbnet-mpi; then
    step "2 ranks on one GPU, smallcnn 20 steps on synthetic data" 30 mpirun -np 2 --oversubscribe ./cdbnet-mpi train \
      cfg/smallcnn.cfg -data "$logs/data/synthetic.data" -set net.max_batches=20 -set net.dropback_layer_rate=1 \
      -set net.dropback_layer_rate_init=1 -quiet -log none -backup "$logs/mpi" -out "$logs/mpi/final.weights" || status=1
    grep -q "bit-identical on all 2 ranks" "$logs/last.log" 2>/dev/null || [ "$dry" = 1 ] || { note "the ranks disagree"; status=1; }
  else
    status=1
  fi
else
  skip "build ./cdbnet-mpi" 30 "Open MPI (mpicc, mpirun) not found"
  skip "2 ranks on one GPU, smallcnn 20 steps on synthetic data" 30 "Open MPI (mpicc, mpirun) not found"
fi
note "planned limits: ${planned}s of a ${budget}s budget; took $(($(date +%s) - start))s"
[ "$planned" -le "$budget" ] || { note "the steps' limits add up to more than the budget"; status=1; }
rm -rf "$logs"
exit $status
