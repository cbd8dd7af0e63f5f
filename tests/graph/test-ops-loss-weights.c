/* Cross-entropy with per-sample weights (fth_cross_entropy_weighted): the loss against a float64
 * reference and the logits' gradient against its central finite differences, with class
 * weights, label smoothing, an ignored target and per-position classes; zero, fractional and
 * all-equal weights (the last equal to the unweighted loss); shape errors. */
#include "ops-check.h"

enum { N = 6, C = 7, INNER = 6, IGNORE = 3 };

typedef struct {
  const int32_t *t;
  const float *cw, *sw;
  double eps;
  int inner;
} Ref;

static double logit(const Ref *r, const double *x, int row, int k) {
  return x[(row / r->inner * C + k) * r->inner + row % r->inner];
}

/* sum_r s[n] * l_r / sum_r s[n] * cw[t_r], l_r torch's per-row term (class weights, smoothing) */
static double ref_loss(const Ref *r, const double *x) {
  double num = 0, den = 0;
  for (int row = 0; row < N * r->inner; row++) {
    int32_t t = r->t[row];
    if (t == IGNORE)
      continue;
    double m = -INFINITY, s = 0, smooth = 0;
    for (int k = 0; k < C; k++)
      m = fmax(m, logit(r, x, row, k));
    for (int k = 0; k < C; k++)
      s += exp(logit(r, x, row, k) - m);
    double lse = m + log(s);
    for (int k = 0; k < C; k++)
      smooth += (r->cw ? r->cw[k] : 1.0) * (lse - logit(r, x, row, k));
    double sn = r->sw ? r->sw[row / r->inner] : 1.0, wt = r->cw ? r->cw[t] : 1.0;
    num += sn * ((1 - r->eps) * wt * (lse - logit(r, x, row, t)) + r->eps / C * smooth);
    den += sn * wt;
  }
  return den != 0 ? num / den : 0.0;
}

typedef struct {
  float loss, grad[N * C * INNER];
} Result;

/* Builds, plans and runs the loss (sample weights sw, or unweighted when NULL) at batch N. */
static Result run_loss(const Ref *r, const float *x, const float *cw, const float *sw) {
  FthGraph *g = fth_graph_new(1);
  bool spatial = r->inner > 1;
  FthNode *xn = fth_input(g, "x", FTH_F32, spatial ? 4 : 2,
                          spatial ? (int64_t[]){FTH_BATCH, C, 2, 3} : (int64_t[]){FTH_BATCH, C});
  g_assert_cmpint(fth_graph_keep_grad(g, xn), ==, FTH_STATUS_OK);
  FthNode *tn = fth_input(g, "t", FTH_I32, spatial ? 3 : 1,
                          spatial ? (int64_t[]){FTH_BATCH, 2, 3} : (int64_t[]){FTH_BATCH});
  FthNode *cwn = cw ? fth_input(g, "cw", FTH_F32, 1, (int64_t[]){C}) : NULL;
  FthNode *swn = sw ? fth_input(g, "sw", FTH_F32, 1, (int64_t[]){FTH_BATCH}) : NULL;
  FthCrossEntropyParams p = {(float)r->eps, IGNORE};
  FthNode *loss = fth_cross_entropy_weighted(g, xn, tn, cwn, swn, &p);
  if (fth_graph_backward(g, loss, 1.0f) != FTH_STATUS_OK)
    g_error("weighted cross-entropy: %s", fth_last_error());
  g_assert_cmpint(fth_graph_plan(g, FTH_MODE_TRAIN, N + 2), ==, FTH_STATUS_OK);
  g_assert_cmpint(fth_graph_set_batch(g, N), ==, FTH_STATUS_OK);
  size_t rows = (size_t)(N * r->inner);
  g_assert_cmpint(fth_graph_set_input(g, xn, x, sizeof(float) * rows * C), ==, FTH_STATUS_OK);
  g_assert_cmpint(fth_graph_set_input(g, tn, r->t, sizeof(int32_t) * rows), ==, FTH_STATUS_OK);
  if (cw)
    g_assert_cmpint(fth_graph_set_input(g, cwn, cw, sizeof(float) * C), ==, FTH_STATUS_OK);
  if (sw)
    g_assert_cmpint(fth_graph_set_input(g, swn, sw, sizeof(float) * N), ==, FTH_STATUS_OK);
  if (fth_graph_run(g) != FTH_STATUS_OK)
    g_error("weighted cross-entropy run: %s", fth_last_error());
  Result res;
  FthTensor lt, gx;
  fth_graph_tensor(g, loss, &lt);
  g_assert_cmpint(fth_graph_tensor(g, fth_graph_grad(g, xn), &gx), ==, FTH_STATUS_OK);
  res.loss = ((const float *)lt.data)[0];
  memcpy(res.grad, gx.data, sizeof(float) * rows * C);
  fth_graph_free(g);
  return res;
}

/* Every combination of class weights, smoothing and per-position classes; the sample weights
 * hold a zero and fractional values. */
static void test_against_reference(void) {
  for (int variant = 0; variant < 8; variant++) {
    bool weighted = variant & 1, spatial = variant & 4;
    int inner = spatial ? INNER : 1, rows = N * inner;
    float x[N * C * INNER], cw[C], sw[N];
    double xs[N * C * INNER];
    int32_t t[N * INNER];
    ops_fill(x, (size_t)(rows * C), -3.0, 3.0);
    ops_fill(cw, C, 0.2, 2.0);
    ops_fill(sw, N, 0.05, 1.5);
    sw[1] = 0.0f;
    for (int i = 0; i < rows; i++)
      t[i] = (int32_t)(ops_next_u64() % C);
    t[2] = IGNORE;
    for (int i = 0; i < rows * C; i++)
      xs[i] = x[i];
    Ref r = {t, weighted ? cw : NULL, sw, variant & 2 ? 0.1 : 0.0, inner};
    Result got = run_loss(&r, x, r.cw, sw);
    double want = ref_loss(&r, xs);
    g_assert_cmpfloat(fabs(got.loss - want), <, 1e-5 * (1 + fabs(want)));
    for (int i = 0; i < rows * C; i++) {
      double keep = xs[i];
      xs[i] = keep + 1e-6;
      double lp = ref_loss(&r, xs);
      xs[i] = keep - 1e-6;
      double lm = ref_loss(&r, xs);
      xs[i] = keep;
      double fd = (lp - lm) / 2e-6;
      g_assert_cmpfloat(fabs(got.grad[i] - fd), <, 1e-4 * (1 + fabs(fd)));
      if (i / (C * inner) == 1) /* sample 1 has weight 0: no gradient at all */
        g_assert_cmpfloat(got.grad[i], ==, 0.0f);
    }
  }
}

/* All-equal weights give the unweighted loss and gradient; all-zero weights give 0. */
static void test_equal_and_zero(void) {
  for (int variant = 0; variant < 4; variant++) {
    bool weighted = variant & 1;
    float x[N * C], cw[C], sw[N], zero[N] = {0};
    int32_t t[N];
    ops_fill(x, N * C, -3.0, 3.0);
    ops_fill(cw, C, 0.2, 2.0);
    float s = (float)ops_uniform(0.1, 3.0);
    for (int i = 0; i < N; i++) {
      sw[i] = s;
      t[i] = (int32_t)(ops_next_u64() % C);
    }
    Ref r = {t, weighted ? cw : NULL, NULL, variant & 2 ? 0.2 : 0.0, 1};
    Result plain = run_loss(&r, x, r.cw, NULL), equal = run_loss(&r, x, r.cw, sw), none = run_loss(&r, x, r.cw, zero);
    g_assert_cmpfloat(fabs(equal.loss - plain.loss), <=, 1e-6 * (1 + fabs(plain.loss)));
    g_assert_cmpfloat(none.loss, ==, 0.0f);
    for (int i = 0; i < N * C; i++) {
      g_assert_cmpfloat(fabs(equal.grad[i] - plain.grad[i]), <=, 1e-6 * (1 + fabs(plain.grad[i])));
      g_assert_cmpfloat(none.grad[i], ==, 0.0f);
    }
  }
}

/* Sample weights that are not f32 [N] along the logits' batch are a build error. */
static void test_shapes(void) {
  for (int i = 0; i < 3; i++) {
    FthGraph *g = fth_graph_new(1);
    FthNode *x = fth_input(g, "x", FTH_F32, 2, (int64_t[]){i == 2 ? FTH_BATCH : 4, 3});
    FthNode *t = fth_input(g, "t", FTH_I32, 1, (int64_t[]){i == 2 ? FTH_BATCH : 4});
    /* [5] for 4 samples; i32 weights; a fixed [4] against a batch axis */
    FthNode *s = fth_input(g, "s", i == 1 ? FTH_I32 : FTH_F32, 1, (int64_t[]){i == 0 ? 5 : 4});
    g_assert_null(fth_cross_entropy_weighted(g, x, t, NULL, s, NULL));
    g_assert_cmpint(fth_graph_status(g), ==, FTH_STATUS_SHAPE_MISMATCH);
    fth_graph_free(g);
  }
}

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, NULL);
  ops_seed_init();
  g_test_add_func("/ops/cross-entropy/sample-weights", test_against_reference);
  g_test_add_func("/ops/cross-entropy/equal-and-zero-weights", test_equal_and_zero);
  g_test_add_func("/ops/cross-entropy/sample-weight-shapes", test_shapes);
  return g_test_run();
}
