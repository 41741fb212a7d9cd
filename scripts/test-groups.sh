#!/usr/bin/env bash
# Runs the uvu test files under a folder in one process per subfolder (and one for the files at its
# top), one group after another, so a crash takes one group down, not the rest; sums their counts
# and ends with the line "N passed, N failed, N skipped"; exits non-zero when any group failed.
#   scripts/test-groups.sh DIR SECONDS RUNNER... -- [PATTERN...]
# RUNNER is the uvu command (given DIR and a file pattern); SECONDS bounds the whole run. With a
# PATTERN of one's own (npm test -- 'web/'), one process runs what it matches, as asked.
# One crash is known upstream and not ours: V8's "Check failed: jit_page_->allocations_.erase(addr)
# == 1" when WebAssembly code is freed (PGlite instances come and go; nodejs/node#64500, open). A
# group that dies of exactly that runs once more, and says so; any other failure counts as it is.
set -uo pipefail
dir=$1 seconds=$2
shift 2
runner=()
while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do runner+=("$1"); shift; done
[ "$#" -gt 0 ] && shift

V8_WASM_CRASH='Check failed: jit_page_->allocations_.erase(addr) == 1'
deadline=$((SECONDS + seconds))
passed=0 failed=0 skipped=0 rc=0 group_rc=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

run_group() {
  local left=$((deadline - SECONDS))
  if [ "$left" -le 0 ]; then
    echo "tests timed out after $seconds s (not run: $*)" | tee "$log"
    group_rc=124
    return
  fi
  timeout --kill-after=10 "$left" "${runner[@]}" "$dir" "$@" 2>&1 | tee "$log"
  group_rc=${PIPESTATUS[0]}
  if [ "$group_rc" -eq 124 ]; then echo "tests timed out after $seconds s"; fi
}

count_group() {
  local plain total p s f
  plain=$(sed 's/\x1b\[[0-9;]*m//g' "$log")
  total=$(grep -Eo 'Total: +[0-9]+' <<<"$plain" | grep -Eo '[0-9]+' | tail -n 1)
  p=$(grep -Eo 'Passed: +[0-9]+' <<<"$plain" | grep -Eo '[0-9]+' | tail -n 1)
  s=$(grep -Eo 'Skipped: +[0-9]+' <<<"$plain" | grep -Eo '[0-9]+' | tail -n 1)
  total=${total:-0} p=${p:-0} s=${s:-0}
  # uvu's Total leaves skipped tests out; a crash before its summary still counts as a failure.
  f=$((total - p))
  if [ "$group_rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
  if [ "$group_rc" -ne 0 ]; then rc=$group_rc; fi
}

if [ "$#" -gt 0 ]; then
  run_group "$@"
  count_group
else
  groups=('^[^/]+\.test\.ts$')
  for sub in "$dir"/*/; do
    ls "$sub"*.test.ts >/dev/null 2>&1 && groups+=("^$(basename "$sub")/.*\.test\.ts$")
  done
  for pattern in "${groups[@]}"; do
    run_group "$pattern"
    if [ "$group_rc" -ne 0 ] && grep -qF "$V8_WASM_CRASH" "$log"; then
      echo "V8 crashed freeing WebAssembly code (nodejs/node#64500, not this project's): running $pattern once more"
      run_group "$pattern"
    fi
    count_group
  done
fi
echo "${passed} passed, ${failed} failed, ${skipped} skipped"
exit "$rc"
