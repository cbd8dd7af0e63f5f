/* The regression corpus in tests/data/bad/: every file must fail with the error code EXPECTED
 * lists and a message that starts with the file's path; none may crash (this also runs under
 * ASan/UBSan in CI). Every file in the folder must be listed. */
#include <fathom/media.h>

#include "fth-config.h"

#include <string.h>

#define BAD_DIR FTH_SOURCE_DIR "/tests/data/bad"

static const char *const code_names[] = {
  [FTH_MEDIA_ERROR_IO] = "IO",
  [FTH_MEDIA_ERROR_EMPTY] = "EMPTY",
  [FTH_MEDIA_ERROR_CORRUPT] = "CORRUPT",
  [FTH_MEDIA_ERROR_TRUNCATED] = "TRUNCATED",
  [FTH_MEDIA_ERROR_UNSUPPORTED] = "UNSUPPORTED",
  [FTH_MEDIA_ERROR_TOO_LARGE] = "TOO_LARGE",
  [FTH_MEDIA_ERROR_ENCODING] = "ENCODING",
  [FTH_MEDIA_ERROR_MISSING_COLUMN] = "MISSING_COLUMN",
  [FTH_MEDIA_ERROR_PARSE] = "PARSE",
  [FTH_MEDIA_ERROR_BUFFER_TOO_SMALL] = "BUFFER_TOO_SMALL",
};

/* Decodes path the way the importer would for its kind; returns the error (NULL on success). */
static GError *
decode(const char *path)
{
  GError *error = NULL;
  switch (fth_media_format_from_path(path)) {
  case FTH_MEDIA_FORMAT_JPEG:
  case FTH_MEDIA_FORMAT_PNG: {
    FthImage img;
    if (fth_image_decode_file(path, 0, &img, &error))
      fth_image_clear(&img);
    break;
  }
  case FTH_MEDIA_FORMAT_WAV:
  case FTH_MEDIA_FORMAT_FLAC:
  case FTH_MEDIA_FORMAT_OGG:
  case FTH_MEDIA_FORMAT_MP3: {
    FthAudio audio;
    if (fth_audio_decode_file(path, 16000, TRUE, &audio, &error))
      fth_audio_clear(&audio);
    break;
  }
  case FTH_MEDIA_FORMAT_TEXT: {
    char *text = NULL;
    gsize len;
    if (fth_text_load_file(path, &text, &len, &error))
      g_free(text);
    break;
  }
  case FTH_MEDIA_FORMAT_CSV: {
    g_autoptr(FthCsvReader) r = fth_csv_reader_open(path, &error);
    if (r == NULL || fth_csv_reader_find_column(r, "text", &error) < 0)
      break;
    const char *const *fields;
    guint n;
    while (fth_csv_reader_next_row(r, &fields, &n, &error))
      ;
    break;
  }
  case FTH_MEDIA_FORMAT_JSONL: {
    g_autoptr(FthJsonlReader) r = fth_jsonl_reader_open(path, &error);
    JsonObject *o;
    while (r != NULL && fth_jsonl_reader_next(r, &o, &error))
      json_object_unref(o);
    break;
  }
  case FTH_MEDIA_FORMAT_IDX:
    fth_idx_free(fth_idx_open(path, &error));
    break;
  case FTH_MEDIA_FORMAT_UNKNOWN:
    g_error("%s: no decoder for this name; give it a known extension", path);
  }
  return error;
}

static void
test_corpus(void)
{
  g_autofree char *manifest = NULL;
  g_autoptr(GError) error = NULL;
  g_assert_true(g_file_get_contents(BAD_DIR "/EXPECTED", &manifest, NULL, &error));
  g_autoptr(GHashTable) expected = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  g_auto(GStrv) lines = g_strsplit(manifest, "\n", -1);
  for (char **line = lines; *line; line++) {
    if (**line == '#' || **line == '\0')
      continue;
    g_auto(GStrv) parts = g_strsplit_set(*line, " \t", -1);
    GPtrArray *words = g_ptr_array_new();
    for (char **p = parts; *p; p++)
      if (**p)
        g_ptr_array_add(words, *p);
    g_assert_cmpuint(words->len, ==, 2);
    g_hash_table_insert(expected, g_strdup(words->pdata[0]), g_strdup(words->pdata[1]));
    g_ptr_array_free(words, TRUE);
  }

  g_autoptr(GDir) dir = g_dir_open(BAD_DIR, 0, &error);
  g_assert_no_error(error);
  guint checked = 0;
  const char *name;
  while ((name = g_dir_read_name(dir)) != NULL) {
    if (strcmp(name, "EXPECTED") == 0 || strcmp(name, "make-corpus.py") == 0 ||
        strcmp(name, "README.md") == 0)
      continue;
    const char *want = g_hash_table_lookup(expected, name);
    if (want == NULL)
      g_error("%s is in %s but not in EXPECTED", name, BAD_DIR);
    g_autofree char *path = g_build_filename(BAD_DIR, name, NULL);
    g_autoptr(GError) got = decode(path);
    if (got == NULL)
      g_error("%s: decoded without an error, expected %s", name, want);
    g_test_message("%s: %s", name, got->message);
    g_assert_true(got->domain == FTH_MEDIA_ERROR);
    g_assert_cmpint(got->code, >=, 0);
    g_assert_cmpint(got->code, <, (gint) G_N_ELEMENTS(code_names));
    g_assert_cmpstr(code_names[got->code], ==, want);
    g_autofree char *prefix = g_strconcat(path, ":", NULL);
    g_assert_true(g_str_has_prefix(got->message, prefix));
    checked++;
  }
  g_assert_cmpuint(checked, ==, g_hash_table_size(expected));
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/bad/corpus", test_corpus);
  return g_test_run();
}
