// Multi-head scaled dot-product attention with the saved-probabilities layout of
// kernels/cpu/attention.c: per batch entry, strided-batched GEMMs over the heads (a head is Dh
// columns of the [T, H * Dh] rows), a masked softmax of a warp per row, and for the backward
// pass dS = P * (dP - rowsum(P dP)) from the saved P, computed once by the q gradient and
// reused by the k gradient (ops-attention.c).
#include <math.h>

#include "cuda-private.h"

#define WARP 32
#define ROWS_PER_BLOCK 8

// Rows (n, h, i) of the scores in place -> probabilities, keys [0, limit) visible unless masked.
__global__ void masked_softmax_kernel(float *p, const float *key_mask, int n_rows, int heads, int t, int causal)
{
  int row = blockIdx.x * ROWS_PER_BLOCK + threadIdx.y;
  if (row >= n_rows)
    return;
  int i = row % t, n = row / (t * heads);
  int limit = causal ? i + 1 : t;
  const float *km = key_mask ? key_mask + (size_t) n * t : nullptr;
  float *r = p + (size_t) row * t;
  unsigned lane = threadIdx.x;
  float mx = -INFINITY;
  for (int j = lane; j < limit; j += WARP)
    if ((!km || km[j] != 0.0f) && r[j] > mx)
      mx = r[j];
  for (int o = WARP / 2; o > 0; o >>= 1)
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
  if (mx == -INFINITY) {
    for (int j = lane; j < t; j += WARP)
      r[j] = 0.0f;
    return;
  }
  double sum = 0.0;
  for (int j = lane; j < t; j += WARP) {
    if (j >= limit || (km && km[j] == 0.0f)) {
      r[j] = 0.0f;
      continue;
    }
    r[j] = expf(r[j] - mx);
    sum += r[j];
  }
  for (int o = WARP / 2; o > 0; o >>= 1)
    sum += __shfl_xor_sync(0xffffffffu, sum, o);
  const float inv = (float) (1.0 / sum);
  for (int j = lane; j < limit; j += WARP)
    r[j] *= inv;
}

// dS = P * (dP - sum_j P dP) per row, dS overwriting dP.
__global__ void softmax_backward_rows_kernel(const float *p, float *dp, int n_rows, int t)
{
  int row = blockIdx.x * ROWS_PER_BLOCK + threadIdx.y;
  if (row >= n_rows)
    return;
  const float *pr = p + (size_t) row * t;
  float *gr = dp + (size_t) row * t;
  float dot = 0.0f;
  for (int j = threadIdx.x; j < t; j += WARP)
    dot += pr[j] * gr[j];
  for (int o = WARP / 2; o > 0; o >>= 1)
    dot += __shfl_xor_sync(0xffffffffu, dot, o);
  for (int j = threadIdx.x; j < t; j += WARP)
    gr[j] = pr[j] * (gr[j] - dot);
}

static FthCudaStatus check_shape(const FthCudaAttnShape *s)
{
  if (s->batch < 0 || s->seq < 0 || s->heads < 1 || s->head_dim < 1)
    return fth_cuda_fail(FTH_CUDA_INVALID, "attention: bad shape");
  if ((long long) s->batch * s->heads * s->seq > 0x7fffffffLL)
    return fth_cuda_fail(FTH_CUDA_INVALID, "attention: too many rows");
  return FTH_CUDA_OK;
}

// GEMMs over the heads of batch entry n: `a`/`b` are [T, E] rows with head h at column h * Dh
// (stride Dh between heads) or [H, T, T] blocks (stride T * T).
static FthCudaStatus heads_gemm(FthCudaContext *ctx, const FthCudaAttnShape *s, int ta, int tb, int m, int n, int k,
                                float alpha, const float *a, int lda, long long sa, const float *b, int ldb,
                                long long sb, float *c, int ldc, long long sc)
{
  return fth_cuda_gemm(ctx, FTH_CUDA_DT_F32, ta, tb, m, n, k, alpha, a, lda, sa, b, ldb, sb, 0.0f, c, ldc, sc,
                       s->heads);
}

extern "C" FthCudaStatus fth_cuda_attention_forward(FthCudaContext *ctx, const FthCudaAttnShape *s, const float *d_q,
                                                    const float *d_k, const float *d_v, const float *d_key_mask,
                                                    float *d_probs, float *d_out)
{
  FTH_CUDA_TRY(check_shape(s));
  const int T = s->seq, Dh = s->head_dim, E = s->heads * Dh;
  if (!s->batch || !T)
    return FTH_CUDA_OK;
  const size_t row = (size_t) T * E, block = (size_t) s->heads * T * T;
  for (int n = 0; n < s->batch; n++) // S = scale * Q K^T
    FTH_CUDA_TRY(heads_gemm(ctx, s, 0, 1, T, T, Dh, s->scale, d_q + n * row, E, Dh, d_k + n * row, E, Dh,
                            d_probs + n * block, T, (long long) T * T));
  int rows = s->batch * s->heads * T;
  dim3 threads(WARP, ROWS_PER_BLOCK);
  masked_softmax_kernel<<<(rows + ROWS_PER_BLOCK - 1) / ROWS_PER_BLOCK, threads, 0, ctx->stream>>>(
      d_probs, d_key_mask, rows, s->heads, T, s->causal);
  FTH_CUDA_TRY(fth_cuda_check_launch("attention softmax kernel"));
  for (int n = 0; n < s->batch; n++) // O = P V
    FTH_CUDA_TRY(heads_gemm(ctx, s, 0, 0, T, Dh, T, 1.0f, d_probs + n * block, T, (long long) T * T, d_v + n * row,
                            E, Dh, d_out + n * row, E, Dh));
  return FTH_CUDA_OK;
}

extern "C" FthCudaStatus fth_cuda_attention_backward(FthCudaContext *ctx, const FthCudaAttnShape *s,
                                                     const float *d_q, const float *d_k, const float *d_v,
                                                     const float *d_probs, const float *d_dout, const float *d_ds_in,
                                                     float *d_ds_out, float *d_dq, float *d_dk, float *d_dv)
{
  FTH_CUDA_TRY(check_shape(s));
  const int T = s->seq, Dh = s->head_dim, E = s->heads * Dh;
  if (!s->batch || !T)
    return FTH_CUDA_OK;
  const size_t row = (size_t) T * E, block = (size_t) s->heads * T * T;
  const long long tt = (long long) T * T;
  for (int n = 0; d_dv && n < s->batch; n++) // dV = P^T dO
    FTH_CUDA_TRY(heads_gemm(ctx, s, 1, 0, T, Dh, T, 1.0f, d_probs + n * block, T, tt, d_dout + n * row, E, Dh,
                            d_dv + n * row, E, Dh));
  if (!d_dq && !d_dk)
    return FTH_CUDA_OK;
  // without ds_in or ds_out, one batch entry's dP (then dS) at a time
  FthCudaScratch ds(ctx, d_ds_in || d_ds_out ? 0 : block * sizeof(float));
  if (!d_ds_in && !d_ds_out && !ds.ptr)
    return fth_cuda_fail(FTH_CUDA_NO_MEMORY, "attention backward: %zu bytes", block * sizeof(float));
  int rows = s->heads * T;
  dim3 threads(WARP, ROWS_PER_BLOCK);
  for (int n = 0; n < s->batch; n++) {
    const float *dS;
    if (d_ds_in) {
      dS = d_ds_in + n * block;
    } else {
      float *w = d_ds_out ? d_ds_out + n * block : (float *) ds.ptr;
      FTH_CUDA_TRY(heads_gemm(ctx, s, 0, 1, T, T, Dh, 1.0f, d_dout + n * row, E, Dh, d_v + n * row, E, Dh, w, T,
                              tt)); // dP = dO V^T
      softmax_backward_rows_kernel<<<(rows + ROWS_PER_BLOCK - 1) / ROWS_PER_BLOCK, threads, 0, ctx->stream>>>(
          d_probs + n * block, w, rows, T);
      FTH_CUDA_TRY(fth_cuda_check_launch("attention softmax gradient kernel"));
      dS = w;
    }
    if (d_dq) // dQ = scale * dS K
      FTH_CUDA_TRY(heads_gemm(ctx, s, 0, 0, T, Dh, T, s->scale, dS, T, tt, d_k + n * row, E, Dh, d_dq + n * row, E,
                              Dh));
    if (d_dk) // dK = scale * dS^T Q
      FTH_CUDA_TRY(heads_gemm(ctx, s, 1, 0, T, Dh, T, s->scale, dS, T, tt, d_q + n * row, E, Dh, d_dk + n * row, E,
                              Dh));
  }
  return FTH_CUDA_OK;
}
