/* fth-store-items.c: items, item filters, counting and paging. */
#include "fth-config.h"

#include "store-private.h"

#include <string.h>

#define ITEM_COLUMNS                                                                         \
  "i.id, i.kind, i.path, i.member, i.sha256, i.size_bytes, i.width, i.height, i.duration_s, " \
  "i.sample_rate, i.length_chars, i.text, i.split, i.mtime, i.created_us"

/* The class label shown for an item: whole-item annotations, human before model. */
#define CLASS_NAME_COLUMN                                                            \
  "(SELECT l.name FROM annotations a JOIN labels l ON l.id = a.label_id"             \
  " WHERE a.item_id = i.id AND a.geom = 0 ORDER BY a.author, a.id LIMIT 1)"

FthItemRecord *
fth_item_record_new(void)
{
  FthItemRecord *item = g_new0(FthItemRecord, 1);
  item->member = -1;
  return item;
}

void
fth_item_record_free(FthItemRecord *item)
{
  if (item == NULL)
    return;
  g_free(item->path);
  g_free(item->sha256);
  g_free(item->text);
  g_free(item);
}

static FthItemRecord *
item_from_row(sqlite3_stmt *stmt)
{
  FthItemRecord *item = g_new0(FthItemRecord, 1);
  item->id = sqlite3_column_int64(stmt, 0);
  item->kind = sqlite3_column_int(stmt, 1);
  item->path = fth_store_column_strdup(stmt, 2);
  item->member = sqlite3_column_int64(stmt, 3);
  item->sha256 = fth_store_column_strdup(stmt, 4);
  item->size_bytes = sqlite3_column_int64(stmt, 5);
  item->width = sqlite3_column_int(stmt, 6);
  item->height = sqlite3_column_int(stmt, 7);
  item->duration_s = sqlite3_column_double(stmt, 8);
  item->sample_rate = sqlite3_column_int(stmt, 9);
  item->length_chars = sqlite3_column_int64(stmt, 10);
  item->text = fth_store_column_strdup(stmt, 11);
  item->split = sqlite3_column_int(stmt, 12);
  item->mtime = sqlite3_column_int64(stmt, 13);
  item->created_us = sqlite3_column_int64(stmt, 14);
  return item;
}

static gboolean
validate_item(FthStore *store, const FthItemRecord *item, char **out_sha, GError **error)
{
  if (item->kind < FTH_ITEM_IMAGE || item->kind > FTH_ITEM_TEXT) {
    fth_store_set_error(store, error, FTH_STORE_ERROR_INVALID, "item kind %d is not image, audio or text",
                        (int) item->kind);
    return FALSE;
  }
  if (item->path == NULL || *item->path == '\0') {
    fth_store_set_error(store, error, FTH_STORE_ERROR_INVALID, "an item needs a path");
    return FALSE;
  }
  if (item->split < FTH_SPLIT_NONE || item->split > FTH_SPLIT_TEST) {
    fth_store_set_error(store, error, FTH_STORE_ERROR_INVALID, "%s: split %d is not none, train, val or test",
                        item->path, (int) item->split);
    return FALSE;
  }
  if (item->member < -1) {
    fth_store_set_error(store, error, FTH_STORE_ERROR_INVALID, "%s: member %" G_GINT64_FORMAT " is negative",
                        item->path, item->member);
    return FALSE;
  }
  gboolean hex = item->sha256 != NULL && strlen(item->sha256) == 64;
  for (int i = 0; hex && i < 64; i++)
    hex = g_ascii_isxdigit(item->sha256[i]);
  if (!hex) {
    fth_store_set_error(store, error, FTH_STORE_ERROR_INVALID, "%s: sha256 \"%s\" is not 64 hex digits",
                        item->path, item->sha256 ? item->sha256 : "(null)");
    return FALSE;
  }
  *out_sha = g_ascii_strdown(item->sha256, -1);
  return TRUE;
}

/* Binds the columns kind .. mtime to parameters 1 .. 13. */
static void
bind_item(sqlite3_stmt *stmt, const FthItemRecord *item, const char *path, const char *sha)
{
  sqlite3_bind_int(stmt, 1, item->kind);
  sqlite3_bind_text(stmt, 2, path, -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(stmt, 3, item->member);
  sqlite3_bind_text(stmt, 4, sha, -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(stmt, 5, item->size_bytes);
  sqlite3_bind_int(stmt, 6, item->width);
  sqlite3_bind_int(stmt, 7, item->height);
  sqlite3_bind_double(stmt, 8, item->duration_s);
  sqlite3_bind_int(stmt, 9, item->sample_rate);
  sqlite3_bind_int64(stmt, 10, item->length_chars);
  fth_store_bind_text_or_null(stmt, 11, item->text);
  sqlite3_bind_int(stmt, 12, item->split);
  sqlite3_bind_int64(stmt, 13, item->mtime);
}

static gint64
lookup_id(FthStore *store, FthConn *conn, const char *sql, const char *text, gint64 number,
          GError **error)
{
  g_autoptr(FthCachedStmt) stmt = fth_store_prepare(store, conn, sql, error);
  if (stmt == NULL)
    return -1;
  sqlite3_bind_text(stmt, 1, text, -1, SQLITE_TRANSIENT);
  if (sqlite3_bind_parameter_count(stmt) > 1)
    sqlite3_bind_int64(stmt, 2, number);
  int rc = sqlite3_step(stmt);
  if (rc == SQLITE_ROW)
    return sqlite3_column_int64(stmt, 0);
  if (rc != SQLITE_DONE) {
    fth_store_set_sqlite_error(store, conn, rc, "looking up an item", error);
    return -1;
  }
  return 0;
}

/* Returns 1 for added, 0 for a duplicate (*OUT_ID the existing item), -1 for an error. */
static int
add_item_locked(FthStore *store, FthConn *conn, const FthItemRecord *item, const char *path,
                const char *sha, gint64 *out_id, GError **error)
{
  g_autoptr(FthCachedStmt) stmt = fth_store_prepare(store, conn,
      "INSERT INTO items (kind, path, member, sha256, size_bytes, width, height, duration_s,"
      " sample_rate, length_chars, text, split, mtime, created_us)"
      " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", error);
  if (stmt == NULL)
    return -1;
  bind_item(stmt, item, path, sha);
  sqlite3_bind_int64(stmt, 14, g_get_real_time());
  int rc = sqlite3_step(stmt);
  if (rc == SQLITE_DONE) {
    *out_id = sqlite3_last_insert_rowid(conn->db);
    return 1;
  }
  if (rc != SQLITE_CONSTRAINT_UNIQUE) {
    fth_store_set_sqlite_error(store, conn, rc, "adding an item", error);
    return -1;
  }
  g_clear_pointer(&stmt, fth_cached_stmt_release);
  gint64 existing = lookup_id(store, conn, "SELECT id FROM items WHERE sha256 = ?", sha, 0, error);
  if (existing < 0)
    return -1;
  if (existing > 0) {
    *out_id = existing;
    return 0;
  }
  existing = lookup_id(store, conn, "SELECT id FROM items WHERE path = ? AND member = ?", path,
                       item->member, error);
  if (existing < 0)
    return -1;
  fth_store_set_error(store, error, FTH_STORE_ERROR_CONFLICT,
                      "%s (member %" G_GINT64_FORMAT ") is already item %" G_GINT64_FORMAT
                      " with different content",
                      path, item->member, existing);
  return -1;
}

gboolean
fth_store_add_item(FthStore *store, const FthItemRecord *item, gint64 *out_id,
                   gboolean *duplicate, GError **error)
{
  g_return_val_if_fail(FTH_IS_STORE(store) && item != NULL, FALSE);
  if (duplicate != NULL)
    *duplicate = FALSE;
  g_autofree char *sha = NULL;
  if (!validate_item(store, item, &sha, error))
    return FALSE;
  g_autofree char *path = fth_store_relative_path(store, item->path);
  FthConn *conn = fth_store_write_begin(store, error);
  if (conn == NULL)
    return FALSE;
  gint64 id = 0;
  int added = add_item_locked(store, conn, item, path, sha, &id, error);
  if (!fth_store_write_end(store, conn, added == 1, error) && added == 1)
    return FALSE;
  if (added < 0)
    return FALSE;
  if (out_id != NULL)
    *out_id = id;
  if (added == 0) {
    if (duplicate != NULL)
      *duplicate = TRUE;
    else
      fth_store_set_error(store, error, FTH_STORE_ERROR_CONFLICT,
                          "%s has the same content as item %" G_GINT64_FORMAT, path, id);
    return FALSE;
  }
  return TRUE;
}

static gboolean
update_item_locked(FthStore *store, FthConn *conn, const FthItemRecord *item, const char *path,
                   const char *sha, GError **error)
{
  g_autoptr(FthCachedStmt) stmt = fth_store_prepare(store, conn,
      "UPDATE items SET kind = ?, path = ?, member = ?, sha256 = ?, size_bytes = ?, width = ?,"
      " height = ?, duration_s = ?, sample_rate = ?, length_chars = ?, text = ?, split = ?,"
      " mtime = ? WHERE id = ?", error);
  if (stmt == NULL)
    return FALSE;
  bind_item(stmt, item, path, sha);
  sqlite3_bind_int64(stmt, 14, item->id);
  return fth_store_step_done(store, conn, stmt, error) &&
         fth_store_check_changed(store, conn, "item", item->id, error);
}

gboolean
fth_store_update_item(FthStore *store, const FthItemRecord *item, GError **error)
{
  g_return_val_if_fail(FTH_IS_STORE(store) && item != NULL, FALSE);
  g_autofree char *sha = NULL;
  if (!validate_item(store, item, &sha, error))
    return FALSE;
  g_autofree char *path = fth_store_relative_path(store, item->path);
  FthConn *conn = fth_store_write_begin(store, error);
  if (conn == NULL)
    return FALSE;
  gboolean ok = update_item_locked(store, conn, item, path, sha, error);
  return fth_store_write_end(store, conn, ok, error);
}

/* Runs a query whose parameters are (TEXT, INT64) or (INT64) and returns its first row as an
 * item, NULL when there is none (NOT_FOUND when MISSING_IS_ERROR). */
static FthItemRecord *
get_item_locked(FthStore *store, FthConn *conn, const char *sql, const char *text,
                gint64 number, gboolean missing_is_error, GError **error)
{
  g_autoptr(FthCachedStmt) stmt = fth_store_prepare(store, conn, sql, error);
  if (stmt == NULL)
    return NULL;
  int idx = 1;
  if (text != NULL)
    sqlite3_bind_text(stmt, idx++, text, -1, SQLITE_TRANSIENT);
  if (idx <= sqlite3_bind_parameter_count(stmt))
    sqlite3_bind_int64(stmt, idx, number);
  int rc = sqlite3_step(stmt);
  if (rc == SQLITE_ROW)
    return item_from_row(stmt);
  if (rc != SQLITE_DONE)
    fth_store_set_sqlite_error(store, conn, rc, "reading an item", error);
  else if (missing_is_error)
    fth_store_set_error(store, error, FTH_STORE_ERROR_NOT_FOUND,
                        "no item with id %" G_GINT64_FORMAT, number);
  return NULL;
}

FthItemRecord *
fth_store_get_item(FthStore *store, gint64 id, GError **error)
{
  g_return_val_if_fail(FTH_IS_STORE(store), NULL);
  FthConn *conn = fth_store_read_begin(store);
  FthItemRecord *item = get_item_locked(store, conn,
      "SELECT " ITEM_COLUMNS " FROM items i WHERE i.id = ?", NULL, id, TRUE, error);
  fth_store_read_end(store, conn);
  return item;
}

FthItemRecord *
fth_store_find_item(FthStore *store, const char *path, gint64 member, GError **error)
{
  g_return_val_if_fail(FTH_IS_STORE(store) && path != NULL, NULL);
  g_autofree char *stored = fth_store_relative_path(store, path);
  FthConn *conn = fth_store_read_begin(store);
  FthItemRecord *item = get_item_locked(store, conn,
      "SELECT " ITEM_COLUMNS " FROM items i WHERE i.path = ? AND i.member = ?", stored, member,
      FALSE, error);
  fth_store_read_end(store, conn);
  return item;
}

FthItemRecord *
fth_store_find_item_by_sha256(FthStore *store, const char *sha256, GError **error)
{
  g_return_val_if_fail(FTH_IS_STORE(store) && sha256 != NULL, NULL);
  g_autofree char *lower = g_ascii_strdown(sha256, -1);
  FthConn *conn = fth_store_read_begin(store);
  FthItemRecord *item = get_item_locked(store, conn,
      "SELECT " ITEM_COLUMNS " FROM items i WHERE i.sha256 = ?", lower, 0, FALSE, error);
  fth_store_read_end(store, conn);
  return item;
}

static gboolean
exec_by_id(FthStore *store, FthConn *conn, const char *sql, gint64 id, const char *table,
           GError **error)
{
  g_autoptr(FthCachedStmt) stmt = fth_store_prepare(store, conn, sql, error);
  if (stmt == NULL)
    return FALSE;
  sqlite3_bind_int64(stmt, 1, id);
  return fth_store_step_done(store, conn, stmt, error) &&
         fth_store_check_changed(store, conn, table, id, error);
}

gboolean
fth_store_delete_item(FthStore *store, gint64 id, GError **error)
{
  g_return_val_if_fail(FTH_IS_STORE(store), FALSE);
  FthConn *conn = fth_store_write_begin(store, error);
  if (conn == NULL)
    return FALSE;
  gboolean ok = exec_by_id(store, conn, "DELETE FROM items WHERE id = ?", id, "item", error);
  return fth_store_write_end(store, conn, ok, error);
}

static gboolean
set_split_locked(FthStore *store, FthConn *conn, const gint64 *ids, gsize n_ids, FthSplit split,
                 GError **error)
{
  g_autoptr(FthCachedStmt) stmt =
      fth_store_prepare(store, conn, "UPDATE items SET split = ? WHERE id = ?", error);
  if (stmt == NULL)
    return FALSE;
  for (gsize i = 0; i < n_ids; i++) {
    sqlite3_reset(stmt);
    sqlite3_bind_int(stmt, 1, split);
    sqlite3_bind_int64(stmt, 2, ids[i]);
    if (!fth_store_step_done(store, conn, stmt, error) ||
        !fth_store_check_changed(store, conn, "item", ids[i], error))
      return FALSE;
  }
  return TRUE;
}

gboolean
fth_store_set_split(FthStore *store, const gint64 *ids, gsize n_ids, FthSplit split,
                    GError **error)
{
  g_return_val_if_fail(FTH_IS_STORE(store) && (ids != NULL || n_ids == 0), FALSE);
  if (split < FTH_SPLIT_NONE || split > FTH_SPLIT_TEST) {
    fth_store_set_error(store, error, FTH_STORE_ERROR_INVALID, "split %d is not none, train, val or test",
                        (int) split);
    return FALSE;
  }
  FthConn *conn = fth_store_write_begin(store, error);
  if (conn == NULL)
    return FALSE;
  gboolean ok = set_split_locked(store, conn, ids, n_ids, split, error);
  return fth_store_write_end(store, conn, ok, error);
}

/* ---- filters ------------------------------------------------------------------------------ */

void
fth_item_filter_init(FthItemFilter *filter)
{
  const FthItemFilter init = FTH_ITEM_FILTER_INIT;
  *filter = init;
}

FthItemFilter *
fth_item_filter_copy(const FthItemFilter *filter)
{
  FthItemFilter *copy = g_new(FthItemFilter, 1);
  if (filter != NULL)
    *copy = *filter;
  else
    fth_item_filter_init(copy);
  copy->search = g_strdup(copy->search);
  return copy;
}

void
fth_item_filter_free(FthItemFilter *filter)
{
  if (filter == NULL)
    return;
  g_free((char *) filter->search);
  g_free(filter);
}

/* A query under construction: SQL text and its parameters in order. */
typedef struct {
  GString *sql;
  GArray *ints;    /* gint64, bound where kinds[i] == 'i' */
  GArray *doubles; /* double, where kinds[i] == 'd' */
  GPtrArray *texts;
  GString *kinds;
} Query;

static void
query_int(Query *q, const char *clause, gint64 v)
{
  g_string_append(q->sql, clause);
  g_array_append_val(q->ints, v);
  g_string_append_c(q->kinds, 'i');
}

static void
query_double(Query *q, double v)
{
  g_array_append_val(q->doubles, v);
  g_string_append_c(q->kinds, 'd');
}

static void
query_text(Query *q, char *v)
{
  g_ptr_array_add(q->texts, v);
  g_string_append_c(q->kinds, 't');
}

static void
query_clear(Query *q)
{
  g_string_free(q->sql, TRUE);
  g_array_unref(q->ints);
  g_array_unref(q->doubles);
  g_ptr_array_unref(q->texts);
  g_string_free(q->kinds, TRUE);
}

static void
query_bind(Query *q, sqlite3_stmt *stmt)
{
  guint ni = 0, nd = 0, nt = 0;
  for (gsize k = 0; k < q->kinds->len; k++) {
    int idx = (int) k + 1;
    switch (q->kinds->str[k]) {
    case 'i':
      sqlite3_bind_int64(stmt, idx, g_array_index(q->ints, gint64, ni++));
      break;
    case 'd':
      sqlite3_bind_double(stmt, idx, g_array_index(q->doubles, double, nd++));
      break;
    default:
      sqlite3_bind_text(stmt, idx, g_ptr_array_index(q->texts, nt++), -1, SQLITE_TRANSIENT);
      break;
    }
  }
}

/* LIKE pattern for a substring search; '\' escapes the wildcards. */
static char *
like_pattern(const char *needle)
{
  GString *s = g_string_new("%");
  for (const char *p = needle; *p != '\0'; p++) {
    if (*p == '%' || *p == '_' || *p == '\\')
      g_string_append_c(s, '\\');
    g_string_append_c(s, *p);
  }
  g_string_append_c(s, '%');
  return g_string_free(s, FALSE);
}

static gint64
latest_prediction_run_locked(FthStore *store, FthConn *conn, GError **error)
{
  g_autoptr(FthCachedStmt) stmt =
      fth_store_prepare(store, conn, "SELECT max(run_id) FROM predictions", error);
  if (stmt == NULL)
    return -1;
  int rc = sqlite3_step(stmt);
  if (rc == SQLITE_ROW)
    return sqlite3_column_int64(stmt, 0); /* NULL reads as 0: no predictions */
  fth_store_set_sqlite_error(store, conn, rc, "finding the latest predictions", error);
  return -1;
}

/* Appends the WHERE conditions for FILTER (each starting with " AND "). */
static gboolean
query_filter(FthStore *store, FthConn *conn, Query *q, const FthItemFilter *f, GError **error)
{
  if (f == NULL)
    return TRUE;
  if (f->kind != FTH_ITEM_ANY)
    query_int(q, " AND i.kind = ?", f->kind);
  if (f->split != FTH_SPLIT_ANY)
    query_int(q, " AND i.split = ?", f->split);
  if (f->label_id > 0) {
    query_int(q, " AND EXISTS (SELECT 1 FROM annotations a WHERE a.item_id = i.id"
                 " AND a.label_id = ?", f->label_id);
    if (f->author != FTH_AUTHOR_ANY)
      query_int(q, " AND a.author = ?", f->author);
    g_string_append(q->sql, ")");
  } else if (f->author != FTH_AUTHOR_ANY) {
    query_int(q, " AND EXISTS (SELECT 1 FROM annotations a WHERE a.item_id = i.id"
                 " AND a.author = ?)", f->author);
  }
  if (f->unlabeled)
    g_string_append(q->sql, " AND NOT EXISTS (SELECT 1 FROM annotations a"
                            " WHERE a.item_id = i.id AND a.author = 0)");
  if (f->predicted_label_id > 0 || f->by_score) {
    gint64 run = f->prediction_run_id;
    if (run <= 0 && (run = latest_prediction_run_locked(store, conn, error)) < 0)
      return FALSE;
    query_int(q, " AND EXISTS (SELECT 1 FROM predictions p WHERE p.run_id = ?"
                 " AND p.item_id = i.id", run);
    if (f->predicted_label_id > 0)
      query_int(q, " AND p.top_label_id = ?", f->predicted_label_id);
    if (f->by_score) {
      g_string_append(q->sql, " AND p.top_score BETWEEN ? AND ?");
      query_double(q, f->min_score);
      query_double(q, f->max_score);
    }
    g_string_append(q->sql, ")");
  }
  if (f->search != NULL && *f->search != '\0') {
    g_string_append(q->sql, " AND (i.path LIKE ? ESCAPE '\\' OR i.text LIKE ? ESCAPE '\\')");
    query_text(q, like_pattern(f->search));
    query_text(q, like_pattern(f->search));
  }
  return TRUE;
}

static void
query_init(Query *q, const char *select)
{
  q->sql = g_string_new(select);
  q->ints = g_array_new(FALSE, FALSE, sizeof(gint64));
  q->doubles = g_array_new(FALSE, FALSE, sizeof(double));
  q->texts = g_ptr_array_new_with_free_func(g_free);
  q->kinds = g_string_new(NULL);
}

static gboolean
count_locked(FthStore *store, FthConn *conn, const FthItemFilter *filter, gint64 *out_count,
             GError **error)
{
  Query q;
  query_init(&q, "SELECT count(*) FROM items i WHERE 1");
  gboolean ok = query_filter(store, conn, &q, filter, error);
  if (ok) {
    g_autoptr(FthCachedStmt) stmt = fth_store_prepare(store, conn, q.sql->str, error);
    ok = stmt != NULL;
    if (ok) {
      query_bind(&q, stmt);
      int rc = sqlite3_step(stmt);
      ok = rc == SQLITE_ROW;
      if (ok)
        *out_count = sqlite3_column_int64(stmt, 0);
      else
        fth_store_set_sqlite_error(store, conn, rc, "counting items", error);
    }
  }
  query_clear(&q);
  return ok;
}

gboolean
fth_store_count_items(FthStore *store, const FthItemFilter *filter, gint64 *out_count,
                      GError **error)
{
  g_return_val_if_fail(FTH_IS_STORE(store) && out_count != NULL, FALSE);
  FthConn *conn = fth_store_read_begin(store);
  gboolean ok = count_locked(store, conn, filter, out_count, error);
  fth_store_read_end(store, conn);
  return ok;
}

static GPtrArray *
query_items_locked(FthStore *store, FthConn *conn, const FthItemFilter *filter, gint64 after_id,
                   gint64 offset, guint limit, GPtrArray *class_names, GError **error)
{
  Query q;
  query_init(&q, class_names != NULL ? "SELECT " ITEM_COLUMNS ", " CLASS_NAME_COLUMN
                                       " FROM items i WHERE 1"
                                     : "SELECT " ITEM_COLUMNS " FROM items i WHERE 1");
  GPtrArray *items = NULL;
  if (query_filter(store, conn, &q, filter, error)) {
    if (after_id > 0)
      query_int(&q, " AND i.id > ?", after_id);
    query_int(&q, " ORDER BY i.id LIMIT ?", limit);
    if (after_id <= 0)
      query_int(&q, " OFFSET ?", MAX(offset, 0));
    g_autoptr(FthCachedStmt) stmt = fth_store_prepare(store, conn, q.sql->str, error);
    if (stmt != NULL) {
      query_bind(&q, stmt);
      items = g_ptr_array_new_full(limit, (GDestroyNotify) fth_item_record_free);
      int rc;
      while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        g_ptr_array_add(items, item_from_row(stmt));
        if (class_names != NULL)
          g_ptr_array_add(class_names, fth_store_column_strdup(stmt, 15));
      }
      if (rc != SQLITE_DONE) {
        fth_store_set_sqlite_error(store, conn, rc, "listing items", error);
        g_clear_pointer(&items, g_ptr_array_unref);
      }
    }
  }
  query_clear(&q);
  return items;
}

GPtrArray *
fth_store_query_items(FthStore *store, const FthItemFilter *filter, gint64 after_id,
                      gint64 offset, guint limit, GPtrArray **class_names, GError **error)
{
  g_return_val_if_fail(FTH_IS_STORE(store), NULL);
  GPtrArray *names = class_names != NULL ? g_ptr_array_new_with_free_func(g_free) : NULL;
  FthConn *conn = fth_store_read_begin(store);
  GPtrArray *items = query_items_locked(store, conn, filter, after_id, offset, limit, names,
                                        error);
  fth_store_read_end(store, conn);
  if (class_names != NULL) {
    if (items != NULL)
      *class_names = names;
    else
      g_ptr_array_unref(names);
  }
  return items;
}

GPtrArray *
fth_store_list_items_after(FthStore *store, const FthItemFilter *filter, gint64 after_id,
                           guint limit, GError **error)
{
  /* after_id 0 means "from the start": the same rows as offset 0. */
  return fth_store_query_items(store, filter, after_id, 0, limit, NULL, error);
}

GPtrArray *
fth_store_list_items_page(FthStore *store, const FthItemFilter *filter, gint64 offset,
                          guint limit, GError **error)
{
  return fth_store_query_items(store, filter, 0, offset, limit, NULL, error);
}

gint64
fth_store_latest_prediction_run(FthStore *store, GError **error)
{
  g_return_val_if_fail(FTH_IS_STORE(store), -1);
  FthConn *conn = fth_store_read_begin(store);
  gint64 run = latest_prediction_run_locked(store, conn, error);
  fth_store_read_end(store, conn);
  return run;
}
