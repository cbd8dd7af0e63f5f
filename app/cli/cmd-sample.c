/* fathom sample, fathom demo: the sample project from Debian packages. */
#include "cli.h"

#include <fathom/import.h>
#include <errno.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <stdio.h>
#include <string.h>

#define FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"
#define FORTUNES_DIR "/usr/share/games/fortunes"
#define DEFAULT_AUDIO_VARIANTS 6
#define FORTUNES_PER_CATEGORY 60
#define FORTUNE_MAX_CHARS 400

static const char *const spoken_words[] = { "zero", "one", "two", "three", "four",
                                            "five", "six", "seven", "eight", "nine" };

/* Voices, speeds (words per minute) and pitches (0-99) for the spoken words. */
static const struct {
  const char *voice, *speed, *pitch;
} voices[] = {
  { "en-us", "150", "50" },         { "en-gb+f3", "130", "70" },
  { "en-us+m3", "180", "35" },      { "en-gb-scotland", "140", "45" },
  { "en-029+f2", "170", "60" },     { "en-gb-x-rp+f4", "120", "55" },
  { "en-us+f4", "200", "65" },      { "en-gb+m7", "110", "30" },
};

static const char *const fortune_categories[] = { "computers", "science", "food",
                                                  "love", "sports", "pets" };

static const char *
env_or(const char *name, const char *fallback)
{
  const char *v = g_getenv(name);
  return v && *v ? v : fallback;
}

/* Synthesizes DIR/media/audio/<word>/<word>-<i>.wav for the words that are missing. Returns
 * FALSE (after saying why) when espeak-ng is missing or fails. */
static gboolean
make_audio(const char *audio_dir, guint n_variants, GCancellable *cancellable)
{
  g_autofree char *espeak = g_find_program_in_path("espeak-ng");
  if (!espeak) {
    fprintf(stderr, "fathom: espeak-ng is not installed (apt-get install espeak-ng): the sample "
                    "project gets no audio\n");
    return FALSE;
  }
  guint made = 0;
  for (gsize w = 0; w < G_N_ELEMENTS(spoken_words); w++) {
    g_autofree char *word_dir = g_build_filename(audio_dir, spoken_words[w], NULL);
    if (g_mkdir_with_parents(word_dir, 0755) != 0) {
      fth_cli_fail("%s: cannot create the folder: %s", word_dir, g_strerror(errno));
      return FALSE;
    }
    for (guint v = 0; v < n_variants; v++) {
      g_autofree char *name = g_strdup_printf("%s-%u.wav", spoken_words[w], v);
      g_autofree char *path = g_build_filename(word_dir, name, NULL);
      if (g_file_test(path, G_FILE_TEST_IS_REGULAR))
        continue;
      /* Written under a temporary name and renamed, so an interrupted run leaves no
       * half-written file behind for the import to report. */
      g_autofree char *tmp = g_strconcat(path, ".part", NULL);
      g_autoptr(GError) error = NULL;
      g_autoptr(GSubprocess) proc = g_subprocess_new(
          G_SUBPROCESS_FLAGS_STDOUT_SILENCE | G_SUBPROCESS_FLAGS_STDERR_PIPE, &error, espeak,
          "-v", voices[v].voice, "-s", voices[v].speed, "-p", voices[v].pitch, "-w", tmp,
          spoken_words[w], NULL);
      g_autofree char *err_text = NULL;
      if (!proc || !g_subprocess_communicate_utf8(proc, NULL, cancellable, NULL, &err_text,
                                                  &error)) {
        fth_cli_fail("espeak-ng: %s", error->message);
        g_unlink(tmp);
        return FALSE;
      }
      if (!g_subprocess_get_successful(proc) || g_rename(tmp, path) != 0) {
        fth_cli_fail("espeak-ng -v %s -w %s %s failed: %s", voices[v].voice, tmp,
                     spoken_words[w], err_text && *err_text ? g_strstrip(err_text) : "no output");
        g_unlink(tmp);
        return FALSE;
      }
      made++;
    }
  }
  if (made)
    fprintf(stderr, "Synthesized %u spoken words with espeak-ng into %s\n", made, audio_dir);
  return TRUE;
}

/* Splits a fortune file on its "%" lines; keeps the ones of reasonable length. */
static guint
add_fortunes(GString *out, const char *category, const char *path)
{
  g_autofree char *data = NULL;
  gsize len = 0;
  if (!g_file_get_contents(path, &data, &len, NULL))
    return 0;
  guint added = 0;
  g_auto(GStrv) lines = g_strsplit(data, "\n", -1);
  g_autoptr(GString) entry = g_string_new(NULL);
  for (guint i = 0; lines[i] && added < FORTUNES_PER_CATEGORY; i++) {
    if (!g_str_equal(lines[i], "%")) {
      g_string_append_printf(entry, "%s%s", entry->len ? "\n" : "", lines[i]);
      if (lines[i + 1])
        continue;
    }
    g_strchomp(entry->str);
    entry->len = strlen(entry->str);
    glong chars = g_utf8_validate(entry->str, (gssize)entry->len, NULL)
                      ? g_utf8_strlen(entry->str, (gssize)entry->len)
                      : -1;
    if (chars >= 20 && chars <= FORTUNE_MAX_CHARS) {
      g_autoptr(JsonBuilder) b = json_builder_new();
      json_builder_begin_object(b);
      json_builder_set_member_name(b, "text");
      json_builder_add_string_value(b, entry->str);
      json_builder_set_member_name(b, "label");
      json_builder_add_string_value(b, category);
      json_builder_end_object(b);
      g_autoptr(JsonNode) root = json_builder_get_root(b);
      g_autofree char *line = json_to_string(root, FALSE);
      g_string_append_printf(out, "%s\n", line);
      added++;
    }
    g_string_truncate(entry, 0);
  }
  return added;
}

/* Writes the fortunes JSONL once. FALSE (after saying why) when no fortunes are installed. */
static gboolean
make_texts(const char *jsonl_path)
{
  if (g_file_test(jsonl_path, G_FILE_TEST_IS_REGULAR))
    return TRUE;
  const char *dir = env_or("FTH_FORTUNES_DIR", FORTUNES_DIR);
  g_autoptr(GString) out = g_string_new(NULL);
  guint total = 0, categories = 0;
  for (gsize c = 0; c < G_N_ELEMENTS(fortune_categories); c++) {
    g_autofree char *path = g_build_filename(dir, fortune_categories[c], NULL);
    guint n = add_fortunes(out, fortune_categories[c], path);
    total += n;
    categories += n > 0;
  }
  if (total == 0) {
    fprintf(stderr, "fathom: no fortunes found in %s (apt-get install fortunes fortunes-min): "
                    "the sample project gets no texts\n", dir);
    return FALSE;
  }
  g_autofree char *parent = g_path_get_dirname(jsonl_path);
  g_autoptr(GError) error = NULL;
  if (g_mkdir_with_parents(parent, 0755) != 0 ||
      !g_file_set_contents(jsonl_path, out->str, (gssize)out->len, &error)) {
    fth_cli_fail("%s: %s", jsonl_path, error ? error->message : g_strerror(errno));
    return FALSE;
  }
  fprintf(stderr, "Wrote %u fortunes in %u categories to %s\n", total, categories, jsonl_path);
  return TRUE;
}

int
fth_cli_build_sample(const char *dir, guint audio_variants, FthCliProgressMode mode)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *db = g_build_filename(dir, FTH_STORE_DB_NAME, NULL);
  gboolean fresh = !g_file_test(db, G_FILE_TEST_EXISTS);
  g_autoptr(FthStore) store = fresh ? fth_store_create(dir, &error) : fth_store_open(dir, &error);
  if (!store)
    return fth_cli_fail_error(error);
  if (fresh && !fth_store_set_name(store, "Fathom sample", &error))
    return fth_cli_fail_error(error);
  const char *project = fth_store_get_dir(store);

  gboolean complete = TRUE;
  g_autoptr(GPtrArray) sources = g_ptr_array_new_with_free_func(g_free);
  const char *fashion = env_or("FTH_FASHION_MNIST_DIR", FASHION_MNIST_DIR);
  if (g_file_test(fashion, G_FILE_TEST_IS_DIR)) {
    g_ptr_array_add(sources, g_strdup(fashion));
  } else {
    fprintf(stderr, "fathom: %s not found (apt-get install dataset-fashion-mnist): the sample "
                    "project gets no images\n", fashion);
    complete = FALSE;
  }
  g_autofree char *audio_dir = g_build_filename(project, "media", "audio", NULL);
  if (audio_variants > 0) {
    if (make_audio(audio_dir, audio_variants, NULL))
      g_ptr_array_add(sources, g_strdup(audio_dir));
    else
      complete = FALSE;
  }
  g_autofree char *jsonl = g_build_filename(project, "media", "text", "fortunes.jsonl", NULL);
  if (make_texts(jsonl))
    g_ptr_array_add(sources, g_strdup(jsonl));
  else
    complete = FALSE;
  g_ptr_array_add(sources, NULL);

  FthImportOptions options;
  fth_import_options_init(&options);
  options.folder_labels = TRUE; /* media/audio/<word>/<file>.wav -> label <word> */
  g_autoptr(FthJob) job = fth_import_job_new(store, (const char *const *)sources->pdata, &options);
  FthJobState state = fth_cli_run_job(job, mode);
  const FthImportReport *r = fth_import_job_get_report(job);
  if (state == FTH_JOB_STATE_CANCELLED)
    return FTH_EXIT_CANCELLED;
  if (state != FTH_JOB_STATE_SUCCEEDED)
    return FTH_EXIT_FAILURE;
  fprintf(stderr,
          "Sample project in %s: %" G_GUINT64_FORMAT " items added, %" G_GUINT64_FORMAT
          " already there, %" G_GUINT64_FORMAT " duplicates skipped, %u problems (%.1f s)\n",
          project, r->added, r->existing, r->duplicates, r->problems->len, r->elapsed_s);
  return complete && r->problems->len == 0 ? FTH_EXIT_OK : FTH_EXIT_PARTIAL;
}

static const char sample_description[] =
    "Images: Fashion-MNIST from Debian's dataset-fashion-mnist (70,000 images, 10 classes).\n"
    "Audio: the words “zero” to “nine” spoken by espeak-ng in several voices, written to\n"
    "DIR/media/audio/<word>/ on the first run.  Text: categorized fortunes from Debian's\n"
    "fortunes packages, written to DIR/media/text/fortunes.jsonl.  Running it again is quick\n"
    "and changes nothing.  FTH_FASHION_MNIST_DIR and FTH_FORTUNES_DIR override the folders\n"
    "read.  A missing package is reported and the rest is built (exit code 3).";

int
fth_cli_sample(int argc, char **argv)
{
  int variants = DEFAULT_AUDIO_VARIANTS;
  gboolean json = FALSE;
  const GOptionEntry entries[] = {
    { "audio-variants", 0, 0, G_OPTION_ARG_INT, &variants,
      "Voices per spoken word (0-8, default 6)", "N" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Import progress as JSON lines on stdout", NULL },
    { NULL },
  };
  if (!fth_cli_parse_options("sample", "DIR", "Builds the sample project in DIR.",
                             sample_description, entries, &argc, &argv))
    return FTH_EXIT_USAGE;
  if (argc != 2)
    return fth_cli_usage_error("sample", argc < 2 ? "missing DIR" : "too many arguments");
  if (variants < 0 || variants > (int)G_N_ELEMENTS(voices))
    return fth_cli_usage_error("sample", "--audio-variants must be between 0 and %u",
                               (guint)G_N_ELEMENTS(voices));
  return fth_cli_build_sample(argv[1], (guint)variants,
                              json ? FTH_CLI_PROGRESS_JSON : FTH_CLI_PROGRESS_AUTO);
}

int
fth_cli_demo(int argc, char **argv)
{
  if (!fth_cli_parse_options("demo", "[DIR]", "Headless demo: builds the sample project, "
                             "imports it, prints a summary, then trains a small model.",
                             "DIR defaults to the user data folder (~/.local/share/fathom/sample).",
                             NULL, &argc, &argv))
    return FTH_EXIT_USAGE;
  if (argc > 2)
    return fth_cli_usage_error("demo", "too many arguments");
  g_autofree char *dir = argc == 2 ? g_strdup(argv[1])
                                   : g_build_filename(g_get_user_data_dir(), "fathom", "sample",
                                                      NULL);
  printf("== Fathom demo: the sample project in %s\n", dir);
  fflush(stdout);
  int rc = fth_cli_build_sample(dir, DEFAULT_AUDIO_VARIANTS, FTH_CLI_PROGRESS_AUTO);
  if (rc != FTH_EXIT_OK && rc != FTH_EXIT_PARTIAL)
    return rc;
  g_autoptr(FthStore) store = fth_cli_open_store(dir);
  if (!store)
    return FTH_EXIT_FAILURE;
  g_autoptr(GError) error = NULL;
  if (!fth_cli_print_info(store, FALSE, &error))
    return fth_cli_fail_error(error);
#ifdef FTH_CLI_HAVE_TRAIN
  printf("== Training\n");
  fflush(stdout);
  int train_rc = fth_cli_demo_train(store, FTH_CLI_PROGRESS_AUTO);
  return train_rc != FTH_EXIT_OK ? train_rc : rc;
#else
  printf("== The demo stops here: this build has no training engine yet (the `train` command "
         "comes with app/cli/cmd-train.c). The project above is ready for it.\n");
  return rc;
#endif
}
