#!/usr/bin/env bash
# Includes point down only (docs/architecture.md): a file under src/ may
# include headers of its own folder and of the folders below it, in the
# order kernels < core = gpu < layers < model < data < train < cli; include/cdbnet.h (the
# public API) is open to all. Also, in the folders above the model (data,
# train, cli), no two modules (NAME.c with NAME.h) depend on each other,
# directly or through others (core's network and dropback still do). Prints each include
# that points up and each loop, and exits 1 if there is one.
cd "$(dirname "$0")/.."
level() {
  case "$1" in
    kernels) echo 0 ;; core | gpu) echo 1 ;; layers) echo 2 ;; model) echo 3 ;; data) echo 4 ;; train) echo 5 ;; cli) echo 6 ;; *) echo 9 ;;
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
# module NAME -> the module of each header its .c or .h includes
edges=$(for file in src/{data,train,cli}/*.{c,cpp,h}; do
  [ -f "$file" ] || continue
  m=$(basename "${file%.*}")
  sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)\.h".*/\1/p' "$file" |
    while read -r h; do [ "$h" != "$m" ] && [ "$h" != cdbnet ] && echo "$m $h"; done
done)
if ! loops=$(echo "$edges" | tsort 2>&1 >/dev/null) || [ -n "$loops" ]; then
  echo "modules include each other:"
  echo "$loops" | grep -v 'input contains a loop' | sed 's/^tsort: /  /'
  status=1
fi
# the command line is on the library's functions: no file of it looks
# inside a network (its fields are the library's to change)
if grep -n 'net->' src/cli/*.c src/cli/*.h; then
  echo "src/cli/ reaches into a network (above): use or add a library function"
  status=1
fi
[ $status = 0 ] && echo "includes point down only, no module includes itself through others, the command line on functions only"
exit $status
