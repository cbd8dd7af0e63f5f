/* fth-confusion-matrix.c: the layout is computed from the widget size at draw and click time:
 * a header column of class names, N x N square cells, and a precision/recall/F1 column. */
#include "fth-confusion-matrix.h"

#include <glib/gi18n.h>
#include <math.h>

#define HEADER_WIDTH 90.0
#define HEADER_HEIGHT 22.0
#define STATS_WIDTH 160.0
#define MAX_CELL 48.0

struct _FthConfusionMatrix {
  GtkWidget parent_instance;
  GStrv labels;
  gint64 *counts;
  guint n;
};

G_DEFINE_FINAL_TYPE(FthConfusionMatrix, fth_confusion_matrix, GTK_TYPE_WIDGET)

enum { SIGNAL_CELL_ACTIVATED, N_SIGNALS };
static guint signals[N_SIGNALS];

GtkWidget *
fth_confusion_matrix_new(void)
{
  return g_object_new(FTH_TYPE_CONFUSION_MATRIX, NULL);
}

void
fth_confusion_matrix_set(FthConfusionMatrix *self, const char *const *labels,
                         const gint64 *counts, guint n)
{
  g_return_if_fail(FTH_IS_CONFUSION_MATRIX(self));
  g_clear_pointer(&self->labels, g_strfreev);
  g_clear_pointer(&self->counts, g_free);
  self->n = n;
  if (n > 0) {
    self->labels = g_strdupv((GStrv)labels);
    self->counts = g_memdup2(counts, sizeof(gint64) * n * n);
  }
  gtk_widget_queue_resize(GTK_WIDGET(self));
}

guint
fth_confusion_matrix_get_n_classes(FthConfusionMatrix *self)
{
  g_return_val_if_fail(FTH_IS_CONFUSION_MATRIX(self), 0);
  return self->n;
}

gint64
fth_confusion_matrix_get_count(FthConfusionMatrix *self, guint truth, guint predicted)
{
  g_return_val_if_fail(FTH_IS_CONFUSION_MATRIX(self), 0);
  g_return_val_if_fail(truth < self->n && predicted < self->n, 0);
  return self->counts[truth * self->n + predicted];
}

const char *
fth_confusion_matrix_get_label(FthConfusionMatrix *self, guint index)
{
  g_return_val_if_fail(FTH_IS_CONFUSION_MATRIX(self), NULL);
  g_return_val_if_fail(index < self->n, NULL);
  return self->labels[index];
}

double
fth_confusion_matrix_get_precision(FthConfusionMatrix *self, guint class_index)
{
  g_return_val_if_fail(FTH_IS_CONFUSION_MATRIX(self), 0);
  g_return_val_if_fail(class_index < self->n, 0);
  gint64 column = 0;
  for (guint t = 0; t < self->n; t++)
    column += self->counts[t * self->n + class_index];
  return column > 0 ? (double)self->counts[class_index * self->n + class_index] / column : 0.0;
}

double
fth_confusion_matrix_get_recall(FthConfusionMatrix *self, guint class_index)
{
  g_return_val_if_fail(FTH_IS_CONFUSION_MATRIX(self), 0);
  g_return_val_if_fail(class_index < self->n, 0);
  gint64 row = 0;
  for (guint p = 0; p < self->n; p++)
    row += self->counts[class_index * self->n + p];
  return row > 0 ? (double)self->counts[class_index * self->n + class_index] / row : 0.0;
}

double
fth_confusion_matrix_get_f1(FthConfusionMatrix *self, guint class_index)
{
  double precision = fth_confusion_matrix_get_precision(self, class_index);
  double recall = fth_confusion_matrix_get_recall(self, class_index);
  return precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0.0;
}

static double
cell_size(FthConfusionMatrix *self)
{
  double width = gtk_widget_get_width(GTK_WIDGET(self)) - HEADER_WIDTH - STATS_WIDTH;
  return self->n > 0 ? CLAMP(width / self->n, 8.0, MAX_CELL) : MAX_CELL;
}

gboolean
fth_confusion_matrix_cell_at(FthConfusionMatrix *self, double x, double y, guint *truth,
                             guint *predicted)
{
  g_return_val_if_fail(FTH_IS_CONFUSION_MATRIX(self), FALSE);
  double size = cell_size(self);
  double cx = (x - HEADER_WIDTH) / size, cy = (y - HEADER_HEIGHT) / size;

  if (self->n == 0 || cx < 0 || cy < 0 || cx >= self->n || cy >= self->n)
    return FALSE;
  *truth = (guint)cy;
  *predicted = (guint)cx;
  return TRUE;
}

static void
show_text(cairo_t *cr, const char *text, double x, double y, double max_width, gboolean center)
{
  cairo_text_extents_t extents;
  g_autofree char *shown = g_strdup(text);

  /* Shorten long class names to their width; the tooltip has them whole. */
  cairo_text_extents(cr, shown, &extents);
  while (extents.x_advance > max_width && g_utf8_strlen(shown, -1) > 1) {
    *g_utf8_offset_to_pointer(shown, g_utf8_strlen(shown, -1) - 1) = '\0';
    cairo_text_extents(cr, shown, &extents);
  }
  cairo_move_to(cr, center ? x - extents.x_advance / 2 : x, y);
  cairo_show_text(cr, shown);
}

static void
fth_confusion_matrix_snapshot(GtkWidget *widget, GtkSnapshot *snapshot)
{
  FthConfusionMatrix *self = FTH_CONFUSION_MATRIX(widget);
  int width = gtk_widget_get_width(widget), height = gtk_widget_get_height(widget);
  GdkRGBA fg, accent = { 0.21f, 0.52f, 0.89f, 1 };

  if (self->n == 0 || width <= 0 || height <= 0)
    return;
  gtk_style_context_get_color(gtk_widget_get_style_context(widget), &fg);
  double size = cell_size(self);
  cairo_t *cr = gtk_snapshot_append_cairo(snapshot, &GRAPHENE_RECT_INIT(0, 0, width, height));
  cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, MIN(11.0, size * 0.4));

  for (guint t = 0; t < self->n; t++) {
    gint64 row = 0;
    for (guint p = 0; p < self->n; p++)
      row += self->counts[t * self->n + p];
    double y = HEADER_HEIGHT + t * size;
    cairo_set_source_rgba(cr, fg.red, fg.green, fg.blue, 0.85);
    show_text(cr, self->labels[t], 4, y + size / 2 + 4, HEADER_WIDTH - 8, FALSE);
    show_text(cr, self->labels[t], HEADER_WIDTH + t * size + size / 2, HEADER_HEIGHT - 6, size,
              TRUE);

    for (guint p = 0; p < self->n; p++) {
      gint64 count = self->counts[t * self->n + p];
      double share = row > 0 ? (double)count / row : 0;
      double x = HEADER_WIDTH + p * size;
      cairo_rectangle(cr, x + 1, y + 1, size - 2, size - 2);
      if (t == p)
        cairo_set_source_rgba(cr, accent.red, accent.green, accent.blue, 0.1 + 0.9 * share);
      else
        cairo_set_source_rgba(cr, 0.9, 0.3, 0.2, share > 0 ? 0.1 + 0.9 * share : 0.04);
      cairo_fill(cr);
      if (size >= 20) {
        char text[24];
        g_snprintf(text, sizeof text, "%" G_GINT64_FORMAT, count);
        cairo_set_source_rgba(cr, share > 0.5 ? 1 : fg.red, share > 0.5 ? 1 : fg.green,
                              share > 0.5 ? 1 : fg.blue, 0.9);
        show_text(cr, text, x + size / 2, y + size / 2 + 4, size - 4, TRUE);
      }
    }

    char stats[64];
    g_snprintf(stats, sizeof stats, "P %.2f  R %.2f  F1 %.2f",
               fth_confusion_matrix_get_precision(self, t),
               fth_confusion_matrix_get_recall(self, t), fth_confusion_matrix_get_f1(self, t));
    cairo_set_source_rgba(cr, fg.red, fg.green, fg.blue, 0.7);
    show_text(cr, stats, HEADER_WIDTH + self->n * size + 8, y + size / 2 + 4, STATS_WIDTH - 8,
              FALSE);
  }
  cairo_destroy(cr);
}

static void
fth_confusion_matrix_measure(GtkWidget *widget, GtkOrientation orientation, int for_size,
                             int *minimum, int *natural, int *minimum_baseline,
                             int *natural_baseline)
{
  FthConfusionMatrix *self = FTH_CONFUSION_MATRIX(widget);

  if (orientation == GTK_ORIENTATION_HORIZONTAL) {
    *minimum = (int)(HEADER_WIDTH + STATS_WIDTH + 8.0 * self->n);
    *natural = (int)(HEADER_WIDTH + STATS_WIDTH + MAX_CELL * self->n);
  } else {
    /* Square cells: as tall as the width given allows. */
    double size = MAX_CELL;
    if (for_size > 0 && self->n > 0)
      size = CLAMP((for_size - HEADER_WIDTH - STATS_WIDTH) / self->n, 8.0, MAX_CELL);
    *minimum = *natural = self->n > 0 ? (int)(HEADER_HEIGHT + size * self->n + 4) : 0;
  }
}

static GtkSizeRequestMode
fth_confusion_matrix_get_request_mode(GtkWidget *widget)
{
  return GTK_SIZE_REQUEST_HEIGHT_FOR_WIDTH;
}

static void
clicked(GtkGestureClick *gesture, int n_press, double x, double y, gpointer user_data)
{
  FthConfusionMatrix *self = FTH_CONFUSION_MATRIX(user_data);
  guint truth, predicted;

  if (fth_confusion_matrix_cell_at(self, x, y, &truth, &predicted))
    g_signal_emit(self, signals[SIGNAL_CELL_ACTIVATED], 0, truth, predicted);
}

static gboolean
query_tooltip(GtkWidget *widget, int x, int y, gboolean keyboard, GtkTooltip *tooltip,
              gpointer user_data)
{
  FthConfusionMatrix *self = FTH_CONFUSION_MATRIX(widget);
  guint truth, predicted;

  if (!fth_confusion_matrix_cell_at(self, x, y, &truth, &predicted))
    return FALSE;
  g_autofree char *count =
    g_strdup_printf("%" G_GINT64_FORMAT, self->counts[truth * self->n + predicted]);
  g_autofree char *text = g_strdup_printf(
    /* TRANSLATORS: a confusion matrix cell: count, true class, predicted class */
    _("%s items of “%s” predicted as “%s”"), count, self->labels[truth], self->labels[predicted]);
  gtk_tooltip_set_text(tooltip, text);
  return TRUE;
}

static void
fth_confusion_matrix_finalize(GObject *object)
{
  FthConfusionMatrix *self = FTH_CONFUSION_MATRIX(object);
  g_strfreev(self->labels);
  g_free(self->counts);
  G_OBJECT_CLASS(fth_confusion_matrix_parent_class)->finalize(object);
}

static void
fth_confusion_matrix_class_init(FthConfusionMatrixClass *klass)
{
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);

  G_OBJECT_CLASS(klass)->finalize = fth_confusion_matrix_finalize;
  widget_class->snapshot = fth_confusion_matrix_snapshot;
  widget_class->measure = fth_confusion_matrix_measure;
  widget_class->get_request_mode = fth_confusion_matrix_get_request_mode;

  /* A cell was clicked: the true class and the predicted class (indices). */
  signals[SIGNAL_CELL_ACTIVATED] = g_signal_new("cell-activated", G_TYPE_FROM_CLASS(klass),
                                                G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                                G_TYPE_NONE, 2, G_TYPE_UINT, G_TYPE_UINT);
  gtk_widget_class_set_css_name(widget_class, "confusionmatrix");
}

static void
fth_confusion_matrix_init(FthConfusionMatrix *self)
{
  GtkGesture *click = gtk_gesture_click_new();
  g_signal_connect(click, "released", G_CALLBACK(clicked), self);
  gtk_widget_add_controller(GTK_WIDGET(self), GTK_EVENT_CONTROLLER(click));
  gtk_widget_set_has_tooltip(GTK_WIDGET(self), TRUE);
  g_signal_connect(self, "query-tooltip", G_CALLBACK(query_tooltip), NULL);
}
