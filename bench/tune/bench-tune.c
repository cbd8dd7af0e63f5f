/* bench-tune: Fathom's samplers and pruners on the Optuna peer's benchmark protocol
 * (shared/peers/optuna/RESULTS.md): the four test functions and LC2, seeds 1..N.
 * Writes one JSON object per run (a line) to --out; bench/tune/compare.py prints the tables
 * against Optuna's results. Usage: bench-tune [--seeds N] [--part functions|lc2|all] --out F */
#include <fathom/tune.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

typedef struct {
  const FthTuneBuiltin *builtin;
  double *objective_s;  /* per trial number */
  gint64 *finished_us;  /* per trial number: when the study recorded its end */
  guint64 noise_seed;
} Run;

static gboolean
timed_objective(FthTuneTrialContext *ctx, gpointer data, double *value, GError **error)
{
  Run *run = data;
  gint64 t0 = g_get_monotonic_time();
  gboolean ok = run->builtin->objective(ctx, &run->noise_seed, value, error);
  run->objective_s[fth_tune_trial_get_number(ctx)] = (g_get_monotonic_time() - t0) / 1e6;
  return ok;
}

static void
on_event(FthTuneStudy *study, FthTuneEventKind kind, const FthTuneTrial *t, gpointer data)
{
  Run *run = data;
  if (kind == FTH_TUNE_EVENT_TRIAL_FINISHED)
    run->finished_us[t->number] = g_get_monotonic_time();
}

static FthSampler *
make_sampler(const char *name, guint64 seed)
{
  FthTpeOptions o;
  fth_tpe_options_init(&o);
  if (g_str_equal(name, "tpe") || g_str_equal(name, "tpe_mv")) {
    o.multivariate = g_str_equal(name, "tpe_mv");
    return fth_sampler_new_tpe(&o, seed);
  }
  if (g_str_equal(name, "gp"))
    return fth_sampler_new_gp(NULL, seed);
  return fth_sampler_new_random(seed);
}

static double
best_so_far(FthTuneStudy *study, guint upto)
{
  double best = INFINITY;
  for (guint i = 0; i < upto && i < fth_tune_study_get_n_trials(study); i++) {
    const FthTuneTrial *t = fth_tune_study_get_trial(study, i);
    if (t->state == FTH_TUNE_TRIAL_COMPLETE)
      best = MIN(best, t->value);
  }
  return best;
}

static void
run_function(FILE *out, const char *fname, const char *sampler_name, guint64 seed)
{
  const FthTuneBuiltin *b = fth_tune_builtin_find(fname);
  g_autoptr(FthSearchSpace) space = fth_search_space_new_from_json(b->space_json, -1, fname, NULL);
  g_autoptr(FthSampler) sampler = make_sampler(sampler_name, seed);
  g_autoptr(FthTuneStudy) study = fth_tune_study_new(fname, space, sampler, NULL, FALSE);
  guint n = b->default_trials;
  g_autofree double *obj_s = g_new0(double, n);
  g_autofree gint64 *fin = g_new0(gint64, n);
  Run run = { b, obj_s, fin, seed };
  fth_tune_study_set_event_func(study, on_event, &run);
  gint64 t0 = g_get_monotonic_time();
  g_autoptr(GError) error = NULL;
  if (!fth_tune_study_optimize(study, n, 1, timed_objective, &run, NULL, &error))
    g_error("%s/%s/%" G_GUINT64_FORMAT ": %s", fname, sampler_name, seed, error->message);
  /* Overhead of trial i: the time since the previous trial ended, less its objective time
   * (Optuna's definition in bench_functions.py). */
  double sum = 0, last10 = 0;
  for (guint i = 0; i < n; i++) {
    double o = ((i == 0 ? fin[0] - t0 : fin[i] - fin[i - 1]) / 1e3) - obj_s[i] * 1e3;
    sum += o;
    if (i + 10 >= n)
      last10 += o;
  }
  fprintf(out,
          "{\"part\":\"functions\",\"function\":\"%s\",\"sampler\":\"%s\",\"seed\":%" G_GUINT64_FORMAT
          ",\"n_trials\":%u,\"regret\":%.17g,\"regret_at\":{\"10\":%.17g,\"20\":%.17g,"
          "\"30\":%.17g,\"50\":%.17g},\"overhead_ms\":%.6g,\"overhead_last10_ms\":%.6g}\n",
          fname, sampler_name, seed, n, best_so_far(study, n) - b->optimum,
          best_so_far(study, 10) - b->optimum, best_so_far(study, 20) - b->optimum,
          best_so_far(study, 30) - b->optimum, best_so_far(study, 50) - b->optimum, sum / n,
          last10 / 10);
  fflush(out);
}

static void
run_lc2(FILE *out, const char *config, guint64 seed, guint n_trials)
{
  const FthTuneBuiltin *b = fth_tune_builtin_find("lc2");
  g_auto(GStrv) parts = g_strsplit(config, "/", 2);
  g_autoptr(FthSearchSpace) space = fth_search_space_new_from_json(b->space_json, -1, "lc2", NULL);
  g_autoptr(FthSampler) sampler = make_sampler(parts[0], seed);
  g_autoptr(FthPruner) pruner = NULL;
  if (g_str_equal(parts[1], "median"))
    pruner = fth_pruner_new_median(5, 0);
  else if (g_str_equal(parts[1], "sha"))
    pruner = fth_pruner_new_asha(1, 3, 0);
  else if (g_str_equal(parts[1], "hyperband"))
    pruner = fth_pruner_new_hyperband(1, FTH_TUNE_LC_T_MAX, 3);
  /* Optuna's study name, so that Hyperband puts trial N in the same bracket as Optuna does. */
  g_autofree char *name = g_strdup_printf("lc2-%s-%" G_GUINT64_FORMAT, config, seed);
  g_autoptr(FthTuneStudy) study = fth_tune_study_new(name, space, sampler, pruner, FALSE);
  g_autofree double *obj_s = g_new0(double, n_trials);
  g_autofree gint64 *fin = g_new0(gint64, n_trials);
  Run run = { b, obj_s, fin, seed };
  gint64 t0 = g_get_monotonic_time();
  g_autoptr(GError) error = NULL;
  if (!fth_tune_study_optimize(study, n_trials, 1, timed_objective, &run, NULL, &error))
    g_error("lc2 %s/%" G_GUINT64_FORMAT ": %s", config, seed, error->message);
  double wall = (g_get_monotonic_time() - t0) / 1e6;
  const FthTuneTrial *best = fth_tune_study_get_best_trial(study);
  guint n_complete = 0;
  for (guint i = 0; i < fth_tune_study_get_n_trials(study); i++)
    n_complete += fth_tune_study_get_trial(study, i)->state == FTH_TUNE_TRIAL_COMPLETE;
  double m27 = fth_tune_lc_curve_noise_free(best->params[0], best->params[1], FTH_TUNE_LC_T_MAX);
  fprintf(out,
          "{\"part\":\"lc2\",\"config\":\"%s\",\"seed\":%" G_GUINT64_FORMAT
          ",\"best_final\":%.17g,\"true_regret\":%.17g,\"best_lr\":%.17g,\"best_wd\":%.17g,"
          "\"epochs\":%" G_GINT64_FORMAT ",\"n_trials\":%u,\"n_complete\":%u,\"wall_s\":%.6g}\n",
          config, seed, best->value, m27 - FTH_TUNE_LC_M27_STAR, best->params[0],
          best->params[1], fth_tune_study_get_steps_used(study),
          fth_tune_study_get_n_trials(study), n_complete, wall);
  fflush(out);
}

int
main(int argc, char **argv)
{
  int seeds = 20;
  g_autofree char *part = NULL, *out_path = NULL, *samplers = NULL, *configs = NULL;
  const GOptionEntry entries[] = {
    { "seeds", 0, 0, G_OPTION_ARG_INT, &seeds, "seeds 1..N (20)", "N" },
    { "part", 0, 0, G_OPTION_ARG_STRING, &part, "functions, lc2 or all (all)", "PART" },
    { "samplers", 0, 0, G_OPTION_ARG_STRING, &samplers, "tpe,tpe_mv,gp,random", "LIST" },
    { "configs", 0, 0, G_OPTION_ARG_STRING, &configs, "LC2 sampler/pruner list", "LIST" },
    { "out", 0, 0, G_OPTION_ARG_FILENAME, &out_path, "JSON lines output", "FILE" },
    { NULL, 0, 0, 0, NULL, NULL, NULL },
  };
  g_autoptr(GOptionContext) ctx = g_option_context_new("- Fathom tune benchmark");
  g_option_context_add_main_entries(ctx, entries, NULL);
  g_autoptr(GError) error = NULL;
  if (!g_option_context_parse(ctx, &argc, &argv, &error) || out_path == NULL) {
    fprintf(stderr, "bench-tune: %s\n", error != NULL ? error->message : "--out is required");
    return 2;
  }
  FILE *out = fopen(out_path, "w");
  if (out == NULL) {
    fprintf(stderr, "bench-tune: %s: cannot write\n", out_path);
    return 1;
  }
  const char *p = part != NULL ? part : "all";
  if (g_str_equal(p, "functions") || g_str_equal(p, "all")) {
    const char *functions[] = { "branin", "hartmann6", "rosenbrock4", "ackley5" };
    g_auto(GStrv) ss = g_strsplit(samplers != NULL ? samplers : "tpe,tpe_mv,gp,random", ",", -1);
    for (guint f = 0; f < G_N_ELEMENTS(functions); f++)
      for (guint s = 0; ss[s] != NULL; s++) {
        gint64 t0 = g_get_monotonic_time();
        for (int seed = 1; seed <= seeds; seed++)
          run_function(out, functions[f], ss[s], (guint64) seed);
        fprintf(stderr, "# %-12s %-7s %d seeds in %.1f s\n", functions[f], ss[s], seeds,
                (g_get_monotonic_time() - t0) / 1e6);
      }
  }
  if (g_str_equal(p, "lc2") || g_str_equal(p, "all")) {
    g_auto(GStrv) cs = g_strsplit(configs != NULL ? configs
                                  : "tpe/none,tpe/median,tpe/sha,tpe/hyperband,random/sha,"
                                    "random/median,tpe_mv/hyperband,gp/hyperband,gp/median,gp/none",
                                  ",", -1);
    for (guint c = 0; cs[c] != NULL; c++) {
      gint64 t0 = g_get_monotonic_time();
      for (int seed = 1; seed <= seeds; seed++)
        run_lc2(out, cs[c], (guint64) seed, 100);
      fprintf(stderr, "# lc2 %-16s %d seeds in %.1f s\n", cs[c], seeds,
              (g_get_monotonic_time() - t0) / 1e6);
    }
  }
  fclose(out);
  return 0;
}
