/* fathom export. */
#include "cli.h"

#include <fathom/export.h>
#include <gio/gunixoutputstream.h>
#include <stdio.h>
#include <unistd.h>

/* cmd-formats.c: audio segment and text span formats. */
gboolean fth_cli_annotation_format_known(const char *name);
int fth_cli_export_annotations(const char *dir, const char *format_name, const char *output,
                               gint64 item_id);

int
fth_cli_export(int argc, char **argv)
{
  char *format_name = NULL, *output = NULL;
  gint64 item_id = 0;
  const GOptionEntry entries[] = {
    { "format", 'f', 0, G_OPTION_ARG_STRING, &format_name,
      "csv, jsonl, audacity, segments-jsonl, spans-jsonl or conll", "FORMAT" },
    { "output", 'o', 0, G_OPTION_ARG_FILENAME, &output,
      "Write to FILE (default: stdout), or into folder DIR (audacity, conll)", "FILE|DIR" },
    { "item", 'i', 0, G_OPTION_ARG_INT64, &item_id,
      "Only item ID (audacity, segments-jsonl, spans-jsonl, conll)", "ID" },
    { NULL },
  };
  gboolean parsed = fth_cli_parse_options(
      "export", "DIR --format FORMAT [-o FILE|DIR] [--item ID]",
      "Exports the items of the project in DIR with their annotations.",
      "CSV: one row per annotation (an item without any gets one row).\n"
      "JSONL: one object per item with an \"annotations\" array.\n"
      "The columns and fields are described in engine/include/fathom/export.h.\n"
      "audacity, segments-jsonl: the audio segments; spans-jsonl, conll: the text spans\n"
      "(engine/include/fathom/formats.h). audacity and conll write one file per item,\n"
      "<name>.txt or <name>.conll in folder DIR; spans conll cannot hold are listed (exit 3).",
      entries, &argc, &argv);
  g_autofree char *o1 = format_name, *o2 = output;
  if (!parsed)
    return FTH_EXIT_USAGE;
  if (argc != 2)
    return fth_cli_usage_error("export", argc < 2 ? "missing DIR" : "too many arguments");
  if (!format_name)
    return fth_cli_usage_error("export", "missing --format (csv or jsonl)");
  if (fth_cli_annotation_format_known(format_name))
    return fth_cli_export_annotations(argv[1], format_name, output, item_id);
  if (item_id != 0)
    return fth_cli_usage_error("export", "--item goes with the segment and span formats");
  FthExportFormat format;
  if (!fth_export_format_from_string(format_name, &format))
    return fth_cli_usage_error("export", "unknown format “%s” (csv or jsonl)", format_name);
  g_autoptr(FthStore) store = fth_cli_open_store(argv[1]);
  if (!store)
    return FTH_EXIT_FAILURE;
  g_autoptr(GError) error = NULL;
  guint64 n = 0;
  gboolean ok;
  if (output) {
    ok = fth_export_to_file(store, format, output, NULL, &n, &error);
  } else {
    g_autoptr(GOutputStream) out = g_unix_output_stream_new(STDOUT_FILENO, FALSE);
    ok = fth_export_to_stream(store, format, out, NULL, &n, &error);
  }
  if (!ok)
    return fth_cli_fail_error(error);
  if (output)
    fprintf(stderr, "Exported %" G_GUINT64_FORMAT " items to %s\n", n, output);
  return FTH_EXIT_OK;
}
