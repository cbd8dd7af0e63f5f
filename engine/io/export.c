/* Export of items and annotations to CSV and JSON Lines (see fathom/export.h). */
#include <fathom/export.h>

#include <math.h>
#include <string.h>

const char *
fth_item_kind_to_string(FthItemKind kind)
{
  switch (kind) {
  case FTH_ITEM_IMAGE: return "image";
  case FTH_ITEM_AUDIO: return "audio";
  case FTH_ITEM_TEXT: return "text";
  default: return "any";
  }
}

const char *
fth_split_to_string(FthSplit split)
{
  switch (split) {
  case FTH_SPLIT_TRAIN: return "train";
  case FTH_SPLIT_VAL: return "val";
  case FTH_SPLIT_TEST: return "test";
  case FTH_SPLIT_NONE: return "none";
  default: return "any";
  }
}

const char *
fth_geom_kind_to_string(FthGeomKind geom)
{
  switch (geom) {
  case FTH_GEOM_WHOLE: return "whole";
  case FTH_GEOM_BOX: return "box";
  case FTH_GEOM_POLYGON: return "polygon";
  case FTH_GEOM_SEGMENT: return "segment";
  case FTH_GEOM_SPAN: return "span";
  default: return "unknown";
  }
}

gboolean
fth_export_format_from_string(const char *name, FthExportFormat *format)
{
  if (g_strcmp0(name, "csv") == 0)
    *format = FTH_EXPORT_CSV;
  else if (g_strcmp0(name, "jsonl") == 0)
    *format = FTH_EXPORT_JSONL;
  else
    return FALSE;
  return TRUE;
}

/* Numbers as the shortest decimal that reads back exactly. json-glib's generator is not used:
 * it writes 17 digits for every double and can emit invalid JSON ("5e-300.0"). */
static void
append_number(GString *out, double v)
{
  if (!isfinite(v)) {
    g_string_append(out, "null");
    return;
  }
  char buf[G_ASCII_DTOSTR_BUF_SIZE];
  /* Whole numbers as integers: %g would pick "1e+01" for 10 as the shortest form. */
  if (v == (double)(gint64)v && fabs(v) < 1e15) {
    g_string_append_printf(out, "%" G_GINT64_FORMAT, (gint64)v);
    return;
  }
  for (int digits = 1; digits <= 17; digits++) {
    char fmt[8];
    g_snprintf(fmt, sizeof fmt, "%%.%dg", digits);
    g_ascii_formatd(buf, sizeof buf, fmt, v);
    if (g_ascii_strtod(buf, NULL) == v)
      break;
  }
  g_string_append(out, buf);
}

static void
append_json_string(GString *out, const char *s)
{
  g_string_append_c(out, '"');
  for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
    switch (*p) {
    case '"': g_string_append(out, "\\\""); break;
    case '\\': g_string_append(out, "\\\\"); break;
    case '\n': g_string_append(out, "\\n"); break;
    case '\r': g_string_append(out, "\\r"); break;
    case '\t': g_string_append(out, "\\t"); break;
    default:
      if (*p < 0x20)
        g_string_append_printf(out, "\\u%04x", *p);
      else
        g_string_append_c(out, (char)*p);
    }
  }
  g_string_append_c(out, '"');
}

static void
append_csv_field(GString *out, const char *s)
{
  if (!s)
    s = "";
  if (!strpbrk(s, ",\"\r\n")) {
    g_string_append(out, s);
    return;
  }
  g_string_append_c(out, '"');
  for (const char *p = s; *p; p++) {
    if (*p == '"')
      g_string_append_c(out, '"');
    g_string_append_c(out, *p);
  }
  g_string_append_c(out, '"');
}

static void
append_csv_number(GString *out, double v)
{
  append_number(out, v);
}

static const char *const csv_columns[] = {
  "item_id", "kind", "path", "member", "sha256", "split", "width", "height", "duration_s",
  "sample_rate", "length_chars", "text", "label", "geom", "x", "y", "w", "h", "points", "t0",
  "t1", "start", "end", "author", "score",
};

static void
csv_row(GString *out, const FthItemRecord *item, const FthAnnotation *ann, GHashTable *labels)
{
  g_string_append_printf(out, "%" G_GINT64_FORMAT ",%s,", item->id,
                         fth_item_kind_to_string(item->kind));
  append_csv_field(out, item->path);
  g_string_append_printf(out, ",%" G_GINT64_FORMAT ",%s,%s,", item->member, item->sha256,
                         fth_split_to_string(item->split));
  if (item->kind == FTH_ITEM_IMAGE)
    g_string_append_printf(out, "%d,%d,", item->width, item->height);
  else
    g_string_append(out, ",,");
  if (item->kind == FTH_ITEM_AUDIO) {
    append_csv_number(out, item->duration_s);
    g_string_append_printf(out, ",%d,", item->sample_rate);
  } else {
    g_string_append(out, ",,");
  }
  if (item->kind == FTH_ITEM_TEXT)
    g_string_append_printf(out, "%" G_GINT64_FORMAT, item->length_chars);
  g_string_append_c(out, ',');
  append_csv_field(out, item->text);
  g_string_append_c(out, ',');
  if (!ann) {
    g_string_append(out, ",,,,,,,,,,,,\n");
    return;
  }
  append_csv_field(out, g_hash_table_lookup(labels, &ann->label_id));
  g_string_append_printf(out, ",%s,", fth_geom_kind_to_string(ann->geom));
  if (ann->geom == FTH_GEOM_BOX) {
    append_csv_number(out, ann->x);
    g_string_append_c(out, ',');
    append_csv_number(out, ann->y);
    g_string_append_c(out, ',');
    append_csv_number(out, ann->w);
    g_string_append_c(out, ',');
    append_csv_number(out, ann->h);
    g_string_append_c(out, ',');
  } else {
    g_string_append(out, ",,,,");
  }
  for (guint i = 0; ann->geom == FTH_GEOM_POLYGON && i < 2 * ann->n_points; i++) {
    if (i > 0)
      g_string_append_c(out, ' ');
    append_csv_number(out, ann->points[i]);
  }
  g_string_append_c(out, ',');
  if (ann->geom == FTH_GEOM_SEGMENT) {
    append_csv_number(out, ann->t0);
    g_string_append_c(out, ',');
    append_csv_number(out, ann->t1);
    g_string_append_c(out, ',');
  } else {
    g_string_append(out, ",,");
  }
  if (ann->geom == FTH_GEOM_SPAN)
    g_string_append_printf(out, "%" G_GINT64_FORMAT ",%" G_GINT64_FORMAT ",", ann->start,
                           ann->end);
  else
    g_string_append(out, ",,");
  g_string_append_printf(out, "%s,", ann->author == FTH_AUTHOR_MODEL ? "model" : "human");
  append_csv_number(out, ann->score);
  g_string_append_c(out, '\n');
}

static void
json_member(GString *out, const char *name)
{
  g_string_append_c(out, ',');
  append_json_string(out, name);
  g_string_append_c(out, ':');
}

static void
json_number_member(GString *out, const char *name, double v)
{
  json_member(out, name);
  append_number(out, v);
}

static void
json_line(GString *out, const FthItemRecord *item, GPtrArray *anns, GHashTable *labels)
{
  g_string_append_printf(out, "{\"id\":%" G_GINT64_FORMAT ",\"kind\":\"%s\"", item->id,
                         fth_item_kind_to_string(item->kind));
  json_member(out, "path");
  append_json_string(out, item->path);
  g_string_append_printf(out, ",\"member\":%" G_GINT64_FORMAT ",\"sha256\":\"%s\",\"split\":\"%s\"",
                         item->member, item->sha256, fth_split_to_string(item->split));
  if (item->kind == FTH_ITEM_IMAGE)
    g_string_append_printf(out, ",\"width\":%d,\"height\":%d", item->width, item->height);
  if (item->kind == FTH_ITEM_AUDIO) {
    json_number_member(out, "duration_s", item->duration_s);
    g_string_append_printf(out, ",\"sample_rate\":%d", item->sample_rate);
  }
  if (item->kind == FTH_ITEM_TEXT) {
    g_string_append_printf(out, ",\"length_chars\":%" G_GINT64_FORMAT, item->length_chars);
    if (item->text) {
      json_member(out, "text");
      append_json_string(out, item->text);
    }
  }
  for (guint i = 0; i < anns->len; i++) {
    const FthAnnotation *a = g_ptr_array_index(anns, i);
    if (a->geom == FTH_GEOM_WHOLE) {
      json_member(out, "label");
      append_json_string(out, g_hash_table_lookup(labels, &a->label_id));
      break;
    }
  }
  g_string_append(out, ",\"annotations\":[");
  for (guint i = 0; i < anns->len; i++) {
    const FthAnnotation *a = g_ptr_array_index(anns, i);
    g_string_append_printf(out, "%s{\"id\":%" G_GINT64_FORMAT, i ? "," : "", a->id);
    json_member(out, "label");
    append_json_string(out, g_hash_table_lookup(labels, &a->label_id));
    g_string_append_printf(out, ",\"geom\":\"%s\"", fth_geom_kind_to_string(a->geom));
    switch (a->geom) {
    case FTH_GEOM_BOX:
      json_number_member(out, "x", a->x);
      json_number_member(out, "y", a->y);
      json_number_member(out, "w", a->w);
      json_number_member(out, "h", a->h);
      break;
    case FTH_GEOM_POLYGON:
      g_string_append(out, ",\"points\":[");
      for (guint p = 0; p < a->n_points; p++) {
        g_string_append(out, p ? ",[" : "[");
        append_number(out, a->points[2 * p]);
        g_string_append_c(out, ',');
        append_number(out, a->points[2 * p + 1]);
        g_string_append_c(out, ']');
      }
      g_string_append_c(out, ']');
      break;
    case FTH_GEOM_SEGMENT:
      json_number_member(out, "t0", a->t0);
      json_number_member(out, "t1", a->t1);
      break;
    case FTH_GEOM_SPAN:
      g_string_append_printf(out, ",\"start\":%" G_GINT64_FORMAT ",\"end\":%" G_GINT64_FORMAT,
                             a->start, a->end);
      break;
    default:
      break;
    }
    g_string_append_printf(out, ",\"author\":\"%s\"",
                           a->author == FTH_AUTHOR_MODEL ? "model" : "human");
    json_number_member(out, "score", a->score);
    g_string_append_c(out, '}');
  }
  g_string_append(out, "]}\n");
}

static gboolean
flush(GOutputStream *stream, GString *buf, GCancellable *cancellable, GError **error)
{
  gboolean ok = g_output_stream_write_all(stream, buf->str, buf->len, NULL, cancellable, error);
  g_string_truncate(buf, 0);
  return ok;
}

gboolean
fth_export_to_stream(FthStore *store, FthExportFormat format, GOutputStream *stream,
                     GCancellable *cancellable, guint64 *n_items, GError **error)
{
  g_autoptr(GPtrArray) label_list = fth_store_list_labels(store, error);
  if (!label_list)
    return FALSE;
  g_autoptr(GHashTable) labels = g_hash_table_new(g_int64_hash, g_int64_equal);
  for (guint i = 0; i < label_list->len; i++) {
    FthLabel *l = g_ptr_array_index(label_list, i);
    g_hash_table_insert(labels, &l->id, l->name);
  }
  g_autoptr(GString) buf = g_string_sized_new(1 << 16);
  if (format == FTH_EXPORT_CSV) {
    for (guint i = 0; i < G_N_ELEMENTS(csv_columns); i++)
      g_string_append_printf(buf, "%s%s", i ? "," : "", csv_columns[i]);
    g_string_append_c(buf, '\n');
  }
  guint64 count = 0;
  gint64 after = 0;
  for (;;) {
    if (g_cancellable_set_error_if_cancelled(cancellable, error))
      return FALSE;
    g_autoptr(GPtrArray) page = fth_store_list_items_after(store, NULL, after, 1000, error);
    if (!page)
      return FALSE;
    if (page->len == 0)
      break;
    for (guint i = 0; i < page->len; i++) {
      FthItemRecord *item = g_ptr_array_index(page, i);
      g_autoptr(GPtrArray) anns = fth_store_list_annotations(store, item->id, error);
      if (!anns)
        return FALSE;
      if (format == FTH_EXPORT_CSV) {
        if (anns->len == 0)
          csv_row(buf, item, NULL, labels);
        for (guint a = 0; a < anns->len; a++)
          csv_row(buf, item, g_ptr_array_index(anns, a), labels);
      } else {
        json_line(buf, item, anns, labels);
      }
      after = item->id;
      count++;
    }
    if (!flush(stream, buf, cancellable, error))
      return FALSE;
  }
  if (buf->len && !flush(stream, buf, cancellable, error))
    return FALSE;
  if (n_items)
    *n_items = count;
  return TRUE;
}

gboolean
fth_export_to_file(FthStore *store, FthExportFormat format, const char *path,
                   GCancellable *cancellable, guint64 *n_items, GError **error)
{
  g_autoptr(GFile) file = g_file_new_for_path(path);
  g_autoptr(GError) local = NULL;
  /* g_file_replace writes to a temporary and renames on close; on failure the old file stays. */
  g_autoptr(GFileOutputStream) out =
      g_file_replace(file, NULL, FALSE, G_FILE_CREATE_NONE, cancellable, &local);
  if (!out) {
    g_set_error(error, local->domain, local->code, "%s: %s", path, local->message);
    return FALSE;
  }
  if (!fth_export_to_stream(store, format, G_OUTPUT_STREAM(out), cancellable, n_items, &local)) {
    /* Cancelling the close abandons the temporary file. */
    g_autoptr(GCancellable) abandon = g_cancellable_new();
    g_cancellable_cancel(abandon);
    g_output_stream_close(G_OUTPUT_STREAM(out), abandon, NULL);
    g_set_error(error, local->domain, local->code, "%s: %s", path, local->message);
    return FALSE;
  }
  if (!g_output_stream_close(G_OUTPUT_STREAM(out), cancellable, &local)) {
    g_set_error(error, local->domain, local->code, "%s: %s", path, local->message);
    return FALSE;
  }
  return TRUE;
}
