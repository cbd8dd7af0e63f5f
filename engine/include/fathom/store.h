/* fathom/store.h: the SQLite project store.
 *
 * A project is a directory holding `fathom.db`. FthStore owns two SQLite connections to it:
 * a write connection and a read connection. The database runs in WAL mode, so reads on the
 * read connection never wait for a writer, even during a long import transaction.
 *
 * Durability: synchronous=NORMAL in WAL mode. A committed transaction survives a crash or
 * SIGKILL of the process; only an OS crash or power loss can lose the last few commits (never
 * corrupt the database). That trade keeps imports and label clicks fast.
 *
 * Thread safety: every function may be called from any thread. Writes are serialised by a
 * recursive lock on the write connection; reads take a separate lock on the read connection.
 * fth_store_begin() takes the write lock and keeps it until the same thread calls
 * fth_store_commit() or fth_store_rollback(): writes from other threads wait meanwhile, so
 * batch writers (import, predict) should commit every few thousand rows. Reads made by the
 * thread that holds an explicit transaction run on the write connection and see its
 * uncommitted writes; reads from other threads see the last committed state.
 *
 * Every write is a transaction. Outside fth_store_begin() each call runs in its own
 * transaction; inside, each call runs in a savepoint, so a call that fails (a duplicate, a
 * constraint error) leaves the outer transaction and its earlier writes intact.
 *
 * Errors: GError in FTH_STORE_ERROR; messages name the database file and what is wrong.
 * "get" functions fail with FTH_STORE_ERROR_NOT_FOUND for a missing id; "find" functions
 * return NULL without an error when nothing matches.
 *
 * Records returned by the store are plain structs owned by the caller, freed with their
 * fth_*_free() function (g_autoptr works). Lists are GPtrArray with the free function set.
 * Times are microseconds since the Unix epoch (g_get_real_time()).
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define FTH_STORE_ERROR (fth_store_error_quark())
GQuark fth_store_error_quark(void);

typedef enum {
  FTH_STORE_ERROR_FAILED,      /* anything not listed below */
  FTH_STORE_ERROR_CORRUPT,     /* the file is not a database or fails its integrity check */
  FTH_STORE_ERROR_VERSION,     /* the schema is newer than this program */
  FTH_STORE_ERROR_NOT_FOUND,   /* no row with that id */
  FTH_STORE_ERROR_CONFLICT,    /* a unique value (name, hotkey) is taken */
  FTH_STORE_ERROR_INVALID,     /* a bad argument: geometry, color, JSON, dangling reference */
  FTH_STORE_ERROR_IO,          /* the OS failed to read or write */
  FTH_STORE_ERROR_FULL,        /* the disk is full */
  FTH_STORE_ERROR_BUSY,        /* another process held the lock past the busy timeout */
  FTH_STORE_ERROR_NO_MEMORY,   /* an allocation failed inside SQLite */
  FTH_STORE_ERROR_EXISTS,      /* fth_store_create() on a directory that holds a project */
  FTH_STORE_ERROR_NOT_PROJECT, /* fth_store_open() on a directory without fathom.db */
} FthStoreError;

/* The schema version this code writes (PRAGMA user_version). */
#define FTH_STORE_SCHEMA_VERSION 2
#define FTH_STORE_DB_NAME "fathom.db"

typedef enum {
  FTH_ITEM_ANY = 0, /* only in filters */
  FTH_ITEM_IMAGE = 1,
  FTH_ITEM_AUDIO = 2,
  FTH_ITEM_TEXT = 3,
} FthItemKind;

typedef enum {
  FTH_SPLIT_ANY = -1, /* only in filters */
  FTH_SPLIT_NONE = 0,
  FTH_SPLIT_TRAIN = 1,
  FTH_SPLIT_VAL = 2,
  FTH_SPLIT_TEST = 3,
} FthSplit;

typedef enum {
  FTH_LABEL_ANY = 0, /* usable for any geometry */
  FTH_LABEL_CLASS = 1,
  FTH_LABEL_REGION = 2,
  FTH_LABEL_SEGMENT = 3,
  FTH_LABEL_SPAN = 4,
} FthLabelKind;

typedef enum {
  FTH_GEOM_WHOLE = 0,   /* a class for the whole item */
  FTH_GEOM_BOX = 1,     /* x, y, w, h in image pixels */
  FTH_GEOM_POLYGON = 2, /* points: n_points (x, y) pairs in image pixels */
  FTH_GEOM_SEGMENT = 3, /* t0, t1 in seconds */
  FTH_GEOM_SPAN = 4,    /* [start, end) in Unicode characters */
} FthGeomKind;

typedef enum {
  FTH_AUTHOR_ANY = -1, /* only in filters and counts */
  FTH_AUTHOR_HUMAN = 0,
  FTH_AUTHOR_MODEL = 1,
} FthAuthor;

typedef enum {
  FTH_RUN_QUEUED = 0,
  FTH_RUN_RUNNING = 1,
  FTH_RUN_DONE = 2,
  FTH_RUN_FAILED = 3,
  FTH_RUN_CANCELLED = 4,
} FthRunState;

typedef enum {
  FTH_TRIAL_RUNNING = 0,
  FTH_TRIAL_COMPLETE = 1,
  FTH_TRIAL_PRUNED = 2,
  FTH_TRIAL_FAILED = 3,
} FthTrialState;

typedef enum {
  FTH_STORE_OPEN_DEFAULT = 0,
  FTH_STORE_OPEN_SKIP_CHECK = 1 << 0, /* no integrity check on open (benchmarks, tools) */
  FTH_STORE_OPEN_FULL_CHECK = 1 << 1, /* integrity_check instead of the faster quick_check */
} FthStoreOpenFlags;

/* ---- the store ---------------------------------------------------------------------------- */

#define FTH_TYPE_STORE (fth_store_get_type())
G_DECLARE_FINAL_TYPE(FthStore, fth_store, FTH, STORE, GObject)

/* Creates DIR (and its parents) when missing and a new project in it. Refuses a directory
 * that already holds fathom.db (FTH_STORE_ERROR_EXISTS). The project name defaults to the
 * directory's base name. */
FthStore *fth_store_create(const char *dir, GError **error);
/* Opens the project in DIR: refuses a directory without fathom.db (NOT_PROJECT), a file that
 * is not a database or fails quick_check (CORRUPT), a schema newer than this code (VERSION).
 * An older schema is migrated forward, one transaction per step. */
FthStore *fth_store_open(const char *dir, GError **error);
FthStore *fth_store_open_full(const char *dir, FthStoreOpenFlags flags, GError **error);

const char *fth_store_get_dir(FthStore *store);
const char *fth_store_get_db_path(FthStore *store);
int fth_store_get_schema_version(FthStore *store);

/* Item paths: inside the project directory they are stored relative to it, else absolute.
 * fth_store_relative_path() gives the stored form of PATH, fth_store_resolve_path() the
 * absolute form of a stored path. */
char *fth_store_relative_path(FthStore *store, const char *path);
char *fth_store_resolve_path(FthStore *store, const char *stored_path);

/* Project metadata, a key/value table. get returns NULL (no error) for a missing key;
 * set with value NULL deletes the key. */
char *fth_store_get_meta(FthStore *store, const char *key, GError **error);
gboolean fth_store_set_meta(FthStore *store, const char *key, const char *value, GError **error);
char *fth_store_get_name(FthStore *store, GError **error);
gboolean fth_store_set_name(FthStore *store, const char *name, GError **error);

/* Explicit transactions (see the top of this file). Not nested: a second begin on the same
 * thread fails with INVALID. */
gboolean fth_store_begin(FthStore *store, GError **error);
gboolean fth_store_commit(FthStore *store, GError **error);
gboolean fth_store_rollback(FthStore *store, GError **error);
gboolean fth_store_in_transaction(FthStore *store);

/* Runs PRAGMA integrity_check; FALSE with CORRUPT and the first problem when it fails. */
gboolean fth_store_check_integrity(FthStore *store, GError **error);

/* ---- items -------------------------------------------------------------------------------- */

typedef struct {
  gint64 id;
  FthItemKind kind;
  char *path;         /* as stored: relative to the project dir when inside it */
  gint64 member;      /* -1: the whole file; else the record index inside a container file */
  char *sha256;       /* 64 lowercase hex digits, unique per project */
  gint64 size_bytes;
  int width, height;  /* images, 0 otherwise */
  double duration_s;  /* audio */
  int sample_rate;    /* audio */
  gint64 length_chars; /* text */
  char *text;         /* inline text of a CSV/JSONL row, NULL otherwise */
  FthSplit split;
  gint64 mtime;       /* of the source file, seconds, for resumable import */
  gint64 created_us;
} FthItemRecord;

FthItemRecord *fth_item_record_new(void); /* zeroed, member = -1 */
void fth_item_record_free(FthItemRecord *item);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(FthItemRecord, fth_item_record_free)

/* Adds ITEM (its id and created_us are ignored; an absolute path inside the project is stored
 * relative). On success *OUT_ID is the new id. When an item with the same sha256 exists, returns
 * FALSE with *DUPLICATE = TRUE, *OUT_ID = the existing id and no error. DUPLICATE may be NULL
 * only if the caller treats a duplicate as an error (then CONFLICT is set). */
gboolean fth_store_add_item(FthStore *store, const FthItemRecord *item, gint64 *out_id,
                            gboolean *duplicate, GError **error);
/* Rewrites every column of the item ITEM->id but id and created_us. */
gboolean fth_store_update_item(FthStore *store, const FthItemRecord *item, GError **error);
FthItemRecord *fth_store_get_item(FthStore *store, gint64 id, GError **error);
FthItemRecord *fth_store_find_item(FthStore *store, const char *path, gint64 member,
                                   GError **error);
FthItemRecord *fth_store_find_item_by_sha256(FthStore *store, const char *sha256,
                                             GError **error);
gboolean fth_store_delete_item(FthStore *store, gint64 id, GError **error);
gboolean fth_store_set_split(FthStore *store, const gint64 *ids, gsize n_ids, FthSplit split,
                             GError **error);

/* Which items a query returns. Fields at their "any" value do not filter; criteria combine
 * with AND. Initialise with fth_item_filter_init() or FTH_ITEM_FILTER_INIT. */
typedef struct {
  FthItemKind kind;          /* FTH_ITEM_ANY */
  FthSplit split;            /* FTH_SPLIT_ANY */
  gint64 label_id;           /* 0: any; else items with an annotation of this label */
  FthAuthor author;          /* FTH_AUTHOR_ANY; else only annotations by this author count for
                                label_id, and without label_id: items with any annotation by it */
  gboolean unlabeled;        /* only items without a human annotation */
  gint64 prediction_run_id;  /* 0: the latest run that has predictions */
  gint64 predicted_label_id; /* 0: any; else items whose top predicted label is this */
  gboolean by_score;         /* when TRUE: top_score in [min_score, max_score] */
  double min_score, max_score;
  const char *search;        /* NULL: any; else a substring of path or text (case-insensitive
                                for ASCII) */
} FthItemFilter;

#define FTH_ITEM_FILTER_INIT \
  { FTH_ITEM_ANY, FTH_SPLIT_ANY, 0, FTH_AUTHOR_ANY, FALSE, 0, 0, FALSE, 0.0, 1.0, NULL }

void fth_item_filter_init(FthItemFilter *filter);
/* A heap copy that owns its search string; free with fth_item_filter_free(). */
FthItemFilter *fth_item_filter_copy(const FthItemFilter *filter);
void fth_item_filter_free(FthItemFilter *filter);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(FthItemFilter, fth_item_filter_free)

/* FILTER may be NULL (all items). Items come in id order. */
gboolean fth_store_count_items(FthStore *store, const FthItemFilter *filter, gint64 *out_count,
                               GError **error);
/* Keyset paging: up to LIMIT items with id > AFTER_ID. Cheap at any depth. */
GPtrArray *fth_store_list_items_after(FthStore *store, const FthItemFilter *filter,
                                      gint64 after_id, guint limit, GError **error);
/* Offset paging: up to LIMIT items starting at position OFFSET. */
GPtrArray *fth_store_list_items_page(FthStore *store, const FthItemFilter *filter,
                                     gint64 offset, guint limit, GError **error);

/* ---- labels ------------------------------------------------------------------------------- */

typedef struct {
  gint64 id;
  char *name;
  char *color;  /* "#rrggbb" */
  char *hotkey; /* NULL or one character */
  FthLabelKind kind;
  int position;
} FthLabel;

void fth_label_free(FthLabel *label);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(FthLabel, fth_label_free)

/* COLOR NULL picks the next palette color; HOTKEY NULL for none. A taken name or hotkey is
 * refused with CONFLICT naming the other label. The label goes last in position order. */
gboolean fth_store_add_label(FthStore *store, const char *name, const char *color,
                             const char *hotkey, FthLabelKind kind, gint64 *out_id,
                             GError **error);
GPtrArray *fth_store_list_labels(FthStore *store, GError **error); /* by position, then id */
FthLabel *fth_store_get_label(FthStore *store, gint64 id, GError **error);
FthLabel *fth_store_find_label(FthStore *store, const char *name, GError **error);
gboolean fth_store_rename_label(FthStore *store, gint64 id, const char *name, GError **error);
gboolean fth_store_recolor_label(FthStore *store, gint64 id, const char *color, GError **error);
gboolean fth_store_set_label_hotkey(FthStore *store, gint64 id, const char *hotkey,
                                    GError **error);
gboolean fth_store_set_label_position(FthStore *store, gint64 id, int position, GError **error);
/* Refuses (CONFLICT) while annotations use the label unless FORCE, which deletes them too. */
gboolean fth_store_remove_label(FthStore *store, gint64 id, gboolean force, GError **error);

/* ---- annotations -------------------------------------------------------------------------- */

typedef struct {
  gint64 id;
  gint64 item_id;
  gint64 label_id;
  FthGeomKind geom;
  double x, y, w, h;  /* BOX */
  double *points;     /* POLYGON: 2 * n_points doubles, x0 y0 x1 y1 ... */
  guint n_points;
  double t0, t1;      /* SEGMENT */
  gint64 start, end;  /* SPAN */
  FthAuthor author;
  gint64 run_id;      /* 0 for none (human annotations) */
  double score;       /* model confidence; 1.0 for human annotations */
  gint64 created_us, updated_us;
} FthAnnotation;

FthAnnotation *fth_annotation_new(void); /* zeroed, score = 1.0 */
/* Copies N_POINTS (x, y) pairs into ANN and sets geom to POLYGON. */
void fth_annotation_set_points(FthAnnotation *ann, const double *xy, guint n_points);
void fth_annotation_free(FthAnnotation *ann);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(FthAnnotation, fth_annotation_free)

/* Validates the geometry (box w, h > 0; polygon >= 3 points; 0 <= t0 < t1; 0 <= start < end;
 * finite numbers) and references (item, label, run exist): INVALID otherwise. */
gboolean fth_store_add_annotation(FthStore *store, const FthAnnotation *ann, gint64 *out_id,
                                  GError **error);
/* Rewrites label, geometry, author, run and score of ANN->id; bumps updated_us. */
gboolean fth_store_update_annotation(FthStore *store, const FthAnnotation *ann, GError **error);
gboolean fth_store_remove_annotation(FthStore *store, gint64 id, GError **error);
FthAnnotation *fth_store_get_annotation(FthStore *store, gint64 id, GError **error);
GPtrArray *fth_store_list_annotations(FthStore *store, gint64 item_id, GError **error);
/* Replaces the item's whole-item annotations by AUTHOR with one of LABEL_ID, in one
 * transaction. LABEL_ID 0 only removes them (*OUT_ID is then 0). RUN_ID and SCORE are stored
 * as given (use 0 and 1.0 for a human). */
gboolean fth_store_set_class(FthStore *store, gint64 item_id, gint64 label_id, FthAuthor author,
                             gint64 run_id, double score, gint64 *out_id, GError **error);
/* Makes a model annotation a human one (author HUMAN, no run, score 1). */
gboolean fth_store_promote_annotation(FthStore *store, gint64 id, GError **error);

typedef struct {
  gint64 label_id;
  gint64 count;
} FthLabelCount;

/* Number of annotations per label (labels without any included, count 0), in label position
 * order; AUTHOR may be FTH_AUTHOR_ANY. A GArray of FthLabelCount. */
GArray *fth_store_count_per_label(FthStore *store, FthAuthor author, GError **error);

/* ---- runs and metrics --------------------------------------------------------------------- */

typedef struct {
  gint64 id;
  char *kind;         /* "train", "predict", "tune", "import", ... */
  char *name;
  FthRunState state;
  char *config_json;  /* NULL or a JSON document */
  char *summary_json; /* NULL or a JSON document */
  gint64 created_us;
  gint64 finished_us; /* 0 until the run reaches done, failed or cancelled */
} FthRun;

void fth_run_free(FthRun *run);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(FthRun, fth_run_free)

/* CONFIG_JSON may be NULL; otherwise it must parse as JSON (INVALID). The run starts QUEUED. */
gboolean fth_store_create_run(FthStore *store, const char *kind, const char *name,
                              const char *config_json, gint64 *out_id, GError **error);
gboolean fth_store_set_run_state(FthStore *store, gint64 id, FthRunState state, GError **error);
gboolean fth_store_set_run_summary(FthStore *store, gint64 id, const char *summary_json,
                                   GError **error);
FthRun *fth_store_get_run(FthStore *store, gint64 id, GError **error);
/* KIND NULL: all runs. Newest first. */
GPtrArray *fth_store_list_runs(FthStore *store, const char *kind, GError **error);
const char *fth_run_state_to_string(FthRunState state);

typedef struct {
  gint64 run_id;
  gint64 step;
  double epoch;
  char *name;
  double value;
} FthMetric;

void fth_metric_free(FthMetric *metric);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(FthMetric, fth_metric_free)

gboolean fth_store_add_metric(FthStore *store, gint64 run_id, gint64 step, double epoch,
                              const char *name, double value, GError **error);
/* All N metrics in one transaction (their run_id fields are ignored: RUN_ID is used). */
gboolean fth_store_add_metrics(FthStore *store, gint64 run_id, const FthMetric *metrics,
                               gsize n, GError **error);
/* NAME NULL: every metric. Ordered by step, then name. */
GPtrArray *fth_store_list_metrics(FthStore *store, gint64 run_id, const char *name,
                                  GError **error);

/* ---- predictions and embeddings ----------------------------------------------------------- */

typedef struct {
  gint64 run_id;
  gint64 item_id;
  guint n_classes;
  float *probs;       /* n_classes probabilities */
  gint64 top_label_id; /* 0 when the top class has no label */
  double top_score;
} FthPrediction;

void fth_prediction_free(FthPrediction *pred);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(FthPrediction, fth_prediction_free)

/* Stores N predictions in one transaction; a (run, item) already present is replaced. */
gboolean fth_store_put_predictions(FthStore *store, const FthPrediction *preds, gsize n,
                                   GError **error);
FthPrediction *fth_store_get_prediction(FthStore *store, gint64 run_id, gint64 item_id,
                                        GError **error);
/* The prediction for ITEM_ID from the newest run that has one; NULL (no error) when none. */
FthPrediction *fth_store_latest_prediction(FthStore *store, gint64 item_id, GError **error);
/* The newest run id with predictions, 0 when none, -1 (with ERROR set) on failure. */
gint64 fth_store_latest_prediction_run(FthStore *store, GError **error);

typedef struct {
  gint64 run_id;
  gint64 item_id;
  guint dim;
  float *data;
} FthEmbedding;

void fth_embedding_free(FthEmbedding *emb);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(FthEmbedding, fth_embedding_free)

gboolean fth_store_put_embeddings(FthStore *store, const FthEmbedding *embs, gsize n,
                                  GError **error);
FthEmbedding *fth_store_get_embedding(FthStore *store, gint64 run_id, gint64 item_id,
                                      GError **error);

/* ---- studies and trials ------------------------------------------------------------------- */

typedef struct {
  gint64 id;
  char *name;
  char *direction;  /* "minimize" or "maximize" */
  char *space_json; /* the search space */
  gint64 run_id;    /* 0 for none */
  gint64 created_us;
} FthStudy;

void fth_study_free(FthStudy *study);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(FthStudy, fth_study_free)

gboolean fth_store_create_study(FthStore *store, const char *name, const char *direction,
                                const char *space_json, gint64 run_id, gint64 *out_id,
                                GError **error);
FthStudy *fth_store_get_study(FthStore *store, gint64 id, GError **error);
GPtrArray *fth_store_list_studies(FthStore *store, GError **error);

typedef struct {
  gint64 id;
  gint64 study_id;
  int number;         /* 0, 1, 2, ... within the study */
  char *params_json;
  FthTrialState state;
  gboolean has_value;
  double value;
  double duration_s;
  char *host;
  char *error;        /* NULL unless failed */
  gint64 created_us;
} FthTrial;

void fth_trial_free(FthTrial *trial);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(FthTrial, fth_trial_free)

/* Starts a RUNNING trial numbered after the study's last one. */
gboolean fth_store_create_trial(FthStore *store, gint64 study_id, const char *params_json,
                                const char *host, gint64 *out_id, int *out_number,
                                GError **error);
/* Ends a trial: STATE, its value (HAS_VALUE FALSE for none), duration, error text or NULL. */
gboolean fth_store_finish_trial(FthStore *store, gint64 trial_id, FthTrialState state,
                                gboolean has_value, double value, double duration_s,
                                const char *error_text, GError **error);
gboolean fth_store_add_trial_value(FthStore *store, gint64 trial_id, gint64 step, double value,
                                   GError **error);
FthTrial *fth_store_get_trial(FthStore *store, gint64 id, GError **error);
GPtrArray *fth_store_list_trials(FthStore *store, gint64 study_id, GError **error);

typedef struct {
  gint64 step;
  double value;
} FthTrialValue;

/* Intermediate values of a trial in step order: a GArray of FthTrialValue. */
GArray *fth_store_list_trial_values(FthStore *store, gint64 trial_id, GError **error);

/* ---- artifacts ---------------------------------------------------------------------------- */

typedef struct {
  gint64 id;
  gint64 run_id;
  char *kind;      /* "checkpoint", "onnx", "report", ... */
  char *path;
  char *sha256;    /* NULL or hex */
  gint64 size_bytes;
  char *meta_json; /* NULL or JSON */
  gint64 created_us;
} FthArtifact;

void fth_artifact_free(FthArtifact *artifact);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(FthArtifact, fth_artifact_free)

gboolean fth_store_add_artifact(FthStore *store, const FthArtifact *artifact, gint64 *out_id,
                                GError **error);
FthArtifact *fth_store_get_artifact(FthStore *store, gint64 id, GError **error);
/* RUN_ID 0: every artifact. In id order. */
GPtrArray *fth_store_list_artifacts(FthStore *store, gint64 run_id, GError **error);
gboolean fth_store_remove_artifact(FthStore *store, gint64 id, GError **error);

/* ---- the labeling queue ------------------------------------------------------------------- */

typedef struct {
  gint64 item_id;
  char *strategy; /* "uncertainty", "margin", "random", ... */
  double score;
  gint64 rank;    /* 0 is asked first */
  gint64 run_id;  /* 0 for none */
  gint64 created_us;
} FthQueueEntry;

void fth_queue_entry_free(FthQueueEntry *entry);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(FthQueueEntry, fth_queue_entry_free)

/* Replaces the whole queue of STRATEGY with N entries (their strategy and run_id fields are
 * ignored) in one transaction. */
gboolean fth_store_replace_queue(FthStore *store, const char *strategy, gint64 run_id,
                                 const FthQueueEntry *entries, gsize n, GError **error);
/* Up to LIMIT (0: all) entries of STRATEGY in rank order. */
GPtrArray *fth_store_list_queue(FthStore *store, const char *strategy, guint limit,
                                GError **error);
/* Takes an item off the queue of STRATEGY (after it was labeled). Missing is not an error. */
gboolean fth_store_dequeue_item(FthStore *store, const char *strategy, gint64 item_id,
                                GError **error);

G_END_DECLS
