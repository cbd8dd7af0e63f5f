/* Fathom engine core: status codes, the allocator hook, arenas, the intra-op thread pool and the
 * counter-based RNG. Plain C; no GLib. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Status codes and the thread-local last-error message ---------------------------------- */

typedef enum {
  FTH_STATUS_OK = 0,
  FTH_STATUS_INVALID_ARGUMENT, /* a bad value passed by the caller */
  FTH_STATUS_SHAPE_MISMATCH,   /* shapes or dtypes of an op's inputs do not fit together */
  FTH_STATUS_NO_MEMORY,        /* the allocator returned NULL */
  FTH_STATUS_UNSUPPORTED,      /* valid request the engine does not implement (dtype, backend) */
  FTH_STATUS_BAD_STATE,        /* call out of order (run before plan, batch above the maximum) */
  FTH_STATUS_IO_ERROR,
  FTH_STATUS_NUMERIC,          /* NaN or Inf where a finite value is required */
  FTH_STATUS_INTERNAL,
} FthStatus;

const char *fth_status_name(FthStatus status);

/* Message of the most recent failure on this thread ("" when none). Valid until the next call
 * into the engine on this thread. */
const char *fth_last_error(void);

/* Records a message for the calling thread and returns `status`, so error paths read
 * `return fth_error(FTH_STATUS_SHAPE_MISMATCH, "matmul: %d != %d", k1, k2);`. */
FthStatus fth_error(FthStatus status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void fth_clear_error(void);

/* ---- Allocator hook --------------------------------------------------------------------------
 * Every byte the engine allocates goes through these three functions. aligned_alloc_fn's
 * result is released with free_fn as well. NULL from any of them surfaces as
 * FTH_STATUS_NO_MEMORY. Set it before building graphs; memory must be freed by the allocator
 * that made it. */
typedef struct {
  void *(*malloc_fn)(size_t size, void *user);
  void *(*aligned_alloc_fn)(size_t alignment, size_t size, void *user);
  void (*free_fn)(void *ptr, void *user);
  void *user;
} FthAllocator;

/* NULL restores the default (malloc, posix_memalign, free). */
void fth_set_allocator(const FthAllocator *allocator);

void *fth_malloc(size_t size);                       /* sets NO_MEMORY message on failure */
void *fth_calloc(size_t count, size_t size);         /* overflow-checked, zeroed */
void *fth_aligned_alloc(size_t alignment, size_t size); /* alignment: power of two */
void *fth_realloc(void *ptr, size_t old_size, size_t new_size); /* keeps ptr on failure */
char *fth_strdup(const char *s);
void fth_free(void *ptr);

#define FTH_ALIGNMENT 64 /* tensor data alignment: one cache line, one AVX-512 register */

/* ---- Arena: a bump allocator released all at once --------------------------------------- */
typedef struct FthArena FthArena;

FthArena *fth_arena_new(size_t block_size);
void *fth_arena_alloc(FthArena *arena, size_t size, size_t alignment);
size_t fth_arena_used(const FthArena *arena);
void fth_arena_reset(FthArena *arena); /* keeps the first block, drops the rest */
void fth_arena_free(FthArena *arena);

/* ---- Intra-op thread pool ------------------------------------------------------------------
 * One process-wide pool, created on first use and sized to the cores (FTH_NUM_THREADS
 * overrides). fn(ctx, begin, end, worker) is called on disjoint chunks covering [0, n); worker
 * is in [0, fth_thread_count()) and unique among concurrently running chunks, so kernels can
 * index per-worker scratch by it. A call from inside a parallel region runs serially on the
 * calling thread, and calls from two threads take turns, so the cores are never
 * oversubscribed (fn must therefore not wait for another thread that calls into the pool).
 * `grain`: the fewest items a chunk may hold; work under two grains runs on the calling thread
 * without waking the pool, so pick it as the items worth ~10 us of work. Chunk boundaries depend
 * only on n, grain and the thread count, never on timing, so results are reproducible. */
typedef void (*FthParallelFn)(void *ctx, size_t begin, size_t end, int worker);

void fth_parallel_for(size_t n, size_t grain, FthParallelFn fn, void *ctx);
/* How many chunks fth_parallel_for(n, grain, ...) makes with `threads` threads (1: serial). */
size_t fth_parallel_chunks(size_t n, size_t grain, int threads);
int fth_thread_count(void);
/* Resizes the pool (n >= 1); call while no parallel region runs. */
FthStatus fth_set_thread_count(int n);
/* True on a pool worker, or on the caller while it runs a parallel region. */
bool fth_in_parallel_region(void);

/* ---- Counter-based RNG: Philox4x32-10 ------------------------------------------------------
 * Random number k of a stream is a pure function of (seed, stream, k), so results do not depend
 * on how work is split over threads, and the whole state is three integers that a checkpoint
 * saves. */
typedef struct {
  uint64_t seed;
  uint64_t stream;
  uint64_t offset; /* counter of the next unused 4-number block */
} FthRng;

void fth_rng_init(FthRng *rng, uint64_t seed, uint64_t stream);

/* One Philox4x32-10 block: key = seed, counter = (block, stream). */
void fth_philox4x32(uint64_t seed, uint64_t stream, uint64_t block, uint32_t out[4]);

/* Uniform float in [0, 1) made from the top 24 bits of a 32-bit random number. */
static inline float fth_u32_to_unit_float(uint32_t x) {
  return (float)(x >> 8) * (1.0f / 16777216.0f);
}

/* Fill n values; element i comes from block offset + i / 4 (normal: Box-Muller on the block's
 * two pairs), then rng->offset advances past the blocks used. */
void fth_rng_uniform(FthRng *rng, float *out, size_t n, float lo, float hi);
void fth_rng_normal(FthRng *rng, float *out, size_t n, float mean, float std);
uint32_t fth_rng_u32(FthRng *rng); /* uses (and consumes) one whole block */

#ifdef __cplusplus
}
#endif
