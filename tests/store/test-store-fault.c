/* Failure injection: a full disk, a failing device and failed allocations inside SQLite become
 * GErrors, roll the transaction back and never corrupt the database. */
#include "fth-config.h"

#include "fault-sqlite.h"
#include "store-test-util.h"

#include <sqlite3.h>
#include <string.h>

static gint64
count_items(FthStore *store)
{
  g_autoptr(GError) error = NULL;
  gint64 n = -1;
  g_assert_true(fth_store_count_items(store, NULL, &n, &error));
  g_assert_no_error(error);
  return n;
}

static gint64
count_annotations(FthStore *store, gint64 item_id)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) anns = fth_store_list_annotations(store, item_id, &error);
  g_assert_no_error(error);
  return anns->len;
}

static void
assert_intact(FthStore *store)
{
  g_autoptr(GError) error = NULL;
  g_assert_true(fth_store_check_integrity(store, &error));
  g_assert_no_error(error);
}

static FthStore *
make_project(const char *dir, int n_items)
{
  g_autoptr(GError) error = NULL;
  FthStore *store = fth_store_create(dir, &error);
  g_assert_no_error(error);
  g_assert_true(fth_store_begin(store, &error));
  for (int i = 0; i < n_items; i++) {
    g_autofree char *path = g_strdup_printf("base/%04d.png", i);
    g_autoptr(FthItemRecord) item = store_test_image(path, 28, 28);
    store_test_add(store, item);
  }
  g_assert_true(fth_store_commit(store, &error));
  return store;
}

/* One write call while the disk is full: an error naming the file, nothing written. */
static void
test_disk_full_single_write(void)
{
  g_autofree char *tmp = store_test_make_dir();
  g_autoptr(FthStore) store = make_project(tmp, 50);
  g_autoptr(GError) error = NULL;
  gint64 keep = 0, id = 0;
  g_assert_true(fth_store_add_label(store, "keep", NULL, NULL, FTH_LABEL_ANY, &keep, &error));

  int before = fault_sqlite_n_injected();
  fault_sqlite_fail_writes(0, SQLITE_FULL);
  g_assert_false(fth_store_add_label(store, "new", NULL, NULL, FTH_LABEL_ANY, &id, &error));
  fault_sqlite_disarm();
  g_assert_cmpint(fault_sqlite_n_injected(), >, before);
  g_assert_error(error, FTH_STORE_ERROR, FTH_STORE_ERROR_FULL);
  g_assert_nonnull(strstr(error->message, fth_store_get_db_path(store)));
  g_clear_error(&error);

  g_autoptr(FthLabel) missing = fth_store_find_label(store, "new", &error);
  g_assert_null(missing);
  g_autoptr(FthLabel) kept = fth_store_find_label(store, "keep", &error);
  g_assert_nonnull(kept);
  assert_intact(store);
  /* The store keeps working once there is space again, and survives a reopen. */
  g_assert_true(fth_store_add_label(store, "new", NULL, NULL, FTH_LABEL_ANY, &id, &error));
  g_assert_no_error(error);
  g_clear_object(&store);
  store = fth_store_open_full(tmp, FTH_STORE_OPEN_FULL_CHECK, &error);
  g_assert_no_error(error);
  g_autoptr(GPtrArray) labels = fth_store_list_labels(store, &error);
  g_assert_cmpuint(labels->len, ==, 2);
  g_assert_cmpint(count_items(store), ==, 50);
  g_clear_object(&store);
  store_test_remove_dir(tmp);
}

/* A large import transaction hit by a failing device after N writes, for several N: either
 * every item is committed or none is, and the database stays intact. */
static void
test_failing_device_during_import(void)
{
  g_autofree char *tmp = store_test_make_dir();
  g_autoptr(FthStore) store = make_project(tmp, 20);
  const int batch = 3000;
  const int n_ok[] = { 0, 1, 3, 10, 40, 100000 };
  int failures = 0, successes = 0;
  for (guint k = 0; k < G_N_ELEMENTS(n_ok); k++) {
    g_autoptr(GError) error = NULL;
    gint64 before = count_items(store);
    gboolean ok = fth_store_begin(store, &error);
    g_assert_true(ok);
    fault_sqlite_fail_writes(n_ok[k], k % 2 == 0 ? SQLITE_IOERR_WRITE : SQLITE_FULL);
    for (int i = 0; ok && i < batch; i++) {
      g_autofree char *path = g_strdup_printf("batch%u/%05d-with-a-longer-name-to-fill-pages.png", k, i);
      g_autoptr(FthItemRecord) item = store_test_image(path, 28, 28);
      gint64 id = 0;
      gboolean dup = FALSE;
      ok = fth_store_add_item(store, item, &id, &dup, &error);
    }
    if (ok)
      ok = fth_store_commit(store, &error);
    else
      fth_store_rollback(store, NULL);
    fault_sqlite_disarm();
    g_test_message("fail after %d writes: %s", n_ok[k], ok ? "committed" : error->message);
    if (ok) {
      successes++;
      g_assert_cmpint(count_items(store), ==, before + batch);
    } else {
      failures++;
      g_assert_true(error->domain == FTH_STORE_ERROR);
      g_assert_true(error->code == FTH_STORE_ERROR_IO || error->code == FTH_STORE_ERROR_FULL ||
                    error->code == FTH_STORE_ERROR_FAILED);
      g_assert_cmpint(count_items(store), ==, before);
    }
    assert_intact(store);
  }
  g_assert_cmpint(failures, >=, 3);
  g_assert_cmpint(successes, >=, 1);
  gint64 expected = count_items(store);
  g_clear_object(&store);
  g_autoptr(GError) error = NULL;
  store = fth_store_open_full(tmp, FTH_STORE_OPEN_FULL_CHECK, &error);
  g_assert_no_error(error);
  g_assert_cmpint(count_items(store), ==, expected);
  g_clear_object(&store);
  store_test_remove_dir(tmp);
}

/* Each allocation of an annotation write fails in turn: the call either succeeds or reports an
 * error and leaves no trace. */
static void
test_allocation_failures(void)
{
  g_autofree char *tmp = store_test_make_dir();
  g_autoptr(FthStore) store = make_project(tmp, 5);
  g_autoptr(GError) error = NULL;
  gint64 label = 0;
  g_assert_true(fth_store_add_label(store, "cat", NULL, NULL, FTH_LABEL_ANY, &label, &error));
  g_autoptr(GPtrArray) items = fth_store_list_items_after(store, NULL, 0, 1, &error);
  gint64 item_id = ((FthItemRecord *) g_ptr_array_index(items, 0))->id;

  int failed_calls = 0;
  for (int n = 0; n < 120; n++) {
    gint64 before = count_annotations(store, item_id);
    g_autoptr(FthAnnotation) ann = fth_annotation_new();
    ann->item_id = item_id;
    ann->label_id = label;
    ann->geom = FTH_GEOM_BOX;
    ann->x = n, ann->y = 1, ann->w = 5, ann->h = 5;
    gint64 id = 0;
    GError *local = NULL;
    int injected = fault_sqlite_n_injected();
    fault_sqlite_fail_malloc(n);
    gboolean ok = fth_store_add_annotation(store, ann, &id, &local);
    gboolean hit = fault_sqlite_n_injected() > injected;
    fault_sqlite_disarm();
    if (ok) {
      g_assert_null(local);
      g_assert_cmpint(count_annotations(store, item_id), ==, before + 1);
    } else {
      g_assert_true(hit);
      g_assert_nonnull(local);
      g_assert_true(local->domain == FTH_STORE_ERROR);
      g_assert_cmpint(count_annotations(store, item_id), ==, before);
      failed_calls++;
      g_error_free(local);
    }
    assert_intact(store);
  }
  g_test_message("%d of 120 calls failed", failed_calls);
  /* Statements are cached, so few allocations happen per call; some must still have failed. */
  g_assert_cmpint(failed_calls, >, 0);
  g_clear_object(&store);
  store = fth_store_open_full(tmp, FTH_STORE_OPEN_FULL_CHECK, &error);
  g_assert_no_error(error);
  g_clear_object(&store);
  store_test_remove_dir(tmp);
}

int
main(int argc, char **argv)
{
  fault_sqlite_install();
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/store/fault/disk-full-single-write", test_disk_full_single_write);
  g_test_add_func("/store/fault/failing-device-during-import", test_failing_device_during_import);
  g_test_add_func("/store/fault/allocation-failures", test_allocation_failures);
  return g_test_run();
}
