/* test-training-matrix.c: the training page's confusion matrix under Xvfb for any run and
 * epoch: two tiny runs trained (2 epochs, then 1), the page shows the newest run's test matrix
 * first; picking the older run and its epoch 1, epoch 2 or test matrix shows the counts the
 * trainer stored; a cell of a matrix whose per-item predictions are not stored (an older epoch,
 * or another run than the predictions' model) says so instead of listing items; a run started
 * from the page is followed to its test matrix unless an older matrix is pinned. */
#include "fth-test-project.h"
#include "fth-training-page.h"
#include "workbench-test-util.h"

#include <adwaita.h>
#include <fathom/train.h>
#include <json-glib/json-glib.h>
#include <string.h>

#define TIMEOUT_MS 20000

static gboolean
flag_set(gpointer data)
{
  return *(gboolean *)data;
}

static void
set_flag(gpointer instance, gpointer data)
{
  *(gboolean *)data = TRUE;
}

/* Counts the listings; the matrices clicked here are all test matrices or the last epoch's. */
static void
count_items_shown(FthTrainingPage *page, const char *truth, const char *predicted, int split,
                  gpointer data)
{
  g_assert_true(split == FTH_SPLIT_TEST || split == FTH_SPLIT_VAL);
  g_assert_cmpint(split, ==,
                  fth_training_page_get_matrix_epoch(page) == 0 ? FTH_SPLIT_TEST : FTH_SPLIT_VAL);
  (*(int *)data)++;
}

typedef struct {
  FthTrainingPage *page;
  gint64 run;
} Wanted;

static gboolean
shows_test_of(gpointer data)
{
  const Wanted *wanted = data;
  return fth_training_page_get_shown_run(wanted->page) == wanted->run &&
         fth_training_page_get_matrix_epoch(wanted->page) == 0;
}

/* Waits until PAGE shows RUN's test matrix (its default). */
static void
wait_for_test_matrix(FthTrainingPage *page, gint64 run)
{
  Wanted wanted = { page, run };
  g_assert_true(fth_test_spin_until(shows_test_of, &wanted, TIMEOUT_MS));
}

/* Trains RECIPE for EPOCHS into a run of its own; returns the run's id. */
static gint64
train(FthStore *store, const char *root, const char *recipe, int epochs, const char *name)
{
  g_autoptr(GError) error = NULL;
  FthTrainOptions o;
  fth_train_options_init(&o);
  o.recipe = recipe;
  o.epochs = epochs;
  o.seed = 3;
  g_autofree char *ckpt = g_build_filename(root, "models", name, NULL);
  o.checkpoint_dir = ckpt;
  FthTrainResult result = { 0 };
  g_assert_true(fth_train(store, &o, &result, &error));
  g_assert_no_error(error);
  gint64 id = result.run_id;
  fth_train_result_clear(&result);
  return id;
}

/* RUN's stored matrix: the test one for EPOCH 0, else validation after EPOCH. */
static JsonObject *
stored_matrix(FthStore *store, gint64 run, int epoch)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) artifacts = fth_store_list_artifacts(store, run, &error);
  g_assert_no_error(error);
  for (guint i = 0; i < artifacts->len; i++) {
    const FthArtifact *artifact = g_ptr_array_index(artifacts, i);
    if (g_strcmp0(artifact->kind, "confusion") != 0)
      continue;
    g_autoptr(JsonNode) node = json_from_string(artifact->meta_json, &error);
    g_assert_no_error(error);
    JsonObject *o = json_node_get_object(node);
    gboolean test = g_strcmp0(json_object_get_string_member(o, "split"), "test") == 0;
    if (epoch == 0 ? !test : test || json_object_get_int_member(o, "epoch") != epoch)
      continue;
    return json_object_ref(o);
  }
  g_assert_not_reached();
}

/* The page's matrix holds RUN's stored matrix of EPOCH, cell by cell, and each class's
 * precision, recall and F1 as stored. */
static void
assert_shows(FthTrainingPage *page, FthStore *store, gint64 run, int epoch)
{
  g_autoptr(JsonObject) stored = stored_matrix(store, run, epoch);
  JsonArray *labels = json_object_get_array_member(stored, "labels");
  JsonArray *counts = json_object_get_array_member(stored, "counts");
  FthConfusionMatrix *matrix = fth_training_page_get_confusion_matrix(page);
  guint n = json_array_get_length(labels);
  g_assert_cmpint(fth_training_page_get_shown_run(page), ==, run);
  g_assert_cmpint(fth_training_page_get_matrix_epoch(page), ==, epoch);
  g_assert_cmpuint(fth_confusion_matrix_get_n_classes(matrix), ==, n);
  gint64 total = 0;
  for (guint t = 0; t < n; t++) {
    g_assert_cmpstr(fth_confusion_matrix_get_label(matrix, t), ==,
                    json_array_get_string_element(labels, t));
    g_assert_cmpfloat_with_epsilon(
      fth_confusion_matrix_get_precision(matrix, t),
      json_array_get_double_element(json_object_get_array_member(stored, "precision"), t), 1e-9);
    g_assert_cmpfloat_with_epsilon(
      fth_confusion_matrix_get_recall(matrix, t),
      json_array_get_double_element(json_object_get_array_member(stored, "recall"), t), 1e-9);
    g_assert_cmpfloat_with_epsilon(
      fth_confusion_matrix_get_f1(matrix, t),
      json_array_get_double_element(json_object_get_array_member(stored, "f1"), t), 1e-9);
    JsonArray *row = json_array_get_array_element(counts, t);
    for (guint p = 0; p < n; p++) {
      g_assert_cmpint(fth_confusion_matrix_get_count(matrix, t, p), ==,
                      json_array_get_int_element(row, p));
      total += fth_confusion_matrix_get_count(matrix, t, p);
    }
  }
  g_assert_cmpint(total, >, 0);
}

/* Whether a label of PAGE says TEXT. */
static gboolean
page_says(FthTrainingPage *page, const char *text)
{
  g_autoptr(GPtrArray) labels = fth_test_find_widgets(GTK_WIDGET(page), GTK_TYPE_LABEL);
  for (guint i = 0; i < labels->len; i++)
    if (strstr(gtk_label_get_text(g_ptr_array_index(labels, i)), text) != NULL)
      return TRUE;
  return FALSE;
}

static void
test_any_run_and_epoch(void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *root = g_dir_make_tmp("fathom-training-matrix-XXXXXX", &error);
  g_assert_no_error(error);
  g_autofree char *dir = g_build_filename(root, "project", NULL);
  const FthTestBars bars = { .n_items = 90, .size = 8, .n_classes = 3, .seed = 7,
                             .noise_max = 60, .bar_min = 180, .two_bars = FALSE };
  const char *const names[] = { "top", "middle", "bottom" };
  g_autoptr(FthStore) store = fth_test_bars_project_new(dir, &bars, names, 90, NULL, NULL);
  g_autofree char *recipe = g_build_filename(root, "tiny.json", NULL);
  g_assert_true(g_file_set_contents(recipe, FTH_TEST_TINY_CNN_RECIPE, -1, &error));
  gint64 older = train(store, root, recipe, 2, "older");
  gint64 newer = train(store, root, recipe, 1, "newer");
  /* The items' predictions, by the newer run's model. */
  g_autofree char *newer_checkpoint = g_build_filename(root, "models", "newer", NULL);
  FthPredictOptions po = { .checkpoint_dir = newer_checkpoint, .no_embeddings = TRUE };
  gint64 predict_run;
  gsize n_predicted = 0;
  g_assert_true(fth_predict(store, &po, &predict_run, &n_predicted, &error));
  g_assert_no_error(error);
  g_assert_cmpuint(n_predicted, ==, 90);

  GtkWindow *window = GTK_WINDOW(gtk_window_new());
  gtk_window_set_default_size(window, 900, 900);
  FthTrainingPage *page = g_object_new(FTH_TYPE_TRAINING_PAGE, NULL);
  gtk_window_set_child(window, GTK_WIDGET(page));
  gtk_window_present(window);
  int shown_items = 0;
  g_signal_connect(page, "show-items", G_CALLBACK(count_items_shown), &shown_items);

  /* The newest run's test matrix by default. */
  fth_training_page_set_project(page, store, NULL);
  wait_for_test_matrix(page, newer);
  g_assert_cmpuint(fth_training_page_get_n_runs(page), ==, 2);
  assert_shows(page, store, newer, 0);

  /* The older run: its test matrix first, then any epoch's validation matrix. */
  g_assert_true(fth_training_page_select_run(page, older));
  wait_for_test_matrix(page, older);
  assert_shows(page, store, older, 0);
  g_assert_true(fth_training_page_select_matrix(page, 1));
  assert_shows(page, store, older, 1);
  g_assert_true(fth_training_page_select_matrix(page, 2));
  assert_shows(page, store, older, 2);
  g_assert_false(fth_training_page_select_matrix(page, 3));
  g_assert_true(fth_training_page_select_matrix(page, 0));
  assert_shows(page, store, older, 0);

  /* The stored predictions are another model's (the newer run's): the click says so and lists
   * nothing. */
  FthConfusionMatrix *matrix = fth_training_page_get_confusion_matrix(page);
  g_signal_emit_by_name(matrix, "cell-activated", 0u, 1u);
  g_assert_cmpint(shown_items, ==, 0);
  g_assert_true(page_says(page, "another model"));

  /* The newer run's test matrix lists its cell's items (split by its own predictions). */
  g_assert_true(fth_training_page_select_run(page, newer));
  wait_for_test_matrix(page, newer);
  assert_shows(page, store, newer, 0);
  g_signal_emit_by_name(matrix, "cell-activated", 0u, 1u);
  g_assert_cmpint(shown_items, ==, 1);

  gtk_window_destroy(window);
  g_clear_object(&store);
  fth_test_rmtree(root);
}

/* An older epoch of the newest run: its per-item predictions are not stored. */
static void
test_older_epoch_not_listed(void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *root = g_dir_make_tmp("fathom-training-matrix-XXXXXX", &error);
  g_assert_no_error(error);
  g_autofree char *dir = g_build_filename(root, "project", NULL);
  const FthTestBars bars = { .n_items = 60, .size = 8, .n_classes = 2, .seed = 9,
                             .noise_max = 60, .bar_min = 180, .two_bars = FALSE };
  const char *const names[] = { "top", "middle" };
  g_autoptr(FthStore) store = fth_test_bars_project_new(dir, &bars, names, 60, NULL, NULL);
  g_autofree char *recipe = g_build_filename(root, "tiny.json", NULL);
  g_assert_true(g_file_set_contents(recipe, FTH_TEST_TINY_CNN_RECIPE, -1, &error));
  gint64 run = train(store, root, recipe, 2, "run");

  GtkWindow *window = GTK_WINDOW(gtk_window_new());
  FthTrainingPage *page = g_object_new(FTH_TYPE_TRAINING_PAGE, NULL);
  gtk_window_set_child(window, GTK_WIDGET(page));
  gtk_window_present(window);
  int shown_items = 0;
  g_signal_connect(page, "show-items", G_CALLBACK(count_items_shown), &shown_items);
  fth_training_page_set_project(page, store, NULL);
  wait_for_test_matrix(page, run);
  assert_shows(page, store, run, 0);

  FthConfusionMatrix *matrix = fth_training_page_get_confusion_matrix(page);
  g_assert_true(fth_training_page_select_matrix(page, 1));
  assert_shows(page, store, run, 1);
  g_signal_emit_by_name(matrix, "cell-activated", 1u, 1u);
  g_assert_cmpint(shown_items, ==, 0);
  g_assert_true(page_says(page, "epoch 1 cannot be listed"));
  /* The last epoch is the final model's, as the test matrix is. */
  g_assert_true(fth_training_page_select_matrix(page, 2));
  g_signal_emit_by_name(matrix, "cell-activated", 1u, 1u);
  g_assert_cmpint(shown_items, ==, 1);

  gtk_window_destroy(window);
  g_clear_object(&store);
  fth_test_rmtree(root);
}

typedef struct {
  FthTrainingPage *page;
  gint64 newest; /* the run shown before the page's run began */
  int seen;      /* validation matrices of the page's run shown while it trained */
  int finished;  /* 1: succeeded, 2: failed */
} Live;

static void
live_matrix_shown(FthTrainingPage *page, gpointer data)
{
  Live *live = data;
  int epoch = fth_training_page_get_matrix_epoch(page);
  if (live->finished == 0 && fth_training_page_get_shown_run(page) > live->newest && epoch > 0)
    live->seen++;
}

static void
live_run_finished(FthTrainingPage *page, gboolean succeeded, gpointer data)
{
  ((Live *)data)->finished = succeeded ? 1 : 2;
}

static gboolean
live_test_shown(gpointer data)
{
  Live *live = data;
  return live->finished != 0 && fth_training_page_get_shown_run(live->page) > live->newest &&
         fth_training_page_get_matrix_epoch(live->page) == 0;
}

/* A run started from the page: unless the user pinned an older matrix, the page follows it
 * (each epoch's validation matrix as it is stored, then its test matrix); a pinned one stays. */
static void
test_follows_training(void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *root = g_dir_make_tmp("fathom-training-matrix-XXXXXX", &error);
  g_assert_no_error(error);
  g_autofree char *dir = g_build_filename(root, "project", NULL);
  /* 28 x 28, as the zoo's MLP takes them. */
  const FthTestBars bars = { .n_items = 150, .size = 28, .n_classes = 3, .seed = 11,
                             .noise_max = 60, .bar_min = 180, .two_bars = FALSE };
  const char *const names[] = { "top", "middle", "bottom" };
  g_autoptr(FthStore) store = fth_test_bars_project_new(dir, &bars, names, 150, NULL, NULL);

  GtkWindow *window = GTK_WINDOW(gtk_window_new());
  FthTrainingPage *page = g_object_new(FTH_TYPE_TRAINING_PAGE, NULL);
  gtk_window_set_child(window, GTK_WIDGET(page));
  gtk_window_present(window);
  Live live = { page, 0, 0, 0 };
  g_signal_connect(page, "matrix-shown", G_CALLBACK(live_matrix_shown), &live);
  g_signal_connect(page, "run-finished", G_CALLBACK(live_run_finished), &live);
  gboolean listed = FALSE;
  g_signal_connect(page, "runs-listed", G_CALLBACK(set_flag), &listed);
  fth_training_page_set_project(page, store, NULL);
  g_assert_true(fth_test_spin_until(flag_set, &listed, TIMEOUT_MS));

  /* Followed: the page's run, to its test matrix. */
  fth_training_page_select_recipe(page, "mlp");
  fth_training_page_set_hyperparameters(page, FTH_OPTIM_SGD, 0.05, 16);
  fth_training_page_set_epochs(page, 3);
  g_assert_true(fth_training_page_start(page));
  g_assert_true(fth_test_spin_until(live_test_shown, &live, 60000));
  g_assert_cmpint(live.finished, ==, 1);
  gint64 first = fth_training_page_get_shown_run(page);
  assert_shows(page, store, first, 0);
  /* Whether an epoch's matrix was read before the next epoch ended depends on the load. */
  g_test_message("validation matrices shown while training: %d", live.seen);

  /* Pinned: the first run's epoch 1 stays while another run trains and after it ends. */
  g_assert_true(fth_training_page_select_matrix(page, 1));
  live.newest = first;
  live.finished = 0;
  live.seen = 0;
  listed = FALSE;
  g_assert_true(fth_training_page_start(page));
  g_assert_true(fth_test_spin_until(flag_set, &live.finished, 60000));
  g_assert_true(fth_test_spin_until(flag_set, &listed, TIMEOUT_MS));
  fth_test_spin_for(500); /* a matrix read after the listing would have come */
  g_assert_cmpint(live.finished, ==, 1);
  g_assert_cmpint(live.seen, ==, 0);
  g_assert_cmpuint(fth_training_page_get_n_runs(page), ==, 2);
  assert_shows(page, store, first, 1);

  gtk_window_destroy(window);
  g_clear_object(&store);
  fth_test_rmtree(root);
}

int
main(int argc, char **argv)
{
  if (!fth_test_under_xvfb(argv[0]))
    return 77;
  gtk_test_init(&argc, &argv, NULL);
  adw_init();
  g_test_add_func("/training-matrix/any-run-and-epoch", test_any_run_and_epoch);
  g_test_add_func("/training-matrix/older-epoch-not-listed", test_older_epoch_not_listed);
  g_test_add_func("/training-matrix/follows-training", test_follows_training);
  return g_test_run();
}
