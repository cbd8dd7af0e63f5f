/* fth-item-cell.c: a recyclable grid cell; a thumbnail that fails to decode becomes an icon
 * whose tooltip says why, so a broken file shows as such and the rest of the grid works. */
#include "fth-item-cell.h"

struct _FthItemCell {
  GtkWidget parent_instance;

  GtkPicture *picture;
  GtkLabel *caption;

  FthItem *item;
  GCancellable *cancellable;
  gboolean loaded;
};

G_DEFINE_FINAL_TYPE(FthItemCell, fth_item_cell, GTK_TYPE_WIDGET)

GtkWidget *
fth_item_cell_new(void)
{
  return g_object_new(FTH_TYPE_ITEM_CELL, NULL);
}

void
fth_item_cell_set_size(FthItemCell *self, int size)
{
  g_return_if_fail(FTH_IS_ITEM_CELL(self));
  gtk_widget_set_size_request(GTK_WIDGET(self->picture), size, size);
}

static void
show_icon(FthItemCell *self, const char *icon_name, const char *tooltip)
{
  GtkIconTheme *theme = gtk_icon_theme_get_for_display(gtk_widget_get_display(GTK_WIDGET(self)));
  g_autoptr(GtkIconPaintable) icon = gtk_icon_theme_lookup_icon(
    theme, icon_name, NULL, 48, gtk_widget_get_scale_factor(GTK_WIDGET(self)),
    gtk_widget_get_direction(GTK_WIDGET(self)), 0);

  gtk_picture_set_paintable(self->picture, GDK_PAINTABLE(icon));
  gtk_widget_set_tooltip_text(GTK_WIDGET(self), tooltip);
  self->loaded = TRUE;
}

static const char *
icon_for_kind(FthItemKind kind)
{
  switch (kind) {
  case FTH_ITEM_AUDIO:
    return "audio-x-generic-symbolic";
  case FTH_ITEM_TEXT:
    return "text-x-generic-symbolic";
  case FTH_ITEM_IMAGE:
  case FTH_ITEM_ANY:
  default:
    return "image-missing-symbolic";
  }
}

static void
thumbnail_loaded(GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(FthItemCell) self = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GdkTexture) texture =
    fth_thumbnail_loader_load_finish(FTH_THUMBNAIL_LOADER(source), result, &error);

  if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  g_clear_object(&self->cancellable);
  if (texture != NULL) {
    gtk_picture_set_paintable(self->picture, GDK_PAINTABLE(texture));
    self->loaded = TRUE;
  } else if (self->item != NULL) {
    show_icon(self, icon_for_kind(fth_item_get_kind(self->item)), error->message);
  }
}

static char *
describe_item(FthItem *item)
{
  if (fth_item_get_member(item) >= 0)
    return g_strdup_printf("%s #%" G_GINT64_FORMAT, fth_item_get_path(item),
                           fth_item_get_member(item));
  return g_strdup(fth_item_get_path(item));
}

void
fth_item_cell_bind(FthItemCell *self, FthItem *item, FthThumbnailLoader *loader)
{
  g_return_if_fail(FTH_IS_ITEM_CELL(self));
  g_return_if_fail(FTH_IS_ITEM(item));

  fth_item_cell_unbind(self);
  self->item = g_object_ref(item);

  const char *label = fth_item_get_class_label(item);
  g_autofree char *fallback = NULL;
  if (label == NULL)
    label = fallback = g_strdup_printf("#%" G_GINT64_FORMAT, fth_item_get_id(item));
  gtk_label_set_text(self->caption, label);
  g_autofree char *description = describe_item(item);
  gtk_widget_set_tooltip_text(GTK_WIDGET(self), description);

  if (fth_item_get_kind(item) != FTH_ITEM_IMAGE) {
    show_icon(self, icon_for_kind(fth_item_get_kind(item)), description);
    return;
  }

  g_autoptr(GdkTexture) cached = fth_thumbnail_loader_lookup(loader, item);
  if (cached != NULL) {
    gtk_picture_set_paintable(self->picture, GDK_PAINTABLE(cached));
    self->loaded = TRUE;
    return;
  }
  self->cancellable = g_cancellable_new();
  fth_thumbnail_loader_load_async(loader, item, self->cancellable, thumbnail_loaded,
                                  g_object_ref(self));
}

void
fth_item_cell_unbind(FthItemCell *self)
{
  g_return_if_fail(FTH_IS_ITEM_CELL(self));

  if (self->cancellable != NULL) {
    g_cancellable_cancel(self->cancellable);
    g_clear_object(&self->cancellable);
  }
  g_clear_object(&self->item);
  gtk_picture_set_paintable(self->picture, NULL);
  gtk_label_set_text(self->caption, "");
  gtk_widget_set_tooltip_text(GTK_WIDGET(self), NULL);
  self->loaded = FALSE;
}

FthItem *
fth_item_cell_get_item(FthItemCell *self)
{
  g_return_val_if_fail(FTH_IS_ITEM_CELL(self), NULL);
  return self->item;
}

gboolean
fth_item_cell_is_loaded(FthItemCell *self)
{
  g_return_val_if_fail(FTH_IS_ITEM_CELL(self), FALSE);
  return self->loaded;
}

static void
fth_item_cell_dispose(GObject *object)
{
  FthItemCell *self = FTH_ITEM_CELL(object);

  if (self->cancellable != NULL)
    g_cancellable_cancel(self->cancellable);
  g_clear_object(&self->cancellable);
  g_clear_object(&self->item);
  gtk_widget_dispose_template(GTK_WIDGET(object), FTH_TYPE_ITEM_CELL);
  /* dispose_template() unparents only bound children; the box holding them is not one. */
  GtkWidget *child;
  while ((child = gtk_widget_get_first_child(GTK_WIDGET(object))) != NULL)
    gtk_widget_unparent(child);
  G_OBJECT_CLASS(fth_item_cell_parent_class)->dispose(object);
}

static void
fth_item_cell_class_init(FthItemCellClass *klass)
{
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);

  G_OBJECT_CLASS(klass)->dispose = fth_item_cell_dispose;
  gtk_widget_class_set_template_from_resource(widget_class,
                                              "/io/github/fathom/Workbench/fth-item-cell.ui");
  gtk_widget_class_bind_template_child(widget_class, FthItemCell, picture);
  gtk_widget_class_bind_template_child(widget_class, FthItemCell, caption);
  gtk_widget_class_set_layout_manager_type(widget_class, GTK_TYPE_BIN_LAYOUT);
}

static void
fth_item_cell_init(FthItemCell *self)
{
  gtk_widget_init_template(GTK_WIDGET(self));
}
