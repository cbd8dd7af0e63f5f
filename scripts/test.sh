#!/usr/bin/env bash
# Sets everything up and runs the whole test suite.
#   scripts/test.sh [BUILD_DIR] [extra meson setup options...]
# Prints meson's results, then one line "N passed, N failed, N skipped".
set -euo pipefail
cd "$(dirname "$0")/.."

build=${1:-build}
shift || true

bash scripts/setup-deps.sh
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" "$@"
else
  meson configure "$build" "$@" >/dev/null
fi
meson compile -C "$build"

# Tests that need a display get a private Xvfb from their own wrapper (tests/run-with-xvfb.sh).
status=0
meson test -C "$build" --print-errorlogs --num-processes "$(nproc)" || status=$?
python3 scripts/test-summary.py "$build/meson-logs/testlog.json"
exit $status
