/* fANOVA parameter importances on synthetic trials whose variance split is known. */
#include <fathom/tune.h>
#include <math.h>
#include <string.h>

typedef struct {
  FthSearchSpace *space;
  GPtrArray *trials; /* FthTuneTrial, owned */
} Synthetic;

static void
trial_free(gpointer data)
{
  FthTuneTrial *t = data;
  g_free(t->params);
  g_free(t);
}

typedef double (*Func)(const double *p, GRand *rng);

/* N trials drawn uniformly from SPACE (log parameters uniform in log, categoricals by index). */
static Synthetic
synthetic(const char *space_json, guint n, Func f, guint32 seed)
{
  g_autoptr(GError) error = NULL;
  Synthetic s = { fth_search_space_new_from_json(space_json, -1, "<test>", &error),
                  g_ptr_array_new_with_free_func(trial_free) };
  g_assert_no_error(error);
  guint d = fth_search_space_get_n_params(s.space);
  g_autoptr(GRand) rng = g_rand_new_with_seed(seed);
  for (guint i = 0; i < n; i++) {
    FthTuneTrial *t = g_new0(FthTuneTrial, 1);
    t->number = (int) i;
    t->state = FTH_TUNE_TRIAL_COMPLETE;
    t->params = g_new(double, d);
    for (guint k = 0; k < d; k++) {
      const FthTuneParam *p = fth_search_space_get_param(s.space, k);
      if (p->kind == FTH_PARAM_CATEGORICAL)
        t->params[k] = g_rand_int_range(rng, 0, (gint32) p->n_choices);
      else if (p->log)
        t->params[k] = exp(g_rand_double_range(rng, log(p->low), log(p->high)));
      else
        t->params[k] = g_rand_double_range(rng, p->low, p->high);
    }
    /* Conditional parameters: inactive (NaN) when the parent says so. */
    for (guint k = 0; k < d; k++)
      if (!fth_search_space_is_active(s.space, k, t->params))
        t->params[k] = NAN;
    t->value = f(t->params, rng);
    g_ptr_array_add(s.trials, t);
  }
  return s;
}

static void
synthetic_clear(Synthetic *s)
{
  fth_search_space_unref(s->space);
  g_ptr_array_unref(s->trials);
}

static void
importances(Synthetic *s, guint64 seed, double *out)
{
  FthImportanceOptions o;
  fth_importance_options_init(&o);
  o.seed = seed;
  g_autoptr(GError) error = NULL;
  g_assert_true(fth_tune_importances(s->space, (const FthTuneTrial *const *) s->trials->pdata,
                                     s->trials->len, &o, out, &error));
  g_assert_no_error(error);
}

static const char XY[] = "{\"params\": [{\"name\": \"x\", \"type\": \"float\", \"low\": -2, "
                         "\"high\": 3}, {\"name\": \"y\", \"type\": \"float\", \"low\": 0, "
                         "\"high\": 1}]}";

/* y does not enter the objective: its "effect" is the forest fitting the noise. */
static double
only_x(const double *p, GRand *rng)
{
  return sin(2 * p[0]) + 0.05 * g_rand_double_range(rng, -1, 1);
}

static void
test_only_x(void)
{
  Synthetic s = synthetic(XY, 200, only_x, g_test_rand_int());
  double imp[2];
  importances(&s, g_test_rand_int(), imp);
  g_test_message("only x: x %.4f, y %.4f", imp[0], imp[1]);
  g_assert_cmpfloat(imp[0], >, 0.9);
  g_assert_cmpfloat(fabs(imp[0] + imp[1] - 1), <, 1e-9);
  synthetic_clear(&s);
}

static const char XY_AB[] =
  "{\"params\": [{\"name\": \"x\", \"type\": \"float\", \"low\": 0, \"high\": 1},"
  "{\"name\": \"y\", \"type\": \"float\", \"low\": 0, \"high\": 1},"
  "{\"name\": \"a\", \"type\": \"float\", \"low\": 0, \"high\": 1},"
  "{\"name\": \"b\", \"type\": \"float\", \"low\": 0, \"high\": 1}]}";

/* x, y and a in the variance ratio 9 : 4 : 1, b not at all. */
static double
three_x_plus_y_plus_a(const double *p, GRand *rng)
{
  (void) rng;
  return 3 * p[0] + 2 * p[1] + p[2];
}

static const char AB[] = "{\"params\": [{\"name\": \"a\", \"type\": \"float\", \"low\": 0, "
                         "\"high\": 1}, {\"name\": \"b\", \"type\": \"float\", \"low\": 0, "
                         "\"high\": 1}]}";

/* Var(3a) = 9/12 and Var(b) = 1/12 on uniform a, b: 0.9 and 0.1 of the total. */
static double
three_a_plus_b(const double *p, GRand *rng)
{
  (void) rng;
  return 3 * p[0] + p[1];
}

static void
test_known_split(void)
{
  Synthetic s = synthetic(AB, 300, three_a_plus_b, g_test_rand_int());
  double imp[2];
  importances(&s, g_test_rand_int(), imp);
  g_test_message("3a + b: a %.4f, b %.4f", imp[0], imp[1]);
  g_assert_cmpfloat_with_epsilon(imp[0], 0.9, 0.04);
  g_assert_cmpfloat_with_epsilon(imp[1], 0.1, 0.04);
  synthetic_clear(&s);
}

/* lr is log-uniform: the objective is linear in log(lr), so in log space the split is again
 * known (Var(log lr) over [log 1e-4, log 1] against the categorical's three levels). */
static const char MIXED[] =
  "{\"params\": [{\"name\": \"lr\", \"type\": \"float\", \"low\": 1e-4, \"high\": 1, \"log\": true},"
  "{\"name\": \"opt\", \"type\": \"categorical\", \"choices\": [\"sgd\", \"adam\", \"rmsprop\"]},"
  "{\"name\": \"momentum\", \"type\": \"float\", \"low\": 0, \"high\": 1,"
  " \"condition\": {\"parent\": \"opt\", \"values\": [\"sgd\"]}}]}";

static double
mixed(const double *p, GRand *rng)
{
  (void) rng;
  static const double level[3] = { 0, 4, 8 };
  return 0.1 * log(p[0]) + level[(int) p[1]];
}

static void
test_categorical_and_conditional(void)
{
  Synthetic s = synthetic(MIXED, 300, mixed, g_test_rand_int());
  double imp[3];
  importances(&s, g_test_rand_int(), imp);
  g_test_message("mixed: lr %.4f, opt %.4f", imp[0], imp[1]);
  /* Var(0.1 log lr) = 0.01 * (log 1e4)^2 / 12 = 0.0707; Var(level) = 32/3 = 10.67. */
  double v_lr = 0.01 * pow(log(1e4), 2) / 12, v_opt = 32.0 / 3;
  g_assert_cmpfloat_with_epsilon(imp[1], v_opt / (v_lr + v_opt), 0.03);
  g_assert_cmpfloat_with_epsilon(imp[0], v_lr / (v_lr + v_opt), 0.03);
  /* momentum exists only for sgd: left out, as Optuna does. */
  g_assert_true(isnan(imp[2]));
  synthetic_clear(&s);
}

/* Importances do not depend on the objective's units or offset. The values are rounded to
 * multiples of 2^-16 so that scaling by 2^-30 and adding 2^30 are exact: the importances must
 * then come out bit for bit the same. (A forest on the raw values grew stumps on the scaled
 * ones, whose split gains fall under any absolute floor, and lost the small effects to
 * cancellation around 2^30.) */
static void
test_objective_units(void)
{
  Synthetic s = synthetic(XY_AB, 200, three_x_plus_y_plus_a, g_test_rand_int());
  for (guint i = 0; i < s.trials->len; i++) {
    FthTuneTrial *t = s.trials->pdata[i];
    t->value = ldexp(round(ldexp(t->value, 16)), -16);
  }
  guint64 seed = g_test_rand_int();
  double ref[4], scaled[4], shifted[4];
  importances(&s, seed, ref);
  for (guint i = 0; i < s.trials->len; i++) {
    FthTuneTrial *t = s.trials->pdata[i];
    t->value = ldexp(t->value, -30);
  }
  importances(&s, seed, scaled);
  for (guint i = 0; i < s.trials->len; i++) {
    FthTuneTrial *t = s.trials->pdata[i];
    t->value = ldexp(t->value, 30) + ldexp(1, 30);
  }
  importances(&s, seed, shifted);
  g_test_message("units: %.4f %.4f %.4f %.4f; x2^-30: %.4f %.4f %.4f %.4f", ref[0], ref[1],
                 ref[2], ref[3], scaled[0], scaled[1], scaled[2], scaled[3]);
  g_assert_cmpfloat(ref[2], >, 0.01);
  g_assert_cmpmem(ref, sizeof ref, scaled, sizeof scaled);
  g_assert_cmpmem(ref, sizeof ref, shifted, sizeof shifted);
  synthetic_clear(&s);
}

/* Each integer value weighs the same (the domain is [low - 0.5, high + 0.5] around them).
 * Optuna 3.1 spans [low, high] instead, so the two end values weigh half: it finds layers
 * 0.80 where the uniform measure over 1..8 gives 0.831. */
static const char LAYERS[] =
  "{\"params\": [{\"name\": \"layers\", \"type\": \"int\", \"low\": 1, \"high\": 8},"
  "{\"name\": \"x\", \"type\": \"float\", \"low\": 0, \"high\": 1}]}";

static double
layers_and_x(const double *p, GRand *rng)
{
  (void) rng;
  return (p[0] - 4) * (p[0] - 4) / 8 + p[1];
}

static void
test_integer_levels(void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(FthSearchSpace) space = fth_search_space_new_from_json(LAYERS, -1, "<test>", &error);
  g_assert_no_error(error);
  /* The synthetic trials draw uniform integers: the generator's float draw is not one. */
  Synthetic s = { fth_search_space_ref(space), g_ptr_array_new_with_free_func(trial_free) };
  g_autoptr(GRand) rng = g_rand_new_with_seed(g_test_rand_int());
  for (guint i = 0; i < 500; i++) {
    FthTuneTrial *t = g_new0(FthTuneTrial, 1);
    t->number = (int) i;
    t->state = FTH_TUNE_TRIAL_COMPLETE;
    t->params = g_new(double, 2);
    t->params[0] = g_rand_int_range(rng, 1, 9);
    t->params[1] = g_rand_double(rng);
    t->value = layers_and_x(t->params, rng);
    g_ptr_array_add(s.trials, t);
  }
  /* (k - 4)^2 / 8 over k = 1..8: mean 11/16, variance 0.41016; Var(x) = 1/12. */
  double v_layers = 0, mean = 11.0 / 16;
  for (int k = 1; k <= 8; k++)
    v_layers += pow((k - 4) * (k - 4) / 8.0 - mean, 2) / 8;
  double imp[2];
  importances(&s, g_test_rand_int(), imp);
  g_test_message("layers %.4f, x %.4f (exact %.4f)", imp[0], imp[1],
                 v_layers / (v_layers + 1.0 / 12));
  g_assert_cmpfloat_with_epsilon(imp[0], v_layers / (v_layers + 1.0 / 12), 0.02);
  synthetic_clear(&s);
}

static void
test_deterministic(void)
{
  Synthetic s = synthetic(AB, 120, three_a_plus_b, 14);
  double a[2], b[2], c[2];
  importances(&s, 5, a);
  importances(&s, 5, b);
  importances(&s, 6, c);
  g_assert_cmpmem(a, sizeof a, b, sizeof b);
  g_assert_true(a[0] != c[0]);
  g_assert_cmpfloat_with_epsilon(a[0], c[0], 0.05);
  synthetic_clear(&s);
}

static void
test_too_few(void)
{
  Synthetic s = synthetic(AB, 3, three_a_plus_b, 15);
  FthTuneTrial *t = s.trials->pdata[1];
  t->state = FTH_TUNE_TRIAL_PRUNED;
  t = s.trials->pdata[2];
  t->state = FTH_TUNE_TRIAL_FAILED;
  double imp[2];
  g_autoptr(GError) error = NULL;
  g_assert_false(fth_tune_importances(s.space, (const FthTuneTrial *const *) s.trials->pdata,
                                      s.trials->len, NULL, imp, &error));
  g_assert_error(error, FTH_TUNE_ERROR, FTH_TUNE_ERROR_INVALID);
  g_assert_nonnull(strstr(error->message, "2 completed trials"));
  synthetic_clear(&s);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/tune/importance/only-x", test_only_x);
  g_test_add_func("/tune/importance/known-split", test_known_split);
  g_test_add_func("/tune/importance/categorical-conditional", test_categorical_and_conditional);
  g_test_add_func("/tune/importance/objective-units", test_objective_units);
  g_test_add_func("/tune/importance/integer-levels", test_integer_levels);
  g_test_add_func("/tune/importance/deterministic", test_deterministic);
  g_test_add_func("/tune/importance/too-few", test_too_few);
  return g_test_run();
}
