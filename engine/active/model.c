/* The trainer-backed model of the loop, Monte-Carlo dropout on the classifier head, and
 * pre-labeling a project with a checkpoint.
 *
 * Predictions run on an inference-only copy of the model (no loss, no backward, a larger batch
 * than training's), its parameters copied from the trainer's before each scoring pass. */
#include "fathom/active.h"
#include "fathom/recipe.h"

#include <json-glib/json-glib.h>

#include <math.h>
#include <string.h>

void
fth_active_trainer_options_init(FthActiveTrainerOptions *opt)
{
  memset(opt, 0, sizeof *opt);
  opt->recipe = "fmnist-cnn";
  opt->epochs = 2;
  opt->min_steps = 100;
  opt->seed = 1;
  opt->mc_dropout = 0.5f;
}

/* An inference-only model planned for INFER_BATCH samples, with its input buffer. */
#define INFER_BATCH 256

typedef struct {
  FthModel *model;
  int dim;        /* embedding width: the last linear layer's input features */
  size_t per;     /* floats per sample */
  float *x;
} Inference;

static void
inference_free(Inference *inf)
{
  if (inf == NULL)
    return;
  fth_model_free(inf->model);
  g_free(inf->x);
  g_free(inf);
}

static gboolean
engine_error(GError **error, const char *what)
{
  g_set_error(error, FTH_ACTIVE_ERROR, FTH_ACTIVE_ERROR_NO_MODEL, "%s: %s", what, fth_last_error());
  return FALSE;
}

static Inference *
inference_new(const FthRecipe *recipe, int n_classes, GError **error)
{
  Inference *inf = g_new0(Inference, 1);
  inf->model = fth_model_build(recipe, n_classes, 1, FTH_MODEL_INFERENCE, error);
  if (inf->model == NULL) {
    inference_free(inf);
    return NULL;
  }
  if (fth_graph_plan(inf->model->graph, FTH_MODE_INFERENCE, INFER_BATCH) != FTH_STATUS_OK) {
    engine_error(error, "planning the inference graph");
    inference_free(inf);
    return NULL;
  }
  FthNode *w = fth_node_input(inf->model->logits, 1);
  FthTensor wt;
  if (fth_node_op(inf->model->logits) == FTH_OP_LINEAR && w != NULL &&
      fth_graph_tensor(inf->model->graph, w, &wt) == FTH_STATUS_OK && wt.ndim == 2)
    inf->dim = (int)wt.shape[1];
  inf->per = 1;
  for (int i = 0; i < recipe->in_ndim; i++)
    inf->per *= (size_t)recipe->in_shape[i];
  inf->x = g_new(float, inf->per * INFER_BATCH);
  return inf;
}

struct FthActiveTrainer {
  FthActiveTrainerOptions opt;
  FthRecipe *recipe;
  FthTrainer *trainer;
  FthSamples samples;   /* the caller's pixels with labels from `labels`, weights from `weights` */
  int32_t *labels;
  float *weights;       /* each sample's loss weight in the last fit (pseudo-labels < 1) */
  uint32_t *test;
  size_t n_test;
  int n_classes;
  int dim;
  int batch;
  int64_t epoch;        /* epochs run over all fits: the shuffle stream */
  Inference *infer;
};

void
fth_active_trainer_free(FthActiveTrainer *at)
{
  if (at == NULL)
    return;
  fth_trainer_free(at->trainer);
  fth_recipe_free(at->recipe);
  g_free(at->labels);
  g_free(at->weights);
  g_free(at->test);
  inference_free(at->infer);
  g_free(at);
}

static FthTrainer *
new_trainer(const FthRecipe *recipe, int n_classes, int batch, double lr, uint64_t seed,
            size_t n_train, gboolean augment, GError **error)
{
  FthTrainerConfig cfg = {
    .seed = seed,
    .batch = batch > 0 ? batch : recipe->train.batch,
    .epochs = 1,
    .n_train = n_train ? n_train : 1,
    .optim = recipe->train.optim,
    .augment = {recipe->train.flip_prob, recipe->train.crop_padding, recipe->train.rotate_deg,
                recipe->train.brightness, recipe->train.contrast},
    .use_augment = augment,
  };
  /* Fine-tuning rounds have no known end: a constant rate, the recipe's (or the caller's). */
  float base = lr > 0 ? (float)lr : recipe->train.optim.lr;
  cfg.optim.lr = base;
  cfg.schedule = fth_lr_schedule_default(FTH_LR_CONSTANT, base, 1);
  return fth_trainer_new(recipe, n_classes, &cfg, error);
}

FthActiveTrainer *
fth_active_trainer_new(const FthSamples *samples, const uint32_t *test, size_t n_test,
                       int n_classes, const FthActiveTrainerOptions *opt, GError **error)
{
  g_autoptr(FthActiveTrainer) at = g_new0(FthActiveTrainer, 1);
  at->opt = *opt;
  g_autofree char *path = fth_recipe_find(opt->recipe);
  if (path == NULL) {
    g_set_error(error, FTH_ACTIVE_ERROR, FTH_ACTIVE_ERROR_INVALID,
                "%s: no such recipe file or model in the zoo", opt->recipe);
    return NULL;
  }
  at->recipe = fth_recipe_load(path, opt->vars, error);
  if (at->recipe == NULL)
    return NULL;
  at->trainer = new_trainer(at->recipe, n_classes, opt->batch, opt->lr, opt->seed, samples->n,
                            opt->augment, error);
  if (at->trainer == NULL)
    return NULL;
  at->batch = fth_trainer_config(at->trainer)->batch;
  at->n_classes = n_classes;
  at->samples = *samples;
  at->labels = g_new(int32_t, samples->n);
  memcpy(at->labels, samples->labels, sizeof(int32_t) * samples->n);
  at->samples.labels = at->labels;
  at->weights = g_new(float, samples->n ? samples->n : 1);
  for (size_t i = 0; i < samples->n; i++)
    at->weights[i] = 1.0f;
  at->samples.weights = at->weights;
  at->test = g_memdup2(test, sizeof(uint32_t) * n_test);
  at->n_test = n_test;
  at->infer = inference_new(at->recipe, n_classes, error);
  if (at->infer == NULL)
    return NULL;
  return g_steal_pointer(&at);
}

int
fth_active_trainer_embedding_dim(FthActiveTrainer *at)
{
  return at->infer->dim;
}

static gboolean
at_fit(gpointer self, const uint32_t *idx, const int32_t *labels, const float *weights, size_t n,
       guint round, GError **error)
{
  FthActiveTrainer *at = self;
  if (n == 0)
    return TRUE;
  for (size_t i = 0; i < n; i++) {
    at->labels[idx[i]] = labels[i];
    at->weights[idx[i]] = weights ? weights[i] : 1.0f;
  }
  /* Enough epochs for min_steps optimizer steps: a round on 100 labels is otherwise 2 steps. */
  double per_epoch = ceil((double)n / at->batch);
  int epochs = MAX(at->opt.epochs, (int)ceil(at->opt.min_steps / MAX(per_epoch, 1.0)));
  for (int e = 0; e < epochs; e++, at->epoch++) {
    gboolean interrupted;
    if (!fth_trainer_run_epoch(at->trainer, &at->samples, idx, n, (int)at->epoch, 0, 0,
                               NULL, NULL, NULL, NULL, &interrupted, error))
      return FALSE;
  }
  return TRUE;
}

static void
softmax_rows(const float *z, size_t n, int c, float *p)
{
  for (size_t i = 0; i < n; i++) {
    const float *zi = z + i * (size_t)c;
    float *pi = p + i * (size_t)c;
    float m = zi[0];
    for (int k = 1; k < c; k++)
      m = fmaxf(m, zi[k]);
    double s = 0;
    for (int k = 0; k < c; k++)
      s += exp((double)(zi[k] - m));
    for (int k = 0; k < c; k++)
      pi[k] = (float)(exp((double)(zi[k] - m)) / s);
  }
}

void
fth_active_head_mc(const float *emb, size_t n, int dim, const float *weight, const float *bias,
                   int n_classes, float p, int n_passes, uint64_t seed, float *mc_probs)
{
  g_autofree float *h = g_new(float, (size_t)dim);
  g_autofree float *z = g_new(float, (size_t)n_classes);
  const float keep_scale = 1.0f / (1.0f - p);
  for (int t = 0; t < n_passes; t++) {
    for (size_t i = 0; i < n; i++) {
      /* Mask bits from (seed, pass, item): the same passes whatever the batching. */
      for (int j = 0; j < dim; j += 4) {
        uint32_t r[4];
        fth_philox4x32(seed, (uint64_t)t, (uint64_t)i * (uint64_t)((dim + 3) / 4) + (uint64_t)(j / 4),
                       r);
        for (int q = 0; q < 4 && j + q < dim; q++)
          h[j + q] = fth_u32_to_unit_float(r[q]) < p ? 0.0f
                                                      : emb[i * (size_t)dim + (size_t)(j + q)] *
                                                          keep_scale;
      }
      for (int k = 0; k < n_classes; k++) {
        double s = bias ? bias[k] : 0.0;
        for (int j = 0; j < dim; j++)
          s += (double)weight[(size_t)k * (size_t)dim + (size_t)j] * h[j];
        z[k] = (float)s;
      }
      softmax_rows(z, 1, n_classes, mc_probs + ((size_t)t * n + i) * (size_t)n_classes);
    }
  }
}

/* The last linear layer's weight [C, D] and bias [C] (NULL when it has none). */
static gboolean
head_params(FthModel *m, const float **w, const float **b, GError **error)
{
  FthTensor wt, bt;
  FthNode *wn = fth_node_input(m->logits, 1), *bn = fth_node_input(m->logits, 2);
  if (fth_node_op(m->logits) != FTH_OP_LINEAR || wn == NULL ||
      fth_graph_tensor(m->graph, wn, &wt) != FTH_STATUS_OK) {
    g_set_error(error, FTH_ACTIVE_ERROR, FTH_ACTIVE_ERROR_INVALID,
                "Monte-Carlo dropout on the head needs a model ending in a linear layer");
    return FALSE;
  }
  *w = wt.data;
  *b = bn != NULL && fth_graph_tensor(m->graph, bn, &bt) == FTH_STATUS_OK ? bt.data : NULL;
  return TRUE;
}

/* Probabilities and embeddings of samples idx[0..n) (emb may be NULL). */
static gboolean
inference_run(Inference *inf, const FthSamples *s, const uint32_t *idx, size_t n, float *probs,
              float *emb, GError **error)
{
  FthModel *m = inf->model;
  int c = m->n_classes;
  for (size_t start = 0; start < n; start += INFER_BATCH) {
    size_t count = MIN((size_t)INFER_BATCH, n - start);
    if (fth_graph_batch(m->graph) != (int64_t)count &&
        fth_graph_set_batch(m->graph, (int64_t)count) != FTH_STATUS_OK)
      return engine_error(error, "setting the batch size");
    fth_samples_fill_batch(s, idx + start, count, NULL, 0, 0, NULL, NULL, inf->x, NULL);
    if (fth_graph_set_input(m->graph, m->input, inf->x, count * inf->per * sizeof(float)) !=
        FTH_STATUS_OK)
      return engine_error(error, "copying the batch in");
    if (fth_graph_run(m->graph) != FTH_STATUS_OK)
      return engine_error(error, "running the model");
    FthTensor lt, et;
    if (fth_graph_tensor(m->graph, m->logits, &lt) != FTH_STATUS_OK ||
        fth_graph_tensor(m->graph, m->embedding, &et) != FTH_STATUS_OK)
      return engine_error(error, "reading the outputs");
    softmax_rows(lt.data, count, c, probs + start * (size_t)c);
    if (emb != NULL)
      memcpy(emb + start * (size_t)inf->dim, et.data, sizeof(float) * count * (size_t)inf->dim);
  }
  return TRUE;
}

static gboolean
at_predict(gpointer self, const uint32_t *idx, size_t n, float *probs, float *emb, int n_passes,
           float *mc_probs, GError **error)
{
  FthActiveTrainer *at = self;
  int dim = at->infer->dim;
  g_autofree float *own_emb = NULL;
  if (emb == NULL && n_passes > 0)
    emb = own_emb = g_new(float, n * (size_t)dim);
  if (!fth_model_copy_params(at->infer->model, fth_trainer_model(at->trainer), error) ||
      !inference_run(at->infer, &at->samples, idx, n, probs, emb, error))
    return FALSE;
  if (n_passes > 0) {
    const float *w, *b;
    if (!head_params(at->infer->model, &w, &b, error))
      return FALSE;
    fth_active_head_mc(emb, n, dim, w, b, at->n_classes, at->opt.mc_dropout, n_passes,
                       at->opt.seed + (uint64_t)at->epoch, mc_probs);
  }
  return TRUE;
}

static gboolean
at_evaluate(gpointer self, double *accuracy, GError **error)
{
  FthActiveTrainer *at = self;
  g_autoptr(FthConfusion) cm = fth_confusion_new(at->n_classes);
  if (!fth_trainer_evaluate(at->trainer, &at->samples, at->test, at->n_test, cm, NULL, error))
    return FALSE;
  *accuracy = fth_confusion_accuracy(cm);
  return TRUE;
}

FthAlModel
fth_active_trainer_model(FthActiveTrainer *at)
{
  FthAlModel m = {at->n_classes, at->infer->dim, at_fit, at_predict, at_evaluate};
  return m;
}

/* ---- Pre-labeling ----------------------------------------------------------------------------- */

typedef struct {
  FthCheckpointMeta *meta;
  FthRecipe *recipe;
  FthTrainer *trainer;  /* for fine-tuning */
  Inference *infer;     /* for predictions, with the checkpoint's weights */
} Loaded;

static void
loaded_clear(Loaded *l)
{
  inference_free(l->infer);
  fth_trainer_free(l->trainer);
  fth_recipe_free(l->recipe);
  fth_checkpoint_meta_free(l->meta);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Loaded, loaded_clear)

static gboolean
load_checkpoint(const char *dir, Loaded *l, GError **error)
{
  memset(l, 0, sizeof *l);
  GError *local = NULL;
  l->meta = fth_checkpoint_load_meta(dir, &local);
  if (l->meta == NULL) {
    g_set_error(error, FTH_ACTIVE_ERROR, FTH_ACTIVE_ERROR_NO_MODEL, "%s: no usable checkpoint: %s",
                dir, local->message);
    g_error_free(local);
    return FALSE;
  }
  g_autofree char *src = g_build_filename(dir, "checkpoint.json", NULL);
  l->recipe = fth_recipe_parse(l->meta->recipe_json, -1, src,
                               (const char *const *)l->meta->vars, error);
  if (l->recipe == NULL)
    return FALSE;
  l->trainer = new_trainer(l->recipe, l->meta->n_labels, l->meta->batch, 0, l->meta->seed, 1,
                           FALSE, error);
  if (l->trainer == NULL)
    return FALSE;
  g_autofree char *wp = g_build_filename(dir, l->meta->weights_file, NULL);
  if (!fth_load_weights(fth_trainer_model(l->trainer)->graph, wp, TRUE, NULL, error))
    return FALSE;
  l->infer = inference_new(l->recipe, l->meta->n_labels, error);
  return l->infer != NULL &&
         fth_model_copy_params(l->infer->model, fth_trainer_model(l->trainer), error);
}

/* The store label of checkpoint class k: its recorded id, else the label of that name. */
static gint64
class_label_id(FthStore *store, const FthCheckpointMeta *meta, int k)
{
  if (meta->label_ids != NULL && meta->label_ids[k] > 0)
    return meta->label_ids[k];
  g_autoptr(FthLabel) l = fth_store_find_label(store, meta->labels[k], NULL);
  return l ? l->id : 0;
}

gboolean
fth_prelabel(FthStore *store, const char *checkpoint_dir, FthJob *job, GCancellable *cancellable,
             FthPrelabelResult *result, GError **error)
{
  memset(result, 0, sizeof *result);
  g_auto(Loaded) l;
  if (!load_checkpoint(checkpoint_dir, &l, error))
    return FALSE;
  int channels = l.recipe->in_ndim == 3 ? (int)l.recipe->in_shape[0] : 1;
  g_autoptr(FthDataset) ds = fth_dataset_open(store, FTH_DATASET_ALL, channels, NULL, error);
  if (ds == NULL)
    return FALSE;
  int c = l.meta->n_labels;
  int dim = l.infer->dim;
  g_autofree gint64 *class_ids = g_new(gint64, (size_t)c);
  for (int k = 0; k < c; k++)
    class_ids[k] = class_label_id(store, l.meta, k);
  /* The run records its checkpoint, so BALD can later run the same head over the embeddings. */
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "checkpoint");
  json_builder_add_string_value(b, checkpoint_dir);
  json_builder_set_member_name(b, "kind");
  json_builder_add_string_value(b, "prelabel");
  json_builder_end_object(b);
  g_autoptr(JsonNode) cfg_node = json_builder_get_root(b);
  g_autofree char *config = json_to_string(cfg_node, FALSE);
  if (!fth_store_create_run(store, "predict", l.recipe->name, config, &result->run_id, error) ||
      !fth_store_set_run_state(store, result->run_id, FTH_RUN_RUNNING, error))
    return FALSE;
  FthSamples s;
  fth_dataset_samples(ds, &s);
  size_t n = fth_dataset_size(ds);
  const size_t chunk = 1024;
  g_autofree float *probs = g_new(float, chunk * (size_t)c);
  g_autofree float *emb = g_new(float, chunk * (size_t)dim);
  g_autofree uint32_t *idx = g_new(uint32_t, chunk);
  g_autofree FthPrediction *preds = g_new0(FthPrediction, chunk);
  g_autofree FthEmbedding *embs = g_new0(FthEmbedding, chunk);
  gboolean ok = TRUE;
  for (size_t start = 0; start < n && ok; start += chunk) {
    if (g_cancellable_set_error_if_cancelled(cancellable, error)) {
      ok = FALSE;
      break;
    }
    size_t m = MIN(chunk, n - start);
    for (size_t i = 0; i < m; i++)
      idx[i] = (uint32_t)(start + i);
    ok = inference_run(l.infer, &s, idx, m, probs, emb, error);
    if (!ok)
      break;
    for (size_t i = 0; i < m; i++) {
      const float *p = probs + i * (size_t)c;
      int top = 0;
      for (int k = 1; k < c; k++)
        if (p[k] > p[top])
          top = k;
      gint64 item = fth_dataset_item_id(ds, start + i);
      preds[i] = (FthPrediction){result->run_id, item, (guint)c, (float *)p, class_ids[top], p[top]};
      embs[i] = (FthEmbedding){result->run_id, item, (guint)dim, emb + i * (size_t)dim};
    }
    ok = fth_store_put_predictions(store, preds, m, error) &&
         fth_store_put_embeddings(store, embs, m, error) && fth_store_begin(store, error);
    if (!ok)
      break;
    for (size_t i = 0; i < m && ok; i++) {
      /* The dataset's label is the item's human class: such items get no model annotation. */
      if (fth_dataset_label(ds, start + i) >= 0 || preds[i].top_label_id == 0)
        continue;
      /* Re-checked in the transaction: a human label given since the dataset was read wins. */
      g_autoptr(GPtrArray) anns = fth_store_list_annotations(store, preds[i].item_id, error);
      ok = anns != NULL;
      gboolean human = FALSE;
      for (guint j = 0; ok && j < anns->len; j++)
        human |= ((FthAnnotation *)anns->pdata[j])->author == FTH_AUTHOR_HUMAN;
      if (ok && !human) {
        ok = fth_store_set_class(store, preds[i].item_id, preds[i].top_label_id, FTH_AUTHOR_MODEL,
                                 result->run_id, preds[i].top_score, NULL, error);
        result->n_annotated += ok;
      }
    }
    if (ok)
      ok = fth_store_commit(store, error);
    else
      fth_store_rollback(store, NULL);
    result->n_predicted += ok ? m : 0;
    if (job != NULL)
      fth_job_progress(job, (gint64)(start + m), (gint64)n, NULL);
  }
  gboolean cancelled = cancellable != NULL && g_cancellable_is_cancelled(cancellable);
  fth_store_set_run_state(store, result->run_id,
                          ok ? FTH_RUN_DONE : cancelled ? FTH_RUN_CANCELLED : FTH_RUN_FAILED, NULL);
  return ok;
}

typedef struct {
  FthStore *store;
  char *checkpoint_dir;
  FthPrelabelResult result;
} PrelabelJob;

static void
prelabel_job_free(gpointer data)
{
  PrelabelJob *pj = data;
  g_object_unref(pj->store);
  g_free(pj->checkpoint_dir);
  g_free(pj);
}

static gboolean
prelabel_job_run(FthJob *job, GCancellable *cancellable, gpointer data, GError **error)
{
  PrelabelJob *pj = data;
  if (!fth_prelabel(pj->store, pj->checkpoint_dir, job, cancellable, &pj->result, error))
    return FALSE;
  g_autofree char *msg = g_strdup_printf("run %" G_GINT64_FORMAT ": %zu items predicted, %zu "
                                         "pre-labeled", pj->result.run_id, pj->result.n_predicted,
                                         pj->result.n_annotated);
  fth_job_progress(job, (gint64)pj->result.n_predicted, (gint64)pj->result.n_predicted, msg);
  return TRUE;
}

FthJob *
fth_prelabel_job_new(FthStore *store, const char *checkpoint_dir)
{
  PrelabelJob *pj = g_new0(PrelabelJob, 1);
  pj->store = g_object_ref(store);
  pj->checkpoint_dir = g_strdup(checkpoint_dir);
  return fth_job_new("autolabel", prelabel_job_run, pj, prelabel_job_free);
}

gboolean
fth_active_checkpoint_mc(const char *checkpoint_dir, const float *emb, size_t n, int dim,
                         int n_classes, int n_passes, float p, uint64_t seed, float *mc_probs,
                         GError **error)
{
  g_auto(Loaded) l;
  if (!load_checkpoint(checkpoint_dir, &l, error))
    return FALSE;
  if (l.infer->dim != dim) {
    g_set_error(error, FTH_ACTIVE_ERROR, FTH_ACTIVE_ERROR_DATA,
                "%s: the model's embeddings have %d dimensions, the stored ones %d",
                checkpoint_dir, l.infer->dim, dim);
    return FALSE;
  }
  const float *w, *b;
  if (!head_params(l.infer->model, &w, &b, error))
    return FALSE;
  if (l.meta->n_labels != n_classes) {
    g_set_error(error, FTH_ACTIVE_ERROR, FTH_ACTIVE_ERROR_DATA,
                "%s: the model has %d classes, the stored predictions %d", checkpoint_dir,
                l.meta->n_labels, n_classes);
    return FALSE;
  }
  fth_active_head_mc(emb, n, dim, w, b, l.meta->n_labels, p, n_passes, seed, mc_probs);
  return TRUE;
}

/* ---- The labeling loop's round ---------------------------------------------------------------- */

void
fth_active_round_options_init(FthActiveRoundOptions *opt)
{
  memset(opt, 0, sizeof *opt);
  opt->epochs = 3;
  opt->min_steps = 100;
  opt->seed = 1;
  opt->mc_passes = 10;
  opt->mc_dropout = 0.5f;
  opt->pseudo_weight = 0.5f;
}

static gboolean
count_human_labeled(FthStore *store, gint64 *count, GError **error)
{
  FthItemFilter f = FTH_ITEM_FILTER_INIT;
  f.author = FTH_AUTHOR_HUMAN;
  return fth_store_count_items(store, &f, count, error);
}

gboolean
fth_active_round_due(FthStore *store, const FthActiveSettings *settings, gboolean *due,
                     gint64 *n_new, GError **error)
{
  gint64 now;
  if (!count_human_labeled(store, &now, error))
    return FALSE;
  GError *local = NULL;
  g_autofree char *at = fth_store_get_meta(store, "active.labels_at_round", &local);
  if (local != NULL) {
    g_propagate_error(error, local);
    return FALSE;
  }
  gint64 before = at ? g_ascii_strtoll(at, NULL, 10) : 0;
  if (n_new != NULL)
    *n_new = now - before;
  *due = now - before >= (gint64)settings->retrain_every;
  return TRUE;
}

/* Fine-tunes the checkpoint's model on the project's labeled train items (and the pseudo-labels of
 * opt->pseudo_run at opt->pseudo_weight), saves it to out_dir and measures it on the test items. */
static gboolean
fine_tune(FthStore *store, Loaded *l, const FthActiveRoundOptions *opt, FthActiveRoundResult *res,
          GCancellable *cancellable, GError **error)
{
  int channels = l->recipe->in_ndim == 3 ? (int)l->recipe->in_shape[0] : 1;
  g_autoptr(FthDataset) ds =
    fth_dataset_open(store, opt->pseudo_run > 0 ? FTH_DATASET_ALL : FTH_DATASET_LABELED, channels,
                     NULL, error);
  if (ds == NULL)
    return FALSE;
  int c = fth_dataset_n_classes(ds);
  gboolean same = c == l->meta->n_labels;
  for (int k = 0; same && k < c; k++)
    same = g_strcmp0(fth_dataset_class_name(ds, k), l->meta->labels[k]) == 0;
  if (!same) {
    g_set_error(error, FTH_ACTIVE_ERROR, FTH_ACTIVE_ERROR_DATA,
                "%s: the checkpoint's classes differ from the project's labels; train a new model",
                opt->checkpoint_dir);
    return FALSE;
  }
  size_t n = fth_dataset_size(ds);
  FthSamples s;
  fth_dataset_samples(ds, &s);
  g_autofree int32_t *labels = g_memdup2(s.labels, sizeof(int32_t) * (n ? n : 1));
  s.labels = labels;
  /* Human labels weigh 1 in the loss, pseudo-labels opt->pseudo_weight. */
  g_autofree float *weights = g_new(float, n ? n : 1);
  s.weights = weights;
  /* Pseudo-labels: item -> class of the annotation's label. */
  g_autoptr(GHashTable) pseudo = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
  if (opt->pseudo_run > 0) {
    g_autoptr(GPtrArray) anns = fth_pseudo_list(store, opt->pseudo_run, error);
    if (anns == NULL)
      return FALSE;
    for (guint i = 0; i < anns->len; i++) {
      const FthAnnotation *a = anns->pdata[i];
      for (int k = 0; k < c; k++)
        if (fth_dataset_class_label_id(ds, k) == a->label_id)
          g_hash_table_insert(pseudo, g_memdup2(&a->item_id, sizeof(gint64)),
                              GINT_TO_POINTER(k + 1));
    }
  }
  g_autofree uint32_t *tr = g_new(uint32_t, n ? n : 1), *te = g_new(uint32_t, n ? n : 1);
  g_autofree uint32_t *ps = g_new(uint32_t, n ? n : 1);
  size_t ntr = 0, nte = 0, nps = 0;
  for (size_t i = 0; i < n; i++) {
    FthSplit sp = fth_dataset_split(ds, i);
    weights[i] = 1.0f;
    if (sp == FTH_SPLIT_VAL)
      continue;
    if (labels[i] < 0) {
      gint64 id = fth_dataset_item_id(ds, i);
      int k = GPOINTER_TO_INT(g_hash_table_lookup(pseudo, &id));
      if (k > 0 && sp != FTH_SPLIT_TEST) {
        labels[i] = k - 1;
        weights[i] = opt->pseudo_weight;
        ps[nps++] = (uint32_t)i;
      }
    } else if (sp == FTH_SPLIT_TEST) {
      te[nte++] = (uint32_t)i;
    } else {
      tr[ntr++] = (uint32_t)i;
    }
  }
  if (ntr == 0) {
    g_set_error(error, FTH_ACTIVE_ERROR, FTH_ACTIVE_ERROR_DATA, "%s: no labeled training items",
                fth_store_get_dir(store));
    return FALSE;
  }
  /* The human labels, then the pseudo-labels (at their weight). */
  memcpy(tr + ntr, ps, sizeof(uint32_t) * nps);
  size_t m = ntr + nps;
  int batch = fth_trainer_config(l->trainer)->batch;
  int epochs = MAX(opt->epochs, (int)((opt->min_steps * (int64_t)batch + (int64_t)m - 1) /
                                      (int64_t)m));
  int64_t steps = 0;
  for (int e = 0; e < epochs; e++) {
    gboolean interrupted;
    if (!fth_trainer_run_epoch(l->trainer, &s, tr, m, l->meta->epoch + e, 0, 0, NULL, NULL,
                               NULL, cancellable, &interrupted, error))
      return FALSE;
    steps += (int64_t)((m + (size_t)batch - 1) / (size_t)batch);
  }
  res->n_train = ntr;
  res->n_pseudo = nps;
  res->test_acc = NAN;
  if (nte > 0) {
    g_autoptr(FthConfusion) cm = fth_confusion_new(c);
    if (!fth_trainer_evaluate(l->trainer, &s, te, nte, cm, NULL, error))
      return FALSE;
    res->test_acc = fth_confusion_accuracy(cm);
  }
  FthCheckpointMeta meta = *l->meta;
  meta.epoch = l->meta->epoch + epochs;
  meta.step = l->meta->step + steps;
  meta.metrics_json = NULL;
  return fth_checkpoint_save(opt->out_dir, &meta, fth_trainer_model(l->trainer)->graph,
                             fth_trainer_optimizer(l->trainer), error);
}

gboolean
fth_active_round(FthStore *store, const FthActiveRoundOptions *opt, FthJob *job,
                 GCancellable *cancellable, FthActiveRoundResult *res, GError **error)
{
  memset(res, 0, sizeof *res);
  if (opt->checkpoint_dir == NULL || opt->out_dir == NULL) {
    g_set_error(error, FTH_ACTIVE_ERROR, FTH_ACTIVE_ERROR_INVALID,
                "a round needs the checkpoint to start from and a directory for the new one");
    return FALSE;
  }
  FthActiveSettings settings;
  if (!fth_active_settings_load(store, &settings, error))
    return FALSE;
  gint64 n_human;
  if (!count_human_labeled(store, &n_human, error))
    return FALSE;
  {
    g_auto(Loaded) l;
    if (!load_checkpoint(opt->checkpoint_dir, &l, error))
      return FALSE;
    if (job != NULL)
      fth_job_progress(job, 0, 3, "fine-tuning");
    if (!fine_tune(store, &l, opt, res, cancellable, error))
      return FALSE;
  }
  g_autofree char *config = g_strdup_printf("{\"labels\": %" G_GINT64_FORMAT ", \"strategy\": "
                                            "\"%s\"}", n_human,
                                            fth_acquisition_name(settings.strategy));
  if (!fth_store_create_run(store, "active-round", "active learning round", config,
                            &res->round_run_id, error))
    return FALSE;
  /* The new checkpoint is the project's latest (fth_active_latest_checkpoint). */
  FthArtifact art = {.run_id = res->round_run_id, .kind = "checkpoint", .path = (char *)opt->out_dir};
  if (!fth_store_add_artifact(store, &art, NULL, error))
    return FALSE;
  if (!isnan(res->test_acc) &&
      !fth_store_add_metric(store, res->round_run_id, n_human, 0, "test_acc", res->test_acc,
                            error))
    return FALSE;
  if (job != NULL)
    fth_job_progress(job, 1, 3, "scoring the pool");
  FthPrelabelResult pr;
  if (!fth_prelabel(store, opt->out_dir, NULL, cancellable, &pr, error))
    return FALSE;
  res->predict_run_id = pr.run_id;
  if (job != NULL)
    fth_job_progress(job, 2, 3, "refilling the queue");
  FthAcqOptions ao;
  fth_acq_options_init(&ao);
  ao.strategy = settings.strategy;
  ao.batch = settings.batch;
  ao.seed = opt->seed + (uint64_t)n_human;
  if (settings.strategy == FTH_ACQ_BALD) {
    g_autoptr(FthActivePool) pool = fth_active_pool_load(store, pr.run_id, TRUE, TRUE, error);
    if (pool == NULL)
      return FALSE;
    g_autofree float *mc = g_new(float, (size_t)opt->mc_passes * pool->n * (size_t)pool->n_classes + 1);
    if (!fth_active_checkpoint_mc(opt->out_dir, pool->emb, pool->n, pool->dim, pool->n_classes,
                                  opt->mc_passes, opt->mc_dropout, ao.seed, mc, error) ||
        !fth_queue_refill_pool(store, pool, mc, opt->mc_passes, &ao, &res->n_queued, error))
      return FALSE;
  } else if (!fth_queue_refill(store, pr.run_id, &ao, &res->n_queued, error)) {
    return FALSE;
  }
  g_autofree char *at = g_strdup_printf("%" G_GINT64_FORMAT, n_human);
  if (!fth_store_set_meta(store, "active.labels_at_round", at, error) ||
      !fth_store_set_run_state(store, res->round_run_id, FTH_RUN_DONE, error))
    return FALSE;
  res->n_labels = (size_t)n_human;
  if (job != NULL)
    fth_job_progress(job, 3, 3, NULL);
  return TRUE;
}

char *
fth_active_latest_checkpoint(FthStore *store, GError **error)
{
  g_autoptr(GPtrArray) arts = fth_store_list_artifacts(store, 0, error);
  if (arts == NULL)
    return NULL;
  for (guint i = arts->len; i-- > 0;) {
    const FthArtifact *a = arts->pdata[i];
    if (g_strcmp0(a->kind, "checkpoint") != 0)
      continue;
    return g_path_is_absolute(a->path) ? g_strdup(a->path)
                                       : g_build_filename(fth_store_get_dir(store), a->path, NULL);
  }
  g_set_error(error, FTH_ACTIVE_ERROR, FTH_ACTIVE_ERROR_NO_MODEL,
              "%s: no trained model yet (train one first: fathom train)", fth_store_get_dir(store));
  return NULL;
}

typedef struct {
  FthStore *store;
  char *checkpoint_dir, *out_dir;
  FthActiveRoundOptions opt;
} RoundJob;

static void
round_job_free(gpointer data)
{
  RoundJob *rj = data;
  g_object_unref(rj->store);
  g_free(rj->checkpoint_dir);
  g_free(rj->out_dir);
  g_free(rj);
}

static gboolean
round_job_run(FthJob *job, GCancellable *cancellable, gpointer data, GError **error)
{
  RoundJob *rj = data;
  FthActiveRoundResult res;
  if (!fth_active_round(rj->store, &rj->opt, job, cancellable, &res, error))
    return FALSE;
  /* test_acc last: left out when the project has no test items. */
  FthJobMetric metrics[3] = {
    {(char *)"labels", (double)res.n_labels},
    {(char *)"queued", (double)res.n_queued},
    {(char *)"test_acc", res.test_acc},
  };
  fth_job_progress_metrics(job, 3, 3, "round done", metrics, isnan(res.test_acc) ? 2 : 3);
  return TRUE;
}

FthJob *
fth_active_round_job_new(FthStore *store, const FthActiveRoundOptions *opt)
{
  RoundJob *rj = g_new0(RoundJob, 1);
  rj->store = g_object_ref(store);
  rj->opt = *opt;
  rj->checkpoint_dir = g_strdup(opt->checkpoint_dir);
  rj->out_dir = g_strdup(opt->out_dir);
  rj->opt.checkpoint_dir = rj->checkpoint_dir;
  rj->opt.out_dir = rj->out_dir;
  return fth_job_new("active-round", round_job_run, rj, round_job_free);
}
