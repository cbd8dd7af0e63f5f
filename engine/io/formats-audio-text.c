/* formats-audio-text.c: Audacity labels, segment and span JSONL, CoNLL BIO (see
 * fathom/formats.h). */
#include <fathom/formats.h>
#include <fathom/media.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

FthSegmentLabel *
fth_segment_label_new(const char *path, double t0, double t1, const char *label)
{
  FthSegmentLabel *segment = g_new0(FthSegmentLabel, 1);
  segment->path = g_strdup(path);
  segment->t0 = t0;
  segment->t1 = t1;
  segment->label = g_strdup(label);
  return segment;
}

void
fth_segment_label_free(FthSegmentLabel *segment)
{
  if (segment == NULL)
    return;
  g_free(segment->path);
  g_free(segment->label);
  g_free(segment);
}

FthSpanLabel *
fth_span_label_new(const char *path, gint64 start, gint64 end, const char *label)
{
  FthSpanLabel *span = g_new0(FthSpanLabel, 1);
  span->path = g_strdup(path);
  span->start = start;
  span->end = end;
  span->label = g_strdup(label);
  return span;
}

void
fth_span_label_free(FthSpanLabel *span)
{
  if (span == NULL)
    return;
  g_free(span->path);
  g_free(span->label);
  g_free(span);
}

static void
set_line_error(GError **error, const char *name, guint64 line, const char *format, ...)
  G_GNUC_PRINTF(4, 5);

static void
set_line_error(GError **error, const char *name, guint64 line, const char *format, ...)
{
  va_list args;
  va_start(args, format);
  g_autofree char *what = g_strdup_vprintf(format, args);
  va_end(args);
  g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "%s:%" G_GUINT64_FORMAT ": %s", name,
              line, what);
}

/* ---- Audacity ------------------------------------------------------------------------------ */

char *
fth_audacity_labels_write(GPtrArray *segments)
{
  GString *out = g_string_new(NULL);
  for (guint i = 0; i < segments->len; i++) {
    const FthSegmentLabel *s = g_ptr_array_index(segments, i);
    char t0[G_ASCII_DTOSTR_BUF_SIZE], t1[G_ASCII_DTOSTR_BUF_SIZE];
    g_ascii_formatd(t0, sizeof t0, "%.6f", s->t0);
    g_ascii_formatd(t1, sizeof t1, "%.6f", s->t1);
    /* A tab or line break in a name would split the line; Audacity shows them as spaces. */
    g_autofree char *label = g_strdup(s->label != NULL ? s->label : "");
    g_strdelimit(label, "\t\r\n", ' ');
    g_string_append_printf(out, "%s\t%s\t%s\n", t0, t1, label);
  }
  return g_string_free(out, FALSE);
}

static gboolean
parse_seconds(const char *field, double *out)
{
  char *end = NULL;
  double v = g_ascii_strtod(field, &end);
  if (end == field || *end != '\0' || !isfinite(v))
    return FALSE;
  *out = v;
  return TRUE;
}

GPtrArray *
fth_audacity_labels_parse(const char *data, gsize len, const char *name, GError **error)
{
  if (!fth_text_validate(data, len, name, error))
    return NULL;
  g_autoptr(GPtrArray) segments = g_ptr_array_new_with_free_func(
    (GDestroyNotify)fth_segment_label_free);
  g_autofree char *copy = g_strndup(data, len);
  g_auto(GStrv) lines = g_strsplit(copy, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++) {
    char *line = lines[i];
    gsize n = strlen(line);
    if (n > 0 && line[n - 1] == '\r')
      line[n - 1] = '\0';
    if (line[0] == '\0' || line[0] == '\\')
      continue;
    g_auto(GStrv) fields = g_strsplit(line, "\t", 3);
    double t0, t1;
    if (g_strv_length(fields) < 2 || !parse_seconds(fields[0], &t0) ||
        !parse_seconds(fields[1], &t1)) {
      set_line_error(error, name, i + 1, "expected \"start<TAB>end<TAB>label\" in seconds");
      return NULL;
    }
    if (t0 < 0 || t1 < t0) {
      set_line_error(error, name, i + 1, "times %g to %g are not 0 <= start <= end", t0, t1);
      return NULL;
    }
    g_ptr_array_add(segments, fth_segment_label_new(NULL, t0, t1, fields[2] != NULL ? fields[2]
                                                                                   : ""));
  }
  return g_steal_pointer(&segments);
}

/* ---- JSONL --------------------------------------------------------------------------------- */

static void
append_json_line(GString *out, JsonBuilder *builder)
{
  g_autoptr(JsonNode) root = json_builder_get_root(builder);
  g_autoptr(JsonGenerator) gen = json_generator_new();
  json_generator_set_root(gen, root);
  g_autofree char *line = json_generator_to_data(gen, NULL);
  g_string_append(out, line);
  g_string_append_c(out, '\n');
}

char *
fth_segments_jsonl_write(GPtrArray *segments)
{
  GString *out = g_string_new(NULL);
  for (guint i = 0; i < segments->len; i++) {
    const FthSegmentLabel *s = g_ptr_array_index(segments, i);
    g_autoptr(JsonBuilder) b = json_builder_new();
    json_builder_begin_object(b);
    if (s->path != NULL) {
      json_builder_set_member_name(b, "path");
      json_builder_add_string_value(b, s->path);
    }
    json_builder_set_member_name(b, "t0");
    json_builder_add_double_value(b, s->t0);
    json_builder_set_member_name(b, "t1");
    json_builder_add_double_value(b, s->t1);
    json_builder_set_member_name(b, "label");
    json_builder_add_string_value(b, s->label != NULL ? s->label : "");
    json_builder_end_object(b);
    append_json_line(out, b);
  }
  return g_string_free(out, FALSE);
}

/* A member that must be a number (an integer when INTEGER). */
static gboolean
member_number(JsonObject *obj, const char *member, gboolean integer, double *out)
{
  JsonNode *node = json_object_get_member(obj, member);
  if (node == NULL || json_node_get_value_type(node) == G_TYPE_STRING ||
      JSON_NODE_TYPE(node) != JSON_NODE_VALUE || json_node_get_value_type(node) == G_TYPE_BOOLEAN)
    return FALSE;
  if (integer && json_node_get_value_type(node) != G_TYPE_INT64)
    return FALSE;
  *out = json_node_get_double(node);
  return isfinite(*out);
}

static const char *
member_string(JsonObject *obj, const char *member)
{
  JsonNode *node = json_object_get_member(obj, member);
  if (node == NULL || JSON_NODE_TYPE(node) != JSON_NODE_VALUE ||
      json_node_get_value_type(node) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string(node);
}

GPtrArray *
fth_segments_jsonl_parse(const char *data, gsize len, const char *name, GError **error)
{
  g_autoptr(FthJsonlReader) reader = fth_jsonl_reader_new_from_memory(data, len, name, error);
  if (reader == NULL)
    return NULL;
  g_autoptr(GPtrArray) segments = g_ptr_array_new_with_free_func(
    (GDestroyNotify)fth_segment_label_free);
  JsonObject *obj = NULL;
  GError *local = NULL;
  while (fth_jsonl_reader_next(reader, &obj, &local)) {
    double t0, t1;
    const char *label = member_string(obj, "label");
    guint64 line = fth_jsonl_reader_get_line(reader);
    gboolean ok = member_number(obj, "t0", FALSE, &t0) && member_number(obj, "t1", FALSE, &t1);
    if (!ok || label == NULL)
      set_line_error(error, name, line, "a segment needs numbers \"t0\", \"t1\" and a string "
                                        "\"label\"");
    else if (t0 < 0 || t1 < t0)
      set_line_error(error, name, line, "times %g to %g are not 0 <= t0 <= t1", t0, t1);
    else
      g_ptr_array_add(segments, fth_segment_label_new(member_string(obj, "path"), t0, t1, label));
    json_object_unref(obj);
    if (!ok || label == NULL || t0 < 0 || t1 < t0)
      return NULL;
  }
  if (local != NULL) {
    g_propagate_error(error, local);
    return NULL;
  }
  return g_steal_pointer(&segments);
}

char *
fth_spans_jsonl_write(GPtrArray *spans, const char *text)
{
  GString *out = g_string_new(NULL);
  gsize text_len = text != NULL ? strlen(text) : 0;
  for (guint i = 0; i < spans->len; i++) {
    const FthSpanLabel *s = g_ptr_array_index(spans, i);
    g_autoptr(JsonBuilder) b = json_builder_new();
    json_builder_begin_object(b);
    if (s->path != NULL) {
      json_builder_set_member_name(b, "path");
      json_builder_add_string_value(b, s->path);
    }
    json_builder_set_member_name(b, "start");
    json_builder_add_int_value(b, s->start);
    json_builder_set_member_name(b, "end");
    json_builder_add_int_value(b, s->end);
    json_builder_set_member_name(b, "label");
    json_builder_add_string_value(b, s->label != NULL ? s->label : "");
    gsize b0, b1;
    if (text != NULL && s->start >= 0 && s->end >= s->start &&
        fth_text_char_to_byte_offset(text, text_len, (gsize)s->start, &b0) &&
        fth_text_char_to_byte_offset(text, text_len, (gsize)s->end, &b1)) {
      g_autofree char *covered = g_strndup(text + b0, b1 - b0);
      json_builder_set_member_name(b, "text");
      json_builder_add_string_value(b, covered);
    }
    json_builder_end_object(b);
    append_json_line(out, b);
  }
  return g_string_free(out, FALSE);
}

GPtrArray *
fth_spans_jsonl_parse(const char *data, gsize len, const char *name, GError **error)
{
  g_autoptr(FthJsonlReader) reader = fth_jsonl_reader_new_from_memory(data, len, name, error);
  if (reader == NULL)
    return NULL;
  g_autoptr(GPtrArray) spans = g_ptr_array_new_with_free_func(
    (GDestroyNotify)fth_span_label_free);
  JsonObject *obj = NULL;
  GError *local = NULL;
  while (fth_jsonl_reader_next(reader, &obj, &local)) {
    double start, end;
    const char *label = member_string(obj, "label");
    guint64 line = fth_jsonl_reader_get_line(reader);
    gboolean ok = member_number(obj, "start", TRUE, &start) &&
                  member_number(obj, "end", TRUE, &end) && label != NULL;
    if (!ok)
      set_line_error(error, name, line, "a span needs integers \"start\", \"end\" and a string "
                                        "\"label\"");
    else if (start < 0 || end <= start) {
      set_line_error(error, name, line, "offsets %.0f to %.0f are not 0 <= start < end", start,
                     end);
      ok = FALSE;
    } else
      g_ptr_array_add(spans, fth_span_label_new(member_string(obj, "path"), (gint64)start,
                                                (gint64)end, label));
    json_object_unref(obj);
    if (!ok)
      return NULL;
  }
  if (local != NULL) {
    g_propagate_error(error, local);
    return NULL;
  }
  return g_steal_pointer(&spans);
}

/* ---- CoNLL --------------------------------------------------------------------------------- */

typedef struct {
  gint64 start, end;      /* characters */
  gsize byte_start, byte_end;
  gboolean sentence_start; /* a line break comes before it */
} Token;

static GArray *
tokenize(const char *text)
{
  GArray *tokens = g_array_new(FALSE, FALSE, sizeof(Token));
  gint64 pos = 0;
  gboolean newline = TRUE, in_token = FALSE;
  Token tok = { 0 };
  for (const char *p = text; *p != '\0'; p = g_utf8_next_char(p), pos++) {
    gunichar c = g_utf8_get_char(p);
    if (g_unichar_isspace(c)) {
      if (in_token) {
        tok.end = pos;
        tok.byte_end = (gsize)(p - text);
        g_array_append_val(tokens, tok);
        in_token = FALSE;
      }
      if (c == '\n')
        newline = TRUE;
    } else if (!in_token) {
      tok.start = pos;
      tok.byte_start = (gsize)(p - text);
      tok.sentence_start = newline && tokens->len > 0;
      newline = FALSE;
      in_token = TRUE;
    }
  }
  if (in_token) {
    tok.end = pos;
    tok.byte_end = strlen(text);
    g_array_append_val(tokens, tok);
  }
  return tokens;
}

static int
span_order(gconstpointer a, gconstpointer b)
{
  const FthSpanLabel *x = *(FthSpanLabel *const *)a, *y = *(FthSpanLabel *const *)b;
  if (x->start != y->start)
    return x->start < y->start ? -1 : 1;
  return x->end == y->end ? 0 : (x->end > y->end ? -1 : 1);
}

char *
fth_conll_write(const char *text, GPtrArray *spans, GPtrArray **report)
{
  g_autoptr(GArray) tokens = tokenize(text);
  g_autoptr(GPtrArray) problems = g_ptr_array_new_with_free_func(g_free);
  g_autoptr(GPtrArray) sorted = g_ptr_array_copy(spans, NULL, NULL);
  g_ptr_array_set_free_func(sorted, NULL); /* the copy borrows the spans */
  g_ptr_array_sort(sorted, span_order);
  /* Per token: the accepted span that covers it, and whether it is that span's first token. */
  g_autofree const FthSpanLabel **owner = g_new0(const FthSpanLabel *, tokens->len + 1);
  const FthSpanLabel *last = NULL;
  for (guint i = 0; i < sorted->len; i++) {
    const FthSpanLabel *s = g_ptr_array_index(sorted, i);
    if (last != NULL && s->start < last->end) {
      g_ptr_array_add(problems, g_strdup_printf("span %" G_GINT64_FORMAT "-%" G_GINT64_FORMAT
                                                " (%s) overlaps span %" G_GINT64_FORMAT
                                                "-%" G_GINT64_FORMAT " (%s): left out",
                                                s->start, s->end, s->label, last->start,
                                                last->end, last->label));
      continue;
    }
    guint first = G_MAXUINT, end_tok = G_MAXUINT;
    gboolean crosses = FALSE;
    for (guint t = 0; t < tokens->len; t++) {
      const Token *tok = &g_array_index(tokens, Token, t);
      if (tok->start == s->start)
        first = t;
      if (tok->end == s->end)
        end_tok = t;
      if (first != G_MAXUINT && t > first && t <= end_tok && tok->sentence_start &&
          tok->start < s->end)
        crosses = TRUE;
    }
    const char *why = NULL;
    if (first == G_MAXUINT || end_tok == G_MAXUINT || end_tok < first)
      why = "does not start and end at token edges";
    else if (crosses)
      why = "crosses a line break";
    if (why != NULL) {
      g_ptr_array_add(problems, g_strdup_printf("span %" G_GINT64_FORMAT "-%" G_GINT64_FORMAT
                                                " (%s) %s: left out",
                                                s->start, s->end, s->label, why));
      continue;
    }
    for (guint t = first; t <= end_tok; t++)
      owner[t] = s;
    last = s;
  }
  GString *out = g_string_new(NULL);
  for (guint t = 0; t < tokens->len; t++) {
    const Token *tok = &g_array_index(tokens, Token, t);
    if (tok->sentence_start)
      g_string_append_c(out, '\n');
    g_string_append_len(out, text + tok->byte_start, (gssize)(tok->byte_end - tok->byte_start));
    if (owner[t] == NULL)
      g_string_append(out, "\tO\n");
    else
      g_string_append_printf(out, "\t%s-%s\n",
                             (t == 0 || owner[t - 1] != owner[t]) ? "B" : "I", owner[t]->label);
  }
  if (report != NULL)
    *report = g_steal_pointer(&problems);
  return g_string_free(out, FALSE);
}

gboolean
fth_conll_parse(const char *data, gsize len, const char *name, char **text, GPtrArray **spans,
                GError **error)
{
  if (!fth_text_validate(data, len, name, error))
    return FALSE;
  g_autoptr(GPtrArray) found = g_ptr_array_new_with_free_func(
    (GDestroyNotify)fth_span_label_free);
  g_autoptr(GString) doc = g_string_new(NULL);
  g_autofree char *copy = g_strndup(data, len);
  g_auto(GStrv) lines = g_strsplit(copy, "\n", -1);
  gint64 pos = 0;
  gboolean sentence_open = FALSE, sentence_ended = FALSE;
  FthSpanLabel *open = NULL; /* the span the previous token belongs to */
  for (guint i = 0; lines[i] != NULL; i++) {
    char *line = g_strstrip(lines[i]);
    if (line[0] == '\0') {
      if (sentence_open)
        sentence_ended = TRUE;
      sentence_open = FALSE;
      open = NULL;
      continue;
    }
    char *tab = strrchr(line, '\t');
    if (tab == NULL)
      tab = strrchr(line, ' ');
    if (tab == NULL) {
      set_line_error(error, name, i + 1, "expected \"token<TAB>tag\"");
      return FALSE;
    }
    *tab = '\0';
    const char *token = g_strchomp(line), *tag = tab + 1;
    gboolean begin = g_str_has_prefix(tag, "B-"), inside = g_str_has_prefix(tag, "I-");
    if (strcmp(tag, "O") != 0 && !((begin || inside) && tag[2] != '\0')) {
      set_line_error(error, name, i + 1, "tag \"%s\" is not O, B-label or I-label", tag);
      return FALSE;
    }
    if (doc->len > 0)
      g_string_append_c(doc, sentence_ended ? '\n' : ' ');
    if (doc->len > 0)
      pos++;
    sentence_ended = FALSE;
    sentence_open = TRUE;
    gint64 tok_len = (gint64)g_utf8_strlen(token, -1);
    g_string_append(doc, token);
    if (strcmp(tag, "O") == 0)
      open = NULL;
    else if (inside && open != NULL && strcmp(open->label, tag + 2) == 0)
      open->end = pos + tok_len;
    else {
      /* B-, or an I- without a B- before it (IOB1 files) */
      open = fth_span_label_new(NULL, pos, pos + tok_len, tag + 2);
      g_ptr_array_add(found, open);
    }
    pos += tok_len;
  }
  *text = g_string_free(g_steal_pointer(&doc), FALSE);
  *spans = g_steal_pointer(&found);
  return TRUE;
}

/* ---- the store ----------------------------------------------------------------------------- */

static const char *
label_name(GPtrArray *labels, gint64 id)
{
  for (guint i = 0; i < labels->len; i++) {
    const FthLabel *l = g_ptr_array_index(labels, i);
    if (l->id == id)
      return l->name;
  }
  return "";
}

static int
segment_order(gconstpointer a, gconstpointer b)
{
  const FthSegmentLabel *x = *(FthSegmentLabel *const *)a, *y = *(FthSegmentLabel *const *)b;
  if (x->t0 != y->t0)
    return x->t0 < y->t0 ? -1 : 1;
  return x->t1 < y->t1 ? -1 : (x->t1 > y->t1);
}

static GPtrArray *
list_geom(FthStore *store, gint64 item_id, FthAuthor author, FthGeomKind geom, GError **error)
{
  g_autoptr(FthItemRecord) item = fth_store_get_item(store, item_id, error);
  if (item == NULL)
    return NULL;
  g_autoptr(GPtrArray) anns = fth_store_list_annotations(store, item_id, error);
  if (anns == NULL)
    return NULL;
  g_autoptr(GPtrArray) labels = fth_store_list_labels(store, error);
  if (labels == NULL)
    return NULL;
  GPtrArray *out = g_ptr_array_new_with_free_func(
    geom == FTH_GEOM_SEGMENT ? (GDestroyNotify)fth_segment_label_free
                             : (GDestroyNotify)fth_span_label_free);
  for (guint i = 0; i < anns->len; i++) {
    const FthAnnotation *a = g_ptr_array_index(anns, i);
    if (a->geom != geom || (author != FTH_AUTHOR_ANY && a->author != author))
      continue;
    const char *name = label_name(labels, a->label_id);
    if (geom == FTH_GEOM_SEGMENT)
      g_ptr_array_add(out, fth_segment_label_new(item->path, a->t0, a->t1, name));
    else
      g_ptr_array_add(out, fth_span_label_new(item->path, a->start, a->end, name));
  }
  g_ptr_array_sort(out, geom == FTH_GEOM_SEGMENT ? segment_order : span_order);
  return out;
}

GPtrArray *
fth_item_list_segments(FthStore *store, gint64 item_id, FthAuthor author, GError **error)
{
  return list_geom(store, item_id, author, FTH_GEOM_SEGMENT, error);
}

GPtrArray *
fth_item_list_spans(FthStore *store, gint64 item_id, FthAuthor author, GError **error)
{
  return list_geom(store, item_id, author, FTH_GEOM_SPAN, error);
}

static gboolean
find_or_add_label(FthStore *store, const char *name, FthLabelKind kind, gint64 *id,
                  GError **error)
{
  GError *local = NULL;
  g_autoptr(FthLabel) label = fth_store_find_label(store, name, &local);
  if (local != NULL) {
    g_propagate_error(error, local);
    return FALSE;
  }
  if (label != NULL) {
    *id = label->id;
    return TRUE;
  }
  return fth_store_add_label(store, name, NULL, NULL, kind, id, error);
}

static gboolean
add_records(FthStore *store, gint64 item_id, GPtrArray *records, FthGeomKind geom,
            GError **error)
{
  g_autoptr(FthItemRecord) item = fth_store_get_item(store, item_id, error);
  if (item == NULL || !fth_store_begin(store, error))
    return FALSE;
  for (guint i = 0; i < records->len; i++) {
    g_autoptr(FthAnnotation) ann = fth_annotation_new();
    ann->item_id = item_id;
    ann->geom = geom;
    ann->author = FTH_AUTHOR_HUMAN;
    const char *name;
    gboolean fits;
    if (geom == FTH_GEOM_SEGMENT) {
      const FthSegmentLabel *s = g_ptr_array_index(records, i);
      name = s->label;
      ann->t0 = s->t0;
      ann->t1 = s->t1;
      /* Half a sample of slack: times written with six decimals round. */
      double slack = item->sample_rate > 0 ? 0.5 / item->sample_rate : 1e-6;
      fits = item->duration_s <= 0 || s->t1 <= item->duration_s + slack;
      if (!fits)
        g_set_error(error, FTH_STORE_ERROR, FTH_STORE_ERROR_INVALID,
                    "%s: segment %u (%s, %.6f-%.6f s) ends after the audio (%.6f s)", item->path,
                    i + 1, name, s->t0, s->t1, item->duration_s);
    } else {
      const FthSpanLabel *s = g_ptr_array_index(records, i);
      name = s->label;
      ann->start = s->start;
      ann->end = s->end;
      fits = item->length_chars <= 0 || s->end <= item->length_chars;
      if (!fits)
        g_set_error(error, FTH_STORE_ERROR, FTH_STORE_ERROR_INVALID,
                    "%s: span %u (%s, %" G_GINT64_FORMAT "-%" G_GINT64_FORMAT
                    ") ends after the text (%" G_GINT64_FORMAT " characters)",
                    item->path, i + 1, name, s->start, s->end, item->length_chars);
    }
    if (!fits ||
        !find_or_add_label(store, name, geom == FTH_GEOM_SEGMENT ? FTH_LABEL_SEGMENT
                                                                 : FTH_LABEL_SPAN,
                           &ann->label_id, error) ||
        !fth_store_add_annotation(store, ann, NULL, error)) {
      fth_store_rollback(store, NULL);
      return FALSE;
    }
  }
  return fth_store_commit(store, error);
}

gboolean
fth_item_add_segments(FthStore *store, gint64 item_id, GPtrArray *segments, GError **error)
{
  return add_records(store, item_id, segments, FTH_GEOM_SEGMENT, error);
}

gboolean
fth_item_add_spans(FthStore *store, gint64 item_id, GPtrArray *spans, GError **error)
{
  return add_records(store, item_id, spans, FTH_GEOM_SPAN, error);
}
