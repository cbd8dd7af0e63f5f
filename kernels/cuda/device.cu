// Devices, contexts, status messages, the caching allocator and copies. The same binary must
// run with no driver: nothing here is called before fth_cuda_device_count() says a device answers.
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cuda-private.h"

static thread_local char last_error[512];

extern "C" const char *fth_cuda_last_error(void)
{
  return last_error;
}

FthCudaStatus fth_cuda_fail(FthCudaStatus st, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(last_error, sizeof last_error, fmt, ap);
  va_end(ap);
  return st;
}

FthCudaStatus fth_cuda_check(cudaError_t err, const char *what)
{
  if (err == cudaSuccess)
    return FTH_CUDA_OK;
  (void) cudaGetLastError(); // clear a non-sticky error so the next call starts clean
  return fth_cuda_fail(err == cudaErrorMemoryAllocation ? FTH_CUDA_NO_MEMORY : FTH_CUDA_FAILED, "%s: %s (%s)",
                       what, cudaGetErrorString(err), cudaGetErrorName(err));
}

FthCudaStatus fth_cuda_check_cublas(cublasStatus_t err, const char *what)
{
  if (err == CUBLAS_STATUS_SUCCESS)
    return FTH_CUDA_OK;
  return fth_cuda_fail(err == CUBLAS_STATUS_ALLOC_FAILED ? FTH_CUDA_NO_MEMORY : FTH_CUDA_FAILED, "%s: %s", what,
                       cublasGetStatusString(err));
}

#if FTH_HAVE_CUDNN
FthCudaStatus fth_cuda_check_cudnn(cudnnStatus_t err, const char *what)
{
  if (err == CUDNN_STATUS_SUCCESS)
    return FTH_CUDA_OK;
  return fth_cuda_fail(err == CUDNN_STATUS_ALLOC_FAILED ? FTH_CUDA_NO_MEMORY : FTH_CUDA_FAILED, "%s: %s", what,
                       cudnnGetErrorString(err));
}
#endif

extern "C" int fth_cuda_device_count(const char **err_msg)
{
  int n = 0;
  cudaError_t st = cudaGetDeviceCount(&n);
  if (st != cudaSuccess) {
    if (err_msg)
      *err_msg = cudaGetErrorString(st);
    (void) cudaGetLastError();
    return 0;
  }
  if (n == 0 && err_msg)
    *err_msg = "no CUDA device";
  return n;
}

extern "C" int fth_cuda_device_info(int index, char *name, int name_len, unsigned long long *total_bytes)
{
  cudaDeviceProp prop;
  if (cudaGetDeviceProperties(&prop, index) != cudaSuccess) {
    (void) cudaGetLastError();
    return -1;
  }
  if (name && name_len > 0) {
    strncpy(name, prop.name, (size_t) name_len - 1);
    name[name_len - 1] = '\0';
  }
  if (total_bytes)
    *total_bytes = (unsigned long long) prop.totalGlobalMem;
  return 0;
}

extern "C" FthCudaStatus fth_cuda_mem_info(int device, size_t *free_bytes, size_t *total_bytes)
{
  FTH_CUDA_TRY(fth_cuda_check(cudaSetDevice(device), "cudaSetDevice"));
  return fth_cuda_check(cudaMemGetInfo(free_bytes, total_bytes), "cudaMemGetInfo");
}

FthCudaStatus fth_cuda_use(FthCudaContext *ctx)
{
  return fth_cuda_check(cudaSetDevice(ctx->device), "cudaSetDevice");
}

extern "C" FthCudaStatus fth_cuda_context_new(int device, FthCudaContext **out)
{
  *out = nullptr;
  const char *why = nullptr;
  int n = fth_cuda_device_count(&why);
  if (device < 0 || device >= n)
    return fth_cuda_fail(n ? FTH_CUDA_INVALID : FTH_CUDA_NO_DEVICE, "cuda:%d: %s", device,
                         n ? "no such device" : why);
  FthCudaContext *ctx = new (std::nothrow) FthCudaContext();
  if (!ctx)
    return fth_cuda_fail(FTH_CUDA_NO_MEMORY, "cuda context: out of host memory");
  ctx->device = device;
  ctx->math = FTH_CUDA_MATH_F32;
  FthCudaStatus st = fth_cuda_use(ctx);
  if (st == FTH_CUDA_OK)
    st = fth_cuda_check(cudaStreamCreateWithFlags(&ctx->stream, cudaStreamNonBlocking), "cudaStreamCreate");
  if (st == FTH_CUDA_OK)
    st = fth_cuda_check_cublas(cublasCreate(&ctx->cublas), "cublasCreate");
  if (st == FTH_CUDA_OK)
    st = fth_cuda_check_cublas(cublasSetStream(ctx->cublas, ctx->stream), "cublasSetStream");
#if FTH_HAVE_CUDNN
  if (st == FTH_CUDA_OK)
    st = fth_cuda_check_cudnn(cudnnCreate(&ctx->cudnn), "cudnnCreate");
  if (st == FTH_CUDA_OK)
    st = fth_cuda_check_cudnn(cudnnSetStream(ctx->cudnn, ctx->stream), "cudnnSetStream");
#endif
  if (st == FTH_CUDA_OK) {
    ctx->d_flags = (unsigned *) fth_cuda_alloc(ctx, sizeof(unsigned));
    st = ctx->d_flags ? fth_cuda_memset_zero(ctx, ctx->d_flags, sizeof(unsigned)) : FTH_CUDA_NO_MEMORY;
  }
  if (st != FTH_CUDA_OK) {
    char keep[sizeof last_error];
    memcpy(keep, last_error, sizeof keep);
    fth_cuda_context_free(ctx);
    memcpy(last_error, keep, sizeof keep);
    return st;
  }
  *out = ctx;
  return FTH_CUDA_OK;
}

extern "C" void fth_cuda_context_free(FthCudaContext *ctx)
{
  if (!ctx)
    return;
  if (fth_cuda_use(ctx) == FTH_CUDA_OK && ctx->stream)
    (void) cudaStreamSynchronize(ctx->stream);
  if (ctx->d_flags)
    fth_cuda_free(ctx, ctx->d_flags);
  for (auto &kv : ctx->live)
    (void) cudaFree(kv.first); // blocks the caller leaked: the context owns them
  ctx->live.clear();
  fth_cuda_empty_cache(ctx);
#if FTH_HAVE_CUDNN
  if (ctx->cudnn)
    (void) cudnnDestroy(ctx->cudnn);
#endif
  if (ctx->cublas)
    (void) cublasDestroy(ctx->cublas);
  if (ctx->stream)
    (void) cudaStreamDestroy(ctx->stream);
  (void) cudaGetLastError();
  delete ctx;
}

extern "C" int fth_cuda_context_device(const FthCudaContext *ctx)
{
  return ctx->device;
}

extern "C" void fth_cuda_set_math(FthCudaContext *ctx, FthCudaMath math)
{
  ctx->math = math;
}

extern "C" FthCudaMath fth_cuda_math(const FthCudaContext *ctx)
{
  return ctx->math;
}

extern "C" FthCudaStatus fth_cuda_synchronize(FthCudaContext *ctx)
{
  FTH_CUDA_TRY(fth_cuda_use(ctx));
  FTH_CUDA_TRY(fth_cuda_check(cudaStreamSynchronize(ctx->stream), "cudaStreamSynchronize"));
  unsigned flags = 0;
  FTH_CUDA_TRY(fth_cuda_copy_to_host(ctx, &flags, ctx->d_flags, sizeof flags));
  if (!flags)
    return FTH_CUDA_OK;
  FTH_CUDA_TRY(fth_cuda_memset_zero(ctx, ctx->d_flags, sizeof(unsigned)));
  if (flags & FTH_CUDA_FLAG_TARGET)
    return fth_cuda_fail(FTH_CUDA_INVALID, "cross_entropy: a target is outside 0..C-1");
  return fth_cuda_fail(FTH_CUDA_INVALID, "embedding: an id is outside the table");
}

// ---- caching allocator ------------------------------------------------------------------------

static size_t round_block(size_t bytes)
{
  const size_t small = 512, large = (size_t) 2 << 20;
  if (bytes < ((size_t) 1 << 20))
    return (bytes + small - 1) / small * small;
  return (bytes + large - 1) / large * large;
}

extern "C" void *fth_cuda_alloc(FthCudaContext *ctx, size_t bytes)
{
  size_t size = round_block(bytes ? bytes : 1);
  std::lock_guard<std::mutex> guard(ctx->lock);
  // best fit, but never hand a large request a block more than twice its size
  auto it = ctx->free_blocks.lower_bound(size);
  if (it != ctx->free_blocks.end() && it->first <= 2 * size) {
    void *p = it->second;
    size_t got = it->first;
    ctx->free_blocks.erase(it);
    ctx->cached -= got;
    ctx->live[p] = got;
    ctx->in_use += got;
    if (ctx->in_use > ctx->peak)
      ctx->peak = ctx->in_use;
    return p;
  }
  if (fth_cuda_use(ctx) != FTH_CUDA_OK)
    return nullptr;
  void *p = nullptr;
  cudaError_t err = cudaMalloc(&p, size);
  if (err == cudaErrorMemoryAllocation && !ctx->free_blocks.empty()) {
    (void) cudaGetLastError();
    (void) cudaStreamSynchronize(ctx->stream); // cached blocks may still be read by queued work
    for (auto &kv : ctx->free_blocks)
      (void) cudaFree(kv.second);
    ctx->free_blocks.clear();
    ctx->cached = 0;
    err = cudaMalloc(&p, size);
  }
  if (err != cudaSuccess) {
    fth_cuda_check(err, "cudaMalloc");
    fth_cuda_fail(FTH_CUDA_NO_MEMORY, "cudaMalloc of %zu bytes: %s (%zu in use)", size, cudaGetErrorString(err),
                  ctx->in_use);
    return nullptr;
  }
  ctx->driver_allocs++;
  ctx->live[p] = size;
  ctx->in_use += size;
  if (ctx->in_use > ctx->peak)
    ctx->peak = ctx->in_use;
  return p;
}

extern "C" void fth_cuda_free(FthCudaContext *ctx, void *d_ptr)
{
  if (!d_ptr)
    return;
  std::lock_guard<std::mutex> guard(ctx->lock);
  auto it = ctx->live.find(d_ptr);
  if (it == ctx->live.end())
    return; // not ours: ignoring it is safer than freeing a foreign pointer
  ctx->free_blocks.emplace(it->second, d_ptr);
  ctx->cached += it->second;
  ctx->in_use -= it->second;
  ctx->live.erase(it);
}

extern "C" void fth_cuda_empty_cache(FthCudaContext *ctx)
{
  std::lock_guard<std::mutex> guard(ctx->lock);
  if (ctx->free_blocks.empty())
    return;
  if (fth_cuda_use(ctx) == FTH_CUDA_OK)
    (void) cudaStreamSynchronize(ctx->stream);
  for (auto &kv : ctx->free_blocks)
    (void) cudaFree(kv.second);
  (void) cudaGetLastError();
  ctx->free_blocks.clear();
  ctx->cached = 0;
}

extern "C" void fth_cuda_alloc_stats(const FthCudaContext *ctx, FthCudaAllocStats *stats)
{
  std::lock_guard<std::mutex> guard(const_cast<FthCudaContext *>(ctx)->lock);
  stats->in_use_bytes = ctx->in_use;
  stats->cached_bytes = ctx->cached;
  stats->peak_in_use_bytes = ctx->peak;
  stats->driver_allocs = ctx->driver_allocs;
}

// ---- copies -----------------------------------------------------------------------------------

extern "C" FthCudaStatus fth_cuda_copy_to_device(FthCudaContext *ctx, void *d_dst, const void *src, size_t bytes)
{
  if (!bytes)
    return FTH_CUDA_OK;
  FTH_CUDA_TRY(fth_cuda_use(ctx));
  FTH_CUDA_TRY(fth_cuda_check(cudaMemcpyAsync(d_dst, src, bytes, cudaMemcpyHostToDevice, ctx->stream),
                              "cudaMemcpy to device"));
  return fth_cuda_check(cudaStreamSynchronize(ctx->stream), "cudaMemcpy to device");
}

extern "C" FthCudaStatus fth_cuda_copy_to_host(FthCudaContext *ctx, void *dst, const void *d_src, size_t bytes)
{
  if (!bytes)
    return FTH_CUDA_OK;
  FTH_CUDA_TRY(fth_cuda_use(ctx));
  FTH_CUDA_TRY(fth_cuda_check(cudaMemcpyAsync(dst, d_src, bytes, cudaMemcpyDeviceToHost, ctx->stream),
                              "cudaMemcpy to host"));
  return fth_cuda_check(cudaStreamSynchronize(ctx->stream), "cudaMemcpy to host");
}

extern "C" FthCudaStatus fth_cuda_copy_device(FthCudaContext *ctx, void *d_dst, const void *d_src, size_t bytes)
{
  if (!bytes || d_dst == d_src)
    return FTH_CUDA_OK;
  return fth_cuda_check(cudaMemcpyAsync(d_dst, d_src, bytes, cudaMemcpyDeviceToDevice, ctx->stream),
                        "cudaMemcpy on device");
}

extern "C" FthCudaStatus fth_cuda_memset_zero(FthCudaContext *ctx, void *d_dst, size_t bytes)
{
  if (!bytes)
    return FTH_CUDA_OK;
  return fth_cuda_check(cudaMemsetAsync(d_dst, 0, bytes, ctx->stream), "cudaMemset");
}

extern "C" FthCudaStatus fth_cuda_copy_rows(FthCudaContext *ctx, void *d_dst, size_t dst_pitch, const void *d_src,
                                            size_t src_pitch, size_t row_bytes, size_t rows)
{
  if (!rows || !row_bytes)
    return FTH_CUDA_OK;
  return fth_cuda_check(cudaMemcpy2DAsync(d_dst, dst_pitch, d_src, src_pitch, row_bytes, rows,
                                          cudaMemcpyDeviceToDevice, ctx->stream),
                        "cudaMemcpy2D");
}
