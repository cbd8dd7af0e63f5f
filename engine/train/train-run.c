/* fth_train: the trainer over a project (dataset, splits, runs and metrics in the store) with
 * checkpoints, resume, early stopping and the memory budget. */
#include "fathom/train.h"

#include "fth-config.h"
#include "parallel-private.h"
#include "train-private.h"

#include <fathom/backend.h>
#include <gio/gio.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

#if FTH_HAVE_CUDA
#include "../graph/backend-cuda.h" /* the device's free memory for --max-memory */
#endif

static const FthBackend *forced_device;

void
fth_train_force_device(const FthBackend *be)
{
  forced_device = be;
}

void
fth_train_options_init(FthTrainOptions *o)
{
  memset(o, 0, sizeof *o);
  o->seed = 1;
  o->val_frac = 0.1;
  o->test_frac = 0.1;
}

void
fth_train_result_clear(FthTrainResult *r)
{
  g_clear_pointer(&r->checkpoint_dir, g_free);
}

/* Stored splits when any item has one (items without become training items), else a seeded
 * stratified split that is written back to the store so later runs and the workbench agree. */
static gboolean
make_splits(FthStore *store, const FthDataset *ds, const FthTrainOptions *o, FthSplit *split,
            GError **error)
{
  size_t n = fth_dataset_size(ds);
  gboolean stored = FALSE;
  for (size_t i = 0; i < n && !stored; i++)
    stored = fth_dataset_split(ds, i) != FTH_SPLIT_NONE;
  if (stored) {
    for (size_t i = 0; i < n; i++) {
      FthSplit s = fth_dataset_split(ds, i);
      split[i] = s == FTH_SPLIT_NONE ? FTH_SPLIT_TRAIN : s;
    }
    return TRUE;
  }
  g_autofree int32_t *labels = g_new(int32_t, n);
  for (size_t i = 0; i < n; i++)
    labels[i] = fth_dataset_label(ds, i);
  if (!fth_stratified_split(labels, n, fth_dataset_n_classes(ds), o->val_frac, o->test_frac,
                            o->seed, split, error))
    return FALSE;
  for (int s = FTH_SPLIT_TRAIN; s <= FTH_SPLIT_TEST; s++) {
    g_autoptr(GArray) ids = g_array_new(FALSE, FALSE, sizeof(gint64));
    for (size_t i = 0; i < n; i++)
      if ((int)split[i] == s) {
        gint64 id = fth_dataset_item_id(ds, i);
        g_array_append_val(ids, id);
      }
    if (ids->len > 0 &&
        !fth_store_set_split(store, (const gint64 *)(void *)ids->data, ids->len, (FthSplit)s, error))
      return FALSE;
  }
  return TRUE;
}

static char *
metrics_json(const FthTrainProgress *p, gboolean has_val)
{
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
#define ADD(name, v)                                                                                \
  do {                                                                                             \
    json_builder_set_member_name(b, name);                                                         \
    json_builder_add_double_value(b, v);                                                           \
  } while (0)
  ADD("train_loss", p->train_loss);
  ADD("train_acc", p->train_acc);
  if (has_val) {
    ADD("val_loss", p->val_loss);
    ADD("val_acc", p->val_acc);
    ADD("val_macro_f1", p->val_macro_f1);
  }
#undef ADD
  json_builder_end_object(b);
  g_autoptr(JsonNode) root = json_builder_get_root(b);
  return json_to_string(root, FALSE);
}

static gboolean
save_checkpoint(const char *dir, FthTrainer *t, const FthRecipe *recipe, const char *const *vars,
                const FthDataset *ds, int64_t step, int epoch, double best, int bad,
                const char *metrics, GError **error)
{
  int nc = fth_dataset_n_classes(ds);
  g_autofree char **labels = g_new0(char *, nc + 1);
  g_autofree gint64 *ids = g_new0(gint64, nc + 1);
  for (int c = 0; c < nc; c++) {
    labels[c] = (char *)fth_dataset_class_name(ds, c);
    ids[c] = fth_dataset_class_label_id(ds, c);
  }
  if (!fth_trainer_sync_host(t, error))
    return FALSE;
  FthCheckpointMeta meta = {
    .recipe_json = recipe->json, .vars = (char **)vars, .labels = labels, .label_ids = ids,
    .n_labels = nc, .mean = recipe->mean, .std = recipe->std, .n_norm = recipe->n_norm,
    .step = step, .epoch = epoch, .seed = fth_trainer_config(t)->seed,
    .batch = fth_trainer_config(t)->batch, .accumulate = fth_trainer_accumulate(t),
    .epochs_total = fth_trainer_config(t)->epochs,
    .lr = fth_trainer_config(t)->optim.lr, .metrics_json = (char *)metrics,
    .best_metric = best, .bad_epochs = bad};
  return fth_checkpoint_save(dir, &meta, fth_trainer_model(t)->graph, fth_trainer_optimizer(t),
                             error);
}

static char *
config_json(const FthRecipe *r, const FthTrainerConfig *c, const FthTrainOptions *o,
            const char *device, FthPrecision precision, const FthTrainResult *res)
{
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "recipe");
  json_builder_add_string_value(b, r->name);
  json_builder_set_member_name(b, "vars");
  json_builder_begin_array(b);
  for (int i = 0; o->vars && o->vars[i]; i++)
    json_builder_add_string_value(b, o->vars[i]);
  json_builder_end_array(b);
  json_builder_set_member_name(b, "epochs");
  json_builder_add_int_value(b, c->epochs);
  json_builder_set_member_name(b, "batch");
  json_builder_add_int_value(b, c->batch);
  json_builder_set_member_name(b, "accumulate");
  json_builder_add_int_value(b, c->accumulate);
  json_builder_set_member_name(b, "optimizer");
  json_builder_add_string_value(b, c->optim.kind == FTH_OPTIM_SGD ? "sgd" : "adamw");
  json_builder_set_member_name(b, "lr");
  json_builder_add_double_value(b, c->optim.lr);
  json_builder_set_member_name(b, "seed");
  json_builder_add_int_value(b, (gint64)c->seed);
  json_builder_set_member_name(b, "augment");
  json_builder_add_boolean_value(b, c->use_augment);
  json_builder_set_member_name(b, "resume");
  json_builder_add_boolean_value(b, o->resume);
  json_builder_set_member_name(b, "device");
  json_builder_add_string_value(b, device);
  json_builder_set_member_name(b, "precision");
  json_builder_add_string_value(b, fth_precision_name(precision));
  json_builder_set_member_name(b, "bytes_per_sample");
  json_builder_add_int_value(b, (gint64)res->bytes_per_sample);
  json_builder_set_member_name(b, "bytes_per_sample_fp32");
  json_builder_add_int_value(b, (gint64)res->bytes_per_sample_fp32);
  json_builder_end_object(b);
  g_autoptr(JsonNode) root = json_builder_get_root(b);
  return json_to_string(root, FALSE);
}

/* The run's progress: the caller's function, and the trainer's events (running out of memory)
 * kept until they are written to the store (store_events). */
typedef struct {
  const FthTrainOptions *o;
  FthTrainer *t;
  GArray *events; /* RunEvent */
} RunProgress;

typedef struct {
  gint64 step;
  int epoch;
  int micro_batches;
  char *meta_json;
} RunEvent;

static void
clear_event(gpointer p)
{
  g_free(((RunEvent *)p)->meta_json);
}

static void
run_progress(const FthTrainProgress *p, gpointer data)
{
  RunProgress *rp = data;
  if (p->message != NULL) {
    const FthTrainerConfig *c = fth_trainer_config(rp->t);
    g_autoptr(JsonBuilder) b = json_builder_new();
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "event");
    json_builder_add_string_value(b, "out_of_memory");
    json_builder_set_member_name(b, "epoch");
    json_builder_add_int_value(b, p->epoch + 1);
    json_builder_set_member_name(b, "step");
    json_builder_add_int_value(b, p->step);
    json_builder_set_member_name(b, "batch");
    json_builder_add_int_value(b, c->batch);
    json_builder_set_member_name(b, "micro_batches");
    json_builder_add_int_value(b, c->accumulate);
    json_builder_set_member_name(b, "message");
    json_builder_add_string_value(b, p->message);
    json_builder_end_object(b);
    g_autoptr(JsonNode) root = json_builder_get_root(b);
    RunEvent ev = {p->step, p->epoch, c->accumulate, json_to_string(root, FALSE)};
    g_array_append_val(rp->events, ev);
  }
  if (rp->o->progress != NULL)
    rp->o->progress(p, rp->o->progress_data);
}

/* Each event becomes an artifact of kind "event" and the metric micro_batches at its step. */
static gboolean
store_events(FthStore *store, gint64 run_id, const char *checkpoint_dir, RunProgress *rp,
             GError **error)
{
  for (guint i = 0; i < rp->events->len; i++) {
    const RunEvent *ev = &g_array_index(rp->events, RunEvent, i);
    FthArtifact art = {.run_id = run_id, .kind = "event", .path = (char *)checkpoint_dir,
                       .meta_json = ev->meta_json};
    if (!fth_store_add_artifact(store, &art, NULL, error) ||
        !fth_store_add_metric(store, run_id, ev->step, ev->epoch, "micro_batches",
                              ev->micro_batches, error))
      return FALSE;
  }
  g_array_set_size(rp->events, 0);
  return TRUE;
}

static void
add_metric(GArray *metrics, gint64 step, double epoch, const char *name, double value)
{
  FthMetric m = {0, step, epoch, (char *)name, value};
  if (isfinite(value))
    g_array_append_val(metrics, m);
}

/* A confusion matrix as stored per epoch and for the test split: an artifact of kind
 * "confusion" whose metadata holds the split, epoch and step, the counts, and each class's
 * precision, recall and F1. */
static gboolean
store_confusion(FthStore *store, gint64 run_id, const char *checkpoint_dir,
                const FthConfusion *cm, const FthDataset *ds, const char *split, int epoch,
                int64_t step, GError **error)
{
  int nc = cm->n_classes;
  g_autofree const char **names = g_new0(const char *, nc + 1);
  for (int k = 0; k < nc; k++)
    names[k] = fth_dataset_class_name(ds, k);
  g_autofree char *counts = fth_confusion_to_json(cm, names);
  g_autoptr(JsonNode) root = json_from_string(counts, error);
  if (root == NULL)
    return FALSE;
  JsonObject *o = json_node_get_object(root);
  json_object_set_string_member(o, "split", split);
  json_object_set_int_member(o, "epoch", epoch);
  json_object_set_int_member(o, "step", step);
  static const char *const per_class[] = {"precision", "recall", "f1"};
  for (int m = 0; m < 3; m++) {
    JsonArray *a = json_array_sized_new((guint)nc);
    for (int k = 0; k < nc; k++)
      json_array_add_double_element(a, m == 0   ? fth_confusion_precision(cm, k)
                                       : m == 1 ? fth_confusion_recall(cm, k)
                                                : fth_confusion_f1(cm, k));
    json_object_set_array_member(o, per_class[m], a);
  }
  g_autofree char *meta = json_to_string(root, FALSE);
  FthArtifact art = {.run_id = run_id, .kind = "confusion", .path = (char *)checkpoint_dir,
                     .meta_json = meta};
  return fth_store_add_artifact(store, &art, NULL, error);
}

/* --device and --precision, checked before any work. *name receives the device as recorded in
 * the run's config ("cpu", "cuda:N"); *be is NULL for the CPU path (fth_graph_run on the host)
 * unless a test forces the device path. */
static gboolean
check_device(const FthTrainOptions *o, const FthBackend **be, char **name, FthPrecision *precision,
             GError **error)
{
  const char *spec = o->device;
  if (!fth_precision_from_name(o->precision ? o->precision : "fp32", precision)) {
    g_set_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_INVALID,
                "--precision %s: expected fp32, bf16 or fp16", o->precision);
    return FALSE;
  }
  if (!fth_train_select_device(spec, be, name, error))
    return FALSE;
  if (*precision == FTH_PRECISION_FP16 && *be == NULL) {
    g_set_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_INVALID,
                "--precision fp16 needs a CUDA device (the CPU has no fp16 arithmetic; use bf16)");
    return FALSE;
  }
  return TRUE;
}

/* The planner's training bytes per sample (activations, their gradients, saved state and
 * scratch) of a fresh model, with the graph's bf16 GEMMs or without. Parameters and activations
 * stay fp32 in every precision, so only the bf16 GEMMs' packing scratch tells the two apart. */
static gboolean
bytes_per_sample(const FthRecipe *r, int n_classes, gboolean graph_bf16, size_t *out,
                 GError **error)
{
  g_autoptr(FthModel) m = fth_model_build(r, n_classes, 1, FTH_MODEL_TRAINING, error);
  if (m == NULL)
    return FALSE;
  FthPlanStats st;
  if ((graph_bf16 && fth_graph_set_bf16_matmul(m->graph, true) != FTH_STATUS_OK) ||
      fth_graph_plan(m->graph, FTH_MODE_TRAIN, 1) != FTH_STATUS_OK ||
      fth_graph_plan_stats(m->graph, &st) != FTH_STATUS_OK) {
    g_set_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_ENGINE,
                "%s: planning for the memory report: %s", r->source, fth_last_error());
    return FALSE;
  }
  *out = st.per_sample_bytes;
  return TRUE;
}

gboolean
fth_train_select_device(const char *spec, const FthBackend **be, char **name, GError **error)
{
  if (fth_backend_select(spec, be) != FTH_STATUS_OK) {
    g_set_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_INVALID, "--device %s: %s", spec,
                fth_last_error());
    return FALSE;
  }
  if (*be == fth_backend_cpu()) {
    *name = g_strdup("cpu");
    *be = forced_device;
  } else {
    *name = spec != NULL && strchr(spec, ':') != NULL ? g_strdup(spec) : g_strdup("cuda:0");
  }
  return TRUE;
}

gboolean
fth_train(FthStore *store, const FthTrainOptions *o, FthTrainResult *result, GError **error)
{
  memset(result, 0, sizeof *result);
  /* Data parallel: rank 0 alone writes the store, the cache and the checkpoints. */
  gboolean lead = o->comm == NULL || fth_comm_rank(o->comm) == 0;
  const FthBackend *be = NULL;
  g_autofree char *device = NULL;
  FthPrecision precision;
  if (!check_device(o, &be, &device, &precision, error))
    return FALSE;
  g_autoptr(FthCheckpointMeta) resume = NULL;
  if (o->resume) {
    if (o->checkpoint_dir == NULL) {
      g_set_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_INVALID,
                  "--resume needs the checkpoint directory");
      return FALSE;
    }
    resume = fth_checkpoint_load_meta(o->checkpoint_dir, error);
    if (resume == NULL)
      return FALSE;
  }
  /* A resumed run takes its recipe and variables from the checkpoint. */
  g_autoptr(FthRecipe) recipe = NULL;
  const char *const *vars = resume ? (const char *const *)resume->vars : o->vars;
  if (resume != NULL) {
    g_autofree char *src = g_build_filename(o->checkpoint_dir, "checkpoint.json", NULL);
    recipe = fth_recipe_parse(resume->recipe_json, -1, src, vars, error);
  } else {
    g_autofree char *path = fth_recipe_find(o->recipe ? o->recipe : "fmnist-cnn");
    if (path == NULL) {
      g_set_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_INVALID,
                  "%s: no such recipe file or model in the zoo (data/recipes)", o->recipe);
      return FALSE;
    }
    recipe = fth_recipe_load(path, vars, error);
  }
  if (recipe == NULL)
    return FALSE;

  int channels = recipe->in_ndim == 3 ? (int)recipe->in_shape[0] : 1;
  /* The other ranks open the dataset once rank 0 has decoded it and stored the splits. */
  if (!lead && !fth_comm_barrier(o->comm, error))
    return FALSE;
  /* Text: a resumed run keeps its checkpoint's tokenizer, and one that starts from another
   * run's weights that run's tokenizer (its embedding rows mean those tokens); a new one trains
   * its own once the splits are known. */
  g_autofree char *init_dir = o->init_weights ? g_path_get_dirname(o->init_weights) : NULL;
  g_autofree char *init_tok = init_dir ? g_build_filename(init_dir, "tokenizer.json", NULL) : NULL;
  const char *tok_dir = resume ? o->checkpoint_dir
                        : init_tok && g_file_test(init_tok, G_FILE_TEST_IS_REGULAR) ? init_dir
                                                                                     : NULL;
  g_autoptr(FthDataset) ds =
    recipe->tokens ? fth_dataset_open_recipe_text(store, recipe, FTH_DATASET_LABELED, tok_dir,
                                                  error)
    : recipe->audio ? fth_dataset_open_recipe_audio(store, recipe, FTH_DATASET_LABELED, error)
                   : fth_dataset_open(store, FTH_DATASET_LABELED, channels, NULL, error);
  if (ds == NULL)
    return FALSE;
  int c, h, w;
  fth_dataset_shape(ds, &c, &h, &w);
  int64_t sample = (int64_t)c * h * w, want = 1;
  for (int i = 0; i < recipe->in_ndim; i++)
    want *= recipe->in_shape[i];
  if (!recipe->tokens &&
      (sample != want || (recipe->in_ndim == 3 && (recipe->in_shape[1] != h || recipe->in_shape[2] != w)))) {
    g_set_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_DATA,
                "%s: the recipe expects %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT " inputs, the "
                "project's images are %dx%d with %d channel(s)", recipe->source,
                recipe->in_ndim == 3 ? recipe->in_shape[2] : want,
                recipe->in_ndim == 3 ? recipe->in_shape[1] : (int64_t)1, w, h, c);
    return FALSE;
  }
  int n_classes = fth_dataset_n_classes(ds);
  if (n_classes < 2) {
    g_set_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_DATA,
                "%s: training needs at least 2 class labels (the project has %d)",
                fth_store_get_dir(store), n_classes);
    return FALSE;
  }
  if (resume != NULL) {
    gboolean same = resume->n_labels == n_classes;
    for (int k = 0; same && k < n_classes; k++)
      same = g_strcmp0(resume->labels[k], fth_dataset_class_name(ds, k)) == 0;
    if (!same) {
      g_set_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_CHECKPOINT,
                  "%s: the checkpoint's labels differ from the project's", o->checkpoint_dir);
      return FALSE;
    }
  }

  size_t n = fth_dataset_size(ds);
  g_autofree FthSplit *split = g_new(FthSplit, n);
  if (!make_splits(store, ds, o, split, error) ||
      (lead && o->comm != NULL && !fth_comm_barrier(o->comm, error)))
    return FALSE;
  g_autofree uint32_t *tr = g_new(uint32_t, n), *va = g_new(uint32_t, n), *te = g_new(uint32_t, n);
  size_t ntr = 0, nva = 0, nte = 0;
  for (size_t i = 0; i < n; i++) {
    if (split[i] == FTH_SPLIT_TRAIN && (o->limit_train == 0 || ntr < o->limit_train))
      tr[ntr++] = (uint32_t)i;
    else if (split[i] == FTH_SPLIT_VAL)
      va[nva++] = (uint32_t)i;
    else if (split[i] == FTH_SPLIT_TEST)
      te[nte++] = (uint32_t)i;
  }
  if (ntr == 0) {
    g_set_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_DATA, "%s: no training items",
                fth_store_get_dir(store));
    return FALSE;
  }
  /* A new text run's tokenizer learns the items it trains on alone: a held-out word known to
   * the vocabulary would leak the test set into training. */
  if (recipe->tokens && tok_dir == NULL && !fth_dataset_train_tokenizer(ds, recipe, tr, ntr, error))
    return FALSE;

  FthTrainerConfig cfg = {
    .seed = resume ? resume->seed : o->seed,
    .batch = resume ? resume->batch : o->batch > 0 ? o->batch : recipe->train.batch,
    /* A resumed run keeps its length (the schedule depends on it) and learning rate unless
     * told otherwise. */
    .epochs = o->epochs > 0 ? o->epochs
              : resume && resume->epochs_total > 0 ? resume->epochs_total : recipe->train.epochs,
    /* A resumed run keeps the micro-batches it had, which fit where it ran out of memory. */
    .accumulate = o->accumulate > 0                          ? o->accumulate
                  : resume != NULL && resume->accumulate > 0 ? resume->accumulate
                                                             : recipe->train.accumulate,
    .n_train = ntr,
    .optim = recipe->train.optim,
    .schedule = recipe->train.schedule,
    .augment = {recipe->train.flip_prob, recipe->train.crop_padding, recipe->train.rotate_deg,
                recipe->train.brightness, recipe->train.contrast, recipe->train.token_dropout,
                recipe->train.token_swap, recipe->train.time_shift, recipe->train.noise,
                recipe->train.freq_mask, recipe->train.time_mask},
  };
  cfg.use_augment = !o->no_augment && (cfg.augment.flip_prob > 0 || cfg.augment.crop_padding > 0 ||
                                       cfg.augment.rotate_deg > 0 || cfg.augment.brightness > 0 ||
                                       cfg.augment.contrast > 0 || cfg.augment.token_dropout > 0 ||
                                       cfg.augment.token_swap > 0 || cfg.augment.time_shift > 0 ||
                                       cfg.augment.noise > 0 || cfg.augment.freq_mask > 0 ||
                                       cfg.augment.time_mask > 0);
  double lr = o->lr > 0 ? o->lr : resume && resume->lr > 0 ? resume->lr : 0;
  if (lr > 0) {
    cfg.optim.lr = (float)lr;
    cfg.schedule.base_lr = (float)lr;
  }
  size_t device_budget = 0;
  if (o->max_memory > 0 && resume == NULL && be != NULL) {
#if FTH_HAVE_CUDA
    if (fth_backend_cuda_context(be) != NULL &&
        fth_backend_cuda_memory_budget(be, o->max_memory, &device_budget) != FTH_STATUS_OK) {
      g_set_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_INVALID, "--max-memory %g on %s: %s",
                  o->max_memory, device, fth_last_error());
      return FALSE;
    }
#endif
  } else if (o->max_memory > 0 && resume == NULL) {
    int b;
    if (!fth_trainer_batch_for_memory(recipe, n_classes, o->max_memory, &b, error))
      return FALSE;
    cfg.batch = (int)MIN((size_t)b, ntr);
  }
  /* Data parallel: the memory each process measured may differ; rank 0's batch is the run's. */
  if (o->comm != NULL && o->max_memory > 0 && resume == NULL &&
      !fth_comm_broadcast(o->comm, &cfg.batch, sizeof cfg.batch, 0, error))
    return FALSE;
  int64_t spe = ((int64_t)ntr + cfg.batch - 1) / cfg.batch;
  cfg.schedule.total_steps = spe * cfg.epochs;

  g_autoptr(FthTrainer) t = fth_trainer_new(recipe, n_classes, &cfg, error);
  if (t == NULL)
    return FALSE;
  int64_t step = 0;
  double best = INFINITY;
  int bad = 0;
  if (o->init_weights != NULL && resume == NULL) {
    int loaded = 0;
    if (!fth_load_weights(fth_trainer_model(t)->graph, o->init_weights, FALSE, &loaded, error))
      return FALSE;
    if (loaded == 0) {
      g_set_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_CHECKPOINT,
                  "%s: no tensor matches a parameter of %s by name", o->init_weights,
                  recipe->name);
      return FALSE;
    }
  }
  if (resume != NULL) {
    g_autofree char *wp = g_build_filename(o->checkpoint_dir, resume->weights_file, NULL);
    if (!fth_load_weights(fth_trainer_model(t)->graph, wp, TRUE, NULL, error))
      return FALSE;
    if (resume->optimizer_file != NULL) {
      g_autofree char *op = g_build_filename(o->checkpoint_dir, resume->optimizer_file, NULL);
      if (!fth_load_optimizer_state(fth_trainer_optimizer(t), op, error))
        return FALSE;
    }
    step = resume->step;
    best = resume->best_metric;
    bad = resume->bad_epochs;
  }

  /* Rank 0's weights to every rank, before a device uploads them. */
  if (o->comm != NULL && !fth_trainer_set_comm(t, o->comm, 0, error))
    return FALSE;
  /* On a device after the weights are in place: they are uploaded from the graph. The batch may
   * shrink to what fits the device. */
  if ((be != NULL && !fth_trainer_use_device(t, be, device_budget, error)) ||
      !fth_trainer_set_precision(t, precision, error))
    return FALSE;
#if FTH_HAVE_CUDA
  /* Data parallel on CUDA devices: the gradients are summed there, by NCCL. */
  g_autoptr(FthComm) nccl = NULL;
  if (o->comm != NULL && fth_backend_cuda_context(be) != NULL) {
    nccl = fth_comm_new_nccl(o->comm, fth_backend_cuda_context(be), error);
    if (nccl == NULL || !fth_trainer_set_comm(t, nccl, 0, error))
      return FALSE;
  }
#endif
  /* The ranks split one global batch: a device that could only fit a smaller one is refused. */
  if (o->comm != NULL) {
    gint32 lead_batch = fth_trainer_config(t)->batch;
    if (!fth_comm_broadcast(o->comm, &lead_batch, sizeof lead_batch, 0, error))
      return FALSE;
    if (lead_batch != fth_trainer_config(t)->batch) {
      g_set_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_INVALID,
                  "rank %d would split batches of %d, rank 0 batches of %d (its device fit "
                  "less): give --batch",
                  fth_comm_rank(o->comm), fth_trainer_config(t)->batch, (int)lead_batch);
      return FALSE;
    }
  }
  if (fth_trainer_config(t)->batch != cfg.batch) {
    cfg.batch = fth_trainer_config(t)->batch;
    cfg.schedule.total_steps = fth_trainer_config(t)->schedule.total_steps;
    spe = ((int64_t)ntr + cfg.batch - 1) / cfg.batch;
  }
  if (!bytes_per_sample(recipe, n_classes, fth_graph_bf16_matmul(fth_trainer_model(t)->graph),
                        &result->bytes_per_sample, error) ||
      !bytes_per_sample(recipe, n_classes, FALSE, &result->bytes_per_sample_fp32, error))
    return FALSE;
  g_autofree char *cfg_json = config_json(recipe, &cfg, o, device, precision, result);
  if (lead && (!fth_store_create_run(store, "train", recipe->name, cfg_json, &result->run_id,
                                     error) ||
               !fth_store_set_run_state(store, result->run_id, FTH_RUN_RUNNING, error)))
    return FALSE;
  result->checkpoint_dir =
    o->checkpoint_dir ? g_strdup(o->checkpoint_dir)
                      : g_strdup_printf("%s/models/train-%" G_GINT64_FORMAT,
                                        fth_store_get_dir(store), result->run_id);
  result->batch = cfg.batch;
  if (lead && !fth_dataset_save_tokenizer(ds, result->checkpoint_dir, error)) {
    fth_store_set_run_state(store, result->run_id, FTH_RUN_FAILED, NULL);
    return FALSE;
  }

  FthSamples samples;
  fth_dataset_samples(ds, &samples);
  FthTrainProgress p = {.epochs = cfg.epochs, .total_steps = spe * cfg.epochs};
  g_autoptr(FthConfusion) cm = fth_confusion_new(n_classes);
  g_autoptr(GArray) events = g_array_new(FALSE, FALSE, sizeof(RunEvent));
  g_array_set_clear_func(events, clear_event);
  RunProgress rp = {o, t, events};
  GError *err = NULL;
  gboolean ok = TRUE;
  int last_good_epoch = resume ? resume->epoch : 0;
  int64_t last_good_step = step;
  double ips_sum = 0;
  int ips_n = 0, epoch = (int)(step / spe);
  for (; epoch < cfg.epochs && ok; epoch++) {
    gboolean interrupted = FALSE;
    int64_t first = epoch == (int)(step / spe) ? step % spe : 0;
    ok = fth_trainer_run_epoch(t, &samples, tr, ntr, epoch, first, o->stop_after_steps, &p,
                               run_progress, &rp, o->cancellable, &interrupted, &err);
    /* Recorded also when the epoch failed: the events say how the memory ran out. */
    if (lead && events->len > 0 &&
        !store_events(store, result->run_id, result->checkpoint_dir, &rp, ok ? &err : NULL))
      ok = FALSE;
    if (!ok)
      break;
    step = (int64_t)epoch * spe + (interrupted ? 0 : spe);
    if (interrupted) {
      step = p.step;
      result->stopped = TRUE;
      ok = !lead || save_checkpoint(result->checkpoint_dir, t, recipe, vars, ds, step, epoch,
                                    best, bad, NULL, &err);
      break;
    }
    ips_sum += p.images_per_s;
    ips_n++;
    p.val_loss = p.val_acc = p.val_macro_f1 = NAN;
    double val_entity_f1 = NAN;
    if (nva > 0) {
      fth_confusion_reset(cm);
      ok = fth_trainer_evaluate(t, &samples, va, nva, cm, &p.val_loss, &err);
      if (!ok)
        break;
      p.val_acc = fth_confusion_accuracy(cm);
      p.val_macro_f1 = fth_confusion_macro_f1(cm);
      FthEntityCounts ents = {0};
      if (recipe->tagging &&
          !(ok = fth_trainer_evaluate_entities(t, &samples, va, nva, &ents, &err)))
        break;
      val_entity_f1 = recipe->tagging ? fth_entity_f1(&ents) : NAN;
    }
    p.epoch_end = TRUE;
    if (o->progress)
      o->progress(&p, o->progress_data);
    g_autoptr(GArray) metrics = g_array_new(FALSE, FALSE, sizeof(FthMetric));
    double ep = epoch + 1;
    add_metric(metrics, step, ep, "train_loss", p.train_loss);
    add_metric(metrics, step, ep, "train_acc", p.train_acc);
    add_metric(metrics, step, ep, "val_loss", p.val_loss);
    add_metric(metrics, step, ep, "val_acc", p.val_acc);
    add_metric(metrics, step, ep, "val_macro_f1", p.val_macro_f1);
    add_metric(metrics, step, ep, "val_entity_f1", val_entity_f1);
    add_metric(metrics, step, ep, "lr", p.lr);
    add_metric(metrics, step, ep, "images_per_s", p.images_per_s);
    if (precision == FTH_PRECISION_FP16) {
      add_metric(metrics, step, ep, "loss_scale", fth_trainer_loss_scale(t));
      add_metric(metrics, step, ep, "skipped_steps", (double)fth_trainer_skipped_steps(t));
    }
    ok = !lead || (fth_store_add_metrics(store, result->run_id,
                                         (const FthMetric *)(void *)metrics->data, metrics->len,
                                         &err) &&
                   (nva == 0 || store_confusion(store, result->run_id, result->checkpoint_dir,
                                                cm, ds, "val", epoch + 1, step, &err)));
    if (!ok)
      break;
    /* Early stopping on the validation loss (the training loss without a validation set). */
    double monitored = nva > 0 ? p.val_loss : p.train_loss;
    if (monitored < best) {
      best = monitored;
      bad = 0;
    } else {
      bad++;
    }
    g_autofree char *mj = metrics_json(&p, nva > 0);
    ok = !lead || save_checkpoint(result->checkpoint_dir, t, recipe, vars, ds, step, epoch + 1,
                                  best, bad, mj, &err);
    if (!ok)
      break;
    last_good_epoch = epoch + 1;
    last_good_step = step;
    result->epochs_run++;
    result->train_loss = p.train_loss;
    result->val_acc = p.val_acc;
    if (o->patience > 0 && bad >= o->patience) {
      result->early_stopped = TRUE;
      epoch++;
      break;
    }
  }
  result->steps = step;
  result->images_per_s = ips_n ? ips_sum / ips_n : 0;
  result->micro_batches = fth_trainer_accumulate(t);

  if (!ok) {
    gboolean cancelled = g_error_matches(err, G_IO_ERROR, G_IO_ERROR_CANCELLED);
    if (err->domain == FTH_TRAIN_ERROR &&
        (err->code == FTH_TRAIN_ERROR_NUMERIC || err->code == FTH_TRAIN_ERROR_NO_MEMORY)) {
      g_autofree char *ckpt = g_build_filename(result->checkpoint_dir, "checkpoint.json", NULL);
      if (g_file_test(ckpt, G_FILE_TEST_EXISTS))
        g_set_error(error, FTH_TRAIN_ERROR, err->code,
                    "%s: %s; the last good checkpoint (epoch %d, step %" G_GINT64_FORMAT
                    ") is kept in %s", recipe->name, err->message, last_good_epoch,
                    (gint64)last_good_step, result->checkpoint_dir);
      else
        g_set_error(error, FTH_TRAIN_ERROR, err->code,
                    "%s: %s; no checkpoint had been written yet", recipe->name, err->message);
      g_error_free(err);
    } else {
      g_propagate_error(error, err);
    }
    if (lead)
      fth_store_set_run_state(store, result->run_id,
                              cancelled ? FTH_RUN_CANCELLED : FTH_RUN_FAILED, NULL);
    return FALSE;
  }
  if (result->stopped) {
    if (lead)
      fth_store_set_run_state(store, result->run_id, FTH_RUN_CANCELLED, NULL);
    return TRUE;
  }

  /* Final evaluation on the test split. */
  result->test_acc = result->test_macro_f1 = NAN;
  g_autofree char *cm_json = NULL;
  if (nte > 0) {
    fth_confusion_reset(cm);
    double test_loss;
    if (!fth_trainer_evaluate(t, &samples, te, nte, cm, &test_loss, error)) {
      if (lead)
        fth_store_set_run_state(store, result->run_id, FTH_RUN_FAILED, NULL);
      return FALSE;
    }
    result->test_acc = fth_confusion_accuracy(cm);
    result->test_macro_f1 = fth_confusion_macro_f1(cm);
    g_autofree char **names = g_new0(char *, n_classes + 1);
    for (int k = 0; k < n_classes; k++)
      names[k] = (char *)fth_dataset_class_name(ds, k);
    cm_json = fth_confusion_to_json(cm, (const char *const *)names);
    FthMetric tm[2] = {{0, step, epoch, "test_acc", result->test_acc},
                       {0, step, epoch, "test_macro_f1", result->test_macro_f1}};
    if (lead && (!fth_store_add_metrics(store, result->run_id, tm, 2, error) ||
                 !store_confusion(store, result->run_id, result->checkpoint_dir, cm, ds, "test",
                                  epoch, step, error)))
      return FALSE;
    FthEntityCounts ents = {0};
    if (recipe->tagging) {
      if (!fth_trainer_evaluate_entities(t, &samples, te, nte, &ents, error)) {
        fth_store_set_run_state(store, result->run_id, FTH_RUN_FAILED, NULL);
        return FALSE;
      }
      FthMetric em = {0, step, epoch, "test_entity_f1", fth_entity_f1(&ents)};
      if (lead && !fth_store_add_metrics(store, result->run_id, &em, 1, error))
        return FALSE;
    }
  }
  g_autofree char *acc = isfinite(result->test_acc) ? g_strdup_printf("%.6f", result->test_acc)
                                                     : g_strdup("null");
  g_autofree char *f1 = isfinite(result->test_macro_f1)
                          ? g_strdup_printf("%.6f", result->test_macro_f1) : g_strdup("null");
  g_autofree char *summary = g_strdup_printf(
    "{\"epochs\": %d, \"steps\": %" G_GINT64_FORMAT ", \"batch\": %d, \"micro_batches\": %d, "
    "\"early_stopped\": %s, \"train_loss\": %.6g, \"test_acc\": %s, \"test_macro_f1\": %s, "
    "\"images_per_s\": %.1f, \"confusion\": %s}",
    epoch, (gint64)step, cfg.batch, result->micro_batches, result->early_stopped ? "true" : "false",
    result->train_loss, acc, f1, result->images_per_s, cm_json ? cm_json : "null");
  FthArtifact art = {.run_id = result->run_id, .kind = "checkpoint",
                     .path = result->checkpoint_dir};
  if (lead && (!fth_store_set_run_summary(store, result->run_id, summary, error) ||
               !fth_store_add_artifact(store, &art, NULL, error) ||
               !fth_store_set_run_state(store, result->run_id, FTH_RUN_DONE, error)))
    return FALSE;
  return TRUE;
}
