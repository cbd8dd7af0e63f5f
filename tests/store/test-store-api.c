/* The typed store API: every call, its constraint errors, transactions and filters. */
#include "fth-config.h"

#include "store-test-util.h"

#include <math.h>
#include <string.h>

typedef struct {
  char *tmp;
  FthStore *store;
} Fixture;

static void
fixture_setup(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  f->tmp = store_test_make_dir();
  f->store = fth_store_create(f->tmp, &error);
  g_assert_no_error(error);
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
  g_clear_object(&f->store);
  store_test_remove_dir(f->tmp);
  g_free(f->tmp);
}

static gint64
add_label(FthStore *store, const char *name, const char *hotkey)
{
  g_autoptr(GError) error = NULL;
  gint64 id = 0;
  g_assert_true(fth_store_add_label(store, name, NULL, hotkey, FTH_LABEL_ANY, &id, &error));
  g_assert_no_error(error);
  return id;
}

/* ---- items -------------------------------------------------------------------------------- */

static void
test_items(Fixture *f, gconstpointer data)
{
  FthStore *store = f->store;
  g_autoptr(GError) error = NULL;

  /* An absolute path inside the project is stored relative; outside it stays absolute. */
  g_autofree char *inside = g_build_filename(f->tmp, "img", "a.png", NULL);
  g_autoptr(FthItemRecord) a = store_test_image(inside, 28, 28);
  gint64 id_a = store_test_add(store, a);
  g_autoptr(FthItemRecord) got = fth_store_get_item(store, id_a, &error);
  g_assert_no_error(error);
  g_assert_cmpstr(got->path, ==, "img/a.png");
  g_assert_cmpint(got->kind, ==, FTH_ITEM_IMAGE);
  g_assert_cmpint(got->member, ==, -1);
  g_assert_cmpint(got->width, ==, 28);
  g_assert_cmpstr(got->sha256, ==, a->sha256);
  g_assert_cmpint(got->created_us, >, 0);
  g_autofree char *resolved = fth_store_resolve_path(store, got->path);
  g_autofree char *canon = g_canonicalize_filename(inside, NULL);
  g_assert_cmpstr(resolved, ==, canon);

  g_autoptr(FthItemRecord) b = store_test_image("/elsewhere/b.png", 10, 20);
  gint64 id_b = store_test_add(store, b);
  g_clear_pointer(&got, fth_item_record_free);
  got = fth_store_find_item(store, "/elsewhere/b.png", -1, &error);
  g_assert_nonnull(got);
  g_assert_cmpint(got->id, ==, id_b);
  g_clear_pointer(&got, fth_item_record_free);
  got = fth_store_find_item(store, inside, -1, &error); /* found by its absolute form too */
  g_assert_nonnull(got);
  g_assert_cmpint(got->id, ==, id_a);
  g_clear_pointer(&got, fth_item_record_free);

  /* Finding nothing is not an error; getting a missing id is. */
  got = fth_store_find_item(store, "img/a.png", 3, &error);
  g_assert_no_error(error);
  g_assert_null(got);
  got = fth_store_get_item(store, 999, &error);
  g_assert_null(got);
  g_assert_error(error, FTH_STORE_ERROR, FTH_STORE_ERROR_NOT_FOUND);
  g_clear_error(&error);

  /* A text row of a CSV file: a member with inline text. */
  g_autoptr(FthItemRecord) row = fth_item_record_new();
  row->kind = FTH_ITEM_TEXT;
  row->path = g_strdup("data.csv");
  row->member = 4;
  row->text = g_strdup("héllo");
  row->length_chars = 5;
  row->sha256 = g_compute_checksum_for_string(G_CHECKSUM_SHA256, "héllo", -1);
  gint64 id_row = store_test_add(store, row);
  got = fth_store_find_item(store, "data.csv", 4, &error);
  g_assert_cmpint(got->id, ==, id_row);
  g_assert_cmpstr(got->text, ==, "héllo");
  g_clear_pointer(&got, fth_item_record_free);

  /* Duplicate content: FALSE, flag, the existing id, no error. Upper-case hex is the same. */
  g_autoptr(FthItemRecord) dup = store_test_image("img/copy.png", 28, 28);
  g_free(dup->sha256);
  dup->sha256 = g_ascii_strup(a->sha256, -1);
  gint64 id = 0;
  gboolean is_dup = FALSE;
  g_assert_false(fth_store_add_item(store, dup, &id, &is_dup, &error));
  g_assert_no_error(error);
  g_assert_true(is_dup);
  g_assert_cmpint(id, ==, id_a);
  got = fth_store_find_item_by_sha256(store, dup->sha256, &error);
  g_assert_cmpint(got->id, ==, id_a);
  g_clear_pointer(&got, fth_item_record_free);
  /* Without the flag a duplicate is a CONFLICT. */
  g_assert_false(fth_store_add_item(store, dup, &id, NULL, &error));
  g_assert_error(error, FTH_STORE_ERROR, FTH_STORE_ERROR_CONFLICT);
  g_clear_error(&error);

  /* The same path and member with other content is a conflict naming the path. */
  g_autoptr(FthItemRecord) other = store_test_image("img/a.png", 1, 1);
  g_free(other->sha256);
  other->sha256 = g_strnfill(64, 'b');
  g_assert_false(fth_store_add_item(store, other, &id, &is_dup, &error));
  g_assert_false(is_dup);
  g_assert_error(error, FTH_STORE_ERROR, FTH_STORE_ERROR_CONFLICT);
  g_assert_nonnull(strstr(error->message, "img/a.png"));
  g_clear_error(&error);

  /* Invalid records. */
  g_free(other->sha256);
  other->sha256 = g_strdup("abc");
  g_assert_false(fth_store_add_item(store, other, &id, &is_dup, &error));
  g_assert_error(error, FTH_STORE_ERROR, FTH_STORE_ERROR_INVALID);
  g_clear_error(&error);
  other->kind = 7;
  g_assert_false(fth_store_add_item(store, other, &id, &is_dup, &error));
  g_assert_error(error, FTH_STORE_ERROR, FTH_STORE_ERROR_INVALID);
  g_clear_error(&error);

  /* Update. */
  got = fth_store_get_item(store, id_b, &error);
  got->width = 640;
  got->mtime = 1234;
  g_assert_true(fth_store_update_item(store, got, &error));
  g_assert_no_error(error);
  g_clear_pointer(&got, fth_item_record_free);
  got = fth_store_get_item(store, id_b, &error);
  g_assert_cmpint(got->width, ==, 640);
  g_assert_cmpint(got->mtime, ==, 1234);
  got->id = 4242;
  g_assert_false(fth_store_update_item(store, got, &error));
  g_assert_error(error, FTH_STORE_ERROR, FTH_STORE_ERROR_NOT_FOUND);
  g_clear_error(&error);
  g_clear_pointer(&got, fth_item_record_free);

  /* Bulk split: all or nothing. */
  gint64 ids[] = { id_a, id_b };
  g_assert_true(fth_store_set_split(store, ids, 2, FTH_SPLIT_VAL, &error));
  gint64 bad[] = { id_row, 4242 };
  g_assert_false(fth_store_set_split(store, bad, 2, FTH_SPLIT_TEST, &error));
  g_assert_error(error, FTH_STORE_ERROR, FTH_STORE_ERROR_NOT_FOUND);
  g_clear_error(&error);
  got = fth_store_get_item(store, id_row, &error);
  g_assert_cmpint(got->split, ==, FTH_SPLIT_NONE);
  g_clear_pointer(&got, fth_item_record_free);
  got = fth_store_get_item(store, id_b, &error);
  g_assert_cmpint(got->split, ==, FTH_SPLIT_VAL);
  g_clear_pointer(&got, fth_item_record_free);

  /* Delete cascades to annotations. */
  gint64 label = add_label(store, "cat", NULL);
  gint64 ann = 0;
  g_assert_true(fth_store_set_class(store, id_a, label, FTH_AUTHOR_HUMAN, 0, 1.0, &ann, &error));
  g_assert_true(fth_store_delete_item(store, id_a, &error));
  g_assert_no_error(error);
  g_autoptr(FthAnnotation) gone = fth_store_get_annotation(store, ann, &error);
  g_assert_null(gone);
  g_assert_error(error, FTH_STORE_ERROR, FTH_STORE_ERROR_NOT_FOUND);
  g_clear_error(&error);
  g_assert_false(fth_store_delete_item(store, id_a, &error));
  g_assert_error(error, FTH_STORE_ERROR, FTH_STORE_ERROR_NOT_FOUND);
  g_clear_error(&error);
  gint64 n = 0;
  g_assert_true(fth_store_count_items(store, NULL, &n, &error));
  g_assert_cmpint(n, ==, 2);
}

/* ---- labels ------------------------------------------------------------------------------- */

static void
test_labels(Fixture *f, gconstpointer data)
{
  FthStore *store = f->store;
  g_autoptr(GError) error = NULL;
  gint64 cat = add_label(store, "cat", "c");
  gint64 dog = 0;
  g_assert_true(fth_store_add_label(store, "dog", "#AA00ff", "d", FTH_LABEL_REGION, &dog, &error));

  g_autoptr(FthLabel) l = fth_store_get_label(store, cat, &error);
  g_assert_cmpstr(l->name, ==, "cat");
  g_assert_cmpstr(l->color, ==, "#4e79a7"); /* the palette's first color */
  g_assert_cmpstr(l->hotkey, ==, "c");
  g_assert_cmpint(l->position, ==, 0);
  g_clear_pointer(&l, fth_label_free);
  l = fth_store_find_label(store, "dog", &error);
  g_assert_cmpint(l->id, ==, dog);
  g_assert_cmpstr(l->color, ==, "#AA00ff");
  g_assert_cmpint(l->kind, ==, FTH_LABEL_REGION);
  g_assert_cmpint(l->position, ==, 1);
  g_clear_pointer(&l, fth_label_free);
  g_assert_null(fth_store_find_label(store, "bird", &error));
  g_assert_no_error(error);

  /* Conflicts name the other label. */
  gint64 id = 0;
  g_assert_false(fth_store_add_label(store, "cat", NULL, NULL, FTH_LABEL_ANY, &id, &error));
  g_assert_error(error, FTH_STORE_ERROR, FTH_STORE_ERROR_CONFLICT);
  g_clear_error(&error);
  g_assert_false(fth_store_add_label(store, "bird", NULL, "d", FTH_LABEL_ANY, &id, &error));
  g_assert_error(error, FTH_STORE_ERROR, FTH_STORE_ERROR_CONFLICT);
  g_assert_nonnull(strstr(error->message, "dog"));
  g_clear_error(&error);
  g_assert_false(fth_store_set_label_hotkey(store, cat, "d", &error));
  g_assert_error(error, FTH_STORE_ERROR, FTH_STORE_ERROR_CONFLICT);
  g_assert_nonnull(strstr(error->message, "dog"));
  g_clear_error(&error);
  g_assert_false(fth_store_rename_label(store, cat, "dog", &error));
  g_assert_error(error, FTH_STORE_ERROR, FTH_STORE_ERROR_CONFLICT);
  g_clear_error(&error);

  /* Invalid values. */
  g_assert_false(fth_store_add_label(store, "bird", "red", NULL, FTH_LABEL_ANY, &id, &error));
  g_assert_error(error, FTH_STORE_ERROR, FTH_STORE_ERROR_INVALID);
  g_clear_error(&error);
  g_assert_false(fth_store_add_label(store, "bird", NULL, "ab", FTH_LABEL_ANY, &id, &error));
  g_assert_error(error, FTH_STORE_ERROR, FTH_STORE_ERROR_INVALID);
  g_clear_error(&error);
  g_assert_false(fth_store_add_label(store, "", NULL, NULL, FTH_LABEL_ANY, &id, &error));
  g_assert_error(error, FTH_STORE_ERROR, FTH_STORE_ERROR_INVALID);
  g_clear_error(&error);
  g_assert_false(fth_store_recolor_label(store, cat, "#12345", &error));
  g_assert_error(error, FTH_STORE_ERROR, FTH_STORE_ERROR_INVALID);
  g_clear_error(&error);

  /* Edits; a hotkey freed by one label can go to another; a unicode hotkey is one key. */
  g_assert_true(fth_store_set_label_hotkey(store, dog, NULL, &error));
  g_assert_true(fth_store_set_label_hotkey(store, cat, "d", &error));
  gint64 bird = 0;
  g_assert_true(fth_store_add_label(store, "bird", NULL, "é", FTH_LABEL_CLASS, &bird, &error));
  g_assert_true(fth_store_rename_label(store, cat, "kitty", &error));
  g_assert_true(fth_store_recolor_label(store, cat, "#010203", &error));
  g_assert_true(fth_store_set_label_position(store, bird, -1, &error));
  g_assert_no_error(error);
  g_autoptr(GPtrArray) labels = fth_store_list_labels(store, &error);
  g_assert_cmpuint(labels->len, ==, 3);
  FthLabel *first = g_ptr_array_index(labels, 0);
  FthLabel *second = g_ptr_array_index(labels, 1);
  g_assert_cmpstr(first->name, ==, "bird");
  g_assert_cmpstr(first->color, ==, "#e15759"); /* third palette color */
  g_assert_cmpstr(second->name, ==, "kitty");
  g_assert_cmpstr(second->color, ==, "#010203");
  g_assert_cmpstr(second->hotkey, ==, "d");
  g_assert_false(fth_store_rename_label(store, 999, "x", &error));
  g_assert_error(error, FTH_STORE_ERROR, FTH_STORE_ERROR_NOT_FOUND);
  g_clear_error(&error);

  /* Removing a label in use needs force, which removes its annotations. */
  g_autoptr(FthItemRecord) item = store_test_image("x.png", 4, 4);
  gint64 item_id = store_test_add(store, item);
  gint64 ann = 0;
  g_assert_true(fth_store_set_class(store, item_id, cat, FTH_AUTHOR_HUMAN, 0, 1, &ann, &error));
  g_assert_false(fth_store_remove_label(store, cat, FALSE, &error));
  g_assert_error(error, FTH_STORE_ERROR, FTH_STORE_ERROR_CONFLICT);
  g_clear_error(&error);
  g_autoptr(FthAnnotation) still = fth_store_get_annotation(store, ann, &error);
  g_assert_nonnull(still);
  g_assert_true(fth_store_remove_label(store, cat, TRUE, &error));
  g_assert_no_error(error);
  g_autoptr(FthAnnotation) gone = fth_store_get_annotation(store, ann, &error);
  g_assert_null(gone);
  g_clear_error(&error);
  g_assert_true(fth_store_remove_label(store, dog, FALSE, &error));
  g_assert_false(fth_store_remove_label(store, dog, FALSE, &error));
  g_assert_error(error, FTH_STORE_ERROR, FTH_STORE_ERROR_NOT_FOUND);
  g_clear_error(&error);
}

/* ---- annotations -------------------------------------------------------------------------- */

static void
expect_invalid(FthStore *store, const FthAnnotation *ann)
{
  g_autoptr(GError) error = NULL;
  gint64 id = 0;
  g_assert_false(fth_store_add_annotation(store, ann, &id, &error));
  g_assert_error(error, FTH_STORE_ERROR, FTH_STORE_ERROR_INVALID);
}

static void
test_annotations(Fixture *f, gconstpointer data)
{
  FthStore *store = f->store;
  g_autoptr(GError) error = NULL;
  g_autoptr(FthItemRecord) item = store_test_image("x.png", 100, 80);
  gint64 item_id = store_test_add(store, item);
  gint64 cat = add_label(store, "cat", NULL), dog = add_label(store, "dog", NULL);

  g_autoptr(FthAnnotation) box = fth_annotation_new();
  box->item_id = item_id;
  box->label_id = cat;
  box->geom = FTH_GEOM_BOX;
  box->x = 1.5, box->y = 2.25, box->w = 10, box->h = 20.125;
  gint64 box_id = 0;
  g_assert_true(fth_store_add_annotation(store, box, &box_id, &error));
  g_assert_no_error(error);

  g_autoptr(FthAnnotation) poly = fth_annotation_new();
  poly->item_id = item_id;
  poly->label_id = dog;
  const double xy[] = { 0, 0, 10, 0, 10, 10, 0.5, 9.5 };
  fth_annotation_set_points(poly, xy, 4);
  poly->author = FTH_AUTHOR_MODEL;
  poly->score = 0.625;
  gint64 run = 0;
  g_assert_true(fth_store_create_run(store, "predict", "r", NULL, &run, &error));
  poly->run_id = run;
  gint64 poly_id = 0;
  g_assert_true(fth_store_add_annotation(store, poly, &poly_id, &error));

  g_autoptr(FthAnnotation) seg = fth_annotation_new();
  seg->item_id = item_id, seg->label_id = cat, seg->geom = FTH_GEOM_SEGMENT;
  seg->t0 = 0.0, seg->t1 = 1.5;
  gint64 seg_id = 0;
  g_assert_true(fth_store_add_annotation(store, seg, &seg_id, &error));
  g_autoptr(FthAnnotation) span = fth_annotation_new();
  span->item_id = item_id, span->label_id = dog, span->geom = FTH_GEOM_SPAN;
  span->start = 3, span->end = 9;
  gint64 span_id = 0;
  g_assert_true(fth_store_add_annotation(store, span, &span_id, &error));
  g_assert_no_error(error);

  g_autoptr(FthAnnotation) got = fth_store_get_annotation(store, box_id, &error);
  g_assert_cmpint(got->geom, ==, FTH_GEOM_BOX);
  g_assert_cmpfloat(got->x, ==, 1.5);
  g_assert_cmpfloat(got->h, ==, 20.125);
  g_assert_cmpint(got->author, ==, FTH_AUTHOR_HUMAN);
  g_assert_cmpint(got->run_id, ==, 0);
  g_assert_cmpint(got->created_us, >, 0);
  g_clear_pointer(&got, fth_annotation_free);
  got = fth_store_get_annotation(store, poly_id, &error);
  g_assert_cmpuint(got->n_points, ==, 4);
  g_assert_cmpmem(got->points, 8 * sizeof(double), xy, sizeof xy);
  g_assert_cmpint(got->run_id, ==, run);
  g_assert_cmpfloat(got->score, ==, 0.625);
  g_clear_pointer(&got, fth_annotation_free);
  got = fth_store_get_annotation(store, span_id, &error);
  g_assert_cmpint(got->start, ==, 3);
  g_assert_cmpint(got->end, ==, 9);
  g_clear_pointer(&got, fth_annotation_free);

  /* Invalid geometry. */
  g_autoptr(FthAnnotation) bad = fth_annotation_new();
  bad->item_id = item_id, bad->label_id = cat;
  bad->geom = FTH_GEOM_BOX, bad->w = 0, bad->h = 5;
  expect_invalid(store, bad);
  bad->w = 5, bad->h = -1;
  expect_invalid(store, bad);
  bad->h = NAN;
  expect_invalid(store, bad);
  fth_annotation_set_points(bad, xy, 2);
  expect_invalid(store, bad);
  bad->geom = FTH_GEOM_SEGMENT, bad->t0 = 2, bad->t1 = 2;
  expect_invalid(store, bad);
  bad->t0 = -1, bad->t1 = 2;
  expect_invalid(store, bad);
  bad->geom = FTH_GEOM_SPAN, bad->start = 5, bad->end = 5;
  expect_invalid(store, bad);
  bad->start = -2, bad->end = 5;
  expect_invalid(store, bad);
  /* Dangling references are refused (foreign keys are on). */
  bad->geom = FTH_GEOM_WHOLE;
  bad->item_id = 999;
  expect_invalid(store, bad);
  bad->item_id = item_id, bad->label_id = 999;
  expect_invalid(store, bad);
  bad->label_id = cat, bad->run_id = 999;
  expect_invalid(store, bad);

  /* Update and remove. */
  box->id = box_id;
  box->label_id = dog;
  box->w = 11;
  g_assert_true(fth_store_update_annotation(store, box, &error));
  got = fth_store_get_annotation(store, box_id, &error);
  g_assert_cmpint(got->label_id, ==, dog);
  g_assert_cmpfloat(got->w, ==, 11);
  g_assert_cmpint(got->updated_us, >=, got->created_us);
  g_clear_pointer(&got, fth_annotation_free);
  box->w = 0;
  g_assert_false(fth_store_update_annotation(store, box, &error));
  g_assert_error(error, FTH_STORE_ERROR, FTH_STORE_ERROR_INVALID);
  g_clear_error(&error);
  g_assert_true(fth_store_remove_annotation(store, seg_id, &error));
  g_assert_false(fth_store_remove_annotation(store, seg_id, &error));
  g_assert_error(error, FTH_STORE_ERROR, FTH_STORE_ERROR_NOT_FOUND);
  g_clear_error(&error);

  g_autoptr(GPtrArray) list = fth_store_list_annotations(store, item_id, &error);
  g_assert_cmpuint(list->len, ==, 3);
  g_assert_cmpint(((FthAnnotation *) g_ptr_array_index(list, 0))->id, ==, box_id);

  /* set_class replaces only the same author's whole-item classes. */
  gint64 c1 = 0, c2 = 0, m1 = 0;
  g_assert_true(fth_store_set_class(store, item_id, cat, FTH_AUTHOR_HUMAN, 0, 1, &c1, &error));
  g_assert_true(fth_store_set_class(store, item_id, cat, FTH_AUTHOR_MODEL, run, 0.9, &m1, &error));
  g_assert_true(fth_store_set_class(store, item_id, dog, FTH_AUTHOR_HUMAN, 0, 1, &c2, &error));
  g_assert_no_error(error);
  g_assert_null(fth_store_get_annotation(store, c1, NULL));
  got = fth_store_get_annotation(store, c2, &error);
  g_assert_cmpint(got->label_id, ==, dog);
  g_assert_cmpint(got->geom, ==, FTH_GEOM_WHOLE);
  g_clear_pointer(&got, fth_annotation_free);
  g_clear_pointer(&list, g_ptr_array_unref);
  list = fth_store_list_annotations(store, item_id, &error);
  g_assert_cmpuint(list->len, ==, 5); /* box, polygon, span, model class, human class */

  /* Counts per label: dog has box, polygon (model), span and the human class. */
  g_autoptr(GArray) counts = fth_store_count_per_label(store, FTH_AUTHOR_ANY, &error);
  g_assert_cmpuint(counts->len, ==, 2);
  g_assert_cmpint(g_array_index(counts, FthLabelCount, 0).label_id, ==, cat);
  g_assert_cmpint(g_array_index(counts, FthLabelCount, 0).count, ==, 1);
  g_assert_cmpint(g_array_index(counts, FthLabelCount, 1).count, ==, 4);
  g_autoptr(GArray) human = fth_store_count_per_label(store, FTH_AUTHOR_HUMAN, &error);
  g_assert_cmpint(g_array_index(human, FthLabelCount, 0).count, ==, 0);
  g_assert_cmpint(g_array_index(human, FthLabelCount, 1).count, ==, 3);

  /* Promote the model's class; then clear the human classes with label 0. */
  g_assert_true(fth_store_promote_annotation(store, m1, &error));
  got = fth_store_get_annotation(store, m1, &error);
  g_assert_cmpint(got->author, ==, FTH_AUTHOR_HUMAN);
  g_assert_cmpint(got->run_id, ==, 0);
  g_assert_cmpfloat(got->score, ==, 1.0);
  g_clear_pointer(&got, fth_annotation_free);
  g_assert_false(fth_store_promote_annotation(store, 999, &error));
  g_assert_error(error, FTH_STORE_ERROR, FTH_STORE_ERROR_NOT_FOUND);
  g_clear_error(&error);
  gint64 none = -1;
  g_assert_true(fth_store_set_class(store, item_id, 0, FTH_AUTHOR_HUMAN, 0, 1, &none, &error));
  g_assert_cmpint(none, ==, 0);
  g_assert_null(fth_store_get_annotation(store, m1, NULL));
  g_assert_null(fth_store_get_annotation(store, c2, NULL));
  got = fth_store_get_annotation(store, box_id, &error); /* not a whole-item class: kept */
  g_assert_nonnull(got);
}

/* ---- runs, predictions, trials, artifacts, queue ------------------------------------------ */

static void
test_runs(Fixture *f, gconstpointer data)
{
  FthStore *store = f->store;
  g_autoptr(GError) error = NULL;
  gint64 train = 0, predict = 0, id = 0;
  g_assert_true(fth_store_create_run(store, "train", "first", "{\"lr\": 0.1}", &train, &error));
  g_assert_true(fth_store_create_run(store, "predict", NULL, NULL, &predict, &error));
  g_assert_false(fth_store_create_run(store, "train", "x", "{lr: ", &id, &error));
  g_assert_error(error, FTH_STORE_ERROR, FTH_STORE_ERROR_INVALID);
  g_clear_error(&error);

  g_autoptr(FthRun) run = fth_store_get_run(store, train, &error);
  g_assert_cmpstr(run->kind, ==, "train");
  g_assert_cmpstr(run->config_json, ==, "{\"lr\": 0.1}");
  g_assert_cmpint(run->state, ==, FTH_RUN_QUEUED);
  g_assert_cmpint(run->finished_us, ==, 0);
  g_clear_pointer(&run, fth_run_free);
  g_assert_true(fth_store_set_run_state(store, train, FTH_RUN_RUNNING, &error));
  g_assert_true(fth_store_set_run_state(store, train, FTH_RUN_DONE, &error));
  g_assert_true(fth_store_set_run_summary(store, train, "{\"acc\": 0.9}", &error));
  g_assert_false(fth_store_set_run_summary(store, train, "nope", &error));
  g_assert_error(error, FTH_STORE_ERROR, FTH_STORE_ERROR_INVALID);
  g_clear_error(&error);
  g_assert_false(fth_store_set_run_state(store, 999, FTH_RUN_DONE, &error));
  g_assert_error(error, FTH_STORE_ERROR, FTH_STORE_ERROR_NOT_FOUND);
  g_clear_error(&error);
  run = fth_store_get_run(store, train, &error);
  g_assert_cmpint(run->state, ==, FTH_RUN_DONE);
  g_assert_cmpint(run->finished_us, >, 0);
  g_assert_cmpstr(run->summary_json, ==, "{\"acc\": 0.9}");
  g_assert_cmpstr(fth_run_state_to_string(run->state), ==, "done");
  g_autoptr(GPtrArray) runs = fth_store_list_runs(store, NULL, &error);
  g_assert_cmpuint(runs->len, ==, 2);
  g_assert_cmpint(((FthRun *) g_ptr_array_index(runs, 0))->id, ==, predict); /* newest first */
  g_autoptr(GPtrArray) trains = fth_store_list_runs(store, "train", &error);
  g_assert_cmpuint(trains->len, ==, 1);

  /* Metrics. */
  g_assert_true(fth_store_add_metric(store, train, 1, 0.5, "loss", 2.0, &error));
  FthMetric many[] = { { 0, 2, 1.0, "loss", 1.0 }, { 0, 2, 1.0, "acc", 0.5 },
                       { 0, 3, 1.5, "loss", INFINITY } };
  g_assert_true(fth_store_add_metrics(store, train, many, 3, &error));
  g_assert_no_error(error);
  FthMetric with_nan[] = { { 0, 4, 2.0, "loss", 0.1 }, { 0, 4, 2.0, "acc", NAN } };
  g_assert_false(fth_store_add_metrics(store, train, with_nan, 2, &error));
  g_assert_error(error, FTH_STORE_ERROR, FTH_STORE_ERROR_INVALID);
  g_clear_error(&error);
  g_assert_false(fth_store_add_metric(store, 999, 1, 0, "loss", 1, &error));
  g_assert_error(error, FTH_STORE_ERROR, FTH_STORE_ERROR_INVALID);
  g_clear_error(&error);
  g_autoptr(GPtrArray) loss = fth_store_list_metrics(store, train, "loss", &error);
  g_assert_cmpuint(loss->len, ==, 3); /* the batch with NaN was rolled back entirely */
  g_assert_cmpfloat(((FthMetric *) g_ptr_array_index(loss, 1))->value, ==, 1.0);
  g_assert_true(isinf(((FthMetric *) g_ptr_array_index(loss, 2))->value));
  g_autoptr(GPtrArray) all = fth_store_list_metrics(store, train, NULL, &error);
  g_assert_cmpuint(all->len, ==, 4);
  g_assert_cmpstr(((FthMetric *) g_ptr_array_index(all, 1))->name, ==, "acc");

  /* Predictions and embeddings. */
  g_autoptr(FthItemRecord) item = store_test_image("p.png", 2, 2);
  gint64 item_id = store_test_add(store, item);
  gint64 cat = add_label(store, "cat", NULL);
  float p1[3] = { 0.1f, 0.7f, 0.2f }, p2[3] = { 0.6f, 0.3f, 0.1f };
  FthPrediction preds[] = { { train, item_id, 3, p1, cat, 0.7 } };
  g_assert_true(fth_store_put_predictions(store, preds, 1, &error));
  g_autoptr(FthPrediction) latest = fth_store_latest_prediction(store, item_id, &error);
  g_assert_cmpint(latest->run_id, ==, train);
  FthPrediction later[] = { { predict, item_id, 3, p2, 0, 0.6 } };
  g_assert_true(fth_store_put_predictions(store, later, 1, &error));
  g_clear_pointer(&latest, fth_prediction_free);
  latest = fth_store_latest_prediction(store, item_id, &error);
  g_assert_cmpint(latest->run_id, ==, predict);
  g_assert_cmpmem(latest->probs, 3 * sizeof(float), p2, sizeof p2);
  g_assert_cmpint(latest->top_label_id, ==, 0);
  g_assert_cmpint(fth_store_latest_prediction_run(store, &error), ==, predict);
  g_autoptr(FthPrediction) first = fth_store_get_prediction(store, train, item_id, &error);
  g_assert_cmpuint(first->n_classes, ==, 3);
  g_assert_cmpfloat(first->probs[1], ==, 0.7f);
  g_assert_cmpint(first->top_label_id, ==, cat);
  g_assert_null(fth_store_get_prediction(store, train, 999, &error));
  g_assert_error(error, FTH_STORE_ERROR, FTH_STORE_ERROR_NOT_FOUND);
  g_clear_error(&error);
  g_assert_null(fth_store_latest_prediction(store, 999, &error));
  g_assert_no_error(error);
  FthPrediction dangling[] = { { train, 999, 3, p1, 0, 0.7 } };
  g_assert_false(fth_store_put_predictions(store, dangling, 1, &error));
  g_assert_error(error, FTH_STORE_ERROR, FTH_STORE_ERROR_INVALID);
  g_clear_error(&error);

  float e[4] = { 1, 2, 3, 4 };
  FthEmbedding embs[] = { { predict, item_id, 4, e } };
  g_assert_true(fth_store_put_embeddings(store, embs, 1, &error));
  g_autoptr(FthEmbedding) emb = fth_store_get_embedding(store, predict, item_id, &error);
  g_assert_cmpuint(emb->dim, ==, 4);
  g_assert_cmpmem(emb->data, 4 * sizeof(float), e, sizeof e);
  g_assert_null(fth_store_get_embedding(store, train, item_id, &error));
  g_assert_error(error, FTH_STORE_ERROR, FTH_STORE_ERROR_NOT_FOUND);
  g_clear_error(&error);

  /* Studies and trials. */
  gint64 study = 0;
  g_assert_true(fth_store_create_study(store, "lr search", "minimize", "{\"lr\": [0.001, 1]}",
                                       train, &study, &error));
  g_assert_false(fth_store_create_study(store, "lr search", "minimize", NULL, 0, &id, &error));
  g_assert_error(error, FTH_STORE_ERROR, FTH_STORE_ERROR_CONFLICT);
  g_clear_error(&error);
  g_assert_false(fth_store_create_study(store, "s2", "sideways", NULL, 0, &id, &error));
  g_assert_error(error, FTH_STORE_ERROR, FTH_STORE_ERROR_INVALID);
  g_clear_error(&error);
  gint64 t0 = 0, t1 = 0;
  int n0 = -1, n1 = -1;
  g_assert_true(fth_store_create_trial(store, study, "{\"lr\": 0.1}", "host-a", &t0, &n0, &error));
  g_assert_true(fth_store_create_trial(store, study, "{\"lr\": 0.2}", NULL, &t1, &n1, &error));
  g_assert_cmpint(n0, ==, 0);
  g_assert_cmpint(n1, ==, 1);
  g_assert_false(fth_store_create_trial(store, 999, NULL, NULL, &id, &n0, &error));
  g_assert_error(error, FTH_STORE_ERROR, FTH_STORE_ERROR_INVALID);
  g_clear_error(&error);
  g_assert_true(fth_store_add_trial_value(store, t0, 2, 0.5, &error));
  g_assert_true(fth_store_add_trial_value(store, t0, 1, 0.7, &error));
  g_assert_true(fth_store_finish_trial(store, t0, FTH_TRIAL_COMPLETE, TRUE, 0.4, 12.5, NULL, &error));
  g_assert_true(fth_store_finish_trial(store, t1, FTH_TRIAL_FAILED, FALSE, 0, 1, "diverged", &error));
  g_assert_no_error(error);
  g_autoptr(GArray) values = fth_store_list_trial_values(store, t0, &error);
  g_assert_cmpuint(values->len, ==, 2);
  g_assert_cmpint(g_array_index(values, FthTrialValue, 0).step, ==, 1);
  g_assert_cmpfloat(g_array_index(values, FthTrialValue, 1).value, ==, 0.5);
  g_autoptr(GPtrArray) trials = fth_store_list_trials(store, study, &error);
  g_assert_cmpuint(trials->len, ==, 2);
  FthTrial *tr0 = g_ptr_array_index(trials, 0), *tr1 = g_ptr_array_index(trials, 1);
  g_assert_true(tr0->has_value);
  g_assert_cmpfloat(tr0->value, ==, 0.4);
  g_assert_cmpstr(tr0->host, ==, "host-a");
  g_assert_cmpint(tr0->state, ==, FTH_TRIAL_COMPLETE);
  g_assert_false(tr1->has_value);
  g_assert_cmpstr(tr1->error, ==, "diverged");
  g_autoptr(FthStudy) st = fth_store_get_study(store, study, &error);
  g_assert_cmpstr(st->direction, ==, "minimize");
  g_assert_cmpint(st->run_id, ==, train);
  g_autoptr(GPtrArray) studies = fth_store_list_studies(store, &error);
  g_assert_cmpuint(studies->len, ==, 1);

  /* Artifacts. */
  FthArtifact art = { .run_id = train, .kind = "checkpoint", .path = "models/a.safetensors",
                      .size_bytes = 1024, .meta_json = "{\"epoch\": 3}" };
  gint64 art_id = 0;
  g_assert_true(fth_store_add_artifact(store, &art, &art_id, &error));
  FthArtifact loose = { .kind = "report", .path = "r.html" };
  g_assert_true(fth_store_add_artifact(store, &loose, &id, &error));
  g_autoptr(GPtrArray) arts = fth_store_list_artifacts(store, train, &error);
  g_assert_cmpuint(arts->len, ==, 1);
  g_autoptr(GPtrArray) all_arts = fth_store_list_artifacts(store, 0, &error);
  g_assert_cmpuint(all_arts->len, ==, 2);
  g_autoptr(FthArtifact) got_art = fth_store_get_artifact(store, art_id, &error);
  g_assert_cmpstr(got_art->path, ==, "models/a.safetensors");
  g_assert_null(got_art->sha256);
  g_assert_true(fth_store_remove_artifact(store, art_id, &error));
  g_assert_false(fth_store_remove_artifact(store, art_id, &error));
  g_assert_error(error, FTH_STORE_ERROR, FTH_STORE_ERROR_NOT_FOUND);
  g_clear_error(&error);

  /* The queue. */
  g_autoptr(FthItemRecord) item2 = store_test_image("q.png", 2, 2);
  gint64 item2_id = store_test_add(store, item2);
  FthQueueEntry entries[] = { { .item_id = item_id, .score = 0.3, .rank = 1 },
                              { .item_id = item2_id, .score = 0.9, .rank = 0 } };
  g_assert_true(fth_store_replace_queue(store, "uncertainty", predict, entries, 2, &error));
  g_autoptr(GPtrArray) queue = fth_store_list_queue(store, "uncertainty", 0, &error);
  g_assert_cmpuint(queue->len, ==, 2);
  FthQueueEntry *q0 = g_ptr_array_index(queue, 0);
  g_assert_cmpint(q0->item_id, ==, item2_id);
  g_assert_cmpint(q0->run_id, ==, predict);
  g_assert_cmpstr(q0->strategy, ==, "uncertainty");
  g_autoptr(GPtrArray) one = fth_store_list_queue(store, "uncertainty", 1, &error);
  g_assert_cmpuint(one->len, ==, 1);
  g_assert_true(fth_store_dequeue_item(store, "uncertainty", item2_id, &error));
  g_autoptr(GPtrArray) after = fth_store_list_queue(store, "uncertainty", 0, &error);
  g_assert_cmpuint(after->len, ==, 1);
  FthQueueEntry dangling_q[] = { { .item_id = 999, .score = 1, .rank = 0 } };
  g_assert_false(fth_store_replace_queue(store, "uncertainty", 0, dangling_q, 1, &error));
  g_assert_error(error, FTH_STORE_ERROR, FTH_STORE_ERROR_INVALID);
  g_clear_error(&error);
  g_autoptr(GPtrArray) kept = fth_store_list_queue(store, "uncertainty", 0, &error);
  g_assert_cmpuint(kept->len, ==, 1); /* the failed replace changed nothing */
}

/* ---- transactions ------------------------------------------------------------------------- */

static void
test_transactions(Fixture *f, gconstpointer data)
{
  FthStore *store = f->store;
  g_autoptr(GError) error = NULL;
  gint64 n = -1;

  g_assert_true(fth_store_begin(store, &error));
  g_assert_true(fth_store_in_transaction(store));
  g_assert_false(fth_store_begin(store, &error));
  g_assert_error(error, FTH_STORE_ERROR, FTH_STORE_ERROR_INVALID);
  g_clear_error(&error);
  for (int i = 0; i < 3; i++) {
    g_autofree char *path = g_strdup_printf("r%d.png", i);
    g_autoptr(FthItemRecord) item = store_test_image(path, 1, 1);
    store_test_add(store, item);
  }
  g_assert_true(fth_store_count_items(store, NULL, &n, &error)); /* sees its own writes */
  g_assert_cmpint(n, ==, 3);
  g_assert_true(fth_store_rollback(store, &error));
  g_assert_false(fth_store_in_transaction(store));
  g_assert_true(fth_store_count_items(store, NULL, &n, &error));
  g_assert_cmpint(n, ==, 0);

  /* A failing call inside a transaction does not spoil it. */
  g_assert_true(fth_store_begin(store, &error));
  g_autoptr(FthItemRecord) a = store_test_image("a.png", 1, 1);
  store_test_add(store, a);
  gint64 id = 0;
  g_assert_false(fth_store_add_item(store, a, &id, NULL, &error));
  g_assert_error(error, FTH_STORE_ERROR, FTH_STORE_ERROR_CONFLICT);
  g_clear_error(&error);
  g_autoptr(FthItemRecord) b = store_test_image("b.png", 1, 1);
  store_test_add(store, b);
  g_assert_true(fth_store_commit(store, &error));
  g_assert_no_error(error);
  g_assert_true(fth_store_count_items(store, NULL, &n, &error));
  g_assert_cmpint(n, ==, 2);

  g_assert_false(fth_store_commit(store, &error));
  g_assert_error(error, FTH_STORE_ERROR, FTH_STORE_ERROR_INVALID);
  g_clear_error(&error);
}

typedef struct {
  FthStore *store;
  GMutex lock;
  GCond cond;
  gboolean done;
  gint64 count;
} ReaderState;

static gpointer
reader_thread(gpointer data)
{
  ReaderState *s = data;
  gint64 n = -1;
  g_autoptr(GError) error = NULL;
  g_assert_true(fth_store_count_items(s->store, NULL, &n, &error));
  g_autoptr(GPtrArray) page = fth_store_list_items_after(s->store, NULL, 0, 10, &error);
  g_assert_nonnull(page);
  g_mutex_lock(&s->lock);
  s->count = n;
  s->done = TRUE;
  g_cond_signal(&s->cond);
  g_mutex_unlock(&s->lock);
  return NULL;
}

/* A reader on another thread is not blocked by an open write transaction and sees the last
 * committed state. */
static void
test_readers_not_blocked(Fixture *f, gconstpointer data)
{
  FthStore *store = f->store;
  g_autoptr(GError) error = NULL;
  g_autoptr(FthItemRecord) a = store_test_image("a.png", 1, 1);
  store_test_add(store, a);
  g_assert_true(fth_store_begin(store, &error));
  g_autoptr(FthItemRecord) b = store_test_image("b.png", 1, 1);
  store_test_add(store, b);

  ReaderState s = { .store = store, .count = -1 };
  g_mutex_init(&s.lock);
  g_cond_init(&s.cond);
  GThread *thread = g_thread_new("reader", reader_thread, &s);
  gint64 deadline = g_get_monotonic_time() + 5 * G_TIME_SPAN_SECOND;
  g_mutex_lock(&s.lock);
  while (!s.done && g_cond_wait_until(&s.cond, &s.lock, deadline))
    ;
  gboolean done = s.done;
  g_mutex_unlock(&s.lock);
  g_assert_true(fth_store_commit(store, &error)); /* releases the reader even on failure */
  g_thread_join(thread);
  g_assert_true(done);
  g_assert_cmpint(s.count, ==, 1);
  g_mutex_clear(&s.lock);
  g_cond_clear(&s.cond);
}

typedef struct {
  FthStore *store;
  gint64 item_id, label_id;
  int index;
} WriterArgs;

static gpointer
writer_thread(gpointer data)
{
  WriterArgs *w = data;
  g_autoptr(GError) error = NULL;
  if (w->index == 0) {
    /* One thread batches items in explicit transactions while the others write singly. */
    for (int batch = 0; batch < 4; batch++) {
      g_assert_true(fth_store_begin(w->store, &error));
      for (int i = 0; i < 50; i++) {
        g_autofree char *path = g_strdup_printf("thread/%d-%d.png", batch, i);
        g_autoptr(FthItemRecord) item = store_test_image(path, 1, 1);
        store_test_add(w->store, item);
      }
      g_assert_true(fth_store_commit(w->store, &error));
    }
    return NULL;
  }
  for (int i = 0; i < 200; i++) {
    FthAnnotation ann = { .item_id = w->item_id, .label_id = w->label_id, .geom = FTH_GEOM_SPAN,
                          .start = i, .end = i + w->index, .score = 1 };
    gint64 id = 0;
    g_assert_true(fth_store_add_annotation(w->store, &ann, &id, &error));
    g_assert_no_error(error);
    gint64 n = 0;
    g_assert_true(fth_store_count_items(w->store, NULL, &n, &error));
  }
  return NULL;
}

/* Several threads share one store: writes are serialised, none is lost. */
static void
test_threads(Fixture *f, gconstpointer data)
{
  g_autoptr(FthItemRecord) item = store_test_image("t.png", 1, 1);
  gint64 item_id = store_test_add(f->store, item);
  gint64 label_id = add_label(f->store, "span", NULL);
  WriterArgs args[4];
  GThread *threads[4];
  for (int t = 0; t < 4; t++) {
    args[t] = (WriterArgs){ f->store, item_id, label_id, t };
    threads[t] = g_thread_new("writer", writer_thread, &args[t]);
  }
  for (int t = 0; t < 4; t++)
    g_thread_join(threads[t]);
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) anns = fth_store_list_annotations(f->store, item_id, &error);
  g_assert_cmpuint(anns->len, ==, 3 * 200);
  gint64 n = 0;
  g_assert_true(fth_store_count_items(f->store, NULL, &n, &error));
  g_assert_cmpint(n, ==, 1 + 4 * 50);
  g_assert_true(fth_store_check_integrity(f->store, &error));
}

/* ---- filters on a generated project ------------------------------------------------------- */

#define N_GEN 300

typedef struct {
  gint64 id;
  int kind, split;
  int human;  /* label index of the human class, -1 for none */
  gboolean model_b; /* has a model annotation with label B */
  int predicted; /* top label index in the prediction run */
  double score;
  char *path;
  char *text;
} GenItem;

typedef gboolean (*Predicate)(const GenItem *g);

static GenItem gen[N_GEN];
static gint64 gen_labels[3];

static void
generate(FthStore *store, gint64 *out_run)
{
  g_autoptr(GError) error = NULL;
  gen_labels[0] = add_label(store, "A", NULL);
  gen_labels[1] = add_label(store, "B", NULL);
  gen_labels[2] = add_label(store, "C", NULL);
  gint64 run = 0;
  g_assert_true(fth_store_create_run(store, "predict", NULL, NULL, &run, &error));
  g_assert_true(fth_store_begin(store, &error));
  for (int i = 0; i < N_GEN; i++) {
    GenItem *g = &gen[i];
    g->kind = i % 3 + 1;
    g->split = i % 4;
    g->human = i % 5 == 0 ? -1 : i % 3;
    g->model_b = i % 7 == 0;
    g->predicted = i % 2;
    g->score = (i % 10) / 10.0;
    g->path = g_strdup_printf("dir%d/f_%03d.%s", i % 2, i, g->kind == FTH_ITEM_TEXT ? "txt" : "x");
    g->text = g->kind == FTH_ITEM_TEXT ? g_strdup_printf("Hello World %d", i) : NULL;
    g_autoptr(FthItemRecord) item = fth_item_record_new();
    item->kind = g->kind;
    item->split = g->split;
    item->path = g_strdup(g->path);
    item->text = g_strdup(g->text);
    item->sha256 = g_compute_checksum_for_string(G_CHECKSUM_SHA256, g->path, -1);
    g->id = store_test_add(store, item);
    gint64 ann = 0;
    if (g->human >= 0)
      g_assert_true(fth_store_set_class(store, g->id, gen_labels[g->human], FTH_AUTHOR_HUMAN, 0,
                                        1, &ann, &error));
    if (g->model_b)
      g_assert_true(fth_store_set_class(store, g->id, gen_labels[1], FTH_AUTHOR_MODEL, run, 0.5,
                                        &ann, &error));
    float probs[2] = { g->predicted == 0 ? 1.0f : 0.0f, g->predicted == 1 ? 1.0f : 0.0f };
    FthPrediction p = { run, g->id, 2, probs, gen_labels[g->predicted], g->score };
    g_assert_true(fth_store_put_predictions(store, &p, 1, &error));
  }
  g_assert_true(fth_store_commit(store, &error));
  g_assert_no_error(error);
  *out_run = run;
}

static void
check_filter(FthStore *store, const FthItemFilter *filter, Predicate pred, const char *what)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GArray) expected = g_array_new(FALSE, FALSE, sizeof(gint64));
  for (int i = 0; i < N_GEN; i++)
    if (pred(&gen[i]))
      g_array_append_val(expected, gen[i].id);
  g_test_message("filter %s: %u items expected", what, expected->len);
  g_assert_cmpuint(expected->len, >, 0);
  g_assert_cmpuint(expected->len, <, N_GEN);

  gint64 count = -1;
  g_assert_true(fth_store_count_items(store, filter, &count, &error));
  g_assert_no_error(error);
  g_assert_cmpint(count, ==, expected->len);

  /* Offset pages of 7 and keyset pages of 11 both walk exactly the expected ids in order. */
  guint seen = 0;
  for (gint64 offset = 0;; offset += 7) {
    g_autoptr(GPtrArray) page = fth_store_list_items_page(store, filter, offset, 7, &error);
    g_assert_no_error(error);
    for (guint k = 0; k < page->len; k++, seen++) {
      g_assert_cmpuint(seen, <, expected->len);
      g_assert_cmpint(((FthItemRecord *) g_ptr_array_index(page, k))->id, ==,
                      g_array_index(expected, gint64, seen));
    }
    if (page->len < 7)
      break;
  }
  g_assert_cmpuint(seen, ==, expected->len);
  seen = 0;
  gint64 after = 0;
  for (;;) {
    g_autoptr(GPtrArray) page = fth_store_list_items_after(store, filter, after, 11, &error);
    g_assert_no_error(error);
    for (guint k = 0; k < page->len; k++, seen++) {
      after = ((FthItemRecord *) g_ptr_array_index(page, k))->id;
      g_assert_cmpuint(seen, <, expected->len);
      g_assert_cmpint(after, ==, g_array_index(expected, gint64, seen));
    }
    if (page->len < 11)
      break;
  }
  g_assert_cmpuint(seen, ==, expected->len);
}

static gboolean p_image(const GenItem *g) { return g->kind == FTH_ITEM_IMAGE; }
static gboolean p_val(const GenItem *g) { return g->split == FTH_SPLIT_VAL; }
static gboolean p_label_a(const GenItem *g) { return g->human == 0; }
static gboolean p_label_b_any(const GenItem *g) { return g->human == 1 || g->model_b; }
static gboolean p_label_b_model(const GenItem *g) { return g->model_b; }
static gboolean p_model_author(const GenItem *g) { return g->model_b; }
static gboolean p_unlabeled(const GenItem *g) { return g->human < 0; }
static gboolean p_predicted_b(const GenItem *g) { return g->predicted == 1; }
static gboolean p_score(const GenItem *g) { return g->score >= 0.3 - 1e-9 && g->score <= 0.5 + 1e-9; }
static gboolean p_search_dir1(const GenItem *g) { return g_str_has_prefix(g->path, "dir1/"); }
static gboolean p_search_text(const GenItem *g) { return g->text != NULL && strstr(g->text, "World 1") != NULL; }
static gboolean p_search_underscore(const GenItem *g) { return strstr(g->path, "_01") != NULL; }
static gboolean
p_combined(const GenItem *g)
{
  return g->kind == FTH_ITEM_TEXT && g->split == FTH_SPLIT_TRAIN && g->human < 0;
}
static gboolean
p_pred_and_score(const GenItem *g)
{
  return g->predicted == 0 && g->score >= 0.6 - 1e-9 && g->score <= 1.0;
}

static void
test_filters(Fixture *f, gconstpointer data)
{
  FthStore *store = f->store;
  gint64 run = 0;
  generate(store, &run);
  FthItemFilter flt;

  fth_item_filter_init(&flt);
  flt.kind = FTH_ITEM_IMAGE;
  check_filter(store, &flt, p_image, "kind");
  fth_item_filter_init(&flt);
  flt.split = FTH_SPLIT_VAL;
  check_filter(store, &flt, p_val, "split");
  fth_item_filter_init(&flt);
  flt.label_id = gen_labels[0];
  check_filter(store, &flt, p_label_a, "label A");
  flt.label_id = gen_labels[1];
  check_filter(store, &flt, p_label_b_any, "label B");
  flt.author = FTH_AUTHOR_MODEL;
  check_filter(store, &flt, p_label_b_model, "label B by the model");
  flt.label_id = 0;
  check_filter(store, &flt, p_model_author, "model author");
  fth_item_filter_init(&flt);
  flt.unlabeled = TRUE;
  check_filter(store, &flt, p_unlabeled, "unlabeled");
  fth_item_filter_init(&flt);
  flt.predicted_label_id = gen_labels[1];
  check_filter(store, &flt, p_predicted_b, "predicted B (latest run)");
  flt.prediction_run_id = run;
  check_filter(store, &flt, p_predicted_b, "predicted B (explicit run)");
  fth_item_filter_init(&flt);
  flt.by_score = TRUE;
  flt.min_score = 0.3;
  flt.max_score = 0.5;
  check_filter(store, &flt, p_score, "score range");
  flt.predicted_label_id = gen_labels[0];
  flt.min_score = 0.6;
  flt.max_score = 1.0;
  check_filter(store, &flt, p_pred_and_score, "predicted A with a high score");
  fth_item_filter_init(&flt);
  flt.search = "DIR1/";
  check_filter(store, &flt, p_search_dir1, "search path (case-insensitive)");
  flt.search = "world 1";
  check_filter(store, &flt, p_search_text, "search text");
  flt.search = "_01"; /* '_' is literal, not a LIKE wildcard */
  check_filter(store, &flt, p_search_underscore, "search with a wildcard character");
  fth_item_filter_init(&flt);
  flt.kind = FTH_ITEM_TEXT;
  flt.split = FTH_SPLIT_TRAIN;
  flt.unlabeled = TRUE;
  check_filter(store, &flt, p_combined, "combined");

  /* A filter on a run without predictions matches nothing. */
  fth_item_filter_init(&flt);
  flt.predicted_label_id = gen_labels[0];
  flt.prediction_run_id = run + 100;
  gint64 n = -1;
  g_assert_true(fth_store_count_items(store, &flt, &n, NULL));
  g_assert_cmpint(n, ==, 0);

  /* A heap copy owns its search string. */
  char search[] = "dir1/";
  fth_item_filter_init(&flt);
  flt.search = search;
  g_autoptr(FthItemFilter) copy = fth_item_filter_copy(&flt);
  search[0] = 'X';
  check_filter(store, copy, p_search_dir1, "copied filter");

  for (int i = 0; i < N_GEN; i++) {
    g_free(gen[i].path);
    g_free(gen[i].text);
  }
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
#define ADD(path, fn) g_test_add(path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
  ADD("/store/api/items", test_items);
  ADD("/store/api/labels", test_labels);
  ADD("/store/api/annotations", test_annotations);
  ADD("/store/api/runs", test_runs);
  ADD("/store/api/transactions", test_transactions);
  ADD("/store/api/readers-not-blocked", test_readers_not_blocked);
  ADD("/store/api/threads", test_threads);
  ADD("/store/api/filters", test_filters);
#undef ADD
  return g_test_run();
}
