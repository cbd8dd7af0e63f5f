/* fth-image-canvas.h: an image with its annotations, zoomable and pannable, where boxes are
 * drawn, selected and moved with the pointer.
 *
 * Coordinates in the API are image pixels. The canvas only shows and reports: a box drawn or
 * moved is emitted as a signal and the owner saves it and calls set_annotations() again, so
 * the store stays the one place annotations live.
 *
 * Pointer: primary drag on empty image draws a box; primary press on a box selects it and a
 * drag moves it; dragging a corner handle of the selected box resizes it ("box-drawn",
 * "box-changed"). A press inside a polygon selects it and a drag moves it; the selected
 * polygon shows its vertices, and dragging one moves it while clicking one picks it for
 * fth_image_canvas_delete_selected_vertex() ("polygon-changed" with the id and every vertex).
 * Middle or secondary drag pans; the wheel zooms about the pointer; pinch zooms. Model
 * predictions are drawn dashed with their confidence. */
#pragma once

#include <fathom/store.h>
#include <gtk/gtk.h>

G_BEGIN_DECLS

#define FTH_TYPE_IMAGE_CANVAS (fth_image_canvas_get_type())
G_DECLARE_FINAL_TYPE(FthImageCanvas, fth_image_canvas, FTH, IMAGE_CANVAS, GtkWidget)

/* What a primary drag or click on empty image does. */
typedef enum {
  FTH_CANVAS_TOOL_BOX,     /* drag out a box */
  FTH_CANVAS_TOOL_POLYGON, /* click vertices; clicking the first one again closes the polygon
                            * ("polygon-drawn" with an "a(dd)" variant of image points) */
} FthCanvasTool;

GtkWidget *fth_image_canvas_new(void);

/* TEXTURE's pixels as the canvas draws them: a new ARGB32 cairo image surface (NULL for
 * NULL), with the halved copies the canvas draws from when zoomed out attached to it.
 * Converting an 8k x 8k picture takes far longer than a frame, so the owner calls this on a
 * worker thread and hands the result to set_surface() on the main thread. */
cairo_surface_t *fth_image_canvas_surface_from_texture(GdkTexture *texture);
/* Shows SURFACE (referenced; NULL: nothing) fitted to the widget; clears the selection. A
 * surface that did not come from surface_from_texture() gets its halved copies here, on the
 * calling thread. */
void fth_image_canvas_set_surface(FthImageCanvas *self, cairo_surface_t *surface);
/* Shows PREVIEW (referenced), a copy of a WIDTH x HEIGHT image reduced 2^k times with sides
 * rounded up (as fth_image_decode_reduced_file() makes it), stretched over the full image:
 * zoom, gestures, signals and annotations are in the full image's pixels. Fitted; clears the
 * selection. A set_surface() that follows with a WIDTH x HEIGHT surface replaces the preview
 * in place: zoom, position, selection and a shape being drawn stay. */
void fth_image_canvas_set_preview(FthImageCanvas *self, cairo_surface_t *preview, int width,
                                  int height);
/* Whether what is drawn is a preview. */
gboolean fth_image_canvas_is_preview(FthImageCanvas *self);
/* The surface drawn from (the preview while there is one; not referenced), or NULL. */
cairo_surface_t *fth_image_canvas_get_surface(FthImageCanvas *self);
/* ANNOTATIONS: FthAnnotation records of the item (boxes and polygons are drawn; whole-item
 * classes and other geometries are not); LABELS: FthLabel records for their colors. Both
 * copied; either may be NULL. The selection survives if its id is still there. */
void fth_image_canvas_set_annotations(FthImageCanvas *self, GPtrArray *annotations,
                                      GPtrArray *labels);
/* The label whose color a box being drawn takes. */
void fth_image_canvas_set_draw_label(FthImageCanvas *self, gint64 label_id);

/* The selected annotation's id, 0 for none ("selected-id" property). */
gint64 fth_image_canvas_get_selected(FthImageCanvas *self);
void fth_image_canvas_set_selected(FthImageCanvas *self, gint64 annotation_id);

/* Zoom: screen pixels per image pixel. */
double fth_image_canvas_get_zoom(FthImageCanvas *self);
void fth_image_canvas_zoom_fit(FthImageCanvas *self);
void fth_image_canvas_zoom_one_to_one(FthImageCanvas *self);
/* Moves the picture by (DX, DY) widget pixels. */
void fth_image_canvas_pan(FthImageCanvas *self, double dx, double dy);
/* Multiplies the zoom by FACTOR about the widget point (X, Y). */
void fth_image_canvas_zoom_at(FthImageCanvas *self, double factor, double x, double y);
/* Image point -> widget point and back. */
void fth_image_canvas_image_to_widget(FthImageCanvas *self, double ix, double iy, double *wx,
                                      double *wy);
void fth_image_canvas_widget_to_image(FthImageCanvas *self, double wx, double wy, double *ix,
                                      double *iy);

void fth_image_canvas_set_tool(FthImageCanvas *self, FthCanvasTool tool);
FthCanvasTool fth_image_canvas_get_tool(FthImageCanvas *self);

/* Removes the picked vertex of the selected polygon ("polygon-changed"); FALSE when no vertex
 * is picked or the polygon has only three. */
gboolean fth_image_canvas_delete_selected_vertex(FthImageCanvas *self);

/* Drops a box or polygon being drawn; TRUE if there was one (Escape). */
gboolean fth_image_canvas_cancel_drawing(FthImageCanvas *self);

G_END_DECLS
