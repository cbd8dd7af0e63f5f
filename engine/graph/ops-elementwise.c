/* Elementwise add/sub/mul with NumPy broadcasting, scale, and the two reshaping reductions the
 * gradient rules use: SUM_TO (undo a broadcast) and BROADCAST_TO (undo a sum or mean). */
#include "ops-common.h"

#include <string.h>

FthStatus fth_require_f32(const FthNode *node, int input) {
  if (node->in[input]->out.dtype != FTH_F32)
    return fth_error(FTH_STATUS_UNSUPPORTED, "%s: input %d is %s, expected f32", fth_op_name(node->op),
                     input, fth_dtype_name(node->in[input]->out.dtype));
  return FTH_STATUS_OK;
}

/* ---- broadcasting binary ops ------------------------------------------------------------- */

static FthStatus binary_infer(FthNode *node) {
  const FthTensorDesc *a = &node->in[0]->out, *b = &node->in[1]->out;
  FthStatus st = fth_require_f32(node, 0);
  if (st == FTH_STATUS_OK)
    st = fth_require_f32(node, 1);
  if (st != FTH_STATUS_OK)
    return st;
  int nd = a->ndim > b->ndim ? a->ndim : b->ndim;
  FthTensorDesc o = {.dtype = FTH_F32, .ndim = nd, .bdim = -1};
  for (int i = 0; i < nd; i++) {
    int ia = i - (nd - a->ndim), ib = i - (nd - b->ndim);
    int64_t sa = ia >= 0 ? a->shape[ia] : 1, sb = ib >= 0 ? b->shape[ib] : 1;
    bool ba = ia >= 0 && ia == a->bdim, bb = ib >= 0 && ib == b->bdim;
    if (ba && bb) {
      if (sa != sb)
        return fth_error(FTH_STATUS_SHAPE_MISMATCH, "%s: batch dimensions differ", fth_op_name(node->op));
      o.shape[i] = sa;
      o.bdim = i;
    } else if (ba || bb) {
      int64_t other = ba ? sb : sa;
      if (other != 1)
        return fth_error(FTH_STATUS_SHAPE_MISMATCH, "%s: batch dimension %d against fixed size %lld",
                         fth_op_name(node->op), i, (long long)other);
      o.shape[i] = ba ? sa : sb;
      o.bdim = i;
    } else if (sa == sb || sa == 1 || sb == 1) {
      o.shape[i] = sa == 1 ? sb : sa;
    } else {
      return fth_error(FTH_STATUS_SHAPE_MISMATCH, "%s: dimension %d: %lld vs %lld", fth_op_name(node->op),
                       i, (long long)sa, (long long)sb);
    }
  }
  node->out = o;
  return FTH_STATUS_OK;
}

/* Strides (in elements) of `t` viewed with the output's rank, 0 on broadcast dimensions. */
static void broadcast_strides(const FthTensor *t, const FthTensor *out, int64_t *strides) {
  int off = out->ndim - t->ndim;
  for (int i = 0; i < out->ndim; i++) {
    int it = i - off;
    strides[i] = it >= 0 && t->shape[it] != 1 ? t->strides[it] : 0;
  }
}

typedef struct {
  FthOp op;
  const FthTensor *a, *b, *out;
  int64_t sa[FTH_MAX_DIMS], sb[FTH_MAX_DIMS];
  size_t inner; /* elements of the last output dimension */
} BinaryJob;

static void binary_rows(void *ctx, size_t begin, size_t end, int worker) {
  (void)worker;
  const BinaryJob *j = ctx;
  const FthTensor *o = j->out;
  int nd = o->ndim;
  const float *a = j->a->data, *b = j->b->data;
  float *y = o->data;
  int64_t sa_in = nd ? j->sa[nd - 1] : 0, sb_in = nd ? j->sb[nd - 1] : 0;
  for (size_t row = begin; row < end; row++) {
    int64_t oa = 0, ob = 0, rem = (int64_t)row;
    for (int d = nd - 2; d >= 0; d--) {
      int64_t idx = rem % o->shape[d];
      rem /= o->shape[d];
      oa += idx * j->sa[d];
      ob += idx * j->sb[d];
    }
    float *yr = y + row * j->inner;
    const float *ar = a + oa, *br = b + ob;
    size_t n = j->inner;
    if (sa_in == 1 && sb_in == 1) {
      if (j->op == FTH_OP_ADD)
        fth_k_add(ar, br, yr, n);
      else if (j->op == FTH_OP_MUL)
        fth_k_mul(ar, br, yr, n);
      else
        fth_k_sub(ar, br, yr, n);
      continue;
    }
    for (size_t i = 0; i < n; i++) {
      float va = ar[(int64_t)i * sa_in], vb = br[(int64_t)i * sb_in];
      yr[i] = j->op == FTH_OP_ADD ? va + vb : j->op == FTH_OP_MUL ? va * vb : va - vb;
    }
  }
}

static FthStatus binary_forward(const FthKernelArgs *args) {
  BinaryJob j = {.op = args->node->op, .a = &args->in[0], .b = &args->in[1], .out = args->out};
  broadcast_strides(j.a, j.out, j.sa);
  broadcast_strides(j.b, j.out, j.sb);
  j.inner = args->out->ndim ? (size_t)args->out->shape[args->out->ndim - 1] : 1;
  size_t rows = j.inner ? fth_numel(args->out) / j.inner : 0;
  size_t grain = FTH_ELEMENTWISE_GRAIN / (j.inner ? j.inner : 1) + 1;
  fth_parallel_for(rows, grain, binary_rows, &j);
  return FTH_STATUS_OK;
}

FthNode *fth_sum_to(FthGraph *g, FthNode *x, const FthTensorDesc *target) {
  if (!x)
    return NULL;
  if (fth_desc_same_shape(&x->out, target))
    return x;
  return fth_graph_add_node(g, FTH_OP_SUM_TO, &x, 1, target, sizeof *target);
}

static FthStatus binary_backward(FthGraph *g, FthNode *node, FthNode *dy, FthNode **dx) {
  FthNode *a = node->in[0], *b = node->in[1];
  if (fth_node_requires_grad(a)) {
    FthNode *d = node->op == FTH_OP_MUL ? fth_mul(g, dy, b) : dy;
    dx[0] = fth_sum_to(g, d, &a->out);
  }
  if (fth_node_requires_grad(b)) {
    FthNode *d = node->op == FTH_OP_MUL ? fth_mul(g, dy, a) : dy;
    d = fth_sum_to(g, d, &b->out);
    dx[1] = node->op == FTH_OP_SUB ? fth_scale(g, d, -1.0f, 0.0f) : d;
  }
  return fth_graph_status(g);
}

static FthNode *binary(FthGraph *g, FthOp op, FthNode *a, FthNode *b) {
  FthNode *in[2] = {a, b};
  return fth_graph_add_node(g, op, in, 2, NULL, 0);
}

FthNode *fth_add(FthGraph *g, FthNode *a, FthNode *b) {
  return binary(g, FTH_OP_ADD, a, b);
}

FthNode *fth_sub(FthGraph *g, FthNode *a, FthNode *b) {
  return binary(g, FTH_OP_SUB, a, b);
}

FthNode *fth_mul(FthGraph *g, FthNode *a, FthNode *b) {
  return binary(g, FTH_OP_MUL, a, b);
}

/* ---- scale ----------------------------------------------------------------------------------- */

typedef struct {
  float alpha, beta;
} ScaleParams;

static FthStatus unary_f32_infer(FthNode *node) {
  FthStatus st = fth_require_f32(node, 0);
  fth_desc_like(node, 0);
  return st;
}

typedef struct {
  const float *x;
  float *y;
  float alpha, beta;
} ScaleJob;

static void scale_chunk(void *ctx, size_t begin, size_t end, int worker) {
  (void)worker;
  const ScaleJob *j = ctx;
  fth_k_axpby(j->x + begin, j->alpha, j->beta, j->y + begin, end - begin);
}

static FthStatus scale_forward(const FthKernelArgs *args) {
  const ScaleParams *p = args->params;
  ScaleJob j = {fth_in_f32(args, 0), fth_out_f32(args), p->alpha, p->beta};
  fth_parallel_for(fth_numel(args->out), FTH_ELEMENTWISE_GRAIN, scale_chunk, &j);
  return FTH_STATUS_OK;
}

static FthStatus scale_backward(FthGraph *g, FthNode *node, FthNode *dy, FthNode **dx) {
  const ScaleParams *p = (const ScaleParams *)node->params;
  dx[0] = fth_scale(g, dy, p->alpha, 0.0f);
  return fth_graph_status(g);
}

FthNode *fth_scale(FthGraph *g, FthNode *x, float alpha, float beta) {
  ScaleParams p = {alpha, beta};
  return fth_graph_add_node(g, FTH_OP_SCALE, &x, 1, &p, sizeof p);
}

/* ---- SUM_TO: reduce a broadcast shape back to the target shape ------------------------- */

static FthStatus sum_to_infer(FthNode *node) {
  const FthTensorDesc *t = (const FthTensorDesc *)node->params, *x = &node->in[0]->out;
  if (t->ndim > x->ndim)
    return fth_error(FTH_STATUS_SHAPE_MISMATCH, "sum_to: target has higher rank");
  node->out = *t;
  return fth_require_f32(node, 0);
}

static FthStatus sum_to_forward(const FthKernelArgs *args) {
  const FthTensor *x = &args->in[0], *o = args->out;
  float *y = fth_out_f32(args);
  const float *xv = fth_in_f32(args, 0);
  size_t on = fth_numel(o), xn = fth_numel(x);
  /* fast path: the target is the trailing dimensions of x (a bias): sum whole rows */
  bool suffix = o->ndim <= x->ndim && on > 0;
  for (int i = 0; suffix && i < o->ndim; i++)
    suffix = o->shape[i] == x->shape[x->ndim - o->ndim + i];
  if (suffix) {
    fth_k_sum_rows(xv, y, xn / on, on, false);
    return FTH_STATUS_OK;
  }
  int64_t so[FTH_MAX_DIMS];
  broadcast_strides(o, x, so);
  memset(y, 0, on * sizeof *y);
  int nd = x->ndim;
  int64_t idx[FTH_MAX_DIMS] = {0};
  for (size_t i = 0; i < xn; i++) {
    int64_t off = 0;
    for (int d = 0; d < nd; d++)
      off += idx[d] * so[d];
    y[off] += xv[i];
    for (int d = nd - 1; d >= 0; d--) {
      if (++idx[d] < x->shape[d])
        break;
      idx[d] = 0;
    }
  }
  return FTH_STATUS_OK;
}

/* ---- BROADCAST_TO: the gradient of sum and mean ------------------------------------------ */

static FthStatus broadcast_to_infer(FthNode *node) {
  const FthBroadcastParams *p = (const FthBroadcastParams *)node->params;
  node->out = p->target;
  return fth_require_f32(node, 0);
}

static FthStatus broadcast_to_forward(const FthKernelArgs *args) {
  const FthBroadcastParams *p = args->params;
  const FthTensor *o = args->out;
  const float *dy = fth_in_f32(args, 0);
  float *y = fth_out_f32(args);
  size_t n = fth_numel(o);
  if (p->axis == FTH_ALL_AXES) {
    float v = dy[0] * (p->divide && n ? 1.0f / (float)n : 1.0f);
    for (size_t i = 0; i < n; i++)
      y[i] = v;
    return FTH_STATUS_OK;
  }
  size_t outer = 1, inner = 1, len = (size_t)o->shape[p->axis];
  for (int d = 0; d < p->axis; d++)
    outer *= (size_t)o->shape[d];
  for (int d = p->axis + 1; d < o->ndim; d++)
    inner *= (size_t)o->shape[d];
  float f = p->divide && len ? 1.0f / (float)len : 1.0f;
  for (size_t a = 0; a < outer; a++)
    for (size_t l = 0; l < len; l++)
      for (size_t i = 0; i < inner; i++)
        y[(a * len + l) * inner + i] = dy[a * inner + i] * f;
  return FTH_STATUS_OK;
}

void fth_ops_register_elementwise(FthOpDef *table) {
  FthOpDef bin = {.infer = binary_infer, .forward = binary_forward, .backward = binary_backward,
                  .flags = FTH_OPF_INPLACE};
  bin.name = "add";
  table[FTH_OP_ADD] = bin;
  bin.name = "sub";
  table[FTH_OP_SUB] = bin;
  bin.name = "mul";
  table[FTH_OP_MUL] = bin;
  table[FTH_OP_SCALE] = (FthOpDef){.name = "scale", .infer = unary_f32_infer, .forward = scale_forward,
                                   .backward = scale_backward, .flags = FTH_OPF_INPLACE};
  table[FTH_OP_SUM_TO] = (FthOpDef){.name = "sum_to", .infer = sum_to_infer, .forward = sum_to_forward};
  table[FTH_OP_BROADCAST_TO] = (FthOpDef){.name = "broadcast_to", .infer = broadcast_to_infer,
                                          .forward = broadcast_to_forward};
}
