/* Losses with mean reduction: cross-entropy (label smoothing, class weights, ignore index), BCE
 * with logits (pos_weight), MSE. Per-row terms go to scratch and are summed in double in a fixed
 * order, so the loss does not depend on the thread count. */
#include "ops-common.h"

#include <math.h>
#include <stdatomic.h>

/* ---- cross-entropy -------------------------------------------------------------------------- */

static FthStatus ce_infer(FthNode *node) {
  bool grad = node->op == FTH_OP_CROSS_ENTROPY_GRAD;
  int base = grad ? 1 : 0; /* the gradient node's inputs: dy, logits, targets, [weights] */
  const FthTensorDesc *x = &node->in[base]->out, *t = &node->in[base + 1]->out;
  if (x->dtype != FTH_F32 || x->ndim != 2)
    return fth_error(FTH_STATUS_SHAPE_MISMATCH, "cross_entropy: logits must be f32 [N, C]");
  if (t->dtype != FTH_I32 || t->ndim != 1 || t->shape[0] != x->shape[0] || t->bdim != (x->bdim == 0 ? 0 : -1))
    return fth_error(FTH_STATUS_SHAPE_MISMATCH, "cross_entropy: targets must be i32 [N]");
  if (x->bdim == 1)
    return fth_error(FTH_STATUS_SHAPE_MISMATCH, "cross_entropy: classes on the batch axis");
  if (node->n_in > base + 2) {
    const FthTensorDesc *w = &node->in[base + 2]->out;
    if (w->dtype != FTH_F32 || w->ndim != 1 || w->shape[0] != x->shape[1] || w->bdim >= 0)
      return fth_error(FTH_STATUS_SHAPE_MISMATCH, "cross_entropy: class weights must be f32 [C]");
  }
  if (grad)
    node->out = *x;
  else
    node->out = (FthTensorDesc){.dtype = FTH_F32, .ndim = 0, .bdim = -1};
  return FTH_STATUS_OK;
}

static void ce_scratch(const FthNode *node, int n_threads, size_t *fixed, size_t *per_sample) {
  (void)n_threads;
  int base = node->op == FTH_OP_CROSS_ENTROPY_GRAD ? 1 : 0;
  const FthTensorDesc *x = &node->in[base]->out;
  size_t rows = (size_t)x->shape[0] * 2 * sizeof(double); /* per row: weighted loss, weight */
  *fixed = x->bdim >= 0 ? 0 : rows;
  *per_sample = x->bdim >= 0 ? rows : 0;
}

typedef struct {
  const FthCrossEntropyParams *p;
  const float *x, *w;
  const int32_t *t;
  float *dx;      /* gradient output, or NULL for the forward */
  double *terms;  /* per row: loss term, weight */
  size_t cols;
  float scale;    /* dy / total weight, for the gradient */
  atomic_int bad_target;
} CeJob;

static void ce_rows(void *ctx, size_t begin, size_t end, int worker) {
  (void)worker;
  CeJob *j = ctx;
  size_t C = j->cols;
  float eps = j->p->label_smoothing;
  double sw = 0.0;
  if (j->w)
    for (size_t c = 0; c < C; c++)
      sw += j->w[c];
  else
    sw = (double)C;
  for (size_t r = begin; r < end; r++) {
    const float *x = j->x + r * C;
    int32_t t = j->t[r];
    if (t == j->p->ignore_index && t != FTH_NO_IGNORE_INDEX) {
      j->terms[2 * r] = j->terms[2 * r + 1] = 0.0;
      if (j->dx)
        for (size_t c = 0; c < C; c++)
          j->dx[r * C + c] = 0.0f;
      continue;
    }
    if (t < 0 || (size_t)t >= C) {
      atomic_store(&j->bad_target, 1);
      j->terms[2 * r] = j->terms[2 * r + 1] = 0.0;
      continue;
    }
    double m = -INFINITY;
    for (size_t c = 0; c < C; c++)
      m = x[c] > m ? x[c] : m;
    double s = 0.0;
    for (size_t c = 0; c < C; c++)
      s += exp(x[c] - m);
    double lse = m + log(s);
    double wt = j->w ? j->w[t] : 1.0;
    if (!j->dx) {
      double smooth = 0.0;
      for (size_t c = 0; c < C; c++)
        smooth += (j->w ? j->w[c] : 1.0) * (lse - x[c]);
      j->terms[2 * r] = (1.0 - eps) * wt * (lse - x[t]) + eps / (double)C * smooth;
      j->terms[2 * r + 1] = wt;
    } else {
      for (size_t c = 0; c < C; c++) {
        double pc = exp(x[c] - lse);
        double wc = j->w ? j->w[c] : 1.0;
        double gr = (1.0 - eps) * wt * (pc - (c == (size_t)t)) + eps / (double)C * (sw * pc - wc);
        j->dx[r * C + c] = (float)gr * j->scale;
      }
    }
  }
}

static FthStatus ce_forward(const FthKernelArgs *args) {
  bool grad = args->node->op == FTH_OP_CROSS_ENTROPY_GRAD;
  int base = grad ? 1 : 0;
  const FthTensor *x = &args->in[base];
  size_t N = (size_t)x->shape[0];
  CeJob j = {.p = args->params, .x = x->data, .t = args->in[base + 1].data,
             .w = args->n_in > base + 2 ? args->in[base + 2].data : NULL, .terms = args->scratch,
             .cols = (size_t)x->shape[1]};
  atomic_init(&j.bad_target, 0);
  /* the total weight is needed by both directions: the forward pass computes it row-wise */
  fth_parallel_for(N, 64, ce_rows, &j);
  if (atomic_load(&j.bad_target))
    return fth_error(FTH_STATUS_INVALID_ARGUMENT, "cross_entropy: a target is outside 0..%zu", j.cols - 1);
  double loss = 0.0, wsum = 0.0;
  for (size_t r = 0; r < N; r++) {
    loss += j.terms[2 * r];
    wsum += j.terms[2 * r + 1];
  }
  if (!grad) {
    *fth_out_f32(args) = wsum > 0.0 ? (float)(loss / wsum) : 0.0f;
    return FTH_STATUS_OK;
  }
  j.dx = fth_out_f32(args);
  j.scale = wsum > 0.0 ? (float)(fth_in_f32(args, 0)[0] / wsum) : 0.0f;
  fth_parallel_for(N, 64, ce_rows, &j);
  return FTH_STATUS_OK;
}

static FthStatus ce_backward(FthGraph *g, FthNode *node, FthNode *dy, FthNode **dx) {
  FthNode *in[4] = {dy, node->in[0], node->in[1], node->n_in > 2 ? node->in[2] : NULL};
  dx[0] = fth_graph_add_node(g, FTH_OP_CROSS_ENTROPY_GRAD, in, node->n_in + 1, node->params, node->params_size);
  return fth_graph_status(g);
}

FthNode *fth_cross_entropy(FthGraph *g, FthNode *logits, FthNode *targets, FthNode *class_weights,
                           const FthCrossEntropyParams *params) {
  FthCrossEntropyParams p = params ? *params : (FthCrossEntropyParams){0.0f, FTH_NO_IGNORE_INDEX};
  if (p.label_smoothing < 0.0f || p.label_smoothing > 1.0f)
    return fth_graph_fail(g, FTH_STATUS_INVALID_ARGUMENT, "cross_entropy: label smoothing outside 0..1");
  FthNode *in[3] = {logits, targets, class_weights};
  return fth_graph_add_node(g, FTH_OP_CROSS_ENTROPY, in, class_weights ? 3 : 2, &p, sizeof p);
}

/* ---- BCE with logits ------------------------------------------------------------------------- */

static FthStatus bce_infer(FthNode *node) {
  bool grad = node->op == FTH_OP_BCE_WITH_LOGITS_GRAD;
  int base = grad ? 1 : 0;
  const FthTensorDesc *x = &node->in[base]->out, *t = &node->in[base + 1]->out;
  if (x->dtype != FTH_F32 || t->dtype != FTH_F32 || !fth_desc_same_shape(x, t) || x->ndim < 1)
    return fth_error(FTH_STATUS_SHAPE_MISMATCH, "bce_with_logits: logits and targets must be f32 of one shape");
  if (node->n_in > base + 2) {
    const FthTensorDesc *w = &node->in[base + 2]->out;
    if (w->dtype != FTH_F32 || w->ndim != 1 || w->shape[0] != x->shape[x->ndim - 1] || w->bdim >= 0 ||
        x->bdim == x->ndim - 1)
      return fth_error(FTH_STATUS_SHAPE_MISMATCH, "bce_with_logits: pos_weight must be f32 [last dim]");
  }
  node->out = grad ? *x : (FthTensorDesc){.dtype = FTH_F32, .ndim = 0, .bdim = -1};
  return FTH_STATUS_OK;
}

static FthStatus bce_forward(const FthKernelArgs *args) {
  bool grad = args->node->op == FTH_OP_BCE_WITH_LOGITS_GRAD;
  int base = grad ? 1 : 0;
  const FthTensor *xt = &args->in[base];
  const float *x = xt->data, *t = args->in[base + 1].data;
  const float *pw = args->n_in > base + 2 ? args->in[base + 2].data : NULL;
  size_t n = fth_numel(xt), last = (size_t)xt->shape[xt->ndim - 1];
  if (!grad) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) {
      double l = 1.0 + (pw ? (double)pw[i % last] - 1.0 : 0.0) * t[i];
      double sp = log1p(exp(-fabs((double)x[i]))) + fmax(-(double)x[i], 0.0); /* softplus(-x) */
      s += (1.0 - t[i]) * x[i] + l * sp;
    }
    *fth_out_f32(args) = n ? (float)(s / (double)n) : 0.0f;
    return FTH_STATUS_OK;
  }
  float scale = n ? fth_in_f32(args, 0)[0] / (float)n : 0.0f;
  float *dx = fth_out_f32(args);
  for (size_t i = 0; i < n; i++) {
    float l = 1.0f + (pw ? pw[i % last] - 1.0f : 0.0f) * t[i];
    float sig = 1.0f / (1.0f + expf(-x[i]));
    dx[i] = scale * ((1.0f - t[i]) - l * (1.0f - sig));
  }
  return FTH_STATUS_OK;
}

static FthStatus bce_backward(FthGraph *g, FthNode *node, FthNode *dy, FthNode **dx) {
  FthNode *in[4] = {dy, node->in[0], node->in[1], node->n_in > 2 ? node->in[2] : NULL};
  dx[0] = fth_graph_add_node(g, FTH_OP_BCE_WITH_LOGITS_GRAD, in, node->n_in + 1, NULL, 0);
  return fth_graph_status(g);
}

FthNode *fth_bce_with_logits(FthGraph *g, FthNode *logits, FthNode *targets, FthNode *pos_weight) {
  FthNode *in[3] = {logits, targets, pos_weight};
  return fth_graph_add_node(g, FTH_OP_BCE_WITH_LOGITS, in, pos_weight ? 3 : 2, NULL, 0);
}

/* ---- MSE -------------------------------------------------------------------------------------- */

static FthStatus mse_infer(FthNode *node) {
  bool grad = node->op == FTH_OP_MSE_GRAD;
  int base = grad ? 1 : 0;
  const FthTensorDesc *p = &node->in[base]->out, *t = &node->in[base + 1]->out;
  if (p->dtype != FTH_F32 || t->dtype != FTH_F32 || !fth_desc_same_shape(p, t))
    return fth_error(FTH_STATUS_SHAPE_MISMATCH, "mse: prediction and target must be f32 of one shape");
  node->out = grad ? *p : (FthTensorDesc){.dtype = FTH_F32, .ndim = 0, .bdim = -1};
  return FTH_STATUS_OK;
}

static FthStatus mse_forward(const FthKernelArgs *args) {
  bool grad = args->node->op == FTH_OP_MSE_GRAD;
  int base = grad ? 1 : 0;
  const float *p = args->in[base].data, *t = args->in[base + 1].data;
  size_t n = fth_numel(&args->in[base]);
  if (!grad) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
      s += ((double)p[i] - t[i]) * ((double)p[i] - t[i]);
    *fth_out_f32(args) = n ? (float)(s / (double)n) : 0.0f;
    return FTH_STATUS_OK;
  }
  float scale = n ? 2.0f * fth_in_f32(args, 0)[0] / (float)n : 0.0f;
  float *dx = fth_out_f32(args);
  for (size_t i = 0; i < n; i++)
    dx[i] = scale * (p[i] - t[i]);
  return FTH_STATUS_OK;
}

static FthStatus mse_backward(FthGraph *g, FthNode *node, FthNode *dy, FthNode **dx) {
  FthNode *in[3] = {dy, node->in[0], node->in[1]};
  FthNode *dp = fth_graph_add_node(g, FTH_OP_MSE_GRAD, in, 3, NULL, 0);
  if (fth_node_requires_grad(node->in[0]))
    dx[0] = dp;
  if (fth_node_requires_grad(node->in[1]))
    dx[1] = fth_scale(g, dp, -1.0f, 0.0f);
  return fth_graph_status(g);
}

FthNode *fth_mse(FthGraph *g, FthNode *pred, FthNode *target) {
  FthNode *in[2] = {pred, target};
  return fth_graph_add_node(g, FTH_OP_MSE, in, 2, NULL, 0);
}

void fth_ops_register_loss(FthOpDef *table) {
  table[FTH_OP_CROSS_ENTROPY] = (FthOpDef){.name = "cross_entropy", .infer = ce_infer, .forward = ce_forward,
                                           .backward = ce_backward, .scratch = ce_scratch};
  table[FTH_OP_CROSS_ENTROPY_GRAD] = (FthOpDef){.name = "cross_entropy_grad", .infer = ce_infer,
                                                .forward = ce_forward, .scratch = ce_scratch};
  table[FTH_OP_BCE_WITH_LOGITS] = (FthOpDef){.name = "bce_with_logits", .infer = bce_infer,
                                             .forward = bce_forward, .backward = bce_backward};
  table[FTH_OP_BCE_WITH_LOGITS_GRAD] = (FthOpDef){.name = "bce_with_logits_grad", .infer = bce_infer,
                                                  .forward = bce_forward};
  table[FTH_OP_MSE] = (FthOpDef){.name = "mse", .infer = mse_infer, .forward = mse_forward,
                                 .backward = mse_backward};
  table[FTH_OP_MSE_GRAD] = (FthOpDef){.name = "mse_grad", .infer = mse_infer, .forward = mse_forward};
}
