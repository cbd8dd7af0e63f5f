/* libFuzzer target: the CSV reader (header, column lookup, every row). */
#include <fathom/media.h>

int LLVMFuzzerTestOneInput(const guint8 *data, size_t len);

int
LLVMFuzzerTestOneInput(const guint8 *data, size_t len)
{
  GError *error = NULL;
  FthCsvReader *reader = fth_csv_reader_new_from_memory((const char *) data, len, "fuzz.csv",
                                                        &error);
  if (reader == NULL) {
    g_error_free(error);
    return 0;
  }
  guint n_columns;
  fth_csv_reader_get_columns(reader, &n_columns);
  int column = fth_csv_reader_find_column(reader, "text", NULL);
  const char *const *fields;
  guint n;
  while (fth_csv_reader_next_row(reader, &fields, &n, &error)) {
    if (column >= 0 && fields[column][0] == '\1')
      break;
  }
  g_clear_error(&error);
  fth_csv_reader_free(reader);
  return 0;
}
