#!/usr/bin/env bash
# data/samples/: one Fashion-MNIST test image per class, as a PNG named by
# its class, for `cdbnet predict`:
#   ./cdbnet predict cfg/smallcnn.cfg backup/smallcnn_final.weights data/samples/*.png
# Written from the first test images of each class (cdbnet export).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x ./cdbnet ] || make -j2 cdbnet
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
./cdbnet export cfg/fashion_mnist.data "$tmp/fm" -limit 200 > /dev/null
mkdir -p data/samples
k=0
while read -r class; do
  first=$(ls "$tmp/fm/valid/$class" | sort | head -1)
  cp "$tmp/fm/valid/$class/$first" "data/samples/${k}_${class// /_}.png"
  k=$((k + 1))
done < "$tmp/fm/classes.names"
ls data/samples
