/* Pruners: median stopping, asynchronous successive halving, Hyperband.
 * Each follows the Optuna 3.1 pruner of the same name (pruners/_percentile.py,
 * _successive_halving.py, _hyperband.py), so a study here and there stop the same trials given
 * the same values. */
#include "fth-tune-private.h"

#include <math.h>
#include <string.h>
#include <zlib.h>

typedef enum {
  PRUNER_MEDIAN,
  PRUNER_ASHA,
  PRUNER_HYPERBAND,
} PrunerKind;

#define MAX_BRACKETS 16

struct _FthPruner {
  PrunerKind kind;
  guint n_startup_trials;
  gint64 n_warmup_steps;
  gint64 min_resource; /* ASHA: 0 = Optuna's 'auto' (last step of a completed trial / 100) */
  guint reduction_factor;
  guint min_early_stopping_rate;
  gint64 max_resource;
  guint n_brackets;
  guint budgets[MAX_BRACKETS];
  guint total_budget;
};

FthPruner *
fth_pruner_new_median(guint n_startup_trials, gint64 n_warmup_steps)
{
  FthPruner *p = g_new0(FthPruner, 1);
  p->kind = PRUNER_MEDIAN;
  p->n_startup_trials = n_startup_trials;
  p->n_warmup_steps = n_warmup_steps;
  return p;
}

FthPruner *
fth_pruner_new_asha(gint64 min_resource, guint reduction_factor, guint min_early_stopping_rate)
{
  FthPruner *p = g_new0(FthPruner, 1);
  p->kind = PRUNER_ASHA;
  p->min_resource = MAX(min_resource, 0);
  p->reduction_factor = MAX(reduction_factor, 2u);
  p->min_early_stopping_rate = min_early_stopping_rate;
  return p;
}

FthPruner *
fth_pruner_new_hyperband(gint64 min_resource, gint64 max_resource, guint reduction_factor)
{
  FthPruner *p = g_new0(FthPruner, 1);
  p->kind = PRUNER_HYPERBAND;
  p->min_resource = MAX(min_resource, 1);
  p->max_resource = MAX(max_resource, p->min_resource);
  p->reduction_factor = MAX(reduction_factor, 2u);
  /* floor(log_rf(max / min)) + 1, counted in integers to avoid log() rounding. */
  guint n = 1;
  for (gint64 r = p->min_resource * p->reduction_factor; r <= p->max_resource && n < MAX_BRACKETS;
       r *= p->reduction_factor)
    n++;
  p->n_brackets = n;
  for (guint b = 0; b < n; b++) {
    guint s = n - 1 - b;
    double rf_s = pow(p->reduction_factor, s);
    p->budgets[b] = (guint) ceil(n * rf_s / (s + 1));
    p->total_budget += p->budgets[b];
  }
  return p;
}

FthPruner *
fth_pruner_new_by_name(const char *name, gint64 max_resource, GError **error)
{
  if (g_strcmp0(name, "median") == 0)
    return fth_pruner_new_median(5, 0);
  if (g_strcmp0(name, "asha") == 0)
    return fth_pruner_new_asha(1, 3, 0);
  if (g_strcmp0(name, "hyperband") == 0)
    return fth_pruner_new_hyperband(1, max_resource, 3);
  if (g_strcmp0(name, "none") != 0)
    g_set_error(error, FTH_TUNE_ERROR, FTH_TUNE_ERROR_INVALID,
                "pruner \"%s\": unknown (none, median, asha or hyperband)", name ? name : "");
  return NULL;
}

void
fth_pruner_free(FthPruner *pruner)
{
  g_free(pruner);
}

const char *
fth_pruner_get_name(const FthPruner *pruner)
{
  if (pruner == NULL)
    return "none";
  switch (pruner->kind) {
  case PRUNER_MEDIAN:
    return "median";
  case PRUNER_ASHA:
    return "asha";
  case PRUNER_HYPERBAND:
    return "hyperband";
  }
  return "unknown";
}

int
fth_pruner_bracket(const FthPruner *pruner, const char *study_name, int number)
{
  if (pruner == NULL || pruner->kind != PRUNER_HYPERBAND)
    return 0;
  g_autofree char *key = g_strdup_printf("%s_%d", study_name, number);
  uLong crc = crc32(0L, (const Bytef *) key, (uInt) strlen(key));
  long n = (long) (crc % pruner->total_budget);
  for (guint b = 0; b < pruner->n_brackets; b++) {
    n -= pruner->budgets[b];
    if (n < 0)
      return (int) b;
  }
  return (int) pruner->n_brackets - 1;
}

static guint
last_index(const FthTuneTrial *t)
{
  guint last = 0;
  for (guint k = 1; k < t->n_steps; k++)
    if (t->steps[k] >= t->steps[last])
      last = k;
  return last;
}

static int
cmp_double(const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return x < y ? -1 : x > y;
}

/* numpy's percentile with linear interpolation, on sorted V. */
static double
percentile(const double *v, guint n, double q)
{
  double pos = q / 100.0 * (n - 1);
  guint lo = (guint) floor(pos);
  guint hi = MIN(lo + 1, n - 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - lo);
}

static gboolean
median_should_prune(FthPruner *p, FthTuneTrial *trial, const FthTuneTrial *const *history,
                    guint n_history, gboolean maximize)
{
  guint n_complete = 0;
  for (guint i = 0; i < n_history; i++)
    n_complete += history[i]->state == FTH_TUNE_TRIAL_COMPLETE;
  if (n_complete == 0 || n_complete < p->n_startup_trials || trial->n_steps == 0)
    return FALSE;
  gint64 step = trial->steps[last_index(trial)];
  if (step < p->n_warmup_steps)
    return FALSE;
  double best = NAN;
  for (guint k = 0; k < trial->n_steps; k++) {
    double v = fth_tune_signed(trial->step_values[k], maximize);
    if (!isnan(v) && (isnan(best) || v < best))
      best = v;
  }
  if (isnan(best))
    return TRUE;
  g_autofree double *vals = g_new(double, n_complete);
  guint m = 0;
  for (guint i = 0; i < n_history; i++) {
    const FthTuneTrial *t = history[i];
    if (t->state != FTH_TUNE_TRIAL_COMPLETE)
      continue;
    for (guint k = 0; k < t->n_steps; k++)
      if (t->steps[k] == step && !isnan(t->step_values[k])) {
        vals[m++] = fth_tune_signed(t->step_values[k], maximize);
        break;
      }
  }
  if (m == 0)
    return FALSE;
  qsort(vals, m, sizeof *vals, cmp_double);
  return best > percentile(vals, m, 50.0);
}

static gboolean
asha_should_prune(const FthPruner *p, guint min_early_stopping_rate, FthTuneTrial *trial,
                  const FthTuneTrial *const *history, guint n_history, gboolean maximize)
{
  if (trial->n_steps == 0)
    return FALSE;
  guint li = last_index(trial);
  gint64 step = trial->steps[li];
  double value = fth_tune_signed(trial->step_values[li], maximize);
  gint64 min_resource = p->min_resource;
  if (min_resource == 0) {
    gint64 last = -1;
    for (guint i = 0; i < n_history; i++)
      if (history[i]->state == FTH_TUNE_TRIAL_COMPLETE && history[i]->n_steps > 0)
        last = MAX(last, history[i]->steps[last_index(history[i])]);
    if (last < 0)
      return FALSE;
    min_resource = MAX(last / 100, 1);
  }
  g_autofree double *competing = g_new(double, n_history + 1);
  for (guint rung = trial->n_rungs; rung < FTH_TUNE_MAX_RUNGS; rung++) {
    double promotion = (double) min_resource * pow(p->reduction_factor,
                                                   min_early_stopping_rate + rung);
    if ((double) step < promotion)
      return FALSE;
    if (isnan(value))
      return TRUE;
    trial->rung_values[rung] = value;
    trial->n_rungs = rung + 1;
    guint n = 0;
    for (guint i = 0; i < n_history; i++)
      if (history[i] != trial && history[i]->n_rungs > rung)
        competing[n++] = history[i]->rung_values[rung];
    competing[n++] = value;
    qsort(competing, n, sizeof *competing, cmp_double);
    guint idx = n / p->reduction_factor;
    idx = idx == 0 ? 0 : idx - 1;
    if (!(value <= competing[idx]))
      return TRUE;
  }
  return FALSE;
}

gboolean
fth_pruner_should_prune(FthPruner *pruner, FthTuneTrial *trial,
                        const FthTuneTrial *const *history, guint n_history, gboolean maximize)
{
  switch (pruner->kind) {
  case PRUNER_MEDIAN:
    return median_should_prune(pruner, trial, history, n_history, maximize);
  case PRUNER_ASHA:
    return asha_should_prune(pruner, pruner->min_early_stopping_rate, trial, history, n_history,
                             maximize);
  case PRUNER_HYPERBAND: {
    /* Trials compete only within their bracket. */
    g_autofree const FthTuneTrial **same = g_new(const FthTuneTrial *, n_history + 1);
    guint n = 0;
    for (guint i = 0; i < n_history; i++)
      if (history[i]->bracket == trial->bracket)
        same[n++] = history[i];
    return asha_should_prune(pruner, (guint) trial->bracket, trial, same, n, maximize);
  }
  }
  return FALSE;
}
