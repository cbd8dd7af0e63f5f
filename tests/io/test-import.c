/* The importer: a generated folder tree, CSV, JSONL, IDX, cancellation and resume, copy. */
#include "io-fixtures.h"

#include <fathom/import.h>
#include <glib/gstdio.h>
#include <string.h>

typedef struct {
  char *tmp;
  char *src;
  char *project;
  FthStore *store;
} Fixture;

static void
fixture_set_up(Fixture *f, gconstpointer data)
{
  f->tmp = fth_test_tmpdir();
  f->src = g_build_filename(f->tmp, "src", NULL);
  f->project = g_build_filename(f->tmp, "project", NULL);
  g_autoptr(GError) error = NULL;
  f->store = fth_store_create(f->project, &error);
  g_assert_no_error(error);
}

static void
fixture_tear_down(Fixture *f, gconstpointer data)
{
  g_clear_object(&f->store);
  fth_test_rmtree(f->tmp);
  g_free(f->tmp);
  g_free(f->src);
  g_free(f->project);
}

static char *
src_path(Fixture *f, const char *rel)
{
  return g_build_filename(f->src, rel, NULL);
}

static FthImportReport *
run_import(Fixture *f, const char *const *sources, const FthImportOptions *options)
{
  FthImportReport *report = NULL;
  g_autoptr(GError) error = NULL;
  gboolean ok = fth_import_run(f->store, sources, options, NULL, NULL, NULL, &report, &error);
  g_assert_no_error(error);
  g_assert_true(ok);
  g_assert_nonnull(report);
  return report;
}

static void
assert_problem(const FthImportReport *r, guint i, const char *path, gint64 member,
               const char *reason_part)
{
  g_assert_cmpuint(i, <, r->problems->len);
  const FthImportProblem *p = g_ptr_array_index(r->problems, i);
  g_assert_cmpstr(p->path, ==, path);
  g_assert_cmpint(p->member, ==, member);
  if (!strstr(p->reason, reason_part))
    g_error("problem %u (%s): “%s” does not mention “%s”", i, path, p->reason, reason_part);
}

static gint64
count_items(FthStore *store, FthItemKind kind, FthSplit split)
{
  FthItemFilter filter = FTH_ITEM_FILTER_INIT;
  filter.kind = kind;
  filter.split = split;
  gint64 n = -1;
  g_autoptr(GError) error = NULL;
  g_assert_true(fth_store_count_items(store, &filter, &n, &error));
  g_assert_no_error(error);
  return n;
}

static gint64
annotations_of_label(FthStore *store, const char *name)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(FthLabel) label = fth_store_find_label(store, name, &error);
  g_assert_no_error(error);
  if (!label)
    return -1;
  g_autoptr(GArray) counts = fth_store_count_per_label(store, FTH_AUTHOR_ANY, &error);
  g_assert_no_error(error);
  for (guint i = 0; i < counts->len; i++)
    if (g_array_index(counts, FthLabelCount, i).label_id == label->id)
      return g_array_index(counts, FthLabelCount, i).count;
  return 0;
}

/* The single class label of an item, or NULL. */
static char *
class_of(FthStore *store, gint64 item_id)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) anns = fth_store_list_annotations(store, item_id, &error);
  g_assert_no_error(error);
  if (anns->len == 0)
    return NULL;
  g_assert_cmpuint(anns->len, ==, 1);
  FthAnnotation *a = g_ptr_array_index(anns, 0);
  g_assert_cmpint(a->geom, ==, FTH_GEOM_WHOLE);
  g_autoptr(FthLabel) label = fth_store_get_label(store, a->label_id, &error);
  g_assert_no_error(error);
  return g_strdup(label->name);
}

static FthItemRecord *
item_at(FthStore *store, const char *path, gint64 member)
{
  g_autoptr(GError) error = NULL;
  FthItemRecord *item = fth_store_find_item(store, path, member, &error);
  g_assert_no_error(error);
  if (!item)
    g_error("no item (%s, %" G_GINT64_FORMAT ")", path, member);
  return item;
}

/* ---- a folder tree -------------------------------------------------------------------------- */

static void
make_tree(Fixture *f)
{
  g_autoptr(GBytes) a = fth_test_jpeg(32, 24, 1);
  g_autoptr(GBytes) b = fth_test_png(16, 12, 2);
  g_autoptr(GBytes) c = fth_test_jpeg(20, 10, 3);
  g_autoptr(GBytes) wav = fth_test_wav(8000, 4000);
  g_autofree char *pa = src_path(f, "cats/a.jpg");
  g_autofree char *pb = src_path(f, "cats/b.png");
  g_autofree char *pc = src_path(f, "dogs/c.jpg");
  g_autofree char *pdup = src_path(f, "dogs/dup.jpg");
  g_autofree char *pbroken = src_path(f, "dogs/broken.jpg");
  g_autofree char *pwav = src_path(f, "dogs/bark.wav");
  g_autofree char *pnotes = src_path(f, "notes.txt");
  g_autofree char *pbad = src_path(f, "bad.txt");
  g_autofree char *pjunk = src_path(f, "junk.bin");
  g_autofree char *phidden = src_path(f, ".hidden.jpg");
  fth_test_write_bytes(pa, a);
  fth_test_write_bytes(pb, b);
  fth_test_write_bytes(pc, c);
  fth_test_write_bytes(pdup, a);
  /* A JPEG cut in the middle of its entropy-coded data (large enough that its headers stay
   * whole). */
  g_autoptr(GBytes) big = fth_test_jpeg(200, 150, 4);
  fth_test_write(pbroken, g_bytes_get_data(big, NULL), g_bytes_get_size(big) / 2);
  fth_test_write_bytes(pwav, wav);
  fth_test_write(pnotes, "héllo wörld", strlen("héllo wörld"));
  fth_test_write(pbad, "caf\xe9 cr\xe8me", 10);
  fth_test_write(pjunk, "\x01\x02\x03\x04\x00\xff", 6);
  fth_test_write_bytes(phidden, c);
}

static void
test_tree(Fixture *f, gconstpointer data)
{
  make_tree(f);
  FthImportOptions options;
  fth_import_options_init(&options);
  options.folder_labels = TRUE;
  const char *sources[] = { f->src, NULL };
  g_autoptr(FthImportReport) r = run_import(f, sources, &options);

  g_assert_cmpuint(r->files, ==, 9);
  g_assert_cmpuint(r->added, ==, 5);
  g_assert_cmpuint(r->added_images, ==, 3);
  g_assert_cmpuint(r->added_audio, ==, 1);
  g_assert_cmpuint(r->added_text, ==, 1);
  g_assert_cmpuint(r->duplicates, ==, 1);
  g_assert_cmpuint(r->existing, ==, 0);
  g_assert_cmpuint(r->annotations, ==, 4);
  g_assert_cmpuint(r->labels_created, ==, 2);
  /* Problems in walk order: bad.txt, dogs/broken.jpg, junk.bin. */
  g_assert_cmpuint(r->problems->len, ==, 3);
  g_autofree char *pbad = src_path(f, "bad.txt");
  g_autofree char *pbroken = src_path(f, "dogs/broken.jpg");
  g_autofree char *pjunk = src_path(f, "junk.bin");
  assert_problem(r, 0, pbad, -1, "UTF-8");
  assert_problem(r, 1, pbroken, -1, "");
  assert_problem(r, 2, pjunk, -1, "unsupported");

  g_assert_cmpint(count_items(f->store, FTH_ITEM_ANY, FTH_SPLIT_ANY), ==, 5);
  g_assert_cmpint(count_items(f->store, FTH_ITEM_IMAGE, FTH_SPLIT_ANY), ==, 3);
  g_assert_cmpint(count_items(f->store, FTH_ITEM_AUDIO, FTH_SPLIT_ANY), ==, 1);
  g_assert_cmpint(count_items(f->store, FTH_ITEM_TEXT, FTH_SPLIT_NONE), ==, 1);
  g_assert_cmpint(annotations_of_label(f->store, "cats"), ==, 2);
  g_assert_cmpint(annotations_of_label(f->store, "dogs"), ==, 2);

  g_autofree char *pa = src_path(f, "cats/a.jpg");
  g_autoptr(FthItemRecord) a = item_at(f->store, pa, -1);
  g_assert_cmpint(a->kind, ==, FTH_ITEM_IMAGE);
  g_assert_cmpint(a->width, ==, 32);
  g_assert_cmpint(a->height, ==, 24);
  g_autofree char *a_data = NULL;
  gsize a_len = 0;
  g_assert_true(g_file_get_contents(pa, &a_data, &a_len, NULL));
  g_autofree char *a_sha = g_compute_checksum_for_data(G_CHECKSUM_SHA256, (guint8 *)a_data, a_len);
  g_assert_cmpstr(a->sha256, ==, a_sha);
  g_assert_cmpint(a->size_bytes, ==, (gint64)a_len);
  g_autofree char *a_class = class_of(f->store, a->id);
  g_assert_cmpstr(a_class, ==, "cats");

  g_autofree char *pb = src_path(f, "cats/b.png");
  g_autoptr(FthItemRecord) b = item_at(f->store, pb, -1);
  g_assert_cmpint(b->width, ==, 16);
  g_assert_cmpint(b->height, ==, 12);

  g_autofree char *pwav = src_path(f, "dogs/bark.wav");
  g_autoptr(FthItemRecord) wav = item_at(f->store, pwav, -1);
  g_assert_cmpint(wav->kind, ==, FTH_ITEM_AUDIO);
  g_assert_cmpint(wav->sample_rate, ==, 8000);
  g_assert_cmpfloat_with_epsilon(wav->duration_s, 0.5, 1e-3);

  g_autofree char *pnotes = src_path(f, "notes.txt");
  g_autoptr(FthItemRecord) notes = item_at(f->store, pnotes, -1);
  g_assert_cmpint(notes->kind, ==, FTH_ITEM_TEXT);
  g_assert_cmpint(notes->length_chars, ==, 11);
  g_autofree char *notes_class = class_of(f->store, notes->id);
  g_assert_null(notes_class); /* directly under the source: no folder, no label */

  /* A second run skips everything it has, reports the same problems, adds nothing. */
  g_autoptr(FthImportReport) again = run_import(f, sources, &options);
  g_assert_cmpuint(again->added, ==, 0);
  g_assert_cmpuint(again->existing, ==, 5);
  g_assert_cmpuint(again->duplicates, ==, 1);
  g_assert_cmpuint(again->problems->len, ==, 3);
  g_assert_cmpint(count_items(f->store, FTH_ITEM_ANY, FTH_SPLIT_ANY), ==, 5);
}

static void
test_no_verify(Fixture *f, gconstpointer data)
{
  make_tree(f);
  FthImportOptions options;
  fth_import_options_init(&options);
  options.verify = FALSE;
  g_autofree char *dogs = src_path(f, "dogs");
  const char *sources[] = { dogs, NULL };
  g_autoptr(FthImportReport) r = run_import(f, sources, &options);
  /* Headers only: the truncated JPEG's header is intact, so it goes in unnoticed. That is
   * what verification (the default) is for. */
  g_assert_cmpuint(r->problems->len, ==, 0);
  g_assert_cmpuint(r->added, ==, 4);
  g_assert_cmpuint(r->annotations, ==, 0);
}

static void
test_missing_source(Fixture *f, gconstpointer data)
{
  g_autofree char *missing = src_path(f, "nothing-here");
  const char *sources[] = { missing, NULL };
  g_autoptr(GError) error = NULL;
  FthImportReport *report = NULL;
  g_assert_false(fth_import_run(f->store, sources, NULL, NULL, NULL, NULL, &report, &error));
  g_assert_error(error, FTH_IMPORT_ERROR, FTH_IMPORT_ERROR_SOURCE);
  g_assert_nonnull(strstr(error->message, "nothing-here"));
  fth_import_report_free(report);
}

/* ---- CSV and JSONL ------------------------------------------------------------------------ */

static void
test_csv(Fixture *f, gconstpointer data)
{
  g_autofree char *with_label = src_path(f, "reviews.csv");
  g_autofree char *without_label = src_path(f, "plain.csv");
  g_autofree char *no_text = src_path(f, "notext.csv");
  const char *csv1 = "id,text,label\n"
                     "1,great film,pos\n"
                     "2,\"awful, simply \"\"awful\"\"\nreally\",neg\n"
                     "3,no opinion,\n"
                     "4,,pos\n";
  fth_test_write(with_label, csv1, strlen(csv1));
  const char *csv2 = "text,id\nalpha,1\nbeta,2\n";
  fth_test_write(without_label, csv2, strlen(csv2));
  const char *csv3 = "id,body\n1,hello\n";
  fth_test_write(no_text, csv3, strlen(csv3));

  const char *sources[] = { with_label, without_label, no_text, NULL };
  g_autoptr(FthImportReport) r = run_import(f, sources, NULL);
  g_assert_cmpuint(r->files, ==, 3);
  g_assert_cmpuint(r->added, ==, 5);
  g_assert_cmpuint(r->added_text, ==, 5);
  g_assert_cmpuint(r->annotations, ==, 2);
  g_assert_cmpuint(r->labels_created, ==, 2);
  g_assert_cmpuint(r->problems->len, ==, 2);
  assert_problem(r, 0, with_label, 3, "empty text");
  assert_problem(r, 1, no_text, -1, "text");

  g_autoptr(FthItemRecord) row1 = item_at(f->store, with_label, 1);
  g_assert_cmpstr(row1->text, ==, "awful, simply \"awful\"\nreally");
  g_assert_cmpint(row1->length_chars, ==, 28);
  g_assert_cmpint(row1->kind, ==, FTH_ITEM_TEXT);
  g_autofree char *sha = g_compute_checksum_for_string(G_CHECKSUM_SHA256, row1->text, -1);
  g_assert_cmpstr(row1->sha256, ==, sha);
  g_autofree char *c1 = class_of(f->store, row1->id);
  g_assert_cmpstr(c1, ==, "neg");
  g_autoptr(FthItemRecord) row2 = item_at(f->store, with_label, 2);
  g_autofree char *c2 = class_of(f->store, row2->id);
  g_assert_null(c2);
  g_autoptr(FthItemRecord) beta = item_at(f->store, without_label, 1);
  g_assert_cmpstr(beta->text, ==, "beta");
  g_autofree char *c3 = class_of(f->store, beta->id);
  g_assert_null(c3);

  /* A label column named explicitly but absent is reported with the file. */
  FthImportOptions options;
  fth_import_options_init(&options);
  options.label_column = "category";
  const char *one[] = { without_label, NULL };
  g_autofree char *copy = src_path(f, "plain2.csv");
  fth_test_write(copy, "text\ngamma\n", 11);
  one[0] = copy;
  g_autoptr(FthImportReport) r2 = run_import(f, one, &options);
  g_assert_cmpuint(r2->added, ==, 0);
  g_assert_cmpuint(r2->problems->len, ==, 1);
  assert_problem(r2, 0, copy, -1, "category");

  /* Another text column: the rows are new content. */
  fth_import_options_init(&options);
  options.text_column = "body";
  const char *body[] = { no_text, NULL };
  g_autoptr(FthImportReport) r3 = run_import(f, body, &options);
  g_assert_cmpuint(r3->added, ==, 1);
  g_assert_cmpuint(r3->problems->len, ==, 0);
}

static void
test_jsonl(Fixture *f, gconstpointer data)
{
  g_autofree char *path = src_path(f, "data.jsonl");
  const char *jsonl = "{\"text\":\"first\",\"label\":\"x\"}\n"
                      "{\"text\":\"second\"}\n"
                      "\n"
                      "{\"label\":\"y\"}\n"
                      "{\"text\":\"fourth\",\"label\":3}\n"
                      "{\"text\":\"first\",\"label\":\"x\"}\n";
  fth_test_write(path, jsonl, strlen(jsonl));
  const char *sources[] = { path, NULL };
  g_autoptr(FthImportReport) r = run_import(f, sources, NULL);
  g_assert_cmpuint(r->added, ==, 3);
  g_assert_cmpuint(r->duplicates, ==, 1);
  g_assert_cmpuint(r->annotations, ==, 2);
  g_assert_cmpuint(r->problems->len, ==, 1);
  assert_problem(r, 0, path, 2, "no string field “text”");
  g_autoptr(FthItemRecord) fourth = item_at(f->store, path, 3);
  g_assert_cmpstr(fourth->text, ==, "fourth");
  g_autofree char *c = class_of(f->store, fourth->id);
  g_assert_cmpstr(c, ==, "3");
  g_assert_cmpint(annotations_of_label(f->store, "x"), ==, 1);
  g_assert_cmpint(annotations_of_label(f->store, "y"), ==, -1);

  /* Other field names. */
  g_autofree char *other = src_path(f, "other.jsonl");
  const char *jsonl2 = "{\"body\":\"fifth\",\"cat\":\"z\"}\n";
  fth_test_write(other, jsonl2, strlen(jsonl2));
  FthImportOptions options;
  fth_import_options_init(&options);
  options.jsonl_text_field = "body";
  options.jsonl_label_field = "cat";
  const char *two[] = { other, NULL };
  g_autoptr(FthImportReport) r2 = run_import(f, two, &options);
  g_assert_cmpuint(r2->added, ==, 1);
  g_assert_cmpint(annotations_of_label(f->store, "z"), ==, 1);
}

/* ---- IDX ---------------------------------------------------------------------------------- */

static void
test_idx(Fixture *f, gconstpointer data)
{
  /* Fashion: 5 records of 3 rows x 4 columns; record 3 repeats record 0. */
  guint8 images[5 * 12];
  for (int r = 0; r < 5; r++)
    for (int i = 0; i < 12; i++)
      images[r * 12 + i] = (guint8)(r == 3 ? i : r * 16 + i);
  guint8 labels[5] = { 0, 9, 3, 0, 1 };
  guint32 idims[] = { 5, 3, 4 }, ldims[] = { 5 };
  g_autofree char *fimg = src_path(f, "fashion/train-images-idx3-ubyte.gz");
  g_autofree char *flab = src_path(f, "fashion/train-labels-idx1-ubyte.gz");
  fth_test_write_idx(fimg, idims, 3, images, TRUE);
  fth_test_write_idx(flab, ldims, 1, labels, TRUE);
  /* Digits, not gzip'ed, test split; labels 0..2. */
  guint8 dimages[3 * 4] = { 100, 101, 102, 103, 110, 111, 112, 113, 120, 121, 122, 123 };
  guint8 dlabels[3] = { 2, 0, 2 };
  guint32 ddims[] = { 3, 2, 2 }, dl[] = { 3 };
  g_autofree char *dimg = src_path(f, "digits/t10k-images-idx3-ubyte");
  g_autofree char *dlab = src_path(f, "digits/t10k-labels-idx1-ubyte");
  fth_test_write_idx(dimg, ddims, 3, dimages, FALSE);
  fth_test_write_idx(dlab, dl, 1, dlabels, FALSE);
  /* A labels file whose images file does not exist. */
  g_autofree char *orphan = src_path(f, "orphan/x-labels-idx1-ubyte");
  fth_test_write_idx(orphan, dl, 1, dlabels, FALSE);

  const char *sources[] = { f->src, NULL };
  g_autoptr(FthImportReport) r = run_import(f, sources, NULL);
  g_assert_cmpuint(r->added, ==, 7);
  g_assert_cmpuint(r->added_images, ==, 7);
  g_assert_cmpuint(r->duplicates, ==, 1);
  g_assert_cmpuint(r->annotations, ==, 7);
  g_assert_cmpuint(r->labels_created, ==, 10 + 3);
  g_assert_cmpuint(r->problems->len, ==, 1);
  assert_problem(r, 0, orphan, -1, "without its images file");

  g_assert_cmpint(count_items(f->store, FTH_ITEM_IMAGE, FTH_SPLIT_TRAIN), ==, 4);
  g_assert_cmpint(count_items(f->store, FTH_ITEM_IMAGE, FTH_SPLIT_TEST), ==, 3);
  /* Fashion-MNIST names, created in class order. */
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) all = fth_store_list_labels(f->store, &error);
  g_assert_no_error(error);
  g_assert_cmpuint(all->len, ==, 13);
  /* digits/ comes first in the walk: "0", "1", "2", then the ten Fashion-MNIST names. */
  for (guint i = 0; i < 3; i++) {
    g_autofree char *digit = g_strdup_printf("%u", i);
    g_assert_cmpstr(((FthLabel *)g_ptr_array_index(all, i))->name, ==, digit);
  }
  for (guint i = 0; i < 10; i++)
    g_assert_cmpstr(((FthLabel *)g_ptr_array_index(all, 3 + i))->name, ==,
                    fth_fashion_mnist_classes[i]);
  g_assert_cmpint(annotations_of_label(f->store, "T-shirt/top"), ==, 1);
  g_assert_cmpint(annotations_of_label(f->store, "Ankle boot"), ==, 1);
  g_assert_cmpint(annotations_of_label(f->store, "Coat"), ==, 0);
  g_assert_cmpint(annotations_of_label(f->store, "2"), ==, 2);
  g_assert_cmpint(annotations_of_label(f->store, "0"), ==, 1);

  g_autoptr(FthItemRecord) rec1 = item_at(f->store, fimg, 1);
  g_assert_cmpint(rec1->width, ==, 4);
  g_assert_cmpint(rec1->height, ==, 3);
  g_assert_cmpint(rec1->size_bytes, ==, 12);
  g_assert_cmpint(rec1->split, ==, FTH_SPLIT_TRAIN);
  g_autofree char *sha = g_compute_checksum_for_data(G_CHECKSUM_SHA256, images + 12, 12);
  g_assert_cmpstr(rec1->sha256, ==, sha);
  g_autofree char *c1 = class_of(f->store, rec1->id);
  g_assert_cmpstr(c1, ==, "Ankle boot");
  g_autoptr(FthItemRecord) d2 = item_at(f->store, dimg, 2);
  g_autofree char *c2 = class_of(f->store, d2->id);
  g_assert_cmpstr(c2, ==, "2");

  /* Again: nothing new. */
  g_autoptr(FthImportReport) again = run_import(f, sources, NULL);
  g_assert_cmpuint(again->added, ==, 0);
  g_assert_cmpuint(again->existing, ==, 7);
  g_assert_cmpuint(again->labels_created, ==, 0);
}

static void
test_idx_mismatch(Fixture *f, gconstpointer data)
{
  guint8 images[2 * 4] = { 0 };
  images[4] = 1;
  guint8 labels[3] = { 0, 1, 2 };
  guint32 idims[] = { 2, 2, 2 }, ldims[] = { 3 };
  g_autofree char *img = src_path(f, "train-images-idx3-ubyte");
  g_autofree char *lab = src_path(f, "train-labels-idx1-ubyte");
  fth_test_write_idx(img, idims, 3, images, FALSE);
  fth_test_write_idx(lab, ldims, 1, labels, FALSE);
  const char *sources[] = { img, NULL };
  g_autoptr(FthImportReport) r = run_import(f, sources, NULL);
  g_assert_cmpuint(r->added, ==, 0);
  g_assert_cmpuint(r->problems->len, ==, 1);
  assert_problem(r, 0, lab, -1, "holds 3 labels");
}

/* ---- cancel and resume -------------------------------------------------------------------- */

typedef struct {
  GCancellable *cancellable;
  gint64 cancel_after;
  guint calls;
} CancelAt;

static void
cancel_progress(gint64 done, gint64 total, const char *current, const FthImportReport *report,
                gpointer user_data)
{
  CancelAt *c = user_data;
  c->calls++;
  if ((gint64)report->added >= c->cancel_after)
    g_cancellable_cancel(c->cancellable);
}

static void
test_cancel_resume(Fixture *f, gconstpointer data)
{
  enum { N = 240 };
  for (guint i = 0; i < N; i++) {
    g_autoptr(GBytes) png = fth_test_png(4, 4, 1000 + i);
    g_autofree char *rel = g_strdup_printf("class%u/%03u.png", i % 3, i);
    g_autofree char *path = src_path(f, rel);
    fth_test_write_bytes(path, png);
  }
  FthImportOptions options;
  fth_import_options_init(&options);
  options.folder_labels = TRUE;
  options.batch_size = 50;
  const char *sources[] = { f->src, NULL };
  CancelAt c = { g_cancellable_new(), 130, 0 };
  FthImportReport *report = NULL;
  g_autoptr(GError) error = NULL;
  g_assert_false(fth_import_run(f->store, sources, &options, c.cancellable, cancel_progress, &c,
                                &report, &error));
  g_assert_error(error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_cmpuint(report->added, >=, 130);
  g_assert_cmpuint(report->added, <, N);
  guint64 first = report->added;
  fth_import_report_free(report);
  g_clear_error(&error);

  /* Consistent: the items the report counted are all there, each with its annotation. */
  g_assert_true(fth_store_check_integrity(f->store, &error));
  g_assert_no_error(error);
  g_assert_cmpint(count_items(f->store, FTH_ITEM_ANY, FTH_SPLIT_ANY), ==, (gint64)first);
  /* The walk is sorted: class0/ (80 files) is complete, class1/ partly done, and class2/ was
   * not reached, so its label does not exist yet (-1). */
  g_assert_cmpint(annotations_of_label(f->store, "class0"), ==, N / 3);
  g_assert_cmpint(annotations_of_label(f->store, "class2"), ==, -1);
  gint64 anns = annotations_of_label(f->store, "class0") + annotations_of_label(f->store, "class1");
  g_assert_cmpint(anns, ==, (gint64)first);

  /* The re-run completes it. */
  g_autoptr(FthImportReport) rest = run_import(f, sources, &options);
  g_assert_cmpuint(rest->existing, ==, first);
  g_assert_cmpuint(rest->added, ==, N - first);
  g_assert_cmpint(count_items(f->store, FTH_ITEM_ANY, FTH_SPLIT_ANY), ==, N);
  g_assert_cmpint(annotations_of_label(f->store, "class1"), ==, N / 3);
  g_object_unref(c.cancellable);
}

/* ---- copy --------------------------------------------------------------------------------- */

static void
test_copy(Fixture *f, gconstpointer data)
{
  make_tree(f);
  FthImportOptions options;
  fth_import_options_init(&options);
  options.copy = TRUE;
  options.folder_labels = TRUE;
  g_autofree char *cats = src_path(f, "cats");
  const char *sources[] = { cats, NULL };
  g_autoptr(FthImportReport) r = run_import(f, sources, &options);
  g_assert_cmpuint(r->copied, ==, 2);
  g_assert_cmpuint(r->added, ==, 2);
  g_autofree char *copied = g_build_filename(f->project, "media", "cats", "a.jpg", NULL);
  g_assert_true(g_file_test(copied, G_FILE_TEST_IS_REGULAR));
  g_autoptr(FthItemRecord) a = item_at(f->store, "media/cats/a.jpg", -1);
  g_assert_cmpstr(a->path, ==, "media/cats/a.jpg");
  g_assert_cmpint(a->width, ==, 32);
  /* Folder labels come from the copy's layout too: media/cats/<file> is under the source. */
  g_autoptr(FthImportReport) again = run_import(f, sources, &options);
  g_assert_cmpuint(again->copied, ==, 0);
  g_assert_cmpuint(again->existing, ==, 2);
}

/* ---- as a job ----------------------------------------------------------------------------- */

static void
collect(FthJob *job, const FthJobEvent *ev, gpointer user_data)
{
  g_ptr_array_add(user_data, fth_job_event_copy(ev));
}

static void
test_job(Fixture *f, gconstpointer data)
{
  make_tree(f);
  const char *sources[] = { f->src, NULL };
  g_autoptr(GPtrArray) events = g_ptr_array_new_with_free_func((GDestroyNotify)fth_job_event_free);
  g_autoptr(FthJob) job = fth_import_job_new(f->store, sources, NULL);
  fth_job_subscribe(job, NULL, collect, events, NULL);
  fth_job_start(job);
  fth_job_wait_iterate(job, NULL);
  g_assert_cmpint(fth_job_get_state(job), ==, FTH_JOB_STATE_SUCCEEDED);
  const FthImportReport *r = fth_import_job_get_report(job);
  g_assert_nonnull(r);
  g_assert_cmpuint(r->added, ==, 5);
  g_assert_cmpuint(r->problems->len, ==, 3);
  g_autofree char *pbroken = src_path(f, "dogs/broken.jpg");
  guint problem_events = 0;
  gboolean saw_final = FALSE;
  for (guint i = 0; i < events->len; i++) {
    FthJobEvent *ev = g_ptr_array_index(events, i);
    if (ev->message && g_str_has_prefix(ev->message, pbroken))
      problem_events++;
    double added;
    if (fth_job_event_get_metric(ev, "added", &added) && ev->step == ev->total && added == 5)
      saw_final = TRUE;
  }
  g_assert_cmpuint(problem_events, ==, 1);
  g_assert_true(saw_final);
  g_assert_cmpint(((FthJobEvent *)g_ptr_array_index(events, events->len - 1))->type, ==,
                  FTH_JOB_EVENT_SUCCEEDED);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
#define ADD(name, fn) g_test_add("/import/" name, Fixture, NULL, fixture_set_up, fn, fixture_tear_down)
  ADD("tree", test_tree);
  ADD("no-verify", test_no_verify);
  ADD("missing-source", test_missing_source);
  ADD("csv", test_csv);
  ADD("jsonl", test_jsonl);
  ADD("idx", test_idx);
  ADD("idx-mismatch", test_idx_mismatch);
  ADD("cancel-resume", test_cancel_resume);
  ADD("copy", test_copy);
  ADD("job", test_job);
  return g_test_run();
}
