/* fth-text-span-view.h: a text item with its document classes and labeled spans.
 *
 * The document is shown read-only; spans are coloured highlights with their label's name
 * drawn above their start. Overlapping and nested spans are kept in lanes: an inner lane is
 * painted stronger, over the outer one, and marked with an overline where the outer one has
 * an underline. Model spans (suggestions, e.g. from a tagging model) are shown with a wavy
 * underline and no fill. Offsets are Unicode character offsets (code points), the store's and
 * GtkTextBuffer's unit, so CJK, emoji and combining characters count as the store counts.
 * A line longer than 2000 characters is shown broken at spaces (a space shown as a line break,
 * so offsets stay the same): GtkTextView slows down with the length of a line.
 *
 * Like FthImageCanvas the view only shows and reports; the owner writes the edits and calls
 * set_annotations() again. Signals as FthWaveformView's: "add-annotation",
 * "update-annotation" (const FthAnnotation *), "remove-annotation" (gint64),
 * "set-class" (gint64 label id), and "encoding-chosen" (const char *) after the user picks an
 * encoding for a file that is not UTF-8 (the view has then shown the converted text).
 *
 * Keys: with text selected, a span label's hotkey makes a span of it (whitespace at its edges
 * trimmed while the header's "Trim spaces at span edges" box is ticked, the default); with a span
 * selected (click it), the hotkey relabels it and Delete removes it; a class label's hotkey (or
 * any label's, with nothing selected) sets the document class; Space accepts the suggestion at the
 * cursor (or the next one after it); Escape drops the selection. A right click on a span selects
 * it and the text view's context menu offers "Label as ..." (action span.relabel, a label id) and
 * "Delete Span" (span.delete), which act on the selected span. */
#pragma once

#include <fathom/store.h>
#include <gtk/gtk.h>

G_BEGIN_DECLS

#define FTH_TYPE_TEXT_SPAN_VIEW (fth_text_span_view_get_type())
G_DECLARE_FINAL_TYPE(FthTextSpanView, fth_text_span_view, FTH, TEXT_SPAN_VIEW, GtkWidget)

GtkWidget *fth_text_span_view_new(void);

/* Shows TEXT (valid UTF-8; NAME is used in messages). */
void fth_text_span_view_set_text(FthTextSpanView *self, const char *text, const char *name);
/* Reads PATH as UTF-8. When it is not, the view shows the error and offers the encodings it
 * can be converted from; FALSE then (and the text is empty until one is chosen). */
gboolean fth_text_span_view_load_file(FthTextSpanView *self, const char *path);
/* Converts the file loaded last from ENCODING and shows it; FALSE (message shown) when the
 * conversion fails. */
gboolean fth_text_span_view_use_encoding(FthTextSpanView *self, const char *encoding);
/* The encodings offered for a file that is not UTF-8. */
const char *const *fth_text_span_view_get_encodings(void);

/* Records as for FthWaveformView: spans and whole-document classes are shown. A span that
 * does not fit the text is left out and named in the message. */
void fth_text_span_view_set_annotations(FthTextSpanView *self, GPtrArray *annotations,
                                        GPtrArray *labels);

/* The error or annotation problem shown above the text; NULL when there is none. */
const char *fth_text_span_view_get_message(FthTextSpanView *self);
gint64 fth_text_span_view_get_length(FthTextSpanView *self); /* characters */

GtkTextView *fth_text_span_view_get_text_view(FthTextSpanView *self);
/* Selects characters [START, END) of the text (as a drag would). */
void fth_text_span_view_select_range(FthTextSpanView *self, gint64 start, gint64 end);
gint64 fth_text_span_view_get_selected(FthTextSpanView *self);
void fth_text_span_view_set_selected(FthTextSpanView *self, gint64 annotation_id);

/* The header's check box. */
void fth_text_span_view_set_trim_whitespace(FthTextSpanView *self, gboolean trim);
gboolean fth_text_span_view_get_trim_whitespace(FthTextSpanView *self);

G_END_DECLS
