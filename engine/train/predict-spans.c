/* fth_predict for a tagger: BIO tags per token -> entities -> model span annotations. */
#include "text-private.h"

#include <gio/gio.h>
#include <math.h>
#include <string.h>

static gboolean
engine_error(GError **error, const char *what)
{
  g_set_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_ENGINE, "%s: %s", what, fth_last_error());
  return FALSE;
}

/* One item: its real tokens' tags and top probabilities, compacted, into span annotations; its
 * embedding, the mean of its real tokens' features. */
static gboolean
store_item(FthStore *store, gint64 run_id, gint64 item, const FthTokenizer *tok,
           const char *text, const float *z, const float *feat, int t, int nc, int dim,
           const gint64 *type_label, gboolean embeddings, GError **error)
{
  g_autofree int32_t *ids = g_new(int32_t, t), *starts = g_new(int32_t, t),
                     *ends = g_new(int32_t, t), *tags = g_new(int32_t, t);
  g_autofree double *top = g_new(double, t);
  g_autofree float *mean = g_new0(float, dim ? dim : 1);
  if (!fth_tokenizer_encode(tok, text, -1, NULL, t, TRUE, ids, starts, ends, NULL, error))
    return FALSE;
  int n = 0;
  for (int j = 0; j < t; j++) {
    if (starts[j] < 0)
      continue;
    const float *zj = z + (size_t)j * (size_t)nc;
    int best = 0;
    double sum = 0;
    for (int k = 1; k < nc; k++)
      best = zj[k] > zj[best] ? k : best;
    for (int k = 0; k < nc; k++)
      sum += exp((double)zj[k] - zj[best]);
    for (int d = 0; d < dim; d++)
      mean[d] += feat[(size_t)j * (size_t)dim + (size_t)d];
    starts[n] = starts[j];
    ends[n] = ends[j];
    tags[n] = best;
    top[n++] = 1.0 / sum;
  }
  g_autoptr(GArray) ents = fth_bio_entities(tags, tags, (size_t)n);
  for (guint e = 0; e < ents->len; e++) {
    const FthEntity *en = &g_array_index(ents, FthEntity, e);
    if (type_label[en->type] == 0)
      continue; /* the label is not in this project */
    double score = 0;
    for (size_t j = en->start; j < en->end; j++)
      score += top[j] / (double)(en->end - en->start);
    g_autoptr(FthAnnotation) a = fth_annotation_new();
    a->item_id = item;
    a->label_id = type_label[en->type];
    a->geom = FTH_GEOM_SPAN;
    a->start = starts[en->start];
    a->end = ends[en->end - 1];
    a->author = FTH_AUTHOR_MODEL;
    a->run_id = run_id;
    a->score = score;
    if (!fth_store_add_annotation(store, a, NULL, error))
      return FALSE;
  }
  if (!embeddings || n == 0)
    return TRUE;
  for (int d = 0; d < dim; d++)
    mean[d] /= (float)n;
  FthEmbedding emb = {run_id, item, (guint)dim, mean};
  return fth_store_put_embeddings(store, &emb, 1, error);
}

gboolean
fth_predict_spans(FthStore *store, const FthPredictOptions *o, const FthCheckpointMeta *meta,
                  const FthRecipe *recipe, gint64 *run_id, gsize *n_items, GError **error)
{
  int batch = o->batch > 0 ? o->batch : 64, nc = meta->n_labels, t = (int)recipe->in_shape[0];
  g_autoptr(FthModel) m = fth_model_build(recipe, nc, 1, FTH_MODEL_INFERENCE, error);
  if (m == NULL)
    return FALSE;
  g_autofree char *wp = g_build_filename(o->checkpoint_dir, meta->weights_file, NULL);
  if (!fth_load_weights(m->graph, wp, TRUE, NULL, error))
    return FALSE;
  if (fth_graph_plan(m->graph, FTH_MODE_INFERENCE, batch) != FTH_STATUS_OK)
    return engine_error(error, "planning the inference graph");
  g_autoptr(FthDataset) ds =
    fth_dataset_open_recipe_text(store, recipe, FTH_DATASET_ALL, o->checkpoint_dir, error);
  if (ds == NULL)
    return FALSE;
  /* Span labels by name: classes 2k + 1 and 2k + 2 are "B-NAME" and "I-NAME". */
  int n_types = (nc - 1) / 2;
  g_autofree gint64 *type_label = g_new0(gint64, n_types + 1);
  for (int k = 0; k < n_types; k++) {
    const char *name = meta->labels[2 * k + 1];
    g_autoptr(FthLabel) l = g_str_has_prefix(name, "B-") ? fth_store_find_label(store, name + 2, NULL)
                                                           : NULL;
    type_label[k] = l ? l->id : 0;
  }
  g_autofree char *config = g_strdup_printf("{\"checkpoint\": \"%s\", \"recipe\": \"%s\"}",
                                            o->checkpoint_dir, recipe->name);
  if (!fth_store_create_run(store, "predict", recipe->name, config, run_id, error) ||
      !fth_store_set_run_state(store, *run_id, FTH_RUN_RUNNING, error))
    return FALSE;
  FthSamples s;
  fth_dataset_samples(ds, &s);
  g_autofree int32_t *x = g_new(int32_t, (size_t)t * (size_t)batch);
  g_autofree uint32_t *idx = g_new(uint32_t, (size_t)batch);
  gboolean ok = TRUE;
  for (size_t start = 0; start < s.n && ok; start += (size_t)batch) {
    if (g_cancellable_set_error_if_cancelled(o->cancellable, error)) {
      ok = FALSE;
      break;
    }
    size_t count = MIN((size_t)batch, s.n - start);
    for (size_t i = 0; i < count; i++)
      idx[i] = (uint32_t)(start + i);
    fth_samples_fill_batch(&s, idx, count, NULL, 0, 0, NULL, NULL, x, NULL);
    FthTensor logits, emb;
    if ((fth_graph_batch(m->graph) != (int64_t)count &&
         fth_graph_set_batch(m->graph, (int64_t)count) != FTH_STATUS_OK) ||
        fth_graph_set_input(m->graph, m->input, x, count * (size_t)t * sizeof(int32_t)) !=
          FTH_STATUS_OK ||
        fth_graph_run(m->graph) != FTH_STATUS_OK ||
        fth_graph_tensor(m->graph, m->logits, &logits) != FTH_STATUS_OK ||
        fth_graph_tensor(m->graph, m->embedding, &emb) != FTH_STATUS_OK) {
      ok = engine_error(error, "running the model");
      break;
    }
    int dim = (int)(fth_tensor_numel(&emb) / ((int64_t)count * t));
    ok = fth_store_begin(store, error);
    for (size_t i = 0; i < count && ok; i++)
      ok = store_item(store, *run_id, fth_dataset_item_id(ds, start + i),
                      fth_dataset_tokenizer(ds), fth_dataset_text(ds, start + i),
                      (const float *)logits.data + i * (size_t)t * (size_t)nc,
                      (const float *)emb.data + i * (size_t)t * (size_t)dim, t, nc, dim,
                      type_label, !o->no_embeddings, error);
    ok = ok ? fth_store_commit(store, error) : (fth_store_rollback(store, NULL), FALSE);
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
