#!/usr/bin/env bash
# The CUDA backend proven on a GPU, in one script (under 8 minutes on one H200): builds the
# backend, runs the CUDA tests (CUDA against the CPU backend, forward and backward, and the
# training run against the CPU loss curve), then bench-gpu and PyTorch's torch_bench.py on the
# same GPU, and prints a short table last.
#
#   bash bench/gpu/check.sh [--quick]        (from the repository root; $OUT, if set, gets logs)
#
# Every step runs under a timeout cut from one budget (FTH_CHECK_BUDGET seconds, default 450) so
# the whole run stays under 8 minutes; the exit status is non-zero when a CUDA test fails, or is
# skipped although nvidia-smi sees a GPU (a skip there means the device did not answer).
#
# Builds with meson when the machine has the engine's libraries (GLib, json-glib, SQLite,
# OpenBLAS, ...). Where it has not (the workplace's 'cuda' image), it uses a bundle made on a
# build machine with bench/gpu/bundle.sh: the test and bench binaries with the shared libraries
# they need, carried in build-gpu-bundle/. cuDNN and NCCL come from the Python packages
# (nvidia-cudnn-cu13, nvidia-nccl-cu13) when the toolkit lacks them.
set -uo pipefail
cd "$(dirname "$0")/../.."
quick=""
[ "${1:-}" = "--quick" ] && quick="--quick"
out=${OUT:-/tmp/fathom-gpu-check}
mkdir -p "$out"
py=python3
[ -x /opt/torch/.venv/bin/python3 ] && py=/opt/torch/.venv/bin/python3
start=$(date +%s)
budget=${FTH_CHECK_BUDGET:-450}
step() { echo "== $* ($(( $(date +%s) - start )) s)"; }
# seconds for the next step: at most $1, and never past the budget less $2 kept for what follows
slice() {
  local left=$(( budget - ($(date +%s) - start) - $2 ))
  [ "$left" -gt "$1" ] && left=$1
  [ "$left" -lt 5 ] && left=5
  echo "$left"
}

step "device"
have_gpu=0
if timeout 20 nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader; then
  have_gpu=1
fi

# cuDNN and NCCL from the Python packages: headers and unversioned library names where nvcc and
# the linker look (the toolkit's include/ and lib64/), and the libraries on the loader's path.
nvcc_bin=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
cuda_root=$(dirname "$(dirname "$nvcc_bin")")
export PATH="$cuda_root/bin:$PATH"
export LD_LIBRARY_PATH="$cuda_root/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
for pkg in cudnn nccl cublas cuda_runtime; do
  dir=$($py -c "import nvidia.$pkg as m, os; print(os.path.dirname(m.__file__) if m.__file__ else list(m.__path__)[0])" 2>/dev/null) || continue
  [ -d "$dir/lib" ] || continue
  export LD_LIBRARY_PATH="$dir/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  case $pkg in cublas|cuda_runtime) continue ;; esac
  if [ ! -e "$cuda_root/include/$pkg.h" ] && [ -d "$dir/include" ]; then
    for h in "$dir"/include/*.h; do ln -sf "$h" "$cuda_root/include/" 2>/dev/null; done
  fi
  for so in "$dir"/lib/lib*.so.*; do
    base=$(basename "$so"); plain=${base%%.so.*}.so
    [ -e "$cuda_root/lib64/$plain" ] || ln -sf "$so" "$cuda_root/lib64/$plain" 2>/dev/null || true
  done
done

bin=""
step "build"
# sm_90 machine code comes from kernels/cuda/meson.build's -gencode list (sm_80, sm_90, PTX); a
# second run reuses the configured directory instead of failing on it.
setup_args=(-Dcuda=enabled -Dworkbench=disabled -Dbuildtype=release)
[ -f build-gpu-check/build.ninja ] && setup_args+=(--reconfigure)
if timeout "$(slice 60 250)" meson setup build-gpu-check "${setup_args[@]}" >"$out/setup.log" 2>&1 &&
   timeout "$(slice 150 250)" meson compile -C build-gpu-check tests/cuda/test-cuda-ops tests/cuda/test-cuda-kernels \
     tests/cuda/test-cuda-train tests/cuda/test-graph-device tests/cuda/test-train-device bench/gpu/bench-gpu \
     >"$out/build.log" 2>&1; then
  bin=build-gpu-check
  tests="$bin/tests/cuda"
  bench="$bin/bench/gpu/bench-gpu"
elif [ -d build-gpu-bundle ]; then
  echo "meson build not possible here (see $out/setup.log, $out/build.log): using build-gpu-bundle"
  bin=build-gpu-bundle
  export LD_LIBRARY_PATH="$PWD/build-gpu-bundle/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  tests=build-gpu-bundle
  bench=build-gpu-bundle/bench-gpu
else
  echo "no build: meson failed (tail of the logs below) and there is no build-gpu-bundle"
  tail -20 "$out/setup.log" "$out/build.log" 2>/dev/null
  exit 1
fi
export FTH_SOURCE_DIR="$PWD"

step "CUDA tests"
# test-train-device: fth_train with --device auto (the GPU here), cpu and bad devices, end to end
tests_list=(test-cuda-ops test-cuda-kernels test-cuda-train test-graph-device test-train-device)
declare -A result
for t in "${tests_list[@]}"; do
  if [ ! -x "$tests/$t" ]; then
    result[$t]="FAIL(missing)"
    echo "$t: not built"
    continue
  fi
  # the benchmarks keep 150 s; a test that hangs is cut off, not the whole run
  if timeout "$(slice 90 150)" "$tests/$t" >"$out/$t.log" 2>&1; then
    result[$t]=pass
  else
    rc=$?
    case $rc in
      77) result[$t]=$([ $have_gpu -eq 1 ] && echo "FAIL(skipped with a GPU present)" || echo skip) ;;
      124) result[$t]="FAIL(timeout)" ;;
      *) result[$t]="FAIL($rc)" ;;
    esac
    tail -15 "$out/$t.log"
  fi
  echo "$t: ${result[$t]} ($(grep -c '^ok' "$out/$t.log" 2>/dev/null) ok)"
done

step "bench-gpu"
timeout "$(slice 90 60)" "$bench" $quick >"$out/fathom.txt" 2>"$out/fathom.err" ||
  { echo "bench-gpu failed:"; tail "$out/fathom.err"; }
step "PyTorch"
timeout "$(slice 90 5)" "$py" bench/gpu/torch_bench.py $quick >"$out/torch.txt" 2>"$out/torch.err" ||
  { echo "torch_bench failed:"; tail "$out/torch.err"; }

status=0
for t in "${tests_list[@]}"; do
  case ${result[$t]} in FAIL*) status=1 ;; esac
done

step "table (logs in $out)"
for t in "${tests_list[@]}"; do echo "$t: ${result[$t]}"; done
"$py" - "$out/fathom.txt" "$out/torch.txt" <<'PY'
import sys
def load(p):
    d = {}
    try:
        for line in open(p):
            k, *v = line.split()
            d[k] = v
    except OSError:
        pass
    return d
f, t = load(sys.argv[1]), load(sys.argv[2])
print(f"device: {' '.join(f.get('device', ['?']))}")
print(f"{'benchmark':40} {'fathom':>10} {'pytorch':>10} {'ratio':>7}  target")
rows = [("gemm_bf16_tflops", "GEMM bf16 8192^3 (TFLOP/s)", 0.9)]
for m in ("fmnist_cnn", "resnet20"):
    for math in ("bf16", "tf32"):
        rows.append((f"train_{m}_{math}_sps", f"{m} b256 {math} (samples/s)", 1.0))
    # the trainer's device path (data conversion, upload, read-back included) against AMP bf16
    for prec in ("bf16", "fp16"):
        rows.append((f"trainer_{m}_{prec}_sps", f"{m} b256 trainer {prec} (samples/s)", 1.0,
                     f"train_{m}_bf16_sps"))
for key, name, target, *peer in rows:
    a = float(f[key][0]) if key in f else None
    tk = peer[0] if peer else key
    b = float(t[tk][0]) if tk in t else None
    r = f"{a / b:.2f}" if a and b else "-"
    ok = "" if not (a and b) else ("ok" if a / b >= target else "MISSED")
    print(f"{name:40} {a if a is not None else '-':>10} {b if b is not None else '-':>10} {r:>7}  >= {target:g} {ok}")
for k, v in f.items():
    if k.endswith("_error"):
        print(f"{k[:-6]}: not run: {' '.join(v)}")
for m in ("fmnist_cnn", "resnet20"):
    if f"trainer_{m}_fp16_loss_scale" in f:
        print(f"{m} trainer fp16: loss scale {' '.join(f[f'trainer_{m}_fp16_loss_scale'])}")
    if f"trainer_{m}_bf16_bytes_per_sample" in f:
        print(f"{m} planner bytes per sample: {f[f'trainer_{m}_bf16_bytes_per_sample'][0]} (bf16 run), "
              f"{f.get(f'trainer_{m}_fp16_bytes_per_sample', ['?'])[0]} (fp16 run); activations are stored in fp32")
    if f"train_{m}_bf16_mib" in f:
        print(f"{m} device memory: {f[f'train_{m}_bf16_mib'][0]} MiB held (bf16 math), "
              f"{f.get(f'train_{m}_f32_plan_mib', ['?'])[0]} MiB planned in f32")
PY
exit $status
