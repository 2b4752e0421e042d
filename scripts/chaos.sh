#!/usr/bin/env bash
# The chaos soak (docs/chaos.md): producers, durable and lossy readers, two queue groups and a
# ringbus-bridge on one small topic, killed and stopped at random for N minutes, then checked.
#
#   scripts/chaos.sh                 3 minutes, the normal (dev) build
#   scripts/chaos.sh --minutes 60    an hour
#   scripts/chaos.sh --asan          the ASan+UBSan build
# Other options go to ringbus-chaos (--seed N to replay a schedule, --victims P,Q).
set -euo pipefail
cd "$(dirname "$0")/.."

minutes=3
preset=dev
args=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --minutes) minutes="$2"; shift 2 ;;
    --asan) preset=asan; shift ;;
    -h | --help) sed -n '2,8p' "$0"; exit 0 ;;
    *) args+=("$1"); shift ;;
  esac
done
if ! [[ "$minutes" =~ ^[0-9]+$ ]] || [[ "$minutes" -eq 0 ]]; then
  echo "chaos.sh: --minutes needs a positive whole number, not '$minutes'" >&2
  exit 2
fi
if [[ ! -d build/$preset ]]; then
  cmake --preset "$preset" >/dev/null
fi
cmake --build --preset "$preset" -j "$(nproc)" --target ringbus-chaos
exec "build/$preset/tests/chaos/ringbus-chaos" --seconds "$((minutes * 60))" "${args[@]}"
