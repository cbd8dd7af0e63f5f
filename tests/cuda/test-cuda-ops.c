/* Every op of the CUDA backend against the CPU backend, forward and backward: each case builds a
 * small graph on fresh random inputs, derives its backward pass, and the harness runs every
 * scheduled node (forward and gradient nodes alike) on both backends with identical inputs.
 *
 * Tolerances (error <= rtol * |cpu| + atol * max|cpu| per element):
 *   f32 math: rtol 1e-4, atol 1e-5 (summation order differs: cuBLAS/cuDNN tiles, tree sums)
 *   GEMM and convolution nodes in the reduced math modes, operands rounded inside the library:
 *     tf32 atol 1e-2, bf16 atol 5e-2, f16 atol 1e-2 (rtol 0; other nodes keep the f32 bounds) */
#include "cuda-harness.h"

#include "graph-private.h"

#include <math.h>
#include <string.h>

static const HarnessTolerance tol_f32 = {FTH_CUDA_MATH_F32, 1e-4, 1e-5, 1e-4, 1e-5};
static const HarnessTolerance tol_reduced[] = {
  {FTH_CUDA_MATH_TF32, 1e-4, 1e-5, 0.0, 1e-2},
  {FTH_CUDA_MATH_BF16, 1e-4, 1e-5, 0.0, 5e-2},
  {FTH_CUDA_MATH_F16, 1e-4, 1e-5, 0.0, 1e-2},
};

#define B 6 /* the batch every case runs at */

static FthNode *input(FthGraph *g, const char *name, FthDType dt, int ndim, const int64_t *shape) {
  FthNode *x = fth_input(g, name, dt, ndim, shape);
  if (x && dt == FTH_F32)
    g_assert_cmpint(fth_graph_keep_grad(g, x), ==, FTH_STATUS_OK);
  return x;
}

static FthNode *param(FthGraph *g, const char *name, int ndim, const int64_t *shape) {
  return fth_param(g, name, ndim, shape, (FthInit){FTH_INIT_NORMAL, 0.0f, 0.5f});
}

/* sum(y * r) with r a random input of y's shape: every element of dy differs. */
static FthNode *weighted_sum(FthGraph *g, FthNode *y) {
  g_assert_nonnull(y);
  int64_t shape[FTH_MAX_DIMS];
  for (int d = 0; d < y->out.ndim; d++)
    shape[d] = d == y->out.bdim ? FTH_BATCH : y->out.shape[d];
  FthNode *r = fth_input(g, "r", FTH_F32, y->out.ndim, shape);
  return fth_sum(g, fth_mul(g, y, r), FTH_ALL_AXES, false);
}

static void finish(FthGraph *g, FthNode *loss, int32_t i32_max, const HarnessTolerance *tol) {
  g_assert_nonnull(loss);
  g_assert_cmpint(fth_graph_status(g), ==, FTH_STATUS_OK);
  g_assert_cmpint(fth_graph_backward(g, loss, 1.7f), ==, FTH_STATUS_OK);
  harness_replay(g, B, i32_max, tol);
}

typedef void (*CaseFn)(FthGraph *g, const HarnessTolerance *tol);

static void case_linear(FthGraph *g, const HarnessTolerance *tol) {
  FthNode *x = input(g, "x", FTH_F32, 3, (int64_t[]){FTH_BATCH, 5, 24});
  FthNode *w1 = param(g, "w1", 2, (int64_t[]){32, 24}), *b1 = param(g, "b1", 1, (int64_t[]){32});
  FthNode *w2 = param(g, "w2", 2, (int64_t[]){7, 32});
  FthNode *h = fth_linear_act(g, x, w1, b1, FTH_ACT_RELU);
  finish(g, weighted_sum(g, fth_linear(g, h, w2, NULL)), 1, tol);
}

static void case_matmul(FthGraph *g, const HarnessTolerance *tol) {
  FthNode *a = input(g, "a", FTH_F32, 3, (int64_t[]){FTH_BATCH, 9, 5});
  FthNode *b = input(g, "b", FTH_F32, 3, (int64_t[]){FTH_BATCH, 11, 9});
  FthNode *w = param(g, "w", 2, (int64_t[]){13, 11});
  FthNode *ab = fth_matmul(g, a, b, true, true);     /* [B, 5, 11] */
  FthNode *y = fth_matmul(g, ab, w, false, true);    /* shared right side: [B, 5, 13] */
  finish(g, weighted_sum(g, y), 1, tol);
}

static void case_elementwise(FthGraph *g, const HarnessTolerance *tol) {
  FthNode *x = input(g, "x", FTH_F32, 3, (int64_t[]){FTH_BATCH, 4, 7});
  FthNode *c = param(g, "c", 2, (int64_t[]){4, 1});
  FthNode *v = param(g, "v", 1, (int64_t[]){7});
  FthNode *y = fth_sub(g, fth_mul(g, fth_add(g, x, c), v), fth_scale(g, x, -0.75f, 0.25f));
  finish(g, weighted_sum(g, y), 1, tol);
}

static void case_activations(FthGraph *g, const HarnessTolerance *tol) {
  FthNode *x = input(g, "x", FTH_F32, 2, (int64_t[]){FTH_BATCH, 300});
  FthNode *y = fth_add(g, fth_gelu(g, x, FTH_GELU_ERF), fth_gelu(g, x, FTH_GELU_TANH));
  y = fth_add(g, y, fth_silu(g, x));
  y = fth_add(g, y, fth_sigmoid(g, x));
  y = fth_add(g, y, fth_tanh(g, x));
  y = fth_add(g, y, fth_relu(g, x));
  finish(g, weighted_sum(g, y), 1, tol);
}

static void case_softmax(FthGraph *g, const HarnessTolerance *tol) {
  FthNode *x = input(g, "x", FTH_F32, 3, (int64_t[]){FTH_BATCH, 10, 3});
  FthNode *y = fth_add(g, fth_softmax(g, x, 1), fth_log_softmax(g, x, -1)); /* strided and contiguous rows */
  FthNode *z = fth_log_softmax(g, fth_reshape(g, x, 2, (int64_t[]){-1, 30}), 1);
  finish(g, fth_add(g, weighted_sum(g, y), weighted_sum(g, z)), 1, tol);
}

static void case_cross_entropy(FthGraph *g, const HarnessTolerance *tol) {
  FthNode *x = input(g, "x", FTH_F32, 2, (int64_t[]){FTH_BATCH, 37});
  FthNode *t = input(g, "t", FTH_I32, 1, (int64_t[]){FTH_BATCH});
  FthNode *w = fth_param(g, "class_w", 1, (int64_t[]){37}, (FthInit){FTH_INIT_UNIFORM, 0.5f, 2.0f});
  FthCrossEntropyParams p = {.label_smoothing = 0.1f, .ignore_index = 3};
  FthNode *plain = fth_cross_entropy(g, x, t, NULL, NULL);
  FthNode *fancy = fth_cross_entropy(g, x, t, w, &p);
  /* per-sample weights in (0, 1), data (no gradient) */
  FthNode *sw = fth_sigmoid(g, fth_input(g, "sample_w", FTH_F32, 1, (int64_t[]){FTH_BATCH}));
  FthNode *sampled = fth_cross_entropy_weighted(g, x, t, w, sw, &p);
  finish(g, fth_add(g, fth_add(g, plain, fancy), sampled), 37, tol);
}

/* logits [N, C, d]: the classes of a row lie `d` apart */
static void case_cross_entropy_spatial(FthGraph *g, const HarnessTolerance *tol) {
  FthNode *x = input(g, "x", FTH_F32, 3, (int64_t[]){FTH_BATCH, 5, 4});
  FthNode *t = input(g, "t", FTH_I32, 2, (int64_t[]){FTH_BATCH, 4});
  FthNode *w = fth_param(g, "class_w", 1, (int64_t[]){5}, (FthInit){FTH_INIT_UNIFORM, 0.5f, 2.0f});
  FthCrossEntropyParams p = {.label_smoothing = 0.2f, .ignore_index = 1};
  FthNode *sw = fth_sigmoid(g, fth_input(g, "sample_w", FTH_F32, 1, (int64_t[]){FTH_BATCH}));
  finish(g, fth_add(g, fth_cross_entropy_weighted(g, x, t, w, sw, &p), fth_cross_entropy(g, x, t, NULL, NULL)), 5,
         tol);
}

static void case_bce_mse(FthGraph *g, const HarnessTolerance *tol) {
  FthNode *x = input(g, "x", FTH_F32, 2, (int64_t[]){FTH_BATCH, 9});
  FthNode *t = fth_sigmoid(g, input(g, "t", FTH_F32, 2, (int64_t[]){FTH_BATCH, 9}));
  FthNode *pw = fth_param(g, "pw", 1, (int64_t[]){9}, (FthInit){FTH_INIT_UNIFORM, 0.5f, 3.0f});
  finish(g, fth_add(g, fth_bce_with_logits(g, x, t, pw), fth_mse(g, x, t)), 1, tol);
}

static void case_reduce(FthGraph *g, const HarnessTolerance *tol) {
  FthNode *x = input(g, "x", FTH_F32, 3, (int64_t[]){FTH_BATCH, 5, 8});
  FthNode *a = fth_sum(g, x, 1, false), *b = fth_mean(g, x, 2, true), *c = fth_mean(g, x, FTH_ALL_AXES, false);
  finish(g, fth_add(g, fth_add(g, weighted_sum(g, a), weighted_sum(g, b)), c), 1, tol);
}

static void case_shape(FthGraph *g, const HarnessTolerance *tol) {
  FthNode *x = input(g, "x", FTH_F32, 3, (int64_t[]){FTH_BATCH, 4, 6});
  FthNode *y = input(g, "y", FTH_F32, 3, (int64_t[]){FTH_BATCH, 4, 3});
  FthNode *t = fth_transpose(g, x, (int[]){0, 2, 1});            /* [B, 6, 4] */
  FthNode *s = fth_slice(g, t, 1, 1, 5);                          /* [B, 4, 4] */
  FthNode *cat = fth_concat(g, 2, (FthNode *[]){s, y}, 2);        /* [B, 4, 7] */
  finish(g, weighted_sum(g, cat), 1, tol);
}

static void case_conv2d(FthGraph *g, const HarnessTolerance *tol) {
  FthNode *x = input(g, "x", FTH_F32, 4, (int64_t[]){FTH_BATCH, 4, 11, 9});
  FthNode *w1 = param(g, "w1", 4, (int64_t[]){6, 2, 3, 3}), *b1 = param(g, "b1", 1, (int64_t[]){6});
  FthNode *w2 = param(g, "w2", 4, (int64_t[]){8, 6, 3, 2});
  FthConv2dParams p1 = {.stride = {1, 2}, .padding = {1, 1}, .dilation = {1, 1}, .groups = 2, .act = FTH_ACT_RELU};
  FthConv2dParams p2 = {.stride = {2, 1}, .padding = {1, 0}, .dilation = {2, 1}, .groups = 1};
  FthNode *y = fth_conv2d(g, fth_conv2d(g, x, w1, b1, &p1), w2, NULL, &p2);
  finish(g, weighted_sum(g, y), 1, tol);
}

/* The fused conv + bias + ReLU + 2x2 max pool (max_pool2): odd pre-pool heights and widths
 * leave a row and a column out of every window; the second conv pools without ReLU or bias. */
static void case_conv2d_pool(FthGraph *g, const HarnessTolerance *tol) {
  FthNode *x = input(g, "x", FTH_F32, 4, (int64_t[]){FTH_BATCH, 4, 13, 11});
  FthNode *w1 = param(g, "w1", 4, (int64_t[]){6, 2, 3, 3}), *b1 = param(g, "b1", 1, (int64_t[]){6});
  FthNode *w2 = param(g, "w2", 4, (int64_t[]){5, 6, 2, 2});
  FthConv2dParams p1 = {.stride = {1, 1}, .padding = {1, 1}, .dilation = {1, 1}, .groups = 2, .act = FTH_ACT_RELU,
                        .max_pool2 = true};
  FthConv2dParams p2 = {.stride = {1, 1}, .padding = {0, 0}, .dilation = {1, 1}, .groups = 1, .max_pool2 = true};
  FthNode *h = fth_conv2d(g, x, w1, b1, &p1);
  g_assert_nonnull(h);
  g_assert_cmpint(h->out.shape[2], ==, 6);
  g_assert_cmpint(h->out.shape[3], ==, 5);
  finish(g, weighted_sum(g, fth_conv2d(g, h, w2, NULL, &p2)), 1, tol);
}

static void case_conv1d(FthGraph *g, const HarnessTolerance *tol) {
  FthNode *x = input(g, "x", FTH_F32, 3, (int64_t[]){FTH_BATCH, 3, 17});
  FthNode *w = param(g, "w", 3, (int64_t[]){5, 3, 4}), *b = param(g, "b", 1, (int64_t[]){5});
  FthConv1dParams p = {.stride = 2, .padding = 2, .dilation = 1, .groups = 1, .act = FTH_ACT_RELU};
  finish(g, weighted_sum(g, fth_conv1d(g, x, w, b, &p)), 1, tol);
}

static void case_pool(FthGraph *g, const HarnessTolerance *tol) {
  FthNode *x = input(g, "x", FTH_F32, 4, (int64_t[]){FTH_BATCH, 3, 9, 10});
  FthPool2dParams mp = {.kernel = {3, 2}, .stride = {2, 2}, .padding = {1, 0}};
  FthPool2dParams ap = {.kernel = {3, 3}, .stride = {2, 1}, .padding = {1, 1}, .count_include_pad = false};
  FthPool2dParams api = ap;
  api.count_include_pad = true;
  FthNode *y = fth_add(g, weighted_sum(g, fth_max_pool2d(g, x, &mp)), weighted_sum(g, fth_avg_pool2d(g, x, &ap)));
  y = fth_add(g, y, weighted_sum(g, fth_avg_pool2d(g, x, &api)));
  finish(g, fth_add(g, y, weighted_sum(g, fth_global_avg_pool2d(g, x))), 1, tol);
}

static void case_batch_norm(FthGraph *g, const HarnessTolerance *tol) {
  FthNode *x = input(g, "x", FTH_F32, 4, (int64_t[]){FTH_BATCH, 5, 4, 3});
  FthNode *gamma = param(g, "gamma", 1, (int64_t[]){5}), *beta = param(g, "beta", 1, (int64_t[]){5});
  FthNode *rm = fth_buffer(g, "rm", 1, (int64_t[]){5}, (FthInit){FTH_INIT_UNIFORM, -0.5f, 0.5f});
  FthNode *rv = fth_buffer(g, "rv", 1, (int64_t[]){5}, (FthInit){FTH_INIT_UNIFORM, 0.5f, 2.0f});
  FthBatchNormParams p = {.eps = 1e-5f, .momentum = 0.1f};
  finish(g, weighted_sum(g, fth_batch_norm(g, x, gamma, beta, rm, rv, &p)), 1, tol);
}

static void case_layer_norm(FthGraph *g, const HarnessTolerance *tol) {
  FthNode *x = input(g, "x", FTH_F32, 3, (int64_t[]){FTH_BATCH, 3, 40});
  FthNode *gamma = param(g, "gamma", 1, (int64_t[]){40}), *beta = param(g, "beta", 1, (int64_t[]){40});
  FthNode *y = fth_add(g, fth_layer_norm(g, x, gamma, beta, 1e-5f), fth_layer_norm(g, x, NULL, NULL, 1e-3f));
  finish(g, weighted_sum(g, y), 1, tol);
}

static void case_attention(FthGraph *g, const HarnessTolerance *tol) {
  const int64_t T = 7, E = 12;
  FthNode *x = input(g, "x", FTH_F32, 3, (int64_t[]){FTH_BATCH, T, E});
  /* relu of a normal input: about half the keys are masked (zero), the rest visible */
  FthNode *keep = fth_relu(g, fth_input(g, "mask", FTH_F32, 2, (int64_t[]){FTH_BATCH, T}));
  FthNode *wq = param(g, "wq", 2, (int64_t[]){E, E}), *wk = param(g, "wk", 2, (int64_t[]){E, E});
  FthNode *wv = param(g, "wv", 2, (int64_t[]){E, E});
  FthAttentionParams causal = {.n_heads = 3, .causal = true};
  FthAttentionParams masked = {.n_heads = 2, .causal = false, .scale = 0.3f};
  FthNode *q = fth_linear(g, x, wq, NULL), *k = fth_linear(g, x, wk, NULL), *v = fth_linear(g, x, wv, NULL);
  FthNode *y = fth_add(g, fth_attention(g, q, k, v, NULL, &causal), fth_attention(g, q, k, v, keep, &masked));
  /* q from a constant input: this k gradient computes dS itself */
  FthNode *q0 = fth_input(g, "q0", FTH_F32, 3, (int64_t[]){FTH_BATCH, T, E});
  y = fth_add(g, y, fth_attention(g, q0, k, v, NULL, &causal));
  finish(g, weighted_sum(g, y), 1, tol);
}

static void case_dropout(FthGraph *g, const HarnessTolerance *tol) {
  FthNode *x = input(g, "x", FTH_F32, 2, (int64_t[]){FTH_BATCH, 1001});
  finish(g, weighted_sum(g, fth_dropout(g, x, 0.3f)), 1, tol);
}

static void case_embedding(FthGraph *g, const HarnessTolerance *tol) {
  FthNode *ids = input(g, "ids", FTH_I32, 2, (int64_t[]){FTH_BATCH, 7});
  FthNode *table = param(g, "table", 2, (int64_t[]){23, 5});
  finish(g, weighted_sum(g, fth_embedding(g, ids, table, 2)), 23, tol);
}

typedef struct {
  CaseFn fn;
  const HarnessTolerance *tol;
} Case;

static void run_case(gconstpointer data) {
  const Case *c = data;
  FthGraph *g = fth_graph_new(harness_seed());
  c->fn(g, c->tol);
  fth_graph_free(g);
}

static void add(const char *name, CaseFn fn, bool reduced) {
  static const char *mode_names[] = {"tf32", "bf16", "f16"};
  Case *c = g_new(Case, 1);
  *c = (Case){fn, &tol_f32};
  char *path = g_strdup_printf("/cuda/ops/%s/f32", name);
  g_test_add_data_func_full(path, c, run_case, g_free);
  g_free(path);
  for (int m = 0; reduced && m < 3; m++) {
    c = g_new(Case, 1);
    *c = (Case){fn, &tol_reduced[m]};
    path = g_strdup_printf("/cuda/ops/%s/%s", name, mode_names[m]);
    g_test_add_data_func_full(path, c, run_case, g_free);
    g_free(path);
  }
}

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, NULL);
  harness_cuda_or_skip();
  add("linear", case_linear, true);
  add("matmul", case_matmul, true);
  add("conv2d", case_conv2d, true);
  add("conv1d", case_conv1d, true);
  /* f32 math only: the argmax is compared exactly, and rounded operands move near-ties */
  add("conv2d-pool", case_conv2d_pool, false);
  add("elementwise", case_elementwise, false);
  add("activations", case_activations, false);
  add("softmax", case_softmax, false);
  add("cross-entropy", case_cross_entropy, false);
  add("cross-entropy-spatial", case_cross_entropy_spatial, false);
  add("bce-mse", case_bce_mse, false);
  add("reduce", case_reduce, false);
  add("shape", case_shape, false);
  add("pool", case_pool, false);
  add("batch-norm", case_batch_norm, false);
  add("layer-norm", case_layer_norm, false);
  add("attention", case_attention, true);
  add("dropout", case_dropout, false);
  add("embedding", case_embedding, false);
  return g_test_run();
}
