/* fth-store.c: the project store object: opening and creating projects, the two connections,
 * cached statements, transactions, error mapping, migrations and project metadata.
 * See <fathom/store.h> for the contract. */
#include "fth-config.h"

#include "store-private.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <math.h>

G_DEFINE_QUARK(fth-store-error-quark, fth_store_error)

/* 'FTHD': marks a SQLite file as a Fathom project (PRAGMA application_id). */
#define FTH_STORE_APPLICATION_ID 0x46544844
#define FTH_STORE_BUSY_TIMEOUT_MS 10000

struct _FthStore {
  GObject parent_instance;
  char *dir;
  char *db_path;
  int schema_version;
  FthConn wconn;
  FthConn rconn;
  GRecMutex wlock;          /* guards wconn; held from begin to commit/rollback */
  GMutex rlock;             /* guards rconn */
  GThread *txn_owner;       /* thread inside fth_store_begin(), NULL when none */
  gboolean txn_aborted;     /* SQLite rolled the explicit transaction back on an error */
};

G_DEFINE_TYPE(FthStore, fth_store, G_TYPE_OBJECT)

/* ---- connections and statements ----------------------------------------------------------- */

static void
conn_close(FthConn *conn)
{
  g_clear_pointer(&conn->stmts, g_hash_table_unref);
  if (conn->db != NULL) {
    sqlite3_close_v2(conn->db);
    conn->db = NULL;
  }
}

static void
fth_store_finalize(GObject *object)
{
  FthStore *self = FTH_STORE(object);

  /* The read connection first, so the write connection is the last one and checkpoints the
   * WAL into the database file on close. */
  conn_close(&self->rconn);
  conn_close(&self->wconn);
  g_rec_mutex_clear(&self->wlock);
  g_mutex_clear(&self->rlock);
  g_free(self->dir);
  g_free(self->db_path);
  G_OBJECT_CLASS(fth_store_parent_class)->finalize(object);
}

static void
fth_store_class_init(FthStoreClass *klass)
{
  G_OBJECT_CLASS(klass)->finalize = fth_store_finalize;
}

static void
fth_store_init(FthStore *self)
{
  g_rec_mutex_init(&self->wlock);
  g_mutex_init(&self->rlock);
}

void
fth_cached_stmt_release(FthCachedStmt *stmt)
{
  sqlite3_reset(stmt);
  sqlite3_clear_bindings(stmt);
}

FthStoreError
fth_store_error_from_sqlite(int rc)
{
  switch (rc & 0xff) {
  case SQLITE_CORRUPT:
  case SQLITE_NOTADB:
    return FTH_STORE_ERROR_CORRUPT;
  case SQLITE_FULL:
    return FTH_STORE_ERROR_FULL;
  case SQLITE_NOMEM:
    return FTH_STORE_ERROR_NO_MEMORY;
  case SQLITE_IOERR:
    return rc == SQLITE_IOERR_NOMEM ? FTH_STORE_ERROR_NO_MEMORY : FTH_STORE_ERROR_IO;
  case SQLITE_CANTOPEN:
  case SQLITE_READONLY:
  case SQLITE_PERM:
    return FTH_STORE_ERROR_IO;
  case SQLITE_BUSY:
  case SQLITE_LOCKED:
    return FTH_STORE_ERROR_BUSY;
  case SQLITE_CONSTRAINT:
    if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY)
      return FTH_STORE_ERROR_CONFLICT;
    return FTH_STORE_ERROR_INVALID;
  case SQLITE_RANGE:
  case SQLITE_MISMATCH:
  case SQLITE_TOOBIG:
    return FTH_STORE_ERROR_INVALID;
  default:
    return FTH_STORE_ERROR_FAILED;
  }
}

void
fth_store_set_error(FthStore *store, GError **error, FthStoreError code, const char *fmt, ...)
{
  va_list args;
  va_start(args, fmt);
  g_autofree char *what = g_strdup_vprintf(fmt, args);
  va_end(args);
  g_set_error(error, FTH_STORE_ERROR, code, "%s: %s", store->db_path, what);
}

static void
set_db_error(const char *db_path, sqlite3 *db, int rc, const char *what, GError **error)
{
  const char *msg = db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  /* sqlite3_errmsg() reports the last error on the connection; after a failed COMMIT or a
   * failed open it can be generic, so the result code's own text is added when they differ. */
  if (db != NULL && sqlite3_extended_errcode(db) != rc)
    msg = sqlite3_errstr(rc);
  g_set_error(error, FTH_STORE_ERROR, fth_store_error_from_sqlite(rc), "%s: %s: %s", db_path,
              what, msg);
}

void
fth_store_set_sqlite_error(FthStore *store, FthConn *conn, int rc, const char *what,
                           GError **error)
{
  set_db_error(store->db_path, conn->db, rc, what, error);
}

FthCachedStmt *
fth_store_prepare(FthStore *store, FthConn *conn, const char *sql, GError **error)
{
  sqlite3_stmt *stmt = g_hash_table_lookup(conn->stmts, sql);
  if (stmt != NULL)
    return stmt;
  int rc = sqlite3_prepare_v3(conn->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, NULL);
  if (rc != SQLITE_OK) {
    fth_store_set_sqlite_error(store, conn, rc, "preparing a query", error);
    sqlite3_finalize(stmt);
    return NULL;
  }
  g_hash_table_insert(conn->stmts, g_strdup(sql), stmt);
  return stmt;
}

gboolean
fth_store_exec(FthStore *store, FthConn *conn, const char *sql, GError **error)
{
  int rc = sqlite3_exec(conn->db, sql, NULL, NULL, NULL);
  if (rc != SQLITE_OK) {
    fth_store_set_sqlite_error(store, conn, rc, sql, error);
    return FALSE;
  }
  return TRUE;
}

/* Runs one statement from the cache: transaction control runs once per write call, and
 * preparing it each time costs more than the write itself in a batch. */
static gboolean
exec_cached(FthStore *store, FthConn *conn, const char *sql, GError **error)
{
  sqlite3_stmt *stmt = fth_store_prepare(store, conn, sql, error);
  if (stmt == NULL)
    return FALSE;
  int rc = sqlite3_step(stmt);
  sqlite3_reset(stmt);
  if (rc != SQLITE_DONE) {
    fth_store_set_sqlite_error(store, conn, rc, sql, error);
    return FALSE;
  }
  return TRUE;
}

gboolean
fth_store_step_done(FthStore *store, FthConn *conn, sqlite3_stmt *stmt, GError **error)
{
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
    ;
  if (rc != SQLITE_DONE) {
    fth_store_set_sqlite_error(store, conn, rc, "writing", error);
    return FALSE;
  }
  return TRUE;
}

char *
fth_store_column_strdup(sqlite3_stmt *stmt, int col)
{
  if (sqlite3_column_type(stmt, col) == SQLITE_NULL)
    return NULL;
  return g_strdup((const char *) sqlite3_column_text(stmt, col));
}

void
fth_store_bind_text_or_null(sqlite3_stmt *stmt, int idx, const char *text)
{
  if (text != NULL)
    sqlite3_bind_text(stmt, idx, text, -1, SQLITE_TRANSIENT);
  else
    sqlite3_bind_null(stmt, idx);
}

void
fth_store_bind_id_or_null(sqlite3_stmt *stmt, int idx, gint64 id)
{
  if (id > 0)
    sqlite3_bind_int64(stmt, idx, id);
  else
    sqlite3_bind_null(stmt, idx);
}

gboolean
fth_store_check_json(FthStore *store, const char *json, const char *what, GError **error)
{
  if (json == NULL)
    return TRUE;
  g_autoptr(JsonParser) parser = json_parser_new();
  g_autoptr(GError) local = NULL;
  if (!json_parser_load_from_data(parser, json, -1, &local)) {
    fth_store_set_error(store, error, FTH_STORE_ERROR_INVALID, "%s is not valid JSON: %s", what,
                        local->message);
    return FALSE;
  }
  return TRUE;
}

gboolean
fth_store_check_changed(FthStore *store, FthConn *conn, const char *table, gint64 id,
                        GError **error)
{
  if (sqlite3_changes(conn->db) == 0) {
    fth_store_set_error(store, error, FTH_STORE_ERROR_NOT_FOUND, "no %s with id %" G_GINT64_FORMAT,
                        table, id);
    return FALSE;
  }
  return TRUE;
}

/* ---- read and write scopes ---------------------------------------------------------------- */

static gboolean
holds_transaction(FthStore *store)
{
  return g_atomic_pointer_get(&store->txn_owner) == (gpointer) g_thread_self();
}

FthConn *
fth_store_read_begin(FthStore *store)
{
  if (holds_transaction(store)) {
    g_rec_mutex_lock(&store->wlock);
    return &store->wconn;
  }
  g_mutex_lock(&store->rlock);
  return &store->rconn;
}

void
fth_store_read_end(FthStore *store, FthConn *conn)
{
  if (conn == &store->wconn)
    g_rec_mutex_unlock(&store->wlock);
  else
    g_mutex_unlock(&store->rlock);
}

FthConn *
fth_store_write_begin(FthStore *store, GError **error)
{
  g_rec_mutex_lock(&store->wlock);
  if (holds_transaction(store)) {
    if (store->txn_aborted) {
      fth_store_set_error(store, error, FTH_STORE_ERROR_FAILED,
                          "the transaction was rolled back after an earlier error");
      g_rec_mutex_unlock(&store->wlock);
      return NULL;
    }
    if (!exec_cached(store, &store->wconn, "SAVEPOINT fth_call", error)) {
      g_rec_mutex_unlock(&store->wlock);
      return NULL;
    }
  } else if (!exec_cached(store, &store->wconn, "BEGIN IMMEDIATE", error)) {
    g_rec_mutex_unlock(&store->wlock);
    return NULL;
  }
  return &store->wconn;
}

/* After a failed statement SQLite may already have rolled the whole transaction back (disk
 * full, I/O error, out of memory); issuing ROLLBACK then would fail, so ask first. */
static void
rollback_quietly(FthStore *store, const char *sql)
{
  if (!sqlite3_get_autocommit(store->wconn.db))
    sqlite3_exec(store->wconn.db, sql, NULL, NULL, NULL);
}

gboolean
fth_store_write_end(FthStore *store, FthConn *conn, gboolean ok, GError **error)
{
  gboolean nested = holds_transaction(store);
  if (nested) {
    if (sqlite3_get_autocommit(conn->db)) {
      store->txn_aborted = TRUE;
      if (ok) {
        fth_store_set_error(store, error, FTH_STORE_ERROR_FAILED,
                            "the transaction ended unexpectedly");
        ok = FALSE;
      }
    } else if (ok) {
      if (!exec_cached(store, conn, "RELEASE fth_call", error)) {
        rollback_quietly(store, "ROLLBACK TO fth_call; RELEASE fth_call");
        ok = FALSE;
      }
    } else {
      rollback_quietly(store, "ROLLBACK TO fth_call; RELEASE fth_call");
    }
  } else if (ok) {
    if (!exec_cached(store, conn, "COMMIT", error)) {
      rollback_quietly(store, "ROLLBACK");
      ok = FALSE;
    }
  } else {
    rollback_quietly(store, "ROLLBACK");
  }
  g_rec_mutex_unlock(&store->wlock);
  return ok;
}

gboolean
fth_store_begin(FthStore *store, GError **error)
{
  g_return_val_if_fail(FTH_IS_STORE(store), FALSE);
  g_rec_mutex_lock(&store->wlock);
  if (holds_transaction(store)) {
    g_rec_mutex_unlock(&store->wlock);
    fth_store_set_error(store, error, FTH_STORE_ERROR_INVALID,
                        "a transaction is already open on this thread");
    return FALSE;
  }
  if (!fth_store_exec(store, &store->wconn, "BEGIN IMMEDIATE", error)) {
    g_rec_mutex_unlock(&store->wlock);
    return FALSE;
  }
  store->txn_aborted = FALSE;
  g_atomic_pointer_set(&store->txn_owner, g_thread_self());
  /* The lock stays held until commit or rollback. */
  return TRUE;
}

static gboolean
end_transaction(FthStore *store, gboolean commit, GError **error)
{
  if (!holds_transaction(store)) {
    fth_store_set_error(store, error, FTH_STORE_ERROR_INVALID,
                        "no transaction is open on this thread");
    return FALSE;
  }
  gboolean ok = TRUE;
  if (commit && store->txn_aborted) {
    fth_store_set_error(store, error, FTH_STORE_ERROR_FAILED,
                        "the transaction was rolled back after an earlier error");
    ok = FALSE;
  } else if (commit) {
    if (!fth_store_exec(store, &store->wconn, "COMMIT", error)) {
      rollback_quietly(store, "ROLLBACK");
      ok = FALSE;
    }
  } else {
    rollback_quietly(store, "ROLLBACK");
  }
  store->txn_aborted = FALSE;
  g_atomic_pointer_set(&store->txn_owner, NULL);
  g_rec_mutex_unlock(&store->wlock); /* taken by fth_store_begin() */
  return ok;
}

gboolean
fth_store_commit(FthStore *store, GError **error)
{
  g_return_val_if_fail(FTH_IS_STORE(store), FALSE);
  return end_transaction(store, TRUE, error);
}

gboolean
fth_store_rollback(FthStore *store, GError **error)
{
  g_return_val_if_fail(FTH_IS_STORE(store), FALSE);
  return end_transaction(store, FALSE, error);
}

gboolean
fth_store_in_transaction(FthStore *store)
{
  g_return_val_if_fail(FTH_IS_STORE(store), FALSE);
  return holds_transaction(store);
}

/* ---- schema ------------------------------------------------------------------------------- */

/* Step N brings the schema from version N to N + 1. Steps are never edited once released:
 * a change is a new step. */
static const char *const migration_steps[] = {
  /* 0 -> 1: the labeling core. */
  "PRAGMA application_id = 1179928644;" /* FTH_STORE_APPLICATION_ID */
  "CREATE TABLE meta ("
  "  key TEXT PRIMARY KEY,"
  "  value TEXT NOT NULL"
  ") WITHOUT ROWID;"
  "CREATE TABLE items ("
  "  id INTEGER PRIMARY KEY,"
  "  kind INTEGER NOT NULL CHECK (kind BETWEEN 1 AND 3),"
  "  path TEXT NOT NULL,"
  "  member INTEGER NOT NULL DEFAULT -1,"
  "  sha256 TEXT NOT NULL UNIQUE,"
  "  size_bytes INTEGER NOT NULL DEFAULT 0,"
  "  width INTEGER NOT NULL DEFAULT 0,"
  "  height INTEGER NOT NULL DEFAULT 0,"
  "  duration_s REAL NOT NULL DEFAULT 0,"
  "  sample_rate INTEGER NOT NULL DEFAULT 0,"
  "  length_chars INTEGER NOT NULL DEFAULT 0,"
  "  text TEXT,"
  "  split INTEGER NOT NULL DEFAULT 0 CHECK (split BETWEEN 0 AND 3),"
  "  mtime INTEGER NOT NULL DEFAULT 0,"
  "  created_us INTEGER NOT NULL,"
  "  UNIQUE (path, member)"
  ");"
  "CREATE INDEX items_split ON items (split);"
  "CREATE INDEX items_kind ON items (kind);"
  "CREATE TABLE labels ("
  "  id INTEGER PRIMARY KEY,"
  "  name TEXT NOT NULL UNIQUE CHECK (name <> ''),"
  "  color TEXT NOT NULL,"
  "  hotkey TEXT UNIQUE,"
  "  kind INTEGER NOT NULL DEFAULT 0 CHECK (kind BETWEEN 0 AND 4),"
  "  position INTEGER NOT NULL DEFAULT 0"
  ");"
  "CREATE TABLE runs ("
  "  id INTEGER PRIMARY KEY,"
  "  kind TEXT NOT NULL,"
  "  name TEXT NOT NULL DEFAULT '',"
  "  state INTEGER NOT NULL DEFAULT 0 CHECK (state BETWEEN 0 AND 4),"
  "  config_json TEXT,"
  "  summary_json TEXT,"
  "  created_us INTEGER NOT NULL,"
  "  finished_us INTEGER NOT NULL DEFAULT 0"
  ");"
  "CREATE TABLE run_metrics ("
  "  run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,"
  "  step INTEGER NOT NULL,"
  "  epoch REAL NOT NULL DEFAULT 0,"
  "  name TEXT NOT NULL,"
  "  value REAL NOT NULL"
  ");"
  "CREATE INDEX run_metrics_run ON run_metrics (run_id, step, name);"
  "CREATE TABLE annotations ("
  "  id INTEGER PRIMARY KEY,"
  "  item_id INTEGER NOT NULL REFERENCES items (id) ON DELETE CASCADE,"
  "  label_id INTEGER NOT NULL REFERENCES labels (id),"
  "  geom INTEGER NOT NULL CHECK (geom BETWEEN 0 AND 4),"
  "  x REAL, y REAL, w REAL, h REAL,"
  "  points BLOB,"
  "  t0 REAL, t1 REAL,"
  "  span_start INTEGER, span_end INTEGER,"
  "  author INTEGER NOT NULL DEFAULT 0 CHECK (author IN (0, 1)),"
  "  run_id INTEGER REFERENCES runs (id) ON DELETE SET NULL,"
  "  score REAL NOT NULL DEFAULT 1,"
  "  created_us INTEGER NOT NULL,"
  "  updated_us INTEGER NOT NULL"
  ");"
  "CREATE INDEX annotations_item ON annotations (item_id, author, geom);"
  "CREATE INDEX annotations_label ON annotations (label_id, author);",

  /* 1 -> 2: models and the loop around them. */
  "CREATE TABLE predictions ("
  "  run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,"
  "  item_id INTEGER NOT NULL REFERENCES items (id) ON DELETE CASCADE,"
  "  n_classes INTEGER NOT NULL,"
  "  probs BLOB NOT NULL,"
  "  top_label_id INTEGER REFERENCES labels (id) ON DELETE SET NULL,"
  "  top_score REAL NOT NULL,"
  "  PRIMARY KEY (run_id, item_id)"
  ") WITHOUT ROWID;"
  "CREATE INDEX predictions_item ON predictions (item_id, run_id);"
  "CREATE TABLE embeddings ("
  "  run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,"
  "  item_id INTEGER NOT NULL REFERENCES items (id) ON DELETE CASCADE,"
  "  dim INTEGER NOT NULL,"
  "  data BLOB NOT NULL,"
  "  PRIMARY KEY (run_id, item_id)"
  ") WITHOUT ROWID;"
  "CREATE TABLE studies ("
  "  id INTEGER PRIMARY KEY,"
  "  name TEXT NOT NULL UNIQUE,"
  "  direction TEXT NOT NULL CHECK (direction IN ('minimize', 'maximize')),"
  "  space_json TEXT,"
  "  run_id INTEGER REFERENCES runs (id) ON DELETE SET NULL,"
  "  created_us INTEGER NOT NULL"
  ");"
  "CREATE TABLE trials ("
  "  id INTEGER PRIMARY KEY,"
  "  study_id INTEGER NOT NULL REFERENCES studies (id) ON DELETE CASCADE,"
  "  number INTEGER NOT NULL,"
  "  params_json TEXT,"
  "  state INTEGER NOT NULL DEFAULT 0 CHECK (state BETWEEN 0 AND 3),"
  "  value REAL,"
  "  duration_s REAL NOT NULL DEFAULT 0,"
  "  host TEXT,"
  "  error TEXT,"
  "  created_us INTEGER NOT NULL,"
  "  UNIQUE (study_id, number)"
  ");"
  "CREATE TABLE trial_values ("
  "  trial_id INTEGER NOT NULL REFERENCES trials (id) ON DELETE CASCADE,"
  "  step INTEGER NOT NULL,"
  "  value REAL NOT NULL,"
  "  PRIMARY KEY (trial_id, step)"
  ") WITHOUT ROWID;"
  "CREATE TABLE artifacts ("
  "  id INTEGER PRIMARY KEY,"
  "  run_id INTEGER REFERENCES runs (id) ON DELETE CASCADE,"
  "  kind TEXT NOT NULL,"
  "  path TEXT NOT NULL,"
  "  sha256 TEXT,"
  "  size_bytes INTEGER NOT NULL DEFAULT 0,"
  "  meta_json TEXT,"
  "  created_us INTEGER NOT NULL"
  ");"
  "CREATE TABLE queue ("
  "  strategy TEXT NOT NULL,"
  "  item_id INTEGER NOT NULL REFERENCES items (id) ON DELETE CASCADE,"
  "  score REAL NOT NULL,"
  "  rank INTEGER NOT NULL,"
  "  run_id INTEGER REFERENCES runs (id) ON DELETE SET NULL,"
  "  created_us INTEGER NOT NULL,"
  "  PRIMARY KEY (strategy, item_id)"
  ") WITHOUT ROWID;"
  "CREATE INDEX queue_rank ON queue (strategy, rank);",
};

G_STATIC_ASSERT(G_N_ELEMENTS(migration_steps) == FTH_STORE_SCHEMA_VERSION);
G_STATIC_ASSERT(FTH_STORE_APPLICATION_ID == 1179928644);

static gboolean
pragma_int(sqlite3 *db, const char *db_path, const char *sql, int *out, GError **error)
{
  sqlite3_stmt *stmt = NULL;
  int rc = sqlite3_prepare_v2(db, sql, -1, &stmt, NULL);
  if (rc == SQLITE_OK) {
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
      *out = sqlite3_column_int(stmt, 0);
      rc = SQLITE_OK;
    }
  }
  if (rc != SQLITE_OK)
    set_db_error(db_path, db, rc, sql, error);
  sqlite3_finalize(stmt);
  return rc == SQLITE_OK;
}

static gboolean
exec_db(sqlite3 *db, const char *db_path, const char *sql, const char *what, GError **error)
{
  int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
  if (rc != SQLITE_OK) {
    set_db_error(db_path, db, rc, what, error);
    return FALSE;
  }
  return TRUE;
}

gboolean
fth_store_migrate_db(sqlite3 *db, const char *db_path, int target, GError **error)
{
  int version = 0;
  if (!pragma_int(db, db_path, "PRAGMA user_version", &version, error))
    return FALSE;
  if (version > FTH_STORE_SCHEMA_VERSION) {
    g_set_error(error, FTH_STORE_ERROR, FTH_STORE_ERROR_VERSION,
                "%s: schema version %d is newer than this program (%d); update Fathom", db_path,
                version, FTH_STORE_SCHEMA_VERSION);
    return FALSE;
  }
  for (; version < target; version++) {
    g_autofree char *what = g_strdup_printf("migrating the schema from version %d to %d",
                                            version, version + 1);
    /* user_version is set inside the same transaction, so a crash leaves either the old or
     * the new schema, never a half-migrated one. */
    g_autofree char *sql = g_strdup_printf("BEGIN IMMEDIATE; %s; PRAGMA user_version = %d; COMMIT;",
                                           migration_steps[version], version + 1);
    if (!exec_db(db, db_path, sql, what, error)) {
      if (!sqlite3_get_autocommit(db))
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
      return FALSE;
    }
  }
  return TRUE;
}

/* ---- opening ------------------------------------------------------------------------------ */

static gboolean
open_connection(const char *db_path, int flags, sqlite3 **out, GError **error)
{
  sqlite3 *db = NULL;
  int rc = sqlite3_open_v2(db_path, &db, flags | SQLITE_OPEN_EXRESCODE, NULL);
  if (rc != SQLITE_OK) {
    set_db_error(db_path, db, rc, "opening the database", error);
    sqlite3_close_v2(db);
    return FALSE;
  }
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, FTH_STORE_BUSY_TIMEOUT_MS);
  *out = db;
  return TRUE;
}

static gboolean
check_integrity(const char *db_path, sqlite3 *db, gboolean full, GError **error)
{
  const char *sql = full ? "PRAGMA integrity_check(1)" : "PRAGMA quick_check(1)";
  sqlite3_stmt *stmt = NULL;
  int rc = sqlite3_prepare_v2(db, sql, -1, &stmt, NULL);
  if (rc == SQLITE_OK)
    rc = sqlite3_step(stmt);
  if (rc == SQLITE_ROW) {
    const char *result = (const char *) sqlite3_column_text(stmt, 0);
    if (g_strcmp0(result, "ok") != 0) {
      g_set_error(error, FTH_STORE_ERROR, FTH_STORE_ERROR_CORRUPT,
                  "%s: the database is damaged (%s)", db_path, result ? result : "no result");
      sqlite3_finalize(stmt);
      return FALSE;
    }
    sqlite3_finalize(stmt);
    return TRUE;
  }
  set_db_error(db_path, db, rc, "checking integrity", error);
  sqlite3_finalize(stmt);
  return FALSE;
}

gboolean
fth_store_check_integrity(FthStore *store, GError **error)
{
  g_return_val_if_fail(FTH_IS_STORE(store), FALSE);
  FthConn *conn = fth_store_read_begin(store);
  gboolean ok = check_integrity(store->db_path, conn->db, TRUE, error);
  fth_store_read_end(store, conn);
  return ok;
}

static void
stmt_finalize(gpointer stmt)
{
  sqlite3_finalize(stmt);
}

static void
conn_init(FthConn *conn, sqlite3 *db)
{
  conn->db = db;
  conn->stmts = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, stmt_finalize);
}

/* Opens (CREATE: makes) the database of a project whose directory exists. */
static FthStore *
store_open(const char *dir, gboolean create, FthStoreOpenFlags flags, GError **error)
{
  g_autoptr(FthStore) self = g_object_new(FTH_TYPE_STORE, NULL);
  self->dir = g_canonicalize_filename(dir, NULL);
  self->db_path = g_build_filename(self->dir, FTH_STORE_DB_NAME, NULL);
  const char *path = self->db_path;

  sqlite3 *db = NULL;
  int oflags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0);
  if (!open_connection(path, oflags, &db, error))
    return NULL;
  conn_init(&self->wconn, db);

  /* The first reads of the file: garbage in its header shows up here as SQLITE_NOTADB. */
  int app_id = 0, version = 0;
  if (!pragma_int(db, path, "PRAGMA application_id", &app_id, error) ||
      !pragma_int(db, path, "PRAGMA user_version", &version, error))
    return NULL;
  if (!create) {
    int n_tables = 0;
    if (!pragma_int(db, path, "SELECT count(*) FROM sqlite_schema", &n_tables, error))
      return NULL;
    /* An empty file is a project whose creation was interrupted: it is migrated below. */
    if (app_id != FTH_STORE_APPLICATION_ID && !(version == 0 && n_tables == 0)) {
      g_set_error(error, FTH_STORE_ERROR, FTH_STORE_ERROR_NOT_PROJECT,
                  "%s: an SQLite database, but not a Fathom project", path);
      return NULL;
    }
  }
  if (version > FTH_STORE_SCHEMA_VERSION) {
    g_set_error(error, FTH_STORE_ERROR, FTH_STORE_ERROR_VERSION,
                "%s: schema version %d is newer than this program (%d); update Fathom", path,
                version, FTH_STORE_SCHEMA_VERSION);
    return NULL;
  }

  /* synchronous=NORMAL in WAL mode: commits survive a killed process; only power loss can
   * drop the last ones (see store.h). */
  if (!exec_db(db, path, "PRAGMA journal_mode = WAL", "switching to WAL mode", error) ||
      !exec_db(db, path,
               "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;"
               /* 64 MiB of page cache (default 2 MiB): an import's random-order inserts into
                * the sha256 index otherwise spill pages to the WAL over and over. */
               "PRAGMA cache_size = -65536",
               "setting up the connection", error))
    return NULL;

  if (!(flags & FTH_STORE_OPEN_SKIP_CHECK) && !create &&
      !check_integrity(path, db, (flags & FTH_STORE_OPEN_FULL_CHECK) != 0, error))
    return NULL;

  if (!fth_store_migrate_db(db, path, FTH_STORE_SCHEMA_VERSION, error))
    return NULL;
  self->schema_version = FTH_STORE_SCHEMA_VERSION;

  sqlite3 *rdb = NULL;
  if (!open_connection(path, SQLITE_OPEN_READWRITE, &rdb, error))
    return NULL;
  conn_init(&self->rconn, rdb);
  /* The read connection never writes; query_only makes a slip an error instead of a lock. */
  if (!exec_db(rdb, path, "PRAGMA query_only = ON; PRAGMA foreign_keys = ON;"
                          "PRAGMA cache_size = -32768",
               "setting up the read connection", error))
    return NULL;

  return g_steal_pointer(&self);
}

FthStore *
fth_store_create(const char *dir, GError **error)
{
  g_return_val_if_fail(dir != NULL, NULL);
  if (g_mkdir_with_parents(dir, 0755) != 0) {
    int err = errno;
    g_set_error(error, FTH_STORE_ERROR, FTH_STORE_ERROR_IO, "%s: cannot create the directory: %s",
                dir, g_strerror(err));
    return NULL;
  }
  g_autofree char *db_path = g_build_filename(dir, FTH_STORE_DB_NAME, NULL);
  if (g_file_test(db_path, G_FILE_TEST_EXISTS)) {
    g_set_error(error, FTH_STORE_ERROR, FTH_STORE_ERROR_EXISTS,
                "%s: a project already exists here", db_path);
    return NULL;
  }
  g_autoptr(FthStore) store = store_open(dir, TRUE, FTH_STORE_OPEN_DEFAULT, error);
  if (store == NULL)
    return NULL;
  g_autofree char *name = g_path_get_basename(store->dir);
  g_autofree char *created = g_strdup_printf("%" G_GINT64_FORMAT, g_get_real_time());
  if (!fth_store_set_name(store, name, error) ||
      !fth_store_set_meta(store, "created_us", created, error))
    return NULL;
  return g_steal_pointer(&store);
}

FthStore *
fth_store_open_full(const char *dir, FthStoreOpenFlags flags, GError **error)
{
  g_return_val_if_fail(dir != NULL, NULL);
  if (!g_file_test(dir, G_FILE_TEST_IS_DIR)) {
    g_set_error(error, FTH_STORE_ERROR, FTH_STORE_ERROR_NOT_PROJECT,
                "%s: not a Fathom project (no such directory)", dir);
    return NULL;
  }
  g_autofree char *db_path = g_build_filename(dir, FTH_STORE_DB_NAME, NULL);
  if (!g_file_test(db_path, G_FILE_TEST_IS_REGULAR)) {
    g_set_error(error, FTH_STORE_ERROR, FTH_STORE_ERROR_NOT_PROJECT,
                "%s: not a Fathom project (no %s in it)", dir, FTH_STORE_DB_NAME);
    return NULL;
  }
  return store_open(dir, FALSE, flags, error);
}

FthStore *
fth_store_open(const char *dir, GError **error)
{
  return fth_store_open_full(dir, FTH_STORE_OPEN_DEFAULT, error);
}

const char *
fth_store_get_dir(FthStore *store)
{
  g_return_val_if_fail(FTH_IS_STORE(store), NULL);
  return store->dir;
}

const char *
fth_store_get_db_path(FthStore *store)
{
  g_return_val_if_fail(FTH_IS_STORE(store), NULL);
  return store->db_path;
}

int
fth_store_get_schema_version(FthStore *store)
{
  g_return_val_if_fail(FTH_IS_STORE(store), 0);
  return store->schema_version;
}

char *
fth_store_relative_path(FthStore *store, const char *path)
{
  g_return_val_if_fail(FTH_IS_STORE(store) && path != NULL, NULL);
  if (!g_path_is_absolute(path))
    return g_strdup(path);
  g_autofree char *canon = g_canonicalize_filename(path, NULL);
  gsize n = strlen(store->dir);
  if (strncmp(canon, store->dir, n) == 0 && canon[n] == G_DIR_SEPARATOR && canon[n + 1] != '\0')
    return g_strdup(canon + n + 1);
  return g_steal_pointer(&canon);
}

char *
fth_store_resolve_path(FthStore *store, const char *stored_path)
{
  g_return_val_if_fail(FTH_IS_STORE(store) && stored_path != NULL, NULL);
  if (g_path_is_absolute(stored_path))
    return g_strdup(stored_path);
  return g_build_filename(store->dir, stored_path, NULL);
}

/* ---- metadata ----------------------------------------------------------------------------- */

char *
fth_store_get_meta(FthStore *store, const char *key, GError **error)
{
  g_return_val_if_fail(FTH_IS_STORE(store) && key != NULL, NULL);
  FthConn *conn = fth_store_read_begin(store);
  char *value = NULL;
  g_autoptr(FthCachedStmt) stmt =
      fth_store_prepare(store, conn, "SELECT value FROM meta WHERE key = ?", error);
  if (stmt != NULL) {
    sqlite3_bind_text(stmt, 1, key, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW)
      value = fth_store_column_strdup(stmt, 0);
    else if (rc != SQLITE_DONE)
      fth_store_set_sqlite_error(store, conn, rc, "reading metadata", error);
  }
  g_clear_pointer(&stmt, fth_cached_stmt_release);
  fth_store_read_end(store, conn);
  return value;
}

gboolean
fth_store_set_meta(FthStore *store, const char *key, const char *value, GError **error)
{
  g_return_val_if_fail(FTH_IS_STORE(store) && key != NULL, FALSE);
  FthConn *conn = fth_store_write_begin(store, error);
  if (conn == NULL)
    return FALSE;
  const char *sql = value != NULL ? "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)"
                                  : "DELETE FROM meta WHERE key = ?";
  gboolean ok = FALSE;
  g_autoptr(FthCachedStmt) stmt = fth_store_prepare(store, conn, sql, error);
  if (stmt != NULL) {
    sqlite3_bind_text(stmt, 1, key, -1, SQLITE_TRANSIENT);
    if (value != NULL)
      sqlite3_bind_text(stmt, 2, value, -1, SQLITE_TRANSIENT);
    ok = fth_store_step_done(store, conn, stmt, error);
  }
  g_clear_pointer(&stmt, fth_cached_stmt_release);
  return fth_store_write_end(store, conn, ok, error);
}

char *
fth_store_get_name(FthStore *store, GError **error)
{
  return fth_store_get_meta(store, "name", error);
}

gboolean
fth_store_set_name(FthStore *store, const char *name, GError **error)
{
  g_return_val_if_fail(name != NULL, FALSE);
  if (*name == '\0') {
    fth_store_set_error(store, error, FTH_STORE_ERROR_INVALID, "the project name is empty");
    return FALSE;
  }
  return fth_store_set_meta(store, "name", name, error);
}
