/* The trainer-backed parts on a synthetic project (8x8 IDX images with two bright rows whose
 * position gives the class; half the items human-labeled): pre-labeling writes predictions,
 * embeddings and model annotations under its run and never touches or duplicates a human label;
 * a loop round fine-tunes, records test accuracy, re-scores and refills the queue; MC dropout on
 * the head against a hand-computed head; the simulated loop with the real trainer repeats with
 * its seed. */
#include <fathom/active.h>
#include <math.h>
#include <string.h>

#include "fth-test-project.h"

enum { N_ITEMS = 240, N_LABELED = 120, S = 8, N_CLASSES = 3 };

static char *tmp_root;
static char *recipe_path;
static guint8 *images; /* N_ITEMS * S * S, for the in-memory loop */

static const FthTestBars bars = { .n_items = N_ITEMS, .size = S, .n_classes = N_CLASSES,
                                  .seed = 5, .noise_max = 60, .bar_min = 180, .two_bars = TRUE };

/* The project: every item, the first N_LABELED with their class by a human. */
static FthStore *
make_project(const char *name, gint64 *item_ids, gint64 *label_ids)
{
  g_autofree char *dir = g_build_filename(tmp_root, name, NULL);
  const char *const names[N_CLASSES] = { "top", "middle", "bottom" };
  return fth_test_bars_project_new(dir, &bars, names, N_LABELED, label_ids, item_ids);
}

static char *
train_checkpoint(FthStore *store, const char *name)
{
  g_autoptr(GError) error = NULL;
  FthTrainOptions o;
  fth_train_options_init(&o);
  o.recipe = recipe_path;
  o.epochs = 6;
  o.seed = 3;
  char *ckpt = g_build_filename(tmp_root, name, NULL);
  o.checkpoint_dir = ckpt;
  FthTrainResult res = {0};
  g_assert_true(fth_train(store, &o, &res, &error));
  g_assert_no_error(error);
  fth_train_result_clear(&res);
  return ckpt;
}

/* The item's annotations by author: count and the label of the last one. */
static int
count_by(FthStore *store, gint64 item, FthAuthor author, gint64 *label, gint64 *run)
{
  g_autoptr(GPtrArray) anns = fth_store_list_annotations(store, item, NULL);
  int n = 0;
  for (guint i = 0; i < anns->len; i++) {
    FthAnnotation *a = anns->pdata[i];
    if (a->author == author) {
      n++;
      if (label)
        *label = a->label_id;
      if (run)
        *run = a->run_id;
    }
  }
  return n;
}

static void
test_prelabel(void)
{
  gint64 items[N_ITEMS], labels[N_CLASSES];
  g_autoptr(FthStore) store = make_project("prelabel", items, labels);
  g_autofree char *ckpt = train_checkpoint(store, "ckpt-prelabel");
  g_autoptr(GError) error = NULL;

  /* One unlabeled item gets a human label that contradicts its looks: it must stay as is. */
  g_assert_true(fth_store_set_class(store, items[N_LABELED], labels[2], FTH_AUTHOR_HUMAN, 0, 1.0,
                                    NULL, &error));
  FthPrelabelResult r1;
  g_autoptr(FthJob) job = fth_prelabel_job_new(store, ckpt);
  g_assert_true(fth_job_run_sync(job, &error));
  g_assert_no_error(error);
  g_assert_true(fth_prelabel(store, ckpt, NULL, NULL, &r1, &error));
  g_assert_no_error(error);
  g_assert_cmpuint(r1.n_predicted, ==, N_ITEMS);
  g_assert_cmpuint(r1.n_annotated, ==, N_ITEMS - N_LABELED - 1);
  g_autoptr(FthRun) run = fth_store_get_run(store, r1.run_id, &error);
  g_assert_cmpstr(run->kind, ==, "predict");
  g_assert_cmpint(run->state, ==, FTH_RUN_DONE);
  g_assert_nonnull(strstr(run->config_json, "ckpt-prelabel"));

  int correct = 0;
  for (int i = 0; i < N_ITEMS; i++) {
    g_autoptr(FthPrediction) p = fth_store_get_prediction(store, r1.run_id, items[i], &error);
    g_assert_no_error(error);
    g_assert_cmpuint(p->n_classes, ==, N_CLASSES);
    double sum = p->probs[0] + p->probs[1] + p->probs[2];
    g_assert_cmpfloat_with_epsilon(sum, 1.0, 1e-5);
    g_autoptr(FthEmbedding) e = fth_store_get_embedding(store, r1.run_id, items[i], &error);
    g_assert_no_error(error);
    g_assert_cmpuint(e->dim, ==, 16);
    gint64 hl = 0, ml = 0, mr = 0;
    int nh = count_by(store, items[i], FTH_AUTHOR_HUMAN, &hl, NULL);
    int nm = count_by(store, items[i], FTH_AUTHOR_MODEL, &ml, &mr);
    if (i < N_LABELED) {
      g_assert_cmpint(nh, ==, 1);
      g_assert_cmpint(hl, ==, labels[i % N_CLASSES]);
      g_assert_cmpint(nm, ==, 0);
    } else if (i == N_LABELED) {
      g_assert_cmpint(nh, ==, 1);
      g_assert_cmpint(hl, ==, labels[2]);
      g_assert_cmpint(nm, ==, 0);
    } else {
      /* Exactly one model annotation (the second run replaced the job's), from that run. */
      g_assert_cmpint(nh, ==, 0);
      g_assert_cmpint(nm, ==, 1);
      g_assert_cmpint(mr, ==, r1.run_id);
      g_assert_cmpint(ml, ==, p->top_label_id);
      correct += ml == labels[i % N_CLASSES];
    }
  }
  /* The bars are easy: the pre-labels are mostly right. */
  g_assert_cmpint(correct, >=, (N_ITEMS - N_LABELED - 1) * 8 / 10);

  /* A missing checkpoint names the directory. */
  g_assert_false(fth_prelabel(store, "/nonexistent/ckpt", NULL, NULL, &r1, &error));
  g_assert_error(error, FTH_ACTIVE_ERROR, FTH_ACTIVE_ERROR_NO_MODEL);
  g_assert_nonnull(strstr(error->message, "/nonexistent/ckpt"));
}

static void
test_round(void)
{
  gint64 items[N_ITEMS], labels[N_CLASSES];
  g_autoptr(FthStore) store = make_project("round", items, labels);
  g_autofree char *ckpt = train_checkpoint(store, "ckpt-round");
  g_autoptr(GError) error = NULL;
  FthActiveSettings st;
  fth_active_settings_init(&st);
  st.strategy = FTH_ACQ_MARGIN;
  st.batch = 7;
  st.retrain_every = 5;
  g_assert_true(fth_active_settings_save(store, &st, &error));
  gboolean due = FALSE;
  gint64 n_new = 0;
  g_assert_true(fth_active_round_due(store, &st, &due, &n_new, &error));
  g_assert_true(due);
  g_assert_cmpint(n_new, ==, N_LABELED);

  g_autofree char *latest = fth_active_latest_checkpoint(store, &error);
  g_assert_cmpstr(latest, ==, ckpt);
  FthActiveRoundOptions ro;
  fth_active_round_options_init(&ro);
  ro.checkpoint_dir = ckpt;
  g_autofree char *out = g_build_filename(tmp_root, "ckpt-round-2", NULL);
  ro.out_dir = out;
  ro.min_steps = 20;
  FthActiveRoundResult res;
  g_assert_true(fth_active_round(store, &ro, NULL, NULL, &res, &error));
  g_assert_no_error(error);
  g_assert_cmpuint(res.n_labels, ==, N_LABELED);
  g_assert_cmpuint(res.n_queued, ==, 7);
  g_assert_false(isnan(res.test_acc));
  g_assert_cmpfloat(res.test_acc, >, 0.5);
  g_autoptr(GPtrArray) m = fth_store_list_metrics(store, res.round_run_id, "test_acc", &error);
  g_assert_cmpuint(m->len, ==, 1);
  g_assert_cmpint(((FthMetric *)m->pdata[0])->step, ==, N_LABELED);
  g_autoptr(GPtrArray) q = fth_store_list_queue(store, "margin", 0, &error);
  g_assert_cmpuint(q->len, ==, 7);
  for (guint i = 0; i < q->len; i++) {
    FthQueueEntry *e = q->pdata[i];
    g_assert_cmpint(e->run_id, ==, res.predict_run_id);
    g_assert_cmpint(e->item_id, >, items[N_LABELED - 1]); /* unlabeled items only */
  }
  g_autofree char *sidecar = g_build_filename(out, "checkpoint.json", NULL);
  g_assert_true(g_file_test(sidecar, G_FILE_TEST_EXISTS));
  g_autofree char *latest2 = fth_active_latest_checkpoint(store, &error);
  g_assert_cmpstr(latest2, ==, out);

  /* Right after the round nothing is due; five new human labels make it due again. */
  g_assert_true(fth_active_round_due(store, &st, &due, &n_new, &error));
  g_assert_false(due);
  for (int i = 0; i < 5; i++)
    g_assert_true(fth_store_set_class(store, items[N_LABELED + i], labels[i % N_CLASSES],
                                      FTH_AUTHOR_HUMAN, 0, 1.0, NULL, &error));
  g_assert_true(fth_active_round_due(store, &st, &due, &n_new, &error));
  g_assert_true(due);
  g_assert_cmpint(n_new, ==, 5);

  /* BALD through the round: MC passes from the new checkpoint's head. */
  st.strategy = FTH_ACQ_BALD;
  g_assert_true(fth_active_settings_save(store, &st, &error));
  ro.checkpoint_dir = out;
  g_assert_true(fth_active_round(store, &ro, NULL, NULL, &res, &error));
  g_assert_no_error(error);
  g_autoptr(GPtrArray) qb = fth_store_list_queue(store, "bald", 0, &error);
  g_assert_cmpuint(qb->len, ==, 7);

  /* Self-training in the round: the pseudo-labels of a run join the fine-tune. */
  gint64 prun;
  guint added = 0;
  g_assert_true(fth_pseudo_label(store, res.predict_run_id, 0.5, 0, &prun, &added, &error));
  g_assert_cmpuint(added, >, 0);
  ro.pseudo_run = prun;
  g_assert_true(fth_active_round(store, &ro, NULL, NULL, &res, &error));
  g_assert_no_error(error);
  g_assert_cmpuint(res.n_pseudo, ==, added);
  g_assert_cmpuint(res.n_labels, ==, N_LABELED + 5);

  /* As a job, from the checkpoint the last round wrote. */
  ro.pseudo_run = 0;
  g_autoptr(FthJob) job = fth_active_round_job_new(store, &ro);
  g_assert_true(fth_job_run_sync(job, &error));
  g_assert_no_error(error);
  g_autoptr(GPtrArray) rounds = fth_store_list_runs(store, "active-round", &error);
  g_assert_cmpuint(rounds->len, ==, 4);
}

static void
test_head_mc(void)
{
  /* Two items, 3-D embeddings, 2 classes. Without dropout every pass is softmax(W h + b). */
  const float emb[6] = {1, 0, 2, 0.5f, 1, 0};
  const float w[6] = {1, -1, 0.5f, 0, 2, -1};
  const float b[2] = {0.1f, -0.2f};
  float mc[3 * 2 * 2];
  fth_active_head_mc(emb, 2, 3, w, b, 2, 0.0f, 3, 9, mc);
  /* Item 0: z = (1 + 1 + .1, -2 - .2) = (2.1, -2.2); item 1: (.5 - 1 + .1, 2 - .2) = (-.4, 1.8). */
  double p00 = 1.0 / (1.0 + exp(-2.2 - 2.1)), p10 = 1.0 / (1.0 + exp(1.8 + 0.4));
  for (int t = 0; t < 3; t++) {
    g_assert_cmpfloat_with_epsilon(mc[(t * 2 + 0) * 2], p00, 1e-6);
    g_assert_cmpfloat_with_epsilon(mc[(t * 2 + 1) * 2], p10, 1e-6);
  }
  float s[2];
  fth_acq_bald(mc, 3, 2, 2, s, NULL);
  g_assert_cmpfloat_with_epsilon(s[0], 0.0, 1e-6);
  g_assert_cmpfloat_with_epsilon(s[1], 0.0, 1e-6);

  /* With dropout 0.5 each kept unit is doubled: every pass's logits are those of a masked,
   * doubled h, so pass probabilities take one of the 2^3 mask values; passes differ, and the
   * same seed repeats them. */
  float a[16 * 2 * 2], a2[16 * 2 * 2];
  fth_active_head_mc(emb, 2, 3, w, b, 2, 0.5f, 16, 9, a);
  fth_active_head_mc(emb, 2, 3, w, b, 2, 0.5f, 16, 9, a2);
  g_assert_cmpmem(a, sizeof a, a2, sizeof a2);
  int distinct = 0;
  for (int t = 1; t < 16; t++)
    distinct += a[t * 4] != a[0];
  g_assert_cmpint(distinct, >, 0);
  for (int t = 0; t < 16; t++) {
    /* Item 0's class-0 logit minus class-1 logit for some mask m: (1*m0 + 2*.5*m2... ) doubled. */
    gboolean matches = FALSE;
    for (int mask = 0; mask < 8; mask++) {
      double h[3];
      for (int j = 0; j < 3; j++)
        h[j] = (mask >> j & 1) ? 2.0 * emb[j] : 0.0;
      double z0 = w[0] * h[0] + w[1] * h[1] + w[2] * h[2] + b[0];
      double z1 = w[3] * h[0] + w[4] * h[1] + w[5] * h[2] + b[1];
      matches |= fabs(a[t * 4] - 1.0 / (1.0 + exp(z1 - z0))) < 1e-5;
    }
    g_assert_true(matches);
  }
  fth_acq_bald(a, 16, 2, 2, s, NULL);
  g_assert_cmpfloat(s[0], >, 0.0);
}

static GArray *
simulate(FthAcquisition strategy)
{
  g_autofree int32_t *labels = g_new(int32_t, N_ITEMS);
  for (int i = 0; i < N_ITEMS; i++)
    labels[i] = i % N_CLASSES;
  /* Pool: the first 180 items; test: the last 60. */
  uint32_t test[60];
  for (int i = 0; i < 60; i++)
    test[i] = (uint32_t)(180 + i);
  FthSamples s = {images, labels, NULL, N_ITEMS, 1, S, S};
  FthActiveTrainerOptions to;
  fth_active_trainer_options_init(&to);
  to.recipe = recipe_path;
  to.min_steps = 10;
  to.seed = 4;
  g_autoptr(GError) error = NULL;
  g_autoptr(FthActiveTrainer) at = fth_active_trainer_new(&s, test, 60, N_CLASSES, &to, &error);
  g_assert_no_error(error);
  g_assert_cmpint(fth_active_trainer_embedding_dim(at), ==, 16);
  FthAlModel model = fth_active_trainer_model(at);
  FthAlOptions opt;
  fth_al_options_init(&opt);
  opt.acq.strategy = strategy;
  opt.acq.batch = 10;
  opt.acq.seed = 2;
  opt.start = 10;
  opt.rounds = 2;
  opt.mc_passes = 4;
  opt.pseudo_threshold = 0.9;
  GArray *rounds = g_array_new(FALSE, FALSE, sizeof(FthAlRound));
  g_assert_true(fth_al_simulate(&model, at, labels, 180, &opt, rounds, &error));
  g_assert_no_error(error);
  return rounds;
}

static void
test_simulate_with_trainer(void)
{
  const FthAcquisition strategies[3] = {FTH_ACQ_ENTROPY, FTH_ACQ_BALD, FTH_ACQ_HYBRID};
  for (int si = 0; si < 3; si++) {
    g_autoptr(GArray) a = simulate(strategies[si]);
    g_autoptr(GArray) b = simulate(strategies[si]);
    g_assert_cmpuint(a->len, ==, 3);
    for (guint r = 0; r < a->len; r++) {
      FthAlRound *ra = &g_array_index(a, FthAlRound, r), *rb = &g_array_index(b, FthAlRound, r);
      g_assert_cmpuint(ra->n_labels, ==, 10 + 10 * r);
      g_assert_cmpfloat(ra->accuracy, ==, rb->accuracy);
      g_assert_cmpuint(ra->n_pseudo, ==, rb->n_pseudo);
    }
    /* 30 labels of bars: well above chance (1/3). */
    g_assert_cmpfloat(g_array_index(a, FthAlRound, 2).accuracy, >, 0.6);
  }
}

/* The trainer-backed fit with pseudo-labels at weight 0 predicts as the fit on the human labels
 * alone (whole-set batches; the recipe has no dropout or batch norm); at weight 1 the
 * pseudo-labels, all wrong, change it. */
static void
test_fit_pseudo_weight(void)
{
  enum { HUMAN = 20, PSEUDO = 20, TEST = 60 };
  g_autofree int32_t *truth = g_new(int32_t, N_ITEMS);
  for (int i = 0; i < N_ITEMS; i++)
    truth[i] = i % N_CLASSES;
  uint32_t idx[HUMAN + PSEUDO], test[TEST];
  int32_t fit_labels[HUMAN + PSEUDO];
  float w0[HUMAN + PSEUDO], w1[HUMAN + PSEUDO];
  for (int i = 0; i < HUMAN + PSEUDO; i++) {
    idx[i] = (uint32_t)i;
    fit_labels[i] = i < HUMAN ? truth[i] : (truth[i] + 1) % N_CLASSES;
    w0[i] = i < HUMAN ? 1.0f : 0.0f;
    w1[i] = 1.0f;
  }
  for (int i = 0; i < TEST; i++)
    test[i] = (uint32_t)(N_ITEMS - TEST + i);
  FthSamples s = {images, truth, NULL, N_ITEMS, 1, S, S};
  FthActiveTrainerOptions to;
  fth_active_trainer_options_init(&to);
  to.recipe = recipe_path;
  to.batch = 64;
  to.min_steps = 10;
  to.seed = 6;
  float probs[3][TEST * N_CLASSES];
  const float *weights[3] = {w0, NULL, w1};
  for (int run = 0; run < 3; run++) {
    g_autoptr(GError) error = NULL;
    g_autoptr(FthActiveTrainer) at = fth_active_trainer_new(&s, test, TEST, N_CLASSES, &to, &error);
    g_assert_no_error(error);
    FthAlModel m = fth_active_trainer_model(at);
    size_t n = run == 1 ? HUMAN : HUMAN + PSEUDO;
    g_assert_true(m.fit(at, idx, fit_labels, weights[run], n, 0, &error));
    g_assert_no_error(error);
    g_assert_true(m.predict(at, test, TEST, probs[run], NULL, 0, NULL, &error));
    g_assert_no_error(error);
  }
  double zero_vs_none = 0, one_vs_none = 0;
  for (int k = 0; k < TEST * N_CLASSES; k++) {
    zero_vs_none = fmax(zero_vs_none, fabs(probs[0][k] - probs[1][k]));
    one_vs_none = fmax(one_vs_none, fabs(probs[2][k] - probs[1][k]));
  }
  g_test_message("pseudo weight 0 vs none: %.3g apart; weight 1: %.3g", zero_vs_none, one_vs_none);
  g_assert_cmpfloat(zero_vs_none, <=, 1e-5);
  g_assert_cmpfloat(one_vs_none, >, 1e-3);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  tmp_root = g_dir_make_tmp("fth-active-model-XXXXXX", NULL);
  recipe_path = g_build_filename(tmp_root, "tiny.json", NULL);
  g_assert_true(g_file_set_contents(recipe_path, FTH_TEST_TINY_CNN_RECIPE, -1, NULL));
  images = fth_test_bars_pixels(&bars);
  g_test_add_func("/active/model/head-mc", test_head_mc);
  g_test_add_func("/active/model/prelabel", test_prelabel);
  g_test_add_func("/active/model/round", test_round);
  g_test_add_func("/active/model/simulate-with-trainer", test_simulate_with_trainer);
  g_test_add_func("/active/model/fit-pseudo-weight", test_fit_pseudo_weight);
  int rc = g_test_run();
  fth_test_rmtree(tmp_root);
  g_free(tmp_root);
  g_free(recipe_path);
  g_free(images);
  return rc;
}
