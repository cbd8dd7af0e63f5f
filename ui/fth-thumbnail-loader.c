/* fth-thumbnail-loader.c: worker-thread decoding and an LRU cache of thumbnail textures. */
#include "fth-thumbnail-loader.h"

#include <fathom/media.h>
#include <gdk-pixbuf/gdk-pixbuf.h>

/* A decode request: everything a worker needs, copied so it never touches the FthItem. */
typedef struct {
  gint64 item_id;
  char *path;    /* absolute */
  gint64 member; /* -1: the whole file */
  int size;
  guint64 sequence; /* newer requests run first */
} Request;

/* A decoded thumbnail, RGB 8-bit, handed from the worker to the main thread. */
typedef struct {
  gint64 item_id;
  int width, height;
  gsize stride;
  GBytes *pixels;
} Decoded;

typedef struct {
  gint64 item_id;
  GdkTexture *texture;
} CacheEntry;

struct _FthThumbnailLoader {
  GObject parent_instance;

  FthStore *store;
  int size;
  guint capacity;

  GHashTable *cache; /* item id (gint64 *) -> GList link in lru, whose data is a CacheEntry */
  GQueue lru;        /* most recent first */

  GThreadPool *pool;
  guint64 next_sequence;

  GMutex idx_lock; /* guards idx_files; held while an IDX file loads, so it loads once */
  GHashTable *idx_files; /* absolute path -> FthIdx */
};

G_DEFINE_FINAL_TYPE(FthThumbnailLoader, fth_thumbnail_loader, G_TYPE_OBJECT)

static void
request_free(Request *request)
{
  g_free(request->path);
  g_free(request);
}

static void
decoded_free(Decoded *decoded)
{
  g_bytes_unref(decoded->pixels);
  g_free(decoded);
}

static void
cache_entry_free(CacheEntry *entry)
{
  g_object_unref(entry->texture);
  g_free(entry);
}

/* The IDX file at PATH, loaded on first use. Runs on a worker thread. */
static const FthIdx *
get_idx(FthThumbnailLoader *self, const char *path, GError **error)
{
  g_mutex_lock(&self->idx_lock);
  FthIdx *idx = g_hash_table_lookup(self->idx_files, path);
  if (idx == NULL) {
    idx = fth_idx_open(path, error);
    if (idx != NULL)
      g_hash_table_insert(self->idx_files, g_strdup(path), idx);
  }
  g_mutex_unlock(&self->idx_lock);
  return idx;
}

/* One IDX record as an image: 8-bit records of rank 2 (rows x columns), as in (Fashion-)MNIST. */
static gboolean
decode_idx_record(FthThumbnailLoader *self, const Request *request, FthImage *image,
                  GError **error)
{
  const FthIdx *idx = get_idx(self, request->path, error);
  if (idx == NULL)
    return FALSE;

  if (fth_idx_get_dtype(idx) != FTH_IDX_U8 || fth_idx_get_n_dims(idx) != 3) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                "%s: IDX records are not 8-bit images (need unsigned bytes in 3 dimensions)",
                request->path);
    return FALSE;
  }
  const guint8 *record = fth_idx_get_record(idx, (gsize)request->member);
  if (record == NULL) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                "%s: no record %" G_GINT64_FORMAT " (the file holds %" G_GSIZE_FORMAT ")",
                request->path, request->member, fth_idx_get_n_records(idx));
    return FALSE;
  }
  image->height = (int)fth_idx_get_dim(idx, 1);
  image->width = (int)fth_idx_get_dim(idx, 2);
  image->channels = 1;
  image->pixels = g_memdup2(record, fth_idx_get_record_size(idx));
  return TRUE;
}

/* IMAGE as packed RGB (gray is expanded; GTK 4.8 has no one-channel texture format). */
static GdkPixbuf *
pixbuf_from_image(FthImage *image)
{
  GdkPixbuf *pixbuf = gdk_pixbuf_new(GDK_COLORSPACE_RGB, FALSE, 8, image->width, image->height);
  guint8 *out = gdk_pixbuf_get_pixels(pixbuf);
  int stride = gdk_pixbuf_get_rowstride(pixbuf);

  for (int y = 0; y < image->height; y++) {
    const guint8 *in = image->pixels + (gsize)y * (gsize)image->width * (gsize)image->channels;
    guint8 *row = out + (gsize)y * (gsize)stride;
    for (int x = 0; x < image->width; x++) {
      if (image->channels == 1) {
        row[3 * x] = row[3 * x + 1] = row[3 * x + 2] = in[x];
      } else {
        row[3 * x] = in[image->channels * x];
        row[3 * x + 1] = in[image->channels * x + 1];
        row[3 * x + 2] = in[image->channels * x + 2];
      }
    }
  }
  return pixbuf;
}

static Decoded *
decode(FthThumbnailLoader *self, const Request *request, GError **error)
{
  FthImage image = { 0 };
  gboolean ok;

  if (request->member >= 0) {
    ok = decode_idx_record(self, request, &image, error);
  } else {
    /* A thumbnail needs a small part of a photo's pixels: a JPEG decodes at 1/2 to 1/8 of its
     * sides (DCT scaling) while that still covers the thumbnail, several times faster than in
     * full; other formats answer UNSUPPORTED at once and decode in full, as do failures, so
     * those are reported by the full decode. */
    const FthImageDecodeFlags flags = FTH_IMAGE_DECODE_RGB | FTH_IMAGE_DECODE_FAST;
    FthImageInfo info;
    int reduction = 1;
    if (fth_image_probe_file(request->path, flags, &info, NULL))
      reduction = fth_image_reduction_for_view(info.width, info.height, request->size,
                                               request->size);
    ok = reduction > 1 &&
         fth_image_decode_reduced_file(request->path, flags, reduction, &image, NULL);
    if (!ok)
      ok = fth_image_decode_file(request->path, flags, &image, error);
  }
  if (!ok)
    return NULL;

  g_autoptr(GdkPixbuf) pixbuf = pixbuf_from_image(&image);
  fth_image_clear(&image);

  int width = gdk_pixbuf_get_width(pixbuf);
  int height = gdk_pixbuf_get_height(pixbuf);
  if (width > request->size || height > request->size) {
    double scale = (double)request->size / MAX(width, height);
    int scaled_width = MAX(1, (int)(width * scale + 0.5));
    int scaled_height = MAX(1, (int)(height * scale + 0.5));
    GdkPixbuf *scaled = gdk_pixbuf_scale_simple(pixbuf, scaled_width, scaled_height,
                                                GDK_INTERP_BILINEAR);
    g_object_unref(pixbuf);
    pixbuf = scaled;
  }

  Decoded *decoded = g_new0(Decoded, 1);
  decoded->item_id = request->item_id;
  decoded->width = gdk_pixbuf_get_width(pixbuf);
  decoded->height = gdk_pixbuf_get_height(pixbuf);
  decoded->stride = (gsize)gdk_pixbuf_get_rowstride(pixbuf);
  decoded->pixels = gdk_pixbuf_read_pixel_bytes(pixbuf);
  return decoded;
}

static void
worker(gpointer data, gpointer user_data)
{
  GTask *task = data;
  FthThumbnailLoader *self = user_data;
  Request *request = g_task_get_task_data(task);
  GError *error = NULL;

  if (!g_task_return_error_if_cancelled(task)) {
    Decoded *decoded = decode(self, request, &error);
    if (decoded == NULL)
      g_task_return_error(task, error);
    else
      g_task_return_pointer(task, decoded, (GDestroyNotify)decoded_free);
  }
  g_object_unref(task);
}

/* Newest first: the cells the user is looking at now. */
static int
compare_requests(gconstpointer a, gconstpointer b, gpointer user_data)
{
  const Request *ra = g_task_get_task_data(G_TASK((gpointer)a));
  const Request *rb = g_task_get_task_data(G_TASK((gpointer)b));

  return ra->sequence < rb->sequence ? 1 : ra->sequence > rb->sequence ? -1 : 0;
}

FthThumbnailLoader *
fth_thumbnail_loader_new(FthStore *store, int size, guint capacity)
{
  g_return_val_if_fail(FTH_IS_STORE(store), NULL);
  g_return_val_if_fail(size > 0 && capacity > 0, NULL);

  FthThumbnailLoader *self = g_object_new(FTH_TYPE_THUMBNAIL_LOADER, NULL);
  self->store = g_object_ref(store);
  self->size = size;
  self->capacity = capacity;
  /* Two to four decoders: enough to keep up with scrolling, few enough to leave cores to a
   * training job. */
  int n_threads = CLAMP((int)g_get_num_processors(), 2, 4);
  self->pool = g_thread_pool_new(worker, self, n_threads, FALSE, NULL);
  g_thread_pool_set_sort_function(self->pool, compare_requests, NULL);
  return self;
}

int
fth_thumbnail_loader_get_size(FthThumbnailLoader *self)
{
  g_return_val_if_fail(FTH_IS_THUMBNAIL_LOADER(self), 0);
  return self->size;
}

guint
fth_thumbnail_loader_get_n_cached(FthThumbnailLoader *self)
{
  g_return_val_if_fail(FTH_IS_THUMBNAIL_LOADER(self), 0);
  return g_hash_table_size(self->cache);
}

GdkTexture *
fth_thumbnail_loader_lookup(FthThumbnailLoader *self, FthItem *item)
{
  g_return_val_if_fail(FTH_IS_THUMBNAIL_LOADER(self), NULL);
  gint64 id = fth_item_get_id(item);
  GList *link = g_hash_table_lookup(self->cache, &id);

  if (link == NULL)
    return NULL;
  g_queue_unlink(&self->lru, link);
  g_queue_push_head_link(&self->lru, link);
  return g_object_ref(((CacheEntry *)link->data)->texture);
}

static void
cache_insert(FthThumbnailLoader *self, gint64 item_id, GdkTexture *texture)
{
  GList *link = g_hash_table_lookup(self->cache, &item_id);

  if (link != NULL) {
    /* Two cells asked for the same item before either finished: keep the newer texture. */
    CacheEntry *entry = link->data;
    g_set_object(&entry->texture, texture);
    g_queue_unlink(&self->lru, link);
    g_queue_push_head_link(&self->lru, link);
    return;
  }

  CacheEntry *entry = g_new0(CacheEntry, 1);
  entry->item_id = item_id;
  entry->texture = g_object_ref(texture);
  g_queue_push_head(&self->lru, entry);
  g_hash_table_insert(self->cache, &entry->item_id, self->lru.head);

  while (self->lru.length > self->capacity) {
    CacheEntry *oldest = g_queue_pop_tail(&self->lru);
    g_hash_table_remove(self->cache, &oldest->item_id);
    cache_entry_free(oldest);
  }
}

void
fth_thumbnail_loader_load_async(FthThumbnailLoader *self, FthItem *item,
                                GCancellable *cancellable, GAsyncReadyCallback callback,
                                gpointer user_data)
{
  g_return_if_fail(FTH_IS_THUMBNAIL_LOADER(self));
  g_return_if_fail(FTH_IS_ITEM(item));

  GTask *task = g_task_new(self, cancellable, callback, user_data);

  if (fth_item_get_kind(item) != FTH_ITEM_IMAGE) {
    g_task_return_new_error(task, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                            "%s: not an image, no thumbnail", fth_item_get_path(item));
    g_object_unref(task);
    return;
  }

  Request *request = g_new0(Request, 1);
  request->item_id = fth_item_get_id(item);
  request->path = fth_store_resolve_path(self->store, fth_item_get_path(item));
  request->member = fth_item_get_member(item);
  request->size = self->size;
  request->sequence = self->next_sequence++;
  g_task_set_task_data(task, request, (GDestroyNotify)request_free);
  g_task_set_check_cancellable(task, TRUE);

  /* The pool owns the task reference until the worker returns it. */
  g_thread_pool_push(self->pool, task, NULL);
}

GdkTexture *
fth_thumbnail_loader_load_finish(FthThumbnailLoader *self, GAsyncResult *result,
                                 GError **error)
{
  g_return_val_if_fail(g_task_is_valid(result, self), NULL);

  Decoded *decoded = g_task_propagate_pointer(G_TASK(result), error);
  if (decoded == NULL)
    return NULL;

  GdkTexture *texture = gdk_memory_texture_new(decoded->width, decoded->height,
                                               GDK_MEMORY_R8G8B8, decoded->pixels,
                                               decoded->stride);
  cache_insert(self, decoded->item_id, texture);
  decoded_free(decoded);
  return texture;
}

static void
fth_thumbnail_loader_finalize(GObject *object)
{
  FthThumbnailLoader *self = FTH_THUMBNAIL_LOADER(object);

  /* Every queued task holds a reference to us, so the pool is idle; but the last reference
   * may be the one a worker drops, so do not wait for the pool's threads (that would be a
   * worker joining itself). */
  g_thread_pool_free(self->pool, FALSE, FALSE);
  g_hash_table_destroy(self->cache);
  g_queue_clear_full(&self->lru, (GDestroyNotify)cache_entry_free);
  g_hash_table_destroy(self->idx_files);
  g_mutex_clear(&self->idx_lock);
  g_clear_object(&self->store);

  G_OBJECT_CLASS(fth_thumbnail_loader_parent_class)->finalize(object);
}

static void
fth_thumbnail_loader_class_init(FthThumbnailLoaderClass *klass)
{
  G_OBJECT_CLASS(klass)->finalize = fth_thumbnail_loader_finalize;
}

static void
fth_thumbnail_loader_init(FthThumbnailLoader *self)
{
  self->cache = g_hash_table_new(g_int64_hash, g_int64_equal);
  g_queue_init(&self->lru);
  g_mutex_init(&self->idx_lock);
  self->idx_files = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                          (GDestroyNotify)fth_idx_free);
}
