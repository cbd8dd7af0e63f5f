/* store-test-util.h: temporary project directories and item fixtures for the store tests. */
#pragma once

#include <fathom/store.h>
#include <glib/gstdio.h>

/* A fresh empty directory under $TMPDIR; remove it with store_test_remove_dir(). */
static inline char *
store_test_make_dir(void)
{
  g_autoptr(GError) error = NULL;
  char *dir = g_dir_make_tmp("fathom-store-XXXXXX", &error);
  g_assert_no_error(error);
  return dir;
}

static inline void
store_test_remove_dir(const char *path)
{
  GDir *dir = g_dir_open(path, 0, NULL);
  if (dir != NULL) {
    const char *name;
    while ((name = g_dir_read_name(dir)) != NULL) {
      g_autofree char *child = g_build_filename(path, name, NULL);
      if (g_file_test(child, G_FILE_TEST_IS_DIR) && !g_file_test(child, G_FILE_TEST_IS_SYMLINK))
        store_test_remove_dir(child);
      else
        g_unlink(child);
    }
    g_dir_close(dir);
  }
  g_rmdir(path);
}

/* An image item at PATH whose sha256 is the hash of PATH (unique per path). */
static inline FthItemRecord *
store_test_image(const char *path, int w, int h)
{
  FthItemRecord *item = fth_item_record_new();
  item->kind = FTH_ITEM_IMAGE;
  item->path = g_strdup(path);
  item->sha256 = g_compute_checksum_for_string(G_CHECKSUM_SHA256, path, -1);
  item->width = w;
  item->height = h;
  item->size_bytes = w * h;
  return item;
}

static inline gint64
store_test_add(FthStore *store, FthItemRecord *item)
{
  g_autoptr(GError) error = NULL;
  gint64 id = 0;
  gboolean dup = TRUE;
  g_assert_true(fth_store_add_item(store, item, &id, &dup, &error));
  g_assert_no_error(error);
  g_assert_false(dup);
  g_assert_cmpint(id, >, 0);
  return id;
}
