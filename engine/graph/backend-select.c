/* `--device auto|cpu|cuda[:N]`: which backend runs a graph. The same binary runs on a machine
 * with no GPU and no driver: auto asks CUDA whether a device answers and otherwise takes the CPU. */
#include <fathom/backend.h>

#include "fth-config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#if FTH_HAVE_CUDA
#include <fth-cuda.h>
#else
const FthBackend *fth_backend_cuda(int device) {
  fth_error(FTH_STATUS_UNSUPPORTED, "cuda:%d: this build has no CUDA backend", device);
  return NULL;
}
#endif

static bool cuda_answers(void) {
#if FTH_HAVE_CUDA
  return fth_cuda_device_count(NULL) > 0;
#else
  return false;
#endif
}

FthStatus fth_backend_select(const char *spec, const FthBackend **out) {
  if (!out)
    return fth_error(FTH_STATUS_INVALID_ARGUMENT, "device: NULL result");
  *out = NULL;
  if (!spec || strcmp(spec, "auto") == 0) {
    const FthBackend *be = cuda_answers() ? fth_backend_cuda(0) : NULL;
    fth_clear_error();
    *out = be ? be : fth_backend_cpu();
    return FTH_STATUS_OK;
  }
  if (strcmp(spec, "cpu") == 0) {
    *out = fth_backend_cpu();
    return FTH_STATUS_OK;
  }
  int device = 0;
  if (strncmp(spec, "cuda", 4) != 0 || (spec[4] != '\0' && spec[4] != ':'))
    return fth_error(FTH_STATUS_INVALID_ARGUMENT, "device '%s': expected auto, cpu, cuda or cuda:N", spec);
  if (spec[4] == ':') {
    char *end;
    errno = 0;
    long v = strtol(spec + 5, &end, 10);
    if (end == spec + 5 || *end != '\0' || errno || v < 0 || v > 1023)
      return fth_error(FTH_STATUS_INVALID_ARGUMENT, "device '%s': bad device index", spec);
    device = (int)v;
  }
  *out = fth_backend_cuda(device);
  return *out ? FTH_STATUS_OK : FTH_STATUS_UNSUPPORTED;
}

const char *fth_precision_name(FthPrecision p) {
  switch (p) {
  case FTH_PRECISION_BF16: return "bf16";
  case FTH_PRECISION_FP16: return "fp16";
  default: return "fp32";
  }
}

bool fth_precision_from_name(const char *name, FthPrecision *out) {
  for (int p = FTH_PRECISION_FP32; p <= FTH_PRECISION_FP16 && name; p++)
    if (strcmp(name, fth_precision_name((FthPrecision)p)) == 0) {
      *out = (FthPrecision)p;
      return true;
    }
  return false;
}
