/* Private to the engine and its tests: the kernels/cuda context behind a CUDA backend (for the
 * optimizers, the loss scaler and NCCL, which work on device buffers outside the graph). */
#pragma once

#include <fathom/backend.h>

struct FthCudaContext;

/* NULL when `be` is not a CUDA backend. */
struct FthCudaContext *fth_backend_cuda_context(const FthBackend *be);

/* `fraction` of the device's free memory plus what the backend's cache holds (--max-memory),
 * the budget for fth_graph_device_fit(). */
FthStatus fth_backend_cuda_memory_budget(const FthBackend *be, double fraction, size_t *bytes);
