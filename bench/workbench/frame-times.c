/* frame-times: how long the workbench's frames take while it scrolls the item grid and,
 * optionally, trains a model in the background (the main loop must never stall: issue 5 asks
 * for no frame over 50 ms while a training job runs).
 *   tests/run-with-xvfb.sh frame-times [--seconds S] [--train RECIPE [--charts]] PROJECT_DIR
 * Prints the frame intervals (from the frame clock) as mean, percentiles and maximum. With
 * --charts it watches the training page (its live charts) instead of scrolling the grid. Not
 * a test: the figure depends on the machine; run it on a quiet one. */
#include "fth-training-page.h"
#include "workbench-test-util.h"

#include <stdio.h>
#include <sys/resource.h>

typedef struct {
  GArray *intervals_us; /* gint64 */
  GArray *long_at_us;   /* gint64: when each frame over 50 ms ended, from the first frame */
  gint64 first_us, last_us;
  GtkAdjustment *scroll;
} Recorder;

static gboolean
tick(GtkWidget *widget, GdkFrameClock *clock, gpointer user_data)
{
  Recorder *rec = user_data;
  gint64 now = gdk_frame_clock_get_frame_time(clock);

  if (rec->last_us != 0) {
    gint64 interval = now - rec->last_us;
    g_array_append_val(rec->intervals_us, interval);
    if (interval > 50000) {
      gint64 at = now - rec->first_us;
      g_array_append_val(rec->long_at_us, at);
    }
  } else {
    rec->first_us = now;
  }
  rec->last_us = now;

  if (rec->scroll == NULL)
    return G_SOURCE_CONTINUE;
  /* Scroll on, wrapping at the end, so new rows bind and thumbnails decode all the time. */
  double value = gtk_adjustment_get_value(rec->scroll) + 37.0;
  if (value > gtk_adjustment_get_upper(rec->scroll) - gtk_adjustment_get_page_size(rec->scroll))
    value = 0;
  gtk_adjustment_set_value(rec->scroll, value);
  return G_SOURCE_CONTINUE;
}

/* CPU time of the calling thread (the main loop's), in ms: what the workbench itself spends,
 * whatever the load. */
static double
thread_cpu_ms(void)
{
  struct rusage usage;
  getrusage(RUSAGE_THREAD, &usage);
  return (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1e3 +
         (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e3;
}

/* How long the calling thread has waited for a core so far, in ms (Linux schedstat; -1 when
 * unknown): the part of a long frame that is the machine's load, not the workbench's work. */
static double
thread_wait_ms(void)
{
  g_autofree char *stat = NULL;
  guint64 run_ns = 0, wait_ns = 0;
  if (!g_file_get_contents("/proc/thread-self/schedstat", &stat, NULL, NULL) ||
      sscanf(stat, "%" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT, &run_ns, &wait_ns) != 2)
    return -1;
  return wait_ns / 1e6;
}

static int
compare_int64(gconstpointer a, gconstpointer b)
{
  gint64 x = *(const gint64 *)a, y = *(const gint64 *)b;
  return x < y ? -1 : x > y;
}

int
main(int argc, char **argv)
{
  int seconds = 10;
  g_autofree char *recipe = NULL;
  gboolean charts = FALSE;
  GOptionEntry entries[] = {
    { "charts", 0, 0, G_OPTION_ARG_NONE, &charts, "Watch the training page's charts", NULL },
    { "seconds", 0, 0, G_OPTION_ARG_INT, &seconds, "How long to measure (default 10)", "S" },
    { "train", 0, 0, G_OPTION_ARG_STRING, &recipe, "Train RECIPE meanwhile", "RECIPE" },
    { NULL },
  };
  g_autoptr(GOptionContext) context = g_option_context_new("PROJECT_DIR");
  g_autoptr(GError) error = NULL;
  g_option_context_add_main_entries(context, entries, NULL);
  if (!g_option_context_parse(context, &argc, &argv, &error) || argc != 2) {
    g_printerr("frame-times: %s\n", error != NULL ? error->message : "need PROJECT_DIR");
    return 2;
  }

  gtk_init();
  adw_init();
  g_autoptr(FthApplication) app = fth_application_new(G_APPLICATION_NON_UNIQUE);
  if (!g_application_register(G_APPLICATION(app), NULL, &error)) {
    g_printerr("frame-times: %s\n", error->message);
    return 1;
  }
  FthWindow *window = fth_window_new(app);
  gtk_window_set_default_size(GTK_WINDOW(window), 1100, 720);
  gtk_window_present(GTK_WINDOW(window));
  g_autofree char *message = NULL;
  if (!fth_test_open_project(window, argv[1], 60000, &message)) {
    g_printerr("frame-times: %s\n", message);
    return 1;
  }
  fth_test_wait_for_thumbnails(window, 60000);

  g_autoptr(GPtrArray) pages = fth_test_find_widgets(GTK_WIDGET(window), FTH_TYPE_TRAINING_PAGE);
  FthTrainingPage *page = g_ptr_array_index(pages, 0);
  if (recipe != NULL) {
    fth_test_spin_for(300); /* the recipes are listed */
    fth_training_page_select_recipe(page, recipe);
    fth_training_page_set_epochs(page, 50);
    if (!fth_training_page_start(page)) {
      g_printerr("frame-times: cannot start training %s\n", recipe);
      return 1;
    }
    fth_test_spin_for(2000); /* past the dataset decode, into the epochs */
  }

  g_autoptr(GPtrArray) grids = fth_test_find_widgets(GTK_WIDGET(window), GTK_TYPE_GRID_VIEW);
  GtkWidget *watched = g_ptr_array_index(grids, 0);
  Recorder rec = { g_array_new(FALSE, FALSE, sizeof(gint64)),
                   g_array_new(FALSE, FALSE, sizeof(gint64)), 0, 0,
                   gtk_scrollable_get_vadjustment(GTK_SCROLLABLE(watched)) };
  if (charts && recipe != NULL) {
    g_autoptr(GPtrArray) stacks = fth_test_find_widgets(GTK_WIDGET(window), ADW_TYPE_VIEW_STACK);
    adw_view_stack_set_visible_child_name(g_ptr_array_index(stacks, 0), "training");
    watched = GTK_WIDGET(page);
    rec.scroll = NULL;
  }
  double cpu0 = thread_cpu_ms(), wait0 = thread_wait_ms();
  guint id = gtk_widget_add_tick_callback(watched, tick, &rec, NULL);
  fth_test_spin_for((guint)seconds * 1000);
  gtk_widget_remove_tick_callback(watched, id);
  double cpu = thread_cpu_ms() - cpu0, wait = thread_wait_ms() - wait0;
  if (recipe != NULL)
    fth_training_page_cancel(page);

  GArray *v = rec.intervals_us;
  if (v->len == 0) {
    g_printerr("frame-times: no frames were drawn\n");
    return 1;
  }
  g_array_sort(v, compare_int64);
  double sum = 0;
  guint over_50 = 0;
  for (guint i = 0; i < v->len; i++) {
    sum += g_array_index(v, gint64, i);
    over_50 += g_array_index(v, gint64, i) > 50000;
  }
#define PCT(p) (g_array_index(v, gint64, MIN(v->len - 1, (guint)((p) * v->len))) / 1000.0)
  printf("frames %u in %d s%s%s: interval mean %.1f ms, p50 %.1f, p95 %.1f, p99 %.1f, "
         "max %.1f ms; %u over 50 ms; main thread CPU %.1f ms a frame (%.0f %% of one core), "
         "waiting for a core %.1f ms a frame\n",
         v->len, seconds, recipe != NULL ? " while training" : "",
         charts && recipe != NULL ? " (training page shown)" : " (scrolling the grid)",
         sum / v->len / 1000.0,
         PCT(0.50), PCT(0.95), PCT(0.99), g_array_index(v, gint64, v->len - 1) / 1000.0, over_50,
         cpu / v->len, cpu / (seconds * 10.0), wait0 >= 0 ? wait / v->len : -1.0);
  /* When the long frames came, to line them up with what the job was doing. */
  if (rec.long_at_us->len > 0) {
    printf("  frames over 50 ms ended at");
    for (guint i = 0; i < rec.long_at_us->len; i++)
      printf(" %.2f", g_array_index(rec.long_at_us, gint64, i) / 1e6);
    printf(" s\n");
  }
  g_array_unref(rec.long_at_us);
  g_array_unref(v);
  gtk_window_destroy(GTK_WINDOW(window));
  fth_test_spin_for(500); /* the cancelled run ends */
  return 0;
}
