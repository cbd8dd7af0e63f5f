/* fth-thumbnail-loader.h: item thumbnails decoded on worker threads, kept in a small LRU cache.
 *
 * Decoding uses the engine's decoders (fathom/media.h) on a private pool of worker threads so
 * the main loop never touches a file. The newest request runs first, so the cells in view load
 * before those scrolled past. An item that is a record of an IDX file (Fashion-MNIST: path =
 * the .gz file, member = record index) reads that file once per loader; all its records then
 * share it. Thumbnails at most SIZE pixels on their longer side; smaller images are kept as
 * they are (the widget scales them). Use a loader from the GTK main thread. */
#pragma once

#include <fathom/item-list.h>
#include <gtk/gtk.h>

G_BEGIN_DECLS

#define FTH_TYPE_THUMBNAIL_LOADER (fth_thumbnail_loader_get_type())
G_DECLARE_FINAL_TYPE(FthThumbnailLoader, fth_thumbnail_loader, FTH, THUMBNAIL_LOADER, GObject)

FthThumbnailLoader *fth_thumbnail_loader_new(FthStore *store, int size, guint capacity);

int fth_thumbnail_loader_get_size(FthThumbnailLoader *self);
guint fth_thumbnail_loader_get_n_cached(FthThumbnailLoader *self);

/* The cached thumbnail of ITEM (transfer full), or NULL; a hit makes it the most recent. */
GdkTexture *fth_thumbnail_loader_lookup(FthThumbnailLoader *self, FthItem *item);

/* Decodes ITEM's thumbnail on a worker thread. Non-image items fail with
 * G_IO_ERROR_NOT_SUPPORTED; decode errors are those of fathom/media.h, naming the file. */
void fth_thumbnail_loader_load_async(FthThumbnailLoader *self, FthItem *item,
                                     GCancellable *cancellable, GAsyncReadyCallback callback,
                                     gpointer user_data);
/* The thumbnail (transfer full), now also in the cache. */
GdkTexture *fth_thumbnail_loader_load_finish(FthThumbnailLoader *self, GAsyncResult *result,
                                             GError **error);

G_END_DECLS
