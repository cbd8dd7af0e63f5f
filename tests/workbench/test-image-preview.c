/* test-image-preview.c: a large JPEG is first shown from a reduced decode, then replaced by the
 * full image without moving (issue 5), under Xvfb.
 *
 * On the canvas: a preview is stretched over the full image's coordinates, a box drawn across
 * the swap comes out in full-resolution pixels, and the view and the selection stay. In the
 * workbench: opening a 4096x3072 JPEG shows the preview before the item is loaded, and the
 * loaded item shows the full-resolution surface. */
#include "fth-image-canvas.h"
#include "fth-item-view.h"
#include "fth-thumbnail-loader.h"
#include "fth-test-project.h"
#include "workbench-test-util.h"

#include <gdk-pixbuf/gdk-pixbuf.h>

#define OPEN_TIMEOUT_MS 20000

static FthApplication *app;

/* WIDTH x HEIGHT, left half red, right half blue: a preview and its full image look alike. */
static cairo_surface_t *
halves_surface(int width, int height)
{
  cairo_surface_t *surface = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, width, height);
  guint8 *data = cairo_image_surface_get_data(surface);
  int stride = cairo_image_surface_get_stride(surface);
  for (int y = 0; y < height; y++)
    for (int x = 0; x < width; x++)
      ((guint32 *)(void *)(data + (gsize)y * stride))[x] =
        x < width / 2 ? 0xffe01010u : 0xff1010e0u;
  cairo_surface_mark_dirty(surface);
  return surface;
}

static gboolean
is_red(guint32 rgb)
{
  return (rgb >> 16) > 0xb0 && (rgb & 0xff) < 0x40;
}

static gboolean
is_blue(guint32 rgb)
{
  return (rgb & 0xff) > 0xb0 && (rgb >> 16) < 0x40;
}

static GtkEventController *
find_controller(GtkWidget *widget, const char *name)
{
  GListModel *list = gtk_widget_observe_controllers(widget);
  GtkEventController *found = NULL;
  for (guint i = 0; i < g_list_model_get_n_items(list) && found == NULL; i++) {
    g_autoptr(GtkEventController) c = g_list_model_get_item(list, i);
    if (g_strcmp0(gtk_event_controller_get_name(c), name) == 0)
      found = c;
  }
  g_object_unref(list);
  return found;
}

typedef struct {
  guint n;
  double x, y, w, h;
} DrawnBox;

static void
on_box_drawn(FthImageCanvas *canvas, double x, double y, double w, double h, gpointer data)
{
  DrawnBox *box = data;
  box->n++;
  box->x = x;
  box->y = y;
  box->w = w;
  box->h = h;
}

static void
test_canvas_swap(void)
{
  /* Odd sides: the 1/8 preview's sides round up (201 x 151). */
  const int width = 1601, height = 1201;
  cairo_surface_t *preview = halves_surface(201, 151);
  cairo_surface_t *full = halves_surface(width, height);

  GtkWidget *canvas = fth_image_canvas_new();
  GtkWidget *window = gtk_window_new();
  gtk_window_set_default_size(GTK_WINDOW(window), 400, 300);
  gtk_window_set_child(GTK_WINDOW(window), canvas);
  gtk_window_present(GTK_WINDOW(window));
  for (int i = 0; i < 100 && gtk_widget_get_width(canvas) == 0; i++)
    fth_test_spin_for(20);
  FthImageCanvas *c = FTH_IMAGE_CANVAS(canvas);

  fth_image_canvas_set_preview(c, preview, width, height);
  g_assert_true(fth_image_canvas_is_preview(c));
  g_assert_true(fth_image_canvas_get_surface(c) == preview);
  fth_test_spin_for(50);
  int w = gtk_widget_get_width(canvas), h = gtk_widget_get_height(canvas);
  double fit = MIN((double)w / width, (double)h / height);
  g_assert_cmpfloat_with_epsilon(fth_image_canvas_get_zoom(c), fit, 1e-9);

  /* The preview covers the full image's extent: its halves where the full image has them. */
  double lx, rx, my, x0, y0, x1, y1;
  fth_image_canvas_image_to_widget(c, width * 0.25, height * 0.5, &lx, &my);
  fth_image_canvas_image_to_widget(c, width * 0.75, height * 0.5, &rx, &my);
  fth_image_canvas_image_to_widget(c, 0, 0, &x0, &y0);
  fth_image_canvas_image_to_widget(c, width, height, &x1, &y1);
  {
    g_autoptr(GdkTexture) shown = fth_test_render_widget_laid_out(canvas);
    g_assert_true(is_red(fth_test_texture_pixel(shown, (int)lx, (int)my)));
    g_assert_true(is_blue(fth_test_texture_pixel(shown, (int)rx, (int)my)));
    g_assert_true(is_blue(fth_test_texture_pixel(shown, (int)x1 - 2, (int)y1 - 2)));
  }

  /* A selected box, and a box drawn across the swap (begun on the preview, ended on the full
   * image): both in full-resolution pixels. */
  FthAnnotation ann = { .id = 7, .label_id = 1, .geom = FTH_GEOM_BOX,
                        .x = 100, .y = 100, .w = 200, .h = 150, .score = 1.0 };
  g_autoptr(GPtrArray) anns = g_ptr_array_new();
  g_ptr_array_add(anns, &ann);
  fth_image_canvas_set_annotations(c, anns, NULL);

  DrawnBox drawn = { 0 };
  g_signal_connect(canvas, "box-drawn", G_CALLBACK(on_box_drawn), &drawn);
  GtkEventController *edit = find_controller(canvas, "fth-canvas-edit");
  double bx0, by0, bx1, by1;
  fth_image_canvas_image_to_widget(c, 800, 400, &bx0, &by0);
  fth_image_canvas_image_to_widget(c, 1200, 1000, &bx1, &by1);
  g_signal_emit_by_name(edit, "drag-begin", bx0, by0);
  g_signal_emit_by_name(edit, "drag-update", (bx1 - bx0) / 2, (by1 - by0) / 2);
  fth_image_canvas_set_selected(c, 7); /* as the owner selects, e.g. from a list */

  fth_image_canvas_set_surface(c, full);
  g_assert_false(fth_image_canvas_is_preview(c));
  g_assert_true(fth_image_canvas_get_surface(c) == full);
  g_assert_cmpint(cairo_image_surface_get_width(fth_image_canvas_get_surface(c)), ==, width);
  g_assert_cmpfloat(fth_image_canvas_get_zoom(c), ==, fit);
  double ax0, ay0, ax1, ay1;
  fth_image_canvas_image_to_widget(c, 0, 0, &ax0, &ay0);
  fth_image_canvas_image_to_widget(c, width, height, &ax1, &ay1);
  g_assert_cmpfloat(ax0, ==, x0);
  g_assert_cmpfloat(ay0, ==, y0);
  g_assert_cmpfloat(ax1, ==, x1);
  g_assert_cmpfloat(ay1, ==, y1);
  g_assert_cmpint(fth_image_canvas_get_selected(c), ==, 7);

  g_signal_emit_by_name(edit, "drag-end", bx1 - bx0, by1 - by0);
  g_assert_cmpuint(drawn.n, ==, 1);
  g_assert_cmpfloat_with_epsilon(drawn.x, 800, 1e-6);
  g_assert_cmpfloat_with_epsilon(drawn.y, 400, 1e-6);
  g_assert_cmpfloat_with_epsilon(drawn.w, 400, 1e-6);
  g_assert_cmpfloat_with_epsilon(drawn.h, 600, 1e-6);
  {
    g_autoptr(GdkTexture) shown = fth_test_render_widget_laid_out(canvas);
    g_assert_true(is_red(fth_test_texture_pixel(shown, (int)lx, (int)my)));
    g_assert_true(is_blue(fth_test_texture_pixel(shown, (int)rx, (int)my)));
  }

  /* A surface of another size is another image: fitted anew, no preview left. */
  cairo_surface_t *other = halves_surface(300, 300);
  fth_image_canvas_set_preview(c, preview, width, height);
  fth_image_canvas_set_surface(c, other);
  g_assert_false(fth_image_canvas_is_preview(c));
  g_assert_cmpfloat(fth_image_canvas_get_zoom(c), ==, MIN((double)w / 300, (double)h / 300));
  g_assert_cmpint(fth_image_canvas_get_selected(c), ==, 0);

  cairo_surface_destroy(other);
  cairo_surface_destroy(preview);
  cairo_surface_destroy(full);
  gtk_window_destroy(GTK_WINDOW(window));
}

/* ---- in the workbench --------------------------------------------------------------------- */

#define PHOTO_WIDTH 4096
#define PHOTO_HEIGHT 3072

static char *
create_project(void)
{
  g_autoptr(GError) error = NULL;
  char *dir = g_dir_make_tmp("fathom-preview-XXXXXX", &error);
  g_assert_no_error(error);
  g_autoptr(FthStore) store = fth_store_create(dir, &error);
  g_assert_no_error(error);
  g_assert_true(fth_store_add_label(store, "cat", "#e01b24", "1", FTH_LABEL_CLASS, NULL, &error));

  g_autoptr(GdkPixbuf) pixbuf =
    gdk_pixbuf_new(GDK_COLORSPACE_RGB, FALSE, 8, PHOTO_WIDTH, PHOTO_HEIGHT);
  guint8 *pixels = gdk_pixbuf_get_pixels(pixbuf);
  int stride = gdk_pixbuf_get_rowstride(pixbuf);
  for (int y = 0; y < PHOTO_HEIGHT; y++)
    for (int x = 0; x < PHOTO_WIDTH; x++) {
      guint8 *p = pixels + (gsize)y * stride + 3 * x;
      p[0] = x < PHOTO_WIDTH / 2 ? 224 : 16;
      p[1] = (guint8)(y / 16);
      p[2] = x < PHOTO_WIDTH / 2 ? 16 : 224;
    }
  g_autofree char *path = g_build_filename(dir, "photo.jpg", NULL);
  g_assert_true(gdk_pixbuf_save(pixbuf, path, "jpeg", &error, "quality", "85", NULL));
  g_assert_no_error(error);

  g_autoptr(FthItemRecord) record = fth_item_record_new();
  record->kind = FTH_ITEM_IMAGE;
  record->path = g_strdup(path);
  record->member = -1;
  record->sha256 = g_compute_checksum_for_string(G_CHECKSUM_SHA256, path, -1);
  record->width = PHOTO_WIDTH;
  record->height = PHOTO_HEIGHT;
  record->split = FTH_SPLIT_TRAIN;
  gint64 id = 0;
  gboolean duplicate = FALSE;
  g_assert_true(fth_store_add_item(store, record, &id, &duplicate, &error));
  g_assert_no_error(error);
  return dir;
}

typedef struct {
  FthItemView *view;
  FthImageCanvas *canvas;
  gboolean saw_preview; /* before the item was loaded */
  double preview_zoom;
} Watch;

/* Checked at every main loop iteration: notes the preview, stops once the item is loaded. */
static gboolean
watch_step(gpointer data)
{
  Watch *watch = data;
  if (fth_item_view_is_loaded(watch->view))
    return TRUE;
  if (fth_image_canvas_is_preview(watch->canvas) && !watch->saw_preview) {
    watch->saw_preview = TRUE;
    watch->preview_zoom = fth_image_canvas_get_zoom(watch->canvas);
  }
  return FALSE;
}

static void
test_item_view_preview(void)
{
  g_autofree char *dir = create_project();
  FthWindow *window = fth_window_new(app);
  gtk_window_set_default_size(GTK_WINDOW(window), 900, 640);
  gtk_window_present(GTK_WINDOW(window));
  g_assert_true(fth_test_open_project(window, dir, OPEN_TIMEOUT_MS, NULL));

  g_autoptr(GPtrArray) views = fth_test_find_widgets(GTK_WIDGET(window), FTH_TYPE_ITEM_VIEW);
  g_autoptr(GPtrArray) grids = fth_test_find_widgets(GTK_WIDGET(window), GTK_TYPE_GRID_VIEW);
  Watch watch = { g_ptr_array_index(views, 0), NULL, FALSE, 0 };
  watch.canvas = fth_item_view_get_canvas(watch.view);
  /* The item view sizes the preview to the canvas: open the item once so the canvas is laid
   * out, then again. */
  g_signal_emit_by_name(g_ptr_array_index(grids, 0), "activate", 0u);
  g_assert_true(fth_test_spin_until(watch_step, &watch, OPEN_TIMEOUT_MS));
  fth_test_spin_for(50);
  g_assert_cmpint(gtk_widget_get_width(GTK_WIDGET(watch.canvas)), >, 0);
  fth_item_view_show(watch.view, 0);
  watch.saw_preview = FALSE;
  g_assert_true(fth_test_spin_until(watch_step, &watch, OPEN_TIMEOUT_MS));
  fth_test_spin_for(50);

  g_assert_true(watch.saw_preview);
  g_assert_false(fth_image_canvas_is_preview(watch.canvas));
  cairo_surface_t *shown = fth_image_canvas_get_surface(watch.canvas);
  g_assert_cmpint(cairo_image_surface_get_width(shown), ==, PHOTO_WIDTH);
  g_assert_cmpint(cairo_image_surface_get_height(shown), ==, PHOTO_HEIGHT);
  g_assert_cmpfloat(fth_image_canvas_get_zoom(watch.canvas), ==, watch.preview_zoom);

  gtk_window_destroy(GTK_WINDOW(window));
  fth_test_spin_for(200);
  fth_test_rmtree(dir);
}

typedef struct {
  GdkTexture *texture;
  GError *error;
  gboolean done;
} ThumbnailLoad;

static void
thumbnail_loaded(GObject *source, GAsyncResult *result, gpointer user_data)
{
  ThumbnailLoad *load = user_data;
  load->texture = fth_thumbnail_loader_load_finish(FTH_THUMBNAIL_LOADER(source), result,
                                                   &load->error);
  load->done = TRUE;
}

static gboolean
thumbnail_done(gpointer data)
{
  return ((ThumbnailLoad *)data)->done;
}

/* The grid's thumbnail of the 4096 x 3072 JPEG (decoded reduced, then scaled): the thumbnail's
 * size, and its halves in the photo's colors. */
static void
test_thumbnail(void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = create_project();
  g_autoptr(FthStore) store = fth_store_open(dir, &error);
  g_assert_no_error(error);
  g_autoptr(FthItemList) list = fth_item_list_new(store, NULL, &error);
  g_assert_no_error(error);
  g_autoptr(FthItem) item = g_list_model_get_item(G_LIST_MODEL(list), 0);
  g_autoptr(FthThumbnailLoader) loader = fth_thumbnail_loader_new(store, 128, 4);

  ThumbnailLoad load = { 0 };
  fth_thumbnail_loader_load_async(loader, item, NULL, thumbnail_loaded, &load);
  g_assert_true(fth_test_spin_until(thumbnail_done, &load, OPEN_TIMEOUT_MS));
  g_assert_no_error(load.error);
  g_autoptr(GdkTexture) texture = load.texture;
  g_assert_cmpint(gdk_texture_get_width(texture), ==, 128);
  g_assert_cmpint(gdk_texture_get_height(texture), ==, 128 * PHOTO_HEIGHT / PHOTO_WIDTH);
  g_assert_true(is_red(fth_test_texture_pixel(texture, 16, 48)));
  g_assert_true(is_blue(fth_test_texture_pixel(texture, 112, 48)));
  fth_test_rmtree(dir);
}

int
main(int argc, char **argv)
{
  if (!fth_test_under_xvfb("test-image-preview"))
    return 77;
  gtk_test_init(&argc, &argv, NULL);
  app = fth_test_application_new();
  g_test_add_func("/image-preview/canvas-swap", test_canvas_swap);
  g_test_add_func("/image-preview/item-view", test_item_view_preview);
  g_test_add_func("/image-preview/thumbnail", test_thumbnail);
  int status = g_test_run();
  g_object_unref(app);
  return status;
}
