#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/, the `fuzz` preset: clang, ASan+UBSan) and runs each for a
# fixed time, starting from its seed corpus (fuzz/corpus/<target>/) after running every input
# that once failed (fuzz/regressions/<target>/). New inputs found go to build/fuzz/found/<target>/
# (kept between runs), failing ones to build/fuzz/failures/. See docs/fuzzing.md.
#
#   scripts/fuzz.sh                      every target, 20 s each (CI)
#   scripts/fuzz.sh --seconds 3600 ring_frames_fuzzer
#   scripts/fuzz.sh --seeds              regenerate fuzz/corpus from real topics, logs, sessions
set -euo pipefail
cd "$(dirname "$0")/.."

targets_all=(topic_file_fuzzer ring_frames_fuzzer log_recovery_fuzzer log_state_fuzzer
  bridge_config_fuzzer link_protocol_fuzzer)
seconds="${RINGBUS_FUZZ_SECONDS:-20}"
regenerate=0
targets=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --seeds) regenerate=1; shift ;;
    -h | --help) sed -n '2,10p' "$0"; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
[[ ${#targets[@]} -gt 0 ]] || targets=("${targets_all[@]}")
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [[ "$seconds" -eq 0 ]]; then
  echo "fuzz.sh: --seconds needs a positive number, not '$seconds'" >&2
  exit 2
fi

cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j "$(nproc)" --target "${targets[@]}" ringbus-fuzz-seeds
bin=build/fuzz/fuzz

if [[ $regenerate -eq 1 ]]; then
  rm -rf fuzz/corpus
  "$bin/ringbus-fuzz-seeds" fuzz/corpus tools/bridge/bridge.example.toml
fi

mkdir -p build/fuzz/failures
failed=()
for t in "${targets[@]}"; do
  if [[ ! -d fuzz/corpus/$t ]]; then
    echo "fuzz.sh: no seed corpus fuzz/corpus/$t (run scripts/fuzz.sh --seeds)" >&2
    exit 2
  fi
  work="build/fuzz/found/$t"
  mkdir -p "$work"
  printf '\n-- %s: %s s\n' "$t" "$seconds"
  # Inputs that once failed run first, each once.
  if compgen -G "fuzz/regressions/$t/*" >/dev/null; then
    if ! "$bin/$t" -runs=1 fuzz/regressions/"$t"/* >"build/fuzz/failures/$t.log" 2>&1; then
      tail -n 40 "build/fuzz/failures/$t.log"
      failed+=("$t (a regression input fails again)")
      continue
    fi
  fi
  # -timeout: an input that runs this long is a hang; -rss_limit_mb: a leak or a runaway
  # allocation. Both count as failures.
  if ! "$bin/$t" -max_total_time="$seconds" -timeout=30 -rss_limit_mb=2048 \
      -artifact_prefix="build/fuzz/failures/$t-" -print_final_stats=1 \
      "$work" "fuzz/corpus/$t" >"build/fuzz/failures/$t.log" 2>&1; then
    grep -E -A 30 'ERROR|deadly signal|Test unit written' "build/fuzz/failures/$t.log" | head -n 60
    failed+=("$t")
    continue
  fi
  grep -E '^#[0-9]+.*DONE' "build/fuzz/failures/$t.log" || true
  rm -f "build/fuzz/failures/$t.log"
done

if [[ ${#failed[@]} -gt 0 ]]; then
  echo
  echo "fuzz.sh: failed: ${failed[*]}" >&2
  echo "The failing inputs are build/fuzz/failures/<target>-*; reproduce with" >&2
  echo "  build/fuzz/fuzz/<target> build/fuzz/failures/<target>-<input>" >&2
  echo "and keep each, once fixed, in fuzz/regressions/<target>/." >&2
  exit 1
fi
echo
echo "fuzz.sh: ${#targets[@]} targets, ${seconds} s each: no failure"
