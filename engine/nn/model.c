/* The recipe -> graph builder: forward graph, cross-entropy loss and the backward graph. */
#include "fathom/recipe.h"

#include <math.h>
#include <string.h>

typedef struct {
  FthGraph *g;
  const FthRecipe *recipe;
  int n_classes;
  GError **error;
  FthNode *last_linear_input;
  FthNode *ids;        /* token ids [N, T] (text models) */
  FthNode *mask;       /* f32 [N, T]: 1 for a token, 0 for padding */
} Builder;

static gboolean
build_fail(Builder *b, const FthLayerSpec *l, const char *what)
{
  const char *msg = fth_graph_status(b->g) != FTH_STATUS_OK ? fth_graph_error(b->g) : what;
  g_set_error(b->error, FTH_RECIPE_ERROR, FTH_RECIPE_ERROR_BUILD, "%s: %s: %s",
              b->recipe->source, l ? l->where : "model", msg ? msg : "graph construction failed");
  return FALSE;
}

static int
node_shape(FthNode *n, int64_t *shape)
{
  return fth_node_shape(n, 1, shape);
}

/* PyTorch's default initialization of conv and linear layers: kaiming_uniform(a = sqrt 5) for
 * the weight (bound 1/sqrt(fan_in)) and U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for the bias. */
static FthInit
default_weight_init(void)
{
  return (FthInit){FTH_INIT_KAIMING_UNIFORM, (float)sqrt(1.0 / 3.0), 0};
}

static FthInit
default_bias_init(int64_t fan_in)
{
  float bound = (float)(1.0 / sqrt((double)fan_in));
  return (FthInit){FTH_INIT_UNIFORM, -bound, bound};
}

static char *
pname(const char *prefix, const char *name, const char *what)
{
  return prefix ? g_strdup_printf("%s.%s.%s", prefix, name, what)
                : g_strdup_printf("%s.%s", name, what);
}

static FthNode *build_seq(Builder *b, FthNode *x, const FthLayerSpec *layers, int n,
                          const char *prefix, gboolean top);

/* ---- Text layers: x is [N, T, D] between them ---------------------------------------------- */

static FthInit
bert_init(void)
{
  return (FthInit){FTH_INIT_NORMAL, 0.0f, 0.02f};
}

/* A linear layer "P.what" with BERT's initialization. */
static FthNode *
bert_linear(Builder *b, FthNode *x, const char *p, const char *what, int64_t in, int64_t out)
{
  g_autofree char *wn = g_strdup_printf("%s.%s.weight", p, what);
  g_autofree char *bn = g_strdup_printf("%s.%s.bias", p, what);
  FthNode *w = fth_param(b->g, wn, 2, (int64_t[]){out, in}, bert_init());
  FthNode *bias = fth_param(b->g, bn, 1, (int64_t[]){out}, (FthInit){FTH_INIT_ZEROS, 0, 0});
  return fth_linear(b->g, x, w, bias);
}

static FthNode *
bert_layer_norm(Builder *b, FthNode *x, const char *p, const char *what, int64_t d, float eps)
{
  g_autofree char *gn = g_strdup_printf("%s.%s.weight", p, what);
  g_autofree char *bn = g_strdup_printf("%s.%s.bias", p, what);
  FthNode *gamma = fth_param(b->g, gn, 1, &d, (FthInit){FTH_INIT_ONES, 0, 0});
  FthNode *beta = fth_param(b->g, bn, 1, &d, (FthInit){FTH_INIT_ZEROS, 0, 0});
  return fth_layer_norm(b->g, x, gamma, beta, eps);
}

static char *
layer_prefix(const char *prefix, const FthLayerSpec *l)
{
  return prefix ? g_strdup_printf("%s.%s", prefix, l->name) : g_strdup(l->name);
}

/* Needs x [N, T, D]; says what the layer wanted otherwise. */
static gboolean
sequence_input(Builder *b, const FthLayerSpec *l, FthNode *x, int64_t *shape)
{
  if (b->ids == NULL || node_shape(x, shape) != 3)
    return build_fail(b, l, b->ids == NULL ? "text layers need a token input (\"input\": "
                                             "{\"tokens\": T, \"vocab\": V})"
                                           : "needs a [batch, tokens, features] input (an "
                                             "'embedding' layer first)");
  return TRUE;
}

static FthNode *
build_embedding(Builder *b, FthNode *x, const FthLayerSpec *l, const char *prefix)
{
  if (x != b->ids) {
    build_fail(b, l, "an embedding takes the token ids: it must be the first layer");
    return NULL;
  }
  FthGraph *g = b->g;
  g_autofree char *p = layer_prefix(prefix, l);
  g_autofree char *wn = g_strdup_printf("%s.word_embeddings.weight", p);
  int64_t t = b->recipe->in_shape[0], d = l->out;
  FthNode *table = fth_param(g, wn, 2, (int64_t[]){b->recipe->vocab, d}, bert_init());
  FthTensor tt;
  /* The [PAD] row starts at zero, as nn.Embedding(padding_idx=0) has it, and never learns. */
  if (table != NULL && fth_graph_tensor(g, table, &tt) == FTH_STATUS_OK)
    memset(tt.data, 0, (size_t)d * sizeof(float));
  FthNode *y = fth_embedding(g, b->ids, table, 0);
  if (l->positions) {
    g_autofree char *pn = g_strdup_printf("%s.position_embeddings.weight", p);
    y = fth_add(g, y, fth_param(g, pn, 2, (int64_t[]){t, d}, bert_init()));
  }
  if (l->layer_norm)
    y = bert_layer_norm(b, y, p, "LayerNorm", d, l->eps);
  return l->p > 0 ? fth_dropout(g, y, l->p) : y;
}

static FthNode *
build_encoder(Builder *b, FthNode *x, const FthLayerSpec *l, const char *prefix)
{
  int64_t shape[FTH_MAX_DIMS];
  if (!sequence_input(b, l, x, shape))
    return NULL;
  int64_t e = shape[2];
  if (e % l->heads != 0) {
    build_fail(b, l, "'heads' must divide the features");
    return NULL;
  }
  FthGraph *g = b->g;
  g_autofree char *p = layer_prefix(prefix, l);
  FthNode *h = l->pre_norm ? bert_layer_norm(b, x, p, "attention.output.LayerNorm", e, l->eps) : x;
  FthNode *q = bert_linear(b, h, p, "attention.self.query", e, e);
  FthNode *k = bert_linear(b, h, p, "attention.self.key", e, e);
  FthNode *v = bert_linear(b, h, p, "attention.self.value", e, e);
  FthAttentionParams ap = {.n_heads = l->heads};
  FthNode *a = bert_linear(b, fth_attention(g, q, k, v, b->mask, &ap), p,
                           "attention.output.dense", e, e);
  if (l->p > 0)
    a = fth_dropout(g, a, l->p);
  x = fth_add(g, x, a);
  if (!l->pre_norm)
    x = bert_layer_norm(b, x, p, "attention.output.LayerNorm", e, l->eps);
  h = l->pre_norm ? bert_layer_norm(b, x, p, "output.LayerNorm", e, l->eps) : x;
  h = fth_gelu(g, bert_linear(b, h, p, "intermediate.dense", e, l->ffn), FTH_GELU_ERF);
  h = bert_linear(b, h, p, "output.dense", l->ffn, e);
  if (l->p > 0)
    h = fth_dropout(g, h, l->p);
  x = fth_add(g, x, h);
  return l->pre_norm ? x : bert_layer_norm(b, x, p, "output.LayerNorm", e, l->eps);
}

/* Max over the last axis of [N, C, L] -> [N, C], as a [1, L] max pool. */
static FthNode *
max_over_time(FthGraph *g, FthNode *x, int64_t c, int64_t len)
{
  FthPool2dParams mp = {.kernel = {1, (int)len}, .stride = {1, (int)len}};
  FthNode *y = fth_max_pool2d(g, fth_reshape(g, x, 4, (int64_t[]){-1, c, 1, len}), &mp);
  return fth_reshape(g, y, 2, (int64_t[]){-1, c});
}

static FthNode *
build_text_cnn(Builder *b, FthNode *x, const FthLayerSpec *l, const char *prefix)
{
  int64_t shape[FTH_MAX_DIMS];
  if (!sequence_input(b, l, x, shape))
    return NULL;
  FthGraph *g = b->g;
  g_autofree char *p = layer_prefix(prefix, l);
  int64_t t = shape[1], d = shape[2];
  FthNode *xt = fth_transpose(g, x, (int[]){0, 2, 1});
  FthNode *outs[FTH_RECIPE_MAX_KERNELS];
  for (int i = 0; i < l->n_kernels; i++) {
    int k = l->kernels[i];
    if (k > t) {
      build_fail(b, l, "a kernel is wider than the token count");
      return NULL;
    }
    g_autofree char *wn = g_strdup_printf("%s.convs.%d.weight", p, i);
    g_autofree char *bn = g_strdup_printf("%s.convs.%d.bias", p, i);
    FthNode *w = fth_param(g, wn, 3, (int64_t[]){l->out, d, k}, default_weight_init());
    FthNode *bias = fth_param(g, bn, 1, (int64_t[]){l->out}, default_bias_init(d * k));
    FthConv1dParams cp = {.stride = 1, .dilation = 1, .groups = 1, .act = l->act};
    outs[i] = max_over_time(g, fth_conv1d(g, xt, w, bias, &cp), l->out, t - k + 1);
  }
  return l->n_kernels == 1 ? outs[0] : fth_concat(g, l->n_kernels, outs, 1);
}

static FthNode *
build_pool(Builder *b, FthNode *x, const FthLayerSpec *l)
{
  int64_t shape[FTH_MAX_DIMS];
  if (!sequence_input(b, l, x, shape))
    return NULL;
  FthGraph *g = b->g;
  int64_t t = shape[1], d = shape[2];
  /* Padding as a large negative bias: softmax of it weighs the tokens equally (the masked
   * mean), and added to x it keeps padding out of the max. */
  FthNode *neg = fth_scale(g, b->mask, 1e4f, -1e4f);
  switch (l->pool) {
  case FTH_POOL_MEAN: {
    FthNode *w = fth_reshape(g, fth_softmax(g, neg, -1), 3, (int64_t[]){-1, 1, t});
    return fth_reshape(g, fth_matmul(g, w, x, false, false), 2, (int64_t[]){-1, d});
  }
  case FTH_POOL_MAX: {
    FthNode *y = fth_add(g, x, fth_reshape(g, neg, 3, (int64_t[]){-1, t, 1}));
    return max_over_time(g, fth_transpose(g, y, (int[]){0, 2, 1}), d, t);
  }
  case FTH_POOL_CLS:
    return fth_reshape(g, fth_slice(g, x, 1, 0, 1), 2, (int64_t[]){-1, d});
  }
  return NULL;
}

static FthNode *
build_layer(Builder *b, FthNode *x, const FthLayerSpec *l, FthActivation fused, bool pool2,
            const char *prefix, gboolean top, gboolean is_last_linear)
{
  FthGraph *g = b->g;
  int64_t shape[FTH_MAX_DIMS];
  int nd = node_shape(x, shape);
  switch (l->kind) {
  case FTH_LAYER_LINEAR: {
    if (nd != 2 && !(nd == 3 && b->ids != NULL)) {
      build_fail(b, l, "linear needs a [batch, features] input (add a 'flatten' layer)");
      return NULL;
    }
    int64_t in = shape[nd - 1], out = l->out == FTH_RECIPE_CLASSES ? b->n_classes : l->out;
    g_autofree char *wn = pname(prefix, l->name, "weight");
    g_autofree char *bn = pname(prefix, l->name, "bias");
    FthNode *w = fth_param(g, wn, 2, (int64_t[]){out, in}, default_weight_init());
    FthNode *bias = l->bias ? fth_param(g, bn, 1, (int64_t[]){out}, default_bias_init(in)) : NULL;
    if (top && is_last_linear)
      b->last_linear_input = x;
    return fth_linear_act(g, x, w, bias, fused);
  }
  case FTH_LAYER_CONV2D: {
    if (nd != 4) {
      build_fail(b, l, "conv2d needs a [batch, channels, height, width] input");
      return NULL;
    }
    int64_t cin = shape[1];
    int64_t out = l->out == FTH_RECIPE_CLASSES ? b->n_classes : l->out == 0 ? cin : l->out;
    int groups = l->depthwise ? (int)cin : l->groups;
    if (l->depthwise && out != cin) {
      build_fail(b, l, "a depthwise conv2d keeps the channel count");
      return NULL;
    }
    if (cin % groups != 0 || out % groups != 0) {
      build_fail(b, l, "'groups' must divide the input and output channels");
      return NULL;
    }
    g_autofree char *wn = pname(prefix, l->name, "weight");
    g_autofree char *bn = pname(prefix, l->name, "bias");
    int64_t fan_in = cin / groups * l->kernel[0] * l->kernel[1];
    FthNode *w = fth_param(g, wn, 4, (int64_t[]){out, cin / groups, l->kernel[0], l->kernel[1]},
                           default_weight_init());
    FthNode *bias = l->bias ? fth_param(g, bn, 1, (int64_t[]){out}, default_bias_init(fan_in))
                            : NULL;
    FthConv2dParams p = {
      .stride = {l->stride[0], l->stride[1]}, .padding = {l->padding[0], l->padding[1]},
      .dilation = {l->dilation[0], l->dilation[1]}, .groups = groups, .act = fused,
      .max_pool2 = pool2};
    return fth_conv2d(g, x, w, bias, &p);
  }
  case FTH_LAYER_BATCH_NORM: {
    if (nd < 2) {
      build_fail(b, l, "batch_norm needs a [batch, channels, ...] input");
      return NULL;
    }
    int64_t c = shape[1];
    g_autofree char *gn = pname(prefix, l->name, "weight");
    g_autofree char *bn = pname(prefix, l->name, "bias");
    g_autofree char *mn = pname(prefix, l->name, "running_mean");
    g_autofree char *vn = pname(prefix, l->name, "running_var");
    FthNode *gamma = fth_param(g, gn, 1, &c, (FthInit){FTH_INIT_ONES, 0, 0});
    FthNode *beta = fth_param(g, bn, 1, &c, (FthInit){FTH_INIT_ZEROS, 0, 0});
    FthNode *rm = fth_buffer(g, mn, 1, &c, (FthInit){FTH_INIT_ZEROS, 0, 0});
    FthNode *rv = fth_buffer(g, vn, 1, &c, (FthInit){FTH_INIT_ONES, 0, 0});
    FthBatchNormParams p = {l->eps, l->momentum};
    FthNode *y = fth_batch_norm(g, x, gamma, beta, rm, rv, &p);
    return fused == FTH_ACT_RELU ? fth_relu(g, y) : y;
  }
  case FTH_LAYER_LAYER_NORM: {
    int64_t d = shape[nd - 1];
    g_autofree char *gn = pname(prefix, l->name, "weight");
    g_autofree char *bn = pname(prefix, l->name, "bias");
    FthNode *gamma = fth_param(g, gn, 1, &d, (FthInit){FTH_INIT_ONES, 0, 0});
    FthNode *beta = fth_param(g, bn, 1, &d, (FthInit){FTH_INIT_ZEROS, 0, 0});
    return fth_layer_norm(g, x, gamma, beta, l->eps);
  }
  case FTH_LAYER_RELU:
    return fth_relu(g, x);
  case FTH_LAYER_GELU:
    return fth_gelu(g, x, FTH_GELU_ERF);
  case FTH_LAYER_SILU:
    return fth_silu(g, x);
  case FTH_LAYER_SIGMOID:
    return fth_sigmoid(g, x);
  case FTH_LAYER_TANH:
    return fth_tanh(g, x);
  case FTH_LAYER_MAX_POOL2D:
  case FTH_LAYER_AVG_POOL2D: {
    if (nd != 4) {
      build_fail(b, l, "pooling needs a [batch, channels, height, width] input");
      return NULL;
    }
    FthPool2dParams p = {.kernel = {l->kernel[0], l->kernel[1]},
                         .stride = {l->stride[0], l->stride[1]},
                         .padding = {l->padding[0], l->padding[1]},
                         .count_include_pad = true};
    return l->kind == FTH_LAYER_MAX_POOL2D ? fth_max_pool2d(g, x, &p) : fth_avg_pool2d(g, x, &p);
  }
  case FTH_LAYER_GLOBAL_AVG_POOL2D:
    if (nd != 4) {
      build_fail(b, l, "global_avg_pool2d needs a [batch, channels, height, width] input");
      return NULL;
    }
    return fth_global_avg_pool2d(g, x);
  case FTH_LAYER_FLATTEN: {
    int64_t d = 1;
    for (int i = 1; i < nd; i++)
      d *= shape[i];
    return nd == 2 ? x : fth_reshape(g, x, 2, (int64_t[]){-1, d});
  }
  case FTH_LAYER_DROPOUT:
    return fth_dropout(g, x, l->p);
  case FTH_LAYER_RESIDUAL: {
    g_autofree char *bp = prefix ? g_strdup_printf("%s.%s.body", prefix, l->name)
                                 : g_strdup_printf("%s.body", l->name);
    g_autofree char *sp = prefix ? g_strdup_printf("%s.%s.shortcut", prefix, l->name)
                                 : g_strdup_printf("%s.shortcut", l->name);
    FthNode *y = build_seq(b, x, l->body, l->n_body, bp, FALSE);
    FthNode *s = l->n_shortcut > 0 ? build_seq(b, x, l->shortcut, l->n_shortcut, sp, FALSE) : x;
    if (y == NULL || s == NULL)
      return NULL;
    int64_t ys[FTH_MAX_DIMS], ss[FTH_MAX_DIMS];
    int ynd = node_shape(y, ys), snd = node_shape(s, ss);
    if (ynd != snd || memcmp(ys, ss, sizeof(int64_t) * (size_t)ynd) != 0) {
      build_fail(b, l, "the body and the shortcut give different shapes (add a 'shortcut' "
                       "that projects, e.g. a 1x1 conv2d with the body's stride)");
      return NULL;
    }
    FthNode *sum = fth_add(g, y, s);
    FthActivation act = l->act != FTH_ACT_NONE ? l->act : fused;
    return act == FTH_ACT_RELU ? fth_relu(g, sum) : sum;
  }
  case FTH_LAYER_EMBEDDING:
    return build_embedding(b, x, l, prefix);
  case FTH_LAYER_TRANSFORMER_ENCODER:
    return build_encoder(b, x, l, prefix);
  case FTH_LAYER_TEXT_CNN:
    return build_text_cnn(b, x, l, prefix);
  case FTH_LAYER_POOL:
    return build_pool(b, x, l);
  }
  return NULL;
}

static gboolean
fusable(const FthLayerSpec *l)
{
  return (l->kind == FTH_LAYER_LINEAR || l->kind == FTH_LAYER_CONV2D ||
          l->kind == FTH_LAYER_BATCH_NORM || l->kind == FTH_LAYER_RESIDUAL) &&
         l->act == FTH_ACT_NONE;
}

static FthNode *
build_seq(Builder *b, FthNode *x, const FthLayerSpec *layers, int n, const char *prefix,
          gboolean top)
{
  int last_linear = -1;
  for (int i = 0; i < n; i++)
    if (layers[i].kind == FTH_LAYER_LINEAR)
      last_linear = i;
  for (int i = 0; i < n && x != NULL; i++) {
    const FthLayerSpec *l = &layers[i];
    gboolean is_last_linear = i == last_linear;
    FthActivation act = l->kind == FTH_LAYER_LINEAR || l->kind == FTH_LAYER_CONV2D ||
                                l->kind == FTH_LAYER_RESIDUAL
                            ? l->act
                            : FTH_ACT_NONE;
    /* A following relu is fused into the layer's epilogue, and after a conv2d also a 2x2
     * stride-2 max pool: one pass over the output instead of three (the unfused ReLU and pool
     * are most of a small CNN's forward time). */
    if (fusable(l) && i + 1 < n && layers[i + 1].kind == FTH_LAYER_RELU) {
      act = FTH_ACT_RELU;
      i++;
    }
    bool pool2 = false;
    if (l->kind == FTH_LAYER_CONV2D && i + 1 < n && layers[i + 1].kind == FTH_LAYER_MAX_POOL2D) {
      const FthLayerSpec *p = &layers[i + 1];
      pool2 = p->kernel[0] == 2 && p->kernel[1] == 2 && p->stride[0] == 2 && p->stride[1] == 2 &&
              p->padding[0] == 0 && p->padding[1] == 0;
      if (pool2)
        i++;
    }
    x = build_layer(b, x, l, act, pool2, prefix, top, is_last_linear);
    if (x == NULL || fth_graph_status(b->g) != FTH_STATUS_OK) {
      if (b->error == NULL || *b->error == NULL)
        build_fail(b, l, NULL);
      return NULL;
    }
  }
  return x;
}

void
fth_model_free(FthModel *m)
{
  if (m == NULL)
    return;
  fth_graph_free(m->graph);
  g_free(m);
}

FthModel *
fth_model_build(const FthRecipe *recipe, int n_classes, uint64_t seed, FthModelPurpose purpose,
                GError **error)
{
  if (n_classes < 2) {
    g_set_error(error, FTH_RECIPE_ERROR, FTH_RECIPE_ERROR_BUILD,
                "%s: a classifier needs at least 2 classes (got %d)", recipe->source, n_classes);
    return NULL;
  }
  g_autoptr(FthModel) m = g_new0(FthModel, 1);
  m->n_classes = n_classes;
  m->graph = fth_graph_new(seed);
  if (m->graph == NULL) {
    g_set_error(error, FTH_RECIPE_ERROR, FTH_RECIPE_ERROR_BUILD, "%s: %s", recipe->source,
                fth_last_error());
    return NULL;
  }
  Builder b = {m->graph, recipe, n_classes, error, NULL, NULL, NULL};
  int64_t in_shape[4] = {FTH_BATCH};
  for (int i = 0; i < recipe->in_ndim; i++)
    in_shape[i + 1] = recipe->in_shape[i];
  m->input = fth_input(m->graph, "input", recipe->tokens ? FTH_I32 : FTH_F32, recipe->in_ndim + 1,
                       in_shape);
  gboolean training = purpose == FTH_MODEL_TRAINING || purpose == FTH_MODEL_WEIGHTED_TRAINING;
  if (training)
    m->targets = fth_input(m->graph, "targets", FTH_I32, recipe->tagging ? 2 : 1, in_shape);
  if (purpose == FTH_MODEL_WEIGHTED_TRAINING)
    m->sample_weights = fth_input(m->graph, "sample_weights", FTH_F32, 1, in_shape);
  if (recipe->tokens) {
    /* The padding mask from the ids, inside the graph: a fixed [V, 1] table of ones with a zero
     * row for [PAD] (a buffer, so the checkpoint carries it and nothing trains it). */
    int64_t t = recipe->in_shape[0];
    FthNode *table = fth_buffer(m->graph, "token_mask", 2, (int64_t[]){recipe->vocab, 1},
                                (FthInit){FTH_INIT_ONES, 0, 0});
    FthTensor tt;
    if (table != NULL && fth_graph_tensor(m->graph, table, &tt) == FTH_STATUS_OK)
      ((float *)tt.data)[0] = 0.0f;
    b.ids = m->input;
    b.mask = fth_reshape(m->graph, fth_embedding(m->graph, m->input, table, -1), 2,
                         (int64_t[]){-1, t});
  }
  m->logits = build_seq(&b, m->input, recipe->layers, recipe->n_layers, NULL, TRUE);
  if (m->logits == NULL)
    return NULL;
  int64_t ls[FTH_MAX_DIMS];
  int lnd = node_shape(m->logits, ls);
  if (recipe->tagging && (lnd != 3 || ls[2] != n_classes)) {
    g_autofree char *msg = g_strdup_printf(
      "a tagger over %d classes needs [batch, tokens, %d] output (end with a linear layer of "
      "out_features \"classes\" after the sequence layers, without pooling)", n_classes,
      n_classes);
    build_fail(&b, &recipe->layers[recipe->n_layers - 1], msg);
    return NULL;
  }
  if (!recipe->tagging && (lnd != 2 || ls[1] != n_classes)) {
    g_autofree char *msg = g_strdup_printf(
      "the last layer gives %d-D output with %" G_GINT64_FORMAT " features; a classifier over "
      "%d classes needs [batch, %d] (end with a linear layer of out_features \"classes\")",
      lnd, lnd > 1 ? ls[1] : ls[0], n_classes, n_classes);
    build_fail(&b, &recipe->layers[recipe->n_layers - 1], msg);
    return NULL;
  }
  m->embedding = b.last_linear_input ? b.last_linear_input : m->logits;
  if (fth_graph_mark_output(m->graph, m->logits) != FTH_STATUS_OK ||
      fth_graph_mark_output(m->graph, m->embedding) != FTH_STATUS_OK) {
    build_fail(&b, NULL, fth_last_error());
    return NULL;
  }
  if (training) {
    FthCrossEntropyParams ce = {recipe->train.label_smoothing,
                                recipe->tagging ? FTH_IGNORE_TARGET : FTH_NO_IGNORE_INDEX};
    /* Per-token classes go on axis 1 for the loss: [N, C, T] against targets [N, T]. */
    FthNode *z = recipe->tagging ? fth_transpose(m->graph, m->logits, (int[]){0, 2, 1}) : m->logits;
    m->loss = fth_cross_entropy_weighted(m->graph, z, m->targets, NULL, m->sample_weights, &ce);
    if (fth_graph_status(m->graph) != FTH_STATUS_OK ||
        fth_graph_mark_output(m->graph, m->loss) != FTH_STATUS_OK ||
        fth_graph_backward(m->graph, m->loss, 1.0f) != FTH_STATUS_OK) {
      build_fail(&b, NULL, fth_last_error());
      return NULL;
    }
  }
  return g_steal_pointer(&m);
}

gboolean
fth_model_copy_params(FthModel *dst, const FthModel *src, GError **error)
{
  for (int i = 0; i < fth_graph_n_params(dst->graph); i++) {
    FthNode *d = fth_graph_param(dst->graph, i);
    FthNode *s = fth_graph_find_param(src->graph, fth_node_name(d));
    FthTensor dt, st;
    if (s == NULL || fth_graph_tensor(dst->graph, d, &dt) != FTH_STATUS_OK ||
        fth_graph_tensor(src->graph, s, &st) != FTH_STATUS_OK ||
        fth_tensor_nbytes(&dt) != fth_tensor_nbytes(&st)) {
      g_set_error(error, FTH_RECIPE_ERROR, FTH_RECIPE_ERROR_BUILD,
                  "copying parameters: '%s' is missing or has another shape in the source",
                  fth_node_name(d));
      return FALSE;
    }
    memcpy(dt.data, st.data, fth_tensor_nbytes(&dt));
  }
  return TRUE;
}
