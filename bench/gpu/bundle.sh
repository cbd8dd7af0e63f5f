#!/usr/bin/env bash
# Makes build-gpu-bundle/ for check.sh on a GPU machine that cannot build the engine (no GLib,
# SQLite, OpenBLAS... there): the CUDA test and bench binaries from BUILD_DIR (built with
# -Dcuda=enabled) and the shared libraries they load, except the C library, the GPU driver and
# the CUDA libraries and the C++ runtime, which the GPU machine has (newer).
#   bash bench/gpu/bundle.sh [BUILD_DIR]     (default build-cuda-dev)
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build-cuda-dev}
dest=build-gpu-bundle
rm -rf "$dest"
mkdir -p "$dest/lib"
for f in tests/cuda/test-cuda-ops tests/cuda/test-cuda-kernels tests/cuda/test-cuda-train tests/cuda/test-graph-device \
         tests/cuda/test-train-device bench/gpu/bench-gpu; do
  cp "$build/$f" "$dest/"
  strip --strip-debug "$dest/$(basename "$f")"
  ldd "$build/$f" | awk '/=> \//{print $3}' | while read -r so; do
    case "$(basename "$so")" in
      libc.so*|libm.so*|libpthread.so*|libdl.so*|librt.so*|ld-linux*|libstdc++*|libgcc_s*) ;; # newer there
      libcuda.so*|libcudart*|libcublas*|libcudnn*|libnccl*) ;; # the GPU machine's own
      *) cp -Ln "$so" "$dest/lib/" ;;
    esac
  done
done
du -sh "$dest"
