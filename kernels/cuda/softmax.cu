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
  const float *x, *w, *s; // logits, class weights, sample weights (nullptr: all 1)
  const int32_t *t;
  size_t rows, c, inner;
  float eps;
  int has_ignore;
  int32_t ignore;
  unsigned *flags;
};

// The logits of row r (n, position): C values `inner` apart.
__device__ static size_t ce_base(const CeArgs &a, size_t r)
{
  return r / a.inner * a.c * a.inner + r % a.inner;
}

// Per row, a warp: terms[2r] = loss term, terms[2r + 1] = weight; row_stats = (lse, weight) as
// floats (ops-loss.c's ce_forward_rows, with its float max and expf summed in double).
__global__ void ce_forward_kernel(CeArgs a, double *terms, float *row_stats)
{
  size_t r = blockIdx.x * (size_t) ROWS_PER_BLOCK + threadIdx.y;
  if (r >= a.rows)
    return;
  unsigned lane = threadIdx.x;
  const float *x = a.x + ce_base(a, r);
  const size_t in = a.inner;
  int32_t t = a.t[r];
  bool ignored = a.has_ignore && t == a.ignore;
  if (ignored || t < 0 || (size_t) t >= a.c) {
    if (lane == 0) {
      terms[2 * r] = terms[2 * r + 1] = 0.0;
      row_stats[2 * r] = row_stats[2 * r + 1] = 0.0f;
      if (!ignored)
        atomicOr(a.flags, (unsigned) FTH_CUDA_FLAG_TARGET);
    }
    return;
  }
  float m = -INFINITY;
  for (size_t c = lane; c < a.c; c += WARP)
    m = fmaxf(m, x[c * in]);
  m = warp_max(m);
  double s = 0.0;
  for (size_t c = lane; c < a.c; c += WARP)
    s += expf(x[c * in] - m);
  double lse = m + log(warp_sum(s));
  double smooth = 0.0;
  if (a.eps != 0.0f) {
    for (size_t c = lane; c < a.c; c += WARP)
      smooth += (a.w ? (double) a.w[c] : 1.0) * (lse - x[c * in]);
    smooth = warp_sum(smooth);
  }
  if (lane == 0) {
    double sn = a.s ? (double) a.s[r / a.inner] : 1.0, wt = (a.w ? a.w[t] : 1.0) * sn;
    terms[2 * r] = (1.0 - a.eps) * wt * (lse - x[(size_t) t * in]) + sn * a.eps / (double) a.c * smooth;
    terms[2 * r + 1] = wt;
    row_stats[2 * r] = (float) lse;
    row_stats[2 * r + 1] = (float) wt;
  }
}

// One block sums the row terms in a fixed order into the mean loss and the total weight.
__global__ void ce_total_kernel(const double *terms, size_t rows, float *loss, float *total_weight)
{
  __shared__ double ls[SUM_THREADS], ws[SUM_THREADS];
  double l = 0.0, w = 0.0;
  for (size_t r = threadIdx.x; r < rows; r += blockDim.x) {
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
    *loss = ws[0] > 0.0 ? (float) (ls[0] / ws[0]) : 0.0f;
    *total_weight = (float) ws[0];
  }
}

// ops-loss.c's ce_grad_rows: one pass of exp(x - lse) per logit from the saved row statistics.
__global__ void ce_grad_kernel(CeArgs a, const float *row_stats, const float *total_weight, const float *dy,
                               float *dx)
{
  size_t r = blockIdx.x * (size_t) ROWS_PER_BLOCK + threadIdx.y;
  if (r >= a.rows)
    return;
  unsigned lane = threadIdx.x;
  const size_t base = ce_base(a, r), in = a.inner;
  const float *x = a.x + base;
  float *d = dx + base;
  int32_t t = a.t[r];
  if ((a.has_ignore && t == a.ignore) || t < 0 || (size_t) t >= a.c) {
    for (size_t c = lane; c < a.c; c += WARP)
      d[c * in] = 0.0f;
    return;
  }
  const float wsum = *total_weight;
  const float scale = wsum > 0.0f ? dy[0] / wsum : 0.0f;
  double sw_d = 0.0;
  if (a.w) {
    for (size_t c = lane; c < a.c; c += WARP)
      sw_d += a.w[c];
    sw_d = warp_sum(sw_d);
  } else {
    sw_d = (double) a.c;
  }
  // the row weight already holds the sample weight; the smoothing term needs it too
  const float sw = (float) sw_d, smooth0 = a.eps / (float) a.c * scale;
  const float smooth = a.s ? smooth0 * a.s[r / a.inner] : smooth0;
  const float lse = row_stats[2 * r], hard = (1.0f - a.eps) * row_stats[2 * r + 1] * scale;
  for (size_t c = lane; c < a.c; c += WARP) {
    float pc = expf(x[c * in] - lse);
    float wc = a.w ? a.w[c] : 1.0f;
    d[c * in] = hard * (pc - (c == (size_t) t ? 1.0f : 0.0f)) + smooth * (sw * pc - wc);
  }
}

static CeArgs ce_args(FthCudaContext *ctx, const float *x, const int32_t *t, const float *w, const float *s,
                      size_t n, size_t c, size_t inner, float eps, int has_ignore, int32_t ignore)
{
  return CeArgs{x, w, s, t, n * inner, c, inner ? inner : 1, eps, has_ignore, ignore, ctx->d_flags};
}

extern "C" FthCudaStatus fth_cuda_cross_entropy(FthCudaContext *ctx, const float *d_logits,
                                                const int32_t *d_targets, const float *d_weights,
                                                const float *d_sample_weights, size_t n, size_t c, size_t inner,
                                                float label_smoothing, int has_ignore,
                                                int32_t ignore_index, double *d_terms, float *d_row_stats,
                                                float *d_total_weight, float *d_loss)
{
  if (!c)
    return fth_cuda_fail(FTH_CUDA_INVALID, "cross_entropy: no classes");
  CeArgs a = ce_args(ctx, d_logits, d_targets, d_weights, d_sample_weights, n, c, inner, label_smoothing,
                     has_ignore, ignore_index);
  if (a.rows) {
    dim3 block(WARP, ROWS_PER_BLOCK);
    ce_forward_kernel<<<(unsigned) ((a.rows + ROWS_PER_BLOCK - 1) / ROWS_PER_BLOCK), block, 0, ctx->stream>>>(
        a, d_terms, d_row_stats);
    FTH_CUDA_TRY(fth_cuda_check_launch("cross-entropy kernel"));
  }
  ce_total_kernel<<<1, SUM_THREADS, 0, ctx->stream>>>(d_terms, a.rows, d_loss, d_total_weight);
  return fth_cuda_check_launch("cross-entropy sum kernel");
}

extern "C" FthCudaStatus fth_cuda_cross_entropy_grad(FthCudaContext *ctx, const float *d_logits,
                                                     const int32_t *d_targets, const float *d_weights,
                                                     const float *d_sample_weights, size_t n, size_t c, size_t inner,
                                                     float label_smoothing, int has_ignore,
                                                     int32_t ignore_index, const float *d_row_stats,
                                                     const float *d_total_weight, const float *d_dy, float *d_dx)
{
  if (!c)
    return fth_cuda_fail(FTH_CUDA_INVALID, "cross_entropy: no classes");
  CeArgs a = ce_args(ctx, d_logits, d_targets, d_weights, d_sample_weights, n, c, inner, label_smoothing,
                     has_ignore, ignore_index);
  if (!a.rows)
    return FTH_CUDA_OK;
  dim3 block(WARP, ROWS_PER_BLOCK);
  ce_grad_kernel<<<(unsigned) ((a.rows + ROWS_PER_BLOCK - 1) / ROWS_PER_BLOCK), block, 0, ctx->stream>>>(
      a, d_row_stats, d_total_weight, d_dy, d_dx);
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
