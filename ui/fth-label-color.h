/* Lookups every labeling view needs on the project's label list. */
#pragma once

#include <gtk/gtk.h>
#include <fathom/store.h>

G_BEGIN_DECLS

/* The label with this id in a GPtrArray of FthLabel, or NULL. */
const FthLabel *fth_labels_find(GPtrArray *labels, gint64 id);

/* The label's color; mid gray when the label is NULL, has no color or one GDK cannot parse. */
void fth_label_get_rgba(const FthLabel *label, GdkRGBA *rgba);

G_END_DECLS
