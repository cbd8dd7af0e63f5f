/* Search spaces: declarations, validation messages, conversions; the benchmark objectives
 * against the peer's golden values. */
#include <fathom/tune.h>
#include <math.h>
#include <string.h>

static const char *VALID =
  "{\"params\": ["
  " {\"name\": \"lr\", \"type\": \"float\", \"low\": 1e-4, \"high\": 1, \"log\": true},"
  " {\"name\": \"width\", \"type\": \"int\", \"low\": 16, \"high\": 130, \"step\": 16},"
  " {\"name\": \"batch\", \"type\": \"int\", \"low\": 8, \"high\": 512, \"log\": true},"
  " {\"name\": \"optimizer\", \"type\": \"categorical\", \"choices\": [\"sgd\", \"adam\", 3]},"
  " {\"name\": \"momentum\", \"type\": \"float\", \"low\": 0, \"high\": 0.99,"
  "  \"condition\": {\"parent\": \"optimizer\", \"values\": [\"sgd\"]}}],"
  " \"groups\": [[\"lr\", \"optimizer\", \"momentum\"]]}";

static void
test_parse_valid(void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(FthSearchSpace) space = fth_search_space_new_from_json(VALID, -1, "v.json", &error);
  g_assert_no_error(error);
  g_assert_cmpuint(fth_search_space_get_n_params(space), ==, 5);
  const FthTuneParam *width = fth_search_space_get_param(space, 1);
  g_assert_cmpint(width->kind, ==, FTH_PARAM_INT);
  g_assert_cmpfloat(width->high, ==, 128); /* lowered to the last reachable step */
  const FthTuneParam *opt = fth_search_space_get_param(space, 3);
  g_assert_cmpuint(opt->n_choices, ==, 3);
  g_assert_cmpstr(opt->choices[0], ==, "\"sgd\"");
  g_assert_cmpstr(opt->choices[2], ==, "3");
  const FthTuneParam *mom = fth_search_space_get_param(space, 4);
  g_assert_cmpint(mom->parent, ==, 3);
  g_assert_cmpuint(mom->parent_choices, ==, 1);
  /* Two groups: the declared one and the rest (width, batch). */
  g_assert_cmpuint(fth_search_space_get_n_groups(space), ==, 2);
  g_assert_cmpint(fth_search_space_get_param(space, 0)->group, ==, 0);
  g_assert_cmpint(width->group, ==, 1);

  /* Canonical JSON parses back to the same canonical JSON. */
  g_autofree char *json = fth_search_space_to_json(space);
  g_autoptr(FthSearchSpace) again = fth_search_space_new_from_json(json, -1, NULL, &error);
  g_assert_no_error(error);
  g_autofree char *json2 = fth_search_space_to_json(again);
  g_assert_cmpstr(json, ==, json2);

  /* Values: activity and a JSON round trip that keeps every bit. */
  double v[5] = { 0.0012345678901234567, 64, 100, 1, 0.5 };
  g_assert_true(fth_search_space_is_active(space, 0, v));
  g_assert_false(fth_search_space_is_active(space, 4, v)); /* adam: no momentum */
  v[3] = 0;
  g_assert_true(fth_search_space_is_active(space, 4, v));
  g_autofree char *vj = fth_search_space_values_to_json(space, v);
  double back[5];
  g_assert_true(fth_search_space_values_from_json(space, vj, back, &error));
  g_assert_no_error(error);
  g_assert_true(memcmp(v, back, sizeof v) == 0);
  g_assert_nonnull(strstr(vj, "\"optimizer\":\"sgd\""));
  /* Out of range values are refused with the parameter's name. */
  g_assert_false(fth_search_space_values_from_json(space, "{\"lr\": 2.0}", back, &error));
  g_assert_nonnull(strstr(error->message, "\"lr\""));
}

static void
expect_space_error(const char *json, const char *param, const char *what)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(FthSearchSpace) space = fth_search_space_new_from_json(json, -1, "bad.json", &error);
  g_assert_null(space);
  g_assert_error(error, FTH_TUNE_ERROR, FTH_TUNE_ERROR_SPACE);
  g_assert_true(g_str_has_prefix(error->message, "bad.json: "));
  if (param != NULL) {
    g_autofree char *quoted = g_strdup_printf("\"%s\"", param);
    g_assert_nonnull(strstr(error->message, quoted));
  }
  if (strstr(error->message, what) == NULL)
    g_error("message \"%s\" does not say \"%s\"", error->message, what);
}

static void
test_parse_errors(void)
{
  expect_space_error("{\"params\": [{\"name\": \"lr\", \"type\": \"float\", \"low\": 1, "
                     "\"high\": 0.5}]}",
                     "lr", "empty range");
  expect_space_error("{\"params\": [{\"name\": \"wd\", \"type\": \"float\", \"low\": 0, "
                     "\"high\": 0.1, \"log\": true}]}",
                     "wd", "log scale needs positive bounds");
  expect_space_error("{\"params\": [{\"name\": \"n\", \"type\": \"int\", \"low\": -3, "
                     "\"high\": 10, \"log\": true}]}",
                     "n", "log scale needs positive bounds");
  expect_space_error("{\"params\": [{\"name\": \"momentum\", \"type\": \"float\", \"low\": 0, "
                     "\"high\": 1, \"condition\": {\"parent\": \"optimizer\", "
                     "\"values\": [\"sgd\"]}}]}",
                     "momentum", "condition on a missing parameter \"optimizer\"");
  expect_space_error("{\"params\": [{\"name\": \"o\", \"type\": \"categorical\", "
                     "\"choices\": [\"a\"]}, {\"name\": \"m\", \"type\": \"float\", \"low\": 0, "
                     "\"high\": 1, \"condition\": {\"parent\": \"o\", \"values\": [\"b\"]}}]}",
                     "m", "is not a choice");
  expect_space_error("{\"params\": [{\"name\": \"x\", \"type\": \"complex\"}]}", "x",
                     "unknown type");
  expect_space_error("{\"params\": [{\"name\": \"x\", \"type\": \"float\", \"low\": 0}]}", "x",
                     "\"low\" and \"high\"");
  expect_space_error("{\"params\": [{\"name\": \"c\", \"type\": \"categorical\", "
                     "\"choices\": []}]}",
                     "c", "non-empty");
  expect_space_error("{\"params\": [{\"name\": \"x\", \"type\": \"float\", \"low\": 0, "
                     "\"high\": 1}], \"groups\": [[\"y\"]]}",
                     "y", "not declared");
  expect_space_error("{\"params\": []}", NULL, "non-empty array");
  expect_space_error("[1, 2", NULL, "not valid JSON");
}

static void
test_from_file_error_names_file(void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(FthSearchSpace) space =
    fth_search_space_new_from_file("/nonexistent/space.json", &error);
  g_assert_null(space);
  g_assert_nonnull(error);
  g_assert_nonnull(strstr(error->message, "/nonexistent/space.json"));
}

/* Every golden point of shared/peers/optuna (copied to tests/tune/golden) bit for bit. */
static void
test_objectives_golden(void)
{
  const char *src = g_getenv("FTH_SOURCE_DIR");
  g_assert_nonnull(src);
  g_autofree char *pp = g_build_filename(src, "tests", "tune", "golden", "golden_points.txt", NULL);
  g_autofree char *vp = g_build_filename(src, "tests", "tune", "golden", "golden_values.txt", NULL);
  g_autofree char *pt = NULL, *vt = NULL;
  g_assert_true(g_file_get_contents(pp, &pt, NULL, NULL));
  g_assert_true(g_file_get_contents(vp, &vt, NULL, NULL));
  g_auto(GStrv) pl = g_strsplit(pt, "\n", -1);
  g_auto(GStrv) vl = g_strsplit(vt, "\n", -1);
  guint checked = 0;
  for (guint i = 0; pl[i] != NULL && pl[i][0] != '\0'; i++) {
    g_assert_nonnull(vl[i]);
    g_auto(GStrv) p = g_strsplit(pl[i], " ", -1);
    g_auto(GStrv) v = g_strsplit(vl[i], " ", -1);
    double x[8];
    guint n = g_strv_length(p) - 1;
    for (guint k = 0; k < n && k < 8; k++)
      x[k] = g_ascii_strtod(p[k + 1], NULL);
    double got[2], want[2];
    guint n_out = 1;
    if (g_str_equal(p[0], "lc")) {
      guint64 seed = g_ascii_strtoull(p[4], NULL, 10);
      got[0] = fth_tune_lc_loss(x[0], x[1], (int) x[2], seed);
      got[1] = fth_tune_lc_curve_noise_free(x[0], x[1], (int) x[2]);
      n_out = 2;
    } else if (g_str_equal(p[0], "branin")) {
      got[0] = fth_tune_obj_branin(x);
    } else if (g_str_equal(p[0], "hartmann6")) {
      got[0] = fth_tune_obj_hartmann6(x);
    } else if (g_str_equal(p[0], "rosenbrock4")) {
      got[0] = fth_tune_obj_rosenbrock(x, 4);
    } else if (g_str_equal(p[0], "ackley5")) {
      got[0] = fth_tune_obj_ackley(x, 5);
    } else {
      g_error("golden line %u: unknown function %s", i + 1, p[0]);
    }
    for (guint k = 0; k < n_out; k++) {
      want[k] = g_ascii_strtod(v[k], NULL);
      if (memcmp(&got[k], &want[k], sizeof(double)) != 0)
        g_error("golden line %u (%s): got %a, want %a", i + 1, p[0], got[k], want[k]);
    }
    checked++;
  }
  g_assert_cmpuint(checked, ==, 1227);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/tune/space/parse-valid", test_parse_valid);
  g_test_add_func("/tune/space/parse-errors", test_parse_errors);
  g_test_add_func("/tune/space/file-error", test_from_file_error_names_file);
  g_test_add_func("/tune/objectives/golden", test_objectives_golden);
  return g_test_run();
}
