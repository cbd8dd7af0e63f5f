/* Per-project AutoLabel settings, the unlabeled pool as the store holds it, and the labeling
 * queue (refill, next, reason). */
#include "fathom/active.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void
fth_active_settings_init(FthActiveSettings *settings)
{
  settings->strategy = FTH_ACQ_ENTROPY;
  settings->batch = 100;
  settings->retrain_every = 50;
  settings->pseudo_threshold = 0.95;
  settings->pseudo_cap = 1000;
}

static gboolean
meta_uint(FthStore *store, const char *key, guint min, guint *out, GError **error)
{
  GError *local = NULL;
  g_autofree char *v = fth_store_get_meta(store, key, &local);
  if (local != NULL) {
    g_propagate_error(error, local);
    return FALSE;
  }
  if (v == NULL)
    return TRUE;
  guint64 x;
  if (!g_ascii_string_to_unsigned(v, 10, min, G_MAXUINT, &x, NULL)) {
    g_set_error(error, FTH_ACTIVE_ERROR, FTH_ACTIVE_ERROR_INVALID,
                "%s: meta key %s is “%s”, not an integer >= %u", fth_store_get_db_path(store),
                key, v, min);
    return FALSE;
  }
  *out = (guint)x;
  return TRUE;
}

gboolean
fth_active_settings_load(FthStore *store, FthActiveSettings *settings, GError **error)
{
  fth_active_settings_init(settings);
  GError *local = NULL;
  g_autofree char *strategy = fth_store_get_meta(store, "active.strategy", &local);
  if (local != NULL) {
    g_propagate_error(error, local);
    return FALSE;
  }
  if (strategy != NULL && !fth_acquisition_from_name(strategy, &settings->strategy, &local)) {
    g_set_error(error, FTH_ACTIVE_ERROR, FTH_ACTIVE_ERROR_INVALID, "%s: meta key active.strategy: %s",
                fth_store_get_db_path(store), local->message);
    g_error_free(local);
    return FALSE;
  }
  if (!meta_uint(store, "active.batch", 1, &settings->batch, error) ||
      !meta_uint(store, "active.retrain_every", 1, &settings->retrain_every, error) ||
      !meta_uint(store, "active.pseudo_cap", 0, &settings->pseudo_cap, error))
    return FALSE;
  g_autofree char *thr = fth_store_get_meta(store, "active.pseudo_threshold", &local);
  if (local != NULL) {
    g_propagate_error(error, local);
    return FALSE;
  }
  if (thr != NULL) {
    char *end = NULL;
    double t = g_ascii_strtod(thr, &end);
    if (end == thr || *end != '\0' || !(t > 0 && t <= 1)) {
      g_set_error(error, FTH_ACTIVE_ERROR, FTH_ACTIVE_ERROR_INVALID,
                  "%s: meta key active.pseudo_threshold is “%s”, not a number in (0, 1]",
                  fth_store_get_db_path(store), thr);
      return FALSE;
    }
    settings->pseudo_threshold = t;
  }
  return TRUE;
}

gboolean
fth_active_settings_save(FthStore *store, const FthActiveSettings *settings, GError **error)
{
  if (settings->batch < 1 || settings->retrain_every < 1 ||
      !(settings->pseudo_threshold > 0 && settings->pseudo_threshold <= 1)) {
    g_set_error(error, FTH_ACTIVE_ERROR, FTH_ACTIVE_ERROR_INVALID,
                "%s: batch and retrain-every must be at least 1 and the pseudo-label threshold "
                "in (0, 1]", fth_store_get_db_path(store));
    return FALSE;
  }
  char thr[G_ASCII_DTOSTR_BUF_SIZE];
  g_autofree char *batch = g_strdup_printf("%u", settings->batch);
  g_autofree char *every = g_strdup_printf("%u", settings->retrain_every);
  g_autofree char *cap = g_strdup_printf("%u", settings->pseudo_cap);
  g_ascii_dtostr(thr, sizeof thr, settings->pseudo_threshold);
  if (!fth_store_begin(store, error))
    return FALSE;
  if (!fth_store_set_meta(store, "active.strategy", fth_acquisition_name(settings->strategy),
                          error) ||
      !fth_store_set_meta(store, "active.batch", batch, error) ||
      !fth_store_set_meta(store, "active.retrain_every", every, error) ||
      !fth_store_set_meta(store, "active.pseudo_threshold", thr, error) ||
      !fth_store_set_meta(store, "active.pseudo_cap", cap, error)) {
    fth_store_rollback(store, NULL);
    return FALSE;
  }
  return fth_store_commit(store, error);
}

void
fth_active_pool_free(FthActivePool *pool)
{
  if (pool == NULL)
    return;
  g_free(pool->item_ids);
  g_free(pool->probs);
  g_free(pool->emb);
  g_free(pool->labeled_emb);
  g_free(pool);
}

static gboolean
is_not_found(const GError *e)
{
  return e != NULL && e->domain == FTH_STORE_ERROR && e->code == FTH_STORE_ERROR_NOT_FOUND;
}

/* Appends EMB's row to *buf (growing it), checking the dimension is the pool's. */
static gboolean
append_embedding(FthStore *store, const FthEmbedding *emb, int *dim, GArray *buf, GError **error)
{
  if (*dim == 0)
    *dim = (int)emb->dim;
  if ((int)emb->dim != *dim) {
    g_set_error(error, FTH_ACTIVE_ERROR, FTH_ACTIVE_ERROR_DATA,
                "%s: run %" G_GINT64_FORMAT ": item %" G_GINT64_FORMAT " has a %u-dimensional "
                "embedding, others %d", fth_store_get_db_path(store), emb->run_id, emb->item_id,
                emb->dim, *dim);
    return FALSE;
  }
  g_array_append_vals(buf, emb->data, emb->dim);
  return TRUE;
}

FthActivePool *
fth_active_pool_load(FthStore *store, gint64 run_id, gboolean need_predictions,
                     gboolean need_embeddings, GError **error)
{
  g_autoptr(FthActivePool) pool = g_new0(FthActivePool, 1);
  if (need_predictions && run_id == 0) {
    run_id = fth_store_latest_prediction_run(store, error);
    if (run_id < 0)
      return NULL;
    if (run_id == 0) {
      g_set_error(error, FTH_ACTIVE_ERROR, FTH_ACTIVE_ERROR_DATA,
                  "%s: no predictions yet; pre-label the project first (fathom autolabel)",
                  fth_store_get_db_path(store));
      return NULL;
    }
  }
  pool->run_id = run_id;
  g_autoptr(GArray) ids = g_array_new(FALSE, FALSE, sizeof(gint64));
  g_autoptr(GArray) probs = g_array_new(FALSE, FALSE, sizeof(float));
  g_autoptr(GArray) emb = g_array_new(FALSE, FALSE, sizeof(float));
  g_autoptr(GArray) lab_emb = g_array_new(FALSE, FALSE, sizeof(float));
  /* Two passes over the items: the unlabeled pool, then (for embeddings) the labeled ones. */
  for (int pass = 0; pass < (need_embeddings ? 2 : 1); pass++) {
    FthItemFilter filter = FTH_ITEM_FILTER_INIT;
    if (pass == 0) {
      filter.unlabeled = TRUE;
    } else {
      filter.author = FTH_AUTHOR_HUMAN;
    }
    gint64 after = 0;
    for (;;) {
      g_autoptr(GPtrArray) page = fth_store_list_items_after(store, &filter, after, 4096, error);
      if (page == NULL)
        return NULL;
      if (page->len == 0)
        break;
      for (guint i = 0; i < page->len; i++) {
        const FthItemRecord *item = page->pdata[i];
        after = item->id;
        if (item->split == FTH_SPLIT_VAL || item->split == FTH_SPLIT_TEST)
          continue;
        GError *local = NULL;
        if (pass == 1) {
          g_autoptr(FthEmbedding) e = fth_store_get_embedding(store, run_id, item->id, &local);
          if (is_not_found(local)) {
            g_clear_error(&local);
            continue;
          }
          if (local != NULL) {
            g_propagate_error(error, local);
            return NULL;
          }
          if (!append_embedding(store, e, &pool->dim, lab_emb, error))
            return NULL;
          pool->n_labeled++;
          continue;
        }
        if (!need_predictions) {
          g_array_append_val(ids, item->id);
          continue;
        }
        g_autoptr(FthPrediction) p = fth_store_get_prediction(store, run_id, item->id, &local);
        if (is_not_found(local)) {
          g_clear_error(&local);
          pool->n_missing++;
          continue;
        }
        if (local != NULL) {
          g_propagate_error(error, local);
          return NULL;
        }
        if (pool->n_classes == 0)
          pool->n_classes = (int)p->n_classes;
        if ((int)p->n_classes != pool->n_classes) {
          g_set_error(error, FTH_ACTIVE_ERROR, FTH_ACTIVE_ERROR_DATA,
                      "%s: run %" G_GINT64_FORMAT ": item %" G_GINT64_FORMAT " has %u class "
                      "probabilities, others %d", fth_store_get_db_path(store), run_id,
                      item->id, p->n_classes, pool->n_classes);
          return NULL;
        }
        if (need_embeddings) {
          g_autoptr(FthEmbedding) e = fth_store_get_embedding(store, run_id, item->id, &local);
          if (local != NULL) {
            if (is_not_found(local))
              g_prefix_error(&local, "%s: run %" G_GINT64_FORMAT " predicted item %"
                             G_GINT64_FORMAT " but stored no embedding: ",
                             fth_store_get_db_path(store), run_id, item->id);
            g_propagate_error(error, local);
            return NULL;
          }
          if (!append_embedding(store, e, &pool->dim, emb, error))
            return NULL;
        }
        g_array_append_val(ids, item->id);
        g_array_append_vals(probs, p->probs, p->n_classes);
      }
    }
  }
  pool->n = ids->len;
  pool->item_ids = (gint64 *)g_array_free(g_steal_pointer(&ids), FALSE);
  if (need_predictions)
    pool->probs = (float *)g_array_free(g_steal_pointer(&probs), FALSE);
  if (need_embeddings) {
    pool->emb = (float *)g_array_free(g_steal_pointer(&emb), FALSE);
    pool->labeled_emb = (float *)g_array_free(g_steal_pointer(&lab_emb), FALSE);
  }
  return g_steal_pointer(&pool);
}

gboolean
fth_queue_refill_pool(FthStore *store, const FthActivePool *pool, const float *mc_probs,
                      int n_passes, const FthAcqOptions *opt, size_t *n_queued, GError **error)
{
  FthAcqPool ap = {
    .n = pool->n,
    .n_classes = pool->n_classes,
    .probs = pool->probs,
    .mc_probs = mc_probs,
    .n_passes = n_passes,
    .emb = pool->emb,
    .dim = pool->dim,
    .labeled_emb = pool->labeled_emb,
    .n_labeled = pool->n_labeled,
  };
  size_t k = MIN(opt->batch, pool->n);
  g_autofree uint32_t *sel = g_new(uint32_t, k ? k : 1);
  g_autofree float *scores = g_new(float, k ? k : 1);
  size_t n_sel = 0;
  GError *local = NULL;
  if (!fth_acquire(&ap, opt, sel, scores, &n_sel, &local)) {
    g_propagate_prefixed_error(error, local, "%s: ", fth_store_get_db_path(store));
    return FALSE;
  }
  g_autofree FthQueueEntry *entries = g_new0(FthQueueEntry, n_sel ? n_sel : 1);
  for (size_t j = 0; j < n_sel; j++) {
    entries[j].item_id = pool->item_ids[sel[j]];
    entries[j].score = scores[j];
    entries[j].rank = (gint64)j;
  }
  if (!fth_store_replace_queue(store, fth_acquisition_name(opt->strategy), pool->run_id, entries,
                               n_sel, error))
    return FALSE;
  if (n_queued != NULL)
    *n_queued = n_sel;
  return TRUE;
}

gboolean
fth_queue_refill(FthStore *store, gint64 run_id, const FthAcqOptions *opt, size_t *n_queued,
                 GError **error)
{
  if (opt->strategy == FTH_ACQ_BALD) {
    g_set_error(error, FTH_ACTIVE_ERROR, FTH_ACTIVE_ERROR_INVALID,
                "%s: strategy bald needs Monte-Carlo dropout passes of the model; refill it "
                "with a checkpoint", fth_store_get_db_path(store));
    return FALSE;
  }
  gboolean need_pred = opt->strategy != FTH_ACQ_RANDOM;
  gboolean need_emb = opt->strategy == FTH_ACQ_CORESET || opt->strategy == FTH_ACQ_HYBRID;
  g_autoptr(FthActivePool) pool = fth_active_pool_load(store, run_id, need_pred, need_emb, error);
  if (pool == NULL)
    return FALSE;
  return fth_queue_refill_pool(store, pool, NULL, 0, opt, n_queued, error);
}

static gboolean
has_human_label(FthStore *store, gint64 item_id, gboolean *out, GError **error)
{
  g_autoptr(GPtrArray) anns = fth_store_list_annotations(store, item_id, error);
  if (anns == NULL)
    return FALSE;
  *out = FALSE;
  for (guint i = 0; i < anns->len; i++)
    if (((FthAnnotation *)anns->pdata[i])->author == FTH_AUTHOR_HUMAN)
      *out = TRUE;
  return TRUE;
}

FthQueueEntry *
fth_queue_next(FthStore *store, const char *strategy, GError **error)
{
  /* Pages of the queue: labeled entries are dequeued, so each page starts at the front. */
  for (;;) {
    g_autoptr(GPtrArray) page = fth_store_list_queue(store, strategy, 64, error);
    if (page == NULL || page->len == 0)
      return NULL;
    for (guint i = 0; i < page->len; i++) {
      FthQueueEntry *e = page->pdata[i];
      gboolean labeled;
      GError *local = NULL;
      if (!has_human_label(store, e->item_id, &labeled, &local)) {
        /* An item deleted after the refill is as good as labeled: skip it. */
        if (!is_not_found(local)) {
          g_propagate_error(error, local);
          return NULL;
        }
        g_clear_error(&local);
        labeled = TRUE;
      }
      if (!labeled)
        return g_ptr_array_steal_index(page, i);
      if (!fth_store_dequeue_item(store, strategy, e->item_id, error))
        return NULL;
    }
  }
}

char *
fth_queue_entry_reason(const FthQueueEntry *entry)
{
  const char *what = entry->strategy ? entry->strategy : "queue";
  const char *unit = g_strcmp0(what, "coreset") == 0 ? " (distance to the nearest labeled item)"
                     : g_strcmp0(what, "random") == 0 ? " (random draw)" : "";
  if (entry->run_id > 0)
    return g_strdup_printf("%s %.4g%s, rank %" G_GINT64_FORMAT ", run %" G_GINT64_FORMAT, what,
                           entry->score, unit, entry->rank + 1, entry->run_id);
  return g_strdup_printf("%s %.4g%s, rank %" G_GINT64_FORMAT, what, entry->score, unit,
                         entry->rank + 1);
}
