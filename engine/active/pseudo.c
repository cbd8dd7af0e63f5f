/* Self-training: confident predictions become pseudo-labels (model annotations under their own
 * run), reviewed in bulk. A human label is never replaced: items with one are skipped, and the
 * store's set_class with author MODEL only ever replaces model annotations. */
#include "fathom/active.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
  gint64 item_id;
  gint64 label_id;
  double score;
} Candidate;

static int
by_label_then_score(const void *a, const void *b)
{
  const Candidate *x = a, *y = b;
  if (x->label_id != y->label_id)
    return x->label_id < y->label_id ? -1 : 1;
  if (x->score != y->score)
    return x->score > y->score ? -1 : 1;
  return x->item_id < y->item_id ? -1 : x->item_id > y->item_id;
}

/* Candidates sorted by label then score; at most CAP per label; one transaction. */
static gboolean
write_pseudo_labels(FthStore *store, GArray *cands, guint cap, gint64 run, guint *n_added,
                    GError **error)
{
  guint added = 0, in_class = 0;
  gint64 last_label = 0;
  if (!fth_store_begin(store, error))
    return FALSE;
  for (guint i = 0; i < cands->len; i++) {
    const Candidate *c = &g_array_index(cands, Candidate, i);
    if (c->label_id != last_label) {
      last_label = c->label_id;
      in_class = 0;
    }
    if (cap > 0 && in_class >= cap)
      continue;
    /* Checked again inside the transaction: a label given since the listing wins. */
    g_autoptr(GPtrArray) anns = fth_store_list_annotations(store, c->item_id, error);
    if (anns == NULL) {
      fth_store_rollback(store, NULL);
      return FALSE;
    }
    gboolean human = FALSE;
    for (guint j = 0; j < anns->len; j++)
      human |= ((FthAnnotation *)anns->pdata[j])->author == FTH_AUTHOR_HUMAN;
    if (human)
      continue;
    if (!fth_store_set_class(store, c->item_id, c->label_id, FTH_AUTHOR_MODEL, run, c->score,
                             NULL, error)) {
      fth_store_rollback(store, NULL);
      return FALSE;
    }
    added++;
    in_class++;
  }
  if (!fth_store_commit(store, error))
    return FALSE;
  *n_added = added;
  return TRUE;
}

gboolean
fth_pseudo_label(FthStore *store, gint64 prediction_run, double threshold, guint cap,
                 gint64 *out_run, guint *n_added, GError **error)
{
  if (!(threshold > 0 && threshold <= 1)) {
    g_set_error(error, FTH_ACTIVE_ERROR, FTH_ACTIVE_ERROR_INVALID,
                "%s: the pseudo-label threshold must be in (0, 1] (got %g)",
                fth_store_get_db_path(store), threshold);
    return FALSE;
  }
  if (prediction_run == 0) {
    prediction_run = fth_store_latest_prediction_run(store, error);
    if (prediction_run < 0)
      return FALSE;
    if (prediction_run == 0) {
      g_set_error(error, FTH_ACTIVE_ERROR, FTH_ACTIVE_ERROR_DATA,
                  "%s: no predictions to make pseudo-labels from; pre-label first",
                  fth_store_get_db_path(store));
      return FALSE;
    }
  }
  FthItemFilter filter = FTH_ITEM_FILTER_INIT;
  filter.unlabeled = TRUE;
  filter.prediction_run_id = prediction_run;
  filter.by_score = TRUE;
  filter.min_score = threshold;
  filter.max_score = 1.0;
  g_autoptr(GArray) cands = g_array_new(FALSE, FALSE, sizeof(Candidate));
  gint64 after = 0;
  for (;;) {
    g_autoptr(GPtrArray) page = fth_store_list_items_after(store, &filter, after, 4096, error);
    if (page == NULL)
      return FALSE;
    if (page->len == 0)
      break;
    for (guint i = 0; i < page->len; i++) {
      const FthItemRecord *item = page->pdata[i];
      after = item->id;
      if (item->split == FTH_SPLIT_VAL || item->split == FTH_SPLIT_TEST)
        continue;
      g_autoptr(FthPrediction) p = fth_store_get_prediction(store, prediction_run, item->id,
                                                            error);
      if (p == NULL)
        return FALSE;
      if (p->top_label_id == 0 || p->top_score < threshold)
        continue;
      Candidate c = {item->id, p->top_label_id, p->top_score};
      g_array_append_val(cands, c);
    }
  }
  if (cands->len > 1)
    qsort(cands->data, cands->len, sizeof(Candidate), by_label_then_score);
  g_autofree char *config = g_strdup_printf(
    "{\"prediction_run\": %" G_GINT64_FORMAT ", \"threshold\": %.17g, \"cap\": %u}",
    prediction_run, threshold, cap);
  gint64 run;
  if (!fth_store_create_run(store, "pseudo-label", "pseudo-labels", config, &run, error))
    return FALSE;
  guint added = 0;
  if (!write_pseudo_labels(store, cands, cap, run, &added, error)) {
    fth_store_set_run_state(store, run, FTH_RUN_FAILED, NULL);
    return FALSE;
  }
  g_autofree char *summary = g_strdup_printf("{\"pseudo_labels\": %u, \"candidates\": %u}", added,
                                             cands->len);
  if (!fth_store_set_run_summary(store, run, summary, error) ||
      !fth_store_set_run_state(store, run, FTH_RUN_DONE, error))
    return FALSE;
  if (out_run != NULL)
    *out_run = run;
  if (n_added != NULL)
    *n_added = added;
  return TRUE;
}

GPtrArray *
fth_pseudo_list(FthStore *store, gint64 run, GError **error)
{
  g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func((GDestroyNotify)fth_annotation_free);
  FthItemFilter filter = FTH_ITEM_FILTER_INIT;
  filter.author = FTH_AUTHOR_MODEL;
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
      g_autoptr(GPtrArray) anns = fth_store_list_annotations(store, item->id, error);
      if (anns == NULL)
        return NULL;
      for (guint j = 0; j < anns->len; j++) {
        FthAnnotation *a = anns->pdata[j];
        if (a->author == FTH_AUTHOR_MODEL && a->run_id == run)
          g_ptr_array_add(out, g_ptr_array_steal_index(anns, j--));
      }
    }
  }
  return g_steal_pointer(&out);
}

gboolean
fth_pseudo_review(FthStore *store, gint64 run, gint64 label_id, double min_score,
                  gboolean promote, guint *n_done, GError **error)
{
  g_autoptr(FthRun) r = fth_store_get_run(store, run, error);
  if (r == NULL)
    return FALSE;
  if (g_strcmp0(r->kind, "pseudo-label") != 0) {
    g_set_error(error, FTH_ACTIVE_ERROR, FTH_ACTIVE_ERROR_INVALID,
                "%s: run %" G_GINT64_FORMAT " is a %s run, not a pseudo-label run",
                fth_store_get_db_path(store), run, r->kind);
    return FALSE;
  }
  g_autoptr(GPtrArray) anns = fth_pseudo_list(store, run, error);
  if (anns == NULL)
    return FALSE;
  guint done = 0;
  if (!fth_store_begin(store, error))
    return FALSE;
  for (guint i = 0; i < anns->len; i++) {
    const FthAnnotation *a = anns->pdata[i];
    if ((label_id != 0 && a->label_id != label_id) || a->score < min_score)
      continue;
    gboolean human = FALSE;
    if (promote) {
      g_autoptr(GPtrArray) all = fth_store_list_annotations(store, a->item_id, error);
      if (all == NULL)
        goto fail;
      for (guint j = 0; j < all->len; j++)
        human |= ((FthAnnotation *)all->pdata[j])->author == FTH_AUTHOR_HUMAN;
    }
    gboolean ok = promote && !human ? fth_store_promote_annotation(store, a->id, error)
                                    : fth_store_remove_annotation(store, a->id, error);
    if (!ok)
      goto fail;
    done++;
  }
  if (!fth_store_commit(store, error))
    goto fail;
  if (n_done != NULL)
    *n_done = done;
  return TRUE;
fail:
  fth_store_rollback(store, NULL);
  return FALSE;
}
