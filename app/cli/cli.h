/* The `fathom` command: shared helpers for the subcommands (app/cli).
 *
 * Every subcommand is `int fth_cli_NAME(int argc, char **argv)` with argv[0] the subcommand's
 * name, returns one of the exit codes below, prints results on stdout and errors on stderr
 * ("fathom: PATH: what is wrong").
 *
 * Training hook: when app/cli/cmd-train.c exists, meson compiles it and defines
 * FTH_CLI_HAVE_TRAIN; it must then define fth_cli_train, fth_cli_predict (registered as the
 * `train` and `predict` subcommands) and fth_cli_demo_train, the training step of `fathom
 * demo`. Without it the demo stops after the import and says so.
 */
#pragma once

#include <fathom/jobs.h>
#include <fathom/store.h>

G_BEGIN_DECLS

typedef enum {
  FTH_EXIT_OK = 0,
  FTH_EXIT_FAILURE = 1,
  FTH_EXIT_USAGE = 2,
  FTH_EXIT_PARTIAL = 3,     /* finished, but some files could not be used */
  FTH_EXIT_CANCELLED = 130, /* Ctrl-C */
} FthExitCode;

/* Parses the options of subcommand COMMAND. PARAMS is the positional part of the usage line
 * ("DIR PATH..."), SUMMARY one sentence. On a bad option prints the error and a hint to
 * stderr and returns FALSE (exit with FTH_EXIT_USAGE). --help prints and exits 0. */
gboolean fth_cli_parse_options(const char *command, const char *params, const char *summary,
                               const char *description, const GOptionEntry *entries,
                               int *argc, char ***argv);
/* Prints "fathom COMMAND: MESSAGE" and the --help hint to stderr; returns FTH_EXIT_USAGE. */
int fth_cli_usage_error(const char *command, const char *format, ...) G_GNUC_PRINTF(2, 3);
/* Prints "fathom: MESSAGE" to stderr; returns FTH_EXIT_FAILURE. */
int fth_cli_fail(const char *format, ...) G_GNUC_PRINTF(1, 2);
int fth_cli_fail_error(const GError *error);

/* Opens the project in DIR, printing the error on failure. */
FthStore *fth_cli_open_store(const char *dir);

typedef enum {
  FTH_CLI_PROGRESS_AUTO,  /* a bar on a terminal (stderr), plain lines otherwise */
  FTH_CLI_PROGRESS_JSON,  /* JSON lines on stdout */
  FTH_CLI_PROGRESS_QUIET, /* only messages (problems) on stderr */
} FthCliProgressMode;

/* Runs JOB on the shared pool while this thread iterates its main context, showing progress
 * in MODE; Ctrl-C cancels the job. Returns the job's final state. */
FthJobState fth_cli_run_job(FthJob *job, FthCliProgressMode mode);

/* Subcommands. */
int fth_cli_new(int argc, char **argv);
int fth_cli_info(int argc, char **argv);
int fth_cli_import(int argc, char **argv);
int fth_cli_labels(int argc, char **argv);
int fth_cli_annotate(int argc, char **argv);
int fth_cli_export(int argc, char **argv);
int fth_cli_sample(int argc, char **argv);
int fth_cli_demo(int argc, char **argv);

/* Builds (or completes) the sample project in DIR; used by `sample` and `demo`. */
int fth_cli_build_sample(const char *dir, guint audio_variants, FthCliProgressMode mode);
/* Prints the project summary of `info` for STORE. */
gboolean fth_cli_print_info(FthStore *store, gboolean json, GError **error);

#ifdef FTH_CLI_HAVE_TRAIN
int fth_cli_train(int argc, char **argv);
int fth_cli_predict(int argc, char **argv);
/* The demo's training step on the sample project STORE: train a small model, print the
 * evaluation; returns an exit code. */
int fth_cli_demo_train(FthStore *store, FthCliProgressMode mode);
#endif

G_END_DECLS
