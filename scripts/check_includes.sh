#!/usr/bin/env bash
# Includes point down only (docs/architecture.md): a file under src/ may
# include headers of its own folder and of the folders below it, in the
# order kernels < core = gpu < layers < model < app; include/cdbnet.h (the
# public API) is open to all. Prints each include that points up and exits
# 1 if there is one.
cd "$(dirname "$0")/.."
level() {
  case "$1" in
    kernels) echo 0 ;; core | gpu) echo 1 ;; layers) echo 2 ;; model) echo 3 ;; app) echo 4 ;; *) echo 9 ;;
  esac
}
status=0
for file in src/*/*.c src/*/*.cpp src/*/*.h src/*/*.cu src/*/*.cuh; do
  [ -f "$file" ] || continue
  dir=$(basename "$(dirname "$file")")
  own=$(level "$dir")
  while read -r header; do
    [ "$header" = cdbnet.h ] && continue
    found=$(ls src/*/"$header" 2>/dev/null | head -1)
    if [ -z "$found" ]; then
      echo "$file: includes \"$header\", which is in no folder of src/"
      status=1
      continue
    fi
    hdir=$(basename "$(dirname "$found")")
    if [ "$(level "$hdir")" -gt "$own" ]; then
      echo "$file ($dir) includes $found: it points up"
      status=1
    fi
  done < <(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$file")
done
[ $status = 0 ] && echo "includes point down only"
exit $status
