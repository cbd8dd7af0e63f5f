/* fth-item-cell.h: one tile of the item grid: the item's thumbnail and its class label. */
#pragma once

#include "fth-thumbnail-loader.h"

G_BEGIN_DECLS

#define FTH_TYPE_ITEM_CELL (fth_item_cell_get_type())
G_DECLARE_FINAL_TYPE(FthItemCell, fth_item_cell, FTH, ITEM_CELL, GtkWidget)

GtkWidget *fth_item_cell_new(void);
/* The thumbnail's side in pixels. */
void fth_item_cell_set_size(FthItemCell *self, int size);
/* Shows ITEM, its thumbnail from LOADER's cache or, on a miss, once LOADER has decoded it. */
void fth_item_cell_bind(FthItemCell *self, FthItem *item, FthThumbnailLoader *loader);
/* Forgets the item and cancels its thumbnail if still loading (the grid recycles cells). */
void fth_item_cell_unbind(FthItemCell *self);
FthItem *fth_item_cell_get_item(FthItemCell *self);
/* Whether the thumbnail (or the icon that replaces a missing one) is shown. */
gboolean fth_item_cell_is_loaded(FthItemCell *self);

G_END_DECLS
