/* Op family 'pool': max, average and global average pooling over [N, C, H, W] (1-D pooling is
 * the H == 1 case with a kernel height of 1). Max pooling saves the argmax (flat index in the
 * input plane) as aux 0 for its gradient. Kernels: kernels/cpu/pool.c. */
#include "ops-private.h"

#include "pool.h"

#include <string.h>

typedef struct {
  FthPool2dParams p;
  FthTensorDesc x_desc; /* the forward input: the gradient's shape */
} PoolGradParams;

static void pool_shape(const FthPool2dParams *p, const int64_t *x, FthPoolShape *s) {
  *s = (FthPoolShape){.in_h = (int)x[2],
                      .in_w = (int)x[3],
                      .k_h = p->kernel[0],
                      .k_w = p->kernel[1],
                      .stride_h = p->stride[0],
                      .stride_w = p->stride[1],
                      .pad_h = p->padding[0],
                      .pad_w = p->padding[1]};
}

static FthStatus check_input(const FthNode *node) {
  const FthTensorDesc *x = &node->in[0]->out;
  if (node->n_in != 1 || x->dtype != FTH_F32 || x->ndim != 4 || x->bdim != 0)
    return fth_error(FTH_STATUS_SHAPE_MISMATCH, "%s: x must be f32 [N, C, H, W] with the batch first",
                     fth_op_name(node->op));
  return FTH_STATUS_OK;
}

static FthStatus pool_infer(FthNode *node) {
  FthStatus st = check_input(node);
  if (st != FTH_STATUS_OK)
    return st;
  const FthTensorDesc *x = &node->in[0]->out;
  node->out = *x;
  node->n_aux = 0;
  if (node->op == FTH_OP_GLOBAL_AVG_POOL2D) {
    node->out.ndim = 2;
    return FTH_STATUS_OK;
  }
  FthPool2dParams p;
  memcpy(&p, node->params, sizeof p);
  FthPoolShape s;
  pool_shape(&p, x->shape, &s);
  const char *why;
  if (fth_pool2d_shape_check(&s, &why) != 0)
    return fth_error(FTH_STATUS_SHAPE_MISMATCH, "%s: %s", fth_op_name(node->op), why);
  node->out.shape[2] = s.out_h;
  node->out.shape[3] = s.out_w;
  if (node->op == FTH_OP_MAX_POOL2D) {
    node->n_aux = 1;
    node->aux[0] = node->out;
    node->aux[0].dtype = FTH_I32;
  }
  return FTH_STATUS_OK;
}

typedef struct {
  FthPoolShape s;
  int count_include_pad;
  FthOp op;
  const float *in;
  const int32_t *argmax_in;
  float *out;
  int32_t *argmax_out;
  size_t plane;
} PoolRun;

static void pool_chunk(void *vctx, size_t begin, size_t end, int worker) {
  PoolRun *r = vctx;
  switch (r->op) {
  case FTH_OP_MAX_POOL2D:
    fth_maxpool2d_forward(&r->s, r->in, r->out, r->argmax_out, begin, end);
    break;
  case FTH_OP_MAX_POOL2D_GRAD:
    fth_maxpool2d_backward(&r->s, r->in, r->argmax_in, r->out, begin, end);
    break;
  case FTH_OP_AVG_POOL2D:
    fth_avgpool2d_forward(&r->s, r->count_include_pad, r->in, r->out, begin, end);
    break;
  case FTH_OP_AVG_POOL2D_GRAD:
    fth_avgpool2d_backward(&r->s, r->count_include_pad, r->in, r->out, begin, end);
    break;
  case FTH_OP_GLOBAL_AVG_POOL2D:
    fth_global_avgpool_forward(r->in, r->out, r->plane, begin, end);
    break;
  default:
    fth_global_avgpool_backward(r->in, r->out, r->plane, begin, end);
    break;
  }
}

static FthStatus pool_forward(const FthKernelArgs *args) {
  const FthOp op = fth_node_op(args->node);
  PoolRun r = {.op = op, .in = args->in[0].data, .out = args->out->data};
  const bool is_grad = op == FTH_OP_MAX_POOL2D_GRAD || op == FTH_OP_AVG_POOL2D_GRAD ||
                       op == FTH_OP_GLOBAL_AVG_POOL2D_GRAD;
  /* Shapes: the big side is the input for the forward ops, the output for the gradients. */
  const FthTensor *big = is_grad ? args->out : &args->in[0];
  const size_t planes = (size_t)(big->shape[0] * big->shape[1]);
  FthPool2dParams p = {0};
  if (is_grad) {
    PoolGradParams gp;
    memcpy(&gp, args->params, sizeof gp);
    p = gp.p;
  } else if (op != FTH_OP_GLOBAL_AVG_POOL2D) {
    memcpy(&p, args->params, sizeof p);
  }
  r.plane = (size_t)(big->shape[2] * big->shape[3]);
  if (op != FTH_OP_GLOBAL_AVG_POOL2D && op != FTH_OP_GLOBAL_AVG_POOL2D_GRAD) {
    pool_shape(&p, big->shape, &r.s);
    const char *why;
    if (fth_pool2d_shape_check(&r.s, &why) != 0)
      return fth_error(FTH_STATUS_SHAPE_MISMATCH, "%s: %s", fth_op_name(op), why);
    r.count_include_pad = p.count_include_pad;
  }
  /* Only a training run has a gradient that reads the argmax. */
  if (op == FTH_OP_MAX_POOL2D && args->ctx->training)
    r.argmax_out = args->aux[0].data;
  if (op == FTH_OP_MAX_POOL2D_GRAD)
    r.argmax_in = args->in_aux[1][0].data;
  const size_t grain = r.plane >= 4096 ? 1 : 4096 / r.plane;
  fth_parallel_for(planes, grain, pool_chunk, &r);
  return FTH_STATUS_OK;
}

static FthStatus pool_grad_infer(FthNode *node) {
  PoolGradParams gp;
  memcpy(&gp, node->params, sizeof gp);
  node->out = gp.x_desc;
  node->n_aux = 0;
  return FTH_STATUS_OK;
}

static FthStatus pool_backward_rule(FthGraph *g, FthNode *node, FthNode *dy, FthNode **dx) {
  if (!fth_node_requires_grad(node->in[0]))
    return FTH_STATUS_OK;
  PoolGradParams gp = {.x_desc = node->in[0]->out};
  if (node->op != FTH_OP_GLOBAL_AVG_POOL2D)
    memcpy(&gp.p, node->params, sizeof gp.p);
  if (node->op == FTH_OP_MAX_POOL2D) {
    FthNode *in[2] = {dy, node}; /* the argmax is the forward node's aux 0 */
    dx[0] = fth_graph_add_node(g, FTH_OP_MAX_POOL2D_GRAD, in, 2, &gp, sizeof gp);
  } else {
    const FthOp op =
        node->op == FTH_OP_AVG_POOL2D ? FTH_OP_AVG_POOL2D_GRAD : FTH_OP_GLOBAL_AVG_POOL2D_GRAD;
    dx[0] = fth_graph_add_node(g, op, &dy, 1, &gp, sizeof gp);
  }
  return fth_graph_status(g);
}

static FthNode *pool_builder(FthGraph *g, FthOp op, FthNode *x, const FthPool2dParams *p) {
  if (!p)
    return fth_graph_fail(g, FTH_STATUS_INVALID_ARGUMENT, "%s: params are required", fth_op_name(op));
  return fth_graph_add_node(g, op, &x, 1, p, sizeof *p);
}

FthNode *fth_max_pool2d(FthGraph *g, FthNode *x, const FthPool2dParams *p) {
  return pool_builder(g, FTH_OP_MAX_POOL2D, x, p);
}

FthNode *fth_avg_pool2d(FthGraph *g, FthNode *x, const FthPool2dParams *p) {
  return pool_builder(g, FTH_OP_AVG_POOL2D, x, p);
}

FthNode *fth_global_avg_pool2d(FthGraph *g, FthNode *x) {
  return fth_graph_add_node(g, FTH_OP_GLOBAL_AVG_POOL2D, &x, 1, NULL, 0);
}

void fth_ops_register_pool(FthOpDef *table) {
  static const FthOpDef fwd = {.infer = pool_infer, .forward = pool_forward,
                               .backward = pool_backward_rule};
  static const FthOpDef grad = {.infer = pool_grad_infer, .forward = pool_forward};
  table[FTH_OP_MAX_POOL2D] = fwd;
  table[FTH_OP_AVG_POOL2D] = fwd;
  table[FTH_OP_GLOBAL_AVG_POOL2D] = fwd;
  table[FTH_OP_MAX_POOL2D_GRAD] = grad;
  table[FTH_OP_AVG_POOL2D_GRAD] = grad;
  table[FTH_OP_GLOBAL_AVG_POOL2D_GRAD] = grad;
  for (FthOp op = FTH_OP_MAX_POOL2D; op <= FTH_OP_GLOBAL_AVG_POOL2D_GRAD; op++)
    table[op].name = fth_op_name(op);
}
