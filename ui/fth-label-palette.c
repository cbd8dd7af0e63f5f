/* fth-label-palette.c: one GtkListBox row per label. Labels are few (tens), so plain rows
 * rebuilt on change are simpler than a list model and cost nothing. */
#include "fth-label-palette.h"
#include "fth-label-color.h"

#include "fth-color-swatch.h"

#include <glib/gi18n.h>

struct _FthLabelPalette {
  GtkWidget parent_instance;
  GtkListBox *list;
  guint n_labels;
};

G_DEFINE_FINAL_TYPE(FthLabelPalette, fth_label_palette, GTK_TYPE_WIDGET)

enum { SIGNAL_LABEL_ACTIVATED, N_SIGNALS };
static guint signals[N_SIGNALS];

static void
row_activated(GtkListBox *list, GtkListBoxRow *row, gpointer user_data)
{
  const gint64 *id = g_object_get_data(G_OBJECT(row), "fth-label-id");
  if (id != NULL)
    g_signal_emit(user_data, signals[SIGNAL_LABEL_ACTIVATED], 0, *id);
}

GtkWidget *
fth_label_palette_new(void)
{
  return g_object_new(FTH_TYPE_LABEL_PALETTE, NULL);
}

static GtkWidget *
create_row(const FthLabel *label, gint64 count, gboolean show_count)
{
  GtkWidget *box = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 10);
  GdkRGBA color;

  fth_label_get_rgba(label, &color);
  gtk_box_append(GTK_BOX(box), fth_color_swatch_new(&color));

  GtkWidget *name = gtk_label_new(label->name);
  gtk_label_set_xalign(GTK_LABEL(name), 0);
  gtk_label_set_ellipsize(GTK_LABEL(name), PANGO_ELLIPSIZE_END);
  gtk_widget_set_hexpand(name, TRUE);
  gtk_box_append(GTK_BOX(box), name);

  if (show_count) {
    g_autofree char *text = g_strdup_printf("%" G_GINT64_FORMAT, count);
    GtkWidget *count_label = gtk_label_new(text);
    gtk_widget_add_css_class(count_label, "dim-label");
    gtk_widget_add_css_class(count_label, "numeric");
    gtk_box_append(GTK_BOX(box), count_label);
  }

  if (label->hotkey != NULL && label->hotkey[0] != '\0') {
    GtkWidget *hotkey = gtk_label_new(label->hotkey);
    g_autofree char *tooltip = g_strdup_printf(_("Hotkey: %s"), label->hotkey);
    gtk_widget_add_css_class(hotkey, "label-hotkey");
    gtk_widget_set_tooltip_text(hotkey, tooltip);
    gtk_box_append(GTK_BOX(box), hotkey);
  }

  GtkWidget *row = gtk_list_box_row_new();
  gtk_list_box_row_set_child(GTK_LIST_BOX_ROW(row), box);
  gint64 *id = g_new(gint64, 1);
  *id = label->id;
  g_object_set_data_full(G_OBJECT(row), "fth-label-id", id, g_free);
  return row;
}

void
fth_label_palette_set_labels(FthLabelPalette *self, GPtrArray *labels, GArray *counts)
{
  g_return_if_fail(FTH_IS_LABEL_PALETTE(self));

  GtkWidget *child;
  while ((child = gtk_widget_get_first_child(GTK_WIDGET(self->list))) != NULL)
    gtk_list_box_remove(self->list, child);

  self->n_labels = labels != NULL ? labels->len : 0;
  for (guint i = 0; i < self->n_labels; i++) {
    const FthLabel *label = g_ptr_array_index(labels, i);
    gint64 count = 0;
    if (counts != NULL) {
      for (guint j = 0; j < counts->len; j++) {
        const FthLabelCount *c = &g_array_index(counts, FthLabelCount, j);
        if (c->label_id == label->id)
          count = c->count;
      }
    }
    gtk_list_box_append(self->list, create_row(label, count, counts != NULL));
  }
}

guint
fth_label_palette_get_n_labels(FthLabelPalette *self)
{
  g_return_val_if_fail(FTH_IS_LABEL_PALETTE(self), 0);
  return self->n_labels;
}

static void
fth_label_palette_dispose(GObject *object)
{
  gtk_widget_dispose_template(GTK_WIDGET(object), FTH_TYPE_LABEL_PALETTE);
  G_OBJECT_CLASS(fth_label_palette_parent_class)->dispose(object);
}

static void
fth_label_palette_class_init(FthLabelPaletteClass *klass)
{
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);

  G_OBJECT_CLASS(klass)->dispose = fth_label_palette_dispose;
  gtk_widget_class_set_template_from_resource(widget_class,
                                              "/io/github/fathom/Workbench/fth-label-palette.ui");
  gtk_widget_class_bind_template_child(widget_class, FthLabelPalette, list);
  gtk_widget_class_bind_template_callback(widget_class, row_activated);

  /* A label's row was clicked (or activated with the keyboard): its id. */
  signals[SIGNAL_LABEL_ACTIVATED] = g_signal_new("label-activated", G_TYPE_FROM_CLASS(klass),
                                                 G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                                 G_TYPE_NONE, 1, G_TYPE_INT64);
  gtk_widget_class_set_layout_manager_type(widget_class, GTK_TYPE_BIN_LAYOUT);
}

static void
fth_label_palette_init(FthLabelPalette *self)
{
  gtk_widget_init_template(GTK_WIDGET(self));
}
