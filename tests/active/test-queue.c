/* The queue and self-training on a small generated project: settings in the store's meta, the
 * pool (unlabeled train/none items only), refills in the hand-worked order, next skipping items
 * labeled meanwhile, pseudo-labels that never replace a human label, bulk review. */
#include <fathom/active.h>
#include <string.h>

#include "fth-test-project.h"

typedef struct {
  char *dir;
  FthStore *store;
  gint64 labels[3];
  gint64 items[8];
  gint64 run;
} Fixture;

/* Eight items. Items 0 and 1 are human-labeled, item 6 is in the test split, item 7 in val.
 * Predictions (3 classes), entropy by hand:
 *   item 2 [.4 .4 .2] 1.0549   item 3 [.98 .01 .01] 0.1119   item 4 [.5 .3 .2] 1.0297
 *   item 5 [.01 .97 .02] 0.1532  items 0, 1, 6, 7: uniform (ln 3, highest, but never pooled) */
static const float PROBS[8][3] = {
  {1.0f / 3, 1.0f / 3, 1.0f / 3}, {1.0f / 3, 1.0f / 3, 1.0f / 3},
  {0.4f, 0.4f, 0.2f}, {0.98f, 0.01f, 0.01f}, {0.5f, 0.3f, 0.2f}, {0.01f, 0.97f, 0.02f},
  {1.0f / 3, 1.0f / 3, 1.0f / 3}, {1.0f / 3, 1.0f / 3, 1.0f / 3},
};

static void
fixture_set_up(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  f->dir = g_dir_make_tmp("fth-active-XXXXXX", &error);
  g_assert_no_error(error);
  g_autofree char *proj = g_build_filename(f->dir, "p", NULL);
  f->store = fth_store_create(proj, &error);
  g_assert_no_error(error);
  const char *names[3] = {"cat", "dog", "fox"};
  for (int k = 0; k < 3; k++)
    g_assert_true(fth_store_add_label(f->store, names[k], NULL, NULL, FTH_LABEL_CLASS,
                                      &f->labels[k], &error));
  for (int i = 0; i < 8; i++) {
    g_autoptr(FthItemRecord) it = fth_item_record_new();
    it->kind = FTH_ITEM_IMAGE;
    it->path = g_strdup_printf("/data/img%d.png", i);
    it->sha256 = g_strdup_printf("%064x", i + 1);
    it->split = i == 6 ? FTH_SPLIT_TEST : i == 7 ? FTH_SPLIT_VAL : FTH_SPLIT_TRAIN;
    g_assert_true(fth_store_add_item(f->store, it, &f->items[i], NULL, &error));
  }
  g_assert_true(fth_store_set_class(f->store, f->items[0], f->labels[0], FTH_AUTHOR_HUMAN, 0,
                                    1.0, NULL, &error));
  g_assert_true(fth_store_set_class(f->store, f->items[1], f->labels[1], FTH_AUTHOR_HUMAN, 0,
                                    1.0, NULL, &error));
  g_assert_true(fth_store_create_run(f->store, "predict", "p", NULL, &f->run, &error));
  FthPrediction preds[8];
  FthEmbedding embs[8];
  float emb_data[8][2];
  for (int i = 0; i < 8; i++) {
    int top = 0;
    for (int k = 1; k < 3; k++)
      if (PROBS[i][k] > PROBS[i][top])
        top = k;
    preds[i] = (FthPrediction){f->run, f->items[i], 3, (float *)PROBS[i], f->labels[top],
                               PROBS[i][top]};
    /* Embeddings on a line: item i at x = i. */
    emb_data[i][0] = (float)i;
    emb_data[i][1] = 0;
    embs[i] = (FthEmbedding){f->run, f->items[i], 2, emb_data[i]};
  }
  g_assert_true(fth_store_put_predictions(f->store, preds, 8, &error));
  g_assert_true(fth_store_put_embeddings(f->store, embs, 8, &error));
  g_assert_no_error(error);
}

static void
fixture_tear_down(Fixture *f, gconstpointer data)
{
  g_clear_object(&f->store);
  fth_test_rmtree(f->dir);
  g_free(f->dir);
}

static void
test_settings(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  FthActiveSettings s;
  g_assert_true(fth_active_settings_load(f->store, &s, &error));
  g_assert_cmpint(s.strategy, ==, FTH_ACQ_ENTROPY);
  g_assert_cmpuint(s.batch, ==, 100);
  g_assert_cmpuint(s.retrain_every, ==, 50);
  g_assert_cmpfloat(s.pseudo_threshold, ==, 0.95);
  s.strategy = FTH_ACQ_CORESET;
  s.batch = 25;
  s.retrain_every = 10;
  s.pseudo_threshold = 0.9;
  s.pseudo_cap = 7;
  g_assert_true(fth_active_settings_save(f->store, &s, &error));
  FthActiveSettings t;
  g_assert_true(fth_active_settings_load(f->store, &t, &error));
  g_assert_cmpint(t.strategy, ==, FTH_ACQ_CORESET);
  g_assert_cmpuint(t.batch, ==, 25);
  g_assert_cmpuint(t.retrain_every, ==, 10);
  g_assert_cmpfloat(t.pseudo_threshold, ==, 0.9);
  g_assert_cmpuint(t.pseudo_cap, ==, 7);
  g_autofree char *raw = fth_store_get_meta(f->store, "active.strategy", &error);
  g_assert_cmpstr(raw, ==, "coreset");

  g_assert_true(fth_store_set_meta(f->store, "active.batch", "many", &error));
  g_assert_false(fth_active_settings_load(f->store, &t, &error));
  g_assert_error(error, FTH_ACTIVE_ERROR, FTH_ACTIVE_ERROR_INVALID);
  g_assert_nonnull(strstr(error->message, "active.batch"));
  g_assert_nonnull(strstr(error->message, "fathom.db"));
  g_clear_error(&error);
  g_assert_true(fth_store_set_meta(f->store, "active.batch", "5", &error));
  g_assert_true(fth_store_set_meta(f->store, "active.strategy", "psychic", &error));
  g_assert_false(fth_active_settings_load(f->store, &t, &error));
  g_assert_nonnull(strstr(error->message, "psychic"));
}

static void
test_pool(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(FthActivePool) pool = fth_active_pool_load(f->store, 0, TRUE, TRUE, &error);
  g_assert_no_error(error);
  g_assert_cmpint(pool->run_id, ==, f->run);
  g_assert_cmpuint(pool->n, ==, 4); /* items 2..5 */
  for (int i = 0; i < 4; i++)
    g_assert_cmpint(pool->item_ids[i], ==, f->items[2 + i]);
  g_assert_cmpint(pool->n_classes, ==, 3);
  g_assert_cmpfloat(pool->probs[0], ==, 0.4f);
  g_assert_cmpint(pool->dim, ==, 2);
  g_assert_cmpfloat(pool->emb[2], ==, 3.0f);
  g_assert_cmpuint(pool->n_labeled, ==, 2); /* items 0 and 1 */
  g_assert_cmpfloat(pool->labeled_emb[2], ==, 1.0f);
  g_assert_cmpuint(pool->n_missing, ==, 0);
}

static void
test_refill_and_next(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  FthAcqOptions opt;
  fth_acq_options_init(&opt);
  opt.batch = 3;
  size_t n = 0;
  g_assert_true(fth_queue_refill(f->store, 0, &opt, &n, &error));
  g_assert_no_error(error);
  g_assert_cmpuint(n, ==, 3);
  g_autoptr(GPtrArray) q = fth_store_list_queue(f->store, "entropy", 0, &error);
  g_assert_cmpuint(q->len, ==, 3);
  const int want[3] = {2, 4, 5};
  const double want_score[3] = {1.054920168, 1.029653014, 0.1538376};
  for (int j = 0; j < 3; j++) {
    FthQueueEntry *e = q->pdata[j];
    g_assert_cmpint(e->item_id, ==, f->items[want[j]]);
    g_assert_cmpint(e->rank, ==, j);
    g_assert_cmpint(e->run_id, ==, f->run);
    g_assert_cmpfloat_with_epsilon(e->score, want_score[j], 1e-4);
  }
  g_autofree char *reason = fth_queue_entry_reason(q->pdata[0]);
  g_assert_nonnull(strstr(reason, "entropy 1.055"));
  g_assert_nonnull(strstr(reason, "rank 1"));

  /* Item 2 gets a human label: next skips it and takes it off the queue. */
  g_assert_true(fth_store_set_class(f->store, f->items[2], f->labels[2], FTH_AUTHOR_HUMAN, 0, 1.0,
                                    NULL, &error));
  g_autoptr(FthQueueEntry) next = fth_queue_next(f->store, "entropy", &error);
  g_assert_no_error(error);
  g_assert_nonnull(next);
  g_assert_cmpint(next->item_id, ==, f->items[4]);
  g_autoptr(GPtrArray) q2 = fth_store_list_queue(f->store, "entropy", 0, &error);
  g_assert_cmpuint(q2->len, ==, 2);

  /* Core-set from the labeled items at x = 0, 1, 2 now: the farthest pool item is 5. */
  opt.strategy = FTH_ACQ_CORESET;
  opt.batch = 1;
  g_assert_true(fth_queue_refill(f->store, f->run, &opt, &n, &error));
  g_autoptr(FthQueueEntry) c = fth_queue_next(f->store, "coreset", &error);
  g_assert_cmpint(c->item_id, ==, f->items[5]);
  g_assert_cmpfloat_with_epsilon(c->score, 3.0, 1e-4);

  /* BALD needs the model's passes. */
  opt.strategy = FTH_ACQ_BALD;
  g_assert_false(fth_queue_refill(f->store, f->run, &opt, &n, &error));
  g_assert_error(error, FTH_ACTIVE_ERROR, FTH_ACTIVE_ERROR_INVALID);
  g_clear_error(&error);

  /* An empty queue: NULL, no error. */
  g_autoptr(FthQueueEntry) none = fth_queue_next(f->store, "margin", &error);
  g_assert_null(none);
  g_assert_no_error(error);
}

static gboolean
has_author(FthStore *store, gint64 item, FthAuthor author, gint64 *label)
{
  g_autoptr(GPtrArray) anns = fth_store_list_annotations(store, item, NULL);
  for (guint i = 0; i < anns->len; i++) {
    FthAnnotation *a = anns->pdata[i];
    if (a->author == author) {
      if (label != NULL)
        *label = a->label_id;
      return TRUE;
    }
  }
  return FALSE;
}

static void
test_pseudo_labels(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  /* A confident prediction on a human-labeled item: item 0 predicted "dog" at 0.99, labeled "cat"
   * by a human. */
  float confident[3] = {0.0f, 0.99f, 0.01f};
  FthPrediction p0 = {f->run, f->items[0], 3, confident, f->labels[1], 0.99};
  g_assert_true(fth_store_put_predictions(f->store, &p0, 1, &error));

  gint64 prun = 0;
  guint added = 0;
  g_assert_true(fth_pseudo_label(f->store, f->run, 0.95, 0, &prun, &added, &error));
  g_assert_no_error(error);
  /* Items 3 (cat .98) and 5 (dog .97); not 0 (human), not 2/4 (below), not 6/7 (test, val). */
  g_assert_cmpuint(added, ==, 2);
  gint64 lab = 0;
  g_assert_true(has_author(f->store, f->items[3], FTH_AUTHOR_MODEL, &lab));
  g_assert_cmpint(lab, ==, f->labels[0]);
  g_assert_true(has_author(f->store, f->items[5], FTH_AUTHOR_MODEL, &lab));
  g_assert_cmpint(lab, ==, f->labels[1]);
  g_assert_false(has_author(f->store, f->items[0], FTH_AUTHOR_MODEL, NULL));
  g_assert_true(has_author(f->store, f->items[0], FTH_AUTHOR_HUMAN, &lab));
  g_assert_cmpint(lab, ==, f->labels[0]);
  g_autoptr(GPtrArray) list = fth_pseudo_list(f->store, prun, &error);
  g_assert_cmpuint(list->len, ==, 2);
  FthAnnotation *a = list->pdata[0];
  g_assert_cmpint(a->author, ==, FTH_AUTHOR_MODEL);
  g_assert_cmpint(a->run_id, ==, prun);
  g_assert_cmpfloat_with_epsilon(a->score, 0.98, 1e-6);
  g_autoptr(FthRun) run = fth_store_get_run(f->store, prun, &error);
  g_assert_cmpstr(run->kind, ==, "pseudo-label");

  /* Still labeled nowhere by a human: the pool is unchanged by pseudo-labels. */
  g_autoptr(FthActivePool) pool = fth_active_pool_load(f->store, f->run, TRUE, FALSE, &error);
  g_assert_cmpuint(pool->n, ==, 4);

  /* Per-class cap 1 with threshold .9: "cat" has 3 (.98) only, "dog" 5 (.97): cap not binding;
   * lower the threshold to include .5 and cap 1: cat gets only its best (3). */
  gint64 prun2;
  g_assert_true(fth_pseudo_label(f->store, f->run, 0.4, 1, &prun2, &added, &error));
  g_assert_cmpuint(added, ==, 2); /* cat: 3 (.98) over 2 (.4) and 4 (.5); dog: 5 */
  g_autoptr(GPtrArray) list2 = fth_pseudo_list(f->store, prun2, &error);
  g_assert_cmpuint(list2->len, ==, 2);
  g_assert_cmpint(((FthAnnotation *)list2->pdata[0])->item_id, ==, f->items[3]);
  /* The new run replaced the old run's model annotations on the same items. */
  g_autoptr(GPtrArray) old = fth_pseudo_list(f->store, prun, &error);
  g_assert_cmpuint(old->len, ==, 0);

  /* Review: a human labels item 5 "fox" meanwhile; promoting keeps the human label and drops the
   * pseudo-label; item 3 becomes a human "cat". */
  g_assert_true(fth_store_set_class(f->store, f->items[5], f->labels[2], FTH_AUTHOR_HUMAN, 0, 1.0,
                                    NULL, &error));
  guint done = 0;
  g_assert_true(fth_pseudo_review(f->store, prun2, 0, 0.0, TRUE, &done, &error));
  g_assert_no_error(error);
  g_assert_cmpuint(done, ==, 2);
  g_assert_true(has_author(f->store, f->items[3], FTH_AUTHOR_HUMAN, &lab));
  g_assert_cmpint(lab, ==, f->labels[0]);
  g_assert_false(has_author(f->store, f->items[3], FTH_AUTHOR_MODEL, NULL));
  g_assert_true(has_author(f->store, f->items[5], FTH_AUTHOR_HUMAN, &lab));
  g_assert_cmpint(lab, ==, f->labels[2]);
  g_assert_false(has_author(f->store, f->items[5], FTH_AUTHOR_MODEL, NULL));
  g_autoptr(GPtrArray) anns5 = fth_store_list_annotations(f->store, f->items[5], &error);
  g_assert_cmpuint(anns5->len, ==, 1);

  /* Reject in bulk by label: a fresh run over the remaining items (2 and 4, both "cat"). */
  gint64 prun3;
  g_assert_true(fth_pseudo_label(f->store, f->run, 0.4, 0, &prun3, &added, &error));
  g_assert_cmpuint(added, ==, 2);
  g_assert_true(fth_pseudo_review(f->store, prun3, f->labels[1], 0.0, FALSE, &done, &error));
  g_assert_cmpuint(done, ==, 0); /* none is "dog" */
  g_assert_true(fth_pseudo_review(f->store, prun3, f->labels[0], 0.45, FALSE, &done, &error));
  g_assert_cmpuint(done, ==, 1); /* item 4 (.5); item 2 (.4) stays */
  g_assert_true(has_author(f->store, f->items[2], FTH_AUTHOR_MODEL, NULL));
  g_assert_false(has_author(f->store, f->items[4], FTH_AUTHOR_MODEL, NULL));
  g_assert_false(has_author(f->store, f->items[4], FTH_AUTHOR_HUMAN, NULL));

  /* Reviewing a run that is not a pseudo-label run is refused. */
  g_assert_false(fth_pseudo_review(f->store, f->run, 0, 0, TRUE, &done, &error));
  g_assert_error(error, FTH_ACTIVE_ERROR, FTH_ACTIVE_ERROR_INVALID);
  g_clear_error(&error);
  g_assert_false(fth_pseudo_label(f->store, f->run, 1.5, 0, NULL, NULL, &error));
  g_assert_error(error, FTH_ACTIVE_ERROR, FTH_ACTIVE_ERROR_INVALID);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add("/active/queue/settings", Fixture, NULL, fixture_set_up, test_settings,
             fixture_tear_down);
  g_test_add("/active/queue/pool", Fixture, NULL, fixture_set_up, test_pool, fixture_tear_down);
  g_test_add("/active/queue/refill-and-next", Fixture, NULL, fixture_set_up,
             test_refill_and_next, fixture_tear_down);
  g_test_add("/active/queue/pseudo-labels", Fixture, NULL, fixture_set_up, test_pseudo_labels,
             fixture_tear_down);
  return g_test_run();
}
