/* batch norm (training: batch statistics, running-buffer update, gradients through the
 * statistics; inference: running statistics) and layer norm, against float64 references
 * written here, gradients against central finite differences. */
#include "ops-check.h"

#include "fth-kernels-cpu.h"

typedef struct {
  int N, C, S; /* x is [N, C, S...] */
  double eps;
  bool affine;
  double *x, *gamma, *beta, *y, *mean, *var;
  const float *r;
} BnRef;

/* Training-mode batch norm: batch mean and biased variance. */
static void ref_bn_train(BnRef *b) {
  const double count = (double)b->N * b->S;
  for (int c = 0; c < b->C; c++) {
    double s = 0.0, q = 0.0;
    for (int n = 0; n < b->N; n++)
      for (int i = 0; i < b->S; i++)
        s += b->x[((size_t)n * b->C + c) * b->S + i];
    const double m = s / count;
    for (int n = 0; n < b->N; n++)
      for (int i = 0; i < b->S; i++) {
        const double d = b->x[((size_t)n * b->C + c) * b->S + i] - m;
        q += d * d;
      }
    b->mean[c] = m;
    b->var[c] = q / count;
    for (int n = 0; n < b->N; n++)
      for (int i = 0; i < b->S; i++) {
        const size_t k = ((size_t)n * b->C + c) * b->S + i;
        const double xh = (b->x[k] - m) / sqrt(b->var[c] + b->eps);
        b->y[k] = b->affine ? xh * b->gamma[c] + b->beta[c] : xh;
      }
  }
}

static double bn_loss(void *ctx) {
  BnRef *b = ctx;
  ref_bn_train(b);
  return ops_dot_r(b->y, b->r, (size_t)b->N * b->C * b->S);
}

/* x uniform in [offset - 2, offset + 3] */
static void bn_case(uint64_t case_seed, int ndim, const int64_t *shape, bool affine, double offset) {
  const int N = (int)shape[0], C = (int)shape[1];
  int S = 1;
  for (int i = 2; i < ndim; i++)
    S *= (int)shape[i];
  const size_t nx = (size_t)N * C * S;
  const float momentum = 0.1f, eps = 1e-5f;
  float *x = g_new(float, nx), *gamma = g_new(float, C), *beta = g_new(float, C);
  float *rm = g_new(float, C), *rv = g_new(float, C);
  ops_fill(x, nx, offset - 2, offset + 3);
  ops_fill(gamma, C, 0.5, 1.5);
  ops_fill(beta, C, -0.5, 0.5);
  ops_fill(rm, C, -1, 1);
  ops_fill(rv, C, 0.5, 2);

  OpsGraph og;
  ops_graph_begin(&og, case_seed, N);
  FthNode *xn = ops_input(&og, "x", ndim, shape, x, true);
  FthNode *rmn = ops_buffer(&og, "running_mean", 1, (int64_t[]){C}, rm);
  FthNode *rvn = ops_buffer(&og, "running_var", 1, (int64_t[]){C}, rv);
  FthNode *gn = affine ? ops_param(&og, "gamma", 1, (int64_t[]){C}, gamma) : NULL;
  FthNode *bn = affine ? ops_param(&og, "beta", 1, (int64_t[]){C}, beta) : NULL;
  FthBatchNormParams p = {.eps = eps, .momentum = momentum};
  ops_graph_run(&og, fth_batch_norm(og.g, xn, gn, bn, rmn, rvn, &p), FTH_MODE_TRAIN);

  BnRef ref = {.N = N, .C = C, .S = S, .eps = eps, .affine = affine, .r = og.r};
  ref.x = ops_to_double(x, nx);
  ref.gamma = ops_to_double(gamma, C);
  ref.beta = ops_to_double(beta, C);
  ref.y = g_new(double, nx);
  ref.mean = g_new(double, C);
  ref.var = g_new(double, C);
  ref_bn_train(&ref);
  ops_assert_close("batch norm train forward", ops_output(&og), ref.y, nx, 1e-4, 1e-4);

  /* Running buffers: momentum update with the unbiased batch variance. */
  double *want_rm = g_new(double, C), *want_rv = g_new(double, C);
  const double count = (double)N * S;
  for (int c = 0; c < C; c++) {
    want_rm[c] = (1 - momentum) * rm[c] + momentum * ref.mean[c];
    want_rv[c] = (1 - momentum) * rv[c] + momentum * ref.var[c] * count / (count - 1);
  }
  FthTensor t;
  ops_check_status(fth_graph_tensor(og.g, rmn, &t), "running mean");
  ops_assert_close("running mean", t.data, want_rm, C, 1e-5, 1e-5);
  ops_check_status(fth_graph_tensor(og.g, rvn, &t), "running var");
  ops_assert_close("running var", t.data, want_rv, C, 1e-5, 1e-5);

  ops_check_grad_fd("batch norm d/dx", bn_loss, &ref, ref.x, nx, ops_grad(&og, xn));
  if (affine) {
    ops_check_grad_fd("batch norm d/dgamma", bn_loss, &ref, ref.gamma, C, ops_grad(&og, gn));
    ops_check_grad_fd("batch norm d/dbeta", bn_loss, &ref, ref.beta, C, ops_grad(&og, bn));
  }
  ops_graph_end(&og);

  /* Inference: the running buffers normalize, and they stay as they were. */
  ops_graph_begin(&og, case_seed, N);
  xn = ops_input(&og, "x", ndim, shape, x, false);
  rmn = ops_buffer(&og, "running_mean", 1, (int64_t[]){C}, rm);
  rvn = ops_buffer(&og, "running_var", 1, (int64_t[]){C}, rv);
  gn = affine ? ops_param(&og, "gamma", 1, (int64_t[]){C}, gamma) : NULL;
  bn = affine ? ops_param(&og, "beta", 1, (int64_t[]){C}, beta) : NULL;
  ops_graph_run(&og, fth_batch_norm(og.g, xn, gn, bn, rmn, rvn, &p), FTH_MODE_INFERENCE);
  for (size_t k = 0; k < nx; k++) {
    const int c = (int)((k / (size_t)S) % (size_t)C);
    const double xh = (x[k] - (double)rm[c]) / sqrt((double)rv[c] + eps);
    ref.y[k] = affine ? xh * gamma[c] + beta[c] : xh;
  }
  ops_assert_close("batch norm inference forward", ops_output(&og), ref.y, nx, 1e-5, 1e-5);
  ops_check_status(fth_graph_tensor(og.g, rmn, &t), "running mean");
  g_assert_cmpmem(t.data, sizeof(float) * C, rm, sizeof(float) * C);
  ops_check_status(fth_graph_tensor(og.g, rvn, &t), "running var");
  g_assert_cmpmem(t.data, sizeof(float) * C, rv, sizeof(float) * C);
  ops_graph_end(&og);

  g_free(x), g_free(gamma), g_free(beta), g_free(rm), g_free(rv), g_free(want_rm), g_free(want_rv);
  g_free(ref.x), g_free(ref.gamma), g_free(ref.beta), g_free(ref.y), g_free(ref.mean), g_free(ref.var);
}

static uint64_t seed;

static void test_batch_norm(void) {
  bn_case(seed, 4, (int64_t[]){4, 3, 5, 6}, true, 0.0);
  bn_case(seed + 1, 2, (int64_t[]){7, 5}, true, 0.0);
  bn_case(seed + 2, 3, (int64_t[]){3, 2, 9}, false, 0.0);
  bn_case(seed + 3, 4, (int64_t[]){4, 2, 7, 5}, true, 50.0); /* mean far from zero */
}

typedef struct {
  int rows, D;
  double eps;
  bool affine;
  double *x, *gamma, *beta, *y;
  const float *r;
} LnRef;

static void ref_ln(LnRef *l) {
  for (int r = 0; r < l->rows; r++) {
    const double *xr = l->x + (size_t)r * l->D;
    double m = 0.0, v = 0.0;
    for (int i = 0; i < l->D; i++)
      m += xr[i];
    m /= l->D;
    for (int i = 0; i < l->D; i++)
      v += (xr[i] - m) * (xr[i] - m);
    v /= l->D;
    for (int i = 0; i < l->D; i++) {
      const double xh = (xr[i] - m) / sqrt(v + l->eps);
      l->y[(size_t)r * l->D + i] = l->affine ? xh * l->gamma[i] + l->beta[i] : xh;
    }
  }
}

static double ln_loss(void *ctx) {
  LnRef *l = ctx;
  ref_ln(l);
  return ops_dot_r(l->y, l->r, (size_t)l->rows * l->D);
}

static void ln_case(uint64_t case_seed, int ndim, const int64_t *shape, bool affine) {
  const int D = (int)shape[ndim - 1];
  const size_t nx = (size_t)ops_numel(ndim, shape);
  const float eps = 1e-5f;
  float *x = g_new(float, nx), *gamma = g_new(float, D), *beta = g_new(float, D);
  ops_fill(x, nx, -2, 2);
  ops_fill(gamma, D, 0.5, 1.5);
  ops_fill(beta, D, -0.5, 0.5);
  OpsGraph og;
  ops_graph_begin(&og, case_seed, shape[0]);
  FthNode *xn = ops_input(&og, "x", ndim, shape, x, true);
  FthNode *gn = affine ? ops_param(&og, "gamma", 1, (int64_t[]){D}, gamma) : NULL;
  FthNode *bn = affine ? ops_param(&og, "beta", 1, (int64_t[]){D}, beta) : NULL;
  ops_graph_run(&og, fth_layer_norm(og.g, xn, gn, bn, eps), FTH_MODE_TRAIN);

  LnRef ref = {.rows = (int)(nx / (size_t)D), .D = D, .eps = eps, .affine = affine, .r = og.r};
  ref.x = ops_to_double(x, nx);
  ref.gamma = ops_to_double(gamma, D);
  ref.beta = ops_to_double(beta, D);
  ref.y = g_new(double, nx);
  ref_ln(&ref);
  ops_assert_close("layer norm forward", ops_output(&og), ref.y, nx, 1e-4, 1e-4);
  ops_check_grad_fd("layer norm d/dx", ln_loss, &ref, ref.x, nx, ops_grad(&og, xn));
  if (affine) {
    ops_check_grad_fd("layer norm d/dgamma", ln_loss, &ref, ref.gamma, D, ops_grad(&og, gn));
    ops_check_grad_fd("layer norm d/dbeta", ln_loss, &ref, ref.beta, D, ops_grad(&og, bn));
  }
  ops_graph_end(&og);
  g_free(x), g_free(gamma), g_free(beta);
  g_free(ref.x), g_free(ref.gamma), g_free(ref.beta), g_free(ref.y);
}

static void test_layer_norm(void) {
  ln_case(seed + 10, 3, (int64_t[]){3, 4, 37}, true);
  ln_case(seed + 11, 2, (int64_t[]){5, 16}, false);
}

/* The portable C forms of the row helpers on the same cases. */
static void test_norm_scalar(void) {
  const FthIsa was = fth_cpu_isa();
  fth_cpu_set_isa(FTH_ISA_SCALAR);
  test_batch_norm();
  test_layer_norm();
  fth_cpu_set_isa(was);
}

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, NULL);
  seed = ops_seed_init();
  g_test_add_func("/ops/batch-norm", test_batch_norm);
  g_test_add_func("/ops/layer-norm", test_layer_norm);
  g_test_add_func("/ops/norm/scalar", test_norm_scalar);
  return g_test_run();
}
