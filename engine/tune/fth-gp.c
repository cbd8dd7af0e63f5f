/* The Gaussian-process sampler.
 *
 * One GP per group of the search space (the groups are independent sub-spaces). Inputs: each
 * numerical parameter mapped to [0, 1] in its sampling space (log for log parameters), each
 * categorical one-hot; an inactive conditional parameter encodes as zeros. Outputs: the
 * study-signed values (pruned trials at their last reported value), standardised.
 * Kernel: Matérn 5/2 with one length scale per input, a signal variance and a noise variance,
 * fitted by maximising the log marginal likelihood plus weak log-normal priors (iRprop- on the
 * analytic gradient, from a fixed start so the fit depends on the data only). Cholesky and
 * the inverse come from LAPACK (OpenBLAS). Acquisition: log expected improvement, computed
 * without underflow far in the tail, maximised over random candidates, perturbations of the
 * best observed points, then a (1+1) local search from the best candidate.
 * Constant liar: running trials enter the GP at the worst observed value. */
#include "fth-tune-private.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

/* LAPACK (Fortran ABI, with the hidden length of the character argument). */
extern void dpotrf_(const char *uplo, const int *n, double *a, const int *lda, int *info,
                    size_t uplo_len);
extern void dpotri_(const char *uplo, const int *n, double *a, const int *lda, int *info,
                    size_t uplo_len);

typedef struct {
  FthSampler parent;
  FthGpOptions opt;
} GpSampler;

void
fth_gp_options_init(FthGpOptions *o)
{
  o->n_startup_trials = 10;
  o->n_candidates = 2000;
  o->constant_liar = TRUE;
}

/* Log-normal priors on the hyperparameters (in log space: mean, sd). Inputs live in [0, 1]
 * and outputs are standardised, which is what makes fixed priors sensible. */
#define PRIOR_LOG_LS_MEAN (-0.7)
#define PRIOR_LOG_LS_SD 1.0
#define PRIOR_LOG_SIG_MEAN 0.0
#define PRIOR_LOG_SIG_SD 1.0
#define PRIOR_LOG_NOISE_MEAN (-6.9) /* 1e-3 */
#define PRIOR_LOG_NOISE_SD 2.0
#define LOG_LS_MIN (-4.6)   /* 0.01 */
#define LOG_LS_MAX 3.0      /* 20 */
#define LOG_NOISE_MIN (-13.8) /* 1e-6 */
#define LOG_NOISE_MAX 0.0
#define LOG_SIG_MIN (-4.6)
#define LOG_SIG_MAX 4.6

typedef struct {
  int n, d;
  const double *x; /* n x d */
  const double *y; /* n */
  double *theta;   /* d length scales, signal, noise: all log */
  double *K;       /* n x n: the Cholesky factor after gp_factor */
  double *alpha;   /* K^-1 y */
} Gp;

static double
matern52(double r2, double *dk_dr2_factor)
{
  double r = sqrt(r2), s5r = sqrt(5.0) * r, e = exp(-s5r);
  /* d k / d log l_j = factor * delta_j^2 / l_j^2 with factor = (5/3)(1 + sqrt5 r) e^{-sqrt5 r}
   */
  if (dk_dr2_factor != NULL)
    *dk_dr2_factor = (5.0 / 3.0) * (1.0 + s5r) * e;
  return (1.0 + s5r + (5.0 / 3.0) * r2) * e;
}

static double
scaled_dist2(const double *a, const double *b, const double *inv_ls2, int d)
{
  double s = 0;
  for (int j = 0; j < d; j++) {
    double t = a[j] - b[j];
    s += t * t * inv_ls2[j];
  }
  return s;
}

/* Builds K, factors it and solves alpha. Returns the log marginal likelihood (without the
 * priors) or -inf when K is not positive definite. */
static double
gp_factor(Gp *gp)
{
  int n = gp->n, d = gp->d, info = 0;
  double inv_ls2[64];
  for (int j = 0; j < d; j++)
    inv_ls2[j] = exp(-2.0 * gp->theta[j]);
  double sig = exp(gp->theta[d]), noise = exp(gp->theta[d + 1]);
  for (int i = 0; i < n; i++)
    for (int k = 0; k <= i; k++) {
      double v = sig * matern52(scaled_dist2(gp->x + i * d, gp->x + k * d, inv_ls2, d), NULL);
      gp->K[i + k * n] = gp->K[k + i * n] = v + (i == k ? noise : 0.0);
    }
  dpotrf_("L", &n, gp->K, &n, &info, 1);
  if (info != 0)
    return -INFINITY;
  memcpy(gp->alpha, gp->y, n * sizeof(double));
  cblas_dtrsv(CblasColMajor, CblasLower, CblasNoTrans, CblasNonUnit, n, gp->K, n, gp->alpha, 1);
  double quad = 0, logdet = 0;
  for (int i = 0; i < n; i++) {
    quad += gp->alpha[i] * gp->alpha[i];
    logdet += log(gp->K[i + i * n]);
  }
  cblas_dtrsv(CblasColMajor, CblasLower, CblasTrans, CblasNonUnit, n, gp->K, n, gp->alpha, 1);
  return -0.5 * quad - logdet - 0.5 * n * log(2 * G_PI);
}

static double
log_prior(const double *theta, int d, double *grad)
{
  double lp = 0;
  for (int j = 0; j < d + 2; j++) {
    double m = j < d ? PRIOR_LOG_LS_MEAN : j == d ? PRIOR_LOG_SIG_MEAN : PRIOR_LOG_NOISE_MEAN;
    double s = j < d ? PRIOR_LOG_LS_SD : j == d ? PRIOR_LOG_SIG_SD : PRIOR_LOG_NOISE_SD;
    double z = (theta[j] - m) / s;
    lp -= 0.5 * z * z;
    if (grad != NULL)
      grad[j] = -z / s;
  }
  return lp;
}

/* Objective (log posterior) and its gradient in GRAD (d + 2). WORK: n x n. */
static double
gp_objective(Gp *gp, double *grad, double *work)
{
  int n = gp->n, d = gp->d, info = 0;
  double ll = gp_factor(gp);
  if (!isfinite(ll))
    return -INFINITY;
  double lp = log_prior(gp->theta, d, grad);
  /* W = alpha alpha^T - K^-1 (lower triangle is enough: everything below is symmetric). */
  memcpy(work, gp->K, (size_t) n * n * sizeof(double));
  dpotri_("L", &n, work, &n, &info, 1);
  if (info != 0)
    return -INFINITY;
  double inv_ls2[64];
  for (int j = 0; j < d; j++)
    inv_ls2[j] = exp(-2.0 * gp->theta[j]);
  double sig = exp(gp->theta[d]), noise = exp(gp->theta[d + 1]);
  double g_sig = 0, g_noise = 0, g_ls[64] = { 0 };
  for (int i = 0; i < n; i++)
    for (int k = 0; k <= i; k++) {
      double w = gp->alpha[i] * gp->alpha[k] - work[i + k * n];
      double mult = i == k ? 0.5 : 1.0; /* off-diagonal terms appear twice */
      const double *xi = gp->x + i * d, *xk = gp->x + k * d;
      double factor;
      double kf = sig * matern52(scaled_dist2(xi, xk, inv_ls2, d), &factor);
      g_sig += mult * w * kf;
      if (i == k) {
        g_noise += 0.5 * w * noise;
        continue;
      }
      for (int j = 0; j < d; j++) {
        double t = xi[j] - xk[j];
        g_ls[j] += w * sig * factor * t * t * inv_ls2[j];
      }
    }
  for (int j = 0; j < d; j++)
    grad[j] += g_ls[j]; /* 0.5 * 2: each pair appears twice */
  grad[d] += g_sig;
  grad[d + 1] += g_noise;
  return ll + lp;
}

static void
clamp_theta(double *theta, int d)
{
  for (int j = 0; j < d; j++)
    theta[j] = CLAMP(theta[j], LOG_LS_MIN, LOG_LS_MAX);
  theta[d] = CLAMP(theta[d], LOG_SIG_MIN, LOG_SIG_MAX);
  theta[d + 1] = CLAMP(theta[d + 1], LOG_NOISE_MIN, LOG_NOISE_MAX);
}

/* iRprop-: per-coordinate step sizes driven by the signs of the gradient. */
static gboolean
gp_fit(Gp *gp, double *work)
{
  int m = gp->d + 2;
  double grad[66], prev[66] = { 0 }, step[66], best_theta[66];
  for (int j = 0; j < gp->d; j++)
    gp->theta[j] = PRIOR_LOG_LS_MEAN;
  gp->theta[gp->d] = PRIOR_LOG_SIG_MEAN;
  gp->theta[gp->d + 1] = log(1e-2);
  for (int j = 0; j < m; j++)
    step[j] = 0.2;
  double best = -INFINITY;
  for (int it = 0; it < 60; it++) {
    double f = gp_objective(gp, grad, work);
    if (!isfinite(f)) {
      if (!isfinite(best)) { /* push the noise up until K factors */
        gp->theta[gp->d + 1] += 1.0;
        if (gp->theta[gp->d + 1] > LOG_NOISE_MAX)
          return FALSE;
        continue;
      }
      memcpy(gp->theta, best_theta, m * sizeof(double));
      break;
    }
    if (f > best) {
      best = f;
      memcpy(best_theta, gp->theta, m * sizeof(double));
    }
    for (int j = 0; j < m; j++) {
      double s = grad[j] * prev[j];
      if (s > 0)
        step[j] = MIN(step[j] * 1.2, 1.0);
      else if (s < 0) {
        step[j] = MAX(step[j] * 0.5, 1e-4);
        grad[j] = 0;
      }
      gp->theta[j] += grad[j] > 0 ? step[j] : grad[j] < 0 ? -step[j] : 0;
      prev[j] = grad[j];
    }
    clamp_theta(gp->theta, gp->d);
  }
  memcpy(gp->theta, best_theta, m * sizeof(double));
  return isfinite(gp_factor(gp));
}

static void
gp_predict(const Gp *gp, const double *x, double *mean, double *sd, double *kstar)
{
  int n = gp->n, d = gp->d;
  double inv_ls2[64];
  for (int j = 0; j < d; j++)
    inv_ls2[j] = exp(-2.0 * gp->theta[j]);
  double sig = exp(gp->theta[d]);
  double mu = 0;
  for (int i = 0; i < n; i++) {
    kstar[i] = sig * matern52(scaled_dist2(x, gp->x + i * d, inv_ls2, d), NULL);
    mu += kstar[i] * gp->alpha[i];
  }
  cblas_dtrsv(CblasColMajor, CblasLower, CblasNoTrans, CblasNonUnit, n, gp->K, n, kstar, 1);
  double v = sig;
  for (int i = 0; i < n; i++)
    v -= kstar[i] * kstar[i];
  *mean = mu;
  *sd = sqrt(MAX(v, 1e-12));
}

/* log EI for minimisation, stable for very negative z. */
static double
log_ei(double mean, double sd, double best)
{
  double z = (best - mean) / sd;
  double log_h;
  if (z > -6.0) {
    double h = z * fth_tune_norm_cdf(z) + exp(fth_tune_log_norm_pdf(z));
    log_h = log(MAX(h, 1e-300));
  } else {
    /* h(z) = phi(z) (1/z^2 - 3/z^4 + 15/z^6 - ...) for z -> -inf */
    double iz2 = 1.0 / (z * z);
    log_h = fth_tune_log_norm_pdf(z) + log(iz2 * (1.0 - 3.0 * iz2 + 15.0 * iz2 * iz2));
  }
  return log(sd) + log_h;
}

/* ---- encoding of one group's parameters ------------------------------------------------ */

typedef struct {
  guint n_params;
  guint *params; /* indices in the space */
  int d;         /* encoded width */
} Encoding;

static void
encode(const FthSearchSpace *space, const Encoding *enc, const double *values, double *x)
{
  int o = 0;
  for (guint k = 0; k < enc->n_params; k++) {
    const FthTuneParam *p = fth_search_space_get_param(space, enc->params[k]);
    double v = values[enc->params[k]];
    if (p->kind == FTH_PARAM_CATEGORICAL) {
      for (guint c = 0; c < p->n_choices; c++)
        x[o++] = (!isnan(v) && (guint) v == c) ? 1.0 : 0.0;
      continue;
    }
    double lo, hi;
    fth_param_sampling_bounds(p, &lo, &hi);
    x[o++] = isnan(v) ? 0.0 : (fth_param_to_sampling(p, v) - lo) / (hi - lo);
  }
}

/* Draws the group's parameters uniformly (others in VALUES untouched). */
static void
sample_group(const FthSearchSpace *space, const Encoding *enc, GRand *rng, double *values)
{
  for (guint k = 0; k < enc->n_params; k++)
    values[enc->params[k]] = NAN;
  for (guint k = 0; k < enc->n_params; k++) {
    guint i = enc->params[k];
    const FthTuneParam *p = fth_search_space_get_param(space, i);
    if (!fth_search_space_is_active(space, i, values))
      continue;
    if (p->kind == FTH_PARAM_CATEGORICAL) {
      values[i] = g_rand_int_range(rng, 0, (gint32) p->n_choices);
    } else {
      double lo, hi;
      fth_param_sampling_bounds(p, &lo, &hi);
      values[i] = fth_param_from_sampling(p, lo + (hi - lo) * g_rand_double(rng));
    }
  }
}

/* Moves the group's numerical parameters by a Gaussian step of SCALE (in [0,1] units),
 * redraws a categorical with probability 1/n_params. */
static void
perturb_group(const FthSearchSpace *space, const Encoding *enc, GRand *rng, double scale,
              double *values)
{
  for (guint k = 0; k < enc->n_params; k++) {
    guint i = enc->params[k];
    const FthTuneParam *p = fth_search_space_get_param(space, i);
    if (!fth_search_space_is_active(space, i, values)) {
      values[i] = NAN;
      continue;
    }
    if (p->kind == FTH_PARAM_CATEGORICAL) {
      if (isnan(values[i]) || g_rand_double(rng) < 1.0 / enc->n_params)
        values[i] = g_rand_int_range(rng, 0, (gint32) p->n_choices);
      continue;
    }
    double lo, hi;
    fth_param_sampling_bounds(p, &lo, &hi);
    double u = isnan(values[i]) ? g_rand_double(rng)
                                : (fth_param_to_sampling(p, values[i]) - lo) / (hi - lo);
    u = CLAMP(u + scale * fth_tune_rng_normal(rng), 0.0, 1.0);
    values[i] = fth_param_from_sampling(p, lo + (hi - lo) * u);
  }
}

typedef struct {
  const FthTuneTrial *trial;
  double y;
} Obs;

static int
cmp_obs(const void *a, const void *b)
{
  double x = ((const Obs *) a)->y, y = ((const Obs *) b)->y;
  return x < y ? -1 : x > y;
}

static gboolean
gp_sample_group(const GpSampler *gs, const FthSearchSpace *space, const Encoding *enc,
                const Obs *obs, guint n_obs, const FthTuneTrial *const *running, guint n_running,
                GRand *rng, double *values, GError **error)
{
  int n = (int) (n_obs + n_running), d = enc->d;
  g_autofree double *x = g_new(double, (gsize) n * d);
  g_autofree double *y = g_new(double, n);
  double mean = 0, var = 0, worst = -INFINITY;
  for (guint i = 0; i < n_obs; i++) {
    mean += obs[i].y;
    worst = MAX(worst, obs[i].y);
  }
  mean /= n_obs;
  for (guint i = 0; i < n_obs; i++)
    var += (obs[i].y - mean) * (obs[i].y - mean);
  double sd = sqrt(var / n_obs);
  if (!(sd > 1e-12))
    sd = 1.0;
  for (guint i = 0; i < n_obs; i++) {
    encode(space, enc, obs[i].trial->params, x + (gsize) i * d);
    y[i] = (obs[i].y - mean) / sd;
  }
  for (guint i = 0; i < n_running; i++) {
    encode(space, enc, running[i]->params, x + (gsize) (n_obs + i) * d);
    y[n_obs + i] = (worst - mean) / sd;
  }
  double best = (obs[0].y - mean) / sd; /* OBS is sorted, best first */

  g_autofree double *theta = g_new(double, d + 2);
  g_autofree double *K = g_new(double, (gsize) n * n);
  g_autofree double *work = g_new(double, (gsize) n * n);
  g_autofree double *alpha = g_new(double, n);
  /* Fit the hyperparameters on the real observations, then condition on the lies too. */
  Gp gp = { (int) n_obs, d, x, y, theta, K, alpha };
  if (!gp_fit(&gp, work)) {
    g_set_error(error, FTH_TUNE_ERROR, FTH_TUNE_ERROR_FAILED,
                "gp sampler: the kernel matrix of %u observations is not positive definite",
                n_obs);
    return FALSE;
  }
  if (n_running > 0) {
    gp.n = n;
    if (!isfinite(gp_factor(&gp))) {
      g_set_error(error, FTH_TUNE_ERROR, FTH_TUNE_ERROR_FAILED,
                  "gp sampler: the kernel matrix with %u running trials is singular", n_running);
      return FALSE;
    }
  }

  g_autofree double *cand = g_new(double, fth_search_space_get_n_params(space));
  g_autofree double *best_values = g_new(double, fth_search_space_get_n_params(space));
  g_autofree double *xe = g_new(double, d);
  g_autofree double *kstar = g_new(double, n);
  gsize nbytes = fth_search_space_get_n_params(space) * sizeof(double);
  double best_acq = -INFINITY;
  guint n_top = MIN(n_obs, 5u);
  guint n_cand = MAX(gs->opt.n_candidates, 1u);
  guint n_local = n_cand / 10;
  for (guint c = 0; c < n_cand + n_top * n_local; c++) {
    memcpy(cand, values, nbytes);
    if (c < n_cand) {
      sample_group(space, enc, rng, cand);
    } else {
      guint t = (c - n_cand) / n_local;
      for (guint k = 0; k < enc->n_params; k++)
        cand[enc->params[k]] = obs[t].trial->params[enc->params[k]];
      perturb_group(space, enc, rng, 0.05, cand);
    }
    encode(space, enc, cand, xe);
    double m, s;
    gp_predict(&gp, xe, &m, &s, kstar);
    double a = log_ei(m, s, best);
    if (a > best_acq) {
      best_acq = a;
      memcpy(best_values, cand, nbytes);
    }
  }
  /* (1+1) local search with a shrinking step. */
  double scale = 0.02;
  for (guint it = 0; it < 100; it++) {
    memcpy(cand, best_values, nbytes);
    perturb_group(space, enc, rng, scale, cand);
    encode(space, enc, cand, xe);
    double m, s;
    gp_predict(&gp, xe, &m, &s, kstar);
    double a = log_ei(m, s, best);
    if (a > best_acq) {
      best_acq = a;
      memcpy(best_values, cand, nbytes);
    } else if (it % 20 == 19) {
      scale *= 0.5;
    }
  }
  for (guint k = 0; k < enc->n_params; k++)
    values[enc->params[k]] = best_values[enc->params[k]];
  return TRUE;
}

gboolean
fth_gp_sample(FthSampler *sampler, const FthSearchSpace *space,
              const FthTuneTrial *const *history, guint n_history, int number, gboolean maximize,
              double *values, GError **error)
{
  GpSampler *gs = (GpSampler *) sampler;
  g_autoptr(GRand) rng = fth_tune_rng_new(sampler->seed, number, 2);
  g_autofree Obs *obs = g_new(Obs, n_history + 1);
  g_autofree const FthTuneTrial **running = g_new(const FthTuneTrial *, n_history + 1);
  guint n_obs = 0, n_running = 0;
  for (guint i = 0; i < n_history; i++) {
    const FthTuneTrial *t = history[i];
    double v = NAN;
    if (t->state == FTH_TUNE_TRIAL_COMPLETE)
      v = t->value;
    else if (t->state == FTH_TUNE_TRIAL_PRUNED && t->n_steps > 0)
      v = t->step_values[t->n_steps - 1];
    else if (t->state == FTH_TUNE_TRIAL_RUNNING && gs->opt.constant_liar)
      running[n_running++] = t;
    if (isfinite(v)) {
      obs[n_obs].trial = t;
      obs[n_obs++].y = fth_tune_signed(v, maximize);
    }
  }
  if (n_obs < MAX(gs->opt.n_startup_trials, 2u)) {
    fth_search_space_sample_uniform(space, rng, values);
    return TRUE;
  }
  qsort(obs, n_obs, sizeof *obs, cmp_obs);
  guint n = fth_search_space_get_n_params(space);
  for (guint g = 0; g < fth_search_space_get_n_groups(space); g++) {
    g_autofree guint *idx = g_new(guint, n);
    Encoding enc = { 0, idx, 0 };
    for (guint i = 0; i < n; i++) {
      const FthTuneParam *p = fth_search_space_get_param(space, i);
      if (p->group != (int) g)
        continue;
      idx[enc.n_params++] = i;
      enc.d += p->kind == FTH_PARAM_CATEGORICAL ? (int) p->n_choices : 1;
    }
    if (enc.n_params == 0)
      continue;
    if (enc.d > 62) {
      g_set_error(error, FTH_TUNE_ERROR, FTH_TUNE_ERROR_INVALID,
                  "gp sampler: group %u encodes to %d inputs, more than 62", g, enc.d);
      return FALSE;
    }
    if (!gp_sample_group(gs, space, &enc, obs, n_obs, running, n_running, rng, values, error))
      return FALSE;
  }
  fth_search_space_deactivate(space, values);
  return TRUE;
}

static void
gp_free(FthSampler *sampler)
{
  g_free(sampler);
}

static const FthSamplerClass gp_class = { "gp", fth_gp_sample, gp_free };

FthSampler *
fth_sampler_new_gp(const FthGpOptions *options, guint64 seed)
{
  GpSampler *g = g_new0(GpSampler, 1);
  if (options != NULL)
    g->opt = *options;
  else
    fth_gp_options_init(&g->opt);
  g->parent.klass = &gp_class;
  g->parent.seed = seed;
  return &g->parent;
}
