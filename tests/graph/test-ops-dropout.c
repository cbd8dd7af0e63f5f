/* Inverted dropout: kept elements are x / (1 - p) exactly and dropped ones 0, the keep ratio
 * matches 1 - p, the mask is a function of the seed alone (same for another graph with the same
 * seed and for another thread count, different for another seed), the gradient applies the
 * same mask to dy, and inference is the identity. */
#include "ops-check.h"

static uint64_t seed;

/* Runs dropout(x) once in training; copies out y and dx. */
static void run_dropout(uint64_t graph_seed, const float *x, int64_t n, int64_t d, float p,
                        float *y, float *dx, float *r) {
  OpsGraph og;
  ops_graph_begin(&og, graph_seed, n);
  FthNode *xn = ops_input(&og, "x", 2, (int64_t[]){n, d}, x, true);
  ops_graph_run(&og, fth_dropout(og.g, xn, p), FTH_MODE_TRAIN);
  memcpy(y, ops_output(&og), sizeof(float) * (size_t)(n * d));
  memcpy(dx, ops_grad(&og, xn), sizeof(float) * (size_t)(n * d));
  memcpy(r, og.r, sizeof(float) * (size_t)(n * d));
  ops_graph_end(&og);
}

static void test_dropout(void) {
  const int64_t n = 64, d = 1571; /* 100,544 elements, not a multiple of 4 per row */
  const size_t total = (size_t)(n * d);
  const float p = 0.3f;
  float *x = g_new(float, total), *y = g_new(float, total), *dx = g_new(float, total);
  float *r = g_new(float, total), *y2 = g_new(float, total), *dx2 = g_new(float, total);
  ops_fill(x, total, 0.5, 1.5); /* never zero, so a zero output means dropped */
  const uint64_t gs = seed;
  run_dropout(gs, x, n, d, p, y, dx, r);

  size_t dropped = 0;
  const float scale = 1.0f / (1.0f - p);
  for (size_t i = 0; i < total; i++) {
    if (y[i] == 0.0f) {
      dropped++;
      if (dx[i] != 0.0f)
        g_error("element %zu: dropped but its gradient is %g", i, (double)dx[i]);
    } else {
      if (y[i] != x[i] * scale)
        g_error("element %zu: kept value %.9g, want x / (1 - p) = %.9g", i, (double)y[i],
                (double)(x[i] * scale));
      /* d loss / d y is r */
      if (fabsf(dx[i] - r[i] * scale) > 1e-6f * fabsf(r[i] * scale))
        g_error("element %zu: gradient %.9g, want r / (1 - p) = %.9g", i, (double)dx[i],
                (double)(r[i] * scale));
    }
  }
  /* Binomial: sd of the dropped fraction is sqrt(p (1 - p) / total) ~ 0.0014. */
  const double frac = (double)dropped / (double)total;
  printf("# dropped fraction %.4f (p = %.2f)\n", frac, (double)p);
  g_assert_cmpfloat(fabs(frac - p), <, 0.01);

  /* Same seed, another thread count: the same mask. */
  const int threads = fth_thread_count();
  ops_check_status(fth_set_thread_count(threads == 1 ? 3 : 1), "thread count");
  run_dropout(gs, x, n, d, p, y2, dx2, r);
  ops_check_status(fth_set_thread_count(threads), "thread count");
  g_assert_cmpmem(y, sizeof(float) * total, y2, sizeof(float) * total);

  /* Another seed: another mask. */
  run_dropout(gs + 1, x, n, d, p, y2, dx2, r);
  size_t differ = 0;
  for (size_t i = 0; i < total; i++)
    differ += (y[i] == 0.0f) != (y2[i] == 0.0f);
  g_assert_cmpuint(differ, >, total / 10);

  g_free(x), g_free(y), g_free(dx), g_free(r), g_free(y2), g_free(dx2);
}

static void test_dropout_inference(void) {
  const int64_t n = 3, d = 10;
  float x[30];
  ops_fill(x, 30, -1, 1);
  OpsGraph og;
  ops_graph_begin(&og, seed, n);
  FthNode *xn = ops_input(&og, "x", 2, (int64_t[]){n, d}, x, false);
  ops_graph_run(&og, fth_dropout(og.g, xn, 0.5f), FTH_MODE_INFERENCE);
  g_assert_cmpmem(ops_output(&og), sizeof x, x, sizeof x);
  ops_graph_end(&og);
}

/* The mask is the documented Philox mapping, element for element: i keeps when word i % 4 of
 * block step * 2^32 + i / 4 of stream 2^32 + node id is at least p (as a unit float). Sizes off
 * multiples of 64 reach the vectorized blocks and the scalar tail. */
static void test_dropout_philox_mapping(void) {
  const int64_t n = 7, d = 1571;
  const size_t total = (size_t)(n * d);
  const float p = 0.4f;
  const uint64_t step = 5;
  float *x = g_new(float, total);
  ops_fill(x, total, 0.5, 1.5);
  OpsGraph og;
  ops_graph_begin(&og, seed, n);
  FthNode *xn = ops_input(&og, "x", 2, (int64_t[]){n, d}, x, false);
  FthNode *y = fth_dropout(og.g, xn, p);
  fth_graph_set_step(og.g, step);
  ops_graph_run(&og, y, FTH_MODE_TRAIN);
  const float *out = ops_output(&og);
  const uint64_t stream = (UINT64_C(1) << 32) + (uint64_t)fth_node_id(y);
  for (size_t i = 0; i < total; i++) {
    uint32_t rnd[4];
    fth_philox4x32(seed, stream, (step << 32) + i / 4, rnd);
    const bool keep = fth_u32_to_unit_float(rnd[i % 4]) >= p;
    if (keep != (out[i] != 0.0f))
      g_error("element %zu: %s, the Philox mapping says %s", i, out[i] != 0.0f ? "kept" : "dropped",
              keep ? "keep" : "drop");
  }
  ops_graph_end(&og);
  g_free(x);
}

static void test_dropout_bad_p(void) {
  FthGraph *g = fth_graph_new(1);
  FthNode *x = fth_input(g, "x", FTH_F32, 2, (int64_t[]){FTH_BATCH, 4});
  g_assert_null(fth_dropout(g, x, 1.5f));
  g_assert_cmpint(fth_graph_status(g), ==, FTH_STATUS_INVALID_ARGUMENT);
  fth_graph_free(g);
}

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, NULL);
  seed = ops_seed_init();
  g_test_add_func("/ops/dropout", test_dropout);
  g_test_add_func("/ops/dropout/inference", test_dropout_inference);
  g_test_add_func("/ops/dropout/philox-mapping", test_dropout_philox_mapping);
  g_test_add_func("/ops/dropout/bad-p", test_dropout_bad_p);
  return g_test_run();
}
