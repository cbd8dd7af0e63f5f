/* Jobs: event order, cancellation, failure, concurrency, delivery context, JSON lines. */
#include <fathom/jobs.h>

#include <math.h>
#include <string.h>

typedef struct {
  GPtrArray *events;  /* FthJobEvent* copies */
  GThread *thread;    /* the thread the events arrived on */
  gboolean wrong_thread;
} Recorder;

static void
record_event(FthJob *job, const FthJobEvent *event, gpointer user_data)
{
  Recorder *r = user_data;
  if (r->thread && r->thread != g_thread_self())
    r->wrong_thread = TRUE;
  g_ptr_array_add(r->events, fth_job_event_copy(event));
}

static void
recorder_init(Recorder *r)
{
  r->events = g_ptr_array_new_with_free_func((GDestroyNotify)fth_job_event_free);
  r->thread = g_thread_self();
  r->wrong_thread = FALSE;
}

static const FthJobEvent *
ev_at(Recorder *r, guint i)
{
  g_assert_cmpuint(i, <, r->events->len);
  return g_ptr_array_index(r->events, i);
}

/* --- event order --- */

static gboolean
count_job(FthJob *job, GCancellable *c, gpointer data, GError **error)
{
  int n = GPOINTER_TO_INT(data);
  for (int i = 1; i <= n; i++) {
    g_autofree char *msg = g_strdup_printf("item %d", i);
    FthJobMetric m = { "square", (double)(i * i) };
    fth_job_progress_metrics(job, i, n, msg, &m, 1);
  }
  return TRUE;
}

static void
test_event_order(void)
{
  Recorder r;
  recorder_init(&r);
  g_autoptr(FthJob) job = fth_job_new("count", count_job, GINT_TO_POINTER(20), NULL);
  g_assert_cmpint(fth_job_get_state(job), ==, FTH_JOB_STATE_PENDING);
  fth_job_subscribe(job, NULL, record_event, &r, NULL);
  fth_job_start(job);
  fth_job_wait_iterate(job, NULL);

  g_assert_cmpint(fth_job_get_state(job), ==, FTH_JOB_STATE_SUCCEEDED);
  g_assert_null(fth_job_get_error(job));
  g_assert_false(r.wrong_thread);
  g_assert_cmpuint(r.events->len, ==, 22);
  g_assert_cmpint(ev_at(&r, 0)->type, ==, FTH_JOB_EVENT_STARTED);
  for (int i = 1; i <= 20; i++) {
    const FthJobEvent *e = ev_at(&r, (guint)i);
    g_assert_cmpint(e->type, ==, FTH_JOB_EVENT_PROGRESS);
    g_assert_cmpint(e->step, ==, i);
    g_assert_cmpint(e->total, ==, 20);
    g_autofree char *msg = g_strdup_printf("item %d", i);
    g_assert_cmpstr(e->message, ==, msg);
    double sq = 0;
    g_assert_true(fth_job_event_get_metric(e, "square", &sq));
    g_assert_cmpfloat(sq, ==, (double)(i * i));
    g_assert_false(fth_job_event_get_metric(e, "cube", NULL));
    g_assert_cmpstr(e->job, ==, "count");
    g_assert_cmpuint(e->job_id, ==, fth_job_get_id(job));
  }
  const FthJobEvent *last = ev_at(&r, 21);
  g_assert_cmpint(last->type, ==, FTH_JOB_EVENT_SUCCEEDED);
  g_assert_true(fth_job_event_is_terminal(last));
  /* Elapsed time never goes backwards. */
  for (guint i = 1; i < r.events->len; i++)
    g_assert_cmpfloat(ev_at(&r, i)->elapsed_s, >=, ev_at(&r, i - 1)->elapsed_s);
  g_ptr_array_unref(r.events);
}

/* --- coalescing and ETA --- */

static gboolean
plain_progress_job(FthJob *job, GCancellable *c, gpointer data, GError **error)
{
  for (int i = 1; i <= 100000; i++)
    fth_job_progress(job, i, 100000, NULL);
  return TRUE;
}

static void
test_coalescing(void)
{
  Recorder r;
  recorder_init(&r);
  g_autoptr(FthJob) job = fth_job_new("plain", plain_progress_job, NULL, NULL);
  fth_job_subscribe(job, NULL, record_event, &r, NULL);
  fth_job_start(job);
  fth_job_wait_iterate(job, NULL);
  /* 100,000 reports in far less than 50 ms each: most are dropped, but the first and the
   * last (step == total) are kept, in order. */
  g_assert_cmpuint(r.events->len, >=, 4);
  g_assert_cmpuint(r.events->len, <, 1000);
  g_assert_cmpint(ev_at(&r, 1)->step, ==, 1);
  const FthJobEvent *final_progress = ev_at(&r, r.events->len - 2);
  g_assert_cmpint(final_progress->type, ==, FTH_JOB_EVENT_PROGRESS);
  g_assert_cmpint(final_progress->step, ==, 100000);
  g_assert_cmpfloat(final_progress->eta_s, ==, 0.0);
  for (guint i = 2; i < r.events->len - 1; i++)
    g_assert_cmpint(ev_at(&r, i)->step, >, ev_at(&r, i - 1)->step);
  g_ptr_array_unref(r.events);
}

static gboolean
steady_job(FthJob *job, GCancellable *c, gpointer data, GError **error)
{
  /* 10 steps of 20 ms: the ETA after step 5 should be near 5 * 20 ms. */
  for (int i = 0; i <= 10; i++) {
    if (i > 0)
      g_usleep(20000);
    fth_job_progress(job, i, 10, "tick");
  }
  fth_job_progress(job, 1, 0, "unknown total");
  return TRUE;
}

static void
test_eta(void)
{
  Recorder r;
  recorder_init(&r);
  g_autoptr(FthJob) job = fth_job_new("steady", steady_job, NULL, NULL);
  fth_job_subscribe(job, NULL, record_event, &r, NULL);
  fth_job_start(job);
  fth_job_wait_iterate(job, NULL);
  g_assert_cmpuint(r.events->len, ==, 14);
  g_assert_cmpfloat(ev_at(&r, 1)->eta_s, <, 0);     /* step 0: no rate yet */
  const FthJobEvent *half = ev_at(&r, 6);
  g_assert_cmpint(half->step, ==, 5);
  /* Sleeping only lengthens steps, so the rate can only look slower: ETA >= 0.1 s minus
   * clock granularity; the upper bound is generous for a loaded machine. */
  g_assert_cmpfloat(half->eta_s, >, 0.09);
  g_assert_cmpfloat(half->eta_s, <, 5.0);
  g_assert_cmpfloat(ev_at(&r, 11)->eta_s, ==, 0.0);
  g_assert_cmpfloat(ev_at(&r, 12)->eta_s, <, 0);    /* total unknown */
  g_ptr_array_unref(r.events);
}

/* --- cancellation --- */

static gboolean
endless_job(FthJob *job, GCancellable *cancellable, gpointer data, GError **error)
{
  gint *iterations = data;
  for (gint64 i = 1;; i++) {
    if (g_cancellable_set_error_if_cancelled(cancellable, error))
      return FALSE;
    g_atomic_int_inc(iterations);
    fth_job_progress(job, i, 0, "working");
    g_usleep(1000);
  }
}

static void
cancel_at_third(FthJob *job, const FthJobEvent *event, gpointer user_data)
{
  Recorder *r = user_data;
  record_event(job, event, r);
  if (event->type == FTH_JOB_EVENT_PROGRESS && event->step == 3)
    fth_job_cancel(job);
}

static void
test_cancel_mid_run(void)
{
  Recorder r;
  recorder_init(&r);
  gint iterations = 0;
  g_autoptr(FthJob) job = fth_job_new("endless", endless_job, &iterations, NULL);
  fth_job_subscribe(job, NULL, cancel_at_third, &r, NULL);
  fth_job_start(job);
  fth_job_wait_iterate(job, NULL);
  g_assert_cmpint(fth_job_get_state(job), ==, FTH_JOB_STATE_CANCELLED);
  g_assert_null(fth_job_get_error(job));
  g_assert_cmpint(ev_at(&r, r.events->len - 1)->type, ==, FTH_JOB_EVENT_CANCELLED);
  g_assert_cmpint(g_atomic_int_get(&iterations), >=, 3);
  /* Exactly one terminal event, and it is the last one. */
  for (guint i = 0; i + 1 < r.events->len; i++)
    g_assert_false(fth_job_event_is_terminal(ev_at(&r, i)));
  g_ptr_array_unref(r.events);
}

static void
test_cancel_run_sync(void)
{
  gint iterations = 0;
  g_autoptr(FthJob) job = fth_job_new("endless", endless_job, &iterations, NULL);
  fth_job_cancel(job);   /* cancelled before it starts: the job sees it at its first check */
  g_autoptr(GError) error = NULL;
  g_assert_false(fth_job_run_sync(job, &error));
  g_assert_error(error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_cmpint(iterations, ==, 0);
}

/* --- failure --- */

static gboolean
failing_job(FthJob *job, GCancellable *c, gpointer data, GError **error)
{
  fth_job_progress(job, 1, 2, "half way");
  g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_NOENT, "%s: no such file", (const char *)data);
  return FALSE;
}

static gboolean
silent_failing_job(FthJob *job, GCancellable *c, gpointer data, GError **error)
{
  return FALSE;
}

static void
test_failure(void)
{
  Recorder r;
  recorder_init(&r);
  g_autoptr(FthJob) job = fth_job_new("fail", failing_job, g_strdup("/x/y.jpg"), g_free);
  fth_job_subscribe(job, NULL, record_event, &r, NULL);
  fth_job_start(job);
  fth_job_wait_iterate(job, NULL);
  g_assert_cmpint(fth_job_get_state(job), ==, FTH_JOB_STATE_FAILED);
  g_assert_error(fth_job_get_error(job), G_FILE_ERROR, G_FILE_ERROR_NOENT);
  g_assert_cmpuint(r.events->len, ==, 3);
  const FthJobEvent *last = ev_at(&r, 2);
  g_assert_cmpint(last->type, ==, FTH_JOB_EVENT_FAILED);
  g_assert_error(last->error, G_FILE_ERROR, G_FILE_ERROR_NOENT);
  g_assert_cmpstr(last->error->message, ==, "/x/y.jpg: no such file");
  g_ptr_array_unref(r.events);

  g_autoptr(FthJob) job2 = fth_job_new("fail", failing_job, (gpointer) "/z.png", NULL);
  g_autoptr(GError) error = NULL;
  g_assert_false(fth_job_run_sync(job2, &error));
  g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_NOENT);
  g_assert_cmpstr(error->message, ==, "/z.png: no such file");

  /* A job function that forgets to set its error still fails with a reason. */
  g_autoptr(FthJob) job3 = fth_job_new("silent", silent_failing_job, NULL, NULL);
  g_clear_error(&error);
  g_assert_false(fth_job_run_sync(job3, &error));
  g_assert_error(error, FTH_JOB_ERROR, FTH_JOB_ERROR_FAILED);
  g_assert_nonnull(strstr(error->message, "silent"));
}

/* --- concurrency --- */

static gboolean
sum_job(FthJob *job, GCancellable *c, gpointer data, GError **error)
{
  gint64 *slot = data;
  gint64 n = *slot, s = 0;
  for (gint64 i = 1; i <= n; i++) {
    s += i;
    if (i % 100 == 0)
      fth_job_progress_metrics(job, i, n, NULL, &(FthJobMetric){ "sum", (double)s }, 1);
  }
  *slot = s;
  return TRUE;
}

static void
test_many_concurrent(void)
{
  enum { N = 64 };
  gint64 slots[N];
  FthJob *jobs[N];
  Recorder rec[N];
  for (int i = 0; i < N; i++) {
    slots[i] = 1000 + i * 100;
    recorder_init(&rec[i]);
    jobs[i] = fth_job_new("sum", sum_job, &slots[i], NULL);
    fth_job_subscribe(jobs[i], NULL, record_event, &rec[i], NULL);
  }
  for (int i = 0; i < N; i++)
    fth_job_start(jobs[i]);
  for (int i = 0; i < N; i++)
    fth_job_wait_iterate(jobs[i], NULL);
  for (int i = 0; i < N; i++) {
    gint64 n = 1000 + i * 100;
    g_assert_cmpint(fth_job_get_state(jobs[i]), ==, FTH_JOB_STATE_SUCCEEDED);
    g_assert_cmpint(slots[i], ==, n * (n + 1) / 2);
    g_assert_cmpuint(rec[i].events->len, ==, (guint)(n / 100) + 2);
    g_assert_cmpint(ev_at(&rec[i], 0)->type, ==, FTH_JOB_EVENT_STARTED);
    for (guint k = 1; k + 1 < rec[i].events->len; k++) {
      g_assert_cmpint(ev_at(&rec[i], k)->step, ==, (gint64)k * 100);
      g_assert_cmpuint(ev_at(&rec[i], k)->job_id, ==, fth_job_get_id(jobs[i]));
    }
    g_assert_cmpint(ev_at(&rec[i], rec[i].events->len - 1)->type, ==, FTH_JOB_EVENT_SUCCEEDED);
    g_ptr_array_unref(rec[i].events);
    g_object_unref(jobs[i]);
  }
  g_assert_cmpuint(fth_job_pool_size(), ==, g_get_num_processors());
}

/* --- delivery on another thread's context --- */

typedef struct {
  Recorder rec;
  FthJob *job;
} ThreadCase;

static gpointer
subscriber_thread(gpointer data)
{
  ThreadCase *tc = data;
  g_autoptr(GMainContext) ctx = g_main_context_new();
  g_main_context_push_thread_default(ctx);
  recorder_init(&tc->rec);
  fth_job_subscribe(tc->job, ctx, record_event, &tc->rec, NULL);
  fth_job_start(tc->job);
  fth_job_wait_iterate(tc->job, ctx);
  g_main_context_pop_thread_default(ctx);
  return NULL;
}

static void
test_other_context(void)
{
  ThreadCase tc = { 0 };
  tc.job = fth_job_new("count", count_job, GINT_TO_POINTER(5), NULL);
  /* A subscriber on this thread's default context too: it must not be called while the
   * other thread waits, only when this thread iterates. */
  Recorder here;
  recorder_init(&here);
  fth_job_subscribe(tc.job, NULL, record_event, &here, NULL);
  GThread *t = g_thread_new("subscriber", subscriber_thread, &tc);
  g_thread_join(t);
  g_assert_false(tc.rec.wrong_thread);
  g_assert_cmpuint(tc.rec.events->len, ==, 7);
  g_assert_cmpuint(here.events->len, ==, 0);
  fth_job_wait_iterate(tc.job, NULL);
  g_assert_cmpuint(here.events->len, ==, 7);
  g_assert_false(here.wrong_thread);
  g_ptr_array_unref(tc.rec.events);
  g_ptr_array_unref(here.events);
  g_object_unref(tc.job);
}

static void
test_unsubscribe(void)
{
  Recorder r;
  recorder_init(&r);
  g_autoptr(FthJob) job = fth_job_new("count", count_job, GINT_TO_POINTER(5), NULL);
  guint id = fth_job_subscribe(job, NULL, record_event, &r, NULL);
  fth_job_start(job);
  fth_job_wait(job);
  fth_job_unsubscribe(job, id);   /* queued events are dropped, not delivered */
  fth_job_wait_iterate(job, NULL);
  while (g_main_context_iteration(NULL, FALSE))
    ;
  g_assert_cmpuint(r.events->len, ==, 0);
  g_ptr_array_unref(r.events);
}

/* --- JSON lines --- */

static void
assert_events_equal(const FthJobEvent *a, const FthJobEvent *b)
{
  g_assert_cmpint(a->type, ==, b->type);
  g_assert_cmpstr(a->job, ==, b->job);
  g_assert_cmpuint(a->job_id, ==, b->job_id);
  g_assert_cmpint(a->step, ==, b->step);
  g_assert_cmpint(a->total, ==, b->total);
  g_assert_cmpstr(a->message, ==, b->message);
  g_assert_cmpuint(a->n_metrics, ==, b->n_metrics);
  for (guint i = 0; i < a->n_metrics; i++) {
    g_assert_cmpstr(a->metrics[i].name, ==, b->metrics[i].name);
    if (isnan(a->metrics[i].value))
      g_assert_true(isnan(b->metrics[i].value));
    else
      g_assert_cmpfloat(a->metrics[i].value, ==, b->metrics[i].value);
  }
  g_assert_cmpfloat(a->elapsed_s, ==, b->elapsed_s);
  if (a->eta_s < 0)
    g_assert_cmpfloat(b->eta_s, <, 0);
  else
    g_assert_cmpfloat(a->eta_s, ==, b->eta_s);
  if (a->error) {
    g_assert_nonnull(b->error);
    g_assert_cmpuint(a->error->domain, ==, b->error->domain);
    g_assert_cmpint(a->error->code, ==, b->error->code);
    g_assert_cmpstr(a->error->message, ==, b->error->message);
  } else {
    g_assert_null(b->error);
  }
}

static void
test_json_round_trip(void)
{
  FthJobMetric metrics[] = { { "zeta loss", 0.1234567890123 }, { "acc", 1.0 / 3.0 },
                             { "a\"quoted\"", -5e-300 }, { "nan", NAN } };
  FthJobEvent progress = {
    .type = FTH_JOB_EVENT_PROGRESS, .job = "train", .job_id = 42, .step = 7, .total = 100,
    .message = "ÄÖ “quotes” \"x\"\nline2\ttab \\", .metrics = metrics, .n_metrics = 4,
    .elapsed_s = 12.5, .eta_s = 3.14159,
  };
  FthJobEvent started = { .type = FTH_JOB_EVENT_STARTED, .job = "import", .job_id = 1,
                          .elapsed_s = 0, .eta_s = -1 };
  FthJobEvent failed = { .type = FTH_JOB_EVENT_FAILED, .job = "import", .job_id = 3,
                         .step = 0, .total = 0, .elapsed_s = 0.25, .eta_s = -1,
                         .error = g_error_new_literal(G_FILE_ERROR, G_FILE_ERROR_ACCES,
                                                      "/p/a.jpg: permission denied") };
  FthJobEvent cancelled = { .type = FTH_JOB_EVENT_CANCELLED, .job = "x", .job_id = 9,
                            .step = 3, .total = 9, .elapsed_s = 1e-6, .eta_s = -1 };
  const FthJobEvent *cases[] = { &progress, &started, &failed, &cancelled };
  for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_autofree char *line = fth_job_event_to_json_line(cases[i]);
    g_assert_null(strchr(line, '\n'));
    g_autoptr(GError) error = NULL;
    g_autoptr(FthJobEvent) back = fth_job_event_from_json_line(line, &error);
    g_assert_no_error(error);
    assert_events_equal(cases[i], back);
    /* And it is stable: serializing the parsed event gives the same line. */
    g_autofree char *again = fth_job_event_to_json_line(back);
    g_assert_cmpstr(line, ==, again);
  }
  g_clear_error(&failed.error);

  /* The documented member names, checked literally on a known line. */
  FthJobEvent simple = { .type = FTH_JOB_EVENT_PROGRESS, .job = "import", .job_id = 1,
                         .step = 500, .total = 2000, .message = "a.jpg",
                         .metrics = (FthJobMetric[]){ { "bad", 1 } }, .n_metrics = 1,
                         .elapsed_s = 0.5, .eta_s = 1.5 };
  g_autofree char *line = fth_job_event_to_json_line(&simple);
  g_assert_cmpstr(line, ==,
                  "{\"type\":\"progress\",\"job\":\"import\",\"id\":1,\"step\":500,"
                  "\"total\":2000,\"message\":\"a.jpg\",\"metrics\":{\"bad\":1},"
                  "\"elapsed_s\":0.5,\"eta_s\":1.5}");
  /* Readers ignore unknown members and accept integers where numbers are expected. */
  g_autoptr(GError) error = NULL;
  g_autoptr(FthJobEvent) ev = fth_job_event_from_json_line(
      "{\"type\":\"progress\",\"job\":\"j\",\"id\":2,\"step\":1,\"total\":0,"
      "\"elapsed_s\":3,\"eta_s\":null,\"host\":\"gpu1\"}", &error);
  g_assert_no_error(error);
  g_assert_cmpfloat(ev->elapsed_s, ==, 3.0);
  g_assert_cmpfloat(ev->eta_s, <, 0);
}

static void
test_json_bad_lines(void)
{
  const char *bad[][2] = {
    { "not json", "not JSON" },
    { "[1,2]", "not a JSON object" },
    { "{\"job\":\"j\",\"id\":1,\"step\":0,\"total\":0,\"elapsed_s\":0}", "“type” is missing" },
    { "{\"type\":\"exploded\",\"job\":\"j\",\"id\":1,\"step\":0,\"total\":0,\"elapsed_s\":0}",
      "unknown event type “exploded”" },
    { "{\"type\":\"progress\",\"job\":\"j\",\"id\":1,\"step\":\"3\",\"total\":0,\"elapsed_s\":0}",
      "“step” is not an integer" },
    { "{\"type\":\"progress\",\"job\":\"j\",\"id\":1,\"step\":-1,\"total\":0,\"elapsed_s\":0}",
      "“step” is negative" },
    { "{\"type\":\"progress\",\"job\":\"j\",\"id\":1,\"step\":0,\"total\":0}",
      "“elapsed_s” is missing" },
    { "{\"type\":\"progress\",\"job\":\"j\",\"id\":1,\"step\":0,\"total\":0,\"elapsed_s\":0,"
      "\"metrics\":{\"loss\":\"low\"}}", "metric “loss” is not a number" },
    { "{\"type\":\"failed\",\"job\":\"j\",\"id\":1,\"step\":0,\"total\":0,\"elapsed_s\":0}",
      "“error” is missing" },
  };
  for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
    g_autoptr(GError) error = NULL;
    g_autoptr(FthJobEvent) ev = fth_job_event_from_json_line(bad[i][0], &error);
    g_assert_null(ev);
    g_assert_error(error, FTH_JOB_ERROR, FTH_JOB_ERROR_PARSE);
    if (!strstr(error->message, bad[i][1]))
      g_error("line %u: “%s” does not contain “%s”", i, error->message, bad[i][1]);
  }
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/jobs/event-order", test_event_order);
  g_test_add_func("/jobs/coalescing", test_coalescing);
  g_test_add_func("/jobs/eta", test_eta);
  g_test_add_func("/jobs/cancel-mid-run", test_cancel_mid_run);
  g_test_add_func("/jobs/cancel-before-start", test_cancel_run_sync);
  g_test_add_func("/jobs/failure", test_failure);
  g_test_add_func("/jobs/many-concurrent", test_many_concurrent);
  g_test_add_func("/jobs/other-context", test_other_context);
  g_test_add_func("/jobs/unsubscribe", test_unsubscribe);
  g_test_add_func("/jobs/json-round-trip", test_json_round_trip);
  g_test_add_func("/jobs/json-bad-lines", test_json_bad_lines);
  return g_test_run();
}
