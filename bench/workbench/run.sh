#!/usr/bin/env bash
# The workbench's frame intervals under Xvfb (software rendering), issue 5's "no frame over
# 50 ms while a training job runs":
#   bash bench/workbench/run.sh [BUILD_DIR] [PROJECT_DIR] [SECONDS]
# PROJECT_DIR (default: a temporary folder) is built with `fathom sample` when it holds no
# project. Runs frame-times three times: scrolling the item grid, scrolling while the zoo's MLP
# trains, and watching the training page's live charts while it trains; each prints mean,
# p50/p95/p99 and max frame intervals. The load average is printed
# with them, since on a shared machine it decides most of the figure.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
project=${2:-}
seconds=${3:-10}
export GSETTINGS_SCHEMA_DIR="$build/resources"
export OPENBLAS_NUM_THREADS=1

meson compile -C "$build" bench/workbench/frame-times app/cli/fathom >/dev/null
if [ -z "$project" ]; then
  project=$(mktemp -d "${TMPDIR:-/tmp}/fathom-frames.XXXXXX")
  trap 'rm -rf "$project"' EXIT
fi
if [ ! -f "$project/fathom.db" ]; then
  "$build/app/cli/fathom" sample --audio-variants=0 "$project" >/dev/null
fi

frames=("$root/tests/run-with-xvfb.sh" "$build/bench/workbench/frame-times" --seconds "$seconds")
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"
"${frames[@]}" "$project"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
"${frames[@]}" --train mlp "$project"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
"${frames[@]}" --train mlp --charts "$project"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
