#!/usr/bin/env bash
# Turns ringbus-bench --json output into the two charts of docs/benchmarks.md (gnuplot, jq):
#   latency-percentiles.png  one-way latency by percentile (log x), one line per transport
#   throughput-by-size.png   1 producer -> 1 subscriber messages/s by message size
# Usage: scripts/plot-bench.sh RESULTS.json [OUT_DIR (default docs/img)] [SIZE (default 64)]
set -euo pipefail
json=${1:?usage: plot-bench.sh RESULTS.json [OUT_DIR] [SIZE]}
out=${2:-docs/img}
size=${3:-64}
for tool in jq gnuplot; do
  command -v "$tool" >/dev/null || { echo "plot-bench: $tool is missing (scripts/setup.sh installs it)" >&2; exit 1; }
done
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# One data file per busy-wait transport: "x latency" with x = 1 / (1 - percentile).
plots=()
while IFS= read -r transport; do
  file="$work/lat-$(echo "$transport" | tr -c 'A-Za-z0-9\n' '_').dat"
  jq -r --arg t "$transport" --argjson s "$size" '.latency[] | select(.transport == $t and
      .size == $s and .wait == "busy" and .samples > 0) |
      "2 \(.p50)\n10 \(.p90)\n100 \(.p99)\n1000 \(.p99_9)\n10000 \(.p99_99)"' "$json" >"$file"
  [[ -s $file ]] && plots+=("'$file' using 1:2 with linespoints title '$transport'")
done < <(jq -r '[.latency[] | select(.wait == "busy") | .transport] | unique[]' "$json")

gnuplot <<GP
set terminal pngcairo size 900,520 noenhanced
set output '$out/latency-percentiles.png'
set title 'one-way latency by percentile, ${size}-byte messages, busy-wait, two pinned cores'
set logscale xy
set xtics ('p50' 2, 'p90' 10, 'p99' 100, 'p99.9' 1000, 'p99.99' 10000)
set xlabel 'percentile'
set ylabel 'nanoseconds (log)'
set key left top
set grid
plot $(IFS=,; echo "${plots[*]}")
GP

plots=()
while IFS= read -r transport; do
  file="$work/thr-$(echo "$transport" | tr -c 'A-Za-z0-9\n' '_').dat"
  jq -r --arg t "$transport" '.throughput[] | select(.transport == $t and .producers == 1 and
      .subscribers == 1 and .messages > 0) | "\(.size) \(.messages_per_second)"' "$json" |
    sort -n >"$file"
  [[ -s $file ]] && plots+=("'$file' using 1:2 with linespoints title '$transport'")
done < <(jq -r '[.throughput[] | .transport] | unique[]' "$json")

gnuplot <<GP
set terminal pngcairo size 900,520 noenhanced
set output '$out/throughput-by-size.png'
set title 'throughput, 1 producer -> 1 subscriber, by message size'
set logscale xy
set xlabel 'message size (bytes)'
set ylabel 'messages per second (log)'
set key right top
set grid
plot $(IFS=,; echo "${plots[*]}")
GP
echo "plot-bench: wrote $out/latency-percentiles.png and $out/throughput-by-size.png"
