/* fth-color-swatch.c: draws its color with a thin outline so white and black swatches show
 * on both light and dark backgrounds. */
#include "fth-color-swatch.h"

#define SWATCH_SIZE 16

struct _FthColorSwatch {
  GtkWidget parent_instance;
  GdkRGBA color;
};

G_DEFINE_FINAL_TYPE(FthColorSwatch, fth_color_swatch, GTK_TYPE_WIDGET)

enum { PROP_0, PROP_COLOR, N_PROPS };
static GParamSpec *props[N_PROPS];

GtkWidget *
fth_color_swatch_new(const GdkRGBA *color)
{
  return g_object_new(FTH_TYPE_COLOR_SWATCH, "color", color, NULL);
}

void
fth_color_swatch_set_color(FthColorSwatch *self, const GdkRGBA *color)
{
  g_return_if_fail(FTH_IS_COLOR_SWATCH(self));
  g_return_if_fail(color != NULL);
  if (gdk_rgba_equal(&self->color, color))
    return;
  self->color = *color;
  gtk_widget_queue_draw(GTK_WIDGET(self));
  g_object_notify_by_pspec(G_OBJECT(self), props[PROP_COLOR]);
}

const GdkRGBA *
fth_color_swatch_get_color(FthColorSwatch *self)
{
  g_return_val_if_fail(FTH_IS_COLOR_SWATCH(self), NULL);
  return &self->color;
}

static void
fth_color_swatch_measure(GtkWidget *widget, GtkOrientation orientation, int for_size,
                         int *minimum, int *natural, int *minimum_baseline,
                         int *natural_baseline)
{
  *minimum = *natural = SWATCH_SIZE;
}

static void
fth_color_swatch_snapshot(GtkWidget *widget, GtkSnapshot *snapshot)
{
  FthColorSwatch *self = FTH_COLOR_SWATCH(widget);
  int width = gtk_widget_get_width(widget);
  int height = gtk_widget_get_height(widget);
  int side = MIN(width, height);
  GskRoundedRect rect;
  GdkRGBA outline = { 0, 0, 0, 0.25 };
  float outline_widths[4] = { 1, 1, 1, 1 };
  GdkRGBA outline_colors[4] = { outline, outline, outline, outline };

  gsk_rounded_rect_init_from_rect(&rect,
                                  &GRAPHENE_RECT_INIT((width - side) / 2.0f,
                                                      (height - side) / 2.0f, side, side),
                                  side / 4.0f);
  gtk_snapshot_push_rounded_clip(snapshot, &rect);
  gtk_snapshot_append_color(snapshot, &self->color, &rect.bounds);
  gtk_snapshot_pop(snapshot);
  gtk_snapshot_append_border(snapshot, &rect, outline_widths, outline_colors);
}

static void
fth_color_swatch_get_property(GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  FthColorSwatch *self = FTH_COLOR_SWATCH(object);

  switch (prop_id) {
  case PROP_COLOR:
    g_value_set_boxed(value, &self->color);
    break;
  default:
    G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
  }
}

static void
fth_color_swatch_set_property(GObject *object, guint prop_id, const GValue *value,
                              GParamSpec *pspec)
{
  FthColorSwatch *self = FTH_COLOR_SWATCH(object);

  switch (prop_id) {
  case PROP_COLOR:
    if (g_value_get_boxed(value) != NULL)
      fth_color_swatch_set_color(self, g_value_get_boxed(value));
    break;
  default:
    G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
  }
}

static void
fth_color_swatch_class_init(FthColorSwatchClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS(klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);

  object_class->get_property = fth_color_swatch_get_property;
  object_class->set_property = fth_color_swatch_set_property;
  widget_class->measure = fth_color_swatch_measure;
  widget_class->snapshot = fth_color_swatch_snapshot;

  props[PROP_COLOR] = g_param_spec_boxed("color", NULL, NULL, GDK_TYPE_RGBA,
                                         G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY |
                                           G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties(object_class, N_PROPS, props);
  gtk_widget_class_set_css_name(widget_class, "swatch");
}

static void
fth_color_swatch_init(FthColorSwatch *self)
{
  self->color = (GdkRGBA){ 0.5f, 0.5f, 0.5f, 1.0f };
  gtk_widget_set_valign(GTK_WIDGET(self), GTK_ALIGN_CENTER);
}
