/* fth-text-span-view.c: see fth-text-span-view.h. Spans are GtkTextTags shared per (label,
 * lane, author), so a long document with many spans needs only a handful of tags; label names
 * are drawn by an overlay for the spans that start in the visible part only. */
#include "fth-text-span-view.h"
#include "fth-label-color.h"

#include <fathom/media.h>
#include <glib/gi18n.h>
#include <string.h>

#define N_STYLED_LANES 3 /* lanes past this look like the last one */

typedef struct {
  const FthAnnotation *ann; /* in self->annotations */
  guint lane;
} Span;

/* A span's tag as it is on the buffer, so the next set of annotations touches only what
 * changed: a new span among thousands costs one tag, not thousands. */
typedef struct {
  gint64 id, start, end;
  GtkTextTag *tag;
} Applied;

struct _FthTextSpanView {
  GtkWidget parent_instance;

  GtkWidget *header;       /* class chips */
  GtkWidget *trim_check;   /* "trim-whitespace" */
  GtkWidget *message;      /* errors and annotation problems */
  GtkWidget *encoding_row; /* for a file that is not UTF-8; made the first time one comes */
  GtkWidget *encoding_dropdown;
  GtkWidget *text_view;
  GtkWidget *overlay_area; /* label names */
  GtkTextBuffer *buffer;

  char *name;              /* for messages */
  char *path;              /* the file loaded last, for a re-read in another encoding */
  char *message_text;
  gint64 length;           /* characters of the document (the buffer has the breaks too) */
  GArray *breaks;          /* gint64, ascending: document offsets a line break is shown before */

  GPtrArray *annotations;  /* FthAnnotation */
  GPtrArray *labels;       /* FthLabel */
  GArray *spans;           /* Span, shown ones, by start */
  GArray *applied;         /* Applied, one per span tag on the buffer */
  GPtrArray *tags;         /* GtkTextTag of spans, to clear them */
  GtkTextTag *selected_tag;
  GMenu *span_menu;        /* the text view's context menu: relabel or delete the span */
  gint64 selected;
  gboolean trim;
};

G_DEFINE_FINAL_TYPE(FthTextSpanView, fth_text_span_view, GTK_TYPE_WIDGET)

enum {
  SIGNAL_ADD_ANNOTATION,
  SIGNAL_UPDATE_ANNOTATION,
  SIGNAL_REMOVE_ANNOTATION,
  SIGNAL_SET_CLASS,
  SIGNAL_ENCODING_CHOSEN,
  N_SIGNALS
};
static guint signals[N_SIGNALS];

static const char *const encodings[] = {
  "Windows-1252", "ISO-8859-1", "ISO-8859-15", "GB18030", "Big5", "Shift_JIS", "EUC-JP",
  "EUC-KR", "KOI8-R", "Windows-1251", "UTF-16", "UTF-16LE", "UTF-16BE", NULL,
};

const char *const *
fth_text_span_view_get_encodings(void)
{
  return encodings;
}

static const FthLabel *
find_label(FthTextSpanView *self, gint64 id)
{
  return fth_labels_find(self->labels, id);
}

static void
label_rgba(FthTextSpanView *self, gint64 id, GdkRGBA *rgba)
{
  fth_label_get_rgba(find_label(self, id), rgba);
}

static void
set_message(FthTextSpanView *self, const char *text)
{
  g_free(self->message_text);
  self->message_text = g_strdup(text);
  gtk_label_set_text(GTK_LABEL(self->message), text != NULL ? text : "");
  gtk_widget_set_visible(self->message, text != NULL);
}

const char *
fth_text_span_view_get_message(FthTextSpanView *self)
{
  return self->message_text;
}

gint64
fth_text_span_view_get_length(FthTextSpanView *self)
{
  return self->length;
}

GtkTextView *
fth_text_span_view_get_text_view(FthTextSpanView *self)
{
  return GTK_TEXT_VIEW(self->text_view);
}

/* ---- text ---------------------------------------------------------------------------------- */

static void apply_annotations(FthTextSpanView *self);
static void ensure_encoding_row(FthTextSpanView *self);

/* GtkTextBuffer's cost per tag, and Pango's layout of a paragraph, grow with the length of the
 * line: a megabyte on one line takes seconds a frame to scroll and seconds per thousand spans.
 * Lines longer than LONG_LINE_CHARS are shown broken: at a space (the space shown as a line
 * break: one character for one), else after punctuation, else past HARD_LINE_CHARS anywhere
 * that does not split a character from its combining marks or an emoji sequence. Those
 * breaks are characters the document does not have: self->breaks keeps where they are, and
 * every offset that goes between the document and the buffer goes through it. */
#define LONG_LINE_CHARS 2000
#define HARD_LINE_CHARS 4000

/* Whether a line break may be shown between PREV and C without splitting what is drawn as one
 * character: a base and its marks, an emoji with its modifiers, variation selectors, ZWJ
 * sequences, tags and flags. */
static gboolean
can_break_between(gunichar prev, gunichar c)
{
  if (g_unichar_ismark(c) || c == 0x200d || prev == 0x200d || c == 0x20e3)
    return FALSE;
  if ((c >= 0xfe00 && c <= 0xfe0f) || (c >= 0xe0100 && c <= 0xe01ef)) /* variation selectors */
    return FALSE;
  if ((c >= 0x1f3fb && c <= 0x1f3ff) || (c >= 0xe0020 && c <= 0xe007f)) /* skin tones, tags */
    return FALSE;
  if (c >= 0x1f1e6 && c <= 0x1f1ff && prev >= 0x1f1e6 && prev <= 0x1f1ff) /* a flag's pair */
    return FALSE;
  return TRUE;
}

/* TEXT as the buffer shows it, and into BREAKS the document offsets of the breaks added. */
static char *
break_long_lines(const char *text, GArray *breaks)
{
  GString *shown = g_string_sized_new(strlen(text) + 16);
  gsize run = 0;
  gint64 offset = 0;
  gunichar prev = 0;
  for (const char *p = text; *p != '\0'; p = g_utf8_next_char(p), offset++) {
    gunichar c = g_utf8_get_char(p);
    if (c == '\n' || c == '\r') {
      run = 0;
    } else if (run >= LONG_LINE_CHARS && c == ' ') {
      g_string_append_c(shown, '\n');
      run = 0;
      prev = c;
      continue;
    } else if (run >= LONG_LINE_CHARS && can_break_between(prev, c) &&
               (g_unichar_ispunct(prev) || run >= HARD_LINE_CHARS)) {
      g_string_append_c(shown, '\n');
      g_array_append_val(breaks, offset);
      run = 1;
    } else {
      run++;
    }
    g_string_append_len(shown, p, g_utf8_next_char(p) - p);
    prev = c;
  }
  return g_string_free(shown, FALSE);
}

/* How many breaks come before the document offset OFFSET (INCLUSIVE: also one right at it). */
static guint
breaks_before(FthTextSpanView *self, gint64 offset, gboolean inclusive)
{
  guint lo = 0, hi = self->breaks->len;
  while (lo < hi) {
    guint mid = (lo + hi) / 2;
    gint64 b = g_array_index(self->breaks, gint64, mid);
    if (b < offset || (inclusive && b == offset))
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

/* The buffer iterator at document offset OFFSET: for a start, after a break shown there; for
 * an END, before it (so a span never takes in a break at its edges). */
static void
iter_at(FthTextSpanView *self, GtkTextIter *iter, gint64 offset, gboolean end)
{
  gint64 shown = offset + breaks_before(self, offset, !end);
  gtk_text_buffer_get_iter_at_offset(self->buffer, iter, (int)shown);
}

/* The document offset of a buffer iterator (a shown break counts as the place it is at). */
static gint64
doc_offset(FthTextSpanView *self, const GtkTextIter *iter)
{
  gint64 shown = gtk_text_iter_get_offset(iter);
  /* The k-th break (from 0) sits at buffer offset breaks[k] + k. */
  guint lo = 0, hi = self->breaks->len;
  while (lo < hi) {
    guint mid = (lo + hi) / 2;
    if (g_array_index(self->breaks, gint64, mid) + mid < shown)
      lo = mid + 1;
    else
      hi = mid;
  }
  return shown - lo;
}

void
fth_text_span_view_set_text(FthTextSpanView *self, const char *text, const char *name)
{
  g_return_if_fail(FTH_IS_TEXT_SPAN_VIEW(self));
  g_free(self->name);
  self->name = g_strdup(name);
  if (self->encoding_row != NULL)
    gtk_widget_set_visible(self->encoding_row, FALSE);
  set_message(self, NULL);
  g_array_set_size(self->breaks, 0);
  g_autofree char *shown = break_long_lines(text != NULL ? text : "", self->breaks);
  gtk_text_buffer_set_text(self->buffer, shown, -1);
  g_array_set_size(self->applied, 0); /* the new text has no tags */
  self->length = gtk_text_buffer_get_char_count(self->buffer) - self->breaks->len;
  self->selected = 0;
  apply_annotations(self);
}

gboolean
fth_text_span_view_load_file(FthTextSpanView *self, const char *path)
{
  g_return_val_if_fail(FTH_IS_TEXT_SPAN_VIEW(self), FALSE);
  g_free(self->path);
  self->path = g_strdup(path);
  g_autofree char *text = NULL;
  gsize len = 0;
  g_autoptr(GError) error = NULL;
  if (fth_text_load_file(path, &text, &len, &error)) {
    fth_text_span_view_set_text(self, text, path);
    return TRUE;
  }
  fth_text_span_view_set_text(self, "", path);
  set_message(self, error->message);
  if (g_error_matches(error, FTH_MEDIA_ERROR, FTH_MEDIA_ERROR_ENCODING)) {
    ensure_encoding_row(self);
    gtk_widget_set_visible(self->encoding_row, TRUE);
  }
  return FALSE;
}

gboolean
fth_text_span_view_use_encoding(FthTextSpanView *self, const char *encoding)
{
  g_return_val_if_fail(FTH_IS_TEXT_SPAN_VIEW(self), FALSE);
  if (self->path == NULL)
    return FALSE;
  g_autofree char *raw = NULL;
  gsize len = 0;
  g_autoptr(GError) error = NULL;
  g_autofree char *text = NULL;
  if (g_file_get_contents(self->path, &raw, &len, &error))
    text = fth_text_convert(raw, len, encoding, self->path, NULL, &error);
  if (text == NULL) {
    set_message(self, error->message);
    return FALSE;
  }
  g_autofree char *path = g_strdup(self->path);
  fth_text_span_view_set_text(self, text, path);
  g_signal_emit(self, signals[SIGNAL_ENCODING_CHOSEN], 0, encoding);
  return TRUE;
}

static void
encoding_open_clicked(GtkButton *button, gpointer user_data)
{
  FthTextSpanView *self = FTH_TEXT_SPAN_VIEW(user_data);
  guint i = gtk_drop_down_get_selected(GTK_DROP_DOWN(self->encoding_dropdown));
  if (i < G_N_ELEMENTS(encodings) - 1)
    fth_text_span_view_use_encoding(self, encodings[i]);
}

/* Below the message, above the text. */
static void
ensure_encoding_row(FthTextSpanView *self)
{
  if (self->encoding_row != NULL)
    return;
  self->encoding_row = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
  gtk_widget_set_margin_start(self->encoding_row, 6);
  gtk_box_append(GTK_BOX(self->encoding_row), gtk_label_new(_("Read it as")));
  self->encoding_dropdown = gtk_drop_down_new_from_strings((const char *const *)encodings);
  gtk_box_append(GTK_BOX(self->encoding_row), self->encoding_dropdown);
  GtkWidget *open = gtk_button_new_with_label(_("Open"));
  g_signal_connect(open, "clicked", G_CALLBACK(encoding_open_clicked), self);
  gtk_box_append(GTK_BOX(self->encoding_row), open);
  gtk_widget_insert_after(self->encoding_row, GTK_WIDGET(self), self->message);
}

/* ---- annotations --------------------------------------------------------------------------- */

static gpointer
annotation_copy_func(gconstpointer data, gpointer unused)
{
  const FthAnnotation *ann = data;
  FthAnnotation *copy = g_memdup2(ann, sizeof *ann);
  copy->points = ann->n_points > 0 ? g_memdup2(ann->points, sizeof(double) * 2 * ann->n_points)
                                   : NULL;
  return copy;
}

static gpointer
label_copy_func(gconstpointer data, gpointer unused)
{
  const FthLabel *label = data;
  FthLabel *copy = g_memdup2(label, sizeof *label);
  copy->name = g_strdup(label->name);
  copy->color = g_strdup(label->color);
  copy->hotkey = g_strdup(label->hotkey);
  return copy;
}

static int
span_by_start(gconstpointer a, gconstpointer b)
{
  const Span *x = a, *y = b;
  if (x->ann->start != y->ann->start)
    return x->ann->start < y->ann->start ? -1 : 1;
  if (x->ann->end != y->ann->end)
    return x->ann->end > y->ann->end ? -1 : 1; /* outer first, so it takes the outer lane */
  return x->ann->id < y->ann->id ? -1 : (x->ann->id > y->ann->id);
}

static GtkTextTag *
span_tag(FthTextSpanView *self, const FthAnnotation *a, guint lane)
{
  g_autofree char *name = g_strdup_printf("fth-span-%" G_GINT64_FORMAT "-%u-%d", a->label_id,
                                          MIN(lane, N_STYLED_LANES - 1), a->author);
  GtkTextTagTable *table = gtk_text_buffer_get_tag_table(self->buffer);
  GtkTextTag *tag = gtk_text_tag_table_lookup(table, name);
  if (tag != NULL)
    return tag;
  GdkRGBA c, fill;
  label_rgba(self, a->label_id, &c);
  fill = c;
  if (a->author == FTH_AUTHOR_MODEL) {
    tag = gtk_text_buffer_create_tag(self->buffer, name, "underline", PANGO_UNDERLINE_ERROR,
                                     "underline-rgba", &c, NULL);
  } else {
    static const double alpha[N_STYLED_LANES] = { 0.28, 0.5, 0.72 };
    fill.alpha = alpha[MIN(lane, N_STYLED_LANES - 1)];
    tag = gtk_text_buffer_create_tag(self->buffer, name, "background-rgba", &fill, NULL);
    if (lane == 0)
      g_object_set(tag, "underline", PANGO_UNDERLINE_SINGLE, "underline-rgba", &c, NULL);
    else
      g_object_set(tag, "overline", PANGO_OVERLINE_SINGLE, NULL); /* no overline-rgba: GTK 4.8
                                                                   frees it twice */
  }
  /* Inner lanes paint over outer ones; the selection highlight stays on top. */
  gtk_text_tag_set_priority(tag, gtk_text_tag_table_get_size(table) - 1);
  gtk_text_tag_set_priority(self->selected_tag, gtk_text_tag_table_get_size(table) - 1);
  g_ptr_array_add(self->tags, tag);
  return tag;
}

static void
update_header(FthTextSpanView *self)
{
  GString *markup = g_string_new(NULL);
  for (guint i = 0; self->annotations != NULL && i < self->annotations->len; i++) {
    const FthAnnotation *a = g_ptr_array_index(self->annotations, i);
    if (a->geom != FTH_GEOM_WHOLE)
      continue;
    const FthLabel *l = find_label(self, a->label_id);
    g_autofree char *name = g_markup_escape_text(l != NULL ? l->name : "?", -1);
    const char *color = l != NULL && l->color != NULL ? l->color : "#888888";
    if (a->author == FTH_AUTHOR_MODEL)
      g_string_append_printf(markup, "  <span foreground=\"%s\">%s %s %.0f%%</span>", color,
                             _("model:"), name, a->score * 100);
    else
      g_string_append_printf(markup, "  <span background=\"%s\" foreground=\"#111111\"> %s </span>",
                             color, name);
  }
  if (markup->len == 0)
    g_string_append(markup, _("No document class"));
  gtk_label_set_markup(GTK_LABEL(self->header), markup->str);
  g_string_free(markup, TRUE);
}

static void
apply_annotations(FthTextSpanView *self)
{
  GtkTextIter begin, end;
  gtk_text_buffer_get_bounds(self->buffer, &begin, &end);
  gtk_text_buffer_remove_tag(self->buffer, self->selected_tag, &begin, &end);
  g_array_set_size(self->spans, 0);

  g_autofree char *problem = NULL;
  guint n_bad = 0;
  for (guint i = 0; self->annotations != NULL && i < self->annotations->len; i++) {
    const FthAnnotation *a = g_ptr_array_index(self->annotations, i);
    if (a->geom != FTH_GEOM_SPAN)
      continue;
    if (a->start < 0 || a->end <= a->start || a->end > self->length) {
      if (n_bad++ == 0) {
        const FthLabel *l = find_label(self, a->label_id);
        problem = g_strdup_printf(_("%s: span %s %" G_GINT64_FORMAT "–%" G_GINT64_FORMAT
                                    " does not fit the text (%" G_GINT64_FORMAT
                                    " characters); it is not shown"),
                                  self->name != NULL ? self->name : "", l ? l->name : "?",
                                  a->start, a->end, self->length);
      }
      continue;
    }
    Span s = { a, 0 };
    g_array_append_val(self->spans, s);
  }
  g_array_sort(self->spans, span_by_start);
  /* Lanes per author: a span takes the first lane free at its start. */
  for (int author = FTH_AUTHOR_HUMAN; author <= FTH_AUTHOR_MODEL; author++) {
    g_autoptr(GArray) lane_end = g_array_new(FALSE, FALSE, sizeof(gint64));
    for (guint i = 0; i < self->spans->len; i++) {
      Span *s = &g_array_index(self->spans, Span, i);
      if ((int)s->ann->author != author)
        continue;
      guint lane = 0;
      while (lane < lane_end->len && g_array_index(lane_end, gint64, lane) > s->ann->start)
        lane++;
      if (lane == lane_end->len)
        g_array_append_val(lane_end, s->ann->end);
      else
        g_array_index(lane_end, gint64, lane) = s->ann->end;
      s->lane = lane;
    }
  }
  /* Tags that stay (same span, same place, same tag) are left alone; the others are removed
   * first, then the new ones applied (a removal may share a tag with an addition). */
  g_autoptr(GArray) applied = g_array_sized_new(FALSE, FALSE, sizeof(Applied), self->spans->len);
  g_autoptr(GHashTable) wanted = g_hash_table_new(g_int64_hash, g_int64_equal);
  for (guint i = 0; i < self->spans->len; i++) {
    const Span *s = &g_array_index(self->spans, Span, i);
    Applied a = { s->ann->id, s->ann->start, s->ann->end, span_tag(self, s->ann, s->lane) };
    g_array_append_val(applied, a);
  }
  for (guint i = 0; i < applied->len; i++) {
    Applied *a = &g_array_index(applied, Applied, i);
    g_hash_table_insert(wanted, &a->id, a);
  }
  g_autoptr(GHashTable) kept = g_hash_table_new(g_int64_hash, g_int64_equal);
  for (guint i = 0; i < self->applied->len; i++) {
    Applied *old = &g_array_index(self->applied, Applied, i);
    const Applied *now = g_hash_table_lookup(wanted, &old->id);
    if (now != NULL && now->start == old->start && now->end == old->end && now->tag == old->tag) {
      g_hash_table_add(kept, &old->id);
      continue;
    }
    GtkTextIter a, b;
    iter_at(self, &a, old->start, FALSE);
    iter_at(self, &b, old->end, TRUE);
    gtk_text_buffer_remove_tag(self->buffer, old->tag, &a, &b);
  }
  for (guint i = 0; i < applied->len; i++) {
    const Applied *now = &g_array_index(applied, Applied, i);
    GtkTextIter a, b;
    iter_at(self, &a, now->start, FALSE);
    iter_at(self, &b, now->end, TRUE);
    if (!g_hash_table_contains(kept, &now->id))
      gtk_text_buffer_apply_tag(self->buffer, now->tag, &a, &b);
    if (now->id == self->selected)
      gtk_text_buffer_apply_tag(self->buffer, self->selected_tag, &a, &b);
  }
  g_array_set_size(self->applied, 0);
  g_array_append_vals(self->applied, applied->data, applied->len);
  if (n_bad > 1) {
    g_autofree char *more = g_strdup_printf(_("%s (and %u more)"), problem, n_bad - 1);
    g_free(problem);
    problem = g_steal_pointer(&more);
  }
  if (self->encoding_row == NULL || !gtk_widget_get_visible(self->encoding_row))
    set_message(self, problem);
  update_header(self);
  gtk_widget_queue_draw(self->overlay_area);
}

/* Whether two label lists would make the same tags (ids, colours and kinds). */
static gboolean
same_labels(GPtrArray *a, GPtrArray *b)
{
  guint na = a != NULL ? a->len : 0, nb = b != NULL ? b->len : 0;
  if (na != nb)
    return FALSE;
  for (guint i = 0; i < na; i++) {
    const FthLabel *x = g_ptr_array_index(a, i), *y = g_ptr_array_index(b, i);
    if (x->id != y->id || x->kind != y->kind || g_strcmp0(x->color, y->color) != 0)
      return FALSE;
  }
  return TRUE;
}

void
fth_text_span_view_set_annotations(FthTextSpanView *self, GPtrArray *annotations,
                                   GPtrArray *labels)
{
  g_return_if_fail(FTH_IS_TEXT_SPAN_VIEW(self));
  g_array_set_size(self->spans, 0);
  g_clear_pointer(&self->annotations, g_ptr_array_unref);
  if (annotations != NULL) {
    self->annotations = g_ptr_array_copy(annotations, annotation_copy_func, NULL);
    g_ptr_array_set_free_func(self->annotations, (GDestroyNotify)fth_annotation_free);
  }
  /* Label colours live in the tags: new labels mean new tags (the same labels again, as after
   * each edit, keep them). */
  if (!same_labels(self->labels, labels)) {
    GtkTextTagTable *table = gtk_text_buffer_get_tag_table(self->buffer);
    for (guint i = 0; i < self->tags->len; i++)
      gtk_text_tag_table_remove(table, g_ptr_array_index(self->tags, i)); /* and its ranges */
    g_ptr_array_set_size(self->tags, 0);
    g_array_set_size(self->applied, 0);
  }
  g_clear_pointer(&self->labels, g_ptr_array_unref);
  if (labels != NULL) {
    self->labels = g_ptr_array_copy(labels, label_copy_func, NULL);
    g_ptr_array_set_free_func(self->labels, (GDestroyNotify)fth_label_free);
  }
  g_menu_remove_all(self->span_menu);
  g_autoptr(GMenu) relabel = g_menu_new();
  for (guint i = 0; self->labels != NULL && i < self->labels->len; i++) {
    const FthLabel *l = g_ptr_array_index(self->labels, i);
    if (l->kind != FTH_LABEL_SPAN && l->kind != FTH_LABEL_ANY)
      continue;
    g_autofree char *text = g_strdup_printf(_("Label as %s"), l->name);
    g_autoptr(GMenuItem) item = g_menu_item_new(text, NULL);
    g_menu_item_set_action_and_target_value(item, "span.relabel", g_variant_new_int64(l->id));
    g_menu_append_item(relabel, item);
  }
  g_menu_append_section(self->span_menu, NULL, G_MENU_MODEL(relabel));
  g_menu_append(self->span_menu, _("Delete Span"), "span.delete");

  gboolean still_there = FALSE;
  for (guint i = 0; self->annotations != NULL && i < self->annotations->len; i++)
    still_there |= ((FthAnnotation *)self->annotations->pdata[i])->id == self->selected;
  apply_annotations(self);
  fth_text_span_view_set_selected(self, still_there ? self->selected : 0);
}

static const FthAnnotation *
selected_annotation(FthTextSpanView *self)
{
  for (guint i = 0; i < self->spans->len; i++) {
    const Span *s = &g_array_index(self->spans, Span, i);
    if (s->ann->id == self->selected)
      return s->ann;
  }
  return NULL;
}

gint64
fth_text_span_view_get_selected(FthTextSpanView *self)
{
  return self->selected;
}

void
fth_text_span_view_set_selected(FthTextSpanView *self, gint64 annotation_id)
{
  self->selected = annotation_id;
  gtk_widget_action_set_enabled(GTK_WIDGET(self), "span.relabel", annotation_id != 0);
  gtk_widget_action_set_enabled(GTK_WIDGET(self), "span.delete", annotation_id != 0);
  GtkTextIter begin, end;
  gtk_text_buffer_get_bounds(self->buffer, &begin, &end);
  gtk_text_buffer_remove_tag(self->buffer, self->selected_tag, &begin, &end);
  const FthAnnotation *a = selected_annotation(self);
  if (a != NULL) {
    GtkTextIter s, e;
    iter_at(self, &s, a->start, FALSE);
    iter_at(self, &e, a->end, TRUE);
    gtk_text_buffer_apply_tag(self->buffer, self->selected_tag, &s, &e);
  }
}

void
fth_text_span_view_select_range(FthTextSpanView *self, gint64 start, gint64 end)
{
  GtkTextIter s, e;
  iter_at(self, &s, start, FALSE);
  iter_at(self, &e, end, TRUE);
  gtk_text_buffer_select_range(self->buffer, &s, &e);
}

void
fth_text_span_view_set_trim_whitespace(FthTextSpanView *self, gboolean trim)
{
  self->trim = trim;
  gtk_check_button_set_active(GTK_CHECK_BUTTON(self->trim_check), trim);
}

static void
trim_toggled(GtkCheckButton *check, gpointer user_data)
{
  FTH_TEXT_SPAN_VIEW(user_data)->trim = gtk_check_button_get_active(check);
}

gboolean
fth_text_span_view_get_trim_whitespace(FthTextSpanView *self)
{
  return self->trim;
}

/* ---- label names --------------------------------------------------------------------------- */

static void
draw_names(GtkDrawingArea *area, cairo_t *cr, int width, int height, gpointer user_data)
{
  FthTextSpanView *self = FTH_TEXT_SPAN_VIEW(user_data);
  GtkTextView *view = GTK_TEXT_VIEW(self->text_view);
  GdkRectangle visible;
  gtk_text_view_get_visible_rect(view, &visible);
  GtkTextIter top, bottom;
  gtk_text_view_get_iter_at_location(view, &top, visible.x, visible.y);
  gtk_text_view_get_iter_at_location(view, &bottom, visible.x + visible.width,
                                     visible.y + visible.height);
  gint64 first = doc_offset(self, &top), last = doc_offset(self, &bottom);
  /* Spans are sorted by start: skip to the first that starts in view. */
  guint lo = 0, hi = self->spans->len;
  while (lo < hi) {
    guint mid = (lo + hi) / 2;
    if (g_array_index(self->spans, Span, mid).ann->start < first)
      lo = mid + 1;
    else
      hi = mid;
  }
  cairo_select_font_face(cr, "Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_BOLD);
  cairo_set_font_size(cr, 8);
  for (guint i = lo; i < self->spans->len; i++) {
    const Span *s = &g_array_index(self->spans, Span, i);
    if (s->ann->start > last)
      break;
    GtkTextIter at;
    GdkRectangle loc;
    iter_at(self, &at, s->ann->start, FALSE);
    gtk_text_view_get_iter_location(view, &at, &loc);
    int wx, wy;
    gtk_text_view_buffer_to_window_coords(view, GTK_TEXT_WINDOW_WIDGET, loc.x, loc.y, &wx, &wy);
    graphene_point_t p;
    if (!gtk_widget_compute_point(self->text_view, GTK_WIDGET(area),
                                  &GRAPHENE_POINT_INIT(wx, wy), &p))
      continue;
    const FthLabel *l = find_label(self, s->ann->label_id);
    GdkRGBA c;
    label_rgba(self, s->ann->label_id, &c);
    g_autofree char *text = s->ann->author == FTH_AUTHOR_MODEL
                              ? g_strdup_printf("%s? %.0f%%", l ? l->name : "?",
                                                s->ann->score * 100)
                              : g_strdup(l ? l->name : "?");
    cairo_set_source_rgba(cr, c.red * 0.6, c.green * 0.6, c.blue * 0.6, 1);
    /* Lanes stack their names upwards inside the gap above the line. */
    cairo_move_to(cr, p.x, p.y - 1 - 8 * MIN(s->lane, 1u));
    cairo_show_text(cr, text);
  }
}

static void
view_scrolled(GtkAdjustment *adjustment, gpointer user_data)
{
  gtk_widget_queue_draw(FTH_TEXT_SPAN_VIEW(user_data)->overlay_area);
}

/* ---- input --------------------------------------------------------------------------------- */

static const FthLabel *
label_for_key(FthTextSpanView *self, guint keyval)
{
  gunichar c = gdk_keyval_to_unicode(keyval);
  if (c == 0)
    return NULL;
  char buf[8] = { 0 };
  g_unichar_to_utf8(c, buf);
  for (guint i = 0; self->labels != NULL && i < self->labels->len; i++) {
    const FthLabel *l = g_ptr_array_index(self->labels, i);
    if (l->hotkey != NULL && g_utf8_collate(l->hotkey, buf) == 0)
      return l;
  }
  return NULL;
}

static void
emit_update(FthTextSpanView *self, const FthAnnotation *a, gint64 label_id)
{
  g_autoptr(FthAnnotation) changed = annotation_copy_func(a, NULL);
  changed->label_id = label_id;
  changed->author = FTH_AUTHOR_HUMAN; /* a person's edit of a suggestion accepts it */
  changed->run_id = 0;
  changed->score = 1.0;
  g_signal_emit(self, signals[SIGNAL_UPDATE_ANNOTATION], 0, changed);
}

static gboolean
apply_label_key(FthTextSpanView *self, const FthLabel *label)
{
  gboolean for_spans = label->kind == FTH_LABEL_SPAN || label->kind == FTH_LABEL_ANY;
  GtkTextIter s, e;
  if (for_spans && gtk_text_buffer_get_selection_bounds(self->buffer, &s, &e)) {
    if (self->trim) {
      while (gtk_text_iter_compare(&s, &e) < 0 && g_unichar_isspace(gtk_text_iter_get_char(&s)))
        gtk_text_iter_forward_char(&s);
      while (gtk_text_iter_compare(&s, &e) < 0) {
        GtkTextIter prev = e;
        gtk_text_iter_backward_char(&prev);
        if (!g_unichar_isspace(gtk_text_iter_get_char(&prev)))
          break;
        e = prev;
      }
    }
    gint64 start = doc_offset(self, &s), end = doc_offset(self, &e);
    if (start >= end)
      return TRUE; /* only whitespace, or only a shown break: nothing to label */
    g_autoptr(FthAnnotation) ann = fth_annotation_new();
    ann->geom = FTH_GEOM_SPAN;
    ann->label_id = label->id;
    ann->start = start;
    ann->end = end;
    ann->author = FTH_AUTHOR_HUMAN;
    gtk_text_buffer_select_range(self->buffer, &e, &e);
    g_signal_emit(self, signals[SIGNAL_ADD_ANNOTATION], 0, ann);
    return TRUE;
  }
  const FthAnnotation *sel = selected_annotation(self);
  if (for_spans && sel != NULL) {
    if (sel->label_id != label->id || sel->author != FTH_AUTHOR_HUMAN)
      emit_update(self, sel, label->id);
    return TRUE;
  }
  if (label->kind == FTH_LABEL_CLASS || label->kind == FTH_LABEL_ANY) {
    g_signal_emit(self, signals[SIGNAL_SET_CLASS], 0, label->id);
    return TRUE;
  }
  return FALSE;
}

/* The suggestion covering the cursor, else the first one after it. */
static const FthAnnotation *
suggestion_near_cursor(FthTextSpanView *self)
{
  GtkTextIter cursor;
  gtk_text_buffer_get_iter_at_mark(self->buffer, &cursor, gtk_text_buffer_get_insert(self->buffer));
  gint64 at = doc_offset(self, &cursor);
  const FthAnnotation *after = NULL;
  for (guint i = 0; i < self->spans->len; i++) {
    const FthAnnotation *a = g_array_index(self->spans, Span, i).ann;
    if (a->author != FTH_AUTHOR_MODEL)
      continue;
    if (a->start <= at && at < a->end)
      return a;
    if (a->start >= at && after == NULL)
      after = a;
  }
  return after;
}

static gboolean
key_pressed(GtkEventControllerKey *controller, guint keyval, guint keycode,
            GdkModifierType state, gpointer user_data)
{
  FthTextSpanView *self = FTH_TEXT_SPAN_VIEW(user_data);
  if (state & (GDK_CONTROL_MASK | GDK_ALT_MASK))
    return FALSE;
  const FthLabel *label = label_for_key(self, keyval);
  if (label != NULL)
    return apply_label_key(self, label);
  switch (keyval) {
  case GDK_KEY_space: {
    const FthAnnotation *s = suggestion_near_cursor(self);
    if (s == NULL)
      return TRUE;
    GtkTextIter end;
    iter_at(self, &end, s->end, TRUE);
    gtk_text_buffer_place_cursor(self->buffer, &end);
    emit_update(self, s, s->label_id);
    return TRUE;
  }
  case GDK_KEY_Delete:
  case GDK_KEY_BackSpace: {
    const FthAnnotation *sel = selected_annotation(self);
    if (sel == NULL)
      return FALSE;
    gint64 id = sel->id;
    fth_text_span_view_set_selected(self, 0);
    g_signal_emit(self, signals[SIGNAL_REMOVE_ANNOTATION], 0, id);
    return TRUE;
  }
  case GDK_KEY_Escape: {
    GtkTextIter s, e;
    gboolean had = gtk_text_buffer_get_selection_bounds(self->buffer, &s, &e) || self->selected;
    gtk_text_buffer_select_range(self->buffer, &e, &e);
    fth_text_span_view_set_selected(self, 0);
    return had;
  }
  default:
    return FALSE;
  }
}

/* The innermost span under the text view's point (X, Y), or NULL. */
static const FthAnnotation *
span_at_point(FthTextSpanView *self, double x, double y)
{
  GtkTextView *view = GTK_TEXT_VIEW(self->text_view);
  int bx, by;
  gtk_text_view_window_to_buffer_coords(view, GTK_TEXT_WINDOW_WIDGET, (int)x, (int)y, &bx, &by);
  GtkTextIter at;
  const FthAnnotation *best = NULL;
  if (gtk_text_view_get_iter_at_location(view, &at, bx, by)) {
    gint64 offset = doc_offset(self, &at);
    for (guint i = 0; i < self->spans->len; i++) {
      const FthAnnotation *a = g_array_index(self->spans, Span, i).ann;
      if (a->start > offset)
        break;
      if (offset < a->end && (best == NULL || a->end - a->start < best->end - best->start))
        best = a;
    }
  }
  return best;
}

/* A click on a span selects the innermost one there; elsewhere it clears the selection. */
static void
clicked(GtkGestureClick *gesture, int n_press, double x, double y, gpointer user_data)
{
  FthTextSpanView *self = FTH_TEXT_SPAN_VIEW(user_data);
  const FthAnnotation *hit = span_at_point(self, x, y);
  fth_text_span_view_set_selected(self, hit != NULL ? hit->id : 0);
}

/* A right click selects the span under it first, so the context menu acts on that span. */
static void
context_pressed(GtkGestureClick *gesture, int n_press, double x, double y, gpointer user_data)
{
  FthTextSpanView *self = FTH_TEXT_SPAN_VIEW(user_data);
  const FthAnnotation *hit = span_at_point(self, x, y);
  fth_text_span_view_set_selected(self, hit != NULL ? hit->id : 0);
}

static void
relabel_action(GtkWidget *widget, const char *name, GVariant *parameter)
{
  FthTextSpanView *self = FTH_TEXT_SPAN_VIEW(widget);
  const FthAnnotation *sel = selected_annotation(self);
  if (sel != NULL)
    emit_update(self, sel, g_variant_get_int64(parameter));
}

static void
delete_action(GtkWidget *widget, const char *name, GVariant *parameter)
{
  FthTextSpanView *self = FTH_TEXT_SPAN_VIEW(widget);
  const FthAnnotation *sel = selected_annotation(self);
  if (sel == NULL)
    return;
  gint64 id = sel->id;
  fth_text_span_view_set_selected(self, 0);
  g_signal_emit(self, signals[SIGNAL_REMOVE_ANNOTATION], 0, id);
}

/* ---- class --------------------------------------------------------------------------------- */

static void
fth_text_span_view_dispose(GObject *object)
{
  FthTextSpanView *self = FTH_TEXT_SPAN_VIEW(object);
  GtkWidget *child;
  while ((child = gtk_widget_get_first_child(GTK_WIDGET(self))) != NULL)
    gtk_widget_unparent(child);
  G_OBJECT_CLASS(fth_text_span_view_parent_class)->dispose(object);
}

static void
fth_text_span_view_finalize(GObject *object)
{
  FthTextSpanView *self = FTH_TEXT_SPAN_VIEW(object);
  g_clear_pointer(&self->annotations, g_ptr_array_unref);
  g_clear_pointer(&self->labels, g_ptr_array_unref);
  g_array_unref(self->spans);
  g_array_unref(self->breaks);
  g_array_unref(self->applied);
  g_ptr_array_unref(self->tags);
  g_clear_object(&self->buffer);
  g_clear_object(&self->span_menu);
  g_free(self->name);
  g_free(self->path);
  g_free(self->message_text);
  G_OBJECT_CLASS(fth_text_span_view_parent_class)->finalize(object);
}

static void
fth_text_span_view_class_init(FthTextSpanViewClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS(klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);
  object_class->dispose = fth_text_span_view_dispose;
  object_class->finalize = fth_text_span_view_finalize;
  gtk_widget_class_set_layout_manager_type(widget_class, GTK_TYPE_BOX_LAYOUT);
  gtk_widget_class_set_css_name(widget_class, "fth-text-span-view");
  gtk_widget_class_install_action(widget_class, "span.relabel", "x", relabel_action);
  gtk_widget_class_install_action(widget_class, "span.delete", NULL, delete_action);

  signals[SIGNAL_ADD_ANNOTATION] =
    g_signal_new("add-annotation", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                 NULL, G_TYPE_NONE, 1, G_TYPE_POINTER);
  signals[SIGNAL_UPDATE_ANNOTATION] =
    g_signal_new("update-annotation", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                 NULL, G_TYPE_NONE, 1, G_TYPE_POINTER);
  signals[SIGNAL_REMOVE_ANNOTATION] =
    g_signal_new("remove-annotation", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                 NULL, G_TYPE_NONE, 1, G_TYPE_INT64);
  signals[SIGNAL_SET_CLASS] = g_signal_new("set-class", G_TYPE_FROM_CLASS(klass),
                                           G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL, G_TYPE_NONE, 1,
                                           G_TYPE_INT64);
  signals[SIGNAL_ENCODING_CHOSEN] =
    g_signal_new("encoding-chosen", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                 NULL, G_TYPE_NONE, 1, G_TYPE_STRING);
}

static void
fth_text_span_view_init(FthTextSpanView *self)
{
  GtkWidget *widget = GTK_WIDGET(self);
  gtk_orientable_set_orientation(GTK_ORIENTABLE(gtk_widget_get_layout_manager(widget)),
                                 GTK_ORIENTATION_VERTICAL);
  self->spans = g_array_new(FALSE, FALSE, sizeof(Span));
  self->breaks = g_array_new(FALSE, FALSE, sizeof(gint64));
  self->applied = g_array_new(FALSE, FALSE, sizeof(Applied));
  self->tags = g_ptr_array_new();
  self->trim = TRUE;

  GtkWidget *header_row = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
  gtk_widget_set_margin_start(header_row, 6);
  gtk_widget_set_margin_end(header_row, 6);
  gtk_widget_set_margin_top(header_row, 4);
  gtk_widget_set_margin_bottom(header_row, 4);
  self->header = gtk_label_new(NULL);
  gtk_label_set_xalign(GTK_LABEL(self->header), 0);
  gtk_widget_set_hexpand(self->header, TRUE);
  gtk_box_append(GTK_BOX(header_row), self->header);
  self->trim_check = gtk_check_button_new_with_label(_("Trim spaces at span edges"));
  gtk_check_button_set_active(GTK_CHECK_BUTTON(self->trim_check), TRUE);
  g_signal_connect(self->trim_check, "toggled", G_CALLBACK(trim_toggled), self);
  gtk_box_append(GTK_BOX(header_row), self->trim_check);
  gtk_widget_set_parent(header_row, widget);

  self->message = gtk_label_new(NULL);
  gtk_label_set_xalign(GTK_LABEL(self->message), 0);
  gtk_label_set_wrap(GTK_LABEL(self->message), TRUE);
  gtk_label_set_selectable(GTK_LABEL(self->message), TRUE);
  gtk_widget_add_css_class(self->message, "error");
  gtk_widget_set_margin_start(self->message, 6);
  gtk_widget_set_visible(self->message, FALSE);
  gtk_widget_set_parent(self->message, widget);

  self->buffer = gtk_text_buffer_new(NULL);
  self->selected_tag = gtk_text_buffer_create_tag(self->buffer, "fth-selected-span", "weight",
                                                  PANGO_WEIGHT_BOLD, "foreground", "#000000",
                                                  "background", "#ffe680", NULL);
  self->text_view = gtk_text_view_new_with_buffer(self->buffer);
  GtkTextView *view = GTK_TEXT_VIEW(self->text_view);
  gtk_text_view_set_editable(view, FALSE);
  gtk_text_view_set_cursor_visible(view, TRUE);
  gtk_text_view_set_wrap_mode(view, GTK_WRAP_WORD_CHAR);
  /* Room above each line for the names of the spans that start on it. */
  gtk_text_view_set_pixels_above_lines(view, 18);
  gtk_text_view_set_pixels_inside_wrap(view, 18);
  gtk_text_view_set_left_margin(view, 8);
  gtk_text_view_set_right_margin(view, 8);

  GtkEventController *keys = gtk_event_controller_key_new();
  gtk_event_controller_set_name(keys, "fth-text-keys");
  gtk_event_controller_set_propagation_phase(keys, GTK_PHASE_CAPTURE);
  g_signal_connect(keys, "key-pressed", G_CALLBACK(key_pressed), self);
  gtk_widget_add_controller(self->text_view, keys);

  GtkGesture *click = gtk_gesture_click_new();
  gtk_event_controller_set_name(GTK_EVENT_CONTROLLER(click), "fth-text-click");
  gtk_gesture_single_set_button(GTK_GESTURE_SINGLE(click), GDK_BUTTON_PRIMARY);
  gtk_event_controller_set_propagation_phase(GTK_EVENT_CONTROLLER(click), GTK_PHASE_CAPTURE);
  g_signal_connect(click, "released", G_CALLBACK(clicked), self);
  gtk_widget_add_controller(self->text_view, GTK_EVENT_CONTROLLER(click));

  GtkGesture *context = gtk_gesture_click_new();
  gtk_event_controller_set_name(GTK_EVENT_CONTROLLER(context), "fth-text-context");
  gtk_gesture_single_set_button(GTK_GESTURE_SINGLE(context), GDK_BUTTON_SECONDARY);
  gtk_event_controller_set_propagation_phase(GTK_EVENT_CONTROLLER(context), GTK_PHASE_CAPTURE);
  g_signal_connect(context, "pressed", G_CALLBACK(context_pressed), self);
  gtk_widget_add_controller(self->text_view, GTK_EVENT_CONTROLLER(context));
  self->span_menu = g_menu_new();
  gtk_text_view_set_extra_menu(view, G_MENU_MODEL(self->span_menu));

  GtkWidget *scrolled = gtk_scrolled_window_new();
  gtk_scrolled_window_set_child(GTK_SCROLLED_WINDOW(scrolled), self->text_view);
  gtk_widget_set_vexpand(scrolled, TRUE);
  g_signal_connect(gtk_scrolled_window_get_vadjustment(GTK_SCROLLED_WINDOW(scrolled)),
                   "value-changed", G_CALLBACK(view_scrolled), self);

  self->overlay_area = gtk_drawing_area_new();
  gtk_widget_set_can_target(self->overlay_area, FALSE);
  gtk_drawing_area_set_draw_func(GTK_DRAWING_AREA(self->overlay_area), draw_names, self, NULL);
  GtkWidget *overlay = gtk_overlay_new();
  gtk_overlay_set_child(GTK_OVERLAY(overlay), scrolled);
  gtk_overlay_add_overlay(GTK_OVERLAY(overlay), self->overlay_area);
  gtk_widget_set_vexpand(overlay, TRUE);
  gtk_widget_set_parent(overlay, widget);
  update_header(self);
  fth_text_span_view_set_selected(self, 0);
}

GtkWidget *
fth_text_span_view_new(void)
{
  return g_object_new(FTH_TYPE_TEXT_SPAN_VIEW, NULL);
}
