// Convolutions: cuDNN (v9, the convolution API) when built with it; im2col + cuBLAS otherwise.
// NCHW f32 tensors, weights [O, C/groups, KH, KW], as kernels/cpu/conv.c. In the reduced math
// modes cuDNN may use TF32 tensor cores on the f32 tensors.
#include "cuda-private.h"

extern "C" FthCudaStatus fth_cuda_conv_shape(FthCudaConvShape *s)
{
  int eh = s->dil_h * (s->kh - 1) + 1, ew = s->dil_w * (s->kw - 1) + 1;
  if (s->n < 0 || s->c < 1 || s->o < 1 || s->kh < 1 || s->kw < 1 || s->stride_h < 1 || s->stride_w < 1 ||
      s->dil_h < 1 || s->dil_w < 1 || s->pad_h < 0 || s->pad_w < 0 || s->groups < 1 || s->c % s->groups ||
      s->o % s->groups)
    return fth_cuda_fail(FTH_CUDA_INVALID, "conv: bad parameters");
  s->out_h = (s->h + 2 * s->pad_h - eh) / s->stride_h + 1;
  s->out_w = (s->w + 2 * s->pad_w - ew) / s->stride_w + 1;
  if (s->h + 2 * s->pad_h < eh || s->w + 2 * s->pad_w < ew || s->out_h < 1 || s->out_w < 1)
    return fth_cuda_fail(FTH_CUDA_INVALID, "conv: kernel larger than the padded input");
  return FTH_CUDA_OK;
}

#if FTH_HAVE_CUDNN

#include <map>
#include <mutex>
#include <tuple>

namespace {

struct Descs {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  ~Descs()
  {
    if (x)
      cudnnDestroyTensorDescriptor(x);
    if (y)
      cudnnDestroyTensorDescriptor(y);
    if (w)
      cudnnDestroyFilterDescriptor(w);
    if (conv)
      cudnnDestroyConvolutionDescriptor(conv);
  }
};

FthCudaStatus make_descs(const FthCudaContext *ctx, const FthCudaConvShape *s, Descs *d)
{
  FTH_CUDA_TRY(fth_cuda_check_cudnn(cudnnCreateTensorDescriptor(&d->x), "cudnnCreateTensorDescriptor"));
  FTH_CUDA_TRY(fth_cuda_check_cudnn(cudnnCreateTensorDescriptor(&d->y), "cudnnCreateTensorDescriptor"));
  FTH_CUDA_TRY(fth_cuda_check_cudnn(cudnnCreateFilterDescriptor(&d->w), "cudnnCreateFilterDescriptor"));
  FTH_CUDA_TRY(fth_cuda_check_cudnn(cudnnCreateConvolutionDescriptor(&d->conv), "cudnnCreateConvolutionDescriptor"));
  FTH_CUDA_TRY(fth_cuda_check_cudnn(
      cudnnSetTensor4dDescriptor(d->x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, s->n, s->c, s->h, s->w),
      "cudnnSetTensor4dDescriptor(x)"));
  FTH_CUDA_TRY(fth_cuda_check_cudnn(
      cudnnSetTensor4dDescriptor(d->y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, s->n, s->o, s->out_h, s->out_w),
      "cudnnSetTensor4dDescriptor(y)"));
  FTH_CUDA_TRY(fth_cuda_check_cudnn(
      cudnnSetFilter4dDescriptor(d->w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, s->o, s->c / s->groups, s->kh, s->kw),
      "cudnnSetFilter4dDescriptor"));
  FTH_CUDA_TRY(fth_cuda_check_cudnn(cudnnSetConvolution2dDescriptor(d->conv, s->pad_h, s->pad_w, s->stride_h,
                                                                    s->stride_w, s->dil_h, s->dil_w,
                                                                    CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT),
                                    "cudnnSetConvolution2dDescriptor"));
  FTH_CUDA_TRY(fth_cuda_check_cudnn(cudnnSetConvolutionGroupCount(d->conv, s->groups),
                                    "cudnnSetConvolutionGroupCount"));
  cudnnMathType_t math = ctx->math == FTH_CUDA_MATH_F32 ? CUDNN_FMA_MATH : CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION;
  return fth_cuda_check_cudnn(cudnnSetConvolutionMathType(d->conv, math), "cudnnSetConvolutionMathType");
}

// The chosen algorithm per (device, direction, shape, math): the heuristics run once per shape.
struct Choice {
  int algo;
  cudnnMathType_t math;
  size_t workspace;
};
using Key = std::tuple<int, int, int, int, int, int, int, int, int, int, int, int, int, int, int, int, int>;
std::mutex choice_lock;
std::map<Key, Choice> choices;

Key key_of(const FthCudaContext *ctx, int dir, const FthCudaConvShape *s)
{
  return Key(ctx->device, dir, (int) ctx->math, s->n, s->c, s->h, s->w, s->o, s->kh, s->kw, s->stride_h, s->stride_w,
             s->pad_h, s->pad_w, s->dil_h * 1000 + s->dil_w, s->groups, 0);
}

template <typename Perf, typename Fn> FthCudaStatus pick(Fn query, const char *what, Choice *c)
{
  Perf perf[8];
  int got = 0;
  FTH_CUDA_TRY(fth_cuda_check_cudnn(query(perf, 8, &got), what));
  for (int i = 0; i < got; i++)
    if (perf[i].status == CUDNN_STATUS_SUCCESS) {
      *c = Choice{(int) perf[i].algo, perf[i].mathType, perf[i].memory};
      return FTH_CUDA_OK;
    }
  return fth_cuda_fail(FTH_CUDA_FAILED, "%s: no algorithm for this shape", what);
}

// dir 0 forward, 1 backward data, 2 backward filter
FthCudaStatus choose(FthCudaContext *ctx, int dir, const FthCudaConvShape *s, const Descs &d, Choice *c)
{
  Key k = key_of(ctx, dir, s);
  {
    std::lock_guard<std::mutex> g(choice_lock);
    auto it = choices.find(k);
    if (it != choices.end()) {
      *c = it->second;
      return FTH_CUDA_OK;
    }
  }
  FthCudaStatus st;
  if (dir == 0)
    st = pick<cudnnConvolutionFwdAlgoPerf_t>(
        [&](cudnnConvolutionFwdAlgoPerf_t *p, int n, int *got) {
          return cudnnGetConvolutionForwardAlgorithm_v7(ctx->cudnn, d.x, d.w, d.conv, d.y, n, got, p);
        },
        "cudnnGetConvolutionForwardAlgorithm_v7", c);
  else if (dir == 1)
    st = pick<cudnnConvolutionBwdDataAlgoPerf_t>(
        [&](cudnnConvolutionBwdDataAlgoPerf_t *p, int n, int *got) {
          return cudnnGetConvolutionBackwardDataAlgorithm_v7(ctx->cudnn, d.w, d.y, d.conv, d.x, n, got, p);
        },
        "cudnnGetConvolutionBackwardDataAlgorithm_v7", c);
  else
    st = pick<cudnnConvolutionBwdFilterAlgoPerf_t>(
        [&](cudnnConvolutionBwdFilterAlgoPerf_t *p, int n, int *got) {
          return cudnnGetConvolutionBackwardFilterAlgorithm_v7(ctx->cudnn, d.x, d.y, d.conv, d.w, n, got, p);
        },
        "cudnnGetConvolutionBackwardFilterAlgorithm_v7", c);
  if (st != FTH_CUDA_OK)
    return st;
  std::lock_guard<std::mutex> g(choice_lock);
  choices[k] = *c;
  return FTH_CUDA_OK;
}

FthCudaStatus run(FthCudaContext *ctx, int dir, const FthCudaConvShape *s, const float *a, const float *b, float *out)
{
  FTH_CUDA_TRY(fth_cuda_use(ctx));
  Descs d;
  FTH_CUDA_TRY(make_descs(ctx, s, &d));
  Choice c;
  FTH_CUDA_TRY(choose(ctx, dir, s, d, &c));
  FTH_CUDA_TRY(fth_cuda_check_cudnn(cudnnSetConvolutionMathType(d.conv, c.math), "cudnnSetConvolutionMathType"));
  FthCudaScratch ws(ctx, c.workspace);
  if (c.workspace && !ws.ptr)
    return fth_cuda_fail(FTH_CUDA_NO_MEMORY, "conv: workspace of %zu bytes", c.workspace);
  const float one = 1.0f, zero = 0.0f;
  if (dir == 0)
    return fth_cuda_check_cudnn(cudnnConvolutionForward(ctx->cudnn, &one, d.x, a, d.w, b, d.conv,
                                                        (cudnnConvolutionFwdAlgo_t) c.algo, ws.ptr, c.workspace,
                                                        &zero, d.y, out),
                                "cudnnConvolutionForward");
  if (dir == 1) // a = dy, b = w
    return fth_cuda_check_cudnn(cudnnConvolutionBackwardData(ctx->cudnn, &one, d.w, b, d.y, a, d.conv,
                                                             (cudnnConvolutionBwdDataAlgo_t) c.algo, ws.ptr,
                                                             c.workspace, &zero, d.x, out),
                                "cudnnConvolutionBackwardData");
  // a = dy, b = x
  return fth_cuda_check_cudnn(cudnnConvolutionBackwardFilter(ctx->cudnn, &one, d.x, b, d.y, a, d.conv,
                                                             (cudnnConvolutionBwdFilterAlgo_t) c.algo, ws.ptr,
                                                             c.workspace, &zero, d.w, out),
                              "cudnnConvolutionBackwardFilter");
}

} // namespace

#else // im2col + cuBLAS

namespace {

// col[(c * kh + i) * kw + j, oh * out_w + ow] for the channels of one group of one image
__global__ void im2col_kernel(FthCudaConvShape s, const float *x, int c0, int cg, float *col)
{
  size_t plane = (size_t) s.out_h * s.out_w, n = (size_t) cg * s.kh * s.kw * plane;
  for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < n; i += (size_t) gridDim.x * blockDim.x) {
    size_t p = i % plane, r = i / plane;
    int kj = (int) (r % s.kw), ki = (int) (r / s.kw % s.kh), c = (int) (r / ((size_t) s.kw * s.kh));
    int oh = (int) (p / s.out_w), ow = (int) (p % s.out_w);
    int h = oh * s.stride_h - s.pad_h + ki * s.dil_h, w = ow * s.stride_w - s.pad_w + kj * s.dil_w;
    col[i] = h >= 0 && h < s.h && w >= 0 && w < s.w ? x[((size_t) (c0 + c) * s.h + h) * s.w + w] : 0.0f;
  }
}

// dx[c, h, w] = sum of the col entries that read it (a gather: no atomics, fixed order)
__global__ void col2im_kernel(FthCudaConvShape s, const float *col, int c0, int cg, float *dx)
{
  size_t n = (size_t) cg * s.h * s.w, plane = (size_t) s.out_h * s.out_w;
  for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < n; i += (size_t) gridDim.x * blockDim.x) {
    int w = (int) (i % s.w), h = (int) (i / s.w % s.h), c = (int) (i / ((size_t) s.w * s.h));
    float acc = 0.0f;
    for (int ki = 0; ki < s.kh; ki++) {
      int th = h + s.pad_h - ki * s.dil_h;
      if (th < 0 || th % s.stride_h)
        continue;
      int oh = th / s.stride_h;
      if (oh >= s.out_h)
        continue;
      for (int kj = 0; kj < s.kw; kj++) {
        int tw = w + s.pad_w - kj * s.dil_w;
        if (tw < 0 || tw % s.stride_w)
          continue;
        int ow = tw / s.stride_w;
        if (ow >= s.out_w)
          continue;
        acc += col[(((size_t) c * s.kh + ki) * s.kw + kj) * plane + (size_t) oh * s.out_w + ow];
      }
    }
    dx[((size_t) (c0 + c)) * s.h * s.w + (size_t) h * s.w + w] = acc;
  }
}

FthCudaStatus run(FthCudaContext *ctx, int dir, const FthCudaConvShape *s, const float *a, const float *b, float *out)
{
  FTH_CUDA_TRY(fth_cuda_use(ctx));
  const int g = s->groups, cg = s->c / g, og = s->o / g;
  const int kg = cg * s->kh * s->kw;
  const size_t plane = (size_t) s->out_h * s->out_w, in_plane = (size_t) s->h * s->w;
  FthCudaScratch col(ctx, (size_t) kg * plane * sizeof(float));
  if (!col.ptr)
    return fth_cuda_fail(FTH_CUDA_NO_MEMORY, "conv: im2col buffer of %zu bytes", (size_t) kg * plane * 4);
  float *cb = (float *) col.ptr;
  unsigned threads = 256;
  for (int n = 0; n < s->n; n++)
    for (int gi = 0; gi < g; gi++) {
      const size_t wg = (size_t) gi * og * kg;
      if (dir == 0) { // y_g [og, plane] = w_g [og, kg] col [kg, plane]
        const float *x = a + (size_t) n * s->c * in_plane;
        im2col_kernel<<<fth_cuda_blocks((size_t) kg * plane, threads), threads, 0, ctx->stream>>>(*s, x, gi * cg,
                                                                                                cg, cb);
        FTH_CUDA_TRY(fth_cuda_check_launch("im2col kernel"));
        float *y = out + ((size_t) n * s->o + (size_t) gi * og) * plane;
        FTH_CUDA_TRY(fth_cuda_gemm(ctx, FTH_CUDA_DT_F32, 0, 0, og, (int) plane, kg, 1.0f, b + wg, kg, 0, cb,
                                   (int) plane, 0, 0.0f, y, (int) plane, 0, 1));
      } else if (dir == 1) { // col = w_g^T dy_g, then scatter back by gathering
        const float *dy = a + ((size_t) n * s->o + (size_t) gi * og) * plane;
        FTH_CUDA_TRY(fth_cuda_gemm(ctx, FTH_CUDA_DT_F32, 1, 0, kg, (int) plane, og, 1.0f, b + wg, kg, 0, dy,
                                   (int) plane, 0, 0.0f, cb, (int) plane, 0, 1));
        col2im_kernel<<<fth_cuda_blocks((size_t) cg * in_plane, threads), threads, 0, ctx->stream>>>(
            *s, cb, gi * cg, cg, out + (size_t) n * s->c * in_plane);
        FTH_CUDA_TRY(fth_cuda_check_launch("col2im kernel"));
      } else { // dw_g (+)= dy_g col^T
        const float *x = b + (size_t) n * s->c * in_plane;
        im2col_kernel<<<fth_cuda_blocks((size_t) kg * plane, threads), threads, 0, ctx->stream>>>(*s, x, gi * cg,
                                                                                                cg, cb);
        FTH_CUDA_TRY(fth_cuda_check_launch("im2col kernel"));
        const float *dy = a + ((size_t) n * s->o + (size_t) gi * og) * plane;
        FTH_CUDA_TRY(fth_cuda_gemm(ctx, FTH_CUDA_DT_F32, 0, 1, og, kg, (int) plane, 1.0f, dy, (int) plane, 0, cb,
                                   (int) plane, 0, n ? 1.0f : 0.0f, out + wg, kg, 0, 1));
      }
    }
  if (s->n == 0 && dir == 2)
    return fth_cuda_memset_zero(ctx, out, (size_t) s->o * kg * sizeof(float));
  return FTH_CUDA_OK;
}

} // namespace

#endif

extern "C" FthCudaStatus fth_cuda_conv_forward(FthCudaContext *ctx, const FthCudaConvShape *s, const float *d_x,
                                               const float *d_w, const float *d_bias, int relu, float *d_y)
{
  if (!s->n)
    return FTH_CUDA_OK;
  FTH_CUDA_TRY(run(ctx, 0, s, d_x, d_w, d_y));
  return fth_cuda_channel_bias_act(ctx, d_y, d_bias, (size_t) s->n, (size_t) s->o,
                                   (size_t) s->out_h * (size_t) s->out_w, relu);
}

extern "C" FthCudaStatus fth_cuda_conv_backward_data(FthCudaContext *ctx, const FthCudaConvShape *s,
                                                     const float *d_dy, const float *d_w, float *d_dx)
{
  if (!s->n)
    return FTH_CUDA_OK;
  return run(ctx, 1, s, d_dy, d_w, d_dx);
}

extern "C" FthCudaStatus fth_cuda_conv_backward_filter(FthCudaContext *ctx, const FthCudaConvShape *s,
                                                       const float *d_dy, const float *d_x, float *d_dw)
{
  if (!s->n)
    return fth_cuda_memset_zero(ctx, d_dw, (size_t) s->o * (s->c / s->groups) * s->kh * s->kw * sizeof(float));
  return run(ctx, 2, s, d_dy, d_x, d_dw);
}

// ---- fused 2x2 max pool (ops-conv.c's max_pool2) -----------------------------------------------

namespace {

// One thread per pooled element: bias, ReLU, then the first strict maximum of the window in
// row-major order (kernels/cpu/conv-simd.c's maxpool2_row), so ties pick the same position.
__global__ void bias_relu_pool2_kernel(const float *z, const float *bias, int relu, int channels, int out_h,
                                       int out_w, size_t n, float *y, uint8_t *argmax)
{
  const int ph = out_h / 2, pw = out_w / 2;
  for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < n; i += (size_t) gridDim.x * blockDim.x) {
    const size_t plane = i / ((size_t) ph * pw);
    const int r = (int) (i / pw % ph), c = (int) (i % pw);
    const float b = bias ? bias[plane % channels] : 0.0f;
    const float *top = z + (plane * out_h + 2 * (size_t) r) * out_w + 2 * (size_t) c;
    float v[4] = {top[0] + b, top[1] + b, top[out_w] + b, top[out_w + 1] + b};
    int best = 0;
    for (int k = 0; k < 4; k++) {
      if (relu && !(v[k] > 0.0f))
        v[k] = 0.0f;
      if (k && v[k] > v[best])
        best = k;
    }
    y[i] = v[best];
    if (argmax)
      argmax[i] = (uint8_t) best;
  }
}

// One thread per pre-pool element (a gather: every position is written, no atomics).
__global__ void unpool2_grad_kernel(const float *dy, const float *y, const uint8_t *argmax, int relu, int out_h,
                                    int out_w, size_t n, float *dz)
{
  const int ph = out_h / 2, pw = out_w / 2;
  for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < n; i += (size_t) gridDim.x * blockDim.x) {
    const size_t plane = i / ((size_t) out_h * out_w);
    const int h = (int) (i / out_w % out_h), w = (int) (i % out_w);
    float g = 0.0f;
    if (h < 2 * ph && w < 2 * pw) {
      const size_t j = (plane * ph + h / 2) * pw + w / 2;
      if ((argmax[j] & 3) == ((h & 1) << 1 | (w & 1)) && (!relu || y[j] > 0.0f))
        g = dy[j];
    }
    dz[i] = g;
  }
}

} // namespace

extern "C" FthCudaStatus fth_cuda_conv_forward_pool2(FthCudaContext *ctx, const FthCudaConvShape *s,
                                                     const float *d_x, const float *d_w, const float *d_bias,
                                                     int relu, float *d_y, uint8_t *d_argmax)
{
  if (s->out_h < 2 || s->out_w < 2)
    return fth_cuda_fail(FTH_CUDA_INVALID, "conv: a %dx%d output is too small to pool 2x2", s->out_h, s->out_w);
  if (!s->n)
    return FTH_CUDA_OK;
  const size_t full = (size_t) s->n * s->o * s->out_h * s->out_w;
  FthCudaScratch z(ctx, full * sizeof(float));
  if (!z.ptr)
    return fth_cuda_fail(FTH_CUDA_NO_MEMORY, "conv: pre-pool buffer of %zu bytes", full * sizeof(float));
  FTH_CUDA_TRY(run(ctx, 0, s, d_x, d_w, (float *) z.ptr));
  const size_t pooled = (size_t) s->n * s->o * (s->out_h / 2) * (s->out_w / 2);
  const unsigned threads = 256;
  bias_relu_pool2_kernel<<<fth_cuda_blocks(pooled, threads), threads, 0, ctx->stream>>>(
      (const float *) z.ptr, d_bias, relu, s->o, s->out_h, s->out_w, pooled, d_y, d_argmax);
  return fth_cuda_check_launch("conv bias/relu/pool kernel");
}

extern "C" FthCudaStatus fth_cuda_conv_unpool2_grad(FthCudaContext *ctx, const FthCudaConvShape *s,
                                                    const float *d_dy, const float *d_y, const uint8_t *d_argmax,
                                                    int relu, float *d_dz)
{
  if (s->out_h < 2 || s->out_w < 2)
    return fth_cuda_fail(FTH_CUDA_INVALID, "conv: a %dx%d output is too small to pool 2x2", s->out_h, s->out_w);
  const size_t full = (size_t) s->n * s->o * s->out_h * s->out_w;
  if (!full)
    return FTH_CUDA_OK;
  const unsigned threads = 256;
  unpool2_grad_kernel<<<fth_cuda_blocks(full, threads), threads, 0, ctx->stream>>>(d_dy, d_y, d_argmax, relu,
                                                                                  s->out_h, s->out_w, full, d_dz);
  return fth_cuda_check_launch("conv unpool gradient kernel");
}
