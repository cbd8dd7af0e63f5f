// Batch norm and layer norm, forward and backward, with kernels/cpu/norm.c's formulas: one block
// per channel (batch norm) or per row (layer norm) accumulates in double in a fixed tree order.
#include <math.h>

#include "cuda-private.h"

#define THREADS 256

// Sums a and b over the block (double); every thread gets the totals.
__device__ static void block_sum2(double *a, double *b)
{
  __shared__ double sa[THREADS], sb[THREADS];
  sa[threadIdx.x] = *a;
  sb[threadIdx.x] = *b;
  __syncthreads();
  for (unsigned w = blockDim.x / 2; w > 0; w >>= 1) {
    if (threadIdx.x < w) {
      sa[threadIdx.x] += sa[threadIdx.x + w];
      sb[threadIdx.x] += sb[threadIdx.x + w];
    }
    __syncthreads();
  }
  *a = sa[0];
  *b = sb[0];
  __syncthreads();
}

// ---- batch norm -------------------------------------------------------------------------------

struct BnArgs {
  const float *x, *dy, *gamma, *beta;
  size_t n, c, s;
  float eps, momentum;
  float *running_mean, *running_var, *mean, *invstd, *y, *dx, *dgamma, *dbeta;
  float *coef; // per channel: mean(dy), mean(dy * xhat) for the input gradient
};

__global__ void bn_stats_kernel(BnArgs a, int training)
{
  size_t ch = blockIdx.x;
  if (!training) {
    if (threadIdx.x == 0) {
      a.mean[ch] = a.running_mean[ch];
      a.invstd[ch] = (float) (1.0 / sqrt((double) a.running_var[ch] + a.eps));
    }
    return;
  }
  const double count = (double) a.n * (double) a.s;
  size_t total = a.n * a.s;
  double sum = 0.0, unused = 0.0;
  for (size_t j = threadIdx.x; j < total; j += blockDim.x)
    sum += a.x[(j / a.s * a.c + ch) * a.s + j % a.s];
  block_sum2(&sum, &unused);
  const double m = sum / count;
  double sq = 0.0;
  for (size_t j = threadIdx.x; j < total; j += blockDim.x) {
    double d = a.x[(j / a.s * a.c + ch) * a.s + j % a.s] - m;
    sq += d * d;
  }
  block_sum2(&sq, &unused);
  if (threadIdx.x == 0) {
    const double var = (double) (float) (sq / count); // the CPU keeps the variance in a float first
    a.mean[ch] = (float) m;
    a.invstd[ch] = (float) (1.0 / sqrt(var + a.eps));
    a.running_mean[ch] = (1.0f - a.momentum) * a.running_mean[ch] + a.momentum * (float) m;
    const double unbiased = count > 1.0 ? var * count / (count - 1.0) : var;
    a.running_var[ch] = (float) ((1.0 - a.momentum) * a.running_var[ch] + a.momentum * unbiased);
  }
}

__global__ void bn_apply_kernel(BnArgs a)
{
  size_t total = a.n * a.c * a.s;
  for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < total; i += (size_t) gridDim.x * blockDim.x) {
    size_t ch = i / a.s % a.c;
    float v = (a.x[i] - a.mean[ch]) * a.invstd[ch];
    a.y[i] = v * (a.gamma ? a.gamma[ch] : 1.0f) + (a.beta ? a.beta[ch] : 0.0f);
  }
}

extern "C" FthCudaStatus fth_cuda_batch_norm(FthCudaContext *ctx, const float *d_x, size_t n, size_t c, size_t s,
                                             int training, float eps, float momentum, float *d_running_mean,
                                             float *d_running_var, const float *d_gamma, const float *d_beta,
                                             float *d_y, float *d_mean, float *d_invstd)
{
  if (!c)
    return FTH_CUDA_OK;
  if (c > 0x7fffffffu)
    return fth_cuda_fail(FTH_CUDA_INVALID, "batch_norm: %zu channels", c);
  BnArgs a = {};
  a.x = d_x;
  a.gamma = d_gamma;
  a.beta = d_beta;
  a.n = n;
  a.c = c;
  a.s = s;
  a.eps = eps;
  a.momentum = momentum;
  a.running_mean = d_running_mean;
  a.running_var = d_running_var;
  a.mean = d_mean;
  a.invstd = d_invstd;
  a.y = d_y;
  bn_stats_kernel<<<(unsigned) c, THREADS, 0, ctx->stream>>>(a, training);
  FTH_CUDA_TRY(fth_cuda_check_launch("batch norm statistics kernel"));
  if (!n || !s)
    return FTH_CUDA_OK;
  bn_apply_kernel<<<fth_cuda_blocks(n * c * s, THREADS), THREADS, 0, ctx->stream>>>(a);
  return fth_cuda_check_launch("batch norm kernel");
}

__global__ void bn_grad_sums_kernel(BnArgs a)
{
  size_t ch = blockIdx.x, total = a.n * a.s;
  const double m = a.mean[ch], is = a.invstd[ch], count = (double) a.n * (double) a.s;
  double sum_dy = 0.0, sum_dy_xhat = 0.0;
  for (size_t j = threadIdx.x; j < total; j += blockDim.x) {
    size_t i = (j / a.s * a.c + ch) * a.s + j % a.s;
    float g = a.dy[i];
    sum_dy += g;
    sum_dy_xhat += g * ((a.x[i] - m) * is);
  }
  block_sum2(&sum_dy, &sum_dy_xhat);
  if (threadIdx.x == 0) {
    if (a.dgamma)
      a.dgamma[ch] = (float) sum_dy_xhat;
    if (a.dbeta)
      a.dbeta[ch] = (float) sum_dy;
    if (a.coef) {
      a.coef[2 * ch] = (float) (sum_dy / count);
      a.coef[2 * ch + 1] = (float) (sum_dy_xhat / count);
    }
  }
}

__global__ void bn_grad_input_kernel(BnArgs a, int training)
{
  size_t total = a.n * a.c * a.s;
  for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < total; i += (size_t) gridDim.x * blockDim.x) {
    size_t ch = i / a.s % a.c;
    float is = a.invstd[ch];
    float k = (float) ((a.gamma ? (double) a.gamma[ch] : 1.0) * (double) is);
    if (!training) {
      a.dx[i] = a.dy[i] * k;
      continue;
    }
    a.dx[i] = k * (a.dy[i] - a.coef[2 * ch] - (a.x[i] - a.mean[ch]) * is * a.coef[2 * ch + 1]);
  }
}

__global__ void channel_sum_kernel(const float *dy, size_t n, size_t c, size_t s, float *out)
{
  size_t ch = blockIdx.x, total = n * s;
  double sum = 0.0, unused = 0.0;
  for (size_t j = threadIdx.x; j < total; j += blockDim.x)
    sum += dy[(j / s * c + ch) * s + j % s];
  block_sum2(&sum, &unused);
  if (threadIdx.x == 0)
    out[ch] = (float) sum;
}

extern "C" FthCudaStatus fth_cuda_batch_norm_backward(FthCudaContext *ctx, int training, const float *d_x,
                                                      const float *d_dy, size_t n, size_t c, size_t s,
                                                      const float *d_mean, const float *d_invstd,
                                                      const float *d_gamma, float *d_dx, float *d_dgamma,
                                                      float *d_dbeta)
{
  if (!c)
    return FTH_CUDA_OK;
  if (!d_x) { // beta alone: channel sums of dy
    if (d_dbeta) {
      channel_sum_kernel<<<(unsigned) c, THREADS, 0, ctx->stream>>>(d_dy, n, c, s, d_dbeta);
      FTH_CUDA_TRY(fth_cuda_check_launch("batch norm beta gradient kernel"));
    }
    return FTH_CUDA_OK;
  }
  FthCudaScratch coef(ctx, d_dx && training ? 2 * c * sizeof(float) : 0);
  if (d_dx && training && !coef.ptr)
    return fth_cuda_fail(FTH_CUDA_NO_MEMORY, "batch_norm backward: %zu channels", c);
  BnArgs a = {};
  a.x = d_x;
  a.dy = d_dy;
  a.gamma = d_gamma;
  a.n = n;
  a.c = c;
  a.s = s;
  a.mean = (float *) d_mean;
  a.invstd = (float *) d_invstd;
  a.dx = d_dx;
  a.dgamma = d_dgamma;
  a.dbeta = d_dbeta;
  a.coef = (float *) coef.ptr;
  if (training || d_dgamma || d_dbeta) {
    bn_grad_sums_kernel<<<(unsigned) c, THREADS, 0, ctx->stream>>>(a);
    FTH_CUDA_TRY(fth_cuda_check_launch("batch norm gradient sums kernel"));
  }
  if (!d_dx || !n || !s)
    return FTH_CUDA_OK;
  bn_grad_input_kernel<<<fth_cuda_blocks(n * c * s, THREADS), THREADS, 0, ctx->stream>>>(a, training);
  return fth_cuda_check_launch("batch norm input gradient kernel");
}

// ---- layer norm -------------------------------------------------------------------------------

__global__ void ln_forward_kernel(const float *x, size_t rows, size_t d, const float *gamma, const float *beta,
                                  float eps, float *y, float *mean, float *invstd)
{
  for (size_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float *xr = x + r * d;
    double sum = 0.0, unused = 0.0;
    for (size_t i = threadIdx.x; i < d; i += blockDim.x)
      sum += xr[i];
    block_sum2(&sum, &unused);
    const double m = sum / (double) d;
    double sq = 0.0;
    for (size_t i = threadIdx.x; i < d; i += blockDim.x)
      sq += (xr[i] - m) * (xr[i] - m);
    block_sum2(&sq, &unused);
    const float mf = (float) m, is = (float) (1.0 / sqrt(sq / (double) d + eps));
    if (threadIdx.x == 0) {
      mean[r] = mf;
      invstd[r] = is;
    }
    for (size_t i = threadIdx.x; i < d; i += blockDim.x) {
      float v = (xr[i] - mf) * is;
      y[r * d + i] = v * (gamma ? gamma[i] : 1.0f) + (beta ? beta[i] : 0.0f);
    }
  }
}

__global__ void ln_backward_input_kernel(const float *x, const float *dy, size_t rows, size_t d, const float *gamma,
                                         const float *mean, const float *invstd, float *dx)
{
  for (size_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float *xr = x + r * d, *gr = dy + r * d;
    const float m = mean[r], is = invstd[r];
    double sum_g = 0.0, sum_g_xhat = 0.0;
    for (size_t i = threadIdx.x; i < d; i += blockDim.x) {
      const float g = gr[i] * (gamma ? gamma[i] : 1.0f);
      sum_g += g;
      sum_g_xhat += g * ((xr[i] - m) * is);
    }
    block_sum2(&sum_g, &sum_g_xhat);
    const float mg = (float) (sum_g / (double) d), mgx = (float) (sum_g_xhat / (double) d);
    for (size_t i = threadIdx.x; i < d; i += blockDim.x) {
      const float g = gr[i] * (gamma ? gamma[i] : 1.0f);
      dx[r * d + i] = is * (g - mg - (xr[i] - m) * is * mgx);
    }
  }
}

// One thread per column walks the rows in order (adjacent threads read adjacent columns).
__global__ void ln_backward_params_kernel(const float *x, const float *dy, size_t rows, size_t d, const float *mean,
                                          const float *invstd, float *dgamma, float *dbeta)
{
  for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < d; i += (size_t) gridDim.x * blockDim.x) {
    double sg = 0.0, sb = 0.0;
    for (size_t r = 0; r < rows; r++) {
      float g = dy[r * d + i];
      if (dgamma)
        sg += g * (x[r * d + i] - mean[r]) * invstd[r];
      sb += g;
    }
    if (dgamma)
      dgamma[i] = (float) sg;
    if (dbeta)
      dbeta[i] = (float) sb;
  }
}

static unsigned row_grid(size_t rows)
{
  return (unsigned) (rows < 65535u * 16u ? (rows ? rows : 1) : 65535u * 16u);
}

extern "C" FthCudaStatus fth_cuda_layer_norm(FthCudaContext *ctx, const float *d_x, size_t rows, size_t d,
                                             const float *d_gamma, const float *d_beta, float eps, float *d_y,
                                             float *d_mean, float *d_invstd)
{
  if (!rows || !d)
    return FTH_CUDA_OK;
  ln_forward_kernel<<<row_grid(rows), THREADS, 0, ctx->stream>>>(d_x, rows, d, d_gamma, d_beta, eps, d_y, d_mean,
                                                                d_invstd);
  return fth_cuda_check_launch("layer norm kernel");
}

extern "C" FthCudaStatus fth_cuda_layer_norm_backward_input(FthCudaContext *ctx, const float *d_x,
                                                            const float *d_dy, size_t rows, size_t d,
                                                            const float *d_gamma, const float *d_mean,
                                                            const float *d_invstd, float *d_dx)
{
  if (!rows || !d)
    return FTH_CUDA_OK;
  ln_backward_input_kernel<<<row_grid(rows), THREADS, 0, ctx->stream>>>(d_x, d_dy, rows, d, d_gamma, d_mean,
                                                                       d_invstd, d_dx);
  return fth_cuda_check_launch("layer norm input gradient kernel");
}

extern "C" FthCudaStatus fth_cuda_layer_norm_backward_params(FthCudaContext *ctx, const float *d_x,
                                                             const float *d_dy, size_t rows, size_t d,
                                                             const float *d_mean, const float *d_invstd,
                                                             float *d_dgamma, float *d_dbeta)
{
  if (!d)
    return FTH_CUDA_OK;
  ln_backward_params_kernel<<<fth_cuda_blocks(d, THREADS), THREADS, 0, ctx->stream>>>(d_x, d_dy, rows, d, d_mean,
                                                                                     d_invstd, d_dgamma, d_dbeta);
  return fth_cuda_check_launch("layer norm parameter gradient kernel");
}
