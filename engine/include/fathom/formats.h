/* fathom/formats.h: annotation formats for audio segments and text spans (engine/io).
 *
 * Audacity label track (File > Export > Labels): one label per line, "t0<TAB>t1<TAB>name", times
 * in seconds with six decimals (a microsecond, finer than one sample at 48 kHz). Lines starting
 * with a backslash (Audacity's frequency ranges) are skipped on reading.
 *
 * Segments as JSONL: one object per segment, {"path":"a.wav","t0":0.5,"t1":1.25,"label":"yes"}.
 * Spans as JSONL: one object per span, {"path":"a.txt","start":3,"end":8,"label":"PER",
 * "text":"Alice"}; start and end are Unicode character offsets, end exclusive; "text" (the
 * covered characters) is written for people reading the file and ignored on reading.
 *
 * CoNLL: one token per line, "token<TAB>tag" with BIO tags (B-PER, I-PER, O), a blank line
 * between sentences (a line break in the text ends a sentence). Tokens are the runs of
 * non-whitespace characters. A span the format cannot hold is left out and reported: one that
 * overlaps or nests in an earlier one (by start, longer first), one whose edges cut a token,
 * one that crosses a line break.
 * Reading joins the tokens of a sentence with one space and sentences with a newline, so a
 * text that is written that way comes back with the same offsets.
 *
 * Bad records are G_IO_ERROR_INVALID_DATA with "name:line: what is wrong"; JSON that does not
 * parse, or text that is not UTF-8, comes as the JSONL reader's FTH_MEDIA_ERROR. */
#pragma once

#include <fathom/store.h>

G_BEGIN_DECLS

typedef struct {
  char *path;   /* the item's path as the file names it; NULL when the format has none */
  double t0, t1;
  char *label;
} FthSegmentLabel;

typedef struct {
  char *path;
  gint64 start, end; /* characters, [start, end) */
  char *label;
} FthSpanLabel;

FthSegmentLabel *fth_segment_label_new(const char *path, double t0, double t1,
                                       const char *label);
void fth_segment_label_free(FthSegmentLabel *segment);
FthSpanLabel *fth_span_label_new(const char *path, gint64 start, gint64 end, const char *label);
void fth_span_label_free(FthSpanLabel *span);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(FthSegmentLabel, fth_segment_label_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(FthSpanLabel, fth_span_label_free)

/* SEGMENTS: FthSegmentLabel. Results are GPtrArrays with their free function set. */
char *fth_audacity_labels_write(GPtrArray *segments);
GPtrArray *fth_audacity_labels_parse(const char *data, gsize len, const char *name,
                                     GError **error);

char *fth_segments_jsonl_write(GPtrArray *segments);
GPtrArray *fth_segments_jsonl_parse(const char *data, gsize len, const char *name,
                                    GError **error);

/* TEXT (NULL: no "text" fields) is the document the spans are offsets into. */
char *fth_spans_jsonl_write(GPtrArray *spans, const char *text);
GPtrArray *fth_spans_jsonl_parse(const char *data, gsize len, const char *name, GError **error);

/* TEXT must be valid UTF-8 and hold every span. *REPORT (may be NULL) receives one message per
 * span left out, e.g. "span 4-9 (ORG) overlaps span 0-5 (PER): left out". */
char *fth_conll_write(const char *text, GPtrArray *spans, GPtrArray **report);
/* *TEXT: the document rebuilt from the tokens; *SPANS: FthSpanLabel with path NULL. */
gboolean fth_conll_parse(const char *data, gsize len, const char *name, char **text,
                         GPtrArray **spans, GError **error);

/* The item's segments (FTH_GEOM_SEGMENT) or spans (FTH_GEOM_SPAN) by AUTHOR (FTH_AUTHOR_ANY for
 * all), in start order, with label names and the item's stored path. */
GPtrArray *fth_item_list_segments(FthStore *store, gint64 item_id, FthAuthor author,
                                  GError **error);
GPtrArray *fth_item_list_spans(FthStore *store, gint64 item_id, FthAuthor author,
                               GError **error);
/* Adds human annotations to ITEM_ID, all or none (one transaction). A label name that does not
 * exist is created (kind SEGMENT or SPAN). A segment past the item's duration or a span past
 * its length fails with FTH_STORE_ERROR_INVALID naming the record and the limit. */
gboolean fth_item_add_segments(FthStore *store, gint64 item_id, GPtrArray *segments,
                               GError **error);
gboolean fth_item_add_spans(FthStore *store, gint64 item_id, GPtrArray *spans, GError **error);

G_END_DECLS
