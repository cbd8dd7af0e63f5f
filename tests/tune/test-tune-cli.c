/* `fathom tune` end to end (the built binary from FTH_BUILD_DIR): usage errors exit 2, a study
 * prints JSON events that parse, --importances prints the parameters' shares, a study in a project resumes from its store, Ctrl-C cancels
 * with exit 130. */
#include <fathom/store.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <signal.h>
#include <string.h>

static char *fathom;
static char *tmp_root;

/* Runs fathom with ARGV (NULL-terminated, after "fathom"); returns the exit status. */
static int
run_fathom(const char *const *args, char **out, char **err)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new();
  g_ptr_array_add(argv, fathom);
  for (guint i = 0; args[i] != NULL; i++)
    g_ptr_array_add(argv, (gpointer) args[i]);
  g_ptr_array_add(argv, NULL);
  g_autoptr(GError) error = NULL;
  int status = 0;
  g_assert_true(g_spawn_sync(NULL, (char **) argv->pdata, NULL, G_SPAWN_DEFAULT, NULL, NULL, out,
                             err, &status, &error));
  g_assert_no_error(error);
  g_assert_true(WIFEXITED(status));
  return WEXITSTATUS(status);
}

/* Parses JSON lines; each must be an object with a "type" and "job": "tune". */
static GPtrArray *
parse_events(const char *out)
{
  GPtrArray *events = g_ptr_array_new_with_free_func((GDestroyNotify) json_node_unref);
  g_auto(GStrv) lines = g_strsplit(out, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++) {
    if (lines[i][0] == '\0')
      continue;
    g_autoptr(GError) error = NULL;
    JsonNode *node = json_from_string(lines[i], &error);
    g_assert_no_error(error);
    g_assert_true(JSON_NODE_HOLDS_OBJECT(node));
    JsonObject *o = json_node_get_object(node);
    g_assert_cmpstr(json_object_get_string_member_with_default(o, "job", ""), ==, "tune");
    g_assert_true(json_object_has_member(o, "type"));
    g_ptr_array_add(events, node);
  }
  return events;
}

static const char *
event_type(GPtrArray *events, guint i)
{
  return json_object_get_string_member(json_node_get_object(g_ptr_array_index(events, i)),
                                       "type");
}

static JsonObject *
event_trial(GPtrArray *events, guint i)
{
  return json_object_get_object_member(json_node_get_object(g_ptr_array_index(events, i)),
                                       "trial");
}

static void
test_usage_errors(void)
{
  const char *const cases[][6] = {
    { "tune", NULL },
    { "tune", "--objective", "nope", NULL },
    { "tune", "--recipe", "cnn", NULL },
    { "tune", "--objective", "branin", "--recipe", "cnn", NULL },
    { "tune", "--objective", "branin", "--trials", "-3", NULL },
    { "tune", "--objective", "branin", "--sampler", "annealing", NULL },
    { "tune", "--objective", "branin", "--no-such-option", NULL },
  };
  for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_autofree char *out = NULL, *err = NULL;
    g_assert_cmpint(run_fathom(cases[i], &out, &err), ==, 2);
    g_assert_cmpstr(out, ==, "");
    g_assert_nonnull(strstr(err, "tune"));
  }
}

static void
test_json_events(void)
{
  const char *const args[] = { "tune", "--objective", "branin", "--trials", "12", "--json", NULL };
  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint(run_fathom(args, &out, &err), ==, 0);
  g_autoptr(GPtrArray) events = parse_events(out);
  g_assert_cmpuint(events->len, ==, 14); /* started, one per trial, succeeded */
  g_assert_cmpstr(event_type(events, 0), ==, "started");
  double best = G_MAXDOUBLE;
  for (guint i = 1; i <= 12; i++) {
    g_assert_cmpstr(event_type(events, i), ==, "progress");
    JsonObject *t = event_trial(events, i);
    g_assert_cmpstr(json_object_get_string_member(t, "state"), ==, "complete");
    JsonObject *p = json_object_get_object_member(t, "params");
    double x0 = json_object_get_double_member(p, "x0"), x1 = json_object_get_double_member(p, "x1");
    g_assert_true(x0 >= -5 && x0 <= 10 && x1 >= 0 && x1 <= 15);
    best = MIN(best, json_object_get_double_member(t, "value"));
  }
  g_assert_cmpstr(event_type(events, 13), ==, "succeeded");
  g_assert_cmpfloat(json_object_get_double_member(event_trial(events, 13), "value"), ==, best);
}

/* --importances: one JSON line before "succeeded" with every parameter's share, summing to 1;
 * in text, a line per parameter. */
static void
test_importances(void)
{
  const char *const args[] = { "tune", "--objective", "hartmann6", "--sampler", "random",
                               "--trials", "60", "--importances", "--json", NULL };
  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint(run_fathom(args, &out, &err), ==, 0);
  g_autoptr(GPtrArray) events = parse_events(out);
  g_assert_cmpuint(events->len, ==, 63);
  g_assert_cmpstr(event_type(events, 61), ==, "importances");
  g_assert_cmpstr(event_type(events, 62), ==, "succeeded");
  JsonObject *imp = json_object_get_object_member(
    json_node_get_object(g_ptr_array_index(events, 61)), "importances");
  g_assert_cmpuint(json_object_get_size(imp), ==, 6);
  double sum = 0;
  for (int i = 0; i < 6; i++) {
    g_autofree char *name = g_strdup_printf("x%d", i);
    double v = json_object_get_double_member(imp, name);
    g_assert_cmpfloat(v, >=, 0);
    sum += v;
  }
  g_assert_cmpfloat_with_epsilon(sum, 1.0, 1e-9);

  const char *const text[] = { "tune", "--objective", "branin", "--trials", "20",
                               "--importances", NULL };
  g_autofree char *out2 = NULL, *err2 = NULL;
  g_assert_cmpint(run_fathom(text, &out2, &err2), ==, 0);
  g_assert_nonnull(strstr(out2, "importances (fANOVA):\n"));
  g_assert_nonnull(strstr(out2, "  x0 "));
  g_assert_nonnull(strstr(out2, "  x1 "));
}

static void
test_store_resume(void)
{
  g_autofree char *dir = g_build_filename(tmp_root, "project", NULL);
  const char *const make[] = { "new", dir, NULL };
  g_assert_cmpint(run_fathom(make, NULL, NULL), ==, 0);
  const char *const first[] = { "tune", dir, "--objective", "lc2", "--trials", "6",
                                "--pruner", "asha", "--json", NULL };
  g_autofree char *out1 = NULL;
  g_assert_cmpint(run_fathom(first, &out1, NULL), ==, 0);
  const char *const second[] = { "tune", dir, "--objective", "lc2", "--trials", "9",
                                 "--pruner", "asha", "--json", NULL };
  g_autofree char *out2 = NULL;
  g_assert_cmpint(run_fathom(second, &out2, NULL), ==, 0);
  /* The second run finds 6 trials in the store and runs only numbers 6..8. */
  g_autoptr(GPtrArray) events = parse_events(out2);
  g_assert_cmpuint(events->len, ==, 5);
  for (guint i = 1; i <= 3; i++)
    g_assert_cmpint(json_object_get_int_member(event_trial(events, i), "number"), ==, 5 + i);
  g_autoptr(FthStore) store = fth_store_open(dir, NULL);
  g_assert_nonnull(store);
  g_autoptr(GPtrArray) studies = fth_store_list_studies(store, NULL);
  g_assert_cmpuint(studies->len, ==, 1);
  const FthStudy *study = g_ptr_array_index(studies, 0);
  g_assert_cmpstr(study->name, ==, "lc2");
  g_autoptr(GPtrArray) trials = fth_store_list_trials(store, study->id, NULL);
  g_assert_cmpuint(trials->len, ==, 9);
}

static void
test_interrupt(void)
{
  const char *argv[] = { fathom, "tune", "--objective", "lc2", "--sampler", "random",
                         "--trials", "100000000", "--json", NULL };
  g_autoptr(GError) error = NULL;
  g_autoptr(GSubprocess) proc = g_subprocess_newv(argv, G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                                          G_SUBPROCESS_FLAGS_STDERR_SILENCE,
                                                  &error);
  g_assert_no_error(error);
  g_autoptr(GDataInputStream) in =
    g_data_input_stream_new(g_subprocess_get_stdout_pipe(proc));
  /* Interrupt once trials are finishing. */
  for (;;) {
    g_autofree char *line = g_data_input_stream_read_line(in, NULL, NULL, &error);
    g_assert_no_error(error);
    g_assert_nonnull(line);
    if (strstr(line, "\"progress\"") != NULL)
      break;
  }
  g_subprocess_send_signal(proc, SIGINT);
  g_autofree char *last = NULL;
  for (;;) {
    char *line = g_data_input_stream_read_line(in, NULL, NULL, &error);
    g_assert_no_error(error);
    if (line == NULL)
      break;
    g_free(last);
    last = line;
  }
  g_assert_true(g_subprocess_wait(proc, NULL, &error));
  g_assert_true(g_subprocess_get_if_exited(proc));
  g_assert_cmpint(g_subprocess_get_exit_status(proc), ==, 130);
  g_assert_nonnull(last);
  g_autoptr(JsonNode) node = json_from_string(last, &error);
  g_assert_no_error(error);
  g_assert_cmpstr(json_object_get_string_member(json_node_get_object(node), "type"), ==,
                  "cancelled");
}

static void
rmtree(const char *path)
{
  if (g_file_test(path, G_FILE_TEST_IS_DIR)) {
    g_autoptr(GDir) d = g_dir_open(path, 0, NULL);
    const char *name;
    while (d != NULL && (name = g_dir_read_name(d)) != NULL) {
      g_autofree char *child = g_build_filename(path, name, NULL);
      rmtree(child);
    }
    g_rmdir(path);
  } else {
    g_unlink(path);
  }
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  const char *build = g_getenv("FTH_BUILD_DIR");
  fathom = g_build_filename(build != NULL ? build : ".", "app", "cli", "fathom", NULL);
  if (!g_file_test(fathom, G_FILE_TEST_IS_EXECUTABLE)) {
    g_printerr("%s: not built\n", fathom);
    return 77;
  }
  tmp_root = g_dir_make_tmp("fth-tune-cli-XXXXXX", NULL);
  g_test_add_func("/tune/cli/usage", test_usage_errors);
  g_test_add_func("/tune/cli/json", test_json_events);
  g_test_add_func("/tune/cli/importances", test_importances);
  g_test_add_func("/tune/cli/store-resume", test_store_resume);
  g_test_add_func("/tune/cli/interrupt", test_interrupt);
  int rc = g_test_run();
  rmtree(tmp_root);
  g_free(tmp_root);
  g_free(fathom);
  return rc;
}
