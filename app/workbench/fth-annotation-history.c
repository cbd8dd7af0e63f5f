/* fth-annotation-history.c: a queue of store writes run one at a time on a worker thread, and
 * the undo/redo list they build. Entries are only touched on the main thread; a worker gets a
 * copy of what it needs and hands back what it learned (ids, the state it replaced). */
#include "fth-annotation-history.h"

typedef enum { EDIT_SET_CLASS, EDIT_ADD, EDIT_UPDATE, EDIT_REMOVE } EditKind;
typedef enum { RUN_DO, RUN_UNDO, RUN_REDO } RunMode;

typedef struct {
  EditKind kind;
  gint64 item_id;
  gint64 class_before, class_after; /* SET_CLASS: label ids, 0 for none */
  FthAnnotation *before;            /* UPDATE, REMOVE: as it was */
  FthAnnotation *after;             /* ADD, UPDATE: as it is to be */
} Entry;

/* One write for the worker: a copy of the entry, and what the worker found out. */
typedef struct {
  Entry *entry;     /* the history's entry (main thread only) */
  Entry work;       /* the worker's copy */
  RunMode mode;
  gint64 new_id;    /* an annotation (re-)added under this id */
  gint64 old_id;    /* ... which had this id before */
} Job;

struct _FthAnnotationHistory {
  GObject parent_instance;

  FthStore *store;
  GPtrArray *entries; /* Entry; [0, done) are applied, [done, len) can be redone */
  guint done;
  GQueue pending;     /* Job, waiting for the one in flight */
  gboolean running;
};

G_DEFINE_FINAL_TYPE(FthAnnotationHistory, fth_annotation_history, G_TYPE_OBJECT)

enum { SIGNAL_APPLIED, SIGNAL_FAILED, N_SIGNALS };
static guint signals[N_SIGNALS];

static FthAnnotation *
annotation_copy(const FthAnnotation *ann)
{
  if (ann == NULL)
    return NULL;
  FthAnnotation *copy = g_memdup2(ann, sizeof *ann);
  copy->points = ann->n_points > 0 ? g_memdup2(ann->points, sizeof(double) * 2 * ann->n_points)
                                   : NULL;
  return copy;
}

static void
entry_clear(Entry *entry)
{
  g_clear_pointer(&entry->before, fth_annotation_free);
  g_clear_pointer(&entry->after, fth_annotation_free);
}

/* Entries are reference-counted: a queued job keeps its entry even if a new edit drops it
 * from the redo part of the list meanwhile. */
static Entry *
entry_new(EditKind kind)
{
  Entry *entry = g_rc_box_new0(Entry);
  entry->kind = kind;
  return entry;
}

static void
entry_unref(Entry *entry)
{
  g_rc_box_release_full(entry, (GDestroyNotify)entry_clear);
}

static void
job_free(Job *job)
{
  entry_unref(job->entry);
  entry_clear(&job->work);
  g_free(job);
}

FthAnnotationHistory *
fth_annotation_history_new(FthStore *store)
{
  g_return_val_if_fail(FTH_IS_STORE(store), NULL);
  FthAnnotationHistory *self = g_object_new(FTH_TYPE_ANNOTATION_HISTORY, NULL);
  self->store = g_object_ref(store);
  return self;
}

/* ---- the worker --------------------------------------------------------------------------- */

/* The label of ITEM_ID's human whole-item class, 0 for none. */
static gboolean
current_class(FthStore *store, gint64 item_id, gint64 *label_id, GError **error)
{
  g_autoptr(GPtrArray) anns = fth_store_list_annotations(store, item_id, error);
  if (anns == NULL)
    return FALSE;
  *label_id = 0;
  for (guint i = 0; i < anns->len; i++) {
    const FthAnnotation *ann = g_ptr_array_index(anns, i);
    if (ann->geom == FTH_GEOM_WHOLE && ann->author == FTH_AUTHOR_HUMAN)
      *label_id = ann->label_id;
  }
  return TRUE;
}

static gboolean
add_again(FthStore *store, Job *job, FthAnnotation *ann, GError **error)
{
  job->old_id = ann->id;
  if (!fth_store_add_annotation(store, ann, &job->new_id, error))
    return FALSE;
  ann->id = job->new_id;
  return TRUE;
}

static gboolean
run_job(FthStore *store, Job *job, GError **error)
{
  Entry *e = &job->work;

  switch (e->kind) {
  case EDIT_SET_CLASS:
    if (job->mode == RUN_DO && !current_class(store, e->item_id, &e->class_before, error))
      return FALSE;
    return fth_store_set_class(store, e->item_id,
                               job->mode == RUN_UNDO ? e->class_before : e->class_after,
                               FTH_AUTHOR_HUMAN, 0, 1.0, NULL, error);
  case EDIT_ADD:
    if (job->mode == RUN_UNDO)
      return fth_store_remove_annotation(store, e->after->id, error);
    return add_again(store, job, e->after, error);
  case EDIT_UPDATE:
    if (job->mode == RUN_DO) {
      e->before = fth_store_get_annotation(store, e->after->id, error);
      if (e->before == NULL)
        return FALSE;
      e->item_id = e->before->item_id;
    }
    return fth_store_update_annotation(store, job->mode == RUN_UNDO ? e->before : e->after,
                                       error);
  case EDIT_REMOVE:
    if (job->mode == RUN_UNDO)
      return add_again(store, job, e->before, error);
    if (job->mode == RUN_DO) {
      gint64 id = e->before->id;
      fth_annotation_free(e->before);
      e->before = fth_store_get_annotation(store, id, error);
      if (e->before == NULL)
        return FALSE;
      e->item_id = e->before->item_id;
    }
    return fth_store_remove_annotation(store, e->before->id, error);
  default:
    g_return_val_if_reached(FALSE);
  }
}

static void
job_in_thread(GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  FthAnnotationHistory *self = source;
  GError *error = NULL;

  if (run_job(self->store, task_data, &error))
    g_task_return_boolean(task, TRUE);
  else
    g_task_return_error(task, error);
}

/* ---- the queue (main thread) ------------------------------------------------------------- */

static void dispatch(FthAnnotationHistory *self);

/* An annotation re-added under a new id: every entry that names it follows. */
static void
remap_id(FthAnnotationHistory *self, gint64 old_id, gint64 new_id)
{
  for (guint i = 0; i < self->entries->len; i++) {
    Entry *entry = g_ptr_array_index(self->entries, i);
    if (entry->before != NULL && entry->before->id == old_id)
      entry->before->id = new_id;
    if (entry->after != NULL && entry->after->id == old_id)
      entry->after->id = new_id;
  }
}

static void
job_done(GObject *source, GAsyncResult *result, gpointer user_data)
{
  FthAnnotationHistory *self = FTH_ANNOTATION_HISTORY(source);
  Job *job = g_task_get_task_data(G_TASK(result));
  g_autoptr(GError) error = NULL;

  self->running = FALSE;
  if (!g_task_propagate_boolean(G_TASK(result), &error)) {
    /* The store is as before the job: put the list back the same way, if the entry is still
     * where the job left it. */
    guint index = 0;
    gboolean present = g_ptr_array_find(self->entries, job->entry, &index);
    if (job->mode == RUN_DO && present) {
      g_ptr_array_remove_index(self->entries, index);
      if (index < self->done)
        self->done--;
    } else if (job->mode == RUN_UNDO && present && index == self->done) {
      self->done++;
    } else if (job->mode == RUN_REDO && present && index + 1 == self->done) {
      self->done--;
    }
    g_signal_emit(self, signals[SIGNAL_FAILED], 0, error->message);
  } else {
    Entry *entry = job->entry;
    if (job->mode == RUN_DO) {
      entry->class_before = job->work.class_before;
      entry->item_id = job->work.item_id;
      if (job->work.before != NULL) {
        g_clear_pointer(&entry->before, fth_annotation_free);
        entry->before = annotation_copy(job->work.before);
      }
    }
    if (job->new_id != 0) {
      if (entry->kind == EDIT_ADD && entry->after->id == 0)
        entry->after->id = job->new_id; /* first time: nothing else names it yet */
      else
        remap_id(self, job->old_id, job->new_id);
    }
    g_signal_emit(self, signals[SIGNAL_APPLIED], 0, entry->item_id);
  }
  dispatch(self);
}

static void
dispatch(FthAnnotationHistory *self)
{
  if (self->running || self->pending.length == 0)
    return;

  Job *job = g_queue_pop_head(&self->pending);
  Entry *entry = job->entry;
  job->work = *entry;
  job->work.before = annotation_copy(entry->before);
  job->work.after = annotation_copy(entry->after);

  self->running = TRUE;
  g_autoptr(GTask) task = g_task_new(self, NULL, job_done, NULL);
  g_task_set_task_data(task, job, (GDestroyNotify)job_free);
  g_task_run_in_thread(task, job_in_thread);
}

static void
enqueue(FthAnnotationHistory *self, Entry *entry, RunMode mode)
{
  Job *job = g_new0(Job, 1);
  job->entry = g_rc_box_acquire(entry);
  job->mode = mode;
  g_queue_push_tail(&self->pending, job);
  dispatch(self);
}

/* A new edit: whatever could be redone is gone. */
static void
push(FthAnnotationHistory *self, Entry *entry)
{
  g_ptr_array_set_size(self->entries, self->done);
  g_ptr_array_add(self->entries, entry);
  self->done = self->entries->len;
  enqueue(self, entry, RUN_DO);
}

void
fth_annotation_history_set_class(FthAnnotationHistory *self, gint64 item_id, gint64 label_id)
{
  g_return_if_fail(FTH_IS_ANNOTATION_HISTORY(self));
  Entry *entry = entry_new(EDIT_SET_CLASS);
  entry->item_id = item_id;
  entry->class_after = label_id;
  push(self, entry);
}

void
fth_annotation_history_add(FthAnnotationHistory *self, const FthAnnotation *ann)
{
  g_return_if_fail(FTH_IS_ANNOTATION_HISTORY(self));
  g_return_if_fail(ann != NULL);
  Entry *entry = entry_new(EDIT_ADD);
  entry->item_id = ann->item_id;
  entry->after = annotation_copy(ann);
  entry->after->id = 0;
  push(self, entry);
}

void
fth_annotation_history_update(FthAnnotationHistory *self, const FthAnnotation *ann)
{
  g_return_if_fail(FTH_IS_ANNOTATION_HISTORY(self));
  g_return_if_fail(ann != NULL && ann->id > 0);
  Entry *entry = entry_new(EDIT_UPDATE);
  entry->item_id = ann->item_id;
  entry->after = annotation_copy(ann);
  push(self, entry);
}

void
fth_annotation_history_remove(FthAnnotationHistory *self, gint64 annotation_id)
{
  g_return_if_fail(FTH_IS_ANNOTATION_HISTORY(self));
  /* The worker reads what it removes (for undo); until then only the id is known. */
  Entry *entry = entry_new(EDIT_REMOVE);
  entry->before = fth_annotation_new();
  entry->before->id = annotation_id;
  push(self, entry);
}

void
fth_annotation_history_undo(FthAnnotationHistory *self)
{
  g_return_if_fail(FTH_IS_ANNOTATION_HISTORY(self));
  if (self->done == 0)
    return;
  self->done--;
  enqueue(self, g_ptr_array_index(self->entries, self->done), RUN_UNDO);
}

void
fth_annotation_history_redo(FthAnnotationHistory *self)
{
  g_return_if_fail(FTH_IS_ANNOTATION_HISTORY(self));
  if (self->done >= self->entries->len)
    return;
  enqueue(self, g_ptr_array_index(self->entries, self->done), RUN_REDO);
  self->done++;
}

gboolean
fth_annotation_history_can_undo(FthAnnotationHistory *self)
{
  g_return_val_if_fail(FTH_IS_ANNOTATION_HISTORY(self), FALSE);
  return self->done > 0;
}

gboolean
fth_annotation_history_can_redo(FthAnnotationHistory *self)
{
  g_return_val_if_fail(FTH_IS_ANNOTATION_HISTORY(self), FALSE);
  return self->done < self->entries->len;
}

gboolean
fth_annotation_history_is_busy(FthAnnotationHistory *self)
{
  g_return_val_if_fail(FTH_IS_ANNOTATION_HISTORY(self), FALSE);
  return self->running || self->pending.length > 0;
}

static void
fth_annotation_history_finalize(GObject *object)
{
  FthAnnotationHistory *self = FTH_ANNOTATION_HISTORY(object);

  /* A job in flight holds a reference, so nothing is running; queued jobs never started. */
  g_queue_clear_full(&self->pending, (GDestroyNotify)job_free);
  g_ptr_array_unref(self->entries);
  g_clear_object(&self->store);
  G_OBJECT_CLASS(fth_annotation_history_parent_class)->finalize(object);
}

static void
fth_annotation_history_class_init(FthAnnotationHistoryClass *klass)
{
  G_OBJECT_CLASS(klass)->finalize = fth_annotation_history_finalize;

  /* An edit, undo or redo is in the store: the item it touched. */
  signals[SIGNAL_APPLIED] = g_signal_new("applied", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST,
                                         0, NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_INT64);
  /* The store refused an edit, undo or redo: its message. */
  signals[SIGNAL_FAILED] = g_signal_new("failed", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST,
                                        0, NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_STRING);
}

static void
fth_annotation_history_init(FthAnnotationHistory *self)
{
  self->entries = g_ptr_array_new_with_free_func((GDestroyNotify)entry_unref);
  g_queue_init(&self->pending);
}
