/* The trainer: a model, its optimizer and schedule over in-memory samples (FthTrainer), and
 * fth_train, which adds the store (dataset, splits, runs, metrics) and checkpoints. */
#include "fathom/train.h"

#include <gio/gio.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

struct FthTrainer {
  FthModel *model;
  FthOptimizer *opt;
  FthTrainerConfig cfg;
  FthGraphMode planned_mode;
  int64_t planned_batch;
  int64_t step;
  size_t sample_floats;
  float *x;
  int32_t *y;
  uint32_t *perm;
  size_t perm_len;
  FthParam *params;
  size_t n_params;
  float *mean, *std;      /* input normalization; NULL when it is the identity (x / 255) */
  FthTrainerGradHook grad_hook;
  gpointer grad_hook_data;
};

static gboolean
engine_error(GError **error, const char *what)
{
  g_set_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_ENGINE, "%s: %s", what, fth_last_error());
  return FALSE;
}

void
fth_trainer_free(FthTrainer *t)
{
  if (t == NULL)
    return;
  fth_optimizer_free(t->opt);
  fth_model_free(t->model);
  g_free(t->x);
  g_free(t->y);
  g_free(t->perm);
  g_free(t->params);
  g_free(t->mean);
  g_free(t->std);
  g_free(t);
}

static gboolean
plan(FthTrainer *t, FthGraphMode mode, int64_t batch, GError **error)
{
  if (t->planned_mode == mode && t->planned_batch == batch)
    return TRUE;
  if (fth_graph_plan(t->model->graph, mode, batch) != FTH_STATUS_OK)
    return engine_error(error, "planning the graph");
  t->planned_mode = mode;
  t->planned_batch = batch;
  /* Parameters and their gradients live outside the arena, so the optimizer's pointers stay
   * valid across plans; checked because a silent move would train stale memory. */
  for (size_t i = 0; i < t->n_params; i++) {
    FthNode *p = fth_graph_find_param(t->model->graph, t->params[i].name);
    FthTensor v, g;
    if (fth_graph_tensor(t->model->graph, p, &v) != FTH_STATUS_OK ||
        fth_param_grad_tensor(p, &g) != FTH_STATUS_OK || v.data != t->params[i].value ||
        g.data != t->params[i].grad) {
      g_set_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_ENGINE,
                  "parameter '%s' moved when the graph was planned again", t->params[i].name);
      return FALSE;
    }
  }
  return TRUE;
}

FthTrainer *
fth_trainer_new(const FthRecipe *recipe, int n_classes, const FthTrainerConfig *cfg,
                GError **error)
{
  g_autoptr(FthTrainer) t = g_new0(FthTrainer, 1);
  if (cfg != NULL) {
    t->cfg = *cfg;
  } else {
    t->cfg.seed = 1;
    t->cfg.batch = recipe->train.batch;
    t->cfg.epochs = recipe->train.epochs;
    t->cfg.optim = recipe->train.optim;
    t->cfg.schedule = recipe->train.schedule;
  }
  if (t->cfg.batch < 1) {
    g_set_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_INVALID, "batch must be at least 1");
    return NULL;
  }
  t->model = fth_model_build(recipe, n_classes, t->cfg.seed, FTH_MODEL_TRAINING, error);
  if (t->model == NULL)
    return NULL;
  t->planned_mode = (FthGraphMode)-1;
  FthGraph *g = t->model->graph;
  if (fth_graph_plan(g, FTH_MODE_TRAIN, t->cfg.batch) != FTH_STATUS_OK) {
    engine_error(error, "planning the training graph");
    return NULL;
  }
  t->planned_mode = FTH_MODE_TRAIN;
  t->planned_batch = t->cfg.batch;
  int np = fth_graph_n_params(g);
  t->params = g_new0(FthParam, np + 1);
  for (int i = 0; i < np; i++) {
    FthNode *p = fth_graph_param(g, i);
    if (!fth_param_is_trainable(p))
      continue;
    FthTensor v, gr;
    if (fth_graph_tensor(g, p, &v) != FTH_STATUS_OK ||
        fth_param_grad_tensor(p, &gr) != FTH_STATUS_OK) {
      engine_error(error, "reading the parameters");
      return NULL;
    }
    /* Weight decay on weights (2-D and up), not on biases and normalization scales. */
    t->params[t->n_params++] = (FthParam){fth_node_name(p), v.data, gr.data,
                                          (size_t)fth_tensor_numel(&v), v.ndim > 1};
  }
  t->opt = fth_optimizer_new(&t->cfg.optim, t->params, t->n_params);
  if (t->opt == NULL) {
    g_set_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_INVALID, "%s: bad optimizer settings",
                recipe->source);
    return NULL;
  }
  gboolean identity = TRUE;
  for (int i = 0; i < recipe->n_norm; i++)
    identity = identity && recipe->mean[i] == 0.0f && recipe->std[i] == 1.0f;
  if (!identity) {
    t->mean = g_memdup2(recipe->mean, sizeof(float) * (size_t)recipe->n_norm);
    t->std = g_memdup2(recipe->std, sizeof(float) * (size_t)recipe->n_norm);
  }
  t->sample_floats = 1;
  for (int i = 0; i < recipe->in_ndim; i++)
    t->sample_floats *= (size_t)recipe->in_shape[i];
  t->x = g_new(float, t->sample_floats * (size_t)t->cfg.batch);
  t->y = g_new(int32_t, (size_t)t->cfg.batch);
  return g_steal_pointer(&t);
}

FthModel *
fth_trainer_model(FthTrainer *t)
{
  return t->model;
}

FthOptimizer *
fth_trainer_optimizer(FthTrainer *t)
{
  return t->opt;
}

const FthTrainerConfig *
fth_trainer_config(FthTrainer *t)
{
  return &t->cfg;
}

int64_t
fth_trainer_steps_per_epoch(FthTrainer *t)
{
  return ((int64_t)t->cfg.n_train + t->cfg.batch - 1) / t->cfg.batch;
}

void
fth_trainer_set_grad_hook(FthTrainer *t, FthTrainerGradHook hook, gpointer user_data)
{
  t->grad_hook = hook;
  t->grad_hook_data = user_data;
}

static int
argmax(const float *z, int n)
{
  int best = 0;
  for (int k = 1; k < n; k++)
    if (z[k] > z[best])
      best = k;
  return best;
}

static gboolean
run_batch(FthTrainer *t, const FthSamples *s, const uint32_t *idx, size_t count,
          const FthAugment *aug, uint64_t epoch, int64_t step, double *loss, int64_t *correct,
          GError **error)
{
  FthGraph *g = t->model->graph;
  if (fth_graph_batch(g) != (int64_t)count && fth_graph_set_batch(g, (int64_t)count) != FTH_STATUS_OK)
    return engine_error(error, "setting the batch size");
  fth_samples_fill_batch(s, idx, count, aug, t->cfg.seed, epoch, t->mean, t->std, t->x, t->y);
  if (fth_graph_set_input(g, t->model->input, t->x, count * t->sample_floats * sizeof(float)) !=
        FTH_STATUS_OK ||
      fth_graph_set_input(g, t->model->targets, t->y, count * sizeof(int32_t)) != FTH_STATUS_OK)
    return engine_error(error, "copying the batch in");
  /* Dropout masks keyed by the training step: the same in a resumed run. */
  if (step >= 0)
    fth_graph_set_step(g, (uint64_t)step);
  if (fth_graph_run(g) != FTH_STATUS_OK)
    return engine_error(error, "running the graph");
  FthTensor lt, logits;
  if (fth_graph_tensor(g, t->model->loss, &lt) != FTH_STATUS_OK ||
      fth_graph_tensor(g, t->model->logits, &logits) != FTH_STATUS_OK)
    return engine_error(error, "reading the loss");
  *loss = *(const float *)lt.data;
  if (correct != NULL) {
    const float *z = logits.data;
    int c = t->model->n_classes;
    for (size_t i = 0; i < count; i++)
      *correct += argmax(z + i * (size_t)c, c) == t->y[i];
  }
  return TRUE;
}

gboolean
fth_trainer_run_epoch(FthTrainer *t, const FthSamples *s, const uint32_t *train, size_t n,
                      int epoch, int64_t first_batch, int64_t stop_step,
                      FthTrainProgress *progress, FthTrainProgressFunc func, gpointer func_data,
                      GCancellable *cancellable, gboolean *interrupted, GError **error)
{
  *interrupted = FALSE;
  if (!plan(t, FTH_MODE_TRAIN, t->cfg.batch, error))
    return FALSE;
  if (t->perm_len != n) {
    g_free(t->perm);
    t->perm = g_new(uint32_t, n ? n : 1);
    t->perm_len = n;
  }
  /* The order of epoch e depends only on (seed, e): a resumed run sees the same batches. */
  fth_shuffle_indices(t->perm, n, t->cfg.seed, (uint64_t)epoch);
  for (size_t i = 0; i < n; i++)
    t->perm[i] = train[t->perm[i]];
  int64_t n_batches = ((int64_t)n + t->cfg.batch - 1) / t->cfg.batch;
  int64_t spe = fth_trainer_steps_per_epoch(t);
  const FthAugment *aug = t->cfg.use_augment ? &t->cfg.augment : NULL;
  double loss_sum = 0;
  int64_t correct = 0, seen = 0;
  gint64 t0 = g_get_monotonic_time();
  for (int64_t b = first_batch; b < n_batches; b++) {
    if (g_cancellable_set_error_if_cancelled(cancellable, error))
      return FALSE;
    size_t start = (size_t)b * (size_t)t->cfg.batch;
    size_t count = MIN((size_t)t->cfg.batch, n - start);
    double loss;
    int64_t step = (int64_t)epoch * spe + b;
    if (!run_batch(t, s, t->perm + start, count, aug, (uint64_t)epoch, step, &loss, &correct,
                   error))
      return FALSE;
    if (!isfinite(loss)) {
      g_set_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_NUMERIC,
                  "epoch %d, step %" G_GINT64_FORMAT ": the loss is %s; training stopped "
                  "(lower the learning rate or add gradient clipping)", epoch + 1, (gint64)step,
                  isnan(loss) ? "NaN" : "infinite");
      return FALSE;
    }
    if (t->grad_hook != NULL &&
        !t->grad_hook(t->params, t->n_params, FALSE, t->grad_hook_data, error))
      return FALSE;
    double lr = fth_lr_at(&t->cfg.schedule, step);
    fth_optimizer_step(t->opt, (float)lr);
    loss_sum += loss * (double)count;
    seen += (int64_t)count;
    t->step = step + 1;
    if (progress != NULL) {
      progress->epoch = epoch;
      progress->step = step + 1;
      progress->loss = loss;
      progress->lr = lr;
      progress->epoch_end = FALSE;
      if (func != NULL && (b % 20 == 0 || b + 1 == n_batches))
        func(progress, func_data);
    }
    if (stop_step > 0 && step + 1 >= stop_step && b + 1 < n_batches) {
      *interrupted = TRUE;
      break;
    }
  }
  if (progress != NULL) {
    double secs = (double)(g_get_monotonic_time() - t0) / 1e6;
    progress->train_loss = seen ? loss_sum / (double)seen : NAN;
    progress->train_acc = seen ? (double)correct / (double)seen : NAN;
    progress->epoch_s = secs;
    progress->images_per_s = secs > 0 ? (double)seen / secs : 0;
  }
  return TRUE;
}

gboolean
fth_trainer_evaluate(FthTrainer *t, const FthSamples *s, const uint32_t *idx, size_t n,
                     FthConfusion *cm, double *mean_loss, GError **error)
{
  if (!plan(t, FTH_MODE_INFERENCE, t->cfg.batch, error))
    return FALSE;
  FthGraph *g = t->model->graph;
  double loss_sum = 0;
  for (size_t start = 0; start < n; start += (size_t)t->cfg.batch) {
    size_t count = MIN((size_t)t->cfg.batch, n - start);
    double loss;
    if (!run_batch(t, s, idx + start, count, NULL, 0, -1, &loss, NULL, error))
      return FALSE;
    loss_sum += loss * (double)count;
    if (cm != NULL) {
      FthTensor logits;
      if (fth_graph_tensor(g, t->model->logits, &logits) != FTH_STATUS_OK)
        return engine_error(error, "reading the logits");
      const float *z = logits.data;
      int c = t->model->n_classes;
      for (size_t i = 0; i < count; i++)
        fth_confusion_add(cm, t->y[i], argmax(z + i * (size_t)c, c));
    }
  }
  if (mean_loss != NULL)
    *mean_loss = n ? loss_sum / (double)n : NAN;
  return TRUE;
}

static guint64
available_memory_bytes(void)
{
  g_autofree char *text = NULL;
  if (g_file_get_contents("/proc/meminfo", &text, NULL, NULL)) {
    const char *p = strstr(text, "MemAvailable:");
    if (p != NULL)
      return g_ascii_strtoull(p + strlen("MemAvailable:"), NULL, 10) * 1024;
  }
  return 0;
}

gboolean
fth_trainer_batch_for_memory(const FthRecipe *recipe, int n_classes, double fraction,
                             int *batch, GError **error)
{
  if (!(fraction > 0 && fraction <= 1)) {
    g_set_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_INVALID,
                "--max-memory must be a fraction in (0, 1] (got %g)", fraction);
    return FALSE;
  }
  g_autoptr(FthModel) m = fth_model_build(recipe, n_classes, 1, FTH_MODEL_TRAINING, error);
  if (m == NULL)
    return FALSE;
  FthPlanStats st;
  if (fth_graph_plan(m->graph, FTH_MODE_TRAIN, 1) != FTH_STATUS_OK ||
      fth_graph_plan_stats(m->graph, &st) != FTH_STATUS_OK)
    return engine_error(error, "planning for the memory budget");
  guint64 avail = available_memory_bytes();
  double budget = fraction * (double)avail;
  size_t sample_floats = 1;
  for (int i = 0; i < recipe->in_ndim; i++)
    sample_floats *= (size_t)recipe->in_shape[i];
  /* Fixed: the arena's fixed part, parameters, gradients and up to two optimizer moments. */
  int moments = recipe->train.optim.kind == FTH_OPTIM_ADAMW ? 2 : 1;
  double fixed = (double)st.fixed_bytes + (double)st.param_bytes + (double)st.param_grad_bytes +
                 moments * (double)st.param_grad_bytes;
  double per_sample = (double)st.per_sample_bytes + (double)(sample_floats * 4 + 4);
  double b = (budget - fixed) / per_sample;
  if (avail == 0 || b < 1) {
    g_set_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_INVALID,
                "%s: %.0f MiB (%g of the %.0f MiB available) do not hold one training sample "
                "(%.1f MiB fixed + %.2f MiB per sample)", recipe->source, budget / 1048576.0,
                fraction, (double)avail / 1048576.0, fixed / 1048576.0, per_sample / 1048576.0);
    return FALSE;
  }
  *batch = b > 65536 ? 65536 : (int)b;
  return TRUE;
}
