/* fth-label-dialog.c: builds the label dialog; the fields carry widget names (label-name,
 * label-hotkey, label-color) so styles and tests can find them. */
#include "fth-label-dialog.h"

#include <glib/gi18n.h>

static GtkWidget *
add_field(GtkGrid *grid, int row, const char *title, GtkWidget *field)
{
  GtkWidget *caption = gtk_label_new(title);
  gtk_label_set_xalign(GTK_LABEL(caption), 1.0f);
  gtk_widget_add_css_class(caption, "dim-label");
  gtk_grid_attach(grid, caption, 0, row, 1, 1);
  gtk_grid_attach(grid, field, 1, row, 1, 1);
  return field;
}

static void
color_set(GtkColorButton *button, gpointer user_data)
{
  g_object_set_data(G_OBJECT(button), "fth-color-unset", NULL);
}

AdwMessageDialog *
fth_label_dialog_new(GtkWindow *parent, const FthLabel *label)
{
  AdwMessageDialog *dialog = ADW_MESSAGE_DIALOG(
    adw_message_dialog_new(parent, label != NULL ? _("Edit Label") : _("New Label"), NULL));
  GtkGrid *grid = GTK_GRID(gtk_grid_new());
  gtk_grid_set_row_spacing(grid, 12);
  gtk_grid_set_column_spacing(grid, 12);

  GtkWidget *name = gtk_entry_new();
  gtk_widget_set_name(name, "label-name");
  gtk_widget_set_hexpand(name, TRUE);
  gtk_entry_set_activates_default(GTK_ENTRY(name), TRUE);
  add_field(grid, 0, _("Name"), name);

  GtkWidget *hotkey = gtk_entry_new();
  gtk_widget_set_name(hotkey, "label-hotkey");
  gtk_entry_set_max_length(GTK_ENTRY(hotkey), 1);
  gtk_editable_set_width_chars(GTK_EDITABLE(hotkey), 3);
  gtk_widget_set_halign(hotkey, GTK_ALIGN_START);
  gtk_entry_set_activates_default(GTK_ENTRY(hotkey), TRUE);
  add_field(grid, 1, _("Hotkey"), hotkey);

  GtkWidget *color = gtk_color_button_new();
  gtk_widget_set_name(color, "label-color");
  gtk_widget_set_halign(color, GTK_ALIGN_START);
  add_field(grid, 2, _("Color"), color);

  if (label != NULL) {
    GdkRGBA rgba;
    gtk_editable_set_text(GTK_EDITABLE(name), label->name);
    gtk_editable_set_text(GTK_EDITABLE(hotkey), label->hotkey != NULL ? label->hotkey : "");
    if (label->color != NULL && gdk_rgba_parse(&rgba, label->color))
      gtk_color_chooser_set_rgba(GTK_COLOR_CHOOSER(color), &rgba);
  } else {
    /* A new label starts in the store's next palette color unless the user picks one. */
    g_object_set_data(G_OBJECT(color), "fth-color-unset", GINT_TO_POINTER(TRUE));
    g_signal_connect(color, "color-set", G_CALLBACK(color_set), NULL);
  }

  adw_message_dialog_set_extra_child(dialog, GTK_WIDGET(grid));
  adw_message_dialog_add_response(dialog, "cancel", _("_Cancel"));
  if (label != NULL) {
    adw_message_dialog_add_response(dialog, "remove", _("_Remove"));
    adw_message_dialog_set_response_appearance(dialog, "remove", ADW_RESPONSE_DESTRUCTIVE);
    adw_message_dialog_set_body(dialog, _("Removing a label also removes its annotations."));
  }
  adw_message_dialog_add_response(dialog, "save", _("_Save"));
  adw_message_dialog_set_response_appearance(dialog, "save", ADW_RESPONSE_SUGGESTED);
  adw_message_dialog_set_default_response(dialog, "save");
  adw_message_dialog_set_close_response(dialog, "cancel");

  gint64 *id = g_new(gint64, 1);
  *id = label != NULL ? label->id : 0;
  g_object_set_data_full(G_OBJECT(dialog), "fth-label-id", id, g_free);
  return dialog;
}

gint64
fth_label_dialog_get_label_id(AdwMessageDialog *dialog)
{
  const gint64 *id = g_object_get_data(G_OBJECT(dialog), "fth-label-id");
  return id != NULL ? *id : 0;
}

static GtkWidget *
find_named(GtkWidget *root, const char *name)
{
  if (g_strcmp0(gtk_widget_get_name(root), name) == 0)
    return root;
  for (GtkWidget *child = gtk_widget_get_first_child(root); child != NULL;
       child = gtk_widget_get_next_sibling(child)) {
    GtkWidget *found = find_named(child, name);
    if (found != NULL)
      return found;
  }
  return NULL;
}

void
fth_label_dialog_get_values(AdwMessageDialog *dialog, char **name, char **color, char **hotkey)
{
  GtkWidget *extra = adw_message_dialog_get_extra_child(dialog);
  GtkWidget *color_button = find_named(extra, "label-color");
  const char *hotkey_text = gtk_editable_get_text(GTK_EDITABLE(find_named(extra, "label-hotkey")));

  *name = g_strstrip(g_strdup(gtk_editable_get_text(GTK_EDITABLE(find_named(extra, "label-name")))));
  *hotkey = hotkey_text[0] != '\0' ? g_strdup(hotkey_text) : NULL;
  *color = NULL;
  if (g_object_get_data(G_OBJECT(color_button), "fth-color-unset") == NULL) {
    GdkRGBA rgba;
    gtk_color_chooser_get_rgba(GTK_COLOR_CHOOSER(color_button), &rgba);
    *color = g_strdup_printf("#%02x%02x%02x", (int)(rgba.red * 255 + 0.5),
                             (int)(rgba.green * 255 + 0.5), (int)(rgba.blue * 255 + 0.5));
  }
}
