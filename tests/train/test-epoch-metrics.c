/* Per-epoch metrics in the store: fth_train stores the validation confusion matrix after every
 * epoch and the test one at the end (artifacts of kind "confusion"), with each class's
 * precision, recall and F1; they agree with the counts (recomputed here in float64) and with
 * the epoch's val_acc / val_macro_f1 metrics; `fathom runs DIR RUN` prints them. */
#include <fathom/train.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

#include "fixtures.h"

enum { N_ITEMS = 240, S = 8, N_CLASSES = 3, EPOCHS = 3 };

static const char *recipe_text =
  "{\"name\": \"tiny\", \"input\": {\"shape\": [1, 8, 8]},"
  " \"layers\": [{\"type\": \"flatten\"}, {\"type\": \"linear\", \"out_features\": 16},"
  "  {\"type\": \"relu\"}, {\"type\": \"linear\", \"out_features\": \"classes\"}],"
  " \"train\": {\"optimizer\": \"sgd\", \"lr\": 0.05, \"momentum\": 0.9, \"batch\": 16,"
  "  \"epochs\": 3}}";

static const char *const class_names[N_CLASSES] = {"top", "middle", "bottom"};

/* IDX records with a bright bar whose row gives the class, over noise that makes some of them
 * hard, so the matrices are not all diagonal. */
static void
make_project(const char *dir)
{
  const FthTestBars bars = { .n_items = N_ITEMS, .size = S, .n_classes = N_CLASSES,
                             .seed = g_test_rand_int(), .noise_max = 200, .bar_min = 120 };
  g_object_unref(fth_test_bars_project_new(dir, &bars, class_names, N_ITEMS, NULL, NULL));
}

static double
metric_at(GPtrArray *metrics, const char *name, double epoch)
{
  for (guint i = 0; i < metrics->len; i++) {
    FthMetric *m = g_ptr_array_index(metrics, i);
    if (strcmp(m->name, name) == 0 && m->epoch == epoch)
      return m->value;
  }
  g_error("no metric %s at epoch %g", name, epoch);
  return NAN;
}

/* Checks one stored matrix against its own counts; returns the total and fills acc and the
 * macro-F1 over the classes that occur. */
static gint64
check_matrix(JsonObject *o, double *acc, double *macro_f1)
{
  JsonArray *labels = json_object_get_array_member(o, "labels");
  JsonArray *counts = json_object_get_array_member(o, "counts");
  g_assert_cmpuint(json_array_get_length(labels), ==, N_CLASSES);
  for (int k = 0; k < N_CLASSES; k++)
    g_assert_cmpstr(json_array_get_string_element(labels, (guint)k), ==, class_names[k]);
  gint64 c[N_CLASSES][N_CLASSES], total = 0, diag = 0;
  for (int t = 0; t < N_CLASSES; t++)
    for (int p = 0; p < N_CLASSES; p++) {
      c[t][p] = json_array_get_int_element(json_array_get_array_element(counts, (guint)t), (guint)p);
      total += c[t][p];
      diag += t == p ? c[t][p] : 0;
    }
  double f1_sum = 0;
  int present = 0;
  for (int k = 0; k < N_CLASSES; k++) {
    gint64 row = 0, col = 0;
    for (int j = 0; j < N_CLASSES; j++) {
      row += c[k][j];
      col += c[j][k];
    }
    double prec = col ? (double)c[k][k] / (double)col : 0.0;
    double rec = row ? (double)c[k][k] / (double)row : 0.0;
    double f1 = prec + rec > 0 ? 2 * prec * rec / (prec + rec) : 0.0;
    g_assert_cmpfloat_with_epsilon(
      json_array_get_double_element(json_object_get_array_member(o, "precision"), (guint)k),
      prec, 1e-12);
    g_assert_cmpfloat_with_epsilon(
      json_array_get_double_element(json_object_get_array_member(o, "recall"), (guint)k), rec,
      1e-12);
    g_assert_cmpfloat_with_epsilon(
      json_array_get_double_element(json_object_get_array_member(o, "f1"), (guint)k), f1, 1e-12);
    if (row > 0 || col > 0) {
      f1_sum += f1;
      present++;
    }
  }
  *acc = total ? (double)diag / (double)total : 0.0;
  *macro_f1 = present ? f1_sum / present : 0.0;
  return total;
}

static char *
run_cli(const char *const *args, int *status)
{
  const char *bin = g_getenv("FATHOM_BIN");
  g_assert_nonnull(bin);
  g_autoptr(GPtrArray) argv = g_ptr_array_new();
  g_ptr_array_add(argv, (char *)bin);
  for (int i = 0; args[i]; i++)
    g_ptr_array_add(argv, (char *)args[i]);
  g_ptr_array_add(argv, NULL);
  char *out = NULL;
  GError *error = NULL;
  g_assert_true(g_spawn_sync(NULL, (char **)argv->pdata, NULL, G_SPAWN_STDERR_TO_DEV_NULL, NULL,
                             NULL, &out, NULL, status, &error));
  g_assert_no_error(error);
  return out;
}

static void
test_confusion_per_epoch(void)
{
  g_autofree char *root = g_dir_make_tmp("fth-epoch-metrics-XXXXXX", NULL);
  g_autofree char *dir = g_build_filename(root, "project", NULL);
  g_autofree char *recipe = g_build_filename(root, "tiny.json", NULL);
  g_assert_true(g_file_set_contents(recipe, recipe_text, -1, NULL));
  make_project(dir);

  GError *error = NULL;
  g_autoptr(FthStore) store = fth_store_open(dir, &error);
  g_assert_no_error(error);
  FthTrainOptions o;
  fth_train_options_init(&o);
  o.recipe = recipe;
  o.seed = 7;
  o.val_frac = 0.25;
  o.test_frac = 0.25;
  FthTrainResult res;
  g_assert_true(fth_train(store, &o, &res, &error));
  g_assert_no_error(error);
  g_assert_cmpint(res.epochs_run, ==, EPOCHS);

  g_autoptr(GPtrArray) metrics = fth_store_list_metrics(store, res.run_id, NULL, &error);
  g_autoptr(GPtrArray) arts = fth_store_list_artifacts(store, res.run_id, &error);
  g_assert_no_error(error);
  int n_val = 0, n_test = 0;
  for (guint i = 0; i < arts->len; i++) {
    FthArtifact *a = g_ptr_array_index(arts, i);
    if (strcmp(a->kind, "confusion") != 0)
      continue;
    g_autoptr(JsonNode) node = json_from_string(a->meta_json, &error);
    g_assert_no_error(error);
    JsonObject *obj = json_node_get_object(node);
    const char *split = json_object_get_string_member(obj, "split");
    gint64 epoch = json_object_get_int_member(obj, "epoch");
    double acc, f1;
    gint64 total = check_matrix(obj, &acc, &f1);
    if (strcmp(split, "val") == 0) {
      /* Epochs 1, 2, 3 in order, each over the 60 validation items. */
      g_assert_cmpint(epoch, ==, ++n_val);
      g_assert_cmpint(total, ==, N_ITEMS / 4);
      g_assert_cmpfloat_with_epsilon(acc, metric_at(metrics, "val_acc", (double)epoch), 1e-12);
      g_assert_cmpfloat_with_epsilon(f1, metric_at(metrics, "val_macro_f1", (double)epoch), 1e-12);
    } else {
      g_assert_cmpstr(split, ==, "test");
      n_test++;
      g_assert_cmpint(epoch, ==, EPOCHS);
      g_assert_cmpint(total, ==, N_ITEMS / 4);
      g_assert_cmpfloat_with_epsilon(acc, res.test_acc, 1e-12);
      g_assert_cmpfloat_with_epsilon(f1, res.test_macro_f1, 1e-12);
    }
  }
  g_assert_cmpint(n_val, ==, EPOCHS);
  g_assert_cmpint(n_test, ==, 1);

  /* The command line prints the last epoch's and the test matrix, or epoch N's. */
  g_autofree char *run = g_strdup_printf("%" G_GINT64_FORMAT, res.run_id);
  int status;
  g_autofree char *out = run_cli((const char *const[]){"runs", dir, run, NULL}, &status);
  g_assert_cmpint(status, ==, 0);
  g_assert_nonnull(strstr(out, "Confusion matrix, val split after epoch 3"));
  g_assert_nonnull(strstr(out, "Confusion matrix, test split after epoch 3"));
  g_assert_nonnull(strstr(out, "precision  recall"));
  g_assert_nonnull(strstr(out, "val_macro_f1"));
  g_autofree char *out1 =
    run_cli((const char *const[]){"runs", dir, run, "--epoch", "1", NULL}, &status);
  g_assert_cmpint(status, ==, 0);
  g_assert_nonnull(strstr(out1, "val split after epoch 1"));
  g_assert_null(strstr(out1, "val split after epoch 3"));
  g_autofree char *out9 =
    run_cli((const char *const[]){"runs", dir, run, "--epoch", "9", NULL}, &status);
  g_assert_cmpint(status, !=, 0);
  g_autofree char *list = run_cli((const char *const[]){"runs", dir, NULL}, &status);
  g_assert_cmpint(status, ==, 0);
  g_assert_nonnull(strstr(list, "tiny"));

  fth_train_result_clear(&res);
  g_clear_object(&store);
  train_test_rmtree(root);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  if (g_getenv("FATHOM_BIN") == NULL)
    return 77; /* run outside meson, without the command to check */
  g_test_add_func("/train/confusion-per-epoch", test_confusion_per_epoch);
  return g_test_run();
}
