/* conv1d / conv2d against a float64 reference written here with plain loops, and their input,
 * weight and bias gradients against central finite differences of that reference. Shapes cover
 * stride, padding, dilation, groups, depthwise, 1x1, fused ReLU, odd widths (SIMD tails) and
 * batch 1 (the row-split path). */
#include "ops-check.h"

#include "fth-kernels-cpu.h"

typedef struct {
  const char *name;
  int spatial; /* 1 or 2 */
  int N, C, H, W, O, KH, KW, sh, sw, ph, pw, dh, dw, groups;
  bool bias, relu;
  bool pool; /* fused 2x2 max pool */
} ConvCase;

typedef struct {
  const ConvCase *c;
  int OH, OW;
  double *x, *w, *b, *y, *pooled;
  const float *r;
} ConvRef;

static int out_len(int in, int k, int s, int p, int d) {
  return (in + 2 * p - d * (k - 1) - 1) / s + 1;
}

static void ref_conv(ConvRef *ref) {
  const ConvCase *c = ref->c;
  const int cg = c->C / c->groups, og = c->O / c->groups;
  for (int n = 0; n < c->N; n++)
    for (int o = 0; o < c->O; o++) {
      const int g = o / og;
      for (int oh = 0; oh < ref->OH; oh++)
        for (int ow = 0; ow < ref->OW; ow++) {
          double acc = c->bias ? ref->b[o] : 0.0;
          for (int ci = 0; ci < cg; ci++)
            for (int ki = 0; ki < c->KH; ki++)
              for (int kj = 0; kj < c->KW; kj++) {
                const int ih = oh * c->sh - c->ph + ki * c->dh, iw = ow * c->sw - c->pw + kj * c->dw;
                if (ih < 0 || ih >= c->H || iw < 0 || iw >= c->W)
                  continue;
                acc += ref->x[(((size_t)n * c->C + g * cg + ci) * c->H + ih) * c->W + iw] *
                       ref->w[(((size_t)o * cg + ci) * c->KH + ki) * c->KW + kj];
              }
          if (c->relu && acc < 0.0)
            acc = 0.0;
          ref->y[(((size_t)n * c->O + o) * ref->OH + oh) * ref->OW + ow] = acc;
        }
    }
  if (!c->pool)
    return;
  const int PH = ref->OH / 2, PW = ref->OW / 2;
  for (int p = 0; p < c->N * c->O; p++)
    for (int i = 0; i < PH; i++)
      for (int j = 0; j < PW; j++) {
        double m = -INFINITY;
        for (int a = 0; a < 2; a++)
          for (int b = 0; b < 2; b++) {
            const double v = ref->y[((size_t)p * ref->OH + 2 * i + a) * ref->OW + 2 * j + b];
            m = v > m ? v : m;
          }
        ref->pooled[((size_t)p * PH + i) * PW + j] = m;
      }
}

static size_t out_numel(const ConvRef *ref) {
  const ConvCase *c = ref->c;
  return c->pool ? (size_t)c->N * c->O * (ref->OH / 2) * (ref->OW / 2)
                 : (size_t)c->N * c->O * ref->OH * ref->OW;
}

static double conv_loss(void *ctx) {
  ConvRef *ref = ctx;
  ref_conv(ref);
  return ops_dot_r(ref->c->pool ? ref->pooled : ref->y, ref->r, out_numel(ref));
}

static void run_case(const ConvCase *c, uint64_t seed) {
  ConvRef ref = {.c = c};
  ref.OH = out_len(c->H, c->KH, c->sh, c->ph, c->dh);
  ref.OW = out_len(c->W, c->KW, c->sw, c->pw, c->dw);
  const size_t nx = (size_t)c->N * c->C * c->H * c->W;
  const size_t nw = (size_t)c->O * (c->C / c->groups) * c->KH * c->KW;
  const size_t ny_full = (size_t)c->N * c->O * ref.OH * ref.OW, ny = out_numel(&ref);
  float *x = g_new(float, nx), *w = g_new(float, nw), *b = g_new(float, c->O);
  ops_fill(x, nx, -1, 1);
  ops_fill(w, nw, -1, 1);
  ops_fill(b, c->O, -0.5, 0.5);

  OpsGraph og;
  ops_graph_begin(&og, seed, c->N);
  FthNode *y;
  if (c->spatial == 2) {
    FthNode *xn = ops_input(&og, "x", 4, (int64_t[]){c->N, c->C, c->H, c->W}, x, true);
    FthNode *wn = ops_param(&og, "w", 4, (int64_t[]){c->O, c->C / c->groups, c->KH, c->KW}, w);
    FthNode *bn = c->bias ? ops_param(&og, "b", 1, (int64_t[]){c->O}, b) : NULL;
    FthConv2dParams p = {.stride = {c->sh, c->sw}, .padding = {c->ph, c->pw},
                         .dilation = {c->dh, c->dw}, .groups = c->groups,
                         .act = c->relu ? FTH_ACT_RELU : FTH_ACT_NONE, .max_pool2 = c->pool};
    y = fth_conv2d(og.g, xn, wn, bn, &p);
  } else {
    FthNode *xn = ops_input(&og, "x", 3, (int64_t[]){c->N, c->C, c->W}, x, true);
    FthNode *wn = ops_param(&og, "w", 3, (int64_t[]){c->O, c->C / c->groups, c->KW}, w);
    FthNode *bn = c->bias ? ops_param(&og, "b", 1, (int64_t[]){c->O}, b) : NULL;
    FthConv1dParams p = {.stride = c->sw, .padding = c->pw, .dilation = c->dw, .groups = c->groups,
                         .act = c->relu ? FTH_ACT_RELU : FTH_ACT_NONE};
    y = fth_conv1d(og.g, xn, wn, bn, &p);
  }
  ops_graph_run(&og, y, FTH_MODE_TRAIN);
  g_assert_cmpuint(og.y_numel, ==, ny);

  ref.x = ops_to_double(x, nx);
  ref.w = ops_to_double(w, nw);
  ref.b = ops_to_double(b, (size_t)c->O);
  ref.y = g_new(double, ny_full);
  ref.pooled = g_new(double, ny);
  ref.r = og.r;
  ref_conv(&ref);
  char what[160];
  g_snprintf(what, sizeof what, "%s forward", c->name);
  ops_assert_close(what, ops_output(&og), c->pool ? ref.pooled : ref.y, ny, 1e-4, 1e-4);

  g_snprintf(what, sizeof what, "%s d/dx", c->name);
  ops_check_grad_fd(what, conv_loss, &ref, ref.x, nx, ops_grad(&og, og.leaf[0]));
  g_snprintf(what, sizeof what, "%s d/dw", c->name);
  ops_check_grad_fd(what, conv_loss, &ref, ref.w, nw, ops_grad(&og, og.leaf[1]));
  if (c->bias) {
    g_snprintf(what, sizeof what, "%s d/db", c->name);
    ops_check_grad_fd(what, conv_loss, &ref, ref.b, (size_t)c->O, ops_grad(&og, og.leaf[2]));
  }

  ops_graph_end(&og);
  g_free(x), g_free(w), g_free(b);
  g_free(ref.x), g_free(ref.w), g_free(ref.b), g_free(ref.y), g_free(ref.pooled);
}

static uint64_t seed;

static const ConvCase conv2d_cases[] = {
    {"3x3 pad 1", 2, 2, 3, 7, 9, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, true, false},
    {"3x3 pad 1 relu", 2, 2, 3, 6, 5, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, true, true},
    {"3x2 stride 2 no pad", 2, 2, 2, 9, 8, 3, 3, 2, 2, 2, 0, 0, 1, 1, 1, true, false},
    {"stride (1,3) pad (2,1)", 2, 1, 2, 5, 10, 3, 3, 3, 1, 3, 2, 1, 1, 1, 1, false, false},
    {"dilation 2", 2, 2, 2, 8, 7, 3, 3, 3, 1, 1, 2, 2, 2, 2, 1, true, false},
    {"groups 2", 2, 2, 4, 6, 6, 6, 3, 3, 1, 1, 1, 1, 1, 1, 2, true, true},
    {"depthwise 3x3", 2, 2, 5, 6, 7, 5, 3, 3, 1, 1, 1, 1, 1, 1, 5, true, false},
    {"depthwise 3x3 stride 2 relu", 2, 1, 2, 5, 41, 2, 3, 3, 2, 2, 1, 1, 1, 1, 2, true, true},
    {"depthwise 3x3 stride (1,2) no pad, width 36", 2, 1, 2, 6, 36, 2, 3, 3, 1, 2, 0, 0, 1, 1, 2, true, false},
    {"depthwise 3x3 no pad", 2, 1, 3, 6, 19, 3, 3, 3, 1, 1, 0, 0, 1, 1, 3, true, false},
    {"depthwise 3x3 pad (2,1), stride (2,1)", 2, 1, 2, 7, 18, 2, 3, 3, 2, 1, 2, 1, 1, 1, 2, false, true},
    {"depthwise 5x3 dilation 2", 2, 1, 3, 9, 8, 3, 5, 3, 1, 1, 4, 2, 2, 2, 3, false, false},
    {"one input channel 3x3, fused pool", 2, 2, 1, 9, 21, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, true, true, true},
    {"one input channel per group, stride 2", 2, 1, 2, 8, 35, 4, 3, 3, 2, 2, 1, 1, 1, 1, 2, true, false},
    {"pointwise 1x1", 2, 2, 5, 4, 5, 3, 1, 1, 1, 1, 0, 0, 1, 1, 1, true, false},
    {"odd width 37 (SIMD tails)", 2, 1, 2, 3, 37, 2, 3, 3, 1, 1, 1, 1, 1, 1, 1, true, true},
    {"depthwise width 35 (SIMD tails)", 2, 1, 2, 4, 35, 2, 3, 3, 1, 1, 1, 1, 1, 1, 2, true, false},
    {"batch 1 (row split)", 2, 1, 3, 10, 6, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, true, true},
    {"fused ReLU + 2x2 max pool", 2, 2, 2, 6, 10, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, true, true, true},
    {"fused max pool, odd 5x37, no ReLU", 2, 1, 2, 5, 37, 2, 3, 3, 1, 1, 1, 1, 1, 1, 1, true, false, true},
    {"fused ReLU + pool, batch 1 rows 14", 2, 1, 2, 14, 14, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, true, true, true},
    {"fused ReLU + pool, depthwise", 2, 2, 4, 6, 6, 4, 3, 3, 1, 1, 1, 1, 1, 1, 4, true, true, true},
    /* input channels in blocks of 16 / 32: the weight gradient from the pooled side */
    {"fused ReLU + pool, 16 channels, odd 7x9", 2, 2, 16, 7, 9, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, true, true, true},
    {"fused pool, 32 channels, no pad, no ReLU", 2, 2, 32, 6, 8, 2, 3, 3, 1, 1, 0, 0, 1, 1, 1, true, false, true},
    {"fused ReLU + pool, 48 channels (3 blocks), 4x4", 2, 2, 48, 4, 4, 2, 3, 3, 1, 1, 1, 1, 1, 1, 1, true, true, true},
};

static const ConvCase conv1d_cases[] = {
    {"conv1d k3 stride 2 pad 1", 1, 2, 3, 1, 11, 4, 1, 3, 1, 2, 0, 1, 1, 1, 1, true, false},
    {"conv1d dilation 2 groups 3 relu", 1, 2, 6, 1, 13, 3, 1, 3, 1, 1, 0, 2, 1, 2, 3, true, true},
    {"conv1d depthwise k5", 1, 3, 4, 1, 19, 4, 1, 5, 1, 1, 0, 2, 1, 1, 4, false, false},
};

static void test_conv2d(void) {
  for (size_t i = 0; i < G_N_ELEMENTS(conv2d_cases); i++)
    run_case(&conv2d_cases[i], seed + i);
}

/* The narrower paths of the kernels (portable C, AVX2) on the same cases. */
static void test_conv2d_scalar(void) {
  const FthIsa was = fth_cpu_isa();
  for (FthIsa isa = FTH_ISA_SCALAR; isa < was; isa++) {
    fth_cpu_set_isa(isa);
    for (size_t i = 0; i < G_N_ELEMENTS(conv2d_cases); i++)
      run_case(&conv2d_cases[i], seed + 200 + i);
  }
  fth_cpu_set_isa(was);
}

static void test_conv1d(void) {
  for (size_t i = 0; i < G_N_ELEMENTS(conv1d_cases); i++)
    run_case(&conv1d_cases[i], seed + 100 + i);
}

/* Shapes that do not fit are build errors with a message, not crashes. */
static void test_conv_bad_shapes(void) {
  FthGraph *g = fth_graph_new(1);
  FthNode *x = fth_input(g, "x", FTH_F32, 4, (int64_t[]){FTH_BATCH, 3, 5, 5});
  FthNode *w = fth_param(g, "w", 4, (int64_t[]){4, 2, 3, 3}, (FthInit){FTH_INIT_ZEROS, 0, 0});
  FthConv2dParams p = {.stride = {1, 1}, .padding = {0, 0}, .dilation = {1, 1}, .groups = 1};
  g_assert_null(fth_conv2d(g, x, w, NULL, &p)); /* 2 input channels per group, x has 3 */
  g_assert_cmpint(fth_graph_status(g), ==, FTH_STATUS_SHAPE_MISMATCH);
  fth_graph_free(g);

  g = fth_graph_new(1);
  x = fth_input(g, "x", FTH_F32, 4, (int64_t[]){FTH_BATCH, 2, 3, 3});
  w = fth_param(g, "w", 4, (int64_t[]){4, 2, 5, 5}, (FthInit){FTH_INIT_ZEROS, 0, 0});
  g_assert_null(fth_conv2d(g, x, w, NULL, &p)); /* kernel larger than the input */
  g_assert_cmpint(fth_graph_status(g), ==, FTH_STATUS_SHAPE_MISMATCH);
  fth_graph_free(g);
}

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, NULL);
  seed = ops_seed_init();
  g_test_add_func("/ops/conv2d", test_conv2d);
  g_test_add_func("/ops/conv2d/scalar", test_conv2d_scalar);
  g_test_add_func("/ops/conv1d", test_conv1d);
  g_test_add_func("/ops/conv/bad-shapes", test_conv_bad_shapes);
  return g_test_run();
}
