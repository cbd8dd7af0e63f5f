/* `fathom tune`: a hyperparameter study on a built-in objective or on training a recipe over a
 * project's images, with progress or JSON lines. Ctrl-C cancels it (the running trials stop at
 * their next report); a study kept in the project's store or a journal resumes where it was.
 *
 * The JSON lines follow the job-event format of fathom/jobs.h ("type", "job", "step",
 * "total", "message", "metrics"), plus a "trial" object with the trial's number, state,
 * parameters and value; readers ignore members they do not know. */
#include "cli.h"

#include <fathom/tune.h>
#include <glib-unix.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

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

typedef struct {
  const char *name;
  double importance;
} Importance;

static int
cmp_importance(gconstpointer a, gconstpointer b)
{
  double x = ((const Importance *) a)->importance, y = ((const Importance *) b)->importance;
  return isnan(x) ? (isnan(y) ? 0 : 1) : isnan(y) ? -1 : (x < y) - (x > y);
}

/* The study's parameter importances, most important first, as text or one JSON line. */
static gboolean
print_importances(FthTuneStudy *study, gboolean json, GError **error)
{
  FthSearchSpace *space = fth_tune_study_get_space(study);
  guint n = fth_tune_study_get_n_trials(study), d = fth_search_space_get_n_params(space);
  g_autofree const FthTuneTrial **trials = g_new(const FthTuneTrial *, MAX(n, 1));
  for (guint i = 0; i < n; i++)
    trials[i] = fth_tune_study_get_trial(study, i);
  g_autofree double *values = g_new(double, d);
  if (!fth_tune_importances(space, trials, n, NULL, values, error))
    return FALSE;
  g_autofree Importance *rows = g_new(Importance, d);
  for (guint j = 0; j < d; j++)
    rows[j] = (Importance){ fth_search_space_get_param(space, j)->name, values[j] };
  qsort(rows, d, sizeof *rows, cmp_importance);
  if (!json) {
    printf("importances (fANOVA):\n");
    for (guint j = 0; j < d; j++)
      if (isnan(rows[j].importance))
        printf("  %-20s -  (not active in every completed trial)\n", rows[j].name);
      else
        printf("  %-20s %.3f\n", rows[j].name, rows[j].importance);
    return TRUE;
  }
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "type");
  json_builder_add_string_value(b, "importances");
  json_builder_set_member_name(b, "job");
  json_builder_add_string_value(b, "tune");
  json_builder_set_member_name(b, "id");
  json_builder_add_int_value(b, 1);
  json_builder_set_member_name(b, "importances");
  json_builder_begin_object(b);
  for (guint j = 0; j < d; j++) {
    json_builder_set_member_name(b, rows[j].name);
    if (isnan(rows[j].importance))
      json_builder_add_null_value(b);
    else
      json_builder_add_double_value(b, rows[j].importance);
  }
  json_builder_end_object(b);
  json_builder_end_object(b);
  g_autoptr(JsonNode) root = json_builder_get_root(b);
  g_autofree char *line = json_to_string(root, FALSE);
  printf("%s\n", line);
  return TRUE;
}

typedef struct {
  FthTuneStudy *study;
  guint n_trials, n_workers;
  FthObjectiveFunc objective;
  gpointer objective_data;
  GCancellable *cancellable;
  gboolean ok;
  GError *error;
  GMainLoop *loop;
} OptimizeRun;

static gboolean
quit_loop(gpointer data)
{
  g_main_loop_quit(data);
  return G_SOURCE_REMOVE;
}

/* The study runs on its own thread so that the main loop can take Ctrl-C. */
static gpointer
optimize_thread(gpointer data)
{
  OptimizeRun *r = data;
  r->ok = fth_tune_study_optimize(r->study, r->n_trials, r->n_workers, r->objective,
                                  r->objective_data, r->cancellable, &r->error);
  g_idle_add(quit_loop, r->loop);
  return NULL;
}

static gboolean
on_interrupt(gpointer data)
{
  g_cancellable_cancel(data);
  return G_SOURCE_CONTINUE;
}

int
fth_cli_tune(int argc, char **argv)
{
  g_autofree char *objective = NULL, *space_path = NULL, *sampler_name = NULL;
  g_autofree char *pruner_name = NULL, *journal = NULL, *name = NULL, *recipe = NULL;
  int trials = 0, workers = 1, epochs = 6, limit = 0;
  gint64 seed = 1;
  gboolean json = FALSE, show_importances = FALSE;
  const GOptionEntry entries[] = {
    { "objective", 'o', 0, G_OPTION_ARG_STRING, &objective,
      "branin, hartmann6, rosenbrock4, ackley5 or lc2 (a learning curve with 27 steps)", "NAME" },
    { "recipe", 'r', 0, G_OPTION_ARG_STRING, &recipe,
      "train this zoo recipe on the project's images as the objective (fmnist-cnn, "
      "fmnist-best, mlp, resnet or mobilenetv2)", "NAME" },
    { "space", 0, 0, G_OPTION_ARG_FILENAME, &space_path,
      "search space JSON (default: the objective's or the recipe's own)", "FILE" },
    { "sampler", 's', 0, G_OPTION_ARG_STRING, &sampler_name,
      "random, grid, tpe, tpe-mv or gp (default tpe)", "NAME" },
    { "pruner", 'p', 0, G_OPTION_ARG_STRING, &pruner_name,
      "none, median, asha or hyperband (default none)", "NAME" },
    { "trials", 'n', 0, G_OPTION_ARG_INT, &trials, "trials in the study (default: the "
      "objective's benchmark budget; 30 for a recipe)", "N" },
    { "workers", 'j', 0, G_OPTION_ARG_INT, &workers, "trials run at once (default 1)", "N" },
    { "epochs", 'e', 0, G_OPTION_ARG_INT, &epochs, "recipe: epochs per trial (default 6)", "N" },
    { "limit", 0, 0, G_OPTION_ARG_INT, &limit,
      "recipe: use only the first N training items", "N" },
    { "seed", 0, 0, G_OPTION_ARG_INT64, &seed, "sampler seed, and LC2's noise seed (default 1)",
      "N" },
    { "journal", 0, 0, G_OPTION_ARG_FILENAME, &journal,
      "without a project: keep the study in this JSON-lines file and resume from it", "FILE" },
    { "name", 0, 0, G_OPTION_ARG_STRING, &name,
      "study name (default: the objective's or tune-RECIPE)", "NAME" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "print events as JSON lines on stdout", NULL },
    { "importances", 0, 0, G_OPTION_ARG_NONE, &show_importances,
      "print the parameters' importances (fANOVA) when the study ends", NULL },
    { NULL, 0, 0, 0, NULL, NULL, NULL },
  };
  if (!fth_cli_parse_options("tune", "[DIR]", "Runs a hyperparameter study.",
                             "Samples trials with the chosen sampler, stops hopeless ones with "
                             "the pruner,\nand prints each finished trial and the best one. "
                             "With a project DIR the study\nis kept in its store and resumes "
                             "from it; with --recipe each trial trains on the\nproject's "
                             "images and the best trial becomes the project's current model.",
                             entries, &argc, &argv))
    return FTH_EXIT_USAGE;
  if (argc > 2)
    return fth_cli_usage_error("tune", "unexpected argument “%s”", argv[2]);
  const char *dir = argc > 1 ? argv[1] : NULL;
  if ((objective == NULL) == (recipe == NULL))
    return fth_cli_usage_error("tune", "give either --objective or --recipe");
  const FthTuneBuiltin *builtin = NULL;
  if (objective != NULL && (builtin = fth_tune_builtin_find(objective)) == NULL)
    return fth_cli_usage_error("tune", "--objective “%s”: unknown", objective);
  g_autoptr(GError) error = NULL;
  const char *recipe_space = NULL;
  if (recipe != NULL) {
    if (dir == NULL)
      return fth_cli_usage_error("tune", "--recipe needs the project DIR to train on");
    if ((recipe_space = fth_tune_train_space_json(recipe, &error)) == NULL)
      return fth_cli_usage_error("tune", "--%s", error->message);
  }
  if (workers < 1 || workers > 256)
    return fth_cli_usage_error("tune", "--workers %d: must be between 1 and 256", workers);
  if (trials < 0)
    return fth_cli_usage_error("tune", "--trials %d: must be positive", trials);
  if (epochs < 1 || epochs > 10000)
    return fth_cli_usage_error("tune", "--epochs %d: must be between 1 and 10000", epochs);
  if (limit < 0)
    return fth_cli_usage_error("tune", "--limit %d: must be positive", limit);
  if (journal != NULL && dir != NULL)
    return fth_cli_usage_error("tune", "--journal: a project keeps the study in its store");

  g_autoptr(FthSearchSpace) space =
    space_path != NULL ? fth_search_space_new_from_file(space_path, &error)
    : builtin != NULL  ? fth_search_space_new_from_json(builtin->space_json, -1, objective, &error)
                       : fth_search_space_new_from_json(recipe_space, -1, recipe, &error);
  if (space == NULL)
    return fth_cli_fail_error(error);
  g_autoptr(FthSampler) sampler =
    fth_sampler_new_by_name(sampler_name != NULL ? sampler_name : "tpe", (guint64) seed, &error);
  if (sampler == NULL)
    return fth_cli_usage_error("tune", "%s", error->message);
  g_autoptr(FthPruner) pruner = fth_pruner_new_by_name(
    pruner_name != NULL ? pruner_name : "none", builtin != NULL ? FTH_TUNE_LC_T_MAX : epochs,
    &error);
  if (error != NULL)
    return fth_cli_usage_error("tune", "%s", error->message);

  g_autoptr(FthStore) store = NULL;
  if (dir != NULL && (store = fth_cli_open_store(dir)) == NULL)
    return FTH_EXIT_FAILURE;
  g_autofree char *study_name =
    g_strdup(name != NULL ? name : builtin != NULL ? objective : NULL);
  if (study_name == NULL)
    study_name = g_strdup_printf("tune-%s", recipe);
  g_autoptr(FthTuneStudy) study =
    fth_tune_study_new(study_name, space, sampler, pruner, recipe != NULL);
  if (journal != NULL && !fth_tune_study_open_journal(study, journal, &error))
    return fth_cli_fail_error(error);
  if (store != NULL && !fth_tune_study_open_store(study, store, 0, &error))
    return fth_cli_fail_error(error);
  guint n_total = trials > 0 ? (guint) trials : builtin != NULL ? builtin->default_trials : 30;
  TuneProgress progress = { json, n_total, 0, g_get_monotonic_time(), 0, FALSE };
  for (guint i = 0; i < fth_tune_study_get_n_trials(study); i++)
    progress.n_finished += fth_tune_study_get_trial(study, i)->state != FTH_TUNE_TRIAL_RUNNING;
  guint n_finished_before = progress.n_finished;
  fth_tune_study_set_event_func(study, on_event, &progress);
  if (json)
    print_json_event("started", study, &progress, NULL, NULL);

  g_autoptr(GCancellable) cancellable = g_cancellable_new();
  guint64 noise_seed = (guint64) seed;
  FthTuneTrainConfig train;
  fth_tune_train_config_init(&train);
  train.store = store;
  train.recipe = recipe;
  train.study_name = study_name;
  train.epochs = epochs;
  train.limit_train = (gsize) limit;
  train.seed = (guint64) seed;
  train.cancellable = cancellable;
  g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
  OptimizeRun run = { study, n_total, (guint) workers,
                      builtin != NULL ? builtin->objective : fth_tune_train_objective,
                      builtin != NULL ? (gpointer) &noise_seed : (gpointer) &train,
                      cancellable, FALSE, NULL, loop };
  guint sigint = g_unix_signal_add(SIGINT, on_interrupt, cancellable);
  guint sigterm = g_unix_signal_add(SIGTERM, on_interrupt, cancellable);
  GThread *thread = g_thread_new("fathom-tune", optimize_thread, &run);
  g_main_loop_run(loop);
  g_thread_join(thread);
  g_source_remove(sigint);
  g_source_remove(sigterm);
  if (!run.ok) {
    if (json)
      print_json_event("failed", study, &progress, NULL, run.error->message);
    int rc = fth_cli_fail_error(run.error);
    g_error_free(run.error);
    return rc;
  }
  if (g_cancellable_is_cancelled(cancellable)) {
    if (json)
      print_json_event("cancelled", study, &progress, NULL, "interrupted");
    fprintf(stderr, "fathom: tune cancelled (%s)\n",
            store != NULL || journal != NULL ? "run it again to resume"
                                             : "the study is not kept anywhere");
    return FTH_EXIT_CANCELLED;
  }
  const FthTuneTrial *best = fth_tune_study_get_best_trial(study);
  g_autofree char *message = NULL;
  if (best == NULL) {
    message = g_strdup("no trial completed");
  } else if (builtin != NULL) {
    /* LC2's value is noisy: its regret is that of the noise-free curve at the best point. */
    double regret = g_str_equal(builtin->name, "lc2")
                      ? fth_tune_lc_curve_noise_free(trial_param(best, space, "lr"),
                                                     trial_param(best, space, "wd"),
                                                     FTH_TUNE_LC_T_MAX) - builtin->optimum
                      : best->value - builtin->optimum;
    message = g_strdup_printf("best: trial %d, value %.6g, regret %.6g, %" G_GINT64_FORMAT
                              " steps used", best->number, best->value, regret,
                              fth_tune_study_get_steps_used(study));
  } else {
    /* A rerun that found the study finished promotes nothing again. */
    gint64 run_id = 0;
    if (progress.n_finished > n_finished_before &&
        !fth_tune_train_promote(study, &train, &run_id, &error))
      return fth_cli_fail_error(error);
    g_autofree char *promoted =
      run_id > 0 ? g_strdup_printf("now the current model (run %" G_GINT64_FORMAT ")", run_id)
                 : g_strdup("no new trial, nothing promoted");
    message = g_strdup_printf("best: trial %d, validation accuracy %.4f, %" G_GINT64_FORMAT
                              " of %u epochs used; %s", best->number, best->value,
                              fth_tune_study_get_steps_used(study), n_total * (guint) epochs,
                              promoted);
  }
  if (show_importances && !print_importances(study, json, &error))
    return fth_cli_fail_error(error);
  if (json) {
    print_json_event("succeeded", study, &progress, best, message);
  } else {
    g_autofree char *params =
      best != NULL ? fth_search_space_values_to_json(space, best->params) : g_strdup("{}");
    printf("%s\nparams: %s\n", message, params);
  }
  return FTH_EXIT_OK;
}
