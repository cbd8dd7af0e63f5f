/* The trainer's device path, run here on the CPU backend used as a device (its own memory,
 * copies through copy_in/copy_out): it trains to the losses and weights of the plain CPU trainer
 * (the host optimizer fallback and a backend optimizer entry point), fth_train through it
 * resumes to the weights of an uninterrupted run, an allocator that fails above a budget makes
 * the batch halve, and fp16's loss scaling skips a step with Inf gradients and halves the scale. */
#include <fathom/safetensors.h>
#include <fathom/train.h>
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#include "../../engine/train/train-private.h"
#include "fixtures.h"

enum { N = 96, S = 8, N_CLASSES = 3, BATCH = 16 };

#define RECIPE_FMT \
  "{\"name\": \"tiny-device\", \"input\": {\"shape\": [1, 8, 8]}," \
  " \"layers\": [{\"type\": \"conv2d\", \"out_channels\": 4, \"kernel\": 3, \"padding\": 1}," \
  "  {\"type\": \"batch_norm\"}, {\"type\": \"relu\"}, {\"type\": \"max_pool2d\", \"kernel\": 2}," \
  "  {\"type\": \"flatten\"}, {\"type\": \"dropout\", \"p\": 0.2}," \
  "  {\"type\": \"linear\", \"out_features\": 16}, {\"type\": \"relu\"}," \
  "  {\"type\": \"linear\", \"out_features\": \"classes\"}]," \
  " \"train\": {\"optimizer\": \"%s\", \"lr\": %s, \"momentum\": 0.9, \"batch\": 16," \
  "  \"epochs\": 2, \"schedule\": \"cosine\", \"warmup_steps\": 3}}"

static guint8 pixels[N * S * S];
static int32_t labels[N];
static FthSamples samples = {pixels, labels, NULL, N, 1, S, S};
static uint32_t all_idx[N];

/* Class k: a bright bar in rows 2k..2k+2 over fresh noise. */
static void
make_samples(void)
{
  for (int i = 0; i < N; i++) {
    labels[i] = i % N_CLASSES;
    all_idx[i] = (uint32_t)i;
    for (int p = 0; p < S * S; p++) {
      int row = p / S;
      gboolean bar = row >= 2 * labels[i] + 1 && row < 2 * labels[i] + 3;
      pixels[i * S * S + p] = (guint8)((bar ? 170 : 20) + g_test_rand_int_range(0, 60));
    }
  }
}

static FthRecipe *
recipe(const char *optimizer)
{
  g_autofree char *json = g_strdup_printf(RECIPE_FMT, optimizer,
                                          strcmp(optimizer, "sgd") == 0 ? "0.05" : "0.005");
  GError *error = NULL;
  FthRecipe *r = fth_recipe_parse(json, -1, "tiny-device", NULL, &error);
  g_assert_no_error(error);
  return r;
}

static FthTrainer *
trainer(const FthRecipe *r)
{
  FthTrainerConfig cfg = {.seed = 7, .batch = BATCH, .epochs = r->train.epochs, .n_train = N,
                          .optim = r->train.optim, .schedule = r->train.schedule};
  cfg.schedule.total_steps = (N / BATCH) * cfg.epochs;
  GError *error = NULL;
  FthTrainer *t = fth_trainer_new(r, N_CLASSES, &cfg, &error);
  g_assert_no_error(error);
  return t;
}

/* ---- a CPU backend as a device whose allocator counts and can fail above a budget, and that
 * may have an optimizer entry point (the engine's optimizer over the buffers it is given) ---- */

static FthBackend fake;
static GHashTable *live_sizes;
static size_t live_bytes, budget_bytes, peak_bytes;
static int n_updates;

static void *
fake_alloc(const FthBackend *be, size_t bytes)
{
  (void)be;
  if (budget_bytes && live_bytes + bytes > budget_bytes)
    return NULL;
  void *p = fth_backend_cpu()->alloc(fth_backend_cpu(), bytes);
  g_assert_nonnull(p);
  g_hash_table_insert(live_sizes, p, GSIZE_TO_POINTER(bytes));
  live_bytes += bytes;
  peak_bytes = MAX(peak_bytes, live_bytes);
  return p;
}

static void
fake_free(const FthBackend *be, void *p)
{
  (void)be;
  if (p == NULL)
    return;
  live_bytes -= GPOINTER_TO_SIZE(g_hash_table_lookup(live_sizes, p));
  g_assert_true(g_hash_table_remove(live_sizes, p));
  fth_backend_cpu()->free(fth_backend_cpu(), p);
}

static FthStatus
fake_optim_update(const FthBackend *be, const FthOptimConfig *cfg, float lr, float weight_decay,
                  int64_t t, float *value, const float *grad, float *const *state, size_t n)
{
  (void)be;
  FthOptimConfig c = *cfg;
  c.weight_decay = weight_decay;
  FthParam p = {"p", value, (float *)grad, n, TRUE};
  FthOptimizer *o = fth_optimizer_new(&c, &p, 1);
  g_assert_nonnull(o);
  for (int k = 0; k < fth_optimizer_n_state(o); k++)
    memcpy(fth_optimizer_state(o, 0, k), state[k], n * sizeof(float));
  fth_optimizer_set_steps(o, t - 1);
  fth_optimizer_step(o, lr);
  for (int k = 0; k < fth_optimizer_n_state(o); k++)
    memcpy(state[k], fth_optimizer_state(o, 0, k), n * sizeof(float));
  fth_optimizer_free(o);
  n_updates++;
  return FTH_STATUS_OK;
}

/* Kernels that run out of memory above a batch, as a library workspace would. */
static int64_t run_fails_above;

static FthStatus
fake_run_node(const FthBackend *be, FthOp op, const FthKernelArgs *args)
{
  if (run_fails_above > 0 && args->ctx->batch > run_fails_above)
    return fth_error(FTH_STATUS_NO_MEMORY, "fake device: no workspace at batch %lld",
                     (long long)args->ctx->batch);
  return fth_backend_cpu()->run_node(be, op, args);
}

static const FthBackend *
fake_device(gboolean with_optimizer, size_t budget)
{
  fake = *fth_backend_cpu();
  fake.name = "fake";
  fake.alloc = fake_alloc;
  fake.free = fake_free;
  fake.optim_update = with_optimizer ? fake_optim_update : NULL;
  fake.run_node = fake_run_node;
  run_fails_above = 0;
  budget_bytes = budget;
  peak_bytes = live_bytes;
  n_updates = 0;
  return &fake;
}

/* Every parameter and buffer of the trainer's model, in order (after fth_trainer_sync_host);
 * only the trainable ones with trainable_only. */
static GArray *
values(FthTrainer *t, gboolean trainable_only)
{
  GError *error = NULL;
  g_assert_true(fth_trainer_sync_host(t, &error));
  g_assert_no_error(error);
  FthGraph *g = fth_trainer_model(t)->graph;
  GArray *w = g_array_new(FALSE, FALSE, sizeof(float));
  for (int i = 0; i < fth_graph_n_params(g); i++) {
    if (trainable_only && !fth_param_is_trainable(fth_graph_param(g, i)))
      continue;
    FthTensor v;
    g_assert_cmpint(fth_graph_tensor(g, fth_graph_param(g, i), &v), ==, FTH_STATUS_OK);
    g_array_append_vals(w, v.data, (guint)fth_tensor_numel(&v));
  }
  return w;
}

static GArray *
weights(FthTrainer *t)
{
  return values(t, FALSE);
}

static void
assert_close(const GArray *a, const GArray *b, double tol)
{
  g_assert_cmpuint(a->len, ==, b->len);
  for (guint i = 0; i < a->len; i++) {
    double x = g_array_index(a, float, i), y = g_array_index(b, float, i);
    if (fabs(x - y) > tol * (1 + fabs(y)))
      g_error("value %u: %.9g against %.9g", i, x, y);
  }
}

/* Steps [first, stop) of epoch 0 (stop <= 0: the whole epoch); the epoch's mean loss. */
static double
run(FthTrainer *t, int epoch, int64_t first, int64_t stop)
{
  FthTrainProgress p = {0};
  gboolean interrupted;
  GError *error = NULL;
  g_assert_true(fth_trainer_run_epoch(t, &samples, all_idx, N, epoch, first, stop, &p, NULL, NULL,
                                      NULL, &interrupted, &error));
  g_assert_no_error(error);
  g_assert_true(isfinite(p.train_loss));
  return p.train_loss;
}

/* The device path trains to the CPU trainer's losses, weights (batch-norm statistics included)
 * and evaluation, with the host optimizer fallback and with a backend optimizer. */
static void
test_same_as_cpu(void)
{
  const char *optimizers[] = {"sgd", "adamw"};
  for (int o = 0; o < 2; o++)
    for (int with_opt = 0; with_opt < 2; with_opt++) {
      g_autoptr(FthRecipe) r = recipe(optimizers[o]);
      g_autoptr(FthTrainer) cpu = trainer(r);
      g_autoptr(FthTrainer) dev = trainer(r);
      g_autoptr(GArray) w0 = weights(dev);
      GError *error = NULL;
      g_assert_true(fth_trainer_use_device(dev, fake_device(with_opt, 0), 0, &error));
      g_assert_no_error(error);
      g_assert_true(fth_trainer_backend(dev) == &fake);
      for (int e = 0; e < 2; e++) {
        double lc = run(cpu, e, 0, 0), ld = run(dev, e, 0, 0);
        g_assert_cmpfloat(fabs(lc - ld), <=, 1e-5 * fabs(lc));
      }
      int np = (int)fth_optimizer_n_params(fth_trainer_optimizer(dev));
      g_assert_cmpint(n_updates, ==, with_opt ? 2 * (N / BATCH) * np : 0);
      g_autoptr(GArray) wc = weights(cpu);
      g_autoptr(GArray) wd = weights(dev);
      assert_close(wd, wc, 1e-5);
      gboolean moved = FALSE;
      for (guint i = 0; i < w0->len && !moved; i++)
        moved = g_array_index(w0, float, i) != g_array_index(wd, float, i);
      g_assert_true(moved);
      for (int k = 0; k < fth_optimizer_n_state(fth_trainer_optimizer(cpu)); k++)
        for (size_t p = 0; p < fth_optimizer_n_params(fth_trainer_optimizer(cpu)); p++) {
          const float *a = fth_optimizer_state(fth_trainer_optimizer(cpu), p, k);
          const float *b = fth_optimizer_state(fth_trainer_optimizer(dev), p, k);
          for (size_t i = 0; i < fth_optimizer_param(fth_trainer_optimizer(cpu), p)->n; i++)
            g_assert_cmpfloat(fabs(a[i] - b[i]), <=, 1e-5 * (1 + fabs(a[i])));
        }
      g_autoptr(FthConfusion) cc = fth_confusion_new(N_CLASSES);
      g_autoptr(FthConfusion) cd = fth_confusion_new(N_CLASSES);
      double vc, vd;
      g_assert_true(fth_trainer_evaluate(cpu, &samples, all_idx, N, cc, &vc, &error));
      g_assert_true(fth_trainer_evaluate(dev, &samples, all_idx, N, cd, &vd, &error));
      g_assert_no_error(error);
      g_assert_cmpfloat(fabs(vc - vd), <=, 1e-5 * vc);
      g_assert_cmpmem(cc->counts, sizeof(int64_t) * N_CLASSES * N_CLASSES, cd->counts,
                      sizeof(int64_t) * N_CLASSES * N_CLASSES);
      /* training again after the evaluation's plan: the device keeps its parameters */
      g_assert_cmpfloat(fabs(run(cpu, 2, 0, 0) - run(dev, 2, 0, 0)), <=, 1e-4);
    }
  g_assert_cmpuint(live_bytes, ==, 0);
}

/* Device bytes of the training plan at `batch`: arena, parameters and their gradients. */
static size_t
device_bytes(FthTrainer *t, int64_t batch)
{
  FthGraph *g = fth_trainer_model(t)->graph;
  FthPlanStats st;
  g_assert_cmpint(fth_graph_plan(g, FTH_MODE_TRAIN, batch), ==, FTH_STATUS_OK);
  g_assert_cmpint(fth_graph_plan_stats(g, &st), ==, FTH_STATUS_OK);
  return st.fixed_bytes + st.per_sample_bytes * (size_t)batch + st.param_bytes + st.param_grad_bytes;
}

/* An allocator that fails above a budget: the batch halves until the device state fits; the
 * planner's estimate picks the batch directly when given the budget; no batch fits a budget
 * below batch 1's; kernels that run out of memory in a step halve it too, and the probe step
 * that finds out leaves the weights and batch-norm statistics as they were. */
static void
test_oom_halving(void)
{
  g_autoptr(FthRecipe) r = recipe("sgd");
  GError *error = NULL;
  {
    g_autoptr(FthTrainer) t = trainer(r);
    size_t need16 = device_bytes(t, 16), need8 = device_bytes(t, 8);
    g_assert_cmpuint(need8, <, need16);
    g_assert_true(fth_trainer_use_device(t, fake_device(FALSE, need16 - 1), 0, &error));
    g_assert_no_error(error);
    g_assert_cmpint(fth_trainer_config(t)->batch, ==, 8);
    g_assert_cmpint(fth_trainer_steps_per_epoch(t), ==, N / 8);
    g_assert_cmpint(fth_trainer_config(t)->schedule.total_steps, ==, (N / 8) * 2);
    g_assert_cmpuint(peak_bytes, <=, need16 - 1);
    run(t, 0, 0, 0);
  }
  {
    g_autoptr(FthTrainer) t = trainer(r);
    size_t need4 = device_bytes(t, 4);
    g_assert_true(fth_trainer_use_device(t, fake_device(FALSE, 0), need4, &error));
    g_assert_no_error(error);
    g_assert_cmpint(fth_trainer_config(t)->batch, ==, 4);
    run(t, 0, 0, 3);
  }
  {
    g_autoptr(FthTrainer) t = trainer(r);
    size_t need1 = device_bytes(t, 1);
    g_assert_false(fth_trainer_use_device(t, fake_device(FALSE, need1 - 1), 0, &error));
    g_assert_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_ENGINE);
    g_clear_error(&error);
  }
  {
    g_autoptr(FthTrainer) t = trainer(r);
    g_autoptr(GArray) w0 = weights(t);
    fake_device(FALSE, 0);
    run_fails_above = 5;
    g_assert_true(fth_trainer_use_device(t, &fake, 0, &error));
    g_assert_no_error(error);
    g_assert_cmpint(fth_trainer_config(t)->batch, ==, 4);
    g_autoptr(GArray) w1 = weights(t);
    g_assert_cmpmem(w0->data, w0->len * sizeof(float), w1->data, w1->len * sizeof(float));
    run(t, 0, 0, 3);
    run_fails_above = 0;
  }
  g_assert_cmpuint(live_bytes, ==, 0);
}

typedef struct {
  int calls, inject_at;
  gboolean on_device;
  size_t n_params;
} Hook;

/* Makes one gradient infinite at the chosen call, as an fp16 overflow would. */
static gboolean
grad_hook(const FthParam *params, size_t n_params, gboolean on_device, gpointer data,
          GError **error)
{
  (void)error;
  Hook *h = data;
  h->on_device = on_device;
  h->n_params = n_params;
  if (h->calls++ == h->inject_at)
    params[n_params - 1].grad[0] = INFINITY; /* the fake device's memory is the host's */
  return TRUE;
}

static gboolean
same_weights(const GArray *a, const GArray *b)
{
  return a->len == b->len && memcmp(a->data, b->data, a->len * sizeof(float)) == 0;
}

/* fp16 on the device path: with a power-of-two scale and no overflow it trains as fp32 does and
 * the scale doubles after each growth interval; an Inf gradient skips the step (the weights stay,
 * the optimizer's step count too) and halves the scale. */
static void
test_fp16_loss_scaling(void)
{
  g_autoptr(FthRecipe) r = recipe("adamw");
  GError *error = NULL;
  g_autoptr(FthTrainer) ref = trainer(r);
  g_autoptr(FthTrainer) half = trainer(r);
  g_assert_true(fth_trainer_use_device(ref, fake_device(FALSE, 0), 0, &error));
  g_assert_true(fth_trainer_set_precision(half, FTH_PRECISION_FP16, &error));
  g_assert_true(fth_trainer_set_loss_scaling(half, 1024.0f, 3, &error));
  g_assert_true(fth_trainer_use_device(half, &fake, 0, &error));
  g_assert_no_error(error);
  g_assert_cmpfloat(fth_trainer_loss_scale(half), ==, 1024.0f);
  double lr_ = run(ref, 0, 0, 0), lh = run(half, 0, 0, 0);
  g_assert_cmpfloat(fabs(lr_ - lh), <=, 1e-5 * lr_);
  g_autoptr(GArray) wr = weights(ref);
  g_autoptr(GArray) wh = weights(half);
  assert_close(wh, wr, 1e-5);
  g_assert_cmpfloat(fth_trainer_loss_scale(half), ==, 1024.0f * 4); /* 6 clean steps, interval 3 */
  g_assert_cmpint(fth_trainer_skipped_steps(half), ==, 0);

  g_autoptr(FthTrainer) t = trainer(r);
  Hook h = {.inject_at = 2};
  fth_trainer_set_grad_hook(t, grad_hook, &h);
  g_assert_true(fth_trainer_set_precision(t, FTH_PRECISION_FP16, &error));
  g_assert_true(fth_trainer_set_loss_scaling(t, 4096.0f, 1000, &error));
  g_assert_true(fth_trainer_use_device(t, fake_device(TRUE, 0), 0, &error));
  g_assert_no_error(error);
  run(t, 0, 0, 2);
  g_assert_cmpint(fth_optimizer_steps(fth_trainer_optimizer(t)), ==, 2);
  /* batch-norm statistics move in the forward pass of a skipped step too, as in PyTorch */
  g_autoptr(GArray) before = values(t, TRUE);
  run(t, 0, 2, 3);
  g_autoptr(GArray) after = values(t, TRUE);
  g_assert_true(same_weights(before, after));
  g_assert_cmpint(fth_trainer_skipped_steps(t), ==, 1);
  g_assert_cmpfloat(fth_trainer_loss_scale(t), ==, 2048.0f);
  g_assert_cmpint(fth_optimizer_steps(fth_trainer_optimizer(t)), ==, 2);
  size_t np = fth_optimizer_n_params(fth_trainer_optimizer(t));
  g_assert_cmpint(n_updates, ==, 2 * (int)np);
  g_assert_true(h.on_device);
  g_assert_cmpuint(h.n_params, ==, np);
  run(t, 0, 3, 4);
  g_autoptr(GArray) later = values(t, TRUE);
  g_assert_false(same_weights(after, later));
  g_assert_cmpfloat(fth_trainer_loss_scale(t), ==, 2048.0f);
  g_assert_cmpint(h.calls, ==, 4);
}

/* bf16 on the CPU is the graph's bf16 GEMMs, on the plain path and on the device path alike:
 * losses near fp32's but not equal to them. */
static void
test_bf16(void)
{
  g_autoptr(FthRecipe) r = recipe("sgd");
  g_autoptr(FthTrainer) ref = trainer(r);
  g_autoptr(FthTrainer) plain = trainer(r);
  g_autoptr(FthTrainer) dev = trainer(r);
  GError *error = NULL;
  if (!fth_trainer_set_precision(plain, FTH_PRECISION_BF16, &error)) {
    g_test_skip(error->message); /* no AVX512_BF16 */
    g_clear_error(&error);
    return;
  }
  g_assert_true(fth_trainer_set_precision(dev, FTH_PRECISION_BF16, &error));
  g_assert_true(fth_trainer_use_device(dev, fake_device(FALSE, 0), 0, &error));
  g_assert_no_error(error);
  g_assert_true(fth_graph_bf16_matmul(fth_trainer_model(dev)->graph));
  double l32 = run(ref, 0, 0, 0), lp = run(plain, 0, 0, 0), ld = run(dev, 0, 0, 0);
  g_assert_cmpfloat(lp, !=, l32);
  g_assert_cmpfloat(fabs(lp - l32), <=, 2e-2 * l32);
  g_assert_cmpfloat(fabs(lp - ld), <=, 1e-5 * lp);
  g_assert_true(fth_trainer_set_precision(plain, FTH_PRECISION_FP32, &error));
  g_assert_false(fth_graph_bf16_matmul(fth_trainer_model(plain)->graph));
}

/* ---- fth_train through the device path ---- */

static char *tmp_root, *recipe_path, *project;

/* The samples as a project, each item with its class (labels[i] = i % N_CLASSES). */
static char *
make_project(void)
{
  char *dir = g_build_filename(tmp_root, "project", NULL);
  GError *error = NULL;
  g_autoptr(FthStore) store = fth_store_create(dir, &error);
  g_assert_no_error(error);
  g_autofree char *idx_path = g_build_filename(dir, "images-idx3-ubyte", NULL);
  const guint32 dims[3] = { N, S, S };
  fth_test_write_idx(idx_path, dims, 3, pixels, FALSE);
  gint64 ids[N_CLASSES];
  const char *const names[N_CLASSES] = { "a", "b", "c" };
  fth_test_add_labels(store, names, N_CLASSES, ids);
  fth_test_add_idx_items(store, idx_path, N, S, ids, N_CLASSES, N, NULL);
  return dir;
}

static gboolean
train(const char *ckpt, int64_t stop, gboolean resume, FthTrainResult *res, GError **error)
{
  g_autoptr(FthStore) store = fth_store_open(project, error);
  g_assert_nonnull(store);
  FthTrainOptions o;
  fth_train_options_init(&o);
  o.recipe = recipe_path;
  o.device = "cpu";
  o.checkpoint_dir = ckpt;
  o.stop_after_steps = stop;
  o.resume = resume;
  gboolean ok = fth_train(store, &o, res, error);
  if (ok && res->run_id > 0) {
    g_autoptr(FthRun) run = fth_store_get_run(store, res->run_id, error);
    g_assert_nonnull(strstr(run->config_json, "\"device\":\"cpu\""));
    g_assert_nonnull(strstr(run->config_json, "\"precision\":\"fp32\""));
    g_autofree char *bytes = g_strdup_printf("\"bytes_per_sample_fp32\":%zu", res->bytes_per_sample);
    g_assert_nonnull(strstr(run->config_json, bytes));
    g_assert_cmpuint(res->bytes_per_sample, >, 0);
    g_assert_cmpuint(res->bytes_per_sample, ==, res->bytes_per_sample_fp32);
  }
  return ok;
}

/* fth_predict of checkpoint `ckpt` (batch 40: a short last batch) on the forced device path or
 * the plain one; its run id. */
static gint64
predict(const char *ckpt, const FthBackend *be)
{
  GError *error = NULL;
  g_autoptr(FthStore) store = fth_store_open(project, &error);
  g_assert_no_error(error);
  fth_train_force_device(be);
  FthPredictOptions o = {.checkpoint_dir = ckpt, .batch = 40, .device = "cpu"};
  gint64 run;
  gsize n;
  g_assert_true(fth_predict(store, &o, &run, &n, &error));
  g_assert_no_error(error);
  g_assert_cmpuint(n, ==, N);
  fth_train_force_device(NULL);
  return run;
}

/* A run through the device path stopped mid-epoch and resumed ends with the weights of one that
 * never stopped, and both match the plain CPU path's; prediction through the device path gives
 * the plain path's probabilities. */
static void
test_fth_train_resume(void)
{
  g_autofree char *a = g_build_filename(tmp_root, "a", NULL);
  g_autofree char *b = g_build_filename(tmp_root, "b", NULL);
  g_autofree char *c = g_build_filename(tmp_root, "c", NULL);
  FthTrainResult res;
  GError *error = NULL;
  fth_train_force_device(fake_device(TRUE, 0));
  g_assert_true(train(a, 0, FALSE, &res, &error));
  g_assert_no_error(error);
  int64_t total = res.steps;
  g_assert_cmpint(n_updates, >, 0);
  fth_train_result_clear(&res);
  g_assert_true(train(b, total / 2 + 1, FALSE, &res, &error));
  g_assert_true(res.stopped);
  fth_train_result_clear(&res);
  g_assert_true(train(b, 0, TRUE, &res, &error));
  g_assert_no_error(error);
  g_assert_cmpint(res.steps, ==, total);
  fth_train_result_clear(&res);
  g_autoptr(GByteArray) wa = train_test_checkpoint_weights(a);
  g_autoptr(GByteArray) wb = train_test_checkpoint_weights(b);
  g_assert_cmpmem(wa->data, wa->len, wb->data, wb->len);

  fth_train_force_device(NULL);
  g_assert_true(train(c, 0, FALSE, &res, &error));
  g_assert_no_error(error);
  fth_train_result_clear(&res);
  g_autoptr(GByteArray) wc = train_test_checkpoint_weights(c);
  g_assert_cmpuint(wa->len, ==, wc->len);
  const float *fa = (const float *)(void *)wa->data, *fc = (const float *)(void *)wc->data;
  for (guint i = 0; i < wa->len / sizeof(float); i++)
    g_assert_cmpfloat(fabs(fa[i] - fc[i]), <=, 1e-5 * (1 + fabs(fc[i])));
  g_assert_cmpuint(live_bytes, ==, 0);

  gint64 on_dev = predict(a, fake_device(FALSE, 0));
  g_assert_cmpuint(peak_bytes, >, 0); /* it ran on the device's memory */
  g_assert_cmpuint(live_bytes, ==, 0);
  gint64 plain = predict(a, NULL);
  g_autoptr(FthStore) store = fth_store_open(project, &error);
  g_autoptr(FthDataset) ds = fth_dataset_open(store, FTH_DATASET_ALL, 1, NULL, &error);
  g_assert_no_error(error);
  for (size_t i = 0; i < fth_dataset_size(ds); i++) {
    gint64 item = fth_dataset_item_id(ds, i);
    g_autoptr(FthPrediction) pd = fth_store_get_prediction(store, on_dev, item, &error);
    g_autoptr(FthPrediction) pp = fth_store_get_prediction(store, plain, item, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(pd->n_classes, ==, N_CLASSES);
    for (int k = 0; k < N_CLASSES; k++)
      g_assert_cmpfloat(fabs(pd->probs[k] - pp->probs[k]), <=, 1e-5);
  }
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  live_sizes = g_hash_table_new(NULL, NULL);
  make_samples();
  tmp_root = g_dir_make_tmp("fth-trainer-device-XXXXXX", NULL);
  g_assert_nonnull(tmp_root);
  recipe_path = g_build_filename(tmp_root, "tiny-device.json", NULL);
  g_autofree char *json = g_strdup_printf(RECIPE_FMT, "sgd", "0.05");
  g_assert_true(g_file_set_contents(recipe_path, json, -1, NULL));
  project = make_project();
  g_test_add_func("/trainer-device/same-as-cpu", test_same_as_cpu);
  g_test_add_func("/trainer-device/oom-halving", test_oom_halving);
  g_test_add_func("/trainer-device/fp16-loss-scaling", test_fp16_loss_scaling);
  g_test_add_func("/trainer-device/bf16", test_bf16);
  g_test_add_func("/trainer-device/fth-train-resume", test_fth_train_resume);
  int rc = g_test_run();
  train_test_rmtree(tmp_root);
  g_free(tmp_root);
  g_free(recipe_path);
  g_free(project);
  g_hash_table_destroy(live_sizes);
  return rc;
}
