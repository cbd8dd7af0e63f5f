/* Arena: a chain of blocks with a bump pointer. */
#include <fathom/core.h>

#include <stdint.h>

typedef struct ArenaBlock {
  struct ArenaBlock *next;
  size_t size, used;
  _Alignas(64) unsigned char data[];
} ArenaBlock;

struct FthArena {
  size_t block_size;
  ArenaBlock *head; /* current block first; the first block ever made is last */
  size_t used;      /* bytes handed out, padding included */
};

static ArenaBlock *block_new(size_t size) {
  ArenaBlock *b = fth_aligned_alloc(64, sizeof(ArenaBlock) + size);
  if (!b)
    return NULL;
  b->next = NULL;
  b->size = size;
  b->used = 0;
  return b;
}

FthArena *fth_arena_new(size_t block_size) {
  FthArena *a = fth_malloc(sizeof *a);
  if (!a)
    return NULL;
  a->block_size = block_size ? block_size : 65536;
  a->used = 0;
  a->head = block_new(a->block_size);
  if (!a->head) {
    fth_free(a);
    return NULL;
  }
  return a;
}

void *fth_arena_alloc(FthArena *arena, size_t size, size_t alignment) {
  if (!arena || alignment == 0 || (alignment & (alignment - 1)) || alignment > 4096) {
    fth_error(FTH_STATUS_INVALID_ARGUMENT, "arena: bad arguments");
    return NULL;
  }
  ArenaBlock *b = arena->head;
  uintptr_t base = (uintptr_t)b->data;
  size_t start = ((base + b->used + alignment - 1) & ~(uintptr_t)(alignment - 1)) - base;
  if (start > b->size || size > b->size - start) {
    size_t need = size + alignment;
    ArenaBlock *nb = block_new(need > arena->block_size ? need : arena->block_size);
    if (!nb)
      return NULL;
    nb->next = b;
    arena->head = b = nb;
    base = (uintptr_t)b->data;
    start = ((base + alignment - 1) & ~(uintptr_t)(alignment - 1)) - base;
  }
  arena->used += start - b->used + size;
  b->used = start + size;
  return b->data + start;
}

size_t fth_arena_used(const FthArena *arena) {
  return arena ? arena->used : 0;
}

void fth_arena_reset(FthArena *arena) {
  if (!arena)
    return;
  while (arena->head->next) {
    ArenaBlock *next = arena->head->next;
    fth_free(arena->head);
    arena->head = next;
  }
  arena->head->used = 0;
  arena->used = 0;
}

void fth_arena_free(FthArena *arena) {
  if (!arena)
    return;
  while (arena->head) {
    ArenaBlock *next = arena->head->next;
    fth_free(arena->head);
    arena->head = next;
  }
  fth_free(arena);
}
