/* fth-jobs-panel.c: one row per job, updated from the job's events. A row holds a reference
 * to its job until dismissed, so a finished job's outcome stays readable. Emits "finished"
 * (job, terminal event, title), so the window can refresh what the job changed and say that
 * it ended. */
#include "fth-jobs-panel.h"

#include <glib/gi18n.h>

struct _FthJobsPanel {
  GtkWidget parent_instance;
  GtkListBox *list;
  guint n_jobs;
  guint n_running;
};

G_DEFINE_FINAL_TYPE(FthJobsPanel, fth_jobs_panel, GTK_TYPE_WIDGET)

enum { SIGNAL_FINISHED, N_SIGNALS };
static guint signals[N_SIGNALS];

typedef struct {
  FthJobsPanel *panel; /* not owned: the row is inside it */
  FthJob *job;
  char *title;
  guint subscription;
  GtkWidget *row;
  GtkLabel *message;
  GtkProgressBar *progress;
  GtkLabel *eta;
  GtkButton *cancel;
  GtkButton *dismiss;
} JobRow;

GtkWidget *
fth_jobs_panel_new(void)
{
  return g_object_new(FTH_TYPE_JOBS_PANEL, NULL);
}

static void
job_row_free(JobRow *row)
{
  if (row->subscription != 0)
    fth_job_unsubscribe(row->job, row->subscription);
  g_object_unref(row->job);
  g_free(row->title);
  g_free(row);
}

static char *
format_eta(double seconds)
{
  if (seconds < 0)
    return g_strdup("");
  int s = (int)(seconds + 0.5);
  if (s < 60)
    return g_strdup_printf(_("%d s left"), s);
  return g_strdup_printf(_("%d min %02d s left"), s / 60, s % 60);
}

static void
job_event(FthJob *job, const FthJobEvent *event, gpointer user_data)
{
  JobRow *row = user_data;

  if (event->message != NULL)
    gtk_label_set_text(row->message, event->message);
  if (event->total > 0)
    gtk_progress_bar_set_fraction(row->progress, CLAMP((double)event->step / event->total, 0, 1));
  else if (event->type == FTH_JOB_EVENT_PROGRESS)
    gtk_progress_bar_pulse(row->progress);
  g_autofree char *eta = format_eta(event->eta_s);
  gtk_label_set_text(row->eta, eta);

  if (!fth_job_event_is_terminal(event))
    return;

  const char *outcome = NULL;
  g_autofree char *failure = NULL;
  switch (event->type) {
  case FTH_JOB_EVENT_SUCCEEDED:
    outcome = _("Done");
    gtk_progress_bar_set_fraction(row->progress, 1.0);
    break;
  case FTH_JOB_EVENT_CANCELLED:
    outcome = _("Cancelled");
    break;
  case FTH_JOB_EVENT_FAILED:
  default:
    outcome = failure = g_strdup_printf(_("Failed: %s"), event->error != NULL
                                                           ? event->error->message
                                                           : _("unknown error"));
    gtk_widget_add_css_class(GTK_WIDGET(row->message), "error");
    break;
  }
  gtk_label_set_text(row->message, outcome);
  gtk_label_set_text(row->eta, "");
  gtk_widget_set_visible(GTK_WIDGET(row->cancel), FALSE);
  gtk_widget_set_visible(GTK_WIDGET(row->dismiss), TRUE);
  row->panel->n_running--;
  g_signal_emit(row->panel, signals[SIGNAL_FINISHED], 0, job, event, row->title);
}

static void
cancel_clicked(GtkButton *button, gpointer user_data)
{
  JobRow *row = user_data;
  gtk_widget_set_sensitive(GTK_WIDGET(button), FALSE);
  fth_job_cancel(row->job);
}

static void
dismiss_clicked(GtkButton *button, gpointer user_data)
{
  JobRow *row = user_data;
  FthJobsPanel *panel = row->panel;

  panel->n_jobs--;
  gtk_list_box_remove(panel->list, row->row); /* frees ROW with the row widget */
  gtk_widget_set_visible(GTK_WIDGET(panel), panel->n_jobs > 0);
}

void
fth_jobs_panel_add(FthJobsPanel *self, FthJob *job, const char *title)
{
  g_return_if_fail(FTH_IS_JOBS_PANEL(self));
  g_return_if_fail(FTH_IS_JOB(job));

  JobRow *row = g_new0(JobRow, 1);
  row->panel = self;
  row->job = g_object_ref(job);
  row->title = g_strdup(title);

  GtkWidget *grid = gtk_grid_new();
  gtk_grid_set_column_spacing(GTK_GRID(grid), 6);
  gtk_grid_set_row_spacing(GTK_GRID(grid), 4);
  gtk_widget_set_margin_top(grid, 6);
  gtk_widget_set_margin_bottom(grid, 6);
  gtk_widget_set_margin_start(grid, 8);
  gtk_widget_set_margin_end(grid, 8);

  GtkWidget *name = gtk_label_new(title);
  gtk_label_set_xalign(GTK_LABEL(name), 0);
  gtk_label_set_ellipsize(GTK_LABEL(name), PANGO_ELLIPSIZE_MIDDLE);
  gtk_widget_set_hexpand(name, TRUE);
  gtk_widget_add_css_class(name, "heading");
  gtk_grid_attach(GTK_GRID(grid), name, 0, 0, 1, 1);

  row->cancel = GTK_BUTTON(gtk_button_new_from_icon_name("process-stop-symbolic"));
  gtk_widget_set_tooltip_text(GTK_WIDGET(row->cancel), _("Cancel"));
  gtk_widget_add_css_class(GTK_WIDGET(row->cancel), "flat");
  gtk_widget_set_name(GTK_WIDGET(row->cancel), "job-cancel");
  g_signal_connect(row->cancel, "clicked", G_CALLBACK(cancel_clicked), row);
  gtk_grid_attach(GTK_GRID(grid), GTK_WIDGET(row->cancel), 1, 0, 1, 1);

  row->dismiss = GTK_BUTTON(gtk_button_new_from_icon_name("window-close-symbolic"));
  gtk_widget_set_tooltip_text(GTK_WIDGET(row->dismiss), _("Dismiss"));
  gtk_widget_add_css_class(GTK_WIDGET(row->dismiss), "flat");
  gtk_widget_set_name(GTK_WIDGET(row->dismiss), "job-dismiss");
  gtk_widget_set_visible(GTK_WIDGET(row->dismiss), FALSE);
  g_signal_connect(row->dismiss, "clicked", G_CALLBACK(dismiss_clicked), row);
  gtk_grid_attach(GTK_GRID(grid), GTK_WIDGET(row->dismiss), 2, 0, 1, 1);

  row->progress = GTK_PROGRESS_BAR(gtk_progress_bar_new());
  gtk_grid_attach(GTK_GRID(grid), GTK_WIDGET(row->progress), 0, 1, 3, 1);

  row->message = GTK_LABEL(gtk_label_new(_("Waiting…")));
  gtk_label_set_xalign(row->message, 0);
  gtk_label_set_ellipsize(row->message, PANGO_ELLIPSIZE_MIDDLE);
  gtk_widget_add_css_class(GTK_WIDGET(row->message), "caption");
  gtk_widget_set_name(GTK_WIDGET(row->message), "job-message");
  gtk_grid_attach(GTK_GRID(grid), GTK_WIDGET(row->message), 0, 2, 1, 1);

  row->eta = GTK_LABEL(gtk_label_new(""));
  gtk_widget_add_css_class(GTK_WIDGET(row->eta), "caption");
  gtk_widget_add_css_class(GTK_WIDGET(row->eta), "dim-label");
  gtk_grid_attach(GTK_GRID(grid), GTK_WIDGET(row->eta), 1, 2, 2, 1);

  row->row = gtk_list_box_row_new();
  gtk_list_box_row_set_activatable(GTK_LIST_BOX_ROW(row->row), FALSE);
  gtk_list_box_row_set_child(GTK_LIST_BOX_ROW(row->row), grid);
  g_object_set_data_full(G_OBJECT(row->row), "fth-job-row", row, (GDestroyNotify)job_row_free);
  gtk_list_box_prepend(self->list, row->row);

  row->subscription = fth_job_subscribe(job, NULL, job_event, row, NULL);
  self->n_jobs++;
  self->n_running++;
  gtk_widget_set_visible(GTK_WIDGET(self), TRUE);
}

guint
fth_jobs_panel_get_n_jobs(FthJobsPanel *self)
{
  g_return_val_if_fail(FTH_IS_JOBS_PANEL(self), 0);
  return self->n_jobs;
}

guint
fth_jobs_panel_get_n_running(FthJobsPanel *self)
{
  g_return_val_if_fail(FTH_IS_JOBS_PANEL(self), 0);
  return self->n_running;
}

static void
fth_jobs_panel_dispose(GObject *object)
{
  FthJobsPanel *self = FTH_JOBS_PANEL(object);

  if (self->list != NULL)
    gtk_widget_unparent(GTK_WIDGET(self->list));
  self->list = NULL;
  G_OBJECT_CLASS(fth_jobs_panel_parent_class)->dispose(object);
}

static void
fth_jobs_panel_class_init(FthJobsPanelClass *klass)
{
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);

  G_OBJECT_CLASS(klass)->dispose = fth_jobs_panel_dispose;
  /* A job ended: the job, its terminal event (borrowed, valid during the emission) and the
   * title it was added with. */
  signals[SIGNAL_FINISHED] = g_signal_new("finished", G_TYPE_FROM_CLASS(klass),
                                          G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL, G_TYPE_NONE,
                                          3, FTH_TYPE_JOB, G_TYPE_POINTER, G_TYPE_STRING);
  gtk_widget_class_set_layout_manager_type(widget_class, GTK_TYPE_BIN_LAYOUT);
  gtk_widget_class_set_css_name(widget_class, "jobspanel");
}

static void
fth_jobs_panel_init(FthJobsPanel *self)
{
  self->list = GTK_LIST_BOX(gtk_list_box_new());
  gtk_list_box_set_selection_mode(self->list, GTK_SELECTION_NONE);
  gtk_widget_add_css_class(GTK_WIDGET(self->list), "boxed-list");
  gtk_widget_set_parent(GTK_WIDGET(self->list), GTK_WIDGET(self));
  gtk_widget_set_visible(GTK_WIDGET(self), FALSE);
}
