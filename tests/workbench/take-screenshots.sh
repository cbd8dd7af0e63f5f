#!/usr/bin/env bash
# Writes the README's pictures of the workbench (docs/screenshots/) from the sample project:
#   tests/workbench/take-screenshots.sh BUILD_DIR [PROJECT_DIR]
# PROJECT_DIR (default: a temporary folder) is built with `fathom sample` when it holds no
# project yet. Each view is opened by tests/workbench/take-screenshot under a private Xvfb;
# the training shot trains the zoo's MLP for two epochs (about a minute on two cores).
set -euo pipefail

src=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:?usage: take-screenshots.sh BUILD_DIR [PROJECT_DIR]}" && pwd)
project=${2:-}
out="$src/docs/screenshots"
shoot=("$src/tests/run-with-xvfb.sh" "$build/tests/workbench/take-screenshot")
export GSETTINGS_SCHEMA_DIR="$build/resources"

if [ -z "$project" ]; then
  project=$(mktemp -d "${TMPDIR:-/tmp}/fathom-screenshots.XXXXXX")
  trap 'rm -rf "$project"' EXIT
fi
if [ ! -f "$project/fathom.db" ]; then
  "$build/app/cli/fathom" sample --audio-variants=0 "$project"
fi

mkdir -p "$out"
"${shoot[@]}" "$project" "$out/workbench.png"
"${shoot[@]}" --item 7 "$project" "$out/item-view.png"
"${shoot[@]}" --train mlp --epochs 2 "$project" "$out/training.png"
"${shoot[@]}" --training --scroll-end "$project" "$out/confusion-matrix.png"
# The tuning page: a recipe's default search space, then a study of a test function (no
# training: seconds) in the parallel-coordinates plot.
"${shoot[@]}" --size 1100x1000 --tune fmnist-cnn --trials 0 --tune-view study "$project" "$out/tuning-space.png"
"${shoot[@]}" --tune hartmann6 --trials 60 --tune-view parallel "$project" "$out/tuning.png"
echo "take-screenshots: wrote $out/{workbench,item-view,training,confusion-matrix,tuning-space,tuning}.png"
