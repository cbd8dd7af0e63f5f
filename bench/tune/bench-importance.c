/* bench-importance: the time fth_tune_importances (fANOVA, 64 trees) takes on N completed trials
 * of the mlp recipe's default space (10 parameters, momentum conditional), median of 5 runs, and
 * the importances it finds for an objective that depends on lr most, dropout less, and on
 * nothing else:  nice build/bench/tune/bench-importance [N...]  (default 30 100 300).
 *
 * With --journal FILE [SEEDS] it loads the study of a `fathom tune --journal` file (or one that
 * bench/tune/importance_peer.py wrote in that format) and prints one JSON line: per forest seed
 * 0 .. SEEDS-1 (default 5) the importances and the milliseconds fth_tune_importances took, for
 * the side-by-side with Optuna (bench/tune/run-importance.sh). */
#include <fathom/tune.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static void
trial_free(gpointer data)
{
  FthTuneTrial *t = data;
  g_free(t->params);
  g_free(t);
}

/* The study a journal holds: its first line (the header) names the study and its space. */
static FthTuneStudy *
load_journal(const char *path, GError **error)
{
  g_autofree char *text = NULL;
  if (!g_file_get_contents(path, &text, NULL, error))
    return NULL;
  char *eol = strchr(text, '\n');
  if (eol != NULL)
    *eol = '\0';
  g_autoptr(JsonParser) parser = json_parser_new();
  if (!json_parser_load_from_data(parser, text, -1, error)) {
    g_prefix_error(error, "%s:1: ", path);
    return NULL;
  }
  JsonNode *root = json_parser_get_root(parser);
  JsonObject *header = JSON_NODE_HOLDS_OBJECT(root) ? json_node_get_object(root) : NULL;
  JsonNode *space_node = header != NULL ? json_object_get_member(header, "space") : NULL;
  if (space_node == NULL) {
    g_set_error(error, FTH_TUNE_ERROR, FTH_TUNE_ERROR_JOURNAL,
                "%s:1: not a study header (no \"space\")", path);
    return NULL;
  }
  g_autofree char *space_json = json_to_string(space_node, FALSE);
  g_autoptr(FthSearchSpace) space = fth_search_space_new_from_json(space_json, -1, path, error);
  if (space == NULL)
    return NULL;
  g_autoptr(FthTuneStudy) study =
    fth_tune_study_new(json_object_get_string_member_with_default(header, "name", ""), space,
                       NULL, NULL, json_object_get_boolean_member_with_default(header, "maximize",
                                                                               FALSE));
  if (!fth_tune_study_open_journal(study, path, error))
    return NULL;
  return g_steal_pointer(&study);
}

static int
run_journal(const char *path, guint n_seeds)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(FthTuneStudy) study = load_journal(path, &error);
  if (study == NULL) {
    fprintf(stderr, "bench-importance: %s\n", error->message);
    return 1;
  }
  FthSearchSpace *space = fth_tune_study_get_space(study);
  guint d = fth_search_space_get_n_params(space), n = fth_tune_study_get_n_trials(study);
  g_autofree const FthTuneTrial **trials = g_new(const FthTuneTrial *, MAX(n, 1u));
  for (guint i = 0; i < n; i++)
    trials[i] = fth_tune_study_get_trial(study, i);
  g_autofree double *imp = g_new(double, d);
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "study");
  json_builder_add_string_value(b, fth_tune_study_get_name(study));
  json_builder_set_member_name(b, "runs");
  json_builder_begin_array(b);
  for (guint s = 0; s < n_seeds; s++) {
    FthImportanceOptions options;
    fth_importance_options_init(&options);
    options.seed = s;
    gint64 t0 = g_get_monotonic_time();
    if (!fth_tune_importances(space, trials, n, &options, imp, &error)) {
      fprintf(stderr, "bench-importance: %s: %s\n", path, error->message);
      return 1;
    }
    double ms = (g_get_monotonic_time() - t0) / 1000.0;
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "seed");
    json_builder_add_int_value(b, s);
    json_builder_set_member_name(b, "ms");
    json_builder_add_double_value(b, ms);
    json_builder_set_member_name(b, "importances");
    json_builder_begin_object(b);
    for (guint j = 0; j < d; j++)
      if (!isnan(imp[j])) {
        json_builder_set_member_name(b, fth_search_space_get_param(space, j)->name);
        json_builder_add_double_value(b, imp[j]);
      }
    json_builder_end_object(b);
    json_builder_end_object(b);
  }
  json_builder_end_array(b);
  json_builder_end_object(b);
  g_autoptr(JsonNode) root = json_builder_get_root(b);
  g_autofree char *line = json_to_string(root, FALSE);
  printf("%s\n", line);
  return 0;
}

int
main(int argc, char **argv)
{
  if (argc > 1 && g_str_equal(argv[1], "--journal")) {
    if (argc < 3 || argc > 4) {
      fprintf(stderr, "usage: bench-importance --journal FILE [SEEDS]\n");
      return 2;
    }
    return run_journal(argv[2], argc > 3 ? (guint) MAX(atoi(argv[3]), 1) : 5);
  }
  g_autoptr(GError) error = NULL;
  g_autoptr(FthSearchSpace) space =
    fth_search_space_new_from_json(fth_tune_train_space_json("mlp", NULL), -1, "mlp", &error);
  if (space == NULL) {
    fprintf(stderr, "bench-importance: %s\n", error->message);
    return 1;
  }
  guint d = fth_search_space_get_n_params(space);
  int lr = fth_search_space_find(space, "lr"), dropout = fth_search_space_find(space, "dropout");
  static const char *const defaults[] = { "30", "100", "300" };
  const char *const *sizes = argc > 1 ? (const char *const *)argv + 1 : defaults;
  int n_sizes = argc > 1 ? argc - 1 : 3;
  printf("%8s %10s %8s %8s %8s\n", "trials", "ms", "lr", "dropout", "others");
  for (int s = 0; s < n_sizes; s++) {
    guint n = (guint)atoi(sizes[s]);
    g_autoptr(GPtrArray) trials = g_ptr_array_new_with_free_func(trial_free);
    g_autoptr(FthSampler) sampler = fth_sampler_new_random(7);
    g_autoptr(GRand) noise = g_rand_new_with_seed(3);
    for (guint i = 0; i < n; i++) {
      FthTuneTrial *t = g_new0(FthTuneTrial, 1);
      t->number = (int)i;
      t->state = FTH_TUNE_TRIAL_COMPLETE;
      t->params = g_new(double, d);
      if (!fth_sampler_sample(sampler, space, NULL, 0, (int)i, TRUE, t->params, &error)) {
        fprintf(stderr, "bench-importance: %s\n", error->message);
        return 1;
      }
      double x = log10(t->params[lr]) + 2;
      t->value = 0.9 - 0.05 * x * x - 0.1 * t->params[dropout] +
                 0.005 * g_rand_double_range(noise, -1, 1);
      g_ptr_array_add(trials, t);
    }
    double ms[5];
    g_autofree double *imp = g_new(double, d);
    for (int r = 0; r < 5; r++) {
      gint64 t0 = g_get_monotonic_time();
      if (!fth_tune_importances(space, (const FthTuneTrial *const *)trials->pdata, n, NULL, imp,
                                &error)) {
        fprintf(stderr, "bench-importance: %s\n", error->message);
        return 1;
      }
      ms[r] = (g_get_monotonic_time() - t0) / 1000.0;
    }
    qsort(ms, 5, sizeof *ms, cmp_double);
    double others = 0;
    for (guint j = 0; j < d; j++)
      if ((int)j != lr && (int)j != dropout && !isnan(imp[j]))
        others += imp[j];
    printf("%8u %10.2f %8.3f %8.3f %8.3f\n", n, ms[2], imp[lr], imp[dropout], others);
  }
  return 0;
}
