#!/usr/bin/env bash
# Fashion-MNIST (Debian's IDX files) as a folder dataset of PNG files, the
# layout of torchvision's ImageFolder: OUT/train/CLASS/N.png and
# OUT/valid/CLASS/N.png, with OUT/classes.names and OUT/dataset.data.
#   scripts/idx_to_folder.sh [DATA [OUT]]
# DATA defaults to cfg/fashion_mnist.data (any IDX or CIFAR .data file
# works), OUT to data/fashion-mnist-folder, the folder data/fmnist_folder.data
# points to; LIMIT=N keeps the first N images of each set. Then:
#   ./cdbnet train cfg/smallcnn.cfg -data data/fmnist_folder.data
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-cfg/fashion_mnist.data}
out=${2:-data/fashion-mnist-folder}
[ -x ./cdbnet ] || make -j2 cdbnet
if [ -e "$out/train" ] || [ -e "$out/valid" ]; then
  echo "idx_to_folder: $out already holds a dataset; remove it first to write it again" >&2
  exit 1
fi
./cdbnet export "$data" "$out" ${LIMIT:+-limit "$LIMIT"}
echo "idx_to_folder: $(find "$out/train" -name '*.png' | wc -l) training and $(find "$out/valid" -name '*.png' | wc -l) test images in $out"
