/* fathom/export.h: items and their annotations out of a project (engine/io).
 *
 * CSV (RFC 4180, UTF-8, header row, LF line ends): one row per annotation, and one row with
 * empty annotation columns for an item without any. Columns:
 *   item_id, kind, path, member, sha256, split, width, height, duration_s, sample_rate,
 *   length_chars, text, label, geom, x, y, w, h, points, t0, t1, start, end, author, score
 * `path` is as stored (relative to the project when inside it), `member` -1 for a whole file,
 * `text` the inline text of a CSV/JSONL row (empty otherwise), `geom` one of whole, box,
 * polygon, segment, span; `points` "x0 y0 x1 y1 ..." for polygons. Geometry columns that do
 * not apply to the annotation's kind are empty. Reading the file back with `fathom import
 * --text-column text --label-column label` restores inline text items and their classes.
 *
 * JSONL: one object per item, in item id order:
 *   {"id":1,"kind":"image","path":"a.jpg","member":-1,"sha256":"...","split":"train",
 *    "width":28,"height":28,                       (images)
 *    "duration_s":1.5,"sample_rate":22050,         (audio)
 *    "length_chars":12,"text":"...",               (text; "text" only when inline)
 *    "label":"Coat",                               (the first whole-item class, if any)
 *    "annotations":[{"id":7,"label":"Coat","geom":"whole","author":"human","score":1},
 *                   {"id":8,"label":"cat","geom":"box","x":1,"y":2,"w":3,"h":4,...},
 *                   {"geom":"polygon","points":[[x,y],...]}, {"geom":"segment","t0":..,"t1":..},
 *                   {"geom":"span","start":..,"end":..}]}
 */
#pragma once

#include <fathom/store.h>

G_BEGIN_DECLS

typedef enum {
  FTH_EXPORT_CSV,
  FTH_EXPORT_JSONL,
} FthExportFormat;

/* "csv" or "jsonl"; FALSE for anything else. */
gboolean fth_export_format_from_string(const char *name, FthExportFormat *format);

/* Writes every item (in id order) to STREAM; *N_ITEMS (may be NULL) receives the count. */
gboolean fth_export_to_stream(FthStore *store, FthExportFormat format, GOutputStream *stream,
                              GCancellable *cancellable, guint64 *n_items, GError **error);
/* The same into PATH, written to a temporary file and renamed into place on success. */
gboolean fth_export_to_file(FthStore *store, FthExportFormat format, const char *path,
                            GCancellable *cancellable, guint64 *n_items, GError **error);

const char *fth_item_kind_to_string(FthItemKind kind);   /* "image", "audio", "text" */
const char *fth_split_to_string(FthSplit split);         /* "none", "train", "val", "test" */
const char *fth_geom_kind_to_string(FthGeomKind geom);   /* "whole", "box", ... */

G_END_DECLS
