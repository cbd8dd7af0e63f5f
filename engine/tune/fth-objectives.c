/* The benchmark objectives of shared/peers/optuna (bench_functions.py, lc_objective.py), in
 * the reference's floating-point evaluation order; this file is built with -ffp-contract=off
 * so that every value matches the peer's golden values bit for bit. Squares are x * x, as in
 * the reference (pow(x, 2) is not always correctly rounded). */
#include "fth-tune-private.h"

#include <math.h>
#include <string.h>

double
fth_tune_obj_branin(const double *x)
{
  double x0 = x[0], x1 = x[1];
  double a = 1.0;
  double b = 5.1 / (4.0 * (M_PI * M_PI));
  double c = 5.0 / M_PI;
  double r = 6.0;
  double s = 10.0;
  double t = 1.0 / (8.0 * M_PI);
  double q = x1 - b * x0 * x0 + c * x0 - r;
  return a * (q * q) + s * (1.0 - t) * cos(x0) + s;
}

static const double H6_ALPHA[4] = { 1.0, 1.2, 3.0, 3.2 };
static const double H6_A[4][6] = {
  { 10.0, 3.0, 17.0, 3.5, 1.7, 8.0 },
  { 0.05, 10.0, 17.0, 0.1, 8.0, 14.0 },
  { 3.0, 3.5, 1.7, 10.0, 17.0, 8.0 },
  { 17.0, 8.0, 0.05, 10.0, 0.1, 14.0 },
};
static const double H6_P[4][6] = {
  { 0.1312, 0.1696, 0.5569, 0.0124, 0.8283, 0.5886 },
  { 0.2329, 0.4135, 0.8307, 0.3736, 0.1004, 0.9991 },
  { 0.2348, 0.1451, 0.3522, 0.2883, 0.3047, 0.6650 },
  { 0.4047, 0.8828, 0.8732, 0.5743, 0.1091, 0.0381 },
};

double
fth_tune_obj_hartmann6(const double *x)
{
  double total = 0.0;
  for (int i = 0; i < 4; i++) {
    double inner = 0.0;
    for (int j = 0; j < 6; j++) {
      double d = x[j] - H6_P[i][j];
      inner += H6_A[i][j] * d * d;
    }
    total += H6_ALPHA[i] * exp(-inner);
  }
  return -total;
}

double
fth_tune_obj_rosenbrock(const double *x, int d)
{
  double total = 0.0;
  for (int i = 0; i < d - 1; i++) {
    double p = x[i + 1] - x[i] * x[i];
    double q = 1.0 - x[i];
    total += 100.0 * (p * p) + q * q;
  }
  return total;
}

double
fth_tune_obj_ackley(const double *x, int d)
{
  double s1 = 0.0, s2 = 0.0;
  for (int i = 0; i < d; i++)
    s1 += x[i] * x[i];
  for (int i = 0; i < d; i++)
    s2 += cos(2.0 * M_PI * x[i]);
  s1 /= d;
  s2 /= d;
  return -20.0 * exp(-0.2 * sqrt(s1)) - exp(s2) + 20.0 + M_E;
}

double
fth_tune_lc_curve_noise_free(double lr, double wd, int t)
{
  double u = log10(lr);
  double v = log10(wd);
  double du = u + 2.5;
  double dv = (v + 4.0) + 0.5 * du;
  double finf = (0.10 + (0.05 * du) * du) + (0.02 * dv) * dv;
  double b = 0.5 * pow(10.0, 0.5 * (u + 2.0));
  return finf + 1.0 * exp(-(b * (double) t));
}

static guint64
mix(guint64 x)
{
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

static guint64
bits(double d)
{
  guint64 u;
  memcpy(&u, &d, sizeof u);
  return u;
}

double
fth_tune_lc_loss(double lr, double wd, int t, guint64 seed)
{
  guint64 h = mix(seed);
  h = mix(h ^ bits(lr));
  h = mix(h ^ bits(wd));
  h = mix(h ^ (guint64) t);
  double u[4];
  for (int k = 0; k < 4; k++) {
    h = mix(h);
    u[k] = (double) (h >> 11) * (1.0 / 9007199254740992.0);
  }
  double eps = ((((u[0] + u[1]) + u[2]) + u[3]) - 2.0) * sqrt(3.0);
  return fth_tune_lc_curve_noise_free(lr, wd, t) + 0.01 * eps;
}

/* ---- the same objectives as study objectives --------------------------------------------- */

static gboolean
run_function(FthTuneTrialContext *ctx, int which, double *value)
{
  const double *v = fth_tune_trial_get_values(ctx);
  switch (which) {
  case 0:
    *value = fth_tune_obj_branin(v);
    break;
  case 1:
    *value = fth_tune_obj_hartmann6(v);
    break;
  case 2:
    *value = fth_tune_obj_rosenbrock(v, 4);
    break;
  default:
    *value = fth_tune_obj_ackley(v, 5);
    break;
  }
  return TRUE;
}

static gboolean
obj_branin(FthTuneTrialContext *ctx, gpointer data, double *value, GError **error)
{
  return run_function(ctx, 0, value);
}

static gboolean
obj_hartmann6(FthTuneTrialContext *ctx, gpointer data, double *value, GError **error)
{
  return run_function(ctx, 1, value);
}

static gboolean
obj_rosenbrock4(FthTuneTrialContext *ctx, gpointer data, double *value, GError **error)
{
  return run_function(ctx, 2, value);
}

static gboolean
obj_ackley5(FthTuneTrialContext *ctx, gpointer data, double *value, GError **error)
{
  return run_function(ctx, 3, value);
}

static gboolean
obj_lc2(FthTuneTrialContext *ctx, gpointer data, double *value, GError **error)
{
  guint64 seed = data != NULL ? *(const guint64 *) data : 0;
  double lr = fth_tune_trial_get_value(ctx, "lr"), wd = fth_tune_trial_get_value(ctx, "wd");
  double y = NAN;
  for (int t = 1; t <= FTH_TUNE_LC_T_MAX; t++) {
    y = fth_tune_lc_loss(lr, wd, t, seed);
    if (fth_tune_trial_report(ctx, t, y))
      break;
  }
  *value = y;
  return TRUE;
}

static const FthTuneBuiltin builtins[] = {
  { "branin", obj_branin, 0.397887, 50,
    "{\"params\": [{\"name\": \"x0\", \"type\": \"float\", \"low\": -5, \"high\": 10},"
    " {\"name\": \"x1\", \"type\": \"float\", \"low\": 0, \"high\": 15}]}" },
  { "hartmann6", obj_hartmann6, -3.32237, 100,
    "{\"params\": [{\"name\": \"x0\", \"type\": \"float\", \"low\": 0, \"high\": 1},"
    " {\"name\": \"x1\", \"type\": \"float\", \"low\": 0, \"high\": 1},"
    " {\"name\": \"x2\", \"type\": \"float\", \"low\": 0, \"high\": 1},"
    " {\"name\": \"x3\", \"type\": \"float\", \"low\": 0, \"high\": 1},"
    " {\"name\": \"x4\", \"type\": \"float\", \"low\": 0, \"high\": 1},"
    " {\"name\": \"x5\", \"type\": \"float\", \"low\": 0, \"high\": 1}]}" },
  { "rosenbrock4", obj_rosenbrock4, 0.0, 50,
    "{\"params\": [{\"name\": \"x0\", \"type\": \"float\", \"low\": -5, \"high\": 10},"
    " {\"name\": \"x1\", \"type\": \"float\", \"low\": -5, \"high\": 10},"
    " {\"name\": \"x2\", \"type\": \"float\", \"low\": -5, \"high\": 10},"
    " {\"name\": \"x3\", \"type\": \"float\", \"low\": -5, \"high\": 10}]}" },
  { "ackley5", obj_ackley5, 0.0, 50,
    "{\"params\": [{\"name\": \"x0\", \"type\": \"float\", \"low\": -32.768, \"high\": 32.768},"
    " {\"name\": \"x1\", \"type\": \"float\", \"low\": -32.768, \"high\": 32.768},"
    " {\"name\": \"x2\", \"type\": \"float\", \"low\": -32.768, \"high\": 32.768},"
    " {\"name\": \"x3\", \"type\": \"float\", \"low\": -32.768, \"high\": 32.768},"
    " {\"name\": \"x4\", \"type\": \"float\", \"low\": -32.768, \"high\": 32.768}]}" },
  { "lc2", obj_lc2, FTH_TUNE_LC_M27_STAR, 100,
    "{\"params\": [{\"name\": \"lr\", \"type\": \"float\", \"low\": 1e-4, \"high\": 1, \"log\": true},"
    " {\"name\": \"wd\", \"type\": \"float\", \"low\": 1e-6, \"high\": 1e-1, \"log\": true}]}" },
};

const FthTuneBuiltin *
fth_tune_builtin_find(const char *name)
{
  for (gsize i = 0; i < G_N_ELEMENTS(builtins); i++)
    if (g_strcmp0(builtins[i].name, name) == 0)
      return &builtins[i];
  return NULL;
}
