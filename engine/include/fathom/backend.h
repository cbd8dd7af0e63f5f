/* Fathom backends (DESIGN.md section 3): a table of functions that allocate device memory, copy
 * to and from it, run one node and synchronize. The CPU backend is the reference; CUDA plugs in
 * the same way. A kernel gets everything it needs in FthKernelArgs. */
#pragma once

#include <fathom/core.h>
#include <fathom/graph.h>
#include <fathom/optim.h>
#include <fathom/tensor.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FTH_MAX_INPUTS 8
#define FTH_MAX_AUX 4

/* Per-run state a kernel may need. */
typedef struct {
  bool training;  /* dropout active, batch norm uses and updates batch statistics */
  uint64_t seed;  /* the graph's seed */
  uint64_t step;  /* counts fth_graph_run calls; dropout masks use (seed, node id, step) */
  int64_t batch;  /* the current batch */
} FthExecContext;

/* What a kernel receives for one node. Tensors carry the shapes at the current batch and point
 * into the arena (or parameter storage). in_aux[i] are the saved-state tensors (aux outputs) of
 * input i's node (NULL when it has none): a gradient node lists the forward node as an input and
 * reads e.g. the max-pool argmax as in_aux[k][0]. The kernel parallelizes itself with
 * fth_parallel_for; scratch is private to this node for the duration of the call. */
typedef struct {
  const FthNode *node;
  const void *params;          /* the op's parameter struct, as passed at build time */
  int n_in;
  const FthTensor *in;         /* n_in inputs */
  const FthTensor *const *in_aux; /* n_in entries, each NULL or that input node's aux array */
  FthTensor *out;              /* the output */
  int n_aux;
  FthTensor *aux;              /* this node's aux outputs (saved state for the backward) */
  void *scratch;               /* FTH_ALIGNMENT-aligned, scratch_bytes long */
  size_t scratch_bytes;
  /* An op whose scratch has both a fixed and a per-sample part gets them as two blocks: scratch
   * (the fixed part) and scratch_batch (the per-sample part at this batch). NULL and 0 otherwise. */
  void *scratch_batch;
  size_t scratch_batch_bytes;
  const FthExecContext *ctx;
} FthKernelArgs;

/* A run's precision (--precision): fp32, or bf16 / fp16 inputs to the GEMMs and convolutions
 * with fp32 accumulation; parameters (the master weights), their gradients and the optimizer
 * stay fp32. fp16 trains with dynamic loss scaling. */
typedef enum {
  FTH_PRECISION_FP32 = 0,
  FTH_PRECISION_BF16,
  FTH_PRECISION_FP16,
} FthPrecision;

const char *fth_precision_name(FthPrecision p); /* "fp32", "bf16", "fp16" */
bool fth_precision_from_name(const char *name, FthPrecision *out);

typedef struct FthBackend FthBackend;
struct FthBackend {
  const char *name;
  void *(*alloc)(const FthBackend *be, size_t bytes);   /* FTH_ALIGNMENT-aligned; NULL on failure */
  void (*free)(const FthBackend *be, void *ptr);
  FthStatus (*copy_in)(const FthBackend *be, void *dst, const void *host_src, size_t bytes);
  FthStatus (*copy_out)(const FthBackend *be, void *host_dst, const void *src, size_t bytes);
  FthStatus (*run_node)(const FthBackend *be, FthOp op, const FthKernelArgs *args);
  FthStatus (*synchronize)(const FthBackend *be);
  /* Optional entry points; NULL: the caller works on host copies through copy_in/copy_out. */
  /* The GEMM and convolution arithmetic of the nodes run from now on. */
  FthStatus (*set_precision)(const FthBackend *be, FthPrecision precision);
  /* One update by fathom/optim.h's rules of n values in the backend's memory: state[0] is the
   * SGD momentum buffer or AdamW's m, state[1] AdamW's v; t is AdamW's step (from 1);
   * weight_decay is already 0 for a parameter without decay. Clipping is the caller's. */
  FthStatus (*optim_update)(const FthBackend *be, const FthOptimConfig *cfg, float lr, float weight_decay,
                            int64_t t, float *value, const float *grad, float *const *state, size_t n);
  /* Multiplies n_bufs buffers in place by factor; *found_inf tells whether any product is not
   * finite (dynamic loss scaling). */
  FthStatus (*unscale)(const FthBackend *be, float *const *bufs, const size_t *counts, int n_bufs, float factor,
                       bool *found_inf);
  void *impl;
};

/* The CPU backend (always present). */
const FthBackend *fth_backend_cpu(void);

/* The CUDA backend on device `device`, created on first use and kept for the process; NULL with
 * the error set when the build has no CUDA or the device does not answer. */
const FthBackend *fth_backend_cuda(int device);

/* `--device auto|cpu|cuda[:N]` (NULL: auto). auto takes cuda:0 only when a device answers and
 * the CPU otherwise; cuda[:N] fails (FTH_STATUS_UNSUPPORTED) when that device does not answer. */
FthStatus fth_backend_select(const char *spec, const FthBackend **out);

#ifdef __cplusplus
}
#endif
