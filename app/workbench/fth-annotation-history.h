/* fth-annotation-history.h: annotation edits with undo and redo across items.
 *
 * Every edit is written to the store at once (no Save button), on a worker thread, one edit at
 * a time in the order asked, so the main loop never waits on the database and a later edit
 * never overtakes an earlier one. Each edit is remembered with what it replaced; undo writes
 * the old state back, redo the new one. Undoing a removal adds the annotation again under a
 * new id; the history follows it, so later entries about it keep working.
 *
 * After an edit, an undo or a redo is in the store, "applied" is emitted with the item's id;
 * when the store refuses one, "failed" with the message (and the history is unchanged). */
#pragma once

#include <fathom/store.h>

G_BEGIN_DECLS

#define FTH_TYPE_ANNOTATION_HISTORY (fth_annotation_history_get_type())
G_DECLARE_FINAL_TYPE(FthAnnotationHistory, fth_annotation_history, FTH, ANNOTATION_HISTORY,
                     GObject)

FthAnnotationHistory *fth_annotation_history_new(FthStore *store);

/* Gives ITEM_ID the human class LABEL_ID (0: no class). */
void fth_annotation_history_set_class(FthAnnotationHistory *self, gint64 item_id,
                                      gint64 label_id);
/* Adds a copy of ANN (its id is ignored). */
void fth_annotation_history_add(FthAnnotationHistory *self, const FthAnnotation *ann);
/* Rewrites annotation ANN->id with ANN's label, geometry, author and score. */
void fth_annotation_history_update(FthAnnotationHistory *self, const FthAnnotation *ann);
void fth_annotation_history_remove(FthAnnotationHistory *self, gint64 annotation_id);

/* Act on the newest done / undone edit; nothing when there is none. */
void fth_annotation_history_undo(FthAnnotationHistory *self);
void fth_annotation_history_redo(FthAnnotationHistory *self);
gboolean fth_annotation_history_can_undo(FthAnnotationHistory *self);
gboolean fth_annotation_history_can_redo(FthAnnotationHistory *self);
/* TRUE while edits are queued or being written. */
gboolean fth_annotation_history_is_busy(FthAnnotationHistory *self);

G_END_DECLS
