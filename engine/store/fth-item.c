/* fth-item.c: FthItem, one row of FthItemList: an immutable snapshot of an item. */
#include "fth-config.h"

#include "fth-item-private.h"

struct _FthItem {
  GObject parent_instance;
  FthItemRecord *record;
  char *class_label;
};

G_DEFINE_TYPE(FthItem, fth_item, G_TYPE_OBJECT)

enum {
  PROP_0,
  PROP_ID,
  PROP_KIND,
  PROP_PATH,
  PROP_MEMBER,
  PROP_SPLIT,
  PROP_WIDTH,
  PROP_HEIGHT,
  PROP_TEXT,
  PROP_CLASS_LABEL,
  N_PROPS
};

static GParamSpec *props[N_PROPS];

static void
fth_item_get_property(GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  FthItem *self = FTH_ITEM(object);
  switch (prop_id) {
  case PROP_ID:
    g_value_set_int64(value, self->record->id);
    break;
  case PROP_KIND:
    g_value_set_int(value, self->record->kind);
    break;
  case PROP_PATH:
    g_value_set_string(value, self->record->path);
    break;
  case PROP_MEMBER:
    g_value_set_int64(value, self->record->member);
    break;
  case PROP_SPLIT:
    g_value_set_int(value, self->record->split);
    break;
  case PROP_WIDTH:
    g_value_set_int(value, self->record->width);
    break;
  case PROP_HEIGHT:
    g_value_set_int(value, self->record->height);
    break;
  case PROP_TEXT:
    g_value_set_string(value, self->record->text);
    break;
  case PROP_CLASS_LABEL:
    g_value_set_string(value, self->class_label);
    break;
  default:
    G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
  }
}

static void
fth_item_finalize(GObject *object)
{
  FthItem *self = FTH_ITEM(object);
  fth_item_record_free(self->record);
  g_free(self->class_label);
  G_OBJECT_CLASS(fth_item_parent_class)->finalize(object);
}

static void
fth_item_class_init(FthItemClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS(klass);
  object_class->get_property = fth_item_get_property;
  object_class->finalize = fth_item_finalize;

  const GParamFlags flags = G_PARAM_READABLE | G_PARAM_STATIC_STRINGS;
  props[PROP_ID] = g_param_spec_int64("id", NULL, NULL, 0, G_MAXINT64, 0, flags);
  props[PROP_KIND] = g_param_spec_int("kind", NULL, NULL, 0, FTH_ITEM_TEXT, 0, flags);
  props[PROP_PATH] = g_param_spec_string("path", NULL, NULL, NULL, flags);
  props[PROP_MEMBER] = g_param_spec_int64("member", NULL, NULL, -1, G_MAXINT64, -1, flags);
  props[PROP_SPLIT] = g_param_spec_int("split", NULL, NULL, 0, FTH_SPLIT_TEST, 0, flags);
  props[PROP_WIDTH] = g_param_spec_int("width", NULL, NULL, 0, G_MAXINT, 0, flags);
  props[PROP_HEIGHT] = g_param_spec_int("height", NULL, NULL, 0, G_MAXINT, 0, flags);
  props[PROP_TEXT] = g_param_spec_string("text", NULL, NULL, NULL, flags);
  props[PROP_CLASS_LABEL] = g_param_spec_string("class-label", NULL, NULL, NULL, flags);
  g_object_class_install_properties(object_class, N_PROPS, props);
}

static void
fth_item_init(FthItem *self)
{
}

FthItem *
fth_item_new_take(FthItemRecord *record, char *class_label)
{
  FthItem *self = g_object_new(FTH_TYPE_ITEM, NULL);
  self->record = record;
  self->class_label = class_label;
  return self;
}

gint64
fth_item_get_id(FthItem *item)
{
  g_return_val_if_fail(FTH_IS_ITEM(item), 0);
  return item->record->id;
}

FthItemKind
fth_item_get_kind(FthItem *item)
{
  g_return_val_if_fail(FTH_IS_ITEM(item), FTH_ITEM_ANY);
  return item->record->kind;
}

const char *
fth_item_get_path(FthItem *item)
{
  g_return_val_if_fail(FTH_IS_ITEM(item), NULL);
  return item->record->path;
}

gint64
fth_item_get_member(FthItem *item)
{
  g_return_val_if_fail(FTH_IS_ITEM(item), -1);
  return item->record->member;
}

FthSplit
fth_item_get_split(FthItem *item)
{
  g_return_val_if_fail(FTH_IS_ITEM(item), FTH_SPLIT_NONE);
  return item->record->split;
}

int
fth_item_get_width(FthItem *item)
{
  g_return_val_if_fail(FTH_IS_ITEM(item), 0);
  return item->record->width;
}

int
fth_item_get_height(FthItem *item)
{
  g_return_val_if_fail(FTH_IS_ITEM(item), 0);
  return item->record->height;
}

const char *
fth_item_get_text(FthItem *item)
{
  g_return_val_if_fail(FTH_IS_ITEM(item), NULL);
  return item->record->text;
}

const char *
fth_item_get_class_label(FthItem *item)
{
  g_return_val_if_fail(FTH_IS_ITEM(item), NULL);
  return item->class_label;
}
