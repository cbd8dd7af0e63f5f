// Dropout with the CPU's counter-based Philox stream, and embedding lookups.
#include "cuda-private.h"

#define THREADS 256

// Philox4x32-10, the same rounds and constants as engine/core/rng.c: key = seed,
// counter = (block, stream).
__device__ static void philox4x32(uint64_t seed, uint64_t stream, uint64_t block, uint32_t out[4])
{
  uint32_t c0 = (uint32_t) block, c1 = (uint32_t) (block >> 32);
  uint32_t c2 = (uint32_t) stream, c3 = (uint32_t) (stream >> 32);
  uint32_t k0 = (uint32_t) seed, k1 = (uint32_t) (seed >> 32);
  for (int round = 0; round < 10; round++) {
    uint32_t hi0 = __umulhi(0xD2511F53u, c0), lo0 = 0xD2511F53u * c0;
    uint32_t hi1 = __umulhi(0xCD9E8D57u, c2), lo1 = 0xCD9E8D57u * c2;
    uint32_t n0 = hi1 ^ c1 ^ k0;
    uint32_t n2 = hi0 ^ c3 ^ k1;
    c1 = lo1;
    c3 = lo0;
    c0 = n0;
    c2 = n2;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
}

// One thread per block of 4 elements (one Philox call), as ops-dropout.c.
__global__ void dropout_kernel(const float *x, float *y, size_t n, float p, float scale, uint64_t seed,
                               uint64_t stream, uint64_t step)
{
  size_t blocks = (n + 3) / 4;
  for (size_t blk = blockIdx.x * (size_t) blockDim.x + threadIdx.x; blk < blocks;
       blk += (size_t) gridDim.x * blockDim.x) {
    uint32_t rnd[4];
    philox4x32(seed, stream, (step << 32) + blk, rnd);
    size_t i0 = blk * 4, i1 = i0 + 4 < n ? i0 + 4 : n;
    for (size_t i = i0; i < i1; i++) {
      float u = (float) (rnd[i - i0] >> 8) * (1.0f / 16777216.0f);
      y[i] = u >= p ? x[i] * scale : 0.0f;
    }
  }
}

extern "C" FthCudaStatus fth_cuda_dropout(FthCudaContext *ctx, const float *d_x, float *d_y, size_t n, float p,
                                          uint64_t seed, uint64_t stream, uint64_t step)
{
  if (!n)
    return FTH_CUDA_OK;
  float scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
  dropout_kernel<<<fth_cuda_blocks((n + 3) / 4, THREADS), THREADS, 0, ctx->stream>>>(d_x, d_y, n, p, scale, seed,
                                                                                    stream, step);
  return fth_cuda_check_launch("dropout kernel");
}

__global__ void embedding_kernel(const int32_t *ids, size_t n_ids, const float *table, size_t vocab, size_t dim,
                                 float *y, unsigned *flags)
{
  size_t n = n_ids * dim;
  for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < n; i += (size_t) gridDim.x * blockDim.x) {
    int32_t id = ids[i / dim];
    if (id < 0 || (size_t) id >= vocab) {
      y[i] = 0.0f;
      atomicOr(flags, (unsigned) FTH_CUDA_FLAG_ID);
    } else {
      y[i] = table[(size_t) id * dim + i % dim];
    }
  }
}

__global__ void embedding_grad_kernel(const int32_t *ids, size_t n_ids, const float *dy, size_t vocab, size_t dim,
                                      int32_t padding_idx, float *dtable)
{
  size_t n = n_ids * dim;
  for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < n; i += (size_t) gridDim.x * blockDim.x) {
    int32_t id = ids[i / dim];
    if (id >= 0 && (size_t) id < vocab && id != padding_idx)
      atomicAdd(&dtable[(size_t) id * dim + i % dim], dy[i]);
  }
}

extern "C" FthCudaStatus fth_cuda_embedding(FthCudaContext *ctx, const int32_t *d_ids, size_t n_ids,
                                            const float *d_table, size_t vocab, size_t dim, float *d_y)
{
  if (!n_ids || !dim)
    return FTH_CUDA_OK;
  embedding_kernel<<<fth_cuda_blocks(n_ids * dim, THREADS), THREADS, 0, ctx->stream>>>(d_ids, n_ids, d_table, vocab,
                                                                                      dim, d_y, ctx->d_flags);
  return fth_cuda_check_launch("embedding kernel");
}

extern "C" FthCudaStatus fth_cuda_embedding_grad(FthCudaContext *ctx, const int32_t *d_ids, size_t n_ids,
                                                 const float *d_dy, size_t vocab, size_t dim, int32_t padding_idx,
                                                 float *d_dtable)
{
  FTH_CUDA_TRY(fth_cuda_memset_zero(ctx, d_dtable, vocab * dim * sizeof(float)));
  if (!n_ids || !dim)
    return FTH_CUDA_OK;
  embedding_grad_kernel<<<fth_cuda_blocks(n_ids * dim, THREADS), THREADS, 0, ctx->stream>>>(
      d_ids, n_ids, d_dy, vocab, dim, padding_idx, d_dtable);
  return fth_cuda_check_launch("embedding gradient kernel");
}
