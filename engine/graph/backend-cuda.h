/* Private to the engine and its tests: the kernels/cuda context behind a CUDA backend (for the
 * optimizers, the loss scaler and NCCL, which work on device buffers outside the graph). */
#pragma once

#include <fathom/backend.h>

#include "graph-device.h"

struct FthCudaContext;
struct FthCudaComm;

/* NULL when `be` is not a CUDA backend. */
struct FthCudaContext *fth_backend_cuda_context(const FthBackend *be);

/* `fraction` of the device's free memory plus what the backend's cache holds (--max-memory),
 * the budget for fth_graph_device_fit(). */
FthStatus fth_backend_cuda_memory_budget(const FthBackend *be, double fraction, size_t *bytes);

/* Data parallel: averages the gradients of every trainable parameter over the ranks, in place,
 * through the bucketed NCCL all-reduce. devs[r] runs on comms[r]'s device; n is 1 for one
 * process per GPU (mpirun) and the device count for a single-process launcher. Every rank's
 * graph must have the same parameters in the same order. Batch-norm running statistics stay
 * per rank. */
FthStatus fth_graph_device_all_reduce_grads(FthGraphDevice *const *devs, struct FthCudaComm *const *comms, int n,
                                            size_t bucket_bytes);
