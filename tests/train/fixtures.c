/* Shared by the tests in tests/train: see fixtures.h. */
#include "fixtures.h"

#include <fathom/safetensors.h>
#include <fathom/train.h>

void
train_test_bar_samples(guint8 *pixels, int32_t *classes, int n, int size, int n_classes)
{
  GRand *r = g_rand_new_with_seed(5);
  for (int i = 0; i < n; i++) {
    guint8 *img = pixels + (gsize)i * size * size;
    int cls = i % n_classes;
    if (classes != NULL)
      classes[i] = cls;
    for (int p = 0; p < size * size; p++)
      img[p] = (guint8)g_rand_int_range(r, 0, 60);
    for (int x = 0; x < size; x++) {
      img[(2 * cls + 1) * size + x] = (guint8)g_rand_int_range(r, 180, 256);
      img[(2 * cls + 2) * size + x] = (guint8)g_rand_int_range(r, 180, 256);
    }
  }
  g_rand_free(r);
}

void
train_test_bar_project(const char *dir, int n, int size, int n_classes)
{
  static const char *const names[] = {"top", "middle", "bottom"};
  g_assert_cmpint(n_classes, <=, (int)G_N_ELEMENTS(names));
  g_autoptr(GError) error = NULL;
  g_autoptr(FthStore) store = fth_store_create(dir, &error);
  g_assert_no_error(error);
  g_autofree guint8 *pixels = g_malloc((gsize)n * size * size);
  train_test_bar_samples(pixels, NULL, n, size, n_classes);
  g_autofree char *idx_path = g_build_filename(dir, "images-idx3-ubyte", NULL);
  const guint32 dims[3] = {(guint32)n, (guint32)size, (guint32)size};
  fth_test_write_idx(idx_path, dims, 3, pixels, FALSE);
  gint64 labels[G_N_ELEMENTS(names)];
  fth_test_add_labels(store, names, n_classes, labels);
  fth_test_add_idx_items(store, idx_path, n, size, labels, n_classes, n, NULL);
}

GByteArray *
train_test_checkpoint_weights(const char *ckpt_dir)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(FthCheckpointMeta) m = fth_checkpoint_load_meta(ckpt_dir, &error);
  g_assert_no_error(error);
  g_autofree char *path = g_build_filename(ckpt_dir, m->weights_file, NULL);
  FthSafetensors *st = fth_safetensors_open(path, &error);
  g_assert_no_error(error);
  GByteArray *all = g_byte_array_new();
  for (size_t i = 0; i < fth_safetensors_n_tensors(st); i++) {
    const FthStTensor *t = fth_safetensors_nth(st, i);
    g_byte_array_append(all, t->data, (guint)t->nbytes);
  }
  fth_safetensors_free(st);
  return all;
}
