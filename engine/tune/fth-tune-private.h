/* engine/tune private helpers shared by the space, the samplers, the pruners and the study. */
#pragma once

#include <fathom/tune.h>

G_BEGIN_DECLS

/* The generator of trial NUMBER's draws: GRand (Mersenne Twister) seeded by the whole
 * (seed, number, stream) triple, so every trial's draws depend on nothing else. */
GRand *fth_tune_rng_new(guint64 seed, int number, guint32 stream);
double fth_tune_rng_normal(GRand *rng);

/* Bounds of the space a parameter is sampled in: log(value) for log parameters, widened by half
 * a step for stepped ones (as Optuna's transforms do). */
void fth_param_sampling_bounds(const FthTuneParam *param, double *low, double *high);
/* Maps a point of the sampling space back to a legal value (exp, round to the step, clip). */
double fth_param_from_sampling(const FthTuneParam *param, double x);
/* The sampling-space image of a legal value. */
double fth_param_to_sampling(const FthTuneParam *param, double value);

/* Draws every parameter that is still NaN in VALUES and active, uniformly in its sampling
 * space, in declaration order (parents before children); inactive ones stay NaN. */
void fth_search_space_sample_uniform(const FthSearchSpace *space, GRand *rng, double *values);
/* Sets every parameter that is inactive under the other values to NaN (in order). */
void fth_search_space_deactivate(const FthSearchSpace *space, double *values);

/* Standard normal helpers. */
double fth_tune_norm_cdf(double z);
double fth_tune_log_norm_pdf(double z);

/* A trial's sort key for "best first" in the study's direction: the value negated when
 * maximizing. */
static inline double
fth_tune_signed(double value, gboolean maximize)
{
  return maximize ? -value : value;
}

/* Samplers: the table behind FthSampler. */
typedef struct {
  const char *name;
  gboolean (*sample)(FthSampler *sampler, const FthSearchSpace *space,
                     const FthTuneTrial *const *history, guint n_history, int number,
                     gboolean maximize, double *values, GError **error);
  void (*free)(FthSampler *sampler);
} FthSamplerClass;

struct _FthSampler {
  const FthSamplerClass *klass;
  guint64 seed;
};

/* TPE's acquisition log l(x) - log g(x) for parameter DIM at X (value space) after HISTORY,
 * with the default options: what the tests compare with Optuna's _ParzenEstimator. */
double fth_tpe_univariate_score(const FthSearchSpace *space, guint dim,
                                const FthTuneTrial *const *history, guint n_history,
                                gboolean maximize, double x);

/* The GP sampler lives in fth-gp.c. */
gboolean fth_gp_sample(FthSampler *sampler, const FthSearchSpace *space,
                       const FthTuneTrial *const *history, guint n_history, int number,
                       gboolean maximize, double *values, GError **error);
FthSampler *fth_gp_sampler_alloc(const FthGpOptions *options, guint64 seed);

G_END_DECLS
