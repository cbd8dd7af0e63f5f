// Elementwise ops with broadcasting, activations and their gradients, bias epilogues, the
// reductions behind SUM_TO / SUM / MEAN / bias gradients, BROADCAST_TO and transposes. The
// formulas are those of kernels/cpu/elementwise.c.
#include <math.h>

#include "cuda-private.h"

#define THREADS 256

struct Dims {
  int ndim;
  int64_t shape[FTH_CUDA_MAX_DIMS];
  int64_t sa[FTH_CUDA_MAX_DIMS], sb[FTH_CUDA_MAX_DIMS];
};

__global__ void binary_kernel(int op, Dims d, const float *a, const float *b, float *y, size_t n)
{
  for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < n; i += (size_t) gridDim.x * blockDim.x) {
    int64_t rem = (int64_t) i, oa = 0, ob = 0;
    for (int k = d.ndim - 1; k >= 0; k--) {
      int64_t idx = rem % d.shape[k];
      rem /= d.shape[k];
      oa += idx * d.sa[k];
      ob += idx * d.sb[k];
    }
    float va = a[oa], vb = b[ob];
    y[i] = op == FTH_CUDA_BIN_ADD ? va + vb : op == FTH_CUDA_BIN_MUL ? va * vb : va - vb;
  }
}

extern "C" FthCudaStatus fth_cuda_binary(FthCudaContext *ctx, FthCudaBinaryOp op, int ndim, const int64_t *out_shape,
                                         const float *d_a, const int64_t *a_strides, const float *d_b,
                                         const int64_t *b_strides, float *d_y)
{
  if (ndim < 0 || ndim > FTH_CUDA_MAX_DIMS)
    return fth_cuda_fail(FTH_CUDA_INVALID, "binary: %d dimensions", ndim);
  Dims d = {};
  d.ndim = ndim;
  size_t n = 1;
  for (int k = 0; k < ndim; k++) {
    d.shape[k] = out_shape[k];
    d.sa[k] = a_strides[k];
    d.sb[k] = b_strides[k];
    n *= (size_t) out_shape[k];
  }
  if (!n)
    return FTH_CUDA_OK;
  binary_kernel<<<fth_cuda_blocks(n, THREADS), THREADS, 0, ctx->stream>>>((int) op, d, d_a, d_b, d_y, n);
  return fth_cuda_check_launch("binary kernel");
}

__global__ void scale_kernel(const float *x, float *y, size_t n, float alpha, float beta)
{
  for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < n; i += (size_t) gridDim.x * blockDim.x)
    y[i] = alpha * x[i] + beta;
}

extern "C" FthCudaStatus fth_cuda_scale(FthCudaContext *ctx, const float *d_x, float *d_y, size_t n, float alpha,
                                        float beta)
{
  if (!n)
    return FTH_CUDA_OK;
  scale_kernel<<<fth_cuda_blocks(n, THREADS), THREADS, 0, ctx->stream>>>(d_x, d_y, n, alpha, beta);
  return fth_cuda_check_launch("scale kernel");
}

__global__ void fill_kernel(float *y, size_t n, float v)
{
  for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < n; i += (size_t) gridDim.x * blockDim.x)
    y[i] = v;
}

extern "C" FthCudaStatus fth_cuda_fill(FthCudaContext *ctx, float *d_y, size_t n, float value)
{
  if (!n)
    return FTH_CUDA_OK;
  fill_kernel<<<fth_cuda_blocks(n, THREADS), THREADS, 0, ctx->stream>>>(d_y, n, value);
  return fth_cuda_check_launch("fill kernel");
}

// ---- activations ------------------------------------------------------------------------------

#define SQRT_2_OVER_PI 0.7978845608028654f
#define GELU_COEF 0.044715f

__device__ static float act_value(int act, float v)
{
  switch (act) {
  case FTH_CUDA_ACT_RELU: return v > 0.0f ? v : 0.0f;
  case FTH_CUDA_ACT_GELU: return 0.5f * v * (1.0f + erff(v * 0.7071067811865476f));
  case FTH_CUDA_ACT_GELU_TANH: return 0.5f * v * (1.0f + tanhf(SQRT_2_OVER_PI * (v + GELU_COEF * v * v * v)));
  case FTH_CUDA_ACT_SILU: return v / (1.0f + expf(-v));
  case FTH_CUDA_ACT_SIGMOID: return 1.0f / (1.0f + expf(-v));
  default: return tanhf(v);
  }
}

__device__ static float act_derivative(int act, float s)
{
  switch (act) {
  case FTH_CUDA_ACT_RELU: return s > 0.0f ? 1.0f : 0.0f; // s: the output
  case FTH_CUDA_ACT_SIGMOID: return s * (1.0f - s);        // s: the output
  case FTH_CUDA_ACT_TANH: return 1.0f - s * s;             // s: the output
  case FTH_CUDA_ACT_SILU: {                                // s: the input
    float sg = 1.0f / (1.0f + expf(-s));
    return sg * (1.0f + s * (1.0f - sg));
  }
  case FTH_CUDA_ACT_GELU_TANH: {
    float u = SQRT_2_OVER_PI * (s + GELU_COEF * s * s * s), t = tanhf(u);
    return 0.5f * (1.0f + t) + 0.5f * s * (1.0f - t * t) * SQRT_2_OVER_PI * (1.0f + 3.0f * GELU_COEF * s * s);
  }
  default:
    return 0.5f * (1.0f + erff(s * 0.7071067811865476f)) + s * 0.3989422804014327f * expf(-0.5f * s * s);
  }
}

__global__ void act_kernel(int act, const float *x, float *y, size_t n)
{
  for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < n; i += (size_t) gridDim.x * blockDim.x)
    y[i] = act_value(act, x[i]);
}

__global__ void act_grad_kernel(int act, const float *dy, const float *saved, float *dx, size_t n)
{
  for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < n; i += (size_t) gridDim.x * blockDim.x) {
    float g = dy[i];
    // relu passes dy through untouched (no multiply), as the CPU does, so -0 and NaN agree
    dx[i] = act == FTH_CUDA_ACT_RELU ? (saved[i] > 0.0f ? g : 0.0f) : g * act_derivative(act, saved[i]);
  }
}

extern "C" FthCudaStatus fth_cuda_activation(FthCudaContext *ctx, FthCudaActivation act, const float *d_x,
                                             float *d_y, size_t n)
{
  if (!n)
    return FTH_CUDA_OK;
  act_kernel<<<fth_cuda_blocks(n, THREADS), THREADS, 0, ctx->stream>>>((int) act, d_x, d_y, n);
  return fth_cuda_check_launch("activation kernel");
}

extern "C" FthCudaStatus fth_cuda_activation_grad(FthCudaContext *ctx, FthCudaActivation act, const float *d_dy,
                                                  const float *d_saved, float *d_dx, size_t n)
{
  if (!n)
    return FTH_CUDA_OK;
  act_grad_kernel<<<fth_cuda_blocks(n, THREADS), THREADS, 0, ctx->stream>>>((int) act, d_dy, d_saved, d_dx, n);
  return fth_cuda_check_launch("activation gradient kernel");
}

extern "C" FthCudaStatus fth_cuda_relu_mask(FthCudaContext *ctx, const float *d_dy, const float *d_y, float *d_dz,
                                            size_t n)
{
  return fth_cuda_activation_grad(ctx, FTH_CUDA_ACT_RELU, d_dy, d_y, d_dz, n);
}

// bias index of element i: (i / inner) % cols
__global__ void bias_act_kernel(float *y, const float *bias, size_t n, size_t cols, size_t inner, int relu)
{
  for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < n; i += (size_t) gridDim.x * blockDim.x) {
    float v = y[i] + (bias ? bias[(i / inner) % cols] : 0.0f);
    y[i] = relu && !(v > 0.0f) ? 0.0f : v;
  }
}

extern "C" FthCudaStatus fth_cuda_bias_act(FthCudaContext *ctx, float *d_y, const float *d_bias, size_t rows,
                                           size_t cols, int relu)
{
  size_t n = rows * cols;
  if (!n || (!d_bias && !relu))
    return FTH_CUDA_OK;
  bias_act_kernel<<<fth_cuda_blocks(n, THREADS), THREADS, 0, ctx->stream>>>(d_y, d_bias, n, cols, 1, relu);
  return fth_cuda_check_launch("bias kernel");
}

extern "C" FthCudaStatus fth_cuda_channel_bias_act(FthCudaContext *ctx, float *d_y, const float *d_bias, size_t n,
                                                   size_t c, size_t s, int relu)
{
  size_t total = n * c * s;
  if (!total || (!d_bias && !relu))
    return FTH_CUDA_OK;
  bias_act_kernel<<<fth_cuda_blocks(total, THREADS), THREADS, 0, ctx->stream>>>(d_y, d_bias, total, c, s, relu);
  return fth_cuda_check_launch("channel bias kernel");
}

// ---- reductions -------------------------------------------------------------------------------

struct Reduce {
  int n_kept, n_red;
  int64_t kept_shape[FTH_CUDA_MAX_DIMS], kept_stride[FTH_CUDA_MAX_DIMS];
  int64_t red_shape[FTH_CUDA_MAX_DIMS], red_stride[FTH_CUDA_MAX_DIMS];
  int64_t red_count;
};

// One block per output element; its threads stride over the reduced positions and combine their
// double partial sums in a fixed tree, so the result is the same on every launch.
__global__ void reduce_kernel(Reduce r, const float *x, float *y, size_t n_out, float factor)
{
  __shared__ double part[THREADS];
  for (size_t o = blockIdx.x; o < n_out; o += gridDim.x) {
    int64_t rem = (int64_t) o, base = 0;
    for (int k = r.n_kept - 1; k >= 0; k--) {
      base += (rem % r.kept_shape[k]) * r.kept_stride[k];
      rem /= r.kept_shape[k];
    }
    double s = 0.0;
    for (int64_t j = threadIdx.x; j < r.red_count; j += blockDim.x) {
      int64_t jr = j, off = base;
      for (int k = r.n_red - 1; k >= 0; k--) {
        off += (jr % r.red_shape[k]) * r.red_stride[k];
        jr /= r.red_shape[k];
      }
      s += (double) x[off];
    }
    part[threadIdx.x] = s;
    __syncthreads();
    for (unsigned w = blockDim.x / 2; w > 0; w >>= 1) {
      if (threadIdx.x < w)
        part[threadIdx.x] += part[threadIdx.x + w];
      __syncthreads();
    }
    if (threadIdx.x == 0)
      y[o] = (float) (part[0] * (double) factor);
    __syncthreads();
  }
}

extern "C" FthCudaStatus fth_cuda_reduce_to(FthCudaContext *ctx, int ndim, const int64_t *x_shape, const float *d_x,
                                            const int64_t *y_shape, float *d_y, float factor)
{
  if (ndim < 0 || ndim > FTH_CUDA_MAX_DIMS)
    return fth_cuda_fail(FTH_CUDA_INVALID, "reduce: %d dimensions", ndim);
  Reduce r = {};
  r.red_count = 1;
  size_t n_out = 1;
  int64_t stride = 1;
  int64_t strides[FTH_CUDA_MAX_DIMS];
  for (int k = ndim - 1; k >= 0; k--) {
    strides[k] = stride;
    stride *= x_shape[k];
  }
  for (int k = 0; k < ndim; k++) {
    if (y_shape[k] != x_shape[k] && y_shape[k] != 1)
      return fth_cuda_fail(FTH_CUDA_INVALID, "reduce: dimension %d: %lld to %lld", k, (long long) x_shape[k],
                           (long long) y_shape[k]);
    if (y_shape[k] == 1 && x_shape[k] != 1) {
      r.red_shape[r.n_red] = x_shape[k];
      r.red_stride[r.n_red++] = strides[k];
      r.red_count *= x_shape[k];
    } else {
      r.kept_shape[r.n_kept] = x_shape[k];
      r.kept_stride[r.n_kept++] = strides[k];
      n_out *= (size_t) x_shape[k];
    }
  }
  if (!n_out)
    return FTH_CUDA_OK;
  unsigned grid = (unsigned) (n_out < 65535u * 8u ? n_out : 65535u * 8u);
  reduce_kernel<<<grid, THREADS, 0, ctx->stream>>>(r, d_x, d_y, n_out, factor);
  return fth_cuda_check_launch("reduce kernel");
}

__global__ void broadcast_kernel(const float *dy, float *y, size_t outer, size_t len, size_t inner, float f)
{
  size_t n = outer * len * inner;
  for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < n; i += (size_t) gridDim.x * blockDim.x) {
    size_t in = i % inner, a = i / (inner * len);
    y[i] = dy[a * inner + in] * f;
  }
}

extern "C" FthCudaStatus fth_cuda_broadcast(FthCudaContext *ctx, const float *d_dy, float *d_y, size_t outer,
                                            size_t len, size_t inner, float factor)
{
  size_t n = outer * len * inner;
  if (!n)
    return FTH_CUDA_OK;
  broadcast_kernel<<<fth_cuda_blocks(n, THREADS), THREADS, 0, ctx->stream>>>(d_dy, d_y, outer, len, inner, factor);
  return fth_cuda_check_launch("broadcast kernel");
}

// ---- transpose --------------------------------------------------------------------------------

struct Perm {
  int ndim;
  int64_t y_shape[FTH_CUDA_MAX_DIMS];
  int64_t x_stride[FTH_CUDA_MAX_DIMS]; // stride in x of y's dimension d
};

template <typename T> __global__ void transpose_kernel(Perm p, const T *x, T *y, size_t n)
{
  for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < n; i += (size_t) gridDim.x * blockDim.x) {
    int64_t rem = (int64_t) i, off = 0;
    for (int k = p.ndim - 1; k >= 0; k--) {
      off += (rem % p.y_shape[k]) * p.x_stride[k];
      rem /= p.y_shape[k];
    }
    y[i] = x[off];
  }
}

extern "C" FthCudaStatus fth_cuda_transpose(FthCudaContext *ctx, int ndim, const int64_t *x_shape, const int *perm,
                                            const void *d_x, void *d_y, size_t elem_size)
{
  if (ndim < 0 || ndim > FTH_CUDA_MAX_DIMS)
    return fth_cuda_fail(FTH_CUDA_INVALID, "transpose: %d dimensions", ndim);
  int64_t xs[FTH_CUDA_MAX_DIMS], stride = 1;
  for (int k = ndim - 1; k >= 0; k--) {
    xs[k] = stride;
    stride *= x_shape[k];
  }
  Perm p = {};
  p.ndim = ndim;
  size_t n = 1;
  for (int d = 0; d < ndim; d++) {
    if (perm[d] < 0 || perm[d] >= ndim)
      return fth_cuda_fail(FTH_CUDA_INVALID, "transpose: axis %d", perm[d]);
    p.y_shape[d] = x_shape[perm[d]];
    p.x_stride[d] = xs[perm[d]];
    n *= (size_t) p.y_shape[d];
  }
  if (!n)
    return FTH_CUDA_OK;
  unsigned grid = fth_cuda_blocks(n, THREADS);
  switch (elem_size) {
  case 1: transpose_kernel<uint8_t><<<grid, THREADS, 0, ctx->stream>>>(p, (const uint8_t *) d_x, (uint8_t *) d_y, n); break;
  case 2: transpose_kernel<uint16_t><<<grid, THREADS, 0, ctx->stream>>>(p, (const uint16_t *) d_x, (uint16_t *) d_y, n); break;
  case 4: transpose_kernel<uint32_t><<<grid, THREADS, 0, ctx->stream>>>(p, (const uint32_t *) d_x, (uint32_t *) d_y, n); break;
  case 8: transpose_kernel<uint64_t><<<grid, THREADS, 0, ctx->stream>>>(p, (const uint64_t *) d_x, (uint64_t *) d_y, n); break;
  default: return fth_cuda_fail(FTH_CUDA_INVALID, "transpose: element size %zu", elem_size);
  }
  return fth_cuda_check_launch("transpose kernel");
}
