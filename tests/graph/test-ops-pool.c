/* max / avg / global average pooling against float64 references written here, gradients
 * against central finite differences. 1-D pooling is [N, C, 1, L] with a 1 x k kernel. */
#include "ops-check.h"

#include "fth-kernels-cpu.h"

typedef enum { POOL_MAX, POOL_AVG, POOL_GLOBAL } PoolKind;

typedef struct {
  const char *name;
  PoolKind kind;
  int N, C, H, W, KH, KW, sh, sw, ph, pw;
  bool count_include_pad;
} PoolCase;

typedef struct {
  const PoolCase *c;
  int OH, OW;
  double *x, *y;
  const float *r;
} PoolRef;

static void ref_pool(PoolRef *ref) {
  const PoolCase *c = ref->c;
  for (int p = 0; p < c->N * c->C; p++) {
    const double *xp = ref->x + (size_t)p * c->H * c->W;
    if (c->kind == POOL_GLOBAL) {
      double s = 0.0;
      for (int i = 0; i < c->H * c->W; i++)
        s += xp[i];
      ref->y[p] = s / (c->H * c->W);
      continue;
    }
    for (int oh = 0; oh < ref->OH; oh++)
      for (int ow = 0; ow < ref->OW; ow++) {
        double best = -INFINITY, sum = 0.0;
        int count = 0;
        for (int ki = 0; ki < c->KH; ki++)
          for (int kj = 0; kj < c->KW; kj++) {
            const int ih = oh * c->sh - c->ph + ki, iw = ow * c->sw - c->pw + kj;
            if (ih < 0 || ih >= c->H || iw < 0 || iw >= c->W)
              continue;
            const double v = xp[ih * c->W + iw];
            best = v > best ? v : best;
            sum += v;
            count++;
          }
        double out = c->kind == POOL_MAX ? best
                                         : sum / (c->count_include_pad ? c->KH * c->KW : count);
        ref->y[((size_t)p * ref->OH + oh) * ref->OW + ow] = out;
      }
  }
}

static double pool_loss(void *ctx) {
  PoolRef *ref = ctx;
  ref_pool(ref);
  size_t ny = ref->c->kind == POOL_GLOBAL ? (size_t)ref->c->N * ref->c->C
                                          : (size_t)ref->c->N * ref->c->C * ref->OH * ref->OW;
  return ops_dot_r(ref->y, ref->r, ny);
}

static void run_case(const PoolCase *c, uint64_t seed) {
  PoolRef ref = {.c = c};
  ref.OH = (c->H + 2 * c->ph - c->KH) / c->sh + 1;
  ref.OW = (c->W + 2 * c->pw - c->KW) / c->sw + 1;
  const size_t nx = (size_t)c->N * c->C * c->H * c->W;
  const size_t ny = c->kind == POOL_GLOBAL ? (size_t)c->N * c->C : (size_t)c->N * c->C * ref.OH * ref.OW;
  float *x = g_new(float, nx);
  ops_fill(x, nx, -1, 1);

  OpsGraph og;
  ops_graph_begin(&og, seed, c->N);
  FthNode *xn = ops_input(&og, "x", 4, (int64_t[]){c->N, c->C, c->H, c->W}, x, true);
  FthPool2dParams p = {.kernel = {c->KH, c->KW}, .stride = {c->sh, c->sw},
                       .padding = {c->ph, c->pw}, .count_include_pad = c->count_include_pad};
  FthNode *y = c->kind == POOL_MAX   ? fth_max_pool2d(og.g, xn, &p)
               : c->kind == POOL_AVG ? fth_avg_pool2d(og.g, xn, &p)
                                     : fth_global_avg_pool2d(og.g, xn);
  ops_graph_run(&og, y, FTH_MODE_TRAIN);
  g_assert_cmpuint(og.y_numel, ==, ny);

  ref.x = ops_to_double(x, nx);
  ref.y = g_new(double, ny);
  ref.r = og.r;
  ref_pool(&ref);
  char what[160];
  g_snprintf(what, sizeof what, "%s forward", c->name);
  ops_assert_close(what, ops_output(&og), ref.y, ny, 1e-5, 1e-5);
  g_snprintf(what, sizeof what, "%s d/dx", c->name);
  ops_check_grad_fd(what, pool_loss, &ref, ref.x, nx, ops_grad(&og, xn));

  ops_graph_end(&og);
  g_free(x), g_free(ref.x), g_free(ref.y);
}

static uint64_t seed;

static const PoolCase cases[] = {
    {"max 2x2 stride 2", POOL_MAX, 2, 3, 8, 10, 2, 2, 2, 2, 0, 0, false},
    {"max 2x2 stride 2 odd 7x37 (SIMD tails)", POOL_MAX, 1, 2, 7, 37, 2, 2, 2, 2, 0, 0, false},
    {"max 2x2 stride 2 width 66", POOL_MAX, 1, 2, 4, 66, 2, 2, 2, 2, 0, 0, false},
    {"max 3x3 stride 2 pad 1", POOL_MAX, 2, 2, 9, 8, 3, 3, 2, 2, 1, 1, false},
    {"max 3x2 stride (1,2) pad (1,0)", POOL_MAX, 1, 3, 6, 7, 3, 2, 1, 2, 1, 0, false},
    {"max 1-D k3 stride 2", POOL_MAX, 2, 3, 1, 15, 1, 3, 1, 2, 0, 0, false},
    {"avg 2x2 stride 2", POOL_AVG, 2, 3, 6, 7, 2, 2, 2, 2, 0, 0, true},
    {"avg 3x3 stride 2 pad 1 incl pad", POOL_AVG, 2, 2, 7, 8, 3, 3, 2, 2, 1, 1, true},
    {"avg 3x3 stride 1 pad 1 excl pad", POOL_AVG, 1, 2, 5, 6, 3, 3, 1, 1, 1, 1, false},
    {"avg 1-D k4 stride 3 pad 2", POOL_AVG, 2, 2, 1, 17, 1, 4, 1, 3, 0, 2, false},
    {"global avg", POOL_GLOBAL, 3, 4, 5, 7, 0, 0, 1, 1, 0, 0, false},
};

static void test_pool(void) {
  for (size_t i = 0; i < G_N_ELEMENTS(cases); i++)
    run_case(&cases[i], seed + i);
}

static void test_pool_scalar(void) {
  const FthIsa was = fth_cpu_isa();
  for (FthIsa isa = FTH_ISA_SCALAR; isa < was; isa++) {
    fth_cpu_set_isa(isa);
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++)
      run_case(&cases[i], seed + 100 + i);
  }
  fth_cpu_set_isa(was);
}

static void test_pool_bad_shapes(void) {
  FthGraph *g = fth_graph_new(1);
  FthNode *x = fth_input(g, "x", FTH_F32, 4, (int64_t[]){FTH_BATCH, 3, 5, 5});
  FthPool2dParams p = {.kernel = {2, 2}, .stride = {2, 2}, .padding = {2, 2}};
  g_assert_null(fth_max_pool2d(g, x, &p)); /* padding above half the kernel */
  g_assert_cmpint(fth_graph_status(g), ==, FTH_STATUS_SHAPE_MISMATCH);
  fth_graph_free(g);
}

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, NULL);
  seed = ops_seed_init();
  g_test_add_func("/ops/pool", test_pool);
  g_test_add_func("/ops/pool/scalar", test_pool_scalar);
  g_test_add_func("/ops/pool/bad-shapes", test_pool_bad_shapes);
  return g_test_run();
}
