/* fth-color-swatch.h: a small rounded square of one color (a label's color). */
#pragma once

#include <gtk/gtk.h>

G_BEGIN_DECLS

#define FTH_TYPE_COLOR_SWATCH (fth_color_swatch_get_type())
G_DECLARE_FINAL_TYPE(FthColorSwatch, fth_color_swatch, FTH, COLOR_SWATCH, GtkWidget)

GtkWidget *fth_color_swatch_new(const GdkRGBA *color);
void fth_color_swatch_set_color(FthColorSwatch *self, const GdkRGBA *color);
const GdkRGBA *fth_color_swatch_get_color(FthColorSwatch *self);

G_END_DECLS
