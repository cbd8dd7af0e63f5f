/* Schema tests: creating, opening, migrating, refusing newer, foreign and corrupt files. */
#include "fth-config.h"

#include "store-private.h"
#include "store-test-util.h"

#include <sqlite3.h>
#include <string.h>

static int
raw_int(const char *db_path, const char *sql)
{
  sqlite3 *db = NULL;
  g_assert_cmpint(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READWRITE, NULL), ==, SQLITE_OK);
  sqlite3_stmt *stmt = NULL;
  g_assert_cmpint(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL), ==, SQLITE_OK);
  g_assert_cmpint(sqlite3_step(stmt), ==, SQLITE_ROW);
  int v = sqlite3_column_int(stmt, 0);
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return v;
}

static void
raw_exec(const char *db_path, const char *sql)
{
  sqlite3 *db = NULL;
  g_assert_cmpint(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL),
                  ==, SQLITE_OK);
  g_assert_cmpint(sqlite3_exec(db, sql, NULL, NULL, NULL), ==, SQLITE_OK);
  sqlite3_close(db);
}

static void
test_create_fresh(void)
{
  g_autofree char *tmp = store_test_make_dir();
  g_autofree char *dir = g_build_filename(tmp, "a", "b", "proj", NULL);
  g_autoptr(GError) error = NULL;
  g_autofree char *db_path = NULL;
  {
    g_autoptr(FthStore) store = fth_store_create(dir, &error);
    g_assert_no_error(error);
    g_assert_cmpint(fth_store_get_schema_version(store), ==, FTH_STORE_SCHEMA_VERSION);
    g_autofree char *name = fth_store_get_name(store, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(name, ==, "proj");
    g_assert_true(fth_store_set_name(store, "Fashion", &error));
    db_path = g_strdup(fth_store_get_db_path(store));
    g_assert_true(g_str_has_suffix(db_path, "/proj/fathom.db"));
    g_assert_true(g_file_test(db_path, G_FILE_TEST_IS_REGULAR));
    g_assert_true(fth_store_check_integrity(store, &error));
    g_assert_no_error(error);
  }
  g_assert_cmpint(raw_int(db_path, "PRAGMA user_version"), ==, FTH_STORE_SCHEMA_VERSION);
  g_assert_cmpint(raw_int(db_path, "SELECT count(*) FROM sqlite_schema WHERE name = 'queue'"), ==, 1);
  {
    /* journal_mode is persistent in the file for WAL. */
    sqlite3 *db = NULL;
    sqlite3_open(db_path, &db);
    sqlite3_stmt *stmt = NULL;
    sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &stmt, NULL);
    g_assert_cmpint(sqlite3_step(stmt), ==, SQLITE_ROW);
    g_assert_cmpstr((const char *) sqlite3_column_text(stmt, 0), ==, "wal");
    sqlite3_finalize(stmt);
    sqlite3_close(db);
  }

  /* A second create refuses; open works and keeps the metadata. */
  g_autoptr(FthStore) again = fth_store_create(dir, &error);
  g_assert_null(again);
  g_assert_error(error, FTH_STORE_ERROR, FTH_STORE_ERROR_EXISTS);
  g_assert_nonnull(strstr(error->message, db_path));
  g_clear_error(&error);
  g_autoptr(FthStore) store = fth_store_open(dir, &error);
  g_assert_no_error(error);
  g_autofree char *name = fth_store_get_name(store, &error);
  g_assert_cmpstr(name, ==, "Fashion");
  g_autofree char *missing = fth_store_get_meta(store, "no-such-key", &error);
  g_assert_no_error(error);
  g_assert_null(missing);
  g_clear_object(&store);
  store_test_remove_dir(tmp);
}

static void
test_not_a_project(void)
{
  g_autofree char *tmp = store_test_make_dir();
  g_autoptr(GError) error = NULL;

  FthStore *store = fth_store_open(tmp, &error);
  g_assert_null(store);
  g_assert_error(error, FTH_STORE_ERROR, FTH_STORE_ERROR_NOT_PROJECT);
  g_assert_nonnull(strstr(error->message, tmp));
  g_clear_error(&error);

  g_autofree char *nodir = g_build_filename(tmp, "nothing-here", NULL);
  store = fth_store_open(nodir, &error);
  g_assert_null(store);
  g_assert_error(error, FTH_STORE_ERROR, FTH_STORE_ERROR_NOT_PROJECT);
  g_assert_nonnull(strstr(error->message, nodir));
  g_clear_error(&error);

  /* Some other program's SQLite database. */
  g_autofree char *db_path = g_build_filename(tmp, FTH_STORE_DB_NAME, NULL);
  raw_exec(db_path, "CREATE TABLE songs (title TEXT); INSERT INTO songs VALUES ('x');");
  store = fth_store_open(tmp, &error);
  g_assert_null(store);
  g_assert_error(error, FTH_STORE_ERROR, FTH_STORE_ERROR_NOT_PROJECT);
  g_assert_nonnull(strstr(error->message, db_path));
  g_clear_error(&error);
  store_test_remove_dir(tmp);
}

static void
test_empty_file_is_migrated(void)
{
  /* A creation interrupted before its first migration leaves an empty file. */
  g_autofree char *tmp = store_test_make_dir();
  g_autofree char *db_path = g_build_filename(tmp, FTH_STORE_DB_NAME, NULL);
  g_assert_true(g_file_set_contents(db_path, "", 0, NULL));
  g_autoptr(GError) error = NULL;
  g_autoptr(FthStore) store = fth_store_open(tmp, &error);
  g_assert_no_error(error);
  g_assert_cmpint(fth_store_get_schema_version(store), ==, FTH_STORE_SCHEMA_VERSION);
  g_clear_object(&store);
  store_test_remove_dir(tmp);
}

static void
test_migrate_from_v1(void)
{
  g_autofree char *tmp = store_test_make_dir();
  g_autofree char *db_path = g_build_filename(tmp, FTH_STORE_DB_NAME, NULL);
  g_autoptr(GError) error = NULL;
  {
    sqlite3 *db = NULL;
    g_assert_cmpint(sqlite3_open(db_path, &db), ==, SQLITE_OK);
    g_assert_true(fth_store_migrate_db(db, db_path, 1, &error));
    g_assert_no_error(error);
    g_assert_cmpint(sqlite3_exec(db,
        "INSERT INTO items (kind, path, sha256, created_us) VALUES (1, 'a.png', "
        "'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 1);"
        "INSERT INTO labels (name, color) VALUES ('cat', '#112233');", NULL, NULL, NULL),
        ==, SQLITE_OK);
    sqlite3_close(db);
  }
  g_assert_cmpint(raw_int(db_path, "PRAGMA user_version"), ==, 1);
  g_assert_cmpint(raw_int(db_path, "SELECT count(*) FROM sqlite_schema WHERE name = 'predictions'"), ==, 0);

  g_autoptr(FthStore) store = fth_store_open(tmp, &error);
  g_assert_no_error(error);
  g_assert_cmpint(fth_store_get_schema_version(store), ==, 2);
  g_autoptr(FthItemRecord) item = fth_store_find_item(store, "a.png", -1, &error);
  g_assert_no_error(error);
  g_assert_nonnull(item);
  g_autoptr(FthLabel) label = fth_store_find_label(store, "cat", &error);
  g_assert_nonnull(label);
  /* The step-2 tables work. */
  gint64 run = 0;
  g_assert_true(fth_store_create_run(store, "predict", "p", NULL, &run, &error));
  float probs[2] = { 0.25f, 0.75f };
  FthPrediction pred = { run, item->id, 2, probs, label->id, 0.75 };
  g_assert_true(fth_store_put_predictions(store, &pred, 1, &error));
  g_assert_no_error(error);
  g_clear_object(&store);
  g_assert_cmpint(raw_int(db_path, "PRAGMA user_version"), ==, 2);
  store_test_remove_dir(tmp);
}

static void
test_newer_refused(void)
{
  g_autofree char *tmp = store_test_make_dir();
  g_autoptr(GError) error = NULL;
  g_autofree char *db_path = NULL;
  {
    g_autoptr(FthStore) store = fth_store_create(tmp, &error);
    g_assert_no_error(error);
    db_path = g_strdup(fth_store_get_db_path(store));
  }
  raw_exec(db_path, "PRAGMA user_version = 99");
  g_autoptr(FthStore) store = fth_store_open(tmp, &error);
  g_assert_null(store);
  g_assert_error(error, FTH_STORE_ERROR, FTH_STORE_ERROR_VERSION);
  g_assert_nonnull(strstr(error->message, db_path));
  g_assert_nonnull(strstr(error->message, "99"));
  /* Refusing did not touch the file. */
  g_assert_cmpint(raw_int(db_path, "PRAGMA user_version"), ==, 99);
  store_test_remove_dir(tmp);
}

/* Writes BYTES garbage bytes at OFFSET into FILE. */
static void
scribble(const char *file, goffset offset, gsize bytes)
{
  g_autofree char *data = NULL;
  gsize len = 0;
  g_assert_true(g_file_get_contents(file, &data, &len, NULL));
  g_assert_cmpuint(len, >=, offset + bytes);
  GRand *rand = g_rand_new_with_seed(7);
  for (gsize i = 0; i < bytes; i++)
    data[offset + i] = (char) g_rand_int_range(rand, 0, 256);
  g_rand_free(rand);
  g_assert_true(g_file_set_contents(file, data, (gssize) len, NULL));
}

static char *
make_filled_project(const char *dir)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(FthStore) store = fth_store_create(dir, &error);
  g_assert_no_error(error);
  g_assert_true(fth_store_begin(store, &error));
  for (int i = 0; i < 2000; i++) {
    g_autofree char *path = g_strdup_printf("img/%05d.png", i);
    g_autoptr(FthItemRecord) item = store_test_image(path, 28, 28);
    store_test_add(store, item);
  }
  g_assert_true(fth_store_commit(store, &error));
  return g_strdup(fth_store_get_db_path(store));
}

static void
test_corrupt_pages(void)
{
  g_autofree char *tmp = store_test_make_dir();
  g_autofree char *db_path = make_filled_project(tmp);
  /* Pages in the middle of the items table. */
  scribble(db_path, 4096 * 6, 4096 * 3);
  g_autoptr(GError) error = NULL;
  g_autoptr(FthStore) store = fth_store_open(tmp, &error);
  g_assert_null(store);
  g_assert_error(error, FTH_STORE_ERROR, FTH_STORE_ERROR_CORRUPT);
  g_assert_nonnull(strstr(error->message, db_path));
  store_test_remove_dir(tmp);
}

static void
test_corrupt_header(void)
{
  g_autofree char *tmp = store_test_make_dir();
  g_autofree char *db_path = make_filled_project(tmp);
  scribble(db_path, 0, 100);
  g_autoptr(GError) error = NULL;
  g_autoptr(FthStore) store = fth_store_open(tmp, &error);
  g_assert_null(store);
  g_assert_error(error, FTH_STORE_ERROR, FTH_STORE_ERROR_CORRUPT);
  g_assert_nonnull(strstr(error->message, db_path));
  store_test_remove_dir(tmp);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/store/schema/create", test_create_fresh);
  g_test_add_func("/store/schema/not-a-project", test_not_a_project);
  g_test_add_func("/store/schema/empty-file", test_empty_file_is_migrated);
  g_test_add_func("/store/schema/migrate-v1", test_migrate_from_v1);
  g_test_add_func("/store/schema/newer-refused", test_newer_refused);
  g_test_add_func("/store/schema/corrupt-pages", test_corrupt_pages);
  g_test_add_func("/store/schema/corrupt-header", test_corrupt_header);
  return g_test_run();
}
