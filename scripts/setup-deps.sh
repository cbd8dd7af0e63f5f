#!/usr/bin/env bash
# Installs every Debian package Fathom needs to build, test and run its demo.
# Idempotent: packages already present are skipped. Works as root or through sudo.
set -euo pipefail

packages=(
  # build
  meson ninja-build pkg-config gcc g++ clang libclang-rt-14-dev
  # engine and services
  libglib2.0-dev libsqlite3-dev sqlite3 libjpeg62-turbo-dev libpng-dev zlib1g-dev
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly
  libopenblas-dev libjson-glib-dev libarchive-dev libsoup-3.0-dev libprotobuf-c-dev
  # data-parallel training under mpirun (meson feature mpi)
  libopenmpi-dev openmpi-bin
  # workbench
  libgtk-4-dev libadwaita-1-dev gettext desktop-file-utils appstream xvfb xauth dbus-daemon
  # sample project and test fixtures
  dataset-fashion-mnist espeak-ng fortunes-min fortunes libjpeg-turbo-progs
  # benchmarks and conformance peers
  python3 python3-venv
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup-deps: all ${#packages[@]} packages present"
  exit 0
fi

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo_cmd=(sudo)
fi

echo "setup-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup-deps: done"
