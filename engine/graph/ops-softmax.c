/* Softmax and log-softmax over any axis, and their gradients. */
#include "ops-common.h"

#include <math.h>

typedef struct {
  int axis;
} SoftmaxParams;

static FthStatus softmax_infer(FthNode *node) {
  const SoftmaxParams *p = (const SoftmaxParams *)node->params;
  for (int i = 0; i < node->n_in; i++) {
    FthStatus st = fth_require_f32(node, i);
    if (st != FTH_STATUS_OK)
      return st;
  }
  if (p->axis < 0 || p->axis >= node->in[0]->out.ndim || p->axis == node->in[0]->out.bdim)
    return fth_error(FTH_STATUS_INVALID_ARGUMENT, "%s: bad axis (or the batch axis)", fth_op_name(node->op));
  fth_desc_like(node, 0);
  return FTH_STATUS_OK;
}

typedef struct {
  FthOp op;
  const float *x, *y, *dy;
  float *out;
  size_t len, inner;
} SoftmaxJob;

/* One softmax row of `len` values `inner` apart. */
static void row_strided(const SoftmaxJob *j, size_t base) {
  size_t len = j->len, st = j->inner;
  float *o = j->out + base;
  if (j->op == FTH_OP_SOFTMAX || j->op == FTH_OP_LOG_SOFTMAX) {
    const float *x = j->x + base;
    float m = -INFINITY;
    for (size_t c = 0; c < len; c++)
      m = x[c * st] > m ? x[c * st] : m;
    float s = 0.0f;
    for (size_t c = 0; c < len; c++)
      s += expf(x[c * st] - m);
    float lse = m + logf(s);
    for (size_t c = 0; c < len; c++)
      o[c * st] = j->op == FTH_OP_SOFTMAX ? expf(x[c * st] - lse) : x[c * st] - lse;
    return;
  }
  const float *y = j->y + base, *dy = j->dy + base;
  float s = 0.0f;
  if (j->op == FTH_OP_SOFTMAX_GRAD) {
    for (size_t c = 0; c < len; c++)
      s += dy[c * st] * y[c * st];
    for (size_t c = 0; c < len; c++)
      o[c * st] = y[c * st] * (dy[c * st] - s);
  } else {
    for (size_t c = 0; c < len; c++)
      s += dy[c * st];
    for (size_t c = 0; c < len; c++)
      o[c * st] = dy[c * st] - expf(y[c * st]) * s;
  }
}

static void softmax_rows(void *ctx, size_t begin, size_t end, int worker) {
  (void)worker;
  const SoftmaxJob *j = ctx;
  if (j->inner == 1 && j->op == FTH_OP_SOFTMAX) {
    fth_k_softmax_rows(j->x + begin * j->len, j->out + begin * j->len, end - begin, j->len);
    return;
  }
  if (j->inner == 1 && j->op == FTH_OP_LOG_SOFTMAX) {
    fth_k_log_softmax_rows(j->x + begin * j->len, j->out + begin * j->len, end - begin, j->len);
    return;
  }
  for (size_t r = begin; r < end; r++) {
    size_t outer = r / j->inner, in = r % j->inner;
    row_strided(j, outer * j->len * j->inner + in);
  }
}

static FthStatus softmax_forward(const FthKernelArgs *args) {
  const SoftmaxParams *p = args->params;
  const FthTensor *o = args->out;
  SoftmaxJob j = {.op = args->node->op, .out = fth_out_f32(args), .len = (size_t)o->shape[p->axis], .inner = 1};
  for (int d = p->axis + 1; d < o->ndim; d++)
    j.inner *= (size_t)o->shape[d];
  if (j.op == FTH_OP_SOFTMAX || j.op == FTH_OP_LOG_SOFTMAX) {
    j.x = fth_in_f32(args, 0);
  } else {
    j.dy = fth_in_f32(args, 0);
    j.y = fth_in_f32(args, 1);
  }
  size_t rows = j.len ? fth_numel(o) / j.len : 0;
  fth_parallel_for(rows, FTH_ELEMENTWISE_GRAIN / (j.len ? j.len : 1) + 1, softmax_rows, &j);
  return FTH_STATUS_OK;
}

static FthStatus softmax_backward(FthGraph *g, FthNode *node, FthNode *dy, FthNode **dx) {
  FthNode *in[2] = {dy, node};
  dx[0] = fth_graph_add_node(g, node->op == FTH_OP_SOFTMAX ? FTH_OP_SOFTMAX_GRAD : FTH_OP_LOG_SOFTMAX_GRAD,
                             in, 2, node->params, node->params_size);
  return fth_graph_status(g);
}

static FthNode *softmax_node(FthGraph *g, FthOp op, FthNode *x, int axis) {
  if (!x)
    return NULL;
  SoftmaxParams p = {fth_axis(axis, x->out.ndim)};
  return fth_graph_add_node(g, op, &x, 1, &p, sizeof p);
}

FthNode *fth_softmax(FthGraph *g, FthNode *x, int axis) {
  return softmax_node(g, FTH_OP_SOFTMAX, x, axis);
}

FthNode *fth_log_softmax(FthGraph *g, FthNode *x, int axis) {
  return softmax_node(g, FTH_OP_LOG_SOFTMAX, x, axis);
}

void fth_ops_register_softmax(FthOpDef *table) {
  table[FTH_OP_SOFTMAX] = (FthOpDef){.name = "softmax", .infer = softmax_infer, .forward = softmax_forward,
                                     .backward = softmax_backward};
  table[FTH_OP_LOG_SOFTMAX] = (FthOpDef){.name = "log_softmax", .infer = softmax_infer,
                                         .forward = softmax_forward, .backward = softmax_backward};
  table[FTH_OP_SOFTMAX_GRAD] = (FthOpDef){.name = "softmax_grad", .infer = softmax_infer,
                                          .forward = softmax_forward};
  table[FTH_OP_LOG_SOFTMAX_GRAD] = (FthOpDef){.name = "log_softmax_grad", .infer = softmax_infer,
                                              .forward = softmax_forward};
}
