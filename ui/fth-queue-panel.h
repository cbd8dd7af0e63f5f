/* fth-queue-panel.h: AutoLabel in the workbench. The labeling queue (what comes next and why),
 * the project's strategy, batch size and retrain interval, the Refill and Pre-label jobs, the
 * background loop (a fine-tune round after every K new human labels), the chart of held-out
 * accuracy against the number of labels, and the review of machine pseudo-labels. */
#pragma once

#include "fth-jobs-panel.h"
#include "fth-line-chart.h"
#include "fth-thumbnail-loader.h"

#include <fathom/store.h>
#include <gtk/gtk.h>

G_BEGIN_DECLS

#define FTH_TYPE_QUEUE_PANEL (fth_queue_panel_get_type())
G_DECLARE_FINAL_TYPE(FthQueuePanel, fth_queue_panel, FTH, QUEUE_PANEL, GtkWidget)

GtkWidget *fth_queue_panel_new(void);
/* STORE NULL clears. ITEMS (FthItem) and LOADER give the rows their thumbnails; JOBS shows the
 * panel's jobs (may be NULL). Reads everything again, off the main thread. */
void fth_queue_panel_set_project(FthQueuePanel *self, FthStore *store, GListModel *items,
                                 FthThumbnailLoader *loader, FthJobsPanel *jobs);
/* Reads the settings, the queue, the chart and the pseudo-labels again (off the main thread);
 * "refreshed" is emitted once they are shown. */
void fth_queue_panel_reload(FthQueuePanel *self);

/* The queue as shown, in rank order. */
guint fth_queue_panel_get_n_entries(FthQueuePanel *self);
gint64 fth_queue_panel_get_entry(FthQueuePanel *self, guint position);
/* The queued item after (FORWARD) or before ITEM_ID; the first entry when ITEM_ID is not queued
 * (FORWARD) ; 0 when there is none. */
gint64 fth_queue_panel_step(FthQueuePanel *self, gint64 item_id, gboolean forward);

/* An annotation of ITEM_ID was saved: once it has a human label it leaves the queue
 * ("item-dequeued" with the item that followed it), and after every K new human labels a
 * fine-tune round starts in the background. */
void fth_queue_panel_item_annotated(FthQueuePanel *self, gint64 item_id);

/* Whether a job of the panel (refill, pre-label, round, pseudo-labels) is running. */
gboolean fth_queue_panel_is_busy(FthQueuePanel *self);
FthLineChart *fth_queue_panel_get_chart(FthQueuePanel *self);
/* The pseudo-labels shown for review. */
guint fth_queue_panel_get_n_pseudo(FthQueuePanel *self);

G_END_DECLS
