/* fathom runs: the project's runs, and one run's metrics per epoch and confusion matrices. */
#include "cli.h"

#include <json-glib/json-glib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

int fth_cli_runs(int argc, char **argv); /* registered in main.c */

static void
print_run_list(GPtrArray *runs)
{
  printf("%6s  %-8s  %-10s  %-20s  %s\n", "run", "kind", "state", "name", "created");
  for (guint i = 0; i < runs->len; i++) {
    FthRun *r = g_ptr_array_index(runs, i);
    g_autoptr(GDateTime) t = g_date_time_new_from_unix_local(r->created_us / G_USEC_PER_SEC);
    g_autofree char *when = t ? g_date_time_format(t, "%Y-%m-%d %H:%M") : g_strdup("");
    printf("%6" G_GINT64_FORMAT "  %-8s  %-10s  %-20s  %s\n", r->id, r->kind,
           fth_run_state_to_string(r->state), r->name ? r->name : "", when);
  }
}

/* Metric names in first-seen order, for the table's columns. */
static GPtrArray *
metric_names(GPtrArray *metrics)
{
  GPtrArray *names = g_ptr_array_new();
  for (guint i = 0; i < metrics->len; i++) {
    FthMetric *m = g_ptr_array_index(metrics, i);
    gboolean seen = FALSE;
    for (guint k = 0; k < names->len && !seen; k++)
      seen = strcmp(g_ptr_array_index(names, k), m->name) == 0;
    if (!seen)
      g_ptr_array_add(names, m->name);
  }
  return names;
}

/* One row per epoch, one column per metric; metrics recorded after the last epoch (test_acc)
 * make their own row. */
static void
print_metric_table(GPtrArray *metrics)
{
  g_autoptr(GPtrArray) names = metric_names(metrics);
  if (names->len == 0) {
    printf("No metrics.\n");
    return;
  }
  printf("%6s", "epoch");
  for (guint k = 0; k < names->len; k++)
    printf("  %12s", (const char *)g_ptr_array_index(names, k));
  printf("\n");
  guint i = 0;
  while (i < metrics->len) {
    FthMetric *first = g_ptr_array_index(metrics, i);
    guint end = i;
    while (end < metrics->len && ((FthMetric *)g_ptr_array_index(metrics, end))->step == first->step &&
           ((FthMetric *)g_ptr_array_index(metrics, end))->epoch == first->epoch)
      end++;
    printf("%6g", first->epoch);
    for (guint k = 0; k < names->len; k++) {
      const char *name = g_ptr_array_index(names, k);
      double v = NAN;
      for (guint j = i; j < end; j++) {
        FthMetric *m = g_ptr_array_index(metrics, j);
        if (strcmp(m->name, name) == 0)
          v = m->value;
      }
      if (isfinite(v))
        printf("  %12.6g", v);
      else
        printf("  %12s", "");
    }
    printf("\n");
    i = end;
  }
}

static void
print_confusion(JsonObject *o)
{
  JsonArray *labels = json_object_get_array_member(o, "labels");
  JsonArray *counts = json_object_get_array_member(o, "counts");
  JsonArray *precision = json_object_get_array_member(o, "precision");
  JsonArray *recall = json_object_get_array_member(o, "recall");
  guint n = json_array_get_length(labels);
  printf("\nConfusion matrix, %s split after epoch %" G_GINT64_FORMAT " (rows: truth, columns: "
         "prediction)\n", json_object_get_string_member(o, "split"),
         json_object_get_int_member(o, "epoch"));
  int width = 8;
  for (guint c = 0; c < n; c++)
    width = MAX(width, (int)strlen(json_array_get_string_element(labels, c)));
  printf("%*s", width, "");
  for (guint c = 0; c < n; c++)
    printf(" %7u", c);
  printf("  precision  recall\n");
  for (guint t = 0; t < n; t++) {
    printf("%*s", width, json_array_get_string_element(labels, t));
    JsonArray *row = json_array_get_array_element(counts, t);
    for (guint c = 0; c < n; c++)
      printf(" %7" G_GINT64_FORMAT, json_array_get_int_element(row, c));
    printf("  %9.4f  %6.4f\n", json_array_get_double_element(precision, t),
           json_array_get_double_element(recall, t));
  }
}

static const char runs_description[] =
  "Without RUN, lists the project's runs, newest first. With RUN, prints its configuration, its\n"
  "metrics per epoch and the confusion matrix of its validation split after the last epoch (or\n"
  "--epoch N) and of its test split, with each class's precision and recall.";

int
fth_cli_runs(int argc, char **argv)
{
  gboolean json = FALSE;
  int epoch = 0;
  const GOptionEntry entries[] = {
    {"epoch", 0, 0, G_OPTION_ARG_INT, &epoch, "The validation confusion matrix after epoch N "
     "(default: the last)", "N"},
    {"json", 0, 0, G_OPTION_ARG_NONE, &json, "Print one JSON object", NULL},
    {NULL},
  };
  if (!fth_cli_parse_options("runs", "DIR [RUN]", "Lists runs, or shows one run's metrics and "
                             "confusion matrices.", runs_description, entries, &argc, &argv))
    return FTH_EXIT_USAGE;
  if (argc < 2 || argc > 3)
    return fth_cli_usage_error("runs", argc < 2 ? "missing DIR" : "too many arguments");
  gint64 run_id = 0;
  if (argc == 3) {
    char *end = NULL;
    run_id = g_ascii_strtoll(argv[2], &end, 10);
    if (end == argv[2] || *end != '\0' || run_id <= 0)
      return fth_cli_usage_error("runs", "RUN must be a run number (got “%s”)", argv[2]);
  }
  if (epoch < 0)
    return fth_cli_usage_error("runs", "--epoch must not be negative");
  g_autoptr(FthStore) store = fth_cli_open_store(argv[1]);
  if (!store)
    return FTH_EXIT_FAILURE;
  g_autoptr(GError) error = NULL;
  if (run_id == 0) {
    g_autoptr(GPtrArray) runs = fth_store_list_runs(store, NULL, &error);
    if (runs == NULL)
      return fth_cli_fail_error(error);
    if (!json) {
      print_run_list(runs);
      return FTH_EXIT_OK;
    }
    g_autoptr(JsonBuilder) b = json_builder_new();
    json_builder_begin_array(b);
    for (guint i = 0; i < runs->len; i++) {
      FthRun *r = g_ptr_array_index(runs, i);
      json_builder_begin_object(b);
      json_builder_set_member_name(b, "run");
      json_builder_add_int_value(b, r->id);
      json_builder_set_member_name(b, "kind");
      json_builder_add_string_value(b, r->kind);
      json_builder_set_member_name(b, "name");
      json_builder_add_string_value(b, r->name);
      json_builder_set_member_name(b, "state");
      json_builder_add_string_value(b, fth_run_state_to_string(r->state));
      json_builder_end_object(b);
    }
    json_builder_end_array(b);
    g_autoptr(JsonNode) root = json_builder_get_root(b);
    g_autofree char *text = json_to_string(root, FALSE);
    printf("%s\n", text);
    return FTH_EXIT_OK;
  }

  g_autoptr(FthRun) run = fth_store_get_run(store, run_id, &error);
  if (run == NULL)
    return fth_cli_fail_error(error);
  g_autoptr(GPtrArray) metrics = fth_store_list_metrics(store, run_id, NULL, &error);
  g_autoptr(GPtrArray) arts = metrics ? fth_store_list_artifacts(store, run_id, &error) : NULL;
  if (arts == NULL)
    return fth_cli_fail_error(error);
  /* The chosen validation matrix (the last one, or epoch N's) and the test matrix. */
  g_autoptr(JsonNode) val = NULL, test = NULL;
  g_autoptr(JsonArray) all = json_array_new();
  for (guint i = 0; i < arts->len; i++) {
    FthArtifact *a = g_ptr_array_index(arts, i);
    if (g_strcmp0(a->kind, "confusion") != 0 || a->meta_json == NULL)
      continue;
    JsonNode *node = json_from_string(a->meta_json, NULL);
    if (node == NULL || !JSON_NODE_HOLDS_OBJECT(node)) {
      g_clear_pointer(&node, json_node_unref);
      continue;
    }
    JsonObject *o = json_node_get_object(node);
    const char *split = json_object_get_string_member_with_default(o, "split", "");
    gint64 e = json_object_get_int_member_with_default(o, "epoch", 0);
    json_array_add_element(all, json_node_ref(node));
    if (strcmp(split, "test") == 0) {
      g_clear_pointer(&test, json_node_unref);
      test = node;
    } else if (strcmp(split, "val") == 0 && (epoch == 0 || e == epoch)) {
      g_clear_pointer(&val, json_node_unref);
      val = node;
    } else {
      json_node_unref(node);
    }
  }
  if (epoch > 0 && val == NULL)
    return fth_cli_fail("run %" G_GINT64_FORMAT ": no validation confusion matrix for epoch %d",
                        run_id, epoch);

  if (json) {
    g_autoptr(JsonBuilder) b = json_builder_new();
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "run");
    json_builder_add_int_value(b, run->id);
    json_builder_set_member_name(b, "kind");
    json_builder_add_string_value(b, run->kind);
    json_builder_set_member_name(b, "name");
    json_builder_add_string_value(b, run->name);
    json_builder_set_member_name(b, "state");
    json_builder_add_string_value(b, fth_run_state_to_string(run->state));
    json_builder_set_member_name(b, "metrics");
    json_builder_begin_array(b);
    for (guint i = 0; i < metrics->len; i++) {
      FthMetric *m = g_ptr_array_index(metrics, i);
      json_builder_begin_object(b);
      json_builder_set_member_name(b, "epoch");
      json_builder_add_double_value(b, m->epoch);
      json_builder_set_member_name(b, "step");
      json_builder_add_int_value(b, m->step);
      json_builder_set_member_name(b, "name");
      json_builder_add_string_value(b, m->name);
      json_builder_set_member_name(b, "value");
      json_builder_add_double_value(b, m->value);
      json_builder_end_object(b);
    }
    json_builder_end_array(b);
    json_builder_set_member_name(b, "confusion");
    json_builder_add_value(b, json_node_init_array(json_node_alloc(), all));
    json_builder_end_object(b);
    g_autoptr(JsonNode) root = json_builder_get_root(b);
    g_autofree char *text = json_to_string(root, FALSE);
    printf("%s\n", text);
    return FTH_EXIT_OK;
  }
  printf("Run %" G_GINT64_FORMAT ": %s %s, %s\n", run->id, run->kind, run->name ? run->name : "",
         fth_run_state_to_string(run->state));
  if (run->config_json != NULL)
    printf("Config: %s\n", run->config_json);
  print_metric_table(metrics);
  if (val != NULL)
    print_confusion(json_node_get_object(val));
  if (test != NULL)
    print_confusion(json_node_get_object(test));
  return FTH_EXIT_OK;
}
