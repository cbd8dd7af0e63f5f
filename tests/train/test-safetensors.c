/* safetensors: round trip, validation of malformed files, atomic replacement under injected
 * write failures (ENOSPC) and fsync failure. */
#include <errno.h>
#include <fathom/safetensors.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>

#include "../../engine/train/train-private.h"

static char *tmpdir;

static char *
tmp_path(const char *name)
{
  return g_build_filename(tmpdir, name, NULL);
}

static void
write_two(const char *path, float base, GError **error, gboolean *ok)
{
  float a[6];
  int32_t b[3] = {7, -8, 9};
  for (int i = 0; i < 6; i++)
    a[i] = base + (float)i * 0.5f;
  FthStTensor t[2] = {
    {.name = "layer.weight", .dtype = FTH_ST_F32, .ndim = 2, .shape = {2, 3}, .data = a,
     .nbytes = sizeof a},
    {.name = "layer.index", .dtype = FTH_ST_I32, .ndim = 1, .shape = {3}, .data = b,
     .nbytes = sizeof b},
  };
  g_autoptr(GHashTable) meta = g_hash_table_new(g_str_hash, g_str_equal);
  g_hash_table_insert(meta, "format", "pt");
  g_hash_table_insert(meta, "step", "12");
  *ok = fth_safetensors_write(path, t, 2, meta, error);
}

static void
test_round_trip(void)
{
  g_autofree char *path = tmp_path("rt.safetensors");
  GError *error = NULL;
  gboolean ok;
  write_two(path, 1.0f, &error, &ok);
  g_assert_no_error(error);
  g_assert_true(ok);

  /* The raw layout: 8-byte little-endian length, JSON header padded to 8, then data. */
  g_autofree char *raw = NULL;
  gsize len;
  g_assert_true(g_file_get_contents(path, &raw, &len, NULL));
  guint64 hlen = 0;
  for (int i = 7; i >= 0; i--)
    hlen = (hlen << 8) | (guint8)raw[i];
  g_assert_cmpuint(hlen % 8, ==, 0);
  g_assert_cmpuint(8 + hlen + 6 * 4 + 3 * 4, ==, len);
  g_assert_cmpint(raw[8], ==, '{');
  float first;
  memcpy(&first, raw + 8 + hlen, 4);
  g_assert_cmpfloat(first, ==, 1.0f);

  FthSafetensors *st = fth_safetensors_open(path, &error);
  g_assert_no_error(error);
  g_assert_cmpuint(fth_safetensors_n_tensors(st), ==, 2);
  const FthStTensor *w = fth_safetensors_find(st, "layer.weight");
  g_assert_nonnull(w);
  g_assert_cmpint(w->dtype, ==, FTH_ST_F32);
  g_assert_cmpint(w->ndim, ==, 2);
  g_assert_cmpint(w->shape[0], ==, 2);
  g_assert_cmpint(w->shape[1], ==, 3);
  const float *wv = w->data;
  for (int i = 0; i < 6; i++)
    g_assert_cmpfloat(wv[i], ==, 1.0f + (float)i * 0.5f);
  const FthStTensor *b = fth_safetensors_find(st, "layer.index");
  g_assert_cmpint(((const int32_t *)b->data)[1], ==, -8);
  g_assert_null(fth_safetensors_find(st, "missing"));
  g_assert_cmpstr(fth_safetensors_metadata(st, "step"), ==, "12");
  g_assert_cmpstr(fth_safetensors_metadata(st, "format"), ==, "pt");
  g_assert_null(fth_safetensors_metadata(st, "nope"));
  fth_safetensors_free(st);
}

/* Writes header JSON + data bytes as a file and expects open to fail mentioning `needle`. */
static void
expect_bad(const char *header, gsize data_len, gint64 header_len_override, const char *needle)
{
  g_autofree char *path = tmp_path("bad.safetensors");
  gsize hl = strlen(header);
  guint64 declared = header_len_override >= 0 ? (guint64)header_len_override : hl;
  GByteArray *buf = g_byte_array_new();
  for (int i = 0; i < 8; i++) {
    guint8 byte = (guint8)(declared >> (8 * i));
    g_byte_array_append(buf, &byte, 1);
  }
  g_byte_array_append(buf, (const guint8 *)header, (guint)hl);
  for (gsize i = 0; i < data_len; i++) {
    guint8 z = 0;
    g_byte_array_append(buf, &z, 1);
  }
  g_assert_true(g_file_set_contents(path, (const char *)buf->data, buf->len, NULL));
  g_byte_array_unref(buf);
  GError *error = NULL;
  FthSafetensors *st = fth_safetensors_open(path, &error);
  g_assert_null(st);
  g_assert_error(error, FTH_SAFETENSORS_ERROR, FTH_SAFETENSORS_ERROR_FORMAT);
  if (!strstr(error->message, needle) || !strstr(error->message, "bad.safetensors"))
    g_error("message '%s' lacks '%s' or the file name", error->message, needle);
  g_error_free(error);
}

static void
test_bad_files(void)
{
  expect_bad("{}", 0, 1000, "runs past the end");
  expect_bad("{}", 0, (gint64)200 * 1000 * 1000, "exceeds the limit");
  expect_bad("[1, 2]", 0, -1, "JSON object");
  expect_bad("{\"a\": ", 0, -1, "not valid JSON");
  expect_bad("{\"a\": {\"dtype\": \"F33\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 4, -1,
             "unknown dtype 'F33'");
  expect_bad("{\"a\": {\"shape\": [1], \"data_offsets\": [0, 4]}}", 4, -1, "'dtype'");
  expect_bad("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 4]}}", 4, -1,
             "do not match its shape");
  expect_bad("{\"a\": {\"dtype\": \"F32\", \"shape\": [-1], \"data_offsets\": [0, 4]}}", 4, -1,
             "shape[0]");
  expect_bad("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 8]}}", 4, -1,
             "run past");
  expect_bad("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 0]}}", 4, -1,
             "begin <= end");
  expect_bad("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]},"
             " \"b\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 8, -1,
             "overlap");
  expect_bad("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}", 8, -1,
             "hole");
  expect_bad("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 12, -1,
             "cover 4 of the 12");
  expect_bad("{\"__metadata__\": {\"k\": 3}}", 0, -1, "not a string");

  /* Too short for the length prefix. */
  g_autofree char *path = tmp_path("short.safetensors");
  g_assert_true(g_file_set_contents(path, "abc", 3, NULL));
  GError *error = NULL;
  g_assert_null(fth_safetensors_open(path, &error));
  g_assert_error(error, FTH_SAFETENSORS_ERROR, FTH_SAFETENSORS_ERROR_FORMAT);
  g_clear_error(&error);
  g_autofree char *missing = tmp_path("missing.safetensors");
  g_assert_null(fth_safetensors_open(missing, &error));
  g_assert_error(error, FTH_SAFETENSORS_ERROR, FTH_SAFETENSORS_ERROR_IO);
  g_assert_nonnull(strstr(error->message, "missing.safetensors"));
  g_clear_error(&error);
}

/* The reference writer puts an empty tensor at the offset where the next one starts. */
static void
test_empty_tensor_offsets(void)
{
  g_autofree char *path = tmp_path("empty.safetensors");
  const char *header = "{\"b\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]},"
                       " \"e\": {\"dtype\": \"F32\", \"shape\": [0, 3], \"data_offsets\": [4, 4]},"
                       " \"a\": {\"dtype\": \"U8\", \"shape\": [2], \"data_offsets\": [4, 6]}}";
  gsize hl = strlen(header);
  g_autofree char *buf = g_malloc0(8 + hl + 6);
  for (int i = 0; i < 8; i++)
    buf[i] = (char)((guint64)hl >> (8 * i));
  memcpy(buf + 8, header, hl);
  buf[8 + hl + 4] = 7;
  g_assert_true(g_file_set_contents(path, buf, (gssize)(8 + hl + 6), NULL));
  GError *error = NULL;
  FthSafetensors *st = fth_safetensors_open(path, &error);
  g_assert_no_error(error);
  g_assert_cmpuint(fth_safetensors_n_tensors(st), ==, 3);
  g_assert_cmpuint(fth_safetensors_find(st, "e")->nbytes, ==, 0);
  g_assert_cmpint(((const guint8 *)fth_safetensors_find(st, "a")->data)[0], ==, 7);
  fth_safetensors_free(st);
}

static void
test_bad_arguments(void)
{
  g_autofree char *path = tmp_path("args.safetensors");
  float v[2] = {1, 2};
  FthStTensor dup[2] = {
    {.name = "x", .dtype = FTH_ST_F32, .ndim = 1, .shape = {2}, .data = v, .nbytes = 8},
    {.name = "x", .dtype = FTH_ST_F32, .ndim = 1, .shape = {2}, .data = v, .nbytes = 8},
  };
  GError *error = NULL;
  g_assert_false(fth_safetensors_write(path, dup, 2, NULL, &error));
  g_assert_error(error, FTH_SAFETENSORS_ERROR, FTH_SAFETENSORS_ERROR_ARGUMENT);
  g_assert_nonnull(strstr(error->message, "appears twice"));
  g_clear_error(&error);
  FthStTensor wrong = {.name = "y", .dtype = FTH_ST_F32, .ndim = 1, .shape = {3}, .data = v,
                       .nbytes = 8};
  g_assert_false(fth_safetensors_write(path, &wrong, 1, NULL, &error));
  g_assert_nonnull(strstr(error->message, "does not match"));
  g_clear_error(&error);
  g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
}

static int
count_dir_entries(void)
{
  GDir *d = g_dir_open(tmpdir, 0, NULL);
  int n = 0;
  while (g_dir_read_name(d))
    n++;
  g_dir_close(d);
  return n;
}

/* A full disk at every point of the write leaves the previous checkpoint byte-identical and
 * no temporary file behind. */
static void
test_atomic_enospc(void)
{
  g_autofree char *path = tmp_path("ckpt.safetensors");
  GError *error = NULL;
  gboolean ok;
  write_two(path, 1.0f, &error, &ok);
  g_assert_no_error(error);
  g_autofree char *before = NULL;
  gsize before_len;
  g_assert_true(g_file_get_contents(path, &before, &before_len, NULL));
  int entries = count_dir_entries();

  for (gint64 after = 0; after < (gint64)before_len; after += 7) {
    fth_file_inject_fault(ENOSPC, after, 0);
    write_two(path, 100.0f, &error, &ok);
    fth_file_inject_fault(0, -1, 0);
    g_assert_false(ok);
    g_assert_error(error, FTH_SAFETENSORS_ERROR, FTH_SAFETENSORS_ERROR_IO);
    g_assert_nonnull(strstr(error->message, "ckpt.safetensors"));
    g_assert_nonnull(strstr(error->message, g_strerror(ENOSPC)));
    g_clear_error(&error);
    g_autofree char *now = NULL;
    gsize now_len;
    g_assert_true(g_file_get_contents(path, &now, &now_len, NULL));
    g_assert_cmpmem(now, now_len, before, before_len);
    g_assert_cmpint(count_dir_entries(), ==, entries);
  }

  fth_file_inject_fault(0, -1, EIO);
  write_two(path, 100.0f, &error, &ok);
  fth_file_inject_fault(0, -1, 0);
  g_assert_false(ok);
  g_assert_nonnull(strstr(error->message, "fsync"));
  g_clear_error(&error);
  g_assert_cmpint(count_dir_entries(), ==, entries);

  /* Without faults the new content replaces the old. */
  write_two(path, 100.0f, &error, &ok);
  g_assert_no_error(error);
  FthSafetensors *st = fth_safetensors_open(path, &error);
  g_assert_no_error(error);
  g_assert_cmpfloat(((const float *)fth_safetensors_find(st, "layer.weight")->data)[0], ==,
                    100.0f);
  fth_safetensors_free(st);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  tmpdir = g_dir_make_tmp("fth-st-XXXXXX", NULL);
  g_test_add_func("/safetensors/round-trip", test_round_trip);
  g_test_add_func("/safetensors/bad-files", test_bad_files);
  g_test_add_func("/safetensors/empty-tensor-offsets", test_empty_tensor_offsets);
  g_test_add_func("/safetensors/bad-arguments", test_bad_arguments);
  g_test_add_func("/safetensors/atomic-enospc", test_atomic_enospc);
  int rc = g_test_run();
  GDir *d = g_dir_open(tmpdir, 0, NULL);
  const char *name;
  while ((name = g_dir_read_name(d)) != NULL) {
    g_autofree char *p = tmp_path(name);
    g_unlink(p);
  }
  g_dir_close(d);
  g_rmdir(tmpdir);
  g_free(tmpdir);
  return rc;
}
