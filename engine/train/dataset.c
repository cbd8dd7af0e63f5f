/* Datasets from the store with a decode-once, memory-mapped uint8 cache. */
#include "fathom/media.h"
#include "fathom/safetensors.h"
#include "fathom/train.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define CACHE_MAGIC "FTHIMGC1"
#define CACHE_HEADER 32 /* magic, n (u64), channels, height, width (u32 each), pad */

typedef struct {
  gint64 item_id;
  int32_t label;
  FthSplit split;
  char *path;
  gint64 member;
  char *sha256;
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
};

static void
entry_clear(gpointer p)
{
  Entry *e = p;
  g_free(e->path);
  g_free(e->sha256);
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
  g_free(ds);
}

/* Every image item in id order with the class of its human whole-item annotation: keyset pages
 * of items, then each item's annotations by the (item_id, author) index. (A label filter per
 * class would be simpler, but the store answers it with a scan of the label's annotations per
 * item: quadratic in the project size.) */
static gboolean
collect_items(FthDataset *ds, FthStore *store, FthDatasetScope scope, GError **error)
{
  g_autoptr(GPtrArray) labels = fth_store_list_labels(store, error);
  if (labels == NULL)
    return FALSE;
  g_autoptr(GHashTable) class_of = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
  for (guint l = 0; l < labels->len; l++) {
    FthLabel *lab = g_ptr_array_index(labels, l);
    if (lab->kind != FTH_LABEL_CLASS && lab->kind != FTH_LABEL_ANY)
      continue;
    gint64 *key = g_new(gint64, 1);
    *key = lab->id;
    g_hash_table_insert(class_of, key, GINT_TO_POINTER((int)ds->class_ids->len + 1));
    g_ptr_array_add(ds->class_names, g_strdup(lab->name));
    g_array_append_val(ds->class_ids, lab->id);
  }
  FthItemFilter f = FTH_ITEM_FILTER_INIT;
  f.kind = FTH_ITEM_IMAGE;
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
      for (guint k = 0; k < anns->len; k++) {
        FthAnnotation *a = g_ptr_array_index(anns, k);
        int cls = GPOINTER_TO_INT(g_hash_table_lookup(class_of, &a->label_id));
        if (a->author == FTH_AUTHOR_HUMAN && a->geom == FTH_GEOM_WHOLE && cls > 0 &&
            (label < 0 || cls - 1 < label))
          label = cls - 1;
      }
      if (label < 0 && scope == FTH_DATASET_LABELED)
        continue;
      Entry e = {it->id, label, it->split, g_strdup(it->path), it->member, g_strdup(it->sha256)};
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

static gboolean
map_cache(FthDataset *ds, GError **error)
{
  int fd = open(ds->cache_path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return FALSE;
  struct stat sb;
  gboolean ok = FALSE;
  if (fstat(fd, &sb) == 0 && (size_t)sb.st_size >= CACHE_HEADER) {
    void *m = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_SHARED, fd, 0);
    if (m != MAP_FAILED) {
      const uint8_t *h = m;
      guint64 n;
      guint32 dims[3];
      memcpy(&n, h + 8, 8);
      memcpy(dims, h + 16, 12);
      size_t want = CACHE_HEADER + (size_t)n * dims[0] * dims[1] * dims[2];
      if (memcmp(h, CACHE_MAGIC, 8) == 0 && n == ds->entries->len &&
          (int)dims[0] == ds->channels && want == (size_t)sb.st_size) {
        ds->map = m;
        ds->map_len = (size_t)sb.st_size;
        ds->height = (int)dims[1];
        ds->width = (int)dims[2];
        ds->sample_bytes = (size_t)dims[0] * dims[1] * dims[2];
        ds->pixels = h + CACHE_HEADER;
        ok = TRUE;
      } else {
        munmap(m, (size_t)sb.st_size);
      }
    }
  }
  close(fd);
  (void)error;
  return ok;
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
  memset(buf, 0, CACHE_HEADER);
  memcpy(buf, CACHE_MAGIC, 8);
  guint64 n64 = n;
  guint32 dims[3] = {(guint32)ds->channels, (guint32)ds->height, (guint32)ds->width};
  memcpy(buf + 8, &n64, 8);
  memcpy(buf + 16, dims, 12);
  for (size_t i = 0; i < n; i++) {
    const Entry *e = &g_array_index(ds->entries, Entry, i);
    if (!decode_entry(ds, store, idx_files, e, buf + CACHE_HEADER + i * ds->sample_bytes, error))
      return FALSE;
  }
  ds->n_decoded = n;
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
  if (!map_cache(ds, error)) {
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
  g_array_set_clear_func(ds->entries, entry_clear);
  ds->class_names = g_ptr_array_new_with_free_func(g_free);
  ds->class_ids = g_array_new(FALSE, FALSE, sizeof(gint64));
  if (!collect_items(ds, store, scope, error))
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
  if (!map_cache(ds, error) && !build_cache(ds, store, error))
    return NULL;
  return g_steal_pointer(&ds);
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
  *out = (FthSamples){ds->pixels, ds->labels, ds->keys, n, ds->channels, ds->height, ds->width};
}

/* x / 255 for a whole sample, vectorized as the optimizer loops are (see optim.c). */
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"), optimize("O3")))
static void
u8_to_unit(const uint8_t *restrict src, float *restrict dst, size_t n)
{
  for (size_t p = 0; p < n; p++)
    dst[p] = (float)src[p] * (1.0f / 255.0f);
}

void
fth_samples_fill_batch(const FthSamples *s, const uint32_t *indices, size_t n,
                       const FthAugment *aug, uint64_t seed, uint64_t epoch, const float *mean,
                       const float *std, float *x, int32_t *y)
{
  static const FthAugment none = {0};
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
