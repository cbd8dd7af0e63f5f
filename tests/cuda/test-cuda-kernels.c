/* The CUDA pieces outside the op table, each against its CPU counterpart on fresh random data:
 * device selection (runs without a device too), the caching allocator, f16/bf16 GEMM with f32
 * accumulation, dtype conversions, the fused SGD and AdamW updates, the dynamic loss scaler and
 * the NCCL bucketed all-reduce. */
#include "cuda-harness.h"

#include <fathom/optim.h>
#include <fathom/tensor.h>
#include <fth-kernels-cpu.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

static bool have_device(void) {
  return fth_cuda_device_count(NULL) > 0;
}

/* Works on every machine: auto never fails, cpu is the CPU, bad specs are refused. */
static void test_select(void) {
  const FthBackend *be = NULL;
  g_assert_cmpint(fth_backend_select("auto", &be), ==, FTH_STATUS_OK);
  g_assert_nonnull(be);
  g_assert_cmpstr(be->name, ==, have_device() ? "cuda" : "cpu");
  g_assert_cmpint(fth_backend_select(NULL, &be), ==, FTH_STATUS_OK);
  g_assert_cmpint(fth_backend_select("cpu", &be), ==, FTH_STATUS_OK);
  g_assert_true(be == fth_backend_cpu());
  g_assert_cmpint(fth_backend_select("gpu", &be), ==, FTH_STATUS_INVALID_ARGUMENT);
  g_assert_null(be);
  g_assert_cmpint(fth_backend_select("cuda:x", &be), ==, FTH_STATUS_INVALID_ARGUMENT);
  g_assert_cmpint(fth_backend_select("cuda:999", &be), !=, FTH_STATUS_OK);
  g_assert_null(be);
  FthStatus st = fth_backend_select("cuda", &be);
  if (have_device()) {
    g_assert_cmpint(st, ==, FTH_STATUS_OK);
    g_assert_cmpstr(be->name, ==, "cuda");
  } else {
    g_assert_cmpint(st, ==, FTH_STATUS_UNSUPPORTED);
    g_assert_cmpstr(fth_last_error(), !=, "");
  }
}

static void test_allocator(void) {
  FthCudaContext *ctx = harness_cuda_context();
  FthCudaAllocStats a, b;
  void *p = fth_cuda_alloc(ctx, 3 << 20);
  g_assert_nonnull(p);
  fth_cuda_alloc_stats(ctx, &a);
  fth_cuda_free(ctx, p);
  void *q = fth_cuda_alloc(ctx, (3 << 20) - 1000); /* rounds to the same 4 MiB block */
  fth_cuda_alloc_stats(ctx, &b);
  g_assert_true(q == p);
  g_assert_cmpuint(b.driver_allocs, ==, a.driver_allocs);
  g_assert_cmpuint(b.in_use_bytes, ==, a.in_use_bytes);
  fth_cuda_free(ctx, q);
  fth_cuda_empty_cache(ctx);
  fth_cuda_alloc_stats(ctx, &b);
  g_assert_cmpuint(b.cached_bytes, ==, 0);
  /* a request the device cannot hold is an error, not a crash */
  g_assert_null(fth_cuda_alloc(ctx, (size_t)1 << 50));
  g_assert_cmpstr(fth_cuda_last_error(), !=, "");
}

static void *upload(FthCudaContext *ctx, const void *src, size_t bytes) {
  void *d = fth_cuda_alloc(ctx, bytes);
  g_assert_nonnull(d);
  g_assert_cmpint(fth_cuda_copy_to_device(ctx, d, src, bytes), ==, FTH_CUDA_OK);
  return d;
}

static void download(FthCudaContext *ctx, void *dst, const void *d_src, size_t bytes) {
  g_assert_cmpint(fth_cuda_copy_to_host(ctx, dst, d_src, bytes), ==, FTH_CUDA_OK);
}

/* Conversions are bit-identical to the CPU's (round to nearest even). */
static void test_convert(void) {
  FthCudaContext *ctx = harness_cuda_context();
  enum { N = 4099 };
  float *x = g_new(float, N);
  harness_normal(harness_seed(), 100, x, N);
  for (int i = 0; i < N; i++)
    x[i] *= (float)ldexp(1.0, (i % 60) - 30); /* spans f16's subnormals and overflow */
  x[0] = INFINITY;
  x[1] = -0.0f;
  x[2] = 65520.0f; /* rounds to Inf in f16 */
  uint16_t *want = g_new(uint16_t, N), *got = g_new(uint16_t, N);
  float *back = g_new(float, N), *want_back = g_new(float, N);
  float *dx = upload(ctx, x, N * sizeof(float));
  void *dh = fth_cuda_alloc(ctx, N * 2);
  float *dback = fth_cuda_alloc(ctx, N * sizeof(float));
  for (int bf = 0; bf < 2; bf++) {
    FthCudaDType dt = bf ? FTH_CUDA_DT_BF16 : FTH_CUDA_DT_F16;
    if (bf)
      fth_f32_to_bf16(x, want, N);
    else
      fth_f32_to_f16(x, want, N);
    g_assert_cmpint(fth_cuda_convert(ctx, dt, dh, FTH_CUDA_DT_F32, dx, N), ==, FTH_CUDA_OK);
    download(ctx, got, dh, N * 2);
    for (int i = 0; i < N; i++)
      if (got[i] != want[i])
        g_error("%s of %.9g: 0x%04x on CUDA, 0x%04x on the CPU", bf ? "bf16" : "f16", (double)x[i], got[i], want[i]);
    g_assert_cmpint(fth_cuda_convert(ctx, FTH_CUDA_DT_F32, dback, dt, dh, N), ==, FTH_CUDA_OK);
    download(ctx, back, dback, N * sizeof(float));
    if (bf)
      fth_bf16_to_f32(want, want_back, N);
    else
      fth_f16_to_f32(want, want_back, N);
    g_assert_cmpmem(back, N * sizeof(float), want_back, N * sizeof(float));
  }
  fth_cuda_free(ctx, dx);
  fth_cuda_free(ctx, dh);
  fth_cuda_free(ctx, dback);
  g_free(x), g_free(want), g_free(got), g_free(back), g_free(want_back);
}

/* f16 and bf16 storage, f32 accumulation: against sgemm on the same rounded operands. The only
 * differences are the summation order and the final rounding to the storage type (half an ulp),
 * so the bound is one ulp of the output type plus a small f32 term. */
static void test_gemm_half(void) {
  FthCudaContext *ctx = harness_cuda_context();
  enum { M = 67, N = 45, K = 300, BATCH = 3 };
  float *a = g_new(float, BATCH * M * K), *b = g_new(float, K * N), *c = g_new(float, BATCH * M * N);
  uint16_t *ha = g_new(uint16_t, BATCH * M * K), *hb = g_new(uint16_t, K * N), *hc = g_new(uint16_t, BATCH * M * N);
  float *got = g_new(float, BATCH * M * N);
  for (int bf = 0; bf < 2; bf++) {
    harness_normal(harness_seed(), 200 + bf, a, BATCH * M * K);
    harness_normal(harness_seed(), 300 + bf, b, K * N);
    void (*to)(const float *, uint16_t *, size_t) = bf ? fth_f32_to_bf16 : fth_f32_to_f16;
    void (*from)(const uint16_t *, float *, size_t) = bf ? fth_bf16_to_f32 : fth_f16_to_f32;
    to(a, ha, BATCH * M * K);
    to(b, hb, K * N);
    from(ha, a, BATCH * M * K);
    from(hb, b, K * N);
    for (int e = 0; e < BATCH; e++) /* a batch of A [M, K] against one shared B [K, N] */
      fth_sgemm(false, false, M, N, K, 1.0f, a + e * M * K, K, b, N, 0.0f, c + e * M * N, N);
    void *da = upload(ctx, ha, sizeof(uint16_t) * BATCH * M * K), *db = upload(ctx, hb, sizeof(uint16_t) * K * N);
    void *dc = fth_cuda_alloc(ctx, sizeof(uint16_t) * BATCH * M * N);
    g_assert_cmpint(fth_cuda_gemm(ctx, bf ? FTH_CUDA_DT_BF16 : FTH_CUDA_DT_F16, 0, 0, M, N, K, 1.0f, da, K,
                                  (long long)M * K, db, N, 0, 0.0f, dc, N, (long long)M * N, BATCH),
                    ==, FTH_CUDA_OK);
    download(ctx, hc, dc, sizeof(uint16_t) * BATCH * M * N);
    from(hc, got, BATCH * M * N);
    size_t at;
    double ulp = bf ? 1.0 / 128 : 1.0 / 1024; /* one unit in the last place, relative */
    double ex = harness_excess(got, c, BATCH * M * N, ulp, 1e-5, &at);
    if (ex > 0)
      g_error("%s gemm: element %zu is %g, sgemm gives %g", bf ? "bf16" : "f16", at, (double)got[at], (double)c[at]);
    fth_cuda_free(ctx, da), fth_cuda_free(ctx, db), fth_cuda_free(ctx, dc);
  }
  g_free(a), g_free(b), g_free(c), g_free(ha), g_free(hb), g_free(hc), g_free(got);
}

/* Five steps of each update rule on the device and through engine/nn's optimizer. */
static void test_optimizers(void) {
  FthCudaContext *ctx = harness_cuda_context();
  enum { N = 10007, STEPS = 5 };
  for (int variant = 0; variant < 4; variant++) {
    FthOptimConfig cfg = fth_optim_config_default(variant == 3 ? FTH_OPTIM_ADAMW : FTH_OPTIM_SGD);
    cfg.weight_decay = 0.05f;
    cfg.momentum = variant == 0 ? 0.0f : 0.9f;
    cfg.nesterov = variant == 2;
    cfg.lr = variant == 3 ? 3e-3f : 0.05f;
    float *w = g_new(float, N), *grad = g_new(float, N), *got = g_new(float, N);
    harness_normal(harness_seed(), 400 + variant, w, N);
    float *dw = upload(ctx, w, N * sizeof(float));
    float *dg = fth_cuda_alloc(ctx, N * sizeof(float));
    float *s0 = fth_cuda_alloc(ctx, N * sizeof(float)), *s1 = fth_cuda_alloc(ctx, N * sizeof(float));
    g_assert_cmpint(fth_cuda_memset_zero(ctx, s0, N * sizeof(float)), ==, FTH_CUDA_OK);
    g_assert_cmpint(fth_cuda_memset_zero(ctx, s1, N * sizeof(float)), ==, FTH_CUDA_OK);
    FthParam p = {.name = "w", .value = w, .grad = grad, .n = N, .decay = true};
    FthOptimizer *opt = fth_optimizer_new(&cfg, &p, 1);
    g_assert_nonnull(opt);
    for (int t = 1; t <= STEPS; t++) {
      harness_normal(harness_seed(), 500 + 10 * variant + t, grad, N);
      g_assert_cmpint(fth_cuda_copy_to_device(ctx, dg, grad, N * sizeof(float)), ==, FTH_CUDA_OK);
      fth_optimizer_step(opt, cfg.lr);
      FthCudaStatus st = variant == 3
                             ? fth_cuda_adamw_step(ctx, dw, dg, s0, s1, N, cfg.lr, cfg.weight_decay, cfg.beta1,
                                                   cfg.beta2, cfg.eps, t)
                             : fth_cuda_sgd_step(ctx, dw, dg, s0, N, cfg.lr, cfg.weight_decay, cfg.momentum,
                                                 cfg.nesterov);
      g_assert_cmpint(st, ==, FTH_CUDA_OK);
    }
    download(ctx, got, dw, N * sizeof(float));
    size_t at;
    if (harness_excess(got, w, N, 1e-5, 1e-6, &at) > 0)
      g_error("optimizer variant %d: w[%zu] is %.9g on CUDA, %.9g on the CPU", variant, at, (double)got[at],
              (double)w[at]);
    fth_optimizer_free(opt);
    fth_cuda_free(ctx, dw), fth_cuda_free(ctx, dg), fth_cuda_free(ctx, s0), fth_cuda_free(ctx, s1);
    g_free(w), g_free(grad), g_free(got);
  }
}

static void test_loss_scaler(void) {
  FthCudaContext *ctx = harness_cuda_context();
  enum { N = 3000 };
  FthCudaLossScaler s;
  g_assert_cmpint(fth_cuda_loss_scaler_init(ctx, &s, 1024.0f), ==, FTH_CUDA_OK);
  s.growth_interval = 2;
  float *g0 = g_new(float, N), *got = g_new(float, N);
  harness_normal(harness_seed(), 600, g0, N);
  float *d0 = upload(ctx, g0, N * sizeof(float)), *d1 = upload(ctx, g0, N * sizeof(float));
  float *bufs[2] = {d0, d1};
  size_t counts[2] = {N, N / 2};
  int ok = -1;
  /* clean gradients: divided by the scale exactly (a power of two), the step goes ahead */
  g_assert_cmpint(fth_cuda_loss_scaler_unscale(ctx, &s, bufs, counts, 2), ==, FTH_CUDA_OK);
  g_assert_cmpint(fth_cuda_loss_scaler_update(ctx, &s, &ok), ==, FTH_CUDA_OK);
  g_assert_cmpint(ok, ==, 1);
  download(ctx, got, d0, N * sizeof(float));
  for (int i = 0; i < N; i++)
    g_assert_cmpfloat(got[i], ==, g0[i] / 1024.0f);
  g_assert_cmpfloat(s.scale, ==, 1024.0f);
  /* a second clean step reaches the growth interval: the scale doubles */
  g_assert_cmpint(fth_cuda_loss_scaler_unscale(ctx, &s, bufs, counts, 2), ==, FTH_CUDA_OK);
  g_assert_cmpint(fth_cuda_loss_scaler_update(ctx, &s, &ok), ==, FTH_CUDA_OK);
  g_assert_cmpint(ok, ==, 1);
  g_assert_cmpfloat(s.scale, ==, 2048.0f);
  /* an overflow in the second buffer: the step is skipped and the scale halves */
  float inf = INFINITY;
  g_assert_cmpint(fth_cuda_copy_to_device(ctx, d1 + 17, &inf, sizeof inf), ==, FTH_CUDA_OK);
  g_assert_cmpint(fth_cuda_loss_scaler_unscale(ctx, &s, bufs, counts, 2), ==, FTH_CUDA_OK);
  g_assert_cmpint(fth_cuda_loss_scaler_update(ctx, &s, &ok), ==, FTH_CUDA_OK);
  g_assert_cmpint(ok, ==, 0);
  g_assert_cmpfloat(s.scale, ==, 1024.0f);
  /* and the flag was cleared: the next clean step goes ahead */
  g_assert_cmpint(fth_cuda_loss_scaler_unscale(ctx, &s, bufs, counts, 1), ==, FTH_CUDA_OK);
  g_assert_cmpint(fth_cuda_loss_scaler_update(ctx, &s, &ok), ==, FTH_CUDA_OK);
  g_assert_cmpint(ok, ==, 1);
  fth_cuda_loss_scaler_release(ctx, &s);
  fth_cuda_free(ctx, d0), fth_cuda_free(ctx, d1);
  g_free(g0), g_free(got);
}

/* One communicator per visible device in this process; every rank's buffers hold
 * rank-dependent values, so after the bucketed reduction each must hold the mean over ranks.
 * Buckets are small enough that some buffers share a bucket and one is reduced in place. */
static void test_nccl_buckets(void) {
  harness_cuda_or_skip();
  int n = fth_cuda_device_count(NULL);
  if (n > 8)
    n = 8;
  FthCudaContext *ctxs[8] = {NULL};
  FthCudaComm *comms[8] = {NULL};
  for (int r = 0; r < n; r++)
    g_assert_cmpint(fth_cuda_context_new(r, &ctxs[r]), ==, FTH_CUDA_OK);
  FthCudaStatus st = fth_cuda_comm_new_all(ctxs, n, comms);
  if (st == FTH_CUDA_UNSUPPORTED) {
    for (int r = 0; r < n; r++)
      fth_cuda_context_free(ctxs[r]);
    g_test_skip("built without NCCL");
    return;
  }
  g_assert_cmpint(st, ==, FTH_CUDA_OK);
  enum { NB = 4 };
  const size_t counts[NB] = {1000, 3000, 9000, 500}; /* bucket: 4096 floats */
  float *d[8][NB];
  float *host = g_new(float, 9000), *got = g_new(float, 9000);
  for (int r = 0; r < n; r++)
    for (int b = 0; b < NB; b++) {
      harness_normal(harness_seed(), 700 + 10 * r + b, host, counts[b]);
      d[r][b] = upload(ctxs[r], host, counts[b] * sizeof(float));
    }
  float *const *bufs[8];
  for (int r = 0; r < n; r++)
    bufs[r] = d[r];
  g_assert_cmpint(fth_cuda_all_reduce_buckets_local(comms, n, bufs, counts, NB, 4096 * sizeof(float)), ==,
                  FTH_CUDA_OK);
  for (int b = 0; b < NB; b++) {
    float *want = g_new0(float, counts[b]);
    for (int r = 0; r < n; r++) {
      harness_normal(harness_seed(), 700 + 10 * r + b, host, counts[b]);
      for (size_t i = 0; i < counts[b]; i++)
        want[i] += host[i] / (float)n;
    }
    for (int r = 0; r < n; r++) {
      g_assert_cmpint(fth_cuda_synchronize(ctxs[r]), ==, FTH_CUDA_OK);
      download(ctxs[r], got, d[r][b], counts[b] * sizeof(float));
      size_t at;
      if (harness_excess(got, want, counts[b], 1e-5, 1e-6, &at) > 0)
        g_error("rank %d buffer %d element %zu: %g, mean %g", r, b, at, (double)got[at], (double)want[at]);
    }
    g_free(want);
  }
  for (int r = 0; r < n; r++) {
    for (int b = 0; b < NB; b++)
      fth_cuda_free(ctxs[r], d[r][b]);
    fth_cuda_comm_free(comms[r]);
    fth_cuda_context_free(ctxs[r]);
  }
  g_free(host), g_free(got);
}

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/cuda/select", test_select);
  if (!have_device()) { /* the selection check above is all that runs here */
    g_test_run();
    printf("# no CUDA device answers: the device checks are skipped\n");
    return 77;
  }
  g_test_add_func("/cuda/allocator", test_allocator);
  g_test_add_func("/cuda/convert", test_convert);
  g_test_add_func("/cuda/gemm-half", test_gemm_half);
  g_test_add_func("/cuda/optimizers", test_optimizers);
  g_test_add_func("/cuda/loss-scaler", test_loss_scaler);
  g_test_add_func("/cuda/nccl-buckets", test_nccl_buckets);
  return g_test_run();
}
