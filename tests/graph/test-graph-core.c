/* The core ops against float64 references and central finite differences (of the reference, in
 * float64), the planner's invariants, and a small MLP that learns. FTH_TEST_SEED reproduces. */
#include <fathom/fathom.h>

#include <glib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static guint64 test_seed;
static GRand *rng;

typedef struct {
  int n_in;
  int ndim[3];
  int64_t shape[3][4];
  int axis;
  bool ta, tb;
} Case;

typedef FthNode *(*BuildFn)(FthGraph *g, FthNode **in, const Case *c);
/* out must hold the output; returns its element count */
typedef size_t (*RefFn)(double *const *in, const Case *c, double *out);

static size_t numel(const Case *c, int i) {
  size_t n = 1;
  for (int d = 0; d < c->ndim[i]; d++)
    n *= (size_t)c->shape[i][d];
  return n;
}

static size_t r_bce(double *const *in, const Case *c, double *out);

/* Loss = sum(R * op(inputs)): its gradient checks every output element's gradient at once. */
static void check_op(const char *name, BuildFn build, RefFn ref, const Case *c) {
  FthGraph *g = fth_graph_new(test_seed);
  FthNode *in[3];
  double *x[3];
  for (int i = 0; i < c->n_in; i++) {
    char pname[16];
    g_snprintf(pname, sizeof pname, "x%d", i);
    in[i] = fth_param(g, pname, c->ndim[i], c->shape[i], (FthInit){FTH_INIT_UNIFORM, -1.5f, 1.5f});
    FthTensor t;
    g_assert_cmpint(fth_graph_tensor(g, in[i], &t), ==, FTH_STATUS_OK);
    x[i] = g_new(double, numel(c, i));
    for (size_t k = 0; k < numel(c, i); k++)
      x[i][k] = ((float *)t.data)[k];
  }
  FthNode *y = build(g, in, c);
  g_assert_nonnull(y);
  int64_t yshape[5];
  int ynd = fth_node_shape(y, 1, yshape);
  FthNode *r = fth_buffer(g, "r", ynd, yshape, (FthInit){FTH_INIT_UNIFORM, -1.0f, 1.0f});
  FthNode *loss = fth_sum(g, fth_mul(g, y, r), FTH_ALL_AXES, false);
  g_assert_cmpint(fth_graph_status(g), ==, FTH_STATUS_OK);
  g_assert_cmpint(fth_graph_mark_output(g, y), ==, FTH_STATUS_OK);
  if (fth_graph_backward(g, loss, 1.0f) != FTH_STATUS_OK)
    g_error("%s: %s", name, fth_last_error());
  g_assert_cmpint(fth_graph_plan(g, FTH_MODE_TRAIN, 1), ==, FTH_STATUS_OK);
  if (fth_graph_check_plan(g, 1) != FTH_STATUS_OK)
    g_error("%s: %s", name, fth_last_error());
  g_assert_cmpint(fth_graph_run(g), ==, FTH_STATUS_OK);

  FthTensor yt, rt;
  fth_graph_tensor(g, y, &yt);
  fth_graph_tensor(g, r, &rt);
  size_t ny = (size_t)fth_tensor_numel(&yt);
  double *want = g_new(double, ny + 1);
  g_assert_cmpuint(ref(x, c, want), ==, ny);
  for (size_t k = 0; k < ny; k++)
    if (fabs(((float *)yt.data)[k] - want[k]) > 1e-4 * (1 + fabs(want[k])))
      g_error("%s: output %zu: %.7g, reference %.7g (FTH_TEST_SEED=%" G_GUINT64_FORMAT ")", name, k,
              ((float *)yt.data)[k], want[k], test_seed);
  double *rr = g_new(double, ny + 1), *out = g_new(double, ny + 1);
  for (size_t k = 0; k < ny; k++)
    rr[k] = ((float *)rt.data)[k];
  for (int i = 0; i < c->n_in; i++) {
    if (c->tb && i >= 1 && ref == r_bce)
      continue; /* BCE gives no gradient to targets or pos_weight (documented) */
    FthTensor gt;
    g_assert_cmpint(fth_param_grad_tensor(in[i], &gt), ==, FTH_STATUS_OK);
    size_t n = numel(c, i);
    for (size_t k = 0; k < n; k += 1 + n / 40) {
      double h = 1e-6, keep = x[i][k], lp = 0, lm = 0;
      x[i][k] = keep + h;
      ref(x, c, out);
      for (size_t j = 0; j < ny; j++)
        lp += rr[j] * out[j];
      x[i][k] = keep - h;
      ref(x, c, out);
      for (size_t j = 0; j < ny; j++)
        lm += rr[j] * out[j];
      x[i][k] = keep;
      double fd = (lp - lm) / (2 * h), got = ((float *)gt.data)[k];
      if (fabs(got - fd) > 2e-3 * (1 + fabs(fd)))
        g_error("%s: d/dx%d[%zu]: %.7g, finite difference %.7g (FTH_TEST_SEED=%" G_GUINT64_FORMAT ")", name,
                i, k, got, fd, test_seed);
    }
  }
  for (int i = 0; i < c->n_in; i++)
    g_free(x[i]);
  g_free(want);
  g_free(rr);
  g_free(out);
  fth_graph_free(g);
}

/* ---- references ---------------------------------------------------------------------------- */

static FthNode *b_linear(FthGraph *g, FthNode **in, const Case *c) {
  return fth_linear_act(g, in[0], in[1], in[2], c->axis ? FTH_ACT_RELU : FTH_ACT_NONE);
}
static size_t r_linear(double *const *in, const Case *c, double *out) {
  int64_t rows = c->shape[0][0] * (c->ndim[0] == 3 ? c->shape[0][1] : 1), k = c->shape[1][1], n = c->shape[1][0];
  for (int64_t r = 0; r < rows; r++)
    for (int64_t j = 0; j < n; j++) {
      double s = in[2][j];
      for (int64_t q = 0; q < k; q++)
        s += in[0][r * k + q] * in[1][j * k + q];
      out[r * n + j] = c->axis && s < 0 ? 0 : s;
    }
  return (size_t)(rows * n);
}

static FthNode *b_matmul(FthGraph *g, FthNode **in, const Case *c) {
  return fth_matmul(g, in[0], in[1], c->ta, c->tb);
}
static size_t r_matmul(double *const *in, const Case *c, double *out) {
  int nd = c->ndim[0];
  int64_t batch = nd == 3 ? c->shape[0][0] : 1;
  int64_t m = c->ta ? c->shape[0][nd - 1] : c->shape[0][nd - 2], k = c->ta ? c->shape[0][nd - 2] : c->shape[0][nd - 1];
  int bnd = c->ndim[1];
  int64_t n = c->tb ? c->shape[1][bnd - 2] : c->shape[1][bnd - 1];
  for (int64_t e = 0; e < batch; e++) {
    const double *a = in[0] + e * m * k, *b = in[1] + (bnd == 3 ? e * k * n : 0);
    for (int64_t i = 0; i < m; i++)
      for (int64_t j = 0; j < n; j++) {
        double s = 0;
        for (int64_t q = 0; q < k; q++)
          s += (c->ta ? a[q * m + i] : a[i * k + q]) * (c->tb ? b[j * k + q] : b[q * n + j]);
        out[e * m * n + i * n + j] = s;
      }
  }
  return (size_t)(batch * m * n);
}

/* binary with broadcasting of in[1] shaped [1, C] or [C] against in[0] [R, C] */
static FthNode *b_add(FthGraph *g, FthNode **in, const Case *c) { (void)c; return fth_add(g, in[0], in[1]); }
static FthNode *b_sub(FthGraph *g, FthNode **in, const Case *c) { (void)c; return fth_sub(g, in[0], in[1]); }
static FthNode *b_mul(FthGraph *g, FthNode **in, const Case *c) { (void)c; return fth_mul(g, in[0], in[1]); }
static size_t r_binary(double *const *in, const Case *c, double *out, int op) {
  size_t n = numel(c, 0), nb = numel(c, 1);
  for (size_t i = 0; i < n; i++) {
    double a = in[0][i], b = in[1][i % nb];
    out[i] = op == 0 ? a + b : op == 1 ? a - b : a * b;
  }
  return n;
}
static size_t r_add(double *const *in, const Case *c, double *out) { return r_binary(in, c, out, 0); }
static size_t r_sub(double *const *in, const Case *c, double *out) { return r_binary(in, c, out, 1); }
static size_t r_mul(double *const *in, const Case *c, double *out) { return r_binary(in, c, out, 2); }

static FthNode *b_scale(FthGraph *g, FthNode **in, const Case *c) { (void)c; return fth_scale(g, in[0], -1.75f, 0.5f); }
static size_t r_scale(double *const *in, const Case *c, double *out) {
  for (size_t i = 0; i < numel(c, 0); i++)
    out[i] = -1.75 * in[0][i] + 0.5;
  return numel(c, 0);
}

enum { A_RELU, A_GELU_ERF, A_GELU_TANH, A_SILU, A_SIGMOID, A_TANH };
static FthNode *b_act(FthGraph *g, FthNode **in, const Case *c) {
  switch (c->axis) {
  case A_RELU: return fth_relu(g, in[0]);
  case A_GELU_ERF: return fth_gelu(g, in[0], FTH_GELU_ERF);
  case A_GELU_TANH: return fth_gelu(g, in[0], FTH_GELU_TANH);
  case A_SILU: return fth_silu(g, in[0]);
  case A_SIGMOID: return fth_sigmoid(g, in[0]);
  default: return fth_tanh(g, in[0]);
  }
}
static size_t r_act(double *const *in, const Case *c, double *out) {
  for (size_t i = 0; i < numel(c, 0); i++) {
    double v = in[0][i];
    switch (c->axis) {
    case A_RELU: out[i] = v > 0 ? v : 0; break;
    case A_GELU_ERF: out[i] = 0.5 * v * (1 + erf(v / sqrt(2.0))); break;
    case A_GELU_TANH: out[i] = 0.5 * v * (1 + tanh(sqrt(2 / M_PI) * (v + 0.044715 * v * v * v))); break;
    case A_SILU: out[i] = v / (1 + exp(-v)); break;
    case A_SIGMOID: out[i] = 1 / (1 + exp(-v)); break;
    default: out[i] = tanh(v);
    }
  }
  return numel(c, 0);
}

/* softmax over axis c->axis of a 3-D tensor; ta selects log-softmax */
static FthNode *b_softmax(FthGraph *g, FthNode **in, const Case *c) {
  return c->ta ? fth_log_softmax(g, in[0], c->axis) : fth_softmax(g, in[0], c->axis);
}
static size_t r_softmax(double *const *in, const Case *c, double *out) {
  const int64_t *s = c->shape[0];
  int64_t outer = 1, inner = 1, len = s[c->axis];
  for (int d = 0; d < c->axis; d++)
    outer *= s[d];
  for (int d = c->axis + 1; d < 3; d++)
    inner *= s[d];
  for (int64_t o = 0; o < outer; o++)
    for (int64_t i = 0; i < inner; i++) {
      double m = -INFINITY, sum = 0;
      for (int64_t l = 0; l < len; l++)
        m = fmax(m, in[0][(o * len + l) * inner + i]);
      for (int64_t l = 0; l < len; l++)
        sum += exp(in[0][(o * len + l) * inner + i] - m);
      for (int64_t l = 0; l < len; l++) {
        double v = in[0][(o * len + l) * inner + i] - m - log(sum);
        out[(o * len + l) * inner + i] = c->ta ? v : exp(v);
      }
    }
  return numel(c, 0);
}

static FthNode *b_mse(FthGraph *g, FthNode **in, const Case *c) { (void)c; return fth_mse(g, in[0], in[1]); }
static size_t r_mse(double *const *in, const Case *c, double *out) {
  double s = 0;
  for (size_t i = 0; i < numel(c, 0); i++)
    s += (in[0][i] - in[1][i]) * (in[0][i] - in[1][i]);
  out[0] = s / (double)numel(c, 0);
  return 1;
}

/* BCE: targets squashed into [0, 1] by the graph (sigmoid) and by the reference alike */
static FthNode *b_bce(FthGraph *g, FthNode **in, const Case *c) {
  return fth_bce_with_logits(g, in[0], fth_sigmoid(g, in[1]), c->n_in > 2 ? in[2] : NULL);
}
static size_t r_bce(double *const *in, const Case *c, double *out) {
  size_t n = numel(c, 0), last = (size_t)c->shape[0][c->ndim[0] - 1];
  double s = 0;
  for (size_t i = 0; i < n; i++) {
    double x = in[0][i], t = 1 / (1 + exp(-in[1][i])), pw = c->n_in > 2 ? in[2][i % last] : 1;
    double sx = 1 / (1 + exp(-x));
    s += -(pw * t * log(sx) + (1 - t) * log(1 - sx));
  }
  out[0] = s / (double)n;
  return 1;
}

static FthNode *b_reduce(FthGraph *g, FthNode **in, const Case *c) {
  int axis = c->axis == 9 ? FTH_ALL_AXES : c->axis;
  return c->ta ? fth_mean(g, in[0], axis, c->tb) : fth_sum(g, in[0], axis, c->tb);
}
static size_t r_reduce(double *const *in, const Case *c, double *out) {
  const int64_t *s = c->shape[0];
  if (c->axis == 9) {
    double t = 0;
    for (size_t i = 0; i < numel(c, 0); i++)
      t += in[0][i];
    out[0] = c->ta ? t / (double)numel(c, 0) : t;
    return 1;
  }
  int64_t outer = 1, inner = 1, len = s[c->axis];
  for (int d = 0; d < c->axis; d++)
    outer *= s[d];
  for (int d = c->axis + 1; d < c->ndim[0]; d++)
    inner *= s[d];
  for (int64_t o = 0; o < outer; o++)
    for (int64_t i = 0; i < inner; i++) {
      double t = 0;
      for (int64_t l = 0; l < len; l++)
        t += in[0][(o * len + l) * inner + i];
      out[o * inner + i] = c->ta ? t / (double)len : t;
    }
  return (size_t)(outer * inner);
}

/* transpose [a, b, c] -> [c, a, b], then slice the middle axis, concat with itself, reshape */
static FthNode *b_shape(FthGraph *g, FthNode **in, const Case *c) {
  FthNode *t = fth_transpose(g, in[0], (int[]){2, 0, 1});
  FthNode *s = fth_slice(g, t, 1, 1, c->shape[0][0]);
  FthNode *parts[2] = {s, fth_scale(g, t, 2.0f, 0.0f)};
  FthNode *cat = fth_concat(g, 2, parts, 1);
  return fth_reshape(g, cat, 2, (int64_t[]){c->shape[0][2], -1});
}
static size_t r_shape(double *const *in, const Case *c, double *out) {
  int64_t A = c->shape[0][0], B = c->shape[0][1], C = c->shape[0][2];
  size_t k = 0;
  for (int64_t z = 0; z < C; z++) {
    for (int64_t a = 1; a < A; a++)
      for (int64_t b = 0; b < B; b++)
        out[k++] = in[0][(a * B + b) * C + z];
    for (int64_t a = 0; a < A; a++)
      for (int64_t b = 0; b < B; b++)
        out[k++] = 2 * in[0][(a * B + b) * C + z];
  }
  return k;
}

static void test_ops(void) {
  static const int64_t rows[] = {1, 3, 5}, cols[] = {1, 7, 16, 37};
  for (size_t ri = 0; ri < G_N_ELEMENTS(rows); ri++)
    for (size_t ci = 0; ci < G_N_ELEMENTS(cols); ci++) {
      int64_t R = rows[ri], C = cols[ci];
      Case lin = {3, {2, 2, 1}, {{R, C}, {5, C}, {5}}, (int)(ci % 2), false, false};
      check_op("linear", b_linear, r_linear, &lin);
      for (int act = A_RELU; act <= A_TANH; act++) {
        Case a = {1, {2}, {{R, C}}, act, false, false};
        check_op("activation", b_act, r_act, &a);
      }
      Case bin = {2, {2, 1}, {{R, C}, {C}}, 0, false, false};
      check_op("add", b_add, r_add, &bin);
      check_op("sub", b_sub, r_sub, &bin);
      check_op("mul", b_mul, r_mul, &bin);
      Case same = {2, {2, 2}, {{R, C}, {R, C}}, 0, false, false};
      check_op("mul", b_mul, r_mul, &same);
      check_op("mse", b_mse, r_mse, &same);
      Case bce = {2, {2, 2}, {{R, C}, {R, C}}, 0, false, true};
      check_op("bce", b_bce, r_bce, &bce);
      Case bce_w = {3, {2, 2, 1}, {{R, C}, {R, C}, {C}}, 0, false, true};
      check_op("bce pos_weight", b_bce, r_bce, &bce_w);
      Case sc = {1, {2}, {{R, C}}, 0, false, false};
      check_op("scale", b_scale, r_scale, &sc);
    }
  Case lin3 = {3, {3, 2, 1}, {{2, 3, 9}, {4, 9}, {4}}, 1, false, false};
  check_op("linear 3-D", b_linear, r_linear, &lin3);
  for (int t = 0; t < 4; t++) {
    bool ta = t & 1, tb = t & 2;
    Case mm = {2, {2, 2}, {{ta ? 7 : 5, ta ? 5 : 7}, {tb ? 3 : 7, tb ? 7 : 3}}, 0, ta, tb};
    check_op("matmul", b_matmul, r_matmul, &mm);
    Case bm = {2, {3, 3}, {{2, ta ? 7 : 5, ta ? 5 : 7}, {2, tb ? 3 : 7, tb ? 7 : 3}}, 0, ta, tb};
    check_op("matmul batched", b_matmul, r_matmul, &bm);
    Case sh = {2, {3, 2}, {{2, ta ? 7 : 5, ta ? 5 : 7}, {tb ? 3 : 7, tb ? 7 : 3}}, 0, ta, tb};
    check_op("matmul shared right side", b_matmul, r_matmul, &sh);
  }
  for (int axis = 0; axis < 3; axis++)
    for (int log_form = 0; log_form < 2; log_form++) {
      Case s = {1, {3}, {{3, 19, 4}}, axis, log_form, false};
      check_op("softmax", b_softmax, r_softmax, &s);
      Case s2 = {1, {3}, {{2, 3, 33}}, 2, log_form, false};
      check_op("softmax rows", b_softmax, r_softmax, &s2);
    }
  for (int axis = 0; axis < 4; axis++)
    for (int mean = 0; mean < 2; mean++) {
      Case r = {1, {3}, {{3, 4, 5}}, axis == 3 ? 9 : axis, mean, axis == 1};
      check_op("reduce", b_reduce, r_reduce, &r);
    }
  Case sh = {1, {3}, {{3, 4, 5}}, 0, false, false};
  check_op("transpose/slice/concat/reshape", b_shape, r_shape, &sh);
}

/* ---- cross-entropy: targets are an i32 input, weights a parameter --------------------------- */

typedef struct {
  const int32_t *t;
  const float *w;
  double eps;
  int n, c, inner, ignore; /* logits [n, c, inner...], targets [n, inner...] */
} CeRef;
static CeRef ce;

static double ce_logit(const double *xv, int row, int k) {
  return xv[(row / ce.inner * ce.c + k) * ce.inner + row % ce.inner];
}

/* as torch.nn.functional.cross_entropy(weight, ignore_index, label_smoothing), mean */
static double ref_loss(const double *xv) {
  double num = 0, den = 0;
  for (int r = 0; r < ce.n * ce.inner; r++) {
    if (ce.t[r] == ce.ignore)
      continue;
    double m = -INFINITY, s = 0;
    for (int k = 0; k < ce.c; k++)
      m = fmax(m, ce_logit(xv, r, k));
    for (int k = 0; k < ce.c; k++)
      s += exp(ce_logit(xv, r, k) - m);
    double lse = m + log(s), smooth = 0;
    for (int k = 0; k < ce.c; k++)
      smooth += (ce.w ? ce.w[k] : 1.0) * (lse - ce_logit(xv, r, k));
    double wtr = ce.w ? ce.w[ce.t[r]] : 1.0;
    num += (1 - ce.eps) * wtr * (lse - ce_logit(xv, r, ce.t[r])) + ce.eps / ce.c * smooth;
    den += wtr;
  }
  return num / den;
}

/* [N, C] logits, and [N, C, 2, 3] with [N, 2, 3] targets (per-position tagging); weights, label
 * smoothing and an ignored target in every combination; at a batch below the planned maximum. */
static void test_cross_entropy(void) {
  enum { N = 6, C = 11, MAXT = N * 6 };
  for (int variant = 0; variant < 8; variant++) {
    bool weighted = variant & 1;
    float eps = variant & 2 ? 0.1f : 0.0f;
    bool spatial = variant & 4;
    int inner = spatial ? 6 : 1;
    FthGraph *g = fth_graph_new(test_seed + (guint64)variant);
    FthNode *x = fth_input(g, "x", FTH_F32, spatial ? 4 : 2,
                           spatial ? (int64_t[]){FTH_BATCH, C, 2, 3} : (int64_t[]){FTH_BATCH, C});
    g_assert_cmpint(fth_graph_keep_grad(g, x), ==, FTH_STATUS_OK);
    FthNode *w = weighted ? fth_param(g, "w", 1, (int64_t[]){C}, (FthInit){FTH_INIT_UNIFORM, 0.2f, 2}) : NULL;
    FthNode *t = fth_input(g, "t", FTH_I32, spatial ? 3 : 1,
                           spatial ? (int64_t[]){FTH_BATCH, 2, 3} : (int64_t[]){FTH_BATCH});
    FthCrossEntropyParams p = {eps, 3};
    FthNode *loss = fth_cross_entropy(g, x, t, w, &p);
    if (fth_graph_backward(g, loss, 1.0f) != FTH_STATUS_OK)
      g_error("cross-entropy variant %d: %s", variant, fth_last_error());
    g_assert_cmpint(fth_graph_plan(g, FTH_MODE_TRAIN, N + 2), ==, FTH_STATUS_OK);
    g_assert_cmpint(fth_graph_set_batch(g, N), ==, FTH_STATUS_OK);
    g_assert_cmpint(fth_graph_check_plan(g, N), ==, FTH_STATUS_OK);
    int32_t tv[MAXT];
    for (int i = 0; i < N * inner; i++)
      tv[i] = g_rand_int_range(rng, 0, (gint32)C);
    tv[2] = 3; /* the ignore index */
    g_assert_cmpint(fth_graph_set_input(g, t, tv, sizeof(int32_t) * (size_t)(N * inner)), ==, FTH_STATUS_OK);
    double xs[N * C * 6];
    float xv[N * C * 6];
    for (int i = 0; i < N * C * inner; i++)
      xs[i] = xv[i] = (float)(2.0 * g_rand_double_range(rng, -1.5, 1.5));
    g_assert_cmpint(fth_graph_set_input(g, x, xv, sizeof(float) * (size_t)(N * C * inner)), ==, FTH_STATUS_OK);
    g_assert_cmpint(fth_graph_run(g), ==, FTH_STATUS_OK);
    FthTensor lt, gx, wt;
    fth_graph_tensor(g, loss, &lt);
    g_assert_cmpint(fth_graph_tensor(g, fth_graph_grad(g, x), &gx), ==, FTH_STATUS_OK);
    if (w)
      fth_graph_tensor(g, w, &wt);
    ce = (CeRef){tv, w ? (const float *)wt.data : NULL, eps, N, C, inner, 3};
    double want = ref_loss(xs);
    g_assert_cmpfloat(fabs(((float *)lt.data)[0] - want), <, 1e-5 * (1 + fabs(want)));
    for (int i = 0; i < N * C * inner; i++) {
      double keep = xs[i];
      xs[i] = keep + 1e-6;
      double lp = ref_loss(xs);
      xs[i] = keep - 1e-6;
      double lm = ref_loss(xs);
      xs[i] = keep;
      double fd = (lp - lm) / 2e-6;
      g_assert_cmpfloat(fabs(((float *)gx.data)[i] - fd), <, 1e-4 * (1 + fabs(fd)));
    }
    tv[0] = (int32_t)C; /* out of range: an error, not a crash */
    fth_graph_set_input(g, t, tv, sizeof(int32_t) * (size_t)(N * inner));
    g_assert_cmpint(fth_graph_run(g), ==, FTH_STATUS_INVALID_ARGUMENT);
    fth_graph_free(g);
  }
  /* targets that do not match the logits' positions are a build error */
  FthGraph *g = fth_graph_new(1);
  FthNode *x = fth_input(g, "x", FTH_F32, 3, (int64_t[]){FTH_BATCH, 4, 5});
  FthNode *t = fth_input(g, "t", FTH_I32, 2, (int64_t[]){FTH_BATCH, 4});
  g_assert_null(fth_cross_entropy(g, x, t, NULL, NULL));
  g_assert_cmpint(fth_graph_status(g), ==, FTH_STATUS_SHAPE_MISMATCH);
  fth_graph_free(g);
}

/* ---- planner --------------------------------------------------------------------------------- */

static size_t arena_bytes_seen;

static void *count_aligned(size_t alignment, size_t size, void *user) {
  (void)user;
  void *p = NULL;
  if (size > arena_bytes_seen)
    arena_bytes_seen = size; /* the arena is the largest block a plan allocates */
  return posix_memalign(&p, alignment, size) ? NULL : p;
}
static void *plain_malloc(size_t size, void *user) { (void)user; return malloc(size); }
static void plain_free(void *ptr, void *user) { (void)user; free(ptr); }

/* A random DAG of elementwise ops, linears, views and reductions over a batched input. */
static FthNode *random_graph(FthGraph *g, FthNode **input, int width) {
  FthNode *pool[64];
  int n = 0;
  *input = fth_input(g, "x", FTH_F32, 2, (int64_t[]){FTH_BATCH, width});
  pool[n++] = *input;
  for (int i = 0; i < 30; i++) {
    FthNode *a = pool[g_rand_int_range(rng, 0, n)], *b = pool[g_rand_int_range(rng, 0, n)], *y;
    char name[16];
    switch (g_rand_int_range(rng, 0, 6)) {
    case 0: y = fth_add(g, a, b); break;
    case 1: y = fth_mul(g, a, b); break;
    case 2: y = fth_relu(g, a); break;
    case 3:
      g_snprintf(name, sizeof name, "w%d", i);
      y = fth_linear_act(g, a, fth_param(g, name, 2, (int64_t[]){width, width}, (FthInit){FTH_INIT_KAIMING_UNIFORM, 0, 0}),
                         NULL, FTH_ACT_RELU);
      break;
    case 4: y = fth_reshape(g, fth_tanh(g, fth_reshape(g, a, 3, (int64_t[]){-1, 2, width / 2})), 2, (int64_t[]){-1, width}); break;
    default: y = fth_softmax(g, a, -1); break;
    }
    pool[n++] = y;
  }
  FthNode *sum = pool[n - 1];
  for (int i = n - 2; i > n - 6; i--)
    sum = fth_add(g, sum, pool[i]);
  return fth_mean(g, sum, FTH_ALL_AXES, false);
}

static void test_planner(void) {
  FthAllocator counting = {plain_malloc, count_aligned, plain_free, NULL};
  for (int trial = 0; trial < 20; trial++) {
    for (int mode = 0; mode < 2; mode++) {
      FthGraph *g = fth_graph_new(test_seed + (guint64)trial);
      FthNode *x;
      FthNode *loss = random_graph(g, &x, 12);
      g_assert_cmpint(fth_graph_status(g), ==, FTH_STATUS_OK);
      if (mode == 0)
        g_assert_cmpint(fth_graph_backward(g, loss, 1.0f), ==, FTH_STATUS_OK);
      else
        fth_graph_mark_output(g, loss);
      int64_t max_batch = 1 + g_rand_int_range(rng, 1, 40);
      arena_bytes_seen = 0;
      fth_set_allocator(&counting);
      FthStatus st = fth_graph_plan(g, mode ? FTH_MODE_INFERENCE : FTH_MODE_TRAIN, max_batch);
      fth_set_allocator(NULL);
      g_assert_cmpint(st, ==, FTH_STATUS_OK);
      FthPlanStats ps;
      fth_graph_plan_stats(g, &ps);
      /* bytes per sample are exact: the arena is fixed + per_sample * max_batch */
      g_assert_cmpuint(arena_bytes_seen, ==, ps.fixed_bytes + ps.per_sample_bytes * (size_t)max_batch);
      g_assert_cmpuint(ps.per_sample_bytes, >=, 12 * 4);
      for (int64_t b = 1; b <= max_batch; b += 1 + max_batch / 3) {
        g_assert_cmpint(fth_graph_check_plan(g, b), ==, FTH_STATUS_OK);
        g_assert_cmpint(fth_graph_check_plan(g, max_batch), ==, FTH_STATUS_OK);
      }
      /* the same sample gives the same loss contribution at any batch: run batch 1 vs batch b
       * filled with copies of one sample */
      float sample[12], *data = g_new(float, 12 * max_batch);
      for (int k = 0; k < 12; k++)
        sample[k] = (float)g_rand_double_range(rng, -1, 1);
      float l1, lb;
      FthTensor lt;
      g_assert_cmpint(fth_graph_set_batch(g, 1), ==, FTH_STATUS_OK);
      fth_graph_set_input(g, x, sample, sizeof sample);
      g_assert_cmpint(fth_graph_run(g), ==, FTH_STATUS_OK);
      fth_graph_tensor(g, loss, &lt);
      l1 = *(float *)lt.data;
      for (int64_t i = 0; i < max_batch; i++)
        memcpy(data + i * 12, sample, sizeof sample);
      fth_graph_set_batch(g, max_batch);
      fth_graph_set_input(g, x, data, sizeof(float) * 12 * (size_t)max_batch);
      g_assert_cmpint(fth_graph_run(g), ==, FTH_STATUS_OK);
      fth_graph_tensor(g, loss, &lt);
      lb = *(float *)lt.data;
      g_assert_cmpfloat(fabsf(l1 - lb), <=, 1e-4f * (1 + fabsf(l1)));
      g_assert_cmpint(fth_graph_set_batch(g, max_batch + 1), ==, FTH_STATUS_INVALID_ARGUMENT);
      g_free(data);
      fth_graph_free(g);
    }
  }
}

/* ---- allocation failures surface as errors ---------------------------------------------------- */

static int allocs_left;
static void *fail_malloc(size_t size, void *user) { (void)user; return allocs_left-- > 0 ? malloc(size) : NULL; }
static void *fail_aligned(size_t alignment, size_t size, void *user) {
  (void)user;
  void *p = NULL;
  return allocs_left-- > 0 && posix_memalign(&p, alignment, size) == 0 ? p : NULL;
}

static void test_graph_allocation_failures(void) {
  FthAllocator failing = {fail_malloc, fail_aligned, plain_free, NULL};
  for (int budget = 0;; budget++) {
    fth_set_allocator(&failing);
    allocs_left = budget;
    FthStatus st = FTH_STATUS_NO_MEMORY;
    FthGraph *g = fth_graph_new(1);
    if (g) {
      FthNode *x = fth_input(g, "x", FTH_F32, 2, (int64_t[]){FTH_BATCH, 8});
      FthNode *w = fth_param(g, "w", 2, (int64_t[]){4, 8}, (FthInit){FTH_INIT_XAVIER_UNIFORM, 0, 0});
      FthNode *t = fth_input(g, "t", FTH_I32, 1, (int64_t[]){FTH_BATCH});
      FthNode *loss = fth_cross_entropy(g, fth_linear(g, x, w, NULL), t, NULL, NULL);
      st = fth_graph_status(g);
      if (st == FTH_STATUS_OK)
        st = fth_graph_backward(g, loss, 1.0f);
      if (st == FTH_STATUS_OK)
        st = fth_graph_plan(g, FTH_MODE_TRAIN, 4);
      fth_graph_free(g);
    }
    fth_set_allocator(NULL);
    if (st == FTH_STATUS_OK)
      break;
    g_assert_cmpint(st, ==, FTH_STATUS_NO_MEMORY);
    g_assert_cmpint(budget, <, 500);
  }
}

/* ---- a small MLP learns -------------------------------------------------------------------------- */

static void test_mlp_learns(void) {
  enum { D = 10, H = 32, K = 4, B = 32 };
  FthGraph *g = fth_graph_new(test_seed);
  FthNode *x = fth_input(g, "x", FTH_F32, 2, (int64_t[]){FTH_BATCH, D});
  FthNode *t = fth_input(g, "t", FTH_I32, 1, (int64_t[]){FTH_BATCH});
  FthNode *w1 = fth_param(g, "fc1.weight", 2, (int64_t[]){H, D}, (FthInit){FTH_INIT_KAIMING_UNIFORM, 0, 0});
  FthNode *b1 = fth_param(g, "fc1.bias", 1, (int64_t[]){H}, (FthInit){FTH_INIT_ZEROS, 0, 0});
  FthNode *w2 = fth_param(g, "fc2.weight", 2, (int64_t[]){K, H}, (FthInit){FTH_INIT_XAVIER_UNIFORM, 0, 0});
  FthNode *b2 = fth_param(g, "fc2.bias", 1, (int64_t[]){K}, (FthInit){FTH_INIT_ZEROS, 0, 0});
  FthNode *logits = fth_linear(g, fth_linear_act(g, x, w1, b1, FTH_ACT_RELU), w2, b2);
  FthNode *loss = fth_cross_entropy(g, logits, t, NULL, NULL);
  g_assert_cmpint(fth_graph_backward(g, loss, 1.0f), ==, FTH_STATUS_OK);
  g_assert_cmpint(fth_graph_plan(g, FTH_MODE_TRAIN, B), ==, FTH_STATUS_OK);
  g_assert_cmpint(fth_graph_check_plan(g, B), ==, FTH_STATUS_OK);
  /* synthetic data: class k lies around 3 * e_k, plus random offsets shared by all classes;
   * separable under the +-1.5 noise, so the loss must fall far whatever the random draw */
  float centers[K][D];
  for (int d = 0; d < D; d++) {
    float shift = (float)g_rand_double_range(rng, -2, 2);
    for (int k = 0; k < K; k++)
      centers[k][d] = shift + (d == k ? 3.0f : 0.0f);
  }
  float xb[B * D];
  int32_t tb[B];
  double first = 0, last = 0;
  for (int step = 0; step < 300; step++) {
    for (int i = 0; i < B; i++) {
      tb[i] = g_rand_int_range(rng, 0, K);
      for (int d = 0; d < D; d++)
        xb[i * D + d] = centers[tb[i]][d] + (float)g_rand_double_range(rng, -1.5, 1.5);
    }
    fth_graph_set_input(g, x, xb, sizeof xb);
    fth_graph_set_input(g, t, tb, sizeof tb);
    g_assert_cmpint(fth_graph_run(g), ==, FTH_STATUS_OK);
    FthTensor lt;
    fth_graph_tensor(g, loss, &lt);
    double l = *(float *)lt.data;
    g_assert_true(isfinite(l));
    if (step < 20)
      first += l / 20;
    if (step >= 280)
      last += l / 20;
    for (int p = 0; p < fth_graph_n_params(g); p++) {
      FthTensor v, gr;
      FthNode *pn = fth_graph_param(g, p);
      fth_graph_tensor(g, pn, &v);
      fth_param_grad_tensor(pn, &gr);
      for (int64_t k = 0; k < fth_tensor_numel(&v); k++)
        ((float *)v.data)[k] -= 0.1f * ((float *)gr.data)[k];
    }
  }
  g_print("# mlp loss: first 20 steps %.4f, last 20 steps %.4f\n", first, last);
  g_assert_cmpfloat(last, <, 0.3 * first);
  fth_graph_free(g);
}

/* ---- bf16 GEMMs: the same graph with and without fth_graph_set_bf16_matmul ------------------- */

typedef struct {
  FthGraph *g;
  FthNode *x, *t, *h, *loss, *params[5];
} Bf16Net;

/* x [B, 2, 40] -> act(linear 48) = h -> linear 7 + matmul(h, p) -> logits [B, 2, 7], transposed
 * to [B, 7, 2] for a per-position cross-entropy: linear and matmul over 3-D inputs (folded into
 * one GEMM) and the transposed matmuls of every backward. */
static Bf16Net bf16_net(bool bf16, FthActivation act, int64_t max_batch) {
  Bf16Net n;
  n.g = fth_graph_new(test_seed);
  if (bf16)
    g_assert_cmpint(fth_graph_set_bf16_matmul(n.g, true), ==, FTH_STATUS_OK);
  n.x = fth_input(n.g, "x", FTH_F32, 3, (int64_t[]){FTH_BATCH, 2, 40});
  n.t = fth_input(n.g, "t", FTH_I32, 2, (int64_t[]){FTH_BATCH, 2});
  FthInit ku = {FTH_INIT_KAIMING_UNIFORM, 0, 0};
  n.params[0] = fth_param(n.g, "w1", 2, (int64_t[]){48, 40}, ku);
  n.params[1] = fth_param(n.g, "b1", 1, (int64_t[]){48}, (FthInit){FTH_INIT_UNIFORM, -0.1f, 0.1f});
  n.params[2] = fth_param(n.g, "w2", 2, (int64_t[]){7, 48}, ku);
  n.params[3] = fth_param(n.g, "b2", 1, (int64_t[]){7}, (FthInit){FTH_INIT_UNIFORM, -0.1f, 0.1f});
  n.params[4] = fth_param(n.g, "p", 2, (int64_t[]){48, 7}, ku);
  FthNode *h = n.h = fth_linear_act(n.g, n.x, n.params[0], n.params[1], act);
  FthNode *logits = fth_add(n.g, fth_linear(n.g, h, n.params[2], n.params[3]), fth_matmul(n.g, h, n.params[4], false, false));
  n.loss = fth_cross_entropy(n.g, fth_transpose(n.g, logits, (int[]){0, 2, 1}), n.t, NULL, NULL);
  g_assert_cmpint(fth_graph_mark_output(n.g, h), ==, FTH_STATUS_OK);
  g_assert_cmpint(fth_graph_backward(n.g, n.loss, 1.0f), ==, FTH_STATUS_OK);
  g_assert_cmpint(fth_graph_plan(n.g, FTH_MODE_TRAIN, max_batch), ==, FTH_STATUS_OK);
  return n;
}

static void test_bf16_matmul(void) {
  FthGraph *probe = fth_graph_new(1);
  FthStatus st = fth_graph_set_bf16_matmul(probe, true);
  fth_graph_free(probe);
  if (st == FTH_STATUS_UNSUPPORTED) {
    g_test_skip("no AVX512_BF16 on this CPU");
    return;
  }
  g_assert_cmpint(st, ==, FTH_STATUS_OK);
  enum { B = 37, MAXB = 50 };
  float xv[B * 2 * 40];
  int32_t tv[B * 2];
  for (int i = 0; i < B * 2 * 40; i++)
    xv[i] = (float)g_rand_double_range(rng, -2, 2);
  for (int i = 0; i < B * 2; i++)
    tv[i] = g_rand_int_range(rng, 0, 7);
  /* with ReLU: the forward values and the loss; without: the gradients too (a ReLU whose input
   * rounds across zero would flip a whole sample's contribution, which is not a GEMM error) */
  for (int act = 0; act < 2; act++) {
    Bf16Net f = bf16_net(false, act ? FTH_ACT_RELU : FTH_ACT_NONE, MAXB);
    Bf16Net h = bf16_net(true, act ? FTH_ACT_RELU : FTH_ACT_NONE, MAXB);
    g_assert_true(fth_graph_bf16_matmul(h.g));
    g_assert_cmpint(fth_graph_set_batch(f.g, B), ==, FTH_STATUS_OK);
    g_assert_cmpint(fth_graph_set_batch(h.g, B), ==, FTH_STATUS_OK);
    g_assert_cmpint(fth_graph_check_plan(h.g, B), ==, FTH_STATUS_OK);
    Bf16Net *nets[2] = {&f, &h};
    for (int k = 0; k < 2; k++) {
      fth_graph_set_input(nets[k]->g, nets[k]->x, xv, sizeof xv);
      fth_graph_set_input(nets[k]->g, nets[k]->t, tv, sizeof tv);
      g_assert_cmpint(fth_graph_run(nets[k]->g), ==, FTH_STATUS_OK);
    }
    FthTensor lf, lh, hf, hh;
    fth_graph_tensor(f.g, f.loss, &lf);
    fth_graph_tensor(h.g, h.loss, &lh);
    double loss_f = *(float *)lf.data, loss_h = *(float *)lh.data;
    g_print("# act %d: bf16 loss %.6f, fp32 loss %.6f\n", act, loss_h, loss_f);
    g_assert_cmpfloat(fabs(loss_h - loss_f), <, 1e-2 * (1 + fabs(loss_f)));
    /* bf16 keeps 8 significant bits: values agree to about 1e-2 of their scale, and differ (the
     * bf16 path ran) */
    fth_graph_tensor(f.g, f.h, &hf);
    fth_graph_tensor(h.g, h.h, &hh);
    double hscale = 0, hdiff = 0;
    for (int64_t i = 0; i < fth_tensor_numel(&hf); i++) {
      hscale = fmax(hscale, fabs(((float *)hf.data)[i]));
      hdiff = fmax(hdiff, fabs(((float *)hf.data)[i] - ((float *)hh.data)[i]));
    }
    g_assert_cmpfloat(hdiff, <=, 1e-2 * hscale);
    g_assert_cmpfloat(hdiff, >, 0);
    for (int p = 0; p < 5 && !act; p++) {
      FthTensor gf, gh;
      fth_param_grad_tensor(f.params[p], &gf);
      fth_param_grad_tensor(h.params[p], &gh);
      double scale = 0, diff = 0;
      for (int64_t i = 0; i < fth_tensor_numel(&gf); i++) {
        scale = fmax(scale, fabs(((float *)gf.data)[i]));
        diff = fmax(diff, fabs(((float *)gf.data)[i] - ((float *)gh.data)[i]));
      }
      if (diff > 2e-2 * scale + 1e-7 || diff == 0)
        g_error("bf16 gradient of parameter %d: max difference %g at scale %g", p, diff, scale);
    }
    fth_graph_free(f.g);
    fth_graph_free(h.g);
  }
}

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, NULL);
  const char *env = g_getenv("FTH_TEST_SEED");
  test_seed = env ? g_ascii_strtoull(env, NULL, 10) : (guint64)g_get_real_time();
  g_print("# FTH_TEST_SEED=%" G_GUINT64_FORMAT "\n", test_seed);
  rng = g_rand_new_with_seed((guint32)test_seed);
  g_test_add_func("/graph/ops", test_ops);
  g_test_add_func("/graph/cross-entropy", test_cross_entropy);
  g_test_add_func("/graph/planner", test_planner);
  g_test_add_func("/graph/allocation-failures", test_graph_allocation_failures);
  g_test_add_func("/graph/mlp-learns", test_mlp_learns);
  g_test_add_func("/graph/bf16-matmul", test_bf16_matmul);
  int rc = g_test_run();
  g_rand_free(rng);
  return rc;
}
