/* Studies kept in the project's store: every trial and intermediate value is a row, and a study
 * whose process was killed mid-trial resumes from the store to the same trials as an
 * uninterrupted run. */
#include <fathom/store.h>
#include <fathom/tune.h>
#include <glib/gstdio.h>
#include <math.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

enum { N_TRIALS = 16, N_STEPS = 9, KILL_TRIAL = 10, KILL_STEP = 2 };

typedef struct {
  gboolean kill; /* SIGKILL itself in the first trial from KILL_TRIAL on to reach KILL_STEP */
} LcRun;

/* LC2's noisy learning curve for 9 epochs, reported epoch by epoch. */
static gboolean
lc_objective(FthTuneTrialContext *ctx, gpointer data, double *value, GError **error)
{
  LcRun *run = data;
  const double *x = fth_tune_trial_get_values(ctx);
  for (int t = 1; t <= N_STEPS; t++) {
    if (run->kill && fth_tune_trial_get_number(ctx) >= KILL_TRIAL && t == KILL_STEP)
      raise(SIGKILL);
    *value = fth_tune_lc_loss(x[0], x[1], t, 7);
    if (fth_tune_trial_report(ctx, t, *value))
      break;
  }
  return TRUE;
}

typedef struct {
  FthSearchSpace *space;
  FthSampler *sampler;
  FthPruner *pruner;
  FthTuneStudy *study;
} Lc;

static void
lc_init(Lc *lc)
{
  const FthTuneBuiltin *b = fth_tune_builtin_find("lc2");
  lc->space = fth_search_space_new_from_json(b->space_json, -1, "lc2", NULL);
  g_assert_nonnull(lc->space);
  lc->sampler = fth_sampler_new_by_name("tpe", 5, NULL);
  lc->pruner = fth_pruner_new_asha(1, 3, 0);
  lc->study = fth_tune_study_new("lc", lc->space, lc->sampler, lc->pruner, FALSE);
}

static void
lc_clear(Lc *lc)
{
  fth_tune_study_free(lc->study);
  fth_pruner_free(lc->pruner);
  fth_sampler_free(lc->sampler);
  fth_search_space_unref(lc->space);
}

static char *
project_dir(gboolean in_child)
{
  g_autofree char *name =
    g_strdup_printf("fth-tune-store-%d", (int) (in_child ? getppid() : getpid()));
  return g_build_filename(g_get_tmp_dir(), name, NULL);
}

static void
remove_project(const char *dir)
{
  g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
  const char *name;
  while (d != NULL && (name = g_dir_read_name(d)) != NULL) {
    g_autofree char *path = g_build_filename(dir, name, NULL);
    g_unlink(path);
  }
  g_rmdir(dir);
}

/* The child: runs the study in the store and is killed inside a trial, after one report. */
static void
test_store_child(void)
{
  if (!g_test_subprocess())
    return;
  g_autofree char *dir = project_dir(TRUE);
  g_autoptr(FthStore) store = fth_store_open(dir, NULL);
  g_assert_nonnull(store);
  Lc lc;
  lc_init(&lc);
  g_assert_true(fth_tune_study_open_store(lc.study, store, 0, NULL));
  LcRun run = { TRUE };
  fth_tune_study_optimize(lc.study, N_TRIALS, 1, lc_objective, &run, NULL, NULL);
  g_assert_not_reached();
}

static void
assert_rows_match(FthStore *store, FthTuneStudy *study)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) rows =
    fth_store_list_trials(store, fth_tune_study_get_store_id(study), &error);
  g_assert_no_error(error);
  g_assert_cmpuint(rows->len, ==, fth_tune_study_get_n_trials(study));
  for (guint i = 0; i < rows->len; i++) {
    const FthTrial *row = g_ptr_array_index(rows, i);
    const FthTuneTrial *t = fth_tune_study_get_trial(study, i);
    g_assert_cmpint(row->number, ==, t->number);
    g_assert_cmpint((int) row->state, ==, (int) t->state);
    g_assert_cmpint(row->has_value, ==, t->state == FTH_TUNE_TRIAL_COMPLETE);
    if (row->has_value)
      g_assert_cmpfloat(row->value, ==, t->value);
    double params[2];
    g_assert_true(fth_search_space_values_from_json(fth_tune_study_get_space(study),
                                                    row->params_json, params, NULL));
    g_assert_true(memcmp(params, t->params, sizeof params) == 0);
    g_autoptr(GArray) values = fth_store_list_trial_values(store, row->id, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(values->len, ==, t->n_steps);
    for (guint k = 0; k < values->len; k++) {
      g_assert_cmpint(g_array_index(values, FthTrialValue, k).step, ==, t->steps[k]);
      g_assert_cmpfloat(g_array_index(values, FthTrialValue, k).value, ==, t->step_values[k]);
    }
  }
}

static void
test_store_resume_after_kill(void)
{
  g_autofree char *dir = project_dir(FALSE);
  remove_project(dir);
  g_autoptr(GError) error = NULL;
  {
    g_autoptr(FthStore) created = fth_store_create(dir, &error);
    g_assert_no_error(error);
  }
  g_test_trap_subprocess("/tune/store/child", 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_failed();

  /* The uninterrupted reference, in memory. */
  Lc ref;
  lc_init(&ref);
  LcRun run = { FALSE };
  g_assert_true(fth_tune_study_optimize(ref.study, N_TRIALS, 1, lc_objective, &run, NULL, NULL));

  g_autoptr(FthStore) store = fth_store_open(dir, &error);
  g_assert_no_error(error);
  Lc resumed;
  lc_init(&resumed);
  g_assert_true(fth_tune_study_open_store(resumed.study, store, 0, &error));
  g_assert_no_error(error);
  /* The trials up to the killed one are back; the killed one was running and runs again. */
  guint n_back = fth_tune_study_get_n_trials(resumed.study);
  g_assert_cmpuint(n_back, >, KILL_TRIAL);
  g_assert_cmpuint(n_back, <, N_TRIALS);
  g_assert_cmpint(fth_tune_study_get_trial(resumed.study, n_back - 1)->state, ==,
                  FTH_TUNE_TRIAL_RUNNING);
  g_assert_cmpint(fth_tune_study_get_trial(resumed.study, n_back - 2)->state, !=,
                  FTH_TUNE_TRIAL_RUNNING);
  g_assert_true(
    fth_tune_study_optimize(resumed.study, N_TRIALS, 1, lc_objective, &run, NULL, &error));
  g_assert_no_error(error);

  g_assert_cmpuint(fth_tune_study_get_n_trials(resumed.study), ==, N_TRIALS);
  guint n_pruned = 0;
  for (guint i = 0; i < N_TRIALS; i++) {
    const FthTuneTrial *a = fth_tune_study_get_trial(ref.study, i);
    const FthTuneTrial *b = fth_tune_study_get_trial(resumed.study, i);
    g_assert_cmpint(a->state, ==, b->state);
    g_assert_true(memcmp(a->params, b->params, 2 * sizeof(double)) == 0);
    g_assert_cmpuint(a->n_steps, ==, b->n_steps);
    g_assert_true(memcmp(a->step_values, b->step_values, a->n_steps * sizeof(double)) == 0);
    if (a->state == FTH_TUNE_TRIAL_COMPLETE)
      g_assert_cmpfloat(a->value, ==, b->value);
    n_pruned += a->state == FTH_TUNE_TRIAL_PRUNED;
  }
  g_assert_cmpuint(n_pruned, >, 0); /* the pruner's rung records were rebuilt and used */
  g_assert_cmpint(fth_tune_study_get_steps_used(ref.study), ==,
                  fth_tune_study_get_steps_used(resumed.study));
  /* Every trial and every intermediate value is a row of the store. */
  assert_rows_match(store, resumed.study);
  lc_clear(&resumed);
  lc_clear(&ref);

  /* A second process sees the finished study; a different space under the name is refused. */
  Lc again;
  lc_init(&again);
  g_assert_true(fth_tune_study_open_store(again.study, store, 0, &error));
  g_assert_cmpuint(fth_tune_study_get_n_trials(again.study), ==, N_TRIALS);
  lc_clear(&again);
  g_autoptr(FthSearchSpace) other = fth_search_space_new_from_json(
    "{\"params\": [{\"name\": \"x\", \"type\": \"float\", \"low\": 0, \"high\": 1}]}", -1, NULL,
    NULL);
  g_autoptr(FthSampler) r = fth_sampler_new_random(1);
  g_autoptr(FthTuneStudy) wrong = fth_tune_study_new("lc", other, r, NULL, FALSE);
  g_assert_false(fth_tune_study_open_store(wrong, store, 0, &error));
  g_assert_error(error, FTH_TUNE_ERROR, FTH_TUNE_ERROR_STORE);
  g_assert_nonnull(strstr(error->message, "fathom.db"));
  g_assert_nonnull(strstr(error->message, "search space differs"));
  g_clear_object(&store);
  remove_project(dir);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/tune/store/child", test_store_child);
  g_test_add_func("/tune/store/resume", test_store_resume_after_kill);
  return g_test_run();
}
