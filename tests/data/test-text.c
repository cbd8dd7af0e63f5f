/* UTF-8 text: validation with byte offsets, BOM removal, conversion, character offsets for
 * Chinese, emoji and combining characters. */
#include <fathom/media.h>

#include <glib/gstdio.h>
#include <string.h>

static char *
write_temp(const char *dir, const char *name, const char *data, gsize len)
{
  char *path = g_build_filename(dir, name, NULL);
  g_assert_true(g_file_set_contents(path, data, (gssize) len, NULL));
  return path;
}

static void
test_load(void)
{
  g_autofree char *dir = g_dir_make_tmp("fth-text-XXXXXX", NULL);
  const char content[] = "\xEF\xBB\xBFh\xC3\xA9llo \xE4\xB8\xAD\xE6\x96\x87\n";
  g_autofree char *path = write_temp(dir, "bom.txt", content, sizeof content - 1);
  g_autofree char *text = NULL;
  gsize len = 0;
  g_autoptr(GError) error = NULL;
  g_assert_true(fth_text_load_file(path, &text, &len, &error));
  g_assert_no_error(error);
  g_assert_cmpstr(text, ==, "h\xC3\xA9llo \xE4\xB8\xAD\xE6\x96\x87\n"); /* BOM gone */
  g_assert_cmpuint(len, ==, strlen(text));

  const char latin1[] = "name: Ren\xE9 M\xFCller\n";
  g_autofree char *bad = write_temp(dir, "latin1.txt", latin1, sizeof latin1 - 1);
  g_autofree char *none = NULL;
  g_assert_false(fth_text_load_file(bad, &none, &len, &error));
  g_assert_error(error, FTH_MEDIA_ERROR, FTH_MEDIA_ERROR_ENCODING);
  g_assert_null(none);
  g_assert_true(g_str_has_prefix(error->message, bad));
  g_assert_nonnull(strstr(error->message, "at byte 9"));
  g_assert_nonnull(strstr(error->message, "ISO-8859-1"));
  g_clear_error(&error);

  g_autofree char *empty = write_temp(dir, "empty.txt", "", 0);
  g_autofree char *empty_text = NULL;
  g_assert_true(fth_text_load_file(empty, &empty_text, &len, &error));
  g_assert_cmpstr(empty_text, ==, "");
  g_assert_cmpuint(len, ==, 0);

  g_assert_false(fth_text_load_file("/nonexistent/a.txt", &none, &len, &error));
  g_assert_error(error, FTH_MEDIA_ERROR, FTH_MEDIA_ERROR_IO);
  g_clear_error(&error);

  g_remove(path);
  g_remove(bad);
  g_remove(empty);
  g_rmdir(dir);
}

static void
test_validate(void)
{
  g_autoptr(GError) error = NULL;
  g_assert_true(fth_text_validate("ok \xF0\x9F\x98\x80", 7, "a", &error));
  /* An overlong encoding of '/' and a lone surrogate are not UTF-8. */
  g_assert_false(fth_text_validate("ab\xC0\xAF", 4, "over.txt", &error));
  g_assert_error(error, FTH_MEDIA_ERROR, FTH_MEDIA_ERROR_ENCODING);
  g_assert_nonnull(strstr(error->message, "over.txt: not valid UTF-8 at byte 2"));
  g_clear_error(&error);
  g_assert_false(fth_text_validate("\xED\xA0\x80", 3, "sur", &error));
  g_clear_error(&error);
  /* UTF-16 is recognised for the suggestion. */
  g_assert_false(fth_text_validate("\xFF\xFEh\0i\0", 6, "u16.txt", &error));
  g_assert_nonnull(strstr(error->message, "UTF-16"));
  g_clear_error(&error);
  /* GBK-encoded Chinese ("中文" = D6 D0 CE C4) gets GB18030 suggested first. */
  g_assert_false(fth_text_validate("\xD6\xD0\xCE\xC4", 4, "gbk.txt", &error));
  g_assert_nonnull(strstr(error->message, "perhaps GB18030"));
}

static void
test_convert(void)
{
  g_autoptr(GError) error = NULL;
  gsize len = 0;
  g_autofree char *cafe = fth_text_convert("caf\xE9", 4, "ISO-8859-1", "c.txt", &len, &error);
  g_assert_no_error(error);
  g_assert_cmpstr(cafe, ==, "caf\xC3\xA9");
  g_assert_cmpuint(len, ==, 5);
  g_autofree char *zh = fth_text_convert("\xD6\xD0\xCE\xC4", 4, "GB18030", "z.txt", &len, &error);
  g_assert_cmpstr(zh, ==, "\xE4\xB8\xAD\xE6\x96\x87");
  g_autofree char *bad = fth_text_convert("ab\xFF", 3, "UTF-8", "b.txt", &len, &error);
  g_assert_null(bad);
  g_assert_error(error, FTH_MEDIA_ERROR, FTH_MEDIA_ERROR_ENCODING);
  g_assert_true(g_str_has_prefix(error->message, "b.txt: "));
  g_clear_error(&error);
  g_autofree char *unknown = fth_text_convert("a", 1, "NO-SUCH-CODESET", "u.txt", &len, &error);
  g_assert_null(unknown);
  g_assert_error(error, FTH_MEDIA_ERROR, FTH_MEDIA_ERROR_ENCODING);
  g_assert_nonnull(strstr(error->message, "NO-SUCH-CODESET"));
}

static void
test_offsets(void)
{
  /* "a中😀e\u0301b": code points a, 中, 😀, e, U+0301, b = 6 characters, 1+3+4+1+2+1 = 12 bytes. */
  const char s[] = "a\xE4\xB8\xAD\xF0\x9F\x98\x80" "e\xCC\x81" "b";
  const gsize len = sizeof s - 1;
  g_assert_cmpuint(len, ==, 12);
  g_assert_cmpuint(fth_text_char_count(s, len), ==, 6);
  /* Python: [len(s[:i].encode()) for i in range(7)] */
  const gsize bytes_at[7] = {0, 1, 4, 8, 9, 11, 12};
  for (gsize c = 0; c <= 6; c++) {
    gsize b = 99, back = 99;
    g_assert_true(fth_text_char_to_byte_offset(s, len, c, &b));
    g_assert_cmpuint(b, ==, bytes_at[c]);
    g_assert_true(fth_text_byte_to_char_offset(s, len, b, &back));
    g_assert_cmpuint(back, ==, c);
  }
  gsize out = 0;
  g_assert_false(fth_text_char_to_byte_offset(s, len, 7, &out));
  g_assert_false(fth_text_byte_to_char_offset(s, len, 2, &out)); /* inside 中 */
  g_assert_false(fth_text_byte_to_char_offset(s, len, 6, &out)); /* inside the emoji */
  g_assert_false(fth_text_byte_to_char_offset(s, len, 13, &out));
  g_assert_cmpuint(fth_text_char_count("", 0), ==, 0);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/text/load", test_load);
  g_test_add_func("/text/validate", test_validate);
  g_test_add_func("/text/convert", test_convert);
  g_test_add_func("/text/offsets", test_offsets);
  return g_test_run();
}
