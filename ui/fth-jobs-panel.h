/* fth-jobs-panel.h: the running and finished jobs of a window: progress, ETA, cancel.
 *
 * Each job added gets a row that follows its events (fathom/jobs.h) on the main loop: the
 * message, a progress bar, the time left, a cancel button while it runs, then how it ended
 * and a button to dismiss the row. "finished" (job, terminal FthJobEvent *, title) is emitted
 * when a job ends. */
#pragma once

#include <fathom/jobs.h>
#include <gtk/gtk.h>

G_BEGIN_DECLS

#define FTH_TYPE_JOBS_PANEL (fth_jobs_panel_get_type())
G_DECLARE_FINAL_TYPE(FthJobsPanel, fth_jobs_panel, FTH, JOBS_PANEL, GtkWidget)

GtkWidget *fth_jobs_panel_new(void);
/* Shows JOB under TITLE; subscribe happens here, so add a job before fth_job_start(). */
void fth_jobs_panel_add(FthJobsPanel *self, FthJob *job, const char *title);
/* Rows shown (running or finished and not dismissed). */
guint fth_jobs_panel_get_n_jobs(FthJobsPanel *self);
guint fth_jobs_panel_get_n_running(FthJobsPanel *self);

G_END_DECLS
