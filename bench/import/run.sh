#!/usr/bin/env bash
# Import throughput against djpeg (libjpeg-turbo-progs) decoding the same files, in one run.
#
#   bench/import/run.sh [BUILD_DIR] [COUNT] [SIZE]     (defaults: build-import 2000 256)
#
# Prints a Markdown table; with APPEND=1 also appends it as the "## Import" section of
# bench/RESULTS.md. Peers: djpeg run once per file from a shell loop (how a user scripts it),
# and djpeg through `xargs -P NPROC` (one process per file, all cores busy).
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build-import}
count=${2:-2000}
size=${3:-256}
command -v djpeg >/dev/null || { echo "run.sh: djpeg not found (apt-get install libjpeg-turbo-progs)" >&2; exit 1; }
[ -d "$build" ] || meson setup "$build" -Dcuda=disabled >/dev/null
meson compile -C "$build" fathom fth-bench-gen-jpegs >/dev/null
fathom="$build/app/cli/fathom"
work=$(mktemp -d /tmp/fathom-bench-import-XXXXXX)
trap 'rm -rf "$work"' EXIT
"$build/bench/import/fth-bench-gen-jpegs" "$work/jpegs" "$count" "$size"
ncpu=$(nproc)

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

# Warm the page cache so every contender reads from memory.
cat "$work"/jpegs/*.jpg >/dev/null

t0=$(now)
for f in "$work"/jpegs/*.jpg; do djpeg -outfile /dev/null "$f"; done
t1=$(now); djpeg_loop=$(elapsed "$t0" "$t1")

t0=$(now)
find "$work/jpegs" -name '*.jpg' -print0 | xargs -0 -n 1 -P "$ncpu" djpeg -outfile /dev/null
t1=$(now); djpeg_xargs=$(elapsed "$t0" "$t1")

"$fathom" new "$work/p1" >/dev/null
t0=$(now)
"$fathom" import -q "$work/p1" "$work/jpegs" >/dev/null
t1=$(now); fathom_verify=$(elapsed "$t0" "$t1")

"$fathom" new "$work/p2" >/dev/null
t0=$(now)
"$fathom" import -q --no-verify "$work/p2" "$work/jpegs" >/dev/null
t1=$(now); fathom_noverify=$(elapsed "$t0" "$t1")

t0=$(now)
"$fathom" import -q "$work/p1" "$work/jpegs" >/dev/null
t1=$(now); fathom_rerun=$(elapsed "$t0" "$t1")

# The IDX path: Debian's Fashion-MNIST (70,000 records), first import and re-run.
fmnist=/usr/share/datasets/fashion-mnist
fmnist_rows=""
if [ -d "$fmnist" ]; then
  "$fathom" new "$work/p3" >/dev/null
  t0=$(now)
  "$fathom" import -q "$work/p3" "$fmnist" >/dev/null
  t1=$(now); fm_first=$(elapsed "$t0" "$t1")
  t0=$(now)
  "$fathom" import -q "$work/p3" "$fmnist" >/dev/null
  t1=$(now); fm_again=$(elapsed "$t0" "$t1")
  fmnist_rows="
| Fashion-MNIST IDX, 70,000 records + class annotations | $(printf '%7.2f' "$fm_first") |
| Fashion-MNIST IDX again (all already imported)        | $(printf '%7.2f' "$fm_again") |"
fi

rate() { awk -v n="$count" -v t="$1" 'BEGIN { printf "%.0f", n / t }'; }
# A row's time relative to `fathom import` (verify): above 1 means slower than fathom.
rel() { awk -v t="$1" -v f="$fathom_verify" 'BEGIN { printf "%.2f", t / f }'; }
bytes=$(du -sb "$work/jpegs" | cut -f1)

table=$(cat <<TABLE
Import of $count JPEGs of ${size}x${size} ($((bytes / count)) bytes each on average), $ncpu cores, page cache warm.

| contender                                        | seconds | images/s | time / fathom import time |
|--------------------------------------------------|--------:|---------:|--------------------------:|
| fathom import (full decode + SHA-256 + SQLite)   | $(printf '%7.2f' "$fathom_verify") | $(printf '%8s' "$(rate "$fathom_verify")") | 1.00 |
| fathom import --no-verify (headers + SHA-256)    | $(printf '%7.2f' "$fathom_noverify") | $(printf '%8s' "$(rate "$fathom_noverify")") | $(rel "$fathom_noverify") |
| fathom import again (all already imported)       | $(printf '%7.2f' "$fathom_rerun") | $(printf '%8s' "$(rate "$fathom_rerun")") | $(rel "$fathom_rerun") |
| djpeg, one process per file, shell loop          | $(printf '%7.2f' "$djpeg_loop") | $(printf '%8s' "$(rate "$djpeg_loop")") | $(rel "$djpeg_loop") |
| djpeg, one process per file, xargs -P $ncpu          | $(printf '%7.2f' "$djpeg_xargs") | $(printf '%8s' "$(rate "$djpeg_xargs")") | $(rel "$djpeg_xargs") |
${fmnist_rows:+
| import                                                | seconds |
|-------------------------------------------------------|--------:|$fmnist_rows}
TABLE
)
echo "$table"
if [ "${APPEND:-0}" = 1 ]; then
  {
    printf '\n## Import\n\nCommand (from the repository root):\n\n    APPEND=1 bench/import/run.sh %s %s %s\n\n' "$build" "$count" "$size"
    printf 'Machine: %s, %s cores shared with other work (%s). fathom decodes on all cores;\n' \
      "$(. /etc/os-release; echo "$PRETTY_NAME")" "$ncpu" "$(date -u +%Y-%m-%d)"
    printf 'the xargs row runs djpeg on all cores.\n\n%s\n' "$table"
  } >> bench/RESULTS.md
  echo "run.sh: appended the Import section to bench/RESULTS.md" >&2
fi
