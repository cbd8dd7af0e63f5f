/* fth-confusion-matrix.h: a confusion matrix (rows: true class, columns: predicted class)
 * drawn with Cairo, shaded by the share of each row, with each class's precision, recall and
 * F1. Clicking a cell emits "cell-activated" (true class, predicted class). */
#pragma once

#include <gtk/gtk.h>

G_BEGIN_DECLS

#define FTH_TYPE_CONFUSION_MATRIX (fth_confusion_matrix_get_type())
G_DECLARE_FINAL_TYPE(FthConfusionMatrix, fth_confusion_matrix, FTH, CONFUSION_MATRIX, GtkWidget)

GtkWidget *fth_confusion_matrix_new(void);
/* LABELS: N class names; COUNTS: N x N, row = true class. Both copied; N 0 clears. */
void fth_confusion_matrix_set(FthConfusionMatrix *self, const char *const *labels,
                              const gint64 *counts, guint n);
guint fth_confusion_matrix_get_n_classes(FthConfusionMatrix *self);
gint64 fth_confusion_matrix_get_count(FthConfusionMatrix *self, guint truth, guint predicted);
const char *fth_confusion_matrix_get_label(FthConfusionMatrix *self, guint index);
/* CLASS's precision (of its column), recall (of its row) and F1, as drawn; 0 where undefined,
 * as the trainer stores them. */
double fth_confusion_matrix_get_precision(FthConfusionMatrix *self, guint class_index);
double fth_confusion_matrix_get_recall(FthConfusionMatrix *self, guint class_index);
double fth_confusion_matrix_get_f1(FthConfusionMatrix *self, guint class_index);
/* The cell under the widget point; FALSE outside the cells. */
gboolean fth_confusion_matrix_cell_at(FthConfusionMatrix *self, double x, double y, guint *truth,
                                      guint *predicted);

G_END_DECLS
