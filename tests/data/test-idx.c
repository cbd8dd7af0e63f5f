/* IDX reader: small files made here (plain, gzip, multi-member gzip), truncation and bad magic,
 * and the real Fashion-MNIST files when Debian's dataset-fashion-mnist is installed. */
#include <fathom/media.h>

#include <glib/gstdio.h>
#include <string.h>
#include <zlib.h>

#define FASHION_DIR "/usr/share/datasets/fashion-mnist"

/* n records of rows x cols u8, value = record * 7 + position. */
static GByteArray *
make_idx(guint32 n, guint32 rows, guint32 cols)
{
  GByteArray *a = g_byte_array_new();
  const guint8 magic[4] = {0, 0, 0x08, 3};
  g_byte_array_append(a, magic, 4);
  const guint32 dims[3] = {n, rows, cols};
  for (int i = 0; i < 3; i++) {
    guint32 be = GUINT32_TO_BE(dims[i]);
    g_byte_array_append(a, (const guint8 *) &be, 4);
  }
  for (guint32 r = 0; r < n; r++)
    for (guint32 p = 0; p < rows * cols; p++) {
      guint8 v = (guint8) (r * 7 + p);
      g_byte_array_append(a, &v, 1);
    }
  return a;
}

static GByteArray *
gzip_bytes(const guint8 *data, gsize len)
{
  z_stream zs = {0};
  g_assert_cmpint(deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), ==, Z_OK);
  GByteArray *out = g_byte_array_sized_new((guint) deflateBound(&zs, (uLong) len));
  g_byte_array_set_size(out, (guint) deflateBound(&zs, (uLong) len));
  zs.next_in = (Bytef *) data;
  zs.avail_in = (uInt) len;
  zs.next_out = out->data;
  zs.avail_out = out->len;
  g_assert_cmpint(deflate(&zs, Z_FINISH), ==, Z_STREAM_END);
  g_byte_array_set_size(out, (guint) zs.total_out);
  deflateEnd(&zs);
  return out;
}

static void
check_small(FthIdx *idx, guint32 n, guint32 rows, guint32 cols)
{
  g_assert_nonnull(idx);
  g_assert_cmpint(fth_idx_get_dtype(idx), ==, FTH_IDX_U8);
  g_assert_cmpuint(fth_idx_get_n_dims(idx), ==, 3);
  g_assert_cmpuint(fth_idx_get_dim(idx, 0), ==, n);
  g_assert_cmpuint(fth_idx_get_dim(idx, 1), ==, rows);
  g_assert_cmpuint(fth_idx_get_dim(idx, 2), ==, cols);
  g_assert_cmpuint(fth_idx_get_n_records(idx), ==, n);
  g_assert_cmpuint(fth_idx_get_record_size(idx), ==, rows * cols);
  for (guint32 r = 0; r < n; r++) {
    const guint8 *rec = fth_idx_get_record(idx, r);
    for (guint32 p = 0; p < rows * cols; p++)
      g_assert_cmpuint(rec[p], ==, (guint8) (r * 7 + p));
  }
  g_assert_null(fth_idx_get_record(idx, n));
  gsize len = 0;
  g_assert_true(fth_idx_get_data(idx, &len) == fth_idx_get_record(idx, 0));
  g_assert_cmpuint(len, ==, n * rows * cols);
}

static void
test_plain_and_gzip(void)
{
  g_autoptr(GByteArray) raw = make_idx(5, 3, 4);
  g_autoptr(GError) error = NULL;
  g_autoptr(FthIdx) plain = fth_idx_new_from_memory(raw->data, raw->len, "a-idx3-ubyte", &error);
  g_assert_no_error(error);
  check_small(plain, 5, 3, 4);

  g_autoptr(GByteArray) gz = gzip_bytes(raw->data, raw->len);
  g_autoptr(FthIdx) unzipped = fth_idx_new_from_memory(gz->data, gz->len, "a.gz", &error);
  g_assert_no_error(error);
  check_small(unzipped, 5, 3, 4);

  /* Two gzip members concatenated (what `cat a.gz b.gz` makes) are one stream. */
  g_autoptr(GByteArray) first = gzip_bytes(raw->data, 20);
  g_autoptr(GByteArray) second = gzip_bytes(raw->data + 20, raw->len - 20);
  g_byte_array_append(first, second->data, second->len);
  g_autoptr(FthIdx) multi = fth_idx_new_from_memory(first->data, first->len, "m.gz", &error);
  g_assert_no_error(error);
  check_small(multi, 5, 3, 4);

  /* Through a file. */
  g_autofree char *dir = g_dir_make_tmp("fth-idx-XXXXXX", NULL);
  g_autofree char *path = g_build_filename(dir, "t-idx3-ubyte.gz", NULL);
  g_assert_true(g_file_set_contents(path, (const char *) gz->data, gz->len, NULL));
  g_autoptr(FthIdx) from_file = fth_idx_open(path, &error);
  g_assert_no_error(error);
  check_small(from_file, 5, 3, 4);
  g_remove(path);
  g_rmdir(dir);
}

static void
test_errors(void)
{
  g_autoptr(GByteArray) raw = make_idx(5, 3, 4);
  g_autoptr(GError) error = NULL;
  /* One byte short of 5 * 12 data bytes. */
  g_assert_null(fth_idx_new_from_memory(raw->data, raw->len - 1, "short-idx3-ubyte", &error));
  g_assert_error(error, FTH_MEDIA_ERROR, FTH_MEDIA_ERROR_TRUNCATED);
  g_assert_cmpstr(error->message, ==,
                  "short-idx3-ubyte: IDX data ends early: 5 records of 12 bytes need 60 bytes "
                  "after the header, found 59");
  g_clear_error(&error);

  g_assert_null(fth_idx_new_from_memory(raw->data, 10, "hdr", &error));
  g_assert_error(error, FTH_MEDIA_ERROR, FTH_MEDIA_ERROR_TRUNCATED);
  g_clear_error(&error);

  g_autoptr(GByteArray) gz = gzip_bytes(raw->data, raw->len);
  g_assert_null(fth_idx_new_from_memory(gz->data, gz->len / 2, "cut.gz", &error));
  g_assert_error(error, FTH_MEDIA_ERROR, FTH_MEDIA_ERROR_TRUNCATED);
  g_assert_true(g_str_has_prefix(error->message, "cut.gz: "));
  g_clear_error(&error);

  gz->data[gz->len / 2] ^= 0xFF;
  gz->data[gz->len / 2 + 1] ^= 0x55;
  g_assert_null(fth_idx_new_from_memory(gz->data, gz->len, "bad.gz", &error));
  g_assert_true(g_error_matches(error, FTH_MEDIA_ERROR, FTH_MEDIA_ERROR_CORRUPT) ||
                g_error_matches(error, FTH_MEDIA_ERROR, FTH_MEDIA_ERROR_TRUNCATED));
  g_clear_error(&error);

  raw->data[2] = 0x42; /* unknown element type */
  g_assert_null(fth_idx_new_from_memory(raw->data, raw->len, "magic", &error));
  g_assert_error(error, FTH_MEDIA_ERROR, FTH_MEDIA_ERROR_CORRUPT);
  g_clear_error(&error);

  g_assert_null(fth_idx_new_from_memory(raw->data, 0, "empty", &error));
  g_assert_error(error, FTH_MEDIA_ERROR, FTH_MEDIA_ERROR_EMPTY);
  g_clear_error(&error);

  g_assert_null(fth_idx_open("/nonexistent/x-idx1-ubyte", &error));
  g_assert_error(error, FTH_MEDIA_ERROR, FTH_MEDIA_ERROR_IO);
}

static void
test_fashion_mnist(void)
{
  const struct {
    const char *file;
    guint32 count;
    guint n_dims;
  } files[] = {
    {"train-images-idx3-ubyte.gz", 60000, 3},
    {"train-labels-idx1-ubyte.gz", 60000, 1},
    {"t10k-images-idx3-ubyte.gz", 10000, 3},
    {"t10k-labels-idx1-ubyte.gz", 10000, 1},
  };
  if (!g_file_test(FASHION_DIR, G_FILE_TEST_IS_DIR)) {
    g_test_skip("no " FASHION_DIR " (Debian package dataset-fashion-mnist)");
    return;
  }
  for (gsize f = 0; f < G_N_ELEMENTS(files); f++) {
    g_autofree char *path = g_build_filename(FASHION_DIR, files[f].file, NULL);
    g_autoptr(GError) error = NULL;
    gint64 t0 = g_get_monotonic_time();
    g_autoptr(FthIdx) idx = fth_idx_open(path, &error);
    gint64 t1 = g_get_monotonic_time();
    g_assert_no_error(error);
    g_test_message("%s: loaded in %.1f ms", files[f].file, (double) (t1 - t0) / 1000.0);
    g_assert_cmpint(fth_idx_get_dtype(idx), ==, FTH_IDX_U8);
    g_assert_cmpuint(fth_idx_get_n_dims(idx), ==, files[f].n_dims);
    g_assert_cmpuint(fth_idx_get_n_records(idx), ==, files[f].count);
    if (files[f].n_dims == 3) {
      g_assert_cmpuint(fth_idx_get_dim(idx, 1), ==, 28);
      g_assert_cmpuint(fth_idx_get_dim(idx, 2), ==, 28);
      g_assert_cmpuint(fth_idx_get_record_size(idx), ==, 784);
    } else {
      /* Fashion-MNIST is balanced: every one of the 10 classes has a tenth of the records. */
      guint counts[10] = {0};
      gsize len = 0;
      const guint8 *labels = fth_idx_get_data(idx, &len);
      for (gsize i = 0; i < len; i++) {
        g_assert_cmpuint(labels[i], <, 10);
        counts[labels[i]]++;
      }
      for (int c = 0; c < 10; c++)
        g_assert_cmpuint(counts[c], ==, files[f].count / 10);
    }
  }
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/idx/plain-and-gzip", test_plain_and_gzip);
  g_test_add_func("/idx/errors", test_errors);
  g_test_add_func("/idx/fashion-mnist", test_fashion_mnist);
  return g_test_run();
}
