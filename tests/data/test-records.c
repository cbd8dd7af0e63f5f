/* CSV (RFC 4180 edge cases, line numbers in errors, missing columns) and JSON Lines. */
#include <fathom/media.h>

#include <glib/gstdio.h>
#include <string.h>

/* Reads every row; returns them as "a|b|c" strings, or NULL with the error. */
static GPtrArray *
read_all(FthCsvReader *r, GError **error)
{
  GPtrArray *rows = g_ptr_array_new_with_free_func(g_free);
  const char *const *fields;
  guint n;
  while (fth_csv_reader_next_row(r, &fields, &n, error)) {
    g_assert_null(fields[n]);
    g_ptr_array_add(rows, g_strjoinv("|", (char **) fields));
  }
  if (error && *error) {
    g_ptr_array_unref(rows);
    return NULL;
  }
  return rows;
}

static void
test_csv_rfc4180(void)
{
  const char data[] = "\xEF\xBB\xBFid,text,label\r\n"
                      "1,plain,a\r\n"
                      "2,\"with, comma\",b\r\n"
                      "3,\"two\r\nlines\",c\r\n"
                      "\r\n"
                      "4,\"say \"\"hi\"\"\",d\n"
                      "5,,\n"
                      "6,\"\",\"\"\n"
                      "7,\xE4\xB8\xAD\xE6\x96\x87 \xF0\x9F\x98\x80,e"; /* no final newline */
  g_autoptr(GError) error = NULL;
  g_autoptr(FthCsvReader) r = fth_csv_reader_new_from_memory(data, sizeof data - 1, "d.csv",
                                                             &error);
  g_assert_no_error(error);
  guint n = 0;
  const char *const *cols = fth_csv_reader_get_columns(r, &n);
  g_assert_cmpuint(n, ==, 3);
  g_assert_cmpstr(cols[0], ==, "id"); /* the BOM is not part of the first name */
  g_assert_cmpstr(cols[2], ==, "label");
  g_assert_cmpint(fth_csv_reader_find_column(r, "text", &error), ==, 1);

  const char *expect[] = {"1|plain|a", "2|with, comma|b", "3|two\r\nlines|c", "4|say \"hi\"|d",
                          "5||", "6||", "7|\xE4\xB8\xAD\xE6\x96\x87 \xF0\x9F\x98\x80|e"};
  const guint64 lines[] = {2, 3, 4, 7, 8, 9, 10};
  const char *const *fields;
  guint nf;
  for (gsize i = 0; i < G_N_ELEMENTS(expect); i++) {
    g_assert_true(fth_csv_reader_next_row(r, &fields, &nf, &error));
    g_assert_no_error(error);
    g_assert_cmpuint(nf, ==, 3);
    g_autofree char *joined = g_strjoinv("|", (char **) fields);
    g_assert_cmpstr(joined, ==, expect[i]);
    g_assert_cmpuint(fth_csv_reader_get_line(r), ==, lines[i]);
  }
  g_assert_false(fth_csv_reader_next_row(r, &fields, &nf, &error));
  g_assert_no_error(error);
  g_assert_false(fth_csv_reader_next_row(r, &fields, &nf, &error)); /* stays at the end */
  g_assert_no_error(error);
}

static void
test_csv_errors(void)
{
  g_autoptr(GError) error = NULL;
  {
    const char data[] = "id,body,label\n1,x,y\n";
    g_autoptr(FthCsvReader) r = fth_csv_reader_new_from_memory(data, sizeof data - 1, "data.csv",
                                                               &error);
    g_assert_cmpint(fth_csv_reader_find_column(r, "text", &error), ==, -1);
    g_assert_error(error, FTH_MEDIA_ERROR, FTH_MEDIA_ERROR_MISSING_COLUMN);
    g_assert_cmpstr(error->message, ==, "data.csv: no column 'text' (columns: id, body, label)");
    g_clear_error(&error);
  }
  {
    /* The quote opens on line 3 and is never closed. */
    const char data[] = "a,b\n1,2\n3,\"open\n4,5\n6,7\n";
    g_autoptr(FthCsvReader) r = fth_csv_reader_new_from_memory(data, sizeof data - 1, "data.csv",
                                                               &error);
    g_autoptr(GPtrArray) rows = read_all(r, &error);
    g_assert_null(rows);
    g_assert_error(error, FTH_MEDIA_ERROR, FTH_MEDIA_ERROR_PARSE);
    g_assert_true(g_str_has_prefix(error->message, "data.csv:3: unterminated quoted field"));
    g_clear_error(&error);
  }
  {
    const char data[] = "a,b\n1,2\n3,\"x\"y\n";
    g_autoptr(FthCsvReader) r = fth_csv_reader_new_from_memory(data, sizeof data - 1, "q.csv",
                                                               &error);
    g_autoptr(GPtrArray) rows = read_all(r, &error);
    g_assert_null(rows);
    g_assert_error(error, FTH_MEDIA_ERROR, FTH_MEDIA_ERROR_PARSE);
    g_assert_true(g_str_has_prefix(error->message, "q.csv:3: unexpected 'y' after the closing quote of field 2"));
    g_clear_error(&error);
  }
  {
    const char data[] = "a,b,c\n1,2,3\n\n4,5\n";
    g_autoptr(FthCsvReader) r = fth_csv_reader_new_from_memory(data, sizeof data - 1, "n.csv",
                                                               &error);
    g_autoptr(GPtrArray) rows = read_all(r, &error);
    g_assert_null(rows);
    g_assert_error(error, FTH_MEDIA_ERROR, FTH_MEDIA_ERROR_PARSE);
    g_assert_cmpstr(error->message, ==, "n.csv:4: row has 2 fields, the header has 3");
    g_clear_error(&error);
  }
  {
    const char data[] = "a,b\n1,caf\xE9\n";
    g_autoptr(FthCsvReader) r = fth_csv_reader_new_from_memory(data, sizeof data - 1, "l.csv",
                                                               &error);
    g_autoptr(GPtrArray) rows = read_all(r, &error);
    g_assert_null(rows);
    g_assert_error(error, FTH_MEDIA_ERROR, FTH_MEDIA_ERROR_ENCODING);
    g_assert_true(g_str_has_prefix(error->message, "l.csv:2: field 2 is not valid UTF-8"));
    g_clear_error(&error);
  }
  g_assert_null(fth_csv_reader_new_from_memory("", 0, "e.csv", &error));
  g_assert_error(error, FTH_MEDIA_ERROR, FTH_MEDIA_ERROR_EMPTY);
  g_clear_error(&error);
  g_assert_null(fth_csv_reader_new_from_memory("\n\n", 2, "blank.csv", &error));
  g_assert_error(error, FTH_MEDIA_ERROR, FTH_MEDIA_ERROR_PARSE);
  g_clear_error(&error);
  g_assert_null(fth_csv_reader_open("/nonexistent/d.csv", &error));
  g_assert_error(error, FTH_MEDIA_ERROR, FTH_MEDIA_ERROR_IO);
  g_assert_true(g_str_has_prefix(error->message, "/nonexistent/d.csv: "));
}

/* A file bigger than the 64 KiB read chunk, with quoted newlines across chunk boundaries. */
static void
test_csv_file_streaming(void)
{
  g_autofree char *dir = g_dir_make_tmp("fth-csv-XXXXXX", NULL);
  g_autofree char *path = g_build_filename(dir, "big.csv", NULL);
  GString *s = g_string_new("id,text\r\n");
  const int rows = 5000;
  for (int i = 0; i < rows; i++)
    g_string_append_printf(s, "%d,\"row %d says \"\"hello\"\"\r\nand goes on, and on\"\r\n", i, i);
  g_assert_true(g_file_set_contents(path, s->str, (gssize) s->len, NULL));
  g_assert_cmpuint(s->len, >, 3 * 64 * 1024);
  g_string_free(s, TRUE);

  g_autoptr(GError) error = NULL;
  g_autoptr(FthCsvReader) r = fth_csv_reader_open(path, &error);
  g_assert_no_error(error);
  const char *const *fields;
  guint n;
  int count = 0;
  while (fth_csv_reader_next_row(r, &fields, &n, &error)) {
    g_autofree char *id = g_strdup_printf("%d", count);
    g_autofree char *text = g_strdup_printf("row %d says \"hello\"\r\nand goes on, and on", count);
    g_assert_cmpstr(fields[0], ==, id);
    g_assert_cmpstr(fields[1], ==, text);
    g_assert_cmpuint(fth_csv_reader_get_line(r), ==, 2 + 2 * (guint64) count);
    count++;
  }
  g_assert_no_error(error);
  g_assert_cmpint(count, ==, rows);
  g_remove(path);
  g_rmdir(dir);
}

static void
test_jsonl(void)
{
  const char data[] = "{\"text\": \"hello\", \"label\": \"greeting\"}\n"
                      "\n"
                      "   \r\n"
                      "{\"text\": \"\xE4\xB8\xAD\xE6\x96\x87\", \"n\": 2}\r\n"
                      "{\"text\": \"last\"}"; /* no final newline */
  g_autoptr(GError) error = NULL;
  g_autoptr(FthJsonlReader) r = fth_jsonl_reader_new_from_memory(data, sizeof data - 1, "d.jsonl",
                                                                 &error);
  g_assert_no_error(error);
  JsonObject *o = NULL;
  g_assert_true(fth_jsonl_reader_next(r, &o, &error));
  g_assert_cmpstr(json_object_get_string_member(o, "label"), ==, "greeting");
  g_assert_cmpuint(fth_jsonl_reader_get_line(r), ==, 1);
  json_object_unref(o);
  g_assert_true(fth_jsonl_reader_next(r, &o, &error));
  g_assert_cmpstr(json_object_get_string_member(o, "text"), ==, "\xE4\xB8\xAD\xE6\x96\x87");
  g_assert_cmpint(json_object_get_int_member(o, "n"), ==, 2);
  g_assert_cmpuint(fth_jsonl_reader_get_line(r), ==, 4);
  json_object_unref(o);
  g_assert_true(fth_jsonl_reader_next(r, &o, &error));
  g_assert_cmpuint(fth_jsonl_reader_get_line(r), ==, 5);
  json_object_unref(o);
  g_assert_false(fth_jsonl_reader_next(r, &o, &error));
  g_assert_no_error(error);
  g_assert_null(o);
}

static void
test_jsonl_errors(void)
{
  const struct {
    const char *data;
    FthMediaError code;
    const char *prefix;
  } cases[] = {
    {"{\"a\": 1}\n{\"a\": 2,\n", FTH_MEDIA_ERROR_PARSE, "b.jsonl:2: invalid JSON"},
    {"{\"a\": 1}\n\n[1, 2]\n", FTH_MEDIA_ERROR_PARSE, "b.jsonl:3: expected a JSON object, found an array"},
    {"\"just a string\"\n", FTH_MEDIA_ERROR_PARSE, "b.jsonl:1: expected a JSON object, found a single value"},
    {"{\"a\": \"caf\xE9\"}\n", FTH_MEDIA_ERROR_ENCODING, "b.jsonl:1: not valid UTF-8"},
  };
  for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_autoptr(GError) error = NULL;
    g_autoptr(FthJsonlReader) r = fth_jsonl_reader_new_from_memory(cases[i].data,
                                                                   strlen(cases[i].data),
                                                                   "b.jsonl", &error);
    JsonObject *o = NULL;
    while (fth_jsonl_reader_next(r, &o, &error))
      json_object_unref(o);
    g_assert_error(error, FTH_MEDIA_ERROR, (gint) cases[i].code);
    g_test_message("%s", error->message);
    g_assert_true(g_str_has_prefix(error->message, cases[i].prefix));
  }
  g_autoptr(GError) error = NULL;
  g_assert_null(fth_jsonl_reader_open("/nonexistent/x.jsonl", &error));
  g_assert_error(error, FTH_MEDIA_ERROR, FTH_MEDIA_ERROR_IO);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/csv/rfc4180", test_csv_rfc4180);
  g_test_add_func("/csv/errors", test_csv_errors);
  g_test_add_func("/csv/file-streaming", test_csv_file_streaming);
  g_test_add_func("/jsonl/read", test_jsonl);
  g_test_add_func("/jsonl/errors", test_jsonl_errors);
  return g_test_run();
}
