#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: build with GPU=1 CUDNN=1, run the GPU
# suite (CPU against GPU for every layer and whole training steps), then
# benchmark vit_tiny and resnet18 training at batch 128 on the GPU next to
# PyTorch on the same GPU (float32, TF32 off on both sides). Designed to
# finish well under 8 minutes. Prints everything; exits non-zero when the
# build or the suite fails.
set -uo pipefail
cd "$(dirname "$0")/.."
export OMP_WAIT_POLICY=passive
status=0

echo "== nvidia-smi"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true

echo "== build (GPU=1 CUDNN=1)"
make -j"$(nproc)" GPU=1 CUDNN=1 cdbnet tests/gpu_tests >/tmp/gpu_build.log 2>&1 || { tail -30 /tmp/gpu_build.log; exit 1; }

echo "== GPU suite"
timeout 240 ./tests/gpu_tests || status=1

echo "== cdbnet benchmark on the GPU (batch 128)"
for cfg in cfg/vit_tiny.cfg cfg/resnet18.cfg; do
  timeout 90 ./cdbnet benchmark "$cfg" -batch 128 -steps 10 -repeats 3 -warmup 3 | head -3 || status=1
done

echo "== PyTorch on the same GPU (batch 128)"
py=python3
[ -x /usr/bin/python3 ] && /usr/bin/python3 -c "import torch" 2>/dev/null && py=/usr/bin/python3
if $py -c "import torch; assert torch.cuda.is_available()" 2>/dev/null; then
  for cfg in cfg/vit_tiny.cfg cfg/resnet18.cfg; do
    timeout 90 $py scripts/bench_torch.py "$cfg" -device cuda -batch 128 -steps 10 -repeats 3 -warmup 3 || true
  done
else
  echo "PyTorch with CUDA not available here: no comparison"
fi
exit $status
