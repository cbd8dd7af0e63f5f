/* Losses with mean reduction: cross-entropy (label smoothing, class weights, sample weights,
 * ignore index), BCE
 * with logits (pos_weight), MSE. Per-row terms go to scratch and are summed in double in a fixed
 * order, so the loss does not depend on the thread count. */
#include "ops-common.h"

#include <math.h>
#include <stdatomic.h>
#include <string.h>

/* ---- cross-entropy --------------------------------------------------------------------------
 * Logits [N, C, d...] and targets [N, d...]: a "row" is one (n, position) pair, its C logits
 * `inner` = prod(d...) apart. The forward keeps each row's log-sum-exp and weight (aux 0) and
 * the total weight (aux 1), so the fused gradient is one pass of exp(x - lse) per logit. */

/* Inputs: the forward's logits, targets, [class weights], [sample weights]; the gradient's dy,
 * forward node, logits, targets, then the same optional inputs (FthCrossEntropyNodeParams). */
static int ce_base(const FthNode *node) {
  return node->op == FTH_OP_CROSS_ENTROPY_GRAD ? 2 : 0;
}

static int64_t ce_inner(const FthTensorDesc *x) {
  int64_t inner = 1;
  for (int d = 2; d < x->ndim; d++)
    inner *= x->shape[d];
  return inner;
}

static FthStatus ce_infer(FthNode *node) {
  int base = ce_base(node);
  const FthTensorDesc *x = &node->in[base]->out, *t = &node->in[base + 1]->out;
  if (x->dtype != FTH_F32 || x->ndim < 2)
    return fth_error(FTH_STATUS_SHAPE_MISMATCH, "cross_entropy: logits must be f32 [N, C, d...]");
  if (x->bdim > 0)
    return fth_error(FTH_STATUS_SHAPE_MISMATCH, "cross_entropy: the batch must be the first logits axis");
  bool fits = t->dtype == FTH_I32 && t->ndim == x->ndim - 1 && t->bdim == x->bdim && t->shape[0] == x->shape[0];
  for (int d = 1; fits && d < t->ndim; d++)
    fits = t->shape[d] == x->shape[d + 1];
  if (!fits)
    return fth_error(FTH_STATUS_SHAPE_MISMATCH, "cross_entropy: targets must be i32 [N, d...] for logits [N, C, d...]");
  FthCrossEntropyNodeParams np;
  memcpy(&np, node->params, sizeof np);
  if (np.class_weights) {
    const FthTensorDesc *w = &node->in[base + 2]->out;
    if (w->dtype != FTH_F32 || w->ndim != 1 || w->shape[0] != x->shape[1] || w->bdim >= 0)
      return fth_error(FTH_STATUS_SHAPE_MISMATCH, "cross_entropy: class weights must be f32 [C]");
  }
  if (np.sample_weights) {
    const FthTensorDesc *s = &node->in[base + 2 + np.class_weights]->out;
    if (s->dtype != FTH_F32 || s->ndim != 1 || s->shape[0] != x->shape[0] || s->bdim != x->bdim)
      return fth_error(FTH_STATUS_SHAPE_MISMATCH,
                       "cross_entropy: sample weights must be f32 [N] for logits [N, C, d...]");
  }
  if (base) {
    node->out = *x;
    return FTH_STATUS_OK;
  }
  node->out = (FthTensorDesc){.dtype = FTH_F32, .ndim = 0, .bdim = -1};
  node->n_aux = 2;
  node->aux[0] = (FthTensorDesc){.dtype = FTH_F32, .ndim = 2, .bdim = x->bdim,
                                 .shape = {x->shape[0], 2 * ce_inner(x)}};
  node->aux[1] = (FthTensorDesc){.dtype = FTH_F32, .ndim = 1, .bdim = -1, .shape = {1}};
  return FTH_STATUS_OK;
}

/* Two doubles per row in both directions: the CPU forward keeps each row's loss term in the
 * first; the CUDA backend's kernels use both (loss and weight) and recompute in the gradient. */
static void ce_scratch(const FthNode *node, int n_threads, size_t *fixed, size_t *per_sample) {
  (void)n_threads;
  const FthTensorDesc *x = &node->in[ce_base(node)]->out;
  size_t terms = (size_t)x->shape[0] * (size_t)ce_inner(x) * 2 * sizeof(double);
  *fixed = x->bdim >= 0 ? 0 : terms;
  *per_sample = x->bdim >= 0 ? terms : 0;
}

typedef struct {
  const FthCrossEntropyParams *p;
  const float *x, *w, *s; /* logits, class weights, sample weights (NULL: all 1) */
  const int32_t *t;
  size_t classes, inner;
  float *row_stats;   /* per row: lse, weight (the forward's aux 0) */
  double *terms;      /* forward: per row loss term (stride 2, see ce_scratch) */
  double sum_w;       /* sum of the class weights (C without weights) */
  float *dx;          /* gradient */
  float scale;        /* gradient: dy / total weight */
  atomic_int bad_target;
} CeJob;

static bool ce_ignored(const CeJob *j, int32_t t) {
  return t == j->p->ignore_index && t != FTH_NO_IGNORE_INDEX;
}

static void ce_forward_rows(void *ctx, size_t begin, size_t end, int worker) {
  (void)worker;
  CeJob *j = ctx;
  size_t C = j->classes, inner = j->inner;
  float eps = j->p->label_smoothing;
  for (size_t r = begin; r < end; r++) {
    size_t n = r / inner, pos = r % inner;
    const float *x = j->x + n * C * inner + pos;
    int32_t t = j->t[r];
    j->row_stats[2 * r] = 0.0f;
    j->row_stats[2 * r + 1] = 0.0f;
    j->terms[2 * r] = 0.0;
    if (ce_ignored(j, t))
      continue;
    if (t < 0 || (size_t)t >= C) {
      atomic_store(&j->bad_target, 1);
      continue;
    }
    float m = -INFINITY;
    for (size_t c = 0; c < C; c++)
      m = x[c * inner] > m ? x[c * inner] : m;
    double s = 0.0;
    for (size_t c = 0; c < C; c++)
      s += expf(x[c * inner] - m);
    double lse = m + log(s);
    double sn = j->s ? j->s[n] : 1.0, wt = (j->w ? j->w[t] : 1.0) * sn;
    double smooth = 0.0;
    if (eps != 0.0f)
      for (size_t c = 0; c < C; c++)
        smooth += (j->w ? j->w[c] : 1.0) * (lse - x[c * inner]);
    j->terms[2 * r] = (1.0 - eps) * wt * (lse - x[(size_t)t * inner]) + sn * eps / (double)C * smooth;
    j->row_stats[2 * r] = (float)lse;
    j->row_stats[2 * r + 1] = (float)wt;
  }
}

static void ce_grad_rows(void *ctx, size_t begin, size_t end, int worker) {
  (void)worker;
  CeJob *j = ctx;
  size_t C = j->classes, inner = j->inner;
  float eps = j->p->label_smoothing;
  float smooth = eps / (float)C * j->scale, sw = (float)j->sum_w;
  for (size_t r = begin; r < end; r++) {
    size_t n = r / inner, pos = r % inner;
    const float *x = j->x + n * C * inner + pos;
    float *dx = j->dx + n * C * inner + pos;
    int32_t t = j->t[r];
    if (ce_ignored(j, t) || t < 0 || (size_t)t >= C) {
      for (size_t c = 0; c < C; c++)
        dx[c * inner] = 0.0f;
      continue;
    }
    /* the row weight (aux 0) already holds the sample weight; the smoothing term needs it too */
    float lse = j->row_stats[2 * r], hard = (1.0f - eps) * j->row_stats[2 * r + 1] * j->scale;
    float smooth_n = j->s ? smooth * j->s[n] : smooth;
    for (size_t c = 0; c < C; c++) {
      float pc = expf(x[c * inner] - lse);
      float wc = j->w ? j->w[c] : 1.0f;
      dx[c * inner] = hard * (pc - (c == (size_t)t ? 1.0f : 0.0f)) + smooth_n * (sw * pc - wc);
    }
  }
}

static void ce_job(const FthKernelArgs *args, CeJob *j) {
  int base = ce_base(args->node);
  const FthCrossEntropyNodeParams *np = args->params;
  const FthTensor *x = &args->in[base];
  *j = (CeJob){.p = &np->p, .x = x->data, .t = args->in[base + 1].data,
               .w = np->class_weights ? args->in[base + 2].data : NULL,
               .s = np->sample_weights ? args->in[base + 2 + np->class_weights].data : NULL,
               .classes = (size_t)x->shape[1], .inner = 1};
  for (int d = 2; d < x->ndim; d++)
    j->inner *= (size_t)x->shape[d];
  j->sum_w = (double)j->classes;
  if (j->w) {
    j->sum_w = 0.0;
    for (size_t c = 0; c < j->classes; c++)
      j->sum_w += j->w[c];
  }
  atomic_init(&j->bad_target, 0);
}

/* Rows per chunk: about 16k logits. */
static size_t ce_grain(const CeJob *j) {
  return 16384 / (j->classes ? j->classes : 1) + 1;
}

static FthStatus ce_forward(const FthKernelArgs *args) {
  CeJob j;
  ce_job(args, &j);
  size_t rows = (size_t)args->in[0].shape[0] * j.inner;
  j.row_stats = args->aux[0].data;
  j.terms = args->scratch;
  fth_parallel_for(rows, ce_grain(&j), ce_forward_rows, &j);
  if (atomic_load(&j.bad_target))
    return fth_error(FTH_STATUS_INVALID_ARGUMENT, "cross_entropy: a target is outside 0..%zu", j.classes - 1);
  double loss = 0.0, wsum = 0.0; /* summed in row order: independent of the thread count */
  for (size_t r = 0; r < rows; r++) {
    loss += j.terms[2 * r];
    wsum += j.row_stats[2 * r + 1];
  }
  *fth_out_f32(args) = wsum > 0.0 ? (float)(loss / wsum) : 0.0f;
  *(float *)args->aux[1].data = (float)wsum;
  return FTH_STATUS_OK;
}

static FthStatus ce_grad_forward(const FthKernelArgs *args) {
  CeJob j;
  ce_job(args, &j);
  size_t rows = (size_t)args->in[2].shape[0] * j.inner;
  const FthTensor *saved = args->in_aux[1];
  float wsum = *(const float *)saved[1].data;
  j.row_stats = saved[0].data;
  j.dx = fth_out_f32(args);
  j.scale = wsum > 0.0f ? fth_in_f32(args, 0)[0] / wsum : 0.0f;
  fth_parallel_for(rows, ce_grain(&j), ce_grad_rows, &j);
  return FTH_STATUS_OK;
}

static FthStatus ce_backward(FthGraph *g, FthNode *node, FthNode *dy, FthNode **dx) {
  FthNode *in[6] = {dy, node, node->in[0], node->in[1], node->n_in > 2 ? node->in[2] : NULL,
                    node->n_in > 3 ? node->in[3] : NULL};
  dx[0] = fth_graph_add_node(g, FTH_OP_CROSS_ENTROPY_GRAD, in, node->n_in + 2, node->params, node->params_size);
  return fth_graph_status(g);
}

FthNode *fth_cross_entropy_weighted(FthGraph *g, FthNode *logits, FthNode *targets, FthNode *class_weights,
                                    FthNode *sample_weights, const FthCrossEntropyParams *params) {
  FthCrossEntropyNodeParams p = {params ? *params : (FthCrossEntropyParams){0.0f, FTH_NO_IGNORE_INDEX},
                                 class_weights != NULL, sample_weights != NULL};
  if (p.p.label_smoothing < 0.0f || p.p.label_smoothing > 1.0f)
    return fth_graph_fail(g, FTH_STATUS_INVALID_ARGUMENT, "cross_entropy: label smoothing outside 0..1");
  FthNode *in[4] = {logits, targets};
  int n_in = 2;
  if (class_weights)
    in[n_in++] = class_weights;
  if (sample_weights)
    in[n_in++] = sample_weights;
  return fth_graph_add_node(g, FTH_OP_CROSS_ENTROPY, in, n_in, &p, sizeof p);
}

FthNode *fth_cross_entropy(FthGraph *g, FthNode *logits, FthNode *targets, FthNode *class_weights,
                           const FthCrossEntropyParams *params) {
  return fth_cross_entropy_weighted(g, logits, targets, class_weights, NULL, params);
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
                                                .forward = ce_grad_forward, .scratch = ce_scratch};
  table[FTH_OP_BCE_WITH_LOGITS] = (FthOpDef){.name = "bce_with_logits", .infer = bce_infer,
                                             .forward = bce_forward, .backward = bce_backward};
  table[FTH_OP_BCE_WITH_LOGITS_GRAD] = (FthOpDef){.name = "bce_with_logits_grad", .infer = bce_infer,
                                                  .forward = bce_forward};
  table[FTH_OP_MSE] = (FthOpDef){.name = "mse", .infer = mse_infer, .forward = mse_forward,
                                 .backward = mse_backward};
  table[FTH_OP_MSE_GRAD] = (FthOpDef){.name = "mse_grad", .infer = mse_infer, .forward = mse_forward};
}
