/* Shared helpers of the op-family tests (test-ops-*.c): a seeded RNG (FTH_TEST_SEED reproduces
 * a run), a one-op training graph whose loss is sum(y * R) for a random R (so d loss / d y = R),
 * and comparisons against float64 references and central finite differences of them. */
#pragma once

#include <fathom/graph.h>

#include <glib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t ops_rng_state;

static inline uint64_t ops_next_u64(void) {
  /* splitmix64 */
  uint64_t z = (ops_rng_state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static inline double ops_uniform(double lo, double hi) {
  return lo + (hi - lo) * ((double)(ops_next_u64() >> 11) * (1.0 / 9007199254740992.0));
}

static inline void ops_fill(float *x, size_t n, double lo, double hi) {
  for (size_t i = 0; i < n; i++)
    x[i] = (float)ops_uniform(lo, hi);
}

/* Seeds the RNG from FTH_TEST_SEED or the clock and prints the seed. */
static inline uint64_t ops_seed_init(void) {
  const char *env = getenv("FTH_TEST_SEED");
  uint64_t seed = env && *env ? strtoull(env, NULL, 0) : (uint64_t)g_get_real_time();
  printf("# FTH_TEST_SEED=%llu\n", (unsigned long long)seed);
  ops_rng_state = seed;
  return seed;
}

static inline double *ops_to_double(const float *x, size_t n) {
  double *d = g_new(double, n);
  for (size_t i = 0; i < n; i++)
    d[i] = x[i];
  return d;
}

static inline int64_t ops_numel(int ndim, const int64_t *shape) {
  int64_t n = 1;
  for (int i = 0; i < ndim; i++)
    n *= shape[i];
  return n;
}

#define OPS_MAX_LEAVES 8

/* A graph around one op under test: inputs (batch in dimension 0) and parameters with values
 * chosen by the test, then loss = sum(y * R). */
typedef struct {
  FthGraph *g;
  int n_leaves;
  FthNode *leaf[OPS_MAX_LEAVES];
  const void *leaf_data[OPS_MAX_LEAVES];
  size_t leaf_bytes[OPS_MAX_LEAVES];
  bool leaf_is_input[OPS_MAX_LEAVES];
  FthNode *y, *r_node;
  float *r;      /* the random loss weights, y's shape */
  size_t y_numel;
  int64_t batch;
} OpsGraph;

static inline void ops_graph_begin(OpsGraph *og, uint64_t seed, int64_t batch) {
  memset(og, 0, sizeof *og);
  og->g = fth_graph_new(seed);
  og->batch = batch;
}

static inline FthNode *ops_add_leaf(OpsGraph *og, FthNode *node, const void *data, size_t bytes,
                                    bool is_input) {
  g_assert_cmpint(og->n_leaves, <, OPS_MAX_LEAVES);
  og->leaf[og->n_leaves] = node;
  og->leaf_data[og->n_leaves] = data;
  og->leaf_bytes[og->n_leaves] = bytes;
  og->leaf_is_input[og->n_leaves] = is_input;
  og->n_leaves++;
  return node;
}

/* An f32 input whose dimension 0 is the batch (shape[0] is the test's batch); grad: keep its
 * gradient. */
static inline FthNode *ops_input(OpsGraph *og, const char *name, int ndim, const int64_t *shape,
                                 const float *data, bool grad) {
  int64_t s[FTH_MAX_DIMS];
  memcpy(s, shape, sizeof(int64_t) * (size_t)ndim);
  s[0] = FTH_BATCH;
  FthNode *n = fth_input(og->g, name, FTH_F32, ndim, s);
  g_assert_nonnull(n);
  if (grad)
    g_assert_cmpint(fth_graph_keep_grad(og->g, n), ==, FTH_STATUS_OK);
  return ops_add_leaf(og, n, data, sizeof(float) * (size_t)ops_numel(ndim, shape), true);
}

static inline FthNode *ops_input_i32(OpsGraph *og, const char *name, int ndim,
                                     const int64_t *shape, const int32_t *data) {
  int64_t s[FTH_MAX_DIMS];
  memcpy(s, shape, sizeof(int64_t) * (size_t)ndim);
  s[0] = FTH_BATCH;
  FthNode *n = fth_input(og->g, name, FTH_I32, ndim, s);
  g_assert_nonnull(n);
  return ops_add_leaf(og, n, data, sizeof(int32_t) * (size_t)ops_numel(ndim, shape), true);
}

static inline FthNode *ops_param(OpsGraph *og, const char *name, int ndim, const int64_t *shape,
                                 const float *data) {
  FthNode *n = fth_param(og->g, name, ndim, shape, (FthInit){FTH_INIT_ZEROS, 0, 0});
  g_assert_nonnull(n);
  return ops_add_leaf(og, n, data, sizeof(float) * (size_t)ops_numel(ndim, shape), false);
}

static inline FthNode *ops_buffer(OpsGraph *og, const char *name, int ndim, const int64_t *shape,
                                  const float *data) {
  FthNode *n = fth_buffer(og->g, name, ndim, shape, (FthInit){FTH_INIT_ZEROS, 0, 0});
  g_assert_nonnull(n);
  return ops_add_leaf(og, n, data, sizeof(float) * (size_t)ops_numel(ndim, shape), false);
}

static inline void ops_check_status(FthStatus st, const char *what) {
  if (st != FTH_STATUS_OK)
    g_error("%s: %s: %s", what, fth_status_name(st), fth_last_error());
}

static inline void ops_copy_leaves(OpsGraph *og) {
  for (int i = 0; i < og->n_leaves; i++) {
    FthTensor t;
    ops_check_status(fth_graph_tensor(og->g, og->leaf[i], &t), "leaf tensor");
    g_assert_cmpuint(fth_tensor_nbytes(&t), ==, og->leaf_bytes[i]);
    memcpy(t.data, og->leaf_data[i], og->leaf_bytes[i]);
  }
}

/* Adds R and the loss, derives the backward graph (train) and plans, copies the leaves in and
 * runs once. In inference mode there is no loss and y is just marked as an output. */
static inline void ops_graph_run(OpsGraph *og, FthNode *y, FthGraphMode mode) {
  FthGraph *g = og->g;
  if (!y)
    g_error("building the op failed: %s", fth_graph_error(g));
  og->y = y;
  int64_t shape[FTH_MAX_DIMS];
  int nd = fth_node_shape(y, og->batch, shape);
  og->y_numel = (size_t)ops_numel(nd, shape);
  ops_check_status(fth_graph_mark_output(g, y), "mark output");
  if (mode == FTH_MODE_TRAIN) {
    og->r = g_new(float, og->y_numel);
    ops_fill(og->r, og->y_numel, -1.0, 1.0);
    og->r_node = ops_input(og, "loss_weights", nd, shape, og->r, false);
    FthNode *loss = fth_sum(g, fth_mul(g, y, og->r_node), FTH_ALL_AXES, false);
    if (!loss)
      g_error("building the loss failed: %s", fth_graph_error(g));
    ops_check_status(fth_graph_backward(g, loss, 1.0f), "backward");
  }
  ops_check_status(fth_graph_status(g), "graph");
  ops_check_status(fth_graph_plan(g, mode, og->batch), "plan");
  ops_check_status(fth_graph_check_plan(g, og->batch), "check plan");
  ops_check_status(fth_graph_set_batch(g, og->batch), "set batch");
  ops_copy_leaves(og);
  ops_check_status(fth_graph_run(g), "run");
}

static inline const float *ops_output(OpsGraph *og) {
  FthTensor t;
  ops_check_status(fth_graph_tensor(og->g, og->y, &t), "output tensor");
  g_assert_cmpuint((size_t)fth_tensor_numel(&t), ==, og->y_numel);
  return t.data;
}

/* d loss / d node for an input with keep_grad or a parameter. */
static inline const float *ops_grad(OpsGraph *og, FthNode *node) {
  FthTensor t;
  if (fth_node_op(node) == FTH_OP_PARAM) {
    ops_check_status(fth_param_grad_tensor(node, &t), "param grad");
    return t.data;
  }
  FthNode *gn = fth_graph_grad(og->g, node);
  g_assert_nonnull(gn);
  ops_check_status(fth_graph_tensor(og->g, gn, &t), "grad tensor");
  return t.data;
}

static inline void ops_graph_end(OpsGraph *og) {
  fth_graph_free(og->g);
  g_free(og->r);
  memset(og, 0, sizeof *og);
}

/* Every element of got within atol + rtol * |want|; names the first that is not. */
static inline void ops_assert_close(const char *what, const float *got, const double *want,
                                    size_t n, double atol, double rtol) {
  for (size_t i = 0; i < n; i++) {
    const double err = fabs((double)got[i] - want[i]);
    if (!(err <= atol + rtol * fabs(want[i])))
      g_error("%s: element %zu is %.9g, the float64 reference says %.9g", what, i, (double)got[i],
              want[i]);
  }
}

/* The float64 reference loss sum(ref(...) * R) as a function of the arrays in ctx. */
typedef double (*OpsRefLoss)(void *ctx);

/* Central finite differences of loss with respect to every element of a (a double array that
 * loss reads through ctx), against the engine's float32 gradient. */
static inline void ops_check_grad_fd(const char *what, OpsRefLoss loss, void *ctx, double *a,
                                     size_t n, const float *grad) {
  const double h = 1e-6;
  for (size_t i = 0; i < n; i++) {
    const double keep = a[i];
    a[i] = keep + h;
    const double lp = loss(ctx);
    a[i] = keep - h;
    const double lm = loss(ctx);
    a[i] = keep;
    const double fd = (lp - lm) / (2 * h);
    const double err = fabs((double)grad[i] - fd);
    if (!(err <= 2e-3 + 2e-3 * fabs(fd)))
      g_error("%s: gradient element %zu is %.9g, central differences of the float64 reference "
              "give %.9g", what, i, (double)grad[i], fd);
  }
}

static inline double ops_dot_r(const double *y, const float *r, size_t n) {
  double s = 0.0;
  for (size_t i = 0; i < n; i++)
    s += y[i] * r[i];
  return s;
}
