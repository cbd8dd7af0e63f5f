/* fathom labels, fathom annotate. */
#include "cli.h"

#include <fathom/export.h>
#include <json-glib/json-glib.h>
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char labels_description[] =
    "Actions:\n"
    "  list                       the labels, their color, hotkey, kind and annotation count\n"
    "  add NAME [--color C] [--hotkey K] [--kind K]\n"
    "  rename OLD NEW\n"
    "  remove NAME [--force]      --force also removes the label's annotations\n"
    "  recolor NAME COLOR         COLOR as #rrggbb\n"
    "  hotkey NAME KEY            one character; \"\" removes the hotkey\n"
    "Kinds: any, class, region, segment, span.";

static gboolean
parse_label_kind(const char *s, FthLabelKind *kind)
{
  static const char *const names[] = { "any", "class", "region", "segment", "span" };
  for (gsize i = 0; i < G_N_ELEMENTS(names); i++) {
    if (g_str_equal(s, names[i])) {
      *kind = (FthLabelKind)i;
      return TRUE;
    }
  }
  return FALSE;
}

static FthLabel *
find_label_or_fail(FthStore *store, const char *name)
{
  g_autoptr(GError) error = NULL;
  FthLabel *label = fth_store_find_label(store, name, &error);
  if (!label) {
    if (error)
      fth_cli_fail_error(error);
    else
      fth_cli_fail("%s: no label “%s”", fth_store_get_db_path(store), name);
  }
  return label;
}

static int
labels_list(FthStore *store, gboolean json)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) labels = fth_store_list_labels(store, &error);
  g_autoptr(GArray) counts = labels ? fth_store_count_per_label(store, FTH_AUTHOR_ANY, &error)
                                    : NULL;
  if (!counts)
    return fth_cli_fail_error(error);
  static const char *const kinds[] = { "any", "class", "region", "segment", "span" };
  for (guint i = 0; i < labels->len; i++) {
    FthLabel *l = g_ptr_array_index(labels, i);
    gint64 n = 0;
    for (guint c = 0; c < counts->len; c++)
      if (g_array_index(counts, FthLabelCount, c).label_id == l->id)
        n = g_array_index(counts, FthLabelCount, c).count;
    const char *kind = (guint)l->kind < G_N_ELEMENTS(kinds) ? kinds[l->kind] : "any";
    if (json) {
      g_autoptr(JsonBuilder) b = json_builder_new();
      json_builder_begin_object(b);
      json_builder_set_member_name(b, "id");
      json_builder_add_int_value(b, l->id);
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
      json_builder_add_string_value(b, kind);
      json_builder_set_member_name(b, "annotations");
      json_builder_add_int_value(b, n);
      json_builder_end_object(b);
      g_autoptr(JsonNode) root = json_builder_get_root(b);
      g_autofree char *text = json_to_string(root, FALSE);
      printf("%s\n", text);
    } else {
      printf("%-20s %s  %-3s %-8s %" G_GINT64_FORMAT "\n", l->name, l->color,
             l->hotkey ? l->hotkey : "-", kind, n);
    }
  }
  return FTH_EXIT_OK;
}

int
fth_cli_labels(int argc, char **argv)
{
  char *color = NULL, *hotkey = NULL, *kind_name = NULL;
  gboolean force = FALSE, json = FALSE;
  const GOptionEntry entries[] = {
    { "color", 0, 0, G_OPTION_ARG_STRING, &color, "add: color as #rrggbb (default: the next "
      "palette color)", "C" },
    { "hotkey", 0, 0, G_OPTION_ARG_STRING, &hotkey, "add: a one-character hotkey", "K" },
    { "kind", 0, 0, G_OPTION_ARG_STRING, &kind_name, "add: any, class, region, segment or span "
      "(default: any)", "K" },
    { "force", 0, 0, G_OPTION_ARG_NONE, &force, "remove: also remove the label's annotations",
      NULL },
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "list: one JSON object per label", NULL },
    { NULL },
  };
  gboolean parsed = fth_cli_parse_options("labels", "DIR ACTION [ARGS]", "Manages the labels "
                                          "of the project in DIR.", labels_description, entries,
                                          &argc, &argv);
  g_autofree char *o1 = color, *o2 = hotkey, *o3 = kind_name;
  if (!parsed)
    return FTH_EXIT_USAGE;
  if (argc < 3)
    return fth_cli_usage_error("labels", argc < 2 ? "missing DIR" : "missing ACTION");
  const char *action = argv[2];
  static const struct {
    const char *name;
    int n_args;
  } actions[] = { { "list", 0 }, { "add", 1 }, { "rename", 2 }, { "remove", 1 },
                  { "recolor", 2 }, { "hotkey", 2 } };
  gsize a;
  for (a = 0; a < G_N_ELEMENTS(actions) && !g_str_equal(action, actions[a].name); a++)
    ;
  if (a == G_N_ELEMENTS(actions))
    return fth_cli_usage_error("labels", "unknown action “%s”", action);
  if (argc - 3 != actions[a].n_args)
    return fth_cli_usage_error("labels", "“%s” takes %d argument%s, got %d", action,
                               actions[a].n_args, actions[a].n_args == 1 ? "" : "s", argc - 3);
  if ((color || hotkey || kind_name) && !g_str_equal(action, "add"))
    return fth_cli_usage_error("labels", "--color, --hotkey and --kind go with “add”");
  if (force && !g_str_equal(action, "remove"))
    return fth_cli_usage_error("labels", "--force goes with “remove”");
  FthLabelKind kind = FTH_LABEL_ANY;
  if (kind_name && !parse_label_kind(kind_name, &kind))
    return fth_cli_usage_error("labels", "unknown kind “%s”", kind_name);

  g_autoptr(FthStore) store = fth_cli_open_store(argv[1]);
  if (!store)
    return FTH_EXIT_FAILURE;
  g_autoptr(GError) error = NULL;
  if (g_str_equal(action, "list"))
    return labels_list(store, json);
  if (g_str_equal(action, "add")) {
    gint64 id;
    if (!fth_store_add_label(store, argv[3], color, hotkey, kind, &id, &error))
      return fth_cli_fail_error(error);
    printf("Added label “%s” (id %" G_GINT64_FORMAT ")\n", argv[3], id);
    return FTH_EXIT_OK;
  }
  g_autoptr(FthLabel) label = find_label_or_fail(store, argv[3]);
  if (!label)
    return FTH_EXIT_FAILURE;
  gboolean ok;
  if (g_str_equal(action, "rename"))
    ok = fth_store_rename_label(store, label->id, argv[4], &error);
  else if (g_str_equal(action, "remove"))
    ok = fth_store_remove_label(store, label->id, force, &error);
  else if (g_str_equal(action, "recolor"))
    ok = fth_store_recolor_label(store, label->id, argv[4], &error);
  else
    ok = fth_store_set_label_hotkey(store, label->id, *argv[4] ? argv[4] : NULL, &error);
  if (!ok)
    return fth_cli_fail_error(error);
  return FTH_EXIT_OK;
}

/* "1,2.5,3" -> doubles; FALSE on anything that is not a finite number. */
static double *
parse_numbers(const char *s, guint *n)
{
  g_auto(GStrv) parts = g_strsplit(s, ",", -1);
  *n = g_strv_length(parts);
  double *v = g_new0(double, MAX(*n, 1u));
  for (guint i = 0; i < *n; i++) {
    char *end = NULL;
    g_strstrip(parts[i]);
    v[i] = g_ascii_strtod(parts[i], &end);
    if (!*parts[i] || *end || !isfinite(v[i])) {
      g_free(v);
      return NULL;
    }
  }
  return v;
}

int
fth_cli_annotate(int argc, char **argv)
{
  char *label_name = NULL, *box = NULL, *polygon = NULL, *segment = NULL, *span = NULL;
  gint64 remove_id = 0;
  gboolean model = FALSE;
  const GOptionEntry entries[] = {
    { "label", 'l', 0, G_OPTION_ARG_STRING, &label_name, "The label (must exist)", "L" },
    { "box", 0, 0, G_OPTION_ARG_STRING, &box, "A box in pixels", "x,y,w,h" },
    { "polygon", 0, 0, G_OPTION_ARG_STRING, &polygon, "A polygon in pixels", "x,y,x,y,..." },
    { "segment", 0, 0, G_OPTION_ARG_STRING, &segment, "A time segment in seconds", "t0,t1" },
    { "span", 0, 0, G_OPTION_ARG_STRING, &span, "A text span in characters, end exclusive",
      "a,b" },
    { "remove", 0, 0, G_OPTION_ARG_INT64, &remove_id, "Remove the annotation ANN_ID", "ANN_ID" },
    { "model", 0, 0, G_OPTION_ARG_NONE, &model, "Record the annotation as a model's", NULL },
    { NULL },
  };
  gboolean parsed = fth_cli_parse_options(
      "annotate", "DIR [ITEM_ID]", "Sets or removes one annotation of the project in DIR.",
      "Without a geometry option the label is the item's class (replacing its previous class).\n"
      "Prints the new annotation's id.  `fathom annotate DIR --remove ANN_ID` removes one.",
      entries, &argc, &argv);
  g_autofree char *o1 = label_name, *o2 = box, *o3 = polygon, *o4 = segment, *o5 = span;
  if (!parsed)
    return FTH_EXIT_USAGE;
  if (argc < 2)
    return fth_cli_usage_error("annotate", "missing DIR");
  int n_geoms = !!box + !!polygon + !!segment + !!span;
  if (remove_id != 0) {
    if (argc != 2 || label_name || n_geoms)
      return fth_cli_usage_error("annotate", "--remove takes only DIR and the annotation id");
  } else {
    if (argc != 3)
      return fth_cli_usage_error("annotate", argc < 3 ? "missing ITEM_ID" : "too many arguments");
    if (!label_name)
      return fth_cli_usage_error("annotate", "missing --label");
    if (n_geoms > 1)
      return fth_cli_usage_error("annotate", "give at most one of --box, --polygon, --segment, "
                                             "--span");
  }
  gint64 item_id = 0;
  if (remove_id == 0) {
    char *end = NULL;
    item_id = g_ascii_strtoll(argv[2], &end, 10);
    if (!*argv[2] || *end || item_id <= 0)
      return fth_cli_usage_error("annotate", "ITEM_ID “%s” is not a positive integer", argv[2]);
  }
  g_autofree double *values = NULL;
  guint n = 0;
  const char *geom_text = box ? box : polygon ? polygon : segment ? segment : span;
  if (geom_text) {
    values = parse_numbers(geom_text, &n);
    if (!values)
      return fth_cli_usage_error("annotate", "“%s” is not a list of numbers", geom_text);
    if ((box && n != 4) || ((segment || span) && n != 2) || (polygon && (n < 6 || n % 2)))
      return fth_cli_usage_error("annotate", "wrong number of values in “%s”", geom_text);
    if (span && (values[0] != (gint64)values[0] || values[1] != (gint64)values[1]))
      return fth_cli_usage_error("annotate", "--span takes whole character offsets");
  }

  g_autoptr(FthStore) store = fth_cli_open_store(argv[1]);
  if (!store)
    return FTH_EXIT_FAILURE;
  g_autoptr(GError) error = NULL;
  if (remove_id != 0) {
    if (!fth_store_remove_annotation(store, remove_id, &error))
      return fth_cli_fail_error(error);
    return FTH_EXIT_OK;
  }
  g_autoptr(FthLabel) label = find_label_or_fail(store, label_name);
  if (!label)
    return FTH_EXIT_FAILURE;
  FthAuthor author = model ? FTH_AUTHOR_MODEL : FTH_AUTHOR_HUMAN;
  gint64 ann_id = 0;
  if (!geom_text) {
    if (!fth_store_set_class(store, item_id, label->id, author, 0, 1.0, &ann_id, &error))
      return fth_cli_fail_error(error);
  } else {
    g_autoptr(FthAnnotation) ann = fth_annotation_new();
    ann->item_id = item_id;
    ann->label_id = label->id;
    ann->author = author;
    if (box) {
      ann->geom = FTH_GEOM_BOX;
      ann->x = values[0], ann->y = values[1], ann->w = values[2], ann->h = values[3];
    } else if (polygon) {
      fth_annotation_set_points(ann, values, n / 2);
    } else if (segment) {
      ann->geom = FTH_GEOM_SEGMENT;
      ann->t0 = values[0], ann->t1 = values[1];
    } else {
      ann->geom = FTH_GEOM_SPAN;
      ann->start = (gint64)values[0], ann->end = (gint64)values[1];
    }
    if (!fth_store_add_annotation(store, ann, &ann_id, &error))
      return fth_cli_fail_error(error);
  }
  printf("%" G_GINT64_FORMAT "\n", ann_id);
  return FTH_EXIT_OK;
}
