#!/usr/bin/env bash
# Runs a command (a GTK test) against a private X server, in a clean environment:
#   tests/run-with-xvfb.sh PROGRAM [ARGS...]
# Xvfb picks a free display itself (-displayfd), so parallel tests never share one. Exits 77
# (skipped) when Xvfb is not installed. GTK is pinned to the cairo renderer with GL disabled
# (a headless box has none), accessibility and D-Bus are off, and XDG dirs point into a temporary folder
# that is removed afterwards, so tests never read or write the user's files.
set -u

if ! command -v Xvfb >/dev/null 2>&1; then
  echo "run-with-xvfb: Xvfb is not installed (apt-get install xvfb); skipping" >&2
  exit 77
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/fathom-xvfb.XXXXXX") || exit 1
xvfb_pid=
cleanup() {
  if [ -n "$xvfb_pid" ]; then
    kill "$xvfb_pid" 2>/dev/null
    wait "$xvfb_pid" 2>/dev/null
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

Xvfb -displayfd 3 -nolisten tcp -noreset -screen 0 1280x1024x24 3>"$tmp/display" \
  >"$tmp/xvfb.log" 2>&1 &
xvfb_pid=$!

display=
for _ in $(seq 1 100); do
  display=$(cat "$tmp/display" 2>/dev/null)
  [ -n "$display" ] && break
  if ! kill -0 "$xvfb_pid" 2>/dev/null; then
    echo "run-with-xvfb: Xvfb failed to start:" >&2
    cat "$tmp/xvfb.log" >&2
    exit 1
  fi
  sleep 0.1
done
if [ -z "$display" ]; then
  echo "run-with-xvfb: Xvfb gave no display number within 10 s" >&2
  exit 1
fi

mkdir -p "$tmp/data" "$tmp/config" "$tmp/cache" "$tmp/runtime"
chmod 700 "$tmp/runtime"
export DISPLAY=":$display"
unset WAYLAND_DISPLAY
export GDK_BACKEND=x11
export GSK_RENDERER=cairo
# No GL at all: Xvfb has none worth using, and Mesa's EGL driver, once probed and unloaded,
# leaves allocations LeakSanitizer cannot attribute (an "<unknown module>").
export GDK_DEBUG=gl-disable
export GTK_A11Y=none
export NO_AT_BRIDGE=1
export GSETTINGS_BACKEND=memory
export DBUS_SESSION_BUS_ADDRESS=disabled:
export XDG_DATA_HOME="$tmp/data"
export XDG_CONFIG_HOME="$tmp/config"
export XDG_CACHE_HOME="$tmp/cache"
export XDG_RUNTIME_DIR="$tmp/runtime"

"$@"
exit $?
