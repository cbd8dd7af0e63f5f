/* FthJob: a function run on the shared worker pool, with ordered progress events delivered
 * on each subscriber's GMainContext (see fathom/jobs.h for the contract). */
#include <fathom/jobs.h>

#include <math.h>

/* Plain progress events closer together than this are coalesced. */
#define PROGRESS_INTERVAL_US (50 * G_TIME_SPAN_MILLISECOND)

typedef struct {
  gatomicrefcount refs;
  guint id;
  GMainContext *context;
  FthJobEventFunc func;      /* NULL for the internal waiter of fth_job_wait_iterate */
  gpointer user_data;
  GDestroyNotify destroy;
  /* Protected by the job's lock: */
  gboolean active;
  gboolean scheduled;        /* an idle source is attached and will drain `pending` */
  gboolean done;             /* the terminal event was delivered (or could never come) */
  GQueue pending;            /* FthJobEvent* */
} Subscriber;

struct _FthJob {
  GObject parent_instance;
  char *name;
  guint64 id;
  FthJobFunc func;
  gpointer user_data;
  GDestroyNotify destroy;
  GCancellable *cancellable;

  GMutex lock;
  GCond cond;
  FthJobState state;
  GError *error;
  GPtrArray *subscribers;    /* Subscriber* */
  guint next_subscription;
  gint64 start_us;
  gint64 anchor_us;          /* time and step of the first progress report, for the ETA */
  gint64 anchor_step;
  gboolean have_anchor;
  gint64 last_emit_us;
};

G_DEFINE_FINAL_TYPE(FthJob, fth_job, G_TYPE_OBJECT)

static gint job_ids;

static Subscriber *
subscriber_ref(Subscriber *s)
{
  g_atomic_ref_count_inc(&s->refs);
  return s;
}

static void
subscriber_unref(gpointer data)
{
  Subscriber *s = data;
  if (!g_atomic_ref_count_dec(&s->refs))
    return;
  g_queue_clear_full(&s->pending, (GDestroyNotify)fth_job_event_free);
  if (s->destroy)
    s->destroy(s->user_data);
  g_main_context_unref(s->context);
  g_free(s);
}

static void
fth_job_finalize(GObject *object)
{
  FthJob *job = FTH_JOB(object);
  g_ptr_array_unref(job->subscribers);
  if (job->destroy)
    job->destroy(job->user_data);
  g_clear_error(&job->error);
  g_object_unref(job->cancellable);
  g_free(job->name);
  g_mutex_clear(&job->lock);
  g_cond_clear(&job->cond);
  G_OBJECT_CLASS(fth_job_parent_class)->finalize(object);
}

static void
fth_job_class_init(FthJobClass *klass)
{
  G_OBJECT_CLASS(klass)->finalize = fth_job_finalize;
}

static void
fth_job_init(FthJob *job)
{
  g_mutex_init(&job->lock);
  g_cond_init(&job->cond);
  job->subscribers = g_ptr_array_new_with_free_func(subscriber_unref);
  job->cancellable = g_cancellable_new();
  job->state = FTH_JOB_STATE_PENDING;
}

FthJob *
fth_job_new(const char *name, FthJobFunc func, gpointer user_data, GDestroyNotify destroy)
{
  g_return_val_if_fail(name != NULL && func != NULL, NULL);
  FthJob *job = g_object_new(FTH_TYPE_JOB, NULL);
  job->name = g_strdup(name);
  job->id = (guint64)g_atomic_int_add(&job_ids, 1) + 1;
  job->func = func;
  job->user_data = user_data;
  job->destroy = destroy;
  return job;
}

const char *fth_job_get_name(FthJob *job) { return job->name; }
guint64 fth_job_get_id(FthJob *job) { return job->id; }
GCancellable *fth_job_get_cancellable(FthJob *job) { return job->cancellable; }

FthJobState
fth_job_get_state(FthJob *job)
{
  g_mutex_lock(&job->lock);
  FthJobState s = job->state;
  g_mutex_unlock(&job->lock);
  return s;
}

static gboolean
state_is_terminal(FthJobState s)
{
  return s == FTH_JOB_STATE_SUCCEEDED || s == FTH_JOB_STATE_FAILED ||
         s == FTH_JOB_STATE_CANCELLED;
}

const GError *
fth_job_get_error(FthJob *job)
{
  g_mutex_lock(&job->lock);
  const GError *e = job->state == FTH_JOB_STATE_FAILED ? job->error : NULL;
  g_mutex_unlock(&job->lock);
  return e;
}

typedef struct {
  FthJob *job;
  Subscriber *sub;
} Delivery;

static void
delivery_free(gpointer data)
{
  Delivery *d = data;
  subscriber_unref(d->sub);
  g_object_unref(d->job);
  g_free(d);
}

/* Runs on the subscriber's context: drains its queue in order. */
static gboolean
deliver_events(gpointer data)
{
  Delivery *d = data;
  GQueue batch = G_QUEUE_INIT;
  g_mutex_lock(&d->job->lock);
  while (!g_queue_is_empty(&d->sub->pending))
    g_queue_push_tail(&batch, g_queue_pop_head(&d->sub->pending));
  d->sub->scheduled = FALSE;
  g_mutex_unlock(&d->job->lock);

  FthJobEvent *ev;
  while ((ev = g_queue_pop_head(&batch))) {
    g_mutex_lock(&d->job->lock);
    gboolean active = d->sub->active;
    g_mutex_unlock(&d->job->lock);
    if (active && d->sub->func)
      d->sub->func(d->job, ev, d->sub->user_data);
    if (fth_job_event_is_terminal(ev)) {
      g_mutex_lock(&d->job->lock);
      d->sub->done = TRUE;
      g_mutex_unlock(&d->job->lock);
    }
    fth_job_event_free(ev);
  }
  return G_SOURCE_REMOVE;
}

/* Called with the lock held; takes ownership of `ev`. */
static void
emit_locked(FthJob *job, FthJobEvent *ev)
{
  for (guint i = 0; i < job->subscribers->len; i++) {
    Subscriber *s = g_ptr_array_index(job->subscribers, i);
    if (!s->active)
      continue;
    g_queue_push_tail(&s->pending, fth_job_event_copy(ev));
    if (!s->scheduled) {
      s->scheduled = TRUE;
      Delivery *d = g_new0(Delivery, 1);
      d->job = g_object_ref(job);
      d->sub = subscriber_ref(s);
      GSource *src = g_idle_source_new();
      g_source_set_priority(src, G_PRIORITY_DEFAULT);
      g_source_set_callback(src, deliver_events, d, delivery_free);
      g_source_set_static_name(src, "[fathom] job events");
      g_source_attach(src, s->context);
      g_source_unref(src);
    }
  }
  job->last_emit_us = g_get_monotonic_time();
  fth_job_event_free(ev);
}

static FthJobEvent *
event_new_locked(FthJob *job, FthJobEventType type, gint64 step, gint64 total)
{
  FthJobEvent *ev = g_new0(FthJobEvent, 1);
  ev->type = type;
  ev->job = g_strdup(job->name);
  ev->job_id = job->id;
  ev->step = step;
  ev->total = total;
  ev->elapsed_s = job->start_us ? (double)(g_get_monotonic_time() - job->start_us) / 1e6 : 0;
  ev->eta_s = -1;
  return ev;
}

guint
fth_job_subscribe(FthJob *job, GMainContext *context, FthJobEventFunc func, gpointer user_data,
                  GDestroyNotify destroy)
{
  Subscriber *s = g_new0(Subscriber, 1);
  g_atomic_ref_count_init(&s->refs);
  s->context = context ? g_main_context_ref(context) : g_main_context_ref_thread_default();
  s->func = func;
  s->user_data = user_data;
  s->destroy = destroy;
  s->active = TRUE;
  g_queue_init(&s->pending);
  g_mutex_lock(&job->lock);
  s->id = ++job->next_subscription;
  s->done = state_is_terminal(job->state);
  g_ptr_array_add(job->subscribers, s);
  g_mutex_unlock(&job->lock);
  return s->id;
}

void
fth_job_unsubscribe(FthJob *job, guint subscription_id)
{
  Subscriber *found = NULL;
  g_mutex_lock(&job->lock);
  for (guint i = 0; i < job->subscribers->len; i++) {
    Subscriber *s = g_ptr_array_index(job->subscribers, i);
    if (s->id == subscription_id) {
      s->active = FALSE;
      found = g_ptr_array_steal_index(job->subscribers, i);
      break;
    }
  }
  g_mutex_unlock(&job->lock);
  /* Outside the lock: the destroy notify may run here and may touch the job. */
  if (found)
    subscriber_unref(found);
}

static void
run_job(gpointer data, gpointer pool_data)
{
  FthJob *job = data;
  g_mutex_lock(&job->lock);
  job->state = FTH_JOB_STATE_RUNNING;
  job->start_us = g_get_monotonic_time();
  emit_locked(job, event_new_locked(job, FTH_JOB_EVENT_STARTED, 0, 0));
  g_mutex_unlock(&job->lock);

  GError *error = NULL;
  gboolean ok = job->func(job, job->cancellable, job->user_data, &error);

  g_mutex_lock(&job->lock);
  FthJobEvent *ev;
  if (ok) {
    g_clear_error(&error);
    job->state = FTH_JOB_STATE_SUCCEEDED;
    ev = event_new_locked(job, FTH_JOB_EVENT_SUCCEEDED, 0, 0);
  } else if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED) ||
             g_cancellable_is_cancelled(job->cancellable)) {
    g_clear_error(&error);
    job->state = FTH_JOB_STATE_CANCELLED;
    ev = event_new_locked(job, FTH_JOB_EVENT_CANCELLED, 0, 0);
  } else {
    if (!error)
      error = g_error_new(FTH_JOB_ERROR, FTH_JOB_ERROR_FAILED,
                          "job “%s” failed without saying why", job->name);
    job->error = error;
    job->state = FTH_JOB_STATE_FAILED;
    ev = event_new_locked(job, FTH_JOB_EVENT_FAILED, 0, 0);
    ev->error = g_error_copy(error);
    ev->message = g_strdup(error->message);
  }
  emit_locked(job, ev);
  g_cond_broadcast(&job->cond);
  g_mutex_unlock(&job->lock);
  g_object_unref(job);
}

static GThreadPool *
shared_pool(void)
{
  static gsize once;
  static GThreadPool *pool;
  if (g_once_init_enter(&once)) {
    pool = g_thread_pool_new(run_job, NULL, (int)fth_job_pool_size(), FALSE, NULL);
    g_once_init_leave(&once, 1);
  }
  return pool;
}

guint
fth_job_pool_size(void)
{
  return MAX(1u, g_get_num_processors());
}

void
fth_job_start(FthJob *job)
{
  g_mutex_lock(&job->lock);
  if (job->state != FTH_JOB_STATE_PENDING) {
    g_mutex_unlock(&job->lock);
    g_critical("fth_job_start: job “%s” was already started", job->name);
    return;
  }
  job->state = FTH_JOB_STATE_QUEUED;
  g_mutex_unlock(&job->lock);
  g_thread_pool_push(shared_pool(), g_object_ref(job), NULL);
}

void
fth_job_cancel(FthJob *job)
{
  g_cancellable_cancel(job->cancellable);
}

void
fth_job_wait(FthJob *job)
{
  g_return_if_fail(fth_job_get_state(job) != FTH_JOB_STATE_PENDING);
  g_mutex_lock(&job->lock);
  while (!state_is_terminal(job->state))
    g_cond_wait(&job->cond, &job->lock);
  g_mutex_unlock(&job->lock);
}

static gboolean
all_delivered_locked(FthJob *job, GMainContext *context)
{
  if (!state_is_terminal(job->state))
    return FALSE;
  for (guint i = 0; i < job->subscribers->len; i++) {
    Subscriber *s = g_ptr_array_index(job->subscribers, i);
    if (s->active && s->context == context && !s->done)
      return FALSE;
  }
  return TRUE;
}

void
fth_job_wait_iterate(FthJob *job, GMainContext *context)
{
  g_autoptr(GMainContext) ctx =
      context ? g_main_context_ref(context) : g_main_context_ref_thread_default();
  g_return_if_fail(fth_job_get_state(job) != FTH_JOB_STATE_PENDING);
  /* An internal subscriber whose terminal event wakes this context up. */
  guint waiter = fth_job_subscribe(job, ctx, NULL, NULL, NULL);
  for (;;) {
    g_mutex_lock(&job->lock);
    gboolean done = all_delivered_locked(job, ctx);
    g_mutex_unlock(&job->lock);
    if (done)
      break;
    g_main_context_iteration(ctx, TRUE);
  }
  fth_job_unsubscribe(job, waiter);
}

gboolean
fth_job_run_sync(FthJob *job, GError **error)
{
  fth_job_start(job);
  fth_job_wait(job);
  switch (fth_job_get_state(job)) {
  case FTH_JOB_STATE_SUCCEEDED:
    return TRUE;
  case FTH_JOB_STATE_CANCELLED:
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_CANCELLED, "job “%s” was cancelled", job->name);
    return FALSE;
  default:
    if (error)
      *error = g_error_copy(fth_job_get_error(job));
    return FALSE;
  }
}

void
fth_job_progress(FthJob *job, gint64 step, gint64 total, const char *message)
{
  fth_job_progress_metrics(job, step, total, message, NULL, 0);
}

void
fth_job_progress_metrics(FthJob *job, gint64 step, gint64 total, const char *message,
                         const FthJobMetric *metrics, guint n_metrics)
{
  gint64 now = g_get_monotonic_time();
  g_mutex_lock(&job->lock);
  if (!job->have_anchor) {
    job->have_anchor = TRUE;
    job->anchor_us = now;
    job->anchor_step = step;
  } else if (!message && n_metrics == 0 && step != total &&
             now - job->last_emit_us < PROGRESS_INTERVAL_US) {
    g_mutex_unlock(&job->lock);
    return;
  }
  FthJobEvent *ev = event_new_locked(job, FTH_JOB_EVENT_PROGRESS, MAX(step, 0), MAX(total, 0));
  ev->message = g_strdup(message);
  if (n_metrics) {
    ev->metrics = g_new0(FthJobMetric, n_metrics);
    ev->n_metrics = n_metrics;
    for (guint i = 0; i < n_metrics; i++) {
      ev->metrics[i].name = g_strdup(metrics[i].name);
      ev->metrics[i].value = metrics[i].value;
    }
  }
  /* Linear extrapolation of the rate since the first report: setup before the first report
   * does not count against the remaining work. */
  if (total > 0 && step > job->anchor_step && now > job->anchor_us) {
    double rate = (double)(step - job->anchor_step) / ((double)(now - job->anchor_us) / 1e6);
    ev->eta_s = (double)MAX(total - step, 0) / rate;
  }
  emit_locked(job, ev);
  g_mutex_unlock(&job->lock);
}
