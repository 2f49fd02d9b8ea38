#!/usr/bin/env bash
# Fuzzing with clang's libFuzzer under AddressSanitizer + UndefinedBehavior-
# Sanitizer: builds the library and the harnesses of tests/fuzz/ into
# obj-fuzz/, then runs each harness for FUZZ_SECONDS (default 60) from its
# seed corpus in tests/fuzz/corpus/ (what a run finds new stays in
# obj-fuzz/corpus/). Any crash, leak, sanitizer report or hang fails the
# script, with the input that caused it in obj-fuzz/.
#   scripts/fuzz.sh [cfg|data|weights ...]   (default: all three)
# Needs clang (scripts/install_deps.sh --fuzz).
set -euo pipefail
shopt -s nullglob
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-60}
jobs=${JOBS:-$(nproc)}
CLANG=${CLANG:-clang}
command -v "$CLANG" >/dev/null || { echo "fuzz: $CLANG not found (scripts/install_deps.sh --fuzz)" >&2; exit 1; }
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(cfg data weights)

out=obj-fuzz
mkdir -p "$out/lib"
dirs=(src/kernels src/core src/gpu src/layers src/model src/data src/train)
includes=(-Iinclude)
for d in "${dirs[@]}"; do includes+=("-I$d"); done
# the portable build: no OpenMP, no OpenBLAS, no stb (the harnesses need none)
flags=(-std=gnu11 -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
       -fopenmp-simd -ffp-contract=off -Wno-pass-failed "${includes[@]}")

sources=()
for d in "${dirs[@]}"; do
  for f in "$d"/*.c; do sources+=("$f"); done
done
echo "== fuzz: building the library ($CLANG, ASan + UBSan)"
printf '%s\n' "${sources[@]}" | xargs -P "$jobs" -I{} sh -c \
  'o='"$out"'/lib/$(echo "{}" | tr / _).o; [ "$o" -nt "{}" ] || '"$CLANG"' '"${flags[*]}"' -fsanitize=fuzzer-no-link -c "{}" -o "$o"'
for t in "${targets[@]}"; do
  "$CLANG" "${flags[@]}" -Itests/fuzz -fsanitize=fuzzer "tests/fuzz/fuzz_$t.c" "$out"/lib/*.o -lz -lm -o "$out/fuzz_$t"
done

status=0
for t in "${targets[@]}"; do
  mkdir -p "$out/corpus/$t"
  echo "== fuzz: $t for ${seconds}s"
  if ! ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
       "$out/fuzz_$t" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 -max_len=8192 \
       -artifact_prefix="$out/crash-$t-" -print_final_stats=1 "$out/corpus/$t" "tests/fuzz/corpus/$t" \
       > "$out/$t.log" 2>&1; then
    echo "fuzz: $t FOUND A FAILURE (input in $out/crash-$t-*):" >&2
    tail -40 "$out/$t.log" >&2
    status=1
  else
    grep -E "stat::number_of_executed_units|stat::new_units_added" "$out/$t.log" | tr '\n' ' '
    echo
  fi
done
exit $status
