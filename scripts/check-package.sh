#!/usr/bin/env bash
# Proves the installed package works: builds and installs ringbus (from $1, default: this repo)
# into a temporary prefix, then builds and runs tests/package against it via find_package.
# Set RINGBUS_KEEP_TMP=1 to keep the temporary directory for inspection.
set -euo pipefail

src=$(cd "${1:-$(dirname "${BASH_SOURCE[0]}")/..}" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/ringbus-package.XXXXXX")
if [[ ${RINGBUS_KEEP_TMP:-0} == 1 ]]; then
  echo "package check: keeping $work"
else
  trap 'rm -rf "$work"' EXIT
fi

generator=()
if command -v ninja >/dev/null 2>&1; then generator=(-G Ninja); fi
jobs=$(nproc 2>/dev/null || echo 2)

# Runs one step quietly; on failure shows its log and stops.
step() {
  local name=$1
  shift
  echo "package check: $name"
  if ! "$@" >"$work/$name.log" 2>&1; then
    echo "package check: FAILED at '$name'; log follows" >&2
    cat "$work/$name.log" >&2
    exit 1
  fi
}

# -Werror=dev: the package must configure without CMake complaints, in either project.
step configure cmake -S "$src" -B "$work/build" "${generator[@]}" -Werror=dev \
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$work/prefix" \
  -DRINGBUS_BUILD_TESTS=OFF -DRINGBUS_BUILD_TOOLS=OFF -DRINGBUS_BUILD_BENCH=OFF
step build cmake --build "$work/build" -j "$jobs"
step install cmake --install "$work/build"
step consumer-configure cmake -S "$src/tests/package" -B "$work/consumer" "${generator[@]}" \
  -Werror=dev -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$work/prefix"
step consumer-build cmake --build "$work/consumer"
step consumer-run "$work/consumer/package_check"
cat "$work/consumer-run.log"
echo "package check: ok"
