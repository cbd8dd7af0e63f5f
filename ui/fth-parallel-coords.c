/* fth-parallel-coords.c: the lines are rows of n_axes doubles (the parameters, then the
 * value). Every axis maps a value to a fraction of its height (0: bottom, 1: top); brushes are
 * kept as fraction ranges, so categorical and log axes brush the same way as linear ones. */
#include "fth-parallel-coords.h"

#include <math.h>
#include <string.h>

typedef struct {
  char *name;
  gboolean categorical, log;
  double low, high;      /* value range (categorical: 0 .. n_choices - 1) */
  char **choices;        /* categorical: the labels, NULL-terminated */
  double brush_lo, brush_hi; /* fractions; NaN: no brush */
} Axis;

struct _FthParallelCoords {
  GtkWidget parent_instance;
  GArray *axes;   /* Axis */
  GArray *lines;  /* double, n_axes per line */
  gboolean maximize;
  int best;       /* line index, -1: none */
  int drag_axis;  /* the axis being brushed, -1: none */
  double drag_y;
};

G_DEFINE_FINAL_TYPE(FthParallelCoords, fth_parallel_coords, GTK_TYPE_WIDGET)

#define MARGIN_LEFT 40.0
#define MARGIN_RIGHT 56.0
#define MARGIN_TOP 30.0
#define MARGIN_BOTTOM 22.0

static void
axis_clear(Axis *axis)
{
  g_free(axis->name);
  g_strfreev(axis->choices);
}

GtkWidget *
fth_parallel_coords_new(void)
{
  return g_object_new(FTH_TYPE_PARALLEL_COORDS, NULL);
}

static guint
n_axes(FthParallelCoords *self)
{
  return self->axes->len;
}

static double *
line_at(FthParallelCoords *self, guint line)
{
  return &g_array_index(self->lines, double, (gsize)line * n_axes(self));
}

/* VALUE's place on AXIS: 0 at the bottom, 1 at the top; NaN when it has none. */
static double
axis_fraction(const Axis *axis, double value)
{
  if (!isfinite(value))
    return NAN;
  if (axis->categorical)
    return (value + 0.5) / (axis->high + 1);
  double lo = axis->low, hi = axis->high, v = value;
  if (axis->log) {
    lo = log(lo);
    hi = log(hi);
    v = log(MAX(v, axis->low));
  }
  if (!(hi > lo))
    return 0.5;
  return CLAMP((v - lo) / (hi - lo), 0.0, 1.0);
}

static double
fraction_to_y(double fraction, int height)
{
  return MARGIN_TOP + (1.0 - fraction) * (height - MARGIN_TOP - MARGIN_BOTTOM);
}

static double
y_to_fraction(double y, int height)
{
  double ph = height - MARGIN_TOP - MARGIN_BOTTOM;
  return ph > 0 ? CLAMP(1.0 - (y - MARGIN_TOP) / ph, 0.0, 1.0) : 0.5;
}

double
fth_parallel_coords_value_to_y(FthParallelCoords *self, guint axis, double value, int height)
{
  g_return_val_if_fail(FTH_IS_PARALLEL_COORDS(self), NAN);
  g_return_val_if_fail(axis < n_axes(self), NAN);
  double f = axis_fraction(&g_array_index(self->axes, Axis, axis), value);
  return isnan(f) ? NAN : fraction_to_y(f, height);
}

static gboolean
line_passes(FthParallelCoords *self, guint line)
{
  const double *v = line_at(self, line);
  for (guint a = 0; a < n_axes(self); a++) {
    const Axis *axis = &g_array_index(self->axes, Axis, a);
    if (isnan(axis->brush_lo))
      continue;
    double f = axis_fraction(axis, v[a]);
    if (isnan(f) || f < axis->brush_lo || f > axis->brush_hi)
      return FALSE;
  }
  return TRUE;
}

static guint
count_passing(FthParallelCoords *self)
{
  guint n = 0;
  for (guint i = 0; i < fth_parallel_coords_get_n_lines(self); i++)
    n += line_passes(self, i);
  return n;
}

/* The objective axis spans the values seen. */
static void
update_objective_axis(FthParallelCoords *self, double value)
{
  Axis *axis = &g_array_index(self->axes, Axis, n_axes(self) - 1);
  if (fth_parallel_coords_get_n_lines(self) == 1) {
    axis->low = axis->high = value;
    return;
  }
  axis->low = MIN(axis->low, value);
  axis->high = MAX(axis->high, value);
}

void
fth_parallel_coords_set_space(FthParallelCoords *self, FthSearchSpace *space,
                              const char *objective, gboolean maximize)
{
  g_return_if_fail(FTH_IS_PARALLEL_COORDS(self));
  g_array_set_size(self->lines, 0);
  g_array_set_size(self->axes, 0);
  self->best = -1;
  self->maximize = maximize;
  guint n = space != NULL ? fth_search_space_get_n_params(space) : 0;
  for (guint i = 0; i < n; i++) {
    const FthTuneParam *p = fth_search_space_get_param(space, i);
    Axis axis = { g_strdup(p->name), p->kind == FTH_PARAM_CATEGORICAL, p->log, p->low, p->high,
                  NULL, NAN, NAN };
    if (axis.categorical) {
      axis.low = 0;
      axis.high = p->n_choices - 1.0;
      axis.choices = g_new0(char *, p->n_choices + 1);
      for (guint c = 0; c < p->n_choices; c++) {
        const char *text = p->choices[c];
        gsize len = strlen(text);
        axis.choices[c] = len >= 2 && text[0] == '"' ? g_strndup(text + 1, len - 2)
                                                     : g_strdup(text);
      }
    }
    g_array_append_val(self->axes, axis);
  }
  Axis value = { g_strdup(objective != NULL ? objective : "value"), FALSE, FALSE, 0, 1, NULL,
                 NAN, NAN };
  g_array_append_val(self->axes, value);
  gtk_widget_queue_draw(GTK_WIDGET(self));
}

void
fth_parallel_coords_add_line(FthParallelCoords *self, const double *params, double value)
{
  g_return_if_fail(FTH_IS_PARALLEL_COORDS(self));
  g_return_if_fail(n_axes(self) > 0);
  if (!isfinite(value))
    return;
  g_array_append_vals(self->lines, params, n_axes(self) - 1);
  g_array_append_val(self->lines, value);
  guint line = fth_parallel_coords_get_n_lines(self) - 1;
  update_objective_axis(self, value);
  if (self->best < 0) {
    self->best = (int)line;
  } else {
    double best = line_at(self, (guint)self->best)[n_axes(self) - 1];
    if (self->maximize ? value > best : value < best)
      self->best = (int)line;
  }
  gtk_widget_queue_draw(GTK_WIDGET(self));
}

guint
fth_parallel_coords_get_n_lines(FthParallelCoords *self)
{
  g_return_val_if_fail(FTH_IS_PARALLEL_COORDS(self), 0);
  return n_axes(self) > 0 ? self->lines->len / n_axes(self) : 0;
}

guint
fth_parallel_coords_get_n_axes(FthParallelCoords *self)
{
  g_return_val_if_fail(FTH_IS_PARALLEL_COORDS(self), 0);
  return n_axes(self);
}

guint
fth_parallel_coords_brush(FthParallelCoords *self, guint axis, double low, double high)
{
  g_return_val_if_fail(FTH_IS_PARALLEL_COORDS(self), 0);
  g_return_val_if_fail(axis < n_axes(self), 0);
  Axis *a = &g_array_index(self->axes, Axis, axis);
  double f0 = axis_fraction(a, low), f1 = axis_fraction(a, high);
  a->brush_lo = MIN(f0, f1);
  a->brush_hi = MAX(f0, f1);
  if (isnan(f0) || isnan(f1))
    a->brush_lo = a->brush_hi = NAN;
  gtk_widget_queue_draw(GTK_WIDGET(self));
  return count_passing(self);
}

/* ---- drawing ------------------------------------------------------------------------------ */

static double
axis_x(FthParallelCoords *self, guint axis, int width)
{
  guint n = n_axes(self);
  double pw = width - MARGIN_LEFT - MARGIN_RIGHT;
  return n > 1 ? MARGIN_LEFT + pw * axis / (n - 1) : MARGIN_LEFT + pw / 2;
}

/* Best (t = 0) dark blue, through teal, to worst (t = 1) yellow. */
static void
value_color(double t, GdkRGBA *color)
{
  static const double stops[3][3] = { { 0.15, 0.20, 0.55 }, { 0.13, 0.60, 0.55 },
                                      { 0.99, 0.83, 0.14 } };
  t = CLAMP(t, 0.0, 1.0) * 2;
  int i = MIN((int)t, 1);
  double u = t - i;
  color->red = (float)(stops[i][0] + u * (stops[i + 1][0] - stops[i][0]));
  color->green = (float)(stops[i][1] + u * (stops[i + 1][1] - stops[i][1]));
  color->blue = (float)(stops[i][2] + u * (stops[i + 1][2] - stops[i][2]));
  color->alpha = 0.85f;
}

static void
stroke_line(FthParallelCoords *self, cairo_t *cr, guint line, int width, int height)
{
  const double *v = line_at(self, line);
  gboolean pen = FALSE;
  for (guint a = 0; a < n_axes(self); a++) {
    double y = fth_parallel_coords_value_to_y(self, a, v[a], height);
    if (isnan(y)) {
      pen = FALSE; /* an inactive parameter breaks the line */
      continue;
    }
    if (pen)
      cairo_line_to(cr, axis_x(self, a, width), y);
    else
      cairo_move_to(cr, axis_x(self, a, width), y);
    pen = TRUE;
  }
  cairo_stroke(cr);
}

static void
show_text_centered(cairo_t *cr, const char *text, double x, double y)
{
  cairo_text_extents_t e;
  cairo_text_extents(cr, text, &e);
  cairo_move_to(cr, x - e.x_advance / 2, y);
  cairo_show_text(cr, text);
}

static void
fth_parallel_coords_snapshot(GtkWidget *widget, GtkSnapshot *snapshot)
{
  FthParallelCoords *self = FTH_PARALLEL_COORDS(widget);
  int width = gtk_widget_get_width(widget), height = gtk_widget_get_height(widget);
  if (n_axes(self) == 0 || width <= MARGIN_LEFT + MARGIN_RIGHT ||
      height <= MARGIN_TOP + MARGIN_BOTTOM)
    return;
  GdkRGBA fg;
  gtk_style_context_get_color(gtk_widget_get_style_context(widget), &fg);
  cairo_t *cr = gtk_snapshot_append_cairo(snapshot, &GRAPHENE_RECT_INIT(0, 0, width, height));
  cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, 10);
  cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);

  /* Lines: filtered out first (faint), then the others, the best last. */
  const Axis *objective = &g_array_index(self->axes, Axis, n_axes(self) - 1);
  double span = objective->high - objective->low;
  guint n = fth_parallel_coords_get_n_lines(self);
  cairo_set_line_width(cr, 1.0);
  cairo_set_source_rgba(cr, fg.red, fg.green, fg.blue, 0.08);
  for (guint i = 0; i < n; i++)
    if (!line_passes(self, i))
      stroke_line(self, cr, i, width, height);
  cairo_set_line_width(cr, 1.5);
  for (guint i = 0; i < n; i++) {
    if ((int)i == self->best || !line_passes(self, i))
      continue;
    double v = line_at(self, i)[n_axes(self) - 1];
    double t = span > 0 ? (v - objective->low) / span : 0;
    GdkRGBA c;
    value_color(self->maximize ? 1 - t : t, &c);
    gdk_cairo_set_source_rgba(cr, &c);
    stroke_line(self, cr, i, width, height);
  }
  if (self->best >= 0 && line_passes(self, (guint)self->best)) {
    cairo_set_line_width(cr, 3.5);
    cairo_set_source_rgba(cr, 0.88, 0.11, 0.14, 1);
    stroke_line(self, cr, (guint)self->best, width, height);
  }

  /* Axes, their names and ranges, brushes. */
  char text[32];
  for (guint a = 0; a < n_axes(self); a++) {
    const Axis *axis = &g_array_index(self->axes, Axis, a);
    double x = round(axis_x(self, a, width)) + 0.5;
    cairo_set_line_width(cr, 1.0);
    cairo_set_source_rgba(cr, fg.red, fg.green, fg.blue, 0.6);
    cairo_move_to(cr, x, MARGIN_TOP);
    cairo_line_to(cr, x, height - MARGIN_BOTTOM);
    cairo_stroke(cr);
    if (!isnan(axis->brush_lo)) {
      cairo_set_source_rgba(cr, 0.21, 0.52, 0.89, 0.35);
      double y0 = fraction_to_y(axis->brush_hi, height), y1 = fraction_to_y(axis->brush_lo, height);
      cairo_rectangle(cr, x - 6, y0, 12, MAX(y1 - y0, 2));
      cairo_fill(cr);
    }
    cairo_set_source_rgba(cr, fg.red, fg.green, fg.blue, 0.9);
    show_text_centered(cr, axis->name, x, MARGIN_TOP - 16);
    cairo_set_source_rgba(cr, fg.red, fg.green, fg.blue, 0.7);
    if (axis->categorical) {
      for (guint c = 0; axis->choices[c] != NULL; c++)
        show_text_centered(cr, axis->choices[c], x + 16,
                           fraction_to_y(axis_fraction(axis, c), height) + 4);
      continue;
    }
    if (a == n_axes(self) - 1 && n == 0)
      continue;
    g_snprintf(text, sizeof text, "%.3g", axis->high);
    show_text_centered(cr, text, x, MARGIN_TOP - 4);
    g_snprintf(text, sizeof text, "%.3g", axis->low);
    show_text_centered(cr, text, x, height - MARGIN_BOTTOM + 13);
  }
  cairo_destroy(cr);
}

/* ---- brushing ----------------------------------------------------------------------------- */

static void
drag_begin(GtkGestureDrag *gesture, double x, double y, gpointer user_data)
{
  FthParallelCoords *self = user_data;
  int width = gtk_widget_get_width(GTK_WIDGET(self));
  self->drag_axis = -1;
  for (guint a = 0; a < n_axes(self); a++)
    if (fabs(axis_x(self, a, width) - x) < 14)
      self->drag_axis = (int)a;
  self->drag_y = y;
  if (self->drag_axis < 0)
    gtk_gesture_set_state(GTK_GESTURE(gesture), GTK_EVENT_SEQUENCE_DENIED);
}

static void
drag_update(GtkGestureDrag *gesture, double dx, double dy, gpointer user_data)
{
  FthParallelCoords *self = user_data;
  if (self->drag_axis < 0)
    return;
  int height = gtk_widget_get_height(GTK_WIDGET(self));
  Axis *axis = &g_array_index(self->axes, Axis, (guint)self->drag_axis);
  double f0 = y_to_fraction(self->drag_y, height), f1 = y_to_fraction(self->drag_y + dy, height);
  /* Less than a few pixels is a click: it clears the axis' brush (at the end). */
  gboolean click = fabs(dy) < 3;
  axis->brush_lo = click ? NAN : MIN(f0, f1);
  axis->brush_hi = click ? NAN : MAX(f0, f1);
  gtk_widget_queue_draw(GTK_WIDGET(self));
}

static void
drag_end(GtkGestureDrag *gesture, double dx, double dy, gpointer user_data)
{
  drag_update(gesture, dx, dy, user_data);
  FTH_PARALLEL_COORDS(user_data)->drag_axis = -1;
}

static void
fth_parallel_coords_measure(GtkWidget *widget, GtkOrientation orientation, int for_size,
                            int *minimum, int *natural, int *minimum_baseline,
                            int *natural_baseline)
{
  *minimum = orientation == GTK_ORIENTATION_HORIZONTAL ? 240 : 160;
  *natural = orientation == GTK_ORIENTATION_HORIZONTAL ? 640 : 320;
}

static void
fth_parallel_coords_finalize(GObject *object)
{
  FthParallelCoords *self = FTH_PARALLEL_COORDS(object);
  g_array_unref(self->axes);
  g_array_unref(self->lines);
  G_OBJECT_CLASS(fth_parallel_coords_parent_class)->finalize(object);
}

static void
fth_parallel_coords_class_init(FthParallelCoordsClass *klass)
{
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);
  G_OBJECT_CLASS(klass)->finalize = fth_parallel_coords_finalize;
  widget_class->snapshot = fth_parallel_coords_snapshot;
  widget_class->measure = fth_parallel_coords_measure;
  gtk_widget_class_set_css_name(widget_class, "parallelcoords");
}

static void
fth_parallel_coords_init(FthParallelCoords *self)
{
  self->axes = g_array_new(FALSE, TRUE, sizeof(Axis));
  g_array_set_clear_func(self->axes, (GDestroyNotify)axis_clear);
  self->lines = g_array_new(FALSE, FALSE, sizeof(double));
  self->best = -1;
  self->drag_axis = -1;
  GtkGesture *drag = gtk_gesture_drag_new();
  g_signal_connect(drag, "drag-begin", G_CALLBACK(drag_begin), self);
  g_signal_connect(drag, "drag-update", G_CALLBACK(drag_update), self);
  g_signal_connect(drag, "drag-end", G_CALLBACK(drag_end), self);
  gtk_widget_add_controller(GTK_WIDGET(self), GTK_EVENT_CONTROLLER(drag));
}
