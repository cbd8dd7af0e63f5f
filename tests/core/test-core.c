/* Core: allocator failure injection, arenas, thread pool, Philox RNG, dtype conversions and the
 * SIMD kernels against their scalar forms. Random inputs use FTH_TEST_SEED when set. */
#include <fathom/fathom.h>
#include <fth-kernels-cpu.h>

#include <glib.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static guint64 test_seed;

/* ---- allocator -------------------------------------------------------------------------- */

static int allocs_left;
static int alloc_calls;

static void *failing_malloc(size_t size, void *user) {
  (void)user;
  alloc_calls++;
  return allocs_left-- > 0 ? malloc(size) : NULL;
}

static void *failing_aligned(size_t alignment, size_t size, void *user) {
  (void)user;
  alloc_calls++;
  void *p = NULL;
  if (allocs_left-- > 0 && posix_memalign(&p, alignment, size) != 0)
    p = NULL;
  return p;
}

static void plain_free(void *ptr, void *user) {
  (void)user;
  free(ptr);
}

static void test_allocator_failure(void) {
  FthAllocator a = {failing_malloc, failing_aligned, plain_free, NULL};
  fth_set_allocator(&a);
  allocs_left = 0;
  g_assert_null(fth_malloc(16));
  g_assert_cmpint(strstr(fth_last_error(), "out of memory") != NULL, ==, 1);
  g_assert_null(fth_aligned_alloc(64, 100));
  FthTensor t;
  g_assert_cmpint(fth_tensor_init(&t, FTH_F32, 1, (int64_t[]){10}), ==, FTH_STATUS_NO_MEMORY);
  g_assert_null(fth_arena_new(1024));
  allocs_left = 2; /* arena struct and first block */
  FthArena *arena = fth_arena_new(256);
  g_assert_nonnull(arena);
  g_assert_nonnull(fth_arena_alloc(arena, 100, 16));
  g_assert_null(fth_arena_alloc(arena, 1000, 16)); /* needs a new block */
  fth_arena_free(arena);
  g_assert_null(fth_calloc(SIZE_MAX / 2, 4)); /* overflow, not a huge allocation */
  fth_set_allocator(NULL);
}

static void test_arena(void) {
  FthArena *a = fth_arena_new(128);
  g_assert_nonnull(a);
  char *p[50];
  for (int i = 0; i < 50; i++) {
    size_t align = (size_t)1 << (i % 7);
    p[i] = fth_arena_alloc(a, (size_t)(i * 7 + 1), align);
    g_assert_nonnull(p[i]);
    g_assert_cmpuint((uintptr_t)p[i] % align, ==, 0);
    memset(p[i], i, (size_t)(i * 7 + 1));
  }
  for (int i = 0; i < 50; i++)
    for (int k = 0; k < i * 7 + 1; k++)
      g_assert_cmpint(p[i][k], ==, (char)i); /* no block handed out twice */
  g_assert_cmpuint(fth_arena_used(a), >=, 7 * 1225 + 50); /* the sizes asked for */
  fth_arena_reset(a);
  g_assert_cmpuint(fth_arena_used(a), ==, 0);
  g_assert_null(fth_arena_alloc(a, 8, 3));
  fth_arena_free(a);
}

/* ---- thread pool --------------------------------------------------------------------------- */

typedef struct {
  atomic_int *hits;
  atomic_int active[64];
  atomic_int clash;
  atomic_int nested_ok;
} PoolCtx;

static void mark(void *ctx, size_t begin, size_t end, int worker) {
  PoolCtx *c = ctx;
  if (atomic_fetch_add(&c->active[worker], 1) != 0)
    atomic_store(&c->clash, 1); /* a worker index used by two chunks at once */
  for (size_t i = begin; i < end; i++)
    atomic_fetch_add(&c->hits[i], 1);
  atomic_fetch_sub(&c->active[worker], 1);
}

static void nested(void *ctx, size_t begin, size_t end, int worker) {
  PoolCtx *c = ctx;
  (void)worker;
  for (size_t i = begin; i < end; i++) {
    g_assert_true(fth_in_parallel_region());
    PoolCtx inner = {.hits = c->hits + i * 10};
    fth_parallel_for(10, 1, mark, &inner); /* runs serially, worker 0 only */
    if (!inner.clash)
      atomic_fetch_add(&c->nested_ok, 1);
  }
}

static void test_thread_pool(void) {
  for (int threads = 1; threads <= 4; threads++) {
    g_assert_cmpint(fth_set_thread_count(threads), ==, FTH_STATUS_OK);
    g_assert_cmpint(fth_thread_count(), ==, threads);
    for (size_t n = 1; n < 3000; n = n * 3 + 1) {
      atomic_int *hits = calloc(n, sizeof *hits);
      PoolCtx c = {.hits = hits};
      fth_parallel_for(n, 1, mark, &c);
      for (size_t i = 0; i < n; i++)
        g_assert_cmpint(hits[i], ==, 1);
      g_assert_cmpint(c.clash, ==, 0);
      free(hits);
    }
    atomic_int *hits = calloc(200, sizeof *hits);
    PoolCtx c = {.hits = hits};
    fth_parallel_for(20, 1, nested, &c);
    for (int i = 0; i < 200; i++)
      g_assert_cmpint(hits[i], ==, 1);
    g_assert_cmpint(c.nested_ok, ==, 20);
    free(hits);
  }
  g_assert_false(fth_in_parallel_region());
  g_assert_cmpint(fth_set_thread_count(0), ==, FTH_STATUS_INVALID_ARGUMENT);
  g_assert_cmpint(fth_set_thread_count(2), ==, FTH_STATUS_OK);
}

/* Every chunk holds at least `grain` items; work under two grains stays on the caller. */
typedef struct {
  size_t grain;
  atomic_int small_chunk;
  atomic_int off_caller;
  atomic_int chunks;
} GrainCtx;

static void check_grain(void *ctx, size_t begin, size_t end, int worker) {
  GrainCtx *c = ctx;
  if (end - begin < c->grain)
    atomic_store(&c->small_chunk, 1);
  if (worker != 0)
    atomic_store(&c->off_caller, 1);
  atomic_fetch_add(&c->chunks, 1);
}

static void test_thread_pool_grain(void) {
  g_assert_cmpint(fth_set_thread_count(2), ==, FTH_STATUS_OK);
  for (size_t n = 1; n < 5000; n = n * 2 + 3) {
    for (size_t grain = 1; grain < 3000; grain = grain * 5 + 1) {
      GrainCtx c = {.grain = grain < n ? grain : n};
      fth_parallel_for(n, grain, check_grain, &c);
      g_assert_cmpint(c.small_chunk, ==, 0);
      g_assert_cmpuint((size_t)c.chunks, ==, fth_parallel_chunks(n, grain, 2));
      if (n < 2 * grain) {
        g_assert_cmpint(c.chunks, ==, 1);
        g_assert_cmpint(c.off_caller, ==, 0);
      }
    }
  }
}

/* Lag guard: when the workers' chunks keep the caller waiting (here they sleep 3 ms, as a worker
 * without a core would), regions soon run on the caller alone; resizing the pool resets it. */
typedef struct {
  atomic_int chunks, off_caller;
} LagCtx;

static void slow_off_caller(void *ctx, size_t begin, size_t end, int worker) {
  (void)begin;
  (void)end;
  LagCtx *c = ctx;
  atomic_fetch_add(&c->chunks, 1);
  if (worker != 0)
    atomic_store(&c->off_caller, 1);
  g_usleep(worker != 0 ? 3000 : 200); /* the caller's chunk lasts long enough for a worker to claim one */
}

static void test_thread_pool_lag_guard(void) {
  g_assert_cmpint(fth_set_thread_count(2), ==, FTH_STATUS_OK);
  /* Once a worker has taken part (a fresh worker may simply not have started yet), the guard
   * must make six regions in a row run on the caller alone. Without it a worker spinning for
   * work claims the second chunk during the caller's 200 us. No wall-clock bound: on a loaded
   * machine a 200 us sleep can last milliseconds. */
  bool worker_ran = false;
  int serial_in_a_row = 0;
  for (int region = 0; region < 200 && serial_in_a_row < 6; region++) {
    LagCtx c = {0};
    fth_parallel_for(2, 1, slow_off_caller, &c);
    g_assert_cmpint(c.chunks, ==, 2); /* the same chunks either way */
    if (c.off_caller) {
      worker_ran = true;
      serial_in_a_row = 0;
    } else if (worker_ran) {
      serial_in_a_row++;
    }
  }
  g_assert_cmpint(serial_in_a_row, ==, 6);
  g_assert_cmpint(fth_set_thread_count(2), ==, FTH_STATUS_OK);
}

/* Two threads submit regions at once: every region covers its range exactly once, and no more
 * than fth_thread_count() chunks ever run at the same moment (the jobs take turns). */
static atomic_int running_chunks, max_running_chunks;

typedef struct {
  int64_t *out;
  int64_t base;
} SubmitCtx;

static void fill_squares(void *ctx, size_t begin, size_t end, int worker) {
  (void)worker;
  SubmitCtx *c = ctx;
  int now = atomic_fetch_add(&running_chunks, 1) + 1;
  int seen = atomic_load(&max_running_chunks);
  while (now > seen && !atomic_compare_exchange_weak(&max_running_chunks, &seen, now))
    ;
  for (size_t i = begin; i < end; i++)
    c->out[i] += c->base + (int64_t)(i * i);
  atomic_fetch_sub(&running_chunks, 1);
}

static gpointer submit_regions(gpointer arg) {
  int64_t base = GPOINTER_TO_INT(arg);
  enum { N = 4096 };
  int64_t *out = g_new0(int64_t, N);
  gboolean ok = TRUE;
  for (int round = 0; round < 400 && ok; round++) {
    size_t n = 1 + (size_t)(round * 37 % N);
    for (size_t i = 0; i < n; i++)
      out[i] = 0;
    SubmitCtx c = {out, base + round};
    fth_parallel_for(n, 16, fill_squares, &c);
    for (size_t i = 0; i < n; i++)
      ok &= out[i] == base + round + (int64_t)(i * i);
  }
  g_free(out);
  return GINT_TO_POINTER(ok);
}

static void test_thread_pool_two_submitters(void) {
  for (int threads = 1; threads <= 3; threads++) {
    g_assert_cmpint(fth_set_thread_count(threads), ==, FTH_STATUS_OK);
    atomic_store(&max_running_chunks, 0);
    GThread *a = g_thread_new("submit-a", submit_regions, GINT_TO_POINTER(1000));
    GThread *b = g_thread_new("submit-b", submit_regions, GINT_TO_POINTER(2000000));
    g_assert_true(GPOINTER_TO_INT(g_thread_join(a)));
    g_assert_true(GPOINTER_TO_INT(g_thread_join(b)));
    g_assert_cmpint(atomic_load(&max_running_chunks), <=, threads);
    g_assert_cmpint(atomic_load(&max_running_chunks), >=, 1);
  }
  g_assert_cmpint(fth_set_thread_count(2), ==, FTH_STATUS_OK);
}

/* ---- RNG ----------------------------------------------------------------------------------- */

static void test_philox_known_answers(void) {
  /* Random123's kat_vectors for philox4x32-10 */
  uint32_t r[4];
  fth_philox4x32(0, 0, 0, r);
  g_assert_cmphex(r[0], ==, 0x6627e8d5);
  g_assert_cmphex(r[1], ==, 0xe169c58d);
  g_assert_cmphex(r[2], ==, 0xbc57ac4c);
  g_assert_cmphex(r[3], ==, 0x9b00dbd8);
  fth_philox4x32(UINT64_MAX, UINT64_MAX, UINT64_MAX, r);
  g_assert_cmphex(r[0], ==, 0x408f276d);
  g_assert_cmphex(r[1], ==, 0x41c83b0e);
  g_assert_cmphex(r[2], ==, 0xa20bc7c6);
  g_assert_cmphex(r[3], ==, 0x6d5451fd);
  fth_philox4x32(0x299f31d0a4093822ull, 0x0370734413198a2eull, 0x85a308d3243f6a88ull, r);
  g_assert_cmphex(r[0], ==, 0xd16cfe09);
  g_assert_cmphex(r[1], ==, 0x94fdcceb);
  g_assert_cmphex(r[2], ==, 0x5001e420);
  g_assert_cmphex(r[3], ==, 0x24126ea1);
}

typedef struct {
  uint64_t seed;
  float *out;
} RngFill;

static void fill_chunk(void *ctx, size_t begin, size_t end, int worker) {
  (void)worker;
  RngFill *f = ctx;
  for (size_t i = begin; i < end; i++) {
    uint32_t r[4];
    fth_philox4x32(f->seed, 7, i / 4, r);
    f->out[i] = fth_u32_to_unit_float(r[i % 4]);
  }
}

static void test_rng(void) {
  enum { N = 10001 };
  float *a = malloc(N * sizeof *a), *b = malloc(N * sizeof *b);
  FthRng r1, r2;
  fth_rng_init(&r1, test_seed, 7);
  fth_rng_uniform(&r1, a, N, 0.0f, 1.0f);
  g_assert_cmpuint(r1.offset, ==, (N + 3) / 4);
  /* the same numbers computed in parallel chunks, for every thread count */
  for (int t = 1; t <= 3; t++) {
    fth_set_thread_count(t);
    RngFill f = {test_seed, b};
    fth_parallel_for(N, 17, fill_chunk, &f);
    g_assert_cmpmem(a, N * sizeof *a, b, N * sizeof *b);
  }
  fth_set_thread_count(2);
  double mean = 0, var = 0;
  for (int i = 0; i < N; i++)
    mean += a[i] / N;
  g_assert_cmpfloat(fabs(mean - 0.5), <, 0.02);
  /* the state is three integers: saving and restoring it continues the stream */
  fth_rng_init(&r1, test_seed, 3);
  fth_rng_normal(&r1, a, 100, 0.0f, 1.0f);
  FthRng saved = r1;
  fth_rng_normal(&r1, a, N, 1.0f, 2.0f);
  r2 = saved;
  fth_rng_normal(&r2, b, N, 1.0f, 2.0f);
  g_assert_cmpmem(a, N * sizeof *a, b, N * sizeof *b);
  mean = 0;
  for (int i = 0; i < N; i++)
    mean += a[i] / N;
  for (int i = 0; i < N; i++)
    var += (a[i] - mean) * (a[i] - mean) / N;
  g_assert_cmpfloat(fabs(mean - 1.0), <, 0.08);
  g_assert_cmpfloat(fabs(sqrt(var) - 2.0), <, 0.08);
  free(a);
  free(b);
}

/* ---- dtype conversions ----------------------------------------------------------------------- */

/* Reference: nearest bf16 by comparing the two neighbours in double, ties to even. */
static uint16_t ref_bf16(float x) {
  uint32_t u;
  memcpy(&u, &x, 4);
  if (isnan(x))
    return (uint16_t)((u >> 16) | 0x40);
  uint16_t lo = (uint16_t)(u >> 16), hi = (uint16_t)(lo + 1);
  if ((u & 0xFFFF) == 0)
    return lo;
  double dl = fabs((double)x - fth_bf16_to_f32_scalar(lo));
  double dh = fabs((double)x - (isinf(fth_bf16_to_f32_scalar(hi)) ? ldexp(1.0, 128) * (x < 0 ? -1 : 1)
                                                                   : fth_bf16_to_f32_scalar(hi)));
  if (dl < dh)
    return lo;
  if (dh < dl)
    return hi;
  return (lo & 1) ? hi : lo;
}

static float random_float_bits(GRand *rng) {
  uint32_t u = g_rand_int(rng);
  switch (g_rand_int_range(rng, 0, 4)) {
  case 0: u = (u & 0x807FFFFF) | ((uint32_t)g_rand_int_range(rng, 100, 150) << 23); break; /* f16 range */
  case 1: u &= 0x80FFFFFF; break; /* tiny / subnormal */
  case 2: u = (u & 0xFFFF0000) | 0x8000 | (g_rand_boolean(rng) ? 0 : 0x10000); break; /* ties */
  default: break;
  }
  float x;
  memcpy(&x, &u, 4);
  return x;
}

static void test_conversions(void) {
  GRand *rng = g_rand_new_with_seed((guint32)test_seed);
  enum { N = 20000 };
  float *x = malloc(N * sizeof *x), *back = malloc(N * sizeof *back), *back2 = malloc(N * sizeof *back2);
  uint16_t *h = malloc(N * 2), *h2 = malloc(N * 2);
  for (int i = 0; i < N; i++)
    x[i] = random_float_bits(rng);
  x[0] = 65520.0f;   /* rounds to Inf in f16 */
  x[1] = 65519.0f;   /* rounds to 65504 */
  x[2] = 5.9604645e-08f; /* 2^-24: smallest f16 subnormal */
  x[3] = 2.9802322e-08f; /* 2^-25: a tie, rounds to zero */
  x[4] = NAN;
  x[5] = -INFINITY;
  for (int i = 0; i < N; i++) {
    __extension__ typedef _Float16 half_t;
    half_t ref = (half_t)x[i]; /* the compiler's own round-to-nearest-even */
    uint16_t rb;
    memcpy(&rb, &ref, 2);
    uint16_t got = fth_f32_to_f16_scalar(x[i]);
    if (isnan(x[i]))
      g_assert_true(isnan(fth_f16_to_f32_scalar(got)));
    else
      g_assert_cmphex(got, ==, rb);
    g_assert_cmphex(fth_f32_to_bf16_scalar(x[i]), ==, ref_bf16(x[i]));
    if (!isnan(x[i]))
      g_assert_cmpfloat(fth_f16_to_f32_scalar(got), ==, (float)ref);
  }
  g_assert_cmphex(fth_f32_to_f16_scalar(65520.0f), ==, 0x7C00);
  g_assert_cmphex(fth_f32_to_f16_scalar(65519.0f), ==, 0x7BFF);
  g_assert_cmphex(fth_f32_to_f16_scalar(5.9604645e-08f), ==, 0x0001);
  g_assert_cmphex(fth_f32_to_f16_scalar(2.9802322e-08f), ==, 0x0000);
  /* bulk (SIMD when available) equals scalar bit for bit */
  for (int isa = FTH_ISA_SCALAR; isa <= FTH_ISA_AVX512; isa++) {
    fth_cpu_set_isa((FthIsa)isa);
    fth_f32_to_f16(x, h, N);
    fth_f16_to_f32(h, back, N);
    for (int i = 0; i < N; i++) {
      g_assert_cmphex(h[i], ==, fth_f32_to_f16_scalar(x[i]));
      float s = fth_f16_to_f32_scalar(h[i]);
      g_assert_cmpmem(&back[i], 4, &s, 4);
    }
    fth_f32_to_bf16(x, h2, N);
    fth_bf16_to_f32(h2, back2, N);
    for (int i = 0; i < N; i++) {
      g_assert_cmphex(h2[i], ==, fth_f32_to_bf16_scalar(x[i]));
      float s = fth_bf16_to_f32_scalar(h2[i]);
      g_assert_cmpmem(&back2[i], 4, &s, 4);
    }
  }
  fth_cpu_set_isa(FTH_ISA_AVX512);
  /* tensor copy converts, strided and contiguous */
  FthTensor a, b, c;
  g_assert_cmpint(fth_tensor_init(&a, FTH_F32, 2, (int64_t[]){3, 5}), ==, FTH_STATUS_OK);
  g_assert_cmpint(fth_tensor_init(&b, FTH_BF16, 2, (int64_t[]){3, 5}), ==, FTH_STATUS_OK);
  g_assert_cmpint(fth_tensor_init(&c, FTH_F32, 2, (int64_t[]){5, 3}), ==, FTH_STATUS_OK);
  for (int i = 0; i < 15; i++)
    ((float *)a.data)[i] = x[i + 10];
  g_assert_cmpint(fth_tensor_copy(&b, &a), ==, FTH_STATUS_OK);
  for (int i = 0; i < 15; i++)
    g_assert_cmphex(((uint16_t *)b.data)[i], ==, fth_f32_to_bf16_scalar(x[i + 10]));
  FthTensor at = a; /* a transposed view */
  at.shape[0] = 5;
  at.shape[1] = 3;
  at.strides[0] = 1;
  at.strides[1] = 5;
  g_assert_cmpint(fth_tensor_copy(&c, &at), ==, FTH_STATUS_OK);
  for (int i = 0; i < 5; i++)
    for (int j = 0; j < 3; j++)
      g_assert_cmpmem(&((float *)c.data)[i * 3 + j], 4, &((float *)a.data)[j * 5 + i], 4); /* NaN too */
  g_assert_cmpint(fth_tensor_copy(&c, &a), ==, FTH_STATUS_SHAPE_MISMATCH);
  fth_tensor_free(&a);
  fth_tensor_free(&b);
  fth_tensor_free(&c);
  free(x);
  free(back);
  free(back2);
  free(h);
  free(h2);
  g_rand_free(rng);
}

/* ---- SIMD kernels against scalar ------------------------------------------------------------ */

static void test_simd_equals_scalar(void) {
  if (fth_cpu_isa() == FTH_ISA_SCALAR) {
    g_test_skip("no AVX2 or AVX-512 on this CPU");
    return;
  }
  GRand *rng = g_rand_new_with_seed((guint32)test_seed + 1);
  static const size_t sizes[] = {1, 7, 15, 16, 17, 33, 100, 1023};
  for (int isa = FTH_ISA_AVX2; isa <= FTH_ISA_AVX512; isa++) {
    fth_cpu_set_isa((FthIsa)isa);
    for (size_t si = 0; si < G_N_ELEMENTS(sizes); si++) {
      size_t n = sizes[si];
      float *a = malloc(n * 4), *b = malloc(n * 4), *y = malloc(n * 4), *r = malloc(n * 4);
      for (size_t i = 0; i < n; i++) {
        a[i] = (float)g_rand_double_range(rng, -10, 10);
        b[i] = (float)g_rand_double_range(rng, -10, 10);
      }
      fth_k_add(a, b, y, n);
      fth_k_add_scalar(a, b, r, n);
      g_assert_cmpmem(y, n * 4, r, n * 4);
      fth_k_mul(a, b, y, n);
      fth_k_mul_scalar(a, b, r, n);
      g_assert_cmpmem(y, n * 4, r, n * 4);
      fth_k_relu(a, y, n);
      fth_k_relu_scalar(a, r, n);
      g_assert_cmpmem(y, n * 4, r, n * 4);
      memcpy(y, a, n * 4);
      memcpy(r, a, n * 4);
      fth_k_bias_act(y, b, 1, n, 1);
      fth_k_bias_act_scalar(r, b, 1, n, 1);
      g_assert_cmpmem(y, n * 4, r, n * 4);
      struct {
        void (*simd)(const float *, float *, size_t);
        void (*scalar)(const float *, float *, size_t);
      } un[] = {{fth_k_sigmoid, fth_k_sigmoid_scalar}, {fth_k_silu, fth_k_silu_scalar},
                {fth_k_tanh, fth_k_tanh_scalar}};
      for (size_t k = 0; k < G_N_ELEMENTS(un); k++) {
        un[k].simd(a, y, n);
        un[k].scalar(a, r, n);
        for (size_t i = 0; i < n; i++)
          g_assert_cmpfloat(fabsf(y[i] - r[i]), <=, 2e-6f * (1.0f + fabsf(r[i])));
      }
      for (int form = 0; form < 2; form++) {
        fth_k_gelu(a, y, n, form);
        fth_k_gelu_scalar(a, r, n, form);
        for (size_t i = 0; i < n; i++)
          g_assert_cmpfloat(fabsf(y[i] - r[i]), <=, 2e-6f * (1.0f + fabsf(r[i])));
      }
      /* gradients: dy = b, the saved value a (an output in (-1, 1) for sigmoid and tanh) */
      float *sat = malloc(n * 4);
      for (size_t i = 0; i < n; i++)
        sat[i] = a[i] / 10.0f;
      struct {
        void (*simd)(const float *, const float *, float *, size_t);
        void (*scalar)(const float *, const float *, float *, size_t);
        const float *saved;
      } gr[] = {{fth_k_relu_grad, fth_k_relu_grad_scalar, a}, {fth_k_sigmoid_grad, fth_k_sigmoid_grad_scalar, sat},
                {fth_k_tanh_grad, fth_k_tanh_grad_scalar, sat}, {fth_k_silu_grad, fth_k_silu_grad_scalar, a}};
      for (size_t k = 0; k < G_N_ELEMENTS(gr); k++) {
        gr[k].simd(b, gr[k].saved, y, n);
        gr[k].scalar(b, gr[k].saved, r, n);
        for (size_t i = 0; i < n; i++)
          g_assert_cmpfloat(fabsf(y[i] - r[i]), <=, 2e-6f * (1.0f + fabsf(r[i])));
      }
      for (int form = 0; form < 2; form++) {
        fth_k_gelu_grad(b, a, y, n, form);
        fth_k_gelu_grad_scalar(b, a, r, n, form);
        for (size_t i = 0; i < n; i++)
          /* both forms hold 1 - tanh^2 or erf terms whose float rounding scales with dy * x^2 */
          g_assert_cmpfloat(fabsf(y[i] - r[i]), <=, 2e-6f * (1.0f + fabsf(r[i])) + 2e-7f * fabsf(b[i]) * (1.0f + a[i] * a[i]));
      }
      free(sat);
      size_t rows = n > 3 ? 3 : 1, cols = n / rows;
      fth_k_softmax_rows(a, y, rows, cols);
      fth_k_softmax_rows_scalar(a, r, rows, cols);
      for (size_t i = 0; i < rows * cols; i++)
        g_assert_cmpfloat(fabsf(y[i] - r[i]), <=, 2e-6f * (1.0f + fabsf(r[i])));
      fth_k_log_softmax_rows(a, y, rows, cols);
      fth_k_log_softmax_rows_scalar(a, r, rows, cols);
      for (size_t i = 0; i < rows * cols; i++)
        g_assert_cmpfloat(fabsf(y[i] - r[i]), <=, 2e-6f * (1.0f + fabsf(r[i])));
      free(a);
      free(b);
      free(y);
      free(r);
    }
  }
  fth_cpu_set_isa(FTH_ISA_AVX512);
  g_rand_free(rng);
}

/* Strided copies (the transpose op's kernel) for every permutation of a 4-D tensor, sizes that
 * are not tile multiples, f32 and a 2-byte type, element by element against the index formula. */
static void test_copy_permuted(void) {
  GRand *rng = g_rand_new_with_seed((guint32)test_seed + 3);
  int64_t shape[4] = {g_rand_int_range(rng, 1, 5), g_rand_int_range(rng, 20, 70), g_rand_int_range(rng, 1, 4),
                      g_rand_int_range(rng, 30, 50)};
  for (int type = 0; type < 2; type++) {
    FthDType dt = type ? FTH_BF16 : FTH_F32;
    FthTensor x;
    g_assert_cmpint(fth_tensor_init(&x, dt, 4, shape), ==, FTH_STATUS_OK);
    size_t n = (size_t)fth_tensor_numel(&x), es = fth_dtype_size(dt);
    for (size_t i = 0; i < n * es; i++)
      ((unsigned char *)x.data)[i] = (unsigned char)g_rand_int(rng);
    for (int p = 0; p < 24; p++) {
      int perm[4], avail[4] = {0, 1, 2, 3}, code = p;
      for (int i = 0; i < 4; i++) { /* the p-th permutation in factorial order */
        int f = 1;
        for (int k = 1; k < 4 - i; k++)
          f *= k;
        int pick = code / f;
        code %= f;
        perm[i] = avail[pick];
        for (int k = pick; k < 3 - i; k++)
          avail[k] = avail[k + 1];
      }
      FthTensor view = x, y;
      int64_t yshape[4];
      for (int i = 0; i < 4; i++) {
        view.shape[i] = yshape[i] = x.shape[perm[i]];
        view.strides[i] = x.strides[perm[i]];
      }
      g_assert_cmpint(fth_tensor_init(&y, dt, 4, yshape), ==, FTH_STATUS_OK);
      g_assert_cmpint(fth_tensor_copy(&y, &view), ==, FTH_STATUS_OK);
      for (int64_t i0 = 0; i0 < yshape[0]; i0++)
        for (int64_t i1 = 0; i1 < yshape[1]; i1++)
          for (int64_t i2 = 0; i2 < yshape[2]; i2++)
            for (int64_t i3 = 0; i3 < yshape[3]; i3++) {
              int64_t yo = ((i0 * yshape[1] + i1) * yshape[2] + i2) * yshape[3] + i3;
              int64_t xo = i0 * view.strides[0] + i1 * view.strides[1] + i2 * view.strides[2] + i3 * view.strides[3];
              if (memcmp((char *)y.data + yo * (int64_t)es, (char *)x.data + xo * (int64_t)es, es) != 0)
                g_error("copy with perm %d%d%d%d (%s): element %lld differs", perm[0], perm[1], perm[2], perm[3],
                        fth_dtype_name(dt), (long long)yo);
            }
      fth_tensor_free(&y);
    }
    fth_tensor_free(&x);
  }
  g_rand_free(rng);
}

/* bf16 GEMM: every transpose combination and ragged sizes (odd k, column tails, rows below the
 * micro-kernel's 8), against a float64 product of the bf16-rounded inputs; column ranges packed
 * and multiplied separately, as the threads do. */
static void test_gemm_bf16(void) {
  if (!fth_gemm_bf16_available()) {
    g_test_skip("no AVX512_BF16 on this CPU");
    return;
  }
  GRand *rng = g_rand_new_with_seed((guint32)test_seed + 2);
  for (int trial = 0; trial < 60; trial++) {
    bool ta = trial & 1, tb = trial & 2;
    int m = g_rand_int_range(rng, 1, 20), n = g_rand_int_range(rng, 1, 70), k = g_rand_int_range(rng, 1, 80);
    if (trial == 0)
      m = 64, n = 100, k = 97;
    int lda = (ta ? m : k) + g_rand_int_range(rng, 0, 3), ldb = (tb ? k : n) + g_rand_int_range(rng, 0, 3);
    int ldc = n + g_rand_int_range(rng, 0, 3);
    float *a = g_new(float, (size_t)lda * (size_t)(ta ? k : m)), *b = g_new(float, (size_t)ldb * (size_t)(tb ? n : k));
    float *c = g_new(float, (size_t)ldc * (size_t)m);
    for (int i = 0; i < lda * (ta ? k : m); i++)
      a[i] = (float)g_rand_double_range(rng, -2, 2);
    for (int i = 0; i < ldb * (tb ? n : k); i++)
      b[i] = (float)g_rand_double_range(rng, -2, 2);
    uint32_t *pa = g_malloc(fth_gemm_bf16_pack_a_bytes(m, k)), *pb = g_malloc(fth_gemm_bf16_pack_b_bytes(k, n));
    fth_gemm_bf16_pack_a(ta, m, k, a, lda, pa);
    int split = (g_rand_int_range(rng, 0, n) / 16) * 16; /* two column ranges */
    fth_gemm_bf16_pack_b(tb, k, n, split, n, b, ldb, pb);
    fth_gemm_bf16_packed(m, n, k, split, n, pa, pb, c, ldc);
    if (split > 0) {
      fth_gemm_bf16_pack_b(tb, k, n, 0, split, b, ldb, pb);
      fth_gemm_bf16_packed(m, n, k, 0, split, pa, pb, c, ldc);
    }
    for (int i = 0; i < m; i++)
      for (int j = 0; j < n; j++) {
        double want = 0, mag = 0;
        for (int p = 0; p < k; p++) {
          double av = fth_bf16_to_f32_scalar(fth_f32_to_bf16_scalar(ta ? a[p * lda + i] : a[i * lda + p]));
          double bv = fth_bf16_to_f32_scalar(fth_f32_to_bf16_scalar(tb ? b[j * ldb + p] : b[p * ldb + j]));
          want += av * bv;
          mag += fabs(av * bv);
        }
        double got = c[i * ldc + j];
        if (fabs(got - want) > 1e-6 * (1 + mag))
          g_error("bf16 gemm ta %d tb %d m %d n %d k %d at (%d, %d): %.7g, want %.7g", ta, tb, m, n, k, i, j, got,
                  want);
      }
    g_free(a);
    g_free(b);
    g_free(c);
    g_free(pa);
    g_free(pb);
  }
  g_rand_free(rng);
}

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, NULL);
  const char *env = g_getenv("FTH_TEST_SEED");
  test_seed = env ? g_ascii_strtoull(env, NULL, 10) : (guint64)g_get_real_time();
  g_print("# FTH_TEST_SEED=%" G_GUINT64_FORMAT "\n", test_seed);
  g_test_add_func("/core/allocator-failure", test_allocator_failure);
  g_test_add_func("/core/arena", test_arena);
  g_test_add_func("/core/thread-pool", test_thread_pool);
  g_test_add_func("/core/thread-pool-grain", test_thread_pool_grain);
  g_test_add_func("/core/thread-pool-two-submitters", test_thread_pool_two_submitters);
  g_test_add_func("/core/thread-pool-lag-guard", test_thread_pool_lag_guard);
  g_test_add_func("/core/philox-known-answers", test_philox_known_answers);
  g_test_add_func("/core/rng", test_rng);
  g_test_add_func("/core/conversions", test_conversions);
  g_test_add_func("/core/simd-equals-scalar", test_simd_equals_scalar);
  g_test_add_func("/core/gemm-bf16", test_gemm_bf16);
  g_test_add_func("/core/copy-permuted", test_copy_permuted);
  return g_test_run();
}
