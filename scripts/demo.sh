#!/usr/bin/env bash
# Sets up the machine, builds ringbus and runs the demo on the default bus directory
# ($RINGBUS_DIR, else /dev/shm/ringbus-$UID): a pinned producer process, subscriber processes.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)" --target ringbus-demo ringbus-cli
exec build/release/tools/demo/ringbus-demo
