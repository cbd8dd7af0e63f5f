/* The allocator hook every engine allocation goes through. */
#include <fathom/core.h>

#include <stdlib.h>
#include <string.h>

static void *default_malloc(size_t size, void *user) {
  (void)user;
  return malloc(size);
}

static void *default_aligned_alloc(size_t alignment, size_t size, void *user) {
  (void)user;
  void *p = NULL;
  if (posix_memalign(&p, alignment < sizeof(void *) ? sizeof(void *) : alignment, size) != 0)
    return NULL;
  return p;
}

static void default_free(void *ptr, void *user) {
  (void)user;
  free(ptr);
}

static FthAllocator current = {default_malloc, default_aligned_alloc, default_free, NULL};

void fth_set_allocator(const FthAllocator *allocator) {
  if (allocator && allocator->malloc_fn && allocator->aligned_alloc_fn && allocator->free_fn)
    current = *allocator;
  else
    current = (FthAllocator){default_malloc, default_aligned_alloc, default_free, NULL};
}

void *fth_malloc(size_t size) {
  void *p = current.malloc_fn(size ? size : 1, current.user);
  if (!p)
    fth_error(FTH_STATUS_NO_MEMORY, "out of memory allocating %zu bytes", size);
  return p;
}

void *fth_calloc(size_t count, size_t size) {
  if (size && count > SIZE_MAX / size) {
    fth_error(FTH_STATUS_NO_MEMORY, "allocation of %zu x %zu bytes overflows", count, size);
    return NULL;
  }
  void *p = fth_malloc(count * size);
  if (p)
    memset(p, 0, count * size);
  return p;
}

void *fth_aligned_alloc(size_t alignment, size_t size) {
  void *p = current.aligned_alloc_fn(alignment, size ? size : 1, current.user);
  if (!p)
    fth_error(FTH_STATUS_NO_MEMORY, "out of memory allocating %zu bytes", size);
  return p;
}

void *fth_realloc(void *ptr, size_t old_size, size_t new_size) {
  void *p = fth_malloc(new_size);
  if (!p)
    return NULL;
  if (ptr)
    memcpy(p, ptr, old_size < new_size ? old_size : new_size);
  fth_free(ptr);
  return p;
}

char *fth_strdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *p = fth_malloc(n);
  if (p)
    memcpy(p, s, n);
  return p;
}

void fth_free(void *ptr) {
  if (ptr)
    current.free_fn(ptr, current.user);
}
