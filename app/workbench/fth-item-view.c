/* fth-item-view.c: loads one item (picture and annotations) on worker threads, shows it on the
 * canvas, and turns canvas gestures and label keys into history edits. A generation counter
 * drops loads that finish after the user has moved on. */
#include "fth-item-view.h"
#include "fth-label-color.h"

#include <adwaita.h>
#include <fathom/media.h>
#include <glib/gi18n.h>

struct _FthItemView {
  GtkWidget parent_instance;

  GtkLabel *position_label;
  GtkLabel *title_label;
  GtkLabel *class_label;
  FthImageCanvas *canvas;
  GtkStack *content_stack;
  AdwStatusPage *error_page;

  FthStore *store;
  GListModel *items;
  FthAnnotationHistory *history;
  FthThumbnailLoader *images;
  GPtrArray *labels;

  guint position;
  FthItem *item;
  guint generation;     /* bumped by every show(); loads of older generations are dropped */
  gboolean image_ready;
  gboolean annotations_ready;
  GCancellable *cancellable;
  gint64 draw_label;
  GPtrArray *annotations; /* FthAnnotation of the shown item, as last read */
};

G_DEFINE_FINAL_TYPE(FthItemView, fth_item_view, GTK_TYPE_WIDGET)

enum { SIGNAL_LOADED, N_SIGNALS };
static guint signals[N_SIGNALS];

void
fth_item_view_set_project(FthItemView *self, FthStore *store, GListModel *items,
                          FthAnnotationHistory *history, FthThumbnailLoader *images)
{
  g_return_if_fail(FTH_IS_ITEM_VIEW(self));

  g_cancellable_cancel(self->cancellable);
  g_clear_object(&self->cancellable);
  g_set_object(&self->store, store);
  g_set_object(&self->items, items);
  g_set_object(&self->history, history);
  g_set_object(&self->images, images);
  g_clear_object(&self->item);
  self->generation++;
  fth_image_canvas_set_surface(self->canvas, NULL);
  fth_image_canvas_set_annotations(self->canvas, NULL, NULL);
}

void
fth_item_view_set_labels(FthItemView *self, GPtrArray *labels)
{
  g_return_if_fail(FTH_IS_ITEM_VIEW(self));

  if (labels != NULL)
    g_ptr_array_ref(labels);
  g_clear_pointer(&self->labels, g_ptr_array_unref);
  self->labels = labels;
  if (self->draw_label == 0 && labels != NULL && labels->len > 0)
    self->draw_label = ((FthLabel *)g_ptr_array_index(labels, 0))->id;
  fth_image_canvas_set_draw_label(self->canvas, self->draw_label);
}

static const FthLabel *
find_label(FthItemView *self, gint64 id)
{
  return fth_labels_find(self->labels, id);
}

static void
maybe_loaded(FthItemView *self)
{
  if (self->image_ready && self->annotations_ready)
    g_signal_emit(self, signals[SIGNAL_LOADED], 0);
}

/* ---- loading ------------------------------------------------------------------------------ */

typedef struct {
  FthItemView *view;
  guint generation;
} LoadTicket;

static LoadTicket *
ticket_new(FthItemView *self)
{
  LoadTicket *ticket = g_new0(LoadTicket, 1);
  ticket->view = g_object_ref(self);
  ticket->generation = self->generation;
  return ticket;
}

static void
ticket_free(LoadTicket *ticket)
{
  g_object_unref(ticket->view);
  g_free(ticket);
}

static void
show_picture(FthItemView *self, cairo_surface_t *surface, const GError *error)
{
  fth_image_canvas_set_surface(self->canvas, surface);
  /* A missing or broken file says so in place of the picture; labeling it still works. */
  if (surface == NULL)
    adw_status_page_set_description(self->error_page, error->message);
  gtk_stack_set_visible_child_name(self->content_stack, surface != NULL ? "canvas" : "error");
  self->image_ready = TRUE;
  maybe_loaded(self);
}

static void
convert_in_thread(GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  g_task_return_pointer(task, fth_image_canvas_surface_from_texture(task_data),
                        (GDestroyNotify)cairo_surface_destroy);
}

static void
picture_converted(GObject *source, GAsyncResult *result, gpointer user_data)
{
  LoadTicket *ticket = user_data;
  FthItemView *self = ticket->view;
  cairo_surface_t *surface = g_task_propagate_pointer(G_TASK(result), NULL);

  if (ticket->generation == self->generation)
    show_picture(self, surface, NULL);
  g_clear_pointer(&surface, cairo_surface_destroy);
  ticket_free(ticket);
}

static void
image_loaded(GObject *source, GAsyncResult *result, gpointer user_data)
{
  LoadTicket *ticket = user_data;
  FthItemView *self = ticket->view;
  g_autoptr(GError) error = NULL;
  g_autoptr(GdkTexture) texture =
    fth_thumbnail_loader_load_finish(FTH_THUMBNAIL_LOADER(source), result, &error);

  if (ticket->generation != self->generation ||
      g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
    ticket_free(ticket);
  } else if (texture == NULL) {
    show_picture(self, NULL, error);
    ticket_free(ticket);
  } else {
    /* The canvas draws from a Cairo surface; converting a large picture stays off the main
     * loop. */
    g_autoptr(GTask) task = g_task_new(NULL, NULL, picture_converted, ticket);
    g_task_set_task_data(task, g_object_ref(texture), g_object_unref);
    g_task_run_in_thread(task, convert_in_thread);
  }
}

/* ---- the preview of a large JPEG ----------------------------------------------------------- */

/* While a large JPEG decodes in full, a copy decoded at 1/2, 1/4 or 1/8 of its size (several
 * times faster) is shown in its place, as large as the view needs; the full image replaces it
 * without moving. */
typedef struct {
  char *path;
  int view_width, view_height; /* device pixels */
  int max_side; /* the image loader's: a larger image is shown scaled, in other coordinates */
} PreviewRequest;

typedef struct {
  cairo_surface_t *surface;
  int width, height; /* of the full image */
} Preview;

static void
preview_request_free(PreviewRequest *request)
{
  g_free(request->path);
  g_free(request);
}

static void
preview_free(Preview *preview)
{
  cairo_surface_destroy(preview->surface);
  g_free(preview);
}

/* RGB pixels as the canvas's ARGB32 surface. */
static cairo_surface_t *
surface_from_rgb(const FthImage *image)
{
  cairo_surface_t *surface =
    cairo_image_surface_create(CAIRO_FORMAT_ARGB32, image->width, image->height);
  guint8 *data = cairo_image_surface_get_data(surface);
  int stride = cairo_image_surface_get_stride(surface);
  for (int y = 0; y < image->height; y++) {
    const guint8 *in = image->pixels + (gsize)y * (gsize)image->width * 3;
    guint32 *out = (guint32 *)(void *)(data + (gsize)y * (gsize)stride);
    for (int x = 0; x < image->width; x++)
      out[x] = 0xff000000u | (guint32)in[3 * x] << 16 | (guint32)in[3 * x + 1] << 8 |
               in[3 * x + 2];
  }
  cairo_surface_mark_dirty(surface);
  return surface;
}

static void
preview_in_thread(GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  const PreviewRequest *request = task_data;
  FthImageInfo info;
  FthImage image;

  /* No preview is no loss: failures are the full load's to report, PNGs have no reduced
   * decode, and an image that fits the view decodes fast in full. */
  if (!fth_image_probe_file(request->path, FTH_IMAGE_DECODE_RGB, &info, NULL) ||
      MAX(info.width, info.height) > request->max_side) {
    g_task_return_pointer(task, NULL, NULL);
    return;
  }
  int reduction = fth_image_reduction_for_view(info.width, info.height, request->view_width,
                                               request->view_height);
  if (reduction == 1 ||
      !fth_image_decode_reduced_file(request->path, FTH_IMAGE_DECODE_RGB | FTH_IMAGE_DECODE_FAST,
                                     reduction, &image, NULL)) {
    g_task_return_pointer(task, NULL, NULL);
    return;
  }
  Preview *preview = g_new0(Preview, 1);
  preview->surface = surface_from_rgb(&image);
  preview->width = info.width;
  preview->height = info.height;
  fth_image_clear(&image);
  g_task_return_pointer(task, preview, (GDestroyNotify)preview_free);
}

static void
preview_decoded(GObject *source, GAsyncResult *result, gpointer user_data)
{
  LoadTicket *ticket = user_data;
  FthItemView *self = ticket->view;
  Preview *preview = g_task_propagate_pointer(G_TASK(result), NULL);

  /* Too late when the full image is there already. */
  if (preview != NULL && ticket->generation == self->generation && !self->image_ready) {
    fth_image_canvas_set_preview(self->canvas, preview->surface, preview->width,
                                 preview->height);
    gtk_stack_set_visible_child_name(self->content_stack, "canvas");
  }
  g_clear_pointer(&preview, preview_free);
  ticket_free(ticket);
}

static void
start_preview(FthItemView *self)
{
  GtkWidget *canvas = GTK_WIDGET(self->canvas);
  int scale = gtk_widget_get_scale_factor(canvas);
  PreviewRequest *request = g_new0(PreviewRequest, 1);
  request->path = fth_store_resolve_path(self->store, fth_item_get_path(self->item));
  request->view_width = gtk_widget_get_width(canvas) * scale;
  request->view_height = gtk_widget_get_height(canvas) * scale;
  request->max_side = fth_thumbnail_loader_get_size(self->images);
  g_autoptr(GTask) task = g_task_new(NULL, self->cancellable, preview_decoded, ticket_new(self));
  g_task_set_task_data(task, request, (GDestroyNotify)preview_request_free);
  g_task_run_in_thread(task, preview_in_thread);
}

static void
list_in_thread(GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  FthItemView *self = source;
  GError *error = NULL;
  GPtrArray *anns = fth_store_list_annotations(self->store, *(gint64 *)task_data, &error);
  if (anns == NULL)
    g_task_return_error(task, error);
  else
    g_task_return_pointer(task, anns, (GDestroyNotify)g_ptr_array_unref);
}

static void
show_class(FthItemView *self, GPtrArray *anns)
{
  const FthLabel *human = NULL, *model = NULL;
  double score = 0;

  for (guint i = 0; anns != NULL && i < anns->len; i++) {
    const FthAnnotation *ann = g_ptr_array_index(anns, i);
    if (ann->geom != FTH_GEOM_WHOLE)
      continue;
    if (ann->author == FTH_AUTHOR_HUMAN)
      human = find_label(self, ann->label_id);
    else if (model == NULL || ann->score > score) {
      model = find_label(self, ann->label_id);
      score = ann->score;
    }
  }
  g_autofree char *text = NULL;
  if (human != NULL)
    text = g_strdup(human->name);
  else if (model != NULL)
    /* TRANSLATORS: a model's suggested class and its confidence, e.g. "Coat? 87%" */
    text = g_strdup_printf(_("%s? %.0f%%"), model->name, score * 100.0);
  else
    text = g_strdup(_("Unlabeled"));
  gtk_label_set_text(self->class_label, text);
}

static void
annotations_listed(GObject *source, GAsyncResult *result, gpointer user_data)
{
  LoadTicket *ticket = user_data;
  FthItemView *self = ticket->view;
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) anns = g_task_propagate_pointer(G_TASK(result), &error);

  if (ticket->generation == self->generation) {
    if (anns == NULL)
      gtk_label_set_text(self->class_label, error->message);
    fth_image_canvas_set_annotations(self->canvas, anns, self->labels);
    show_class(self, anns);
    g_clear_pointer(&self->annotations, g_ptr_array_unref);
    self->annotations = g_steal_pointer(&anns);
    self->annotations_ready = TRUE;
    maybe_loaded(self);
  }
  ticket_free(ticket);
}

void
fth_item_view_reload_annotations(FthItemView *self)
{
  g_return_if_fail(FTH_IS_ITEM_VIEW(self));
  if (self->item == NULL)
    return;

  gint64 *item_id = g_new(gint64, 1);
  *item_id = fth_item_get_id(self->item);
  self->annotations_ready = FALSE;
  g_autoptr(GTask) task = g_task_new(self, NULL, annotations_listed, ticket_new(self));
  g_task_set_task_data(task, item_id, g_free);
  g_task_run_in_thread(task, list_in_thread);
}

void
fth_item_view_show(FthItemView *self, guint position)
{
  g_return_if_fail(FTH_IS_ITEM_VIEW(self));
  if (self->items == NULL)
    return;
  guint n = g_list_model_get_n_items(self->items);
  if (n == 0)
    return;

  self->position = MIN(position, n - 1);
  self->generation++;
  g_cancellable_cancel(self->cancellable);
  g_clear_object(&self->cancellable);
  self->cancellable = g_cancellable_new();
  g_clear_object(&self->item);
  self->item = g_list_model_get_item(self->items, self->position);
  self->image_ready = self->annotations_ready = FALSE;
  g_clear_pointer(&self->annotations, g_ptr_array_unref);

  g_autofree char *where = g_strdup_printf("%u / %u", self->position + 1, n);
  gtk_label_set_text(self->position_label, where);
  g_autofree char *title = fth_item_get_member(self->item) >= 0
                             ? g_strdup_printf("%s #%" G_GINT64_FORMAT,
                                               fth_item_get_path(self->item),
                                               fth_item_get_member(self->item))
                             : g_strdup(fth_item_get_path(self->item));
  gtk_label_set_text(self->title_label, title);
  gtk_label_set_text(self->class_label, "");

  fth_thumbnail_loader_load_async(self->images, self->item, self->cancellable, image_loaded,
                                  ticket_new(self));
  if (fth_item_get_kind(self->item) == FTH_ITEM_IMAGE && fth_item_get_member(self->item) < 0)
    start_preview(self);
  fth_item_view_reload_annotations(self);
}

gboolean
fth_item_view_is_loaded(FthItemView *self)
{
  g_return_val_if_fail(FTH_IS_ITEM_VIEW(self), FALSE);
  return self->item != NULL && self->image_ready && self->annotations_ready;
}

guint
fth_item_view_get_position(FthItemView *self)
{
  g_return_val_if_fail(FTH_IS_ITEM_VIEW(self), 0);
  return self->position;
}

FthItem *
fth_item_view_get_item(FthItemView *self)
{
  g_return_val_if_fail(FTH_IS_ITEM_VIEW(self), NULL);
  return self->item;
}

FthImageCanvas *
fth_item_view_get_canvas(FthItemView *self)
{
  g_return_val_if_fail(FTH_IS_ITEM_VIEW(self), NULL);
  return self->canvas;
}

/* ---- edits -------------------------------------------------------------------------------- */

static void
box_drawn(FthImageCanvas *canvas, double x, double y, double w, double h, gpointer user_data)
{
  FthItemView *self = FTH_ITEM_VIEW(user_data);
  if (self->item == NULL || self->history == NULL || self->draw_label == 0)
    return;

  g_autoptr(FthAnnotation) ann = fth_annotation_new();
  ann->item_id = fth_item_get_id(self->item);
  ann->label_id = self->draw_label;
  ann->geom = FTH_GEOM_BOX;
  ann->x = x;
  ann->y = y;
  ann->w = w;
  ann->h = h;
  ann->author = FTH_AUTHOR_HUMAN;
  fth_annotation_history_add(self->history, ann);
}

static void
polygon_drawn(FthImageCanvas *canvas, GVariant *points, gpointer user_data)
{
  FthItemView *self = FTH_ITEM_VIEW(user_data);
  if (self->item == NULL || self->history == NULL || self->draw_label == 0)
    return;

  gsize n = g_variant_n_children(points);
  g_autofree double *xy = g_new(double, 2 * n);
  for (gsize i = 0; i < n; i++)
    g_variant_get_child(points, i, "(dd)", &xy[2 * i], &xy[2 * i + 1]);
  g_autoptr(FthAnnotation) ann = fth_annotation_new();
  ann->item_id = fth_item_get_id(self->item);
  ann->label_id = self->draw_label;
  ann->author = FTH_AUTHOR_HUMAN;
  fth_annotation_set_points(ann, xy, (guint)n);
  fth_annotation_history_add(self->history, ann);
}

/* The canvas only knows the shapes it draws; the rest of a record comes from the store. */
typedef struct {
  gint64 id;
  gint64 label_id; /* 0: keep */
  gboolean reshape;
  double x, y, w, h;
  double *points; /* a polygon's new vertices, n_points (x, y) pairs; NULL: keep */
  guint n_points;
} BoxEdit;

static void
box_edit_free(BoxEdit *edit)
{
  g_free(edit->points);
  g_free(edit);
}

static void
read_box_in_thread(GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  FthItemView *self = source;
  BoxEdit *edit = task_data;
  GError *error = NULL;
  FthAnnotation *ann = fth_store_get_annotation(self->store, edit->id, &error);

  if (ann == NULL)
    g_task_return_error(task, error);
  else
    g_task_return_pointer(task, ann, (GDestroyNotify)fth_annotation_free);
}

static void
box_read(GObject *source, GAsyncResult *result, gpointer user_data)
{
  FthItemView *self = FTH_ITEM_VIEW(source);
  BoxEdit *edit = g_task_get_task_data(G_TASK(result));
  g_autoptr(GError) error = NULL;
  g_autoptr(FthAnnotation) ann = g_task_propagate_pointer(G_TASK(result), &error);

  if (ann == NULL || self->history == NULL)
    return;
  if (edit->label_id != 0)
    ann->label_id = edit->label_id;
  if (edit->reshape) {
    ann->x = edit->x;
    ann->y = edit->y;
    ann->w = edit->w;
    ann->h = edit->h;
  }
  if (edit->points != NULL)
    fth_annotation_set_points(ann, edit->points, edit->n_points);
  /* Editing a prediction makes it the user's. */
  ann->author = FTH_AUTHOR_HUMAN;
  ann->run_id = 0;
  ann->score = 1.0;
  fth_annotation_history_update(self->history, ann);
}

static void
edit_box(FthItemView *self, BoxEdit *edit)
{
  g_autoptr(GTask) task = g_task_new(self, NULL, box_read, NULL);
  g_task_set_task_data(task, edit, (GDestroyNotify)box_edit_free);
  g_task_run_in_thread(task, read_box_in_thread);
}

static void
box_changed(FthImageCanvas *canvas, gint64 id, double x, double y, double w, double h,
            gpointer user_data)
{
  BoxEdit *edit = g_new0(BoxEdit, 1);
  edit->id = id;
  edit->reshape = TRUE;
  edit->x = x;
  edit->y = y;
  edit->w = w;
  edit->h = h;
  edit_box(FTH_ITEM_VIEW(user_data), edit);
}

static void
polygon_changed(FthImageCanvas *canvas, gint64 id, GVariant *points, gpointer user_data)
{
  BoxEdit *edit = g_new0(BoxEdit, 1);
  edit->id = id;
  edit->n_points = (guint)g_variant_n_children(points);
  edit->points = g_new(double, 2 * edit->n_points);
  for (guint i = 0; i < edit->n_points; i++)
    g_variant_get_child(points, i, "(dd)", &edit->points[2 * i], &edit->points[2 * i + 1]);
  edit_box(FTH_ITEM_VIEW(user_data), edit);
}

void
fth_item_view_apply_label(FthItemView *self, gint64 label_id)
{
  g_return_if_fail(FTH_IS_ITEM_VIEW(self));
  if (self->item == NULL || self->history == NULL)
    return;

  self->draw_label = label_id;
  fth_image_canvas_set_draw_label(self->canvas, label_id);
  gint64 selected = fth_image_canvas_get_selected(self->canvas);
  if (selected != 0) {
    BoxEdit *edit = g_new0(BoxEdit, 1);
    edit->id = selected;
    edit->label_id = label_id;
    edit_box(self, edit);
  } else {
    fth_annotation_history_set_class(self->history, fth_item_get_id(self->item), label_id);
  }
}

gboolean
fth_item_view_accept_suggestion(FthItemView *self)
{
  g_return_val_if_fail(FTH_IS_ITEM_VIEW(self), FALSE);
  if (self->item == NULL || self->history == NULL || self->annotations == NULL)
    return FALSE;

  gint64 selected = fth_image_canvas_get_selected(self->canvas);
  const FthAnnotation *best = NULL;
  for (guint i = 0; i < self->annotations->len; i++) {
    const FthAnnotation *ann = g_ptr_array_index(self->annotations, i);
    /* Once the user gave a class, a suggested class has nothing left to offer. */
    if (selected == 0 && ann->geom == FTH_GEOM_WHOLE && ann->author == FTH_AUTHOR_HUMAN)
      return FALSE;
    if (ann->author != FTH_AUTHOR_MODEL)
      continue;
    if (selected != 0 ? ann->id == selected
                      : ann->geom == FTH_GEOM_WHOLE && (best == NULL || ann->score > best->score))
      best = ann;
  }
  if (best == NULL)
    return FALSE;

  if (best->geom == FTH_GEOM_WHOLE) {
    fth_annotation_history_set_class(self->history, best->item_id, best->label_id);
  } else {
    BoxEdit *edit = g_new0(BoxEdit, 1); /* no change but the author: the user's now */
    edit->id = best->id;
    edit_box(self, edit);
  }
  return TRUE;
}

gboolean
fth_item_view_delete_selected(FthItemView *self)
{
  g_return_val_if_fail(FTH_IS_ITEM_VIEW(self), FALSE);
  gint64 selected = fth_image_canvas_get_selected(self->canvas);
  if (selected == 0 || self->history == NULL)
    return FALSE;
  if (fth_image_canvas_delete_selected_vertex(self->canvas))
    return TRUE;
  fth_image_canvas_set_selected(self->canvas, 0);
  fth_annotation_history_remove(self->history, selected);
  return TRUE;
}

/* ---- the class ---------------------------------------------------------------------------- */

static void
fth_item_view_dispose(GObject *object)
{
  FthItemView *self = FTH_ITEM_VIEW(object);

  g_cancellable_cancel(self->cancellable);
  g_clear_object(&self->cancellable);
  g_clear_object(&self->item);
  g_clear_object(&self->items);
  g_clear_object(&self->history);
  g_clear_object(&self->images);
  g_clear_object(&self->store);
  g_clear_pointer(&self->labels, g_ptr_array_unref);
  g_clear_pointer(&self->annotations, g_ptr_array_unref);
  gtk_widget_dispose_template(GTK_WIDGET(object), FTH_TYPE_ITEM_VIEW);
  /* dispose_template() unparents only bound children; the box holding them is not one. */
  GtkWidget *child;
  while ((child = gtk_widget_get_first_child(GTK_WIDGET(object))) != NULL)
    gtk_widget_unparent(child);
  G_OBJECT_CLASS(fth_item_view_parent_class)->dispose(object);
}

static void
fth_item_view_class_init(FthItemViewClass *klass)
{
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);

  G_OBJECT_CLASS(klass)->dispose = fth_item_view_dispose;

  /* The shown item's picture and annotations are on screen. */
  signals[SIGNAL_LOADED] = g_signal_new("loaded", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST,
                                        0, NULL, NULL, NULL, G_TYPE_NONE, 0);

  g_type_ensure(FTH_TYPE_IMAGE_CANVAS);
  gtk_widget_class_set_template_from_resource(widget_class,
                                              "/io/github/fathom/Workbench/fth-item-view.ui");
  gtk_widget_class_bind_template_child(widget_class, FthItemView, position_label);
  gtk_widget_class_bind_template_child(widget_class, FthItemView, title_label);
  gtk_widget_class_bind_template_child(widget_class, FthItemView, class_label);
  gtk_widget_class_bind_template_child(widget_class, FthItemView, canvas);
  gtk_widget_class_bind_template_child(widget_class, FthItemView, content_stack);
  gtk_widget_class_bind_template_child(widget_class, FthItemView, error_page);
  gtk_widget_class_bind_template_callback(widget_class, box_drawn);
  gtk_widget_class_bind_template_callback(widget_class, box_changed);
  gtk_widget_class_bind_template_callback(widget_class, polygon_drawn);
  gtk_widget_class_bind_template_callback(widget_class, polygon_changed);
  gtk_widget_class_set_layout_manager_type(widget_class, GTK_TYPE_BIN_LAYOUT);
}

static void
fth_item_view_init(FthItemView *self)
{
  gtk_widget_init_template(GTK_WIDGET(self));
}
