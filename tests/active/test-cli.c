/* fathom autolabel, queue and simulate-al end to end on a small project (8x8 IDX bars, a model
 * trained through the engine): exit codes, what lands in the store, what is printed. */
#include <fathom/active.h>
#include <json-glib/json-glib.h>
#include <stdio.h>
#include <string.h>

#include "fth-test-project.h"

enum { N_ITEMS = 150, N_LABELED = 90, S = 8, N_CLASSES = 3 };

static const char *tiny_recipe =
  "{\"name\": \"tiny\", \"input\": {\"shape\": [1, 8, 8]},"
  " \"layers\": [{\"type\": \"flatten\"}, {\"type\": \"linear\", \"out_features\": 12},"
  "  {\"type\": \"relu\"}, {\"type\": \"linear\", \"out_features\": \"classes\"}],"
  " \"train\": {\"optimizer\": \"sgd\", \"lr\": 0.05, \"momentum\": 0.9, \"batch\": 16,"
  "  \"epochs\": 4}}";

static char *tmp_root, *recipe_path, *project;
static gint64 items[N_ITEMS];

/* Items 0..N_LABELED-1 labeled by a human; a model trained on them. */
static void
make_project(void)
{
  GError *error = NULL;
  project = g_build_filename(tmp_root, "proj", NULL);
  const FthTestBars bars = { .n_items = N_ITEMS, .size = S, .n_classes = N_CLASSES, .seed = 8,
                             .noise_max = 60, .bar_min = 180 };
  const char *const names[N_CLASSES] = { "a", "b", "c" };
  g_autoptr(FthStore) store = fth_test_bars_project_new(project, &bars, names, N_LABELED, NULL,
                                                        items);
  FthTrainOptions o;
  fth_train_options_init(&o);
  o.recipe = recipe_path;
  o.seed = 2;
  FthTrainResult res = {0};
  g_assert_true(fth_train(store, &o, &res, &error));
  g_assert_no_error(error);
  fth_train_result_clear(&res);
}

static int
run_fathom(const char *args, char **out, char **err)
{
  const char *build = g_getenv("FTH_BUILD_DIR");
  g_autofree char *bin = g_build_filename(build ? build : ".", "app", "cli", "fathom", NULL);
  g_autofree char *cmd = g_strdup_printf("%s %s", bin, args);
  g_auto(GStrv) argv = NULL;
  g_assert_true(g_shell_parse_argv(cmd, NULL, &argv, NULL));
  int status = 0;
  GError *error = NULL;
  g_assert_true(g_spawn_sync(NULL, argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, out, err, &status,
                             &error));
  g_assert_no_error(error);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void
test_autolabel_and_queue(void)
{
  g_autofree char *out = NULL, *err = NULL;
  g_autofree char *a1 = g_strdup_printf("autolabel %s --quiet", project);
  g_assert_cmpint(run_fathom(a1, &out, &err), ==, 0);
  g_autoptr(GError) error = NULL;
  g_autoptr(FthStore) store = fth_store_open(project, &error);
  g_assert_no_error(error);
  gint64 run = fth_store_latest_prediction_run(store, &error);
  g_assert_cmpint(run, >, 0);
  FthItemFilter f = FTH_ITEM_FILTER_INIT;
  f.author = FTH_AUTHOR_MODEL;
  gint64 n_model = 0;
  g_assert_true(fth_store_count_items(store, &f, &n_model, &error));
  g_assert_cmpint(n_model, ==, N_ITEMS - N_LABELED);

  g_clear_pointer(&out, g_free);
  g_clear_pointer(&err, g_free);
  g_autofree char *a2 = g_strdup_printf("queue %s refill --strategy margin --batch 5", project);
  g_assert_cmpint(run_fathom(a2, &out, &err), ==, 0);
  g_assert_nonnull(strstr(out, "Queued 5 items by margin"));
  /* The strategy and batch are now the project's. */
  FthActiveSettings st;
  g_assert_true(fth_active_settings_load(store, &st, &error));
  g_assert_cmpint(st.strategy, ==, FTH_ACQ_MARGIN);
  g_assert_cmpuint(st.batch, ==, 5);

  g_clear_pointer(&out, g_free);
  g_clear_pointer(&err, g_free);
  g_autofree char *a3 = g_strdup_printf("queue %s show --json", project);
  g_assert_cmpint(run_fathom(a3, &out, &err), ==, 0);
  g_auto(GStrv) lines = g_strsplit(g_strstrip(out), "\n", -1);
  g_assert_cmpuint(g_strv_length(lines), ==, 5);
  double last_score = 2;
  for (int i = 0; i < 5; i++) {
    g_autoptr(JsonParser) p = json_parser_new();
    g_assert_true(json_parser_load_from_data(p, lines[i], -1, NULL));
    JsonObject *o = json_node_get_object(json_parser_get_root(p));
    g_assert_cmpint(json_object_get_int_member(o, "rank"), ==, i);
    g_assert_cmpint(json_object_get_int_member(o, "member"), >=, N_LABELED);
    g_assert_cmpstr(json_object_get_string_member(o, "strategy"), ==, "margin");
    g_assert_cmpint(json_object_get_int_member(o, "run"), ==, run);
    double s = json_object_get_double_member(o, "score");
    g_assert_cmpfloat(s, <=, last_score);
    last_score = s;
  }

  /* bald through the CLI: passes from the prediction run's checkpoint. */
  g_clear_pointer(&out, g_free);
  g_clear_pointer(&err, g_free);
  g_autofree char *a4 = g_strdup_printf("queue %s refill --strategy bald --batch 4", project);
  g_assert_cmpint(run_fathom(a4, &out, &err), ==, 0);
  g_assert_nonnull(strstr(out, "Queued 4 items by bald"));

  /* Pseudo-labels: at most 3 per class from a fresh prediction, then reviewed in bulk. */
  g_clear_pointer(&out, g_free);
  g_clear_pointer(&err, g_free);
  g_autofree char *p1 = g_strdup_printf("autolabel %s --quiet --pseudo-labels --threshold 0.4 "
                                        "--cap 3", project);
  g_assert_cmpint(run_fathom(p1, &out, &err), ==, 0);
  guint n_pseudo = 0;
  gint64 prun = 0;
  g_assert_cmpint(sscanf(out, "%u pseudo-labels in run %" G_GINT64_FORMAT, &n_pseudo, &prun), ==,
                  2);
  g_assert_cmpuint(n_pseudo, >, 0);
  g_assert_cmpuint(n_pseudo, <=, 9);
  g_autoptr(GPtrArray) pl = fth_pseudo_list(store, prun, &error);
  g_assert_cmpuint(pl->len, ==, n_pseudo);
  gint64 label_a = ((FthAnnotation *)pl->pdata[0])->label_id;
  guint n_a = 0;
  for (guint i = 0; i < pl->len; i++)
    n_a += ((FthAnnotation *)pl->pdata[i])->label_id == label_a;
  g_autoptr(FthLabel) la = fth_store_get_label(store, label_a, &error);
  g_clear_pointer(&out, g_free);
  g_clear_pointer(&err, g_free);
  g_autofree char *p2 = g_strdup_printf("autolabel %s --reject %" G_GINT64_FORMAT " --label %s",
                                        project, prun, la->name);
  g_assert_cmpint(run_fathom(p2, &out, &err), ==, 0);
  g_autofree char *want_rej = g_strdup_printf("Rejected %u pseudo-labels", n_a);
  g_assert_nonnull(strstr(out, want_rej));
  g_clear_pointer(&out, g_free);
  g_clear_pointer(&err, g_free);
  g_autofree char *p3 = g_strdup_printf("autolabel %s --promote %" G_GINT64_FORMAT, project, prun);
  g_assert_cmpint(run_fathom(p3, &out, &err), ==, 0);
  g_autofree char *want_pro = g_strdup_printf("Promoted %u pseudo-labels", n_pseudo - n_a);
  g_assert_nonnull(strstr(out, want_pro));
  FthItemFilter fh = FTH_ITEM_FILTER_INIT;
  fh.author = FTH_AUTHOR_HUMAN;
  gint64 n_human = 0;
  g_assert_true(fth_store_count_items(store, &fh, &n_human, &error));
  g_assert_cmpint(n_human, ==, N_LABELED + (gint64)(n_pseudo - n_a));

  /* Usage errors. */
  g_clear_pointer(&out, g_free);
  g_clear_pointer(&err, g_free);
  g_autofree char *a5 = g_strdup_printf("queue %s refill --strategy psychic", project);
  g_assert_cmpint(run_fathom(a5, &out, &err), ==, 2);
  g_assert_nonnull(strstr(err, "psychic"));
  g_clear_pointer(&out, g_free);
  g_clear_pointer(&err, g_free);
  g_autofree char *a6 = g_strdup_printf("queue %s sort", project);
  g_assert_cmpint(run_fathom(a6, &out, &err), ==, 2);
  g_clear_pointer(&out, g_free);
  g_clear_pointer(&err, g_free);
  g_autofree char *a7 = g_strdup_printf("autolabel %s --checkpoint %s/nowhere --quiet", project,
                                        tmp_root);
  g_assert_cmpint(run_fathom(a7, &out, &err), ==, 1);
  g_assert_nonnull(strstr(err, "nowhere"));
}

static void
test_simulate(void)
{
  g_autofree char *out = NULL, *err = NULL;
  /* The labeled items: 90, of which fth_train's split put 10% in test. */
  g_autofree char *a = g_strdup_printf("simulate-al %s --recipe %s --strategy entropy --seed 3 "
                                       "--start 20 --batch 10 --rounds 2 --min-steps 10 --json",
                                       project, recipe_path);
  gint64 human_before = 0;
  {
    g_autoptr(FthStore) before = fth_store_open(project, NULL);
    FthItemFilter fb = FTH_ITEM_FILTER_INIT;
    fb.author = FTH_AUTHOR_HUMAN;
    g_assert_true(fth_store_count_items(before, &fb, &human_before, NULL));
  }
  g_assert_cmpint(run_fathom(a, &out, &err), ==, 0);
  g_auto(GStrv) lines = g_strsplit(g_strstrip(out), "\n", -1);
  g_assert_cmpuint(g_strv_length(lines), ==, 3);
  for (int i = 0; i < 3; i++) {
    g_autoptr(JsonParser) p = json_parser_new();
    g_assert_true(json_parser_load_from_data(p, lines[i], -1, NULL));
    JsonObject *o = json_node_get_object(json_parser_get_root(p));
    g_assert_cmpint(json_object_get_int_member(o, "round"), ==, i);
    g_assert_cmpint(json_object_get_int_member(o, "labels"), ==, 20 + 10 * i);
  }
  /* The same seed prints the same accuracies. */
  g_autofree char *out2 = NULL, *err2 = NULL;
  g_assert_cmpint(run_fathom(a, &out2, &err2), ==, 0);
  g_auto(GStrv) lines2 = g_strsplit(g_strstrip(out2), "\n", -1);
  for (int i = 0; i < 3; i++) {
    /* Everything but the timings. */
    *strstr(lines[i], ",\"fit_s\"") = '\0';
    *strstr(lines2[i], ",\"fit_s\"") = '\0';
    g_assert_cmpstr(lines[i], ==, lines2[i]);
  }
  /* The run and its curve are in the store; the labels are untouched. */
  g_autoptr(GError) error = NULL;
  g_autoptr(FthStore) store = fth_store_open(project, &error);
  g_autoptr(GPtrArray) runs = fth_store_list_runs(store, "simulate-al", &error);
  g_assert_cmpuint(runs->len, ==, 2);
  g_autoptr(GPtrArray) m = fth_store_list_metrics(store, ((FthRun *)runs->pdata[0])->id,
                                                  "test_acc", &error);
  g_assert_cmpuint(m->len, ==, 3);
  FthItemFilter f = FTH_ITEM_FILTER_INIT;
  f.author = FTH_AUTHOR_HUMAN;
  gint64 n_human = 0;
  g_assert_true(fth_store_count_items(store, &f, &n_human, &error));
  g_assert_cmpint(n_human, ==, human_before);

  g_autofree char *bad = g_strdup_printf("simulate-al %s --start 1000", project);
  g_clear_pointer(&out, g_free);
  g_clear_pointer(&err, g_free);
  g_assert_cmpint(run_fathom(bad, &out, &err), ==, 1);
  g_assert_nonnull(strstr(err, "start set"));
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  tmp_root = g_dir_make_tmp("fth-active-cli-XXXXXX", NULL);
  recipe_path = g_build_filename(tmp_root, "tiny.json", NULL);
  g_assert_true(g_file_set_contents(recipe_path, tiny_recipe, -1, NULL));
  make_project();
  g_test_add_func("/active/cli/autolabel-and-queue", test_autolabel_and_queue);
  g_test_add_func("/active/cli/simulate", test_simulate);
  int rc = g_test_run();
  fth_test_rmtree(tmp_root);
  g_free(tmp_root);
  g_free(recipe_path);
  g_free(project);
  return rc;
}
