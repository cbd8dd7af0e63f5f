// Fused optimizer updates (engine/nn/optim.c's rules), dtype conversions and dynamic loss
// scaling for mixed precision.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <math.h>

#include "cuda-private.h"

#define THREADS 256

__global__ void sgd_kernel(float *w, const float *grad, float *buf, size_t n, float lr, float wd, float momentum,
                           int nesterov)
{
  for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < n; i += (size_t) gridDim.x * blockDim.x) {
    if (momentum == 0.0f) {
      w[i] -= lr * (grad[i] + wd * w[i]);
    } else if (nesterov) {
      float g = grad[i] + wd * w[i];
      float b = momentum * buf[i] + g;
      buf[i] = b;
      w[i] -= lr * (g + momentum * b);
    } else {
      float b = momentum * buf[i] + grad[i] + wd * w[i];
      buf[i] = b;
      w[i] -= lr * b;
    }
  }
}

extern "C" FthCudaStatus fth_cuda_sgd_step(FthCudaContext *ctx, float *d_w, const float *d_grad, float *d_buf,
                                           size_t n, float lr, float weight_decay, float momentum, int nesterov)
{
  if (!n)
    return FTH_CUDA_OK;
  if (momentum != 0.0f && !d_buf)
    return fth_cuda_fail(FTH_CUDA_INVALID, "sgd: momentum needs a buffer");
  sgd_kernel<<<fth_cuda_blocks(n, THREADS), THREADS, 0, ctx->stream>>>(d_w, d_grad, d_buf, n, lr, weight_decay,
                                                                      momentum, nesterov);
  return fth_cuda_check_launch("sgd kernel");
}

__global__ void adamw_kernel(float *w, const float *grad, float *m, float *v, size_t n, float step, float decay,
                             float b1, float b2, float eps, float inv_sqrt_bc2)
{
  for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < n; i += (size_t) gridDim.x * blockDim.x) {
    float g = grad[i];
    float mi = b1 * m[i] + (1.0f - b1) * g;
    float vi = b2 * v[i] + (1.0f - b2) * g * g;
    m[i] = mi;
    v[i] = vi;
    w[i] = w[i] * decay - step * mi / (sqrtf(vi) * inv_sqrt_bc2 + eps);
  }
}

extern "C" FthCudaStatus fth_cuda_adamw_step(FthCudaContext *ctx, float *d_w, const float *d_grad, float *d_m,
                                             float *d_v, size_t n, float lr, float weight_decay, float beta1,
                                             float beta2, float eps, int64_t t)
{
  if (t < 1)
    return fth_cuda_fail(FTH_CUDA_INVALID, "adamw: step %lld (counts from 1)", (long long) t);
  if (!n)
    return FTH_CUDA_OK;
  // bias corrections folded into the step size and epsilon, computed in double on the host as
  // the CPU does
  double bc1 = 1.0 - pow(beta1, (double) t), bc2 = 1.0 - pow(beta2, (double) t);
  float step = (float) (lr / bc1), inv_sqrt_bc2 = (float) (1.0 / sqrt(bc2)), decay = 1.0f - lr * weight_decay;
  adamw_kernel<<<fth_cuda_blocks(n, THREADS), THREADS, 0, ctx->stream>>>(d_w, d_grad, d_m, d_v, n, step, decay,
                                                                        beta1, beta2, eps, inv_sqrt_bc2);
  return fth_cuda_check_launch("adamw kernel");
}

__device__ static float load(int dt, const void *p, size_t i)
{
  if (dt == FTH_CUDA_DT_F16)
    return __half2float(((const __half *) p)[i]);
  if (dt == FTH_CUDA_DT_BF16)
    return __bfloat162float(((const __nv_bfloat16 *) p)[i]);
  return ((const float *) p)[i];
}

__device__ static void store(int dt, void *p, size_t i, float v)
{
  if (dt == FTH_CUDA_DT_F16)
    ((__half *) p)[i] = __float2half_rn(v);
  else if (dt == FTH_CUDA_DT_BF16)
    ((__nv_bfloat16 *) p)[i] = __float2bfloat16_rn(v);
  else
    ((float *) p)[i] = v;
}

__global__ void convert_kernel(int to, void *dst, int from, const void *src, size_t n)
{
  for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < n; i += (size_t) gridDim.x * blockDim.x)
    store(to, dst, i, load(from, src, i));
}

extern "C" FthCudaStatus fth_cuda_convert(FthCudaContext *ctx, FthCudaDType to, void *d_dst, FthCudaDType from,
                                          const void *d_src, size_t n)
{
  if (!n)
    return FTH_CUDA_OK;
  convert_kernel<<<fth_cuda_blocks(n, THREADS), THREADS, 0, ctx->stream>>>((int) to, d_dst, (int) from, d_src, n);
  return fth_cuda_check_launch("convert kernel");
}

// ---- dynamic loss scaling ---------------------------------------------------------------------

__global__ void unscale_kernel(float *g, size_t n, float inv_scale, int32_t *found_inf)
{
  bool bad = false;
  for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < n; i += (size_t) gridDim.x * blockDim.x) {
    float v = g[i] * inv_scale;
    bad |= !isfinite(v);
    g[i] = v;
  }
  if (__syncthreads_or(bad) && threadIdx.x == 0)
    *found_inf = 1;
}

extern "C" FthCudaStatus fth_cuda_loss_scaler_init(FthCudaContext *ctx, FthCudaLossScaler *s, float initial_scale)
{
  *s = FthCudaLossScaler{initial_scale > 0.0f ? initial_scale : 65536.0f, 2.0f, 0.5f, 2000, 0, nullptr};
  s->d_found_inf = (int32_t *) fth_cuda_alloc(ctx, sizeof(int32_t));
  if (!s->d_found_inf)
    return FTH_CUDA_NO_MEMORY;
  return fth_cuda_memset_zero(ctx, s->d_found_inf, sizeof(int32_t));
}

extern "C" void fth_cuda_loss_scaler_release(FthCudaContext *ctx, FthCudaLossScaler *s)
{
  fth_cuda_free(ctx, s->d_found_inf);
  s->d_found_inf = nullptr;
}

extern "C" FthCudaStatus fth_cuda_loss_scaler_unscale(FthCudaContext *ctx, FthCudaLossScaler *s,
                                                      float *const *d_grads, const size_t *counts, int n_bufs)
{
  float inv = 1.0f / s->scale;
  for (int b = 0; b < n_bufs; b++) {
    if (!counts[b])
      continue;
    unscale_kernel<<<fth_cuda_blocks(counts[b], THREADS), THREADS, 0, ctx->stream>>>(d_grads[b], counts[b], inv,
                                                                                    s->d_found_inf);
    FTH_CUDA_TRY(fth_cuda_check_launch("unscale kernel"));
  }
  return FTH_CUDA_OK;
}

extern "C" FthCudaStatus fth_cuda_loss_scaler_update(FthCudaContext *ctx, FthCudaLossScaler *s, int *step_ok)
{
  int32_t found = 0;
  FTH_CUDA_TRY(fth_cuda_copy_to_host(ctx, &found, s->d_found_inf, sizeof found));
  if (found) {
    FTH_CUDA_TRY(fth_cuda_memset_zero(ctx, s->d_found_inf, sizeof(int32_t)));
    s->scale *= s->backoff_factor;
    s->clean_steps = 0;
    *step_ok = 0;
    return FTH_CUDA_OK;
  }
  if (++s->clean_steps >= s->growth_interval) {
    s->scale *= s->growth_factor;
    s->clean_steps = 0;
  }
  *step_ok = 1;
  return FTH_CUDA_OK;
}
