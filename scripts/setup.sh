#!/usr/bin/env bash
# Installs what ringbus needs to build, test, format and benchmark on Debian 12 (bookworm).
# Idempotent: safe to run again. Runs as root, or through sudo when that exists.
set -euo pipefail

packages=(
  build-essential g++ cmake ninja-build pkg-config git
  libboost-dev libhwloc-dev hwloc
  libgtest-dev libgmock-dev libbenchmark-dev
  libcli11-dev nlohmann-json3-dev libtomlplusplus-dev libssl-dev openssl iproute2
  librdkafka-dev python3 python3-kafka kafkacat
  libncurses-dev
  strace tmux gnuplot-nox jq clang-format clang-tidy procps clang libclang-rt-14-dev
)

export DEBIAN_FRONTEND=noninteractive

as_root() {
  if [[ $(id -u) -eq 0 ]]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo DEBIAN_FRONTEND=noninteractive "$@"
  else
    echo "setup: must run as root (and sudo is not installed)" >&2
    exit 1
  fi
}

if [[ -r /etc/os-release ]]; then
  # shellcheck disable=SC1091
  . /etc/os-release
  echo "setup: system is ${PRETTY_NAME:-unknown}"
  if [[ ${ID:-} != debian || ${VERSION_ID:-} != 12 ]]; then
    echo "setup: warning: written for Debian 12; package names may differ here" >&2
  fi
fi

echo "setup: apt-get update"
as_root apt-get update -q

echo "setup: apt-get install ${#packages[@]} packages: ${packages[*]}"
as_root apt-get install -y -q --no-install-recommends "${packages[@]}"

echo "setup: check: cmake $(cmake --version | sed -n '1s/.* //p'), g++ $(g++ -dumpfullversion)," \
  "hwloc $(pkg-config --modversion hwloc), clang-format $(clang-format --version | grep -o '[0-9][0-9.]*' | head -n1)"
echo "setup: done"
