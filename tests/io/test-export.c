/* Export to CSV and JSONL: the files read back with independent readers, and a round trip
 * through the importer. */
#include "io-fixtures.h"

#include <fathom/export.h>
#include <fathom/import.h>
#include <fathom/media.h>
#include <string.h>

static gint64
add_item(FthStore *store, FthItemKind kind, const char *path, gint64 member, const char *text)
{
  g_autoptr(FthItemRecord) rec = fth_item_record_new();
  rec->kind = kind;
  rec->path = g_strdup(path);
  rec->sha256 = g_compute_checksum_for_string(G_CHECKSUM_SHA256, text ? text : path, -1);
  if (kind == FTH_ITEM_IMAGE)
    rec->width = 64, rec->height = 48;
  if (kind == FTH_ITEM_AUDIO)
    rec->duration_s = 1.25, rec->sample_rate = 16000;
  if (text) {
    rec->text = g_strdup(text);
    rec->length_chars = g_utf8_strlen(text, -1);
  }
  rec->member = member;
  rec->split = FTH_SPLIT_TRAIN;
  gint64 id = 0;
  gboolean dup = FALSE;
  g_autoptr(GError) error = NULL;
  g_assert_true(fth_store_add_item(store, rec, &id, &dup, &error));
  g_assert_no_error(error);
  return id;
}

static gint64
add_label(FthStore *store, const char *name)
{
  gint64 id = 0;
  g_autoptr(GError) error = NULL;
  g_assert_true(fth_store_add_label(store, name, NULL, NULL, FTH_LABEL_ANY, &id, &error));
  g_assert_no_error(error);
  return id;
}

static void
add_ann(FthStore *store, FthAnnotation *ann)
{
  g_autoptr(GError) error = NULL;
  g_assert_true(fth_store_add_annotation(store, ann, NULL, &error));
  g_assert_no_error(error);
}

typedef struct {
  gint64 image, audio, text1, text2;
} Items;

static FthStore *
make_store(const char *dir, Items *items)
{
  g_autoptr(GError) error = NULL;
  FthStore *store = fth_store_create(dir, &error);
  g_assert_no_error(error);
  gint64 cat = add_label(store, "cat");
  gint64 word = add_label(store, "word, \"quoted\"");
  gint64 pos = add_label(store, "pos");
  items->image = add_item(store, FTH_ITEM_IMAGE, "media/a.jpg", -1, NULL);
  items->audio = add_item(store, FTH_ITEM_AUDIO, "/abs/b.wav", -1, NULL);
  items->text1 = add_item(store, FTH_ITEM_TEXT, "t.csv", 0, "héllo, \"world\"\nline two");
  items->text2 = add_item(store, FTH_ITEM_TEXT, "t2.csv", 0, "unlabeled");

  g_autoptr(FthAnnotation) box = fth_annotation_new();
  box->item_id = items->image, box->label_id = cat, box->geom = FTH_GEOM_BOX;
  box->x = 1.5, box->y = 2, box->w = 10, box->h = 20.25;
  add_ann(store, box);
  g_autoptr(FthAnnotation) poly = fth_annotation_new();
  poly->item_id = items->image, poly->label_id = cat;
  fth_annotation_set_points(poly, (double[]){ 0, 0, 10, 0, 5, 8.5 }, 3);
  poly->author = FTH_AUTHOR_MODEL;
  poly->score = 0.75;
  add_ann(store, poly);
  g_autoptr(FthAnnotation) seg = fth_annotation_new();
  seg->item_id = items->audio, seg->label_id = word, seg->geom = FTH_GEOM_SEGMENT;
  seg->t0 = 0.25, seg->t1 = 0.5;
  add_ann(store, seg);
  g_autoptr(FthAnnotation) cls = fth_annotation_new();
  cls->item_id = items->text1, cls->label_id = pos, cls->geom = FTH_GEOM_WHOLE;
  add_ann(store, cls);
  g_autoptr(FthAnnotation) span = fth_annotation_new();
  span->item_id = items->text1, span->label_id = word, span->geom = FTH_GEOM_SPAN;
  span->start = 0, span->end = 5;
  add_ann(store, span);
  return store;
}

static void
test_csv(void)
{
  g_autofree char *tmp = fth_test_tmpdir();
  g_autofree char *dir = g_build_filename(tmp, "p", NULL);
  Items items;
  g_autoptr(FthStore) store = make_store(dir, &items);
  g_autofree char *out = g_build_filename(tmp, "out.csv", NULL);
  g_autoptr(GError) error = NULL;
  guint64 n = 0;
  g_assert_true(fth_export_to_file(store, FTH_EXPORT_CSV, out, NULL, &n, &error));
  g_assert_no_error(error);
  g_assert_cmpuint(n, ==, 4);

  g_autoptr(FthCsvReader) reader = fth_csv_reader_open(out, &error);
  g_assert_no_error(error);
  guint n_cols = 0;
  const char *const *cols = fth_csv_reader_get_columns(reader, &n_cols);
  const char *expected_cols[] = { "item_id", "kind", "path", "member", "sha256", "split",
                                  "width", "height", "duration_s", "sample_rate",
                                  "length_chars", "text", "label", "geom", "x", "y", "w", "h",
                                  "points", "t0", "t1", "start", "end", "author", "score" };
  g_assert_cmpuint(n_cols, ==, G_N_ELEMENTS(expected_cols));
  for (guint i = 0; i < n_cols; i++)
    g_assert_cmpstr(cols[i], ==, expected_cols[i]);

  /* Rows: image box, image polygon, audio segment, text class, text span, unlabeled text. */
  const char *expect[][25] = {
    { NULL, "image", "media/a.jpg", "-1", NULL, "train", "64", "48", "", "", "", "", "cat",
      "box", "1.5", "2", "10", "20.25", "", "", "", "", "", "human", "1" },
    { NULL, "image", "media/a.jpg", "-1", NULL, "train", "64", "48", "", "", "", "", "cat",
      "polygon", "", "", "", "", "0 0 10 0 5 8.5", "", "", "", "", "model", "0.75" },
    { NULL, "audio", "/abs/b.wav", "-1", NULL, "train", "", "", "1.25", "16000", "", "",
      "word, \"quoted\"", "segment", "", "", "", "", "", "0.25", "0.5", "", "", "human", "1" },
    { NULL, "text", "t.csv", "0", NULL, "train", "", "", "", "", "23",
      "héllo, \"world\"\nline two", "pos", "whole", "", "", "", "", "", "", "", "", "", "human",
      "1" },
    { NULL, "text", "t.csv", "0", NULL, "train", "", "", "", "", "23",
      "héllo, \"world\"\nline two", "word, \"quoted\"", "span", "", "", "", "", "", "", "", "0",
      "5", "human", "1" },
    { NULL, "text", "t2.csv", "0", NULL, "train", "", "", "", "", "9", "unlabeled", "", "", "",
      "", "", "", "", "", "", "", "", "", "" },
  };
  const char *const *fields;
  guint n_fields;
  guint row = 0;
  while (fth_csv_reader_next_row(reader, &fields, &n_fields, &error)) {
    g_assert_cmpuint(row, <, G_N_ELEMENTS(expect));
    g_assert_cmpuint(n_fields, ==, 25);
    for (guint c = 0; c < 25; c++)
      if (expect[row][c] && g_strcmp0(fields[c], expect[row][c]) != 0)
        g_error("row %u column %s: “%s”, expected “%s”", row, expected_cols[c], fields[c],
                expect[row][c]);
    g_assert_cmpuint(strlen(fields[4]), ==, 64);
    row++;
  }
  g_assert_no_error(error);
  g_assert_cmpuint(row, ==, G_N_ELEMENTS(expect));
  fth_test_rmtree(tmp);
}

static void
test_jsonl(void)
{
  g_autofree char *tmp = fth_test_tmpdir();
  g_autofree char *dir = g_build_filename(tmp, "p", NULL);
  Items items;
  g_autoptr(FthStore) store = make_store(dir, &items);
  g_autoptr(GOutputStream) mem = g_memory_output_stream_new_resizable();
  g_autoptr(GError) error = NULL;
  g_assert_true(fth_export_to_stream(store, FTH_EXPORT_JSONL, mem, NULL, NULL, &error));
  g_assert_no_error(error);
  g_assert_true(g_output_stream_close(mem, NULL, NULL));
  g_autofree char *text = g_strndup(
      g_memory_output_stream_get_data(G_MEMORY_OUTPUT_STREAM(mem)),
      g_memory_output_stream_get_data_size(G_MEMORY_OUTPUT_STREAM(mem)));
  g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
  g_assert_cmpuint(g_strv_length(lines), ==, 5); /* 4 lines and the empty rest */
  g_assert_cmpstr(lines[4], ==, "");

  g_autoptr(JsonParser) parser = json_parser_new();
  /* Image: box then polygon. */
  g_assert_true(json_parser_load_from_data(parser, lines[0], -1, &error));
  JsonObject *o = json_node_get_object(json_parser_get_root(parser));
  g_assert_cmpint(json_object_get_int_member(o, "id"), ==, items.image);
  g_assert_cmpstr(json_object_get_string_member(o, "kind"), ==, "image");
  g_assert_cmpint(json_object_get_int_member(o, "width"), ==, 64);
  g_assert_false(json_object_has_member(o, "label"));
  JsonArray *anns = json_object_get_array_member(o, "annotations");
  g_assert_cmpuint(json_array_get_length(anns), ==, 2);
  JsonObject *box = json_array_get_object_element(anns, 0);
  g_assert_cmpstr(json_object_get_string_member(box, "geom"), ==, "box");
  g_assert_cmpfloat(json_object_get_double_member(box, "x"), ==, 1.5);
  g_assert_cmpfloat(json_object_get_double_member(box, "h"), ==, 20.25);
  JsonObject *poly = json_array_get_object_element(anns, 1);
  JsonArray *pts = json_object_get_array_member(poly, "points");
  g_assert_cmpuint(json_array_get_length(pts), ==, 3);
  g_assert_cmpfloat(json_array_get_double_element(json_array_get_array_element(pts, 2), 1), ==,
                    8.5);
  g_assert_cmpstr(json_object_get_string_member(poly, "author"), ==, "model");
  g_assert_cmpfloat(json_object_get_double_member(poly, "score"), ==, 0.75);
  /* Audio: segment. */
  g_assert_true(json_parser_load_from_data(parser, lines[1], -1, &error));
  o = json_node_get_object(json_parser_get_root(parser));
  g_assert_cmpfloat(json_object_get_double_member(o, "duration_s"), ==, 1.25);
  JsonObject *seg = json_array_get_object_element(json_object_get_array_member(o, "annotations"), 0);
  g_assert_cmpstr(json_object_get_string_member(seg, "label"), ==, "word, \"quoted\"");
  g_assert_cmpfloat(json_object_get_double_member(seg, "t0"), ==, 0.25);
  g_assert_cmpfloat(json_object_get_double_member(seg, "t1"), ==, 0.5);
  /* Text: class and span; the class is also the line's "label". */
  g_assert_true(json_parser_load_from_data(parser, lines[2], -1, &error));
  o = json_node_get_object(json_parser_get_root(parser));
  g_assert_cmpstr(json_object_get_string_member(o, "text"), ==, "héllo, \"world\"\nline two");
  g_assert_cmpstr(json_object_get_string_member(o, "label"), ==, "pos");
  JsonObject *span = json_array_get_object_element(json_object_get_array_member(o, "annotations"), 1);
  g_assert_cmpstr(json_object_get_string_member(span, "geom"), ==, "span");
  g_assert_cmpint(json_object_get_int_member(span, "start"), ==, 0);
  g_assert_cmpint(json_object_get_int_member(span, "end"), ==, 5);
  g_assert_true(json_parser_load_from_data(parser, lines[3], -1, &error));
  o = json_node_get_object(json_parser_get_root(parser));
  g_assert_cmpuint(json_array_get_length(json_object_get_array_member(o, "annotations")), ==, 0);
  fth_test_rmtree(tmp);
}

/* Text items with classes: export, import into a new project, same texts and classes. */
static void
test_round_trip(void)
{
  g_autofree char *tmp = fth_test_tmpdir();
  g_autofree char *dir1 = g_build_filename(tmp, "one", NULL);
  g_autofree char *dir2 = g_build_filename(tmp, "two", NULL);
  g_autofree char *dir3 = g_build_filename(tmp, "three", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(FthStore) one = fth_store_create(dir1, &error);
  g_assert_no_error(error);
  const char *texts[] = { "alpha, with comma", "beta \"quoted\"", "gamma\nnewline", "δέλτα" };
  const char *classes[] = { "a", "b", NULL, "a" };
  gint64 a = add_label(one, "a"), b = add_label(one, "b");
  for (guint i = 0; i < G_N_ELEMENTS(texts); i++) {
    gint64 id = add_item(one, FTH_ITEM_TEXT, "src.csv", i, texts[i]);
    if (classes[i])
      g_assert_true(fth_store_set_class(one, id, classes[i][0] == 'a' ? a : b, FTH_AUTHOR_HUMAN,
                                        0, 1.0, NULL, &error));
    g_assert_no_error(error);
  }
  g_autofree char *csv = g_build_filename(tmp, "out.csv", NULL);
  g_autofree char *jsonl = g_build_filename(tmp, "out.jsonl", NULL);
  g_assert_true(fth_export_to_file(one, FTH_EXPORT_CSV, csv, NULL, NULL, &error));
  g_assert_true(fth_export_to_file(one, FTH_EXPORT_JSONL, jsonl, NULL, NULL, &error));
  g_assert_no_error(error);

  struct {
    const char *dir, *file;
  } targets[] = { { dir2, csv }, { dir3, jsonl } };
  for (guint t = 0; t < G_N_ELEMENTS(targets); t++) {
    g_autoptr(FthStore) other = fth_store_create(targets[t].dir, &error);
    g_assert_no_error(error);
    FthImportOptions options;
    fth_import_options_init(&options);
    options.label_column = "label";
    const char *sources[] = { targets[t].file, NULL };
    FthImportReport *report = NULL;
    g_assert_true(fth_import_run(other, sources, &options, NULL, NULL, NULL, &report, &error));
    g_assert_no_error(error);
    g_assert_cmpuint(report->added, ==, G_N_ELEMENTS(texts));
    g_assert_cmpuint(report->problems->len, ==, 0);
    fth_import_report_free(report);
    for (guint i = 0; i < G_N_ELEMENTS(texts); i++) {
      g_autofree char *sha = g_compute_checksum_for_string(G_CHECKSUM_SHA256, texts[i], -1);
      g_autoptr(FthItemRecord) item = fth_store_find_item_by_sha256(other, sha, &error);
      g_assert_no_error(error);
      g_assert_nonnull(item);
      g_assert_cmpstr(item->text, ==, texts[i]);
      g_autoptr(GPtrArray) anns = fth_store_list_annotations(other, item->id, &error);
      g_assert_cmpuint(anns->len, ==, classes[i] ? 1 : 0);
      if (classes[i]) {
        g_autoptr(FthLabel) l =
            fth_store_get_label(other, ((FthAnnotation *)g_ptr_array_index(anns, 0))->label_id,
                                &error);
        g_assert_cmpstr(l->name, ==, classes[i]);
      }
    }
  }
  fth_test_rmtree(tmp);
}

static void
test_unwritable(void)
{
  g_autofree char *tmp = fth_test_tmpdir();
  g_autofree char *dir = g_build_filename(tmp, "p", NULL);
  Items items;
  g_autoptr(FthStore) store = make_store(dir, &items);
  g_autofree char *out = g_build_filename(tmp, "no", "such", "dir", "out.csv", NULL);
  g_autoptr(GError) error = NULL;
  g_assert_false(fth_export_to_file(store, FTH_EXPORT_CSV, out, NULL, NULL, &error));
  g_assert_nonnull(error);
  g_assert_nonnull(strstr(error->message, out));
  fth_test_rmtree(tmp);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/export/csv", test_csv);
  g_test_add_func("/export/jsonl", test_jsonl);
  g_test_add_func("/export/round-trip", test_round_trip);
  g_test_add_func("/export/unwritable", test_unwritable);
  return g_test_run();
}
