/* safetensors conformance with Python's `safetensors` package, both ways: a file Fathom writes
 * loads there with the same dtypes, shapes, bytes and metadata, and a file it writes loads here.
 * The package (and numpy) come from PyPI into a venv under the build directory when the system
 * Python lacks them; the test is skipped (77) only when that cannot be done. */
#include <fathom/safetensors.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <string.h>

static gboolean
run(const char *const *argv, gboolean quiet)
{
  int status = 0;
  g_autofree char *err = NULL;
  GError *error = NULL;
  if (!g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, &err,
                    &status, &error)) {
    g_printerr("%s: %s\n", argv[0], error->message);
    g_error_free(error);
    return FALSE;
  }
  if (!g_spawn_check_wait_status(status, NULL)) {
    if (!quiet)
      g_printerr("%s failed:\n%s\n", argv[0], err ? err : "");
    return FALSE;
  }
  return TRUE;
}

static gboolean
has_packages(const char *python)
{
  const char *argv[] = {python, "-c", "import safetensors.numpy, numpy", NULL};
  return g_file_test(python, G_FILE_TEST_IS_EXECUTABLE) && run(argv, TRUE);
}

/* A Python that imports safetensors and numpy, or NULL. */
static char *
find_python(void)
{
  if (has_packages("/usr/bin/python3"))
    return g_strdup("/usr/bin/python3");
  const char *build = g_getenv("FTH_BUILD_DIR");
  g_autofree char *venv = g_build_filename(build ? build : ".", "pyenv-safetensors", NULL);
  g_autofree char *python = g_build_filename(venv, "bin", "python", NULL);
  if (has_packages(python))
    return g_steal_pointer(&python);
  const char *mk[] = {"/usr/bin/python3", "-m", "venv", venv, NULL};
  const char *pip[] = {python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                       "safetensors", "numpy", NULL};
  if (!g_file_test(python, G_FILE_TEST_IS_EXECUTABLE) && !run(mk, FALSE))
    return NULL;
  if (!run(pip, FALSE) || !has_packages(python))
    return NULL;
  return g_steal_pointer(&python);
}

static char *
hex(const void *data, size_t n)
{
  GString *s = g_string_sized_new(2 * n + 1);
  for (size_t i = 0; i < n; i++)
    g_string_append_printf(s, "%02x", ((const guint8 *)data)[i]);
  return g_string_free(s, FALSE);
}

int
main(int argc, char **argv)
{
  g_autofree char *python = find_python();
  if (python == NULL) {
    g_printerr("SKIP: no Python with safetensors and numpy, and none could be installed\n");
    return 77;
  }
  g_autofree char *dir = g_dir_make_tmp("fth-stpy-XXXXXX", NULL);
  g_autofree char *ours = g_build_filename(dir, "ours.safetensors", NULL);

  /* Fresh random values of every dtype the trainer and exporters write. */
  GRand *r = g_rand_new();
  float f32[12];
  double f64[5];
  int32_t i32[4];
  int64_t i64[3];
  uint8_t u8[7];
  uint16_t f16[3] = {0x3c00, 0xc000, 0x7bff}, bf16[4];
  for (int i = 0; i < 12; i++)
    f32[i] = (float)g_rand_double_range(r, -10, 10);
  for (int i = 0; i < 5; i++)
    f64[i] = g_rand_double_range(r, -1e6, 1e6);
  for (int i = 0; i < 4; i++)
    i32[i] = (int32_t)g_rand_int(r);
  for (int i = 0; i < 3; i++)
    i64[i] = ((int64_t)g_rand_int(r) << 31) - (int64_t)g_rand_int(r);
  for (int i = 0; i < 7; i++)
    u8[i] = (uint8_t)g_rand_int_range(r, 0, 256);
  for (int i = 0; i < 4; i++)
    bf16[i] = (uint16_t)g_rand_int_range(r, 0, 0x7f80);
  g_rand_free(r);
  FthStTensor ts[] = {
    {.name = "0.weight", .dtype = FTH_ST_F32, .ndim = 2, .shape = {3, 4}, .data = f32, .nbytes = 48},
    {.name = "double", .dtype = FTH_ST_F64, .ndim = 1, .shape = {5}, .data = f64, .nbytes = 40},
    {.name = "ints", .dtype = FTH_ST_I32, .ndim = 2, .shape = {2, 2}, .data = i32, .nbytes = 16},
    {.name = "longs", .dtype = FTH_ST_I64, .ndim = 1, .shape = {3}, .data = i64, .nbytes = 24},
    {.name = "bytes", .dtype = FTH_ST_U8, .ndim = 1, .shape = {7}, .data = u8, .nbytes = 7},
    {.name = "half", .dtype = FTH_ST_F16, .ndim = 1, .shape = {3}, .data = f16, .nbytes = 6},
    {.name = "brain", .dtype = FTH_ST_BF16, .ndim = 1, .shape = {4}, .data = bf16, .nbytes = 8},
    {.name = "scalar", .dtype = FTH_ST_F32, .ndim = 0, .data = f32, .nbytes = 4},
    {.name = "empty", .dtype = FTH_ST_F32, .ndim = 2, .shape = {0, 3}, .data = NULL, .nbytes = 0},
  };
  g_autoptr(GHashTable) meta = g_hash_table_new(g_str_hash, g_str_equal);
  g_hash_table_insert(meta, "format", "pt");
  g_hash_table_insert(meta, "fathom.step", "42");
  GError *error = NULL;
  g_assert_true(fth_safetensors_write(ours, ts, G_N_ELEMENTS(ts), meta, &error));
  g_assert_no_error(error);

  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "metadata");
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "format");
  json_builder_add_string_value(b, "pt");
  json_builder_set_member_name(b, "fathom.step");
  json_builder_add_string_value(b, "42");
  json_builder_end_object(b);
  json_builder_set_member_name(b, "tensors");
  json_builder_begin_object(b);
  for (size_t i = 0; i < G_N_ELEMENTS(ts); i++) {
    json_builder_set_member_name(b, ts[i].name);
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "dtype");
    json_builder_add_string_value(b, fth_st_dtype_name(ts[i].dtype));
    json_builder_set_member_name(b, "shape");
    json_builder_begin_array(b);
    for (int d = 0; d < ts[i].ndim; d++)
      json_builder_add_int_value(b, ts[i].shape[d]);
    json_builder_end_array(b);
    g_autofree char *h = hex(ts[i].data, ts[i].nbytes);
    json_builder_set_member_name(b, "hex");
    json_builder_add_string_value(b, h);
    json_builder_end_object(b);
  }
  json_builder_end_object(b);
  json_builder_end_object(b);
  g_autoptr(JsonNode) root = json_builder_get_root(b);
  g_autofree char *expected = json_to_string(root, FALSE);
  g_autofree char *ours_json = g_build_filename(dir, "ours.json", NULL);
  g_assert_true(g_file_set_contents(ours_json, expected, -1, NULL));

  const char *src = g_getenv("FTH_SOURCE_DIR");
  g_autofree char *script = g_build_filename(src ? src : ".", "tests", "train", "st_conformance.py",
                                             NULL);
  const char *py[] = {python, script, dir, NULL};
  g_assert_true(run(py, FALSE)); /* Python read our file and wrote its own */

  /* Their file, read here. */
  g_autofree char *theirs = g_build_filename(dir, "theirs.safetensors", NULL);
  g_autofree char *theirs_json = g_build_filename(dir, "theirs.json", NULL);
  g_autoptr(JsonParser) parser = json_parser_new();
  g_assert_true(json_parser_load_from_file(parser, theirs_json, &error));
  JsonObject *want = json_node_get_object(json_parser_get_root(parser));
  FthSafetensors *st = fth_safetensors_open(theirs, &error);
  g_assert_no_error(error);
  JsonObject *tensors = json_object_get_object_member(want, "tensors");
  g_assert_cmpuint(fth_safetensors_n_tensors(st), ==, json_object_get_size(tensors));
  GList *names = json_object_get_members(tensors);
  for (GList *l = names; l; l = l->next) {
    JsonObject *w = json_object_get_object_member(tensors, l->data);
    const FthStTensor *t = fth_safetensors_find(st, l->data);
    g_assert_nonnull(t);
    g_assert_cmpstr(fth_st_dtype_name(t->dtype), ==, json_object_get_string_member(w, "dtype"));
    JsonArray *shape = json_object_get_array_member(w, "shape");
    g_assert_cmpint(t->ndim, ==, json_array_get_length(shape));
    for (int d = 0; d < t->ndim; d++)
      g_assert_cmpint(t->shape[d], ==, json_array_get_int_element(shape, (guint)d));
    g_autofree char *h = hex(t->data, t->nbytes);
    g_assert_cmpstr(h, ==, json_object_get_string_member(w, "hex"));
  }
  g_list_free(names);
  g_assert_cmpstr(fth_safetensors_metadata(st, "producer"), ==, "st_conformance.py");
  fth_safetensors_free(st);

  const char *files[] = {"ours.safetensors", "ours.json", "theirs.safetensors", "theirs.json"};
  for (unsigned i = 0; i < G_N_ELEMENTS(files); i++) {
    g_autofree char *p = g_build_filename(dir, files[i], NULL);
    g_unlink(p);
  }
  g_rmdir(dir);
  g_print("ok: our file loads in Python's safetensors and theirs loads here\n");
  return 0;
}
