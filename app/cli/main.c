/* fathom: the headless command line of Fathom. Links the engine, never GTK. */
#include "fth-config.h"
#include "cli.h"

#include <locale.h>
#include <stdio.h>
#include <string.h>

typedef struct {
  const char *name;
  int (*run)(int argc, char **argv);
  const char *summary;
} Command;

static int cmd_version(int argc, char **argv);
int fth_cli_tune(int argc, char **argv); /* cmd-tune.c */
int fth_cli_autolabel(int argc, char **argv); /* cmd-active.c */
int fth_cli_queue(int argc, char **argv);
int fth_cli_simulate_al(int argc, char **argv);
int fth_cli_import_annotations(int argc, char **argv); /* cmd-formats.c */
int fth_cli_runs(int argc, char **argv); /* cmd-runs.c */

static const Command commands[] = {
  { "new", fth_cli_new, "create a project in a folder" },
  { "info", fth_cli_info, "counts of items per kind, split and label" },
  { "import", fth_cli_import, "import files and folders (images, audio, text, CSV, JSONL, IDX)" },
  { "labels", fth_cli_labels, "list, add, rename, remove, recolor labels, set hotkeys" },
  { "annotate", fth_cli_annotate, "set or remove an annotation" },
  { "export", fth_cli_export, "export items and annotations as CSV or JSONL" },
  { "import-annotations", fth_cli_import_annotations,
    "add segments/spans from Audacity, JSONL or CoNLL files" },
  { "sample", fth_cli_sample, "build the sample project (Fashion-MNIST, spoken digits, fortunes)" },
  { "demo", fth_cli_demo, "headless demo: sample project, import, training" },
#ifdef FTH_CLI_HAVE_TRAIN
  { "train", fth_cli_train, "train a model on a project" },
  { "predict", fth_cli_predict, "predict items with a trained model" },
#endif
  { "runs", fth_cli_runs, "list runs, or one run's metrics per epoch and confusion matrices" },
  { "autolabel", fth_cli_autolabel, "pre-label items with a trained model" },
  { "queue", fth_cli_queue, "show or refill the active-learning queue" },
  { "simulate-al", fth_cli_simulate_al, "simulate active learning with the labels as oracle" },
  { "tune", fth_cli_tune, "hyperparameter search (TPE, GP; median, ASHA, Hyperband)" },
  { "version", cmd_version, "print the version" },
};

static int
cmd_version(int argc, char **argv)
{
  if (!fth_cli_parse_options("version", "", "Prints the version of fathom.", NULL, NULL, &argc,
                             &argv))
    return FTH_EXIT_USAGE;
  if (argc > 1)
    return fth_cli_usage_error("version", "unexpected argument “%s”", argv[1]);
  printf("fathom %s\n", FTH_VERSION);
  return FTH_EXIT_OK;
}

static void
print_help(FILE *out)
{
  fprintf(out, "Usage: fathom COMMAND [OPTIONS] [ARGS]\n\nCommands:\n");
  for (gsize i = 0; i < G_N_ELEMENTS(commands); i++)
    fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
  fprintf(out,
          "\n`fathom COMMAND --help` describes a command.\n\n"
          "Exit codes:\n"
          "  0    success\n"
          "  1    failure (the error is printed on stderr)\n"
          "  2    usage error (unknown command or option, missing argument)\n"
          "  3    partial: finished, but some files could not be used (listed on stderr)\n"
          "  130  cancelled with Ctrl-C\n");
}

int
main(int argc, char **argv)
{
  setlocale(LC_ALL, "");
  g_set_prgname("fathom");
  if (argc < 2) {
    print_help(stderr);
    return FTH_EXIT_USAGE;
  }
  const char *name = argv[1];
  if (g_str_equal(name, "--help") || g_str_equal(name, "-h") || g_str_equal(name, "help")) {
    print_help(stdout);
    return FTH_EXIT_OK;
  }
  if (g_str_equal(name, "--version"))
    name = "version";
  for (gsize i = 0; i < G_N_ELEMENTS(commands); i++)
    if (g_str_equal(name, commands[i].name))
      return commands[i].run(argc - 1, argv + 1);
  fprintf(stderr, "fathom: unknown command “%s”\nTry “fathom --help”.\n", name);
  return FTH_EXIT_USAGE;
}
