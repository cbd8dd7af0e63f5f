/* fth-parallel-coords.h: a parallel-coordinates plot of a study's trials, in Cairo: one
 * vertical axis per parameter of the search space (log axes for log parameters, one tick per
 * choice for categorical ones) and a last axis for the objective; one line per trial, colored
 * by its value (best: dark blue to worst: yellow), the best trial drawn on top and thicker.
 * Dragging along an axis brushes a range: lines outside it fade out (a click clears it). */
#pragma once

#include <fathom/tune.h>
#include <gtk/gtk.h>

G_BEGIN_DECLS

#define FTH_TYPE_PARALLEL_COORDS (fth_parallel_coords_get_type())
G_DECLARE_FINAL_TYPE(FthParallelCoords, fth_parallel_coords, FTH, PARALLEL_COORDS, GtkWidget)

GtkWidget *fth_parallel_coords_new(void);
/* The axes: SPACE's parameters, then the objective (named OBJECTIVE). Removes every line. */
void fth_parallel_coords_set_space(FthParallelCoords *self, FthSearchSpace *space,
                                   const char *objective, gboolean maximize);
/* A trial: its parameters (n_params of the space, NaN where inactive) and its value (a
 * non-finite value: the trial is not drawn). */
void fth_parallel_coords_add_line(FthParallelCoords *self, const double *params, double value);
guint fth_parallel_coords_get_n_lines(FthParallelCoords *self);
guint fth_parallel_coords_get_n_axes(FthParallelCoords *self);
/* Where VALUE sits on AXIS in a plot HEIGHT pixels tall: the y coordinate (0 at the top);
 * NaN for an inactive parameter. Log axes place values by their logarithm, categorical ones
 * put choice i at the middle of the i-th of n equal bands (choice 0 at the bottom). */
double fth_parallel_coords_value_to_y(FthParallelCoords *self, guint axis, double value,
                                      int height);
/* Brushes AXIS to the values between LOW and HIGH (either order); NaN for both clears it.
 * Returns how many lines pass every brush. */
guint fth_parallel_coords_brush(FthParallelCoords *self, guint axis, double low, double high);

G_END_DECLS
