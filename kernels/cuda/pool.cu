// Max and average pooling as kernels/cpu/pool.c: floor mode, windows clipped to the input, the
// max pool's argmax is the flat index (h * in_w + w) of the first maximum in its plane. The
// backward passes gather (each input element sums the windows that hold it), so no atomics.
#include "cuda-private.h"

#define THREADS 256

__device__ static void window(int o, int stride, int pad, int k, int in, int *lo, int *hi)
{
  int a = o * stride - pad, b = a + k;
  *lo = a < 0 ? 0 : a;
  *hi = b > in ? in : b;
}

// output positions o whose window [o * stride - pad, o * stride - pad + k) holds i
__device__ static void covering(int i, int stride, int pad, int k, int out, int *lo, int *hi)
{
  int t = i + pad - k + 1;
  int l = t <= 0 ? 0 : (t + stride - 1) / stride;
  int h = (i + pad) / stride + 1;
  *lo = l;
  *hi = h > out ? out : h;
}

__global__ void max_pool_kernel(FthCudaPoolShape s, const float *x, float *y, int32_t *argmax)
{
  size_t out_plane = (size_t) s.out_h * s.out_w, n = (size_t) s.planes * out_plane;
  for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < n; i += (size_t) gridDim.x * blockDim.x) {
    size_t p = i / out_plane, q = i % out_plane;
    int oi = (int) (q / s.out_w), oj = (int) (q % s.out_w);
    const float *xp = x + p * (size_t) s.in_h * s.in_w;
    int hl, hh, wl, wh;
    window(oi, s.stride_h, s.pad_h, s.k_h, s.in_h, &hl, &hh);
    window(oj, s.stride_w, s.pad_w, s.k_w, s.in_w, &wl, &wh);
    int best = hl * s.in_w + wl;
    for (int h = hl; h < hh; h++)
      for (int w = wl; w < wh; w++)
        if (xp[h * s.in_w + w] > xp[best])
          best = h * s.in_w + w;
    y[i] = xp[best];
    if (argmax)
      argmax[i] = best;
  }
}

__global__ void max_pool_grad_kernel(FthCudaPoolShape s, const float *dy, const int32_t *argmax, float *dx)
{
  size_t in_plane = (size_t) s.in_h * s.in_w, out_plane = (size_t) s.out_h * s.out_w;
  size_t n = (size_t) s.planes * in_plane;
  for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < n; i += (size_t) gridDim.x * blockDim.x) {
    size_t p = i / in_plane;
    int q = (int) (i % in_plane), h = q / s.in_w, w = q % s.in_w;
    int ol, oh, pl, ph;
    covering(h, s.stride_h, s.pad_h, s.k_h, s.out_h, &ol, &oh);
    covering(w, s.stride_w, s.pad_w, s.k_w, s.out_w, &pl, &ph);
    const float *dyp = dy + p * out_plane;
    const int32_t *ap = argmax + p * out_plane;
    float acc = 0.0f;
    for (int a = ol; a < oh; a++)
      for (int b = pl; b < ph; b++)
        if (ap[a * s.out_w + b] == q)
          acc += dyp[a * s.out_w + b];
    dx[i] = acc;
  }
}

__device__ static float divisor(const FthCudaPoolShape &s, int cip, int hl, int hh, int wl, int wh)
{
  return cip ? (float) (s.k_h * s.k_w) : (float) ((hh - hl) * (wh - wl));
}

__global__ void avg_pool_kernel(FthCudaPoolShape s, int cip, const float *x, float *y)
{
  size_t out_plane = (size_t) s.out_h * s.out_w, n = (size_t) s.planes * out_plane;
  for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < n; i += (size_t) gridDim.x * blockDim.x) {
    size_t p = i / out_plane, q = i % out_plane;
    int oi = (int) (q / s.out_w), oj = (int) (q % s.out_w);
    const float *xp = x + p * (size_t) s.in_h * s.in_w;
    int hl, hh, wl, wh;
    window(oi, s.stride_h, s.pad_h, s.k_h, s.in_h, &hl, &hh);
    window(oj, s.stride_w, s.pad_w, s.k_w, s.in_w, &wl, &wh);
    float acc = 0.0f;
    for (int h = hl; h < hh; h++)
      for (int w = wl; w < wh; w++)
        acc += xp[h * s.in_w + w];
    y[i] = acc / divisor(s, cip, hl, hh, wl, wh);
  }
}

__global__ void avg_pool_grad_kernel(FthCudaPoolShape s, int cip, const float *dy, float *dx)
{
  size_t in_plane = (size_t) s.in_h * s.in_w, out_plane = (size_t) s.out_h * s.out_w;
  size_t n = (size_t) s.planes * in_plane;
  for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < n; i += (size_t) gridDim.x * blockDim.x) {
    size_t p = i / in_plane;
    int q = (int) (i % in_plane), h = q / s.in_w, w = q % s.in_w;
    int ol, oh, pl, ph;
    covering(h, s.stride_h, s.pad_h, s.k_h, s.out_h, &ol, &oh);
    covering(w, s.stride_w, s.pad_w, s.k_w, s.out_w, &pl, &ph);
    const float *dyp = dy + p * out_plane;
    float acc = 0.0f;
    for (int a = ol; a < oh; a++) {
      int hl, hh;
      window(a, s.stride_h, s.pad_h, s.k_h, s.in_h, &hl, &hh);
      for (int b = pl; b < ph; b++) {
        int wl, wh;
        window(b, s.stride_w, s.pad_w, s.k_w, s.in_w, &wl, &wh);
        acc += dyp[a * s.out_w + b] / divisor(s, cip, hl, hh, wl, wh);
      }
    }
    dx[i] = acc;
  }
}

static FthCudaStatus check_shape(const FthCudaPoolShape *s)
{
  if (s->planes < 0 || s->in_h < 1 || s->in_w < 1 || s->out_h < 1 || s->out_w < 1 || s->k_h < 1 || s->k_w < 1 ||
      s->stride_h < 1 || s->stride_w < 1 || s->pad_h < 0 || s->pad_w < 0)
    return fth_cuda_fail(FTH_CUDA_INVALID, "pool: bad shape");
  return FTH_CUDA_OK;
}

extern "C" FthCudaStatus fth_cuda_max_pool_forward(FthCudaContext *ctx, const FthCudaPoolShape *s, const float *d_x,
                                                   float *d_y, int32_t *d_argmax)
{
  FTH_CUDA_TRY(check_shape(s));
  size_t n = (size_t) s->planes * s->out_h * s->out_w;
  if (!n)
    return FTH_CUDA_OK;
  max_pool_kernel<<<fth_cuda_blocks(n, THREADS), THREADS, 0, ctx->stream>>>(*s, d_x, d_y, d_argmax);
  return fth_cuda_check_launch("max pool kernel");
}

extern "C" FthCudaStatus fth_cuda_max_pool_backward(FthCudaContext *ctx, const FthCudaPoolShape *s,
                                                    const float *d_dy, const int32_t *d_argmax, float *d_dx)
{
  FTH_CUDA_TRY(check_shape(s));
  size_t n = (size_t) s->planes * s->in_h * s->in_w;
  if (!n)
    return FTH_CUDA_OK;
  max_pool_grad_kernel<<<fth_cuda_blocks(n, THREADS), THREADS, 0, ctx->stream>>>(*s, d_dy, d_argmax, d_dx);
  return fth_cuda_check_launch("max pool gradient kernel");
}

extern "C" FthCudaStatus fth_cuda_avg_pool_forward(FthCudaContext *ctx, const FthCudaPoolShape *s,
                                                   int count_include_pad, const float *d_x, float *d_y)
{
  FTH_CUDA_TRY(check_shape(s));
  size_t n = (size_t) s->planes * s->out_h * s->out_w;
  if (!n)
    return FTH_CUDA_OK;
  avg_pool_kernel<<<fth_cuda_blocks(n, THREADS), THREADS, 0, ctx->stream>>>(*s, count_include_pad, d_x, d_y);
  return fth_cuda_check_launch("average pool kernel");
}

extern "C" FthCudaStatus fth_cuda_avg_pool_backward(FthCudaContext *ctx, const FthCudaPoolShape *s,
                                                    int count_include_pad, const float *d_dy, float *d_dx)
{
  FTH_CUDA_TRY(check_shape(s));
  size_t n = (size_t) s->planes * s->in_h * s->in_w;
  if (!n)
    return FTH_CUDA_OK;
  avg_pool_grad_kernel<<<fth_cuda_blocks(n, THREADS), THREADS, 0, ctx->stream>>>(*s, count_include_pad, d_dy, d_dx);
  return fth_cuda_check_launch("average pool gradient kernel");
}
