/* fth-image-canvas.c: Cairo drawing of the image and its shapes, pointer gestures.
 *
 * The image is drawn through Cairo with the widget as clip, so only the visible part is
 * resampled, whatever the image's size; above 2x zoom pixels are drawn as squares (nearest),
 * which is what labeling small images needs. Below 1:1 it is drawn from a pyramid of halved
 * copies (made once, with the surface), from the smallest one still at least as large as the
 * zoom asks, so a frame resamples by no more than 2:1 whatever the zoom: an 8k x 8k picture
 * fitted to the window costs as much as a 1k one. */
#include "fth-image-canvas.h"

#include <math.h>

#define MIN_ZOOM 0.02
#define MAX_ZOOM 64.0
#define MIN_BOX_SCREEN_PX 4.0
#define HIT_TOLERANCE_PX 4.0
#define MAX_LEVELS 8         /* 1/128 of an 8k picture is 64 px */
#define MIN_LEVEL_SIDE 256   /* no halved copy is made of a side this small */

typedef struct {
  gint64 id;
  gint64 label_id;
  FthGeomKind geom;
  double x, y, w, h;
  double *points;
  guint n_points;
  FthAuthor author;
  double score;
} Shape;

typedef enum { DRAG_NONE, DRAG_DRAW, DRAG_MOVE, DRAG_RESIZE, DRAG_VERTEX, DRAG_PAN } DragMode;

/* The corner handles of a selected box, in the order draw_handles() draws them. */
enum { CORNER_TOP_LEFT, CORNER_TOP_RIGHT, CORNER_BOTTOM_LEFT, CORNER_BOTTOM_RIGHT };
#define HANDLE_GRAB_PX 8.0

struct _FthImageCanvas {
  GtkWidget parent_instance;

  cairo_surface_t *surface; /* the image or its preview, ARGB32 premultiplied */
  /* levels[k]: the image halved level_shift + k times; [0] = surface. level_shift is 0 for the
   * image itself, k for a preview reduced 2^k times. */
  cairo_surface_t *levels[MAX_LEVELS];
  int n_levels;
  int level_shift;
  int image_width, image_height; /* of the full image, preview or not */

  GArray *shapes;         /* Shape */
  GHashTable *colors;     /* label id (gint64 *) -> GdkRGBA */
  gint64 selected;
  gint64 draw_label;

  double zoom, ox, oy; /* widget = o + image * zoom */
  gboolean fit;

  DragMode drag;
  int resize_corner;
  int vertex;             /* of the selected polygon: the one dragged or picked, -1 for none */
  FthCanvasTool tool;
  gboolean vertex_click; /* the press in progress adds a polygon vertex on release */
  GArray *polygon; /* double x, y pairs of the polygon being drawn, image coordinates */
  double drag_x, drag_y;   /* where the drag started, widget coordinates */
  double drag_dx, drag_dy; /* how far it went */
  double pan_ox, pan_oy;
  double pinch_zoom;
  double pointer_x, pointer_y;
};

G_DEFINE_FINAL_TYPE(FthImageCanvas, fth_image_canvas, GTK_TYPE_WIDGET)

enum { PROP_0, PROP_SELECTED_ID, N_PROPS };
static GParamSpec *props[N_PROPS];

enum {
  SIGNAL_BOX_DRAWN,
  SIGNAL_BOX_CHANGED,
  SIGNAL_POLYGON_DRAWN,
  SIGNAL_POLYGON_CHANGED,
  N_SIGNALS
};
static guint signals[N_SIGNALS];

static void
shape_clear(Shape *shape)
{
  g_clear_pointer(&shape->points, g_free);
}

GtkWidget *
fth_image_canvas_new(void)
{
  return g_object_new(FTH_TYPE_IMAGE_CANVAS, NULL);
}

/* ---- geometry ----------------------------------------------------------------------------- */

void
fth_image_canvas_image_to_widget(FthImageCanvas *self, double ix, double iy, double *wx,
                                 double *wy)
{
  *wx = self->ox + ix * self->zoom;
  *wy = self->oy + iy * self->zoom;
}

void
fth_image_canvas_widget_to_image(FthImageCanvas *self, double wx, double wy, double *ix,
                                 double *iy)
{
  *ix = (wx - self->ox) / self->zoom;
  *iy = (wy - self->oy) / self->zoom;
}

static void
apply_fit(FthImageCanvas *self)
{
  int width = gtk_widget_get_width(GTK_WIDGET(self));
  int height = gtk_widget_get_height(GTK_WIDGET(self));

  if (self->surface == NULL || width <= 0 || height <= 0)
    return;
  self->zoom = CLAMP(MIN((double)width / self->image_width, (double)height / self->image_height),
                     MIN_ZOOM, MAX_ZOOM);
  self->ox = (width - self->image_width * self->zoom) / 2.0;
  self->oy = (height - self->image_height * self->zoom) / 2.0;
}

double
fth_image_canvas_get_zoom(FthImageCanvas *self)
{
  g_return_val_if_fail(FTH_IS_IMAGE_CANVAS(self), 1.0);
  return self->zoom;
}

void
fth_image_canvas_zoom_fit(FthImageCanvas *self)
{
  g_return_if_fail(FTH_IS_IMAGE_CANVAS(self));
  self->fit = TRUE;
  apply_fit(self);
  gtk_widget_queue_draw(GTK_WIDGET(self));
}

void
fth_image_canvas_zoom_at(FthImageCanvas *self, double factor, double x, double y)
{
  g_return_if_fail(FTH_IS_IMAGE_CANVAS(self));
  double ix, iy;

  fth_image_canvas_widget_to_image(self, x, y, &ix, &iy);
  self->zoom = CLAMP(self->zoom * factor, MIN_ZOOM, MAX_ZOOM);
  self->ox = x - ix * self->zoom;
  self->oy = y - iy * self->zoom;
  self->fit = FALSE;
  gtk_widget_queue_draw(GTK_WIDGET(self));
}

void
fth_image_canvas_pan(FthImageCanvas *self, double dx, double dy)
{
  g_return_if_fail(FTH_IS_IMAGE_CANVAS(self));
  self->ox += dx;
  self->oy += dy;
  self->fit = FALSE;
  gtk_widget_queue_draw(GTK_WIDGET(self));
}

void
fth_image_canvas_zoom_one_to_one(FthImageCanvas *self)
{
  g_return_if_fail(FTH_IS_IMAGE_CANVAS(self));
  fth_image_canvas_zoom_at(self, 1.0 / self->zoom, gtk_widget_get_width(GTK_WIDGET(self)) / 2.0,
                           gtk_widget_get_height(GTK_WIDGET(self)) / 2.0);
}

/* N (x, y) pairs as an "a(dd)" variant (floating), as the polygon signals carry them. */
static GVariant *
points_variant(const double *xy, guint n)
{
  GVariantBuilder points;
  g_variant_builder_init(&points, G_VARIANT_TYPE("a(dd)"));
  for (guint i = 0; i < n; i++)
    g_variant_builder_add(&points, "(dd)", xy[2 * i], xy[2 * i + 1]);
  return g_variant_builder_end(&points);
}

/* Whether image point (X, Y) is inside the polygon (even-odd rule). */
static gboolean
polygon_contains(const Shape *shape, double x, double y)
{
  gboolean inside = FALSE;
  for (guint i = 0, j = shape->n_points - 1; i < shape->n_points; j = i++) {
    double xi = shape->points[2 * i], yi = shape->points[2 * i + 1];
    double xj = shape->points[2 * j], yj = shape->points[2 * j + 1];
    if ((yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi)
      inside = !inside;
  }
  return inside;
}

/* The topmost box or polygon under the widget point, or NULL. */
static Shape *
shape_at(FthImageCanvas *self, double wx, double wy)
{
  double ix, iy;
  double tolerance = HIT_TOLERANCE_PX / self->zoom;

  fth_image_canvas_widget_to_image(self, wx, wy, &ix, &iy);
  for (guint i = self->shapes->len; i-- > 0;) {
    Shape *shape = &g_array_index(self->shapes, Shape, i);
    if (shape->geom == FTH_GEOM_BOX && ix >= shape->x - tolerance &&
        ix <= shape->x + shape->w + tolerance && iy >= shape->y - tolerance &&
        iy <= shape->y + shape->h + tolerance)
      return shape;
    if (shape->geom == FTH_GEOM_POLYGON && shape->n_points >= 3 &&
        polygon_contains(shape, ix, iy))
      return shape;
  }
  return NULL;
}

static Shape *
selected_shape(FthImageCanvas *self)
{
  for (guint i = 0; i < self->shapes->len; i++) {
    Shape *shape = &g_array_index(self->shapes, Shape, i);
    if (self->selected != 0 && shape->id == self->selected)
      return shape;
  }
  return NULL;
}

/* Which vertex of the selected polygon is under the widget point, or -1. */
static int
vertex_at(FthImageCanvas *self, double wx, double wy)
{
  const Shape *shape = selected_shape(self);
  if (shape == NULL || shape->geom != FTH_GEOM_POLYGON)
    return -1;
  for (guint i = 0; i < shape->n_points; i++) {
    double vx, vy;
    fth_image_canvas_image_to_widget(self, shape->points[2 * i], shape->points[2 * i + 1], &vx,
                                     &vy);
    if (fabs(wx - vx) <= HANDLE_GRAB_PX && fabs(wy - vy) <= HANDLE_GRAB_PX)
      return (int)i;
  }
  return -1;
}

/* ---- the pyramid -------------------------------------------------------------------------- */

/* SOURCE (ARGB32) halved: each pixel the mean of a 2x2 block (an odd last row or column
 * averages what there is). Premultiplied values average correctly as they are. */
static cairo_surface_t *
halve(cairo_surface_t *source)
{
  int sw = cairo_image_surface_get_width(source), sh = cairo_image_surface_get_height(source);
  int w = (sw + 1) / 2, h = (sh + 1) / 2;
  cairo_surface_t *out = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, w, h);
  const guint8 *src = cairo_image_surface_get_data(source);
  guint8 *dst = cairo_image_surface_get_data(out);
  int s_stride = cairo_image_surface_get_stride(source);
  int d_stride = cairo_image_surface_get_stride(out);

  cairo_surface_flush(source);
  cairo_surface_flush(out);
  for (int y = 0; y < h; y++) {
    const guint8 *r0 = src + (gsize)(2 * y) * s_stride;
    const guint8 *r1 = 2 * y + 1 < sh ? r0 + s_stride : r0;
    guint8 *d = dst + (gsize)y * d_stride;
    for (int x = 0; x < w; x++) {
      int x0 = 8 * x, x1 = 2 * x + 1 < sw ? x0 + 4 : x0;
      for (int c = 0; c < 4; c++)
        d[4 * x + c] = (guint8)((r0[x0 + c] + r0[x1 + c] + r1[x0 + c] + r1[x1 + c] + 2) / 4);
    }
  }
  cairo_surface_mark_dirty(out);
  return out;
}

static const cairo_user_data_key_t half_key;

/* Attaches SURFACE's halved copies to it, each to the one above, down to MIN_LEVEL_SIDE (or
 * MAX_LEVELS); nothing when they are there already. */
static void
ensure_pyramid(cairo_surface_t *surface)
{
  cairo_surface_t *level = surface;
  for (int k = 1; k < MAX_LEVELS; k++) {
    if (cairo_image_surface_get_width(level) <= MIN_LEVEL_SIDE &&
        cairo_image_surface_get_height(level) <= MIN_LEVEL_SIDE)
      return;
    cairo_surface_t *half = cairo_surface_get_user_data(level, &half_key);
    if (half == NULL) {
      half = halve(level);
      cairo_surface_set_user_data(level, &half_key, half,
                                  (cairo_destroy_func_t)cairo_surface_destroy);
    }
    level = half;
  }
}

/* ---- the API ------------------------------------------------------------------------------ */

cairo_surface_t *
fth_image_canvas_surface_from_texture(GdkTexture *texture)
{
  g_return_val_if_fail(texture == NULL || GDK_IS_TEXTURE(texture), NULL);
  if (texture == NULL)
    return NULL;
  cairo_surface_t *surface =
    cairo_image_surface_create(CAIRO_FORMAT_ARGB32, gdk_texture_get_width(texture),
                               gdk_texture_get_height(texture));
  gdk_texture_download(texture, cairo_image_surface_get_data(surface),
                       (gsize)cairo_image_surface_get_stride(surface));
  cairo_surface_mark_dirty(surface);
  ensure_pyramid(surface);
  return surface;
}

/* Draws from SURFACE (NULL: nothing), the image halved SHIFT times, and its halved copies. */
static void
take_levels(FthImageCanvas *self, cairo_surface_t *surface, int shift)
{
  g_clear_pointer(&self->surface, cairo_surface_destroy);
  self->n_levels = 0;
  self->level_shift = shift;
  if (surface == NULL)
    return;
  self->surface = cairo_surface_reference(surface);
  ensure_pyramid(surface);
  for (cairo_surface_t *level = surface; level != NULL && self->n_levels + shift < MAX_LEVELS;
       level = cairo_surface_get_user_data(level, &half_key))
    self->levels[self->n_levels++] = level;
}

void
fth_image_canvas_set_surface(FthImageCanvas *self, cairo_surface_t *surface)
{
  g_return_if_fail(FTH_IS_IMAGE_CANVAS(self));

  gboolean replaces_preview =
    self->level_shift > 0 && surface != NULL &&
    cairo_image_surface_get_width(surface) == self->image_width &&
    cairo_image_surface_get_height(surface) == self->image_height;
  take_levels(self, surface, 0);
  if (replaces_preview) {
    /* Same image coordinates: the view, the selection and a shape being drawn stay. */
    gtk_widget_queue_draw(GTK_WIDGET(self));
    return;
  }
  self->image_width = surface != NULL ? cairo_image_surface_get_width(surface) : 0;
  self->image_height = surface != NULL ? cairo_image_surface_get_height(surface) : 0;
  fth_image_canvas_cancel_drawing(self);
  fth_image_canvas_set_selected(self, 0);
  fth_image_canvas_zoom_fit(self);
}

void
fth_image_canvas_set_preview(FthImageCanvas *self, cairo_surface_t *preview, int width,
                             int height)
{
  g_return_if_fail(FTH_IS_IMAGE_CANVAS(self));
  g_return_if_fail(preview != NULL && width > 0 && height > 0);

  int pw = cairo_image_surface_get_width(preview), ph = cairo_image_surface_get_height(preview);
  int shift = 0;
  while (shift < MAX_LEVELS - 1 && (((width - 1) >> shift) + 1 != pw ||
                                    ((height - 1) >> shift) + 1 != ph))
    shift++;
  g_return_if_fail(((width - 1) >> shift) + 1 == pw && ((height - 1) >> shift) + 1 == ph);

  take_levels(self, preview, shift);
  self->image_width = width;
  self->image_height = height;
  fth_image_canvas_cancel_drawing(self);
  fth_image_canvas_set_selected(self, 0);
  fth_image_canvas_zoom_fit(self);
}

gboolean
fth_image_canvas_is_preview(FthImageCanvas *self)
{
  g_return_val_if_fail(FTH_IS_IMAGE_CANVAS(self), FALSE);
  return self->level_shift > 0;
}

cairo_surface_t *
fth_image_canvas_get_surface(FthImageCanvas *self)
{
  g_return_val_if_fail(FTH_IS_IMAGE_CANVAS(self), NULL);
  return self->surface;
}

void
fth_image_canvas_set_annotations(FthImageCanvas *self, GPtrArray *annotations,
                                 GPtrArray *labels)
{
  g_return_if_fail(FTH_IS_IMAGE_CANVAS(self));
  gboolean selection_kept = FALSE;

  g_array_set_size(self->shapes, 0);
  for (guint i = 0; annotations != NULL && i < annotations->len; i++) {
    const FthAnnotation *ann = g_ptr_array_index(annotations, i);
    if (ann->geom != FTH_GEOM_BOX && ann->geom != FTH_GEOM_POLYGON)
      continue;
    Shape shape = {
      .id = ann->id, .label_id = ann->label_id, .geom = ann->geom,
      .x = ann->x, .y = ann->y, .w = ann->w, .h = ann->h,
      .author = ann->author, .score = ann->score,
    };
    if (ann->geom == FTH_GEOM_POLYGON && ann->n_points > 0) {
      shape.points = g_memdup2(ann->points, sizeof(double) * 2 * ann->n_points);
      shape.n_points = ann->n_points;
    }
    g_array_append_val(self->shapes, shape);
    if (ann->id == self->selected)
      selection_kept = TRUE;
  }

  g_hash_table_remove_all(self->colors);
  for (guint i = 0; labels != NULL && i < labels->len; i++) {
    const FthLabel *label = g_ptr_array_index(labels, i);
    GdkRGBA color;
    if (label->color == NULL || !gdk_rgba_parse(&color, label->color))
      color = (GdkRGBA){ 0.9f, 0.5f, 0.1f, 1.0f };
    g_hash_table_insert(self->colors, g_memdup2(&label->id, sizeof label->id),
                        g_memdup2(&color, sizeof color));
  }

  if (!selection_kept)
    fth_image_canvas_set_selected(self, 0);
  self->vertex = -1; /* the vertices may have changed */
  gtk_widget_queue_draw(GTK_WIDGET(self));
}

void
fth_image_canvas_set_draw_label(FthImageCanvas *self, gint64 label_id)
{
  g_return_if_fail(FTH_IS_IMAGE_CANVAS(self));
  self->draw_label = label_id;
}

gint64
fth_image_canvas_get_selected(FthImageCanvas *self)
{
  g_return_val_if_fail(FTH_IS_IMAGE_CANVAS(self), 0);
  return self->selected;
}

void
fth_image_canvas_set_selected(FthImageCanvas *self, gint64 annotation_id)
{
  g_return_if_fail(FTH_IS_IMAGE_CANVAS(self));
  if (self->selected == annotation_id)
    return;
  self->selected = annotation_id;
  self->vertex = -1;
  gtk_widget_queue_draw(GTK_WIDGET(self));
  g_object_notify_by_pspec(G_OBJECT(self), props[PROP_SELECTED_ID]);
}

gboolean
fth_image_canvas_cancel_drawing(FthImageCanvas *self)
{
  g_return_val_if_fail(FTH_IS_IMAGE_CANVAS(self), FALSE);
  if (self->drag != DRAG_DRAW && self->drag != DRAG_MOVE && self->drag != DRAG_RESIZE &&
      self->drag != DRAG_VERTEX && self->polygon->len == 0)
    return FALSE;
  self->drag = DRAG_NONE;
  g_array_set_size(self->polygon, 0);
  gtk_widget_queue_draw(GTK_WIDGET(self));
  return TRUE;
}

gboolean
fth_image_canvas_delete_selected_vertex(FthImageCanvas *self)
{
  g_return_val_if_fail(FTH_IS_IMAGE_CANVAS(self), FALSE);
  const Shape *shape = selected_shape(self);
  if (shape == NULL || shape->geom != FTH_GEOM_POLYGON || self->vertex < 0 ||
      (guint)self->vertex >= shape->n_points || shape->n_points <= 3)
    return FALSE;
  g_autofree double *xy = g_new(double, 2 * (shape->n_points - 1));
  for (guint i = 0, j = 0; i < shape->n_points; i++) {
    if ((int)i == self->vertex)
      continue;
    xy[2 * j] = shape->points[2 * i];
    xy[2 * j + 1] = shape->points[2 * i + 1];
    j++;
  }
  gint64 id = shape->id;
  guint n = shape->n_points - 1;
  self->vertex = -1;
  gtk_widget_queue_draw(GTK_WIDGET(self));
  g_signal_emit(self, signals[SIGNAL_POLYGON_CHANGED], 0, id, points_variant(xy, n));
  return TRUE;
}

void
fth_image_canvas_set_tool(FthImageCanvas *self, FthCanvasTool tool)
{
  g_return_if_fail(FTH_IS_IMAGE_CANVAS(self));
  fth_image_canvas_cancel_drawing(self);
  self->tool = tool;
}

FthCanvasTool
fth_image_canvas_get_tool(FthImageCanvas *self)
{
  g_return_val_if_fail(FTH_IS_IMAGE_CANVAS(self), FTH_CANVAS_TOOL_BOX);
  return self->tool;
}

/* ---- drawing ------------------------------------------------------------------------------ */

static GdkRGBA
label_color(FthImageCanvas *self, gint64 label_id)
{
  const GdkRGBA *color = g_hash_table_lookup(self->colors, &label_id);
  return color != NULL ? *color : (GdkRGBA){ 0.9f, 0.5f, 0.1f, 1.0f };
}

/* The box being drawn, in image coordinates, clamped to the image. */
static void
drawn_box(FthImageCanvas *self, double *x, double *y, double *w, double *h)
{
  double x0, y0, x1, y1;

  fth_image_canvas_widget_to_image(self, self->drag_x, self->drag_y, &x0, &y0);
  fth_image_canvas_widget_to_image(self, self->drag_x + self->drag_dx,
                                   self->drag_y + self->drag_dy, &x1, &y1);
  x0 = CLAMP(x0, 0, self->image_width);
  x1 = CLAMP(x1, 0, self->image_width);
  y0 = CLAMP(y0, 0, self->image_height);
  y1 = CLAMP(y1, 0, self->image_height);
  *x = MIN(x0, x1);
  *y = MIN(y0, y1);
  *w = fabs(x1 - x0);
  *h = fabs(y1 - y0);
}

static void
stroke_box(FthImageCanvas *self, cairo_t *cr, double x, double y, double w, double h,
           GdkRGBA color, gboolean dashed, gboolean selected)
{
  double wx, wy;
  fth_image_canvas_image_to_widget(self, x, y, &wx, &wy);
  double ww = w * self->zoom, wh = h * self->zoom;

  cairo_rectangle(cr, wx, wy, ww, wh);
  cairo_set_source_rgba(cr, color.red, color.green, color.blue, selected ? 0.30 : 0.15);
  cairo_fill_preserve(cr);
  cairo_set_source_rgba(cr, color.red, color.green, color.blue, 1.0);
  cairo_set_line_width(cr, selected ? 3.0 : 2.0);
  if (dashed) {
    static const double dashes[] = { 6.0, 4.0 };
    cairo_set_dash(cr, dashes, 2, 0);
  }
  cairo_stroke(cr);
  cairo_set_dash(cr, NULL, 0, 0);

  if (selected) {
    /* Corner marks: the box is the one Delete and label keys act on. */
    double corners[4][2] = { { wx, wy }, { wx + ww, wy }, { wx, wy + wh }, { wx + ww, wy + wh } };
    for (int i = 0; i < 4; i++) {
      cairo_rectangle(cr, corners[i][0] - 4, corners[i][1] - 4, 8, 8);
      cairo_set_source_rgba(cr, 1, 1, 1, 1);
      cairo_fill_preserve(cr);
      cairo_set_source_rgba(cr, color.red, color.green, color.blue, 1.0);
      cairo_set_line_width(cr, 1.5);
      cairo_stroke(cr);
    }
  }
}

/* SHAPE (a box) as the drag in progress makes it: moved, or with one corner dragged; kept
 * inside the image and at least one pixel wide. */
static void
edited_box(FthImageCanvas *self, const Shape *shape, double *x, double *y, double *w, double *h)
{
  double dx = self->drag_dx / self->zoom, dy = self->drag_dy / self->zoom;
  double x0 = shape->x, y0 = shape->y, x1 = shape->x + shape->w, y1 = shape->y + shape->h;

  if (self->drag == DRAG_MOVE) {
    dx = CLAMP(dx, -x0, self->image_width - x1);
    dy = CLAMP(dy, -y0, self->image_height - y1);
    x0 += dx, x1 += dx, y0 += dy, y1 += dy;
  } else if (self->drag == DRAG_RESIZE) {
    if (self->resize_corner == CORNER_TOP_LEFT || self->resize_corner == CORNER_BOTTOM_LEFT)
      x0 += dx;
    else
      x1 += dx;
    if (self->resize_corner == CORNER_TOP_LEFT || self->resize_corner == CORNER_TOP_RIGHT)
      y0 += dy;
    else
      y1 += dy;
  }
  x0 = CLAMP(x0, 0, self->image_width);
  x1 = CLAMP(x1, 0, self->image_width);
  y0 = CLAMP(y0, 0, self->image_height);
  y1 = CLAMP(y1, 0, self->image_height);
  *x = MIN(x0, x1);
  *y = MIN(y0, y1);
  *w = MAX(fabs(x1 - x0), 1.0);
  *h = MAX(fabs(y1 - y0), 1.0);
}

/* SHAPE's (a polygon's) vertices as the drag in progress makes them: all moved, or one; kept
 * inside the image. Returns a new array of n_points (x, y) pairs. */
static double *
edited_points(FthImageCanvas *self, const Shape *shape)
{
  double dx = self->drag_dx / self->zoom, dy = self->drag_dy / self->zoom;
  double *xy = g_memdup2(shape->points, sizeof(double) * 2 * shape->n_points);

  if (self->drag == DRAG_MOVE) {
    double x0 = G_MAXDOUBLE, y0 = G_MAXDOUBLE, x1 = -G_MAXDOUBLE, y1 = -G_MAXDOUBLE;
    for (guint i = 0; i < shape->n_points; i++) {
      x0 = MIN(x0, xy[2 * i]);
      x1 = MAX(x1, xy[2 * i]);
      y0 = MIN(y0, xy[2 * i + 1]);
      y1 = MAX(y1, xy[2 * i + 1]);
    }
    dx = CLAMP(dx, -x0, self->image_width - x1);
    dy = CLAMP(dy, -y0, self->image_height - y1);
    for (guint i = 0; i < shape->n_points; i++) {
      xy[2 * i] += dx;
      xy[2 * i + 1] += dy;
    }
  } else if (self->drag == DRAG_VERTEX && self->vertex >= 0 &&
             (guint)self->vertex < shape->n_points) {
    xy[2 * self->vertex] = CLAMP(xy[2 * self->vertex] + dx, 0, self->image_width);
    xy[2 * self->vertex + 1] = CLAMP(xy[2 * self->vertex + 1] + dy, 0, self->image_height);
  }
  return xy;
}

/* Which corner handle of the selected box is under the widget point, or -1. */
static int
corner_at(FthImageCanvas *self, double wx, double wy)
{
  for (guint i = 0; i < self->shapes->len; i++) {
    const Shape *shape = &g_array_index(self->shapes, Shape, i);
    if (shape->id != self->selected || shape->geom != FTH_GEOM_BOX)
      continue;
    for (int corner = 0; corner < 4; corner++) {
      double cx, cy;
      fth_image_canvas_image_to_widget(
        self, shape->x + (corner == CORNER_TOP_RIGHT || corner == CORNER_BOTTOM_RIGHT ? shape->w : 0),
        shape->y + (corner == CORNER_BOTTOM_LEFT || corner == CORNER_BOTTOM_RIGHT ? shape->h : 0),
        &cx, &cy);
      if (fabs(wx - cx) <= HANDLE_GRAB_PX && fabs(wy - cy) <= HANDLE_GRAB_PX)
        return corner;
    }
  }
  return -1;
}

static void
draw_shape(FthImageCanvas *self, cairo_t *cr, const Shape *shape)
{
  GdkRGBA color = label_color(self, shape->label_id);
  gboolean predicted = shape->author == FTH_AUTHOR_MODEL;
  gboolean selected = shape->id == self->selected;
  double x = shape->x, y = shape->y;

  if (shape->geom == FTH_GEOM_BOX) {
    double w = shape->w, h = shape->h;
    if ((self->drag == DRAG_MOVE || self->drag == DRAG_RESIZE) && selected)
      edited_box(self, shape, &x, &y, &w, &h);
    stroke_box(self, cr, x, y, w, h, color, predicted, selected);
  } else if (shape->geom == FTH_GEOM_POLYGON && shape->n_points >= 3) {
    g_autofree double *xy = (self->drag == DRAG_MOVE || self->drag == DRAG_VERTEX) && selected
                              ? edited_points(self, shape)
                              : g_memdup2(shape->points, sizeof(double) * 2 * shape->n_points);
    for (guint i = 0; i < shape->n_points; i++) {
      double wx, wy;
      fth_image_canvas_image_to_widget(self, xy[2 * i], xy[2 * i + 1], &wx, &wy);
      if (i == 0)
        cairo_move_to(cr, wx, wy);
      else
        cairo_line_to(cr, wx, wy);
    }
    cairo_close_path(cr);
    cairo_set_source_rgba(cr, color.red, color.green, color.blue, 0.15);
    cairo_fill_preserve(cr);
    cairo_set_source_rgba(cr, color.red, color.green, color.blue, 1.0);
    cairo_set_line_width(cr, selected ? 3.0 : 2.0);
    if (predicted) {
      static const double dashes[] = { 6.0, 4.0 };
      cairo_set_dash(cr, dashes, 2, 0);
    }
    cairo_stroke(cr);
    cairo_set_dash(cr, NULL, 0, 0);
    if (selected) {
      /* Vertex handles; the picked one (Delete removes it) is drawn larger and hollow. */
      for (guint i = 0; i < shape->n_points; i++) {
        double wx, wy;
        fth_image_canvas_image_to_widget(self, xy[2 * i], xy[2 * i + 1], &wx, &wy);
        if ((int)i == self->vertex) {
          cairo_arc(cr, wx, wy, 6.0, 0, 2 * G_PI);
          cairo_set_line_width(cr, 2.0);
          cairo_stroke(cr);
        } else {
          cairo_rectangle(cr, wx - 3.5, wy - 3.5, 7.0, 7.0);
          cairo_fill(cr);
        }
      }
    }
  }

  if (predicted) {
    /* A prediction carries its confidence, so accepting or correcting it is informed. */
    char text[16];
    double wx, wy;
    g_snprintf(text, sizeof text, "%.0f%%", shape->score * 100.0);
    fth_image_canvas_image_to_widget(self, x, y, &wx, &wy);
    cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_BOLD);
    cairo_set_font_size(cr, 12);
    cairo_move_to(cr, wx + 3, wy - 4);
    cairo_set_source_rgba(cr, color.red, color.green, color.blue, 1.0);
    cairo_show_text(cr, text);
  }
}

static void
fth_image_canvas_snapshot(GtkWidget *widget, GtkSnapshot *snapshot)
{
  FthImageCanvas *self = FTH_IMAGE_CANVAS(widget);
  int width = gtk_widget_get_width(widget);
  int height = gtk_widget_get_height(widget);

  if (self->surface == NULL || width <= 0 || height <= 0)
    return;

  cairo_t *cr = gtk_snapshot_append_cairo(snapshot, &GRAPHENE_RECT_INIT(0, 0, width, height));
  /* The smallest level still at least as large as the zoom: at most 2:1 to resample. A
   * preview has no levels above its own size; it is stretched. */
  int k = 0;
  while (k + 1 < self->level_shift + self->n_levels && self->zoom * (1 << (k + 1)) <= 1.0)
    k++;
  k = MAX(k, self->level_shift);
  double level_scale = 1.0 / (1 << k);
  cairo_save(cr);
  cairo_translate(cr, self->ox, self->oy);
  cairo_scale(cr, self->zoom / level_scale, self->zoom / level_scale);
  cairo_set_source_surface(cr, self->levels[k - self->level_shift], 0, 0);
  /* Bilinear from a level within 2:1 of the zoom: GOOD's wide kernels are what cost seconds
   * a frame on a large picture, and they add nothing within 2:1. The image's own pixels are
   * drawn as squares from 2x on; a preview's stay smooth. */
  cairo_pattern_set_filter(cairo_get_source(cr), self->zoom >= 2.0 && k == 0
                                                   ? CAIRO_FILTER_NEAREST
                                                   : CAIRO_FILTER_BILINEAR);
  cairo_rectangle(cr, 0, 0, self->image_width * level_scale, self->image_height * level_scale);
  cairo_fill(cr);
  cairo_restore(cr);

  for (guint i = 0; i < self->shapes->len; i++)
    draw_shape(self, cr, &g_array_index(self->shapes, Shape, i));

  if (self->drag == DRAG_DRAW) {
    double x, y, w, h;
    drawn_box(self, &x, &y, &w, &h);
    stroke_box(self, cr, x, y, w, h, label_color(self, self->draw_label), TRUE, FALSE);
  }
  if (self->polygon->len > 0) {
    /* The polygon in progress: its edges, its vertices, and a line on to the pointer. */
    GdkRGBA color = label_color(self, self->draw_label);
    cairo_set_source_rgba(cr, color.red, color.green, color.blue, 1.0);
    cairo_set_line_width(cr, 2.0);
    for (guint i = 0; i < self->polygon->len / 2; i++) {
      double wx, wy;
      fth_image_canvas_image_to_widget(self, g_array_index(self->polygon, double, 2 * i),
                                       g_array_index(self->polygon, double, 2 * i + 1), &wx, &wy);
      if (i == 0)
        cairo_move_to(cr, wx, wy);
      else
        cairo_line_to(cr, wx, wy);
    }
    cairo_line_to(cr, self->pointer_x, self->pointer_y);
    cairo_stroke(cr);
    for (guint i = 0; i < self->polygon->len / 2; i++) {
      double wx, wy;
      fth_image_canvas_image_to_widget(self, g_array_index(self->polygon, double, 2 * i),
                                       g_array_index(self->polygon, double, 2 * i + 1), &wx, &wy);
      cairo_arc(cr, wx, wy, i == 0 ? 5.0 : 3.5, 0, 2 * G_PI);
      cairo_fill(cr);
    }
  }
  cairo_destroy(cr);
}

static void
fth_image_canvas_size_allocate(GtkWidget *widget, int width, int height, int baseline)
{
  FthImageCanvas *self = FTH_IMAGE_CANVAS(widget);
  if (self->fit)
    apply_fit(self);
}

static void
fth_image_canvas_measure(GtkWidget *widget, GtkOrientation orientation, int for_size,
                         int *minimum, int *natural, int *minimum_baseline,
                         int *natural_baseline)
{
  *minimum = 32;
  *natural = orientation == GTK_ORIENTATION_HORIZONTAL ? 480 : 360;
}

/* ---- gestures ----------------------------------------------------------------------------- */

static void
edit_drag_begin(GtkGestureDrag *gesture, double x, double y, gpointer user_data)
{
  FthImageCanvas *self = FTH_IMAGE_CANVAS(user_data);
  double ix, iy;

  self->drag = DRAG_NONE;
  self->drag_x = x;
  self->drag_y = y;
  self->drag_dx = self->drag_dy = 0;
  self->vertex_click = FALSE;
  if (self->surface == NULL)
    return;
  if (self->tool == FTH_CANVAS_TOOL_POLYGON && self->polygon->len > 0) {
    /* While a polygon is drawn, every click is its next vertex, over a box or not. */
    self->vertex_click = TRUE;
    return;
  }

  int corner = corner_at(self, x, y);
  int vertex = vertex_at(self, x, y);
  Shape *hit = shape_at(self, x, y);
  fth_image_canvas_widget_to_image(self, x, y, &ix, &iy);
  if (corner >= 0) {
    self->resize_corner = corner;
    self->drag = DRAG_RESIZE;
  } else if (vertex >= 0) {
    /* Dragged, it moves; clicked, it is picked (for Delete). */
    self->vertex = vertex;
    self->drag = DRAG_VERTEX;
    gtk_widget_queue_draw(GTK_WIDGET(self));
  } else if (hit != NULL) {
    fth_image_canvas_set_selected(self, hit->id);
    self->drag = DRAG_MOVE;
  } else if (ix >= 0 && iy >= 0 && ix <= self->image_width && iy <= self->image_height) {
    fth_image_canvas_set_selected(self, 0);
    /* The polygon tool acts on the release (a click), see edit_drag_end(). */
    self->drag = self->tool == FTH_CANVAS_TOOL_BOX ? DRAG_DRAW : DRAG_NONE;
    self->vertex_click = self->tool == FTH_CANVAS_TOOL_POLYGON;
  }
}

static void
edit_drag_update(GtkGestureDrag *gesture, double dx, double dy, gpointer user_data)
{
  FthImageCanvas *self = FTH_IMAGE_CANVAS(user_data);

  self->drag_dx = dx;
  self->drag_dy = dy;
  if (self->drag != DRAG_NONE)
    gtk_widget_queue_draw(GTK_WIDGET(self));
}

/* A click with the polygon tool: a vertex, or on the first vertex the end of the polygon. */
static void
polygon_click(FthImageCanvas *self, double wx, double wy)
{
  guint n = self->polygon->len / 2;
  double ix, iy;

  if (n >= 3) {
    double fx, fy;
    fth_image_canvas_image_to_widget(self, g_array_index(self->polygon, double, 0),
                                     g_array_index(self->polygon, double, 1), &fx, &fy);
    if (hypot(wx - fx, wy - fy) <= HANDLE_GRAB_PX) {
      GVariant *points = points_variant((const double *)(void *)self->polygon->data, n);
      g_array_set_size(self->polygon, 0);
      gtk_widget_queue_draw(GTK_WIDGET(self));
      g_signal_emit(self, signals[SIGNAL_POLYGON_DRAWN], 0, points);
      return;
    }
  }
  fth_image_canvas_widget_to_image(self, wx, wy, &ix, &iy);
  ix = CLAMP(ix, 0, self->image_width);
  iy = CLAMP(iy, 0, self->image_height);
  g_array_append_val(self->polygon, ix);
  g_array_append_val(self->polygon, iy);
  gtk_widget_queue_draw(GTK_WIDGET(self));
}

static void
edit_drag_end(GtkGestureDrag *gesture, double dx, double dy, gpointer user_data)
{
  FthImageCanvas *self = FTH_IMAGE_CANVAS(user_data);
  DragMode mode = self->drag;

  if (self->vertex_click && hypot(dx, dy) < 4.0) {
    polygon_click(self, self->drag_x, self->drag_y);
    return;
  }

  self->drag_dx = dx;
  self->drag_dy = dy;
  self->drag = DRAG_NONE;
  gtk_widget_queue_draw(GTK_WIDGET(self));

  if (mode == DRAG_DRAW) {
    double x, y, w, h;
    drawn_box(self, &x, &y, &w, &h);
    if (w * self->zoom >= MIN_BOX_SCREEN_PX && h * self->zoom >= MIN_BOX_SCREEN_PX)
      g_signal_emit(self, signals[SIGNAL_BOX_DRAWN], 0, x, y, w, h);
  } else if ((mode == DRAG_MOVE || mode == DRAG_RESIZE || mode == DRAG_VERTEX) &&
             hypot(dx, dy) >= 2.0) {
    for (guint i = 0; i < self->shapes->len; i++) {
      Shape *shape = &g_array_index(self->shapes, Shape, i);
      if (shape->id != self->selected)
        continue;
      if (shape->geom == FTH_GEOM_POLYGON) {
        self->drag = mode; /* edited_points() reads the mode */
        g_autofree double *xy = edited_points(self, shape);
        self->drag = DRAG_NONE;
        g_signal_emit(self, signals[SIGNAL_POLYGON_CHANGED], 0, shape->id,
                      points_variant(xy, shape->n_points));
        break;
      }
      double x, y, w, h;
      self->drag = mode; /* edited_box() reads the mode */
      edited_box(self, shape, &x, &y, &w, &h);
      self->drag = DRAG_NONE;
      g_signal_emit(self, signals[SIGNAL_BOX_CHANGED], 0, shape->id, x, y, w, h);
      break;
    }
  }
}

static void
pan_drag_begin(GtkGestureDrag *gesture, double x, double y, gpointer user_data)
{
  FthImageCanvas *self = FTH_IMAGE_CANVAS(user_data);
  self->pan_ox = self->ox;
  self->pan_oy = self->oy;
}

static void
pan_drag_update(GtkGestureDrag *gesture, double dx, double dy, gpointer user_data)
{
  FthImageCanvas *self = FTH_IMAGE_CANVAS(user_data);
  fth_image_canvas_pan(self, self->pan_ox + dx - self->ox, self->pan_oy + dy - self->oy);
}

static gboolean
scrolled(GtkEventControllerScroll *controller, double dx, double dy, gpointer user_data)
{
  FthImageCanvas *self = FTH_IMAGE_CANVAS(user_data);
  if (self->surface == NULL)
    return FALSE;
  fth_image_canvas_zoom_at(self, pow(1.15, -dy), self->pointer_x, self->pointer_y);
  return TRUE;
}

static void
pointer_moved(GtkEventControllerMotion *controller, double x, double y, gpointer user_data)
{
  FthImageCanvas *self = FTH_IMAGE_CANVAS(user_data);
  self->pointer_x = x;
  self->pointer_y = y;
  if (self->polygon->len > 0)
    gtk_widget_queue_draw(GTK_WIDGET(self)); /* the line on to the pointer */
}

static void
pinch_begin(GtkGesture *gesture, GdkEventSequence *sequence, gpointer user_data)
{
  FthImageCanvas *self = FTH_IMAGE_CANVAS(user_data);
  self->pinch_zoom = self->zoom;
}

static void
pinch_scale_changed(GtkGestureZoom *gesture, double scale, gpointer user_data)
{
  FthImageCanvas *self = FTH_IMAGE_CANVAS(user_data);
  double x, y;

  if (!gtk_gesture_get_bounding_box_center(GTK_GESTURE(gesture), &x, &y)) {
    x = gtk_widget_get_width(GTK_WIDGET(self)) / 2.0;
    y = gtk_widget_get_height(GTK_WIDGET(self)) / 2.0;
  }
  fth_image_canvas_zoom_at(self, self->pinch_zoom * scale / self->zoom, x, y);
}

static void
add_drag(FthImageCanvas *self, guint button, const char *name, GCallback begin,
         GCallback update, GCallback end)
{
  GtkGesture *drag = gtk_gesture_drag_new();
  gtk_gesture_single_set_button(GTK_GESTURE_SINGLE(drag), button);
  gtk_event_controller_set_name(GTK_EVENT_CONTROLLER(drag), name);
  g_signal_connect(drag, "drag-begin", begin, self);
  g_signal_connect(drag, "drag-update", update, self);
  if (end != NULL)
    g_signal_connect(drag, "drag-end", end, self);
  gtk_widget_add_controller(GTK_WIDGET(self), GTK_EVENT_CONTROLLER(drag));
}

/* ---- the class ---------------------------------------------------------------------------- */

static void
fth_image_canvas_get_property(GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  FthImageCanvas *self = FTH_IMAGE_CANVAS(object);

  switch (prop_id) {
  case PROP_SELECTED_ID:
    g_value_set_int64(value, self->selected);
    break;
  default:
    G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
  }
}

static void
fth_image_canvas_set_property(GObject *object, guint prop_id, const GValue *value,
                              GParamSpec *pspec)
{
  FthImageCanvas *self = FTH_IMAGE_CANVAS(object);

  switch (prop_id) {
  case PROP_SELECTED_ID:
    fth_image_canvas_set_selected(self, g_value_get_int64(value));
    break;
  default:
    G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
  }
}

static void
fth_image_canvas_finalize(GObject *object)
{
  FthImageCanvas *self = FTH_IMAGE_CANVAS(object);

  g_clear_pointer(&self->surface, cairo_surface_destroy);
  g_array_unref(self->shapes);
  g_hash_table_unref(self->colors);
  g_array_unref(self->polygon);
  G_OBJECT_CLASS(fth_image_canvas_parent_class)->finalize(object);
}

static void
fth_image_canvas_class_init(FthImageCanvasClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS(klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);

  object_class->get_property = fth_image_canvas_get_property;
  object_class->set_property = fth_image_canvas_set_property;
  object_class->finalize = fth_image_canvas_finalize;
  widget_class->snapshot = fth_image_canvas_snapshot;
  widget_class->size_allocate = fth_image_canvas_size_allocate;
  widget_class->measure = fth_image_canvas_measure;

  props[PROP_SELECTED_ID] =
    g_param_spec_int64("selected-id", NULL, NULL, 0, G_MAXINT64, 0,
                       G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties(object_class, N_PROPS, props);

  /* A box was drawn: x, y, width, height in image pixels. */
  signals[SIGNAL_BOX_DRAWN] = g_signal_new("box-drawn", G_TYPE_FROM_CLASS(klass),
                                           G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL, G_TYPE_NONE,
                                           4, G_TYPE_DOUBLE, G_TYPE_DOUBLE, G_TYPE_DOUBLE,
                                           G_TYPE_DOUBLE);
  /* A box was moved or resized: its annotation id and new x, y, width, height in image
   * pixels. */
  signals[SIGNAL_BOX_CHANGED] = g_signal_new("box-changed", G_TYPE_FROM_CLASS(klass),
                                             G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL, G_TYPE_NONE,
                                             5, G_TYPE_INT64, G_TYPE_DOUBLE, G_TYPE_DOUBLE,
                                             G_TYPE_DOUBLE, G_TYPE_DOUBLE);
  /* A polygon was closed: its vertices, an "a(dd)" variant of image points (floating). */
  signals[SIGNAL_POLYGON_DRAWN] = g_signal_new("polygon-drawn", G_TYPE_FROM_CLASS(klass),
                                               G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                               G_TYPE_NONE, 1, G_TYPE_VARIANT);
  /* A polygon's vertices were moved or one was deleted: its annotation id and all its
   * vertices, an "a(dd)" variant of image points (floating). */
  signals[SIGNAL_POLYGON_CHANGED] = g_signal_new("polygon-changed", G_TYPE_FROM_CLASS(klass),
                                                 G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                                 G_TYPE_NONE, 2, G_TYPE_INT64, G_TYPE_VARIANT);
  gtk_widget_class_set_css_name(widget_class, "imagecanvas");
}

static void
fth_image_canvas_init(FthImageCanvas *self)
{
  self->shapes = g_array_new(FALSE, TRUE, sizeof(Shape));
  g_array_set_clear_func(self->shapes, (GDestroyNotify)shape_clear);
  self->colors = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, g_free);
  self->polygon = g_array_new(FALSE, FALSE, sizeof(double));
  self->zoom = 1.0;
  self->fit = TRUE;
  self->vertex = -1;
  gtk_widget_set_overflow(GTK_WIDGET(self), GTK_OVERFLOW_HIDDEN);
  gtk_widget_set_hexpand(GTK_WIDGET(self), TRUE);
  gtk_widget_set_vexpand(GTK_WIDGET(self), TRUE);

  add_drag(self, GDK_BUTTON_PRIMARY, "fth-canvas-edit", G_CALLBACK(edit_drag_begin),
           G_CALLBACK(edit_drag_update), G_CALLBACK(edit_drag_end));
  add_drag(self, GDK_BUTTON_MIDDLE, "fth-canvas-pan", G_CALLBACK(pan_drag_begin),
           G_CALLBACK(pan_drag_update), NULL);
  add_drag(self, GDK_BUTTON_SECONDARY, "fth-canvas-pan-secondary", G_CALLBACK(pan_drag_begin),
           G_CALLBACK(pan_drag_update), NULL);

  GtkEventController *scroll = gtk_event_controller_scroll_new(GTK_EVENT_CONTROLLER_SCROLL_VERTICAL);
  g_signal_connect(scroll, "scroll", G_CALLBACK(scrolled), self);
  gtk_widget_add_controller(GTK_WIDGET(self), scroll);

  GtkEventController *motion = gtk_event_controller_motion_new();
  g_signal_connect(motion, "motion", G_CALLBACK(pointer_moved), self);
  g_signal_connect(motion, "enter", G_CALLBACK(pointer_moved), self);
  gtk_widget_add_controller(GTK_WIDGET(self), motion);

  GtkGesture *pinch = gtk_gesture_zoom_new();
  g_signal_connect(pinch, "begin", G_CALLBACK(pinch_begin), self);
  g_signal_connect(pinch, "scale-changed", G_CALLBACK(pinch_scale_changed), self);
  gtk_widget_add_controller(GTK_WIDGET(self), GTK_EVENT_CONTROLLER(pinch));
}
