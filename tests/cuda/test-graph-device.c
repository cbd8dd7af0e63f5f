/* The graph-device executor (engine/graph/graph-device.c) against fth_graph_run. With the CPU
 * backend as the "device" it runs on every machine: the same kernels on a copy of the arena
 * laid out by the same plan must give bit-identical losses and gradients, which checks the
 * pointer rebasing (arena, parameters, gradients written in place or copied, saved state,
 * scratch). With a CUDA device it runs again on the GPU within f32 tolerance. Models: the zoo's
 * fmnist-cnn (conv, pool, linear, cross-entropy) and a small residual net with batch norm
 * (running statistics compared too) and global pooling, three steps at two batch sizes. Also
 * the auto batch size (fth_graph_device_fit) against a memory-limited stand-in backend. */
#include "cuda-harness.h"

#include "graph-device.h"

#include <fathom/recipe.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

enum { MAX_BATCH = 8 };

/* What a comparison needs of a model: its graph and the nodes fed and read. */
typedef struct {
  FthGraph *graph;
  FthNode *input, *targets, *loss;
  FthModel *model; /* when built from a recipe */
} Net;

typedef Net (*BuildFn)(uint64_t seed, size_t *per_sample);

static Net build_fmnist(uint64_t seed, size_t *per_sample) {
  GError *error = NULL;
  char *path = fth_recipe_find("fmnist-cnn");
  g_assert_nonnull(path);
  FthRecipe *recipe = fth_recipe_load(path, NULL, &error);
  g_assert_no_error(error);
  FthModel *m = fth_model_build(recipe, 10, seed, FTH_MODEL_TRAINING, &error);
  g_assert_no_error(error);
  *per_sample = 28 * 28;
  fth_recipe_free(recipe);
  g_free(path);
  return (Net){m->graph, m->input, m->targets, m->loss, m};
}

/* fmnist-cnn with the bf16 GEMMs of fth_graph_set_bf16_matmul (scratch in a fixed and a
 * per-sample block); NULL graph where the CPU lacks AVX512_BF16. */
static Net build_fmnist_bf16(uint64_t seed, size_t *per_sample) {
  Net n = build_fmnist(seed, per_sample);
  if (fth_graph_set_bf16_matmul(n.graph, true) != FTH_STATUS_OK) {
    fth_model_free(n.model);
    return (Net){0};
  }
  return n;
}

/* conv-bn-relu, a residual block with batch norm, global pooling, linear, cross-entropy */
static Net build_residual(uint64_t seed, size_t *per_sample) {
  FthGraph *g = fth_graph_new(seed);
  FthNode *x = fth_input(g, "x", FTH_F32, 4, (int64_t[]){FTH_BATCH, 3, 8, 8});
  FthNode *t = fth_input(g, "t", FTH_I32, 1, (int64_t[]){FTH_BATCH});
  FthInit k = {FTH_INIT_KAIMING_NORMAL, 0, 0}, one = {FTH_INIT_ONES, 0, 0}, zero = {FTH_INIT_ZEROS, 0, 0};
  FthConv2dParams cp = {.stride = {1, 1}, .padding = {1, 1}, .dilation = {1, 1}, .groups = 1};
  FthBatchNormParams bp = {.eps = 1e-5f, .momentum = 0.1f};
  FthNode *h = x;
  for (int i = 0; i < 3; i++) {
    char name[32];
    int cin = i == 0 ? 3 : 4;
    snprintf(name, sizeof name, "conv%d", i);
    FthNode *w = fth_param(g, name, 4, (int64_t[]){4, cin, 3, 3}, k);
    snprintf(name, sizeof name, "bn%d.gamma", i);
    FthNode *gm = fth_param(g, name, 1, (int64_t[]){4}, one);
    snprintf(name, sizeof name, "bn%d.beta", i);
    FthNode *bt = fth_param(g, name, 1, (int64_t[]){4}, zero);
    snprintf(name, sizeof name, "bn%d.mean", i);
    FthNode *rm = fth_buffer(g, name, 1, (int64_t[]){4}, zero);
    snprintf(name, sizeof name, "bn%d.var", i);
    FthNode *rv = fth_buffer(g, name, 1, (int64_t[]){4}, one);
    FthNode *y = fth_batch_norm(g, fth_conv2d(g, h, w, NULL, &cp), gm, bt, rm, rv, &bp);
    h = i == 2 ? fth_relu(g, fth_add(g, y, h)) : fth_relu(g, y); /* the last one is residual */
  }
  FthNode *fw = fth_param(g, "fc.w", 2, (int64_t[]){10, 4}, k), *fb = fth_param(g, "fc.b", 1, (int64_t[]){10}, zero);
  FthNode *loss = fth_cross_entropy(g, fth_linear(g, fth_global_avg_pool2d(g, h), fw, fb), t, NULL, NULL);
  g_assert_cmpint(fth_graph_status(g), ==, FTH_STATUS_OK);
  g_assert_cmpint(fth_graph_backward(g, loss, 1.0f), ==, FTH_STATUS_OK);
  *per_sample = 3 * 8 * 8;
  return (Net){g, x, t, loss, NULL};
}

static void free_net(Net *n) {
  if (n->model)
    fth_model_free(n->model);
  else
    fth_graph_free(n->graph);
}

static void compare_models(const char *name, BuildFn build, const FthBackend *be, double tol) {
  uint64_t seed = harness_seed();
  size_t per;
  Net ref = build(seed, &per), dm = build(seed, &per);
  if (!ref.graph || !dm.graph) {
    g_test_skip("this model needs what this machine lacks");
    if (ref.graph)
      free_net(&ref);
    if (dm.graph)
      free_net(&dm);
    return;
  }
  g_assert_cmpint(fth_graph_plan(ref.graph, FTH_MODE_TRAIN, MAX_BATCH), ==, FTH_STATUS_OK);
  g_assert_cmpint(fth_graph_plan(dm.graph, FTH_MODE_TRAIN, MAX_BATCH), ==, FTH_STATUS_OK);
  FthGraphDevice *dev = NULL;
  g_assert_cmpint(fth_graph_device_new(dm.graph, be, &dev), ==, FTH_STATUS_OK);

  float *x = g_new(float, per * MAX_BATCH);
  int32_t *t = g_new(int32_t, MAX_BATCH);
  int np = fth_graph_n_params(ref.graph);
  for (int step = 0; step < 3; step++) {
    int64_t batch = step == 1 ? MAX_BATCH / 2 : MAX_BATCH;
    g_assert_cmpint(fth_graph_set_batch(ref.graph, batch), ==, FTH_STATUS_OK);
    g_assert_cmpint(fth_graph_set_batch(dm.graph, batch), ==, FTH_STATUS_OK);
    harness_normal(seed, 2000 + step, x, per * (size_t)batch);
    harness_ints(seed, 3000 + step, t, (size_t)batch, 10);
    g_assert_cmpint(fth_graph_set_input(ref.graph, ref.input, x, per * (size_t)batch * 4), ==, FTH_STATUS_OK);
    g_assert_cmpint(fth_graph_set_input(ref.graph, ref.targets, t, (size_t)batch * 4), ==, FTH_STATUS_OK);
    g_assert_cmpint(fth_graph_run(ref.graph), ==, FTH_STATUS_OK);
    g_assert_cmpint(fth_graph_device_set_input(dev, dm.input, x, per * (size_t)batch * 4), ==, FTH_STATUS_OK);
    g_assert_cmpint(fth_graph_device_set_input(dev, dm.targets, t, (size_t)batch * 4), ==, FTH_STATUS_OK);
    FthStatus st = fth_graph_device_run(dev);
    if (st != FTH_STATUS_OK)
      g_error("%s step %d: %s", name, step, fth_last_error());

    FthTensor lt;
    g_assert_cmpint(fth_graph_tensor(ref.graph, ref.loss, &lt), ==, FTH_STATUS_OK);
    float loss;
    g_assert_cmpint(fth_graph_device_read(dev, dm.loss, false, &loss, sizeof loss), ==, FTH_STATUS_OK);
    float want = *(const float *)lt.data;
    if (fabs(loss - want) > tol * (1.0 + fabs(want)))
      g_error("%s step %d: loss %.9g on %s, %.9g from fth_graph_run", name, step, (double)loss, be->name,
              (double)want);
    for (int k = 0; k < np; k++) {
      FthNode *p = fth_graph_param(ref.graph, k), *q = fth_graph_param(dm.graph, k);
      FthTensor v, gr;
      g_assert_cmpint(fth_graph_tensor(ref.graph, p, &v), ==, FTH_STATUS_OK);
      size_t bytes = fth_tensor_nbytes(&v), n = bytes / 4;
      float *got = g_malloc(bytes);
      if (fth_param_is_trainable(p)) {
        g_assert_cmpint(fth_param_grad_tensor(p, &gr), ==, FTH_STATUS_OK);
        g_assert_cmpint(fth_graph_device_read(dev, q, true, got, bytes), ==, FTH_STATUS_OK);
      } else { /* batch-norm running statistics, updated by the forward pass */
        gr = v;
        g_assert_cmpint(fth_graph_device_read(dev, q, false, got, bytes), ==, FTH_STATUS_OK);
      }
      size_t at;
      if (harness_excess(got, gr.data, n, tol, tol, &at) > 0)
        g_error("%s step %d: %s %s[%zu] is %.9g on %s, %.9g from fth_graph_run", name, step,
                fth_param_is_trainable(p) ? "gradient of" : "buffer", fth_node_name(p), at, (double)got[at],
                be->name, (double)((float *)gr.data)[at]);
      g_free(got);
    }
  }
  /* the device values come back to the graph unchanged (no optimizer ran) */
  g_assert_cmpint(fth_graph_device_download_params(dev), ==, FTH_STATUS_OK);
  for (int k = 0; k < np; k++) {
    FthTensor a, b;
    g_assert_cmpint(fth_graph_tensor(ref.graph, fth_graph_param(ref.graph, k), &a), ==, FTH_STATUS_OK);
    g_assert_cmpint(fth_graph_tensor(dm.graph, fth_graph_param(dm.graph, k), &b), ==, FTH_STATUS_OK);
    size_t at;
    g_assert_cmpfloat(harness_excess(b.data, a.data, fth_tensor_nbytes(&a) / 4, tol, tol, &at), <=, 0.0);
  }
  fth_graph_device_free(dev);
  free_net(&ref);
  free_net(&dm);
  g_free(x), g_free(t);
}

/* The CPU backend with a memory limit, standing in for a small GPU. */
typedef struct {
  FthBackend be;
  size_t limit, live;
  GHashTable *sizes;
} LimitedBackend;

static void *limited_alloc(const FthBackend *be, size_t bytes) {
  LimitedBackend *l = be->impl;
  if (l->live + bytes > l->limit) {
    fth_error(FTH_STATUS_NO_MEMORY, "limited backend: %zu + %zu bytes over %zu", l->live, bytes, l->limit);
    return NULL;
  }
  void *p = fth_backend_cpu()->alloc(fth_backend_cpu(), bytes);
  if (p) {
    l->live += bytes;
    g_hash_table_insert(l->sizes, p, GSIZE_TO_POINTER(bytes));
  }
  return p;
}

static void limited_free(const FthBackend *be, void *ptr) {
  LimitedBackend *l = be->impl;
  if (!ptr)
    return;
  l->live -= GPOINTER_TO_SIZE(g_hash_table_lookup(l->sizes, ptr));
  g_hash_table_remove(l->sizes, ptr);
  fth_backend_cpu()->free(fth_backend_cpu(), ptr);
}

static LimitedBackend limited_backend(size_t limit) {
  const FthBackend *cpu = fth_backend_cpu();
  LimitedBackend l = {.be = *cpu, .limit = limit, .sizes = g_hash_table_new(NULL, NULL)};
  l.be.name = "limited-cpu";
  l.be.alloc = limited_alloc;
  l.be.free = limited_free;
  return l;
}

/* Device bytes of the training state at `batch`: what fth_graph_device_new allocates. */
static size_t state_bytes(FthGraph *g, int64_t batch) {
  g_assert_cmpint(fth_graph_plan(g, FTH_MODE_TRAIN, batch), ==, FTH_STATUS_OK);
  FthPlanStats ps;
  g_assert_cmpint(fth_graph_plan_stats(g, &ps), ==, FTH_STATUS_OK);
  return ps.fixed_bytes + ps.per_sample_bytes * (size_t)batch + ps.param_bytes + ps.param_grad_bytes;
}

/* Out of memory halves the batch until the state fits; with the planner's estimate the largest
 * batch that fits is found at once. Either way the fitted graph then trains. */
static void test_fit(void) {
  size_t per;
  Net n = build_residual(harness_seed(), &per);
  size_t limit = state_bytes(n.graph, 20);
  g_assert_cmpuint(state_bytes(n.graph, 17), <, limit);
  g_assert_cmpuint(state_bytes(n.graph, 21), >, limit);
  for (int estimate = 0; estimate < 2; estimate++) {
    LimitedBackend l = limited_backend(limit);
    l.be.impl = &l;
    FthGraphDevice *dev = NULL;
    int64_t batch = 0;
    FthStatus st = fth_graph_device_fit(n.graph, &l.be, FTH_MODE_TRAIN, 64, estimate ? limit : 0, &dev, &batch);
    g_assert_cmpint(st, ==, FTH_STATUS_OK);
    g_assert_cmpint(batch, ==, estimate ? 20 : 16); /* 64 and 32 fail, 16 fits; the estimate finds 20 */
    g_assert_cmpint(fth_graph_batch(n.graph), ==, batch);
    float *x = g_new(float, per * (size_t)batch);
    int32_t *t = g_new0(int32_t, batch);
    harness_normal(harness_seed(), 4000, x, per * (size_t)batch);
    g_assert_cmpint(fth_graph_device_set_input(dev, n.input, x, per * (size_t)batch * 4), ==, FTH_STATUS_OK);
    g_assert_cmpint(fth_graph_device_set_input(dev, n.targets, t, (size_t)batch * 4), ==, FTH_STATUS_OK);
    g_assert_cmpint(fth_graph_device_run(dev), ==, FTH_STATUS_OK);
    fth_graph_device_free(dev);
    g_assert_cmpuint(l.live, ==, 0);
    g_hash_table_unref(l.sizes);
    g_free(x), g_free(t);
  }
  /* a budget below batch 1 is refused */
  LimitedBackend l = limited_backend(limit);
  l.be.impl = &l;
  FthGraphDevice *dev = NULL;
  int64_t batch = 0;
  g_assert_cmpint(fth_graph_device_fit(n.graph, &l.be, FTH_MODE_TRAIN, 64, 1000, &dev, &batch), ==,
                  FTH_STATUS_NO_MEMORY);
  g_assert_null(dev);
  g_hash_table_unref(l.sizes);
  free_net(&n);
}

typedef struct {
  const char *name;
  BuildFn build;
} ModelCase;

static const ModelCase models[] = {
  {"fmnist-cnn", build_fmnist}, {"fmnist-cnn-bf16", build_fmnist_bf16}, {"residual-bn", build_residual}};

static void test_cpu(gconstpointer data) {
  const ModelCase *m = data;
  compare_models(m->name, m->build, fth_backend_cpu(), 0.0);
}

static void test_cuda(gconstpointer data) {
  const ModelCase *m = data;
  compare_models(m->name, m->build, harness_cuda_or_skip(), 2e-4);
}

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, NULL);
  bool device = fth_cuda_device_count(NULL) > 0;
  for (int i = 0; i < 3; i++) {
    char *p = g_strdup_printf("/graph-device/cpu/%s", models[i].name);
    g_test_add_data_func(p, &models[i], test_cpu);
    g_free(p);
    if (device) {
      p = g_strdup_printf("/graph-device/cuda/%s", models[i].name);
      g_test_add_data_func(p, &models[i], test_cuda);
      g_free(p);
    }
  }
  g_test_add_func("/graph-device/fit", test_fit);
  return g_test_run();
}
