#include "fth-label-color.h"

const FthLabel *
fth_labels_find(GPtrArray *labels, gint64 id)
{
  for (guint i = 0; labels != NULL && i < labels->len; i++) {
    const FthLabel *label = g_ptr_array_index(labels, i);
    if (label->id == id)
      return label;
  }
  return NULL;
}

void
fth_label_get_rgba(const FthLabel *label, GdkRGBA *rgba)
{
  if (label == NULL || label->color == NULL || !gdk_rgba_parse(rgba, label->color))
    *rgba = (GdkRGBA){ 0.5f, 0.5f, 0.5f, 1.0f };
}
