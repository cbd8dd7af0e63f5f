/* The CUDA backend: device memory from kernels/cuda's caching allocator and a kernel per op,
 * with the semantics, params structs and saved-state layouts of the CPU ops (ops-*.c), so a
 * graph runs on either backend. Built only when CUDA is (FTH_HAVE_CUDA); chosen at run time
 * only when a device answers (backend-select.c). */
#include "backend-cuda.h"

#include "ops-common.h"

#include <fth-cuda.h>
#include <math.h>
#include <pthread.h>
#include <string.h>

/* Params structs private to the CPU op files, mirrored field for field (tests/cuda replays
 * every op of both backends on the same inputs, so a drift fails there). */
typedef struct {
  bool trans_a, trans_b;
} MatmulParams; /* ops-linear.c */
typedef struct {
  FthActivation act;
} LinearParams; /* ops-linear.c */
typedef struct {
  float alpha, beta;
} ScaleParams; /* ops-elementwise.c */
typedef struct {
  int axis;
} SoftmaxParams; /* ops-softmax.c */
typedef struct {
  int axis;
  bool keepdim;
} ReduceParams; /* ops-reduce.c */
typedef struct {
  int perm[FTH_MAX_DIMS];
} TransposeParams; /* ops-shape.c */
typedef struct {
  int axis;
} ConcatParams; /* ops-shape.c */
typedef struct {
  int axis;
  int64_t start, end;
  FthTensorDesc source;
} SliceParams; /* ops-shape.c */
typedef struct {
  FthConv2dParams p; /* the first member of ops-conv.c's ConvGradParams */
} ConvGradHead;
typedef struct {
  FthPool2dParams p; /* the first member of ops-pool.c's PoolGradParams */
} PoolGradHead;
typedef struct {
  float p;
  int forward_id;
} DropoutParams; /* ops-dropout.c */
typedef struct {
  int32_t padding_idx;
} EmbeddingParams; /* ops-embedding.c */
typedef struct {
  float eps;
  int has_gamma;
} NormGradParams; /* ops-norm.c */
typedef struct {
  float eps;
} LayerNormParams; /* ops-norm.c */

typedef struct {
  FthBackend be;
  FthCudaContext *ctx;
} CudaBackend;

static FthCudaContext *ctx_of(const FthBackend *be) {
  return ((const CudaBackend *)be->impl)->ctx;
}

FthCudaContext *fth_backend_cuda_context(const FthBackend *be) {
  return be && be->impl && strcmp(be->name, "cuda") == 0 ? ctx_of(be) : NULL;
}

static FthStatus status(FthCudaStatus st, const char *what);

FthStatus fth_backend_cuda_memory_budget(const FthBackend *be, double fraction, size_t *bytes) {
  FthCudaContext *ctx = fth_backend_cuda_context(be);
  if (!ctx || !(fraction > 0.0 && fraction <= 1.0))
    return fth_error(FTH_STATUS_INVALID_ARGUMENT, "memory budget: a CUDA backend and a fraction in (0, 1]");
  size_t free_bytes = 0, total = 0;
  FthStatus st = status(fth_cuda_mem_info(fth_cuda_context_device(ctx), &free_bytes, &total), "memory budget");
  if (st != FTH_STATUS_OK)
    return st;
  FthCudaAllocStats a;
  fth_cuda_alloc_stats(ctx, &a);
  *bytes = (size_t)((double)(free_bytes + a.cached_bytes) * fraction);
  return FTH_STATUS_OK;
}

/* Turns a kernels/cuda status into an engine error naming the op. */
static FthStatus status(FthCudaStatus st, const char *what) {
  switch (st) {
  case FTH_CUDA_OK: return FTH_STATUS_OK;
  case FTH_CUDA_NO_MEMORY: return fth_error(FTH_STATUS_NO_MEMORY, "%s: %s", what, fth_cuda_last_error());
  case FTH_CUDA_INVALID: return fth_error(FTH_STATUS_INVALID_ARGUMENT, "%s: %s", what, fth_cuda_last_error());
  case FTH_CUDA_UNSUPPORTED:
  case FTH_CUDA_NO_DEVICE: return fth_error(FTH_STATUS_UNSUPPORTED, "%s: %s", what, fth_cuda_last_error());
  default: return fth_error(FTH_STATUS_INTERNAL, "%s: %s", what, fth_cuda_last_error());
  }
}

static void *cuda_alloc(const FthBackend *be, size_t bytes) {
  void *p = fth_cuda_alloc(ctx_of(be), bytes);
  if (!p)
    fth_error(FTH_STATUS_NO_MEMORY, "cuda: %s", fth_cuda_last_error());
  return p;
}

static void cuda_free(const FthBackend *be, void *ptr) {
  fth_cuda_free(ctx_of(be), ptr);
}

static FthStatus cuda_copy_in(const FthBackend *be, void *dst, const void *host_src, size_t bytes) {
  return status(fth_cuda_copy_to_device(ctx_of(be), dst, host_src, bytes), "cuda copy in");
}

static FthStatus cuda_copy_out(const FthBackend *be, void *host_dst, const void *src, size_t bytes) {
  return status(fth_cuda_copy_to_host(ctx_of(be), host_dst, src, bytes), "cuda copy out");
}

static FthStatus cuda_synchronize(const FthBackend *be) {
  return status(fth_cuda_synchronize(ctx_of(be)), "cuda");
}

/* ---- ops ------------------------------------------------------------------------------------- */

static size_t numel(const FthTensor *t) {
  return (size_t)fth_tensor_numel(t);
}

static float *out_f32(const FthKernelArgs *a) {
  return (float *)a->out->data;
}

static const float *in_f32(const FthKernelArgs *a, int i) {
  return (const float *)a->in[i].data;
}

/* A GEMM node the planner marked for bf16 (fth_graph_set_bf16_matmul) rounds its operands to
 * bf16 on the GPU too; returns the math mode to restore. */
static FthCudaMath node_math(FthCudaContext *ctx, const FthKernelArgs *args) {
  FthCudaMath saved = fth_cuda_math(ctx);
  if (args->node && args->node->gemm_bf16)
    fth_cuda_set_math(ctx, FTH_CUDA_MATH_BF16);
  return saved;
}

static FthStatus run_matmul(FthCudaContext *ctx, const FthKernelArgs *args) {
  const MatmulParams *p = args->params;
  const FthTensor *a = &args->in[0], *b = &args->in[1], *c = args->out;
  int nd = a->ndim;
  int m = (int)c->shape[nd - 2], n = (int)c->shape[nd - 1];
  int k = (int)(p->trans_a ? a->shape[nd - 2] : a->shape[nd - 1]);
  long long count = 1;
  for (int d = 0; d < nd - 2; d++)
    count *= c->shape[d];
  long long sa = (long long)m * k, sb = b->ndim == 2 ? 0 : (long long)k * n, sc = (long long)m * n;
  if (b->ndim == 2 && !p->trans_a && count > 1) { /* a shared right side: one tall GEMM */
    m *= (int)count;
    count = 1;
  }
  int lda = p->trans_a ? m : k, ldb = p->trans_b ? k : n;
  FthCudaMath saved = node_math(ctx, args);
  FthCudaStatus st = fth_cuda_gemm(ctx, FTH_CUDA_DT_F32, p->trans_a, p->trans_b, m, n, k, 1.0f, a->data, lda, sa,
                                   b->data, ldb, sb, 0.0f, c->data, n, sc, (int)count);
  fth_cuda_set_math(ctx, saved);
  return status(st, "matmul");
}

static FthStatus run_linear(FthCudaContext *ctx, const FthKernelArgs *args) {
  const LinearParams *p = args->params;
  const FthTensor *x = &args->in[0], *w = &args->in[1];
  int in = (int)w->shape[1], out = (int)w->shape[0];
  int rows = out ? (int)(numel(args->out) / (size_t)out) : 0;
  FthCudaMath saved = node_math(ctx, args);
  FthCudaStatus st = fth_cuda_gemm(ctx, FTH_CUDA_DT_F32, 0, 1, rows, out, in, 1.0f, x->data, in, 0, w->data, in, 0,
                                   0.0f, args->out->data, out, 0, 1);
  fth_cuda_set_math(ctx, saved);
  if (st == FTH_CUDA_OK)
    st = fth_cuda_bias_act(ctx, out_f32(args), args->n_in > 2 ? in_f32(args, 2) : NULL, (size_t)rows,
                           (size_t)out, p->act == FTH_ACT_RELU);
  return status(st, "linear");
}

/* Strides of t viewed with out's rank, 0 on broadcast dimensions (ops-elementwise.c). */
static void broadcast_strides(const FthTensor *t, const FthTensor *out, int64_t *strides) {
  int off = out->ndim - t->ndim;
  for (int i = 0; i < out->ndim; i++) {
    int it = i - off;
    strides[i] = it >= 0 && t->shape[it] != 1 ? t->strides[it] : 0;
  }
}

static FthStatus run_binary(FthCudaContext *ctx, FthOp op, const FthKernelArgs *args) {
  int64_t sa[FTH_MAX_DIMS], sb[FTH_MAX_DIMS];
  broadcast_strides(&args->in[0], args->out, sa);
  broadcast_strides(&args->in[1], args->out, sb);
  FthCudaBinaryOp bop = op == FTH_OP_ADD ? FTH_CUDA_BIN_ADD : op == FTH_OP_SUB ? FTH_CUDA_BIN_SUB : FTH_CUDA_BIN_MUL;
  return status(fth_cuda_binary(ctx, bop, args->out->ndim, args->out->shape, in_f32(args, 0), sa, in_f32(args, 1),
                                sb, out_f32(args)),
                fth_op_name(op));
}

/* x reduced to `yshape` (ny dims, right-aligned against x's rank). */
static FthStatus reduce_to(FthCudaContext *ctx, const FthTensor *x, int ny, const int64_t *yshape, float *y,
                           float factor, const char *what) {
  int64_t aligned[FTH_MAX_DIMS];
  int off = x->ndim - ny;
  if (off < 0)
    return fth_error(FTH_STATUS_SHAPE_MISMATCH, "%s: target has higher rank", what);
  for (int d = 0; d < x->ndim; d++)
    aligned[d] = d < off ? 1 : yshape[d - off];
  return status(fth_cuda_reduce_to(ctx, x->ndim, x->shape, x->data, aligned, y, factor), what);
}

static FthStatus run_broadcast_to(FthCudaContext *ctx, const FthKernelArgs *args) {
  const FthBroadcastParams *p = args->params;
  const FthTensor *o = args->out;
  size_t n = numel(o);
  if (p->axis == FTH_ALL_AXES)
    return status(fth_cuda_broadcast(ctx, in_f32(args, 0), out_f32(args), 1, n, 1,
                                     p->divide && n ? 1.0f / (float)n : 1.0f),
                  "broadcast_to");
  size_t outer = 1, inner = 1, len = (size_t)o->shape[p->axis];
  for (int d = 0; d < p->axis; d++)
    outer *= (size_t)o->shape[d];
  for (int d = p->axis + 1; d < o->ndim; d++)
    inner *= (size_t)o->shape[d];
  return status(fth_cuda_broadcast(ctx, in_f32(args, 0), out_f32(args), outer, len, inner,
                                   p->divide && len ? 1.0f / (float)len : 1.0f),
                "broadcast_to");
}

static FthCudaActivation activation_of(FthOp op, int form) {
  switch (op) {
  case FTH_OP_RELU: case FTH_OP_RELU_GRAD: return FTH_CUDA_ACT_RELU;
  case FTH_OP_GELU: case FTH_OP_GELU_GRAD: return form == FTH_GELU_TANH ? FTH_CUDA_ACT_GELU_TANH : FTH_CUDA_ACT_GELU;
  case FTH_OP_SILU: case FTH_OP_SILU_GRAD: return FTH_CUDA_ACT_SILU;
  case FTH_OP_SIGMOID: case FTH_OP_SIGMOID_GRAD: return FTH_CUDA_ACT_SIGMOID;
  default: return FTH_CUDA_ACT_TANH;
  }
}

static FthStatus run_softmax(FthCudaContext *ctx, FthOp op, const FthKernelArgs *args) {
  const SoftmaxParams *p = args->params;
  const FthTensor *o = args->out;
  size_t len = (size_t)o->shape[p->axis], inner = 1, outer = 1;
  for (int d = 0; d < p->axis; d++)
    outer *= (size_t)o->shape[d];
  for (int d = p->axis + 1; d < o->ndim; d++)
    inner *= (size_t)o->shape[d];
  bool log = op == FTH_OP_LOG_SOFTMAX || op == FTH_OP_LOG_SOFTMAX_GRAD;
  if (op == FTH_OP_SOFTMAX || op == FTH_OP_LOG_SOFTMAX)
    return status(fth_cuda_softmax(ctx, log, in_f32(args, 0), out_f32(args), outer, len, inner), fth_op_name(op));
  return status(fth_cuda_softmax_grad(ctx, log, in_f32(args, 0), in_f32(args, 1), out_f32(args), outer, len, inner),
                fth_op_name(op));
}

/* ops-loss.c's layout: logits [N, C, d...]; the forward's aux 0 holds each row's (lse, weight)
 * and aux 1 the total weight; the gradient's inputs are dy, the forward node, logits, targets,
 * then [class weights], [sample weights] as in both ops' FthCrossEntropyNodeParams. */
static FthStatus run_cross_entropy(FthCudaContext *ctx, FthOp op, const FthKernelArgs *args) {
  const FthCrossEntropyNodeParams *np = args->params;
  const FthCrossEntropyParams *p = &np->p;
  bool grad = op == FTH_OP_CROSS_ENTROPY_GRAD;
  int base = grad ? 2 : 0;
  const FthTensor *x = &args->in[base];
  size_t n = (size_t)x->shape[0], c = (size_t)x->shape[1], inner = 1;
  for (int d = 2; d < x->ndim; d++)
    inner *= (size_t)x->shape[d];
  bool has_ignore = p->ignore_index != FTH_NO_IGNORE_INDEX;
  const float *w = np->class_weights ? in_f32(args, base + 2) : NULL;
  const float *s = np->sample_weights ? in_f32(args, base + 2 + np->class_weights) : NULL;
  if (grad) {
    const FthTensor *saved = args->in_aux[1];
    return status(fth_cuda_cross_entropy_grad(ctx, x->data, args->in[base + 1].data, w, s, n, c, inner,
                                              p->label_smoothing, has_ignore, p->ignore_index, saved[0].data,
                                              saved[1].data, in_f32(args, 0), out_f32(args)),
                  fth_op_name(op));
  }
  if (args->scratch_bytes < 2 * n * inner * sizeof(double))
    return fth_error(FTH_STATUS_INTERNAL, "cross_entropy: scratch of %zu bytes for %zu rows", args->scratch_bytes,
                     n * inner);
  return status(fth_cuda_cross_entropy(ctx, x->data, args->in[1].data, w, s, n, c, inner, p->label_smoothing,
                                       has_ignore, p->ignore_index, args->scratch, args->aux[0].data,
                                       args->aux[1].data, out_f32(args)),
                fth_op_name(op));
}

static FthStatus run_reduce(FthCudaContext *ctx, FthOp op, const FthKernelArgs *args) {
  const ReduceParams *p = args->params;
  const FthTensor *x = &args->in[0];
  bool mean = op == FTH_OP_MEAN;
  int64_t yshape[FTH_MAX_DIMS];
  size_t count;
  if (p->axis == FTH_ALL_AXES) {
    for (int d = 0; d < x->ndim; d++)
      yshape[d] = 1;
    count = numel(x);
  } else {
    for (int d = 0; d < x->ndim; d++)
      yshape[d] = d == p->axis ? 1 : x->shape[d];
    count = (size_t)x->shape[p->axis];
  }
  if (x->ndim == 0) /* a scalar: a copy */
    return status(fth_cuda_copy_device(ctx, out_f32(args), x->data, sizeof(float)), fth_op_name(op));
  return reduce_to(ctx, x, x->ndim, yshape, out_f32(args), mean && count ? 1.0f / (float)count : 1.0f,
                   fth_op_name(op));
}

static FthStatus run_concat(FthCudaContext *ctx, const FthKernelArgs *args) {
  const ConcatParams *p = args->params;
  const FthTensor *o = args->out;
  size_t es = fth_dtype_size(o->dtype), outer = 1, inner = es;
  for (int d = 0; d < p->axis; d++)
    outer *= (size_t)o->shape[d];
  for (int d = p->axis + 1; d < o->ndim; d++)
    inner *= (size_t)o->shape[d];
  size_t out_row = (size_t)o->shape[p->axis] * inner, off = 0;
  for (int i = 0; i < args->n_in; i++) {
    size_t row = (size_t)args->in[i].shape[p->axis] * inner;
    FthCudaStatus st = fth_cuda_copy_rows(ctx, (char *)o->data + off, out_row, args->in[i].data, row, row, outer);
    if (st != FTH_CUDA_OK)
      return status(st, "concat");
    off += row;
  }
  return FTH_STATUS_OK;
}

static FthStatus run_slice(FthCudaContext *ctx, FthOp op, const FthKernelArgs *args) {
  const SliceParams *p = args->params;
  bool grad = op == FTH_OP_SLICE_GRAD;
  const FthTensor *big = grad ? args->out : &args->in[0];
  size_t es = fth_dtype_size(big->dtype), outer = 1, inner = es;
  for (int d = 0; d < p->axis; d++)
    outer *= (size_t)big->shape[d];
  for (int d = p->axis + 1; d < big->ndim; d++)
    inner *= (size_t)big->shape[d];
  size_t big_row = (size_t)big->shape[p->axis] * inner, row = (size_t)(p->end - p->start) * inner;
  size_t off = (size_t)p->start * inner;
  FthCudaStatus st;
  if (grad) {
    st = fth_cuda_memset_zero(ctx, args->out->data, outer * big_row);
    if (st == FTH_CUDA_OK)
      st = fth_cuda_copy_rows(ctx, (char *)args->out->data + off, big_row, args->in[0].data, row, row, outer);
  } else {
    st = fth_cuda_copy_rows(ctx, args->out->data, row, (const char *)args->in[0].data + off, big_row, row, outer);
  }
  return status(st, fth_op_name(op));
}

/* Kernel shape from the concrete x and w shapes of a conv1d or conv2d. */
static FthStatus conv_shape(const FthConv2dParams *p, int spatial, const int64_t *x, const int64_t *w,
                            FthCudaConvShape *s) {
  *s = (FthCudaConvShape){
      .n = (int)x[0],
      .c = (int)x[1],
      .h = spatial == 2 ? (int)x[2] : 1,
      .w = (int)x[spatial + 1],
      .o = (int)w[0],
      .kh = spatial == 2 ? (int)w[2] : 1,
      .kw = (int)w[spatial + 1],
      .stride_h = p->stride[0],
      .stride_w = p->stride[1],
      .pad_h = p->padding[0],
      .pad_w = p->padding[1],
      .dil_h = p->dilation[0],
      .dil_w = p->dilation[1],
      .groups = p->groups,
  };
  return status(fth_cuda_conv_shape(s), "conv");
}

static FthConv2dParams conv_params(FthOp op, const void *params) {
  FthConv2dParams p;
  if (op == FTH_OP_CONV1D) {
    FthConv1dParams p1;
    memcpy(&p1, params, sizeof p1);
    p = (FthConv2dParams){.stride = {1, p1.stride}, .padding = {0, p1.padding}, .dilation = {1, p1.dilation},
                          .groups = p1.groups, .act = p1.act};
  } else if (op == FTH_OP_CONV2D) {
    memcpy(&p, params, sizeof p);
  } else {
    ConvGradHead h;
    memcpy(&h, params, sizeof h);
    p = h.p;
  }
  return p;
}

static FthStatus run_conv(FthCudaContext *ctx, FthOp op, const FthKernelArgs *args) {
  const int spatial = op == FTH_OP_CONV1D || op == FTH_OP_CONV1D_GRAD_INPUT || op == FTH_OP_CONV1D_GRAD_WEIGHT ? 1 : 2;
  const FthConv2dParams p = conv_params(op, args->params);
  const bool relu = p.act == FTH_ACT_RELU;
  FthCudaConvShape s;
  FthStatus st;
  if (op == FTH_OP_CONV1D || op == FTH_OP_CONV2D) {
    st = conv_shape(&p, spatial, args->in[0].shape, args->in[1].shape, &s);
    if (st != FTH_STATUS_OK)
      return st;
    const float *b = args->n_in > 2 ? in_f32(args, 2) : NULL;
    if (p.max_pool2) /* the argmax (aux 0) only when a backward pass will read it, as ops-conv.c */
      return status(fth_cuda_conv_forward_pool2(ctx, &s, in_f32(args, 0), in_f32(args, 1), b, relu, out_f32(args),
                                                args->ctx->training ? args->aux[0].data : NULL),
                    fth_op_name(op));
    return status(fth_cuda_conv_forward(ctx, &s, in_f32(args, 0), in_f32(args, 1), b, relu, out_f32(args)),
                  fth_op_name(op));
  }
  /* gradient nodes (ops-conv.c): dy, then w (input grad) or x (weight grad) or nothing (bias
   * grad), then the forward node when the ReLU mask or the pool argmax is needed */
  const bool is_input = op == FTH_OP_CONV1D_GRAD_INPUT || op == FTH_OP_CONV2D_GRAD_INPUT;
  const bool is_bias = !is_input && args->out->ndim == 1;
  const int y_index = is_bias ? 1 : 2;
  const FthTensor *dy = &args->in[0];
  const float *dz = dy->data;
  void *masked = NULL;
  FthCudaStatus cs;
  /* The bias gradient sums dy over the positions: unpooling moves each pooled dy to one
   * position, so the pooled dy, masked by the ReLU, has the same sums. */
  if (relu && (is_bias || !p.max_pool2)) {
    masked = fth_cuda_alloc(ctx, numel(dy) * sizeof(float));
    if (!masked)
      return status(FTH_CUDA_NO_MEMORY, fth_op_name(op));
    cs = fth_cuda_relu_mask(ctx, dy->data, args->in[y_index].data, masked, numel(dy));
    if (cs != FTH_CUDA_OK) {
      fth_cuda_free(ctx, masked);
      return status(cs, fth_op_name(op));
    }
    dz = masked;
  }
  if (is_bias) {
    int64_t yshape[3] = {1, dy->shape[1], 1};
    FthTensor flat;
    int64_t fshape[3] = {dy->shape[0], dy->shape[1], (int64_t)(numel(dy) / (size_t)(dy->shape[0] * dy->shape[1]))};
    fth_tensor_view(&flat, FTH_F32, 3, fshape, (void *)dz);
    st = reduce_to(ctx, &flat, 3, yshape, out_f32(args), 1.0f, fth_op_name(op));
    fth_cuda_free(ctx, masked);
    return st;
  }
  const FthTensor *x_or_w = &args->in[1];
  if (is_input)
    st = conv_shape(&p, spatial, args->out->shape, x_or_w->shape, &s);
  else
    st = conv_shape(&p, spatial, x_or_w->shape, args->out->shape, &s);
  if (st == FTH_STATUS_OK && p.max_pool2) { /* dy back to the pre-pool shape, masked */
    masked = fth_cuda_alloc(ctx, (size_t)s.n * s.o * s.out_h * s.out_w * sizeof(float));
    cs = masked ? fth_cuda_conv_unpool2_grad(ctx, &s, dy->data, args->in[y_index].data,
                                             args->in_aux[y_index][0].data, relu, masked)
                : FTH_CUDA_NO_MEMORY;
    st = status(cs, fth_op_name(op));
    dz = masked;
  }
  if (st == FTH_STATUS_OK) {
    cs = is_input ? fth_cuda_conv_backward_data(ctx, &s, dz, x_or_w->data, out_f32(args))
                  : fth_cuda_conv_backward_filter(ctx, &s, dz, x_or_w->data, out_f32(args));
    st = status(cs, fth_op_name(op));
  }
  fth_cuda_free(ctx, masked);
  return st;
}

static FthStatus run_pool(FthCudaContext *ctx, FthOp op, const FthKernelArgs *args) {
  const bool is_grad = op == FTH_OP_MAX_POOL2D_GRAD || op == FTH_OP_AVG_POOL2D_GRAD ||
                       op == FTH_OP_GLOBAL_AVG_POOL2D_GRAD;
  const FthTensor *big = is_grad ? args->out : &args->in[0];
  const FthTensor *small = is_grad ? &args->in[0] : args->out;
  const size_t planes = (size_t)(big->shape[0] * big->shape[1]);
  const size_t plane = (size_t)(big->shape[2] * big->shape[3]);
  if (op == FTH_OP_GLOBAL_AVG_POOL2D) {
    int64_t xs[2] = {(int64_t)planes, (int64_t)plane}, ys[2] = {(int64_t)planes, 1};
    FthTensor flat;
    fth_tensor_view(&flat, FTH_F32, 2, xs, big->data);
    return reduce_to(ctx, &flat, 2, ys, out_f32(args), plane ? 1.0f / (float)plane : 1.0f, fth_op_name(op));
  }
  if (op == FTH_OP_GLOBAL_AVG_POOL2D_GRAD)
    return status(fth_cuda_broadcast(ctx, in_f32(args, 0), out_f32(args), planes, plane, 1,
                                     plane ? 1.0f / (float)plane : 1.0f),
                  fth_op_name(op));
  FthPool2dParams p;
  if (is_grad) {
    PoolGradHead h;
    memcpy(&h, args->params, sizeof h);
    p = h.p;
  } else {
    memcpy(&p, args->params, sizeof p);
  }
  FthCudaPoolShape s = {.planes = (int)planes, .in_h = (int)big->shape[2], .in_w = (int)big->shape[3],
                        .out_h = (int)small->shape[2], .out_w = (int)small->shape[3], .k_h = p.kernel[0],
                        .k_w = p.kernel[1], .stride_h = p.stride[0], .stride_w = p.stride[1],
                        .pad_h = p.padding[0], .pad_w = p.padding[1]};
  FthCudaStatus st;
  switch (op) {
  case FTH_OP_MAX_POOL2D:
    st = fth_cuda_max_pool_forward(ctx, &s, in_f32(args, 0), out_f32(args), args->aux[0].data);
    break;
  case FTH_OP_MAX_POOL2D_GRAD: /* the argmax is the forward node's aux 0 */
    st = fth_cuda_max_pool_backward(ctx, &s, in_f32(args, 0), args->in_aux[1][0].data, out_f32(args));
    break;
  case FTH_OP_AVG_POOL2D:
    st = fth_cuda_avg_pool_forward(ctx, &s, p.count_include_pad, in_f32(args, 0), out_f32(args));
    break;
  default:
    st = fth_cuda_avg_pool_backward(ctx, &s, p.count_include_pad, in_f32(args, 0), out_f32(args));
    break;
  }
  return status(st, fth_op_name(op));
}

static FthStatus run_dropout(FthCudaContext *ctx, FthOp op, const FthKernelArgs *args) {
  DropoutParams p;
  memcpy(&p, args->params, sizeof p);
  size_t n = numel(&args->in[0]);
  if (!args->ctx->training || p.p == 0.0f)
    return status(fth_cuda_copy_device(ctx, out_f32(args), in_f32(args, 0), n * sizeof(float)), "dropout");
  const int id = op == FTH_OP_DROPOUT ? fth_node_id(args->node) : p.forward_id;
  uint64_t stream = (UINT64_C(1) << 32) + (uint64_t)id;
  return status(fth_cuda_dropout(ctx, in_f32(args, 0), out_f32(args), n, p.p, args->ctx->seed, stream,
                                 args->ctx->step),
                fth_op_name(op));
}

static FthStatus run_embedding(FthCudaContext *ctx, FthOp op, const FthKernelArgs *args) {
  EmbeddingParams p;
  memcpy(&p, args->params, sizeof p);
  if (op == FTH_OP_EMBEDDING) {
    const FthTensor *t = &args->in[1];
    return status(fth_cuda_embedding(ctx, args->in[0].data, numel(&args->in[0]), t->data, (size_t)t->shape[0],
                                     (size_t)t->shape[1], out_f32(args)),
                  "embedding");
  }
  const FthTensor *o = args->out;
  return status(fth_cuda_embedding_grad(ctx, args->in[1].data, numel(&args->in[1]), in_f32(args, 0),
                                        (size_t)o->shape[0], (size_t)o->shape[1], p.padding_idx, out_f32(args)),
                "embedding_grad");
}

/* x as [N, C, S] (batch norm). */
static void norm_dims(const FthTensor *x, size_t *n, size_t *c, size_t *s) {
  *n = (size_t)x->shape[0];
  *c = (size_t)x->shape[1];
  *s = 1;
  for (int i = 2; i < x->ndim; i++)
    *s *= (size_t)x->shape[i];
}

/* Inputs as ops-norm.c lists them. Batch norm: x, running_mean, running_var[, gamma, beta];
 * its gradients: dy, x, the forward node (aux: mean, invstd)[, gamma] (input), dy, x, forward
 * (gamma), dy (beta). Layer norm: x[, gamma, beta]; gradients likewise. */
static FthStatus run_norm(FthCudaContext *ctx, FthOp op, const FthKernelArgs *args) {
  size_t n, c, s;
  FthCudaStatus st;
  if (op == FTH_OP_BATCH_NORM) {
    FthBatchNormParams p;
    memcpy(&p, args->params, sizeof p);
    norm_dims(&args->in[0], &n, &c, &s);
    st = fth_cuda_batch_norm(ctx, in_f32(args, 0), n, c, s, args->ctx->training, p.eps, p.momentum,
                             args->in[1].data, args->in[2].data, args->n_in > 3 ? in_f32(args, 3) : NULL,
                             args->n_in > 4 ? in_f32(args, 4) : NULL, out_f32(args), args->aux[0].data,
                             args->aux[1].data);
    return status(st, "batch_norm");
  }
  if (op == FTH_OP_BATCH_NORM_GRAD_INPUT || op == FTH_OP_BATCH_NORM_GRAD_GAMMA || op == FTH_OP_BATCH_NORM_GRAD_BETA) {
    NormGradParams gp;
    memcpy(&gp, args->params, sizeof gp);
    norm_dims(&args->in[0], &n, &c, &s);
    if (op == FTH_OP_BATCH_NORM_GRAD_BETA)
      st = fth_cuda_batch_norm_backward(ctx, true, NULL, in_f32(args, 0), n, c, s, NULL, NULL, NULL, NULL, NULL,
                                        out_f32(args));
    else
      st = fth_cuda_batch_norm_backward(ctx, args->ctx->training, in_f32(args, 1), in_f32(args, 0), n, c, s,
                                        args->in_aux[2][0].data, args->in_aux[2][1].data,
                                        op == FTH_OP_BATCH_NORM_GRAD_INPUT && gp.has_gamma ? in_f32(args, 3) : NULL,
                                        op == FTH_OP_BATCH_NORM_GRAD_INPUT ? out_f32(args) : NULL,
                                        op == FTH_OP_BATCH_NORM_GRAD_GAMMA ? out_f32(args) : NULL, NULL);
    return status(st, fth_op_name(op));
  }
  const FthTensor *x = &args->in[op == FTH_OP_LAYER_NORM || op == FTH_OP_LAYER_NORM_GRAD_BETA ? 0 : 1];
  size_t d = (size_t)x->shape[x->ndim - 1], rows = d ? numel(x) / d : 0;
  if (op == FTH_OP_LAYER_NORM) {
    LayerNormParams p;
    memcpy(&p, args->params, sizeof p);
    st = fth_cuda_layer_norm(ctx, x->data, rows, d, args->n_in > 1 ? in_f32(args, 1) : NULL,
                             args->n_in > 2 ? in_f32(args, 2) : NULL, p.eps, out_f32(args), args->aux[0].data,
                             args->aux[1].data);
  } else if (op == FTH_OP_LAYER_NORM_GRAD_BETA) {
    st = fth_cuda_layer_norm_backward_params(ctx, NULL, in_f32(args, 0), rows, d, NULL, NULL, NULL, out_f32(args));
  } else {
    NormGradParams gp;
    memcpy(&gp, args->params, sizeof gp);
    const float *mean = args->in_aux[2][0].data, *invstd = args->in_aux[2][1].data;
    if (op == FTH_OP_LAYER_NORM_GRAD_INPUT)
      st = fth_cuda_layer_norm_backward_input(ctx, x->data, in_f32(args, 0), rows, d,
                                              gp.has_gamma ? in_f32(args, 3) : NULL, mean, invstd, out_f32(args));
    else
      st = fth_cuda_layer_norm_backward_params(ctx, x->data, in_f32(args, 0), rows, d, mean, invstd, out_f32(args),
                                               NULL);
  }
  return status(st, fth_op_name(op));
}

/* Inputs as ops-attention.c lists them: q, k, v[, key_mask] (aux 0: probabilities). Gradients:
 * q: dy, k, v, forward (aux 0: dS, kept for k); k: dy, q, the q-gradient node (dS from its aux)
 * or dy, q, v, forward when q needs no gradient; v: dy, forward. */
static FthStatus run_attention(FthCudaContext *ctx, FthOp op, const FthKernelArgs *args) {
  FthAttentionParams p;
  memcpy(&p, args->params, sizeof p);
  const FthTensor *x = &args->in[0];
  FthCudaAttnShape s = {.batch = (int)x->shape[0], .seq = (int)x->shape[1], .heads = p.n_heads,
                        .head_dim = (int)(x->shape[2] / p.n_heads), .causal = p.causal};
  s.scale = p.scale != 0.0f ? p.scale : 1.0f / sqrtf((float)s.head_dim);
  const float *dy = in_f32(args, 0);
  const int last = args->n_in - 1;
  FthCudaStatus st;
  switch (op) {
  case FTH_OP_ATTENTION:
    st = fth_cuda_attention_forward(ctx, &s, in_f32(args, 0), in_f32(args, 1), in_f32(args, 2),
                                    args->n_in > 3 ? in_f32(args, 3) : NULL, args->aux[0].data, out_f32(args));
    break;
  case FTH_OP_ATTENTION_GRAD_V:
    st = fth_cuda_attention_backward(ctx, &s, NULL, NULL, NULL, args->in_aux[last][0].data, dy, NULL, NULL, NULL,
                                     NULL, out_f32(args));
    break;
  case FTH_OP_ATTENTION_GRAD_Q:
    st = fth_cuda_attention_backward(ctx, &s, NULL, in_f32(args, 1), in_f32(args, 2), args->in_aux[last][0].data, dy,
                                     NULL, args->aux[0].data, out_f32(args), NULL, NULL);
    break;
  default: /* k */
    if (args->n_in == 3)
      st = fth_cuda_attention_backward(ctx, &s, in_f32(args, 1), NULL, NULL, NULL, dy, args->in_aux[2][0].data, NULL,
                                       NULL, out_f32(args), NULL);
    else
      st = fth_cuda_attention_backward(ctx, &s, in_f32(args, 1), NULL, in_f32(args, 2), args->in_aux[last][0].data,
                                       dy, NULL, NULL, NULL, out_f32(args), NULL);
    break;
  }
  return status(st, fth_op_name(op));
}

static FthStatus cuda_run_node(const FthBackend *be, FthOp op, const FthKernelArgs *args) {
  FthCudaContext *ctx = ctx_of(be);
  switch (op) {
  case FTH_OP_INPUT:
  case FTH_OP_PARAM:
  case FTH_OP_RESHAPE: /* a view: the output is the input's memory */
    return FTH_STATUS_OK;
  case FTH_OP_FILL: {
    const FthFillParams *p = args->params;
    return status(fth_cuda_fill(ctx, out_f32(args), numel(args->out), p->value), "fill");
  }
  case FTH_OP_MATMUL: return run_matmul(ctx, args);
  case FTH_OP_LINEAR: return run_linear(ctx, args);
  case FTH_OP_ADD:
  case FTH_OP_SUB:
  case FTH_OP_MUL: return run_binary(ctx, op, args);
  case FTH_OP_SCALE: {
    const ScaleParams *p = args->params;
    return status(fth_cuda_scale(ctx, in_f32(args, 0), out_f32(args), numel(args->out), p->alpha, p->beta), "scale");
  }
  case FTH_OP_SUM_TO:
    return reduce_to(ctx, &args->in[0], args->out->ndim, args->out->shape, out_f32(args), 1.0f, "sum_to");
  case FTH_OP_BROADCAST_TO: return run_broadcast_to(ctx, args);
  case FTH_OP_RELU:
  case FTH_OP_GELU:
  case FTH_OP_SILU:
  case FTH_OP_SIGMOID:
  case FTH_OP_TANH:
    return status(fth_cuda_activation(ctx, activation_of(op, *(const int *)args->params), in_f32(args, 0),
                                      out_f32(args), numel(args->out)),
                  fth_op_name(op));
  case FTH_OP_RELU_GRAD:
  case FTH_OP_GELU_GRAD:
  case FTH_OP_SILU_GRAD:
  case FTH_OP_SIGMOID_GRAD:
  case FTH_OP_TANH_GRAD:
    return status(fth_cuda_activation_grad(ctx, activation_of(op, *(const int *)args->params), in_f32(args, 0),
                                           in_f32(args, 1), out_f32(args), numel(args->out)),
                  fth_op_name(op));
  case FTH_OP_SOFTMAX:
  case FTH_OP_LOG_SOFTMAX:
  case FTH_OP_SOFTMAX_GRAD:
  case FTH_OP_LOG_SOFTMAX_GRAD: return run_softmax(ctx, op, args);
  case FTH_OP_CROSS_ENTROPY:
  case FTH_OP_CROSS_ENTROPY_GRAD: return run_cross_entropy(ctx, op, args);
  case FTH_OP_BCE_WITH_LOGITS:
  case FTH_OP_BCE_WITH_LOGITS_GRAD: {
    bool grad = op == FTH_OP_BCE_WITH_LOGITS_GRAD;
    int base = grad ? 1 : 0;
    const FthTensor *x = &args->in[base];
    return status(fth_cuda_bce_with_logits(ctx, x->data, in_f32(args, base + 1),
                                           args->n_in > base + 2 ? in_f32(args, base + 2) : NULL, numel(x),
                                           (size_t)x->shape[x->ndim - 1], grad ? in_f32(args, 0) : NULL,
                                           out_f32(args)),
                  fth_op_name(op));
  }
  case FTH_OP_MSE:
  case FTH_OP_MSE_GRAD: {
    bool grad = op == FTH_OP_MSE_GRAD;
    int base = grad ? 1 : 0;
    return status(fth_cuda_mse(ctx, in_f32(args, base), in_f32(args, base + 1), numel(&args->in[base]),
                               grad ? in_f32(args, 0) : NULL, out_f32(args)),
                  fth_op_name(op));
  }
  case FTH_OP_SUM:
  case FTH_OP_MEAN: return run_reduce(ctx, op, args);
  case FTH_OP_TRANSPOSE: {
    const TransposeParams *p = args->params;
    const FthTensor *x = &args->in[0];
    return status(fth_cuda_transpose(ctx, x->ndim, x->shape, p->perm, x->data, args->out->data,
                                     fth_dtype_size(x->dtype)),
                  "transpose");
  }
  case FTH_OP_CONCAT: return run_concat(ctx, args);
  case FTH_OP_SLICE:
  case FTH_OP_SLICE_GRAD: return run_slice(ctx, op, args);
  case FTH_OP_CONV1D:
  case FTH_OP_CONV1D_GRAD_INPUT:
  case FTH_OP_CONV1D_GRAD_WEIGHT:
  case FTH_OP_CONV2D:
  case FTH_OP_CONV2D_GRAD_INPUT:
  case FTH_OP_CONV2D_GRAD_WEIGHT: return run_conv(ctx, op, args);
  case FTH_OP_MAX_POOL2D:
  case FTH_OP_MAX_POOL2D_GRAD:
  case FTH_OP_AVG_POOL2D:
  case FTH_OP_AVG_POOL2D_GRAD:
  case FTH_OP_GLOBAL_AVG_POOL2D:
  case FTH_OP_GLOBAL_AVG_POOL2D_GRAD: return run_pool(ctx, op, args);
  case FTH_OP_DROPOUT:
  case FTH_OP_DROPOUT_GRAD: return run_dropout(ctx, op, args);
  case FTH_OP_EMBEDDING:
  case FTH_OP_EMBEDDING_GRAD: return run_embedding(ctx, op, args);
  case FTH_OP_BATCH_NORM:
  case FTH_OP_BATCH_NORM_GRAD_INPUT:
  case FTH_OP_BATCH_NORM_GRAD_GAMMA:
  case FTH_OP_BATCH_NORM_GRAD_BETA:
  case FTH_OP_LAYER_NORM:
  case FTH_OP_LAYER_NORM_GRAD_INPUT:
  case FTH_OP_LAYER_NORM_GRAD_GAMMA:
  case FTH_OP_LAYER_NORM_GRAD_BETA: return run_norm(ctx, op, args);
  case FTH_OP_ATTENTION:
  case FTH_OP_ATTENTION_GRAD_Q:
  case FTH_OP_ATTENTION_GRAD_K:
  case FTH_OP_ATTENTION_GRAD_V: return run_attention(ctx, op, args);
  default:
    return fth_error(FTH_STATUS_UNSUPPORTED, "cuda backend: no kernel for %s", fth_op_name(op));
  }
}

/* ---- data parallel ---------------------------------------------------------------------------- */

#define MAX_RANKS 64

FthStatus fth_graph_device_all_reduce_grads(FthGraphDevice *const *devs, struct FthCudaComm *const *comms, int n,
                                            size_t bucket_bytes) {
  if (n < 1 || n > MAX_RANKS)
    return fth_error(FTH_STATUS_INVALID_ARGUMENT, "all_reduce_grads: %d ranks", n);
  const FthGraph *g0 = fth_graph_device_graph(devs[0]);
  int np = fth_graph_n_params(g0), count = 0;
  float **bufs = fth_calloc((size_t)n * (size_t)(np + 1), sizeof *bufs);
  size_t *counts = fth_calloc((size_t)np + 1, sizeof *counts);
  float **rows[MAX_RANKS];
  FthStatus st = bufs && counts ? FTH_STATUS_OK : FTH_STATUS_NO_MEMORY;
  for (int k = 0; k < np && st == FTH_STATUS_OK; k++) {
    const FthNode *p0 = fth_graph_param(g0, k);
    if (!fth_param_is_trainable(p0))
      continue;
    int64_t shape[FTH_MAX_DIMS];
    counts[count] = (size_t)fth_shape_numel(fth_node_shape(p0, 1, shape), shape);
    for (int r = 0; r < n && st == FTH_STATUS_OK; r++) {
      const FthGraph *gr = fth_graph_device_graph(devs[r]);
      float *value;
      if (fth_graph_n_params(gr) != np)
        st = fth_error(FTH_STATUS_SHAPE_MISMATCH, "all_reduce_grads: rank %d has another graph", r);
      else
        st = fth_graph_device_param(devs[r], fth_graph_param(gr, k), &value, &bufs[(size_t)r * (size_t)np + (size_t)count]);
    }
    count++;
  }
  for (int r = 0; r < n; r++)
    rows[r] = bufs ? bufs + (size_t)r * (size_t)np : NULL;
  if (st == FTH_STATUS_OK)
    st = status(fth_cuda_all_reduce_buckets_local((FthCudaComm *const *)comms, n, (float *const *const *)rows,
                                                  counts, count, bucket_bytes),
                "all_reduce_grads");
  fth_free(bufs);
  fth_free(counts);
  return st;
}

/* ---- mixed precision and the optimizer on device buffers -------------------------------------- */

static FthStatus cuda_set_precision(const FthBackend *be, FthPrecision precision) {
  fth_cuda_set_math(ctx_of(be), precision == FTH_PRECISION_BF16   ? FTH_CUDA_MATH_BF16
                                : precision == FTH_PRECISION_FP16 ? FTH_CUDA_MATH_F16
                                                                  : FTH_CUDA_MATH_F32);
  return FTH_STATUS_OK;
}

static FthStatus cuda_optim_update(const FthBackend *be, const FthOptimConfig *cfg, float lr, float weight_decay,
                                   int64_t t, float *value, const float *grad, float *const *state, size_t n) {
  if (cfg->kind == FTH_OPTIM_SGD)
    return status(fth_cuda_sgd_step(ctx_of(be), value, grad, state[0], n, lr, weight_decay, cfg->momentum,
                                    cfg->nesterov),
                  "sgd step");
  return status(fth_cuda_adamw_step(ctx_of(be), value, grad, state[0], state[1], n, lr, weight_decay, cfg->beta1,
                                    cfg->beta2, cfg->eps, t),
                "adamw step");
}

/* One scaler per call: its flag comes from the caching allocator, so this costs no cudaMalloc. */
static FthStatus cuda_unscale(const FthBackend *be, float *const *bufs, const size_t *counts, int n_bufs,
                              float factor, bool *found_inf) {
  FthCudaContext *ctx = ctx_of(be);
  FthCudaLossScaler s;
  FthCudaStatus st = fth_cuda_loss_scaler_init(ctx, &s, 1.0f / factor);
  int ok = 0;
  if (st == FTH_CUDA_OK)
    st = fth_cuda_loss_scaler_unscale(ctx, &s, bufs, counts, n_bufs);
  if (st == FTH_CUDA_OK)
    st = fth_cuda_loss_scaler_update(ctx, &s, &ok);
  fth_cuda_loss_scaler_release(ctx, &s);
  *found_inf = !ok;
  return status(st, "unscale");
}

/* ---- backends per device --------------------------------------------------------------------- */

#define MAX_DEVICES 16

static pthread_mutex_t backends_lock = PTHREAD_MUTEX_INITIALIZER;
static CudaBackend *backends[MAX_DEVICES];

const FthBackend *fth_backend_cuda(int device) {
  if (device < 0 || device >= MAX_DEVICES) {
    fth_error(FTH_STATUS_INVALID_ARGUMENT, "cuda:%d: device index out of range", device);
    return NULL;
  }
  pthread_mutex_lock(&backends_lock);
  CudaBackend *b = backends[device];
  if (!b) {
    FthCudaContext *ctx = NULL;
    FthCudaStatus st = fth_cuda_context_new(device, &ctx);
    if (st != FTH_CUDA_OK) {
      status(st, "cuda backend");
    } else if (!(b = fth_calloc(1, sizeof *b))) {
      fth_cuda_context_free(ctx);
    } else {
      b->ctx = ctx;
      b->be = (FthBackend){.name = "cuda", .alloc = cuda_alloc, .free = cuda_free, .copy_in = cuda_copy_in,
                           .copy_out = cuda_copy_out, .run_node = cuda_run_node,
                           .synchronize = cuda_synchronize, .set_precision = cuda_set_precision,
                           .optim_update = cuda_optim_update, .unscale = cuda_unscale, .impl = b};
      backends[device] = b;
    }
  }
  pthread_mutex_unlock(&backends_lock);
  return b ? &b->be : NULL;
}
