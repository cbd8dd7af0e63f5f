/* fth-queue-panel.c: everything the panel shows is read in one GTask thread into a Snapshot and
 * applied on the main loop; a generation counter drops snapshots that a later reload overtook.
 * Refill, pre-label, the fine-tune round and the pseudo-label work run as jobs on the job pool,
 * each on a store connection of its own (a round reads the whole dataset; on the window's
 * connection that would hold up the item grid), and the panel reloads when one ends. */
#include "fth-queue-panel.h"
#include "fth-label-color.h"

#include <fathom/active.h>
#include <fathom/item-list.h>

#include <adwaita.h>
#include <glib/gi18n.h>

/* Rows shown: the queue's first entries and the pseudo-labels to review. */
#define SHOWN_ENTRIES 100
#define SHOWN_PSEUDO 100
#define THUMBNAIL_PX 48
/* BALD's Monte-Carlo dropout passes and rate for a refill (as `fathom queue --refill`). */
#define BALD_PASSES 10
#define BALD_DROPOUT 0.5f

typedef struct {
  gint64 item_id;
  double score;
  char *title;
  gint64 label_id;   /* the model's class for the item, 0 when it has none */
  double confidence; /* of that class */
} Entry;

typedef struct {
  char *title;
  gint64 label_id;
  double score;
} PseudoRow;

typedef struct {
  double x, y;
} ChartPoint;

/* What one reload reads. */
typedef struct {
  FthStore *store;
  gint64 pseudo_label_filter; /* in: the review's class (0: any) and lowest score */
  double pseudo_min_score;
  FthActiveSettings settings;
  GArray *entries;   /* Entry, rank order */
  guint n_queued;
  GArray *points;    /* ChartPoint, by number of labels */
  GPtrArray *labels; /* FthLabel */
  gboolean has_model;
  gint64 pseudo_run; /* newest pseudo-label run, 0: none */
  guint n_pseudo;    /* its pseudo-labels passing the filter */
  GArray *pseudo;    /* PseudoRow, the first SHOWN_PSEUDO of them */
} Snapshot;

struct _FthQueuePanel {
  GtkWidget parent_instance;

  GtkWidget *scroller;
  GtkButton *refill_button;
  GtkButton *prelabel_button;
  GtkButton *pseudo_button;
  GtkButton *promote_button;
  GtkButton *reject_button;
  GtkLabel *status_label;
  GtkListBox *queue_list;
  AdwComboRow *strategy_row;
  GtkSpinButton *batch_spin;
  GtkSpinButton *retrain_spin;
  GtkSpinButton *threshold_spin;
  FthLineChart *chart;
  AdwComboRow *pseudo_class_row;
  GtkStringList *pseudo_class_choices;
  GtkSpinButton *pseudo_min_spin;
  AdwActionRow *pseudo_status_row;
  GtkListBox *pseudo_list;

  FthStore *store;
  GListModel *items;
  FthThumbnailLoader *loader;
  FthJobsPanel *jobs;
  GCancellable *cancellable; /* thumbnails of the rows shown */

  guint generation;
  gboolean applying;    /* widgets are being set from a snapshot: no saves */
  FthActiveSettings settings;
  GArray *entries;      /* Entry, as shown */
  GArray *class_ids;    /* gint64: the label of review choice 1 + i */
  GPtrArray *labels;    /* FthLabel */
  gint64 pseudo_run;
  guint n_pseudo;
  GPtrArray *links;     /* JobLink of the panel's running jobs */
  FthJob *round;        /* the running fine-tune round, if any (also in links) */
  guint accuracy_series;
};

G_DEFINE_FINAL_TYPE(FthQueuePanel, fth_queue_panel, GTK_TYPE_WIDGET)

enum { SIGNAL_ITEM_ACTIVATED, SIGNAL_ITEM_DEQUEUED, SIGNAL_REFRESHED, N_SIGNALS };
static guint signals[N_SIGNALS];

static void
entry_clear(Entry *entry)
{
  g_free(entry->title);
}

static void
pseudo_row_clear(PseudoRow *row)
{
  g_free(row->title);
}

static void
snapshot_free(Snapshot *snap)
{
  g_clear_object(&snap->store);
  g_clear_pointer(&snap->entries, g_array_unref);
  g_clear_pointer(&snap->points, g_array_unref);
  g_clear_pointer(&snap->labels, g_ptr_array_unref);
  g_clear_pointer(&snap->pseudo, g_array_unref);
  g_free(snap);
}

GtkWidget *
fth_queue_panel_new(void)
{
  return g_object_new(FTH_TYPE_QUEUE_PANEL, NULL);
}

static void
show_status(FthQueuePanel *self, const char *text)
{
  gtk_label_set_text(self->status_label, text);
  gtk_widget_set_visible(GTK_WIDGET(self->status_label), text != NULL && text[0] != '\0');
}

/* ---- reading ----------------------------------------------------------------------------- */

static char *
item_title(FthStore *store, gint64 item_id)
{
  g_autoptr(FthItemRecord) record = fth_store_get_item(store, item_id, NULL);
  if (record == NULL) {
    g_autofree char *id = g_strdup_printf("%" G_GINT64_FORMAT, item_id);
    /* TRANSLATORS: an item that was deleted after it was queued, by its id */
    return g_strdup_printf(_("Item %s"), id);
  }
  g_autofree char *base = g_path_get_basename(record->path);
  if (record->member >= 0)
    return g_strdup_printf("%s #%" G_GINT64_FORMAT, base, record->member);
  return g_steal_pointer(&base);
}

/* Whether ITEM_ID has a human label; with none, the model's class for it and its score. */
static gboolean
read_item_labels(FthStore *store, gint64 item_id, gboolean *human, gint64 *model_label,
                 double *model_score, GError **error)
{
  g_autoptr(GPtrArray) anns = fth_store_list_annotations(store, item_id, error);
  if (anns == NULL)
    return FALSE;
  *human = FALSE;
  *model_label = 0;
  *model_score = 0;
  for (guint i = 0; i < anns->len; i++) {
    const FthAnnotation *ann = g_ptr_array_index(anns, i);
    if (ann->author == FTH_AUTHOR_HUMAN)
      *human = TRUE;
    else if (ann->geom == FTH_GEOM_WHOLE && (*model_label == 0 || ann->score > *model_score)) {
      *model_label = ann->label_id;
      *model_score = ann->score;
    }
  }
  return TRUE;
}

static gboolean
read_queue(Snapshot *snap, GError **error)
{
  const char *strategy = fth_acquisition_name(snap->settings.strategy);
  g_autoptr(GPtrArray) queue = fth_store_list_queue(snap->store, strategy, 0, error);
  if (queue == NULL)
    return FALSE;
  for (guint i = 0; i < queue->len; i++) {
    const FthQueueEntry *qe = g_ptr_array_index(queue, i);
    Entry entry = { .item_id = qe->item_id, .score = qe->score };
    gboolean human = FALSE;
    GError *local = NULL;
    if (!read_item_labels(snap->store, qe->item_id, &human, &entry.label_id, &entry.confidence,
                          &local)) {
      g_propagate_error(error, local);
      return FALSE;
    }
    /* Labeled since the refill (here or elsewhere): it has nothing left to ask. */
    if (human) {
      if (!fth_store_dequeue_item(snap->store, strategy, qe->item_id, error))
        return FALSE;
      continue;
    }
    snap->n_queued++;
    if (snap->entries->len < SHOWN_ENTRIES) {
      entry.title = item_title(snap->store, qe->item_id);
      g_array_append_val(snap->entries, entry);
    }
  }
  return TRUE;
}

static int
by_x(gconstpointer a, gconstpointer b)
{
  const ChartPoint *pa = a, *pb = b;
  return (pa->x > pb->x) - (pa->x < pb->x);
}

/* Held-out accuracy of every background round (metric test_acc at step = human labels). */
static gboolean
read_chart(Snapshot *snap, GError **error)
{
  g_autoptr(GPtrArray) runs = fth_store_list_runs(snap->store, "active-round", error);
  if (runs == NULL)
    return FALSE;
  for (guint i = 0; i < runs->len; i++) {
    const FthRun *run = g_ptr_array_index(runs, i);
    g_autoptr(GPtrArray) metrics = fth_store_list_metrics(snap->store, run->id, "test_acc", error);
    if (metrics == NULL)
      return FALSE;
    for (guint j = 0; j < metrics->len; j++) {
      const FthMetric *m = g_ptr_array_index(metrics, j);
      ChartPoint p = { (double)m->step, m->value };
      g_array_append_val(snap->points, p);
    }
  }
  g_array_sort(snap->points, by_x);
  return TRUE;
}

static gboolean
read_pseudo(Snapshot *snap, GError **error)
{
  g_autoptr(GPtrArray) runs = fth_store_list_runs(snap->store, "pseudo-label", error);
  if (runs == NULL)
    return FALSE;
  if (runs->len == 0)
    return TRUE;
  snap->pseudo_run = ((const FthRun *)g_ptr_array_index(runs, 0))->id;
  g_autoptr(GPtrArray) anns = fth_pseudo_list(snap->store, snap->pseudo_run, error);
  if (anns == NULL)
    return FALSE;
  for (guint i = 0; i < anns->len; i++) {
    const FthAnnotation *ann = g_ptr_array_index(anns, i);
    if ((snap->pseudo_label_filter != 0 && ann->label_id != snap->pseudo_label_filter) ||
        ann->score < snap->pseudo_min_score)
      continue;
    snap->n_pseudo++;
    if (snap->pseudo->len < SHOWN_PSEUDO) {
      PseudoRow row = { item_title(snap->store, ann->item_id), ann->label_id, ann->score };
      g_array_append_val(snap->pseudo, row);
    }
  }
  return TRUE;
}

static void
read_in_thread(GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  Snapshot *snap = task_data;
  GError *error = NULL;

  if (!fth_active_settings_load(snap->store, &snap->settings, &error) ||
      (snap->labels = fth_store_list_labels(snap->store, &error)) == NULL ||
      !read_queue(snap, &error) || !read_chart(snap, &error) || !read_pseudo(snap, &error)) {
    g_task_return_error(task, error);
    return;
  }
  g_autofree char *checkpoint = fth_active_latest_checkpoint(snap->store, &error);
  snap->has_model = checkpoint != NULL;
  if (g_error_matches(error, FTH_ACTIVE_ERROR, FTH_ACTIVE_ERROR_NO_MODEL))
    g_clear_error(&error);
  if (error != NULL)
    g_task_return_error(task, error);
  else
    g_task_return_boolean(task, TRUE);
}

/* ---- showing ----------------------------------------------------------------------------- */

static void
clear_list(GtkListBox *list)
{
  GtkWidget *child;
  while ((child = gtk_widget_get_first_child(GTK_WIDGET(list))) != NULL)
    gtk_list_box_remove(list, child);
}

static const char *
label_name(FthQueuePanel *self, gint64 label_id)
{
  const FthLabel *label = fth_labels_find(self->labels, label_id);
  return label != NULL ? label->name : "?";
}

static void
thumbnail_loaded(GObject *source, GAsyncResult *result, gpointer user_data)
{
  GtkImage *image = user_data;
  g_autoptr(GdkTexture) texture =
    fth_thumbnail_loader_load_finish(FTH_THUMBNAIL_LOADER(source), result, NULL);
  if (texture != NULL)
    gtk_image_set_from_paintable(image, GDK_PAINTABLE(texture));
  g_object_unref(image);
}

/* The rows' items, looked up in one pass over the project's items. */
static GHashTable *
find_items(FthQueuePanel *self)
{
  GHashTable *found = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, g_object_unref);
  if (self->items == NULL)
    return found;
  GHashTable *wanted = g_hash_table_new(g_int64_hash, g_int64_equal);
  for (guint i = 0; i < self->entries->len; i++)
    g_hash_table_add(wanted, &g_array_index(self->entries, Entry, i).item_id);
  guint n = g_list_model_get_n_items(self->items);
  for (guint i = 0; i < n && g_hash_table_size(wanted) > 0; i++) {
    FthItem *item = g_list_model_get_item(self->items, i);
    gint64 id = fth_item_get_id(item);
    gint64 *key = g_hash_table_lookup(wanted, &id);
    if (key != NULL) {
      g_hash_table_remove(wanted, key);
      g_hash_table_insert(found, key, item);
    } else {
      g_object_unref(item);
    }
  }
  g_hash_table_unref(wanted);
  return found;
}

static char *
entry_reason(FthQueuePanel *self, const Entry *entry)
{
  const char *strategy = fth_acquisition_name(self->settings.strategy);
  if (entry->label_id == 0)
    return g_strdup_printf("%s %.3g", strategy, entry->score);
  /* TRANSLATORS: why an item is queued: the strategy's score, then the model's class and its
   * confidence, e.g. "margin 0.03 · Coat? 55%" */
  return g_strdup_printf(_("%s %.3g · %s? %.0f%%"), strategy, entry->score,
                         label_name(self, entry->label_id), entry->confidence * 100.0);
}

static void
show_entries(FthQueuePanel *self)
{
  g_cancellable_cancel(self->cancellable);
  g_clear_object(&self->cancellable);
  self->cancellable = g_cancellable_new();
  clear_list(self->queue_list);
  GHashTable *items = find_items(self);
  for (guint i = 0; i < self->entries->len; i++) {
    const Entry *entry = &g_array_index(self->entries, Entry, i);
    GtkWidget *row = adw_action_row_new();
    g_autofree char *reason = entry_reason(self, entry);
    adw_preferences_row_set_use_markup(ADW_PREFERENCES_ROW(row), FALSE);
    adw_preferences_row_set_title(ADW_PREFERENCES_ROW(row), entry->title);
    adw_action_row_set_subtitle(ADW_ACTION_ROW(row), reason);
    gtk_list_box_row_set_activatable(GTK_LIST_BOX_ROW(row), TRUE);
    GtkWidget *image = gtk_image_new_from_icon_name("image-x-generic-symbolic");
    gtk_image_set_pixel_size(GTK_IMAGE(image), THUMBNAIL_PX);
    adw_action_row_add_prefix(ADW_ACTION_ROW(row), image);
    FthItem *item = g_hash_table_lookup(items, &entry->item_id);
    if (item != NULL && self->loader != NULL)
      fth_thumbnail_loader_load_async(self->loader, item, self->cancellable, thumbnail_loaded,
                                      g_object_ref(image));
    gtk_list_box_append(self->queue_list, row);
  }
  g_hash_table_unref(items);
  gtk_widget_set_visible(GTK_WIDGET(self->queue_list), self->entries->len > 0);
}

static void
show_pseudo(FthQueuePanel *self, const Snapshot *snap)
{
  clear_list(self->pseudo_list);
  for (guint i = 0; i < snap->pseudo->len; i++) {
    const PseudoRow *p = &g_array_index(snap->pseudo, PseudoRow, i);
    GtkWidget *row = adw_action_row_new();
    /* TRANSLATORS: a machine label and its confidence, e.g. "Coat 97%" */
    g_autofree char *what = g_strdup_printf(_("%s %.0f%%"), label_name(self, p->label_id),
                                            p->score * 100.0);
    adw_preferences_row_set_use_markup(ADW_PREFERENCES_ROW(row), FALSE);
    adw_preferences_row_set_title(ADW_PREFERENCES_ROW(row), p->title);
    adw_action_row_set_subtitle(ADW_ACTION_ROW(row), what);
    gtk_list_box_append(self->pseudo_list, row);
  }
  self->pseudo_run = snap->pseudo_run;
  self->n_pseudo = snap->n_pseudo;
  g_autofree char *status =
    snap->pseudo_run == 0
      ? g_strdup(_("No pseudo-labels yet"))
      : g_strdup_printf(ngettext("%u to review", "%u to review", snap->n_pseudo), snap->n_pseudo);
  adw_action_row_set_subtitle(self->pseudo_status_row, status);
  gtk_widget_set_visible(GTK_WIDGET(self->pseudo_list), snap->pseudo->len > 0);
}

/* The review's class choices: any, then one per label (kept when the labels did not change). */
static void
show_class_choices(FthQueuePanel *self)
{
  guint selected = adw_combo_row_get_selected(self->pseudo_class_row);
  gint64 keep = selected >= 1 && selected - 1 < self->class_ids->len
                  ? g_array_index(self->class_ids, gint64, selected - 1) : 0;
  guint n_old = g_list_model_get_n_items(G_LIST_MODEL(self->pseudo_class_choices));
  g_autoptr(GPtrArray) names = g_ptr_array_new();
  g_ptr_array_add(names, (gpointer)_("All classes"));
  g_array_set_size(self->class_ids, 0);
  guint keep_at = 0;
  for (guint i = 0; i < self->labels->len; i++) {
    const FthLabel *label = g_ptr_array_index(self->labels, i);
    g_ptr_array_add(names, label->name);
    g_array_append_val(self->class_ids, label->id);
    if (label->id == keep)
      keep_at = i + 1;
  }
  g_ptr_array_add(names, NULL);
  gtk_string_list_splice(self->pseudo_class_choices, 0, n_old, (const char *const *)names->pdata);
  adw_combo_row_set_selected(self->pseudo_class_row, keep_at);
}

static void update_sensitivity(FthQueuePanel *self);

static void
apply_snapshot(FthQueuePanel *self, Snapshot *snap)
{
  self->applying = TRUE;
  self->settings = snap->settings;
  g_clear_pointer(&self->labels, g_ptr_array_unref);
  self->labels = g_ptr_array_ref(snap->labels);
  g_clear_pointer(&self->entries, g_array_unref);
  self->entries = g_array_ref(snap->entries);
  adw_combo_row_set_selected(self->strategy_row, (guint)snap->settings.strategy);
  gtk_spin_button_set_value(self->batch_spin, snap->settings.batch);
  gtk_spin_button_set_value(self->retrain_spin, snap->settings.retrain_every);
  gtk_spin_button_set_value(self->threshold_spin, snap->settings.pseudo_threshold);
  show_class_choices(self);
  self->applying = FALSE;

  show_entries(self);
  fth_line_chart_clear(self->chart);
  for (guint i = 0; i < snap->points->len; i++) {
    const ChartPoint *p = &g_array_index(snap->points, ChartPoint, i);
    fth_line_chart_append(self->chart, self->accuracy_series, p->x, p->y);
  }
  show_pseudo(self, snap);

  g_autofree char *status = NULL;
  if (!snap->has_model)
    status = g_strdup(_("No model yet: train one on the Training page, then pre-label and "
                        "refill"));
  else if (snap->n_queued == 0)
    status = g_strdup(_("The queue is empty: refill it"));
  else
    status = g_strdup_printf(ngettext("%u item queued", "%u items queued", snap->n_queued),
                             snap->n_queued);
  show_status(self, status);
  update_sensitivity(self);
}

static void
snapshot_read(GObject *source, GAsyncResult *result, gpointer user_data)
{
  FthQueuePanel *self = FTH_QUEUE_PANEL(source);
  Snapshot *snap = g_task_get_task_data(G_TASK(result));
  g_autoptr(GError) error = NULL;
  guint generation = GPOINTER_TO_UINT(user_data);

  if (generation != self->generation || snap->store != self->store)
    return;
  if (!g_task_propagate_boolean(G_TASK(result), &error)) {
    show_status(self, error->message);
    return;
  }
  apply_snapshot(self, snap);
  g_signal_emit(self, signals[SIGNAL_REFRESHED], 0);
}

void
fth_queue_panel_reload(FthQueuePanel *self)
{
  g_return_if_fail(FTH_IS_QUEUE_PANEL(self));
  if (self->store == NULL)
    return;

  Snapshot *snap = g_new0(Snapshot, 1);
  snap->store = g_object_ref(self->store);
  guint choice = adw_combo_row_get_selected(self->pseudo_class_row);
  snap->pseudo_label_filter = choice >= 1 && choice - 1 < self->class_ids->len
                                ? g_array_index(self->class_ids, gint64, choice - 1) : 0;
  snap->pseudo_min_score = gtk_spin_button_get_value(self->pseudo_min_spin);
  snap->entries = g_array_new(FALSE, FALSE, sizeof(Entry));
  g_array_set_clear_func(snap->entries, (GDestroyNotify)entry_clear);
  snap->points = g_array_new(FALSE, FALSE, sizeof(ChartPoint));
  snap->pseudo = g_array_new(FALSE, FALSE, sizeof(PseudoRow));
  g_array_set_clear_func(snap->pseudo, (GDestroyNotify)pseudo_row_clear);
  fth_active_settings_init(&snap->settings);

  g_autoptr(GTask) task = g_task_new(self, NULL, snapshot_read,
                                     GUINT_TO_POINTER(++self->generation));
  g_task_set_task_data(task, snap, (GDestroyNotify)snapshot_free);
  g_task_run_in_thread(task, read_in_thread);
}

/* ---- jobs -------------------------------------------------------------------------------- */

typedef enum { WORK_REFILL, WORK_PRELABEL, WORK_ROUND, WORK_PSEUDO, WORK_REVIEW } WorkKind;

typedef struct {
  WorkKind kind;
  char *dir;
  FthActiveSettings settings;
  gint64 run;      /* review: the pseudo-label run */
  gint64 label_id; /* review: the class, 0 any */
  double min_score;
  gboolean promote;
} Work;

static void
work_free(Work *work)
{
  g_free(work->dir);
  g_free(work);
}

static gboolean
refill(FthStore *store, const FthActiveSettings *settings, size_t *n_queued, GError **error)
{
  FthAcqOptions opt;
  fth_acq_options_init(&opt);
  opt.strategy = settings->strategy;
  opt.batch = settings->batch;
  if (opt.strategy != FTH_ACQ_BALD)
    return fth_queue_refill(store, 0, &opt, n_queued, error);

  g_autofree char *checkpoint = fth_active_latest_checkpoint(store, error);
  if (checkpoint == NULL)
    return FALSE;
  g_autoptr(FthActivePool) pool = fth_active_pool_load(store, 0, TRUE, TRUE, error);
  if (pool == NULL)
    return FALSE;
  g_autofree float *mc = g_new(float, (gsize)BALD_PASSES * MAX(pool->n, 1) * pool->n_classes);
  return fth_active_checkpoint_mc(checkpoint, pool->emb, pool->n, pool->dim, pool->n_classes,
                                  BALD_PASSES, BALD_DROPOUT, opt.seed, mc, error) &&
         fth_queue_refill_pool(store, pool, mc, BALD_PASSES, &opt, n_queued, error);
}

static gboolean
run_round(FthStore *store, FthJob *job, GCancellable *cancellable, GError **error)
{
  g_autofree char *checkpoint = fth_active_latest_checkpoint(store, error);
  if (checkpoint == NULL)
    return FALSE;
  g_autofree char *name = g_strdup_printf("active-round-%" G_GINT64_FORMAT, g_get_real_time());
  g_autofree char *out = g_build_filename(fth_store_get_dir(store), "models", name, NULL);
  FthActiveRoundOptions opt;
  fth_active_round_options_init(&opt);
  opt.checkpoint_dir = checkpoint;
  opt.out_dir = out;
  FthActiveRoundResult res;
  return fth_active_round(store, &opt, job, cancellable, &res, error);
}

static gboolean
work_run(FthJob *job, GCancellable *cancellable, gpointer user_data, GError **error)
{
  Work *work = user_data;
  g_autoptr(FthStore) store = fth_store_open(work->dir, error);
  if (store == NULL)
    return FALSE;

  switch (work->kind) {
  case WORK_REFILL: {
    size_t n = 0;
    if (!refill(store, &work->settings, &n, error))
      return FALSE;
    g_autofree char *done = g_strdup_printf(ngettext("%zu item queued", "%zu items queued", n), n);
    fth_job_progress(job, 1, 1, done);
    return TRUE;
  }
  case WORK_PRELABEL: {
    g_autofree char *checkpoint = fth_active_latest_checkpoint(store, error);
    FthPrelabelResult res;
    return checkpoint != NULL &&
           fth_prelabel(store, checkpoint, job, cancellable, &res, error);
  }
  case WORK_ROUND:
    return run_round(store, job, cancellable, error);
  case WORK_PSEUDO: {
    gint64 run = 0;
    guint n = 0;
    /* Run 0: from the newest predictions. */
    if (!fth_pseudo_label(store, 0, work->settings.pseudo_threshold, work->settings.pseudo_cap,
                          &run, &n, error))
      return FALSE;
    g_autofree char *done = g_strdup_printf(ngettext("%u pseudo-label", "%u pseudo-labels", n), n);
    fth_job_progress(job, 1, 1, done);
    return TRUE;
  }
  case WORK_REVIEW: {
    guint n = 0;
    if (!fth_pseudo_review(store, work->run, work->label_id, work->min_score, work->promote, &n,
                           error))
      return FALSE;
    g_autofree char *done =
      work->promote ? g_strdup_printf(ngettext("%u promoted", "%u promoted", n), n)
                    : g_strdup_printf(ngettext("%u rejected", "%u rejected", n), n);
    fth_job_progress(job, 1, 1, done);
    return TRUE;
  }
  default:
    g_return_val_if_reached(FALSE);
  }
}

typedef struct {
  FthQueuePanel *panel; /* not owned: the link is removed in dispose */
  FthJob *job;
  guint subscription;
} JobLink;

static void
job_link_free(JobLink *link)
{
  fth_job_unsubscribe(link->job, link->subscription);
  g_object_unref(link->job);
  g_free(link);
}

static void
update_sensitivity(FthQueuePanel *self)
{
  gboolean idle = self->store != NULL && self->links->len == 0;
  gtk_widget_set_sensitive(GTK_WIDGET(self->refill_button), idle);
  gtk_widget_set_sensitive(GTK_WIDGET(self->prelabel_button), idle);
  gtk_widget_set_sensitive(GTK_WIDGET(self->pseudo_button), idle);
  gtk_widget_set_sensitive(GTK_WIDGET(self->promote_button), idle && self->n_pseudo > 0);
  gtk_widget_set_sensitive(GTK_WIDGET(self->reject_button), idle && self->n_pseudo > 0);
}

static void
job_event(FthJob *job, const FthJobEvent *event, gpointer user_data)
{
  JobLink *link = user_data;
  FthQueuePanel *self = link->panel;

  if (!fth_job_event_is_terminal(event))
    return;
  if (self->round == job)
    self->round = NULL;
  if (event->type == FTH_JOB_EVENT_FAILED && event->error != NULL)
    show_status(self, event->error->message);
  g_ptr_array_remove(self->links, link);
  update_sensitivity(self);
  fth_queue_panel_reload(self);
}

static FthJob *
start_work(FthQueuePanel *self, WorkKind kind, gboolean promote, const char *name,
           const char *title)
{
  Work *work = g_new0(Work, 1);
  work->kind = kind;
  work->promote = promote;
  work->dir = g_strdup(fth_store_get_dir(self->store));
  work->settings = self->settings;
  work->min_score = gtk_spin_button_get_value(self->pseudo_min_spin);
  guint choice = adw_combo_row_get_selected(self->pseudo_class_row);
  work->label_id = choice >= 1 && choice - 1 < self->class_ids->len
                     ? g_array_index(self->class_ids, gint64, choice - 1) : 0;
  work->run = self->pseudo_run;

  FthJob *job = fth_job_new(name, work_run, work, (GDestroyNotify)work_free);
  JobLink *link = g_new0(JobLink, 1);
  link->panel = self;
  link->job = job; /* the link owns the reference */
  link->subscription = fth_job_subscribe(job, NULL, job_event, link, NULL);
  g_ptr_array_add(self->links, link);
  if (self->jobs != NULL)
    fth_jobs_panel_add(self->jobs, job, title);
  fth_job_start(job);
  update_sensitivity(self);
  return job;
}

static void
refill_clicked(FthQueuePanel *self)
{
  start_work(self, WORK_REFILL, FALSE, "queue-refill", _("Refilling the labeling queue"));
}

static void
prelabel_clicked(FthQueuePanel *self)
{
  start_work(self, WORK_PRELABEL, FALSE, "autolabel", _("Pre-labeling with the latest model"));
}

static void
pseudo_clicked(FthQueuePanel *self)
{
  start_work(self, WORK_PSEUDO, FALSE, "pseudo-label",
             _("Taking confident predictions as pseudo-labels"));
}

static void
review(FthQueuePanel *self, gboolean promote)
{
  if (self->pseudo_run != 0)
    start_work(self, WORK_REVIEW, promote, "pseudo-review",
               promote ? _("Promoting pseudo-labels") : _("Rejecting pseudo-labels"));
}

static void
promote_clicked(FthQueuePanel *self)
{
  review(self, TRUE);
}

static void
reject_clicked(FthQueuePanel *self)
{
  review(self, FALSE);
}

static void
pseudo_filter_changed(FthQueuePanel *self)
{
  if (!self->applying)
    fth_queue_panel_reload(self);
}

/* ---- settings ---------------------------------------------------------------------------- */

typedef struct {
  FthStore *store;
  FthActiveSettings settings;
} SettingsSave;

static void
settings_save_free(SettingsSave *save)
{
  g_object_unref(save->store);
  g_free(save);
}

static void
save_in_thread(GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  SettingsSave *save = task_data;
  GError *error = NULL;
  if (fth_active_settings_save(save->store, &save->settings, &error))
    g_task_return_boolean(task, TRUE);
  else
    g_task_return_error(task, error);
}

static void
settings_saved(GObject *source, GAsyncResult *result, gpointer user_data)
{
  FthQueuePanel *self = FTH_QUEUE_PANEL(source);
  g_autoptr(GError) error = NULL;
  if (!g_task_propagate_boolean(G_TASK(result), &error))
    show_status(self, error->message);
  else if (GPOINTER_TO_INT(user_data))
    fth_queue_panel_reload(self); /* another strategy: its own queue */
}

static void
settings_changed(FthQueuePanel *self)
{
  if (self->applying || self->store == NULL)
    return;
  SettingsSave *save = g_new0(SettingsSave, 1);
  save->store = g_object_ref(self->store);
  save->settings = self->settings;
  FthActiveSettings *settings = &save->settings;
  settings->strategy = (FthAcquisition)adw_combo_row_get_selected(self->strategy_row);
  settings->batch = (guint)gtk_spin_button_get_value_as_int(self->batch_spin);
  settings->retrain_every = (guint)gtk_spin_button_get_value_as_int(self->retrain_spin);
  settings->pseudo_threshold = gtk_spin_button_get_value(self->threshold_spin);
  gboolean other_queue = settings->strategy != self->settings.strategy;
  self->settings = *settings;

  g_autoptr(GTask) task = g_task_new(self, NULL, settings_saved, GINT_TO_POINTER(other_queue));
  g_task_set_task_data(task, save, (GDestroyNotify)settings_save_free);
  g_task_run_in_thread(task, save_in_thread);
}

/* ---- the labeling loop ------------------------------------------------------------------- */

typedef struct {
  FthStore *store;
  gint64 item_id;
  char *strategy;
  FthActiveSettings settings;
  gboolean check_due;
  gboolean labeled; /* out: the item has a human label (and left the queue) */
  gboolean due;     /* out: a round is due and there is a model to fine-tune */
} LabelCheck;

static void
label_check_free(LabelCheck *check)
{
  g_object_unref(check->store);
  g_free(check->strategy);
  g_free(check);
}

static void
check_in_thread(GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  LabelCheck *check = task_data;
  GError *error = NULL;
  gint64 model_label;
  double model_score;

  if (!read_item_labels(check->store, check->item_id, &check->labeled, &model_label,
                        &model_score, &error) ||
      (check->labeled &&
       !fth_store_dequeue_item(check->store, check->strategy, check->item_id, &error)) ||
      (check->check_due &&
       !fth_active_round_due(check->store, &check->settings, &check->due, NULL, &error))) {
    g_task_return_error(task, error);
    return;
  }
  if (check->due) {
    g_autofree char *checkpoint = fth_active_latest_checkpoint(check->store, &error);
    check->due = checkpoint != NULL;
    if (g_error_matches(error, FTH_ACTIVE_ERROR, FTH_ACTIVE_ERROR_NO_MODEL))
      g_clear_error(&error);
    if (error != NULL) {
      g_task_return_error(task, error);
      return;
    }
  }
  g_task_return_boolean(task, TRUE);
}

static void
label_checked(GObject *source, GAsyncResult *result, gpointer user_data)
{
  FthQueuePanel *self = FTH_QUEUE_PANEL(source);
  LabelCheck *check = g_task_get_task_data(G_TASK(result));
  g_autoptr(GError) error = NULL;

  if (GPOINTER_TO_UINT(user_data) != self->generation)
    return; /* another project, or a reload that has already read this */
  if (!g_task_propagate_boolean(G_TASK(result), &error)) {
    show_status(self, error->message);
    return;
  }
  if (check->labeled) {
    for (guint i = 0; i < self->entries->len; i++) {
      if (g_array_index(self->entries, Entry, i).item_id != check->item_id)
        continue;
      gint64 next = i + 1 < self->entries->len
                      ? g_array_index(self->entries, Entry, i + 1).item_id : 0;
      g_array_remove_index(self->entries, i);
      gtk_list_box_remove(self->queue_list,
                          GTK_WIDGET(gtk_list_box_get_row_at_index(self->queue_list, (int)i)));
      g_signal_emit(self, signals[SIGNAL_ITEM_DEQUEUED], 0, check->item_id, next);
      break;
    }
  }
  if (check->due && self->round == NULL)
    self->round = start_work(self, WORK_ROUND, FALSE, "active-round",
                             _("Fine-tuning on the new labels"));
}

void
fth_queue_panel_item_annotated(FthQueuePanel *self, gint64 item_id)
{
  g_return_if_fail(FTH_IS_QUEUE_PANEL(self));
  if (self->store == NULL)
    return;

  LabelCheck *check = g_new0(LabelCheck, 1);
  check->store = g_object_ref(self->store);
  check->item_id = item_id;
  check->strategy = g_strdup(fth_acquisition_name(self->settings.strategy));
  check->settings = self->settings;
  check->check_due = self->round == NULL;
  g_autoptr(GTask) task = g_task_new(self, NULL, label_checked,
                                     GUINT_TO_POINTER(self->generation));
  g_task_set_task_data(task, check, (GDestroyNotify)label_check_free);
  g_task_run_in_thread(task, check_in_thread);
}

/* ---- the rest ---------------------------------------------------------------------------- */

static void
queue_row_activated(FthQueuePanel *self, GtkListBoxRow *row)
{
  int i = gtk_list_box_row_get_index(row);
  if (i >= 0 && (guint)i < self->entries->len)
    g_signal_emit(self, signals[SIGNAL_ITEM_ACTIVATED], 0,
                  g_array_index(self->entries, Entry, i).item_id);
}

void
fth_queue_panel_set_project(FthQueuePanel *self, FthStore *store, GListModel *items,
                            FthThumbnailLoader *loader, FthJobsPanel *jobs)
{
  g_return_if_fail(FTH_IS_QUEUE_PANEL(self));

  self->generation++;
  g_set_object(&self->store, store);
  g_set_object(&self->items, items);
  g_set_object(&self->loader, loader);
  g_set_object(&self->jobs, jobs);
  /* Jobs of the previous project run on, in the jobs panel; this panel no longer follows them. */
  g_ptr_array_set_size(self->links, 0);
  self->round = NULL;
  self->pseudo_run = 0;
  self->n_pseudo = 0;
  g_array_set_size(self->entries, 0);
  clear_list(self->queue_list);
  clear_list(self->pseudo_list);
  fth_line_chart_clear(self->chart);
  show_status(self, NULL);
  update_sensitivity(self);
  fth_queue_panel_reload(self);
}

guint
fth_queue_panel_get_n_entries(FthQueuePanel *self)
{
  g_return_val_if_fail(FTH_IS_QUEUE_PANEL(self), 0);
  return self->entries->len;
}

gint64
fth_queue_panel_get_entry(FthQueuePanel *self, guint position)
{
  g_return_val_if_fail(FTH_IS_QUEUE_PANEL(self), 0);
  g_return_val_if_fail(position < self->entries->len, 0);
  return g_array_index(self->entries, Entry, position).item_id;
}

gint64
fth_queue_panel_step(FthQueuePanel *self, gint64 item_id, gboolean forward)
{
  g_return_val_if_fail(FTH_IS_QUEUE_PANEL(self), 0);
  guint n = self->entries->len;
  for (guint i = 0; i < n; i++) {
    if (g_array_index(self->entries, Entry, i).item_id != item_id)
      continue;
    if (forward)
      return i + 1 < n ? g_array_index(self->entries, Entry, i + 1).item_id : 0;
    return i > 0 ? g_array_index(self->entries, Entry, i - 1).item_id : 0;
  }
  return forward && n > 0 ? g_array_index(self->entries, Entry, 0).item_id : 0;
}

gboolean
fth_queue_panel_is_busy(FthQueuePanel *self)
{
  g_return_val_if_fail(FTH_IS_QUEUE_PANEL(self), FALSE);
  return self->links->len > 0;
}

FthLineChart *
fth_queue_panel_get_chart(FthQueuePanel *self)
{
  g_return_val_if_fail(FTH_IS_QUEUE_PANEL(self), NULL);
  return self->chart;
}

guint
fth_queue_panel_get_n_pseudo(FthQueuePanel *self)
{
  g_return_val_if_fail(FTH_IS_QUEUE_PANEL(self), 0);
  return self->n_pseudo;
}

static void
fth_queue_panel_dispose(GObject *object)
{
  FthQueuePanel *self = FTH_QUEUE_PANEL(object);

  self->generation++;
  g_cancellable_cancel(self->cancellable);
  g_clear_object(&self->cancellable);
  if (self->links != NULL)
    g_ptr_array_set_size(self->links, 0);
  self->round = NULL;
  g_clear_object(&self->store);
  g_clear_object(&self->items);
  g_clear_object(&self->loader);
  g_clear_object(&self->jobs);
  gtk_widget_dispose_template(GTK_WIDGET(object), FTH_TYPE_QUEUE_PANEL);
  G_OBJECT_CLASS(fth_queue_panel_parent_class)->dispose(object);
}

static void
fth_queue_panel_finalize(GObject *object)
{
  FthQueuePanel *self = FTH_QUEUE_PANEL(object);

  g_ptr_array_unref(self->links);
  g_array_unref(self->entries);
  g_array_unref(self->class_ids);
  g_clear_pointer(&self->labels, g_ptr_array_unref);
  G_OBJECT_CLASS(fth_queue_panel_parent_class)->finalize(object);
}

static void
fth_queue_panel_class_init(FthQueuePanelClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS(klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);

  object_class->dispose = fth_queue_panel_dispose;
  object_class->finalize = fth_queue_panel_finalize;

  /* A queue row was activated: the item id. */
  signals[SIGNAL_ITEM_ACTIVATED] = g_signal_new("item-activated", G_TYPE_FROM_CLASS(klass),
                                                G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                                G_TYPE_NONE, 1, G_TYPE_INT64);
  /* A labeled item left the queue: its id and the id of the entry after it (0: none). */
  signals[SIGNAL_ITEM_DEQUEUED] = g_signal_new("item-dequeued", G_TYPE_FROM_CLASS(klass),
                                               G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                               G_TYPE_NONE, 2, G_TYPE_INT64, G_TYPE_INT64);
  /* A reload is shown. */
  signals[SIGNAL_REFRESHED] = g_signal_new("refreshed", G_TYPE_FROM_CLASS(klass),
                                           G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL, G_TYPE_NONE,
                                           0);

  g_type_ensure(FTH_TYPE_LINE_CHART);
  gtk_widget_class_set_template_from_resource(widget_class,
                                              "/io/github/fathom/Workbench/fth-queue-panel.ui");
  gtk_widget_class_bind_template_child(widget_class, FthQueuePanel, scroller);
  gtk_widget_class_bind_template_child(widget_class, FthQueuePanel, refill_button);
  gtk_widget_class_bind_template_child(widget_class, FthQueuePanel, prelabel_button);
  gtk_widget_class_bind_template_child(widget_class, FthQueuePanel, pseudo_button);
  gtk_widget_class_bind_template_child(widget_class, FthQueuePanel, promote_button);
  gtk_widget_class_bind_template_child(widget_class, FthQueuePanel, reject_button);
  gtk_widget_class_bind_template_child(widget_class, FthQueuePanel, status_label);
  gtk_widget_class_bind_template_child(widget_class, FthQueuePanel, queue_list);
  gtk_widget_class_bind_template_child(widget_class, FthQueuePanel, strategy_row);
  gtk_widget_class_bind_template_child(widget_class, FthQueuePanel, batch_spin);
  gtk_widget_class_bind_template_child(widget_class, FthQueuePanel, retrain_spin);
  gtk_widget_class_bind_template_child(widget_class, FthQueuePanel, threshold_spin);
  gtk_widget_class_bind_template_child(widget_class, FthQueuePanel, chart);
  gtk_widget_class_bind_template_child(widget_class, FthQueuePanel, pseudo_class_row);
  gtk_widget_class_bind_template_child(widget_class, FthQueuePanel, pseudo_class_choices);
  gtk_widget_class_bind_template_child(widget_class, FthQueuePanel, pseudo_min_spin);
  gtk_widget_class_bind_template_child(widget_class, FthQueuePanel, pseudo_status_row);
  gtk_widget_class_bind_template_child(widget_class, FthQueuePanel, pseudo_list);
  gtk_widget_class_bind_template_callback(widget_class, refill_clicked);
  gtk_widget_class_bind_template_callback(widget_class, prelabel_clicked);
  gtk_widget_class_bind_template_callback(widget_class, pseudo_clicked);
  gtk_widget_class_bind_template_callback(widget_class, promote_clicked);
  gtk_widget_class_bind_template_callback(widget_class, reject_clicked);
  gtk_widget_class_bind_template_callback(widget_class, pseudo_filter_changed);
  gtk_widget_class_bind_template_callback(widget_class, queue_row_activated);
  gtk_widget_class_set_layout_manager_type(widget_class, GTK_TYPE_BIN_LAYOUT);
}

static void
fth_queue_panel_init(FthQueuePanel *self)
{
  gtk_widget_init_template(GTK_WIDGET(self));

  self->entries = g_array_new(FALSE, FALSE, sizeof(Entry));
  g_array_set_clear_func(self->entries, (GDestroyNotify)entry_clear);
  self->class_ids = g_array_new(FALSE, FALSE, sizeof(gint64));
  self->links = g_ptr_array_new_with_free_func((GDestroyNotify)job_link_free);
  fth_active_settings_init(&self->settings);

  /* The strategies in FthAcquisition order, by their names (also what the queue says). */
  g_autoptr(GtkStringList) strategies = gtk_string_list_new(NULL);
  for (int s = 0; s < FTH_ACQ_N_STRATEGIES; s++)
    gtk_string_list_append(strategies, fth_acquisition_name((FthAcquisition)s));
  adw_combo_row_set_model(self->strategy_row, G_LIST_MODEL(strategies));
  adw_combo_row_set_selected(self->strategy_row, (guint)self->settings.strategy);

  g_signal_connect_swapped(self->strategy_row, "notify::selected", G_CALLBACK(settings_changed),
                           self);
  GtkSpinButton *spins[] = { self->batch_spin, self->retrain_spin, self->threshold_spin };
  for (guint i = 0; i < G_N_ELEMENTS(spins); i++)
    g_signal_connect_swapped(spins[i], "value-changed", G_CALLBACK(settings_changed), self);

  GdkRGBA blue = { 0.21f, 0.52f, 0.89f, 1.0f };
  self->accuracy_series = fth_line_chart_add_series(self->chart, _("held-out accuracy"), &blue);
  show_status(self, NULL);
  update_sensitivity(self);
}
