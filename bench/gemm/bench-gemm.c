/* Float GEMM throughput against the machine's measured FMA peak. Prints one table:
 * the peak of a tight AVX-512 FMA loop (per core and all cores), then OpenBLAS sgemm with its
 * own threads and fth's matmul op (rows split over the shared pool, OpenBLAS at one thread). */
#include <fathom/fathom.h>
#include <fth-kernels-cpu.h>

#include <cblas.h>
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* 12 independent FMA chains hide the 4-cycle latency of two FMA pipes. */
__attribute__((target("avx512f"))) static void *fma_loop(void *arg) {
  long iters = *(long *)arg;
  __m512 acc[12], m = _mm512_set1_ps(0.999999f), a = _mm512_set1_ps(1e-7f);
  for (int i = 0; i < 12; i++)
    acc[i] = _mm512_set1_ps((float)i);
  for (long it = 0; it < iters; it++)
    for (int i = 0; i < 12; i++)
      acc[i] = _mm512_fmadd_ps(acc[i], m, a);
  float sink = 0;
  for (int i = 0; i < 12; i++)
    sink += _mm512_reduce_add_ps(acc[i]);
  return sink == 12345.0f ? arg : NULL; /* the result is used, so the loop is not dropped */
}

static double fma_peak(int threads) {
  long iters = 20000000;
  pthread_t t[64];
  double t0 = now();
  for (int i = 0; i < threads; i++)
    pthread_create(&t[i], NULL, fma_loop, &iters);
  for (int i = 0; i < threads; i++)
    pthread_join(t[i], NULL);
  double s = now() - t0;
  return (double)threads * (double)iters * 12 * 16 * 2 / s / 1e9;
}

static double time_blas(int n, int threads) {
  float *a = aligned_alloc(64, sizeof(float) * (size_t)n * n), *b = aligned_alloc(64, sizeof(float) * (size_t)n * n),
        *c = aligned_alloc(64, sizeof(float) * (size_t)n * n);
  for (long i = 0; i < (long)n * n; i++)
    a[i] = b[i] = 0.5f;
  openblas_set_num_threads(threads);
  fth_sgemm(false, false, n, n, n, 1, a, n, b, n, 0, c, n);
  int reps = 0;
  double t0 = now();
  while (now() - t0 < 1.0 || reps < 3) {
    fth_sgemm(false, false, n, n, n, 1, a, n, b, n, 0, c, n);
    reps++;
  }
  double s = (now() - t0) / reps;
  free(a);
  free(b);
  free(c);
  return 2.0 * n * n * (double)n / s / 1e9;
}

static double time_graph(int n) {
  FthGraph *g = fth_graph_new(1);
  FthNode *a = fth_input(g, "a", FTH_F32, 2, (int64_t[]){n, n});
  FthNode *b = fth_param(g, "b", 2, (int64_t[]){n, n}, (FthInit){FTH_INIT_ONES, 0, 0});
  FthNode *c = fth_matmul(g, a, b, false, false);
  fth_graph_mark_output(g, c);
  if (fth_graph_plan(g, FTH_MODE_INFERENCE, 1) != FTH_STATUS_OK) {
    fprintf(stderr, "plan: %s\n", fth_last_error());
    exit(1);
  }
  fth_graph_run(g);
  int reps = 0;
  double t0 = now();
  while (now() - t0 < 1.0 || reps < 3) {
    fth_graph_run(g);
    reps++;
  }
  double s = (now() - t0) / reps;
  fth_graph_free(g);
  return 2.0 * n * n * (double)n / s / 1e9;
}

int main(void) {
  int cores = fth_thread_count();
  double p1 = fma_peak(1), pn = fma_peak(cores);
  printf("FMA peak (AVX-512, measured): 1 core %.1f GFLOP/s, %d cores %.1f GFLOP/s\n", p1, cores, pn);
  printf("%6s %16s %16s %18s %10s\n", "n", "blas 1 thr", "blas all thr", "fth matmul (pool)", "% of peak");
  static const int sizes[] = {64, 128, 256, 512, 1024};
  for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
    int n = sizes[i];
    double b1 = time_blas(n, 1), bn = time_blas(n, cores);
    fth_sgemm_set_threads(1);
    double fg = time_graph(n);
    printf("%6d %16.1f %16.1f %18.1f %9.0f%%\n", n, b1, bn, fg, 100.0 * fg / pn);
  }
  return 0;
}
