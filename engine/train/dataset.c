/* Datasets from the store with a decode-once, memory-mapped uint8 cache. */
#include "fathom/media.h"
#include "fathom/safetensors.h"
#include "fathom/train.h"
#include "dataset-private.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define CACHE_MAGIC "FTHIMGC1"
#define CACHE_HEADER FTH_DATASET_CACHE_HEADER

void
fth_dataset_entry_clear(gpointer p)
{
  Entry *e = p;
  g_free(e->path);
  g_free(e->sha256);
  g_free(e->text);
  if (e->spans)
    g_array_unref(e->spans);
}

void
fth_dataset_free(FthDataset *ds)
{
  if (ds == NULL)
    return;
  if (ds->entries)
    g_array_unref(ds->entries);
  if (ds->class_names)
    g_ptr_array_unref(ds->class_names);
  if (ds->class_ids)
    g_array_unref(ds->class_ids);
  if (ds->map)
    munmap(ds->map, ds->map_len);
  g_free(ds->cache_path);
  g_free(ds->labels);
  g_free(ds->keys);
  g_free(ds->tokens);
  g_free(ds->tags);
  fth_tokenizer_free(ds->tokenizer);
  g_free(ds);
}

/* Every image item in id order with the class of its human whole-item annotation: keyset pages
 * of items, then each item's annotations by the (item_id, author) index. (A label filter per
 * class would be simpler, but the store answers it with a scan of the label's annotations per
 * item: quadratic in the project size.) */
gboolean
fth_dataset_collect_items(FthDataset *ds, FthStore *store, FthDatasetScope scope,
                          FthItemKind kind, GError **error)
{
  g_autoptr(GPtrArray) labels = fth_store_list_labels(store, error);
  if (labels == NULL)
    return FALSE;
  g_autoptr(GHashTable) class_of = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
  if (ds->tagging) {
    gint64 none = 0;
    g_ptr_array_add(ds->class_names, g_strdup("O"));
    g_array_append_val(ds->class_ids, none);
  }
  for (guint l = 0; l < labels->len; l++) {
    FthLabel *lab = g_ptr_array_index(labels, l);
    FthLabelKind want = ds->tagging ? FTH_LABEL_SPAN : FTH_LABEL_CLASS;
    if (lab->kind != want && lab->kind != FTH_LABEL_ANY)
      continue;
    gint64 *key = g_new(gint64, 1);
    *key = lab->id;
    /* Classification: class + 1; tagging: span type + 1. */
    int n_types = ds->tagging ? ((int)ds->class_ids->len - 1) / 2 : (int)ds->class_ids->len;
    g_hash_table_insert(class_of, key, GINT_TO_POINTER(n_types + 1));
    if (ds->tagging) {
      g_ptr_array_add(ds->class_names, g_strdup_printf("B-%s", lab->name));
      g_ptr_array_add(ds->class_names, g_strdup_printf("I-%s", lab->name));
      g_array_append_val(ds->class_ids, lab->id);
    } else {
      g_ptr_array_add(ds->class_names, g_strdup(lab->name));
    }
    g_array_append_val(ds->class_ids, lab->id);
  }
  FthItemFilter f = FTH_ITEM_FILTER_INIT;
  f.kind = kind;
  gint64 after = 0;
  for (;;) {
    g_autoptr(GPtrArray) page = fth_store_list_items_after(store, &f, after, 5000, error);
    if (page == NULL)
      return FALSE;
    if (page->len == 0)
      break;
    for (guint i = 0; i < page->len; i++) {
      FthItemRecord *it = g_ptr_array_index(page, i);
      after = it->id;
      g_autoptr(GPtrArray) anns = fth_store_list_annotations(store, it->id, error);
      if (anns == NULL)
        return FALSE;
      /* The first class label (in label order of creation) when an item has several. */
      int32_t label = -1;
      GArray *spans = ds->tagging ? g_array_new(FALSE, FALSE, sizeof(Span)) : NULL;
      for (guint k = 0; k < anns->len; k++) {
        FthAnnotation *a = g_ptr_array_index(anns, k);
        int cls = GPOINTER_TO_INT(g_hash_table_lookup(class_of, &a->label_id));
        if (a->author != FTH_AUTHOR_HUMAN || cls <= 0)
          continue;
        if (ds->tagging && a->geom == FTH_GEOM_SPAN) {
          Span sp = {a->start, a->end, cls - 1};
          g_array_append_val(spans, sp);
          label = 0; /* one stratum: splits by item */
        } else if (!ds->tagging && a->geom == FTH_GEOM_WHOLE && (label < 0 || cls - 1 < label)) {
          label = cls - 1;
        }
      }
      if (label < 0 && scope == FTH_DATASET_LABELED) {
        if (spans)
          g_array_unref(spans);
        continue;
      }
      Entry e = {it->id, label, it->split, g_strdup(it->path), it->member, g_strdup(it->sha256),
                 g_strdup(it->text), spans};
      g_array_append_val(ds->entries, e);
    }
  }
  return TRUE;
}

/* Decodes entry e into dst (C*H*W bytes, CHW). The first call fixes the dataset's shape. */
static gboolean
decode_entry(FthDataset *ds, FthStore *store, GHashTable *idx_files, const Entry *e,
             uint8_t *dst, GError **error)
{
  g_autofree char *path = fth_store_resolve_path(store, e->path);
  if (e->member >= 0) {
    FthIdx *idx = g_hash_table_lookup(idx_files, path);
    if (idx == NULL) {
      idx = fth_idx_open(path, error);
      if (idx == NULL)
        return FALSE;
      g_hash_table_insert(idx_files, g_strdup(path), idx);
    }
    guint nd = fth_idx_get_n_dims(idx);
    if (fth_idx_get_dtype(idx) != FTH_IDX_U8 || nd != 3 || ds->channels != 1) {
      g_set_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_DATA,
                  "%s: IDX records must be unsigned-byte 2-D images for a 1-channel model", path);
      return FALSE;
    }
    const guint8 *rec = fth_idx_get_record(idx, (gsize)e->member);
    if (rec == NULL) {
      g_set_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_DATA,
                  "%s: record %" G_GINT64_FORMAT " of item %" G_GINT64_FORMAT
                  " is past the file's %zu records", path, e->member, e->item_id,
                  fth_idx_get_n_records(idx));
      return FALSE;
    }
    int h = (int)fth_idx_get_dim(idx, 1), w = (int)fth_idx_get_dim(idx, 2);
    if (ds->height == 0) {
      ds->height = h;
      ds->width = w;
      ds->sample_bytes = (size_t)h * (size_t)w;
    } else if (h != ds->height || w != ds->width) {
      g_set_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_DATA,
                  "%s: %dx%d records, the dataset's images are %dx%d", path, w, h, ds->width,
                  ds->height);
      return FALSE;
    }
    if (dst != NULL)
      memcpy(dst, rec, ds->sample_bytes);
    return TRUE;
  }
  FthImage img = {0};
  FthImageDecodeFlags flags = ds->channels == 1 ? FTH_IMAGE_DECODE_GRAYSCALE : FTH_IMAGE_DECODE_RGB;
  if (!fth_image_decode_file(path, flags, &img, error))
    return FALSE;
  if (ds->height == 0) {
    ds->height = img.height;
    ds->width = img.width;
    ds->sample_bytes = (size_t)ds->channels * (size_t)img.height * (size_t)img.width;
  } else if (img.height != ds->height || img.width != ds->width) {
    g_set_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_DATA,
                "%s: %dx%d image, the dataset's images are %dx%d (resize them first)", path,
                img.width, img.height, ds->width, ds->height);
    fth_image_clear(&img);
    return FALSE;
  }
  if (dst != NULL) {
    size_t plane = (size_t)img.height * (size_t)img.width;
    for (size_t p = 0; p < plane; p++)
      for (int c = 0; c < ds->channels; c++)
        dst[(size_t)c * plane + p] = img.pixels[p * (size_t)img.channels + (size_t)c];
  }
  fth_image_clear(&img);
  return TRUE;
}

const uint8_t *
fth_dataset_cache_map(FthDataset *ds, const char *magic, size_t elem_size,
                      const guint32 want_dims[3], guint32 dims[3])
{
  int fd = open(ds->cache_path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return NULL;
  struct stat sb;
  const uint8_t *data = NULL;
  if (fstat(fd, &sb) == 0 && (size_t)sb.st_size >= FTH_DATASET_CACHE_HEADER) {
    void *m = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_SHARED, fd, 0);
    if (m != MAP_FAILED) {
      const uint8_t *h = m;
      guint64 n;
      memcpy(&n, h + 8, 8);
      memcpy(dims, h + 16, 12);
      gboolean fits = memcmp(h, magic, 8) == 0 && n == ds->entries->len &&
                      FTH_DATASET_CACHE_HEADER + (size_t)n * dims[0] * dims[1] * dims[2] *
                                                     elem_size ==
                        (size_t)sb.st_size;
      for (int d = 0; d < 3; d++)
        fits = fits && (want_dims[d] == 0 || dims[d] == want_dims[d]);
      if (fits) {
        ds->map = m;
        ds->map_len = (size_t)sb.st_size;
        data = h + FTH_DATASET_CACHE_HEADER;
      } else {
        munmap(m, (size_t)sb.st_size);
      }
    }
  }
  close(fd);
  return data;
}

/* The image cache of ds, when there is one that fits: its height and width come from it. */
static gboolean
map_cache(FthDataset *ds)
{
  const guint32 want[3] = {(guint32)ds->channels, 0, 0};
  guint32 dims[3];
  const uint8_t *pixels = fth_dataset_cache_map(ds, CACHE_MAGIC, 1, want, dims);
  if (pixels == NULL)
    return FALSE;
  ds->height = (int)dims[1];
  ds->width = (int)dims[2];
  ds->sample_bytes = (size_t)dims[0] * dims[1] * dims[2];
  ds->pixels = pixels;
  return TRUE;
}

void
fth_dataset_cache_header(const FthDataset *ds, const char *magic, uint8_t *buf)
{
  memset(buf, 0, FTH_DATASET_CACHE_HEADER);
  memcpy(buf, magic, 8);
  guint64 n64 = ds->entries->len;
  guint32 dims[3] = {(guint32)ds->channels, (guint32)ds->height, (guint32)ds->width};
  memcpy(buf + 8, &n64, 8);
  memcpy(buf + 16, dims, 12);
}

gboolean
fth_dataset_cache_write(const FthDataset *ds, const uint8_t *buf, size_t total, GError **error)
{
  g_autofree char *dir = g_path_get_dirname(ds->cache_path);
  if (g_mkdir_with_parents(dir, 0755) != 0) {
    int err = errno;
    g_set_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_IO, "%s: cannot create: %s", dir,
                g_strerror(err));
    return FALSE;
  }
  FthFilePart part = {buf, total};
  GError *werr = NULL;
  if (!fth_file_write_atomic(ds->cache_path, &part, 1, &werr)) {
    g_set_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_IO, "%s", werr->message);
    g_error_free(werr);
    return FALSE;
  }
  return TRUE;
}

static gboolean
build_cache(FthDataset *ds, FthStore *store, GError **error)
{
  g_autoptr(GHashTable) idx_files =
    g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)fth_idx_free);
  size_t n = ds->entries->len;
  /* The first item fixes the shape, then everything is decoded straight into one buffer. */
  if (!decode_entry(ds, store, idx_files, &g_array_index(ds->entries, Entry, 0), NULL, error))
    return FALSE;
  size_t total = CACHE_HEADER + n * ds->sample_bytes;
  g_autofree uint8_t *buf = g_try_malloc(total);
  if (buf == NULL) {
    g_set_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_IO,
                "%s: cannot allocate %zu bytes for the image cache", ds->cache_path, total);
    return FALSE;
  }
  fth_dataset_cache_header(ds, CACHE_MAGIC, buf);
  for (size_t i = 0; i < n; i++) {
    const Entry *e = &g_array_index(ds->entries, Entry, i);
    if (!decode_entry(ds, store, idx_files, e, buf + CACHE_HEADER + i * ds->sample_bytes, error))
      return FALSE;
  }
  ds->n_decoded = n;
  if (!fth_dataset_cache_write(ds, buf, total, error))
    return FALSE;
  if (!map_cache(ds)) {
    g_set_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_IO, "%s: the cache just written does "
                "not read back", ds->cache_path);
    return FALSE;
  }
  return TRUE;
}

FthDataset *
fth_dataset_open(FthStore *store, FthDatasetScope scope, int channels, const char *cache_dir,
                 GError **error)
{
  if (channels != 1 && channels != 3) {
    g_set_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_INVALID,
                "dataset: images must have 1 or 3 channels (got %d)", channels);
    return NULL;
  }
  g_autoptr(FthDataset) ds = g_new0(FthDataset, 1);
  ds->channels = channels;
  ds->entries = g_array_new(FALSE, TRUE, sizeof(Entry));
  g_array_set_clear_func(ds->entries, fth_dataset_entry_clear);
  ds->class_names = g_ptr_array_new_with_free_func(g_free);
  ds->class_ids = g_array_new(FALSE, FALSE, sizeof(gint64));
  if (!fth_dataset_collect_items(ds, store, scope, FTH_ITEM_IMAGE, error))
    return NULL;
  if (ds->entries->len == 0) {
    g_set_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_DATA,
                "%s: no %simage items to train on", fth_store_get_dir(store),
                scope == FTH_DATASET_LABELED ? "labeled " : "");
    return NULL;
  }
  /* The cache key: every item's content hash, in order, and the channel count. */
  g_autoptr(GChecksum) sum = g_checksum_new(G_CHECKSUM_SHA256);
  for (guint i = 0; i < ds->entries->len; i++) {
    const Entry *e = &g_array_index(ds->entries, Entry, i);
    g_checksum_update(sum, (const guchar *)(e->sha256 ? e->sha256 : ""), -1);
    g_checksum_update(sum, (const guchar *)"\n", 1);
  }
  g_checksum_update(sum, (const guchar *)&channels, sizeof channels);
  g_autofree char *file = g_strdup_printf("images-%.24s.u8", g_checksum_get_string(sum));
  ds->cache_path = cache_dir ? g_build_filename(cache_dir, file, NULL)
                             : g_build_filename(fth_store_get_dir(store), "cache", file, NULL);
  if (!map_cache(ds) && !build_cache(ds, store, error))
    return NULL;
  return g_steal_pointer(&ds);
}

static gboolean
item_error(GError **error, const Entry *e, const char *fmt, ...) G_GNUC_PRINTF(3, 4);

static gboolean
item_error(GError **error, const Entry *e, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  g_autofree char *msg = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  g_set_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_DATA, "item %" G_GINT64_FORMAT " (%s): %s",
              e->item_id, e->path ? e->path : "inline text", msg);
  return FALSE;
}

/* The item's text (inline or its file) into e->text, checked to be UTF-8, and its spans against
 * its length. */
static gboolean
load_text(FthStore *store, Entry *e, const char *const *class_names, GError **error)
{
  if (e->text != NULL) {
    GError *verr = NULL;
    if (!fth_text_validate(e->text, strlen(e->text), NULL, &verr)) {
      item_error(error, e, "%s", verr->message);
      g_error_free(verr);
      return FALSE;
    }
  } else {
    g_autofree char *path = fth_store_resolve_path(store, e->path);
    GError *lerr = NULL;
    if (!fth_text_load_file(path, &e->text, NULL, &lerr)) {
      item_error(error, e, "%s", lerr->message);
      g_error_free(lerr);
      return FALSE;
    }
  }
  glong chars = g_utf8_strlen(e->text, -1);
  for (guint k = 0; e->spans && k < e->spans->len; k++) {
    const Span *sp = &g_array_index(e->spans, Span, k);
    if (sp->start < 0 || sp->end <= sp->start || sp->end > chars)
      return item_error(error, e, "the span [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT ") of "
                        "label '%s' does not fit the text's %ld characters", (gint64)sp->start,
                        (gint64)sp->end, class_names[2 * sp->type + 1] + 2, chars);
  }
  return TRUE;
}

FthDataset *
fth_dataset_open_text(FthStore *store, FthDatasetScope scope, gboolean tagging, GError **error)
{
  g_autoptr(FthDataset) ds = g_new0(FthDataset, 1);
  ds->text = TRUE;
  ds->tagging = tagging;
  ds->entries = g_array_new(FALSE, TRUE, sizeof(Entry));
  g_array_set_clear_func(ds->entries, fth_dataset_entry_clear);
  ds->class_names = g_ptr_array_new_with_free_func(g_free);
  ds->class_ids = g_array_new(FALSE, FALSE, sizeof(gint64));
  if (!fth_dataset_collect_items(ds, store, scope, FTH_ITEM_TEXT, error))
    return NULL;
  if (ds->entries->len == 0) {
    g_set_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_DATA, "%s: no %stext items to %s",
                fth_store_get_dir(store), scope == FTH_DATASET_LABELED ? "labeled " : "",
                scope == FTH_DATASET_LABELED ? "train on" : "predict");
    return NULL;
  }
  for (guint i = 0; i < ds->entries->len; i++)
    if (!load_text(store, &g_array_index(ds->entries, Entry, i),
                   (const char *const *)ds->class_names->pdata, error))
      return NULL;
  return g_steal_pointer(&ds);
}

gboolean
fth_dataset_is_text(const FthDataset *ds)
{
  return ds->text;
}

const char *
fth_dataset_text(const FthDataset *ds, size_t i)
{
  return g_array_index(ds->entries, Entry, i).text;
}

static int
span_cmp(gconstpointer a, gconstpointer b)
{
  const Span *x = a, *y = b;
  return x->start < y->start ? -1 : x->start > y->start;
}

gboolean
fth_dataset_tokenize(FthDataset *ds, const FthTokenizer *tok, int seq_len, GError **error)
{
  size_t n = ds->entries->len, t = (size_t)seq_len;
  g_free(ds->tokens);
  g_clear_pointer(&ds->tags, g_free);
  ds->tokens = g_new(int32_t, n * t);
  ds->seq_len = seq_len;
  g_autofree int32_t *starts = g_new(int32_t, t), *ends = g_new(int32_t, t);
  if (ds->tagging)
    ds->tags = g_new(int32_t, n * t);
  for (size_t i = 0; i < n; i++) {
    Entry *e = &g_array_index(ds->entries, Entry, i);
    g_autofree char *name = g_strdup_printf("item %" G_GINT64_FORMAT, e->item_id);
    int32_t *ids = ds->tokens + i * t;
    if (!fth_tokenizer_encode(tok, e->text, -1, name, seq_len, TRUE, ids, starts, ends, NULL,
                              error))
      return FALSE;
    if (!ds->tagging)
      continue;
    /* BIO: a token takes the type of the span it overlaps; B on the span's first token. */
    g_array_sort(e->spans, span_cmp);
    int32_t *tags = ds->tags + i * t;
    int prev_span = -1;
    guint k = 0;
    for (size_t j = 0; j < t; j++) {
      if (starts[j] < 0) {
        tags[j] = FTH_IGNORE_TARGET;
        continue;
      }
      while (k < e->spans->len && g_array_index(e->spans, Span, k).end <= starts[j])
        k++;
      const Span *sp = k < e->spans->len ? &g_array_index(e->spans, Span, k) : NULL;
      if (sp == NULL || sp->start >= ends[j]) {
        tags[j] = 0;
        continue;
      }
      tags[j] = 2 * sp->type + ((int)k == prev_span ? 2 : 1);
      prev_span = (int)k;
    }
  }
  return TRUE;
}

static gboolean
tokenizer_error(GError **error, GError *terr)
{
  g_set_error_literal(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_DATA, terr->message);
  g_error_free(terr);
  return FALSE;
}

/* The recipe's embedding must hold the tokenizer's vocabulary; then every item is encoded. */
static gboolean
tokenize_for_recipe(FthDataset *ds, const FthRecipe *recipe, GError **error)
{
  int v = fth_tokenizer_vocab_size(ds->tokenizer);
  if (v > recipe->vocab) {
    g_set_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_DATA,
                "%s: the tokenizer has %d entries (its alphabet alone may exceed the target), "
                "the recipe's embedding %d: raise 'vocab'", recipe->source, v, recipe->vocab);
    return FALSE;
  }
  return fth_dataset_tokenize(ds, ds->tokenizer, (int)recipe->in_shape[0], error);
}

FthDataset *
fth_dataset_open_recipe_text(FthStore *store, const FthRecipe *recipe, FthDatasetScope scope,
                             const char *dir, GError **error)
{
  g_autoptr(FthDataset) ds = fth_dataset_open_text(store, scope, recipe->tagging, error);
  if (ds == NULL || dir == NULL)
    return g_steal_pointer(&ds);
  g_autofree char *path = g_build_filename(dir, "tokenizer.json", NULL);
  GError *terr = NULL;
  ds->tokenizer = fth_tokenizer_load(path, &terr);
  if (ds->tokenizer == NULL) {
    tokenizer_error(error, terr);
    return NULL;
  }
  if (!tokenize_for_recipe(ds, recipe, error))
    return NULL;
  return g_steal_pointer(&ds);
}

gboolean
fth_dataset_train_tokenizer(FthDataset *ds, const FthRecipe *recipe, const uint32_t *items,
                            size_t n_items, GError **error)
{
  g_autofree const char **texts = g_new(const char *, n_items ? n_items : 1);
  g_auto(GStrv) names = g_new0(char *, n_items + 1);
  for (size_t i = 0; i < n_items; i++) {
    const Entry *e = &g_array_index(ds->entries, Entry, items[i]);
    texts[i] = e->text;
    names[i] = g_strdup_printf("item %" G_GINT64_FORMAT, e->item_id);
  }
  FthTokenizerConfig cfg;
  fth_tokenizer_config_init(&cfg);
  cfg.kind = recipe->bpe ? FTH_TOKENIZER_BPE : FTH_TOKENIZER_WORDPIECE;
  cfg.vocab_size = recipe->vocab;
  cfg.lowercase = recipe->lowercase;
  GError *terr = NULL;
  fth_tokenizer_free(ds->tokenizer);
  ds->tokenizer = fth_tokenizer_train(texts, n_items, (const char *const *)names, &cfg, &terr);
  if (ds->tokenizer == NULL)
    return tokenizer_error(error, terr);
  return tokenize_for_recipe(ds, recipe, error);
}

const FthTokenizer *
fth_dataset_tokenizer(const FthDataset *ds)
{
  return ds->tokenizer;
}

gboolean
fth_dataset_save_tokenizer(const FthDataset *ds, const char *dir, GError **error)
{
  if (ds->tokenizer == NULL)
    return TRUE;
  if (g_mkdir_with_parents(dir, 0755) != 0) {
    int err = errno;
    g_set_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_IO, "%s: cannot create: %s", dir,
                g_strerror(err));
    return FALSE;
  }
  g_autofree char *path = g_build_filename(dir, "tokenizer.json", NULL);
  GError *terr = NULL;
  if (!fth_tokenizer_save(ds->tokenizer, path, &terr)) {
    g_set_error_literal(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_IO, terr->message);
    g_error_free(terr);
    return FALSE;
  }
  return TRUE;
}

size_t
fth_dataset_size(const FthDataset *ds)
{
  return ds->entries->len;
}

void
fth_dataset_shape(const FthDataset *ds, int *channels, int *height, int *width)
{
  *channels = ds->channels;
  *height = ds->height;
  *width = ds->width;
}

int
fth_dataset_n_classes(const FthDataset *ds)
{
  return (int)ds->class_ids->len;
}

const char *
fth_dataset_class_name(const FthDataset *ds, int cls)
{
  return cls >= 0 && (guint)cls < ds->class_names->len ? g_ptr_array_index(ds->class_names, (guint)cls)
                                                        : NULL;
}

gint64
fth_dataset_class_label_id(const FthDataset *ds, int cls)
{
  return cls >= 0 && (guint)cls < ds->class_ids->len ? g_array_index(ds->class_ids, gint64, (guint)cls)
                                                      : 0;
}

int32_t
fth_dataset_label(const FthDataset *ds, size_t i)
{
  return g_array_index(ds->entries, Entry, i).label;
}

gint64
fth_dataset_item_id(const FthDataset *ds, size_t i)
{
  return g_array_index(ds->entries, Entry, i).item_id;
}

FthSplit
fth_dataset_split(const FthDataset *ds, size_t i)
{
  return g_array_index(ds->entries, Entry, i).split;
}

const uint8_t *
fth_dataset_pixels(const FthDataset *ds, size_t i)
{
  return ds->pixels + i * ds->sample_bytes;
}

size_t
fth_dataset_n_decoded(const FthDataset *ds)
{
  return ds->n_decoded;
}

const char *
fth_dataset_cache_path(const FthDataset *ds)
{
  return ds->cache_path;
}

void
fth_dataset_samples(const FthDataset *ds, FthSamples *out)
{
  size_t n = ds->entries->len;
  if (ds->labels == NULL) {
    FthDataset *mut = (FthDataset *)ds; /* filled once, lazily */
    mut->labels = g_new(int32_t, n ? n : 1);
    mut->keys = g_new(gint64, n ? n : 1);
    for (size_t i = 0; i < n; i++) {
      mut->labels[i] = g_array_index(ds->entries, Entry, i).label;
      mut->keys[i] = g_array_index(ds->entries, Entry, i).item_id;
    }
  }
  *out = (FthSamples){ds->pixels, ds->labels, ds->keys, n, ds->channels, ds->height, ds->width,
                      ds->tokens, ds->tags, ds->seq_len, ds->features};
}

/* x / 255 for a whole sample, vectorized as the optimizer loops are (see optim.c). */
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"), optimize("O3")))
static void
u8_to_unit(const uint8_t *restrict src, float *restrict dst, size_t n)
{
  for (size_t p = 0; p < n; p++)
    dst[p] = (float)src[p] * (1.0f / 255.0f);
}

static void
fill_tokens(const FthSamples *s, const uint32_t *indices, size_t n, const FthAugment *aug,
            uint64_t seed, uint64_t epoch, int32_t *x, int32_t *y)
{
  size_t t = (size_t)s->seq_len;
  for (size_t k = 0; k < n; k++) {
    size_t i = indices[k];
    const int32_t *src = s->tokens + i * t, *tags = s->tags ? s->tags + i * t : NULL;
    int32_t *tags_out = y != NULL && tags != NULL ? y + k * t : NULL;
    if (aug != NULL) {
      uint64_t key = s->keys ? (uint64_t)s->keys[i] : (uint64_t)i;
      fth_augment_tokens(aug, src, tags_out ? tags : NULL, (int)t, seed, key, epoch, x + k * t,
                         tags_out);
    } else {
      memcpy(x + k * t, src, t * sizeof *src);
      if (tags_out != NULL)
        memcpy(tags_out, tags, t * sizeof *tags);
    }
    if (y != NULL && tags == NULL)
      y[k] = s->labels[i];
  }
}

void
fth_samples_fill_weights(const FthSamples *s, const uint32_t *indices, size_t n, float *w)
{
  for (size_t k = 0; k < n; k++)
    w[k] = s->weights ? s->weights[indices[k]] : 1.0f;
}

void
fth_samples_fill_batch(const FthSamples *s, const uint32_t *indices, size_t n,
                       const FthAugment *aug, uint64_t seed, uint64_t epoch, const float *mean,
                       const float *std, void *xv, int32_t *y)
{
  static const FthAugment none = {0};
  if (s->tokens != NULL) {
    fill_tokens(s, indices, n, aug, seed, epoch, xv, y);
    return;
  }
  if (s->features != NULL) {
    fth_samples_fill_features(s, indices, n, aug, seed, epoch, xv, y);
    return;
  }
  float *x = xv;
  size_t sample = (size_t)s->channels * (size_t)s->height * (size_t)s->width;
  for (size_t k = 0; k < n; k++) {
    size_t i = indices[k];
    float *dst = x + k * sample;
    const uint8_t *src = s->pixels + i * sample;
    if (aug != NULL) {
      uint64_t key = s->keys ? (uint64_t)s->keys[i] : (uint64_t)i;
      fth_augment_image(aug, src, s->channels, s->height, s->width, seed, key, epoch, mean, std,
                        dst);
    } else if (mean == NULL && std == NULL) {
      /* Plain x/255, the same values as the general path, one multiply per pixel. */
      u8_to_unit(src, dst, sample);
    } else {
      fth_augment_image(&none, src, s->channels, s->height, s->width, 0, 0, 0, mean, std, dst);
    }
    if (y != NULL)
      y[k] = s->labels[i];
  }
}
