/* fth-label-palette.h: the project's labels as a list: color swatch, name, count, hotkey.
 * Activating a row emits "label-activated" with the label's id (to edit it). */
#pragma once

#include <fathom/store.h>
#include <gtk/gtk.h>

G_BEGIN_DECLS

#define FTH_TYPE_LABEL_PALETTE (fth_label_palette_get_type())
G_DECLARE_FINAL_TYPE(FthLabelPalette, fth_label_palette, FTH, LABEL_PALETTE, GtkWidget)

GtkWidget *fth_label_palette_new(void);
/* Shows LABELS (FthLabel records, in order) with their annotation COUNTS (a GArray of
 * FthLabelCount, or NULL to show none). Copies what it needs. */
void fth_label_palette_set_labels(FthLabelPalette *self, GPtrArray *labels, GArray *counts);
guint fth_label_palette_get_n_labels(FthLabelPalette *self);

G_END_DECLS
