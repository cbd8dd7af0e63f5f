/* Run-time ISA selection. */
#include "fth-kernels-cpu.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static atomic_int chosen = -1;

static FthIsa detect(void) {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
    return FTH_ISA_AVX512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    return FTH_ISA_AVX2;
  return FTH_ISA_SCALAR;
}

static FthIsa cap(FthIsa want) {
  FthIsa have = detect();
  return want < have ? want : have;
}

FthIsa fth_cpu_isa(void) {
  int isa = atomic_load_explicit(&chosen, memory_order_relaxed);
  if (isa >= 0)
    return (FthIsa)isa;
  FthIsa best = detect();
  const char *env = getenv("FTH_ISA");
  if (env && strcmp(env, "scalar") == 0)
    best = FTH_ISA_SCALAR;
  else if (env && strcmp(env, "avx2") == 0)
    best = cap(FTH_ISA_AVX2);
  atomic_store(&chosen, (int)best);
  return best;
}

void fth_cpu_set_isa(FthIsa isa) {
  atomic_store(&chosen, (int)cap(isa));
}

bool fth_cpu_has_avx512_bf16(void) {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512bf16");
}
