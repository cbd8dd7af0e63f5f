#include "fth-test-project.h"

#include <fathom/media.h>
#include <glib/gstdio.h>
#include <zlib.h>

void
fth_test_rmtree(const char *path)
{
  if (g_file_test(path, G_FILE_TEST_IS_DIR) && !g_file_test(path, G_FILE_TEST_IS_SYMLINK)) {
    g_autoptr(GDir) dir = g_dir_open(path, 0, NULL);
    const char *name;
    while (dir != NULL && (name = g_dir_read_name(dir)) != NULL) {
      g_autofree char *child = g_build_filename(path, name, NULL);
      fth_test_rmtree(child);
    }
    g_rmdir(path);
  } else {
    g_unlink(path);
  }
}

void
fth_test_write(const char *path, const void *data, gsize len)
{
  g_autofree char *dir = g_path_get_dirname(path);
  g_assert_cmpint(g_mkdir_with_parents(dir, 0755), ==, 0);
  g_autoptr(GError) error = NULL;
  g_file_set_contents(path, data, (gssize)len, &error);
  g_assert_no_error(error);
}

void
fth_test_write_idx(const char *path, const guint32 *dims, guint n_dims, const guint8 *data,
                   gboolean gzip)
{
  GByteArray *a = g_byte_array_new();
  guint8 magic[4] = { 0, 0, 0x08, (guint8)n_dims };
  g_byte_array_append(a, magic, 4);
  gsize n = 1;
  for (guint i = 0; i < n_dims; i++) {
    guint8 d[4] = { (guint8)(dims[i] >> 24), (guint8)(dims[i] >> 16), (guint8)(dims[i] >> 8),
                    (guint8)dims[i] };
    g_byte_array_append(a, d, 4);
    n *= dims[i];
  }
  g_byte_array_append(a, data, (guint)n);
  if (!gzip) {
    fth_test_write(path, a->data, a->len);
  } else {
    g_autofree char *dir = g_path_get_dirname(path);
    g_assert_cmpint(g_mkdir_with_parents(dir, 0755), ==, 0);
    gzFile f = gzopen(path, "wb");
    g_assert_nonnull(f);
    g_assert_cmpint(gzwrite(f, a->data, a->len), ==, (int)a->len);
    g_assert_cmpint(gzclose(f), ==, Z_OK);
  }
  g_byte_array_unref(a);
}

guint8 *
fth_test_bars_pixels(const FthTestBars *bars)
{
  const int s = bars->size;
  guint8 *pixels = g_malloc((gsize)bars->n_items * s * s);
  g_autoptr(GRand) r = g_rand_new_with_seed(bars->seed);
  for (int i = 0; i < bars->n_items; i++) {
    guint8 *img = pixels + (gsize)i * s * s;
    int cls = i % bars->n_classes;
    for (int p = 0; p < s * s; p++)
      img[p] = (guint8)g_rand_int_range(r, 0, bars->noise_max);
    for (int x = 0; x < s; x++) {
      img[(2 * cls + 1) * s + x] = (guint8)g_rand_int_range(r, bars->bar_min, 256);
      if (bars->two_bars)
        img[(2 * cls + 2) * s + x] = (guint8)g_rand_int_range(r, bars->bar_min, 256);
    }
  }
  return pixels;
}

void
fth_test_add_labels(FthStore *store, const char *const *names, int n, gint64 *label_ids)
{
  g_autoptr(GError) error = NULL;
  for (int k = 0; k < n; k++) {
    g_assert_true(
      fth_store_add_label(store, names[k], NULL, NULL, FTH_LABEL_CLASS, &label_ids[k], &error));
    g_assert_no_error(error);
  }
}

void
fth_test_add_idx_items(FthStore *store, const char *idx_path, int n_items, int size,
                       const gint64 *label_ids, int n_classes, int n_labeled, gint64 *item_ids)
{
  g_autoptr(GError) error = NULL;
  g_assert_true(fth_store_begin(store, &error));
  for (int i = 0; i < n_items; i++) {
    g_autoptr(FthItemRecord) it = fth_item_record_new();
    it->kind = FTH_ITEM_IMAGE;
    it->path = g_strdup(idx_path);
    it->member = i;
    it->sha256 = g_strdup_printf("%064x", i + 1);
    it->width = it->height = size;
    gint64 id;
    g_assert_true(fth_store_add_item(store, it, &id, NULL, &error));
    if (item_ids != NULL)
      item_ids[i] = id;
    if (i < n_labeled)
      g_assert_true(fth_store_set_class(store, id, label_ids[i % n_classes], FTH_AUTHOR_HUMAN, 0,
                                        1.0, NULL, &error));
  }
  g_assert_true(fth_store_commit(store, &error));
  g_assert_no_error(error);
}

FthStore *
fth_test_bars_project_new(const char *dir, const FthTestBars *bars,
                          const char *const *class_names, int n_labeled, gint64 *label_ids,
                          gint64 *item_ids)
{
  g_autoptr(GError) error = NULL;
  FthStore *store = fth_store_create(dir, &error);
  g_assert_no_error(error);
  g_autofree char *idx_path = g_build_filename(dir, "images-idx3-ubyte", NULL);
  g_autofree guint8 *pixels = fth_test_bars_pixels(bars);
  const guint32 dims[3] = { (guint32)bars->n_items, (guint32)bars->size, (guint32)bars->size };
  fth_test_write_idx(idx_path, dims, 3, pixels, FALSE);
  g_autofree gint64 *own_labels = label_ids ? NULL : g_new(gint64, bars->n_classes);
  gint64 *labels = label_ids ? label_ids : own_labels;
  fth_test_add_labels(store, class_names, bars->n_classes, labels);
  fth_test_add_idx_items(store, idx_path, bars->n_items, bars->size, labels, bars->n_classes,
                         n_labeled, item_ids);
  return store;
}

gboolean
fth_test_have_fmnist(void)
{
  if (g_file_test(FTH_TEST_FMNIST "/train-images-idx3-ubyte.gz", G_FILE_TEST_EXISTS))
    return TRUE;
  g_printerr("SKIP: " FTH_TEST_FMNIST " is missing (apt-get install dataset-fashion-mnist)\n");
  return FALSE;
}

void
fth_test_add_fmnist_items(FthStore *store, int n)
{
  static const char *const names[10] = { "T-shirt/top", "Trouser", "Pullover", "Dress",
                                          "Coat",        "Sandal",  "Shirt",    "Sneaker",
                                          "Bag",         "Ankle boot" };
  const char *images = FTH_TEST_FMNIST "/train-images-idx3-ubyte.gz";
  g_autoptr(GError) error = NULL;
  g_autoptr(FthIdx) img = fth_idx_open(images, &error);
  g_assert_no_error(error);
  g_autoptr(FthIdx) lab = fth_idx_open(FTH_TEST_FMNIST "/train-labels-idx1-ubyte.gz", &error);
  g_assert_no_error(error);
  gint64 label_ids[10];
  fth_test_add_labels(store, names, 10, label_ids);
  g_assert_true(fth_store_begin(store, &error));
  for (int i = 0; i < n; i++) {
    g_autoptr(FthItemRecord) it = fth_item_record_new();
    it->kind = FTH_ITEM_IMAGE;
    it->path = g_strdup(images);
    it->member = i;
    /* Content hash of the record plus its index: identical images stay distinct items. */
    g_autoptr(GChecksum) sum = g_checksum_new(G_CHECKSUM_SHA256);
    g_checksum_update(sum, fth_idx_get_record(img, (gsize)i), 784);
    g_checksum_update(sum, (const guchar *)&i, sizeof i);
    it->sha256 = g_strdup(g_checksum_get_string(sum));
    it->width = it->height = 28;
    gint64 id;
    g_assert_true(fth_store_add_item(store, it, &id, NULL, &error));
    g_assert_true(fth_store_set_class(store, id, label_ids[fth_idx_get_record(lab, (gsize)i)[0]],
                                      FTH_AUTHOR_HUMAN, 0, 1.0, NULL, &error));
  }
  g_assert_true(fth_store_commit(store, &error));
  g_assert_no_error(error);
}

char *
fth_test_fmnist_project_new(const char *root, int n)
{
  char *dir = g_build_filename(root, "fmnist", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(FthStore) store = fth_store_create(dir, &error);
  g_assert_no_error(error);
  fth_test_add_fmnist_items(store, n);
  return dir;
}
