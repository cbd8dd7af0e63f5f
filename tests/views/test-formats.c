/* Segment and span formats: Audacity labels, JSONL and CoNLL round trips, the CoNLL report of
 * spans it cannot hold, bad input, and the store helpers (all or nothing, bounds). */
#include <fathom/formats.h>

#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

static GPtrArray *
sample_segments(void)
{
  GPtrArray *s = g_ptr_array_new_with_free_func((GDestroyNotify)fth_segment_label_free);
  /* Sample-exact times at 48 kHz, overlapping, a label with a space and one in Chinese. */
  g_ptr_array_add(s, fth_segment_label_new("a.wav", 12345.0 / 48000, 48001.0 / 48000, "yes"));
  g_ptr_array_add(s, fth_segment_label_new("a.wav", 24000.0 / 48000, 96017.0 / 48000,
                                           "two words"));
  g_ptr_array_add(s, fth_segment_label_new("a.wav", 0.0, 1.0 / 48000, "狗"));
  return s;
}

static void
test_audacity_round_trip(void)
{
  g_autoptr(GPtrArray) segments = sample_segments();
  g_autofree char *text = fth_audacity_labels_write(segments);
  g_assert_true(g_str_has_prefix(text, "0.257188\t1.000021\tyes\n"));
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) back = fth_audacity_labels_parse(text, strlen(text), "labels.txt", &error);
  g_assert_no_error(error);
  g_assert_cmpuint(back->len, ==, segments->len);
  for (guint i = 0; i < back->len; i++) {
    const FthSegmentLabel *a = g_ptr_array_index(segments, i), *b = g_ptr_array_index(back, i);
    /* Six decimals keep every time on its sample. */
    g_assert_cmpint(lround(a->t0 * 48000), ==, lround(b->t0 * 48000));
    g_assert_cmpint(lround(a->t1 * 48000), ==, lround(b->t1 * 48000));
    g_assert_cmpstr(a->label, ==, b->label);
    g_assert_null(b->path);
  }

  /* Audacity's frequency lines and CRLF are accepted. */
  const char *with_freq = "1.0\t2.0\tdog\r\n\\\t100.0\t2000.0\r\n3\t3.5\t\r\n";
  g_autoptr(GPtrArray) freq = fth_audacity_labels_parse(with_freq, strlen(with_freq), "f.txt",
                                                        &error);
  g_assert_no_error(error);
  g_assert_cmpuint(freq->len, ==, 2);
  g_assert_cmpstr(((FthSegmentLabel *)freq->pdata[0])->label, ==, "dog");
  g_assert_cmpstr(((FthSegmentLabel *)freq->pdata[1])->label, ==, "");
}

static void
test_audacity_bad_input(void)
{
  const char *bad[] = { "1.0\t2.0\tok\nabc\t1\tx\n", "2.0\t1.0\tbackwards\n", "1.0\n" };
  const char *where[] = { "bad.txt:2:", "bad.txt:1:", "bad.txt:1:" };
  for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
    g_autoptr(GError) error = NULL;
    g_assert_null(fth_audacity_labels_parse(bad[i], strlen(bad[i]), "bad.txt", &error));
    g_assert_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
    g_assert_true(g_str_has_prefix(error->message, where[i]));
  }
  g_autoptr(GError) error = NULL;
  g_assert_null(fth_audacity_labels_parse("1\t2\t\xff\n", 7, "latin1.txt", &error));
  g_assert_nonnull(error);
  g_assert_nonnull(strstr(error->message, "latin1.txt"));
}

static void
test_segments_jsonl_round_trip(void)
{
  g_autoptr(GPtrArray) segments = sample_segments();
  g_autofree char *text = fth_segments_jsonl_write(segments);
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) back = fth_segments_jsonl_parse(text, strlen(text), "s.jsonl", &error);
  g_assert_no_error(error);
  g_assert_cmpuint(back->len, ==, segments->len);
  for (guint i = 0; i < back->len; i++) {
    const FthSegmentLabel *a = g_ptr_array_index(segments, i), *b = g_ptr_array_index(back, i);
    g_assert_cmpfloat(a->t0, ==, b->t0); /* JSON doubles round-trip exactly */
    g_assert_cmpfloat(a->t1, ==, b->t1);
    g_assert_cmpstr(a->label, ==, b->label);
    g_assert_cmpstr(b->path, ==, "a.wav");
  }
  const char *bad = "{\"t0\":1,\"t1\":2,\"label\":\"x\"}\n"
                    "{\"t0\":\"1\",\"t1\":2,\"label\":\"x\"}\n";
  g_assert_null(fth_segments_jsonl_parse(bad, strlen(bad), "s.jsonl", &error));
  g_assert_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
  g_assert_true(g_str_has_prefix(error->message, "s.jsonl:2:"));
}

/* Offsets in characters: 北京 is two, 😀 one, e + U+0301 two. */
static const char *DOC = "Alice met Bob in 北京 today 😀 .\nZoe\xcc\x81 saw Bob";

static GPtrArray *
doc_spans(void)
{
  GPtrArray *s = g_ptr_array_new_with_free_func((GDestroyNotify)fth_span_label_free);
  g_ptr_array_add(s, fth_span_label_new("d.txt", 0, 5, "PER"));    /* Alice */
  g_ptr_array_add(s, fth_span_label_new("d.txt", 10, 13, "PER"));  /* Bob */
  g_ptr_array_add(s, fth_span_label_new("d.txt", 17, 19, "LOC"));  /* 北京 */
  g_ptr_array_add(s, fth_span_label_new("d.txt", 26, 27, "EMO"));  /* 😀 */
  g_ptr_array_add(s, fth_span_label_new("d.txt", 30, 34, "PER"));  /* Zoé */
  g_ptr_array_add(s, fth_span_label_new("d.txt", 10, 19, "ORG"));  /* Bob in 北京: overlaps */
  g_ptr_array_add(s, fth_span_label_new("d.txt", 0, 3, "PER"));    /* Ali: inside Alice */
  g_ptr_array_add(s, fth_span_label_new("d.txt", 6, 8, "VERB"));   /* "me": cuts "met" */
  return s;
}

static void
test_spans_jsonl_round_trip(void)
{
  g_autoptr(GPtrArray) spans = doc_spans();
  g_autofree char *text = fth_spans_jsonl_write(spans, DOC);
  g_assert_nonnull(strstr(text, "\"start\":17,\"end\":19,\"label\":\"LOC\",\"text\":\"北京\""));
  g_assert_nonnull(strstr(text, "\"text\":\"😀\""));
  g_assert_nonnull(strstr(text, "\"text\":\"Zoe\xcc\x81\""));
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) back = fth_spans_jsonl_parse(text, strlen(text), "d.jsonl", &error);
  g_assert_no_error(error);
  g_assert_cmpuint(back->len, ==, spans->len);
  for (guint i = 0; i < back->len; i++) {
    const FthSpanLabel *a = g_ptr_array_index(spans, i), *b = g_ptr_array_index(back, i);
    g_assert_cmpint(a->start, ==, b->start);
    g_assert_cmpint(a->end, ==, b->end);
    g_assert_cmpstr(a->label, ==, b->label);
  }
  const char *bad = "{\"start\":4,\"end\":2,\"label\":\"x\"}\n";
  g_assert_null(fth_spans_jsonl_parse(bad, strlen(bad), "d.jsonl", &error));
  g_assert_true(g_str_has_prefix(error->message, "d.jsonl:1:"));
}

static void
test_conll_round_trip_and_report(void)
{
  g_autoptr(GPtrArray) spans = doc_spans();
  g_autoptr(GPtrArray) report = NULL;
  g_autofree char *conll = fth_conll_write(DOC, spans, &report);
  g_assert_cmpstr(conll, ==,
                  "Alice\tB-PER\nmet\tO\nBob\tB-ORG\nin\tI-ORG\n北京\tI-ORG\n"
                  "today\tO\n😀\tB-EMO\n.\tO\n"
                  "\nZoe\xcc\x81\tB-PER\nsaw\tO\nBob\tO\n");
  /* Of spans with one start the longer is kept; what overlaps a kept span is reported. */
  g_assert_cmpuint(report->len, ==, 4);
  g_assert_cmpstr(report->pdata[0], ==, "span 0-3 (PER) overlaps span 0-5 (PER): left out");
  g_assert_cmpstr(report->pdata[1], ==, "span 6-8 (VERB) does not start and end at token edges: "
                                        "left out");
  g_assert_cmpstr(report->pdata[2], ==, "span 10-13 (PER) overlaps span 10-19 (ORG): left out");
  g_assert_cmpstr(report->pdata[3], ==, "span 17-19 (LOC) overlaps span 10-19 (ORG): left out");

  g_autofree char *text = NULL;
  g_autoptr(GPtrArray) back = NULL;
  g_autoptr(GError) error = NULL;
  g_assert_true(fth_conll_parse(conll, strlen(conll), "d.conll", &text, &back, &error));
  g_assert_no_error(error);
  g_assert_cmpstr(text, ==, DOC);
  g_assert_cmpuint(back->len, ==, 4);
  const gint64 want[4][2] = { { 0, 5 }, { 10, 19 }, { 26, 27 }, { 30, 34 } };
  for (guint i = 0; i < 4; i++) {
    const FthSpanLabel *b = g_ptr_array_index(back, i);
    g_assert_cmpint(b->start, ==, want[i][0]);
    g_assert_cmpint(b->end, ==, want[i][1]);
  }

  /* Multi-token entities and IOB1's I- without B-. */
  const char *multi = "New\tB-LOC\nYork\tI-LOC\nis\tO\nbig\tI-ADJ\n";
  g_clear_pointer(&text, g_free);
  g_clear_pointer(&back, g_ptr_array_unref);
  g_assert_true(fth_conll_parse(multi, strlen(multi), "m.conll", &text, &back, &error));
  g_assert_cmpstr(text, ==, "New York is big");
  g_assert_cmpuint(back->len, ==, 2);
  g_assert_cmpint(((FthSpanLabel *)back->pdata[0])->end, ==, 8);
  g_assert_cmpstr(((FthSpanLabel *)back->pdata[1])->label, ==, "ADJ");

  const char *bad = "New\tB-LOC\nYork\tX-LOC\n";
  g_assert_false(fth_conll_parse(bad, strlen(bad), "b.conll", &text, &back, &error));
  g_assert_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
  g_assert_true(g_str_has_prefix(error->message, "b.conll:2:"));
}

static void
test_store_helpers(void)
{
  g_autofree char *dir = g_dir_make_tmp("fth-formats-XXXXXX", NULL);
  g_autofree char *project = g_build_filename(dir, "p", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(FthStore) store = fth_store_create(project, &error);
  g_assert_no_error(error);
  g_autoptr(FthItemRecord) audio = fth_item_record_new();
  audio->kind = FTH_ITEM_AUDIO;
  audio->path = g_strdup("a.wav");
  audio->sha256 = g_strnfill(64, 'a');
  audio->duration_s = 3.0;
  audio->sample_rate = 48000;
  gint64 audio_id, text_id;
  g_assert_true(fth_store_add_item(store, audio, &audio_id, NULL, &error));
  g_autoptr(FthItemRecord) doc = fth_item_record_new();
  doc->kind = FTH_ITEM_TEXT;
  doc->path = g_strdup("d.txt");
  doc->sha256 = g_strnfill(64, 'b');
  doc->length_chars = (gint64)g_utf8_strlen(DOC, -1);
  g_assert_true(fth_store_add_item(store, doc, &text_id, NULL, &error));

  g_autoptr(GPtrArray) segments = sample_segments();
  g_assert_true(fth_item_add_segments(store, audio_id, segments, &error));
  g_assert_no_error(error);
  g_autoptr(GPtrArray) listed = fth_item_list_segments(store, audio_id, FTH_AUTHOR_ANY, &error);
  g_assert_cmpuint(listed->len, ==, 3);
  g_assert_cmpstr(((FthSegmentLabel *)listed->pdata[0])->label, ==, "狗"); /* by start */
  g_assert_cmpstr(((FthSegmentLabel *)listed->pdata[0])->path, ==, "a.wav");
  g_autoptr(FthLabel) yes = fth_store_find_label(store, "yes", &error);
  g_assert_nonnull(yes);
  g_assert_cmpint(yes->kind, ==, FTH_LABEL_SEGMENT);

  /* One segment past the end: nothing of the batch is added. */
  g_ptr_array_add(segments, fth_segment_label_new(NULL, 2.5, 3.5, "late"));
  g_assert_false(fth_item_add_segments(store, audio_id, segments, &error));
  g_assert_error(error, FTH_STORE_ERROR, FTH_STORE_ERROR_INVALID);
  g_assert_cmpstr(error->message, ==,
                  "a.wav: segment 4 (late, 2.500000-3.500000 s) ends after the audio (3.000000 s)");
  g_clear_error(&error);
  g_clear_pointer(&listed, g_ptr_array_unref);
  listed = fth_item_list_segments(store, audio_id, FTH_AUTHOR_ANY, &error);
  g_assert_cmpuint(listed->len, ==, 3);
  g_assert_null(fth_store_find_label(store, "late", &error));

  g_autoptr(GPtrArray) spans = doc_spans();
  g_assert_true(fth_item_add_spans(store, text_id, spans, &error));
  g_autoptr(GPtrArray) listed_spans = fth_item_list_spans(store, text_id, FTH_AUTHOR_HUMAN,
                                                          &error);
  g_assert_cmpuint(listed_spans->len, ==, spans->len);
  g_ptr_array_add(spans, fth_span_label_new(NULL, 40, 50, "PER"));
  g_assert_false(fth_item_add_spans(store, text_id, spans, &error));
  g_assert_nonnull(
    strstr(error->message, "span 9 (PER, 40-50) ends after the text (42 characters)"));

  g_clear_object(&store);
  g_autofree char *db = g_build_filename(project, FTH_STORE_DB_NAME, NULL);
  const char *suffixes[] = { "", "-wal", "-shm" };
  for (guint i = 0; i < 3; i++) {
    g_autofree char *f = g_strconcat(db, suffixes[i], NULL);
    g_remove(f);
  }
  g_rmdir(project);
  g_rmdir(dir);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/formats/audacity-round-trip", test_audacity_round_trip);
  g_test_add_func("/formats/audacity-bad-input", test_audacity_bad_input);
  g_test_add_func("/formats/segments-jsonl-round-trip", test_segments_jsonl_round_trip);
  g_test_add_func("/formats/spans-jsonl-round-trip", test_spans_jsonl_round_trip);
  g_test_add_func("/formats/conll-round-trip-and-report", test_conll_round_trip_and_report);
  g_test_add_func("/formats/store-helpers", test_store_helpers);
  return g_test_run();
}
