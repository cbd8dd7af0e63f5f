/* The process-wide intra-op thread pool. The caller of fth_parallel_for is worker 0 and the pool
 * threads are workers 1..n-1.
 *
 * A region is published as one 64-bit word (generation, next chunk, chunk count); a thread claims
 * a chunk with a compare-and-swap on that word, so a worker that wakes up late can never claim a
 * chunk of a region that has ended or run a newer region's function with an old index. The
 * caller runs chunks itself and then waits only for chunks that others have claimed, never for
 * sleeping or descheduled workers to check in. Work too small for two chunks runs on the caller
 * without touching the pool at all. Idle workers spin briefly (back-to-back kernels of one step
 * then cost no wake-up), then sleep on a futex; the caller issues the wake-up system call only
 * when some worker sleeps. Callers on different threads take turns (one region at a time, serial
 * ones included), so two jobs never put more than fth_thread_count() threads to work.
 *
 * Lag guard: on an oversubscribed machine a worker that claimed a chunk may wait milliseconds for
 * a core while the caller waits for it, which makes every region slower than running alone.
 * After LAG_STRIKES regions in a row where the caller waited longer than LAG_WAIT_NS and longer
 * than its own share took, the next regions run on the caller alone (chunk by chunk, so the
 * results stay bit-identical); the serial span doubles while the lag persists and halves when a
 * probe region runs without it. */
#include <fathom/core.h>

#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 256
#define MAX_CHUNKS_PER_THREAD 4
#define WORKER_SPIN 20000  /* pause instructions before a worker sleeps (~0.3 ms on Zen 4) */
#define CALLER_SPIN 2000   /* pause instructions before a waiting caller yields its core */
#define LAG_WAIT_NS 50000  /* a wait this long is several times a worker hand-off */
#define LAG_STRIKES 3
#define LAG_SPAN_MIN 16
#define LAG_SPAN_MAX 4096

/* state word: generation (32 bits) | next chunk (16) | chunk count (16) */
#define STATE(gen, next, total) (((uint64_t)(gen) << 32) | ((uint64_t)(next) << 16) | (uint64_t)(total))
#define STATE_GEN(s) ((unsigned)((s) >> 32))
#define STATE_NEXT(s) ((unsigned)(((s) >> 16) & 0xffff))
#define STATE_TOTAL(s) ((unsigned)((s)&0xffff))

static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t region_lock = PTHREAD_MUTEX_INITIALIZER; /* one region at a time */

static int n_threads; /* 0: not created yet */
static pthread_t workers[MAX_THREADS];

/* The published region; written only by the caller holding region_lock, before it publishes. */
static FthParallelFn region_fn;
static void *region_ctx;
static size_t region_n, region_chunks;

static _Atomic uint64_t state;
static atomic_uint generation; /* the futex word: changes with every region and at shutdown */
static atomic_uint chunks_done;
static atomic_int sleepers;
static atomic_bool stopping;
static _Thread_local bool in_region;

/* lag guard state, under region_lock */
static unsigned lag_strikes, lag_span = LAG_SPAN_MIN, serial_left;

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Called after each parallel region with the caller's own time and its wait for the workers. */
static void lag_update(int64_t own_ns, int64_t wait_ns) {
  if (wait_ns > LAG_WAIT_NS && wait_ns > own_ns) {
    if (++lag_strikes >= LAG_STRIKES) {
      serial_left = lag_span;
      lag_span = lag_span * 2 < LAG_SPAN_MAX ? lag_span * 2 : LAG_SPAN_MAX;
      lag_strikes = 0;
    }
    return;
  }
  lag_strikes = 0;
  lag_span = lag_span / 2 > LAG_SPAN_MIN ? lag_span / 2 : LAG_SPAN_MIN;
}

static void futex_wait(atomic_uint *word, unsigned expected) {
  syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
}

static void futex_wake_all(atomic_uint *word) {
  syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

static void run_chunk(unsigned c, int worker) {
  /* even split: every chunk holds floor or ceil of n / chunks items, so none is under the grain */
  size_t begin = (size_t)c * region_n / region_chunks, end = (size_t)(c + 1) * region_n / region_chunks;
  region_fn(region_ctx, begin, end, worker);
}

/* Claims and runs chunks of region `gen` until none is left. */
static void run_chunks(unsigned gen, int worker) {
  uint64_t s = atomic_load_explicit(&state, memory_order_acquire);
  for (;;) {
    if (STATE_GEN(s) != gen || STATE_NEXT(s) >= STATE_TOTAL(s))
      return;
    if (!atomic_compare_exchange_weak_explicit(&state, &s, s + (1u << 16), memory_order_acquire,
                                               memory_order_acquire))
      continue;
    run_chunk(STATE_NEXT(s), worker);
    atomic_fetch_add_explicit(&chunks_done, 1, memory_order_release);
    s = atomic_load_explicit(&state, memory_order_acquire);
  }
}

static void *worker_main(void *arg) {
  int worker = (int)(intptr_t)arg;
  unsigned seen = STATE_GEN(atomic_load(&state));
  in_region = true;
  for (;;) {
    unsigned now = seen;
    for (int spin = 0; spin < WORKER_SPIN && now == seen; spin++) {
      __builtin_ia32_pause();
      now = atomic_load_explicit(&generation, memory_order_acquire);
    }
    if (now == seen) {
      /* announce the sleep before the last check; the publisher stores the generation before
       * it reads `sleepers`, so one of the two sees the other */
      atomic_fetch_add(&sleepers, 1);
      while ((now = atomic_load(&generation)) == seen)
        futex_wait(&generation, seen);
      atomic_fetch_sub(&sleepers, 1);
    }
    if (atomic_load(&stopping))
      return NULL;
    seen = now;
    run_chunks(now, worker);
  }
}

static void stop_workers(void) {
  atomic_store(&stopping, true);
  atomic_fetch_add(&generation, 1);
  futex_wake_all(&generation);
  for (int i = 1; i < n_threads; i++)
    pthread_join(workers[i], NULL);
  atomic_store(&stopping, false);
  n_threads = 0;
}

static int start_workers(int n) {
  /* workers start from the current state, so they never mistake an old region for a new one */
  atomic_store(&state, STATE(atomic_load(&generation), 0, 0));
  int started = 1;
  for (int i = 1; i < n; i++) {
    if (pthread_create(&workers[i], NULL, worker_main, (void *)(intptr_t)i) != 0)
      break;
    started++;
  }
  return started;
}

static int default_thread_count(void) {
  const char *env = getenv("FTH_NUM_THREADS");
  long n = env ? strtol(env, NULL, 10) : 0;
  if (n < 1)
    n = sysconf(_SC_NPROCESSORS_ONLN);
  if (n < 1)
    n = 1;
  return n > MAX_THREADS ? MAX_THREADS : (int)n;
}

static void ensure_pool(void) {
  pthread_mutex_lock(&init_lock);
  if (n_threads == 0)
    n_threads = start_workers(default_thread_count());
  pthread_mutex_unlock(&init_lock);
}

int fth_thread_count(void) {
  ensure_pool();
  return n_threads;
}

FthStatus fth_set_thread_count(int n) {
  if (n < 1 || n > MAX_THREADS)
    return fth_error(FTH_STATUS_INVALID_ARGUMENT, "thread count %d outside 1..%d", n, MAX_THREADS);
  if (in_region)
    return fth_error(FTH_STATUS_BAD_STATE, "thread count changed inside a parallel region");
  pthread_mutex_lock(&region_lock);
  pthread_mutex_lock(&init_lock);
  if (n_threads)
    stop_workers();
  n_threads = start_workers(n);
  lag_strikes = serial_left = 0;
  lag_span = LAG_SPAN_MIN;
  int got = n_threads;
  pthread_mutex_unlock(&init_lock);
  pthread_mutex_unlock(&region_lock);
  if (got != n)
    return fth_error(FTH_STATUS_NO_MEMORY, "started %d of %d threads", got, n);
  return FTH_STATUS_OK;
}

bool fth_in_parallel_region(void) {
  return in_region;
}

size_t fth_parallel_chunks(size_t n, size_t grain, int threads) {
  if (n == 0)
    return 0;
  if (grain == 0)
    grain = 1;
  size_t chunks = n / grain; /* every chunk holds at least `grain` items */
  size_t cap = (size_t)(threads < 1 ? 1 : threads) * MAX_CHUNKS_PER_THREAD;
  if (chunks > cap)
    chunks = cap;
  return chunks < 1 ? 1 : chunks;
}

/* The whole range on the calling thread, which counts as being in a region meanwhile. */
static void run_serial(FthParallelFn fn, void *ctx, size_t n) {
  bool was = in_region;
  in_region = true;
  fn(ctx, 0, n, 0);
  in_region = was;
}

void fth_parallel_for(size_t n, size_t grain, FthParallelFn fn, void *ctx) {
  if (n == 0)
    return;
  if (in_region) {
    run_serial(fn, ctx, n);
    return;
  }
  ensure_pool();
  /* serial work takes the pool too, so two jobs' kernels never run more threads than it has */
  pthread_mutex_lock(&region_lock);
  size_t chunks = fth_parallel_chunks(n, grain, n_threads);
  if (chunks <= 1 || n_threads <= 1) {
    run_serial(fn, ctx, n);
    pthread_mutex_unlock(&region_lock);
    return;
  }
  if (serial_left > 0) {
    /* the same chunk boundaries as a parallel run, so results do not depend on the guard */
    serial_left--;
    in_region = true;
    for (size_t c = 0; c < chunks; c++)
      fn(ctx, c * n / chunks, (c + 1) * n / chunks, 0);
    in_region = false;
    pthread_mutex_unlock(&region_lock);
    return;
  }
  region_fn = fn;
  region_ctx = ctx;
  region_n = n;
  region_chunks = chunks;
  unsigned total = (unsigned)chunks;
  unsigned gen = atomic_load_explicit(&generation, memory_order_relaxed) + 1;
  atomic_store_explicit(&chunks_done, 0, memory_order_relaxed);
  atomic_store_explicit(&state, STATE(gen, 0, total), memory_order_release);
  atomic_store(&generation, gen);
  if (atomic_load(&sleepers) > 0)
    futex_wake_all(&generation);

  int64_t t0 = now_ns();
  in_region = true;
  run_chunks(gen, 0);
  in_region = false;
  int64_t t1 = now_ns(), t2 = t1;
  for (int spin = 0; atomic_load_explicit(&chunks_done, memory_order_acquire) < total; spin++) {
    if (spin < CALLER_SPIN)
      __builtin_ia32_pause();
    else
      sched_yield(); /* a claimed chunk is still running on a worker that may lack a core */
    if (spin == CALLER_SPIN)
      t2 = -1; /* waited past the spin: read the clock at the end */
  }
  if (t2 < 0)
    t2 = now_ns();
  lag_update(t1 - t0, t2 - t1);
  pthread_mutex_unlock(&region_lock);
}
