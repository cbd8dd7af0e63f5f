/* Op family 'conv': conv1d and conv2d (NCHW, stride, padding, dilation, groups, fused bias and
 * ReLU) with their input, weight and bias gradients. conv1d runs the 2-D kernels with a height
 * of 1. Kernels: kernels/cpu/conv.c. */
#include "ops-private.h"

#include "conv.h"

#include <string.h>

/* Parameters of the gradient nodes: the forward's parameters normalized to 2-D, plus what the
 * gradient's shape cannot be derived from. */
typedef struct {
  FthConv2dParams p;
  int spatial;   /* 1: conv1d, 2: conv2d */
  int grad_bias; /* CONV*_GRAD_WEIGHT node that computes the bias gradient instead */
  int k_h, k_w;
  FthTensorDesc x_desc; /* the forward input, the shape of the input gradient */
} ConvGradParams;

static int conv_spatial(FthOp op) {
  return op == FTH_OP_CONV1D || op == FTH_OP_CONV1D_GRAD_INPUT || op == FTH_OP_CONV1D_GRAD_WEIGHT ? 1
                                                                                                   : 2;
}

static FthConv2dParams conv_params_2d(FthOp op, const void *params) {
  FthConv2dParams p;
  if (op == FTH_OP_CONV1D) {
    FthConv1dParams p1;
    memcpy(&p1, params, sizeof p1);
    p = (FthConv2dParams){.stride = {1, p1.stride},
                          .padding = {0, p1.padding},
                          .dilation = {1, p1.dilation},
                          .groups = p1.groups,
                          .act = p1.act};
  } else if (op == FTH_OP_CONV2D) {
    memcpy(&p, params, sizeof p);
  } else {
    ConvGradParams gp;
    memcpy(&gp, params, sizeof gp);
    p = gp.p;
  }
  return p;
}

/* x [N, C, (H,) W] and w [O, C/g, (KH,) KW] as concrete shapes -> kernel shape. */
static void conv_shape(const FthConv2dParams *p, int spatial, const int64_t *x, const int64_t *w,
                       FthConvShape *s) {
  *s = (FthConvShape){
      .batch = (int)x[0],
      .in_c = (int)x[1],
      .in_h = spatial == 2 ? (int)x[2] : 1,
      .in_w = (int)x[spatial + 1],
      .out_c = (int)w[0],
      .k_h = spatial == 2 ? (int)w[2] : 1,
      .k_w = (int)w[spatial + 1],
      .stride_h = p->stride[0],
      .stride_w = p->stride[1],
      .pad_h = p->padding[0],
      .pad_w = p->padding[1],
      .dil_h = p->dilation[0],
      .dil_w = p->dilation[1],
      .groups = p->groups,
  };
}

static size_t round_floats(size_t n) {
  return (n + 15) & ~(size_t)15; /* keeps every worker's slice 64-byte aligned */
}

/* ---- forward --------------------------------------------------------------------------------- */

static FthStatus conv_infer(FthNode *node) {
  const int sp = conv_spatial(node->op), nd = sp + 2;
  const char *name = fth_op_name(node->op);
  if (node->n_in < 2 || node->n_in > 3)
    return fth_error(FTH_STATUS_INVALID_ARGUMENT, "%s: expects x, w and an optional bias", name);
  const FthTensorDesc *x = &node->in[0]->out, *w = &node->in[1]->out;
  if (x->dtype != FTH_F32 || w->dtype != FTH_F32 || x->ndim != nd || w->ndim != nd)
    return fth_error(FTH_STATUS_SHAPE_MISMATCH, "%s: x and w must be %d-D f32", name, nd);
  if (x->bdim != 0 || w->bdim != -1)
    return fth_error(FTH_STATUS_SHAPE_MISMATCH,
                     "%s: x must have the batch as dimension 0 and w must not scale with it", name);
  FthConv2dParams p = conv_params_2d(node->op, node->params);
  if (p.act != FTH_ACT_NONE && p.act != FTH_ACT_RELU)
    return fth_error(FTH_STATUS_INVALID_ARGUMENT, "%s: unknown activation %d", name, (int)p.act);
  int64_t xs[4], ws[4];
  memcpy(xs, x->shape, sizeof xs);
  memcpy(ws, w->shape, sizeof ws);
  FthConvShape s;
  conv_shape(&p, sp, xs, ws, &s);
  if (p.groups >= 1 && w->shape[1] * p.groups != x->shape[1])
    return fth_error(FTH_STATUS_SHAPE_MISMATCH,
                     "%s: w has %lld input channels per group, x has %lld channels in %d groups",
                     name, (long long)w->shape[1], (long long)x->shape[1], p.groups);
  const char *why = NULL;
  if (fth_conv2d_shape_check(&s, &why) != 0)
    return fth_error(FTH_STATUS_SHAPE_MISMATCH, "%s: %s", name, why);
  if (node->n_in == 3) {
    const FthTensorDesc *b = &node->in[2]->out;
    if (b->dtype != FTH_F32 || b->ndim != 1 || b->bdim != -1 || b->shape[0] != w->shape[0])
      return fth_error(FTH_STATUS_SHAPE_MISMATCH, "%s: bias must be f32 [%lld]", name,
                       (long long)w->shape[0]);
  }
  node->out = (FthTensorDesc){.dtype = FTH_F32, .ndim = nd, .bdim = 0};
  node->out.shape[0] = x->shape[0];
  node->out.shape[1] = w->shape[0];
  if (sp == 2)
    node->out.shape[2] = s.out_h;
  node->out.shape[sp + 1] = s.out_w;
  node->n_aux = 0;
  if (p.max_pool2) {
    if (s.out_h < 2 || s.out_w < 2)
      return fth_error(FTH_STATUS_SHAPE_MISMATCH, "%s: a %dx%d output is too small to pool 2x2",
                       name, s.out_h, s.out_w);
    node->out.shape[2] = s.out_h / 2;
    node->out.shape[3] = s.out_w / 2;
    /* where each pooled maximum came from (0..3 in its window), for the gradients */
    node->n_aux = 1;
    node->aux[0] = node->out;
    node->aux[0].dtype = FTH_U8;
  }
  return FTH_STATUS_OK;
}

static void conv_scratch(const FthNode *node, int n_threads, size_t *fixed, size_t *per_sample) {
  const int sp = conv_spatial(node->op);
  FthConv2dParams p = conv_params_2d(node->op, node->params);
  FthConvShape s;
  conv_shape(&p, sp, node->in[0]->out.shape, node->in[1]->out.shape, &s);
  const char *why;
  fth_conv2d_shape_check(&s, &why);
  const FthConvEpilogue ep = {.pool2 = p.max_pool2};
  *fixed = (size_t)n_threads * round_floats(fth_conv2d_forward_scratch_floats(&s, &ep, s.out_h)) *
           sizeof(float);
  *per_sample = 0;
}

typedef struct {
  FthConvShape s;
  FthConvEpilogue ep;
  const float *x, *w, *b, *y, *dy;
  float *out, *scratch;
  size_t per_worker; /* floats of scratch per worker */
  int chunks, rows_per_chunk;
  int grad_bias;     /* gradient nodes: the bias gradient (else weight, or input when !partial_len) */
  size_t partial_len; /* floats of each worker's weight/bias partial sum, 0 for the input grad */
  size_t n_parts;     /* weight/bias gradients: the batch split into this many fixed ranges */
} ConvRun;

static void conv_forward_chunk(void *vctx, size_t begin, size_t end, int worker) {
  ConvRun *r = vctx;
  float *scratch = r->scratch + (size_t)worker * r->per_worker;
  for (size_t item = begin; item < end; item++) {
    const int n = (int)(item / (size_t)r->chunks), c = (int)(item % (size_t)r->chunks);
    const int r0 = c * r->rows_per_chunk;
    const int r1 = r0 + r->rows_per_chunk < r->s.out_h ? r0 + r->rows_per_chunk : r->s.out_h;
    if (r0 < r1)
      fth_conv2d_forward_rows(&r->s, &r->ep, r->x, r->w, r->b, r->out, scratch, n, r0, r1);
  }
}

/* Checks that the scratch the planner gave holds `per_worker` floats for every pool worker. */
static FthStatus check_scratch(const FthKernelArgs *args, size_t per_worker) {
  const size_t need = (size_t)fth_thread_count() * per_worker * sizeof(float);
  if (need > args->scratch_bytes)
    return fth_error(FTH_STATUS_BAD_STATE,
                     "%s: scratch holds %zu bytes, %d threads need %zu (planned for fewer threads?)",
                     fth_op_name(fth_node_op(args->node)), args->scratch_bytes, fth_thread_count(),
                     need);
  return FTH_STATUS_OK;
}

static FthStatus conv_forward(const FthKernelArgs *args) {
  const FthOp op = fth_node_op(args->node);
  const int sp = conv_spatial(op);
  FthConv2dParams p = conv_params_2d(op, args->params);
  ConvRun r = {0};
  conv_shape(&p, sp, args->in[0].shape, args->in[1].shape, &r.s);
  const char *why;
  if (fth_conv2d_shape_check(&r.s, &why) != 0)
    return fth_error(FTH_STATUS_SHAPE_MISMATCH, "%s: %s", fth_op_name(op), why);
  r.ep.relu = p.act == FTH_ACT_RELU;
  r.ep.pool2 = p.max_pool2;
  r.ep.pool_argmax = p.max_pool2 && args->ctx->training ? args->aux[0].data : NULL;
  r.x = args->in[0].data;
  r.w = args->in[1].data;
  r.b = args->n_in > 2 ? args->in[2].data : NULL;
  r.out = args->out->data;
  r.scratch = args->scratch;
  r.per_worker = round_floats(fth_conv2d_forward_scratch_floats(&r.s, &r.ep, r.s.out_h));
  FthStatus st = check_scratch(args, r.per_worker);
  if (st != FTH_STATUS_OK)
    return st;
  if (r.s.batch < 1)
    return FTH_STATUS_OK;
  /* Fewer images than threads (batch-1 inference): split each image's output rows too. */
  const int threads = fth_thread_count();
  r.chunks = r.s.batch >= threads ? 1 : (threads + r.s.batch - 1) / r.s.batch;
  if (r.chunks > r.s.out_h)
    r.chunks = r.s.out_h;
  r.rows_per_chunk = (r.s.out_h + r.chunks - 1) / r.chunks;
  if (r.ep.pool2 && (r.rows_per_chunk & 1))
    r.rows_per_chunk++; /* pooled row pairs never straddle two chunks */
  fth_parallel_for((size_t)r.s.batch * r.chunks, 1, conv_forward_chunk, &r);
  return FTH_STATUS_OK;
}

/* ---- gradients ------------------------------------------------------------------------------- */

static FthStatus conv_backward_rule(FthGraph *g, FthNode *node, FthNode *dy, FthNode **dx) {
  const int sp = conv_spatial(node->op);
  ConvGradParams gp = {.p = conv_params_2d(node->op, node->params), .spatial = sp};
  const FthNode *w = node->in[1];
  gp.k_h = sp == 2 ? (int)w->out.shape[2] : 1;
  gp.k_w = (int)w->out.shape[sp + 1];
  gp.x_desc = node->in[0]->out;
  /* the ReLU mask (y > 0) and the pooling argmax come from the forward node */
  const bool needs_forward = gp.p.act == FTH_ACT_RELU || gp.p.max_pool2;
  const FthOp gi = sp == 2 ? FTH_OP_CONV2D_GRAD_INPUT : FTH_OP_CONV1D_GRAD_INPUT;
  const FthOp gw = sp == 2 ? FTH_OP_CONV2D_GRAD_WEIGHT : FTH_OP_CONV1D_GRAD_WEIGHT;
  if (fth_node_requires_grad(node->in[0])) {
    FthNode *in[3] = {dy, node->in[1], node};
    dx[0] = fth_graph_add_node(g, gi, in, needs_forward ? 3 : 2, &gp, sizeof gp);
  }
  if (fth_node_requires_grad(node->in[1])) {
    FthNode *in[3] = {dy, node->in[0], node};
    dx[1] = fth_graph_add_node(g, gw, in, needs_forward ? 3 : 2, &gp, sizeof gp);
  }
  if (node->n_in > 2 && fth_node_requires_grad(node->in[2])) {
    gp.grad_bias = 1;
    FthNode *in[2] = {dy, node};
    dx[2] = fth_graph_add_node(g, gw, in, needs_forward ? 2 : 1, &gp, sizeof gp);
  }
  return fth_graph_status(g);
}

static ConvGradParams grad_params(const void *params) {
  ConvGradParams gp;
  memcpy(&gp, params, sizeof gp);
  return gp;
}

/* Kernel shape of a gradient node from its params (batch from dy). */
static void grad_shape(const ConvGradParams *gp, int64_t batch, FthConvShape *s) {
  int64_t xs[4] = {batch, gp->x_desc.shape[1], 1, 1}, ws[4];
  for (int i = 2; i < gp->x_desc.ndim; i++)
    xs[i] = gp->x_desc.shape[i];
  ws[0] = 0; /* out channels: filled by the caller */
  ws[1] = gp->x_desc.shape[1] / (gp->p.groups > 0 ? gp->p.groups : 1);
  ws[2] = gp->spatial == 2 ? gp->k_h : gp->k_w;
  ws[3] = gp->k_w;
  conv_shape(&gp->p, gp->spatial, xs, ws, s);
}

static FthStatus conv_grad_infer(FthNode *node) {
  ConvGradParams gp = grad_params(node->params);
  const FthTensorDesc *dy = &node->in[0]->out;
  const char *name = fth_op_name(node->op);
  if (dy->dtype != FTH_F32 || dy->ndim != gp.spatial + 2)
    return fth_error(FTH_STATUS_SHAPE_MISMATCH, "%s: dy must be %d-D f32", name, gp.spatial + 2);
  const bool is_input = node->op == FTH_OP_CONV2D_GRAD_INPUT || node->op == FTH_OP_CONV1D_GRAD_INPUT;
  if (is_input) {
    node->out = gp.x_desc;
  } else if (gp.grad_bias) {
    node->out = (FthTensorDesc){.dtype = FTH_F32, .ndim = 1, .bdim = -1, .shape = {dy->shape[1]}};
  } else {
    node->out = (FthTensorDesc){.dtype = FTH_F32, .ndim = gp.spatial + 2, .bdim = -1};
    node->out.shape[0] = dy->shape[1];
    node->out.shape[1] = gp.x_desc.shape[1] / gp.p.groups;
    if (gp.spatial == 2)
      node->out.shape[2] = gp.k_h;
    node->out.shape[gp.spatial + 1] = gp.k_w;
  }
  node->n_aux = 0;
  return FTH_STATUS_OK;
}

static void conv_grad_sizes(const FthNode *node, FthConvShape *s, FthConvEpilogue *ep,
                            size_t *per_worker, size_t *partial_len) {
  ConvGradParams gp = grad_params(node->params);
  grad_shape(&gp, 1, s);
  s->out_c = (int)node->in[0]->out.shape[1];
  const char *why;
  fth_conv2d_shape_check(s, &why);
  *ep = (FthConvEpilogue){.relu = gp.p.act == FTH_ACT_RELU, .pool2 = gp.p.max_pool2};
  const bool is_input = node->op == FTH_OP_CONV2D_GRAD_INPUT || node->op == FTH_OP_CONV1D_GRAD_INPUT;
  *partial_len = 0;
  if (!is_input)
    *partial_len = round_floats(gp.grad_bias ? (size_t)s->out_c
                                             : (size_t)s->out_c * (s->in_c / s->groups) * s->k_h *
                                                   s->k_w);
  *per_worker = round_floats(fth_conv2d_backward_scratch_floats(s, ep)) + *partial_len;
}

static void conv_grad_scratch(const FthNode *node, int n_threads, size_t *fixed,
                              size_t *per_sample) {
  FthConvShape s;
  FthConvEpilogue ep;
  size_t per_worker, partial_len;
  conv_grad_sizes(node, &s, &ep, &per_worker, &partial_len);
  *fixed = (size_t)n_threads * per_worker * sizeof(float);
  *per_sample = 0;
}

static void conv_grad_chunk(void *vctx, size_t begin, size_t end, int worker) {
  ConvRun *r = vctx;
  if (r->partial_len) {
    /* Weight or bias: index t of [begin, end) owns the fixed image range t of n_parts and its
     * own partial, so the sums do not depend on which worker ran what (bit-exact repeats). */
    for (size_t t = begin; t < end; t++) {
      float *scratch = r->scratch + t * r->per_worker;
      float *part = scratch + r->per_worker - r->partial_len;
      int i0 = (int)(t * (size_t)r->s.batch / r->n_parts);
      int i1 = (int)((t + 1) * (size_t)r->s.batch / r->n_parts);
      fth_conv2d_backward(&r->s, &r->ep, r->x, NULL, r->y, r->dy, NULL,
                          r->grad_bias ? NULL : part, r->grad_bias ? part : NULL, scratch, i0, i1);
    }
  } else {
    float *scratch = r->scratch + (size_t)worker * r->per_worker;
    fth_conv2d_backward(&r->s, &r->ep, NULL, r->w, r->y, r->dy, r->out, NULL, NULL, scratch,
                        (int)begin, (int)end);
  }
}

static FthStatus conv_grad_forward(const FthKernelArgs *args) {
  const FthNode *node = args->node;
  ConvGradParams gp = grad_params(args->params);
  ConvRun r = {0};
  size_t partial_len;
  conv_grad_sizes(node, &r.s, &r.ep, &r.per_worker, &partial_len);
  r.s.batch = (int)args->in[0].shape[0];
  FthStatus st = check_scratch(args, r.per_worker);
  if (st != FTH_STATUS_OK)
    return st;
  const bool is_input = node->op == FTH_OP_CONV2D_GRAD_INPUT || node->op == FTH_OP_CONV1D_GRAD_INPUT;
  r.dy = args->in[0].data;
  r.scratch = args->scratch;
  r.out = args->out->data;
  const int y_index = is_input ? 2 : gp.grad_bias ? 1 : 2;
  r.y = r.ep.relu || r.ep.pool2 ? args->in[y_index].data : NULL;
  if (r.ep.pool2)
    r.ep.pool_argmax = args->in_aux[y_index][0].data;
  if (is_input) {
    r.w = args->in[1].data;
    fth_parallel_for((size_t)r.s.batch, 1, conv_grad_chunk, &r);
    return FTH_STATUS_OK;
  }
  /* Weight or bias: the batch is split into one fixed image range per pool thread, each summed
   * into its own partial, and the partials are added in range order. */
  r.x = gp.grad_bias ? NULL : args->in[1].data;
  r.partial_len = partial_len;
  r.grad_bias = gp.grad_bias;
  const int workers = fth_thread_count();
  for (int t = 0; t < workers; t++)
    memset(r.scratch + (size_t)t * r.per_worker + r.per_worker - partial_len, 0,
           partial_len * sizeof(float));
  r.n_parts = (size_t)workers;
  fth_parallel_for(r.n_parts, 1, conv_grad_chunk, &r);
  const size_t n_out = (size_t)fth_tensor_numel(args->out);
  memset(r.out, 0, n_out * sizeof(float));
  for (int t = 0; t < workers; t++) {
    const float *part = r.scratch + (size_t)t * r.per_worker + r.per_worker - partial_len;
    for (size_t i = 0; i < n_out; i++)
      r.out[i] += part[i];
  }
  return FTH_STATUS_OK;
}

/* ---- builders -------------------------------------------------------------------------------- */

FthNode *fth_conv1d(FthGraph *g, FthNode *x, FthNode *w, FthNode *b, const FthConv1dParams *p) {
  if (!p)
    return fth_graph_fail(g, FTH_STATUS_INVALID_ARGUMENT, "conv1d: params are required");
  FthNode *in[3] = {x, w, b};
  return fth_graph_add_node(g, FTH_OP_CONV1D, in, b ? 3 : 2, p, sizeof *p);
}

FthNode *fth_conv2d(FthGraph *g, FthNode *x, FthNode *w, FthNode *b, const FthConv2dParams *p) {
  if (!p)
    return fth_graph_fail(g, FTH_STATUS_INVALID_ARGUMENT, "conv2d: params are required");
  FthNode *in[3] = {x, w, b};
  return fth_graph_add_node(g, FTH_OP_CONV2D, in, b ? 3 : 2, p, sizeof *p);
}

void fth_ops_register_conv(FthOpDef *table) {
  static const FthOpDef conv = {
      .infer = conv_infer, .forward = conv_forward, .backward = conv_backward_rule,
      .scratch = conv_scratch};
  static const FthOpDef grad = {
      .infer = conv_grad_infer, .forward = conv_grad_forward, .scratch = conv_grad_scratch};
  table[FTH_OP_CONV1D] = conv;
  table[FTH_OP_CONV2D] = conv;
  table[FTH_OP_CONV1D_GRAD_INPUT] = grad;
  table[FTH_OP_CONV1D_GRAD_WEIGHT] = grad;
  table[FTH_OP_CONV2D_GRAD_INPUT] = grad;
  table[FTH_OP_CONV2D_GRAD_WEIGHT] = grad;
  for (FthOp op = FTH_OP_CONV1D; op <= FTH_OP_CONV2D_GRAD_WEIGHT; op++)
    table[op].name = fth_op_name(op);
}
