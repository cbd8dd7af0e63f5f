/* Samplers, pruners and the study runner on small cases with known answers. */
#include <fathom/tune.h>
#include <glib/gstdio.h>
#include <math.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

/* ---- helpers -------------------------------------------------------------------------------- */

static FthSearchSpace *
space_from(const char *json)
{
  g_autoptr(GError) error = NULL;
  FthSearchSpace *space = fth_search_space_new_from_json(json, -1, NULL, &error);
  g_assert_no_error(error);
  return space;
}

static const char *QUAD2 =
  "{\"params\": [{\"name\": \"x\", \"type\": \"float\", \"low\": -5, \"high\": 5},"
  " {\"name\": \"y\", \"type\": \"float\", \"low\": -5, \"high\": 5}]}";

static gboolean
quadratic_objective(FthTuneTrialContext *ctx, gpointer data, double *value, GError **error)
{
  double x = fth_tune_trial_get_value(ctx, "x") - 1.0, y = fth_tune_trial_get_value(ctx, "y") + 2.0;
  *value = x * x + y * y;
  return TRUE;
}

static double
best_after(FthSampler *sampler, const char *space_json, guint n_trials, FthObjectiveFunc f)
{
  g_autoptr(FthSearchSpace) space = space_from(space_json);
  g_autoptr(FthTuneStudy) study = fth_tune_study_new("q", space, sampler, NULL, FALSE);
  g_autoptr(GError) error = NULL;
  g_assert_true(fth_tune_study_optimize(study, n_trials, 1, f, NULL, NULL, &error));
  g_assert_no_error(error);
  g_assert_cmpuint(fth_tune_study_get_n_trials(study), ==, n_trials);
  return fth_tune_study_get_best_trial(study)->value;
}

static int
cmp_double(const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return x < y ? -1 : x > y;
}

static double
median(double *v, guint n)
{
  qsort(v, n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* A trial record for pruner tests: steps 1..n with the given values. */
static FthTuneTrial *
make_trial(int number, FthTuneTrialState state, const double *values, guint n)
{
  FthTuneTrial *t = g_new0(FthTuneTrial, 1);
  t->number = number;
  t->state = state;
  t->value = state == FTH_TUNE_TRIAL_COMPLETE ? values[n - 1] : NAN;
  t->steps = g_new(gint64, MAX(n, 1u));
  t->step_values = g_new(double, MAX(n, 1u));
  for (guint k = 0; k < n; k++) {
    t->steps[k] = k + 1;
    t->step_values[k] = values[k];
  }
  t->n_steps = t->steps_capacity = n;
  return t;
}

static void
free_trial(gpointer p)
{
  FthTuneTrial *t = p;
  g_free(t->steps);
  g_free(t->step_values);
  g_free(t->params);
  g_free(t);
}

/* ---- samplers ------------------------------------------------------------------------------- */

static const char *COND =
  "{\"params\": [{\"name\": \"opt\", \"type\": \"categorical\", \"choices\": [\"sgd\", \"adam\", \"rms\"]},"
  " {\"name\": \"momentum\", \"type\": \"float\", \"low\": 0, \"high\": 0.99,"
  "  \"condition\": {\"parent\": \"opt\", \"values\": [\"sgd\", \"rms\"]}},"
  " {\"name\": \"beta2\", \"type\": \"float\", \"low\": 0.9, \"high\": 0.9999, \"log\": true,"
  "  \"condition\": {\"parent\": \"opt\", \"values\": [\"adam\"]}},"
  " {\"name\": \"width\", \"type\": \"int\", \"low\": 8, \"high\": 64, \"step\": 8},"
  " {\"name\": \"depth\", \"type\": \"int\", \"low\": 1, \"high\": 100, \"log\": true}]}";

static gboolean
cond_objective(FthTuneTrialContext *ctx, gpointer data, double *value, GError **error)
{
  const char *opt = fth_tune_trial_get_choice(ctx, "opt");
  gboolean sgd_like = g_str_equal(opt, "\"sgd\"") || g_str_equal(opt, "\"rms\"");
  /* Conditional parameters exist exactly when their parent allows them. */
  g_assert_cmpint(fth_tune_trial_is_active(ctx, "momentum"), ==, sgd_like);
  g_assert_cmpint(fth_tune_trial_is_active(ctx, "beta2"), ==, !sgd_like);
  double w = fth_tune_trial_get_value(ctx, "width"), d = fth_tune_trial_get_value(ctx, "depth");
  g_assert_true(w >= 8 && w <= 64 && fmod(w, 8) == 0);
  g_assert_true(d >= 1 && d <= 100 && d == floor(d));
  double m = sgd_like ? fth_tune_trial_get_value(ctx, "momentum") : 0.5;
  g_assert_true(m >= 0 && m <= 0.99);
  *value = (m - 0.9) * (m - 0.9) + fabs(w - 32) / 32 + fabs(log(d) - 1.0);
  return TRUE;
}

static void
test_conditional_never_inactive_parent(void)
{
  const char *names[] = { "random", "tpe", "tpe-mv", "gp" };
  for (guint s = 0; s < G_N_ELEMENTS(names); s++) {
    g_autoptr(GError) error = NULL;
    g_autoptr(FthSampler) sampler = fth_sampler_new_by_name(names[s], 7, &error);
    g_assert_no_error(error);
    g_autoptr(FthSearchSpace) space = space_from(COND);
    g_autoptr(FthTuneStudy) study = fth_tune_study_new("c", space, sampler, NULL, FALSE);
    g_assert_true(fth_tune_study_optimize(study, 25, 1, cond_objective, NULL, NULL, &error));
    g_assert_no_error(error);
    g_assert_cmpuint(fth_tune_study_get_n_trials(study), ==, 25);
  }
}

static void
test_grid_enumerates_and_exhausts(void)
{
  g_autoptr(FthSearchSpace) space = space_from(
    "{\"params\": [{\"name\": \"a\", \"type\": \"int\", \"low\": 1, \"high\": 2},"
    " {\"name\": \"b\", \"type\": \"categorical\", \"choices\": [\"x\", \"y\", \"z\"]},"
    " {\"name\": \"c\", \"type\": \"float\", \"low\": 1, \"high\": 100, \"log\": true}]}");
  g_autoptr(FthSampler) grid = fth_sampler_new_grid(3);
  g_autoptr(FthTuneStudy) study = fth_tune_study_new("g", space, grid, NULL, FALSE);
  g_autoptr(GError) error = NULL;
  g_assert_true(fth_tune_study_optimize(study, 100, 2, quadratic_objective, NULL, NULL, &error));
  g_assert_no_error(error);
  /* 2 x 3 x 3 points, then the grid is exhausted and the study stops without an error. */
  g_assert_cmpuint(fth_tune_study_get_n_trials(study), ==, 18);
  gboolean seen[2][3][3] = { { { FALSE } } };
  for (guint i = 0; i < 18; i++) {
    const FthTuneTrial *t = fth_tune_study_get_trial(study, i);
    int a = (int) t->params[0] - 1, b = (int) t->params[1];
    double c = t->params[2];
    int ci = fabs(c - 1) < 1e-9 ? 0 : fabs(c - 10) < 1e-9 ? 1 : fabs(c - 100) < 1e-9 ? 2 : -1;
    g_assert_cmpint(ci, >=, 0); /* log axis: 1, 10, 100 */
    g_assert_false(seen[a][b][ci]);
    seen[a][b][ci] = TRUE;
  }
}

static gboolean
xy_objective(FthTuneTrialContext *ctx, gpointer data, double *value, GError **error)
{
  return quadratic_objective(ctx, data, value, error);
}

/* TPE beats random on a 2-D quadratic in 40 trials, over 21 seeds (median best value). */
static void
test_tpe_beats_random(void)
{
  enum { SEEDS = 21, TRIALS = 40 };
  double tpe[SEEDS], tpe_mv[SEEDS], rnd[SEEDS];
  guint tpe_wins = 0;
  for (guint s = 0; s < SEEDS; s++) {
    FthTpeOptions o;
    fth_tpe_options_init(&o);
    g_autoptr(FthSampler) a = fth_sampler_new_tpe(&o, s + 1);
    o.multivariate = TRUE;
    g_autoptr(FthSampler) b = fth_sampler_new_tpe(&o, s + 1);
    g_autoptr(FthSampler) r = fth_sampler_new_random(s + 1);
    tpe[s] = best_after(a, QUAD2, TRIALS, xy_objective);
    tpe_mv[s] = best_after(b, QUAD2, TRIALS, xy_objective);
    rnd[s] = best_after(r, QUAD2, TRIALS, xy_objective);
    tpe_wins += tpe[s] < rnd[s];
  }
  double mt = median(tpe, SEEDS), mm = median(tpe_mv, SEEDS), mr = median(rnd, SEEDS);
  g_test_message("median best after %d trials: tpe %.4g, tpe-mv %.4g, random %.4g", TRIALS, mt,
                 mm, mr);
  g_assert_cmpfloat(mt, <, 0.5 * mr);
  g_assert_cmpfloat(mm, <, 0.5 * mr);
  g_assert_cmpuint(tpe_wins, >=, 14);
}

/* Start-up: the first 10 TPE trials are the random sampler's draws of the same seed's stream
 * shape, and a TPE sample after a history concentrated near x = 2 lands near 2. */
static void
test_tpe_known_answer(void)
{
  g_autoptr(FthSearchSpace) space =
    space_from("{\"params\": [{\"name\": \"x\", \"type\": \"float\", \"low\": 0, \"high\": 10}]}");
  FthTpeOptions o;
  fth_tpe_options_init(&o);
  g_autoptr(FthSampler) tpe = fth_sampler_new_tpe(&o, 3);
  GPtrArray *hist = g_ptr_array_new_with_free_func(free_trial);
  /* 30 complete trials: x spread over [0, 10], value |x - 2|, so the best 3 are near 2. */
  for (int i = 0; i < 30; i++) {
    double x = 10.0 * i / 29.0, v = fabs(x - 2.0);
    FthTuneTrial *t = make_trial(i, FTH_TUNE_TRIAL_COMPLETE, &v, 1);
    t->params = g_new(double, 1);
    t->params[0] = x;
    g_ptr_array_add(hist, t);
  }
  guint near = 0;
  for (int n = 30; n < 60; n++) {
    double x;
    g_autoptr(GError) error = NULL;
    g_assert_true(fth_sampler_sample(tpe, space, (const FthTuneTrial *const *) hist->pdata,
                                     hist->len, n, FALSE, &x, &error));
    g_assert_true(x >= 0 && x <= 10);
    near += fabs(x - 2.0) < 1.0;
  }
  g_assert_cmpuint(near, >=, 25);
  /* Maximising flips which trials are good: the best are now near x = 10. */
  guint far = 0;
  for (int n = 30; n < 60; n++) {
    double x;
    g_assert_true(fth_sampler_sample(tpe, space, (const FthTuneTrial *const *) hist->pdata,
                                     hist->len, n, TRUE, &x, NULL));
    far += x > 8.5;
  }
  g_assert_cmpuint(far, >=, 25);
  g_ptr_array_unref(hist);
}

static gboolean
branin_objective(FthTuneTrialContext *ctx, gpointer data, double *value, GError **error)
{
  double x[2] = { fth_tune_trial_get_value(ctx, "x0"), fth_tune_trial_get_value(ctx, "x1") };
  *value = fth_tune_obj_branin(x);
  return TRUE;
}

/* The GP sampler finds Branin's minimum (0.397887) to within 0.05 in 30 trials for most
 * seeds; random search does not. */
static void
test_gp_branin(void)
{
  const char *space =
    "{\"params\": [{\"name\": \"x0\", \"type\": \"float\", \"low\": -5, \"high\": 10},"
    " {\"name\": \"x1\", \"type\": \"float\", \"low\": 0, \"high\": 15}]}";
  double gp[5], rnd[5];
  for (guint s = 0; s < 5; s++) {
    g_autoptr(FthSampler) g = fth_sampler_new_gp(NULL, s + 1);
    g_autoptr(FthSampler) r = fth_sampler_new_random(s + 1);
    gp[s] = best_after(g, space, 30, branin_objective) - 0.397887;
    rnd[s] = best_after(r, space, 30, branin_objective) - 0.397887;
  }
  double mg = median(gp, 5), mr = median(rnd, 5);
  g_test_message("branin regret after 30: gp %.4g, random %.4g", mg, mr);
  g_assert_cmpfloat(mg, <, 0.05);
  g_assert_cmpfloat(mg, <, mr);
}

/* ---- pruners -------------------------------------------------------------------------------- */

static void
test_median_pruner(void)
{
  g_autoptr(FthPruner) p = fth_pruner_new_median(5, 0);
  GPtrArray *h = g_ptr_array_new_with_free_func(free_trial);
  for (int i = 0; i < 4; i++) {
    double v[2] = { i + 1.0, i + 0.5 };
    g_ptr_array_add(h, make_trial(i, FTH_TUNE_TRIAL_COMPLETE, v, 2));
  }
  double bad = 100;
  FthTuneTrial *t = make_trial(9, FTH_TUNE_TRIAL_RUNNING, &bad, 1);
  g_ptr_array_add(h, t);
  /* 4 completed: still in start-up. */
  g_assert_false(fth_pruner_should_prune(p, t, (const FthTuneTrial *const *) h->pdata, h->len,
                                         FALSE));
  double v5[2] = { 5.0, 4.5 };
  g_ptr_array_insert(h, 4, make_trial(4, FTH_TUNE_TRIAL_COMPLETE, v5, 2));
  /* Step-1 values of completed trials: 1..5, median 3. */
  t->step_values[0] = 3.5;
  g_assert_true(fth_pruner_should_prune(p, t, (const FthTuneTrial *const *) h->pdata, h->len,
                                        FALSE));
  t->step_values[0] = 2.5;
  g_assert_false(fth_pruner_should_prune(p, t, (const FthTuneTrial *const *) h->pdata, h->len,
                                         FALSE));
  /* Maximising: 2.5 is below the median of 1..5, so it is pruned. */
  g_assert_true(fth_pruner_should_prune(p, t, (const FthTuneTrial *const *) h->pdata, h->len,
                                        TRUE));
  /* Pruned trials do not count towards the median. */
  double low[1] = { -100 };
  for (int i = 0; i < 5; i++)
    g_ptr_array_add(h, make_trial(20 + i, FTH_TUNE_TRIAL_PRUNED, low, 1));
  t->step_values[0] = 3.5;
  g_assert_true(fth_pruner_should_prune(p, t, (const FthTuneTrial *const *) h->pdata, h->len,
                                        FALSE));
  g_ptr_array_unref(h);
}

static gboolean
asha_step(FthPruner *p, GPtrArray *h, FthTuneTrial *t, double value)
{
  t->steps[t->n_steps] = t->n_steps + 1;
  t->step_values[t->n_steps++] = value;
  return fth_pruner_should_prune(p, t, (const FthTuneTrial *const *) h->pdata, h->len, FALSE);
}

static void
test_asha_pruner(void)
{
  /* rf 3, min resource 1: rungs at steps 1, 3, 9. */
  g_autoptr(FthPruner) p = fth_pruner_new_asha(1, 3, 0);
  GPtrArray *h = g_ptr_array_new_with_free_func(free_trial);
  double buf[9] = { 0 };
  FthTuneTrial *t[6];
  for (int i = 0; i < 6; i++) {
    t[i] = make_trial(i, FTH_TUNE_TRIAL_RUNNING, buf, 9);
    t[i]->n_steps = 0;
    g_ptr_array_add(h, t[i]);
  }
  /* While fewer than rf values sit in a rung, only the best so far is promoted. */
  g_assert_false(asha_step(p, h, t[0], 5.0)); /* rung 0: {5} */
  g_assert_true(asha_step(p, h, t[1], 6.0));  /* {5, 6}: not the best */
  g_assert_false(asha_step(p, h, t[2], 4.0)); /* {4, 5, 6}: 3 // 3 = 1 -> the best */
  g_assert_true(asha_step(p, h, t[3], 4.5));  /* {4, 4.5, 5, 6}: 4 // 3 = 1 -> must be <= 4 */
  g_assert_false(asha_step(p, h, t[4], 3.0));
  g_assert_cmpuint(t[4]->n_rungs, ==, 1);
  g_assert_cmpfloat(t[4]->rung_values[0], ==, 3.0);
  /* Between rungs nothing is pruned, whatever the value. */
  g_assert_false(asha_step(p, h, t[0], 50.0));
  g_assert_false(asha_step(p, h, t[0], 1.0)); /* rung 1 (step 3): {1} */
  g_assert_cmpuint(t[0]->n_rungs, ==, 2);
  g_ptr_array_unref(h);
}

static void
test_hyperband_brackets(void)
{
  g_autoptr(FthPruner) p = fth_pruner_new_hyperband(1, 27, 3);
  /* Optuna: 4 brackets with budgets 27, 12, 6, 4 (of 49); bracket = first whose cumulative
   * budget exceeds crc32("<study>_<number>") % 49. */
  guint counts[4] = { 0 };
  for (int n = 0; n < 4900; n++) {
    int b = fth_pruner_bracket(p, "lc2-tpe/hyperband-1", n);
    g_assert_cmpint(b, >=, 0);
    g_assert_cmpint(b, <, 4);
    counts[b]++;
  }
  g_assert_cmpuint(counts[0], >, counts[1]);
  g_assert_cmpuint(counts[1], >, counts[2]);
  g_assert_cmpuint(counts[2], >, counts[3]);
  g_assert_cmpuint(counts[3], >, 200);
  /* Optuna 3.1's assignment for this study name (binascii.crc32 in Python). */
  const int optuna[12] = { 0, 0, 2, 0, 2, 1, 3, 0, 0, 0, 0, 1 };
  for (int n = 0; n < 12; n++)
    g_assert_cmpint(fth_pruner_bracket(p, "lc2-tpe/hyperband-1", n), ==, optuna[n]);

  /* A trial in bracket 3 (first rung at step 27) is never pruned before step 27. */
  GPtrArray *h = g_ptr_array_new_with_free_func(free_trial);
  double vals[27];
  for (int k = 0; k < 27; k++)
    vals[k] = 100.0 - k;
  FthTuneTrial *good = make_trial(0, FTH_TUNE_TRIAL_COMPLETE, vals, 27);
  good->bracket = 3;
  for (int k = 0; k < 27; k++)
    good->step_values[k] = 0.0;
  g_ptr_array_add(h, good);
  FthTuneTrial *t = make_trial(1, FTH_TUNE_TRIAL_RUNNING, vals, 27);
  t->bracket = 3;
  t->n_steps = 0;
  g_ptr_array_add(h, t);
  for (int k = 0; k < 26; k++)
    g_assert_false(asha_step(p, h, t, vals[k]));
  g_ptr_array_unref(h);
}

/* ---- the study runner ----------------------------------------------------------------------- */

static const char *LC_SPACE =
  "{\"params\": [{\"name\": \"lr\", \"type\": \"float\", \"low\": 1e-4, \"high\": 1, \"log\": true},"
  " {\"name\": \"wd\", \"type\": \"float\", \"low\": 1e-6, \"high\": 1e-1, \"log\": true}]}";

typedef struct {
  guint64 noise_seed;
  int kill_trial;      /* SIGKILL when a trial >= this one reaches KILL_STEP; -1: never */
  int kill_step;
  int fail_every;      /* trial numbers divisible by this fail; 0: none */
  gint n_running;      /* atomically counted */
  gint max_running;
  gint steps_total;
} LcRun;

static gboolean
lc_objective(FthTuneTrialContext *ctx, gpointer data, double *value, GError **error)
{
  LcRun *run = data;
  int n = fth_tune_trial_get_number(ctx);
  gint now = g_atomic_int_add(&run->n_running, 1) + 1;
  gint seen = g_atomic_int_get(&run->max_running);
  while (now > seen && !g_atomic_int_compare_and_exchange(&run->max_running, seen, now))
    seen = g_atomic_int_get(&run->max_running);
  double lr = fth_tune_trial_get_value(ctx, "lr"), wd = fth_tune_trial_get_value(ctx, "wd");
  gboolean ok = TRUE;
  double y = NAN;
  if (run->fail_every > 0 && n % run->fail_every == run->fail_every - 1) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "out of memory in trial %d", n);
    ok = FALSE;
    goto out;
  }
  for (int t = 1; t <= FTH_TUNE_LC_T_MAX; t++) {
    y = fth_tune_lc_loss(lr, wd, t, run->noise_seed);
    g_atomic_int_inc(&run->steps_total);
    if (run->kill_trial >= 0 && n >= run->kill_trial && t == run->kill_step)
      raise(SIGKILL);
    if (fth_tune_trial_report(ctx, t, y))
      break;
  }
out:
  g_atomic_int_add(&run->n_running, -1);
  *value = y;
  return ok;
}

static FthTuneStudy *
lc_study(const char *sampler, const char *pruner, FthSampler **out_sampler,
         FthPruner **out_pruner, FthSearchSpace **out_space)
{
  g_autoptr(GError) error = NULL;
  *out_space = space_from(LC_SPACE);
  *out_sampler = fth_sampler_new_by_name(sampler, 5, &error);
  g_assert_no_error(error);
  *out_pruner = fth_pruner_new_by_name(pruner, FTH_TUNE_LC_T_MAX, &error);
  g_assert_no_error(error);
  return fth_tune_study_new("lc2", *out_space, *out_sampler, *out_pruner, FALSE);
}

static void
test_parallel_failures_and_pruning(void)
{
  FthSampler *sampler;
  FthPruner *pruner;
  FthSearchSpace *space;
  FthTuneStudy *study = lc_study("tpe", "asha", &sampler, &pruner, &space);
  LcRun run = { 1, -1, 0, 7, 0, 0, 0 };
  g_autoptr(GError) error = NULL;
  g_assert_true(fth_tune_study_optimize(study, 40, 4, lc_objective, &run, NULL, &error));
  g_assert_no_error(error);
  g_assert_cmpuint(fth_tune_study_get_n_trials(study), ==, 40);
  g_assert_cmpint(run.max_running, >=, 1);
  g_assert_cmpint(run.max_running, <=, 4);
  guint failed = 0, pruned = 0, complete = 0;
  gint64 steps = 0;
  for (guint i = 0; i < 40; i++) {
    const FthTuneTrial *t = fth_tune_study_get_trial(study, i);
    g_assert_cmpint(t->number, ==, (int) i);
    if (t->state == FTH_TUNE_TRIAL_FAILED) {
      failed++;
      g_assert_cmpint(t->number % 7, ==, 6);
      g_assert_nonnull(strstr(t->error, "out of memory"));
    } else if (t->state == FTH_TUNE_TRIAL_PRUNED) {
      pruned++;
      /* A pruned trial stops at once: it reported no step after the one it was pruned at. */
      g_assert_cmpuint(t->n_steps, <, FTH_TUNE_LC_T_MAX + 1);
    } else {
      g_assert_cmpint(t->state, ==, FTH_TUNE_TRIAL_COMPLETE);
      g_assert_cmpuint(t->n_steps, ==, FTH_TUNE_LC_T_MAX);
      complete++;
    }
    steps += t->n_steps;
  }
  g_assert_cmpuint(failed, ==, 5);
  g_assert_cmpuint(pruned, >, 10);
  g_assert_cmpuint(complete, >=, 1);
  /* Every step the objectives computed was reported and counted: nothing ran on after a stop. */
  g_assert_cmpint(fth_tune_study_get_steps_used(study), ==, steps);
  g_assert_cmpint(run.steps_total, ==, steps);
  fth_tune_study_free(study);
  fth_sampler_free(sampler);
  fth_pruner_free(pruner);
  fth_search_space_unref(space);
}

static gboolean
nan_objective(FthTuneTrialContext *ctx, gpointer data, double *value, GError **error)
{
  *value = fth_tune_trial_get_number(ctx) == 1 ? NAN : 1.0;
  return TRUE;
}

static void
test_nan_is_failure(void)
{
  g_autoptr(FthSearchSpace) space = space_from(QUAD2);
  g_autoptr(FthSampler) r = fth_sampler_new_random(1);
  g_autoptr(FthTuneStudy) study = fth_tune_study_new("n", space, r, NULL, FALSE);
  g_assert_true(fth_tune_study_optimize(study, 3, 1, nan_objective, NULL, NULL, NULL));
  const FthTuneTrial *t = fth_tune_study_get_trial(study, 1);
  g_assert_cmpint(t->state, ==, FTH_TUNE_TRIAL_FAILED);
  g_assert_nonnull(strstr(t->error, "nan"));
  g_assert_cmpint(fth_tune_study_get_trial(study, 2)->state, ==, FTH_TUNE_TRIAL_COMPLETE);
}

static char *
resume_journal_path(gboolean in_child)
{
  g_autofree char *name =
    g_strdup_printf("fth-tune-resume-%d.jsonl", (int) (in_child ? getppid() : getpid()));
  return g_build_filename(g_get_tmp_dir(), name, NULL);
}

/* The child: runs the study with a journal and is killed inside the first trial from 9 on
 * that reaches step 3 (after reporting steps 1 and 2). */
static void
test_resume_child(void)
{
  if (!g_test_subprocess())
    return;
  FthSampler *sampler;
  FthPruner *pruner;
  FthSearchSpace *space;
  FthTuneStudy *study = lc_study("tpe", "asha", &sampler, &pruner, &space);
  g_autofree char *path = resume_journal_path(TRUE);
  g_assert_true(fth_tune_study_open_journal(study, path, NULL));
  LcRun run = { 3, 9, 3, 0, 0, 0, 0 };
  fth_tune_study_optimize(study, 20, 1, lc_objective, &run, NULL, NULL);
  g_assert_not_reached();
}

static void
test_resume_after_kill(void)
{
  g_autofree char *path = resume_journal_path(FALSE);
  g_unlink(path);
  g_test_trap_subprocess("/tune/study/resume-child", 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_failed();

  /* The uninterrupted reference study. */
  FthSampler *s1, *s2;
  FthPruner *p1, *p2;
  FthSearchSpace *sp1, *sp2;
  FthTuneStudy *ref = lc_study("tpe", "asha", &s1, &p1, &sp1);
  LcRun run = { 3, -1, 0, 0, 0, 0, 0 };
  g_assert_true(fth_tune_study_optimize(ref, 20, 1, lc_objective, &run, NULL, NULL));

  FthTuneStudy *resumed = lc_study("tpe", "asha", &s2, &p2, &sp2);
  g_autoptr(GError) error = NULL;
  g_assert_true(fth_tune_study_open_journal(resumed, path, &error));
  g_assert_no_error(error);
  /* The trials up to the killed one are back; the killed one was running and runs again. */
  guint n_back = fth_tune_study_get_n_trials(resumed);
  g_assert_cmpuint(n_back, >=, 10);
  g_assert_cmpuint(n_back, <, 20);
  g_assert_cmpint(fth_tune_study_get_trial(resumed, n_back - 1)->state, ==,
                  FTH_TUNE_TRIAL_RUNNING);
  g_assert_cmpint(fth_tune_study_get_trial(resumed, n_back - 2)->state, !=,
                  FTH_TUNE_TRIAL_RUNNING);
  LcRun run2 = { 3, -1, 0, 0, 0, 0, 0 };
  g_assert_true(fth_tune_study_optimize(resumed, 20, 1, lc_objective, &run2, NULL, &error));
  g_assert_no_error(error);

  g_assert_cmpuint(fth_tune_study_get_n_trials(resumed), ==, 20);
  for (guint i = 0; i < 20; i++) {
    const FthTuneTrial *a = fth_tune_study_get_trial(ref, i), *b = fth_tune_study_get_trial(resumed, i);
    g_assert_cmpint(a->state, ==, b->state);
    g_assert_true(memcmp(a->params, b->params, 2 * sizeof(double)) == 0);
    g_assert_cmpuint(a->n_steps, ==, b->n_steps);
    g_assert_true(memcmp(a->step_values, b->step_values, a->n_steps * sizeof(double)) == 0);
    if (a->state == FTH_TUNE_TRIAL_COMPLETE)
      g_assert_cmpfloat(a->value, ==, b->value);
  }
  g_assert_cmpint(fth_tune_study_get_steps_used(ref), ==, fth_tune_study_get_steps_used(resumed));
  fth_tune_study_free(resumed);
  fth_tune_study_free(ref);
  fth_sampler_free(s1);
  fth_sampler_free(s2);
  fth_pruner_free(p1);
  fth_pruner_free(p2);
  fth_search_space_unref(sp1);
  fth_search_space_unref(sp2);

  /* A journal of another space is refused with the file and the reason. */
  g_autoptr(FthSearchSpace) other = space_from(QUAD2);
  g_autoptr(FthSampler) r = fth_sampler_new_random(1);
  g_autoptr(FthTuneStudy) wrong = fth_tune_study_new("lc2", other, r, NULL, FALSE);
  g_assert_false(fth_tune_study_open_journal(wrong, path, &error));
  g_assert_error(error, FTH_TUNE_ERROR, FTH_TUNE_ERROR_JOURNAL);
  g_assert_nonnull(strstr(error->message, path));
  g_assert_nonnull(strstr(error->message, "search space differs"));
  g_unlink(path);
}

static gboolean
cancel_objective(FthTuneTrialContext *ctx, gpointer data, double *value, GError **error)
{
  GCancellable *c = data;
  for (int t = 1; t <= 1000; t++) {
    if (fth_tune_trial_get_number(ctx) == 2 && t == 3)
      g_cancellable_cancel(c);
    if (fth_tune_trial_report(ctx, t, 1.0 / t))
      break;
  }
  *value = 0;
  return TRUE;
}

static void
test_cancel(void)
{
  g_autoptr(FthSearchSpace) space = space_from(QUAD2);
  g_autoptr(FthSampler) r = fth_sampler_new_random(1);
  g_autoptr(FthTuneStudy) study = fth_tune_study_new("c", space, r, NULL, FALSE);
  g_autoptr(GCancellable) c = g_cancellable_new();
  g_assert_true(fth_tune_study_optimize(study, 50, 1, cancel_objective, c, c, NULL));
  g_assert_cmpuint(fth_tune_study_get_n_trials(study), ==, 3);
  const FthTuneTrial *t = fth_tune_study_get_trial(study, 2);
  g_assert_cmpint(t->state, ==, FTH_TUNE_TRIAL_FAILED);
  g_assert_cmpstr(t->error, ==, "cancelled");
  g_assert_cmpuint(t->n_steps, ==, 3);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/tune/sampler/conditional", test_conditional_never_inactive_parent);
  g_test_add_func("/tune/sampler/grid", test_grid_enumerates_and_exhausts);
  g_test_add_func("/tune/sampler/tpe-known-answer", test_tpe_known_answer);
  g_test_add_func("/tune/sampler/tpe-beats-random", test_tpe_beats_random);
  g_test_add_func("/tune/sampler/gp-branin", test_gp_branin);
  g_test_add_func("/tune/pruner/median", test_median_pruner);
  g_test_add_func("/tune/pruner/asha", test_asha_pruner);
  g_test_add_func("/tune/pruner/hyperband", test_hyperband_brackets);
  g_test_add_func("/tune/study/parallel", test_parallel_failures_and_pruning);
  g_test_add_func("/tune/study/nan", test_nan_is_failure);
  g_test_add_func("/tune/study/cancel", test_cancel);
  g_test_add_func("/tune/study/resume-child", test_resume_child);
  g_test_add_func("/tune/study/resume", test_resume_after_kill);
  return g_test_run();
}
