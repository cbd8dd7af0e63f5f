// Softmax, log-softmax and their gradients (a warp per row), and the losses of ops-loss.c:
// cross-entropy, BCE with logits and MSE. Loss sums run in double in a fixed order.
#include <math.h>

#include "cuda-private.h"

#define WARP 32
#define ROWS_PER_BLOCK 8
#define SUM_THREADS 1024

__device__ static float warp_max(float v)
{
  for (int o = WARP / 2; o > 0; o >>= 1)
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

template <typename T> __device__ static T warp_sum(T v)
{
  for (int o = WARP / 2; o > 0; o >>= 1)
    v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// mode 0 softmax, 1 log-softmax, 2 softmax grad, 3 log-softmax grad
__global__ void softmax_kernel(int mode, const float *x, const float *y, float *out, size_t rows, size_t len,
                               size_t inner)
{
  size_t row = blockIdx.x * (size_t) ROWS_PER_BLOCK + threadIdx.y;
  if (row >= rows)
    return;
  size_t base = row / inner * len * inner + row % inner;
  unsigned lane = threadIdx.x;
  if (mode < 2) {
    const float *xr = x + base;
    float m = -INFINITY;
    for (size_t c = lane; c < len; c += WARP)
      m = fmaxf(m, xr[c * inner]);
    m = warp_max(m);
    float s = 0.0f;
    for (size_t c = lane; c < len; c += WARP)
      s += expf(xr[c * inner] - m);
    float lse = m + logf(warp_sum(s));
    for (size_t c = lane; c < len; c += WARP)
      out[base + c * inner] = mode == 0 ? expf(xr[c * inner] - lse) : xr[c * inner] - lse;
    return;
  }
  const float *dy = x + base, *yr = y + base;
  float s = 0.0f;
  for (size_t c = lane; c < len; c += WARP)
    s += mode == 2 ? dy[c * inner] * yr[c * inner] : dy[c * inner];
  s = warp_sum(s);
  for (size_t c = lane; c < len; c += WARP)
    out[base + c * inner] = mode == 2 ? yr[c * inner] * (dy[c * inner] - s) : dy[c * inner] - expf(yr[c * inner]) * s;
}

static FthCudaStatus launch_softmax(FthCudaContext *ctx, int mode, const float *x, const float *y, float *out,
                                    size_t outer, size_t len, size_t inner)
{
  size_t rows = outer * inner;
  if (!rows || !len)
    return FTH_CUDA_OK;
  dim3 block(WARP, ROWS_PER_BLOCK);
  size_t grid = (rows + ROWS_PER_BLOCK - 1) / ROWS_PER_BLOCK;
  if (grid > 0x7fffffffu)
    return fth_cuda_fail(FTH_CUDA_INVALID, "softmax: %zu rows", rows);
  softmax_kernel<<<(unsigned) grid, block, 0, ctx->stream>>>(mode, x, y, out, rows, len, inner);
  return fth_cuda_check_launch("softmax kernel");
}

extern "C" FthCudaStatus fth_cuda_softmax(FthCudaContext *ctx, int log, const float *d_x, float *d_y, size_t outer,
                                          size_t len, size_t inner)
{
  return launch_softmax(ctx, log ? 1 : 0, d_x, nullptr, d_y, outer, len, inner);
}

extern "C" FthCudaStatus fth_cuda_softmax_grad(FthCudaContext *ctx, int log, const float *d_dy, const float *d_y,
                                               float *d_dx, size_t outer, size_t len, size_t inner)
{
  return launch_softmax(ctx, log ? 3 : 2, d_dy, d_y, d_dx, outer, len, inner);
}

// ---- cross-entropy ----------------------------------------------------------------------------

struct CeArgs {
  const float *x, *w;
  const int32_t *t;
  size_t n, c;
  float eps;
  int has_ignore;
  int32_t ignore;
  double *terms;
  unsigned *flags;
};

// Per row: terms[2r] = weighted loss, terms[2r + 1] = weight (ops-loss.c's ce_rows).
__global__ void ce_terms_kernel(CeArgs a)
{
  size_t r = blockIdx.x * (size_t) ROWS_PER_BLOCK + threadIdx.y;
  if (r >= a.n)
    return;
  unsigned lane = threadIdx.x;
  const float *x = a.x + r * a.c;
  int32_t t = a.t[r];
  if ((a.has_ignore && t == a.ignore) || t < 0 || (size_t) t >= a.c) {
    if (lane == 0) {
      a.terms[2 * r] = a.terms[2 * r + 1] = 0.0;
      if (!(a.has_ignore && t == a.ignore))
        atomicOr(a.flags, (unsigned) FTH_CUDA_FLAG_TARGET);
    }
    return;
  }
  double m = -INFINITY;
  for (size_t c = lane; c < a.c; c += WARP)
    m = fmax(m, (double) x[c]);
  for (int o = WARP / 2; o > 0; o >>= 1)
    m = fmax(m, __shfl_xor_sync(0xffffffffu, m, o));
  double s = 0.0;
  for (size_t c = lane; c < a.c; c += WARP)
    s += exp((double) x[c] - m);
  double lse = m + log(warp_sum(s));
  double smooth = 0.0;
  for (size_t c = lane; c < a.c; c += WARP)
    smooth += (a.w ? (double) a.w[c] : 1.0) * (lse - x[c]);
  smooth = warp_sum(smooth);
  if (lane == 0) {
    double wt = a.w ? a.w[t] : 1.0;
    a.terms[2 * r] = (1.0 - a.eps) * wt * (lse - x[t]) + a.eps / (double) a.c * smooth;
    a.terms[2 * r + 1] = wt;
  }
}

// One block sums the row terms in a fixed order; totals go to terms[0] (loss) and terms[1]
// (weight), and the forward's mean to *out when out is not NULL.
__global__ void ce_total_kernel(double *terms, size_t n, float *out)
{
  __shared__ double ls[SUM_THREADS], ws[SUM_THREADS];
  double l = 0.0, w = 0.0;
  for (size_t r = threadIdx.x; r < n; r += blockDim.x) {
    l += terms[2 * r];
    w += terms[2 * r + 1];
  }
  ls[threadIdx.x] = l;
  ws[threadIdx.x] = w;
  __syncthreads();
  for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) {
      ls[threadIdx.x] += ls[threadIdx.x + s];
      ws[threadIdx.x] += ws[threadIdx.x + s];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    terms[0] = ls[0];
    terms[1] = ws[0];
    if (out)
      *out = ws[0] > 0.0 ? (float) (ls[0] / ws[0]) : 0.0f;
  }
}

__global__ void ce_grad_kernel(CeArgs a, const float *dy, float *dx)
{
  size_t r = blockIdx.x * (size_t) ROWS_PER_BLOCK + threadIdx.y;
  if (r >= a.n)
    return;
  unsigned lane = threadIdx.x;
  const float *x = a.x + r * a.c;
  float *d = dx + r * a.c;
  int32_t t = a.t[r];
  if ((a.has_ignore && t == a.ignore) || t < 0 || (size_t) t >= a.c) {
    for (size_t c = lane; c < a.c; c += WARP)
      d[c] = 0.0f;
    return;
  }
  double wsum = a.terms[1];
  float scale = wsum > 0.0 ? (float) (dy[0] / wsum) : 0.0f;
  double sw = 0.0, m = -INFINITY, s = 0.0;
  for (size_t c = lane; c < a.c; c += WARP) {
    sw += a.w ? (double) a.w[c] : 1.0;
    m = fmax(m, (double) x[c]);
  }
  sw = warp_sum(sw);
  for (int o = WARP / 2; o > 0; o >>= 1)
    m = fmax(m, __shfl_xor_sync(0xffffffffu, m, o));
  for (size_t c = lane; c < a.c; c += WARP)
    s += exp((double) x[c] - m);
  double lse = m + log(warp_sum(s));
  double wt = a.w ? a.w[t] : 1.0;
  for (size_t c = lane; c < a.c; c += WARP) {
    double pc = exp(x[c] - lse), wc = a.w ? a.w[c] : 1.0;
    double gr = (1.0 - a.eps) * wt * (pc - (c == (size_t) t ? 1.0 : 0.0)) + a.eps / (double) a.c * (sw * pc - wc);
    d[c] = (float) gr * scale;
  }
}

extern "C" FthCudaStatus fth_cuda_cross_entropy(FthCudaContext *ctx, const float *d_logits,
                                                const int32_t *d_targets, const float *d_weights, size_t n, size_t c,
                                                float label_smoothing, int has_ignore, int32_t ignore_index,
                                                double *d_terms, const float *d_dy, float *d_out)
{
  if (!c)
    return fth_cuda_fail(FTH_CUDA_INVALID, "cross_entropy: no classes");
  if (!n)
    return d_dy ? FTH_CUDA_OK : fth_cuda_fill(ctx, d_out, 1, 0.0f);
  CeArgs a = {d_logits, d_weights, d_targets, n, c, label_smoothing, has_ignore, ignore_index, d_terms,
              ctx->d_flags};
  dim3 block(WARP, ROWS_PER_BLOCK);
  unsigned grid = (unsigned) ((n + ROWS_PER_BLOCK - 1) / ROWS_PER_BLOCK);
  ce_terms_kernel<<<grid, block, 0, ctx->stream>>>(a);
  FTH_CUDA_TRY(fth_cuda_check_launch("cross-entropy kernel"));
  ce_total_kernel<<<1, SUM_THREADS, 0, ctx->stream>>>(d_terms, n, d_dy ? nullptr : d_out);
  FTH_CUDA_TRY(fth_cuda_check_launch("cross-entropy sum kernel"));
  if (!d_dy)
    return FTH_CUDA_OK;
  ce_grad_kernel<<<grid, block, 0, ctx->stream>>>(a, d_dy, d_out);
  return fth_cuda_check_launch("cross-entropy gradient kernel");
}

// ---- BCE with logits and MSE ------------------------------------------------------------------

// kind 0: BCE, 1: MSE. One block: the mean over n elements into *out.
__global__ void loss_mean_kernel(int kind, const float *x, const float *t, const float *pw, size_t n, size_t last,
                                 float *out)
{
  __shared__ double part[SUM_THREADS];
  double s = 0.0;
  for (size_t i = threadIdx.x; i < n; i += blockDim.x) {
    double xi = x[i], ti = t[i];
    if (kind == 0) {
      double l = 1.0 + (pw ? (double) pw[i % last] - 1.0 : 0.0) * ti;
      double sp = log1p(exp(-fabs(xi))) + fmax(-xi, 0.0);
      s += (1.0 - ti) * xi + l * sp;
    } else {
      s += (xi - ti) * (xi - ti);
    }
  }
  part[threadIdx.x] = s;
  __syncthreads();
  for (unsigned w = blockDim.x / 2; w > 0; w >>= 1) {
    if (threadIdx.x < w)
      part[threadIdx.x] += part[threadIdx.x + w];
    __syncthreads();
  }
  if (threadIdx.x == 0)
    *out = n ? (float) (part[0] / (double) n) : 0.0f;
}

__global__ void loss_grad_kernel(int kind, const float *x, const float *t, const float *pw, size_t n, size_t last,
                                 const float *dy, float *dx)
{
  float scale = kind == 0 ? dy[0] / (float) n : 2.0f * dy[0] / (float) n;
  for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < n; i += (size_t) gridDim.x * blockDim.x) {
    if (kind == 0) {
      float l = 1.0f + (pw ? pw[i % last] - 1.0f : 0.0f) * t[i];
      float sig = 1.0f / (1.0f + expf(-x[i]));
      dx[i] = scale * ((1.0f - t[i]) - l * (1.0f - sig));
    } else {
      dx[i] = scale * (x[i] - t[i]);
    }
  }
}

static FthCudaStatus loss(FthCudaContext *ctx, int kind, const float *x, const float *t, const float *pw, size_t n,
                          size_t last, const float *dy, float *out)
{
  if (!dy) {
    loss_mean_kernel<<<1, SUM_THREADS, 0, ctx->stream>>>(kind, x, t, pw, n, last ? last : 1, out);
    return fth_cuda_check_launch("loss kernel");
  }
  if (!n)
    return FTH_CUDA_OK;
  loss_grad_kernel<<<fth_cuda_blocks(n, 256), 256, 0, ctx->stream>>>(kind, x, t, pw, n, last ? last : 1, dy, out);
  return fth_cuda_check_launch("loss gradient kernel");
}

extern "C" FthCudaStatus fth_cuda_bce_with_logits(FthCudaContext *ctx, const float *d_x, const float *d_t,
                                                  const float *d_pos_weight, size_t n, size_t last,
                                                  const float *d_dy, float *d_out)
{
  return loss(ctx, 0, d_x, d_t, d_pos_weight, n, last, d_dy, d_out);
}

extern "C" FthCudaStatus fth_cuda_mse(FthCudaContext *ctx, const float *d_p, const float *d_t, size_t n,
                                      const float *d_dy, float *d_out)
{
  return loss(ctx, 1, d_p, d_t, nullptr, n, 1, d_dy, d_out);
}
