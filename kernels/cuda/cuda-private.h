// Internals shared by the .cu files of the CUDA backend: the context and the status checks that
// turn every CUDA, cuBLAS, cuDNN and NCCL error into an FthCudaStatus with a message.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <map>
#include <mutex>
#include <unordered_map>

#include "fth-cuda.h"

#if FTH_HAVE_CUDNN
#include <cudnn.h>
#endif

// Device-side error flags, reported by fth_cuda_synchronize().
enum {
  FTH_CUDA_FLAG_TARGET = 1u << 0, // cross-entropy target outside 0..C-1
  FTH_CUDA_FLAG_ID = 1u << 1,     // embedding id outside 0..V-1
};

struct FthCudaContext {
  int device;
  cudaStream_t stream;
  cublasHandle_t cublas;
#if FTH_HAVE_CUDNN
  cudnnHandle_t cudnn;
#endif
  FthCudaMath math;
  unsigned *d_flags; // FTH_CUDA_FLAG_* bits set by kernels

  // caching allocator
  std::mutex lock;
  std::multimap<size_t, void *> free_blocks; // rounded size -> block
  std::unordered_map<void *, size_t> live;   // block -> rounded size
  size_t in_use, cached, peak, driver_allocs;
};

// Records a message for this thread and returns `st`.
FthCudaStatus fth_cuda_fail(FthCudaStatus st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
FthCudaStatus fth_cuda_check(cudaError_t err, const char *what);
FthCudaStatus fth_cuda_check_cublas(cublasStatus_t err, const char *what);
#if FTH_HAVE_CUDNN
FthCudaStatus fth_cuda_check_cudnn(cudnnStatus_t err, const char *what);
#endif
// Checks the launch of the kernel just queued.
static inline FthCudaStatus fth_cuda_check_launch(const char *what) {
  return fth_cuda_check(cudaGetLastError(), what);
}

#define FTH_CUDA_TRY(expr)                                                                          \
  do {                                                                                              \
    FthCudaStatus st_ = (expr);                                                                     \
    if (st_ != FTH_CUDA_OK)                                                                         \
      return st_;                                                                                   \
  } while (0)

// Makes ctx's device current on the calling thread.
FthCudaStatus fth_cuda_use(FthCudaContext *ctx);

static inline unsigned fth_cuda_blocks(size_t n, unsigned threads) {
  size_t b = (n + threads - 1) / threads;
  return (unsigned)(b > 65535u * 16u ? 65535u * 16u : (b ? b : 1));
}

// Scoped device scratch from the caching allocator.
struct FthCudaScratch {
  FthCudaContext *ctx;
  void *ptr;
  FthCudaScratch(FthCudaContext *c, size_t bytes) : ctx(c), ptr(bytes ? fth_cuda_alloc(c, bytes) : nullptr) {}
  ~FthCudaScratch() {
    if (ptr)
      fth_cuda_free(ctx, ptr);
  }
  FthCudaScratch(const FthCudaScratch &) = delete;
  FthCudaScratch &operator=(const FthCudaScratch &) = delete;
};
