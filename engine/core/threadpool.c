/* The process-wide intra-op thread pool. The caller of fth_parallel_for is worker 0 and the pool
 * threads are workers 1..n-1; chunks are handed out through an atomic counter. Workers spin
 * briefly before sleeping so back-to-back small kernels (batch-1 inference) do not pay a
 * futex wake-up each. */
#include <fathom/core.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#define MAX_THREADS 256
#define SPIN_ITERATIONS 20000

typedef struct {
  FthParallelFn fn;
  void *ctx;
  size_t n, chunk, n_chunks;
  atomic_size_t next_chunk;
  atomic_int pending; /* workers that have not finished this region */
} Region;

static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t region_lock = PTHREAD_MUTEX_INITIALIZER; /* one region at a time */
static pthread_mutex_t wake_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake_cond = PTHREAD_COND_INITIALIZER;
static pthread_cond_t done_cond = PTHREAD_COND_INITIALIZER;

static int n_threads; /* 0: not created yet */
static pthread_t workers[MAX_THREADS];
static atomic_uint generation;
/* The generation at pool creation: a worker that starts running after the first region was
 * published must not mistake that region for the one it already saw. */
static unsigned start_generation;
static atomic_bool stopping;
static Region region;
static _Thread_local bool in_region;

static void run_chunks(int worker) {
  for (;;) {
    size_t c = atomic_fetch_add_explicit(&region.next_chunk, 1, memory_order_relaxed);
    if (c >= region.n_chunks)
      break;
    size_t begin = c * region.chunk;
    size_t end = begin + region.chunk < region.n ? begin + region.chunk : region.n;
    region.fn(region.ctx, begin, end, worker);
  }
}

static void *worker_main(void *arg) {
  int worker = (int)(intptr_t)arg;
  unsigned seen = start_generation;
  in_region = true;
  for (;;) {
    unsigned now = seen;
    for (int spin = 0; spin < SPIN_ITERATIONS; spin++) {
      now = atomic_load_explicit(&generation, memory_order_acquire);
      if (now != seen)
        break;
      __builtin_ia32_pause();
    }
    if (now == seen) {
      pthread_mutex_lock(&wake_lock);
      while ((now = atomic_load(&generation)) == seen && !atomic_load(&stopping))
        pthread_cond_wait(&wake_cond, &wake_lock);
      pthread_mutex_unlock(&wake_lock);
    }
    if (atomic_load(&stopping))
      return NULL;
    seen = now;
    run_chunks(worker);
    if (atomic_fetch_sub_explicit(&region.pending, 1, memory_order_acq_rel) == 1) {
      pthread_mutex_lock(&wake_lock);
      pthread_cond_signal(&done_cond);
      pthread_mutex_unlock(&wake_lock);
    }
  }
}

static void stop_workers(void) {
  pthread_mutex_lock(&wake_lock);
  atomic_store(&stopping, true);
  pthread_cond_broadcast(&wake_cond);
  pthread_mutex_unlock(&wake_lock);
  for (int i = 1; i < n_threads; i++)
    pthread_join(workers[i], NULL);
  atomic_store(&stopping, false);
  n_threads = 0;
}

static int start_workers(int n) {
  start_generation = atomic_load(&generation);
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
  if (grain == 0)
    grain = 1;
  if (in_region || n <= grain) {
    run_serial(fn, ctx, n);
    return;
  }
  ensure_pool();
  pthread_mutex_lock(&region_lock);
  int nt = n_threads;
  if (nt <= 1) {
    pthread_mutex_unlock(&region_lock);
    run_serial(fn, ctx, n);
    return;
  }
  /* about four chunks per thread balance uneven chunks without much counter traffic */
  size_t chunk = (n + (size_t)nt * 4 - 1) / ((size_t)nt * 4);
  if (chunk < grain)
    chunk = grain;
  region.fn = fn;
  region.ctx = ctx;
  region.n = n;
  region.chunk = chunk;
  region.n_chunks = (n + chunk - 1) / chunk;
  atomic_store(&region.next_chunk, 0);
  atomic_store(&region.pending, nt - 1);
  pthread_mutex_lock(&wake_lock);
  atomic_fetch_add_explicit(&generation, 1, memory_order_release);
  pthread_cond_broadcast(&wake_cond);
  pthread_mutex_unlock(&wake_lock);

  in_region = true;
  run_chunks(0);
  in_region = false;
  for (int spin = 0; spin < SPIN_ITERATIONS && atomic_load(&region.pending) > 0; spin++)
    __builtin_ia32_pause();
  if (atomic_load(&region.pending) > 0) {
    pthread_mutex_lock(&wake_lock);
    while (atomic_load(&region.pending) > 0)
      pthread_cond_wait(&done_cond, &wake_lock);
    pthread_mutex_unlock(&wake_lock);
  }
  pthread_mutex_unlock(&region_lock);
}
