#!/usr/bin/env bash
# Sets everything up and runs Fathom: the workbench on the sample project when a display is
# present, otherwise the headless demo (create the sample project, import, train, evaluate).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup-deps.sh
[ -f build/build.ninja ] || meson setup build
meson compile -C build

sample=${FATHOM_SAMPLE_DIR:-$HOME/.local/share/fathom/sample}
if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] && [ -x build/app/workbench/fathom-workbench ]; then
  build/app/cli/fathom sample "$sample"
  exec build/app/workbench/fathom-workbench "$sample"
fi
exec build/app/cli/fathom demo "$sample"
