#!/usr/bin/env bash
# Builds the libFuzzer targets in build-fuzz (clang) and runs each for a bounded time on a copy of
# its seed corpus, then prints one summary line per target. Exits non-zero if a build fails or any
# target finds a crash, leak, timeout or out-of-memory.
#
#   tests/fuzz/run.sh [SECONDS] [TARGET...]     TARGET: config cron duration template (default: all)
#
# SECONDS (or $FUZZ_SECONDS) is the run time per target, default 60. Work files, the grown corpora,
# logs and crash inputs go to build-fuzz/fuzz-run/<target>/, never into tests/.
set -euo pipefail

SOURCE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
readonly SOURCE_DIR
readonly FUZZ_DIR="$SOURCE_DIR/tests/fuzz"
readonly BUILD_DIR="${FUZZ_BUILD_DIR:-$SOURCE_DIR/build-fuzz}"
readonly RUN_DIR="$BUILD_DIR/fuzz-run"

seconds="${FUZZ_SECONDS:-60}"
if [[ $# -gt 0 && "$1" =~ ^[0-9]+$ ]]; then
  seconds="$1"
  shift
fi
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(config cron duration template)

build() {
  CXX="${CXX:-clang++}" cmake -S "$SOURCE_DIR" -B "$BUILD_DIR" -DAPSIS_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  local names=()
  for target in "${targets[@]}"; do names+=("fuzz_$target"); done
  cmake --build "$BUILD_DIR" -j2 --target "${names[@]}"
}

# Runs one target; its log ends with libFuzzer's final status and stat:: lines.
run_target() {
  local target="$1" work="$RUN_DIR/$1"
  rm -rf "$work"
  mkdir -p "$work/artifacts"
  cp -r "$FUZZ_DIR/corpus/$target" "$work/corpus"
  local args=(-max_total_time="$seconds" -timeout=10 -print_final_stats=1 -artifact_prefix="$work/artifacts/")
  [[ -f "$FUZZ_DIR/dict/$target.dict" ]] && args+=(-dict="$FUZZ_DIR/dict/$target.dict")
  echo "== fuzz_$target: ${seconds}s, log in $work/log" >&2
  # stdin from /dev/null: nothing in a run may wait for a terminal.
  "$BUILD_DIR/tests/fuzz/fuzz_$target" "${args[@]}" "$work/corpus" </dev/null >"$work/log" 2>&1
}

# "NAME: VALUE" from libFuzzer's last status line ("#123 DONE cov: 45 ft: 67 corp: 8/910b ...").
status_field() { grep -E '^#[0-9]+' "$2" | tail -n 1 | sed -nE "s/.* $1: ([^ ]+).*/\1/p"; }
final_stat() { sed -nE "s/^stat::$1: *([0-9]+)/\1/p" "$2" | tail -n 1; }

# What a failed run found: the sanitizer's or libFuzzer's SUMMARY line, without the "SUMMARY: ".
finding() {
  grep -m1 -E '^SUMMARY: ' "$1" | sed -E 's/^SUMMARY: //' | grep . || echo "exit status $2"
}

summarize() {
  local target="$1" status="$2" log="$RUN_DIR/$1/log"
  local took execs rate cov ft corp result
  took="$(sed -nE 's/^Done [0-9]+ runs in ([0-9]+) second.*/\1/p' "$log" | tail -n 1)"
  execs="$(final_stat number_of_executed_units "$log")"
  rate="$(final_stat average_exec_per_sec "$log")"
  cov="$(status_field cov "$log")"
  ft="$(status_field ft "$log")"
  corp="$(status_field corp "$log")"
  if [[ "$status" -eq 0 ]]; then
    result="no crashes"
  else
    result="FOUND $(finding "$log" "$status"); input: $(find "$RUN_DIR/$target/artifacts" -type f | tr '\n' ' ')"
  fi
  printf '%-9s %5ss %11s execs %7s exec/s  cov %-5s ft %-6s corpus %-12s %s\n' "$target" "${took:--}" "${execs:--}" \
    "${rate:--}" "${cov:--}" "${ft:--}" "${corp:--}" "$result"
}

main() {
  build
  local failed=0 summary=()
  for target in "${targets[@]}"; do
    local status=0
    run_target "$target" || status=$?
    [[ "$status" -eq 0 ]] || failed=1
    summary+=("$(summarize "$target" "$status")")
  done
  echo
  echo "Fuzzing summary (${seconds}s per target; corpus = inputs/bytes):"
  printf '%s\n' "${summary[@]}"
  return "$failed"
}

main
