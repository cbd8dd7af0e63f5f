/* store-private.h: what the store's source files share: connections, cached statements,
 * read and write scopes, error mapping. */
#pragma once

#include <fathom/store.h>
#include <sqlite3.h>

G_BEGIN_DECLS

/* One SQLite connection with its cache of prepared statements (keyed by SQL text). */
typedef struct {
  sqlite3 *db;
  GHashTable *stmts;
} FthConn;

/* A cached statement borrowed for one call: g_autoptr(FthCachedStmt) resets it and clears its
 * bindings on scope exit instead of finalizing it. */
typedef sqlite3_stmt FthCachedStmt;
void fth_cached_stmt_release(FthCachedStmt *stmt);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(FthCachedStmt, fth_cached_stmt_release)

/* Read scope: the write connection when this thread holds the explicit transaction (to see its
 * own writes), else the read connection. Always pair with fth_store_read_end(). */
FthConn *fth_store_read_begin(FthStore *store);
void fth_store_read_end(FthStore *store, FthConn *conn);

/* Write scope: locks the write connection and opens a transaction (BEGIN IMMEDIATE) or, inside
 * an explicit transaction, a savepoint. fth_store_write_end() commits when OK is TRUE, else
 * rolls back, and unlocks. Returns FALSE (with ERROR set) when the commit fails. */
FthConn *fth_store_write_begin(FthStore *store, GError **error);
gboolean fth_store_write_end(FthStore *store, FthConn *conn, gboolean ok, GError **error);

/* A prepared statement from CONN's cache, ready to bind. NULL with ERROR on failure. */
FthCachedStmt *fth_store_prepare(FthStore *store, FthConn *conn, const char *sql,
                                 GError **error);
/* Runs SQL (possibly several statements) without caching; for DDL and transactions. */
gboolean fth_store_exec(FthStore *store, FthConn *conn, const char *sql, GError **error);
/* Steps STMT to completion expecting no rows (or ignoring them). */
gboolean fth_store_step_done(FthStore *store, FthConn *conn, sqlite3_stmt *stmt, GError **error);

/* Sets ERROR from CONN's last SQLite error: code mapped to FthStoreError, message
 * "<db path>: <what>: <sqlite message>". */
void fth_store_set_sqlite_error(FthStore *store, FthConn *conn, int rc, const char *what,
                                GError **error);
/* Maps an SQLite (extended) result code to an FthStoreError code. */
FthStoreError fth_store_error_from_sqlite(int rc);
void fth_store_set_error(FthStore *store, GError **error, FthStoreError code, const char *fmt,
                         ...) G_GNUC_PRINTF(4, 5);

/* Helpers for columns that may be NULL. */
char *fth_store_column_strdup(sqlite3_stmt *stmt, int col);
void fth_store_bind_text_or_null(sqlite3_stmt *stmt, int idx, const char *text);
void fth_store_bind_id_or_null(sqlite3_stmt *stmt, int idx, gint64 id);
gboolean fth_store_check_json(FthStore *store, const char *json, const char *what,
                              GError **error);
/* NOT_FOUND error when the last UPDATE/DELETE on CONN changed no row. */
gboolean fth_store_check_changed(FthStore *store, FthConn *conn, const char *table, gint64 id,
                                 GError **error);

/* Schema migrations, exposed for the migration tests: brings DB forward from its
 * user_version to TARGET, one transaction per step. */
gboolean fth_store_migrate_db(sqlite3 *db, const char *db_path, int target, GError **error);

/* Item queries with the name of each item's class label (for FthItemList). Returns records;
 * when CLASS_NAMES is not NULL it receives a parallel array of names (NULL entries allowed).
 * AFTER_ID > 0 selects keyset paging, else OFFSET is used. */
GPtrArray *fth_store_query_items(FthStore *store, const FthItemFilter *filter, gint64 after_id,
                                 gint64 offset, guint limit, GPtrArray **class_names,
                                 GError **error);

typedef gpointer (*FthRowFunc)(sqlite3_stmt *stmt);

/* All rows of a read query as a GPtrArray built by ROW_FUNC. Binds: TEXT (when not NULL) as ?1,
 * then ID1, ID2 as the following parameters when the query has them. WHAT names the query in
 * errors ("listing labels"). */
GPtrArray *fth_store_list_rows(FthStore *store, const char *sql, const char *text, gint64 id1,
                               gint64 id2, FthRowFunc row_func, GDestroyNotify free_func,
                               const char *what, GError **error);

G_END_DECLS
