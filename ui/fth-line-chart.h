/* fth-line-chart.h: a small Cairo line chart (training curves): several named series sharing
 * one x and one y axis, with a legend, grid lines and the axes' ranges written out. */
#pragma once

#include <gtk/gtk.h>

G_BEGIN_DECLS

#define FTH_TYPE_LINE_CHART (fth_line_chart_get_type())
G_DECLARE_FINAL_TYPE(FthLineChart, fth_line_chart, FTH, LINE_CHART, GtkWidget)

GtkWidget *fth_line_chart_new(void);
/* Adds a series drawn in COLOR; returns its index. */
guint fth_line_chart_add_series(FthLineChart *self, const char *name, const GdkRGBA *color);
/* Appends a point (non-finite values are ignored); the chart redraws at most ten times a
 * second however fast points come. */
void fth_line_chart_append(FthLineChart *self, guint series, double x, double y);
/* Removes every point, keeps the series. */
void fth_line_chart_clear(FthLineChart *self);
guint fth_line_chart_get_n_points(FthLineChart *self, guint series);

G_END_DECLS
