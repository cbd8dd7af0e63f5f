/* Shared helpers of the `fathom` subcommands: option parsing, errors, job progress. */
#include "cli.h"

#include <glib-unix.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

gboolean
fth_cli_parse_options(const char *command, const char *params, const char *summary,
                      const char *description, const GOptionEntry *entries, int *argc,
                      char ***argv)
{
  g_autofree char *usage = g_strdup_printf("%s %s", command, params);
  g_autoptr(GOptionContext) ctx = g_option_context_new(usage);
  g_option_context_set_summary(ctx, summary);
  if (description)
    g_option_context_set_description(ctx, description);
  if (entries)
    g_option_context_add_main_entries(ctx, entries, NULL);
  /* "fathom CMD" in --help rather than the program name alone. */
  g_set_prgname("fathom");
  g_autoptr(GError) error = NULL;
  if (!g_option_context_parse(ctx, argc, argv, &error)) {
    fth_cli_usage_error(command, "%s", error->message);
    return FALSE;
  }
  return TRUE;
}

int
fth_cli_usage_error(const char *command, const char *format, ...)
{
  va_list args;
  va_start(args, format);
  g_autofree char *msg = g_strdup_vprintf(format, args);
  va_end(args);
  fprintf(stderr, "fathom %s: %s\nTry “fathom %s --help”.\n", command, msg, command);
  return FTH_EXIT_USAGE;
}

int
fth_cli_fail(const char *format, ...)
{
  va_list args;
  va_start(args, format);
  g_autofree char *msg = g_strdup_vprintf(format, args);
  va_end(args);
  fprintf(stderr, "fathom: %s\n", msg);
  return FTH_EXIT_FAILURE;
}

int
fth_cli_fail_error(const GError *error)
{
  return fth_cli_fail("%s", error ? error->message : "failed");
}

FthStore *
fth_cli_open_store(const char *dir)
{
  g_autoptr(GError) error = NULL;
  FthStore *store = fth_store_open(dir, &error);
  if (!store)
    fth_cli_fail_error(error);
  return store;
}

/* ---- progress --------------------------------------------------------------------------- */

typedef struct {
  FthCliProgressMode mode;
  gboolean tty;
  gboolean bar_visible;
  gint64 last_draw_us;
} Progress;

static void
clear_bar(Progress *p)
{
  if (p->bar_visible) {
    fputs("\r\033[K", stderr);
    p->bar_visible = FALSE;
  }
}

static char *
format_duration(double s)
{
  if (s < 0)
    return g_strdup("--:--");
  guint64 t = (guint64)(s + 0.5);
  if (t >= 3600)
    return g_strdup_printf("%" G_GUINT64_FORMAT ":%02u:%02u", t / 3600, (guint)(t / 60 % 60),
                           (guint)(t % 60));
  return g_strdup_printf("%u:%02u", (guint)(t / 60), (guint)(t % 60));
}

static GString *
describe_progress(const FthJobEvent *ev)
{
  GString *s = g_string_new(ev->job);
  if (ev->total > 0)
    g_string_append_printf(s, " %3d%%", (int)(100.0 * (double)ev->step / (double)ev->total));
  else
    g_string_append_printf(s, " %" G_GINT64_FORMAT, ev->step);
  for (guint i = 0; i < ev->n_metrics; i++)
    g_string_append_printf(s, "  %s %g", ev->metrics[i].name, ev->metrics[i].value);
  g_autofree char *eta = format_duration(ev->eta_s);
  g_autofree char *elapsed = format_duration(ev->elapsed_s);
  g_string_append_printf(s, "  elapsed %s  ETA %s", elapsed, eta);
  return s;
}

static void
draw_bar(Progress *p, const FthJobEvent *ev)
{
  const int width = 24;
  int filled = ev->total > 0 ? (int)((double)width * (double)ev->step / (double)ev->total) : 0;
  filled = CLAMP(filled, 0, width);
  g_autoptr(GString) text = describe_progress(ev);
  fputs("\r\033[K[", stderr);
  for (int i = 0; i < width; i++)
    fputc(i < filled ? '#' : '-', stderr);
  fprintf(stderr, "] %s", text->str);
  fflush(stderr);
  p->bar_visible = TRUE;
}

static void
on_event(FthJob *job, const FthJobEvent *ev, gpointer user_data)
{
  Progress *p = user_data;
  if (p->mode == FTH_CLI_PROGRESS_JSON) {
    g_autofree char *line = fth_job_event_to_json_line(ev);
    fprintf(stdout, "%s\n", line);
    fflush(stdout);
    return;
  }
  if (ev->type == FTH_JOB_EVENT_PROGRESS && ev->message) {
    clear_bar(p);
    fprintf(stderr, "%s\n", ev->message);
  }
  if (fth_job_event_is_terminal(ev)) {
    clear_bar(p);
    return;
  }
  if (ev->type != FTH_JOB_EVENT_PROGRESS || p->mode == FTH_CLI_PROGRESS_QUIET)
    return;
  gint64 now = g_get_monotonic_time();
  gboolean last = ev->total > 0 && ev->step == ev->total;
  if (p->tty) {
    if (last || now - p->last_draw_us >= 100 * G_TIME_SPAN_MILLISECOND) {
      draw_bar(p, ev);
      p->last_draw_us = now;
    }
  } else if (now - p->last_draw_us >= G_TIME_SPAN_SECOND) {
    /* Plain lines for logs, at most one a second. */
    g_autoptr(GString) text = describe_progress(ev);
    fprintf(stderr, "%s\n", text->str);
    p->last_draw_us = now;
  }
}

static gboolean
on_interrupt(gpointer user_data)
{
  fth_job_cancel(FTH_JOB(user_data));
  return G_SOURCE_CONTINUE;
}

FthJobState
fth_cli_run_job(FthJob *job, FthCliProgressMode mode)
{
  Progress p = { .mode = mode, .tty = isatty(STDERR_FILENO) };
  /* The first plain line waits a second, so quick jobs print none. */
  p.last_draw_us = g_get_monotonic_time();
  guint sub = fth_job_subscribe(job, NULL, on_event, &p, NULL);
  guint sigint = g_unix_signal_add(SIGINT, on_interrupt, job);
  guint sigterm = g_unix_signal_add(SIGTERM, on_interrupt, job);
  fth_job_start(job);
  fth_job_wait_iterate(job, NULL);
  g_source_remove(sigint);
  g_source_remove(sigterm);
  fth_job_unsubscribe(job, sub);
  FthJobState state = fth_job_get_state(job);
  if (state == FTH_JOB_STATE_FAILED)
    fth_cli_fail_error(fth_job_get_error(job));
  else if (state == FTH_JOB_STATE_CANCELLED)
    fprintf(stderr, "fathom: %s cancelled\n", fth_job_get_name(job));
  return state;
}
