/* fth-item-view.h: one item of the project, full size on an FthImageCanvas, with its
 * annotations; edits go through the project's FthAnnotationHistory. */
#pragma once

#include "fth-annotation-history.h"
#include "fth-image-canvas.h"
#include "fth-thumbnail-loader.h"

#include <fathom/item-list.h>

G_BEGIN_DECLS

#define FTH_TYPE_ITEM_VIEW (fth_item_view_get_type())
G_DECLARE_FINAL_TYPE(FthItemView, fth_item_view, FTH, ITEM_VIEW, GtkWidget)

/* ITEMS: the grid's model (FthItem); IMAGES decodes the full-size pictures. NULLs clear. */
void fth_item_view_set_project(FthItemView *self, FthStore *store, GListModel *items,
                               FthAnnotationHistory *history, FthThumbnailLoader *images);
/* LABELS: FthLabel records (names and colors). Referenced, not copied. */
void fth_item_view_set_labels(FthItemView *self, GPtrArray *labels);

/* Shows the item at POSITION of the items (clamped); loads image and annotations off the main
 * thread and emits "loaded" when both are shown. */
void fth_item_view_show(FthItemView *self, guint position);
guint fth_item_view_get_position(FthItemView *self);
/* The item shown, or NULL. */
FthItem *fth_item_view_get_item(FthItemView *self);
/* Whether the shown item's picture and annotations are on screen (no load pending). */
gboolean fth_item_view_is_loaded(FthItemView *self);
/* Reads the shown item's annotations again (after an edit was saved). */
void fth_item_view_reload_annotations(FthItemView *self);

/* With a box selected: gives it LABEL_ID; else makes LABEL_ID the item's class. New boxes
 * take the last label applied. */
void fth_item_view_apply_label(FthItemView *self, gint64 label_id);
/* Accepts the model's suggestion: the selected predicted box becomes the user's, or with no
 * box selected and no class given yet, the most confident predicted class becomes the item's
 * class. FALSE when there is nothing to accept. */
gboolean fth_item_view_accept_suggestion(FthItemView *self);
/* Removes the picked vertex of the selected polygon (one of four or more), else the selected
 * box or polygon; FALSE when none is selected. */
gboolean fth_item_view_delete_selected(FthItemView *self);

FthImageCanvas *fth_item_view_get_canvas(FthItemView *self);

G_END_DECLS
