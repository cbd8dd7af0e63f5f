/* Float GEMM throughput against the machine's measured FMA peak. Prints one table: the peak of a
 * tight AVX-512 FMA loop (per core and all cores), then OpenBLAS sgemm at one thread and with
 * its own threads, and fth's matmul op through a graph run with a pool of one thread and of all
 * cores (OpenBLAS at one thread inside our chunks), and the same op with bf16 GEMMs
 * (fth_graph_set_bf16_matmul; 0 where the CPU lacks AVX512_BF16). Every figure is the best of
 * five 0.2 s windows, because the cores are shared. */
#include <fathom/fathom.h>
#include <fth-kernels-cpu.h>

#include <cblas.h>
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* Single-thread figures are timed in the calling thread's CPU time: on shared cores that counts
 * only the cycles the thread got. Multi-thread figures need wall time (that is the speed-up). */
static bool cpu_clock;

static double now(void) {
  struct timespec ts;
  clock_gettime(cpu_clock ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* 12 independent FMA chains in named registers (an array may live in memory at -O2) hide the
 * 4-cycle latency of two FMA pipes. */
#define FMA12(op) op(0) op(1) op(2) op(3) op(4) op(5) op(6) op(7) op(8) op(9) op(10) op(11)
__attribute__((target("avx512f"))) static void *fma_loop(void *arg) {
  long iters = *(long *)arg;
  __m512 m = _mm512_set1_ps(0.999999f), a = _mm512_set1_ps(1e-7f);
#define DECL(i) __m512 acc##i = _mm512_set1_ps((float)(i));
#define STEP(i) acc##i = _mm512_fmadd_ps(acc##i, m, a);
#define SUM(i) sink += _mm512_reduce_add_ps(acc##i);
  FMA12(DECL)
  for (long it = 0; it < iters; it++) {
    FMA12(STEP)
    __asm__ volatile("" ::: "memory");
  }
  float sink = 0;
  FMA12(SUM)
  return sink == 12345.0f ? arg : NULL; /* the result is used, so the loop is not dropped */
}

static double fma_peak(int threads) {
  long iters = 20000000;
  if (threads == 1) {
    cpu_clock = true;
    double t0 = now();
    fma_loop(&iters);
    double s = now() - t0;
    cpu_clock = false;
    return (double)iters * 12 * 16 * 2 / s / 1e9;
  }
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
  double s = 1e9; /* best of several windows: the cores are shared */
  for (int w = 0; w < 5; w++) {
    int reps = 0;
    double t0 = now();
    while (now() - t0 < 0.2 || reps < 3) {
      fth_sgemm(false, false, n, n, n, 1, a, n, b, n, 0, c, n);
      reps++;
    }
    if ((now() - t0) / reps < s)
      s = (now() - t0) / reps;
  }
  free(a);
  free(b);
  free(c);
  return 2.0 * n * n * (double)n / s / 1e9;
}

static double time_graph(int n, bool bf16) {
  FthGraph *g = fth_graph_new(1);
  if (bf16 && fth_graph_set_bf16_matmul(g, true) != FTH_STATUS_OK) {
    fth_graph_free(g);
    return 0.0;
  }
  FthNode *a = fth_input(g, "a", FTH_F32, 2, (int64_t[]){n, n});
  FthNode *b = fth_param(g, "b", 2, (int64_t[]){n, n}, (FthInit){FTH_INIT_ONES, 0, 0});
  FthNode *c = fth_matmul(g, a, b, false, false);
  fth_graph_mark_output(g, c);
  if (fth_graph_plan(g, FTH_MODE_INFERENCE, 1) != FTH_STATUS_OK) {
    fprintf(stderr, "plan: %s\n", fth_last_error());
    exit(1);
  }
  fth_graph_run(g);
  double s = 1e9;
  for (int w = 0; w < 5; w++) {
    int reps = 0;
    double t0 = now();
    while (now() - t0 < 0.2 || reps < 3) {
      fth_graph_run(g);
      reps++;
    }
    if ((now() - t0) / reps < s)
      s = (now() - t0) / reps;
  }
  fth_graph_free(g);
  return 2.0 * n * n * (double)n / s / 1e9;
}

int main(void) {
  int cores = fth_thread_count();
  double p1 = fma_peak(1), pn = fma_peak(cores);
  printf("FMA peak (AVX-512, measured): 1 core %.1f GFLOP/s (per CPU-second), %d cores %.1f GFLOP/s (wall)\n", p1,
         cores, pn);
  printf("1-thread columns: per CPU-second of the thread; 'all' columns: wall time with every core\n");
  printf("%6s %10s %10s %10s %8s | %10s %10s %10s\n", "n", "blas 1", "fth 1", "bf16 1", "fth/peak", "blas all",
         "fth all", "bf16 all");
  static const int sizes[] = {32, 64, 128, 256, 512, 1024};
  for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
    int n = sizes[i];
    cpu_clock = true;
    double b1 = time_blas(n, 1);
    fth_sgemm_set_threads(1);
    fth_set_thread_count(1);
    double f1 = time_graph(n, false), h1 = time_graph(n, true);
    cpu_clock = false;
    double bn = time_blas(n, cores);
    fth_sgemm_set_threads(1);
    fth_set_thread_count(cores);
    double fp = time_graph(n, false), hp = time_graph(n, true);
    printf("%6d %10.1f %10.1f %10.1f %7.0f%% | %10.1f %10.1f %10.1f\n", n, b1, f1, h1, 100.0 * f1 / p1, bn, fp, hp);
  }
  return 0;
}
