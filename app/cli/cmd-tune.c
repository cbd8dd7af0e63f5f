/* `fathom tune`: a hyperparameter study on a built-in objective, with progress or JSON lines.
 *
 * The JSON lines follow the job-event format of fathom/jobs.h ("type", "job", "step",
 * "total", "message", "metrics"), plus a "trial" object with the trial's number, state,
 * parameters and value; readers ignore members they do not know. */
#include "cli.h"

#include <fathom/tune.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <stdio.h>

int fth_cli_tune(int argc, char **argv);

static double
trial_param(const FthTuneTrial *t, FthSearchSpace *space, const char *name)
{
  int i = fth_search_space_find(space, name);
  return i < 0 ? NAN : t->params[i];
}

typedef struct {
  gboolean json;
  guint n_total;
  guint n_finished;
  gint64 t0;
  double best;
  gboolean have_best;
} TuneProgress;

static void
print_json_event(const char *type, FthTuneStudy *study, const TuneProgress *p,
                 const FthTuneTrial *t, const char *message)
{
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "type");
  json_builder_add_string_value(b, type);
  json_builder_set_member_name(b, "job");
  json_builder_add_string_value(b, "tune");
  json_builder_set_member_name(b, "id");
  json_builder_add_int_value(b, 1);
  json_builder_set_member_name(b, "step");
  json_builder_add_int_value(b, p->n_finished);
  json_builder_set_member_name(b, "total");
  json_builder_add_int_value(b, p->n_total);
  if (message != NULL) {
    json_builder_set_member_name(b, "message");
    json_builder_add_string_value(b, message);
  }
  if (p->have_best) {
    json_builder_set_member_name(b, "metrics");
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "best");
    json_builder_add_double_value(b, p->best);
    json_builder_end_object(b);
  }
  json_builder_set_member_name(b, "elapsed_s");
  json_builder_add_double_value(b, (g_get_monotonic_time() - p->t0) / 1e6);
  if (t != NULL) {
    g_autofree char *params =
      fth_search_space_values_to_json(fth_tune_study_get_space(study), t->params);
    json_builder_set_member_name(b, "trial");
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "number");
    json_builder_add_int_value(b, t->number);
    json_builder_set_member_name(b, "state");
    json_builder_add_string_value(b, fth_tune_trial_state_to_string(t->state));
    json_builder_set_member_name(b, "params");
    json_builder_add_value(b, json_from_string(params, NULL));
    json_builder_set_member_name(b, "value");
    if (isfinite(t->value))
      json_builder_add_double_value(b, t->value);
    else
      json_builder_add_null_value(b);
    json_builder_set_member_name(b, "steps");
    json_builder_add_int_value(b, t->n_steps);
    if (t->error != NULL) {
      json_builder_set_member_name(b, "error");
      json_builder_add_string_value(b, t->error);
    }
    json_builder_end_object(b);
  }
  json_builder_end_object(b);
  g_autoptr(JsonNode) root = json_builder_get_root(b);
  g_autofree char *line = json_to_string(root, FALSE);
  printf("%s\n", line);
  fflush(stdout);
}

static void
on_event(FthTuneStudy *study, FthTuneEventKind kind, const FthTuneTrial *t, gpointer data)
{
  TuneProgress *p = data;
  if (kind != FTH_TUNE_EVENT_TRIAL_FINISHED)
    return;
  p->n_finished++;
  gboolean maximize = fth_tune_study_get_maximize(study);
  if (t->state == FTH_TUNE_TRIAL_COMPLETE &&
      (!p->have_best || (maximize ? t->value > p->best : t->value < p->best))) {
    p->best = t->value;
    p->have_best = TRUE;
  }
  g_autofree char *msg = g_strdup_printf("trial %d %s", t->number,
                                         fth_tune_trial_state_to_string(t->state));
  if (p->json) {
    print_json_event("progress", study, p, t, msg);
    return;
  }
  g_autofree char *params =
    fth_search_space_values_to_json(fth_tune_study_get_space(study), t->params);
  if (t->state == FTH_TUNE_TRIAL_COMPLETE)
    fprintf(stderr, "[%u/%u] trial %d complete: %.6g (best %.6g) %s\n", p->n_finished,
            p->n_total, t->number, t->value, p->best, params);
  else if (t->state == FTH_TUNE_TRIAL_PRUNED)
    fprintf(stderr, "[%u/%u] trial %d pruned after %u steps %s\n", p->n_finished, p->n_total,
            t->number, t->n_steps, params);
  else
    fprintf(stderr, "[%u/%u] trial %d failed: %s\n", p->n_finished, p->n_total, t->number,
            t->error != NULL ? t->error : "");
}

int
fth_cli_tune(int argc, char **argv)
{
  g_autofree char *objective = NULL, *space_path = NULL, *sampler_name = NULL;
  g_autofree char *pruner_name = NULL, *journal = NULL, *name = NULL;
  int trials = 0, workers = 1;
  gint64 seed = 1;
  gboolean json = FALSE;
  const GOptionEntry entries[] = {
    { "objective", 'o', 0, G_OPTION_ARG_STRING, &objective,
      "branin, hartmann6, rosenbrock4, ackley5 or lc2 (a learning curve with 27 steps)", "NAME" },
    { "space", 0, 0, G_OPTION_ARG_FILENAME, &space_path,
      "search space JSON (default: the objective's own)", "FILE" },
    { "sampler", 's', 0, G_OPTION_ARG_STRING, &sampler_name,
      "random, grid, tpe, tpe-mv or gp (default tpe)", "NAME" },
    { "pruner", 'p', 0, G_OPTION_ARG_STRING, &pruner_name,
      "none, median, asha or hyperband (default none)", "NAME" },
    { "trials", 'n', 0, G_OPTION_ARG_INT, &trials, "trials in the study (default: the "
      "objective's benchmark budget)", "N" },
    { "workers", 'j', 0, G_OPTION_ARG_INT, &workers, "trials run at once (default 1)", "N" },
    { "seed", 0, 0, G_OPTION_ARG_INT64, &seed, "sampler seed, and LC2's noise seed (default 1)",
      "N" },
    { "journal", 0, 0, G_OPTION_ARG_FILENAME, &journal,
      "keep the study in this JSON-lines file and resume from it", "FILE" },
    { "name", 0, 0, G_OPTION_ARG_STRING, &name, "study name (default: the objective's)",
      "NAME" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "print events as JSON lines on stdout", NULL },
    { NULL, 0, 0, 0, NULL, NULL, NULL },
  };
  if (!fth_cli_parse_options("tune", "", "Runs a hyperparameter study.",
                             "Samples trials with the chosen sampler, stops hopeless ones with "
                             "the pruner,\nand prints each finished trial and the best one.",
                             entries, &argc, &argv))
    return FTH_EXIT_USAGE;
  if (argc > 1)
    return fth_cli_usage_error("tune", "unexpected argument “%s”", argv[1]);
  if (objective == NULL)
    return fth_cli_usage_error("tune", "--objective is required (training objectives need "
                                       "the trainer, which this build does not have)");
  const FthTuneBuiltin *builtin = fth_tune_builtin_find(objective);
  if (builtin == NULL)
    return fth_cli_usage_error("tune", "--objective “%s”: unknown", objective);
  if (workers < 1 || workers > 256)
    return fth_cli_usage_error("tune", "--workers %d: must be between 1 and 256", workers);
  if (trials < 0)
    return fth_cli_usage_error("tune", "--trials %d: must be positive", trials);

  g_autoptr(GError) error = NULL;
  g_autoptr(FthSearchSpace) space =
    space_path != NULL ? fth_search_space_new_from_file(space_path, &error)
                       : fth_search_space_new_from_json(builtin->space_json, -1, objective,
                                                        &error);
  if (space == NULL)
    return fth_cli_fail_error(error);
  g_autoptr(FthSampler) sampler =
    fth_sampler_new_by_name(sampler_name != NULL ? sampler_name : "tpe", (guint64) seed, &error);
  if (sampler == NULL)
    return fth_cli_usage_error("tune", "%s", error->message);
  g_autoptr(FthPruner) pruner =
    fth_pruner_new_by_name(pruner_name != NULL ? pruner_name : "none", FTH_TUNE_LC_T_MAX, &error);
  if (error != NULL)
    return fth_cli_usage_error("tune", "%s", error->message);

  g_autoptr(FthTuneStudy) study =
    fth_tune_study_new(name != NULL ? name : objective, space, sampler, pruner, FALSE);
  if (journal != NULL && !fth_tune_study_open_journal(study, journal, &error))
    return fth_cli_fail_error(error);
  TuneProgress progress = { json, trials > 0 ? (guint) trials : builtin->default_trials, 0,
                            g_get_monotonic_time(), 0, FALSE };
  fth_tune_study_set_event_func(study, on_event, &progress);
  if (json)
    print_json_event("started", study, &progress, NULL, NULL);
  guint64 noise_seed = (guint64) seed;
  if (!fth_tune_study_optimize(study, progress.n_total, (guint) workers, builtin->objective,
                               &noise_seed, NULL, &error)) {
    if (json)
      print_json_event("failed", study, &progress, NULL, error->message);
    return fth_cli_fail_error(error);
  }
  const FthTuneTrial *best = fth_tune_study_get_best_trial(study);
  /* LC2's value is noisy: its regret is that of the noise-free curve at the best point. */
  double regret = best == NULL ? NAN
                  : g_str_equal(builtin->name, "lc2")
                    ? fth_tune_lc_curve_noise_free(trial_param(best, space, "lr"),
                                                   trial_param(best, space, "wd"),
                                                   FTH_TUNE_LC_T_MAX) - builtin->optimum
                    : best->value - builtin->optimum;
  g_autofree char *message =
    best != NULL ? g_strdup_printf("best: trial %d, value %.6g, regret %.6g, %" G_GINT64_FORMAT
                                   " steps used", best->number, best->value, regret,
                                   fth_tune_study_get_steps_used(study))
                 : g_strdup("no trial completed");
  if (json) {
    print_json_event("succeeded", study, &progress, best, message);
  } else {
    g_autofree char *params =
      best != NULL ? fth_search_space_values_to_json(space, best->params) : g_strdup("{}");
    printf("%s\nparams: %s\n", message, params);
  }
  return FTH_EXIT_OK;
}
