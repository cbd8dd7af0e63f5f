/* fathom/jobs.h: long operations as jobs on a shared worker pool.
 *
 * A job is a function run on a worker thread of one process-wide pool (GThreadPool, sized to
 * the number of cores). While it runs it reports progress events; subscribers receive them on
 * the GMainContext they subscribed from (the workbench on its main loop, the CLI on a context
 * it iterates), always in the order they were emitted, and always ending with exactly one
 * terminal event (succeeded, failed or cancelled). A job checks its GCancellable and stops
 * early when asked; it never blocks waiting for another job of the same pool.
 *
 * Events as JSON lines
 * --------------------
 * Every event serializes to one JSON object on one line (fth_job_event_to_json_line); the CLI
 * prints these with `--json` and a remote engine host streams the same lines. The members are:
 *
 *   "type"       string   "started" | "progress" | "succeeded" | "failed" | "cancelled"
 *   "job"        string   the job's name (e.g. "import")
 *   "id"         integer  the job's process-unique id (> 0)
 *   "step"       integer  work done so far (>= 0)
 *   "total"      integer  work in all; 0 when unknown
 *   "message"    string   a human-readable line; omitted when there is none
 *   "metrics"    object   name -> number, in the order they were reported; omitted when empty
 *   "elapsed_s"  number   seconds since the job started running
 *   "eta_s"      number   estimated seconds to completion; null when it cannot be estimated
 *   "error"      object   only on "failed": {"domain": GQuark string, "code": int, "message": string}
 *
 * Example:
 *   {"type":"progress","job":"import","id":1,"step":500,"total":2000,"message":"a.jpg",
 *    "metrics":{"bad":1},"elapsed_s":0.52,"eta_s":1.56}
 *
 * Readers must ignore members they do not know (later versions may add some).
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define FTH_JOB_ERROR (fth_job_error_quark())
GQuark fth_job_error_quark(void);

typedef enum {
  FTH_JOB_ERROR_PARSE,     /* a JSON line is not a valid job event */
  FTH_JOB_ERROR_FAILED,    /* a job failed without saying why (a bug in the job function) */
} FthJobError;

typedef enum {
  FTH_JOB_STATE_PENDING,   /* created, not started */
  FTH_JOB_STATE_QUEUED,    /* started, waiting for a free worker */
  FTH_JOB_STATE_RUNNING,
  FTH_JOB_STATE_SUCCEEDED,
  FTH_JOB_STATE_FAILED,
  FTH_JOB_STATE_CANCELLED,
} FthJobState;

typedef enum {
  FTH_JOB_EVENT_STARTED,
  FTH_JOB_EVENT_PROGRESS,
  FTH_JOB_EVENT_SUCCEEDED,
  FTH_JOB_EVENT_FAILED,
  FTH_JOB_EVENT_CANCELLED,
} FthJobEventType;

typedef struct {
  char *name;
  double value;
} FthJobMetric;

/* One event. Owned by whoever holds it; subscribers get a borrowed pointer valid for the
 * duration of the callback (copy it with fth_job_event_copy to keep it). */
typedef struct {
  FthJobEventType type;
  char *job;               /* job name */
  guint64 job_id;
  gint64 step;
  gint64 total;            /* 0 = unknown */
  char *message;           /* NULL = none */
  FthJobMetric *metrics;   /* n_metrics entries */
  guint n_metrics;
  double elapsed_s;
  double eta_s;            /* < 0 = unknown */
  GError *error;           /* only for FTH_JOB_EVENT_FAILED */
} FthJobEvent;

#define FTH_TYPE_JOB_EVENT (fth_job_event_get_type())
GType fth_job_event_get_type(void) G_GNUC_CONST;
FthJobEvent *fth_job_event_copy(const FthJobEvent *event);
void fth_job_event_free(FthJobEvent *event);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(FthJobEvent, fth_job_event_free)

const char *fth_job_event_type_to_string(FthJobEventType type);
gboolean fth_job_event_is_terminal(const FthJobEvent *event);
/* Looks a metric up by name; FALSE when the event has none of that name. */
gboolean fth_job_event_get_metric(const FthJobEvent *event, const char *name, double *value);

/* One JSON object, no trailing newline (see the format above). */
char *fth_job_event_to_json_line(const FthJobEvent *event);
/* Parses one line produced by fth_job_event_to_json_line (or a remote host); NULL and
 * FTH_JOB_ERROR_PARSE with the reason on anything else. */
FthJobEvent *fth_job_event_from_json_line(const char *line, GError **error);

#define FTH_TYPE_JOB (fth_job_get_type())
G_DECLARE_FINAL_TYPE(FthJob, fth_job, FTH, JOB, GObject)

/* The work. Runs on a worker thread; reports with fth_job_progress*(), checks `cancellable`
 * (g_cancellable_is_cancelled or g_cancellable_set_error_if_cancelled) at convenient points.
 * Returns TRUE on success; FALSE with `error` set on failure. A job that returns FALSE with
 * G_IO_ERROR_CANCELLED (or returns at all after cancellation was requested and failed) ends as
 * FTH_JOB_STATE_CANCELLED. */
typedef gboolean (*FthJobFunc)(FthJob *job, GCancellable *cancellable, gpointer user_data,
                               GError **error);

typedef void (*FthJobEventFunc)(FthJob *job, const FthJobEvent *event, gpointer user_data);

/* `name` names the kind of work ("import", "train"); `destroy` frees user_data once the job
 * is finalized. */
FthJob *fth_job_new(const char *name, FthJobFunc func, gpointer user_data, GDestroyNotify destroy);

const char *fth_job_get_name(FthJob *job);
guint64 fth_job_get_id(FthJob *job);
FthJobState fth_job_get_state(FthJob *job);
GCancellable *fth_job_get_cancellable(FthJob *job);
/* The failure, when the state is FAILED (borrowed); NULL otherwise. */
const GError *fth_job_get_error(FthJob *job);

/* Delivers every event emitted after this call to `func` on `context` (NULL: the calling
 * thread's default context, g_main_context_ref_thread_default). Subscribe before
 * fth_job_start to see the "started" event. Returns an id for fth_job_unsubscribe. */
guint fth_job_subscribe(FthJob *job, GMainContext *context, FthJobEventFunc func,
                        gpointer user_data, GDestroyNotify destroy);
void fth_job_unsubscribe(FthJob *job, guint subscription_id);

/* Queues the job on the shared pool. Starting a job twice is a programming error. */
void fth_job_start(FthJob *job);
/* Requests cancellation; the job stops at its next check. */
void fth_job_cancel(FthJob *job);
/* Blocks until the job has finished (any terminal state). Events still queued for
 * subscribers stay queued until their context runs. */
void fth_job_wait(FthJob *job);
/* Iterates `context` (NULL: thread default) until the job has finished and its terminal
 * event has been delivered to every subscriber on that context. */
void fth_job_wait_iterate(FthJob *job, GMainContext *context);
/* Convenience: subscribe nothing, start, wait; returns TRUE when the job succeeded, else
 * FALSE with the job's error (G_IO_ERROR_CANCELLED when cancelled). */
gboolean fth_job_run_sync(FthJob *job, GError **error);

/* --- Called from inside the job function (any thread) --- */

/* Reports that `step` of `total` (0 = unknown) units are done. Plain progress events (no
 * message, no metrics) are coalesced to at most one per 50 ms, except the first and the one
 * where step == total; events with a message or metrics are never dropped. */
void fth_job_progress(FthJob *job, gint64 step, gint64 total, const char *message);
void fth_job_progress_metrics(FthJob *job, gint64 step, gint64 total, const char *message,
                              const FthJobMetric *metrics, guint n_metrics);

/* The shared pool's worker count (the number of cores). */
guint fth_job_pool_size(void);

G_END_DECLS
