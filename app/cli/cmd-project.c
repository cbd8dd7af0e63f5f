/* fathom new, fathom info. */
#include "cli.h"

#include <fathom/export.h>
#include <json-glib/json-glib.h>
#include <stdio.h>

int
fth_cli_new(int argc, char **argv)
{
  char *name = NULL;
  const GOptionEntry entries[] = {
    { "name", 'n', 0, G_OPTION_ARG_STRING, &name, "Project name (default: the folder's name)",
      "NAME" },
    { NULL },
  };
  if (!fth_cli_parse_options("new", "DIR", "Creates a project (DIR/fathom.db); DIR is created "
                             "when missing and must not hold a project yet.", NULL, entries,
                             &argc, &argv))
    return FTH_EXIT_USAGE;
  g_autofree char *name_owned = name;
  if (argc != 2)
    return fth_cli_usage_error("new", argc < 2 ? "missing DIR" : "too many arguments");
  g_autoptr(GError) error = NULL;
  g_autoptr(FthStore) store = fth_store_create(argv[1], &error);
  if (!store || (name && !fth_store_set_name(store, name, &error)))
    return fth_cli_fail_error(error);
  g_autofree char *stored_name = fth_store_get_name(store, NULL);
  printf("Created project “%s” in %s\n", stored_name ? stored_name : "", fth_store_get_dir(store));
  return FTH_EXIT_OK;
}

static const char *
label_kind_name(FthLabelKind kind)
{
  switch (kind) {
  case FTH_LABEL_CLASS: return "class";
  case FTH_LABEL_REGION: return "region";
  case FTH_LABEL_SEGMENT: return "segment";
  case FTH_LABEL_SPAN: return "span";
  default: return "any";
  }
}

gboolean
fth_cli_print_info(FthStore *store, gboolean json, GError **error)
{
  static const FthItemKind kinds[] = { FTH_ITEM_IMAGE, FTH_ITEM_AUDIO, FTH_ITEM_TEXT };
  static const FthSplit splits[] = { FTH_SPLIT_NONE, FTH_SPLIT_TRAIN, FTH_SPLIT_VAL,
                                     FTH_SPLIT_TEST };
  gint64 total = 0, by_kind[G_N_ELEMENTS(kinds)], by_split[G_N_ELEMENTS(splits)];
  if (!fth_store_count_items(store, NULL, &total, error))
    return FALSE;
  for (gsize i = 0; i < G_N_ELEMENTS(kinds); i++) {
    FthItemFilter f = FTH_ITEM_FILTER_INIT;
    f.kind = kinds[i];
    if (!fth_store_count_items(store, &f, &by_kind[i], error))
      return FALSE;
  }
  for (gsize i = 0; i < G_N_ELEMENTS(splits); i++) {
    FthItemFilter f = FTH_ITEM_FILTER_INIT;
    f.split = splits[i];
    if (!fth_store_count_items(store, &f, &by_split[i], error))
      return FALSE;
  }
  g_autoptr(GPtrArray) labels = fth_store_list_labels(store, error);
  if (!labels)
    return FALSE;
  g_autoptr(GArray) counts = fth_store_count_per_label(store, FTH_AUTHOR_ANY, error);
  if (!counts)
    return FALSE;
  g_autofree char *name = fth_store_get_name(store, error);
  if (!name && error && *error)
    return FALSE;

  if (json) {
    g_autoptr(JsonBuilder) b = json_builder_new();
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "name");
    json_builder_add_string_value(b, name ? name : "");
    json_builder_set_member_name(b, "dir");
    json_builder_add_string_value(b, fth_store_get_dir(store));
    json_builder_set_member_name(b, "items");
    json_builder_add_int_value(b, total);
    json_builder_set_member_name(b, "kinds");
    json_builder_begin_object(b);
    for (gsize i = 0; i < G_N_ELEMENTS(kinds); i++) {
      json_builder_set_member_name(b, fth_item_kind_to_string(kinds[i]));
      json_builder_add_int_value(b, by_kind[i]);
    }
    json_builder_end_object(b);
    json_builder_set_member_name(b, "splits");
    json_builder_begin_object(b);
    for (gsize i = 0; i < G_N_ELEMENTS(splits); i++) {
      json_builder_set_member_name(b, fth_split_to_string(splits[i]));
      json_builder_add_int_value(b, by_split[i]);
    }
    json_builder_end_object(b);
    json_builder_set_member_name(b, "labels");
    json_builder_begin_array(b);
    for (guint i = 0; i < labels->len; i++) {
      FthLabel *l = g_ptr_array_index(labels, i);
      gint64 n = 0;
      for (guint c = 0; c < counts->len; c++)
        if (g_array_index(counts, FthLabelCount, c).label_id == l->id)
          n = g_array_index(counts, FthLabelCount, c).count;
      json_builder_begin_object(b);
      json_builder_set_member_name(b, "name");
      json_builder_add_string_value(b, l->name);
      json_builder_set_member_name(b, "color");
      json_builder_add_string_value(b, l->color);
      json_builder_set_member_name(b, "hotkey");
      if (l->hotkey)
        json_builder_add_string_value(b, l->hotkey);
      else
        json_builder_add_null_value(b);
      json_builder_set_member_name(b, "kind");
      json_builder_add_string_value(b, label_kind_name(l->kind));
      json_builder_set_member_name(b, "annotations");
      json_builder_add_int_value(b, n);
      json_builder_end_object(b);
    }
    json_builder_end_array(b);
    json_builder_end_object(b);
    g_autoptr(JsonNode) root = json_builder_get_root(b);
    g_autofree char *text = json_to_string(root, FALSE);
    printf("%s\n", text);
    return TRUE;
  }

  printf("Project  %s\nFolder   %s\nItems    %" G_GINT64_FORMAT "\n", name ? name : "",
         fth_store_get_dir(store), total);
  for (gsize i = 0; i < G_N_ELEMENTS(kinds); i++)
    printf("  %-8s %10" G_GINT64_FORMAT "\n", fth_item_kind_to_string(kinds[i]), by_kind[i]);
  printf("Splits\n");
  for (gsize i = 0; i < G_N_ELEMENTS(splits); i++)
    printf("  %-8s %10" G_GINT64_FORMAT "\n", fth_split_to_string(splits[i]), by_split[i]);
  printf("Labels   %u (annotations each)\n", labels->len);
  for (guint i = 0; i < labels->len; i++) {
    FthLabel *l = g_ptr_array_index(labels, i);
    gint64 n = 0;
    for (guint c = 0; c < counts->len; c++)
      if (g_array_index(counts, FthLabelCount, c).label_id == l->id)
        n = g_array_index(counts, FthLabelCount, c).count;
    printf("  %-20s %10" G_GINT64_FORMAT "\n", l->name, n);
  }
  return TRUE;
}

int
fth_cli_info(int argc, char **argv)
{
  gboolean json = FALSE;
  const GOptionEntry entries[] = {
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print one JSON object", NULL },
    { NULL },
  };
  if (!fth_cli_parse_options("info", "DIR", "Prints the project's counts of items per kind and "
                             "split, and of annotations per label.", NULL, entries, &argc, &argv))
    return FTH_EXIT_USAGE;
  if (argc != 2)
    return fth_cli_usage_error("info", argc < 2 ? "missing DIR" : "too many arguments");
  g_autoptr(FthStore) store = fth_cli_open_store(argv[1]);
  if (!store)
    return FTH_EXIT_FAILURE;
  g_autoptr(GError) error = NULL;
  if (!fth_cli_print_info(store, json, &error))
    return fth_cli_fail_error(error);
  return FTH_EXIT_OK;
}
