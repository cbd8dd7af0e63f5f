/* Optimizers against float64 re-derivations of PyTorch's update rules on fresh random inputs. */
#include <fathom/core.h>
#include <fathom/optim.h>
#include <glib.h>
#include <math.h>

#define N 37
#define BIG_N 100003 /* above several of the optimizer's pool chunks */
#define STEPS 5

static void
fill(GRand *r, float *v, size_t n, double scale)
{
  for (size_t i = 0; i < n; i++)
    v[i] = (float)(g_rand_double_range(r, -1, 1) * scale);
}

/* Runs STEPS updates of one optimizer on two parameters (one without decay) with fresh
 * gradients each step and compares against the float64 reference `ref`. */
typedef void (*RefStep)(const FthOptimConfig *c, double *w, const double *g, double *s0,
                        double *s1, size_t n, double lr, double wd, int64_t t);

static void
ref_sgd(const FthOptimConfig *c, double *w, const double *g, double *buf, double *unused,
        size_t n, double lr, double wd, int64_t t)
{
  for (size_t i = 0; i < n; i++) {
    double gi = g[i] + wd * w[i];
    if (c->momentum != 0) {
      buf[i] = t == 1 ? gi : c->momentum * buf[i] + gi; /* torch: buf = g on the first step */
      gi = c->nesterov ? gi + c->momentum * buf[i] : buf[i];
    }
    w[i] -= lr * gi;
  }
}

static void
ref_adamw(const FthOptimConfig *c, double *w, const double *g, double *m, double *v, size_t n,
          double lr, double wd, int64_t t)
{
  for (size_t i = 0; i < n; i++) {
    w[i] *= 1.0 - lr * wd;
    m[i] = c->beta1 * m[i] + (1 - c->beta1) * g[i];
    v[i] = c->beta2 * v[i] + (1 - c->beta2) * g[i] * g[i];
    double mhat = m[i] / (1 - pow(c->beta1, (double)t));
    double vhat = v[i] / (1 - pow(c->beta2, (double)t));
    w[i] -= lr * mhat / (sqrt(vhat) + c->eps);
  }
}

static void
check_optimizer_n(const FthOptimConfig *config, RefStep ref, size_t n)
{
  g_autoptr(GRand) r = g_rand_new();
  float *w[2], *g[2];
  double *rw[2], *rs0[2], *rs1[2], *rg[2];
  for (int p = 0; p < 2; p++) {
    w[p] = g_new(float, n);
    g[p] = g_new(float, n);
    rw[p] = g_new(double, n);
    rs0[p] = g_new0(double, n);
    rs1[p] = g_new0(double, n);
    rg[p] = g_new(double, n);
    fill(r, w[p], n, 1.0);
    for (size_t i = 0; i < n; i++)
      rw[p][i] = w[p][i];
  }
  FthParam params[2] = {
    {.name = "w", .value = w[0], .grad = g[0], .n = n, .decay = true},
    {.name = "b", .value = w[1], .grad = g[1], .n = n, .decay = false},
  };
  FthOptimizer *opt = fth_optimizer_new(config, params, 2);
  g_assert_nonnull(opt);
  for (int64_t t = 1; t <= STEPS; t++) {
    double lr = config->lr * (1.0 + 0.1 * (double)t); /* a schedule changes lr per step */
    double sq = 0;
    for (int p = 0; p < 2; p++) {
      fill(r, g[p], n, 3.0);
      for (size_t i = 0; i < n; i++) {
        rg[p][i] = g[p][i];
        sq += rg[p][i] * rg[p][i];
      }
    }
    double norm = sqrt(sq);
    if (config->clip_norm > 0 && norm > config->clip_norm)
      for (int p = 0; p < 2; p++)
        for (size_t i = 0; i < n; i++)
          rg[p][i] *= config->clip_norm / (norm + 1e-6);
    double got_norm = fth_optimizer_step(opt, (float)lr);
    if (config->clip_norm > 0)
      g_assert_cmpfloat_with_epsilon(got_norm, norm, 1e-9 * norm + 1e-12);
    else
      g_assert_cmpfloat(got_norm, ==, 0.0);
    for (int p = 0; p < 2; p++) {
      ref(config, rw[p], rg[p], rs0[p], rs1[p], n, (float)lr, p == 0 ? config->weight_decay : 0,
          t);
      for (size_t i = 0; i < n; i++)
        g_assert_cmpfloat_with_epsilon(w[p][i], rw[p][i], 2e-5 * (1 + fabs(rw[p][i])));
    }
  }
  g_assert_cmpint(fth_optimizer_steps(opt), ==, STEPS);
  /* The state handed to checkpoints is the reference's moment buffer. */
  for (size_t i = 0; i < n; i++)
    g_assert_cmpfloat_with_epsilon(fth_optimizer_state(opt, 0, 0)[i], rs0[0][i],
                                   2e-5 * (1 + fabs(rs0[0][i])));
  fth_optimizer_free(opt);
  for (int p = 0; p < 2; p++) {
    g_free(w[p]);
    g_free(g[p]);
    g_free(rw[p]);
    g_free(rs0[p]);
    g_free(rs1[p]);
    g_free(rg[p]);
  }
}

/* A small size and one the optimizer splits over the thread pool (several chunks, a short
 * last one). */
static void
check_optimizer(const FthOptimConfig *config, RefStep ref)
{
  check_optimizer_n(config, ref, N);
  check_optimizer_n(config, ref, BIG_N);
}

static void
test_sgd_plain(void)
{
  FthOptimConfig c = fth_optim_config_default(FTH_OPTIM_SGD);
  c.lr = 0.1f;
  c.weight_decay = 0.01f;
  check_optimizer(&c, ref_sgd);
}

static void
test_sgd_momentum(void)
{
  FthOptimConfig c = fth_optim_config_default(FTH_OPTIM_SGD);
  c.lr = 0.05f;
  c.momentum = 0.9f;
  c.weight_decay = 5e-4f;
  check_optimizer(&c, ref_sgd);
}

static void
test_sgd_nesterov(void)
{
  FthOptimConfig c = fth_optim_config_default(FTH_OPTIM_SGD);
  c.lr = 0.05f;
  c.momentum = 0.9f;
  c.nesterov = true;
  c.weight_decay = 1e-3f;
  check_optimizer(&c, ref_sgd);
}

static void
test_adamw(void)
{
  FthOptimConfig c = fth_optim_config_default(FTH_OPTIM_ADAMW);
  c.lr = 1e-2f;
  c.weight_decay = 0.1f;
  check_optimizer(&c, ref_adamw);
}

static void
test_clipping(void)
{
  FthOptimConfig c = fth_optim_config_default(FTH_OPTIM_SGD);
  c.lr = 0.05f;
  c.momentum = 0.9f;
  c.clip_norm = 1.0f; /* gradients of N*2 values in [-3, 3] have norm ~15: always clipped */
  check_optimizer(&c, ref_sgd);
  c = fth_optim_config_default(FTH_OPTIM_ADAMW);
  c.clip_norm = 2.0f;
  check_optimizer(&c, ref_adamw);
}

/* A hand-computed SGD momentum step: w=1, g=0.5, lr=0.1, m=0.9: step 1 w = 1 - 0.05 = 0.95;
 * step 2 with g=0.5 again: buf = 0.9*0.5 + 0.5 = 0.95, w = 0.95 - 0.095 = 0.855. */
static void
test_sgd_by_hand(void)
{
  float w = 1.0f, g = 0.5f;
  FthParam p = {.name = "w", .value = &w, .grad = &g, .n = 1, .decay = true};
  FthOptimConfig c = fth_optim_config_default(FTH_OPTIM_SGD);
  c.lr = 0.1f;
  c.momentum = 0.9f;
  FthOptimizer *opt = fth_optimizer_new(&c, &p, 1);
  fth_optimizer_step(opt, c.lr);
  g_assert_cmpfloat_with_epsilon(w, 0.95, 1e-7);
  fth_optimizer_step(opt, c.lr);
  g_assert_cmpfloat_with_epsilon(w, 0.855, 1e-7);
  fth_optimizer_free(opt);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  /* a pool of several threads even on a one-core machine, so BIG_N is split */
  if (fth_set_thread_count(3) != FTH_STATUS_OK)
    return 1;
  g_test_add_func("/optim/sgd/by-hand", test_sgd_by_hand);
  g_test_add_func("/optim/sgd/plain", test_sgd_plain);
  g_test_add_func("/optim/sgd/momentum", test_sgd_momentum);
  g_test_add_func("/optim/sgd/nesterov", test_sgd_nesterov);
  g_test_add_func("/optim/adamw", test_adamw);
  g_test_add_func("/optim/clip-grad-norm", test_clipping);
  return g_test_run();
}
