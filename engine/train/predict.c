/* fth_predict: a checkpoint over the project's items, probabilities and embeddings into the
 * store. */
#include "text-private.h"

#include "../graph/graph-device.h" /* private to the engine: --device */
#include "train-private.h"

#include <gio/gio.h>
#include <math.h>
#include <string.h>

static gboolean
engine_error(GError **error, const char *what)
{
  g_set_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_ENGINE, "%s: %s", what, fth_last_error());
  return FALSE;
}

char *
fth_latest_checkpoint(FthStore *store, GError **error)
{
  g_autoptr(GPtrArray) runs = fth_store_list_runs(store, "train", error);
  if (runs == NULL)
    return NULL;
  for (guint i = 0; i < runs->len; i++) {
    FthRun *run = g_ptr_array_index(runs, i);
    if (run->state != FTH_RUN_DONE)
      continue;
    g_autoptr(GPtrArray) arts = fth_store_list_artifacts(store, run->id, error);
    if (arts == NULL)
      return NULL;
    for (guint k = 0; k < arts->len; k++) {
      FthArtifact *a = g_ptr_array_index(arts, k);
      if (g_strcmp0(a->kind, "checkpoint") == 0)
        return g_strdup(a->path);
    }
  }
  g_set_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_INVALID,
              "%s: no finished training run with a checkpoint (run `fathom train` first)",
              fth_store_get_dir(store));
  return NULL;
}

static gboolean
is_identity_norm(const FthCheckpointMeta *m)
{
  for (int i = 0; i < m->n_norm; i++)
    if (m->mean[i] != 0.0f || m->std[i] != 1.0f)
      return FALSE;
  return TRUE;
}

typedef FthGraphDevice FthGraphDeviceHandle;
G_DEFINE_AUTOPTR_CLEANUP_FUNC(FthGraphDeviceHandle, fth_graph_device_free)

/* A device node's value copied into *host (grown to the tensor's size), and t pointed at it. */
static gboolean
read_back(FthGraphDevice *dev, const FthNode *node, FthTensor *t, float **host)
{
  size_t bytes = fth_tensor_nbytes(t);
  *host = g_realloc(*host, bytes);
  t->data = *host;
  return fth_graph_device_read(dev, node, FALSE, *host, bytes) == FTH_STATUS_OK;
}

gboolean
fth_predict(FthStore *store, const FthPredictOptions *o, gint64 *run_id, gsize *n_items,
            GError **error)
{
  g_autoptr(FthCheckpointMeta) meta = fth_checkpoint_load_meta(o->checkpoint_dir, error);
  if (meta == NULL)
    return FALSE;
  g_autofree char *src = g_build_filename(o->checkpoint_dir, "checkpoint.json", NULL);
  g_autoptr(FthRecipe) recipe =
    fth_recipe_parse(meta->recipe_json, -1, src, (const char *const *)meta->vars, error);
  if (recipe == NULL)
    return FALSE;
  /* A tagger stores entities (predict-spans.c). */
  if (recipe->tagging)
    return fth_predict_spans(store, o, meta, recipe, run_id, n_items, error);
  int batch = o->batch > 0 ? o->batch : 256;
  const FthBackend *be = NULL;
  g_autofree char *device = NULL;
  if (!fth_train_select_device(o->device, &be, &device, error))
    return FALSE;
  g_autoptr(FthModel) m = fth_model_build(recipe, meta->n_labels, 1, FTH_MODEL_INFERENCE, error);
  if (m == NULL)
    return FALSE;
  g_autofree char *wp = g_build_filename(o->checkpoint_dir, meta->weights_file, NULL);
  if (!fth_load_weights(m->graph, wp, TRUE, NULL, error))
    return FALSE;
  if (fth_graph_plan(m->graph, FTH_MODE_INFERENCE, batch) != FTH_STATUS_OK)
    return engine_error(error, "planning the inference graph");
  /* On a device the batch halves until the model fits. */
  g_autoptr(FthGraphDeviceHandle) dev = NULL;
  if (be != NULL) {
    int64_t fitted;
    if (fth_graph_device_fit(m->graph, be, FTH_MODE_INFERENCE, batch, 0, &dev, &fitted) !=
        FTH_STATUS_OK)
      return engine_error(error, "placing the model on the device");
    batch = (int)fitted;
  }

  int channels = recipe->in_ndim == 3 ? (int)recipe->in_shape[0] : 1;
  /* Text: the items tokenized by the checkpoint's own tokenizer. */
  g_autoptr(FthDataset) ds =
    recipe->tokens ? fth_dataset_open_recipe_text(store, recipe, FTH_DATASET_ALL,
                                                  o->checkpoint_dir, error)
    : recipe->audio ? fth_dataset_open_recipe_audio(store, recipe, FTH_DATASET_ALL, error)
                   : fth_dataset_open(store, FTH_DATASET_ALL, channels, NULL, error);
  if (ds == NULL)
    return FALSE;
  FthSamples s;
  fth_dataset_samples(ds, &s);
  size_t sample = (size_t)s.channels * (size_t)s.height * (size_t)s.width, want = 1;
  for (int i = 0; i < recipe->in_ndim; i++)
    want *= (size_t)recipe->in_shape[i];
  if (recipe->tokens)
    sample = want;
  if (sample != want) {
    g_set_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_DATA,
                "%s: the model takes %zu values per image, the project's images have %zu", src,
                want, sample);
    return FALSE;
  }
  /* Classes by name: the checkpoint may come from another project. */
  int nc = meta->n_labels;
  g_autofree gint64 *label_id = g_new0(gint64, nc);
  for (int k = 0; k < nc; k++) {
    g_autoptr(FthLabel) l = fth_store_find_label(store, meta->labels[k], NULL);
    label_id[k] = l ? l->id : 0;
  }
  g_autofree char *config = g_strdup_printf("{\"checkpoint\": \"%s\", \"recipe\": \"%s\", "
                                            "\"device\": \"%s\"}",
                                            o->checkpoint_dir, recipe->name, device);
  if (!fth_store_create_run(store, "predict", recipe->name, config, run_id, error) ||
      !fth_store_set_run_state(store, *run_id, FTH_RUN_RUNNING, error))
    return FALSE;

  gboolean plain = is_identity_norm(meta);
  g_autofree float *logits_host = NULL, *emb_host = NULL;
  g_autofree float *x = g_new(float, sample * (size_t)batch);
  g_autofree uint32_t *idx = g_new(uint32_t, (size_t)batch);
  g_autofree FthPrediction *preds = g_new0(FthPrediction, (size_t)batch);
  g_autofree FthEmbedding *embs = g_new0(FthEmbedding, (size_t)batch);
  gboolean ok = TRUE;
  for (size_t start = 0; start < s.n && ok; start += (size_t)batch) {
    if (g_cancellable_set_error_if_cancelled(o->cancellable, error)) {
      ok = FALSE;
      break;
    }
    size_t count = MIN((size_t)batch, s.n - start);
    for (size_t i = 0; i < count; i++)
      idx[i] = (uint32_t)(start + i);
    fth_samples_fill_batch(&s, idx, count, NULL, 0, 0, plain ? NULL : meta->mean,
                           plain ? NULL : meta->std, x, NULL);
    FthTensor logits, emb;
    if ((fth_graph_batch(m->graph) != (int64_t)count &&
         fth_graph_set_batch(m->graph, (int64_t)count) != FTH_STATUS_OK) ||
        (dev ? fth_graph_device_set_input(dev, m->input, x, count * sample * sizeof(float))
             : fth_graph_set_input(m->graph, m->input, x, count * sample * sizeof(float))) !=
          FTH_STATUS_OK ||
        (dev ? fth_graph_device_run(dev) : fth_graph_run(m->graph)) != FTH_STATUS_OK ||
        fth_graph_tensor(m->graph, m->logits, &logits) != FTH_STATUS_OK ||
        fth_graph_tensor(m->graph, m->embedding, &emb) != FTH_STATUS_OK ||
        (dev && !read_back(dev, m->logits, &logits, &logits_host)) ||
        (dev && !read_back(dev, m->embedding, &emb, &emb_host))) {
      ok = engine_error(error, "running the model");
      break;
    }
    size_t dim = (size_t)(fth_tensor_numel(&emb) / (int64_t)count);
    const float *z = logits.data;
    for (size_t i = 0; i < count; i++) {
      /* Softmax in double: probabilities that sum to 1 for the store. */
      const float *zi = z + i * (size_t)nc;
      double mx = zi[0], sum = 0;
      for (int k = 1; k < nc; k++)
        mx = fmax(mx, zi[k]);
      float *p = g_new(float, nc);
      int best = 0;
      for (int k = 0; k < nc; k++)
        sum += exp((double)zi[k] - mx);
      for (int k = 0; k < nc; k++) {
        p[k] = (float)(exp((double)zi[k] - mx) / sum);
        if (p[k] > p[best])
          best = k;
      }
      gint64 item = fth_dataset_item_id(ds, start + i);
      preds[i] = (FthPrediction){*run_id, item, (guint)nc, p, label_id[best], p[best]};
      embs[i] = (FthEmbedding){*run_id, item, (guint)dim,
                               g_memdup2((const float *)emb.data + i * dim, dim * sizeof(float))};
    }
    ok = fth_store_put_predictions(store, preds, count, error) &&
         (o->no_embeddings || fth_store_put_embeddings(store, embs, count, error));
    for (size_t i = 0; i < count; i++) {
      g_free(preds[i].probs);
      g_free(embs[i].data);
    }
    if (o->progress)
      o->progress(start + count, s.n, o->progress_data);
  }
  if (!ok) {
    fth_store_set_run_state(store, *run_id,
                            g_cancellable_is_cancelled(o->cancellable) ? FTH_RUN_CANCELLED
                                                                       : FTH_RUN_FAILED, NULL);
    return FALSE;
  }
  *n_items = s.n;
  return fth_store_set_run_state(store, *run_id, FTH_RUN_DONE, error);
}
