#!/usr/bin/env bash
# Sets up the machine and runs every test: a normal build, clang-tidy, ASan+UBSan, TSan
# (concurrency tests), and the installed-package check. The README's test command; .ci/run calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

jobs=$(nproc)
step() { printf '\n== %s\n' "$*"; }

step "setup"
scripts/setup.sh

# A private bus directory, so tests never touch a user's real topics.
export RINGBUS_DIR="${TMPDIR:-/tmp}/ringbus-test-bus-$$"
trap 'rm -rf "$RINGBUS_DIR"' EXIT

step "normal build (warnings are errors)"
cmake --preset dev -DRINGBUS_BUILD_BENCH=ON >/dev/null
cmake --build --preset dev -j "$jobs"
step "tests: normal build"
ctest --preset dev -j "$jobs"

step "clang-tidy: library and tools (.clang-tidy; any warning fails)"
root=$(pwd | sed 's/[][\.*^$+?(){}|]/\\&/g')  # the checkout's path, as a regex
if ! run-clang-tidy -p build/dev -quiet -j "$jobs" "^$root/(bus|tools)/.*\\.cpp\$" \
    >build/dev/clang-tidy.log 2>&1; then
  grep -E 'warning:|error:' build/dev/clang-tidy.log | sort -u
  echo "clang-tidy found the above (full output: build/dev/clang-tidy.log)" >&2
  exit 1
fi

step "ASan+UBSan build"
cmake --preset asan -DRINGBUS_WERROR=ON -DRINGBUS_BUILD_BENCH=OFF >/dev/null
cmake --build --preset asan -j "$jobs"
step "tests: ASan+UBSan (whole suite, smaller stress sizes)"
RINGBUS_STRESS_MESSAGES=200000 RINGBUS_FORWARD_MESSAGES=100000 ctest --preset asan -j "$jobs"

step "TSan build"
cmake --preset tsan -DRINGBUS_WERROR=ON -DRINGBUS_BUILD_BENCH=OFF >/dev/null
cmake --build --preset tsan -j "$jobs" --target ringbus_stress_tests ringbus_unit_tests
step "tests: TSan (concurrency and ring tests)"
RINGBUS_STRESS_MESSAGES=100000 ctest --preset tsan -j "$jobs" -L 'stress|unit'

step "fuzzing: libFuzzer targets with ASan+UBSan, 20 s each (scripts/fuzz.sh)"
scripts/fuzz.sh --seconds 20

step "installed package: find_package(ringbus) from another project"
scripts/check-package.sh

step "all tests passed"
