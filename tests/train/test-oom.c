/* Gradient accumulation and the trainer's answer to running out of memory, on the CPU backend used
 * as a device (fth_trainer_use_device) whose kernels and optimizer fail with NO_MEMORY on demand,
 * as a GPU's library workspaces would:
 * - micro-batches whose gradients are summed give the full batch's step (fresh random data and
 *   loss weights, uneven micro-batches, on the CPU path and on the device path);
 * - a backward pass that runs out of memory mid-epoch makes the trainer halve the micro-batch and
 *   redo the step: the run reports the event and its loss curve is that of 2 micro-batches from
 *   the start (and of the full batch, closely: no batch norm in the model);
 * - with batch norm and dropout the failed attempt leaves no trace: losses, weights and running
 *   statistics equal a run that switched to 2 micro-batches at that step by itself;
 * - an update on the device that runs out of memory goes on from the parameter it stopped at;
 * - fth_train records the events in the store and resumes with the micro-batches that fit, and
 *   a micro-batch of 1 that does not fit ends the run with a clear error and the last checkpoint
 *   intact. */
#include <fathom/train.h>
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#include "../../engine/train/train-private.h"

enum { N = 96, S = 8, N_CLASSES = 3, BATCH = 16, EPOCHS = 2, OOM_STEP = 3 };

#define MLP \
  "[{\"type\": \"flatten\"}, {\"type\": \"linear\", \"out_features\": 24}, {\"type\": \"relu\"}," \
  " {\"type\": \"linear\", \"out_features\": \"classes\"}]"
#define BN_DROPOUT \
  "[{\"type\": \"conv2d\", \"out_channels\": 4, \"kernel\": 3, \"padding\": 1}," \
  " {\"type\": \"batch_norm\"}, {\"type\": \"relu\"}, {\"type\": \"max_pool2d\", \"kernel\": 2}," \
  " {\"type\": \"flatten\"}, {\"type\": \"dropout\", \"p\": 0.2}," \
  " {\"type\": \"linear\", \"out_features\": \"classes\"}]"
#define RECIPE_FMT \
  "{\"name\": \"oom\", \"input\": {\"shape\": [1, 8, 8]}, \"layers\": %s," \
  " \"train\": {\"optimizer\": \"sgd\", \"lr\": 0.05, \"momentum\": 0.9, \"batch\": 16," \
  "  \"epochs\": 2, \"schedule\": \"cosine\", \"warmup_steps\": 2}}"

static guint8 pixels[N * S * S];
static int32_t labels[N];
static float loss_weights[N];
static FthSamples samples = {pixels, labels, NULL, N, 1, S, S};
static uint32_t all_idx[N];
static char *tmp_root;

/* Class k: a bright bar in rows 2k+1..2k+2 over fresh noise; loss weights in [0.25, 1.75). */
static void
make_samples(void)
{
  for (int i = 0; i < N; i++) {
    labels[i] = (int32_t)g_test_rand_int_range(0, N_CLASSES);
    all_idx[i] = (uint32_t)i;
    loss_weights[i] = (float)g_test_rand_double_range(0.25, 1.75);
    for (int p = 0; p < S * S; p++) {
      int row = p / S;
      gboolean bar = row >= 2 * labels[i] + 1 && row < 2 * labels[i] + 3;
      pixels[i * S * S + p] = (guint8)((bar ? 150 : 20) + g_test_rand_int_range(0, 80));
    }
  }
}

static void
rmtree(const char *path)
{
  GDir *d = g_file_test(path, G_FILE_TEST_IS_DIR) ? g_dir_open(path, 0, NULL) : NULL;
  const char *name;
  while (d != NULL && (name = g_dir_read_name(d)) != NULL) {
    g_autofree char *child = g_build_filename(path, name, NULL);
    rmtree(child);
  }
  if (d != NULL) {
    g_dir_close(d);
    g_rmdir(path);
  } else {
    g_unlink(path);
  }
}

static FthRecipe *
recipe(const char *layers)
{
  g_autofree char *json = g_strdup_printf(RECIPE_FMT, layers);
  GError *error = NULL;
  FthRecipe *r = fth_recipe_parse(json, -1, "oom", NULL, &error);
  g_assert_no_error(error);
  return r;
}

static FthTrainer *
trainer(const FthRecipe *r, int accumulate)
{
  FthTrainerConfig cfg = {.seed = 5, .batch = BATCH, .accumulate = accumulate, .epochs = EPOCHS,
                          .n_train = N, .optim = r->train.optim, .schedule = r->train.schedule};
  cfg.schedule.total_steps = (N / BATCH) * EPOCHS;
  GError *error = NULL;
  FthTrainer *t = fth_trainer_new(r, N_CLASSES, &cfg, &error);
  g_assert_no_error(error);
  return t;
}

/* ---- the device: the CPU backend, whose backward pass runs out of memory above a batch and
 * whose optimizer entry point can run out of memory once, at a chosen parameter ---- */

static FthBackend fake;
static gboolean oom_armed;
static int64_t oom_above;        /* armed: the loss's gradient fails at a larger batch */
static int optim_oom_at = -1;    /* >= 0: the update of this parameter fails once */
static int n_oom;                /* failures reported */

static FthStatus
fake_run_node(const FthBackend *be, FthOp op, const FthKernelArgs *args)
{
  /* After the forward pass, so batch norm has updated its running statistics. */
  if (oom_armed && op == FTH_OP_CROSS_ENTROPY_GRAD && args->ctx->batch > oom_above) {
    n_oom++;
    return fth_error(FTH_STATUS_NO_MEMORY, "fake device: no workspace for a batch of %lld",
                     (long long)args->ctx->batch);
  }
  return fth_backend_cpu()->run_node(be, op, args);
}

/* fathom/optim.h's update over the buffers it is given, as a backend's would be. */
static FthStatus
fake_optim_update(const FthBackend *be, const FthOptimConfig *cfg, float lr, float weight_decay,
                  int64_t t, float *value, const float *grad, float *const *state, size_t n)
{
  (void)be;
  if (optim_oom_at == 0) {
    optim_oom_at = -1;
    n_oom++;
    return fth_error(FTH_STATUS_NO_MEMORY, "fake device: no memory for the update");
  }
  if (optim_oom_at > 0)
    optim_oom_at--;
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
  return FTH_STATUS_OK;
}

static const FthBackend *
fake_device(gboolean with_optimizer)
{
  fake = *fth_backend_cpu();
  fake.name = "fake";
  fake.run_node = fake_run_node;
  fake.optim_update = with_optimizer ? fake_optim_update : NULL;
  oom_armed = FALSE;
  optim_oom_at = -1;
  n_oom = 0;
  return &fake;
}

static void
use_device(FthTrainer *t, gboolean with_optimizer)
{
  GError *error = NULL;
  g_assert_true(fth_trainer_use_device(t, fake_device(with_optimizer), 0, &error));
  g_assert_no_error(error);
  g_assert_cmpint(fth_trainer_config(t)->batch, ==, BATCH);
}

/* ---- training step by step ---- */

static GPtrArray *messages;

static void
on_progress(const FthTrainProgress *p, gpointer data)
{
  (void)data;
  if (p->message != NULL)
    g_ptr_array_add(messages, g_strdup(p->message));
}

typedef void (*BeforeStep)(FthTrainer *t, int64_t step);

/* Every step of EPOCHS epochs, one run_epoch call each (stopped after its step), with `before`
 * called first; losses[step] receives each step's loss. */
static void
train_steps(FthTrainer *t, const FthSamples *s, BeforeStep before, double *losses)
{
  int64_t spe = fth_trainer_steps_per_epoch(t);
  for (int e = 0; e < EPOCHS; e++)
    for (int64_t b = 0; b < spe; b++) {
      int64_t step = e * spe + b;
      if (before != NULL)
        before(t, step);
      FthTrainProgress p = {0};
      gboolean interrupted;
      GError *error = NULL;
      g_assert_true(fth_trainer_run_epoch(t, s, all_idx, N, e, b, step + 1, &p, on_progress,
                                          NULL, NULL, &interrupted, &error));
      g_assert_no_error(error);
      g_assert_cmpint(p.step, ==, step + 1);
      losses[step] = p.loss;
    }
}

/* Every parameter and buffer (batch-norm running statistics) of the model, in order. */
static GArray *
values(FthTrainer *t)
{
  GError *error = NULL;
  g_assert_true(fth_trainer_sync_host(t, &error));
  g_assert_no_error(error);
  FthGraph *g = fth_trainer_model(t)->graph;
  GArray *w = g_array_new(FALSE, FALSE, sizeof(float));
  for (int i = 0; i < fth_graph_n_params(g); i++) {
    FthTensor v;
    g_assert_cmpint(fth_graph_tensor(g, fth_graph_param(g, i), &v), ==, FTH_STATUS_OK);
    g_array_append_vals(w, v.data, (guint)fth_tensor_numel(&v));
  }
  return w;
}

/* |a - b| <= tol * (1 + |b|) everywhere. */
static void
assert_close(const float *a, const float *b, size_t n, double tol, const char *what)
{
  for (size_t i = 0; i < n; i++)
    if (fabs((double)a[i] - b[i]) > tol * (1 + fabs((double)b[i])))
      g_error("%s %zu: %.9g against %.9g (tolerance %g)", what, i, a[i], b[i], tol);
}

static void
assert_values_close(FthTrainer *a, FthTrainer *b, double tol)
{
  g_autoptr(GArray) va = values(a);
  g_autoptr(GArray) vb = values(b);
  g_assert_cmpuint(va->len, ==, vb->len);
  assert_close((const float *)(void *)va->data, (const float *)(void *)vb->data, va->len, tol,
               "value");
}

/* Also reports the largest difference (test-train-oom --verbose prints it). */
static void
assert_losses_close(const double *a, const double *b, double tol, const char *what)
{
  double most = 0;
  for (int i = 0; i < EPOCHS * (N / BATCH); i++) {
    if (fabs(a[i] - b[i]) > tol * (1 + fabs(b[i])))
      g_error("%s, step %d: loss %.9g against %.9g (tolerance %g)", what, i, a[i], b[i], tol);
    most = MAX(most, fabs(a[i] - b[i]) / (1 + fabs(b[i])));
  }
  g_test_message("%s: losses of %d steps within %.2g (tolerance %g)", what,
                 EPOCHS * (N / BATCH), most, tol);
}

/* ---- the tests ---- */

/* Accumulated micro-batches (2, and 3 of 6, 5 and 5 samples) take the full batch's steps, with
 * per-sample loss weights, on the CPU path and on the device path. */
static void
test_accumulate_equals_full_batch(void)
{
  make_samples();
  FthSamples weighted = samples;
  weighted.weights = loss_weights;
  g_autoptr(FthRecipe) r = recipe(MLP);
  for (int device = 0; device < 2; device++) {
    double full[EPOCHS * (N / BATCH)], acc[EPOCHS * (N / BATCH)];
    g_autoptr(FthTrainer) t1 = trainer(r, 1);
    if (device)
      use_device(t1, TRUE);
    train_steps(t1, &weighted, NULL, full);
    for (int m = 2; m <= 3; m++) {
      g_autoptr(FthTrainer) tm = trainer(r, m);
      if (device)
        use_device(tm, TRUE);
      g_assert_cmpint(fth_trainer_accumulate(tm), ==, m);
      train_steps(tm, &weighted, NULL, acc);
      g_autofree char *what = g_strdup_printf("%s, %d micro-batches against the full batch",
                                              device ? "device" : "cpu", m);
      assert_losses_close(acc, full, 1e-5, what);
      assert_values_close(tm, t1, 1e-5);
      g_assert_cmpint(fth_optimizer_steps(fth_trainer_optimizer(tm)), ==, EPOCHS * (N / BATCH));
    }
  }
  /* A step needs at least one sample per micro-batch. */
  FthTrainerConfig cfg = {.seed = 5, .batch = 4, .accumulate = 5, .epochs = 1, .n_train = N,
                          .optim = r->train.optim, .schedule = r->train.schedule};
  GError *error = NULL;
  g_assert_null(fth_trainer_new(r, N_CLASSES, &cfg, &error));
  g_assert_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_INVALID);
  g_assert_nonnull(strstr(error->message, "from 1 to the batch (4)"));
  g_clear_error(&error);
}

static void
arm_backward_oom(FthTrainer *t, int64_t step)
{
  (void)t;
  if (step == OOM_STEP) {
    oom_armed = TRUE;
    oom_above = BATCH / 2;
  }
}

/* A backward pass out of memory mid-epoch: 2 micro-batches of 8 from then on, reported once; the
 * loss curve is that of 2 micro-batches from the start, and the full batch's closely. */
static void
test_backward_oom_mid_epoch(void)
{
  make_samples();
  g_autoptr(FthRecipe) r = recipe(MLP);
  double full[EPOCHS * (N / BATCH)], acc2[EPOCHS * (N / BATCH)], oom[EPOCHS * (N / BATCH)];
  g_autoptr(FthTrainer) tf = trainer(r, 1);
  g_autoptr(FthTrainer) ta = trainer(r, 2);
  g_autoptr(FthTrainer) to = trainer(r, 1);
  use_device(tf, TRUE);
  train_steps(tf, &samples, NULL, full);
  use_device(ta, TRUE);
  train_steps(ta, &samples, NULL, acc2);
  use_device(to, TRUE);
  g_ptr_array_set_size(messages, 0);
  train_steps(to, &samples, arm_backward_oom, oom);
  g_assert_cmpint(n_oom, ==, 1);
  g_assert_cmpuint(messages->len, ==, 1);
  const char *msg = g_ptr_array_index(messages, 0);
  g_test_message("%s", msg);
  g_assert_true(g_str_has_prefix(msg, "epoch 1, step 3: out of memory at a batch of 16 ("));
  g_assert_nonnull(strstr(msg, "fake device: no workspace for a batch of 16"));
  g_assert_true(g_str_has_suffix(msg, "continuing with 2 micro-batches of 8 per step"));
  g_assert_cmpint(fth_trainer_accumulate(to), ==, 2);
  g_assert_cmpint(fth_trainer_config(to)->batch, ==, BATCH);
  g_assert_cmpint(fth_optimizer_steps(fth_trainer_optimizer(to)), ==, EPOCHS * (N / BATCH));
  assert_losses_close(oom, acc2, 1e-5, "out of memory at step 3 against 2 micro-batches");
  assert_values_close(to, ta, 1e-5);
  assert_losses_close(oom, full, 1e-5, "out of memory at step 3 against the full batch");
  assert_values_close(to, tf, 1e-5);
}

static void
switch_to_two(FthTrainer *t, int64_t step)
{
  GError *error = NULL;
  if (step == OOM_STEP)
    g_assert_true(fth_trainer_set_accumulate(t, 2, &error));
  g_assert_no_error(error);
}

/* With batch norm and dropout, on the device and on the host optimizer: the attempt that ran out
 * of memory after the forward pass leaves no trace. Losses, weights and running statistics equal
 * a run that went to 2 micro-batches at that step by itself. */
static void
test_batch_norm_statistics_kept(void)
{
  make_samples();
  g_autoptr(FthRecipe) r = recipe(BN_DROPOUT);
  for (int with_opt = 0; with_opt < 2; with_opt++) {
    double ref[EPOCHS * (N / BATCH)], oom[EPOCHS * (N / BATCH)];
    g_autoptr(FthTrainer) tr = trainer(r, 1);
    g_autoptr(FthTrainer) to = trainer(r, 1);
    use_device(tr, with_opt);
    train_steps(tr, &samples, switch_to_two, ref);
    use_device(to, with_opt);
    g_ptr_array_set_size(messages, 0);
    train_steps(to, &samples, arm_backward_oom, oom);
    g_assert_cmpint(n_oom, ==, 1);
    g_assert_cmpuint(messages->len, ==, 1);
    g_assert_cmpint(fth_trainer_accumulate(to), ==, 2);
    assert_losses_close(oom, ref, 1e-6, "batch norm: out of memory against switching");
    assert_values_close(to, tr, 1e-6);
  }
}

static void
arm_update_oom(FthTrainer *t, int64_t step)
{
  (void)t;
  if (step == OOM_STEP)
    optim_oom_at = 1; /* the second parameter's update */
}

static void
switch_after_oom_step(FthTrainer *t, int64_t step)
{
  switch_to_two(t, step - 1);
}

/* The device's update out of memory at its second parameter: the step is finished from there
 * (its gradients are the full batch's) and the following steps run 2 micro-batches; no parameter
 * is updated twice. */
static void
test_update_oom_goes_on(void)
{
  make_samples();
  g_autoptr(FthRecipe) r = recipe(BN_DROPOUT);
  double ref[EPOCHS * (N / BATCH)], oom[EPOCHS * (N / BATCH)];
  g_autoptr(FthTrainer) tr = trainer(r, 1);
  g_autoptr(FthTrainer) to = trainer(r, 1);
  use_device(tr, TRUE);
  train_steps(tr, &samples, switch_after_oom_step, ref);
  use_device(to, TRUE);
  g_ptr_array_set_size(messages, 0);
  train_steps(to, &samples, arm_update_oom, oom);
  g_assert_cmpint(n_oom, ==, 1);
  g_assert_cmpuint(messages->len, ==, 1);
  g_assert_nonnull(strstr(g_ptr_array_index(messages, 0), "no memory for the update"));
  g_assert_cmpint(fth_trainer_accumulate(to), ==, 2);
  g_assert_cmpint(fth_optimizer_steps(fth_trainer_optimizer(to)), ==, EPOCHS * (N / BATCH));
  assert_losses_close(oom, ref, 1e-6, "update out of memory against switching");
  assert_values_close(to, tr, 1e-6);
}

/* ---- fth_train over a project ---- */

static void
put_be32(guint8 *p, guint32 v)
{
  p[0] = (guint8)(v >> 24), p[1] = (guint8)(v >> 16), p[2] = (guint8)(v >> 8), p[3] = (guint8)v;
}

/* A project of the N samples as IDX images, every item in the training split but 12 in val. */
static char *
make_project(const char *name)
{
  char *dir = g_build_filename(tmp_root, name, NULL);
  GError *error = NULL;
  g_autoptr(FthStore) store = fth_store_create(dir, &error);
  g_assert_no_error(error);
  g_autofree char *idx_path = g_build_filename(dir, "images-idx3-ubyte", NULL);
  gsize len = 16 + (gsize)N * S * S;
  g_autofree guint8 *buf = g_malloc0(len);
  put_be32(buf, 0x803), put_be32(buf + 4, N), put_be32(buf + 8, S), put_be32(buf + 12, S);
  memcpy(buf + 16, pixels, (gsize)N * S * S);
  g_assert_true(g_file_set_contents(idx_path, (const char *)buf, (gssize)len, NULL));
  gint64 ids[N_CLASSES];
  const char *names[N_CLASSES] = {"a", "b", "c"};
  for (int k = 0; k < N_CLASSES; k++)
    g_assert_true(fth_store_add_label(store, names[k], NULL, NULL, FTH_LABEL_CLASS, &ids[k],
                                      &error));
  g_assert_true(fth_store_begin(store, &error));
  for (int i = 0; i < N; i++) {
    g_autoptr(FthItemRecord) it = fth_item_record_new();
    it->kind = FTH_ITEM_IMAGE;
    it->path = g_strdup(idx_path);
    it->member = i;
    it->sha256 = g_strdup_printf("%064x", i + 1);
    it->width = it->height = S;
    gint64 id;
    g_assert_true(fth_store_add_item(store, it, &id, NULL, &error));
    g_assert_true(fth_store_set_class(store, id, ids[labels[i]], FTH_AUTHOR_HUMAN, 0, 1.0, NULL,
                                      &error));
    g_assert_true(fth_store_set_split(store, &id, 1, i < 12 ? FTH_SPLIT_VAL : FTH_SPLIT_TRAIN,
                                      &error));
  }
  g_assert_true(fth_store_commit(store, &error));
  g_assert_no_error(error);
  return dir;
}

typedef struct {
  int64_t arm_above;  /* >= 0: armed when the first epoch ends */
  GPtrArray *messages;
} RunCtx;

static void
run_progress(const FthTrainProgress *p, gpointer data)
{
  RunCtx *c = data;
  if (p->message != NULL)
    g_ptr_array_add(c->messages, g_strdup(p->message));
  if (p->epoch_end && p->epoch == 0 && c->arm_above >= 0) {
    oom_armed = TRUE;
    oom_above = c->arm_above;
  }
}

/* 3 epochs of the MLP through fth_train on the failing device (from its checkpoint to 4 epochs
 * when resume), armed as c says after the first. */
static gboolean
train_project(const char *project, gboolean resume, int64_t arm_above, FthTrainResult *res,
              RunCtx *c, GError **error)
{
  g_autofree char *recipe_path = g_build_filename(tmp_root, "oom-mlp.json", NULL);
  g_autofree char *json = g_strdup_printf(RECIPE_FMT, MLP);
  g_assert_true(g_file_set_contents(recipe_path, json, -1, NULL));
  g_autoptr(FthStore) store = fth_store_open(project, error);
  g_assert_nonnull(store);
  fth_train_force_device(fake_device(TRUE));
  FthTrainOptions o;
  fth_train_options_init(&o);
  o.recipe = recipe_path;
  o.epochs = resume ? 4 : 3;
  o.resume = resume;
  o.test_frac = 0;
  g_autofree char *ckpt = g_build_filename(project, "ckpt", NULL);
  o.checkpoint_dir = ckpt;
  c->arm_above = arm_above;
  c->messages = g_ptr_array_new_with_free_func(g_free);
  o.progress = run_progress;
  o.progress_data = c;
  gboolean ok = fth_train(store, &o, res, error);
  fth_train_force_device(NULL);
  return ok;
}

/* Out of memory at a batch above 4 from the second epoch: the run halves twice and finishes;
 * each event is in the store (an "event" artifact and the metric micro_batches), and the
 * checkpoint keeps the 4 micro-batches for a resumed run. */
static void
test_train_records_events(void)
{
  make_samples();
  g_autofree char *project = make_project("events");
  FthTrainResult res;
  RunCtx c;
  GError *error = NULL;
  g_assert_true(train_project(project, FALSE, 4, &res, &c, &error));
  g_assert_no_error(error);
  g_assert_cmpint(res.epochs_run, ==, 3);
  g_assert_cmpint(res.batch, ==, BATCH);
  g_assert_cmpint(res.micro_batches, ==, 4);
  g_assert_cmpuint(c.messages->len, ==, 2);
  g_assert_nonnull(strstr(g_ptr_array_index(c.messages, 0), "epoch 2, step 6: out of memory at "
                                                             "a batch of 16"));
  const char *second = g_ptr_array_index(c.messages, 1);
  g_assert_true(g_str_has_prefix(second, "epoch 2, step 6: out of memory at micro-batches of 8 ("));
  g_assert_true(g_str_has_suffix(second, "no workspace for a batch of 8): continuing with 4 "
                                         "micro-batches of 4 per step"));
  g_autoptr(FthStore) store = fth_store_open(project, &error);
  g_autoptr(GPtrArray) arts = fth_store_list_artifacts(store, res.run_id, &error);
  g_assert_no_error(error);
  int events = 0;
  for (guint i = 0; i < arts->len; i++) {
    const FthArtifact *a = g_ptr_array_index(arts, i);
    if (strcmp(a->kind, "event") != 0)
      continue;
    g_assert_nonnull(strstr(a->meta_json, "\"event\":\"out_of_memory\""));
    g_assert_nonnull(strstr(a->meta_json, g_ptr_array_index(c.messages, events)));
    events++;
  }
  g_assert_cmpint(events, ==, 2);
  g_autoptr(GPtrArray) m = fth_store_list_metrics(store, res.run_id, "micro_batches", &error);
  g_assert_no_error(error);
  g_assert_cmpuint(m->len, ==, 2);
  g_assert_cmpfloat(((FthMetric *)g_ptr_array_index(m, 1))->value, ==, 4);
  g_ptr_array_unref(c.messages);
  fth_train_result_clear(&res);

  /* The checkpoint keeps the micro-batches, so a resumed run starts with those that fit. */
  g_autofree char *ckpt = g_build_filename(project, "ckpt", NULL);
  g_autoptr(FthCheckpointMeta) meta = fth_checkpoint_load_meta(ckpt, &error);
  g_assert_no_error(error);
  g_assert_cmpint(meta->accumulate, ==, 4);
  g_assert_true(train_project(project, TRUE, -1, &res, &c, &error));
  g_assert_no_error(error);
  g_assert_cmpint(res.micro_batches, ==, 4);
  g_assert_cmpuint(c.messages->len, ==, 0);
  g_ptr_array_unref(c.messages);
  fth_train_result_clear(&res);
}

/* Out of memory at every batch from the second epoch: down to a micro-batch of 1, then a clear
 * error; the first epoch's checkpoint stays, loadable. */
static void
test_micro_batch_of_one_fails(void)
{
  make_samples();
  g_autofree char *project = make_project("fails");
  FthTrainResult res;
  RunCtx c;
  GError *error = NULL;
  g_assert_false(train_project(project, FALSE, 0, &res, &c, &error));
  g_assert_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_NO_MEMORY);
  g_test_message("%s", error->message);
  g_assert_nonnull(strstr(error->message, "out of memory with a micro-batch of 1"));
  g_assert_nonnull(strstr(error->message, "the last good checkpoint (epoch 1, step 6) is kept"));
  g_clear_error(&error);
  g_assert_cmpuint(c.messages->len, ==, 4); /* 16 -> 8 -> 4 -> 2 -> 1 */
  g_ptr_array_unref(c.messages);
  g_autofree char *ckpt = g_build_filename(project, "ckpt", NULL);
  g_autoptr(FthCheckpointMeta) meta = fth_checkpoint_load_meta(ckpt, &error);
  g_assert_no_error(error);
  g_assert_cmpint(meta->epoch, ==, 1);
  g_assert_cmpint(meta->step, ==, 6);
  g_autoptr(FthRecipe) r = recipe(MLP);
  g_autoptr(FthTrainer) t = trainer(r, 1);
  g_autofree char *wp = g_build_filename(ckpt, meta->weights_file, NULL);
  g_assert_true(fth_load_weights(fth_trainer_model(t)->graph, wp, TRUE, NULL, &error));
  g_assert_no_error(error);
  g_autoptr(FthStore) store = fth_store_open(project, &error);
  g_autoptr(FthRun) run = fth_store_get_run(store, res.run_id, &error);
  g_assert_no_error(error);
  g_assert_cmpint(run->state, ==, FTH_RUN_FAILED);
  fth_train_result_clear(&res);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  tmp_root = g_dir_make_tmp("fth-oom-XXXXXX", NULL);
  g_assert_nonnull(tmp_root);
  messages = g_ptr_array_new_with_free_func(g_free);
  g_test_add_func("/oom/accumulate-equals-full-batch", test_accumulate_equals_full_batch);
  g_test_add_func("/oom/backward-mid-epoch", test_backward_oom_mid_epoch);
  g_test_add_func("/oom/batch-norm-statistics-kept", test_batch_norm_statistics_kept);
  g_test_add_func("/oom/update-goes-on", test_update_oom_goes_on);
  g_test_add_func("/oom/train-records-events", test_train_records_events);
  g_test_add_func("/oom/micro-batch-of-one-fails", test_micro_batch_of_one_fails);
  int rc = g_test_run();
  g_ptr_array_unref(messages);
  rmtree(tmp_root);
  g_free(tmp_root);
  return rc;
}
