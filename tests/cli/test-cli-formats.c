/* fathom export --format audacity|segments-jsonl|spans-jsonl|conll and fathom
 * import-annotations, run as a user would; effects are checked through the store API. */
#include "../io/io-fixtures.h"
#include "cli-run.h"

#include <fathom/formats.h>
#include <fathom/store.h>
#include <string.h>

/* Runs and checks the exit status. */
#define run_ok(status, ...)                                                                     \
  do {                                                                                          \
    Result r_ = run(__VA_ARGS__, NULL);                                                        \
    expect_status(&r_, status);                                                                 \
    result_clear(&r_);                                                                          \
  } while (0)

/* The id of the item whose path ends with NAME. */
static gint64
item_id(FthStore *store, const char *name)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) items = fth_store_list_items_after(store, NULL, 0, 100, &error);
  g_assert_no_error(error);
  for (guint i = 0; i < items->len; i++) {
    const FthItemRecord *it = g_ptr_array_index(items, i);
    if (g_str_has_suffix(it->path, name))
      return it->id;
  }
  g_error("no item %s", name);
  return 0;
}

static void
remove_annotations(FthStore *store, gint64 id)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) anns = fth_store_list_annotations(store, id, &error);
  g_assert_no_error(error);
  for (guint i = 0; i < anns->len; i++)
    g_assert_true(
        fth_store_remove_annotation(store, ((FthAnnotation *)anns->pdata[i])->id, &error));
  g_assert_no_error(error);
}

typedef struct {
  double t0, t1;
  const char *label;
} Seg;

static void
add_segments(FthStore *store, gint64 id, const Seg *segs, guint n)
{
  g_autoptr(GPtrArray) a = g_ptr_array_new_with_free_func((GDestroyNotify)fth_segment_label_free);
  for (guint i = 0; i < n; i++)
    g_ptr_array_add(a, fth_segment_label_new(NULL, segs[i].t0, segs[i].t1, segs[i].label));
  g_autoptr(GError) error = NULL;
  g_assert_true(fth_item_add_segments(store, id, a, &error));
  g_assert_no_error(error);
}

/* The item's human segments are exactly SEGS (in start order). */
static void
check_segments(const char *dir, gint64 id, const Seg *segs, guint n)
{
  g_autoptr(FthStore) store = open_store(dir);
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) have = fth_item_list_segments(store, id, FTH_AUTHOR_HUMAN, &error);
  g_assert_no_error(error);
  g_assert_cmpuint(have->len, ==, n);
  for (guint i = 0; i < n; i++) {
    const FthSegmentLabel *s = have->pdata[i];
    g_assert_cmpfloat(s->t0, ==, segs[i].t0);
    g_assert_cmpfloat(s->t1, ==, segs[i].t1);
    g_assert_cmpstr(s->label, ==, segs[i].label);
  }
}

typedef struct {
  gint64 start, end;
  const char *label;
} Span;

static void
add_spans(FthStore *store, gint64 id, const Span *spans, guint n)
{
  g_autoptr(GPtrArray) a = g_ptr_array_new_with_free_func((GDestroyNotify)fth_span_label_free);
  for (guint i = 0; i < n; i++)
    g_ptr_array_add(a, fth_span_label_new(NULL, spans[i].start, spans[i].end, spans[i].label));
  g_autoptr(GError) error = NULL;
  g_assert_true(fth_item_add_spans(store, id, a, &error));
  g_assert_no_error(error);
}

static void
check_spans(const char *dir, gint64 id, const Span *spans, guint n)
{
  g_autoptr(FthStore) store = open_store(dir);
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) have = fth_item_list_spans(store, id, FTH_AUTHOR_HUMAN, &error);
  g_assert_no_error(error);
  g_assert_cmpuint(have->len, ==, n);
  for (guint i = 0; i < n; i++) {
    const FthSpanLabel *s = have->pdata[i];
    g_assert_cmpint(s->start, ==, spans[i].start);
    g_assert_cmpint(s->end, ==, spans[i].end);
    g_assert_cmpstr(s->label, ==, spans[i].label);
  }
}

static void
clear_item(const char *dir, gint64 id)
{
  g_autoptr(FthStore) store = open_store(dir);
  remove_annotations(store, id);
}

static char *
read_all(const char *path)
{
  char *data = NULL;
  g_autoptr(GError) error = NULL;
  g_assert_true(g_file_get_contents(path, &data, NULL, &error));
  g_assert_no_error(error);
  return data;
}

/* Times that six decimals cannot hold exactly come back on the same sample. */
static const Seg segs_a[] = {
  { 0.25, 0.5, "no" },
  { 12345.0 / 16000, 15999.0 / 16000, "yes" },
};
static const Seg segs_b[] = {
  { 3.0 / 8000, 12001.0 / 8000, "yes" },
};

static void
test_segments_round_trip(void)
{
  g_autofree char *tmp = fth_test_tmpdir();
  g_autofree char *dir = g_build_filename(tmp, "proj", NULL);
  g_autofree char *wav_a = g_build_filename(tmp, "a.wav", NULL);
  g_autofree char *wav_b = g_build_filename(tmp, "b.wav", NULL);
  g_autofree char *labels = g_build_filename(tmp, "labels", NULL);
  g_autofree char *lab_a = g_build_filename(labels, "a.txt", NULL);
  g_autofree char *lab_b = g_build_filename(labels, "b.txt", NULL);
  g_autofree char *jsonl = g_build_filename(tmp, "seg.jsonl", NULL);
  g_autoptr(GBytes) a = fth_test_wav(16000, 16000);
  g_autoptr(GBytes) b = fth_test_wav(8000, 16000);
  fth_test_write_bytes(wav_a, a);
  fth_test_write_bytes(wav_b, b);
  run_ok(0, "new", dir);
  run_ok(0, "import", dir, wav_a, wav_b);
  gint64 ida, idb;
  {
    g_autoptr(FthStore) store = open_store(dir);
    ida = item_id(store, "a.wav");
    idb = item_id(store, "b.wav");
    add_segments(store, ida, segs_a, G_N_ELEMENTS(segs_a));
    add_segments(store, idb, segs_b, G_N_ELEMENTS(segs_b));
  }
  g_autofree char *sida = g_strdup_printf("%" G_GINT64_FORMAT, ida);

  /* Audacity: a folder of label files, and one item on stdout. */
  run_ok(0, "export", dir, "--format", "audacity", "-o", labels);
  g_autofree char *text_a = read_all(lab_a);
  g_assert_true(g_str_has_prefix(text_a, "0.250000\t0.500000\tno\n0.77156"));
  g_assert_true(g_str_has_suffix(text_a, "\tyes\n"));
  g_autofree char *text_b = read_all(lab_b);
  g_assert_cmpstr(text_b, ==, "0.000375\t1.500125\tyes\n");
  Result r = run("export", dir, "--format", "audacity", "--item", sida, NULL);
  expect_status(&r, 0);
  g_assert_cmpstr(r.out, ==, text_a);
  result_clear(&r);
  run_ok(0, "export", dir, "--format", "segments-jsonl", "-o", jsonl);

  clear_item(dir, ida);
  clear_item(dir, idb);
  check_segments(dir, ida, NULL, 0);
  r = run("import-annotations", dir, "--format", "audacity", lab_a, lab_b, NULL);
  expect_status(&r, 0);
  assert_contains(r.out, "Imported 3 segments into 2 items");
  result_clear(&r);
  check_segments(dir, ida, segs_a, G_N_ELEMENTS(segs_a));
  check_segments(dir, idb, segs_b, G_N_ELEMENTS(segs_b));

  clear_item(dir, ida);
  clear_item(dir, idb);
  run_ok(0, "import-annotations", dir, "--format", "segments-jsonl", jsonl);
  check_segments(dir, ida, segs_a, G_N_ELEMENTS(segs_a));
  check_segments(dir, idb, segs_b, G_N_ELEMENTS(segs_b));
  /* A second import adds nothing. */
  r = run("import-annotations", dir, "--format", "segments-jsonl", jsonl, NULL);
  expect_status(&r, 0);
  assert_contains(r.out, "3 already there");
  result_clear(&r);
  check_segments(dir, ida, segs_a, G_N_ELEMENTS(segs_a));

  /* --item takes a label file of any name. */
  g_autofree char *other = g_build_filename(tmp, "whatever.txt", NULL);
  fth_test_write(other, "0.1\t0.2\tmaybe\n", 14);
  r = run("import-annotations", dir, "--format", "audacity", other, NULL);
  expect_status(&r, 3);
  assert_contains(r.err, "whatever.txt");
  result_clear(&r);
  clear_item(dir, idb);
  g_autofree char *sidb = g_strdup_printf("%" G_GINT64_FORMAT, idb);
  run_ok(0, "import-annotations", dir, "--format", "audacity", "--item", sidb, other);
  const Seg maybe[] = { { 0.1, 0.2, "maybe" } };
  check_segments(dir, idb, maybe, 1);

  /* A segment past the end of the audio is refused and named. */
  g_autofree char *late = g_build_filename(tmp, "late.txt", NULL);
  fth_test_write(late, "0.5\t9.0\tlate\n", 13);
  r = run("import-annotations", dir, "--format", "audacity", "--item", sidb, late, NULL);
  expect_status(&r, 3);
  assert_contains(r.err, "late");
  result_clear(&r);
  check_segments(dir, idb, maybe, 1);
  fth_test_rmtree(tmp);
}

static const char doc[] = "Ünïcödé 東京 met 🎉🎉 Alice\nBob 😀 Ωmega\n";
static const Span spans[] = {
  { 8, 10, "LOC" }, { 15, 17, "EMO" }, { 18, 23, "PER" }, { 24, 27, "PER" }, { 28, 35, "X" },
};

static void
test_spans_round_trip(void)
{
  g_autofree char *tmp = fth_test_tmpdir();
  g_autofree char *dir = g_build_filename(tmp, "proj", NULL);
  g_autofree char *txt = g_build_filename(tmp, "doc.txt", NULL);
  g_autofree char *jsonl = g_build_filename(tmp, "spans.jsonl", NULL);
  g_autofree char *conll = g_build_filename(tmp, "conll", NULL);
  g_autofree char *conll_doc = g_build_filename(conll, "doc.conll", NULL);
  fth_test_write(txt, doc, strlen(doc));
  run_ok(0, "new", dir);
  run_ok(0, "import", dir, txt);
  gint64 id;
  {
    g_autoptr(FthStore) store = open_store(dir);
    id = item_id(store, "doc.txt");
    add_spans(store, id, spans, G_N_ELEMENTS(spans));
  }
  run_ok(0, "export", dir, "--format", "spans-jsonl", "-o", jsonl);
  g_autofree char *j = read_all(jsonl);
  assert_contains(j, "\"start\":8,\"end\":10,\"label\":\"LOC\",\"text\":\"東京\"");
  assert_contains(j, "\"text\":\"🎉🎉\"");
  run_ok(0, "export", dir, "--format", "conll", "-o", conll);
  g_autofree char *c = read_all(conll_doc);
  assert_contains(c, "東京\tB-LOC\nmet\tO\n🎉🎉\tB-EMO\nAlice\tB-PER\n\nBob\tB-PER\n😀\tB-X\n"
                     "Ωmega\tI-X\n");

  clear_item(dir, id);
  check_spans(dir, id, NULL, 0);
  run_ok(0, "import-annotations", dir, "--format", "spans-jsonl", jsonl);
  check_spans(dir, id, spans, G_N_ELEMENTS(spans));
  clear_item(dir, id);
  /* The CoNLL text lacks the final newline: the tokens still line up. */
  run_ok(0, "import-annotations", dir, "--format", "conll", conll_doc);
  check_spans(dir, id, spans, G_N_ELEMENTS(spans));

  /* A CoNLL file whose tokens are another text is left out. */
  g_autofree char *wrong = g_build_filename(tmp, "doc.conll", NULL);
  fth_test_write(wrong, "Hello\tB-PER\n", 12);
  Result r = run("import-annotations", dir, "--format", "conll", wrong, NULL);
  expect_status(&r, 3);
  assert_contains(r.err, "doc.conll");
  result_clear(&r);
  check_spans(dir, id, spans, G_N_ELEMENTS(spans));
  fth_test_rmtree(tmp);
}

static void
test_conll_overlap(void)
{
  g_autofree char *tmp = fth_test_tmpdir();
  g_autofree char *dir = g_build_filename(tmp, "proj", NULL);
  g_autofree char *txt = g_build_filename(tmp, "doc.txt", NULL);
  fth_test_write(txt, doc, strlen(doc));
  run_ok(0, "new", dir);
  run_ok(0, "import", dir, txt);
  gint64 id;
  {
    g_autoptr(FthStore) store = open_store(dir);
    id = item_id(store, "doc.txt");
    const Span nested[] = { { 15, 23, "ORG" }, { 18, 23, "PER" } };
    add_spans(store, id, nested, 2);
  }
  g_autofree char *sid = g_strdup_printf("%" G_GINT64_FORMAT, id);
  Result r = run("export", dir, "--format", "conll", "--item", sid, NULL);
  expect_status(&r, 3);
  assert_contains(r.out, "🎉🎉\tB-ORG\nAlice\tI-ORG\n");
  assert_contains(r.err, "doc.txt: span 18-23 (PER) overlaps span 15-23 (ORG): left out");
  result_clear(&r);
  fth_test_rmtree(tmp);
}

static void
test_malformed(void)
{
  g_autofree char *tmp = fth_test_tmpdir();
  g_autofree char *dir = g_build_filename(tmp, "proj", NULL);
  g_autofree char *wav = g_build_filename(tmp, "a.wav", NULL);
  g_autofree char *good = g_build_filename(tmp, "a.txt", NULL);
  g_autofree char *bad = g_build_filename(tmp, "bad.txt", NULL);
  g_autoptr(GBytes) a = fth_test_wav(16000, 16000);
  fth_test_write_bytes(wav, a);
  fth_test_write(good, "0.1\t0.2\tyes\n", 12);
  const char bad_text[] = "0.1\t0.2\tyes\nnot a label\n";
  fth_test_write(bad, bad_text, strlen(bad_text));
  run_ok(0, "new", dir);
  run_ok(0, "import", dir, wav);
  Result r = run("import-annotations", dir, "--format", "audacity", "--item", "1", good, bad,
                 NULL);
  expect_status(&r, 1);
  assert_contains(r.err, "bad.txt:2");
  result_clear(&r);
  /* Nothing was added, the good file neither. */
  check_segments(dir, 1, NULL, 0);

  g_autofree char *badj = g_build_filename(tmp, "bad.jsonl", NULL);
  const char bad_json[] = "{\"path\":\"a.wav\",\"t0\":0.1,\"t1\":0.2,\"label\":\"x\"}\n"
                          "{\"path\":\"a.wav\",\"t0\":0.5,\"label\":\"x\"}\n";
  fth_test_write(badj, bad_json, strlen(bad_json));
  r = run("import-annotations", dir, "--format", "segments-jsonl", badj, NULL);
  expect_status(&r, 1);
  assert_contains(r.err, "bad.jsonl:2");
  result_clear(&r);
  check_segments(dir, 1, NULL, 0);

  /* Records for an item the project lacks are listed; the others go in. */
  g_autofree char *mixed = g_build_filename(tmp, "mixed.jsonl", NULL);
  const char mixed_json[] = "{\"path\":\"a.wav\",\"t0\":0.1,\"t1\":0.2,\"label\":\"x\"}\n"
                            "{\"path\":\"zz.wav\",\"t0\":0.5,\"t1\":0.6,\"label\":\"x\"}\n";
  fth_test_write(mixed, mixed_json, strlen(mixed_json));
  r = run("import-annotations", dir, "--format", "segments-jsonl", mixed, NULL);
  expect_status(&r, 3);
  assert_contains(r.err, "mixed.jsonl: no audio item “zz.wav”");
  result_clear(&r);
  const Seg x[] = { { 0.1, 0.2, "x" } };
  check_segments(dir, 1, x, 1);

  /* A text format on an audio item. */
  r = run("import-annotations", dir, "--format", "conll", "--item", "1", good, NULL);
  expect_status(&r, 1);
  assert_contains(r.err, "not text");
  result_clear(&r);
  fth_test_rmtree(tmp);
}

static void
test_usage(void)
{
  g_autofree char *tmp = fth_test_tmpdir();
  g_autofree char *dir = g_build_filename(tmp, "proj", NULL);
  run_ok(0, "new", dir);
  const char *cases[][8] = {
    { "import-annotations", dir, "--format", "audacity", NULL },
    { "import-annotations", dir, "x.txt", NULL },
    { "import-annotations", dir, "--format", "xml", "x.txt", NULL },
    { "import-annotations", dir, "--format", "conll", "--item", "-3", "x.txt", NULL },
    { "import-annotations", dir, "--format", "conll", "--bogus", "x.txt", NULL },
    { "export", dir, "--format", "audacity", NULL },
    { "export", dir, "--format", "conll", NULL },
    { "export", dir, "--format", "csv", "--item", "1", NULL },
  };
  for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
    Result r = run(cases[i][0], cases[i][1], cases[i][2], cases[i][3], cases[i][4], cases[i][5],
                   cases[i][6], cases[i][7], NULL);
    if (r.status != 2)
      g_error("case %u: exit %d, expected 2; stderr: %s", i, r.status, r.err);
    g_assert_cmpstr(r.out, ==, "");
    g_assert_cmpstr(r.err, !=, "");
    result_clear(&r);
  }
  Result r = run("--help", NULL);
  assert_contains(r.out, "import-annotations");
  result_clear(&r);
  fth_test_rmtree(tmp);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  if (!cli_test_find_binary())
    return 77;
  g_test_add_func("/cli-formats/segments-round-trip", test_segments_round_trip);
  g_test_add_func("/cli-formats/spans-round-trip", test_spans_round_trip);
  g_test_add_func("/cli-formats/conll-overlap", test_conll_overlap);
  g_test_add_func("/cli-formats/malformed", test_malformed);
  g_test_add_func("/cli-formats/usage", test_usage);
  return g_test_run();
}
