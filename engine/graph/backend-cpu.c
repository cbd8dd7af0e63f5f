/* The CPU backend: host memory and the op table's CPU kernels. */
#include "ops-private.h"

#include <string.h>

static void *cpu_alloc(const FthBackend *be, size_t bytes) {
  (void)be;
  return fth_aligned_alloc(FTH_ALIGNMENT, bytes);
}

static void cpu_free(const FthBackend *be, void *ptr) {
  (void)be;
  fth_free(ptr);
}

static FthStatus cpu_copy(const FthBackend *be, void *dst, const void *src, size_t bytes) {
  (void)be;
  memcpy(dst, src, bytes);
  return FTH_STATUS_OK;
}

static FthStatus cpu_run_node(const FthBackend *be, FthOp op, const FthKernelArgs *args) {
  (void)be;
  const FthOpDef *def = fth_op_def(op);
  if (!def || !def->forward)
    return fth_error(FTH_STATUS_UNSUPPORTED, "cpu backend: no kernel for %s", fth_op_name(op));
  return def->forward(args);
}

static FthStatus cpu_synchronize(const FthBackend *be) {
  (void)be;
  return FTH_STATUS_OK;
}

static const FthBackend cpu_backend = {
  .name = "cpu",
  .alloc = cpu_alloc,
  .free = cpu_free,
  .copy_in = cpu_copy,
  .copy_out = cpu_copy,
  .run_node = cpu_run_node,
  .synchronize = cpu_synchronize,
};

const FthBackend *fth_backend_cpu(void) {
  return &cpu_backend;
}
