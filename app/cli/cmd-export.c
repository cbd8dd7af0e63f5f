/* fathom export. */
#include "cli.h"

#include <fathom/export.h>
#include <gio/gunixoutputstream.h>
#include <stdio.h>
#include <unistd.h>

int
fth_cli_export(int argc, char **argv)
{
  char *format_name = NULL, *output = NULL;
  const GOptionEntry entries[] = {
    { "format", 'f', 0, G_OPTION_ARG_STRING, &format_name, "csv or jsonl", "FORMAT" },
    { "output", 'o', 0, G_OPTION_ARG_FILENAME, &output, "Write to FILE (default: stdout)",
      "FILE" },
    { NULL },
  };
  gboolean parsed = fth_cli_parse_options(
      "export", "DIR --format csv|jsonl [-o FILE]",
      "Exports the items of the project in DIR with their annotations.",
      "CSV: one row per annotation (an item without any gets one row).\n"
      "JSONL: one object per item with an \"annotations\" array.\n"
      "The columns and fields are described in engine/include/fathom/export.h.",
      entries, &argc, &argv);
  g_autofree char *o1 = format_name, *o2 = output;
  if (!parsed)
    return FTH_EXIT_USAGE;
  if (argc != 2)
    return fth_cli_usage_error("export", argc < 2 ? "missing DIR" : "too many arguments");
  if (!format_name)
    return fth_cli_usage_error("export", "missing --format (csv or jsonl)");
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
