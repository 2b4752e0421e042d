#!/usr/bin/env bash
# Proves the installed package works: builds and installs ringbus (from $1, default: this repo)
# into a temporary prefix, static and then shared, and builds and runs tests/package against
# each via find_package.
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

# Twice: the static library (the default), and a shared one, which is built with hidden symbols
# and so exports only what carries RINGBUS_API: the consumer's link proves the public API is all
# exported, and the symbol table that nothing of the internals (ringbus::detail) is.
for kind in static shared; do
  shared=OFF
  [[ $kind == shared ]] && shared=ON
  # -Werror=dev: the package must configure without CMake complaints, in either project.
  step "$kind-configure" cmake -S "$src" -B "$work/$kind/build" "${generator[@]}" -Werror=dev \
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$work/$kind/prefix" \
    -DBUILD_SHARED_LIBS=$shared \
    -DRINGBUS_BUILD_TESTS=OFF -DRINGBUS_BUILD_TOOLS=OFF -DRINGBUS_BUILD_BENCH=OFF
  step "$kind-build" cmake --build "$work/$kind/build" -j "$jobs"
  step "$kind-install" cmake --install "$work/$kind/build"
  step "$kind-consumer-configure" cmake -S "$src/tests/package" -B "$work/$kind/consumer" \
    "${generator[@]}" -Werror=dev -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$work/$kind/prefix"
  step "$kind-consumer-build" cmake --build "$work/$kind/consumer"
  step "$kind-consumer-run" "$work/$kind/consumer/package_check"
  cat "$work/$kind-consumer-run.log"
  if [[ $kind == shared ]]; then
    lib=$(find "$work/$kind/prefix" -name 'libringbus.so.*.*' | head -n 1)
    [[ -n $lib ]] || { echo "package check: no libringbus.so installed" >&2; exit 1; }
    exported=$(nm -D --defined-only -C "$lib")
    if grep -q 'ringbus::detail::' <<<"$exported"; then
      echo "package check: the shared library exports internals:" >&2
      grep 'ringbus::detail::' <<<"$exported" | head -20 >&2
      exit 1
    fi
    echo "package check: libringbus.so exports $(grep -c ' T ' <<<"$exported") functions," \
      "none of ringbus::detail"
  fi
done
echo "package check: ok"
