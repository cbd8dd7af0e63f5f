/* The study runner: trials on worker threads, the pruner after every report, the project's
 * store or a JSON-lines journal (for objectives without a project) for interrupt and resume. */
#include "fth-tune-private.h"

#include <errno.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

struct _FthTuneStudy {
  char *name;
  FthSearchSpace *space;
  FthSampler *sampler;
  FthPruner *pruner;
  gboolean maximize;
  char *host;

  GMutex lock;
  GPtrArray *trials;  /* FthTuneTrial*, index = number */
  GArray *rerun;      /* numbers of trials to run again (running when the journal ended) */
  FILE *journal;
  char *journal_path;
  FthStore *store;
  gint64 store_study_id;
  GArray *store_trial_ids; /* gint64 per trial number */
  FthTuneEventFunc event_func;
  gpointer event_data;
  gint64 step_budget;
  gint64 steps_used;

  /* set during fth_tune_study_optimize */
  guint n_target;
  gboolean exhausted;
  GError *fatal;
  GCancellable *cancellable;
  FthObjectiveFunc objective;
  gpointer objective_data;
};

struct _FthTuneTrialContext {
  FthTuneStudy *study;
  FthTuneTrial *trial;
  gboolean stop;
};

static void
trial_free(gpointer data)
{
  FthTuneTrial *t = data;
  g_free(t->params);
  g_free(t->steps);
  g_free(t->step_values);
  g_free(t->error);
  g_free(t->host);
  g_free(t);
}

static void
trial_reset(FthTuneTrial *t)
{
  t->state = FTH_TUNE_TRIAL_RUNNING;
  t->value = NAN;
  t->n_steps = 0;
  t->n_rungs = 0;
  t->duration_s = 0;
  g_clear_pointer(&t->error, g_free);
}

static gint64
trial_max_step(const FthTuneTrial *t)
{
  gint64 m = 0;
  for (guint k = 0; k < t->n_steps; k++)
    m = MAX(m, t->steps[k]);
  return m;
}

static void
trial_add_step(FthTuneTrial *t, gint64 step, double value)
{
  if (t->n_steps == t->steps_capacity) {
    t->steps_capacity = MAX(8u, t->steps_capacity * 2);
    t->steps = g_renew(gint64, t->steps, t->steps_capacity);
    t->step_values = g_renew(double, t->step_values, t->steps_capacity);
  }
  t->steps[t->n_steps] = step;
  t->step_values[t->n_steps++] = value;
}

FthTuneStudy *
fth_tune_study_new(const char *name, FthSearchSpace *space, FthSampler *sampler,
                   FthPruner *pruner, gboolean maximize)
{
  FthTuneStudy *s = g_new0(FthTuneStudy, 1);
  s->name = g_strdup(name != NULL ? name : "study");
  s->space = fth_search_space_ref(space);
  s->sampler = sampler;
  s->pruner = pruner;
  s->maximize = maximize;
  s->host = g_strdup(g_get_host_name());
  g_mutex_init(&s->lock);
  s->trials = g_ptr_array_new_with_free_func(trial_free);
  s->rerun = g_array_new(FALSE, FALSE, sizeof(int));
  return s;
}

void
fth_tune_study_free(FthTuneStudy *s)
{
  if (s == NULL)
    return;
  if (s->journal != NULL)
    fclose(s->journal);
  g_free(s->journal_path);
  g_clear_object(&s->store);
  if (s->store_trial_ids != NULL)
    g_array_unref(s->store_trial_ids);
  g_ptr_array_unref(s->trials);
  g_array_unref(s->rerun);
  g_mutex_clear(&s->lock);
  fth_search_space_unref(s->space);
  g_free(s->name);
  g_free(s->host);
  g_clear_error(&s->fatal);
  g_free(s);
}

void
fth_tune_study_set_event_func(FthTuneStudy *s, FthTuneEventFunc func, gpointer data)
{
  s->event_func = func;
  s->event_data = data;
}

void
fth_tune_study_set_step_budget(FthTuneStudy *s, gint64 steps)
{
  s->step_budget = steps;
}

void
fth_tune_study_set_host(FthTuneStudy *s, const char *host)
{
  g_free(s->host);
  s->host = g_strdup(host);
}

const char *
fth_tune_study_get_name(FthTuneStudy *s)
{
  return s->name;
}

FthSearchSpace *
fth_tune_study_get_space(FthTuneStudy *s)
{
  return s->space;
}

gboolean
fth_tune_study_get_maximize(FthTuneStudy *s)
{
  return s->maximize;
}

guint
fth_tune_study_get_n_trials(FthTuneStudy *s)
{
  return s->trials->len;
}

const FthTuneTrial *
fth_tune_study_get_trial(FthTuneStudy *s, guint index)
{
  return index < s->trials->len ? g_ptr_array_index(s->trials, index) : NULL;
}

const FthTuneTrial *
fth_tune_study_get_best_trial(FthTuneStudy *s)
{
  const FthTuneTrial *best = NULL;
  for (guint i = 0; i < s->trials->len; i++) {
    const FthTuneTrial *t = g_ptr_array_index(s->trials, i);
    if (t->state == FTH_TUNE_TRIAL_COMPLETE &&
        (best == NULL ||
         fth_tune_signed(t->value, s->maximize) < fth_tune_signed(best->value, s->maximize)))
      best = t;
  }
  return best;
}

gint64
fth_tune_study_get_steps_used(FthTuneStudy *s)
{
  return s->steps_used;
}

/* ---- the journal ------------------------------------------------------------------------------ */

static void
add_number(JsonBuilder *b, const char *member, double v)
{
  json_builder_set_member_name(b, member);
  if (isnan(v))
    json_builder_add_null_value(b);
  else if (isinf(v))
    json_builder_add_string_value(b, v > 0 ? "inf" : "-inf");
  else
    json_builder_add_double_value(b, v);
}

static double
get_number(JsonObject *o, const char *member)
{
  JsonNode *n = json_object_get_member(o, member);
  if (n == NULL || JSON_NODE_HOLDS_NULL(n))
    return NAN;
  if (json_node_get_value_type(n) == G_TYPE_STRING)
    return g_ascii_strtod(json_node_get_string(n), NULL);
  return json_node_get_double(n);
}

/* Writes one JSON line; the first write error becomes the study's fatal error. */
static void
journal_write(FthTuneStudy *s, JsonBuilder *b)
{
  if (s->journal == NULL)
    return;
  g_autoptr(JsonNode) root = json_builder_get_root(b);
  g_autofree char *line = json_to_string(root, FALSE);
  if ((fprintf(s->journal, "%s\n", line) < 0 || fflush(s->journal) != 0) && s->fatal == NULL)
    g_set_error(&s->fatal, FTH_TUNE_ERROR, FTH_TUNE_ERROR_JOURNAL, "%s: cannot write: %s",
                s->journal_path, g_strerror(errno));
}

static void
journal_start(FthTuneStudy *s, const FthTuneTrial *t, gboolean rerun)
{
  if (s->journal == NULL)
    return;
  g_autoptr(JsonBuilder) b = json_builder_new();
  g_autofree char *params = fth_search_space_values_to_json(s->space, t->params);
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "event");
  json_builder_add_string_value(b, rerun ? "restart" : "start");
  json_builder_set_member_name(b, "number");
  json_builder_add_int_value(b, t->number);
  json_builder_set_member_name(b, "params");
  json_builder_add_value(b, json_from_string(params, NULL));
  json_builder_set_member_name(b, "bracket");
  json_builder_add_int_value(b, t->bracket);
  json_builder_set_member_name(b, "host");
  json_builder_add_string_value(b, t->host);
  json_builder_end_object(b);
  journal_write(s, b);
}

static void
journal_report(FthTuneStudy *s, const FthTuneTrial *t, gint64 step, double value)
{
  if (s->journal == NULL)
    return;
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "event");
  json_builder_add_string_value(b, "report");
  json_builder_set_member_name(b, "number");
  json_builder_add_int_value(b, t->number);
  json_builder_set_member_name(b, "step");
  json_builder_add_int_value(b, step);
  add_number(b, "value", value);
  json_builder_end_object(b);
  journal_write(s, b);
}

static void
journal_finish(FthTuneStudy *s, const FthTuneTrial *t)
{
  if (s->journal == NULL)
    return;
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "event");
  json_builder_add_string_value(b, "finish");
  json_builder_set_member_name(b, "number");
  json_builder_add_int_value(b, t->number);
  json_builder_set_member_name(b, "state");
  json_builder_add_string_value(b, fth_tune_trial_state_to_string(t->state));
  add_number(b, "value", t->value);
  add_number(b, "duration_s", t->duration_s);
  if (t->error != NULL) {
    json_builder_set_member_name(b, "error");
    json_builder_add_string_value(b, t->error);
  }
  json_builder_end_object(b);
  journal_write(s, b);
}

static gboolean
journal_error(GError **error, const char *path, guint line, const char *what)
{
  g_set_error(error, FTH_TUNE_ERROR, FTH_TUNE_ERROR_JOURNAL, "%s:%u: %s", path, line, what);
  return FALSE;
}

static FthTuneTrialState
state_from_string(const char *s)
{
  if (g_strcmp0(s, "complete") == 0)
    return FTH_TUNE_TRIAL_COMPLETE;
  if (g_strcmp0(s, "pruned") == 0)
    return FTH_TUNE_TRIAL_PRUNED;
  if (g_strcmp0(s, "failed") == 0)
    return FTH_TUNE_TRIAL_FAILED;
  return FTH_TUNE_TRIAL_RUNNING;
}

static void loaded_trials_prepare(FthTuneStudy *s);

/* Replays the journal's lines into the study. A last line cut short by a crash is ignored. */
static gboolean
journal_load(FthTuneStudy *s, const char *path, const char *text, GError **error)
{
  g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
  guint n_lines = g_strv_length(lines);
  g_autofree char *space_json = fth_search_space_to_json(s->space);
  guint n = fth_search_space_get_n_params(s->space);
  for (guint i = 0; i < n_lines; i++) {
    if (lines[i][0] == '\0')
      continue;
    g_autoptr(JsonParser) parser = json_parser_new();
    if (!json_parser_load_from_data(parser, lines[i], -1, NULL) ||
        !JSON_NODE_HOLDS_OBJECT(json_parser_get_root(parser))) {
      gboolean last = TRUE;
      for (guint k = i + 1; k < n_lines; k++)
        last = last && lines[k][0] == '\0';
      if (last && !g_str_has_suffix(text, "\n"))
        break; /* a line the writer did not finish */
      return journal_error(error, path, i + 1, "not a JSON object");
    }
    JsonObject *o = json_node_get_object(json_parser_get_root(parser));
    const char *event = json_object_get_string_member_with_default(o, "event", "");
    if (i == 0 || g_str_equal(event, "study")) {
      if (!g_str_equal(event, "study"))
        return journal_error(error, path, i + 1, "the first line must be the study header");
      JsonNode *sp = json_object_get_member(o, "space");
      g_autofree char *stored = sp != NULL ? json_to_string(sp, FALSE) : NULL;
      if (g_strcmp0(json_object_get_string_member_with_default(o, "name", ""), s->name) != 0)
        return journal_error(error, path, i + 1, "the journal belongs to another study name");
      if (json_object_get_boolean_member_with_default(o, "maximize", FALSE) != s->maximize)
        return journal_error(error, path, i + 1, "the study direction differs");
      if (g_strcmp0(stored, space_json) != 0)
        return journal_error(error, path, i + 1, "the search space differs from the journal's");
      continue;
    }
    gint64 number = json_object_get_int_member_with_default(o, "number", -1);
    if (g_str_equal(event, "start")) {
      if (number != (gint64) s->trials->len)
        return journal_error(error, path, i + 1, "trial numbers are not consecutive");
      FthTuneTrial *t = g_new0(FthTuneTrial, 1);
      t->number = (int) number;
      t->params = g_new(double, MAX(n, 1u));
      t->host = g_strdup(json_object_get_string_member_with_default(o, "host", ""));
      t->bracket = (int) json_object_get_int_member_with_default(o, "bracket", 0);
      trial_reset(t);
      g_ptr_array_add(s->trials, t);
      JsonNode *pn = json_object_get_member(o, "params");
      g_autofree char *ptext = pn != NULL ? json_to_string(pn, FALSE) : g_strdup("");
      g_autoptr(GError) local = NULL;
      if (!fth_search_space_values_from_json(s->space, ptext, t->params, &local))
        return journal_error(error, path, i + 1, local->message);
      continue;
    }
    if (number < 0 || number >= (gint64) s->trials->len)
      return journal_error(error, path, i + 1, "names a trial that was not started");
    FthTuneTrial *t = g_ptr_array_index(s->trials, number);
    if (g_str_equal(event, "restart")) {
      s->steps_used -= trial_max_step(t);
      trial_reset(t);
    } else if (g_str_equal(event, "report")) {
      gint64 before = trial_max_step(t);
      trial_add_step(t, json_object_get_int_member_with_default(o, "step", 0),
                     get_number(o, "value"));
      s->steps_used += trial_max_step(t) - before;
    } else if (g_str_equal(event, "finish")) {
      t->state = state_from_string(json_object_get_string_member_with_default(o, "state", ""));
      t->value = get_number(o, "value");
      t->duration_s = get_number(o, "duration_s");
      g_free(t->error);
      t->error = g_strdup(json_object_get_string_member_with_default(o, "error", NULL));
    } else {
      return journal_error(error, path, i + 1, "unknown event");
    }
  }
  loaded_trials_prepare(s);
  return TRUE;
}

/* After loading finished and running trials: rebuilds the pruner's rung records by replaying
 * each trial's reports, and queues the trials that were running to run again. */
static void
loaded_trials_prepare(FthTuneStudy *s)
{
  if (s->pruner != NULL) {
    g_autofree const FthTuneTrial **hist = g_new(const FthTuneTrial *, s->trials->len + 1);
    for (guint i = 0; i < s->trials->len; i++) {
      FthTuneTrial *t = g_ptr_array_index(s->trials, i);
      guint n_steps = t->n_steps;
      for (guint k = 1; k <= n_steps; k++) {
        t->n_steps = k;
        for (guint j = 0; j <= i; j++)
          hist[j] = g_ptr_array_index(s->trials, j);
        fth_pruner_should_prune(s->pruner, t, hist, i + 1, s->maximize);
      }
    }
  }
  for (guint i = 0; i < s->trials->len; i++) {
    FthTuneTrial *t = g_ptr_array_index(s->trials, i);
    if (t->state == FTH_TUNE_TRIAL_RUNNING) {
      s->steps_used -= trial_max_step(t);
      t->n_steps = 0;
      t->n_rungs = 0;
      g_array_append_val(s->rerun, t->number);
    }
  }
}

gboolean
fth_tune_study_open_journal(FthTuneStudy *s, const char *path, GError **error)
{
  g_return_val_if_fail(s->journal == NULL && s->store == NULL, FALSE);
  g_autofree char *text = NULL;
  g_autoptr(GError) local = NULL;
  gboolean exists = g_file_get_contents(path, &text, NULL, &local);
  if (!exists && !g_error_matches(local, G_FILE_ERROR, G_FILE_ERROR_NOENT)) {
    g_set_error(error, FTH_TUNE_ERROR, FTH_TUNE_ERROR_JOURNAL, "%s: cannot read: %s", path,
                local->message);
    return FALSE;
  }
  if (exists && text[0] != '\0' && !journal_load(s, path, text, error))
    return FALSE;
  /* A line cut short by a crash is dropped from the file before appending. */
  if (exists && text[0] != '\0' && !g_str_has_suffix(text, "\n")) {
    char *cut = strrchr(text, '\n');
    gsize keep = cut != NULL ? (gsize) (cut - text) + 1 : 0;
    if (!g_file_set_contents(path, text, (gssize) keep, error))
      return FALSE;
    text[keep] = '\0';
  }
  s->journal = fopen(path, "a");
  if (s->journal == NULL) {
    g_set_error(error, FTH_TUNE_ERROR, FTH_TUNE_ERROR_JOURNAL, "%s: cannot open: %s", path,
                g_strerror(errno));
    return FALSE;
  }
  s->journal_path = g_strdup(path);
  if (!exists || text[0] == '\0') {
    g_autoptr(JsonBuilder) b = json_builder_new();
    g_autofree char *space_json = fth_search_space_to_json(s->space);
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "event");
    json_builder_add_string_value(b, "study");
    json_builder_set_member_name(b, "name");
    json_builder_add_string_value(b, s->name);
    json_builder_set_member_name(b, "maximize");
    json_builder_add_boolean_value(b, s->maximize);
    json_builder_set_member_name(b, "space");
    json_builder_add_value(b, json_from_string(space_json, NULL));
    json_builder_end_object(b);
    journal_write(s, b);
    if (s->fatal != NULL) {
      g_propagate_error(error, g_steal_pointer(&s->fatal));
      return FALSE;
    }
  }
  return TRUE;
}

/* ---- the project's store ---------------------------------------------------------------------- */

static void
store_failed(FthTuneStudy *s, GError *local)
{
  if (s->fatal == NULL)
    g_set_error(&s->fatal, FTH_TUNE_ERROR, FTH_TUNE_ERROR_STORE, "study \"%s\" in %s: %s",
                s->name, fth_store_get_db_path(s->store), local->message);
  g_error_free(local);
}

static void
store_start(FthTuneStudy *s, const FthTuneTrial *t, gboolean rerun)
{
  if (s->store == NULL || rerun)
    return; /* a rerun keeps its row (still RUNNING) and overwrites its values step by step */
  g_autofree char *params = fth_search_space_values_to_json(s->space, t->params);
  gint64 id = 0;
  int number = -1;
  GError *local = NULL;
  if (!fth_store_create_trial(s->store, s->store_study_id, params, t->host, &id, &number,
                              &local)) {
    store_failed(s, local);
    return;
  }
  if (number != t->number) {
    store_failed(s, g_error_new(FTH_TUNE_ERROR, FTH_TUNE_ERROR_STORE,
                                "the store numbered trial %d as %d (another writer?)",
                                t->number, number));
    return;
  }
  g_array_append_val(s->store_trial_ids, id);
}

static gint64
store_trial_id(FthTuneStudy *s, const FthTuneTrial *t)
{
  return (guint) t->number < s->store_trial_ids->len
           ? g_array_index(s->store_trial_ids, gint64, t->number)
           : 0;
}

static void
store_report(FthTuneStudy *s, const FthTuneTrial *t, gint64 step, double value)
{
  /* The store keeps finite values only; the pruners see NaN in memory either way. */
  if (s->store == NULL || !isfinite(value) || store_trial_id(s, t) == 0)
    return;
  GError *local = NULL;
  if (!fth_store_add_trial_value(s->store, store_trial_id(s, t), step, value, &local))
    store_failed(s, local);
}

static void
store_finish(FthTuneStudy *s, const FthTuneTrial *t)
{
  if (s->store == NULL || store_trial_id(s, t) == 0)
    return;
  GError *local = NULL;
  if (!fth_store_finish_trial(s->store, store_trial_id(s, t), (FthTrialState) t->state,
                              isfinite(t->value), isfinite(t->value) ? t->value : 0,
                              t->duration_s, t->error, &local))
    store_failed(s, local);
}

static gboolean
store_load(FthTuneStudy *s, GError **error)
{
  const char *db = fth_store_get_db_path(s->store);
  guint n = fth_search_space_get_n_params(s->space);
  g_autoptr(GPtrArray) rows = fth_store_list_trials(s->store, s->store_study_id, error);
  if (rows == NULL)
    return FALSE;
  for (guint i = 0; i < rows->len; i++) {
    const FthTrial *row = g_ptr_array_index(rows, i);
    if (row->number != (int) i) {
      g_set_error(error, FTH_TUNE_ERROR, FTH_TUNE_ERROR_STORE,
                  "%s: study \"%s\": trial numbers are not consecutive at %d", db, s->name,
                  row->number);
      return FALSE;
    }
    FthTuneTrial *t = g_new0(FthTuneTrial, 1);
    t->number = row->number;
    t->params = g_new(double, MAX(n, 1u));
    t->host = g_strdup(row->host != NULL ? row->host : "");
    t->bracket = s->pruner != NULL ? fth_pruner_bracket(s->pruner, s->name, t->number) : 0;
    trial_reset(t);
    g_ptr_array_add(s->trials, t);
    g_array_append_val(s->store_trial_ids, row->id);
    g_autoptr(GError) local = NULL;
    if (!fth_search_space_values_from_json(s->space, row->params_json ? row->params_json : "",
                                           t->params, &local)) {
      g_set_error(error, FTH_TUNE_ERROR, FTH_TUNE_ERROR_STORE, "%s: study \"%s\", trial %d: %s",
                  db, s->name, t->number, local->message);
      return FALSE;
    }
    g_autoptr(GArray) values = fth_store_list_trial_values(s->store, row->id, error);
    if (values == NULL)
      return FALSE;
    for (guint k = 0; k < values->len; k++) {
      const FthTrialValue *v = &g_array_index(values, FthTrialValue, k);
      trial_add_step(t, v->step, v->value);
    }
    s->steps_used += trial_max_step(t);
    t->state = (FthTuneTrialState) row->state;
    t->value = row->has_value ? row->value : NAN;
    t->duration_s = row->duration_s;
    t->error = g_strdup(row->error);
  }
  loaded_trials_prepare(s);
  return TRUE;
}

gboolean
fth_tune_study_open_store(FthTuneStudy *s, FthStore *store, gint64 run_id, GError **error)
{
  g_return_val_if_fail(s->journal == NULL && s->store == NULL && s->trials->len == 0, FALSE);
  const char *direction = s->maximize ? "maximize" : "minimize";
  g_autofree char *space_json = fth_search_space_to_json(s->space);
  g_autoptr(GPtrArray) studies = fth_store_list_studies(store, error);
  if (studies == NULL)
    return FALSE;
  const FthStudy *found = NULL;
  for (guint i = 0; i < studies->len && found == NULL; i++) {
    const FthStudy *st = g_ptr_array_index(studies, i);
    if (g_strcmp0(st->name, s->name) == 0)
      found = st;
  }
  s->store = g_object_ref(store);
  s->store_trial_ids = g_array_new(FALSE, FALSE, sizeof(gint64));
  if (found == NULL)
    return fth_store_create_study(store, s->name, direction, space_json, run_id,
                                  &s->store_study_id, error);
  s->store_study_id = found->id;
  const char *why = NULL;
  if (g_strcmp0(found->direction, direction) != 0)
    why = "the study direction differs";
  else if (g_strcmp0(found->space_json, space_json) != 0)
    why = "the search space differs from the stored one";
  if (why != NULL) {
    g_set_error(error, FTH_TUNE_ERROR, FTH_TUNE_ERROR_STORE, "%s: study \"%s\": %s",
                fth_store_get_db_path(store), s->name, why);
    return FALSE;
  }
  return store_load(s, error);
}

gint64
fth_tune_study_get_store_id(FthTuneStudy *s)
{
  return s->store != NULL ? s->store_study_id : 0;
}

/* ---- running trials --------------------------------------------------------------------------- */

int
fth_tune_trial_get_number(FthTuneTrialContext *ctx)
{
  return ctx->trial->number;
}

double
fth_tune_trial_get_value(FthTuneTrialContext *ctx, const char *name)
{
  int i = fth_search_space_find(ctx->study->space, name);
  return i < 0 ? NAN : ctx->trial->params[i];
}

gboolean
fth_tune_trial_is_active(FthTuneTrialContext *ctx, const char *name)
{
  return !isnan(fth_tune_trial_get_value(ctx, name));
}

gint64
fth_tune_trial_get_int(FthTuneTrialContext *ctx, const char *name)
{
  double v = fth_tune_trial_get_value(ctx, name);
  return isnan(v) ? 0 : (gint64) v;
}

const char *
fth_tune_trial_get_choice(FthTuneTrialContext *ctx, const char *name)
{
  int i = fth_search_space_find(ctx->study->space, name);
  if (i < 0 || isnan(ctx->trial->params[i]))
    return NULL;
  const FthTuneParam *p = fth_search_space_get_param(ctx->study->space, (guint) i);
  return p->kind == FTH_PARAM_CATEGORICAL ? p->choices[(guint) ctx->trial->params[i]] : NULL;
}

const double *
fth_tune_trial_get_values(FthTuneTrialContext *ctx)
{
  return ctx->trial->params;
}

FthSearchSpace *
fth_tune_trial_get_space(FthTuneTrialContext *ctx)
{
  return fth_tune_study_get_space(ctx->study);
}

static void
emit(FthTuneStudy *s, FthTuneEventKind kind, const FthTuneTrial *t)
{
  if (s->event_func != NULL)
    s->event_func(s, kind, t, s->event_data);
}

gboolean
fth_tune_trial_report(FthTuneTrialContext *ctx, gint64 step, double value)
{
  FthTuneStudy *s = ctx->study;
  FthTuneTrial *t = ctx->trial;
  g_mutex_lock(&s->lock);
  gint64 before = trial_max_step(t);
  trial_add_step(t, step, value);
  s->steps_used += trial_max_step(t) - before;
  journal_report(s, t, step, value);
  store_report(s, t, step, value);
  if (s->pruner != NULL &&
      fth_pruner_should_prune(s->pruner, t, (const FthTuneTrial *const *) s->trials->pdata,
                              s->trials->len, s->maximize))
    ctx->stop = TRUE;
  emit(s, FTH_TUNE_EVENT_TRIAL_REPORTED, t);
  g_mutex_unlock(&s->lock);
  return ctx->stop || g_cancellable_is_cancelled(s->cancellable);
}

/* Picks the next trial (a rerun or a freshly sampled one) with the lock held; NULL when the
 * study has enough trials, its budget is spent, or it must stop. */
static FthTuneTrial *
next_trial(FthTuneStudy *s)
{
  if (s->fatal != NULL || s->exhausted || g_cancellable_is_cancelled(s->cancellable))
    return NULL;
  if (s->rerun->len > 0) {
    int number = g_array_index(s->rerun, int, 0);
    g_array_remove_index(s->rerun, 0);
    FthTuneTrial *t = g_ptr_array_index(s->trials, number);
    trial_reset(t);
    journal_start(s, t, TRUE);
    store_start(s, t, TRUE);
    return t;
  }
  if (s->trials->len >= s->n_target)
    return NULL;
  if (s->step_budget > 0 && s->steps_used >= s->step_budget)
    return NULL;
  int number = (int) s->trials->len;
  guint n = fth_search_space_get_n_params(s->space);
  FthTuneTrial *t = g_new0(FthTuneTrial, 1);
  t->number = number;
  t->params = g_new(double, MAX(n, 1u));
  t->bracket = s->pruner != NULL ? fth_pruner_bracket(s->pruner, s->name, number) : 0;
  t->host = g_strdup(s->host);
  trial_reset(t);
  /* Under Hyperband the sampler sees only the trials of the new trial's bracket. */
  g_autofree const FthTuneTrial **hist = g_new(const FthTuneTrial *, s->trials->len + 1);
  guint nh = 0;
  for (guint i = 0; i < s->trials->len; i++) {
    const FthTuneTrial *o = g_ptr_array_index(s->trials, i);
    if (o->bracket == t->bracket)
      hist[nh++] = o;
  }
  g_autoptr(GError) local = NULL;
  if (!fth_sampler_sample(s->sampler, s->space, hist, nh, number, s->maximize, t->params,
                          &local)) {
    if (g_error_matches(local, FTH_TUNE_ERROR, FTH_TUNE_ERROR_EXHAUSTED))
      s->exhausted = TRUE;
    else
      s->fatal = g_steal_pointer(&local);
    trial_free(t);
    return NULL;
  }
  g_ptr_array_add(s->trials, t);
  journal_start(s, t, FALSE);
  store_start(s, t, FALSE);
  return t;
}

static void
run_trial(FthTuneStudy *s, FthTuneTrial *t)
{
  FthTuneTrialContext ctx = { s, t, FALSE };
  double value = NAN;
  g_autoptr(GError) err = NULL;
  gint64 t0 = g_get_monotonic_time();
  gboolean ok = s->objective(&ctx, s->objective_data, &value, &err);
  double duration = (g_get_monotonic_time() - t0) / 1e6;

  g_mutex_lock(&s->lock);
  t->duration_s = duration;
  if (ctx.stop) {
    t->state = FTH_TUNE_TRIAL_PRUNED;
  } else if (g_cancellable_is_cancelled(s->cancellable)) {
    t->state = FTH_TUNE_TRIAL_FAILED;
    t->error = g_strdup("cancelled");
  } else if (!ok) {
    t->state = FTH_TUNE_TRIAL_FAILED;
    t->error = g_strdup(err != NULL ? err->message : "the objective failed without a reason");
  } else if (!isfinite(value)) {
    t->state = FTH_TUNE_TRIAL_FAILED;
    t->error = g_strdup_printf("the objective returned %g", value);
  } else {
    t->state = FTH_TUNE_TRIAL_COMPLETE;
    t->value = value;
  }
  journal_finish(s, t);
  store_finish(s, t);
  emit(s, FTH_TUNE_EVENT_TRIAL_FINISHED, t);
  g_mutex_unlock(&s->lock);
}

static gpointer
worker_main(gpointer data)
{
  FthTuneStudy *s = data;
  for (;;) {
    g_mutex_lock(&s->lock);
    FthTuneTrial *t = next_trial(s);
    if (t != NULL)
      emit(s, FTH_TUNE_EVENT_TRIAL_STARTED, t);
    g_mutex_unlock(&s->lock);
    if (t == NULL)
      return NULL;
    run_trial(s, t);
  }
}

gboolean
fth_tune_study_optimize(FthTuneStudy *s, guint n_trials, guint n_workers,
                        FthObjectiveFunc objective, gpointer user_data,
                        GCancellable *cancellable, GError **error)
{
  g_return_val_if_fail(objective != NULL, FALSE);
  if (n_workers == 0 || n_workers > 256) {
    g_set_error(error, FTH_TUNE_ERROR, FTH_TUNE_ERROR_INVALID,
                "workers: %u is not between 1 and 256", n_workers);
    return FALSE;
  }
  s->n_target = n_trials;
  s->exhausted = FALSE;
  s->cancellable = cancellable;
  s->objective = objective;
  s->objective_data = user_data;
  if (n_workers == 1) {
    worker_main(s);
  } else {
    g_autofree GThread **threads = g_new(GThread *, n_workers);
    for (guint i = 0; i < n_workers; i++)
      threads[i] = g_thread_new("fth-tune", worker_main, s);
    for (guint i = 0; i < n_workers; i++)
      g_thread_join(threads[i]);
  }
  s->cancellable = NULL;
  s->objective = NULL;
  if (s->fatal != NULL) {
    g_propagate_error(error, g_steal_pointer(&s->fatal));
    return FALSE;
  }
  return TRUE;
}
