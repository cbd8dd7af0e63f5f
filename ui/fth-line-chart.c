/* fth-line-chart.c: the data lives in one GArray of points per series. A training run appends
 * a point per step while the main loop must keep its frames short, so the ranges are kept as
 * points arrive, a redraw is queued at most every REDRAW_INTERVAL_MS, and a curve is stroked
 * through at most four points per pixel column (first, lowest, highest, last), whatever the
 * number of points. */
#include "fth-line-chart.h"

#include <math.h>

typedef struct {
  double x, y;
} Point;

typedef struct {
  char *name;
  GdkRGBA color;
  GArray *points; /* Point */
} Series;

struct _FthLineChart {
  GtkWidget parent_instance;
  GArray *series; /* Series */
  double x0, x1, y0, y1; /* the points' bounds; x0 > x1 when there are none */
  guint redraw_source;   /* a queued redraw for appended points */
};

G_DEFINE_FINAL_TYPE(FthLineChart, fth_line_chart, GTK_TYPE_WIDGET)

#define MARGIN_LEFT 48.0
#define MARGIN_RIGHT 12.0
#define MARGIN_TOP 24.0
#define MARGIN_BOTTOM 22.0
/* Live curves redraw ten times a second at most, however fast points arrive. */
#define REDRAW_INTERVAL_MS 100

static void
series_clear(Series *series)
{
  g_free(series->name);
  g_array_unref(series->points);
}

GtkWidget *
fth_line_chart_new(void)
{
  return g_object_new(FTH_TYPE_LINE_CHART, NULL);
}

guint
fth_line_chart_add_series(FthLineChart *self, const char *name, const GdkRGBA *color)
{
  g_return_val_if_fail(FTH_IS_LINE_CHART(self), 0);
  Series series = { g_strdup(name), *color, g_array_new(FALSE, FALSE, sizeof(Point)) };
  g_array_append_val(self->series, series);
  gtk_widget_queue_draw(GTK_WIDGET(self));
  return self->series->len - 1;
}

static gboolean
redraw_appended(gpointer user_data)
{
  FthLineChart *self = user_data;
  self->redraw_source = 0;
  gtk_widget_queue_draw(GTK_WIDGET(self));
  return G_SOURCE_REMOVE;
}

static void
reset_bounds(FthLineChart *self)
{
  self->x0 = self->y0 = INFINITY;
  self->x1 = self->y1 = -INFINITY;
}

void
fth_line_chart_append(FthLineChart *self, guint series, double x, double y)
{
  g_return_if_fail(FTH_IS_LINE_CHART(self));
  g_return_if_fail(series < self->series->len);
  if (!isfinite(x) || !isfinite(y))
    return;
  Point point = { x, y };
  g_array_append_val(g_array_index(self->series, Series, series).points, point);
  self->x0 = MIN(self->x0, x);
  self->x1 = MAX(self->x1, x);
  self->y0 = MIN(self->y0, y);
  self->y1 = MAX(self->y1, y);
  if (self->redraw_source == 0)
    self->redraw_source = g_timeout_add(REDRAW_INTERVAL_MS, redraw_appended, self);
}

void
fth_line_chart_clear(FthLineChart *self)
{
  g_return_if_fail(FTH_IS_LINE_CHART(self));
  for (guint i = 0; i < self->series->len; i++)
    g_array_set_size(g_array_index(self->series, Series, i).points, 0);
  reset_bounds(self);
  gtk_widget_queue_draw(GTK_WIDGET(self));
}

guint
fth_line_chart_get_n_points(FthLineChart *self, guint series)
{
  g_return_val_if_fail(FTH_IS_LINE_CHART(self), 0);
  g_return_val_if_fail(series < self->series->len, 0);
  return g_array_index(self->series, Series, series).points->len;
}

/* Adds the curve of POINTS (in x order, as a run appends them) to CR's path and draws it: the
 * points of one pixel column become its first, lowest, highest and last point, so the stroke
 * has at most four vertices per column yet every spike stays visible. A lone point is a dot. */
static void
stroke_series(cairo_t *cr, GArray *points, double x0, double x1, double y0, double y1,
              double pw, double ph)
{
#define PX(v) (MARGIN_LEFT + ((v) - x0) / (x1 - x0) * pw)
#define PY(v) (MARGIN_TOP + ph - ((v) - y0) / (y1 - y0) * ph)
  if (points->len == 0)
    return;
  if (points->len == 1) {
    Point *p = &g_array_index(points, Point, 0);
    cairo_arc(cr, PX(p->x), PY(p->y), 3, 0, 2 * G_PI);
    cairo_fill(cr);
    return;
  }
  guint i = 0;
  gboolean started = FALSE;
  while (i < points->len) {
    Point *first = &g_array_index(points, Point, i);
    double column = floor(PX(first->x));
    double low = first->y, high = first->y, last_x = first->x, last_y = first->y;
    for (i++; i < points->len; i++) {
      Point *p = &g_array_index(points, Point, i);
      if (floor(PX(p->x)) != column)
        break;
      low = MIN(low, p->y);
      high = MAX(high, p->y);
      last_x = p->x;
      last_y = p->y;
    }
    if (!started)
      cairo_move_to(cr, PX(first->x), PY(first->y));
    else
      cairo_line_to(cr, PX(first->x), PY(first->y));
    started = TRUE;
    if (low < MIN(first->y, last_y))
      cairo_line_to(cr, column + 0.5, PY(low));
    if (high > MAX(first->y, last_y))
      cairo_line_to(cr, column + 0.5, PY(high));
    cairo_line_to(cr, PX(last_x), PY(last_y));
  }
  cairo_stroke(cr);
#undef PX
#undef PY
}

static void
fth_line_chart_snapshot(GtkWidget *widget, GtkSnapshot *snapshot)
{
  FthLineChart *self = FTH_LINE_CHART(widget);
  int width = gtk_widget_get_width(widget);
  int height = gtk_widget_get_height(widget);
  double x0 = self->x0, x1 = self->x1, y0 = self->y0, y1 = self->y1;
  GdkRGBA fg;

  if (width <= MARGIN_LEFT + MARGIN_RIGHT || height <= MARGIN_TOP + MARGIN_BOTTOM)
    return;
  gtk_style_context_get_color(gtk_widget_get_style_context(widget), &fg);

  cairo_t *cr = gtk_snapshot_append_cairo(snapshot, &GRAPHENE_RECT_INIT(0, 0, width, height));
  double pw = width - MARGIN_LEFT - MARGIN_RIGHT, ph = height - MARGIN_TOP - MARGIN_BOTTOM;
  char text[32];

  /* Frame and grid. */
  cairo_set_line_width(cr, 1.0);
  cairo_set_source_rgba(cr, fg.red, fg.green, fg.blue, 0.15);
  for (int i = 0; i <= 4; i++) {
    double y = MARGIN_TOP + ph * i / 4.0;
    cairo_move_to(cr, MARGIN_LEFT, round(y) + 0.5);
    cairo_line_to(cr, MARGIN_LEFT + pw, round(y) + 0.5);
  }
  cairo_stroke(cr);

  cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, 11);

  if (isfinite(x0)) {
    if (x1 - x0 < 1e-12)
      x1 = x0 + 1;
    if (y1 - y0 < 1e-12) {
      y0 -= 0.5;
      y1 += 0.5;
    }
    /* Axis ranges. */
    cairo_set_source_rgba(cr, fg.red, fg.green, fg.blue, 0.7);
    g_snprintf(text, sizeof text, "%.3g", y1);
    cairo_move_to(cr, 4, MARGIN_TOP + 4);
    cairo_show_text(cr, text);
    g_snprintf(text, sizeof text, "%.3g", y0);
    cairo_move_to(cr, 4, MARGIN_TOP + ph);
    cairo_show_text(cr, text);
    g_snprintf(text, sizeof text, "%.4g", x0);
    cairo_move_to(cr, MARGIN_LEFT, height - 6);
    cairo_show_text(cr, text);
    g_snprintf(text, sizeof text, "%.4g", x1);
    cairo_text_extents_t extents;
    cairo_text_extents(cr, text, &extents);
    cairo_move_to(cr, MARGIN_LEFT + pw - extents.x_advance, height - 6);
    cairo_show_text(cr, text);

    /* The curves; a lone point shows as a dot. */
    cairo_set_line_width(cr, 2.0);
    cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
    for (guint s = 0; s < self->series->len; s++) {
      Series *series = &g_array_index(self->series, Series, s);
      cairo_set_source_rgba(cr, series->color.red, series->color.green, series->color.blue, 1);
      stroke_series(cr, series->points, x0, x1, y0, y1, pw, ph);
    }
  }

  /* Legend, top right. */
  double lx = width - MARGIN_RIGHT;
  for (guint s = self->series->len; s-- > 0;) {
    Series *series = &g_array_index(self->series, Series, s);
    cairo_text_extents_t extents;
    cairo_text_extents(cr, series->name, &extents);
    lx -= extents.x_advance;
    cairo_set_source_rgba(cr, fg.red, fg.green, fg.blue, 0.8);
    cairo_move_to(cr, lx, 14);
    cairo_show_text(cr, series->name);
    lx -= 16;
    cairo_set_source_rgba(cr, series->color.red, series->color.green, series->color.blue, 1);
    cairo_rectangle(cr, lx, 6, 10, 10);
    cairo_fill(cr);
    lx -= 12;
  }
  cairo_destroy(cr);
}

static void
fth_line_chart_measure(GtkWidget *widget, GtkOrientation orientation, int for_size,
                       int *minimum, int *natural, int *minimum_baseline, int *natural_baseline)
{
  *minimum = orientation == GTK_ORIENTATION_HORIZONTAL ? 160 : 120;
  *natural = orientation == GTK_ORIENTATION_HORIZONTAL ? 480 : 200;
}

static void
fth_line_chart_dispose(GObject *object)
{
  g_clear_handle_id(&FTH_LINE_CHART(object)->redraw_source, g_source_remove);
  G_OBJECT_CLASS(fth_line_chart_parent_class)->dispose(object);
}

static void
fth_line_chart_finalize(GObject *object)
{
  g_array_unref(FTH_LINE_CHART(object)->series);
  G_OBJECT_CLASS(fth_line_chart_parent_class)->finalize(object);
}

static void
fth_line_chart_class_init(FthLineChartClass *klass)
{
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);

  G_OBJECT_CLASS(klass)->dispose = fth_line_chart_dispose;
  G_OBJECT_CLASS(klass)->finalize = fth_line_chart_finalize;
  widget_class->snapshot = fth_line_chart_snapshot;
  widget_class->measure = fth_line_chart_measure;
  gtk_widget_class_set_css_name(widget_class, "linechart");
}

static void
fth_line_chart_init(FthLineChart *self)
{
  self->series = g_array_new(FALSE, TRUE, sizeof(Series));
  g_array_set_clear_func(self->series, (GDestroyNotify)series_clear);
  reset_bounds(self);
}
