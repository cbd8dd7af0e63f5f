/* Op family 'norm': batch norm over [N, C, ...] (batch statistics and a momentum update of the
 * running buffers in training, the running buffers in inference) and layer norm over the last
 * axis. Both save mean and 1/std as aux outputs for their gradients. Inputs of batch norm:
 * x, running_mean, running_var[, gamma, beta]; of layer norm: x[, gamma, beta].
 * Kernels: kernels/cpu/norm.c. */
#include "ops-private.h"

#include "conv-simd.h"
#include "norm.h"

#include <math.h>
#include <string.h>

typedef struct {
  float eps;
} LayerNormParams;

/* Gradient nodes of both: which forward, and whether gamma is the last input. */
typedef struct {
  float eps;
  int has_gamma;
} NormGradParams;

static bool is_vec(const FthTensorDesc *d, int64_t n) {
  return d->dtype == FTH_F32 && d->ndim == 1 && d->bdim == -1 && d->shape[0] == n;
}

static FthStatus batch_norm_infer(FthNode *node) {
  const FthTensorDesc *x = &node->in[0]->out;
  if (x->dtype != FTH_F32 || x->ndim < 2 || x->bdim != 0)
    return fth_error(FTH_STATUS_SHAPE_MISMATCH, "batch_norm: x must be f32 [N, C, ...], batch first");
  const int64_t C = x->shape[1];
  for (int i = 1; i < node->n_in; i++)
    if (!is_vec(&node->in[i]->out, C))
      return fth_error(FTH_STATUS_SHAPE_MISMATCH,
                       "batch_norm: running statistics, gamma and beta must be f32 [%lld]",
                       (long long)C);
  node->out = *x;
  node->n_aux = 2;
  node->aux[0] = (FthTensorDesc){.dtype = FTH_F32, .ndim = 1, .bdim = -1, .shape = {C}};
  node->aux[1] = node->aux[0];
  return FTH_STATUS_OK;
}

typedef struct {
  const FthKernelArgs *args;
  size_t N, C, S;
  float eps, momentum;
  bool training;
  const float *x, *dy, *gamma, *beta;
  float *out, *mean, *invstd, *running_mean, *running_var;
} NormRun;

static void batch_norm_chunk(void *vctx, size_t c0, size_t c1, int worker) {
  NormRun *r = vctx;
  if (r->training) {
    /* aux 1 holds the biased variance until it becomes 1/std here. */
    fth_batchnorm_stats(r->x, r->N, r->C, r->S, r->mean, r->invstd, c0, c1);
    const double count = (double)r->N * (double)r->S;
    for (size_t c = c0; c < c1; c++) {
      const double var = r->invstd[c];
      r->invstd[c] = (float)(1.0 / sqrt(var + r->eps));
      r->running_mean[c] = (1.0f - r->momentum) * r->running_mean[c] + r->momentum * r->mean[c];
      const double unbiased = count > 1.0 ? var * count / (count - 1.0) : var;
      r->running_var[c] = (float)((1.0 - r->momentum) * r->running_var[c] + r->momentum * unbiased);
    }
  } else {
    for (size_t c = c0; c < c1; c++) {
      r->mean[c] = r->running_mean[c];
      r->invstd[c] = (float)(1.0 / sqrt((double)r->running_var[c] + r->eps));
    }
  }
  fth_batchnorm_apply(r->x, r->N, r->C, r->S, r->mean, r->invstd, r->gamma, r->beta, r->out, c0, c1);
}

static void norm_dims(const FthTensor *x, size_t *N, size_t *C, size_t *S) {
  *N = (size_t)x->shape[0];
  *C = (size_t)x->shape[1];
  *S = 1;
  for (int i = 2; i < x->ndim; i++)
    *S *= (size_t)x->shape[i];
}

static FthStatus batch_norm_forward(const FthKernelArgs *args) {
  FthBatchNormParams p;
  memcpy(&p, args->params, sizeof p);
  NormRun r = {.args = args, .eps = p.eps, .momentum = p.momentum, .training = args->ctx->training};
  norm_dims(&args->in[0], &r.N, &r.C, &r.S);
  r.x = args->in[0].data;
  r.running_mean = args->in[1].data;
  r.running_var = args->in[2].data;
  r.gamma = args->n_in > 3 ? args->in[3].data : NULL;
  r.beta = args->n_in > 4 ? args->in[4].data : NULL;
  r.out = args->out->data;
  r.mean = args->aux[0].data;
  r.invstd = args->aux[1].data;
  fth_parallel_for(r.C, 1, batch_norm_chunk, &r);
  return FTH_STATUS_OK;
}

static void batch_norm_grad_chunk(void *vctx, size_t c0, size_t c1, int worker) {
  NormRun *r = vctx;
  const FthOp op = fth_node_op(r->args->node);
  if (op == FTH_OP_BATCH_NORM_GRAD_INPUT && !r->training)
    fth_batchnorm_backward_fixed(r->dy, r->N, r->C, r->S, r->invstd, r->gamma, r->out, c0, c1);
  else if (op == FTH_OP_BATCH_NORM_GRAD_INPUT)
    fth_batchnorm_backward(r->x, r->dy, r->N, r->C, r->S, r->mean, r->invstd, r->gamma, r->out,
                           NULL, NULL, c0, c1);
  else if (op == FTH_OP_BATCH_NORM_GRAD_GAMMA)
    fth_batchnorm_backward(r->x, r->dy, r->N, r->C, r->S, r->mean, r->invstd, NULL, NULL, r->out,
                           NULL, c0, c1);
  else
    for (size_t c = c0; c < c1; c++) {
      double sum = 0.0;
      for (size_t n = 0; n < r->N; n++)
        sum += fth_simd_sum(r->dy + (n * r->C + c) * r->S, r->S);
      r->out[c] = (float)sum;
    }
}

static FthStatus batch_norm_grad_forward(const FthKernelArgs *args) {
  NormGradParams gp;
  memcpy(&gp, args->params, sizeof gp);
  const FthOp op = fth_node_op(args->node);
  NormRun r = {.args = args, .training = args->ctx->training};
  norm_dims(&args->in[0], &r.N, &r.C, &r.S);
  r.dy = args->in[0].data;
  r.out = args->out->data;
  if (op != FTH_OP_BATCH_NORM_GRAD_BETA) {
    r.x = args->in[1].data;
    r.mean = args->in_aux[2][0].data;
    r.invstd = args->in_aux[2][1].data;
    r.gamma = gp.has_gamma ? args->in[3].data : NULL;
  }
  fth_parallel_for(r.C, 1, batch_norm_grad_chunk, &r);
  return FTH_STATUS_OK;
}

static FthStatus batch_norm_backward_rule(FthGraph *g, FthNode *node, FthNode *dy, FthNode **dx) {
  NormGradParams gp = {.has_gamma = node->n_in > 3};
  FthNode *in[4] = {dy, node->in[0], node, gp.has_gamma ? node->in[3] : NULL};
  if (fth_node_requires_grad(node->in[0]))
    dx[0] = fth_graph_add_node(g, FTH_OP_BATCH_NORM_GRAD_INPUT, in, gp.has_gamma ? 4 : 3, &gp,
                               sizeof gp);
  if (gp.has_gamma && fth_node_requires_grad(node->in[3]))
    dx[3] = fth_graph_add_node(g, FTH_OP_BATCH_NORM_GRAD_GAMMA, in, 3, &gp, sizeof gp);
  if (node->n_in > 4 && fth_node_requires_grad(node->in[4]))
    dx[4] = fth_graph_add_node(g, FTH_OP_BATCH_NORM_GRAD_BETA, in, 1, &gp, sizeof gp);
  return fth_graph_status(g);
}

/* Gradient shapes: the input's for GRAD_INPUT, [C] or [D] for gamma and beta. */
static FthStatus norm_grad_infer(FthNode *node) {
  const FthTensorDesc *dy = &node->in[0]->out;
  node->n_aux = 0;
  if (node->op == FTH_OP_BATCH_NORM_GRAD_INPUT || node->op == FTH_OP_LAYER_NORM_GRAD_INPUT) {
    node->out = *dy;
    return FTH_STATUS_OK;
  }
  const int64_t n = node->op == FTH_OP_BATCH_NORM_GRAD_GAMMA || node->op == FTH_OP_BATCH_NORM_GRAD_BETA
                        ? dy->shape[1]
                        : dy->shape[dy->ndim - 1];
  node->out = (FthTensorDesc){.dtype = FTH_F32, .ndim = 1, .bdim = -1, .shape = {n}};
  return FTH_STATUS_OK;
}

FthNode *fth_batch_norm(FthGraph *g, FthNode *x, FthNode *gamma, FthNode *beta,
                        FthNode *running_mean, FthNode *running_var, const FthBatchNormParams *p) {
  if (!p || !(p->eps > 0.0f) || !(p->momentum >= 0.0f && p->momentum <= 1.0f))
    return fth_graph_fail(g, FTH_STATUS_INVALID_ARGUMENT,
                          "batch_norm: eps must be positive and momentum in [0, 1]");
  if (!gamma != !beta)
    return fth_graph_fail(g, FTH_STATUS_INVALID_ARGUMENT,
                          "batch_norm: give both gamma and beta or neither");
  FthNode *in[5] = {x, running_mean, running_var, gamma, beta};
  return fth_graph_add_node(g, FTH_OP_BATCH_NORM, in, gamma ? 5 : 3, p, sizeof *p);
}

/* ---- layer norm ------------------------------------------------------------------------------ */

static FthStatus layer_norm_infer(FthNode *node) {
  const FthTensorDesc *x = &node->in[0]->out;
  if (x->dtype != FTH_F32 || x->ndim < 2 || x->bdim < 0 || x->bdim >= x->ndim - 1)
    return fth_error(FTH_STATUS_SHAPE_MISMATCH,
                     "layer_norm: x must be f32 with the batch in a leading dimension");
  const int64_t D = x->shape[x->ndim - 1];
  for (int i = 1; i < node->n_in; i++)
    if (!is_vec(&node->in[i]->out, D))
      return fth_error(FTH_STATUS_SHAPE_MISMATCH, "layer_norm: gamma and beta must be f32 [%lld]",
                       (long long)D);
  node->out = *x;
  node->n_aux = 2;
  node->aux[0] = *x;
  node->aux[0].ndim = x->ndim - 1;
  node->aux[1] = node->aux[0];
  return FTH_STATUS_OK;
}

typedef struct {
  size_t rows, D;
  float eps;
  const float *x, *dy, *gamma, *beta, *mean, *invstd;
  float *out, *mean_out, *invstd_out;
  FthOp op;
} LayerNormRun;

static void layer_norm_chunk(void *vctx, size_t b, size_t e, int worker) {
  LayerNormRun *r = vctx;
  switch (r->op) {
  case FTH_OP_LAYER_NORM:
    fth_layernorm_forward(r->x, r->D, r->gamma, r->beta, r->eps, r->out, r->mean_out,
                          r->invstd_out, b, e);
    break;
  case FTH_OP_LAYER_NORM_GRAD_INPUT:
    fth_layernorm_backward_input(r->x, r->dy, r->D, r->gamma, r->mean, r->invstd, r->out, b, e);
    break;
  case FTH_OP_LAYER_NORM_GRAD_GAMMA:
    fth_layernorm_backward_params(r->x, r->dy, r->rows, r->D, r->mean, r->invstd, r->out, NULL, b, e);
    break;
  default: /* beta: column sums of dy */
    for (size_t i = b; i < e; i++)
      r->out[i] = 0.0f;
    for (size_t row = 0; row < r->rows; row++)
      for (size_t i = b; i < e; i++)
        r->out[i] += r->dy[row * r->D + i];
    break;
  }
}

static FthStatus layer_norm_forward(const FthKernelArgs *args) {
  const FthOp op = fth_node_op(args->node);
  LayerNormRun r = {.op = op, .out = args->out->data};
  const FthTensor *x = &args->in[op == FTH_OP_LAYER_NORM ? 0 : op == FTH_OP_LAYER_NORM_GRAD_BETA ? 0 : 1];
  r.D = (size_t)x->shape[x->ndim - 1];
  r.rows = (size_t)fth_tensor_numel(x) / (r.D ? r.D : 1);
  size_t n_items = r.rows;
  if (op == FTH_OP_LAYER_NORM) {
    LayerNormParams p;
    memcpy(&p, args->params, sizeof p);
    r.eps = p.eps;
    r.x = x->data;
    r.gamma = args->n_in > 1 ? args->in[1].data : NULL;
    r.beta = args->n_in > 2 ? args->in[2].data : NULL;
    r.mean_out = args->aux[0].data;
    r.invstd_out = args->aux[1].data;
  } else {
    NormGradParams gp;
    memcpy(&gp, args->params, sizeof gp);
    r.dy = args->in[0].data;
    if (op != FTH_OP_LAYER_NORM_GRAD_BETA) {
      r.x = args->in[1].data;
      r.mean = args->in_aux[2][0].data;
      r.invstd = args->in_aux[2][1].data;
      r.gamma = gp.has_gamma ? args->in[3].data : NULL;
    }
    if (op != FTH_OP_LAYER_NORM_GRAD_INPUT)
      n_items = r.D; /* parameter gradients split columns, so no partial sums are needed */
  }
  const size_t grain = op == FTH_OP_LAYER_NORM || op == FTH_OP_LAYER_NORM_GRAD_INPUT
                           ? (r.D >= 1024 ? 1 : 1024 / (r.D ? r.D : 1))
                           : 16;
  fth_parallel_for(n_items, grain, layer_norm_chunk, &r);
  return FTH_STATUS_OK;
}

static FthStatus layer_norm_backward_rule(FthGraph *g, FthNode *node, FthNode *dy, FthNode **dx) {
  NormGradParams gp = {.has_gamma = node->n_in > 1};
  FthNode *in[4] = {dy, node->in[0], node, gp.has_gamma ? node->in[1] : NULL};
  if (fth_node_requires_grad(node->in[0]))
    dx[0] = fth_graph_add_node(g, FTH_OP_LAYER_NORM_GRAD_INPUT, in, gp.has_gamma ? 4 : 3, &gp,
                               sizeof gp);
  if (gp.has_gamma && fth_node_requires_grad(node->in[1]))
    dx[1] = fth_graph_add_node(g, FTH_OP_LAYER_NORM_GRAD_GAMMA, in, 3, &gp, sizeof gp);
  if (node->n_in > 2 && fth_node_requires_grad(node->in[2]))
    dx[2] = fth_graph_add_node(g, FTH_OP_LAYER_NORM_GRAD_BETA, in, 1, &gp, sizeof gp);
  return fth_graph_status(g);
}

FthNode *fth_layer_norm(FthGraph *g, FthNode *x, FthNode *gamma, FthNode *beta, float eps) {
  if (!(eps > 0.0f))
    return fth_graph_fail(g, FTH_STATUS_INVALID_ARGUMENT, "layer_norm: eps must be positive");
  if (!gamma != !beta)
    return fth_graph_fail(g, FTH_STATUS_INVALID_ARGUMENT,
                          "layer_norm: give both gamma and beta or neither");
  LayerNormParams p = {.eps = eps};
  FthNode *in[3] = {x, gamma, beta};
  return fth_graph_add_node(g, FTH_OP_LAYER_NORM, in, gamma ? 3 : 1, &p, sizeof p);
}

void fth_ops_register_norm(FthOpDef *table) {
  static const FthOpDef bn = {.infer = batch_norm_infer, .forward = batch_norm_forward,
                              .backward = batch_norm_backward_rule, .flags = FTH_OPF_WRITES_INPUTS};
  static const FthOpDef bn_grad = {.infer = norm_grad_infer, .forward = batch_norm_grad_forward};
  static const FthOpDef ln = {.infer = layer_norm_infer, .forward = layer_norm_forward,
                              .backward = layer_norm_backward_rule};
  static const FthOpDef ln_grad = {.infer = norm_grad_infer, .forward = layer_norm_forward};
  table[FTH_OP_BATCH_NORM] = bn;
  table[FTH_OP_BATCH_NORM_GRAD_INPUT] = bn_grad;
  table[FTH_OP_BATCH_NORM_GRAD_GAMMA] = bn_grad;
  table[FTH_OP_BATCH_NORM_GRAD_BETA] = bn_grad;
  table[FTH_OP_LAYER_NORM] = ln;
  table[FTH_OP_LAYER_NORM_GRAD_INPUT] = ln_grad;
  table[FTH_OP_LAYER_NORM_GRAD_GAMMA] = ln_grad;
  table[FTH_OP_LAYER_NORM_GRAD_BETA] = ln_grad;
  for (FthOp op = FTH_OP_BATCH_NORM; op <= FTH_OP_LAYER_NORM_GRAD_BETA; op++)
    table[op].name = fth_op_name(op);
}
