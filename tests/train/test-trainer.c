/* The trainer end to end on a synthetic project (an IDX file of 8x8 images with bars whose row
 * gives the class): the loss goes down, a fixed seed repeats bit for bit, a run stopped
 * mid-epoch and resumed ends with the weights of one that never stopped (dropout included), a
 * NaN loss stops with the last good checkpoint kept, checkpoints round-trip, the memory budget
 * picks the batch. */
#include <fathom/safetensors.h>
#include <fathom/train.h>
#include <math.h>
#include <string.h>

#include "fixtures.h"

enum { N_ITEMS = 240, S = 8, N_CLASSES = 3 };

static const char *tiny_recipe =
  "{\"name\": \"tiny\", \"input\": {\"shape\": [1, 8, 8]},"
  " \"layers\": [{\"type\": \"conv2d\", \"out_channels\": 4, \"kernel\": 3, \"padding\": 1},"
  "  {\"type\": \"relu\"}, {\"type\": \"max_pool2d\", \"kernel\": 2}, {\"type\": \"flatten\"},"
  "  {\"type\": \"dropout\", \"p\": 0.2},"
  "  {\"type\": \"linear\", \"out_features\": 16}, {\"type\": \"relu\"},"
  "  {\"type\": \"linear\", \"out_features\": \"classes\"}],"
  " \"train\": {\"optimizer\": \"sgd\", \"lr\": 0.05, \"momentum\": 0.9, \"batch\": 16,"
  "  \"epochs\": 3, \"schedule\": \"cosine\", \"warmup_steps\": 5}}";

static char *tmp_root;
static char *recipe_path;

static const FthTestBars bars = { .n_items = N_ITEMS, .size = S, .n_classes = N_CLASSES,
                                  .seed = 5, .noise_max = 60, .bar_min = 180, .two_bars = TRUE };
static const char *const class_names[N_CLASSES] = { "top", "middle", "bottom" };

/* A project with N_ITEMS IDX records and their classes; returns its directory. */
static char *
make_project(const char *name)
{
  char *dir = g_build_filename(tmp_root, name, NULL);
  g_object_unref(fth_test_bars_project_new(dir, &bars, class_names, N_ITEMS, NULL, NULL));
  return dir;
}

static GByteArray *
weights_of(const char *ckpt_dir)
{
  GError *error = NULL;
  g_autoptr(FthCheckpointMeta) m = fth_checkpoint_load_meta(ckpt_dir, &error);
  g_assert_no_error(error);
  g_autofree char *path = g_build_filename(ckpt_dir, m->weights_file, NULL);
  FthSafetensors *st = fth_safetensors_open(path, &error);
  g_assert_no_error(error);
  GByteArray *all = g_byte_array_new();
  for (size_t i = 0; i < fth_safetensors_n_tensors(st); i++) {
    const FthStTensor *t = fth_safetensors_nth(st, i);
    g_byte_array_append(all, (const guint8 *)t->name, (guint)strlen(t->name));
    g_byte_array_append(all, t->data, (guint)t->nbytes);
  }
  fth_safetensors_free(st);
  return all;
}

typedef struct {
  double first_loss, last_loss;
  int epochs_seen;
} Losses;

static void
record(const FthTrainProgress *p, gpointer data)
{
  Losses *l = data;
  if (!p->epoch_end)
    return;
  if (l->epochs_seen++ == 0)
    l->first_loss = p->train_loss;
  l->last_loss = p->train_loss;
}

static const char *init_weights;

static gboolean
train(const char *project, const char *ckpt, int epochs, int64_t stop, gboolean resume,
      double lr, Losses *losses, FthTrainResult *res, GError **error)
{
  g_autoptr(FthStore) store = fth_store_open(project, error);
  g_assert_nonnull(store);
  FthTrainOptions o;
  fth_train_options_init(&o);
  o.recipe = recipe_path;
  o.epochs = epochs;
  o.seed = 42;
  o.checkpoint_dir = ckpt;
  o.stop_after_steps = stop;
  o.resume = resume;
  o.lr = lr;
  o.init_weights = init_weights;
  o.progress = record;
  o.progress_data = losses;
  return fth_train(store, &o, res, error);
}

static void
test_loss_down_and_metrics(void)
{
  g_autofree char *project = make_project("learn");
  g_autofree char *ckpt = g_build_filename(project, "ckpt", NULL);
  Losses l = {0};
  FthTrainResult res;
  GError *error = NULL;
  g_assert_true(train(project, ckpt, 6, 0, FALSE, 0, &l, &res, &error));
  g_assert_no_error(error);
  g_assert_cmpint(l.epochs_seen, ==, 6);
  g_assert_cmpfloat(l.last_loss, <, 0.5 * l.first_loss);
  g_assert_cmpfloat(res.test_acc, >, 0.9);
  g_assert_cmpint(res.epochs_run, ==, 6);
  /* The store has the run, its per-epoch metrics and the split the trainer made. */
  g_autoptr(FthStore) store = fth_store_open(project, &error);
  g_autoptr(FthRun) run = fth_store_get_run(store, res.run_id, &error);
  g_assert_no_error(error);
  g_assert_cmpint(run->state, ==, FTH_RUN_DONE);
  g_assert_nonnull(strstr(run->summary_json, "\"confusion\""));
  g_autoptr(GPtrArray) acc = fth_store_list_metrics(store, res.run_id, "val_acc", &error);
  g_assert_cmpuint(acc->len, ==, 6);
  FthItemFilter f = FTH_ITEM_FILTER_INIT;
  f.split = FTH_SPLIT_TEST;
  gint64 n_test;
  g_assert_true(fth_store_count_items(store, &f, &n_test, &error));
  g_assert_cmpint(n_test, ==, 24); /* round(80 * 0.1) per class */
  fth_train_result_clear(&res);
}

static void
test_determinism_and_resume(void)
{
  g_autofree char *project = make_project("resume");
  g_autofree char *a = g_build_filename(project, "a", NULL);
  g_autofree char *b = g_build_filename(project, "b", NULL);
  g_autofree char *c = g_build_filename(project, "c", NULL);
  Losses l = {0};
  FthTrainResult res;
  GError *error = NULL;
  g_assert_true(train(project, a, 3, 0, FALSE, 0, &l, &res, &error));
  g_assert_no_error(error);
  int64_t total = res.steps;
  fth_train_result_clear(&res);
  g_assert_true(train(project, b, 3, 0, FALSE, 0, &l, &res, &error));
  fth_train_result_clear(&res);
  g_autoptr(GByteArray) wa = weights_of(a);
  g_autoptr(GByteArray) wb = weights_of(b);
  g_assert_cmpmem(wa->data, wa->len, wb->data, wb->len);

  /* Stop in the middle of epoch 2, then resume to the end. */
  int64_t stop = total / 2 + 1;
  g_assert_true(train(project, c, 3, stop, FALSE, 0, &l, &res, &error));
  g_assert_true(res.stopped);
  g_assert_cmpint(res.steps, ==, stop);
  fth_train_result_clear(&res);
  g_autoptr(FthCheckpointMeta) mid = fth_checkpoint_load_meta(c, &error);
  g_assert_cmpint(mid->step, ==, stop);
  g_autoptr(GByteArray) wmid = weights_of(c);
  g_assert_false(wmid->len == wa->len && memcmp(wmid->data, wa->data, wa->len) == 0);
  /* No --epochs: the checkpoint remembers the run's length. */
  g_assert_true(train(project, c, 0, 0, TRUE, 0, &l, &res, &error));
  g_assert_no_error(error);
  g_assert_cmpint(res.steps, ==, total);
  fth_train_result_clear(&res);
  g_autoptr(GByteArray) wc = weights_of(c);
  g_assert_cmpmem(wa->data, wa->len, wc->data, wc->len);
}

static void
test_nan_stop(void)
{
  g_autofree char *project = make_project("nan");
  g_autofree char *ckpt = g_build_filename(project, "ckpt", NULL);
  Losses l = {0};
  FthTrainResult res;
  GError *error = NULL;
  g_assert_true(train(project, ckpt, 1, 0, FALSE, 0, &l, &res, &error));
  int64_t good_step = res.steps;
  fth_train_result_clear(&res);
  g_autoptr(GByteArray) good = weights_of(ckpt);
  /* Resume for two more epochs with a learning rate that blows the weights up. */
  g_assert_false(train(project, ckpt, 3, 0, TRUE, 1e30, &l, &res, &error));
  g_assert_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_NUMERIC);
  g_assert_nonnull(strstr(error->message, "the loss is"));
  g_autofree char *kept = g_strdup_printf("the last good checkpoint (epoch 1, step %d)",
                                          (int)good_step);
  if (strstr(error->message, kept) == NULL)
    g_error("message '%s' lacks '%s'", error->message, kept);
  g_clear_error(&error);
  g_autoptr(FthStore) store = fth_store_open(project, &error);
  g_autoptr(FthRun) run = fth_store_get_run(store, res.run_id, &error);
  g_assert_cmpint(run->state, ==, FTH_RUN_FAILED);
  fth_train_result_clear(&res);
  g_autoptr(FthCheckpointMeta) m = fth_checkpoint_load_meta(ckpt, &error);
  g_assert_no_error(error);
  g_assert_cmpint(m->step, ==, good_step);
  g_autoptr(GByteArray) after = weights_of(ckpt);
  g_assert_cmpmem(good->data, good->len, after->data, after->len);
}

/* Fine-tuning start: with a vanishing learning rate, a run initialized from another run's
 * weights ends where that run ended, and its first loss is the trained one, not chance. */
static void
test_init_from_weights(void)
{
  g_autofree char *project = make_project("init");
  g_autofree char *a = g_build_filename(project, "a", NULL);
  g_autofree char *b = g_build_filename(project, "b", NULL);
  Losses la = {0}, lb = {0};
  FthTrainResult res;
  GError *error = NULL;
  g_assert_true(train(project, a, 4, 0, FALSE, 0, &la, &res, &error));
  fth_train_result_clear(&res);
  g_autoptr(FthCheckpointMeta) m = fth_checkpoint_load_meta(a, &error);
  g_autofree char *wa = g_build_filename(a, m->weights_file, NULL);
  init_weights = wa;
  gboolean ok = train(project, b, 1, 0, FALSE, 1e-12, &lb, &res, &error);
  init_weights = NULL;
  g_assert_no_error(error);
  g_assert_true(ok);
  fth_train_result_clear(&res);
  g_assert_cmpfloat(lb.first_loss, <, 0.5 * la.first_loss);
  g_autoptr(FthCheckpointMeta) mb = fth_checkpoint_load_meta(b, &error);
  g_autofree char *wb = g_build_filename(b, mb->weights_file, NULL);
  FthSafetensors *sa = fth_safetensors_open(wa, &error), *sb = fth_safetensors_open(wb, &error);
  g_assert_no_error(error);
  g_assert_cmpuint(fth_safetensors_n_tensors(sa), ==, fth_safetensors_n_tensors(sb));
  for (size_t i = 0; i < fth_safetensors_n_tensors(sa); i++) {
    const FthStTensor *ta = fth_safetensors_nth(sa, i);
    const FthStTensor *tb = fth_safetensors_find(sb, ta->name);
    g_assert_nonnull(tb);
    g_assert_cmpuint(ta->nbytes, ==, tb->nbytes);
    for (size_t k = 0; k < ta->nbytes / 4; k++) {
      float x, y;
      memcpy(&x, (const char *)ta->data + 4 * k, 4);
      memcpy(&y, (const char *)tb->data + 4 * k, 4);
      g_assert_cmpfloat_with_epsilon(x, y, 1e-6 * (1 + fabs(x)));
    }
  }
  fth_safetensors_free(sa);
  fth_safetensors_free(sb);
}

static void
test_weights_round_trip(void)
{
  GError *error = NULL;
  g_autoptr(FthRecipe) r = fth_recipe_parse(tiny_recipe, -1, "tiny.json", NULL, &error);
  g_assert_no_error(error);
  g_autoptr(FthTrainer) t1 = fth_trainer_new(r, 3, NULL, &error);
  g_assert_no_error(error);
  FthTrainerConfig cfg = *fth_trainer_config(t1);
  cfg.seed = 999; /* different initial weights */
  g_autoptr(FthTrainer) t2 = fth_trainer_new(r, 3, &cfg, &error);
  g_autofree char *dir = g_build_filename(tmp_root, "rt", NULL);
  char *labels[] = {"a", "b", "c", NULL};
  FthCheckpointMeta meta = {.recipe_json = r->json, .labels = labels, .n_labels = 3,
                            .mean = r->mean, .std = r->std, .n_norm = r->n_norm, .step = 7,
                            .batch = 16, .best_metric = INFINITY};
  g_assert_true(fth_checkpoint_save(dir, &meta, fth_trainer_model(t1)->graph,
                                    fth_trainer_optimizer(t1), &error));
  g_assert_no_error(error);
  g_autoptr(FthCheckpointMeta) back = fth_checkpoint_load_meta(dir, &error);
  g_assert_no_error(error);
  g_assert_cmpint(back->step, ==, 7);
  g_assert_cmpint(back->n_labels, ==, 3);
  g_assert_cmpstr(back->labels[2], ==, "c");
  g_autofree char *wp = g_build_filename(dir, back->weights_file, NULL);
  int n_loaded = 0;
  FthGraph *g1 = fth_trainer_model(t1)->graph, *g2 = fth_trainer_model(t2)->graph;
  g_assert_true(fth_load_weights(g2, wp, TRUE, &n_loaded, &error));
  g_assert_cmpint(n_loaded, ==, fth_graph_n_params(g1));
  for (int i = 0; i < fth_graph_n_params(g1); i++) {
    FthTensor a, b;
    g_assert_cmpint(fth_graph_tensor(g1, fth_graph_param(g1, i), &a), ==, FTH_STATUS_OK);
    g_assert_cmpint(fth_graph_tensor(g2, fth_graph_param(g2, i), &b), ==, FTH_STATUS_OK);
    g_assert_cmpmem(a.data, fth_tensor_nbytes(&a), b.data, fth_tensor_nbytes(&b));
  }
  /* A model of another shape is refused with the tensor named. */
  g_autofree char *other_json = g_strdup(tiny_recipe);
  char *p = strstr(other_json, "\"out_features\": 16");
  memcpy(p, "\"out_features\": 17", 18);
  g_autoptr(FthRecipe) r3 = fth_recipe_parse(other_json, -1, "tiny17.json", NULL, &error);
  g_autoptr(FthTrainer) t3 = fth_trainer_new(r3, 3, NULL, &error);
  g_assert_false(fth_load_weights(fth_trainer_model(t3)->graph, wp, TRUE, NULL, &error));
  g_assert_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_CHECKPOINT);
  g_assert_nonnull(strstr(error->message, "'5.weight'"));
  g_clear_error(&error);
}

static void
test_batch_for_memory(void)
{
  GError *error = NULL;
  g_autofree char *path = fth_recipe_find("fmnist-cnn");
  g_autoptr(FthRecipe) r = fth_recipe_load(path, NULL, &error);
  g_assert_no_error(error);
  int b1 = 0, b2 = 0;
  g_assert_true(fth_trainer_batch_for_memory(r, 10, 0.01, &b1, &error));
  g_assert_true(fth_trainer_batch_for_memory(r, 10, 0.02, &b2, &error));
  g_assert_no_error(error);
  g_assert_cmpint(b1, >=, 1);
  /* Affine in the batch: twice the budget holds at least twice the batch. */
  g_assert_cmpint(b2, >=, 2 * b1 - 1);
  g_assert_false(fth_trainer_batch_for_memory(r, 10, 1e-12, &b1, &error));
  g_assert_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_INVALID);
  g_assert_nonnull(strstr(error->message, "per sample"));
  g_clear_error(&error);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  tmp_root = g_dir_make_tmp("fth-trainer-XXXXXX", NULL);
  recipe_path = g_build_filename(tmp_root, "tiny.json", NULL);
  g_assert_true(g_file_set_contents(recipe_path, tiny_recipe, -1, NULL));
  g_test_add_func("/trainer/loss-down-and-metrics", test_loss_down_and_metrics);
  g_test_add_func("/trainer/determinism-and-resume", test_determinism_and_resume);
  g_test_add_func("/trainer/nan-stop", test_nan_stop);
  g_test_add_func("/trainer/init-from-weights", test_init_from_weights);
  g_test_add_func("/trainer/weights-round-trip", test_weights_round_trip);
  g_test_add_func("/trainer/batch-for-memory", test_batch_for_memory);
  int rc = g_test_run();
  train_test_rmtree(tmp_root);
  g_free(tmp_root);
  g_free(recipe_path);
  return rc;
}
