/* Sum and mean over one axis or over everything. */
#include "ops-common.h"

typedef struct {
  int axis; /* FTH_ALL_AXES or a normalized axis */
  bool keepdim;
} ReduceParams;

static FthStatus reduce_infer(FthNode *node) {
  const ReduceParams *p = (const ReduceParams *)node->params;
  const FthTensorDesc *x = &node->in[0]->out;
  FthStatus st = fth_require_f32(node, 0);
  if (st != FTH_STATUS_OK)
    return st;
  if (p->axis == FTH_ALL_AXES) {
    node->out = (FthTensorDesc){.dtype = FTH_F32, .ndim = 0, .bdim = -1};
    return FTH_STATUS_OK;
  }
  if (p->axis < 0 || p->axis >= x->ndim)
    return fth_error(FTH_STATUS_INVALID_ARGUMENT, "%s: axis out of range", fth_op_name(node->op));
  FthTensorDesc o = {.dtype = FTH_F32, .bdim = -1};
  for (int d = 0; d < x->ndim; d++) {
    if (d == p->axis && !p->keepdim)
      continue;
    if (d == x->bdim && d != p->axis)
      o.bdim = o.ndim;
    o.shape[o.ndim++] = d == p->axis ? 1 : x->shape[d];
  }
  node->out = o;
  return FTH_STATUS_OK;
}

static FthStatus reduce_forward(const FthKernelArgs *args) {
  const ReduceParams *p = args->params;
  const FthTensor *x = &args->in[0];
  const float *xv = x->data;
  float *y = fth_out_f32(args);
  bool mean = args->node->op == FTH_OP_MEAN;
  size_t n = fth_numel(x);
  if (p->axis == FTH_ALL_AXES) {
    double s = fth_k_sum(xv, n);
    y[0] = (float)(mean && n ? s / (double)n : s);
    return FTH_STATUS_OK;
  }
  size_t outer = 1, inner = 1, len = (size_t)x->shape[p->axis];
  for (int d = 0; d < p->axis; d++)
    outer *= (size_t)x->shape[d];
  for (int d = p->axis + 1; d < x->ndim; d++)
    inner *= (size_t)x->shape[d];
  float f = mean && len ? 1.0f / (float)len : 1.0f;
  for (size_t a = 0; a < outer; a++) {
    float *yr = y + a * inner;
    fth_k_sum_rows(xv + a * len * inner, yr, len, inner, false);
    for (size_t i = 0; i < inner; i++)
      yr[i] *= f;
  }
  return FTH_STATUS_OK;
}

static FthStatus reduce_backward(FthGraph *g, FthNode *node, FthNode *dy, FthNode **dx) {
  const ReduceParams *p = (const ReduceParams *)node->params;
  FthBroadcastParams b = {node->in[0]->out, p->axis, node->op == FTH_OP_MEAN};
  dx[0] = fth_graph_add_node(g, FTH_OP_BROADCAST_TO, &dy, 1, &b, sizeof b);
  return fth_graph_status(g);
}

static FthNode *reduce(FthGraph *g, FthOp op, FthNode *x, int axis, bool keepdim) {
  if (!x)
    return NULL;
  ReduceParams p = {axis == FTH_ALL_AXES ? FTH_ALL_AXES : fth_axis(axis, x->out.ndim), keepdim};
  if (p.axis == -1)
    return fth_graph_fail(g, FTH_STATUS_INVALID_ARGUMENT, "%s: axis %d out of range", fth_op_name(op), axis);
  return fth_graph_add_node(g, op, &x, 1, &p, sizeof p);
}

FthNode *fth_sum(FthGraph *g, FthNode *x, int axis, bool keepdim) {
  return reduce(g, FTH_OP_SUM, x, axis, keepdim);
}

FthNode *fth_mean(FthGraph *g, FthNode *x, int axis, bool keepdim) {
  return reduce(g, FTH_OP_MEAN, x, axis, keepdim);
}

void fth_ops_register_reduce(FthOpDef *table) {
  table[FTH_OP_SUM] = (FthOpDef){.name = "sum", .infer = reduce_infer, .forward = reduce_forward,
                                 .backward = reduce_backward};
  table[FTH_OP_MEAN] = (FthOpDef){.name = "mean", .infer = reduce_infer, .forward = reduce_forward,
                                  .backward = reduce_backward};
}
