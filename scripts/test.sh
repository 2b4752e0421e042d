#!/usr/bin/env bash
# Sets up the machine and runs every test: a normal build, ASan+UBSan, TSan (concurrency tests),
# and the installed-package check. The README's test command; .ci/run calls exactly this.
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

step "installed package: find_package(ringbus) from another project"
scripts/check-package.sh

step "all tests passed"
