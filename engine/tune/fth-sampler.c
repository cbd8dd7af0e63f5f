/* Samplers: random, grid and TPE (the GP sampler is in fth-gp.c).
 *
 * TPE follows Optuna 3.1's TPESampler and _ParzenEstimator (samplers/_tpe/) step by step, so
 * that its defaults mean the same thing: observations ranked by (-step, value) with completed
 * trials first, gamma(n) = min(ceil(n / 10), 25) "good" ones, Optuna's default weights (a
 * linear ramp for all but the newest 25), a prior component of weight 1 at the middle of the
 * range with sigma = the range, neighbour-gap bandwidths clipped by the "magic clip" in the
 * univariate case and Scott's rule 0.2 n^(-1/(d+4)) in the multivariate one, truncated normal
 * kernels (discretised for stepped parameters) whose continuous densities, as in Optuna 3.1,
 * lack the 1/sigma factor, 24 candidates from l(x) scored by log l(x) - log g(x). Random numbers come from GRand, so the draws differ from numpy's. */
#include "fth-tune-private.h"

#include <float.h>
#include <math.h>
#include <string.h>

/* ---- common --------------------------------------------------------------------------------- */

void
fth_sampler_free(FthSampler *sampler)
{
  if (sampler != NULL)
    sampler->klass->free(sampler);
}

const char *
fth_sampler_get_name(const FthSampler *sampler)
{
  return sampler->klass->name;
}

gboolean
fth_sampler_sample(FthSampler *sampler, const FthSearchSpace *space,
                   const FthTuneTrial *const *history, guint n_history, int number,
                   gboolean maximize, double *values, GError **error)
{
  guint n = fth_search_space_get_n_params(space);
  for (guint i = 0; i < n; i++)
    values[i] = NAN;
  return sampler->klass->sample(sampler, space, history, n_history, number, maximize, values,
                                error);
}

static void
plain_free(FthSampler *sampler)
{
  g_free(sampler);
}

/* ---- random --------------------------------------------------------------------------------- */

static gboolean
random_sample(FthSampler *sampler, const FthSearchSpace *space,
              const FthTuneTrial *const *history, guint n_history, int number,
              gboolean maximize, double *values, GError **error)
{
  g_autoptr(GRand) rng = fth_tune_rng_new(sampler->seed, number, 0);
  fth_search_space_sample_uniform(space, rng, values);
  return TRUE;
}

static const FthSamplerClass random_class = { "random", random_sample, plain_free };

FthSampler *
fth_sampler_new_random(guint64 seed)
{
  FthSampler *s = g_new0(FthSampler, 1);
  s->klass = &random_class;
  s->seed = seed;
  return s;
}

/* ---- grid ----------------------------------------------------------------------------------- */

typedef struct {
  FthSampler parent;
  guint points_per_axis;
} GridSampler;

static guint
grid_axis_size(const FthTuneParam *p, guint points)
{
  if (p->kind == FTH_PARAM_CATEGORICAL)
    return p->n_choices;
  if (p->step > 0) {
    double count = floor((p->high - p->low) / p->step + 0.5) + 1;
    return count < points ? (guint) count : points;
  }
  return p->low == p->high ? 1 : points;
}

static double
grid_axis_value(const FthTuneParam *p, guint k, guint size)
{
  if (p->kind == FTH_PARAM_CATEGORICAL)
    return k;
  if (size == 1)
    return p->low;
  double lo = fth_param_to_sampling(p, p->low), hi = fth_param_to_sampling(p, p->high);
  double x = lo + (hi - lo) * k / (size - 1);
  /* Snap without the half-step widening of the sampling bounds. */
  double v = p->log ? exp(x) : x;
  if (p->step > 0)
    v = nearbyint((v - p->low) / p->step) * p->step + p->low;
  else if (p->kind == FTH_PARAM_INT)
    v = nearbyint(v);
  return CLAMP(v, p->low, p->high);
}

static gboolean
grid_sample(FthSampler *sampler, const FthSearchSpace *space,
            const FthTuneTrial *const *history, guint n_history, int number, gboolean maximize,
            double *values, GError **error)
{
  GridSampler *g = (GridSampler *) sampler;
  guint n = fth_search_space_get_n_params(space);
  /* Mixed radix, the last parameter fastest. */
  guint64 index = (guint64) number;
  for (guint i = n; i-- > 0;) {
    const FthTuneParam *p = fth_search_space_get_param(space, i);
    guint size = grid_axis_size(p, g->points_per_axis);
    values[i] = grid_axis_value(p, (guint) (index % size), size);
    index /= size;
  }
  if (index > 0) {
    g_set_error(error, FTH_TUNE_ERROR, FTH_TUNE_ERROR_EXHAUSTED,
                "grid sampler: trial %d is past the last of the grid's points", number);
    return FALSE;
  }
  fth_search_space_deactivate(space, values);
  return TRUE;
}

static const FthSamplerClass grid_class = { "grid", grid_sample, plain_free };

FthSampler *
fth_sampler_new_grid(guint points_per_axis)
{
  GridSampler *g = g_new0(GridSampler, 1);
  g->parent.klass = &grid_class;
  g->points_per_axis = MAX(points_per_axis, 1);
  return &g->parent;
}

/* ---- Parzen estimator ----------------------------------------------------------------------- */

void
fth_tpe_options_init(FthTpeOptions *o)
{
  o->n_startup_trials = 10;
  o->n_ei_candidates = 24;
  o->prior_weight = 1.0;
  o->multivariate = FALSE;
  o->constant_liar = FALSE;
}

typedef struct {
  guint d, n_obs, n_comp;
  const FthTuneParam **params;
  double *low, *high, *q; /* per dimension, in the sampling space; q = 0: continuous */
  double *mus, *sigmas;   /* d x n_comp (numerical dimensions) */
  double **cat;           /* d pointers to n_comp x n_choices (categorical dimensions) */
  double *weights;        /* n_comp */
  double *log_weights;    /* n_comp */
  double *log_norm;       /* d x n_comp: log P(low <= X <= high), per component */
} Parzen;

static void
parzen_free(Parzen *pe)
{
  for (guint k = 0; k < pe->d; k++)
    g_free(pe->cat[k]);
  g_free(pe->cat);
  g_free(pe->params);
  g_free(pe->low);
  g_free(pe->high);
  g_free(pe->q);
  g_free(pe->mus);
  g_free(pe->sigmas);
  g_free(pe->weights);
  g_free(pe->log_norm);
  g_free(pe->log_weights);
}

/* Optuna's default_weights(n): 1 for the newest 25, a ramp from 1/n up for the older ones. */
static void
default_weights(guint n, double *w)
{
  if (n < 25) {
    for (guint i = 0; i < n; i++)
      w[i] = 1.0;
    return;
  }
  guint nr = n - 25;
  for (guint i = 0; i < nr; i++)
    w[i] = nr == 1 ? 1.0 / n : 1.0 / n + (1.0 - 1.0 / n) * i / (nr - 1);
  for (guint i = nr; i < n; i++)
    w[i] = 1.0;
}

static int
cmp_double_index(const void *a, const void *b, void *data)
{
  const double *v = data;
  double x = v[*(const guint *) a], y = v[*(const guint *) b];
  return x < y ? -1 : x > y ? 1 : 0;
}

/* log(Phi(b) - Phi(a)) without cancellation in either tail. */
static double
log_gauss_mass(double a, double b)
{
  double m;
  if (a >= 0)
    m = 0.5 * (erfc(a / G_SQRT2) - erfc(b / G_SQRT2));
  else if (b <= 0)
    m = 0.5 * (erfc(-b / G_SQRT2) - erfc(-a / G_SQRT2));
  else
    m = 1.0 - 0.5 * erfc(-a / G_SQRT2) - 0.5 * erfc(b / G_SQRT2);
  return log(MAX(m, DBL_MIN));
}

/* OBS: d x n_obs values in value space (row k = dimension k). */
static void
parzen_init(Parzen *pe, const FthTuneParam **params, guint d, const double *obs, guint n_obs,
            double prior_weight, gboolean multivariate)
{
  pe->d = d;
  pe->n_obs = n_obs;
  pe->n_comp = n_obs + 1; /* the prior is always a component (consider_prior) */
  guint nc = pe->n_comp;
  pe->params = g_memdup2(params, d * sizeof *params);
  pe->low = g_new(double, d);
  pe->high = g_new(double, d);
  pe->q = g_new0(double, d);
  pe->mus = g_new0(double, (gsize) d * nc);
  pe->sigmas = g_new0(double, (gsize) d * nc);
  pe->cat = g_new0(double *, d);
  pe->weights = g_new(double, nc);
  pe->log_norm = g_new0(double, (gsize) d * nc);

  default_weights(n_obs, pe->weights);
  pe->weights[n_obs] = prior_weight;
  double wsum = 0;
  for (guint i = 0; i < nc; i++)
    wsum += pe->weights[i];
  for (guint i = 0; i < nc; i++)
    pe->weights[i] /= wsum;
  pe->log_weights = g_new(double, nc);
  for (guint i = 0; i < nc; i++)
    pe->log_weights[i] = log(pe->weights[i]);

  double sigma0 = 0.2 * pow(MAX(n_obs, 1u), -1.0 / (d + 4));
  g_autofree guint *order = g_new(guint, nc);
  g_autofree double *swe = g_new(double, nc + 2);
  g_autofree double *ss = g_new(double, nc);
  for (guint k = 0; k < d; k++) {
    const FthTuneParam *p = params[k];
    const double *o = obs + (gsize) k * n_obs;
    if (p->kind == FTH_PARAM_CATEGORICAL) {
      guint m = p->n_choices;
      double *cw = pe->cat[k] = g_new(double, (gsize) nc * m);
      double base = prior_weight / (n_obs + 1);
      for (guint i = 0; i < nc * m; i++)
        cw[i] = base;
      for (guint i = 0; i < n_obs; i++)
        cw[i * m + (guint) o[i]] += 1.0;
      for (guint i = 0; i < nc; i++) {
        double s = 0;
        for (guint c = 0; c < m; c++)
          s += cw[i * m + c];
        for (guint c = 0; c < m; c++)
          cw[i * m + c] /= s;
      }
      continue;
    }
    double lo, hi;
    fth_param_sampling_bounds(p, &lo, &hi);
    pe->low[k] = lo;
    pe->high[k] = hi;
    if (p->kind == FTH_PARAM_INT ? !p->log : p->step > 0)
      pe->q[k] = p->step;
    double *mus = pe->mus + (gsize) k * nc, *sig = pe->sigmas + (gsize) k * nc;
    for (guint i = 0; i < n_obs; i++)
      mus[i] = fth_param_to_sampling(p, o[i]);
    mus[n_obs] = 0.5 * (lo + hi);
    if (multivariate) {
      for (guint i = 0; i < nc; i++)
        sig[i] = sigma0 * (hi - lo);
    } else {
      for (guint i = 0; i < nc; i++)
        order[i] = i;
      g_qsort_with_data(order, (gint) nc, sizeof *order, cmp_double_index, mus);
      swe[0] = lo;
      for (guint i = 0; i < nc; i++)
        swe[i + 1] = mus[order[i]];
      swe[nc + 1] = hi;
      for (guint i = 0; i < nc; i++)
        ss[i] = MAX(swe[i + 1] - swe[i], swe[i + 2] - swe[i + 1]);
      if (nc + 2 >= 4) { /* consider_endpoints = False */
        ss[0] = swe[2] - swe[1];
        ss[nc - 1] = swe[nc] - swe[nc - 1];
      }
      for (guint i = 0; i < nc; i++)
        sig[order[i]] = ss[i];
    }
    double maxsigma = hi - lo;
    double minsigma = (hi - lo) / MIN(100.0, 1.0 + nc); /* the magic clip */
    for (guint i = 0; i < nc; i++)
      sig[i] = CLAMP(sig[i], minsigma, maxsigma);
    sig[n_obs] = hi - lo;
    /* The truncation's normaliser depends on the component only: computed once here. Like
     * Optuna 3.1's _truncnorm.logpdf, a continuous kernel's density leaves out 1/sigma, so each
     * kernel counts in l(x) and g(x) in proportion to its bandwidth. With the true density
     * (log sigma subtracted) the regret on the benchmark functions was 1.1-1.6x Optuna's. */
    double *ln = pe->log_norm + (gsize) k * nc;
    for (guint i = 0; i < nc; i++)
      ln[i] = log_gauss_mass((lo - mus[i]) / sig[i], (hi - mus[i]) / sig[i]);
  }
}

static guint
pick_index(GRand *rng, const double *p, guint n)
{
  double u = g_rand_double(rng), c = 0;
  for (guint i = 0; i < n; i++) {
    c += p[i];
    if (u < c)
      return i;
  }
  return n - 1;
}

/* Draws one point (value space) into X (d). */
static void
parzen_sample(const Parzen *pe, GRand *rng, double *x)
{
  guint c = pick_index(rng, pe->weights, pe->n_comp);
  for (guint k = 0; k < pe->d; k++) {
    const FthTuneParam *p = pe->params[k];
    if (p->kind == FTH_PARAM_CATEGORICAL) {
      x[k] = pick_index(rng, pe->cat[k] + (gsize) c * p->n_choices, p->n_choices);
      continue;
    }
    double mu = pe->mus[(gsize) k * pe->n_comp + c], s = pe->sigmas[(gsize) k * pe->n_comp + c];
    /* Rejection from the normal: every component's mean lies inside [low, high] and its sigma
     * is at most the range, so at least a third of the draws are accepted. */
    double v;
    do
      v = mu + s * fth_tune_rng_normal(rng);
    while (!(v >= pe->low[k] && v <= pe->high[k]));
    x[k] = fth_param_from_sampling(p, v);
  }
}

static double
parzen_log_pdf(const Parzen *pe, const double *x, double *scratch)
{
  guint nc = pe->n_comp;
  memcpy(scratch, pe->log_weights, nc * sizeof *scratch);
  for (guint k = 0; k < pe->d; k++) {
    const FthTuneParam *p = pe->params[k];
    if (p->kind == FTH_PARAM_CATEGORICAL) {
      for (guint i = 0; i < nc; i++)
        scratch[i] += log(pe->cat[k][(gsize) i * p->n_choices + (guint) x[k]]);
      continue;
    }
    const double *mus = pe->mus + (gsize) k * nc, *sig = pe->sigmas + (gsize) k * nc;
    const double *ln = pe->log_norm + (gsize) k * nc;
    double xs = fth_param_to_sampling(p, x[k]), lo = pe->low[k], hi = pe->high[k],
           q = pe->q[k];
    for (guint i = 0; i < nc; i++) {
      if (q > 0) {
        double ub = MIN(xs + 0.5 * q, hi), lb = MAX(xs - 0.5 * q, lo);
        scratch[i] += log_gauss_mass((lb - mus[i]) / sig[i], (ub - mus[i]) / sig[i]) - ln[i];
      } else {
        double z = (xs - mus[i]) / sig[i];
        scratch[i] += fth_tune_log_norm_pdf(z) - ln[i];
      }
    }
  }
  double mx = -INFINITY;
  for (guint i = 0; i < nc; i++)
    mx = MAX(mx, scratch[i]);
  double s = 0;
  for (guint i = 0; i < nc; i++)
    s += exp(scratch[i] - mx);
  return log(s) + mx;
}

/* ---- TPE ------------------------------------------------------------------------------------ */

typedef struct {
  FthSampler parent;
  FthTpeOptions opt;
} TpeSampler;

typedef struct {
  double step_key; /* -inf: complete; -step: pruned; +inf: running */
  double score;
  guint index;
} Ranked;

static int
cmp_ranked(const void *a, const void *b, void *data)
{
  const Ranked *x = a, *y = b;
  if (x->step_key != y->step_key)
    return x->step_key < y->step_key ? -1 : 1;
  if (x->score != y->score)
    return x->score < y->score ? -1 : 1;
  return x->index < y->index ? -1 : x->index > y->index;
}

typedef struct {
  const FthTuneTrial **trials; /* the observed trials, in number order */
  guint n;                     /* observed trials */
  guint n_finished;            /* of which not running: n in gamma(n) */
  gboolean *below;             /* per observed trial */
} Split;

static void
split_free(Split *s)
{
  g_free(s->trials);
  g_free(s->below);
}

static void
split_observations(Split *s, const FthTuneTrial *const *history, guint n_history,
                   gboolean maximize, gboolean liar)
{
  s->trials = g_new(const FthTuneTrial *, n_history + 1);
  s->n = s->n_finished = 0;
  g_autofree Ranked *r = g_new(Ranked, n_history + 1);
  for (guint i = 0; i < n_history; i++) {
    const FthTuneTrial *t = history[i];
    Ranked *o = &r[s->n];
    if (t->state == FTH_TUNE_TRIAL_COMPLETE) {
      o->step_key = -INFINITY;
      o->score = fth_tune_signed(t->value, maximize);
    } else if (t->state == FTH_TUNE_TRIAL_PRUNED) {
      if (t->n_steps > 0) {
        guint last = 0;
        for (guint k = 1; k < t->n_steps; k++)
          if (t->steps[k] >= t->steps[last])
            last = k;
        o->step_key = -(double) t->steps[last];
        o->score = isnan(t->step_values[last])
                     ? INFINITY
                     : fth_tune_signed(t->step_values[last], maximize);
      } else {
        o->step_key = 1;
        o->score = 0;
      }
    } else if (t->state == FTH_TUNE_TRIAL_RUNNING && liar) {
      o->step_key = INFINITY;
      o->score = INFINITY;
    } else {
      continue;
    }
    if (isnan(o->score))
      o->score = INFINITY;
    o->index = s->n;
    s->trials[s->n++] = t;
    if (t->state != FTH_TUNE_TRIAL_RUNNING)
      s->n_finished++;
  }
  guint n_below = MIN((guint) ceil(0.1 * s->n_finished), 25u);
  n_below = MIN(n_below, s->n);
  g_qsort_with_data(r, (gint) s->n, sizeof *r, cmp_ranked, NULL);
  s->below = g_new0(gboolean, s->n + 1);
  for (guint i = 0; i < n_below; i++)
    s->below[r[i].index] = TRUE;
}

/* Samples the DIMS parameters jointly (or one, univariately) into VALUES. */
static void
tpe_sample_dims(const TpeSampler *tpe, const FthSearchSpace *space, const Split *s,
                const guint *dims, guint d, gboolean multivariate, GRand *rng, double *values)
{
  g_autofree const FthTuneParam **params = g_new(const FthTuneParam *, d);
  for (guint k = 0; k < d; k++)
    params[k] = fth_search_space_get_param(space, dims[k]);
  /* Observations that have every dimension, split into below and above, in number order. */
  g_autofree double *ob = g_new(double, (gsize) d * s->n + 1);
  g_autofree double *oa = g_new(double, (gsize) d * s->n + 1);
  guint nb = 0, na = 0;
  for (guint i = 0; i < s->n; i++) {
    gboolean has = TRUE;
    for (guint k = 0; k < d; k++)
      has = has && !isnan(s->trials[i]->params[dims[k]]);
    if (has)
      s->below[i] ? nb++ : na++;
  }
  guint ib = 0, ia = 0;
  for (guint i = 0; i < s->n; i++) {
    gboolean has = TRUE;
    for (guint k = 0; k < d; k++)
      has = has && !isnan(s->trials[i]->params[dims[k]]);
    if (!has)
      continue;
    for (guint k = 0; k < d; k++) {
      if (s->below[i])
        ob[(gsize) k * nb + ib] = s->trials[i]->params[dims[k]];
      else
        oa[(gsize) k * na + ia] = s->trials[i]->params[dims[k]];
    }
    s->below[i] ? ib++ : ia++;
  }
  Parzen l, g;
  parzen_init(&l, params, d, ob, nb, tpe->opt.prior_weight, multivariate);
  parzen_init(&g, params, d, oa, na, tpe->opt.prior_weight, multivariate);
  g_autofree double *x = g_new(double, d);
  g_autofree double *best = g_new(double, d);
  g_autofree double *scratch = g_new(double, MAX(l.n_comp, g.n_comp));
  double best_score = -INFINITY;
  for (guint c = 0; c < MAX(tpe->opt.n_ei_candidates, 1u); c++) {
    parzen_sample(&l, rng, x);
    double score = parzen_log_pdf(&l, x, scratch) - parzen_log_pdf(&g, x, scratch);
    if (c == 0 || score > best_score) {
      best_score = score;
      memcpy(best, x, d * sizeof *x);
    }
  }
  for (guint k = 0; k < d; k++)
    values[dims[k]] = best[k];
  parzen_free(&l);
  parzen_free(&g);
}

double
fth_tpe_univariate_score(const FthSearchSpace *space, guint dim,
                         const FthTuneTrial *const *history, guint n_history, gboolean maximize,
                         double x)
{
  Split s;
  split_observations(&s, history, n_history, maximize, FALSE);
  const FthTuneParam *p = fth_search_space_get_param(space, dim);
  g_autofree double *ob = g_new(double, s.n + 1), *oa = g_new(double, s.n + 1);
  guint nb = 0, na = 0;
  for (guint i = 0; i < s.n; i++) {
    double v = s.trials[i]->params[dim];
    if (!isnan(v))
      s.below[i] ? (ob[nb++] = v) : (oa[na++] = v);
  }
  Parzen l, g;
  parzen_init(&l, &p, 1, ob, nb, 1.0, FALSE);
  parzen_init(&g, &p, 1, oa, na, 1.0, FALSE);
  g_autofree double *scratch = g_new(double, MAX(l.n_comp, g.n_comp));
  double score = parzen_log_pdf(&l, &x, scratch) - parzen_log_pdf(&g, &x, scratch);
  parzen_free(&l);
  parzen_free(&g);
  split_free(&s);
  return score;
}

static gboolean
tpe_sample(FthSampler *sampler, const FthSearchSpace *space,
           const FthTuneTrial *const *history, guint n_history, int number, gboolean maximize,
           double *values, GError **error)
{
  TpeSampler *tpe = (TpeSampler *) sampler;
  g_autoptr(GRand) rng = fth_tune_rng_new(sampler->seed, number, 1);
  Split s;
  split_observations(&s, history, n_history, maximize, tpe->opt.constant_liar);
  guint n = fth_search_space_get_n_params(space);
  if (s.n_finished < tpe->opt.n_startup_trials) {
    split_free(&s);
    fth_search_space_sample_uniform(space, rng, values);
    return TRUE;
  }
  g_autofree guint *dims = g_new(guint, n);
  if (tpe->opt.multivariate) {
    /* One joint estimator per group over its unconditional parameters. */
    for (guint grp = 0; grp < fth_search_space_get_n_groups(space); grp++) {
      guint d = 0;
      for (guint i = 0; i < n; i++) {
        const FthTuneParam *p = fth_search_space_get_param(space, i);
        if (p->group == (int) grp && p->parent < 0)
          dims[d++] = i;
      }
      if (d > 0)
        tpe_sample_dims(tpe, space, &s, dims, d, TRUE, rng, values);
    }
  }
  /* Univariate for the rest (everything without multivariate), parents before children. */
  for (guint i = 0; i < n; i++) {
    if (!fth_search_space_is_active(space, i, values)) {
      values[i] = NAN;
      continue;
    }
    if (!isnan(values[i]))
      continue;
    dims[0] = i;
    tpe_sample_dims(tpe, space, &s, dims, 1, FALSE, rng, values);
  }
  split_free(&s);
  return TRUE;
}

static const FthSamplerClass tpe_class = { "tpe", tpe_sample, plain_free };
static const FthSamplerClass tpe_mv_class = { "tpe-mv", tpe_sample, plain_free };

FthSampler *
fth_sampler_new_tpe(const FthTpeOptions *options, guint64 seed)
{
  TpeSampler *t = g_new0(TpeSampler, 1);
  if (options != NULL)
    t->opt = *options;
  else
    fth_tpe_options_init(&t->opt);
  t->parent.klass = t->opt.multivariate ? &tpe_mv_class : &tpe_class;
  t->parent.seed = seed;
  return &t->parent;
}

FthSampler *
fth_sampler_new_by_name(const char *name, guint64 seed, GError **error)
{
  if (g_strcmp0(name, "random") == 0)
    return fth_sampler_new_random(seed);
  if (g_strcmp0(name, "grid") == 0)
    return fth_sampler_new_grid(5);
  if (g_strcmp0(name, "tpe") == 0 || g_strcmp0(name, "tpe-mv") == 0) {
    FthTpeOptions o;
    fth_tpe_options_init(&o);
    o.multivariate = g_str_equal(name, "tpe-mv");
    o.constant_liar = TRUE;
    return fth_sampler_new_tpe(&o, seed);
  }
  if (g_strcmp0(name, "gp") == 0) {
    FthGpOptions o;
    fth_gp_options_init(&o);
    return fth_sampler_new_gp(&o, seed);
  }
  g_set_error(error, FTH_TUNE_ERROR, FTH_TUNE_ERROR_INVALID,
              "sampler \"%s\": unknown (random, grid, tpe, tpe-mv or gp)", name ? name : "");
  return NULL;
}
