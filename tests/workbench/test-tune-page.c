/* test-tune-page.c: the tuning page under Xvfb: a stored study fills the trials table, sorting
 * orders it, a study started from the page (a test function: nothing trains) runs as a job and
 * the table grows, starting it again resumes it, a recipe's study trains and its best trial is
 * promoted to the current model (with Debian's Fashion-MNIST), an invalid space is refused naming the
 * parameter; and the parallel-coordinates plot's value-to-y mapping. */
#include "fth-test-project.h"
#include "fth-tune-page.h"
#include "fth-tune-trial-item.h"
#include "workbench-test-util.h"

#include <adwaita.h>
#include <math.h>

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

static void
set_flag_bool(gpointer instance, gboolean ok, gpointer data)
{
  *(gboolean *)data = TRUE;
}

static gboolean
spin_until(gboolean *flag)
{
  return fth_test_spin_until(flag_set, flag, TIMEOUT_MS);
}

typedef struct {
  char *dir;
  FthStore *store;
  GtkWindow *window;
  FthTunePage *page;
} Fixture;

static void
fixture_setup(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  f->dir = g_dir_make_tmp("fathom-tune-page-XXXXXX", &error);
  g_assert_no_error(error);
  f->store = fth_store_create(f->dir, &error);
  g_assert_no_error(error);
  f->window = GTK_WINDOW(gtk_window_new());
  gtk_window_set_default_size(f->window, 1200, 800);
  f->page = g_object_new(FTH_TYPE_TUNE_PAGE, NULL);
  gtk_window_set_child(f->window, GTK_WIDGET(f->page));
  gtk_window_present(f->window);
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
  gtk_window_destroy(f->window);
  g_object_unref(f->store);
  fth_test_rmtree(f->dir);
  g_free(f->dir);
}

/* Stores a branin study of N trials, as `fathom tune --objective branin DIR` would. */
static void
store_branin_study(Fixture *f, guint n)
{
  const FthTuneBuiltin *branin = fth_tune_builtin_find("branin");
  g_autoptr(GError) error = NULL;
  g_autoptr(FthSearchSpace) space =
    fth_search_space_new_from_json(branin->space_json, -1, "branin", &error);
  g_assert_no_error(error);
  g_autoptr(FthSampler) sampler = fth_sampler_new_random(g_test_rand_int());
  g_autoptr(FthTuneStudy) study = fth_tune_study_new("branin", space, sampler, NULL, FALSE);
  g_assert_true(fth_tune_study_open_store(study, f->store, 0, &error));
  guint64 seed = 1;
  g_assert_true(fth_tune_study_optimize(study, n, 1, branin->objective, &seed, NULL, &error));
  g_assert_no_error(error);
}

static void
load_with_jobs(Fixture *f, const char *objective, FthJobsPanel *jobs)
{
  gboolean loaded = FALSE;
  gulong id = g_signal_connect(f->page, "study-loaded", G_CALLBACK(set_flag), &loaded);
  fth_tune_page_set_project(f->page, f->store, jobs);
  g_assert_true(fth_tune_page_select_objective(f->page, objective));
  g_assert_true(spin_until(&loaded));
  g_signal_handler_disconnect(f->page, id);
}

static void
load(Fixture *f, const char *objective)
{
  load_with_jobs(f, objective, NULL);
}

static double
value_at(GListModel *model, guint i)
{
  g_autoptr(FthTuneTrialItem) item = g_list_model_get_item(model, i);
  return fth_tune_trial_item_get_value(item);
}

static void
test_stored_study(Fixture *f, gconstpointer data)
{
  store_branin_study(f, 12);
  load(f, "branin");
  GListModel *trials = fth_tune_page_get_trials(f->page);
  g_assert_cmpuint(g_list_model_get_n_items(trials), ==, 12);
  g_assert_cmpuint(fth_parallel_coords_get_n_lines(fth_tune_page_get_parallel_coords(f->page)),
                   ==, 12);
  g_assert_cmpuint(fth_tune_page_get_n_best_points(f->page), ==, 12);

  /* The stored values, to compare the sorted table with. */
  g_autoptr(GPtrArray) studies = fth_store_list_studies(f->store, NULL);
  const FthStudy *study = studies->pdata[0];
  g_autoptr(GPtrArray) stored = fth_store_list_trials(f->store, study->id, NULL);
  double lo = INFINITY, hi = -INFINITY;
  for (guint i = 0; i < stored->len; i++) {
    const FthTrial *t = stored->pdata[i];
    lo = MIN(lo, t->value);
    hi = MAX(hi, t->value);
  }

  g_assert_true(fth_tune_page_sort_by(f->page, "value", GTK_SORT_ASCENDING));
  g_assert_cmpfloat(value_at(trials, 0), ==, lo);
  for (guint i = 1; i < 12; i++)
    g_assert_cmpfloat(value_at(trials, i - 1), <=, value_at(trials, i));
  g_assert_true(fth_tune_page_sort_by(f->page, "value", GTK_SORT_DESCENDING));
  g_assert_cmpfloat(value_at(trials, 0), ==, hi);
  for (guint i = 1; i < 12; i++)
    g_assert_cmpfloat(value_at(trials, i - 1), >=, value_at(trials, i));
  /* By a parameter, and back by number. */
  g_assert_true(fth_tune_page_sort_by(f->page, "x1", GTK_SORT_ASCENDING));
  for (guint i = 1; i < 12; i++) {
    g_autoptr(FthTuneTrialItem) a = g_list_model_get_item(trials, i - 1);
    g_autoptr(FthTuneTrialItem) b = g_list_model_get_item(trials, i);
    g_assert_cmpfloat(fth_tune_trial_item_get_param(a, 1), <=, fth_tune_trial_item_get_param(b, 1));
  }
  g_assert_true(fth_tune_page_sort_by(f->page, "number", GTK_SORT_ASCENDING));
  for (guint i = 0; i < 12; i++) {
    g_autoptr(FthTuneTrialItem) a = g_list_model_get_item(trials, i);
    g_assert_cmpint(fth_tune_trial_item_get_number(a), ==, (int)i);
  }
  g_assert_false(fth_tune_page_sort_by(f->page, "no-such-column", GTK_SORT_ASCENDING));

  /* Importances of the stored trials: branin's two inputs. */
  double x0, x1;
  gboolean shown = fth_tune_page_get_importance(f->page, "x0", &x0);
  if (!shown) {
    g_signal_connect(f->page, "importances-shown", G_CALLBACK(set_flag), &shown);
    g_assert_true(spin_until(&shown));
  }
  g_assert_true(fth_tune_page_get_importance(f->page, "x0", &x0));
  g_assert_true(fth_tune_page_get_importance(f->page, "x1", &x1));
  g_assert_cmpfloat_with_epsilon(x0 + x1, 1.0, 1e-9);
}

static void
test_run_study(Fixture *f, gconstpointer data)
{
  FthJobsPanel *jobs = FTH_JOBS_PANEL(g_object_ref_sink(fth_jobs_panel_new()));
  load_with_jobs(f, "branin", jobs);
  g_assert_cmpuint(g_list_model_get_n_items(fth_tune_page_get_trials(f->page)), ==, 0);
  g_assert_true(fth_tune_page_select_sampler(f->page, "random"));
  fth_tune_page_set_budget(f->page, 8, 2, 1);
  gboolean finished = FALSE;
  g_signal_connect(f->page, "study-finished", G_CALLBACK(set_flag_bool), &finished);
  g_assert_true(fth_tune_page_start(f->page));
  /* One study at a time, shown in the jobs panel; the views stay on it. */
  g_assert_false(fth_tune_page_start(f->page));
  g_assert_false(fth_tune_page_select_objective(f->page, "lc2"));
  g_assert_cmpuint(fth_jobs_panel_get_n_jobs(jobs), ==, 1);
  g_assert_true(spin_until(&finished));
  GListModel *trials = fth_tune_page_get_trials(f->page);
  g_assert_cmpuint(g_list_model_get_n_items(trials), ==, 8);
  g_assert_cmpuint(fth_tune_page_get_n_best_points(f->page), ==, 8);
  g_assert_cmpuint(fth_parallel_coords_get_n_lines(fth_tune_page_get_parallel_coords(f->page)),
                   ==, 8);
  /* A test function trains no model: nothing to promote. */
  g_assert_false(fth_tune_page_promote_best(f->page));

  /* The study is in the store: starting again with a larger budget resumes it. */
  g_autoptr(GPtrArray) studies = fth_store_list_studies(f->store, NULL);
  g_assert_cmpuint(studies->len, ==, 1);
  fth_tune_page_set_budget(f->page, 12, 2, 1);
  finished = FALSE;
  /* Through the page's action this time (Start, Ctrl+Return). */
  g_assert_true(gtk_widget_activate_action(GTK_WIDGET(f->page), "tune.start", NULL));
  g_assert_true(spin_until(&finished));
  g_assert_cmpuint(g_list_model_get_n_items(trials), ==, 12);
  g_autoptr(GPtrArray) stored =
    fth_store_list_trials(f->store, ((FthStudy *)studies->pdata[0])->id, NULL);
  g_assert_cmpuint(stored->len, ==, 12);
  g_assert_cmpuint(fth_jobs_panel_get_n_jobs(jobs), ==, 2);
  g_assert_cmpuint(fth_jobs_panel_get_n_running(jobs), ==, 0);
  g_object_unref(jobs);
}

static gboolean
has_trials(gpointer data)
{
  return g_list_model_get_n_items(fth_tune_page_get_trials(data)) >= 5;
}

/* Stop ends a long study early; what it ran stays in the store. */
static void
test_stop(Fixture *f, gconstpointer data)
{
  load(f, "branin");
  fth_tune_page_set_budget(f->page, 10000, 1, 1);
  g_assert_true(fth_tune_page_select_sampler(f->page, "random"));
  gboolean finished = FALSE;
  g_signal_connect(f->page, "study-finished", G_CALLBACK(set_flag_bool), &finished);
  g_assert_false(fth_tune_page_stop(f->page));
  g_assert_true(fth_tune_page_start(f->page));
  g_assert_true(fth_test_spin_until(has_trials, f->page, TIMEOUT_MS));
  g_assert_true(fth_tune_page_stop(f->page));
  g_assert_true(spin_until(&finished));
  guint shown = g_list_model_get_n_items(fth_tune_page_get_trials(f->page));
  g_assert_cmpuint(shown, <, 10000);
  g_assert_nonnull(strstr(fth_tune_page_get_status(f->page), "Start resumes it"));
  g_autoptr(GPtrArray) studies = fth_store_list_studies(f->store, NULL);
  g_autoptr(GPtrArray) stored =
    fth_store_list_trials(f->store, ((FthStudy *)studies->pdata[0])->id, NULL);
  /* Every trial shown is stored; a trial cut short is stored as failed too. */
  g_assert_cmpuint(stored->len, >=, shown);
}

/* A learning-curve study with ASHA: trials stop early (one worker: the same trials each run). */
static void
test_pruner(Fixture *f, gconstpointer data)
{
  load(f, "lc2");
  g_assert_false(fth_tune_page_select_pruner(f->page, "annealing"));
  g_assert_true(fth_tune_page_select_pruner(f->page, "asha"));
  g_assert_true(fth_tune_page_select_sampler(f->page, "random"));
  fth_tune_page_set_budget(f->page, 16, 1, 1);
  gboolean finished = FALSE;
  g_signal_connect(f->page, "study-finished", G_CALLBACK(set_flag_bool), &finished);
  g_assert_true(fth_tune_page_start(f->page));
  g_assert_true(spin_until(&finished));
  GListModel *trials = fth_tune_page_get_trials(f->page);
  g_assert_cmpuint(g_list_model_get_n_items(trials), ==, 16);
  guint pruned = 0, complete = 0;
  for (guint i = 0; i < 16; i++) {
    g_autoptr(FthTuneTrialItem) item = g_list_model_get_item(trials, i);
    g_assert_cmpuint(fth_tune_trial_item_get_n_params(item), ==, 2);
    pruned += fth_tune_trial_item_get_state(item) == FTH_TUNE_TRIAL_PRUNED;
    complete += fth_tune_trial_item_get_state(item) == FTH_TUNE_TRIAL_COMPLETE;
  }
  g_assert_cmpuint(pruned, >, 0);
  g_assert_cmpuint(complete, >, 0);
  g_assert_cmpuint(pruned + complete, ==, 16);
  /* Only completed trials have a point on the best-so-far curve and a line. */
  g_assert_cmpuint(fth_tune_page_get_n_best_points(f->page), ==, complete);
  g_assert_cmpuint(fth_parallel_coords_get_n_lines(fth_tune_page_get_parallel_coords(f->page)),
                   ==, complete);
}

/* A recipe's study trains (the MLP, one epoch, on 200 images) and its best trial becomes the
 * project's current model. */
static void
test_recipe_promote(Fixture *f, gconstpointer data)
{
  if (!g_file_test(FTH_TEST_FMNIST "/train-images-idx3-ubyte.gz", G_FILE_TEST_EXISTS)) {
    g_test_skip("Debian's dataset-fashion-mnist is not installed");
    return;
  }
  fth_test_add_fmnist_items(f->store, 200);
  load(f, "mlp");
  g_assert_true(fth_tune_page_select_sampler(f->page, "random"));
  fth_tune_page_set_budget(f->page, 2, 1, 1);
  gboolean finished = FALSE;
  g_signal_connect(f->page, "study-finished", G_CALLBACK(set_flag_bool), &finished);
  g_assert_true(fth_tune_page_start(f->page));
  g_assert_true(spin_until(&finished));
  GListModel *trials = fth_tune_page_get_trials(f->page);
  g_assert_cmpuint(g_list_model_get_n_items(trials), ==, 2);
  g_assert_true(fth_tune_page_sort_by(f->page, "value", GTK_SORT_DESCENDING));
  double best = value_at(trials, 0);
  g_assert_cmpfloat(best, >=, 0);
  g_assert_cmpfloat(best, <=, 1);

  /* Read back from the store, the study can be promoted (through the page's action). */
  load(f, "mlp");
  g_assert_cmpuint(g_list_model_get_n_items(trials), ==, 2);
  gboolean promoted = FALSE;
  g_signal_connect(f->page, "promoted", G_CALLBACK(set_flag_bool), &promoted);
  g_assert_true(gtk_widget_activate_action(GTK_WIDGET(f->page), "tune.promote", NULL));
  g_assert_true(spin_until(&promoted));
  /* The newest finished training run is the study's best, holding its checkpoint. */
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) runs = fth_store_list_runs(f->store, "train", &error);
  g_assert_no_error(error);
  const FthRun *newest = runs->pdata[0];
  g_assert_cmpstr(newest->name, ==, "tune-mlp-best");
  g_assert_cmpint(newest->state, ==, FTH_RUN_DONE);
}

static void
test_invalid_space(Fixture *f, gconstpointer data)
{
  load(f, "fmnist-cnn");
  g_assert_cmpstr(fth_tune_page_get_message(f->page), ==, "");
  /* A log parameter with a non-positive bound: the engine's message names it. */
  g_assert_true(fth_tune_page_set_param_field(f->page, "lr", "low", "-1"));
  const char *message = fth_tune_page_get_message(f->page);
  g_assert_nonnull(strstr(message, "lr"));
  g_assert_false(fth_tune_page_start(f->page));
  g_autoptr(GError) error = NULL;
  g_assert_null(fth_tune_page_get_space(f->page, &error));
  g_assert_error(error, FTH_TUNE_ERROR, FTH_TUNE_ERROR_SPACE);
  g_clear_error(&error);
  /* Not a number. */
  g_assert_true(fth_tune_page_set_param_field(f->page, "weight_decay", "high", "lots"));
  g_assert_true(fth_tune_page_set_param_field(f->page, "lr", "low", "1e-4"));
  g_assert_nonnull(strstr(fth_tune_page_get_message(f->page), "weight_decay"));
  g_assert_true(fth_tune_page_set_param_field(f->page, "weight_decay", "high", "0.05"));
  g_assert_cmpstr(fth_tune_page_get_message(f->page), ==, "");
  /* An empty range. */
  g_assert_true(fth_tune_page_set_param_field(f->page, "dropout", "high", "-0.5"));
  g_assert_nonnull(strstr(fth_tune_page_get_message(f->page), "dropout"));
  g_assert_true(fth_tune_page_set_param_field(f->page, "dropout", "high", "0.5"));
  /* A kind change: width as a categorical of its choices. */
  g_assert_true(fth_tune_page_set_param_field(f->page, "width", "choices", "16, 32"));
  g_assert_true(fth_tune_page_set_param_field(f->page, "width", "kind", "categorical"));
  g_autoptr(FthSearchSpace) space = fth_tune_page_get_space(f->page, &error);
  g_assert_no_error(error);
  const FthTuneParam *width =
    fth_search_space_get_param(space, (guint)fth_search_space_find(space, "width"));
  g_assert_cmpint(width->kind, ==, FTH_PARAM_CATEGORICAL);
  g_assert_cmpuint(width->n_choices, ==, 2);
  /* The condition survives the form: momentum only for SGD. */
  const FthTuneParam *momentum =
    fth_search_space_get_param(space, (guint)fth_search_space_find(space, "momentum"));
  g_assert_cmpint(momentum->parent, ==, fth_search_space_find(space, "optimizer"));
  g_assert_false(fth_tune_page_set_param_field(f->page, "no-such-param", "low", "1"));
}

/* The page fits a small window (the workbench's stack takes its widest page's minimum). */
static void
test_minimum_width(Fixture *f, gconstpointer data)
{
  load(f, "fmnist-cnn");
  int minimum = 0, natural = 0;
  gtk_widget_measure(GTK_WIDGET(f->page), GTK_ORIENTATION_HORIZONTAL, -1, &minimum, &natural,
                     NULL, NULL);
  g_test_message("tuning page: minimum width %d, natural %d", minimum, natural);
  g_assert_cmpint(minimum, <=, 600);
}

static const char PC_SPACE[] =
  "{\"params\": [{\"name\": \"lr\", \"type\": \"float\", \"low\": 1e-4, \"high\": 1, \"log\": true},"
  "{\"name\": \"width\", \"type\": \"int\", \"low\": 16, \"high\": 64},"
  "{\"name\": \"opt\", \"type\": \"categorical\", \"choices\": [\"sgd\", \"adam\", \"rms\"]},"
  "{\"name\": \"momentum\", \"type\": \"float\", \"low\": 0, \"high\": 1,"
  " \"condition\": {\"parent\": \"opt\", \"values\": [\"sgd\"]}}]}";

static void
test_parallel_coords_mapping(void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(FthSearchSpace) space = fth_search_space_new_from_json(PC_SPACE, -1, "pc", &error);
  g_assert_no_error(error);
  FthParallelCoords *pc = FTH_PARALLEL_COORDS(g_object_ref_sink(fth_parallel_coords_new()));
  fth_parallel_coords_set_space(pc, space, "loss", FALSE);
  g_assert_cmpuint(fth_parallel_coords_get_n_axes(pc), ==, 5);
  const int h = 400;
  /* The axis ends: high at the top, low at the bottom (same for every axis). */
  double top = fth_parallel_coords_value_to_y(pc, 1, 64, h);
  double bottom = fth_parallel_coords_value_to_y(pc, 1, 16, h);
  g_assert_cmpfloat(top, <, bottom);
  g_assert_cmpfloat(top, >=, 0);
  g_assert_cmpfloat(bottom, <=, h);
  g_assert_cmpfloat_with_epsilon(fth_parallel_coords_value_to_y(pc, 0, 1, h), top, 1e-9);
  g_assert_cmpfloat_with_epsilon(fth_parallel_coords_value_to_y(pc, 0, 1e-4, h), bottom, 1e-9);
  /* Log axis: 1e-2 is half way, 1e-3 a quarter up. Linear axis: 40 is half way. */
  double mid = (top + bottom) / 2;
  g_assert_cmpfloat_with_epsilon(fth_parallel_coords_value_to_y(pc, 0, 1e-2, h), mid, 1e-9);
  g_assert_cmpfloat_with_epsilon(fth_parallel_coords_value_to_y(pc, 0, 1e-3, h),
                                 bottom - 0.25 * (bottom - top), 1e-9);
  g_assert_cmpfloat_with_epsilon(fth_parallel_coords_value_to_y(pc, 1, 40, h), mid, 1e-9);
  /* Categorical: choice i in the middle of the i-th of three bands, from the bottom. */
  for (int c = 0; c < 3; c++)
    g_assert_cmpfloat_with_epsilon(fth_parallel_coords_value_to_y(pc, 2, c, h),
                                   bottom - (c + 0.5) / 3 * (bottom - top), 1e-9);
  /* Inactive: no position. */
  g_assert_true(isnan(fth_parallel_coords_value_to_y(pc, 3, NAN, h)));
  /* The objective axis spans the values added. */
  double a[4] = { 1e-3, 20, 0, 0.5 }, b[4] = { 1e-1, 60, 1, NAN }, c[4] = { 0.5, 30, 2, NAN };
  fth_parallel_coords_add_line(pc, a, 1.0);
  fth_parallel_coords_add_line(pc, b, 3.0);
  fth_parallel_coords_add_line(pc, c, 2.0);
  fth_parallel_coords_add_line(pc, c, NAN); /* no value: not drawn */
  g_assert_cmpuint(fth_parallel_coords_get_n_lines(pc), ==, 3);
  g_assert_cmpfloat_with_epsilon(fth_parallel_coords_value_to_y(pc, 4, 3.0, h), top, 1e-9);
  g_assert_cmpfloat_with_epsilon(fth_parallel_coords_value_to_y(pc, 4, 1.0, h), bottom, 1e-9);
  g_assert_cmpfloat_with_epsilon(fth_parallel_coords_value_to_y(pc, 4, 2.0, h), mid, 1e-9);
  /* Brushing: lr in [1e-2, 1] keeps two lines; with opt = adam only one; cleared, all. */
  g_assert_cmpuint(fth_parallel_coords_brush(pc, 0, 1e-2, 1), ==, 2);
  g_assert_cmpuint(fth_parallel_coords_brush(pc, 2, 1, 1), ==, 1);
  g_assert_cmpuint(fth_parallel_coords_brush(pc, 0, NAN, NAN), ==, 1);
  g_assert_cmpuint(fth_parallel_coords_brush(pc, 2, NAN, NAN), ==, 3);
  g_object_unref(pc);
}

int
main(int argc, char **argv)
{
  gtk_test_init(&argc, &argv, NULL);
  adw_init();
  g_test_add("/tune-page/stored-study", Fixture, NULL, fixture_setup, test_stored_study,
             fixture_teardown);
  g_test_add("/tune-page/run-and-resume", Fixture, NULL, fixture_setup, test_run_study,
             fixture_teardown);
  g_test_add("/tune-page/stop", Fixture, NULL, fixture_setup, test_stop, fixture_teardown);
  g_test_add("/tune-page/pruner", Fixture, NULL, fixture_setup, test_pruner, fixture_teardown);
  g_test_add("/tune-page/recipe-promote", Fixture, NULL, fixture_setup, test_recipe_promote,
             fixture_teardown);
  g_test_add("/tune-page/invalid-space", Fixture, NULL, fixture_setup, test_invalid_space,
             fixture_teardown);
  g_test_add("/tune-page/minimum-width", Fixture, NULL, fixture_setup, test_minimum_width,
             fixture_teardown);
  g_test_add_func("/tune-page/parallel-coords-mapping", test_parallel_coords_mapping);
  return g_test_run();
}
