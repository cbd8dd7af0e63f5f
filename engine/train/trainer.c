/* The trainer: a model, its optimizer and schedule over in-memory samples (FthTrainer), and
 * fth_train, which adds the store (dataset, splits, runs, metrics) and checkpoints. */
#include "fathom/train.h"

#include "../graph/graph-device.h" /* private to the engine: the trainer is its user */

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
  size_t targets_per_sample; /* 1, or the token count of a tagger */
  float *x;
  int32_t *y;
  float *w;               /* the batch's loss weights (FthSamples.weights) */
  uint32_t *perm;
  size_t perm_len;
  FthParam *params;
  size_t n_params;
  float *mean, *std;      /* input normalization; NULL when it is the identity (x / 255) */
  FthTrainerGradHook grad_hook;
  gpointer grad_hook_data;
  /* Data parallel (fth_trainer_set_comm): this rank's share of the current global batch. */
  FthComm *comm;
  FthGradReducer *reducer;
  GHashTable *param_index;  /* parameter node -> index in params, for the reducer */
  float share;
  size_t local_samples;
  int early_buckets;
  /* On a device backend (fth_trainer_use_device): the graph runs there, the loss and logits
   * are read back into readback[], and the optimizer updates the device parameters through the
   * backend's optim_update (device_optim) or on host copies. */
  const FthBackend *be;
  FthGraphDevice *dev;
  FthParam *dparams;      /* the trainable parameters' device buffers, in params order */
  float **dstate;         /* device optimizer state: n_state per parameter (device_optim) */
  int n_state;
  gboolean device_optim;
  float *readback[2];     /* host copies of the loss and the logits */
  size_t readback_len[2];
  /* Mixed precision; fp16 scales the loss dynamically (torch.cuda.amp.GradScaler's rule). */
  FthPrecision precision;
  float loss_scale;
  int growth_interval, clean_steps;
  int64_t skipped_steps;
  /* Gradient accumulation (cfg.accumulate > 1): the weighted sum of the micro-batches' gradients,
   * per trainable parameter. Host memory also on a device: it costs the device nothing, which
   * matters most when the device has just run out of memory. */
  float **acc;
  /* The non-trainable buffers (batch-norm running statistics) as they were before the current
   * step: an attempt that ran out of memory may have updated them in its forward pass. */
  FthNode **buffers;
  float **buffer_saved;
  size_t *buffer_n;
  size_t n_buffers;
  int64_t resume_update; /* the parameter an interrupted device update goes on from; -1: none */
  int64_t eval_batch;    /* evaluation's batch: cfg.batch, halved while it runs out of memory */
};

/* Where a step's out-of-memory event is reported. */
typedef struct {
  FthTrainProgress *progress;
  FthTrainProgressFunc func;
  gpointer func_data;
  int epoch;
  int64_t step;
} Report;

static gboolean
engine_error(GError **error, const char *what)
{
  g_set_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_ENGINE, "%s: %s", what, fth_last_error());
  return FALSE;
}

/* An engine failure in a step; out of memory gets its own code, which the step answers with
 * smaller micro-batches. */
static gboolean
step_error(FthStatus st, GError **error, const char *what)
{
  g_set_error(error, FTH_TRAIN_ERROR,
              st == FTH_STATUS_NO_MEMORY ? FTH_TRAIN_ERROR_NO_MEMORY : FTH_TRAIN_ERROR_ENGINE,
              "%s: %s", what, fth_last_error());
  return FALSE;
}

static gboolean
is_no_memory(const GError *error)
{
  return g_error_matches(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_NO_MEMORY);
}

void
fth_trainer_free(FthTrainer *t)
{
  if (t == NULL)
    return;
  for (int i = 0; t->dstate != NULL && i < (int)t->n_params * t->n_state; i++)
    t->be->free(t->be, t->dstate[i]);
  g_free(t->dstate);
  g_free(t->dparams);
  fth_graph_device_free(t->dev);
  /* The backend outlives the trainer: later users (prediction) start from fp32 again. */
  if (t->be != NULL && t->be->set_precision != NULL && t->precision != FTH_PRECISION_FP32)
    t->be->set_precision(t->be, FTH_PRECISION_FP32);
  g_free(t->readback[0]);
  g_free(t->readback[1]);
  for (size_t i = 0; t->acc != NULL && i < t->n_params; i++)
    g_free(t->acc[i]);
  g_free(t->acc);
  for (size_t i = 0; i < t->n_buffers; i++)
    g_free(t->buffer_saved[i]);
  g_free(t->buffers);
  g_free(t->buffer_saved);
  g_free(t->buffer_n);
  fth_grad_reducer_free(t->reducer);
  if (t->param_index != NULL)
    g_hash_table_unref(t->param_index);
  fth_optimizer_free(t->opt);
  fth_model_free(t->model);
  g_free(t->x);
  g_free(t->y);
  g_free(t->w);
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
  t->planned_mode = (FthGraphMode)-1;
  FthStatus st = fth_graph_plan(t->model->graph, mode, batch);
  if (st != FTH_STATUS_OK)
    return step_error(st, error, "planning the graph");
  if (t->dev != NULL && (st = fth_graph_device_replan(t->dev)) != FTH_STATUS_OK)
    return step_error(st, error, "placing the graph on the device");
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

/* The largest micro-batch of a step. */
static int64_t
micro_batch(const FthTrainer *t)
{
  return ((int64_t)t->cfg.batch + t->cfg.accumulate - 1) / t->cfg.accumulate;
}

static gboolean
check_accumulate(const FthTrainer *t, int n, GError **error)
{
  if (n < 1 || n > t->cfg.batch) {
    g_set_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_INVALID,
                "accumulate %d: the micro-batches per step must be from 1 to the batch (%d)", n,
                t->cfg.batch);
    return FALSE;
  }
  if (n > 1 && t->comm != NULL) {
    g_set_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_INVALID,
                "accumulate %d: data-parallel runs do not accumulate gradients", n);
    return FALSE;
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
    t->cfg.accumulate = recipe->train.accumulate;
  }
  if (t->cfg.batch < 1) {
    g_set_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_INVALID, "batch must be at least 1");
    return NULL;
  }
  t->cfg.accumulate = MAX(t->cfg.accumulate, 1);
  if (!check_accumulate(t, t->cfg.accumulate, error))
    return NULL;
  t->resume_update = -1;
  t->eval_batch = t->cfg.batch;
  t->model = fth_model_build(recipe, n_classes, t->cfg.seed, FTH_MODEL_WEIGHTED_TRAINING, error);
  if (t->model == NULL)
    return NULL;
  t->planned_mode = (FthGraphMode)-1;
  t->loss_scale = 65536.0f;
  t->growth_interval = 2000;
  FthGraph *g = t->model->graph;
  if (fth_graph_plan(g, FTH_MODE_TRAIN, micro_batch(t)) != FTH_STATUS_OK) {
    engine_error(error, "planning the training graph");
    return NULL;
  }
  t->planned_mode = FTH_MODE_TRAIN;
  t->planned_batch = micro_batch(t);
  int np = fth_graph_n_params(g);
  t->params = g_new0(FthParam, np + 1);
  t->buffers = g_new0(FthNode *, np + 1);
  t->buffer_saved = g_new0(float *, np + 1);
  t->buffer_n = g_new0(size_t, np + 1);
  for (int i = 0; i < np; i++) {
    FthNode *p = fth_graph_param(g, i);
    FthTensor v, gr;
    if (!fth_param_is_trainable(p)) {
      if (fth_graph_tensor(g, p, &v) != FTH_STATUS_OK) {
        engine_error(error, "reading the buffers");
        return NULL;
      }
      t->buffers[t->n_buffers] = p;
      t->buffer_n[t->n_buffers] = (size_t)fth_tensor_numel(&v);
      t->buffer_saved[t->n_buffers++] = g_new(float, (size_t)fth_tensor_numel(&v) + 1);
      continue;
    }
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
  t->targets_per_sample = recipe->tagging ? (size_t)recipe->in_shape[0] : 1;
  t->y = g_new(int32_t, t->targets_per_sample * (size_t)t->cfg.batch);
  t->w = g_new(float, (size_t)t->cfg.batch);
  return g_steal_pointer(&t);
}

/* bf16 on a backend without its own precision setting (the CPU) is the graph's bf16 GEMMs. */
static gboolean
apply_precision(FthTrainer *t, GError **error)
{
  FthGraph *g = t->model->graph;
  gboolean own = t->be != NULL && t->be->set_precision != NULL;
  bool graph_bf16 = t->precision == FTH_PRECISION_BF16 && !own;
  if (fth_graph_bf16_matmul(g) != graph_bf16) {
    if (fth_graph_set_bf16_matmul(g, graph_bf16) != FTH_STATUS_OK)
      return engine_error(error, "--precision bf16");
    t->planned_mode = (FthGraphMode)-1;
  }
  if (own && t->be->set_precision(t->be, t->precision) != FTH_STATUS_OK)
    return engine_error(error, "setting the device's precision");
  float scale = t->precision == FTH_PRECISION_FP16 ? t->loss_scale : 1.0f;
  if (fth_graph_set_loss_scale(g, scale) != FTH_STATUS_OK)
    return engine_error(error, "scaling the loss");
  return TRUE;
}

gboolean
fth_trainer_set_precision(FthTrainer *t, FthPrecision precision, GError **error)
{
  t->precision = precision;
  return apply_precision(t, error);
}

FthPrecision
fth_trainer_precision(FthTrainer *t)
{
  return t->precision;
}

gboolean
fth_trainer_set_loss_scaling(FthTrainer *t, float initial_scale, int growth_interval,
                             GError **error)
{
  if (!(initial_scale > 0 && isfinite(initial_scale)) || growth_interval < 1) {
    g_set_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_INVALID,
                "loss scaling: scale %g and growth interval %d (a positive scale and interval)",
                initial_scale, growth_interval);
    return FALSE;
  }
  t->loss_scale = initial_scale;
  t->growth_interval = growth_interval;
  t->clean_steps = 0;
  return apply_precision(t, error);
}

float
fth_trainer_loss_scale(FthTrainer *t)
{
  return t->precision == FTH_PRECISION_FP16 ? t->loss_scale : 1.0f;
}

int64_t
fth_trainer_skipped_steps(FthTrainer *t)
{
  return t->skipped_steps;
}

/* One training step on zero inputs at `batch`; the parameter values and batch-norm statistics
 * are uploaded again after it, so it leaves no trace but the memory it needed. */
static FthStatus
probe_step(FthTrainer *t, int64_t batch)
{
  FthGraph *g = t->model->graph;
  size_t n = (size_t)batch;
  memset(t->x, 0, n * t->sample_floats * sizeof(float));
  memset(t->y, 0, n * t->targets_per_sample * sizeof(int32_t));
  for (size_t i = 0; i < n; i++)
    t->w[i] = 1.0f;
  FthStatus st = fth_graph_set_batch(g, batch);
  if (st == FTH_STATUS_OK)
    st = fth_graph_device_set_input(t->dev, t->model->input, t->x,
                                    n * t->sample_floats * sizeof(float));
  if (st == FTH_STATUS_OK)
    st = fth_graph_device_set_input(t->dev, t->model->targets, t->y,
                                    n * t->targets_per_sample * sizeof(int32_t));
  if (st == FTH_STATUS_OK)
    st = fth_graph_device_set_input(t->dev, t->model->sample_weights, t->w, n * sizeof(float));
  if (st == FTH_STATUS_OK)
    st = fth_graph_device_run(t->dev);
  if (st == FTH_STATUS_OK)
    st = fth_graph_device_upload_params(t->dev);
  return st;
}

gboolean
fth_trainer_use_device(FthTrainer *t, const FthBackend *be, size_t memory_budget, GError **error)
{
  if (t->dev != NULL) {
    g_set_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_INVALID,
                "the trainer already runs on %s", t->be->name);
    return FALSE;
  }
  FthGraph *g = t->model->graph;
  t->be = be;
  if (!apply_precision(t, error)) {
    t->be = NULL;
    return FALSE;
  }
  int64_t batch = t->comm != NULL ? t->cfg.batch : micro_batch(t);
  FthStatus st;
  /* The kernels' own memory (library workspaces, scratch outside the plan) shows only in a
   * step: a probe step on zeros halves the batch too when it runs out of memory. */
  do {
    fth_graph_device_free(t->dev);
    t->dev = NULL;
    st = fth_graph_device_fit(g, be, FTH_MODE_TRAIN, batch, memory_budget, &t->dev, &batch);
    if (st == FTH_STATUS_OK)
      st = probe_step(t, batch);
  } while (st == FTH_STATUS_NO_MEMORY && (batch /= 2) >= 1);
  t->planned_mode = st == FTH_STATUS_OK ? FTH_MODE_TRAIN : (FthGraphMode)-1;
  if (st != FTH_STATUS_OK) {
    fth_graph_device_free(t->dev);
    t->dev = NULL;
    t->be = NULL;
    return engine_error(error, "placing the graph on the device");
  }
  t->planned_batch = batch;
  if (t->cfg.accumulate > 1) {
    /* Accumulating already: the batch is the run's, the micro-batches shrink to what fits. */
    while (micro_batch(t) > batch)
      t->cfg.accumulate = MIN(t->cfg.accumulate * 2, t->cfg.batch);
  } else if (batch < t->cfg.batch) {
    /* The schedule's length follows the smaller batch when it was the run's length. */
    int64_t old_steps = fth_trainer_steps_per_epoch(t) * t->cfg.epochs;
    t->cfg.batch = (int)batch;
    if (t->cfg.schedule.total_steps == old_steps)
      t->cfg.schedule.total_steps = fth_trainer_steps_per_epoch(t) * t->cfg.epochs;
  }
  t->eval_batch = MIN(t->eval_batch, t->cfg.batch);
  t->dparams = g_new0(FthParam, t->n_params + 1);
  for (size_t i = 0; i < t->n_params; i++) {
    t->dparams[i] = t->params[i];
    if (fth_graph_device_param(t->dev, fth_graph_find_param(g, t->params[i].name),
                               &t->dparams[i].value, &t->dparams[i].grad) != FTH_STATUS_OK)
      return engine_error(error, "the parameters on the device");
  }
  /* Clipping needs the global norm, which the backend's update does not compute. */
  t->device_optim = be->optim_update != NULL && t->cfg.optim.clip_norm <= 0;
  if (!t->device_optim)
    return TRUE;
  t->n_state = fth_optimizer_n_state(t->opt);
  t->dstate = g_new0(float *, t->n_params * (size_t)t->n_state + 1);
  for (size_t i = 0; i < t->n_params; i++)
    for (int k = 0; k < t->n_state; k++) {
      size_t bytes = t->params[i].n * sizeof(float);
      float **d = &t->dstate[i * (size_t)t->n_state + (size_t)k];
      if ((*d = be->alloc(be, bytes)) == NULL ||
          be->copy_in(be, *d, fth_optimizer_state(t->opt, i, k), bytes) != FTH_STATUS_OK)
        return engine_error(error, "the optimizer state on the device");
    }
  return TRUE;
}

const FthBackend *
fth_trainer_backend(FthTrainer *t)
{
  return t->be;
}

gboolean
fth_trainer_sync_host(FthTrainer *t, GError **error)
{
  if (t->dev == NULL)
    return TRUE;
  if (fth_graph_device_download_params(t->dev) != FTH_STATUS_OK)
    return engine_error(error, "copying the parameters from the device");
  for (size_t i = 0; i < t->n_params && t->device_optim; i++)
    for (int k = 0; k < t->n_state; k++)
      if (t->be->copy_out(t->be, fth_optimizer_state(t->opt, i, k),
                          t->dstate[i * (size_t)t->n_state + (size_t)k],
                          t->params[i].n * sizeof(float)) != FTH_STATUS_OK)
        return engine_error(error, "copying the optimizer state from the device");
  return TRUE;
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

/* The graph's inputs, its run and its values on the path in use: the CPU's fth_graph_* or the
 * device's copies. */
static FthStatus
set_input(FthTrainer *t, FthNode *node, const void *data, size_t bytes)
{
  if (t->dev != NULL)
    return fth_graph_device_set_input(t->dev, node, data, bytes);
  return fth_graph_set_input(t->model->graph, node, data, bytes);
}

static FthStatus
run_graph(FthTrainer *t)
{
  return t->dev != NULL ? fth_graph_device_run(t->dev) : fth_graph_run(t->model->graph);
}

/* A node's value after the run; on a device, a host copy in readback[slot] (valid until the next
 * read into that slot). */
static FthStatus
read_value(FthTrainer *t, const FthNode *node, int slot, FthTensor *out)
{
  FthStatus st = fth_graph_tensor(t->model->graph, node, out);
  if (st != FTH_STATUS_OK || t->dev == NULL)
    return st;
  size_t bytes = fth_tensor_nbytes(out);
  if (t->readback_len[slot] < bytes) {
    g_free(t->readback[slot]);
    t->readback[slot] = g_malloc(bytes);
    t->readback_len[slot] = bytes;
  }
  out->data = t->readback[slot];
  return fth_graph_device_read(t->dev, node, FALSE, out->data, bytes);
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
  FthStatus st = FTH_STATUS_OK;
  if (fth_graph_batch(g) != (int64_t)count &&
      (st = fth_graph_set_batch(g, (int64_t)count)) != FTH_STATUS_OK)
    return step_error(st, error, "setting the batch size");
  fth_samples_fill_batch(s, idx, count, aug, t->cfg.seed, epoch, t->mean, t->std, t->x, t->y);
  fth_samples_fill_weights(s, idx, count, t->w);
  if ((st = set_input(t, t->model->input, t->x, count * t->sample_floats * sizeof(float))) !=
        FTH_STATUS_OK ||
      (st = set_input(t, t->model->targets, t->y,
                      count * t->targets_per_sample * sizeof(int32_t))) != FTH_STATUS_OK ||
      (st = set_input(t, t->model->sample_weights, t->w, count * sizeof(float))) != FTH_STATUS_OK)
    return step_error(st, error, "copying the batch in");
  /* Dropout masks keyed by the training step: the same in a resumed run. */
  if (step >= 0)
    fth_graph_set_step(g, (uint64_t)step);
  if ((st = run_graph(t)) != FTH_STATUS_OK)
    return step_error(st, error, "running the graph");
  FthTensor lt, logits;
  if ((st = read_value(t, t->model->loss, 0, &lt)) != FTH_STATUS_OK ||
      (st = read_value(t, t->model->logits, 1, &logits)) != FTH_STATUS_OK)
    return step_error(st, error, "reading the loss");
  *loss = *(const float *)lt.data;
  if (correct != NULL) {
    const float *z = logits.data;
    size_t c = (size_t)t->model->n_classes, tps = t->targets_per_sample;
    /* A tagged item counts as right when all its tokens are. */
    for (size_t i = 0; i < count; i++) {
      gboolean right = TRUE;
      for (size_t j = i * tps; j < (i + 1) * tps; j++)
        right = right && (t->y[j] < 0 || argmax(z + j * c, (int)c) == t->y[j]);
      *correct += right;
    }
  }
  return TRUE;
}

/* Gradients (or values) of the trainable parameters between the device and the host copies. */
static gboolean
copy_params(FthTrainer *t, gboolean grads, gboolean to_host, GError **error)
{
  for (size_t i = 0; i < t->n_params; i++) {
    float *host = grads ? t->params[i].grad : t->params[i].value;
    float *dev = grads ? t->dparams[i].grad : t->dparams[i].value;
    size_t bytes = t->params[i].n * sizeof(float);
    FthStatus st = to_host ? t->be->copy_out(t->be, host, dev, bytes)
                           : t->be->copy_in(t->be, dev, host, bytes);
    if (st != FTH_STATUS_OK)
      return engine_error(error, to_host ? "copying from the device" : "copying to the device");
  }
  return TRUE;
}

/* Multiplies the gradients by 1 / loss scale; *found_inf when one is not finite. host: they are
 * (or are to be) in the host copies. */
static gboolean
unscale(FthTrainer *t, gboolean host, gboolean *found_inf, GError **error)
{
  float factor = 1.0f / t->loss_scale;
  *found_inf = FALSE;
  if (!host && t->be->unscale != NULL) {
    g_autofree float **bufs = g_new(float *, t->n_params + 1);
    g_autofree size_t *counts = g_new(size_t, t->n_params + 1);
    for (size_t i = 0; i < t->n_params; i++) {
      bufs[i] = t->dparams[i].grad;
      counts[i] = t->dparams[i].n;
    }
    bool found = false;
    /* Out of memory here is answered as in the pass: the step's gradients are computed again. */
    FthStatus st = t->be->unscale(t->be, bufs, counts, (int)t->n_params, factor, &found);
    if (st != FTH_STATUS_OK)
      return step_error(st, error, "unscaling the gradients");
    *found_inf = found;
    return TRUE;
  }
  if (!host && !copy_params(t, TRUE, TRUE, error))
    return FALSE;
  gboolean bad = FALSE;
  for (size_t i = 0; i < t->n_params; i++) {
    float *gr = t->params[i].grad;
    for (size_t k = 0; k < t->params[i].n; k++) {
      gr[k] *= factor;
      bad |= !isfinite(gr[k]);
    }
  }
  *found_inf = bad;
  return host || copy_params(t, TRUE, FALSE, error);
}

/* GradScaler's rule: halve the scale on Inf/NaN gradients (the step is skipped), double it after
 * growth_interval clean steps while it stays finite. */
static gboolean
update_loss_scale(FthTrainer *t, gboolean found_inf, GError **error)
{
  if (found_inf) {
    t->loss_scale *= 0.5f;
    t->clean_steps = 0;
  } else if (++t->clean_steps >= t->growth_interval) {
    if (isfinite(t->loss_scale * 2.0f))
      t->loss_scale *= 2.0f;
    t->clean_steps = 0;
  }
  if (fth_graph_set_loss_scale(t->model->graph, t->loss_scale) != FTH_STATUS_OK)
    return engine_error(error, "scaling the loss");
  return TRUE;
}

/* The update through the backend's optimizer, parameter by parameter from resume_update: one
 * that runs out of memory records where it stopped, so the update goes on from there once memory
 * was freed, and no parameter is updated twice. */
static gboolean
device_update(FthTrainer *t, float lr, GError **error)
{
  const FthOptimConfig *c = fth_optimizer_config(t->opt);
  int64_t steps = fth_optimizer_steps(t->opt) + 1;
  for (size_t i = (size_t)MAX(t->resume_update, 0); i < t->n_params; i++) {
    const FthParam *p = &t->dparams[i];
    FthStatus st = t->be->optim_update(t->be, c, lr, p->decay ? c->weight_decay : 0.0f, steps,
                                       p->value, p->grad, t->dstate + i * (size_t)t->n_state, p->n);
    if (st != FTH_STATUS_OK) {
      t->resume_update = st == FTH_STATUS_NO_MEMORY ? (int64_t)i : -1;
      return step_error(st, error, "the optimizer step on the device");
    }
  }
  t->resume_update = -1;
  fth_optimizer_set_steps(t->opt, steps);
  return TRUE;
}

/* After backward: the gradient hook, fp16's unscaling (a step with Inf/NaN gradients is skipped),
 * then the update, on the device through the backend's optimizer or on the host copies. An update
 * that ran out of memory on the device goes on where it stopped (device_update). */
static gboolean
optimizer_step(FthTrainer *t, float lr, GError **error)
{
  if (t->resume_update >= 0)
    return device_update(t, lr, error);
  gboolean on_device = t->dev != NULL;
  if (t->grad_hook != NULL &&
      !t->grad_hook(on_device ? t->dparams : t->params, t->n_params, on_device, t->grad_hook_data,
                    error))
    return FALSE;
  gboolean host = !on_device || !t->device_optim;
  if (on_device && host && !copy_params(t, TRUE, TRUE, error))
    return FALSE;
  if (t->precision == FTH_PRECISION_FP16) {
    gboolean found_inf;
    if (!unscale(t, host, &found_inf, error) || !update_loss_scale(t, found_inf, error))
      return FALSE;
    if (found_inf) {
      t->skipped_steps++;
      return TRUE;
    }
  }
  if (host) {
    fth_optimizer_step(t->opt, lr);
    return !on_device || copy_params(t, FALSE, FALSE, error);
  }
  return device_update(t, lr, error);
}

/* The grad hook of a data-parallel trainer on a device: the buckets of this rank's gradients,
 * each scaled by its share of the global batch, queued on NCCL's stream during the backward pass
 * (grad_ready), the rest now, and the device's later work ordered after them. On the CPU they are
 * summed already (run_slice). */
static gboolean
reduce_grads(const FthParam *params, size_t n_params, gboolean on_device, gpointer data,
             GError **error)
{
  FthTrainer *t = data;
  if (!on_device)
    return TRUE;
  if (!fth_comm_on_device(t->comm)) {
    g_set_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_INVALID,
                "data parallel: the gradients are in %s memory, the %s communicator reduces %s "
                "memory", on_device ? "device" : "host", fth_comm_name(t->comm),
                on_device ? "host" : "device");
    return FALSE;
  }
  int early = 0;
  if (!fth_grad_reducer_finish(t->reducer, &early, error))
    return FALSE;
  t->early_buckets += early;
  return TRUE;
}

/* The graph says a parameter's gradient is final: its bucket may be summed while the backward
 * pass goes on. */
static void
grad_ready(const FthNode *param, void *data)
{
  FthTrainer *t = data;
  gpointer index;
  if (g_hash_table_lookup_extended(t->param_index, param, NULL, &index))
    fth_grad_reducer_ready(t->reducer, GPOINTER_TO_SIZE(index));
}

gboolean
fth_trainer_set_comm(FthTrainer *t, FthComm *comm, size_t bucket_bytes, GError **error)
{
  if (t->cfg.accumulate > 1) {
    g_set_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_INVALID,
                "data parallel: the trainer accumulates %d micro-batches per step, which data-"
                "parallel runs do not do", t->cfg.accumulate);
    return FALSE;
  }
  fth_grad_reducer_free(t->reducer);
  /* NCCL sums the device's gradients where they are; the rest is summed on the host. */
  gboolean device = fth_comm_on_device(comm) && t->dparams != NULL;
  t->reducer = fth_grad_reducer_new(device ? comm : fth_comm_host(comm),
                                    device ? t->dparams : t->params, t->n_params,
                                    bucket_bytes > 0 ? bucket_bytes : FTH_GRAD_BUCKET_BYTES);
  if (t->param_index == NULL) {
    t->param_index = g_hash_table_new(NULL, NULL);
    for (size_t i = 0; i < t->n_params; i++)
      g_hash_table_insert(t->param_index,
                          fth_graph_find_param(t->model->graph, t->params[i].name),
                          GSIZE_TO_POINTER(i));
  }
  fth_graph_set_grad_ready_func(t->model->graph, grad_ready, t);
  t->comm = comm;
  fth_trainer_set_grad_hook(t, reduce_grads, t);
  return fth_comm_broadcast_params(fth_comm_host(comm), t->params, t->n_params, error);
}

int
fth_trainer_early_buckets(FthTrainer *t)
{
  return t->early_buckets;
}

void
fth_trainer_set_grad_overlap(FthTrainer *t, gboolean overlap)
{
  fth_graph_set_grad_ready_func(t->model->graph, overlap ? grad_ready : NULL, t);
}

size_t
fth_trainer_local_samples(FthTrainer *t)
{
  return t->local_samples;
}

/* Data parallel: this rank's contiguous part [lo, hi) of the global batch idx[0..count), its
 * gradients summed over the ranks (CPU), then the batch's loss and correct count (every rank
 * sees the same). */
/* What samples idx[0..n) weigh in the loss's mean: each its loss weight (FthSamples.weights, 1
 * without), for a tagger times its tokens that are not ignored (from the stored tags). */
static double
loss_weight(const FthTrainer *t, const FthSamples *s, const uint32_t *idx, size_t n)
{
  gboolean tokens = t->targets_per_sample > 1 && s->tags != NULL;
  if (!tokens && s->weights == NULL)
    return (double)n;
  size_t len = (size_t)s->seq_len;
  double w = 0;
  for (size_t k = 0; k < n; k++) {
    size_t counted = 1;
    if (tokens) {
      counted = 0;
      for (size_t j = 0; j < len; j++)
        counted += s->tags[idx[k] * len + j] != FTH_IGNORE_TARGET;
    }
    w += (s->weights ? (double)s->weights[idx[k]] : 1.0) * (double)counted;
  }
  return w;
}

static gboolean
run_slice(FthTrainer *t, const FthSamples *s, const uint32_t *idx, size_t count,
          const FthAugment *aug, uint64_t epoch, int64_t step, double *loss, int64_t *correct,
          GError **error)
{
  size_t rank = (size_t)fth_comm_rank(t->comm), size = (size_t)fth_comm_size(t->comm);
  size_t lo = count * rank / size, hi = count * (rank + 1) / size;
  float sums[2] = {0, 0};
  /* The loss is a mean over the global batch: each rank's gradient counts by its weight in it. */
  double total = loss_weight(t, s, idx, count), mine = loss_weight(t, s, idx + lo, hi - lo);
  t->share = total > 0 ? (float)(mine / total) : 0.0f;
  /* The buckets are summed as the backward pass finishes their gradients (grad_ready): on the
   * CPU by the reducer's thread, finished here; on a device queued on NCCL's stream, finished in
   * the grad hook. A batch smaller than the ranks leaves some without samples: their share is 0
   * and they add zeros. */
  gboolean host = t->dev == NULL;
  if (host || fth_comm_on_device(t->comm))
    fth_grad_reducer_begin(t->reducer, t->share);
  if (hi > lo) {
    double l;
    int64_t right = 0;
    if (!run_batch(t, s, idx + lo, hi - lo, aug, epoch, step, &l, &right, error))
      return FALSE;
    sums[0] = (float)(l * mine);
    sums[1] = (float)right;
  }
  int early = 0;
  if (host && !fth_grad_reducer_finish(t->reducer, &early, error))
    return FALSE;
  t->early_buckets += early;
  t->local_samples += hi - lo;
  if (!fth_comm_all_reduce_sum(fth_comm_host(t->comm), sums, 2, error))
    return FALSE;
  *loss = total > 0 ? sums[0] / total : 0;
  *correct += (int64_t)sums[1];
  return TRUE;
}

/* The largest batch a training step runs: its largest micro-batch, or this rank's part of the
 * global batch when data parallel on the CPU, so its arena is the part's (a device keeps the
 * arena it was fit for). */
static int64_t
step_batch(FthTrainer *t)
{
  if (t->comm == NULL)
    return micro_batch(t);
  if (t->dev != NULL)
    return t->cfg.batch;
  int64_t ranks = fth_comm_size(t->comm);
  return (t->cfg.batch + ranks - 1) / ranks;
}

int
fth_trainer_accumulate(FthTrainer *t)
{
  return t->cfg.accumulate;
}

gboolean
fth_trainer_set_accumulate(FthTrainer *t, int n, GError **error)
{
  if (!check_accumulate(t, n, error))
    return FALSE;
  t->cfg.accumulate = n;
  return TRUE;
}

/* Saves (or puts back) the buffers' values before a step (after a failed attempt). On a device
 * they are small copies (a few per batch-norm layer) that wait for the device. */
static gboolean
keep_buffers(FthTrainer *t, gboolean restore, GError **error)
{
  for (size_t i = 0; i < t->n_buffers; i++) {
    size_t bytes = t->buffer_n[i] * sizeof(float);
    FthTensor v;
    if (t->dev == NULL) {
      if (fth_graph_tensor(t->model->graph, t->buffers[i], &v) != FTH_STATUS_OK)
        return engine_error(error, "the batch-norm statistics");
      memcpy(restore ? v.data : t->buffer_saved[i], restore ? t->buffer_saved[i] : v.data, bytes);
      continue;
    }
    float *dv;
    if (fth_graph_device_param(t->dev, t->buffers[i], &dv, NULL) != FTH_STATUS_OK ||
        (restore ? t->be->copy_in(t->be, dv, t->buffer_saved[i], bytes)
                 : t->be->copy_out(t->be, t->buffer_saved[i], dv, bytes)) != FTH_STATUS_OK)
      return engine_error(error, "the batch-norm statistics on the device");
  }
  return TRUE;
}

/* Adds a micro-batch's gradients, times its share of the batch's loss, to the sums (which it
 * starts when first). On a device they are read into the host gradient copies first. */
static gboolean
accumulate_grads(FthTrainer *t, float share, gboolean first, GError **error)
{
  if (t->acc == NULL) {
    t->acc = g_new0(float *, t->n_params + 1);
    for (size_t i = 0; i < t->n_params; i++)
      t->acc[i] = g_new(float, t->params[i].n + 1);
  }
  for (size_t i = 0; i < t->n_params; i++) {
    const FthParam *p = &t->params[i];
    FthStatus st;
    if (t->dev != NULL &&
        (st = t->be->copy_out(t->be, p->grad, t->dparams[i].grad, p->n * sizeof(float))) !=
          FTH_STATUS_OK)
      return step_error(st, error, "copying the gradients from the device");
    float *a = t->acc[i];
    const float *gr = p->grad;
    if (first)
      for (size_t k = 0; k < p->n; k++)
        a[k] = share * gr[k];
    else
      for (size_t k = 0; k < p->n; k++)
        a[k] += share * gr[k];
  }
  return TRUE;
}

/* The sums become the gradients the optimizer step sees. */
static gboolean
set_accumulated_grads(FthTrainer *t, GError **error)
{
  for (size_t i = 0; i < t->n_params; i++) {
    const FthParam *p = &t->params[i];
    memcpy(p->grad, t->acc[i], p->n * sizeof(float));
    FthStatus st;
    if (t->dev != NULL &&
        (st = t->be->copy_in(t->be, t->dparams[i].grad, t->acc[i], p->n * sizeof(float))) !=
          FTH_STATUS_OK)
      return step_error(st, error, "copying the gradients to the device");
  }
  return TRUE;
}

/* Forward and backward over the batch idx[0..count) as cfg.accumulate micro-batches; the loss
 * is the batch's (the micro-batches' losses weighted by their share). */
static gboolean
run_micro_batches(FthTrainer *t, const FthSamples *s, const uint32_t *idx, size_t count,
                  const FthAugment *aug, uint64_t epoch, int64_t step, double *loss,
                  int64_t *correct, GError **error)
{
  size_t m = (size_t)t->cfg.accumulate;
  if (m == 1)
    return run_batch(t, s, idx, count, aug, epoch, step, loss, correct, error);
  double total = loss_weight(t, s, idx, count), sum = 0;
  gboolean first = TRUE;
  for (size_t k = 0; k < m; k++) {
    size_t lo = count * k / m, hi = count * (k + 1) / m;
    if (hi == lo)
      continue;
    double l, share = total > 0 ? loss_weight(t, s, idx + lo, hi - lo) / total : 0;
    if (!run_batch(t, s, idx + lo, hi - lo, aug, epoch, step, &l, correct, error) ||
        !accumulate_grads(t, (float)share, first, error))
      return FALSE;
    sum += share * l;
    first = FALSE;
  }
  *loss = sum;
  return set_accumulated_grads(t, error);
}

/* Answers an out-of-memory failure (cause, consumed): twice the micro-batches, reported; or the
 * final error when a micro-batch of 1 ran out of memory. */
static gboolean
halve_micro_batch(FthTrainer *t, const Report *r, GError *cause, GError **error)
{
  int64_t micro = micro_batch(t);
  if (micro <= 1 || t->comm != NULL) {
    g_set_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_NO_MEMORY,
                "epoch %d, step %" G_GINT64_FORMAT ": out of memory %s (%s)", r->epoch + 1,
                (gint64)r->step,
                t->comm != NULL ? "in a data-parallel run, which cannot fall back to smaller "
                                  "micro-batches: give a smaller --batch"
                                : "with a micro-batch of 1: the model does not fit in the memory "
                                  "left",
                cause->message);
    g_error_free(cause);
    return FALSE;
  }
  int before = t->cfg.accumulate;
  t->cfg.accumulate = MIN(before * 2, t->cfg.batch);
  g_autofree char *was = before == 1 ? g_strdup_printf("a batch of %d", t->cfg.batch)
                                     : g_strdup_printf("micro-batches of %" G_GINT64_FORMAT,
                                                       (gint64)micro);
  g_autofree char *msg = g_strdup_printf(
    "epoch %d, step %" G_GINT64_FORMAT ": out of memory at %s (%s): continuing with %d "
    "micro-batches of %" G_GINT64_FORMAT " per step", r->epoch + 1, (gint64)r->step, was,
    cause->message, t->cfg.accumulate, (gint64)micro_batch(t));
  g_error_free(cause);
  if (r->progress != NULL && r->func != NULL) {
    r->progress->epoch = r->epoch;
    r->progress->step = r->step;
    r->progress->epoch_end = FALSE;
    r->progress->message = msg;
    r->func(r->progress, r->func_data);
    r->progress->message = NULL;
  }
  return TRUE;
}

/* Plans the training graph for the step's micro-batch, halving it while that runs out of
 * memory. */
static gboolean
plan_training(FthTrainer *t, const Report *r, GError **error)
{
  GError *err = NULL;
  while (!plan(t, FTH_MODE_TRAIN, step_batch(t), &err)) {
    if (!is_no_memory(err)) {
      g_propagate_error(error, err);
      return FALSE;
    }
    if (!halve_micro_batch(t, r, err, error))
      return FALSE;
    err = NULL;
  }
  return TRUE;
}

/* After an out-of-memory failure (err, consumed) in a step: the buffers as they were before it
 * when its passes run again, then smaller micro-batches. */
static gboolean
recover(FthTrainer *t, const Report *r, gboolean restore, GError *err, GError **error)
{
  if (restore && t->n_buffers > 0 && !keep_buffers(t, TRUE, error)) {
    g_error_free(err);
    return FALSE;
  }
  return halve_micro_batch(t, r, err, error);
}

/* One optimizer step over idx[0..count). Out of memory in the forward and backward passes (or
 * in fp16's unscaling, before the update) runs the same samples again as smaller micro-batches;
 * out of memory in the device update goes on with the update once the arena is smaller. */
static gboolean
train_step(FthTrainer *t, const FthSamples *s, const uint32_t *idx, size_t count,
           const FthAugment *aug, const Report *r, double *loss, int64_t *correct,
           GError **error)
{
  if (t->n_buffers > 0 && !keep_buffers(t, FALSE, error))
    return FALSE;
  double lr = fth_lr_at(&t->cfg.schedule, r->step);
  int64_t right = 0;
  for (;;) {
    GError *err = NULL;
    if (!plan_training(t, r, error))
      return FALSE;
    if (t->resume_update < 0) {
      right = 0;
      if (!(t->comm ? run_slice : run_micro_batches)(t, s, idx, count, aug, (uint64_t)r->epoch,
                                                     r->step, loss, &right, &err)) {
        if (!is_no_memory(err)) {
          g_propagate_error(error, err);
          return FALSE;
        }
        if (!recover(t, r, TRUE, err, error))
          return FALSE;
        continue;
      }
      if (!isfinite(*loss)) {
        g_set_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_NUMERIC,
                    "epoch %d, step %" G_GINT64_FORMAT ": the loss is %s; training stopped "
                    "(lower the learning rate or add gradient clipping)", r->epoch + 1,
                    (gint64)r->step, isnan(*loss) ? "NaN" : "infinite");
        return FALSE;
      }
    }
    if (optimizer_step(t, (float)lr, &err)) {
      *correct += right;
      return TRUE;
    }
    if (!is_no_memory(err)) {
      g_propagate_error(error, err);
      return FALSE;
    }
    if (!recover(t, r, t->resume_update < 0, err, error))
      return FALSE;
  }
}

gboolean
fth_trainer_run_epoch(FthTrainer *t, const FthSamples *s, const uint32_t *train, size_t n,
                      int epoch, int64_t first_batch, int64_t stop_step,
                      FthTrainProgress *progress, FthTrainProgressFunc func, gpointer func_data,
                      GCancellable *cancellable, gboolean *interrupted, GError **error)
{
  *interrupted = FALSE;
  int64_t spe = fth_trainer_steps_per_epoch(t);
  Report r = {progress, func, func_data, epoch, (int64_t)epoch * spe + first_batch};
  if (!plan_training(t, &r, error))
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
    r.step = step;
    if (!train_step(t, s, t->perm + start, count, aug, &r, &loss, &correct, error))
      return FALSE;
    double lr = fth_lr_at(&t->cfg.schedule, step);
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

/* The loss sum and the confusion counts over the ranks (floats count exactly to 2^24). */
static gboolean
sum_evaluation(FthComm *comm, FthConfusion *cm, double *loss_sum, GError **error)
{
  size_t cells = cm != NULL ? (size_t)cm->n_classes * (size_t)cm->n_classes : 0;
  g_autofree float *v = g_new(float, cells + 1);
  v[0] = (float)*loss_sum;
  for (size_t i = 0; i < cells; i++)
    v[i + 1] = (float)cm->counts[i];
  if (!fth_comm_all_reduce_sum(comm, v, cells + 1, error))
    return FALSE;
  *loss_sum = v[0];
  for (size_t i = 0; i < cells; i++)
    cm->counts[i] = (int64_t)v[i + 1];
  return TRUE;
}

/* An evaluation batch from idx[0..remaining), planned and run at eval_batch, which halves while
 * the backend runs out of memory; *count receives the samples it ran. */
static gboolean
run_eval_batch(FthTrainer *t, const FthSamples *s, const uint32_t *idx, size_t remaining,
               size_t *count, double *loss, GError **error)
{
  for (;;) {
    GError *err = NULL;
    *count = MIN((size_t)t->eval_batch, remaining);
    if (plan(t, FTH_MODE_INFERENCE, t->eval_batch, &err) &&
        run_batch(t, s, idx, *count, NULL, 0, -1, loss, NULL, &err))
      return TRUE;
    if (!is_no_memory(err) || t->eval_batch == 1) {
      g_propagate_error(error, err);
      return FALSE;
    }
    g_error_free(err);
    t->eval_batch = (t->eval_batch + 1) / 2;
  }
}

gboolean
fth_trainer_evaluate(FthTrainer *t, const FthSamples *s, const uint32_t *idx, size_t n,
                     FthConfusion *cm, double *mean_loss, GError **error)
{
  double loss_sum = 0;
  /* Data parallel: each rank evaluates its contiguous part; the sums are added below. */
  size_t lo = 0, hi = n;
  if (t->comm != NULL) {
    lo = n * (size_t)fth_comm_rank(t->comm) / (size_t)fth_comm_size(t->comm);
    hi = n * (size_t)(fth_comm_rank(t->comm) + 1) / (size_t)fth_comm_size(t->comm);
  }
  for (size_t start = lo, count; start < hi; start += count) {
    double loss;
    if (!run_eval_batch(t, s, idx + start, hi - start, &count, &loss, error))
      return FALSE;
    loss_sum += loss * (double)count;
    if (cm != NULL) {
      FthTensor logits;
      if (read_value(t, t->model->logits, 1, &logits) != FTH_STATUS_OK)
        return engine_error(error, "reading the logits");
      const float *z = logits.data;
      int c = t->model->n_classes;
      /* Per token for a tagger; padding (a negative target) is not counted. */
      for (size_t i = 0; i < count * t->targets_per_sample; i++)
        fth_confusion_add(cm, t->y[i], argmax(z + i * (size_t)c, c));
    }
  }
  if (t->comm != NULL && !sum_evaluation(fth_comm_host(t->comm), cm, &loss_sum, error))
    return FALSE;
  if (mean_loss != NULL)
    *mean_loss = n ? loss_sum / (double)n : NAN;
  return TRUE;
}

gboolean
fth_trainer_evaluate_entities(FthTrainer *t, const FthSamples *s, const uint32_t *idx, size_t n,
                              FthEntityCounts *counts, GError **error)
{
  size_t tps = t->targets_per_sample, c = (size_t)t->model->n_classes;
  g_autofree int32_t *pred = g_new(int32_t, tps);
  for (size_t start = 0, count; start < n; start += count) {
    double loss;
    FthTensor logits;
    if (!run_eval_batch(t, s, idx + start, n - start, &count, &loss, error))
      return FALSE;
    if (read_value(t, t->model->logits, 1, &logits) != FTH_STATUS_OK)
      return engine_error(error, "reading the logits");
    const float *z = logits.data;
    for (size_t i = 0; i < count; i++) {
      for (size_t j = 0; j < tps; j++)
        pred[j] = argmax(z + (i * tps + j) * c, (int)c);
      fth_entity_counts_add(counts, t->y + i * tps, pred, tps);
    }
  }
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
