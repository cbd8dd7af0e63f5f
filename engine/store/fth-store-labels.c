/* fth-store-labels.c: labels and annotations. */
#include "fth-config.h"

#include "store-private.h"

#include <math.h>
#include <string.h>

/* Distinct, readable on light and dark backgrounds (Tableau 10). */
static const char *const label_palette[] = {
  "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
  "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
};

#define LABEL_COLUMNS "id, name, color, hotkey, kind, position"

void
fth_label_free(FthLabel *label)
{
  if (label == NULL)
    return;
  g_free(label->name);
  g_free(label->color);
  g_free(label->hotkey);
  g_free(label);
}

/* gpointer: also an FthRowFunc. */
static gpointer
label_from_row(sqlite3_stmt *stmt)
{
  FthLabel *label = g_new0(FthLabel, 1);
  label->id = sqlite3_column_int64(stmt, 0);
  label->name = fth_store_column_strdup(stmt, 1);
  label->color = fth_store_column_strdup(stmt, 2);
  label->hotkey = fth_store_column_strdup(stmt, 3);
  label->kind = sqlite3_column_int(stmt, 4);
  label->position = sqlite3_column_int(stmt, 5);
  return label;
}

static gboolean
validate_color(FthStore *store, const char *color, GError **error)
{
  gboolean ok = color != NULL && strlen(color) == 7 && color[0] == '#';
  for (int i = 1; ok && i < 7; i++)
    ok = g_ascii_isxdigit(color[i]);
  if (!ok)
    fth_store_set_error(store, error, FTH_STORE_ERROR_INVALID,
                        "color \"%s\" is not of the form #rrggbb", color ? color : "(null)");
  return ok;
}

static gboolean
validate_name(FthStore *store, const char *name, GError **error)
{
  if (name == NULL || *name == '\0' || !g_utf8_validate(name, -1, NULL)) {
    fth_store_set_error(store, error, FTH_STORE_ERROR_INVALID,
                        "a label name must be non-empty UTF-8");
    return FALSE;
  }
  return TRUE;
}

static gboolean
validate_hotkey(FthStore *store, const char *hotkey, GError **error)
{
  if (hotkey == NULL)
    return TRUE;
  if (!g_utf8_validate(hotkey, -1, NULL) || g_utf8_strlen(hotkey, -1) != 1 ||
      g_unichar_isspace(g_utf8_get_char(hotkey))) {
    fth_store_set_error(store, error, FTH_STORE_ERROR_INVALID,
                        "hotkey \"%s\" is not a single visible character", hotkey);
    return FALSE;
  }
  return TRUE;
}

static FthLabel *
label_query_locked(FthStore *store, FthConn *conn, const char *sql, const char *text,
                   gint64 number, GError **error)
{
  g_autoptr(FthCachedStmt) stmt = fth_store_prepare(store, conn, sql, error);
  if (stmt == NULL)
    return NULL;
  if (text != NULL)
    sqlite3_bind_text(stmt, 1, text, -1, SQLITE_TRANSIENT);
  else
    sqlite3_bind_int64(stmt, 1, number);
  int rc = sqlite3_step(stmt);
  if (rc == SQLITE_ROW)
    return label_from_row(stmt);
  if (rc != SQLITE_DONE)
    fth_store_set_sqlite_error(store, conn, rc, "reading a label", error);
  return NULL;
}

/* CONFLICT naming the label that already uses NAME or HOTKEY (other than SELF_ID); TRUE when
 * neither is taken. */
static gboolean
check_label_unique(FthStore *store, FthConn *conn, gint64 self_id, const char *name,
                   const char *hotkey, GError **error)
{
  GError *local = NULL;
  if (name != NULL) {
    g_autoptr(FthLabel) other = label_query_locked(store, conn,
        "SELECT " LABEL_COLUMNS " FROM labels WHERE name = ?", name, 0, &local);
    if (local != NULL) {
      g_propagate_error(error, local);
      return FALSE;
    }
    if (other != NULL && other->id != self_id) {
      fth_store_set_error(store, error, FTH_STORE_ERROR_CONFLICT,
                          "a label named \"%s\" already exists (id %" G_GINT64_FORMAT ")", name,
                          other->id);
      return FALSE;
    }
  }
  if (hotkey != NULL) {
    g_autoptr(FthLabel) other = label_query_locked(store, conn,
        "SELECT " LABEL_COLUMNS " FROM labels WHERE hotkey = ?", hotkey, 0, &local);
    if (local != NULL) {
      g_propagate_error(error, local);
      return FALSE;
    }
    if (other != NULL && other->id != self_id) {
      fth_store_set_error(store, error, FTH_STORE_ERROR_CONFLICT,
                          "hotkey \"%s\" is already used by label \"%s\"", hotkey, other->name);
      return FALSE;
    }
  }
  return TRUE;
}

static gboolean
add_label_locked(FthStore *store, FthConn *conn, const char *name, const char *color,
                 const char *hotkey, FthLabelKind kind, gint64 *out_id, GError **error)
{
  if (!check_label_unique(store, conn, 0, name, hotkey, error))
    return FALSE;
  if (color == NULL) {
    g_autoptr(FthCachedStmt) count = fth_store_prepare(store, conn, "SELECT count(*) FROM labels", error);
    if (count == NULL)
      return FALSE;
    int rc = sqlite3_step(count);
    if (rc != SQLITE_ROW) {
      fth_store_set_sqlite_error(store, conn, rc, "counting labels", error);
      return FALSE;
    }
    color = label_palette[sqlite3_column_int64(count, 0) % G_N_ELEMENTS(label_palette)];
  }
  g_autoptr(FthCachedStmt) stmt = fth_store_prepare(store, conn,
      "INSERT INTO labels (name, color, hotkey, kind, position)"
      " VALUES (?, ?, ?, ?, (SELECT coalesce(max(position) + 1, 0) FROM labels))", error);
  if (stmt == NULL)
    return FALSE;
  sqlite3_bind_text(stmt, 1, name, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(stmt, 2, color, -1, SQLITE_TRANSIENT);
  fth_store_bind_text_or_null(stmt, 3, hotkey);
  sqlite3_bind_int(stmt, 4, kind);
  if (!fth_store_step_done(store, conn, stmt, error))
    return FALSE;
  if (out_id != NULL)
    *out_id = sqlite3_last_insert_rowid(conn->db);
  return TRUE;
}

gboolean
fth_store_add_label(FthStore *store, const char *name, const char *color, const char *hotkey,
                    FthLabelKind kind, gint64 *out_id, GError **error)
{
  g_return_val_if_fail(FTH_IS_STORE(store), FALSE);
  if (!validate_name(store, name, error) || (color != NULL && !validate_color(store, color, error)) ||
      !validate_hotkey(store, hotkey, error))
    return FALSE;
  if (kind < FTH_LABEL_ANY || kind > FTH_LABEL_SPAN) {
    fth_store_set_error(store, error, FTH_STORE_ERROR_INVALID, "label kind %d is unknown", (int) kind);
    return FALSE;
  }
  FthConn *conn = fth_store_write_begin(store, error);
  if (conn == NULL)
    return FALSE;
  gboolean ok = add_label_locked(store, conn, name, color, hotkey, kind, out_id, error);
  return fth_store_write_end(store, conn, ok, error);
}

GPtrArray *
fth_store_list_labels(FthStore *store, GError **error)
{
  g_return_val_if_fail(FTH_IS_STORE(store), NULL);
  return fth_store_list_rows(store, "SELECT " LABEL_COLUMNS " FROM labels ORDER BY position, id",
                             NULL, 0, 0, label_from_row,
                             (GDestroyNotify) fth_label_free, "listing labels", error);
}

FthLabel *
fth_store_get_label(FthStore *store, gint64 id, GError **error)
{
  g_return_val_if_fail(FTH_IS_STORE(store), NULL);
  GError *local = NULL;
  FthConn *conn = fth_store_read_begin(store);
  FthLabel *label = label_query_locked(store, conn,
      "SELECT " LABEL_COLUMNS " FROM labels WHERE id = ?", NULL, id, &local);
  fth_store_read_end(store, conn);
  if (local != NULL)
    g_propagate_error(error, local);
  else if (label == NULL)
    fth_store_set_error(store, error, FTH_STORE_ERROR_NOT_FOUND,
                        "no label with id %" G_GINT64_FORMAT, id);
  return label;
}

FthLabel *
fth_store_find_label(FthStore *store, const char *name, GError **error)
{
  g_return_val_if_fail(FTH_IS_STORE(store) && name != NULL, NULL);
  FthConn *conn = fth_store_read_begin(store);
  FthLabel *label = label_query_locked(store, conn,
      "SELECT " LABEL_COLUMNS " FROM labels WHERE name = ?", name, 0, error);
  fth_store_read_end(store, conn);
  return label;
}

/* UPDATE labels SET <column> = TEXT (or NUMBER when TEXT_COLUMN is FALSE) WHERE id = ID. */
static gboolean
update_label_locked(FthStore *store, FthConn *conn, const char *sql, gboolean text_column,
                    const char *text, gint64 number, gint64 id, GError **error)
{
  g_autoptr(FthCachedStmt) stmt = fth_store_prepare(store, conn, sql, error);
  if (stmt == NULL)
    return FALSE;
  if (text_column)
    fth_store_bind_text_or_null(stmt, 1, text);
  else
    sqlite3_bind_int64(stmt, 1, number);
  sqlite3_bind_int64(stmt, 2, id);
  return fth_store_step_done(store, conn, stmt, error) &&
         fth_store_check_changed(store, conn, "label", id, error);
}

static gboolean
update_label(FthStore *store, const char *sql, gboolean text_column, const char *text,
             gint64 number, gint64 id, const char *unique_name, const char *unique_hotkey,
             GError **error)
{
  FthConn *conn = fth_store_write_begin(store, error);
  if (conn == NULL)
    return FALSE;
  gboolean ok = check_label_unique(store, conn, id, unique_name, unique_hotkey, error) &&
                update_label_locked(store, conn, sql, text_column, text, number, id, error);
  return fth_store_write_end(store, conn, ok, error);
}

gboolean
fth_store_rename_label(FthStore *store, gint64 id, const char *name, GError **error)
{
  g_return_val_if_fail(FTH_IS_STORE(store), FALSE);
  if (!validate_name(store, name, error))
    return FALSE;
  return update_label(store, "UPDATE labels SET name = ? WHERE id = ?", TRUE, name, 0, id, name,
                      NULL, error);
}

gboolean
fth_store_recolor_label(FthStore *store, gint64 id, const char *color, GError **error)
{
  g_return_val_if_fail(FTH_IS_STORE(store), FALSE);
  if (!validate_color(store, color, error))
    return FALSE;
  return update_label(store, "UPDATE labels SET color = ? WHERE id = ?", TRUE, color, 0, id,
                      NULL, NULL, error);
}

gboolean
fth_store_set_label_hotkey(FthStore *store, gint64 id, const char *hotkey, GError **error)
{
  g_return_val_if_fail(FTH_IS_STORE(store), FALSE);
  if (!validate_hotkey(store, hotkey, error))
    return FALSE;
  return update_label(store, "UPDATE labels SET hotkey = ? WHERE id = ?", TRUE, hotkey, 0, id,
                      NULL, hotkey, error);
}

gboolean
fth_store_set_label_position(FthStore *store, gint64 id, int position, GError **error)
{
  g_return_val_if_fail(FTH_IS_STORE(store), FALSE);
  return update_label(store, "UPDATE labels SET position = ? WHERE id = ?", FALSE, NULL,
                      position, id, NULL, NULL, error);
}

static gboolean
remove_label_locked(FthStore *store, FthConn *conn, gint64 id, gboolean force, GError **error)
{
  g_autoptr(FthCachedStmt) count_stmt = fth_store_prepare(store, conn,
      "SELECT count(*) FROM annotations WHERE label_id = ?", error);
  if (count_stmt == NULL)
    return FALSE;
  sqlite3_bind_int64(count_stmt, 1, id);
  int rc = sqlite3_step(count_stmt);
  if (rc != SQLITE_ROW) {
    fth_store_set_sqlite_error(store, conn, rc, "counting a label's annotations", error);
    return FALSE;
  }
  gint64 n = sqlite3_column_int64(count_stmt, 0);
  if (n > 0 && !force) {
    fth_store_set_error(store, error, FTH_STORE_ERROR_CONFLICT,
                        "label %" G_GINT64_FORMAT " is used by %" G_GINT64_FORMAT
                        " annotations; remove them first or force",
                        id, n);
    return FALSE;
  }
  if (n > 0) {
    g_autoptr(FthCachedStmt) del = fth_store_prepare(store, conn,
        "DELETE FROM annotations WHERE label_id = ?", error);
    if (del == NULL)
      return FALSE;
    sqlite3_bind_int64(del, 1, id);
    if (!fth_store_step_done(store, conn, del, error))
      return FALSE;
  }
  g_autoptr(FthCachedStmt) stmt =
      fth_store_prepare(store, conn, "DELETE FROM labels WHERE id = ?", error);
  if (stmt == NULL)
    return FALSE;
  sqlite3_bind_int64(stmt, 1, id);
  return fth_store_step_done(store, conn, stmt, error) &&
         fth_store_check_changed(store, conn, "label", id, error);
}

gboolean
fth_store_remove_label(FthStore *store, gint64 id, gboolean force, GError **error)
{
  g_return_val_if_fail(FTH_IS_STORE(store), FALSE);
  FthConn *conn = fth_store_write_begin(store, error);
  if (conn == NULL)
    return FALSE;
  gboolean ok = remove_label_locked(store, conn, id, force, error);
  return fth_store_write_end(store, conn, ok, error);
}

/* ---- annotations -------------------------------------------------------------------------- */

#define ANNOTATION_COLUMNS                                                                   \
  "id, item_id, label_id, geom, x, y, w, h, points, t0, t1, span_start, span_end, author, " \
  "run_id, score, created_us, updated_us"

FthAnnotation *
fth_annotation_new(void)
{
  FthAnnotation *ann = g_new0(FthAnnotation, 1);
  ann->score = 1.0;
  return ann;
}

void
fth_annotation_set_points(FthAnnotation *ann, const double *xy, guint n_points)
{
  g_free(ann->points);
  ann->points = g_memdup2(xy, sizeof(double) * 2 * n_points);
  ann->n_points = n_points;
  ann->geom = FTH_GEOM_POLYGON;
}

void
fth_annotation_free(FthAnnotation *ann)
{
  if (ann == NULL)
    return;
  g_free(ann->points);
  g_free(ann);
}

/* gpointer: also an FthRowFunc. */
static gpointer
annotation_from_row(sqlite3_stmt *stmt)
{
  FthAnnotation *ann = g_new0(FthAnnotation, 1);
  ann->id = sqlite3_column_int64(stmt, 0);
  ann->item_id = sqlite3_column_int64(stmt, 1);
  ann->label_id = sqlite3_column_int64(stmt, 2);
  ann->geom = sqlite3_column_int(stmt, 3);
  ann->x = sqlite3_column_double(stmt, 4);
  ann->y = sqlite3_column_double(stmt, 5);
  ann->w = sqlite3_column_double(stmt, 6);
  ann->h = sqlite3_column_double(stmt, 7);
  int bytes = sqlite3_column_bytes(stmt, 8);
  if (bytes > 0) {
    ann->n_points = (guint) bytes / (2 * sizeof(double));
    ann->points = g_memdup2(sqlite3_column_blob(stmt, 8), (gsize) ann->n_points * 2 * sizeof(double));
  }
  ann->t0 = sqlite3_column_double(stmt, 9);
  ann->t1 = sqlite3_column_double(stmt, 10);
  ann->start = sqlite3_column_int64(stmt, 11);
  ann->end = sqlite3_column_int64(stmt, 12);
  ann->author = sqlite3_column_int(stmt, 13);
  ann->run_id = sqlite3_column_int64(stmt, 14);
  ann->score = sqlite3_column_double(stmt, 15);
  ann->created_us = sqlite3_column_int64(stmt, 16);
  ann->updated_us = sqlite3_column_int64(stmt, 17);
  return ann;
}

static gboolean
validate_annotation(FthStore *store, const FthAnnotation *a, GError **error)
{
  const char *problem = NULL;
  switch (a->geom) {
  case FTH_GEOM_WHOLE:
    break;
  case FTH_GEOM_BOX:
    if (!isfinite(a->x) || !isfinite(a->y) || !isfinite(a->w) || !isfinite(a->h))
      problem = "box coordinates must be finite";
    else if (!(a->w > 0 && a->h > 0))
      problem = "box width and height must be positive";
    break;
  case FTH_GEOM_POLYGON:
    if (a->n_points < 3 || a->points == NULL)
      problem = "a polygon needs at least 3 points";
    for (guint i = 0; problem == NULL && i < 2 * a->n_points; i++)
      if (!isfinite(a->points[i]))
        problem = "polygon points must be finite";
    break;
  case FTH_GEOM_SEGMENT:
    if (!isfinite(a->t0) || !isfinite(a->t1) || !(a->t0 >= 0 && a->t1 > a->t0))
      problem = "a segment needs 0 <= t0 < t1";
    break;
  case FTH_GEOM_SPAN:
    if (!(a->start >= 0 && a->end > a->start))
      problem = "a span needs 0 <= start < end";
    break;
  default:
    problem = "unknown geometry kind";
    break;
  }
  if (problem == NULL && a->author != FTH_AUTHOR_HUMAN && a->author != FTH_AUTHOR_MODEL)
    problem = "author must be human or model";
  if (problem == NULL && !isfinite(a->score))
    problem = "score must be finite";
  if (problem != NULL) {
    fth_store_set_error(store, error, FTH_STORE_ERROR_INVALID,
                        "annotation on item %" G_GINT64_FORMAT ": %s", a->item_id, problem);
    return FALSE;
  }
  return TRUE;
}

/* Binds label_id .. score to parameters 1 .. 14 (geometry columns not used are NULL). */
static void
bind_annotation(sqlite3_stmt *stmt, const FthAnnotation *a)
{
  sqlite3_bind_int64(stmt, 1, a->label_id);
  sqlite3_bind_int(stmt, 2, a->geom);
  for (int i = 3; i <= 11; i++)
    sqlite3_bind_null(stmt, i);
  switch (a->geom) {
  case FTH_GEOM_BOX:
    sqlite3_bind_double(stmt, 3, a->x);
    sqlite3_bind_double(stmt, 4, a->y);
    sqlite3_bind_double(stmt, 5, a->w);
    sqlite3_bind_double(stmt, 6, a->h);
    break;
  case FTH_GEOM_POLYGON:
    sqlite3_bind_blob(stmt, 7, a->points, (int) (a->n_points * 2 * sizeof(double)),
                      SQLITE_TRANSIENT);
    break;
  case FTH_GEOM_SEGMENT:
    sqlite3_bind_double(stmt, 8, a->t0);
    sqlite3_bind_double(stmt, 9, a->t1);
    break;
  case FTH_GEOM_SPAN:
    sqlite3_bind_int64(stmt, 10, a->start);
    sqlite3_bind_int64(stmt, 11, a->end);
    break;
  default:
    break;
  }
  sqlite3_bind_int(stmt, 12, a->author);
  fth_store_bind_id_or_null(stmt, 13, a->run_id);
  sqlite3_bind_double(stmt, 14, a->score);
}

/* Turns a foreign key failure into a message that says which reference dangles. */
static void
set_reference_error(FthStore *store, FthConn *conn, int rc, const FthAnnotation *a,
                    GError **error)
{
  if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
    fth_store_set_error(store, error, FTH_STORE_ERROR_INVALID,
                        "annotation refers to a missing item (%" G_GINT64_FORMAT "), label (%"
                        G_GINT64_FORMAT ") or run (%" G_GINT64_FORMAT ")",
                        a->item_id, a->label_id, a->run_id);
  else
    fth_store_set_sqlite_error(store, conn, rc, "writing an annotation", error);
}

static gboolean
add_annotation_locked(FthStore *store, FthConn *conn, const FthAnnotation *a, gint64 *out_id,
                      GError **error)
{
  g_autoptr(FthCachedStmt) stmt = fth_store_prepare(store, conn,
      "INSERT INTO annotations (label_id, geom, x, y, w, h, points, t0, t1, span_start,"
      " span_end, author, run_id, score, item_id, created_us, updated_us)"
      " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", error);
  if (stmt == NULL)
    return FALSE;
  bind_annotation(stmt, a);
  gint64 now = g_get_real_time();
  sqlite3_bind_int64(stmt, 15, a->item_id);
  sqlite3_bind_int64(stmt, 16, now);
  sqlite3_bind_int64(stmt, 17, now);
  int rc = sqlite3_step(stmt);
  if (rc != SQLITE_DONE) {
    set_reference_error(store, conn, rc, a, error);
    return FALSE;
  }
  if (out_id != NULL)
    *out_id = sqlite3_last_insert_rowid(conn->db);
  return TRUE;
}

gboolean
fth_store_add_annotation(FthStore *store, const FthAnnotation *ann, gint64 *out_id,
                         GError **error)
{
  g_return_val_if_fail(FTH_IS_STORE(store) && ann != NULL, FALSE);
  if (!validate_annotation(store, ann, error))
    return FALSE;
  FthConn *conn = fth_store_write_begin(store, error);
  if (conn == NULL)
    return FALSE;
  gint64 id = 0;
  gboolean ok = add_annotation_locked(store, conn, ann, &id, error);
  if (!fth_store_write_end(store, conn, ok, error))
    return FALSE;
  if (out_id != NULL)
    *out_id = id;
  return TRUE;
}

static gboolean
update_annotation_locked(FthStore *store, FthConn *conn, const FthAnnotation *a, GError **error)
{
  g_autoptr(FthCachedStmt) stmt = fth_store_prepare(store, conn,
      "UPDATE annotations SET label_id = ?, geom = ?, x = ?, y = ?, w = ?, h = ?, points = ?,"
      " t0 = ?, t1 = ?, span_start = ?, span_end = ?, author = ?, run_id = ?, score = ?,"
      " updated_us = ? WHERE id = ?", error);
  if (stmt == NULL)
    return FALSE;
  bind_annotation(stmt, a);
  sqlite3_bind_int64(stmt, 15, g_get_real_time());
  sqlite3_bind_int64(stmt, 16, a->id);
  int rc = sqlite3_step(stmt);
  if (rc != SQLITE_DONE) {
    set_reference_error(store, conn, rc, a, error);
    return FALSE;
  }
  return fth_store_check_changed(store, conn, "annotation", a->id, error);
}

gboolean
fth_store_update_annotation(FthStore *store, const FthAnnotation *ann, GError **error)
{
  g_return_val_if_fail(FTH_IS_STORE(store) && ann != NULL, FALSE);
  if (!validate_annotation(store, ann, error))
    return FALSE;
  FthConn *conn = fth_store_write_begin(store, error);
  if (conn == NULL)
    return FALSE;
  gboolean ok = update_annotation_locked(store, conn, ann, error);
  return fth_store_write_end(store, conn, ok, error);
}

/* Runs SQL with ?1 = ID and ?2 = now; NOT_FOUND when no annotation has ID. */
static gboolean
exec_annotation_by_id(FthStore *store, const char *sql, gint64 id, GError **error)
{
  FthConn *conn = fth_store_write_begin(store, error);
  if (conn == NULL)
    return FALSE;
  gboolean ok = FALSE;
  g_autoptr(FthCachedStmt) stmt = fth_store_prepare(store, conn, sql, error);
  if (stmt != NULL) {
    sqlite3_bind_int64(stmt, 1, id);
    if (sqlite3_bind_parameter_count(stmt) > 1)
      sqlite3_bind_int64(stmt, 2, g_get_real_time());
    ok = fth_store_step_done(store, conn, stmt, error) &&
         fth_store_check_changed(store, conn, "annotation", id, error);
  }
  g_clear_pointer(&stmt, fth_cached_stmt_release);
  return fth_store_write_end(store, conn, ok, error);
}

gboolean
fth_store_remove_annotation(FthStore *store, gint64 id, GError **error)
{
  g_return_val_if_fail(FTH_IS_STORE(store), FALSE);
  return exec_annotation_by_id(store, "DELETE FROM annotations WHERE id = ?", id, error);
}

gboolean
fth_store_promote_annotation(FthStore *store, gint64 id, GError **error)
{
  g_return_val_if_fail(FTH_IS_STORE(store), FALSE);
  return exec_annotation_by_id(store,
      "UPDATE annotations SET author = 0, run_id = NULL, score = 1, updated_us = ?2"
      " WHERE id = ?1", id, error);
}

FthAnnotation *
fth_store_get_annotation(FthStore *store, gint64 id, GError **error)
{
  g_return_val_if_fail(FTH_IS_STORE(store), NULL);
  FthAnnotation *ann = NULL;
  FthConn *conn = fth_store_read_begin(store);
  g_autoptr(FthCachedStmt) stmt = fth_store_prepare(store, conn,
      "SELECT " ANNOTATION_COLUMNS " FROM annotations WHERE id = ?", error);
  if (stmt != NULL) {
    sqlite3_bind_int64(stmt, 1, id);
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW)
      ann = annotation_from_row(stmt);
    else if (rc == SQLITE_DONE)
      fth_store_set_error(store, error, FTH_STORE_ERROR_NOT_FOUND,
                          "no annotation with id %" G_GINT64_FORMAT, id);
    else
      fth_store_set_sqlite_error(store, conn, rc, "reading an annotation", error);
  }
  g_clear_pointer(&stmt, fth_cached_stmt_release);
  fth_store_read_end(store, conn);
  return ann;
}

GPtrArray *
fth_store_list_annotations(FthStore *store, gint64 item_id, GError **error)
{
  g_return_val_if_fail(FTH_IS_STORE(store), NULL);
  return fth_store_list_rows(store,
                             "SELECT " ANNOTATION_COLUMNS
                             " FROM annotations WHERE item_id = ? ORDER BY id",
                             NULL, item_id, 0, annotation_from_row,
                             (GDestroyNotify) fth_annotation_free, "listing annotations", error);
}

static gboolean
set_class_locked(FthStore *store, FthConn *conn, const FthAnnotation *a, gint64 *out_id,
                 GError **error)
{
  g_autoptr(FthCachedStmt) del = fth_store_prepare(store, conn,
      "DELETE FROM annotations WHERE item_id = ? AND author = ? AND geom = 0", error);
  if (del == NULL)
    return FALSE;
  sqlite3_bind_int64(del, 1, a->item_id);
  sqlite3_bind_int(del, 2, a->author);
  if (!fth_store_step_done(store, conn, del, error))
    return FALSE;
  if (a->label_id == 0) {
    *out_id = 0;
    return TRUE;
  }
  return add_annotation_locked(store, conn, a, out_id, error);
}

gboolean
fth_store_set_class(FthStore *store, gint64 item_id, gint64 label_id, FthAuthor author,
                    gint64 run_id, double score, gint64 *out_id, GError **error)
{
  g_return_val_if_fail(FTH_IS_STORE(store), FALSE);
  FthAnnotation a = { .item_id = item_id, .label_id = label_id, .geom = FTH_GEOM_WHOLE,
                      .author = author, .run_id = run_id, .score = score };
  if (!validate_annotation(store, &a, error))
    return FALSE;
  FthConn *conn = fth_store_write_begin(store, error);
  if (conn == NULL)
    return FALSE;
  gint64 id = 0;
  gboolean ok = set_class_locked(store, conn, &a, &id, error);
  if (!fth_store_write_end(store, conn, ok, error))
    return FALSE;
  if (out_id != NULL)
    *out_id = id;
  return TRUE;
}

GArray *
fth_store_count_per_label(FthStore *store, FthAuthor author, GError **error)
{
  g_return_val_if_fail(FTH_IS_STORE(store), NULL);
  GArray *counts = NULL;
  FthConn *conn = fth_store_read_begin(store);
  g_autoptr(FthCachedStmt) stmt = fth_store_prepare(store, conn,
      "SELECT l.id, (SELECT count(*) FROM annotations a WHERE a.label_id = l.id"
      " AND (?1 < 0 OR a.author = ?1)) FROM labels l ORDER BY l.position, l.id", error);
  if (stmt != NULL) {
    sqlite3_bind_int(stmt, 1, author);
    counts = g_array_new(FALSE, FALSE, sizeof(FthLabelCount));
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
      FthLabelCount c = { sqlite3_column_int64(stmt, 0), sqlite3_column_int64(stmt, 1) };
      g_array_append_val(counts, c);
    }
    if (rc != SQLITE_DONE) {
      fth_store_set_sqlite_error(store, conn, rc, "counting annotations", error);
      g_clear_pointer(&counts, g_array_unref);
    }
  }
  g_clear_pointer(&stmt, fth_cached_stmt_release);
  fth_store_read_end(store, conn);
  return counts;
}
