/* The `fathom` command, run as a user would on temporary folders; effects are checked through
 * the store API and `info --json`. */
#include "../io/io-fixtures.h"
#include "cli-run.h"

#include <fathom/jobs.h>
#include <fathom/store.h>
#include <json-glib/json-glib.h>
#include <signal.h>
#include <string.h>

static JsonObject *
info_json(const char *dir)
{
  Result r = run("info", dir, "--json", NULL);
  expect_status(&r, 0);
  g_autoptr(JsonParser) p = json_parser_new();
  g_autoptr(GError) error = NULL;
  g_assert_true(json_parser_load_from_data(p, r.out, -1, &error));
  g_assert_no_error(error);
  JsonObject *o = json_object_ref(json_node_get_object(json_parser_get_root(p)));
  result_clear(&r);
  return o;
}

static gint64
info_kind(JsonObject *info, const char *kind)
{
  return json_object_get_int_member(json_object_get_object_member(info, "kinds"), kind);
}

static void
test_usage_errors(void)
{
  g_autofree char *tmp = fth_test_tmpdir();
  const char *cases[][6] = {
    { NULL },
    { "frobnicate", NULL },
    { "new", NULL },
    { "info", "--bogus", tmp, NULL },
    { "import", tmp, NULL },
    { "export", tmp, NULL },
    { "export", tmp, "--format", "xml", NULL },
    { "annotate", tmp, "1", NULL },
    { "annotate", tmp, "1", "--box", "1,2,3,4", NULL },
    { "labels", tmp, "frobnicate", NULL },
    { "labels", tmp, "rename", "only-one", NULL },
  };
  for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
    Result r = run(cases[i][0], cases[i][1], cases[i][2], cases[i][3], cases[i][4], NULL);
    if (r.status != 2)
      g_error("case %u (%s): exit %d, expected 2; stderr: %s", i, cases[i][0], r.status, r.err);
    g_assert_cmpstr(r.out, ==, "");
    g_assert_cmpstr(r.err, !=, "");
    result_clear(&r);
  }
  /* A bad geometry value is a usage error too. */
  Result r = run("annotate", tmp, "1", "--label", "x", "--box", "1,2,3", NULL);
  expect_status(&r, 2);
  assert_contains(r.err, "1,2,3");
  result_clear(&r);
  fth_test_rmtree(tmp);
}

static void
test_help(void)
{
  const char *commands[] = { "new", "info", "import", "labels", "annotate", "export", "sample",
                             "demo", "version" };
  for (guint i = 0; i < G_N_ELEMENTS(commands); i++) {
    Result r = run(commands[i], "--help", NULL);
    expect_status(&r, 0);
    assert_contains(r.out, "Usage:");
    assert_contains(r.out, commands[i]);
    result_clear(&r);
  }
  Result r = run("--help", NULL);
  expect_status(&r, 0);
  assert_contains(r.out, "130");
  assert_contains(r.out, "partial");
  result_clear(&r);
  r = run("version", NULL);
  expect_status(&r, 0);
  assert_contains(r.out, "fathom ");
  result_clear(&r);
}

static void
test_new_info(void)
{
  g_autofree char *tmp = fth_test_tmpdir();
  g_autofree char *dir = g_build_filename(tmp, "proj", NULL);
  Result r = run("new", dir, "--name", "My project", NULL);
  expect_status(&r, 0);
  result_clear(&r);
  g_autoptr(JsonObject) info = info_json(dir);
  g_assert_cmpstr(json_object_get_string_member(info, "name"), ==, "My project");
  g_assert_cmpint(json_object_get_int_member(info, "items"), ==, 0);
  /* A second `new` refuses, naming the folder. */
  r = run("new", dir, NULL);
  expect_status(&r, 1);
  assert_contains(r.err, dir);
  result_clear(&r);
  /* info on a folder without a project fails and says so. */
  r = run("info", tmp, NULL);
  expect_status(&r, 1);
  assert_contains(r.err, tmp);
  result_clear(&r);
  fth_test_rmtree(tmp);
}

static void
test_import_partial(void)
{
  g_autofree char *tmp = fth_test_tmpdir();
  g_autofree char *dir = g_build_filename(tmp, "proj", NULL);
  g_autofree char *good = g_build_filename(tmp, "in", "shoes", "good.jpg", NULL);
  g_autofree char *png = g_build_filename(tmp, "in", "shoes", "b.png", NULL);
  g_autofree char *bad = g_build_filename(tmp, "in", "shoes", "bad.png", NULL);
  g_autofree char *src = g_build_filename(tmp, "in", NULL);
  g_autoptr(GBytes) jpeg = fth_test_jpeg(40, 30, 7);
  g_autoptr(GBytes) pngb = fth_test_png(8, 8, 8);
  fth_test_write_bytes(good, jpeg);
  fth_test_write_bytes(png, pngb);
  fth_test_write(bad, "\x89PNG\r\n\x1a\n garbage", 17);
  Result r = run("new", dir, NULL);
  result_clear(&r);
  r = run("import", dir, src, "--folder-labels", NULL);
  expect_status(&r, 3);
  assert_contains(r.err, bad);
  assert_contains(r.out, "2 added");
  result_clear(&r);

  g_autoptr(JsonObject) info = info_json(dir);
  g_assert_cmpint(info_kind(info, "image"), ==, 2);
  JsonArray *labels = json_object_get_array_member(info, "labels");
  g_assert_cmpuint(json_array_get_length(labels), ==, 1);
  JsonObject *shoes = json_array_get_object_element(labels, 0);
  g_assert_cmpstr(json_object_get_string_member(shoes, "name"), ==, "shoes");
  g_assert_cmpint(json_object_get_int_member(shoes, "annotations"), ==, 2);
  g_autoptr(FthStore) store = open_store(dir);
  g_autoptr(GError) error = NULL;
  g_autoptr(FthItemRecord) item = fth_store_find_item(store, good, -1, &error);
  g_assert_nonnull(item);
  g_assert_cmpint(item->width, ==, 40);

  /* A missing source is a failure (1), named. */
  g_autofree char *missing = g_build_filename(tmp, "missing.jpg", NULL);
  r = run("import", dir, missing, NULL);
  expect_status(&r, 1);
  assert_contains(r.err, missing);
  result_clear(&r);
  fth_test_rmtree(tmp);
}

static void
test_import_json(void)
{
  g_autofree char *tmp = fth_test_tmpdir();
  g_autofree char *dir = g_build_filename(tmp, "proj", NULL);
  g_autofree char *csv = g_build_filename(tmp, "t.csv", NULL);
  fth_test_write(csv, "text,label\nfirst,a\nsecond,b\n,a\n", 30);
  Result r = run("new", dir, NULL);
  result_clear(&r);
  r = run("import", dir, csv, "--json", NULL);
  expect_status(&r, 3);
  g_auto(GStrv) lines = g_strsplit(g_strchomp(r.out), "\n", -1);
  guint n = g_strv_length(lines);
  g_assert_cmpuint(n, >=, 3);
  /* Every line but the final report is a job event; the last event is "succeeded". */
  gboolean saw_problem = FALSE;
  for (guint i = 0; i + 1 < n; i++) {
    g_autoptr(GError) error = NULL;
    g_autoptr(FthJobEvent) ev = fth_job_event_from_json_line(lines[i], &error);
    g_assert_no_error(error);
    g_assert_cmpstr(ev->job, ==, "import");
    if (ev->message && strstr(ev->message, csv) && strstr(ev->message, "empty text"))
      saw_problem = TRUE;
    g_assert_cmpint(ev->type, ==,
                    i == 0 ? FTH_JOB_EVENT_STARTED
                           : i + 2 == n ? FTH_JOB_EVENT_SUCCEEDED : FTH_JOB_EVENT_PROGRESS);
  }
  g_assert_true(saw_problem);
  g_autoptr(JsonParser) p = json_parser_new();
  g_autoptr(GError) error = NULL;
  g_assert_true(json_parser_load_from_data(p, lines[n - 1], -1, &error));
  JsonObject *report = json_node_get_object(json_parser_get_root(p));
  g_assert_cmpstr(json_object_get_string_member(report, "type"), ==, "report");
  g_assert_cmpint(json_object_get_int_member(report, "added"), ==, 2);
  g_assert_cmpint(json_object_get_int_member(report, "problems"), ==, 1);
  result_clear(&r);
  fth_test_rmtree(tmp);
}

static void
test_labels_and_annotate(void)
{
  g_autofree char *tmp = fth_test_tmpdir();
  g_autofree char *dir = g_build_filename(tmp, "proj", NULL);
  g_autofree char *jsonl = g_build_filename(tmp, "t.jsonl", NULL);
  fth_test_write(jsonl, "{\"text\":\"one two three\"}\n", 25);
  Result r = run("new", dir, NULL);
  result_clear(&r);
  r = run("import", dir, jsonl, NULL);
  expect_status(&r, 0);
  result_clear(&r);

  r = run("labels", dir, "add", "Cat", "--color", "#112233", "--hotkey", "c", "--kind", "class",
          NULL);
  expect_status(&r, 0);
  result_clear(&r);
  r = run("labels", dir, "add", "Dog", NULL);
  expect_status(&r, 0);
  result_clear(&r);
  r = run("labels", dir, "add", "Cat", NULL);
  expect_status(&r, 1); /* taken */
  assert_contains(r.err, "Cat");
  result_clear(&r);
  r = run("labels", dir, "rename", "Dog", "Hound", NULL);
  expect_status(&r, 0);
  result_clear(&r);
  r = run("labels", dir, "recolor", "Hound", "#abcdef", NULL);
  expect_status(&r, 0);
  result_clear(&r);
  r = run("labels", dir, "hotkey", "Hound", "h", NULL);
  expect_status(&r, 0);
  result_clear(&r);
  r = run("labels", dir, "list", "--json", NULL);
  expect_status(&r, 0);
  g_auto(GStrv) lines = g_strsplit(g_strchomp(r.out), "\n", -1);
  g_assert_cmpuint(g_strv_length(lines), ==, 2);
  assert_contains(lines[1], "\"name\":\"Hound\"");
  assert_contains(lines[1], "\"color\":\"#abcdef\"");
  assert_contains(lines[1], "\"hotkey\":\"h\"");
  result_clear(&r);

  /* Annotations on item 1 (the only item). */
  r = run("annotate", dir, "1", "--label", "Cat", NULL);
  expect_status(&r, 0);
  gint64 class_id = g_ascii_strtoll(r.out, NULL, 10);
  result_clear(&r);
  r = run("annotate", dir, "1", "--label", "Hound", "--span", "4,7", NULL);
  expect_status(&r, 0);
  gint64 span_id = g_ascii_strtoll(r.out, NULL, 10);
  result_clear(&r);
  r = run("annotate", dir, "1", "--label", "Hound", "--box", "1,2,3,4", NULL);
  expect_status(&r, 0);
  result_clear(&r);
  r = run("annotate", dir, "1", "--label", "Hound", "--polygon", "0,0,4,0,2,3", NULL);
  expect_status(&r, 0);
  result_clear(&r);
  r = run("annotate", dir, "1", "--label", "Hound", "--segment", "0.5,1.5", NULL);
  expect_status(&r, 0);
  result_clear(&r);
  r = run("annotate", dir, "99", "--label", "Hound", NULL);
  expect_status(&r, 1);
  result_clear(&r);
  r = run("annotate", dir, "1", "--label", "Nope", NULL);
  expect_status(&r, 1);
  assert_contains(r.err, "Nope");
  result_clear(&r);
  r = run("annotate", dir, "--remove", "3", NULL);
  expect_status(&r, 0);
  result_clear(&r);

  {
    g_autoptr(FthStore) store = open_store(dir);
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) anns = fth_store_list_annotations(store, 1, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(anns->len, ==, 4);
    gboolean span_ok = FALSE, polygon_ok = FALSE, segment_ok = FALSE, class_ok = FALSE;
    for (guint i = 0; i < anns->len; i++) {
      FthAnnotation *a = g_ptr_array_index(anns, i);
      g_assert_cmpint(a->geom, !=, FTH_GEOM_BOX); /* removed */
      if (a->id == span_id)
        span_ok = a->geom == FTH_GEOM_SPAN && a->start == 4 && a->end == 7;
      if (a->id == class_id)
        class_ok = a->geom == FTH_GEOM_WHOLE;
      if (a->geom == FTH_GEOM_POLYGON)
        polygon_ok = a->n_points == 3 && a->points[5] == 3.0;
      if (a->geom == FTH_GEOM_SEGMENT)
        segment_ok = a->t0 == 0.5 && a->t1 == 1.5;
    }
    g_assert_true(span_ok && polygon_ok && segment_ok && class_ok);
  }

  /* remove refuses a label in use without --force. */
  r = run("labels", dir, "remove", "Hound", NULL);
  expect_status(&r, 1);
  result_clear(&r);
  r = run("labels", dir, "remove", "Hound", "--force", NULL);
  expect_status(&r, 0);
  result_clear(&r);
  g_autoptr(FthStore) store = open_store(dir);
  g_autoptr(GError) error = NULL;
  g_autoptr(FthLabel) gone = fth_store_find_label(store, "Hound", &error);
  g_assert_null(gone);
  g_autoptr(GPtrArray) left = fth_store_list_annotations(store, 1, &error);
  g_assert_cmpuint(left->len, ==, 1);

  /* Export to a file and to stdout. */
  g_autofree char *out = g_build_filename(tmp, "out.csv", NULL);
  r = run("export", dir, "--format", "csv", "-o", out, NULL);
  expect_status(&r, 0);
  result_clear(&r);
  g_autofree char *csv = NULL;
  g_assert_true(g_file_get_contents(out, &csv, NULL, NULL));
  assert_contains(csv, "item_id,kind,path");
  assert_contains(csv, ",one two three,Cat,whole,");
  r = run("export", dir, "--format", "jsonl", NULL);
  expect_status(&r, 0);
  assert_contains(r.out, "\"label\":\"Cat\"");
  result_clear(&r);
  fth_test_rmtree(tmp);
}

/* An IDX pair of N distinct 4x4 records, labels i % 10. */
static void
write_idx_pair(const char *dir, const char *prefix, guint n)
{
  g_autofree guint8 *images = g_malloc0((gsize)n * 16);
  g_autofree guint8 *labels = g_malloc0(n);
  for (guint i = 0; i < n; i++) {
    memcpy(images + (gsize)i * 16, &i, sizeof i);
    labels[i] = (guint8)(i % 10);
  }
  guint32 idims[] = { n, 4, 4 }, ldims[] = { n };
  g_autofree char *img_name = g_strdup_printf("%s-images-idx3-ubyte.gz", prefix);
  g_autofree char *lab_name = g_strdup_printf("%s-labels-idx1-ubyte.gz", prefix);
  g_autofree char *img = g_build_filename(dir, img_name, NULL);
  g_autofree char *lab = g_build_filename(dir, lab_name, NULL);
  fth_test_write_idx(img, idims, 3, images, TRUE);
  fth_test_write_idx(lab, ldims, 1, labels, TRUE);
}

static void
test_interrupt(void)
{
  g_autofree char *tmp = fth_test_tmpdir();
  g_autofree char *dir = g_build_filename(tmp, "proj", NULL);
  g_autofree char *src = g_build_filename(tmp, "fashion", NULL);
  enum { N = 40000 };
  write_idx_pair(src, "train", N);
  Result r = run("new", dir, NULL);
  result_clear(&r);

  const char *argv[] = { fathom_bin, "import", dir, src, "--json", NULL };
  g_autoptr(GError) error = NULL;
  g_autoptr(GSubprocess) p = g_subprocess_newv(argv, G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                                         G_SUBPROCESS_FLAGS_STDERR_SILENCE, &error);
  g_assert_no_error(error);
  g_autoptr(GDataInputStream) in =
      g_data_input_stream_new(g_subprocess_get_stdout_pipe(p));
  /* Interrupt once the job has made progress. */
  gboolean sent = FALSE;
  char *line;
  g_autofree char *last = NULL;
  while ((line = g_data_input_stream_read_line_utf8(in, NULL, NULL, &error))) {
    if (!sent && strstr(line, "\"added\":") && !strstr(line, "\"added\":0,")) {
      g_subprocess_send_signal(p, SIGINT);
      sent = TRUE;
    }
    g_free(last);
    last = line;
  }
  g_assert_true(g_subprocess_wait(p, NULL, &error));
  if (!sent || g_subprocess_get_exit_status(p) != 130) {
    /* The machine finished all N before the signal landed: nothing to check. */
    if (g_subprocess_get_exit_status(p) == 0) {
      g_test_skip("the import finished before it could be interrupted");
      fth_test_rmtree(tmp);
      return;
    }
  }
  g_assert_cmpint(g_subprocess_get_exit_status(p), ==, 130);
  assert_contains(last, "\"type\":\"report\"");
  g_autoptr(JsonObject) info = info_json(dir);
  gint64 partial = json_object_get_int_member(info, "items");
  g_assert_cmpint(partial, <, N);

  /* Running it again completes the import. */
  r = run("import", dir, src, NULL);
  expect_status(&r, 0);
  g_autofree char *expect = g_strdup_printf("%" G_GINT64_FORMAT " already imported", partial);
  assert_contains(r.out, expect);
  result_clear(&r);
  g_autoptr(JsonObject) info2 = info_json(dir);
  g_assert_cmpint(json_object_get_int_member(info2, "items"), ==, N);
  fth_test_rmtree(tmp);
}

static void
test_sample(void)
{
  g_autofree char *tmp = fth_test_tmpdir();
  g_autofree char *dir = g_build_filename(tmp, "sample", NULL);
  g_autofree char *fashion = g_build_filename(tmp, "fashion-mnist", NULL);
  g_autofree char *fortunes = g_build_filename(tmp, "fortunes", NULL);
  write_idx_pair(fashion, "train", 50);
  write_idx_pair(fashion, "t10k", 0);
  g_autofree char *computers = g_build_filename(fortunes, "computers", NULL);
  g_autofree char *food = g_build_filename(fortunes, "food", NULL);
  const char *c = "Computers are useless. They can only give you answers.\n%\nshort\n%\n"
                  "There are 10 kinds of people: those who read binary and those who don't.\n";
  fth_test_write(computers, c, strlen(c));
  const char *f = "Cheese: milk's leap toward immortality.\n";
  fth_test_write(food, f, strlen(f));
  g_autofree char *env_fashion = g_strconcat("FTH_FASHION_MNIST_DIR=", fashion, NULL);
  g_autofree char *env_fortunes = g_strconcat("FTH_FORTUNES_DIR=", fortunes, NULL);
  const char *env[] = { env_fashion, env_fortunes, NULL };
  g_autofree char *espeak = g_find_program_in_path("espeak-ng");
  const char *variants = espeak ? "1" : "0";

  Result r = run_env(env, "sample", dir, "--audio-variants", variants, NULL);
  expect_status(&r, 0);
  result_clear(&r);
  g_autoptr(JsonObject) info = info_json(dir);
  g_assert_cmpint(info_kind(info, "image"), ==, 50);
  g_assert_cmpint(info_kind(info, "text"), ==, 3); /* "short" is too short to keep */
  g_assert_cmpint(info_kind(info, "audio"), ==, espeak ? 10 : 0);
  g_autofree char *jsonl = g_build_filename(dir, "media", "text", "fortunes.jsonl", NULL);
  g_autofree char *texts = NULL;
  g_assert_true(g_file_get_contents(jsonl, &texts, NULL, NULL));
  assert_contains(texts, "{\"text\":\"Cheese: milk's leap toward immortality.\",\"label\":\"food\"}");
  if (espeak) {
    g_autoptr(FthStore) store = open_store(dir);
    g_autoptr(GError) error = NULL;
    g_autoptr(FthItemRecord) seven =
        fth_store_find_item(store, "media/audio/seven/seven-0.wav", -1, &error);
    g_assert_nonnull(seven);
    g_assert_cmpfloat(seven->duration_s, >, 0.1);
    g_autoptr(FthLabel) label = fth_store_find_label(store, "seven", &error);
    g_assert_nonnull(label);
  }

  /* Again: quick, nothing changes. */
  r = run_env(env, "sample", dir, "--audio-variants", variants, NULL);
  expect_status(&r, 0);
  assert_contains(r.err, "0 items added");
  result_clear(&r);
  g_autoptr(JsonObject) info2 = info_json(dir);
  g_assert_cmpint(json_object_get_int_member(info2, "items"), ==,
                  json_object_get_int_member(info, "items"));

  /* Without the data set: said clearly, the rest is built, exit 3. */
  g_autofree char *dir2 = g_build_filename(tmp, "sample2", NULL);
  g_autofree char *nowhere = g_build_filename(tmp, "no-such-dataset", NULL);
  g_autofree char *env_missing = g_strconcat("FTH_FASHION_MNIST_DIR=", nowhere, NULL);
  const char *env2[] = { env_missing, env_fortunes, NULL };
  r = run_env(env2, "sample", dir2, "--audio-variants", "0", NULL);
  expect_status(&r, 3);
  assert_contains(r.err, nowhere);
  assert_contains(r.err, "dataset-fashion-mnist");
  result_clear(&r);
  g_autoptr(JsonObject) info3 = info_json(dir2);
  g_assert_cmpint(info_kind(info3, "text"), ==, 3);

  /* The demo on the same folder: builds (nothing new), prints the summary and where it
   * stops or trains. */
  r = run_env(env2, "demo", dir2, NULL);
  assert_contains(r.out, "Items");
  result_clear(&r);
  fth_test_rmtree(tmp);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  if (!cli_test_find_binary())
    return 77;
  g_test_add_func("/cli/usage-errors", test_usage_errors);
  g_test_add_func("/cli/help", test_help);
  g_test_add_func("/cli/new-info", test_new_info);
  g_test_add_func("/cli/import-partial", test_import_partial);
  g_test_add_func("/cli/import-json", test_import_json);
  g_test_add_func("/cli/labels-annotate-export", test_labels_and_annotate);
  g_test_add_func("/cli/interrupt", test_interrupt);
  g_test_add_func("/cli/sample", test_sample);
  return g_test_run();
}
