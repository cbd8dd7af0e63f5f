/* Streaming readers for CSV (RFC 4180) and JSON Lines.
 *
 * The CSV parser is our own rather than Debian's libcsv (3.0.3): libcsv is a push parser with
 * callbacks, knows no line numbers (its only error is "error parsing data while strict checking
 * enabled") and does not handle a BOM, while every error here must name the line a row starts
 * on ("data.csv:17: unterminated quoted field") and the importer wants to pull rows. The state
 * machine below is the whole of RFC 4180 and fits in a page. */
#include "media-private.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define READ_CHUNK (64 * 1024)
#define MAX_RECORD_BYTES ((gsize) 64 << 20) /* a longer row is almost surely a stray quote */

/* ------------------------------------------------------------------------------------------ */
/* Bytes from a file descriptor or a private copy of a memory buffer. */

typedef struct {
  char *name;
  int fd; /* -1 for memory */
  guint8 *buf;
  gsize pos, len;
  gboolean eof;
  GError *read_error; /* a read(2) failure, reported by the caller with its line number */
} ByteSource;

static gboolean
source_open(ByteSource *s, const char *path, GError **error)
{
  memset(s, 0, sizeof *s);
  s->fd = g_open(path, O_RDONLY | O_CLOEXEC, 0);
  if (s->fd < 0) {
    int saved = errno;
    fth_media_set_error(error, FTH_MEDIA_ERROR_IO, path, "cannot open (%s)", g_strerror(saved));
    return FALSE;
  }
  struct stat st;
  if (fstat(s->fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    fth_media_set_error(error, FTH_MEDIA_ERROR_IO, path, "not a regular file");
    close(s->fd);
    return FALSE;
  }
  if (st.st_size == 0) {
    fth_media_set_error(error, FTH_MEDIA_ERROR_EMPTY, path, "file is empty (0 bytes)");
    close(s->fd);
    return FALSE;
  }
  s->name = g_strdup(path);
  s->buf = g_malloc(READ_CHUNK);
  return TRUE;
}

static gboolean
source_new_memory(ByteSource *s, const char *data, gsize len, const char *name, GError **error)
{
  memset(s, 0, sizeof *s);
  if (name == NULL)
    name = "<memory>";
  if (len == 0) {
    fth_media_set_error(error, FTH_MEDIA_ERROR_EMPTY, name, "file is empty (0 bytes)");
    return FALSE;
  }
  s->name = g_strdup(name);
  s->fd = -1;
  s->buf = g_memdup2(data, len);
  s->len = len;
  s->eof = TRUE;
  return TRUE;
}

static void
source_close(ByteSource *s)
{
  if (s->fd >= 0)
    close(s->fd);
  s->fd = -1;
  g_clear_pointer(&s->buf, g_free);
  g_clear_pointer(&s->name, g_free);
  g_clear_error(&s->read_error);
}

/* Next byte, or -1 at the end (or on a read error, kept in read_error). */
static inline int
source_getc(ByteSource *s)
{
  if (G_LIKELY(s->pos < s->len))
    return s->buf[s->pos++];
  if (s->eof)
    return -1;
  ssize_t n;
  do
    n = read(s->fd, s->buf, READ_CHUNK);
  while (n < 0 && errno == EINTR);
  if (n <= 0) {
    if (n < 0) {
      int saved = errno;
      fth_media_set_error(&s->read_error, FTH_MEDIA_ERROR_IO, s->name, "read failed (%s)",
                          g_strerror(saved));
    }
    s->eof = TRUE;
    return -1;
  }
  s->len = (gsize) n;
  s->pos = 1;
  return s->buf[0];
}

static inline int
source_peek(ByteSource *s)
{
  int c = source_getc(s);
  if (c >= 0)
    s->pos--; /* getc just filled or advanced within the buffer, so stepping back is safe */
  return c;
}

static void
source_skip_bom(ByteSource *s)
{
  if (source_peek(s) != 0xEF)
    return;
  /* A refill happens only at the start of the buffer, so all three bytes are in it unless the
   * file is shorter. */
  if (s->len - s->pos >= 3 && memcmp(s->buf + s->pos, "\xEF\xBB\xBF", 3) == 0)
    s->pos += 3;
}

#define SUGGESTED_ENCODINGS "Windows-1252, ISO-8859-1 or GB18030"

/* ------------------------------------------------------------------------------------------ */
/* CSV */

struct FthCsvReader {
  ByteSource src;
  guint64 line;      /* current physical line, 1-based */
  guint64 row_line;  /* where the last row began */
  GString *row;      /* fields, each NUL-terminated */
  GArray *offsets;   /* gsize: start of each field in row */
  GPtrArray *fields; /* char *: into row, NULL-terminated, rebuilt per row */
  char **columns;
  guint n_columns;
  gboolean done;
};

typedef enum { FIELD_START, UNQUOTED, QUOTED, QUOTE_IN_QUOTED } CsvState;

/* Reads one row into row/offsets. Returns FALSE at the end of data (no error) or on an error. */
static gboolean
csv_read_row(FthCsvReader *r, GError **error)
{
  ByteSource *s = &r->src;
  for (;;) { /* until a row that is not an empty line */
    g_string_truncate(r->row, 0);
    g_array_set_size(r->offsets, 0);
    r->row_line = r->line;
    guint64 quote_line = r->line;
    CsvState state = FIELD_START;
    gboolean any_char = FALSE;
    for (;;) {
      int c = source_getc(s);
      if (c < 0 && s->read_error) {
        g_propagate_error(error, g_steal_pointer(&s->read_error));
        return FALSE;
      }
      if (c < 0 && !any_char) {
        r->done = TRUE;
        return FALSE;
      }
      if (r->row->len > MAX_RECORD_BYTES) {
        fth_media_set_line_error(error, FTH_MEDIA_ERROR_TOO_LARGE, s->name, r->row_line,
                            "row is longer than 64 MiB%s",
                            state == QUOTED ? " (is a closing quote missing?)" : "");
        return FALSE;
      }
      any_char = TRUE;
      if (state == FIELD_START) {
        gsize start = r->row->len;
        g_array_append_val(r->offsets, start);
        state = UNQUOTED;
        if (c == '"') {
          state = QUOTED;
          quote_line = r->line;
          continue;
        }
      }
      if (state == QUOTED) {
        if (c < 0) {
          fth_media_set_line_error(error, FTH_MEDIA_ERROR_PARSE, s->name, quote_line,
                              "unterminated quoted field (field %u; the "
                              "file ends inside its quotes)", r->offsets->len);
          return FALSE;
        }
        if (c == '"')
          state = QUOTE_IN_QUOTED;
        else {
          if (c == '\n')
            r->line++;
          g_string_append_c(r->row, (char) c);
        }
        continue;
      }
      if (state == QUOTE_IN_QUOTED) {
        if (c == '"') { /* "" inside quotes */
          g_string_append_c(r->row, '"');
          state = QUOTED;
          continue;
        }
        if (c >= 0 && c != ',' && c != '\r' && c != '\n') {
          fth_media_set_line_error(error, FTH_MEDIA_ERROR_PARSE, s->name, r->line,
                              "unexpected '%c' after the closing quote "
                              "of field %u (a quote inside a quoted field must be doubled)", g_ascii_isprint((char) c) ? (char) c : '?',
                              r->offsets->len);
          return FALSE;
        }
      }
      /* UNQUOTED, or just after a closing quote: a separator ends the field or the row. A
       * stray quote inside an unquoted field is kept as a character, as most writers mean. */
      if (c == ',') {
        g_string_append_c(r->row, '\0');
        state = FIELD_START;
        continue;
      }
      if (c == '\r' || c == '\n' || c < 0) {
        if (c == '\r' && source_peek(s) == '\n')
          source_getc(s);
        if (c >= 0)
          r->line++;
        g_string_append_c(r->row, '\0');
        if (state == FIELD_START) { /* a trailing comma: one more empty field */
          gsize start = r->row->len;
          g_array_append_val(r->offsets, start);
          g_string_append_c(r->row, '\0');
        }
        break;
      }
      g_string_append_c(r->row, (char) c);
    }
    /* An empty line is one empty, unquoted field: skip it. */
    gboolean empty_line = r->offsets->len == 1 && r->row->len == 1 && state == UNQUOTED;
    if (!empty_line)
      return TRUE;
  }
}

static void
csv_collect_fields(FthCsvReader *r)
{
  g_ptr_array_set_size(r->fields, 0);
  for (guint i = 0; i < r->offsets->len; i++)
    g_ptr_array_add(r->fields, r->row->str + g_array_index(r->offsets, gsize, i));
  g_ptr_array_add(r->fields, NULL);
}

static gboolean
csv_check_utf8(FthCsvReader *r, GError **error)
{
  for (guint i = 0; i + 1 < r->fields->len; i++) {
    const char *field = g_ptr_array_index(r->fields, i);
    const char *end = NULL;
    if (!g_utf8_validate(field, -1, &end)) {
      fth_media_set_line_error(error, FTH_MEDIA_ERROR_ENCODING, r->src.name, r->row_line,
                          "field %u is not valid UTF-8 (byte 0x%02X at "
                          "offset %ld in the field); convert the file from the right encoding, "
                          "perhaps %s", i + 1, (guint8) *end, (long) (end - field),
                          SUGGESTED_ENCODINGS);
      return FALSE;
    }
  }
  return TRUE;
}

static FthCsvReader *
csv_start(FthCsvReader *r, GError **error)
{
  r->line = 1;
  r->row = g_string_sized_new(256);
  r->offsets = g_array_new(FALSE, FALSE, sizeof(gsize));
  r->fields = g_ptr_array_new();
  source_skip_bom(&r->src);
  GError *row_error = NULL;
  if (!csv_read_row(r, &row_error)) {
    if (row_error)
      g_propagate_error(error, row_error);
    else
      fth_media_set_error(error, FTH_MEDIA_ERROR_PARSE, r->src.name,
                          "no header row (the file has only empty lines)");
    fth_csv_reader_free(r);
    return NULL;
  }
  csv_collect_fields(r);
  if (!csv_check_utf8(r, error)) {
    fth_csv_reader_free(r);
    return NULL;
  }
  r->n_columns = r->fields->len - 1;
  r->columns = g_new0(char *, r->n_columns + 1);
  for (guint i = 0; i < r->n_columns; i++)
    r->columns[i] = g_strdup(g_ptr_array_index(r->fields, i));
  return r;
}

FthCsvReader *
fth_csv_reader_open(const char *path, GError **error)
{
  FthCsvReader *r = g_new0(FthCsvReader, 1);
  if (!source_open(&r->src, path, error)) {
    g_free(r);
    return NULL;
  }
  return csv_start(r, error);
}

FthCsvReader *
fth_csv_reader_new_from_memory(const char *data, gsize len, const char *name, GError **error)
{
  FthCsvReader *r = g_new0(FthCsvReader, 1);
  if (!source_new_memory(&r->src, data, len, name, error)) {
    g_free(r);
    return NULL;
  }
  return csv_start(r, error);
}

void
fth_csv_reader_free(FthCsvReader *r)
{
  if (r == NULL)
    return;
  source_close(&r->src);
  if (r->row)
    g_string_free(r->row, TRUE);
  if (r->offsets)
    g_array_unref(r->offsets);
  if (r->fields)
    g_ptr_array_unref(r->fields);
  g_strfreev(r->columns);
  g_free(r);
}

const char *const *
fth_csv_reader_get_columns(FthCsvReader *r, guint *n_columns)
{
  if (n_columns)
    *n_columns = r->n_columns;
  return (const char *const *) r->columns;
}

int
fth_csv_reader_find_column(FthCsvReader *r, const char *name, GError **error)
{
  for (guint i = 0; i < r->n_columns; i++)
    if (strcmp(r->columns[i], name) == 0)
      return (int) i;
  g_autofree char *list = g_strjoinv(", ", r->columns);
  fth_media_set_error(error, FTH_MEDIA_ERROR_MISSING_COLUMN, r->src.name,
                      "no column '%s' (columns: %s)", name, list);
  return -1;
}

gboolean
fth_csv_reader_next_row(FthCsvReader *r, const char *const **fields, guint *n_fields,
                        GError **error)
{
  *fields = NULL;
  if (n_fields)
    *n_fields = 0;
  if (r->done || !csv_read_row(r, error))
    return FALSE;
  csv_collect_fields(r);
  guint n = r->fields->len - 1;
  if (n != r->n_columns) {
    fth_media_set_line_error(error, FTH_MEDIA_ERROR_PARSE, r->src.name, r->row_line,
                        "row has %u field%s, the header has %u", n, n == 1 ? "" : "s", r->n_columns);
    return FALSE;
  }
  if (!csv_check_utf8(r, error))
    return FALSE;
  *fields = (const char *const *) r->fields->pdata;
  if (n_fields)
    *n_fields = n;
  return TRUE;
}

guint64
fth_csv_reader_get_line(FthCsvReader *r)
{
  return r->row_line;
}

/* ------------------------------------------------------------------------------------------ */
/* JSON Lines */

struct FthJsonlReader {
  ByteSource src;
  guint64 line;      /* lines read so far */
  guint64 last_line; /* of the last object returned */
  GString *text;
  JsonParser *parser;
};

static FthJsonlReader *
jsonl_start(FthJsonlReader *r)
{
  r->text = g_string_sized_new(1024);
  r->parser = json_parser_new_immutable();
  source_skip_bom(&r->src);
  return r;
}

FthJsonlReader *
fth_jsonl_reader_open(const char *path, GError **error)
{
  FthJsonlReader *r = g_new0(FthJsonlReader, 1);
  if (!source_open(&r->src, path, error)) {
    g_free(r);
    return NULL;
  }
  return jsonl_start(r);
}

FthJsonlReader *
fth_jsonl_reader_new_from_memory(const char *data, gsize len, const char *name, GError **error)
{
  FthJsonlReader *r = g_new0(FthJsonlReader, 1);
  if (!source_new_memory(&r->src, data, len, name, error)) {
    g_free(r);
    return NULL;
  }
  return jsonl_start(r);
}

void
fth_jsonl_reader_free(FthJsonlReader *r)
{
  if (r == NULL)
    return;
  source_close(&r->src);
  if (r->text)
    g_string_free(r->text, TRUE);
  g_clear_object(&r->parser);
  g_free(r);
}

static const char *
json_type_name(JsonNode *node)
{
  switch (json_node_get_node_type(node)) {
  case JSON_NODE_ARRAY: return "an array";
  case JSON_NODE_NULL: return "null";
  case JSON_NODE_VALUE: return "a single value";
  case JSON_NODE_OBJECT: break;
  }
  return "an object";
}

gboolean
fth_jsonl_reader_next(FthJsonlReader *r, JsonObject **object, GError **error)
{
  *object = NULL;
  ByteSource *s = &r->src;
  for (;;) {
    g_string_truncate(r->text, 0);
    int c;
    while ((c = source_getc(s)) >= 0 && c != '\n') {
      if (r->text->len >= MAX_RECORD_BYTES) {
        fth_media_set_line_error(error, FTH_MEDIA_ERROR_TOO_LARGE, s->name, r->line + 1,
                            "line is longer than 64 MiB");
        return FALSE;
      }
      g_string_append_c(r->text, (char) c);
    }
    if (s->read_error) {
      g_propagate_error(error, g_steal_pointer(&s->read_error));
      return FALSE;
    }
    if (c < 0 && r->text->len == 0)
      return FALSE;
    r->line++;
    const char *p = r->text->str;
    while (*p == ' ' || *p == '\t' || *p == '\r')
      p++;
    if (*p == '\0' && (gsize) (p - r->text->str) == r->text->len)
      continue; /* blank line */
    const char *end = NULL;
    if (!g_utf8_validate_len(r->text->str, r->text->len, &end)) {
      fth_media_set_line_error(error, FTH_MEDIA_ERROR_ENCODING, s->name, r->line,
                          "not valid UTF-8 (byte 0x%02X at column %ld); "
                          "convert the file from the right encoding, perhaps %s", (guint8) *end, (long) (end - r->text->str) + 1, SUGGESTED_ENCODINGS);
      return FALSE;
    }
    g_autoptr(GError) parse_error = NULL;
    if (!json_parser_load_from_data(r->parser, r->text->str, (gssize) r->text->len,
                                    &parse_error)) {
      /* json-glib's message reads "<data>:1:5: Parse error: ..."; keep the part after it. */
      const char *what = parse_error->message;
      const char *colon = strstr(what, ": ");
      fth_media_set_line_error(error, FTH_MEDIA_ERROR_PARSE, s->name, r->line,
                          "invalid JSON (%s)",
                          g_str_has_prefix(what, "<data>") && colon ? colon + 2 : what);
      return FALSE;
    }
    JsonNode *root = json_parser_get_root(r->parser);
    if (root == NULL || !JSON_NODE_HOLDS_OBJECT(root)) {
      fth_media_set_line_error(error, FTH_MEDIA_ERROR_PARSE, s->name, r->line,
                          "expected a JSON object, found %s",
                          root ? json_type_name(root) : "nothing");
      return FALSE;
    }
    *object = json_object_ref(json_node_get_object(root));
    r->last_line = r->line;
    return TRUE;
  }
}

guint64
fth_jsonl_reader_get_line(FthJsonlReader *r)
{
  return r->last_line;
}
