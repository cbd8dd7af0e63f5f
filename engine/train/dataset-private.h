/* Private to engine/train: the dataset's insides, shared by dataset.c (images, text) and
 * audio-dataset.c (log-mel features). */
#pragma once

#include "fathom/train.h"

G_BEGIN_DECLS

typedef struct {
  int64_t start, end;  /* Unicode characters */
  int type;            /* the span label's index: tags 2 type + 1 (B) and 2 type + 2 (I) */
} Span;

typedef struct {
  gint64 item_id;
  int32_t label;
  FthSplit split;
  char *path;
  gint64 member;
  char *sha256;
  char *text;          /* text items: the item's text */
  GArray *spans;       /* tagging: Span, NULL otherwise */
} Entry;

struct FthDataset {
  GArray *entries;        /* Entry, in item id order */
  GPtrArray *class_names;
  GArray *class_ids;      /* gint64 */
  int channels, height, width;
  size_t sample_bytes;
  char *cache_path;
  void *map;
  size_t map_len;
  const uint8_t *pixels;
  size_t n_decoded;
  int32_t *labels;        /* per entry, for fth_dataset_samples */
  gint64 *keys;
  gboolean text, tagging;
  int32_t *tokens, *tags; /* text: n * seq_len, after fth_dataset_tokenize */
  int seq_len;
  FthTokenizer *tokenizer; /* fth_dataset_open_recipe_text */
  const float *features;   /* audio: n * channels * height * width floats in the mapped cache */
};

void fth_dataset_entry_clear(gpointer entry);
/* A cache file (the image cache, the audio feature cache): a header of 8 magic bytes, the item
 * count (u64) and channels, height, width (u32 each), zero-padded, then the samples. */
#define FTH_DATASET_CACHE_HEADER 32
void fth_dataset_cache_header(const FthDataset *ds, const char *magic, uint8_t *buf);
/* Maps ds->cache_path when it is a complete cache for ds: MAGIC, one sample per entry, samples
 * of dims[0] x dims[1] x dims[2] elements of elem_size bytes, each dim equal to want_dims' where
 * that is not 0. Returns the samples (ds->map / map_len set) and fills dims, or NULL when there is
 * no such file (it is then rebuilt). */
const uint8_t *fth_dataset_cache_map(FthDataset *ds, const char *magic, size_t elem_size,
                                     const guint32 want_dims[3], guint32 dims[3]);
/* Writes buf (total bytes) as ds->cache_path atomically, creating its folder. */
gboolean fth_dataset_cache_write(const FthDataset *ds, const uint8_t *buf, size_t total,
                                 GError **error);
/* Appends the items of KIND with their class (see fth_dataset_open) to ds->entries and the
 * classes to ds->class_names / class_ids. */
gboolean fth_dataset_collect_items(FthDataset *ds, FthStore *store, FthDatasetScope scope,
                                   FthItemKind kind, GError **error);
/* Audio samples (s->features): copies, augments (FthAugment's audio fields) and writes n
 * samples into x, their labels into y (may be NULL). */
void fth_samples_fill_features(const FthSamples *s, const uint32_t *indices, size_t n,
                               const FthAugment *aug, uint64_t seed, uint64_t epoch, float *x,
                               int32_t *y);

G_END_DECLS
