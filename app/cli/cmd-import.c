/* fathom import. */
#include "cli.h"

#include <fathom/import.h>
#include <stdio.h>

static const char import_description[] =
    "Folders are walked recursively in sorted order. Formats are recognised by content\n"
    "(JPEG, PNG, WAV, FLAC, Ogg, MP3, UTF-8 text) or by name (.csv, .jsonl, IDX\n"
    "*-images-idx3-ubyte[.gz] with its *-labels-idx1-ubyte[.gz]). Files already in the\n"
    "project are skipped, so an interrupted import is completed by running it again.\n"
    "Files that cannot be imported are listed on stderr and the import goes on; the exit\n"
    "code is then 3.  With --json, stdout carries the job's events as JSON lines (the format\n"
    "is documented in engine/include/fathom/jobs.h; problems are events with a message) and\n"
    "ends with one {\"type\":\"report\", \"added\":N, ...} line.";

int
fth_cli_import(int argc, char **argv)
{
  char *text_column = NULL, *label_column = NULL, *split = NULL;
  char *jsonl_text = NULL, *jsonl_label = NULL;
  gboolean folder_labels = FALSE, copy = FALSE, no_verify = FALSE, json = FALSE, quiet = FALSE;
  const GOptionEntry entries[] = {
    { "text-column", 0, 0, G_OPTION_ARG_STRING, &text_column,
      "CSV column holding the text (default: text)", "C" },
    { "label-column", 0, 0, G_OPTION_ARG_STRING, &label_column,
      "CSV column holding a class label (default: “label” when present)", "C" },
    { "text-field", 0, 0, G_OPTION_ARG_STRING, &jsonl_text, "JSONL field holding the text "
      "(default: text)", "F" },
    { "label-field", 0, 0, G_OPTION_ARG_STRING, &jsonl_label, "JSONL field holding a class "
      "label (default: label)", "F" },
    { "folder-labels", 0, 0, G_OPTION_ARG_NONE, &folder_labels,
      "FOLDER/<class>/<file> gets the label <class>", NULL },
    { "copy", 0, 0, G_OPTION_ARG_NONE, &copy,
      "Copy files from outside the project into DIR/media/ first", NULL },
    { "no-verify", 0, 0, G_OPTION_ARG_NONE, &no_verify,
      "Read only headers instead of decoding every image and audio file", NULL },
    { "split", 0, 0, G_OPTION_ARG_STRING, &split,
      "Split for the new items: none, train, val or test (IDX files choose their own)",
      "SPLIT" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Progress and the report as JSON lines on stdout",
      NULL },
    { "quiet", 'q', 0, G_OPTION_ARG_NONE, &quiet, "No progress bar", NULL },
    { NULL },
  };
  gboolean parsed = fth_cli_parse_options("import", "DIR PATH...", "Imports files and folders "
                                          "into the project in DIR.", import_description,
                                          entries, &argc, &argv);
  g_autofree char *o1 = text_column, *o2 = label_column, *o3 = split, *o4 = jsonl_text,
                  *o5 = jsonl_label;
  if (!parsed)
    return FTH_EXIT_USAGE;
  if (argc < 3)
    return fth_cli_usage_error("import", argc < 2 ? "missing DIR" : "missing PATH");

  FthImportOptions options;
  fth_import_options_init(&options);
  options.verify = !no_verify;
  options.folder_labels = folder_labels;
  options.copy = copy;
  if (text_column)
    options.text_column = text_column;
  options.label_column = label_column;
  if (jsonl_text)
    options.jsonl_text_field = jsonl_text;
  if (jsonl_label)
    options.jsonl_label_field = jsonl_label;
  if (split) {
    static const char *const names[] = { "none", "train", "val", "test" };
    static const FthSplit values[] = { FTH_SPLIT_NONE, FTH_SPLIT_TRAIN, FTH_SPLIT_VAL,
                                       FTH_SPLIT_TEST };
    gsize i;
    for (i = 0; i < G_N_ELEMENTS(names) && !g_str_equal(split, names[i]); i++)
      ;
    if (i == G_N_ELEMENTS(names))
      return fth_cli_usage_error("import", "unknown split “%s” (none, train, val, test)", split);
    options.split = values[i];
  }

  g_autoptr(FthStore) store = fth_cli_open_store(argv[1]);
  if (!store)
    return FTH_EXIT_FAILURE;
  g_autoptr(FthJob) job = fth_import_job_new(store, (const char *const *)argv + 2, &options);
  FthCliProgressMode mode = json ? FTH_CLI_PROGRESS_JSON
                                 : quiet ? FTH_CLI_PROGRESS_QUIET : FTH_CLI_PROGRESS_AUTO;
  FthJobState state = fth_cli_run_job(job, mode);
  const FthImportReport *r = fth_import_job_get_report(job);
  if (r) {
    g_autofree char *summary = g_strdup_printf(
        "%" G_GUINT64_FORMAT " added (%" G_GUINT64_FORMAT " images, %" G_GUINT64_FORMAT
        " audio, %" G_GUINT64_FORMAT " text), %" G_GUINT64_FORMAT " annotations, %"
        G_GUINT64_FORMAT " new labels, %" G_GUINT64_FORMAT " duplicates skipped, %"
        G_GUINT64_FORMAT " already imported, %u problems, %" G_GUINT64_FORMAT
        " files in %.2f s",
        r->added, r->added_images, r->added_audio, r->added_text, r->annotations,
        r->labels_created, r->duplicates, r->existing, r->problems->len, r->files,
        r->elapsed_s);
    if (json) {
      /* The report as one more JSON line, after the job's events. */
      printf("{\"type\":\"report\",\"added\":%" G_GUINT64_FORMAT ",\"images\":%" G_GUINT64_FORMAT
             ",\"audio\":%" G_GUINT64_FORMAT ",\"text\":%" G_GUINT64_FORMAT
             ",\"annotations\":%" G_GUINT64_FORMAT ",\"labels_created\":%" G_GUINT64_FORMAT
             ",\"duplicates\":%" G_GUINT64_FORMAT ",\"existing\":%" G_GUINT64_FORMAT
             ",\"problems\":%u,\"files\":%" G_GUINT64_FORMAT ",\"elapsed_s\":%.3f}\n",
             r->added, r->added_images, r->added_audio, r->added_text, r->annotations,
             r->labels_created, r->duplicates, r->existing, r->problems->len, r->files,
             r->elapsed_s);
    } else {
      printf("Imported into %s: %s\n", fth_store_get_dir(store), summary);
    }
  }
  switch (state) {
  case FTH_JOB_STATE_SUCCEEDED:
    return r && r->problems->len > 0 ? FTH_EXIT_PARTIAL : FTH_EXIT_OK;
  case FTH_JOB_STATE_CANCELLED:
    return FTH_EXIT_CANCELLED;
  default:
    return FTH_EXIT_FAILURE;
  }
}
