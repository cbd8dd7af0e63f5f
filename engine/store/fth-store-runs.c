/* fth-store-runs.c: runs and their metrics, predictions, embeddings, studies and trials,
 * artifacts and the labeling queue. */
#include "fth-config.h"

#include "store-private.h"

#include <math.h>
#include <string.h>

/* Steps STMT once expecting a row; NOT_FOUND naming TABLE and ID when there is none. */
static gboolean
step_one(FthStore *store, FthConn *conn, sqlite3_stmt *stmt, const char *table, gint64 id,
         GError **error)
{
  int rc = sqlite3_step(stmt);
  if (rc == SQLITE_ROW)
    return TRUE;
  if (rc == SQLITE_DONE)
    fth_store_set_error(store, error, FTH_STORE_ERROR_NOT_FOUND,
                        "no %s with id %" G_GINT64_FORMAT, table, id);
  else
    fth_store_set_sqlite_error(store, conn, rc, "reading", error);
  return FALSE;
}

static gboolean
step_insert(FthStore *store, FthConn *conn, sqlite3_stmt *stmt, const char *what,
            gint64 *out_id, GError **error)
{
  int rc = sqlite3_step(stmt);
  if (rc != SQLITE_DONE) {
    if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
      fth_store_set_error(store, error, FTH_STORE_ERROR_INVALID,
                          "%s refers to a missing row", what);
    else
      fth_store_set_sqlite_error(store, conn, rc, what, error);
    return FALSE;
  }
  if (out_id != NULL)
    *out_id = sqlite3_last_insert_rowid(conn->db);
  return TRUE;
}

typedef FthRowFunc RowFunc;

GPtrArray *
fth_store_list_rows(FthStore *store, const char *sql, const char *text, gint64 id1, gint64 id2,
                    FthRowFunc row_func, GDestroyNotify free_func, const char *what,
                    GError **error)
{
  GPtrArray *rows = NULL;
  FthConn *conn = fth_store_read_begin(store);
  g_autoptr(FthCachedStmt) stmt = fth_store_prepare(store, conn, sql, error);
  if (stmt != NULL) {
    int idx = 1, n = sqlite3_bind_parameter_count(stmt);
    if (text != NULL)
      sqlite3_bind_text(stmt, idx++, text, -1, SQLITE_TRANSIENT);
    if (idx <= n)
      sqlite3_bind_int64(stmt, idx++, id1);
    if (idx <= n)
      sqlite3_bind_int64(stmt, idx++, id2);
    rows = g_ptr_array_new_with_free_func(free_func);
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
      g_ptr_array_add(rows, row_func(stmt));
    if (rc != SQLITE_DONE) {
      fth_store_set_sqlite_error(store, conn, rc, what, error);
      g_clear_pointer(&rows, g_ptr_array_unref);
    }
  }
  g_clear_pointer(&stmt, fth_cached_stmt_release);
  fth_store_read_end(store, conn);
  return rows;
}

#define list_rows(store, sql, text, id1, id2, row_func, free_func, error) \
  fth_store_list_rows(store, sql, text, id1, id2, row_func, free_func, "listing", error)

/* The first row of a query by id, NOT_FOUND naming TABLE when there is none. */
static gpointer
get_row(FthStore *store, const char *sql, gint64 id, const char *table, RowFunc row_func,
        GError **error)
{
  gpointer row = NULL;
  FthConn *conn = fth_store_read_begin(store);
  g_autoptr(FthCachedStmt) stmt = fth_store_prepare(store, conn, sql, error);
  if (stmt != NULL) {
    sqlite3_bind_int64(stmt, 1, id);
    if (step_one(store, conn, stmt, table, id, error))
      row = row_func(stmt);
  }
  g_clear_pointer(&stmt, fth_cached_stmt_release);
  fth_store_read_end(store, conn);
  return row;
}

/* ---- runs --------------------------------------------------------------------------------- */

#define RUN_COLUMNS "id, kind, name, state, config_json, summary_json, created_us, finished_us"

void
fth_run_free(FthRun *run)
{
  if (run == NULL)
    return;
  g_free(run->kind);
  g_free(run->name);
  g_free(run->config_json);
  g_free(run->summary_json);
  g_free(run);
}

static gpointer
run_from_row(sqlite3_stmt *stmt)
{
  FthRun *run = g_new0(FthRun, 1);
  run->id = sqlite3_column_int64(stmt, 0);
  run->kind = fth_store_column_strdup(stmt, 1);
  run->name = fth_store_column_strdup(stmt, 2);
  run->state = sqlite3_column_int(stmt, 3);
  run->config_json = fth_store_column_strdup(stmt, 4);
  run->summary_json = fth_store_column_strdup(stmt, 5);
  run->created_us = sqlite3_column_int64(stmt, 6);
  run->finished_us = sqlite3_column_int64(stmt, 7);
  return run;
}

const char *
fth_run_state_to_string(FthRunState state)
{
  static const char *const names[] = { "queued", "running", "done", "failed", "cancelled" };
  if ((unsigned) state < G_N_ELEMENTS(names))
    return names[state];
  return "unknown";
}

gboolean
fth_store_create_run(FthStore *store, const char *kind, const char *name,
                     const char *config_json, gint64 *out_id, GError **error)
{
  g_return_val_if_fail(FTH_IS_STORE(store), FALSE);
  if (kind == NULL || *kind == '\0') {
    fth_store_set_error(store, error, FTH_STORE_ERROR_INVALID, "a run needs a kind");
    return FALSE;
  }
  if (!fth_store_check_json(store, config_json, "the run configuration", error))
    return FALSE;
  FthConn *conn = fth_store_write_begin(store, error);
  if (conn == NULL)
    return FALSE;
  gboolean ok = FALSE;
  g_autoptr(FthCachedStmt) stmt = fth_store_prepare(store, conn,
      "INSERT INTO runs (kind, name, state, config_json, created_us) VALUES (?, ?, 0, ?, ?)",
      error);
  if (stmt != NULL) {
    sqlite3_bind_text(stmt, 1, kind, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 2, name != NULL ? name : "", -1, SQLITE_TRANSIENT);
    fth_store_bind_text_or_null(stmt, 3, config_json);
    sqlite3_bind_int64(stmt, 4, g_get_real_time());
    ok = step_insert(store, conn, stmt, "adding a run", out_id, error);
  }
  g_clear_pointer(&stmt, fth_cached_stmt_release);
  return fth_store_write_end(store, conn, ok, error);
}

/* Runs an UPDATE/DELETE with parameters bound by the caller's BIND callback, then checks that
 * the row TABLE/ID existed. */
typedef void (*BindFunc)(sqlite3_stmt *stmt, gconstpointer data);

static gboolean
write_by_id(FthStore *store, const char *sql, BindFunc bind, gconstpointer data,
            const char *table, gint64 id, GError **error)
{
  FthConn *conn = fth_store_write_begin(store, error);
  if (conn == NULL)
    return FALSE;
  gboolean ok = FALSE;
  g_autoptr(FthCachedStmt) stmt = fth_store_prepare(store, conn, sql, error);
  if (stmt != NULL) {
    bind(stmt, data);
    ok = fth_store_step_done(store, conn, stmt, error) &&
         fth_store_check_changed(store, conn, table, id, error);
  }
  g_clear_pointer(&stmt, fth_cached_stmt_release);
  return fth_store_write_end(store, conn, ok, error);
}

typedef struct {
  gint64 id;
  int state;
  gint64 finished_us;
  const char *text;
} RunUpdate;

static void
bind_run_state(sqlite3_stmt *stmt, gconstpointer data)
{
  const RunUpdate *u = data;
  sqlite3_bind_int(stmt, 1, u->state);
  sqlite3_bind_int64(stmt, 2, u->finished_us);
  sqlite3_bind_int64(stmt, 3, u->id);
}

gboolean
fth_store_set_run_state(FthStore *store, gint64 id, FthRunState state, GError **error)
{
  g_return_val_if_fail(FTH_IS_STORE(store), FALSE);
  if (state < FTH_RUN_QUEUED || state > FTH_RUN_CANCELLED) {
    fth_store_set_error(store, error, FTH_STORE_ERROR_INVALID, "run state %d is unknown", (int) state);
    return FALSE;
  }
  RunUpdate u = { .id = id, .state = state,
                  .finished_us = state >= FTH_RUN_DONE ? g_get_real_time() : 0 };
  return write_by_id(store, "UPDATE runs SET state = ?, finished_us = ? WHERE id = ?",
                     bind_run_state, &u, "run", id, error);
}

static void
bind_text_id(sqlite3_stmt *stmt, gconstpointer data)
{
  const RunUpdate *u = data;
  fth_store_bind_text_or_null(stmt, 1, u->text);
  sqlite3_bind_int64(stmt, 2, u->id);
}

gboolean
fth_store_set_run_summary(FthStore *store, gint64 id, const char *summary_json, GError **error)
{
  g_return_val_if_fail(FTH_IS_STORE(store), FALSE);
  if (!fth_store_check_json(store, summary_json, "the run summary", error))
    return FALSE;
  RunUpdate u = { .id = id, .text = summary_json };
  return write_by_id(store, "UPDATE runs SET summary_json = ? WHERE id = ?", bind_text_id, &u,
                     "run", id, error);
}

FthRun *
fth_store_get_run(FthStore *store, gint64 id, GError **error)
{
  g_return_val_if_fail(FTH_IS_STORE(store), NULL);
  return get_row(store, "SELECT " RUN_COLUMNS " FROM runs WHERE id = ?", id, "run",
                 run_from_row, error);
}

GPtrArray *
fth_store_list_runs(FthStore *store, const char *kind, GError **error)
{
  g_return_val_if_fail(FTH_IS_STORE(store), NULL);
  if (kind != NULL)
    return list_rows(store, "SELECT " RUN_COLUMNS " FROM runs WHERE kind = ? ORDER BY id DESC",
                     kind, 0, 0, run_from_row, (GDestroyNotify) fth_run_free, error);
  return list_rows(store, "SELECT " RUN_COLUMNS " FROM runs ORDER BY id DESC", NULL, 0, 0,
                   run_from_row, (GDestroyNotify) fth_run_free, error);
}

/* ---- metrics ------------------------------------------------------------------------------ */

void
fth_metric_free(FthMetric *metric)
{
  if (metric == NULL)
    return;
  g_free(metric->name);
  g_free(metric);
}

static gpointer
metric_from_row(sqlite3_stmt *stmt)
{
  FthMetric *m = g_new0(FthMetric, 1);
  m->run_id = sqlite3_column_int64(stmt, 0);
  m->step = sqlite3_column_int64(stmt, 1);
  m->epoch = sqlite3_column_double(stmt, 2);
  m->name = fth_store_column_strdup(stmt, 3);
  m->value = sqlite3_column_double(stmt, 4);
  return m;
}

static gboolean
add_metrics_locked(FthStore *store, FthConn *conn, gint64 run_id, const FthMetric *metrics,
                   gsize n, GError **error)
{
  g_autoptr(FthCachedStmt) stmt = fth_store_prepare(store, conn,
      "INSERT INTO run_metrics (run_id, step, epoch, name, value) VALUES (?, ?, ?, ?, ?)", error);
  if (stmt == NULL)
    return FALSE;
  for (gsize i = 0; i < n; i++) {
    const FthMetric *m = &metrics[i];
    /* SQLite stores NaN as NULL; refusing it here gives a clear error instead of a NOT NULL
     * constraint failure. Infinities are kept (a diverged loss). */
    if (m->name == NULL || *m->name == '\0' || !isfinite(m->epoch) || isnan(m->value)) {
      fth_store_set_error(store, error, FTH_STORE_ERROR_INVALID,
                          "metric %" G_GSIZE_FORMAT " of run %" G_GINT64_FORMAT
                          " has no name, a non-finite epoch or a NaN value", i, run_id);
      return FALSE;
    }
    sqlite3_reset(stmt);
    sqlite3_bind_int64(stmt, 1, run_id);
    sqlite3_bind_int64(stmt, 2, m->step);
    sqlite3_bind_double(stmt, 3, m->epoch);
    sqlite3_bind_text(stmt, 4, m->name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_double(stmt, 5, m->value);
    if (!step_insert(store, conn, stmt, "adding a metric", NULL, error))
      return FALSE;
  }
  return TRUE;
}

gboolean
fth_store_add_metrics(FthStore *store, gint64 run_id, const FthMetric *metrics, gsize n,
                      GError **error)
{
  g_return_val_if_fail(FTH_IS_STORE(store) && (metrics != NULL || n == 0), FALSE);
  FthConn *conn = fth_store_write_begin(store, error);
  if (conn == NULL)
    return FALSE;
  gboolean ok = add_metrics_locked(store, conn, run_id, metrics, n, error);
  return fth_store_write_end(store, conn, ok, error);
}

gboolean
fth_store_add_metric(FthStore *store, gint64 run_id, gint64 step, double epoch,
                     const char *name, double value, GError **error)
{
  FthMetric m = { run_id, step, epoch, (char *) name, value };
  return fth_store_add_metrics(store, run_id, &m, 1, error);
}

GPtrArray *
fth_store_list_metrics(FthStore *store, gint64 run_id, const char *name, GError **error)
{
  g_return_val_if_fail(FTH_IS_STORE(store), NULL);
  if (name != NULL)
    return list_rows(store,
                     "SELECT run_id, step, epoch, name, value FROM run_metrics"
                     " WHERE name = ?1 AND run_id = ?2 ORDER BY step, rowid",
                     name, run_id, 0, metric_from_row, (GDestroyNotify) fth_metric_free, error);
  return list_rows(store,
                   "SELECT run_id, step, epoch, name, value FROM run_metrics"
                   " WHERE run_id = ? ORDER BY step, name, rowid",
                   NULL, run_id, 0, metric_from_row, (GDestroyNotify) fth_metric_free, error);
}

/* ---- predictions and embeddings ----------------------------------------------------------- */

void
fth_prediction_free(FthPrediction *pred)
{
  if (pred == NULL)
    return;
  g_free(pred->probs);
  g_free(pred);
}

static gpointer
prediction_from_row(sqlite3_stmt *stmt)
{
  FthPrediction *p = g_new0(FthPrediction, 1);
  p->run_id = sqlite3_column_int64(stmt, 0);
  p->item_id = sqlite3_column_int64(stmt, 1);
  p->n_classes = (guint) sqlite3_column_int(stmt, 2);
  gsize bytes = (gsize) sqlite3_column_bytes(stmt, 3);
  /* The blob length is checked against n_classes on write; a short one reads as zeros. */
  p->probs = g_new0(float, MAX(p->n_classes, 1));
  memcpy(p->probs, sqlite3_column_blob(stmt, 3), MIN(bytes, p->n_classes * sizeof(float)));
  p->top_label_id = sqlite3_column_int64(stmt, 4);
  p->top_score = sqlite3_column_double(stmt, 5);
  return p;
}

static gboolean
put_predictions_locked(FthStore *store, FthConn *conn, const FthPrediction *preds, gsize n,
                       GError **error)
{
  g_autoptr(FthCachedStmt) stmt = fth_store_prepare(store, conn,
      "INSERT OR REPLACE INTO predictions (run_id, item_id, n_classes, probs, top_label_id,"
      " top_score) VALUES (?, ?, ?, ?, ?, ?)", error);
  if (stmt == NULL)
    return FALSE;
  for (gsize i = 0; i < n; i++) {
    const FthPrediction *p = &preds[i];
    if (p->n_classes == 0 || p->probs == NULL || !isfinite(p->top_score)) {
      fth_store_set_error(store, error, FTH_STORE_ERROR_INVALID,
                          "prediction for item %" G_GINT64_FORMAT " has no probabilities",
                          p->item_id);
      return FALSE;
    }
    sqlite3_reset(stmt);
    sqlite3_bind_int64(stmt, 1, p->run_id);
    sqlite3_bind_int64(stmt, 2, p->item_id);
    sqlite3_bind_int(stmt, 3, (int) p->n_classes);
    sqlite3_bind_blob(stmt, 4, p->probs, (int) (p->n_classes * sizeof(float)), SQLITE_STATIC);
    fth_store_bind_id_or_null(stmt, 5, p->top_label_id);
    sqlite3_bind_double(stmt, 6, p->top_score);
    if (!step_insert(store, conn, stmt, "storing a prediction", NULL, error))
      return FALSE;
  }
  return TRUE;
}

gboolean
fth_store_put_predictions(FthStore *store, const FthPrediction *preds, gsize n, GError **error)
{
  g_return_val_if_fail(FTH_IS_STORE(store) && (preds != NULL || n == 0), FALSE);
  FthConn *conn = fth_store_write_begin(store, error);
  if (conn == NULL)
    return FALSE;
  gboolean ok = put_predictions_locked(store, conn, preds, n, error);
  return fth_store_write_end(store, conn, ok, error);
}

#define PREDICTION_COLUMNS "run_id, item_id, n_classes, probs, top_label_id, top_score"

/* One prediction row selected by (?1, ?2); NULL without error when there is none. */
static FthPrediction *
find_prediction(FthStore *store, const char *sql, gint64 a, gint64 b, GError **error)
{
  g_autoptr(GPtrArray) rows = list_rows(store, sql, NULL, a, b, prediction_from_row,
                                        (GDestroyNotify) fth_prediction_free, error);
  if (rows == NULL || rows->len == 0)
    return NULL;
  return g_ptr_array_steal_index(rows, 0);
}

FthPrediction *
fth_store_get_prediction(FthStore *store, gint64 run_id, gint64 item_id, GError **error)
{
  g_return_val_if_fail(FTH_IS_STORE(store), NULL);
  GError *local = NULL;
  FthPrediction *p = find_prediction(store,
      "SELECT " PREDICTION_COLUMNS " FROM predictions WHERE run_id = ? AND item_id = ?",
      run_id, item_id, &local);
  if (local != NULL)
    g_propagate_error(error, local);
  else if (p == NULL)
    fth_store_set_error(store, error, FTH_STORE_ERROR_NOT_FOUND,
                        "no prediction of run %" G_GINT64_FORMAT " for item %" G_GINT64_FORMAT,
                        run_id, item_id);
  return p;
}

FthPrediction *
fth_store_latest_prediction(FthStore *store, gint64 item_id, GError **error)
{
  g_return_val_if_fail(FTH_IS_STORE(store), NULL);
  return find_prediction(store,
      "SELECT " PREDICTION_COLUMNS " FROM predictions WHERE item_id = ?"
      " ORDER BY run_id DESC LIMIT 1", item_id, 0, error);
}

void
fth_embedding_free(FthEmbedding *emb)
{
  if (emb == NULL)
    return;
  g_free(emb->data);
  g_free(emb);
}

static gpointer
embedding_from_row(sqlite3_stmt *stmt)
{
  FthEmbedding *e = g_new0(FthEmbedding, 1);
  e->run_id = sqlite3_column_int64(stmt, 0);
  e->item_id = sqlite3_column_int64(stmt, 1);
  e->dim = (guint) sqlite3_column_int(stmt, 2);
  gsize bytes = (gsize) sqlite3_column_bytes(stmt, 3);
  e->data = g_new0(float, MAX(e->dim, 1));
  memcpy(e->data, sqlite3_column_blob(stmt, 3), MIN(bytes, e->dim * sizeof(float)));
  return e;
}

static gboolean
put_embeddings_locked(FthStore *store, FthConn *conn, const FthEmbedding *embs, gsize n,
                      GError **error)
{
  g_autoptr(FthCachedStmt) stmt = fth_store_prepare(store, conn,
      "INSERT OR REPLACE INTO embeddings (run_id, item_id, dim, data) VALUES (?, ?, ?, ?)",
      error);
  if (stmt == NULL)
    return FALSE;
  for (gsize i = 0; i < n; i++) {
    const FthEmbedding *e = &embs[i];
    if (e->dim == 0 || e->data == NULL) {
      fth_store_set_error(store, error, FTH_STORE_ERROR_INVALID,
                          "embedding for item %" G_GINT64_FORMAT " is empty", e->item_id);
      return FALSE;
    }
    sqlite3_reset(stmt);
    sqlite3_bind_int64(stmt, 1, e->run_id);
    sqlite3_bind_int64(stmt, 2, e->item_id);
    sqlite3_bind_int(stmt, 3, (int) e->dim);
    sqlite3_bind_blob(stmt, 4, e->data, (int) (e->dim * sizeof(float)), SQLITE_STATIC);
    if (!step_insert(store, conn, stmt, "storing an embedding", NULL, error))
      return FALSE;
  }
  return TRUE;
}

gboolean
fth_store_put_embeddings(FthStore *store, const FthEmbedding *embs, gsize n, GError **error)
{
  g_return_val_if_fail(FTH_IS_STORE(store) && (embs != NULL || n == 0), FALSE);
  FthConn *conn = fth_store_write_begin(store, error);
  if (conn == NULL)
    return FALSE;
  gboolean ok = put_embeddings_locked(store, conn, embs, n, error);
  return fth_store_write_end(store, conn, ok, error);
}

FthEmbedding *
fth_store_get_embedding(FthStore *store, gint64 run_id, gint64 item_id, GError **error)
{
  g_return_val_if_fail(FTH_IS_STORE(store), NULL);
  GError *local = NULL;
  g_autoptr(GPtrArray) rows = list_rows(store,
      "SELECT run_id, item_id, dim, data FROM embeddings WHERE run_id = ? AND item_id = ?",
      NULL, run_id, item_id, embedding_from_row, (GDestroyNotify) fth_embedding_free, &local);
  if (local != NULL) {
    g_propagate_error(error, local);
    return NULL;
  }
  if (rows->len == 0) {
    fth_store_set_error(store, error, FTH_STORE_ERROR_NOT_FOUND,
                        "no embedding of run %" G_GINT64_FORMAT " for item %" G_GINT64_FORMAT,
                        run_id, item_id);
    return NULL;
  }
  return g_ptr_array_steal_index(rows, 0);
}

/* ---- studies and trials ------------------------------------------------------------------- */

#define STUDY_COLUMNS "id, name, direction, space_json, run_id, created_us"
#define TRIAL_COLUMNS \
  "id, study_id, number, params_json, state, value, duration_s, host, error, created_us"

void
fth_study_free(FthStudy *study)
{
  if (study == NULL)
    return;
  g_free(study->name);
  g_free(study->direction);
  g_free(study->space_json);
  g_free(study);
}

static gpointer
study_from_row(sqlite3_stmt *stmt)
{
  FthStudy *s = g_new0(FthStudy, 1);
  s->id = sqlite3_column_int64(stmt, 0);
  s->name = fth_store_column_strdup(stmt, 1);
  s->direction = fth_store_column_strdup(stmt, 2);
  s->space_json = fth_store_column_strdup(stmt, 3);
  s->run_id = sqlite3_column_int64(stmt, 4);
  s->created_us = sqlite3_column_int64(stmt, 5);
  return s;
}

gboolean
fth_store_create_study(FthStore *store, const char *name, const char *direction,
                       const char *space_json, gint64 run_id, gint64 *out_id, GError **error)
{
  g_return_val_if_fail(FTH_IS_STORE(store), FALSE);
  if (name == NULL || *name == '\0' ||
      (g_strcmp0(direction, "minimize") != 0 && g_strcmp0(direction, "maximize") != 0)) {
    fth_store_set_error(store, error, FTH_STORE_ERROR_INVALID,
                        "a study needs a name and a direction (minimize or maximize)");
    return FALSE;
  }
  if (!fth_store_check_json(store, space_json, "the search space", error))
    return FALSE;
  FthConn *conn = fth_store_write_begin(store, error);
  if (conn == NULL)
    return FALSE;
  gboolean ok = FALSE;
  g_autoptr(FthCachedStmt) stmt = fth_store_prepare(store, conn,
      "INSERT INTO studies (name, direction, space_json, run_id, created_us)"
      " VALUES (?, ?, ?, ?, ?)", error);
  if (stmt != NULL) {
    sqlite3_bind_text(stmt, 1, name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 2, direction, -1, SQLITE_TRANSIENT);
    fth_store_bind_text_or_null(stmt, 3, space_json);
    fth_store_bind_id_or_null(stmt, 4, run_id);
    sqlite3_bind_int64(stmt, 5, g_get_real_time());
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_CONSTRAINT_UNIQUE)
      fth_store_set_error(store, error, FTH_STORE_ERROR_CONFLICT,
                          "a study named \"%s\" already exists", name);
    else if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
      fth_store_set_error(store, error, FTH_STORE_ERROR_INVALID,
                          "study \"%s\" refers to missing run %" G_GINT64_FORMAT, name, run_id);
    else if (rc != SQLITE_DONE)
      fth_store_set_sqlite_error(store, conn, rc, "adding a study", error);
    else {
      ok = TRUE;
      if (out_id != NULL)
        *out_id = sqlite3_last_insert_rowid(conn->db);
    }
  }
  g_clear_pointer(&stmt, fth_cached_stmt_release);
  return fth_store_write_end(store, conn, ok, error);
}

FthStudy *
fth_store_get_study(FthStore *store, gint64 id, GError **error)
{
  g_return_val_if_fail(FTH_IS_STORE(store), NULL);
  return get_row(store, "SELECT " STUDY_COLUMNS " FROM studies WHERE id = ?", id, "study",
                 study_from_row, error);
}

GPtrArray *
fth_store_list_studies(FthStore *store, GError **error)
{
  g_return_val_if_fail(FTH_IS_STORE(store), NULL);
  return list_rows(store, "SELECT " STUDY_COLUMNS " FROM studies ORDER BY id", NULL, 0, 0,
                   study_from_row, (GDestroyNotify) fth_study_free, error);
}

void
fth_trial_free(FthTrial *trial)
{
  if (trial == NULL)
    return;
  g_free(trial->params_json);
  g_free(trial->host);
  g_free(trial->error);
  g_free(trial);
}

static gpointer
trial_from_row(sqlite3_stmt *stmt)
{
  FthTrial *t = g_new0(FthTrial, 1);
  t->id = sqlite3_column_int64(stmt, 0);
  t->study_id = sqlite3_column_int64(stmt, 1);
  t->number = sqlite3_column_int(stmt, 2);
  t->params_json = fth_store_column_strdup(stmt, 3);
  t->state = sqlite3_column_int(stmt, 4);
  t->has_value = sqlite3_column_type(stmt, 5) != SQLITE_NULL;
  t->value = sqlite3_column_double(stmt, 5);
  t->duration_s = sqlite3_column_double(stmt, 6);
  t->host = fth_store_column_strdup(stmt, 7);
  t->error = fth_store_column_strdup(stmt, 8);
  t->created_us = sqlite3_column_int64(stmt, 9);
  return t;
}

static gboolean
create_trial_locked(FthStore *store, FthConn *conn, gint64 study_id, const char *params_json,
                    const char *host, gint64 *out_id, int *out_number, GError **error)
{
  g_autoptr(FthCachedStmt) stmt = fth_store_prepare(store, conn,
      "INSERT INTO trials (study_id, number, params_json, state, host, created_us)"
      " VALUES (?1, (SELECT coalesce(max(number) + 1, 0) FROM trials WHERE study_id = ?1),"
      " ?2, 0, ?3, ?4) RETURNING id, number", error);
  if (stmt == NULL)
    return FALSE;
  sqlite3_bind_int64(stmt, 1, study_id);
  fth_store_bind_text_or_null(stmt, 2, params_json);
  fth_store_bind_text_or_null(stmt, 3, host);
  sqlite3_bind_int64(stmt, 4, g_get_real_time());
  int rc = sqlite3_step(stmt);
  if (rc != SQLITE_ROW) {
    if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
      fth_store_set_error(store, error, FTH_STORE_ERROR_INVALID,
                          "no study with id %" G_GINT64_FORMAT, study_id);
    else
      fth_store_set_sqlite_error(store, conn, rc, "adding a trial", error);
    return FALSE;
  }
  if (out_id != NULL)
    *out_id = sqlite3_column_int64(stmt, 0);
  if (out_number != NULL)
    *out_number = sqlite3_column_int(stmt, 1);
  return fth_store_step_done(store, conn, stmt, error);
}

gboolean
fth_store_create_trial(FthStore *store, gint64 study_id, const char *params_json,
                       const char *host, gint64 *out_id, int *out_number, GError **error)
{
  g_return_val_if_fail(FTH_IS_STORE(store), FALSE);
  if (!fth_store_check_json(store, params_json, "the trial parameters", error))
    return FALSE;
  FthConn *conn = fth_store_write_begin(store, error);
  if (conn == NULL)
    return FALSE;
  gboolean ok = create_trial_locked(store, conn, study_id, params_json, host, out_id,
                                    out_number, error);
  return fth_store_write_end(store, conn, ok, error);
}

typedef struct {
  gint64 id;
  FthTrialState state;
  gboolean has_value;
  double value;
  double duration_s;
  const char *error_text;
} TrialFinish;

static void
bind_trial_finish(sqlite3_stmt *stmt, gconstpointer data)
{
  const TrialFinish *f = data;
  sqlite3_bind_int(stmt, 1, f->state);
  if (f->has_value)
    sqlite3_bind_double(stmt, 2, f->value);
  else
    sqlite3_bind_null(stmt, 2);
  sqlite3_bind_double(stmt, 3, f->duration_s);
  fth_store_bind_text_or_null(stmt, 4, f->error_text);
  sqlite3_bind_int64(stmt, 5, f->id);
}

gboolean
fth_store_finish_trial(FthStore *store, gint64 trial_id, FthTrialState state,
                       gboolean has_value, double value, double duration_s,
                       const char *error_text, GError **error)
{
  g_return_val_if_fail(FTH_IS_STORE(store), FALSE);
  if (state < FTH_TRIAL_RUNNING || state > FTH_TRIAL_FAILED ||
      (has_value && !isfinite(value)) || !(duration_s >= 0)) {
    fth_store_set_error(store, error, FTH_STORE_ERROR_INVALID,
                        "trial %" G_GINT64_FORMAT ": bad state, value or duration", trial_id);
    return FALSE;
  }
  TrialFinish f = { trial_id, state, has_value, value, duration_s, error_text };
  return write_by_id(store,
                     "UPDATE trials SET state = ?, value = ?, duration_s = ?, error = ? WHERE id = ?",
                     bind_trial_finish, &f, "trial", trial_id, error);
}

gboolean
fth_store_add_trial_value(FthStore *store, gint64 trial_id, gint64 step, double value,
                          GError **error)
{
  g_return_val_if_fail(FTH_IS_STORE(store), FALSE);
  if (!isfinite(value)) {
    fth_store_set_error(store, error, FTH_STORE_ERROR_INVALID,
                        "trial %" G_GINT64_FORMAT ": intermediate value is not finite", trial_id);
    return FALSE;
  }
  FthConn *conn = fth_store_write_begin(store, error);
  if (conn == NULL)
    return FALSE;
  gboolean ok = FALSE;
  g_autoptr(FthCachedStmt) stmt = fth_store_prepare(store, conn,
      "INSERT OR REPLACE INTO trial_values (trial_id, step, value) VALUES (?, ?, ?)", error);
  if (stmt != NULL) {
    sqlite3_bind_int64(stmt, 1, trial_id);
    sqlite3_bind_int64(stmt, 2, step);
    sqlite3_bind_double(stmt, 3, value);
    ok = step_insert(store, conn, stmt, "adding a trial value", NULL, error);
  }
  g_clear_pointer(&stmt, fth_cached_stmt_release);
  return fth_store_write_end(store, conn, ok, error);
}

FthTrial *
fth_store_get_trial(FthStore *store, gint64 id, GError **error)
{
  g_return_val_if_fail(FTH_IS_STORE(store), NULL);
  return get_row(store, "SELECT " TRIAL_COLUMNS " FROM trials WHERE id = ?", id, "trial",
                 trial_from_row, error);
}

GPtrArray *
fth_store_list_trials(FthStore *store, gint64 study_id, GError **error)
{
  g_return_val_if_fail(FTH_IS_STORE(store), NULL);
  return list_rows(store, "SELECT " TRIAL_COLUMNS " FROM trials WHERE study_id = ? ORDER BY number",
                   NULL, study_id, 0, trial_from_row, (GDestroyNotify) fth_trial_free, error);
}

static gpointer
trial_value_from_row(sqlite3_stmt *stmt)
{
  FthTrialValue *v = g_new(FthTrialValue, 1);
  v->step = sqlite3_column_int64(stmt, 0);
  v->value = sqlite3_column_double(stmt, 1);
  return v;
}

GArray *
fth_store_list_trial_values(FthStore *store, gint64 trial_id, GError **error)
{
  g_return_val_if_fail(FTH_IS_STORE(store), NULL);
  g_autoptr(GPtrArray) rows = list_rows(store,
      "SELECT step, value FROM trial_values WHERE trial_id = ? ORDER BY step", NULL, trial_id, 0,
      trial_value_from_row, g_free, error);
  if (rows == NULL)
    return NULL;
  GArray *values = g_array_sized_new(FALSE, FALSE, sizeof(FthTrialValue), rows->len);
  for (guint i = 0; i < rows->len; i++)
    g_array_append_vals(values, g_ptr_array_index(rows, i), 1);
  return values;
}

/* ---- artifacts ---------------------------------------------------------------------------- */

#define ARTIFACT_COLUMNS "id, run_id, kind, path, sha256, size_bytes, meta_json, created_us"

void
fth_artifact_free(FthArtifact *artifact)
{
  if (artifact == NULL)
    return;
  g_free(artifact->kind);
  g_free(artifact->path);
  g_free(artifact->sha256);
  g_free(artifact->meta_json);
  g_free(artifact);
}

static gpointer
artifact_from_row(sqlite3_stmt *stmt)
{
  FthArtifact *a = g_new0(FthArtifact, 1);
  a->id = sqlite3_column_int64(stmt, 0);
  a->run_id = sqlite3_column_int64(stmt, 1);
  a->kind = fth_store_column_strdup(stmt, 2);
  a->path = fth_store_column_strdup(stmt, 3);
  a->sha256 = fth_store_column_strdup(stmt, 4);
  a->size_bytes = sqlite3_column_int64(stmt, 5);
  a->meta_json = fth_store_column_strdup(stmt, 6);
  a->created_us = sqlite3_column_int64(stmt, 7);
  return a;
}

gboolean
fth_store_add_artifact(FthStore *store, const FthArtifact *artifact, gint64 *out_id,
                       GError **error)
{
  g_return_val_if_fail(FTH_IS_STORE(store) && artifact != NULL, FALSE);
  if (artifact->kind == NULL || *artifact->kind == '\0' || artifact->path == NULL ||
      *artifact->path == '\0') {
    fth_store_set_error(store, error, FTH_STORE_ERROR_INVALID, "an artifact needs a kind and a path");
    return FALSE;
  }
  if (!fth_store_check_json(store, artifact->meta_json, "the artifact metadata", error))
    return FALSE;
  FthConn *conn = fth_store_write_begin(store, error);
  if (conn == NULL)
    return FALSE;
  gboolean ok = FALSE;
  g_autoptr(FthCachedStmt) stmt = fth_store_prepare(store, conn,
      "INSERT INTO artifacts (run_id, kind, path, sha256, size_bytes, meta_json, created_us)"
      " VALUES (?, ?, ?, ?, ?, ?, ?)", error);
  if (stmt != NULL) {
    fth_store_bind_id_or_null(stmt, 1, artifact->run_id);
    sqlite3_bind_text(stmt, 2, artifact->kind, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 3, artifact->path, -1, SQLITE_TRANSIENT);
    fth_store_bind_text_or_null(stmt, 4, artifact->sha256);
    sqlite3_bind_int64(stmt, 5, artifact->size_bytes);
    fth_store_bind_text_or_null(stmt, 6, artifact->meta_json);
    sqlite3_bind_int64(stmt, 7, g_get_real_time());
    ok = step_insert(store, conn, stmt, "adding an artifact", out_id, error);
  }
  g_clear_pointer(&stmt, fth_cached_stmt_release);
  return fth_store_write_end(store, conn, ok, error);
}

FthArtifact *
fth_store_get_artifact(FthStore *store, gint64 id, GError **error)
{
  g_return_val_if_fail(FTH_IS_STORE(store), NULL);
  return get_row(store, "SELECT " ARTIFACT_COLUMNS " FROM artifacts WHERE id = ?", id,
                 "artifact", artifact_from_row, error);
}

GPtrArray *
fth_store_list_artifacts(FthStore *store, gint64 run_id, GError **error)
{
  g_return_val_if_fail(FTH_IS_STORE(store), NULL);
  return list_rows(store,
                   "SELECT " ARTIFACT_COLUMNS " FROM artifacts WHERE ?1 = 0 OR run_id = ?1"
                   " ORDER BY id",
                   NULL, run_id, 0, artifact_from_row, (GDestroyNotify) fth_artifact_free, error);
}

static void
bind_id(sqlite3_stmt *stmt, gconstpointer data)
{
  sqlite3_bind_int64(stmt, 1, *(const gint64 *) data);
}

gboolean
fth_store_remove_artifact(FthStore *store, gint64 id, GError **error)
{
  g_return_val_if_fail(FTH_IS_STORE(store), FALSE);
  return write_by_id(store, "DELETE FROM artifacts WHERE id = ?", bind_id, &id, "artifact", id,
                     error);
}

/* ---- the labeling queue ------------------------------------------------------------------- */

void
fth_queue_entry_free(FthQueueEntry *entry)
{
  if (entry == NULL)
    return;
  g_free(entry->strategy);
  g_free(entry);
}

static gpointer
queue_entry_from_row(sqlite3_stmt *stmt)
{
  FthQueueEntry *e = g_new0(FthQueueEntry, 1);
  e->item_id = sqlite3_column_int64(stmt, 0);
  e->strategy = fth_store_column_strdup(stmt, 1);
  e->score = sqlite3_column_double(stmt, 2);
  e->rank = sqlite3_column_int64(stmt, 3);
  e->run_id = sqlite3_column_int64(stmt, 4);
  e->created_us = sqlite3_column_int64(stmt, 5);
  return e;
}

static gboolean
replace_queue_locked(FthStore *store, FthConn *conn, const char *strategy, gint64 run_id,
                     const FthQueueEntry *entries, gsize n, GError **error)
{
  g_autoptr(FthCachedStmt) del =
      fth_store_prepare(store, conn, "DELETE FROM queue WHERE strategy = ?", error);
  if (del == NULL)
    return FALSE;
  sqlite3_bind_text(del, 1, strategy, -1, SQLITE_TRANSIENT);
  if (!fth_store_step_done(store, conn, del, error))
    return FALSE;
  g_autoptr(FthCachedStmt) stmt = fth_store_prepare(store, conn,
      "INSERT INTO queue (strategy, item_id, score, rank, run_id, created_us)"
      " VALUES (?, ?, ?, ?, ?, ?)", error);
  if (stmt == NULL)
    return FALSE;
  gint64 now = g_get_real_time();
  for (gsize i = 0; i < n; i++) {
    if (!isfinite(entries[i].score)) {
      fth_store_set_error(store, error, FTH_STORE_ERROR_INVALID,
                          "queue entry for item %" G_GINT64_FORMAT " has a non-finite score",
                          entries[i].item_id);
      return FALSE;
    }
    sqlite3_reset(stmt);
    sqlite3_bind_text(stmt, 1, strategy, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(stmt, 2, entries[i].item_id);
    sqlite3_bind_double(stmt, 3, entries[i].score);
    sqlite3_bind_int64(stmt, 4, entries[i].rank);
    fth_store_bind_id_or_null(stmt, 5, run_id);
    sqlite3_bind_int64(stmt, 6, now);
    if (!step_insert(store, conn, stmt, "queueing an item", NULL, error))
      return FALSE;
  }
  return TRUE;
}

gboolean
fth_store_replace_queue(FthStore *store, const char *strategy, gint64 run_id,
                        const FthQueueEntry *entries, gsize n, GError **error)
{
  g_return_val_if_fail(FTH_IS_STORE(store) && (entries != NULL || n == 0), FALSE);
  if (strategy == NULL || *strategy == '\0') {
    fth_store_set_error(store, error, FTH_STORE_ERROR_INVALID, "a queue needs a strategy name");
    return FALSE;
  }
  FthConn *conn = fth_store_write_begin(store, error);
  if (conn == NULL)
    return FALSE;
  gboolean ok = replace_queue_locked(store, conn, strategy, run_id, entries, n, error);
  return fth_store_write_end(store, conn, ok, error);
}

GPtrArray *
fth_store_list_queue(FthStore *store, const char *strategy, guint limit, GError **error)
{
  g_return_val_if_fail(FTH_IS_STORE(store) && strategy != NULL, NULL);
  /* LIMIT -1 is SQLite's "no limit". */
  return list_rows(store,
                   "SELECT item_id, strategy, score, rank, run_id, created_us FROM queue"
                   " WHERE strategy = ? ORDER BY rank, item_id LIMIT ?",
                   strategy, limit > 0 ? (gint64) limit : -1, 0, queue_entry_from_row,
                   (GDestroyNotify) fth_queue_entry_free, error);
}

gboolean
fth_store_dequeue_item(FthStore *store, const char *strategy, gint64 item_id, GError **error)
{
  g_return_val_if_fail(FTH_IS_STORE(store) && strategy != NULL, FALSE);
  FthConn *conn = fth_store_write_begin(store, error);
  if (conn == NULL)
    return FALSE;
  gboolean ok = FALSE;
  g_autoptr(FthCachedStmt) stmt = fth_store_prepare(store, conn,
      "DELETE FROM queue WHERE strategy = ? AND item_id = ?", error);
  if (stmt != NULL) {
    sqlite3_bind_text(stmt, 1, strategy, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(stmt, 2, item_id);
    ok = fth_store_step_done(store, conn, stmt, error);
  }
  g_clear_pointer(&stmt, fth_cached_stmt_release);
  return fth_store_write_end(store, conn, ok, error);
}
