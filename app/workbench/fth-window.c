/* fth-window.c: the start page, opening a project off the main thread, and the project page
 * (summary, labels, item grid). Every file access runs in a GTask thread; the main loop only
 * applies results. */
#include "fth-window.h"

#include "fth-annotation-history.h"
#include "fth-item-cell.h"
#include "fth-item-view.h"
#include "fth-jobs-panel.h"
#include "fth-label-dialog.h"
#include "fth-label-palette.h"
#include "fth-queue-panel.h"
#include "fth-recent-projects.h"
#include "fth-text-span-view.h"
#include "fth-training-page.h"
#include "fth-tune-page.h"
#include "fth-thumbnail-loader.h"
#include "fth-waveform-view.h"

#include <fathom/import.h>
#include <glib/gi18n.h>

/* Thumbnails are decoded at most this big; the zoom steps only change how big they show. */
#define THUMBNAIL_DECODE_SIZE 192
#define THUMBNAIL_CACHE_CAPACITY 1024
/* The item view's pictures: full size (within the decoders' limits); three kept (the item
 * and its neighbours for a/d), since one 8k x 8k picture alone is 192 MiB. */
#define IMAGE_DECODE_SIZE 8192
#define IMAGE_CACHE_CAPACITY 3
#define CANVAS_ZOOM_STEP 1.25
/* A job that ran this long is announced when it ends; shorter ones the user just watched. */
#define LONG_JOB_S 10.0

static const int zoom_steps[] = { 48, 64, 96, 128, 160, 192 };
#define DEFAULT_ZOOM_STEP 2

struct _FthWindow {
  AdwApplicationWindow parent_instance;

  AdwToastOverlay *toast_overlay;
  AdwViewSwitcherTitle *window_title;
  AdwViewStack *view_stack;
  FthTrainingPage *training_page;
  FthTunePage *tune_page;
  FthQueuePanel *queue_panel;
  GtkStack *stack;
  AdwPreferencesGroup *recent_group;
  GtkListBox *recent_list;
  GtkSpinner *loading_spinner;
  GtkLabel *loading_label;
  AdwFlap *flap;
  GtkLabel *project_name_label;
  GtkLabel *project_dir_label;
  GtkLabel *counts_label;
  FthLabelPalette *label_palette;
  FthJobsPanel *jobs_panel;
  GtkStack *items_stack;
  GtkGridView *items_grid;
  GtkSearchEntry *search_entry;
  GtkWidget *filter_bar;
  FthItemView *item_view;
  GtkDropDown *filter_dropdown;
  GtkStringList *filter_choices;

  FthStore *store;
  FthItemList *items;
  FthThumbnailLoader *loader;
  double long_job_s; /* jobs that ran at least this long are announced when they end */
  FthThumbnailLoader *images;
  FthAnnotationHistory *history;
  guint grid_label_position; /* grid item labeled with set-label, reselected after refresh */
  GCancellable *open_cancellable;
  GCancellable *recent_cancellable;
  GtkFileChooserNative *chooser;
  GSettings *settings; /* window state; NULL when the schema is not installed */
  GPtrArray *cells; /* the grid's live FthItemCells (not owned), resized on zoom */
  int zoom_step;
  gint64 n_items;    /* in the project, unfiltered */
  GArray *label_ids; /* gint64: the label of filter choice FIRST_LABEL_CHOICE + i */
  GHashTable *hotkeys; /* hotkey (one character) -> label id (gint64 *) */
  GPtrArray *labels;   /* FthLabel of the open project, as last read */
  GtkWidget *waveform_view;  /* audio items, page "audio" of items_stack */
  GtkWidget *text_span_view; /* text items, page "text" */
  gint64 media_item_id;      /* the item the audio or text page shows */
  gboolean populating_filters;
  gint64 predicted_filter;     /* a predicted class the grid is filtered by (from a matrix
                                * cell), 0 for none; dropped when the user changes a filter */
  FthSplit split_filter;       /* with it, that matrix's split; FTH_SPLIT_ANY for none */
  gboolean keep_predicted;
};

/* The filter drop-down: all items, unlabeled items, then one choice per label. */
enum { CHOICE_ALL, CHOICE_UNLABELED, FIRST_LABEL_CHOICE };

G_DEFINE_FINAL_TYPE(FthWindow, fth_window, ADW_TYPE_APPLICATION_WINDOW)

enum {
  SIGNAL_PROJECT_OPENED,
  SIGNAL_OPEN_FAILED,
  SIGNAL_ITEM_ANNOTATED,
  SIGNAL_LABELS_CHANGED,
  SIGNAL_ERROR,
  SIGNAL_JOB_ANNOUNCED,
  N_SIGNALS
};
static guint signals[N_SIGNALS];

/* What the worker thread reads from a project, handed to the main thread in one piece. */
typedef struct {
  FthStore *store;
  FthItemList *items;
  char *name;
  gint64 n_items;
  gint64 n_unlabeled;
  GPtrArray *labels; /* FthLabel */
  GArray *counts;    /* FthLabelCount, human annotations */
} ProjectData;

static void
project_data_free(ProjectData *data)
{
  g_clear_object(&data->items);
  g_clear_object(&data->store);
  g_free(data->name);
  g_clear_pointer(&data->labels, g_ptr_array_unref);
  g_clear_pointer(&data->counts, g_array_unref);
  g_free(data);
}

/* Errors after a project is open (a refused edit, a failed refresh) go in a toast. */
static void
show_error(FthWindow *self, const char *message)
{
  adw_toast_overlay_add_toast(self->toast_overlay, adw_toast_new(message));
  g_signal_emit(self, signals[SIGNAL_ERROR], 0, message);
}

FthWindow *
fth_window_new(FthApplication *app)
{
  return g_object_new(FTH_TYPE_WINDOW, "application", app, NULL);
}

void
fth_window_set_long_job_seconds(FthWindow *self, double seconds)
{
  g_return_if_fail(FTH_IS_WINDOW(self));
  self->long_job_s = seconds;
}

gboolean
fth_window_has_project(FthWindow *self)
{
  g_return_val_if_fail(FTH_IS_WINDOW(self), FALSE);
  return self->store != NULL;
}

FthStore *
fth_window_get_store(FthWindow *self)
{
  g_return_val_if_fail(FTH_IS_WINDOW(self), NULL);
  return self->store;
}

GListModel *
fth_window_get_items(FthWindow *self)
{
  g_return_val_if_fail(FTH_IS_WINDOW(self), NULL);
  return self->items != NULL ? G_LIST_MODEL(self->items) : NULL;
}

static gboolean
showing_item(FthWindow *self)
{
  const char *page = gtk_stack_get_visible_child_name(self->items_stack);
  return g_strcmp0(page, "item") == 0 || g_strcmp0(page, "audio") == 0 ||
         g_strcmp0(page, "text") == 0;
}

static void reload_media_view(FthWindow *self);

static void
update_actions(FthWindow *self)
{
  gboolean has_project = self->store != NULL;
  GActionMap *map = G_ACTION_MAP(self);

  g_simple_action_set_enabled(G_SIMPLE_ACTION(g_action_map_lookup_action(map, "close-project")),
                              has_project);
  g_simple_action_set_enabled(G_SIMPLE_ACTION(g_action_map_lookup_action(map, "find")),
                              has_project);
  g_simple_action_set_enabled(G_SIMPLE_ACTION(g_action_map_lookup_action(map, "set-label")),
                              has_project);
  gboolean item_shown = has_project && showing_item(self);
  static const char *item_actions[] = { "show-grid", "next-item", "previous-item", "zoom-fit",
                                        "zoom-original" };
  for (guint i = 0; i < G_N_ELEMENTS(item_actions); i++)
    g_simple_action_set_enabled(
      G_SIMPLE_ACTION(g_action_map_lookup_action(map, item_actions[i])), item_shown);
  g_simple_action_set_enabled(G_SIMPLE_ACTION(g_action_map_lookup_action(map, "undo")),
                              has_project);
  g_simple_action_set_enabled(G_SIMPLE_ACTION(g_action_map_lookup_action(map, "add-label")),
                              has_project);
  g_simple_action_set_enabled(G_SIMPLE_ACTION(g_action_map_lookup_action(map, "import")),
                              has_project);
  g_simple_action_set_enabled(G_SIMPLE_ACTION(g_action_map_lookup_action(map, "edit-label")),
                              has_project);
  g_simple_action_set_enabled(G_SIMPLE_ACTION(g_action_map_lookup_action(map, "redo")),
                              has_project);
  /* Zoom acts on the picture in the item view, on the thumbnails in the grid. */
  g_simple_action_set_enabled(G_SIMPLE_ACTION(g_action_map_lookup_action(map, "zoom-in")),
                              item_shown || (has_project &&
                                             self->zoom_step + 1 < (int)G_N_ELEMENTS(zoom_steps)));
  g_simple_action_set_enabled(G_SIMPLE_ACTION(g_action_map_lookup_action(map, "zoom-out")),
                              item_shown || (has_project && self->zoom_step > 0));
}

/* ---- recent projects -------------------------------------------------------------------- */

static void
recent_row_activated(AdwActionRow *row, gpointer user_data)
{
  FthWindow *self = FTH_WINDOW(user_data);
  const char *dir = g_object_get_data(G_OBJECT(row), "fth-project-dir");
  g_autoptr(GFile) file = g_file_new_for_path(dir);

  fth_window_open_project(self, file);
}

static void
recent_loaded(GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) dirs = fth_recent_projects_load_finish(result, &error);

  if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  FthWindow *self = FTH_WINDOW(user_data);
  if (dirs == NULL) {
    /* A broken list of recent projects must not hide the start page; say so and go on. */
    show_error(self, error->message);
    return;
  }

  GtkWidget *child;
  while ((child = gtk_widget_get_first_child(GTK_WIDGET(self->recent_list))) != NULL)
    gtk_list_box_remove(self->recent_list, child);

  for (guint i = 0; dirs[i] != NULL; i++) {
    g_autofree char *name = g_path_get_basename(dirs[i]);
    GtkWidget *row = adw_action_row_new();
    adw_preferences_row_set_title(ADW_PREFERENCES_ROW(row), name);
    adw_action_row_set_subtitle(ADW_ACTION_ROW(row), dirs[i]);
    adw_preferences_row_set_use_markup(ADW_PREFERENCES_ROW(row), FALSE);
    gtk_list_box_row_set_activatable(GTK_LIST_BOX_ROW(row), TRUE);
    adw_action_row_add_suffix(ADW_ACTION_ROW(row), gtk_image_new_from_icon_name("go-next-symbolic"));
    g_object_set_data_full(G_OBJECT(row), "fth-project-dir", g_strdup(dirs[i]), g_free);
    g_signal_connect(row, "activated", G_CALLBACK(recent_row_activated), self);
    gtk_list_box_append(self->recent_list, row);
  }
  gtk_widget_set_visible(GTK_WIDGET(self->recent_group), dirs[0] != NULL);
}

static void
reload_recent(FthWindow *self)
{
  g_cancellable_cancel(self->recent_cancellable);
  g_clear_object(&self->recent_cancellable);
  self->recent_cancellable = g_cancellable_new();
  fth_recent_projects_load_async(self->recent_cancellable, recent_loaded, self);
}

/* ---- the project page ------------------------------------------------------------------- */

static char *
format_counts(const ProjectData *data)
{
  g_autofree char *n_items = g_strdup_printf("%" G_GINT64_FORMAT, data->n_items);
  g_autofree char *n_labeled = g_strdup_printf("%" G_GINT64_FORMAT,
                                               data->n_items - data->n_unlabeled);
  g_autofree char *n_unlabeled = g_strdup_printf("%" G_GINT64_FORMAT, data->n_unlabeled);
  /* Plural forms need an unsigned long; beyond that the last form is right anyway. */
  gulong plural_n = (gulong)MIN(data->n_items, (gint64)G_MAXLONG);
  g_autofree char *items =
    g_strdup_printf(g_dngettext(NULL, "%s item", "%s items", plural_n), n_items);
  g_autofree char *progress = g_strdup_printf(_("%s labeled, %s unlabeled"), n_labeled,
                                              n_unlabeled);
  g_autofree char *labels = g_strdup_printf(
    g_dngettext(NULL, "%u label", "%u labels", data->labels->len), data->labels->len);

  return g_strjoin("\n", items, progress, labels, NULL);
}

static void
cell_setup(GtkSignalListItemFactory *factory, GtkListItem *list_item, gpointer user_data)
{
  FthWindow *self = FTH_WINDOW(user_data);
  GtkWidget *cell = fth_item_cell_new();

  fth_item_cell_set_size(FTH_ITEM_CELL(cell), zoom_steps[self->zoom_step]);
  gtk_list_item_set_child(list_item, cell);
  g_ptr_array_add(self->cells, cell);
}

static void
cell_teardown(GtkSignalListItemFactory *factory, GtkListItem *list_item, gpointer user_data)
{
  FthWindow *self = FTH_WINDOW(user_data);
  GtkWidget *cell = gtk_list_item_get_child(list_item);

  if (cell != NULL)
    g_ptr_array_remove_fast(self->cells, cell);
}

static void
cell_bind(GtkSignalListItemFactory *factory, GtkListItem *list_item, gpointer user_data)
{
  FthWindow *self = FTH_WINDOW(user_data);
  FthItemCell *cell = FTH_ITEM_CELL(gtk_list_item_get_child(list_item));

  fth_item_cell_bind(cell, FTH_ITEM(gtk_list_item_get_item(list_item)), self->loader);
}

static void
cell_unbind(GtkSignalListItemFactory *factory, GtkListItem *list_item, gpointer user_data)
{
  fth_item_cell_unbind(FTH_ITEM_CELL(gtk_list_item_get_child(list_item)));
}

static void
update_items_page(FthWindow *self)
{
  if (showing_item(self))
    return;
  guint shown = g_list_model_get_n_items(G_LIST_MODEL(self->items));
  const char *page = shown > 0 ? "items" : self->n_items > 0 ? "no-matches" : "empty";

  gtk_stack_set_visible_child_name(self->items_stack, page);
}

/* Runs on the main thread: FthItemList re-counts with the new filter (one indexed COUNT). */
static void
apply_filter(FthWindow *self)
{
  if (self->items == NULL || self->populating_filters)
    return;

  FthItemFilter filter = FTH_ITEM_FILTER_INIT;
  guint choice = gtk_drop_down_get_selected(self->filter_dropdown);
  if (choice == CHOICE_UNLABELED)
    filter.unlabeled = TRUE;
  else if (choice >= FIRST_LABEL_CHOICE && choice - FIRST_LABEL_CHOICE < self->label_ids->len)
    filter.label_id = g_array_index(self->label_ids, gint64, choice - FIRST_LABEL_CHOICE);
  filter.predicted_label_id = self->predicted_filter;
  filter.split = self->split_filter;
  const char *text = gtk_editable_get_text(GTK_EDITABLE(self->search_entry));
  if (text[0] != '\0')
    filter.search = text;

  g_autoptr(GError) error = NULL;
  if (!fth_item_list_set_filter(self->items, &filter, &error))
    show_error(self, error->message);
  update_items_page(self);
}

static void
search_changed(GtkSearchEntry *entry, gpointer user_data)
{
  FthWindow *self = FTH_WINDOW(user_data);
  if (!self->keep_predicted) {
    self->predicted_filter = 0;
    self->split_filter = FTH_SPLIT_ANY;
  }
  apply_filter(self);
}

static void
filter_choice_changed(GObject *dropdown, GParamSpec *pspec, gpointer user_data)
{
  FthWindow *self = FTH_WINDOW(user_data);
  if (!self->keep_predicted) {
    self->predicted_filter = 0;
    self->split_filter = FTH_SPLIT_ANY;
  }
  apply_filter(self);
}

/* A confusion matrix cell: the grid shows the items of class TRUTH in the matrix's SPLIT, and
 * of those the ones predicted as PREDICTED when the project has predictions (from `fathom
 * predict`). */
static void
show_confusion_items(FthTrainingPage *page, const char *truth, const char *predicted,
                     int split, gpointer user_data)
{
  FthWindow *self = FTH_WINDOW(user_data);
  guint truth_choice = GTK_INVALID_LIST_POSITION;
  gint64 predicted_id = 0;

  if (self->store == NULL)
    return;
  for (guint i = 0; self->labels != NULL && i < self->labels->len; i++) {
    const FthLabel *label = g_ptr_array_index(self->labels, i);
    if (g_strcmp0(label->name, truth) == 0)
      truth_choice = FIRST_LABEL_CHOICE + i;
    if (g_strcmp0(label->name, predicted) == 0)
      predicted_id = label->id;
  }
  if (truth_choice == GTK_INVALID_LIST_POSITION)
    return;
  g_autoptr(GError) error = NULL;
  gboolean has_predictions = fth_store_latest_prediction_run(self->store, &error) != 0;
  if (error != NULL)
    show_error(self, error->message);

  if (showing_item(self))
    g_action_group_activate_action(G_ACTION_GROUP(self), "show-grid", NULL);
  self->predicted_filter = has_predictions ? predicted_id : 0;
  self->split_filter = (FthSplit)split;
  self->keep_predicted = TRUE;
  gtk_drop_down_set_selected(self->filter_dropdown, truth_choice);
  self->keep_predicted = FALSE;
  apply_filter(self);
  adw_view_stack_set_visible_child_name(self->view_stack, "items");
  if (!has_predictions)
    adw_toast_overlay_add_toast(
      self->toast_overlay,
      adw_toast_new(_("Showing the class’s items in the matrix’s split: the project has no "
                      "stored predictions to split them by (run “fathom predict”)")));
}

static void
populate_filters(FthWindow *self, GPtrArray *labels)
{
  g_autoptr(GStrvBuilder) builder = g_strv_builder_new();

  g_strv_builder_add(builder, _("All Items"));
  g_strv_builder_add(builder, _("Unlabeled"));
  g_array_set_size(self->label_ids, 0);
  for (guint i = 0; labels != NULL && i < labels->len; i++) {
    const FthLabel *label = g_ptr_array_index(labels, i);
    g_strv_builder_add(builder, label->name);
    g_array_append_val(self->label_ids, label->id);
  }
  g_auto(GStrv) choices = g_strv_builder_end(builder);

  self->populating_filters = TRUE;
  gtk_string_list_splice(self->filter_choices, 0,
                         g_list_model_get_n_items(G_LIST_MODEL(self->filter_choices)),
                         (const char *const *)choices);
  gtk_drop_down_set_selected(self->filter_dropdown, CHOICE_ALL);
  gtk_editable_set_text(GTK_EDITABLE(self->search_entry), "");
  self->populating_filters = FALSE;
}

static void
show_summary(FthWindow *self, ProjectData *data)
{
  g_autofree char *counts = format_counts(data);

  gtk_label_set_text(self->counts_label, counts);
  fth_label_palette_set_labels(self->label_palette, data->labels, data->counts);
  self->n_items = data->n_items;
  fth_item_view_set_labels(self->item_view, data->labels);
  g_clear_pointer(&self->labels, g_ptr_array_unref);
  self->labels = g_ptr_array_ref(data->labels);
  if (self->media_item_id != 0 && showing_item(self))
    reload_media_view(self); /* label names, colors and keys may have changed */
  g_hash_table_remove_all(self->hotkeys);
  for (guint i = 0; i < data->labels->len; i++) {
    const FthLabel *label = g_ptr_array_index(data->labels, i);
    if (label->hotkey != NULL && label->hotkey[0] != '\0')
      g_hash_table_insert(self->hotkeys, g_strdup(label->hotkey),
                          g_memdup2(&label->id, sizeof label->id));
  }
}

static void history_applied(FthAnnotationHistory *history, gint64 item_id, gpointer user_data);
static void history_failed(FthAnnotationHistory *history, const char *message,
                           gpointer user_data);

static void
show_project(FthWindow *self, ProjectData *data)
{
  g_set_object(&self->store, data->store);
  g_set_object(&self->items, data->items);
  g_clear_object(&self->loader);
  self->loader = fth_thumbnail_loader_new(self->store, THUMBNAIL_DECODE_SIZE,
                                          THUMBNAIL_CACHE_CAPACITY);
  g_clear_object(&self->images);
  self->images = fth_thumbnail_loader_new(self->store, IMAGE_DECODE_SIZE, IMAGE_CACHE_CAPACITY);
  if (self->history != NULL)
    g_signal_handlers_disconnect_by_data(self->history, self);
  g_clear_object(&self->history);
  self->history = fth_annotation_history_new(self->store);
  g_signal_connect(self->history, "applied", G_CALLBACK(history_applied), self);
  g_signal_connect(self->history, "failed", G_CALLBACK(history_failed), self);
  self->grid_label_position = GTK_INVALID_LIST_POSITION;
  fth_item_view_set_project(self->item_view, self->store, G_LIST_MODEL(self->items),
                            self->history, self->images);

  const char *dir = fth_store_get_dir(self->store);
  adw_view_switcher_title_set_title(self->window_title, data->name);
  adw_view_switcher_title_set_subtitle(self->window_title, dir);
  gtk_window_set_title(GTK_WINDOW(self), data->name);
  gtk_label_set_text(self->project_name_label, data->name);
  gtk_label_set_text(self->project_dir_label, dir);
  gtk_widget_set_tooltip_text(GTK_WIDGET(self->project_dir_label), dir);
  show_summary(self, data);
  populate_filters(self, data->labels);

  GtkSingleSelection *selection =
    gtk_single_selection_new(G_LIST_MODEL(g_object_ref(self->items)));
  gtk_single_selection_set_autoselect(selection, FALSE);
  gtk_single_selection_set_can_unselect(selection, TRUE);
  gtk_grid_view_set_model(self->items_grid, GTK_SELECTION_MODEL(selection));
  g_object_unref(selection);

  gtk_stack_set_visible_child_name(self->items_stack, "items");
  gtk_widget_set_visible(self->filter_bar, TRUE);
  update_items_page(self);
  fth_training_page_set_project(self->training_page, self->store, self->jobs_panel);
  fth_tune_page_set_project(self->tune_page, self->store, self->jobs_panel);
  fth_queue_panel_set_project(self->queue_panel, self->store, G_LIST_MODEL(self->items),
                              self->loader, self->jobs_panel);
  adw_view_stack_set_visible_child_name(self->view_stack, "items");
  adw_view_switcher_title_set_view_switcher_enabled(self->window_title, TRUE);
  gtk_stack_set_visible_child_name(self->stack, "project");
  update_actions(self);
}

void
fth_window_close_project(FthWindow *self)
{
  g_return_if_fail(FTH_IS_WINDOW(self));

  g_cancellable_cancel(self->open_cancellable);
  gtk_grid_view_set_model(self->items_grid, NULL);
  fth_label_palette_set_labels(self->label_palette, NULL, NULL);
  fth_item_view_set_project(self->item_view, NULL, NULL, NULL, NULL);
  fth_training_page_set_project(self->training_page, NULL, NULL);
  fth_tune_page_set_project(self->tune_page, NULL, NULL);
  fth_queue_panel_set_project(self->queue_panel, NULL, NULL, NULL, NULL);
  adw_view_switcher_title_set_view_switcher_enabled(self->window_title, FALSE);
  if (self->history != NULL)
    g_signal_handlers_disconnect_by_data(self->history, self);
  g_clear_object(&self->history);
  g_clear_object(&self->images);
  g_clear_object(&self->items);
  g_hash_table_remove_all(self->hotkeys);
  g_clear_pointer(&self->labels, g_ptr_array_unref);
  populate_filters(self, NULL);
  g_clear_object(&self->loader);
  g_clear_object(&self->store);
  adw_view_switcher_title_set_title(self->window_title, _("Fathom"));
  adw_view_switcher_title_set_subtitle(self->window_title, NULL);
  gtk_window_set_title(GTK_WINDOW(self), _("Fathom"));
  gtk_stack_set_visible_child_name(self->stack, "start");
  update_actions(self);
  reload_recent(self);
}

/* ---- opening a project ------------------------------------------------------------------ */

/* Counts and labels of DATA->store. Runs on a worker thread. */
static gboolean
read_summary(ProjectData *data, GError **error)
{
  FthItemFilter unlabeled = FTH_ITEM_FILTER_INIT;

  unlabeled.unlabeled = TRUE;
  return fth_store_count_items(data->store, NULL, &data->n_items, error) &&
         fth_store_count_items(data->store, &unlabeled, &data->n_unlabeled, error) &&
         (data->labels = fth_store_list_labels(data->store, error)) != NULL &&
         (data->counts = fth_store_count_per_label(data->store, FTH_AUTHOR_HUMAN, error)) != NULL;
}

typedef struct {
  char *dir;
  gboolean create; /* a new project in DIR (a folder that is one already is just opened) */
} OpenRequest;

static void
open_request_free(OpenRequest *request)
{
  g_free(request->dir);
  g_free(request);
}

/* Every edit is saved at once, so a project whose write lock another program holds would
 * fail on the first click: it is refused up front, untouched. The store waits its busy
 * timeout first, so a lock held only for a moment is no reason to refuse. */
static gboolean
check_not_locked(FthStore *store, const char *dir, GError **error)
{
  g_autoptr(GError) begin_error = NULL;
  if (fth_store_begin(store, &begin_error))
    return fth_store_rollback(store, error);
  if (g_error_matches(begin_error, FTH_STORE_ERROR, FTH_STORE_ERROR_BUSY))
    g_set_error(error, FTH_STORE_ERROR, FTH_STORE_ERROR_BUSY,
                _("%s is in use by another program, which is writing to its database. Close "
                  "that program or wait until it is done, then open the project again."),
                dir);
  else
    g_propagate_error(error, g_steal_pointer(&begin_error));
  return FALSE;
}

static void
open_in_thread(GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  OpenRequest *request = task_data;
  const char *dir = request->dir;
  GError *error = NULL;
  ProjectData *data = g_new0(ProjectData, 1);

  if (request->create) {
    data->store = fth_store_create(dir, &error);
    if (g_error_matches(error, FTH_STORE_ERROR, FTH_STORE_ERROR_EXISTS))
      g_clear_error(&error);
  }
  if (data->store == NULL && error == NULL)
    data->store = fth_store_open(dir, &error);
  if (data->store == NULL || !check_not_locked(data->store, dir, &error) ||
      (data->name = fth_store_get_name(data->store, &error)) == NULL ||
      !read_summary(data, &error) ||
      /* Built here so its first COUNT runs off the main loop; from now on only the main
       * thread uses it. */
      (data->items = fth_item_list_new(data->store, NULL, &error)) == NULL) {
    project_data_free(data);
    g_task_return_error(task, error);
    return;
  }

  /* Remembering the project is a convenience: failing to is no reason to refuse it. */
  if (!fth_recent_projects_add(dir, &error)) {
    g_message("%s", error->message);
    g_clear_error(&error);
  }
  g_task_return_pointer(task, data, (GDestroyNotify)project_data_free);
}

static void
show_open_error(FthWindow *self, const char *dir, const GError *error)
{
  /* Store errors name the database file; a dialog must name the folder the user chose too. */
  g_autofree char *body = strstr(error->message, dir) != NULL
                            ? g_strdup(error->message)
                            : g_strdup_printf("%s: %s", dir, error->message);
  GtkWidget *dialog = adw_message_dialog_new(GTK_WINDOW(self), _("Cannot Open Project"), body);

  adw_message_dialog_add_response(ADW_MESSAGE_DIALOG(dialog), "close", _("_Close"));
  gtk_window_present(GTK_WINDOW(dialog));
}

static void
open_finished(GObject *source, GAsyncResult *result, gpointer user_data)
{
  FthWindow *self = FTH_WINDOW(source);
  OpenRequest *request = g_task_get_task_data(G_TASK(result));
  const char *dir = request->dir;
  g_autoptr(GError) error = NULL;
  ProjectData *data = g_task_propagate_pointer(G_TASK(result), &error);

  if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  gtk_spinner_stop(self->loading_spinner);
  if (data == NULL) {
    gtk_stack_set_visible_child_name(self->stack, self->store != NULL ? "project" : "start");
    show_open_error(self, dir, error);
    g_signal_emit(self, signals[SIGNAL_OPEN_FAILED], 0, error->message);
    return;
  }
  show_project(self, data);
  project_data_free(data);
  g_signal_emit(self, signals[SIGNAL_PROJECT_OPENED], 0);
  if (request->create) {
    g_autoptr(GFile) folder = g_file_new_for_path(dir);
    fth_window_import(self, &folder, 1);
  }
}

static void
start_open(FthWindow *self, GFile *dir, gboolean create)
{
  g_return_if_fail(G_IS_FILE(dir));

  g_autofree char *path = g_file_get_path(dir);
  if (path == NULL) {
    g_autofree char *uri = g_file_get_uri(dir);
    g_autoptr(GError) error = g_error_new(G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                                          _("not a local folder"));
    show_open_error(self, uri, error);
    g_signal_emit(self, signals[SIGNAL_OPEN_FAILED], 0, error->message);
    return;
  }

  g_cancellable_cancel(self->open_cancellable);
  g_clear_object(&self->open_cancellable);
  self->open_cancellable = g_cancellable_new();

  g_autofree char *name = g_path_get_basename(path);
  g_autofree char *message = g_strdup_printf(_("Opening “%s”…"), name);
  gtk_label_set_text(self->loading_label, message);
  gtk_spinner_start(self->loading_spinner);
  gtk_stack_set_visible_child_name(self->stack, "loading");

  OpenRequest *request = g_new0(OpenRequest, 1);
  request->dir = g_steal_pointer(&path);
  request->create = create;
  g_autoptr(GTask) task = g_task_new(self, self->open_cancellable, open_finished, NULL);
  g_task_set_task_data(task, request, (GDestroyNotify)open_request_free);
  g_task_run_in_thread(task, open_in_thread);
}

void
fth_window_open_project(FthWindow *self, GFile *dir)
{
  g_return_if_fail(FTH_IS_WINDOW(self));
  start_open(self, dir, FALSE);
}

void
fth_window_create_project(FthWindow *self, GFile *dir)
{
  g_return_if_fail(FTH_IS_WINDOW(self));
  start_open(self, dir, TRUE);
}

/* ---- importing ------------------------------------------------------------------------- */

static void refresh_summary(FthWindow *self, gint64 item_id, gboolean labels_changed);

void
fth_window_import(FthWindow *self, GFile *const *files, guint n_files)
{
  g_return_if_fail(FTH_IS_WINDOW(self));
  if (self->store == NULL || n_files == 0)
    return;

  g_autoptr(GStrvBuilder) sources = g_strv_builder_new();
  for (guint i = 0; i < n_files; i++) {
    g_autofree char *path = g_file_get_path(files[i]);
    if (path != NULL)
      g_strv_builder_add(sources, path);
  }
  g_auto(GStrv) paths = g_strv_builder_end(sources);
  if (paths[0] == NULL) {
    show_error(self, _("Only local files and folders can be imported"));
    return;
  }

  FthImportOptions options;
  fth_import_options_init(&options);
  g_autoptr(FthJob) job = fth_import_job_new(self->store, (const char *const *)paths, &options);
  g_autofree char *name = g_path_get_basename(paths[0]);
  g_autofree char *title = paths[1] == NULL
                             ? g_strdup_printf(_("Importing “%s”"), name)
                             : g_strdup_printf(_("Importing “%s” and %u more"), name,
                                               g_strv_length(paths) - 1);
  fth_jobs_panel_add(self->jobs_panel, job, title);
  /* The jobs panel is in the sidebar. Only when hidden (see restore_window_state()). */
  if (!adw_flap_get_reveal_flap(self->flap))
    adw_flap_set_reveal_flap(self->flap, TRUE);
  fth_job_start(job);
}

/* A long job's end is said where the user looks: a toast while this window is active, else a
 * desktop notification, since the user went elsewhere while waiting. */
static void
announce_job_end(FthWindow *self, FthJob *job, const FthJobEvent *end, const char *title)
{
  g_autofree char *outcome = NULL;
  if (end->type == FTH_JOB_EVENT_SUCCEEDED)
    outcome = g_strdup(_("Finished"));
  else if (end->type == FTH_JOB_EVENT_CANCELLED)
    outcome = g_strdup(_("Cancelled"));
  else
    outcome = g_strdup_printf(_("Failed: %s"), end->error != NULL ? end->error->message
                                                                    : _("unknown error"));
  /* Notifications go over the session bus; without one (a bare X server) a toast waits in
   * the window instead. */
  GtkApplication *app = gtk_window_get_application(GTK_WINDOW(self));
  gboolean notify = !gtk_window_is_active(GTK_WINDOW(self)) && app != NULL &&
                    g_application_get_dbus_connection(G_APPLICATION(app)) != NULL;
  if (notify) {
    g_autoptr(GNotification) notification = g_notification_new(title);
    g_notification_set_body(notification, outcome);
    g_autofree char *id = g_strdup_printf("job-%" G_GUINT64_FORMAT, fth_job_get_id(job));
    g_application_send_notification(G_APPLICATION(app), id, notification);
  } else {
    g_autofree char *message = g_strdup_printf(_("%s: %s"), title, outcome);
    adw_toast_overlay_add_toast(self->toast_overlay, adw_toast_new(message));
  }
  g_signal_emit(self, signals[SIGNAL_JOB_ANNOUNCED], 0, title, outcome, notify);
}

/* A job ended: an import changed items and perhaps labels. */
static void
job_finished(FthJobsPanel *panel, FthJob *job, gpointer event, const char *title,
             gpointer user_data)
{
  FthWindow *self = FTH_WINDOW(user_data);
  const FthJobEvent *end = event;
  g_autoptr(GError) error = NULL;

  if (end->elapsed_s >= self->long_job_s)
    announce_job_end(self, job, end, title);
  /* AutoLabel's jobs wrote model annotations or promoted pseudo-labels. */
  static const char *const labeling_jobs[] = { "autolabel", "active-round", "pseudo-label",
                                               "pseudo-review", NULL };
  if (self->store != NULL && g_strv_contains(labeling_jobs, fth_job_get_name(job))) {
    if (!fth_item_list_refresh(self->items, &error))
      show_error(self, error->message);
    if (fth_item_view_get_item(self->item_view) != NULL)
      fth_item_view_reload_annotations(self->item_view);
    refresh_summary(self, 0, FALSE);
    return;
  }
  if (g_strcmp0(fth_job_get_name(job), "import") != 0 || self->store == NULL)
    return;
  const FthImportReport *report = fth_import_job_get_report(job);
  if (end->type != FTH_JOB_EVENT_FAILED && report != NULL) {
    g_autofree char *added = g_strdup_printf("%" G_GUINT64_FORMAT, report->added);
    g_autofree char *there = g_strdup_printf("%" G_GUINT64_FORMAT,
                                             report->duplicates + report->existing);
    g_autofree char *summary =
      g_strdup_printf(_("Import finished: %s added, %s already there, %u problems"), added, there,
                      report->problems != NULL ? report->problems->len : 0);
    adw_toast_overlay_add_toast(self->toast_overlay, adw_toast_new(summary));
  }
  if (!fth_item_list_refresh(self->items, &error))
    show_error(self, error->message);
  update_items_page(self);
  refresh_summary(self, 0, TRUE);
}

/* ---- labeling ------------------------------------------------------------------------- */

static void
summary_in_thread(GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  GError *error = NULL;
  ProjectData *data = g_new0(ProjectData, 1);

  data->store = g_object_ref(task_data);
  if (!read_summary(data, &error)) {
    project_data_free(data);
    g_task_return_error(task, error);
    return;
  }
  g_task_return_pointer(task, data, (GDestroyNotify)project_data_free);
}

/* What a summary refresh follows: an annotation edit of ITEM_ID, or a change of the labels. */
typedef struct {
  gint64 item_id;
  gboolean labels_changed;
} SummaryReason;

static void
summary_read(GObject *source, GAsyncResult *result, gpointer user_data)
{
  FthWindow *self = FTH_WINDOW(source);
  g_autofree SummaryReason *reason = user_data;
  g_autoptr(GError) error = NULL;
  ProjectData *data = g_task_propagate_pointer(G_TASK(result), &error);

  if (data == NULL) {
    show_error(self, error->message);
    return;
  }
  /* The project may have been closed or replaced meanwhile. */
  if (data->store == self->store) {
    show_summary(self, data);
    if (reason->labels_changed) {
      populate_filters(self, data->labels);
      g_signal_emit(self, signals[SIGNAL_LABELS_CHANGED], 0);
    } else {
      g_signal_emit(self, signals[SIGNAL_ITEM_ANNOTATED], 0, reason->item_id);
    }
  }
  project_data_free(data);
}

static void
refresh_summary(FthWindow *self, gint64 item_id, gboolean labels_changed)
{
  SummaryReason *reason = g_new0(SummaryReason, 1);
  reason->item_id = item_id;
  reason->labels_changed = labels_changed;
  g_autoptr(GTask) task = g_task_new(self, NULL, summary_read, reason);
  g_task_set_task_data(task, g_object_ref(self->store), g_object_unref);
  g_task_run_in_thread(task, summary_in_thread);
}

/* An edit, undo or redo is saved: show it everywhere it appears. */
static void
history_applied(FthAnnotationHistory *history, gint64 item_id, gpointer user_data)
{
  FthWindow *self = FTH_WINDOW(user_data);
  g_autoptr(GError) error = NULL;

  if (!fth_item_list_refresh(self->items, &error))
    show_error(self, error->message);
  GtkSelectionModel *selection = gtk_grid_view_get_model(self->items_grid);
  if (self->grid_label_position < g_list_model_get_n_items(G_LIST_MODEL(selection)))
    gtk_selection_model_select_item(selection, self->grid_label_position, TRUE);
  FthItem *shown = fth_item_view_get_item(self->item_view);
  if (shown != NULL && fth_item_get_id(shown) == item_id)
    fth_item_view_reload_annotations(self->item_view);
  if (item_id == self->media_item_id && showing_item(self))
    reload_media_view(self);
  update_items_page(self);
  fth_queue_panel_item_annotated(self->queue_panel, item_id);

  refresh_summary(self, item_id, FALSE);
}

static void
history_failed(FthAnnotationHistory *history, const char *message, gpointer user_data)
{
  FthWindow *self = FTH_WINDOW(user_data);
  show_error(self, message);
}

static void
set_label_activated(GSimpleAction *action, GVariant *parameter, gpointer user_data)
{
  FthWindow *self = FTH_WINDOW(user_data);
  gint64 label_id = g_variant_get_int64(parameter);

  if (self->history == NULL)
    return;
  if (showing_item(self)) {
    fth_item_view_apply_label(self->item_view, label_id);
    return;
  }
  GtkSingleSelection *selection = GTK_SINGLE_SELECTION(gtk_grid_view_get_model(self->items_grid));
  FthItem *item = gtk_single_selection_get_selected_item(selection);
  if (item == NULL) {
    adw_toast_overlay_add_toast(self->toast_overlay,
                                adw_toast_new(_("Select an item to label first")));
    return;
  }
  self->grid_label_position = gtk_single_selection_get_selected(selection);
  fth_annotation_history_set_class(self->history, fth_item_get_id(item), label_id);
}

/* ---- editing labels ---------------------------------------------------------------------- */

typedef enum { LABEL_ADD, LABEL_EDIT, LABEL_REMOVE } LabelOpKind;

typedef struct {
  FthStore *store;
  LabelOpKind kind;
  gint64 id;
  char *name, *color, *hotkey; /* hotkey NULL: none; color NULL: keep (edit) or next (add) */
} LabelOp;

static void
label_op_free(LabelOp *op)
{
  g_object_unref(op->store);
  g_free(op->name);
  g_free(op->color);
  g_free(op->hotkey);
  g_free(op);
}

/* One transaction, so a refused hotkey leaves the name and color as they were too. */
static gboolean
run_label_op(LabelOp *op, GError **error)
{
  FthStore *store = op->store;

  if (op->kind == LABEL_REMOVE)
    return fth_store_remove_label(store, op->id, TRUE, error);
  if (op->name[0] == '\0') {
    g_set_error_literal(error, FTH_STORE_ERROR, FTH_STORE_ERROR_INVALID,
                        _("A label needs a name"));
    return FALSE;
  }
  if (op->kind == LABEL_ADD)
    return fth_store_add_label(store, op->name, op->color, op->hotkey, FTH_LABEL_ANY, NULL,
                               error);

  if (!fth_store_begin(store, error))
    return FALSE;
  g_autoptr(FthLabel) old = fth_store_get_label(store, op->id, error);
  gboolean ok = old != NULL &&
                (g_strcmp0(old->name, op->name) == 0 ||
                 fth_store_rename_label(store, op->id, op->name, error)) &&
                (op->color == NULL || g_strcmp0(old->color, op->color) == 0 ||
                 fth_store_recolor_label(store, op->id, op->color, error)) &&
                (g_strcmp0(old->hotkey, op->hotkey) == 0 ||
                 fth_store_set_label_hotkey(store, op->id, op->hotkey, error));
  if (!ok) {
    fth_store_rollback(store, NULL);
    return FALSE;
  }
  return fth_store_commit(store, error);
}

static void
label_op_in_thread(GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  GError *error = NULL;

  if (run_label_op(task_data, &error))
    g_task_return_boolean(task, TRUE);
  else
    g_task_return_error(task, error);
}

static void
label_op_done(GObject *source, GAsyncResult *result, gpointer user_data)
{
  FthWindow *self = FTH_WINDOW(source);
  LabelOp *op = g_task_get_task_data(G_TASK(result));
  g_autoptr(GError) error = NULL;

  if (!g_task_propagate_boolean(G_TASK(result), &error)) {
    show_error(self, error->message);
    return;
  }
  if (op->store != self->store)
    return;
  /* Names show in the grid and removed labels take their annotations along. */
  if (!fth_item_list_refresh(self->items, &error))
    show_error(self, error->message);
  if (fth_item_view_get_item(self->item_view) != NULL)
    fth_item_view_reload_annotations(self->item_view);
  refresh_summary(self, 0, TRUE);
}

static void
label_dialog_response(AdwMessageDialog *dialog, const char *response, gpointer user_data)
{
  FthWindow *self = FTH_WINDOW(user_data);

  if (self->store == NULL || g_strcmp0(response, "cancel") == 0)
    return;
  LabelOp *op = g_new0(LabelOp, 1);
  op->store = g_object_ref(self->store);
  op->id = fth_label_dialog_get_label_id(dialog);
  op->kind = g_strcmp0(response, "remove") == 0 ? LABEL_REMOVE
             : op->id == 0                      ? LABEL_ADD
                                                : LABEL_EDIT;
  fth_label_dialog_get_values(dialog, &op->name, &op->color, &op->hotkey);

  g_autoptr(GTask) task = g_task_new(self, NULL, label_op_done, NULL);
  g_task_set_task_data(task, op, (GDestroyNotify)label_op_free);
  g_task_run_in_thread(task, label_op_in_thread);
}

static void
present_label_dialog(FthWindow *self, const FthLabel *label)
{
  AdwMessageDialog *dialog = fth_label_dialog_new(GTK_WINDOW(self), label);
  g_signal_connect_object(dialog, "response", G_CALLBACK(label_dialog_response), self, 0);
  gtk_window_present(GTK_WINDOW(dialog));
}

static void
add_label_activated(GSimpleAction *action, GVariant *parameter, gpointer user_data)
{
  present_label_dialog(FTH_WINDOW(user_data), NULL);
}

static void
edit_label_activated(GSimpleAction *action, GVariant *parameter, gpointer user_data)
{
  FthWindow *self = FTH_WINDOW(user_data);
  gint64 id = g_variant_get_int64(parameter);

  for (guint i = 0; self->labels != NULL && i < self->labels->len; i++) {
    const FthLabel *label = g_ptr_array_index(self->labels, i);
    if (label->id == id)
      present_label_dialog(self, label);
  }
}

static void
palette_label_activated(FthLabelPalette *palette, gint64 label_id, gpointer user_data)
{
  gtk_widget_activate_action(GTK_WIDGET(user_data), "win.edit-label", "x", label_id);
}

/* ---- the item view ---------------------------------------------------------------------- */

static void
reload_media_view(FthWindow *self)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) anns = fth_store_list_annotations(self->store, self->media_item_id, &error);
  if (anns == NULL) {
    show_error(self, error->message);
    return;
  }
  if (g_strcmp0(gtk_stack_get_visible_child_name(self->items_stack), "audio") == 0)
    fth_waveform_view_set_annotations(FTH_WAVEFORM_VIEW(self->waveform_view), anns, self->labels);
  else
    fth_text_span_view_set_annotations(FTH_TEXT_SPAN_VIEW(self->text_span_view), anns,
                                       self->labels);
}

/* Images show in the item view; audio and text items in their own views (same navigation). */
static void
present_item(FthWindow *self, guint position)
{
  fth_item_view_show(self->item_view, position);
  FthItem *item = fth_item_view_get_item(self->item_view);
  FthItemKind kind = item != NULL ? fth_item_get_kind(item) : FTH_ITEM_IMAGE;
  self->media_item_id = item != NULL && kind != FTH_ITEM_IMAGE ? fth_item_get_id(item) : 0;
  if (kind == FTH_ITEM_AUDIO) {
    g_autofree char *path = fth_store_resolve_path(self->store, fth_item_get_path(item));
    g_autofree char *cache = g_build_filename(fth_store_get_dir(self->store), "cache", "logmel",
                                              NULL);
    g_autoptr(FthItemRecord) record = fth_store_get_item(self->store, self->media_item_id, NULL);
    gtk_stack_set_visible_child_name(self->items_stack, "audio");
    fth_waveform_view_load(FTH_WAVEFORM_VIEW(self->waveform_view), path, cache,
                           record != NULL ? record->sha256 : NULL);
    reload_media_view(self);
    gtk_widget_grab_focus(self->waveform_view);
  } else if (kind == FTH_ITEM_TEXT) {
    FthTextSpanView *view = FTH_TEXT_SPAN_VIEW(self->text_span_view);
    gtk_stack_set_visible_child_name(self->items_stack, "text");
    fth_text_span_view_set_annotations(view, NULL, NULL);
    if (fth_item_get_text(item) != NULL) {
      fth_text_span_view_set_text(view, fth_item_get_text(item), fth_item_get_path(item));
    } else {
      g_autofree char *path = fth_store_resolve_path(self->store, fth_item_get_path(item));
      fth_text_span_view_load_file(view, path);
    }
    reload_media_view(self);
    gtk_widget_grab_focus(GTK_WIDGET(fth_text_span_view_get_text_view(view)));
  } else {
    gtk_stack_set_visible_child_name(self->items_stack, "item");
  }
}

static void
media_add_annotation(GtkWidget *view, const FthAnnotation *ann, gpointer user_data)
{
  FthWindow *self = FTH_WINDOW(user_data);
  g_autoptr(FthAnnotation) copy = g_memdup2(ann, sizeof *ann);
  copy->points = NULL; /* segments and spans have none */
  copy->item_id = self->media_item_id;
  if (self->history != NULL)
    fth_annotation_history_add(self->history, copy);
}

static void
media_update_annotation(GtkWidget *view, const FthAnnotation *ann, gpointer user_data)
{
  FthWindow *self = FTH_WINDOW(user_data);
  if (self->history != NULL)
    fth_annotation_history_update(self->history, ann);
}

static void
media_remove_annotation(GtkWidget *view, gint64 id, gpointer user_data)
{
  FthWindow *self = FTH_WINDOW(user_data);
  if (self->history != NULL)
    fth_annotation_history_remove(self->history, id);
}

static void
media_set_class(GtkWidget *view, gint64 label_id, gpointer user_data)
{
  FthWindow *self = FTH_WINDOW(user_data);
  if (self->history != NULL)
    fth_annotation_history_set_class(self->history, self->media_item_id, label_id);
}

static void
show_item(FthWindow *self, guint position)
{
  gtk_widget_set_visible(self->filter_bar, FALSE);
  present_item(self, position);
  update_actions(self);
}

static void
grid_activated(GtkGridView *grid, guint position, gpointer user_data)
{
  show_item(FTH_WINDOW(user_data), position);
}

static void
show_grid_activated(GSimpleAction *action, GVariant *parameter, gpointer user_data)
{
  FthWindow *self = FTH_WINDOW(user_data);
  guint position = fth_item_view_get_position(self->item_view);
  GtkSelectionModel *selection = gtk_grid_view_get_model(self->items_grid);

  gtk_stack_set_visible_child_name(self->items_stack, "items");
  gtk_widget_set_visible(self->filter_bar, TRUE);
  update_items_page(self);
  if (position < g_list_model_get_n_items(G_LIST_MODEL(selection))) {
    gtk_selection_model_select_item(selection, position, TRUE);
    gtk_widget_activate_action(GTK_WIDGET(self->items_grid), "list.scroll-to-item", "u",
                               position);
  }
  update_actions(self);
}

/* The position of ITEM_ID in the items the grid shows (filtered), or GTK_INVALID_LIST_POSITION. */
static guint
find_item_position(FthWindow *self, gint64 item_id)
{
  guint n = g_list_model_get_n_items(G_LIST_MODEL(self->items));
  for (guint i = 0; i < n; i++) {
    g_autoptr(FthItem) item = g_list_model_get_item(G_LIST_MODEL(self->items), i);
    if (fth_item_get_id(item) == item_id)
      return i;
  }
  return GTK_INVALID_LIST_POSITION;
}

static void
present_queued(FthWindow *self, gint64 item_id)
{
  guint position = find_item_position(self, item_id);
  if (position == GTK_INVALID_LIST_POSITION)
    adw_toast_overlay_add_toast(self->toast_overlay,
                                adw_toast_new(_("The queued item is hidden by the filter")));
  else
    show_item(self, position);
}

static gboolean
following_queue(FthWindow *self)
{
  g_autoptr(GVariant) state = g_action_group_get_action_state(G_ACTION_GROUP(self),
                                                              "follow-queue");
  return state != NULL && g_variant_get_boolean(state);
}

/* With the queue followed and not empty, next and previous go through it; FALSE otherwise. */
static gboolean
step_queue(FthWindow *self, gboolean forward)
{
  if (!following_queue(self) || fth_queue_panel_get_n_entries(self->queue_panel) == 0)
    return FALSE;
  FthItem *shown = fth_item_view_get_item(self->item_view);
  gint64 id = fth_queue_panel_step(self->queue_panel, shown != NULL ? fth_item_get_id(shown) : 0,
                                   forward);
  if (id != 0)
    present_queued(self, id);
  else
    adw_toast_overlay_add_toast(self->toast_overlay,
                                adw_toast_new(forward ? _("End of the queue")
                                                      : _("Start of the queue")));
  return TRUE;
}

static void
queue_item_activated(FthQueuePanel *panel, gint64 item_id, gpointer user_data)
{
  FthWindow *self = FTH_WINDOW(user_data);
  adw_view_stack_set_visible_child_name(self->view_stack, "items");
  present_queued(self, item_id);
}

/* The shown item was labeled and left the queue: on to the one after it. */
static void
queue_item_dequeued(FthQueuePanel *panel, gint64 item_id, gint64 next, gpointer user_data)
{
  FthWindow *self = FTH_WINDOW(user_data);
  FthItem *shown = fth_item_view_get_item(self->item_view);
  if (next != 0 && following_queue(self) && showing_item(self) && shown != NULL &&
      fth_item_get_id(shown) == item_id)
    present_queued(self, next);
}

static void
next_item_activated(GSimpleAction *action, GVariant *parameter, gpointer user_data)
{
  FthWindow *self = FTH_WINDOW(user_data);
  if (step_queue(self, TRUE))
    return;
  present_item(self, fth_item_view_get_position(self->item_view) + 1);
}

static void
previous_item_activated(GSimpleAction *action, GVariant *parameter, gpointer user_data)
{
  FthWindow *self = FTH_WINDOW(user_data);
  if (step_queue(self, FALSE))
    return;
  guint position = fth_item_view_get_position(self->item_view);
  present_item(self, position > 0 ? position - 1 : 0);
}

static void
undo_activated(GSimpleAction *action, GVariant *parameter, gpointer user_data)
{
  FthWindow *self = FTH_WINDOW(user_data);
  if (self->history != NULL)
    fth_annotation_history_undo(self->history);
}

static void
redo_activated(GSimpleAction *action, GVariant *parameter, gpointer user_data)
{
  FthWindow *self = FTH_WINDOW(user_data);
  if (self->history != NULL)
    fth_annotation_history_redo(self->history);
}

static void
tool_changed(GSimpleAction *action, GVariant *state, gpointer user_data)
{
  FthWindow *self = FTH_WINDOW(user_data);
  const char *tool = g_variant_get_string(state, NULL);

  fth_image_canvas_set_tool(fth_item_view_get_canvas(self->item_view),
                            g_strcmp0(tool, "polygon") == 0 ? FTH_CANVAS_TOOL_POLYGON
                                                            : FTH_CANVAS_TOOL_BOX);
  g_simple_action_set_state(action, state);
}

static void
zoom_fit_activated(GSimpleAction *action, GVariant *parameter, gpointer user_data)
{
  fth_image_canvas_zoom_fit(fth_item_view_get_canvas(FTH_WINDOW(user_data)->item_view));
}

static void
zoom_original_activated(GSimpleAction *action, GVariant *parameter, gpointer user_data)
{
  fth_image_canvas_zoom_one_to_one(fth_item_view_get_canvas(FTH_WINDOW(user_data)->item_view));
}

/* Keys of the item view without modifiers. They are handled here, after the focused widget
 * had its turn, rather than as application accelerators, which would take "a" and "d" from
 * the search entry. */
static gboolean
item_view_key(FthWindow *self, guint keyval)
{
  switch (keyval) {
  case GDK_KEY_a:
  case GDK_KEY_Left:
    g_action_group_activate_action(G_ACTION_GROUP(self), "previous-item", NULL);
    return TRUE;
  case GDK_KEY_d:
  case GDK_KEY_Right:
    g_action_group_activate_action(G_ACTION_GROUP(self), "next-item", NULL);
    return TRUE;
  case GDK_KEY_space:
    return fth_item_view_accept_suggestion(self->item_view);
  case GDK_KEY_b:
  case GDK_KEY_p:
    g_action_group_change_action_state(G_ACTION_GROUP(self), "tool",
                                       g_variant_new_string(keyval == GDK_KEY_p ? "polygon"
                                                                                : "box"));
    return TRUE;
  case GDK_KEY_Delete:
  case GDK_KEY_BackSpace:
    return fth_item_view_delete_selected(self->item_view);
  case GDK_KEY_Escape:
    if (!fth_image_canvas_cancel_drawing(fth_item_view_get_canvas(self->item_view)))
      g_action_group_activate_action(G_ACTION_GROUP(self), "show-grid", NULL);
    return TRUE;
  default:
    return FALSE;
  }
}

/* A label's hotkey labels the selected item (keys typed into the search entry never get here:
 * the entry handles them first). */
static gboolean
key_pressed(GtkEventControllerKey *controller, guint keyval, guint keycode,
            GdkModifierType state, gpointer user_data)
{
  FthWindow *self = FTH_WINDOW(user_data);

  if (self->store == NULL ||
      (state & (GDK_CONTROL_MASK | GDK_ALT_MASK | GDK_SUPER_MASK)) != 0)
    return FALSE;
  if (showing_item(self) && item_view_key(self, keyval))
    return TRUE;
  gunichar c = gdk_keyval_to_unicode(keyval);
  if (c == 0)
    return FALSE;
  char key[8] = { 0 };
  g_unichar_to_utf8(c, key);
  const gint64 *label_id = g_hash_table_lookup(self->hotkeys, key);
  if (label_id == NULL)
    return FALSE;
  gtk_widget_activate_action(GTK_WIDGET(self), "win.set-label", "x", *label_id);
  return TRUE;
}

/* ---- actions ---------------------------------------------------------------------------- */

/* What a folder chosen in the file chooser is for. */
typedef enum { CHOOSE_OPEN, CHOOSE_NEW, CHOOSE_IMPORT } ChooserPurpose;

static void
chooser_response(GtkNativeDialog *chooser, int response, gpointer user_data)
{
  FthWindow *self = FTH_WINDOW(user_data);
  ChooserPurpose purpose = GPOINTER_TO_INT(g_object_get_data(G_OBJECT(chooser), "fth-purpose"));

  if (response == GTK_RESPONSE_ACCEPT) {
    g_autoptr(GFile) dir = gtk_file_chooser_get_file(GTK_FILE_CHOOSER(chooser));
    if (dir != NULL && purpose == CHOOSE_OPEN)
      fth_window_open_project(self, dir);
    else if (dir != NULL && purpose == CHOOSE_NEW)
      fth_window_create_project(self, dir);
    else if (dir != NULL)
      fth_window_import(self, &dir, 1);
  }
  g_clear_object(&self->chooser);
}

static void
choose_folder(FthWindow *self, ChooserPurpose purpose)
{
  static const char *titles[] = { N_("Open Project"), N_("New Project From a Folder of Media"),
                                  N_("Import a Folder") };
  static const char *accepts[] = { N_("_Open"), N_("_Create"), N_("_Import") };

  if (self->chooser != NULL)
    gtk_native_dialog_destroy(GTK_NATIVE_DIALOG(self->chooser));
  g_clear_object(&self->chooser);
  self->chooser = gtk_file_chooser_native_new(_(titles[purpose]), GTK_WINDOW(self),
                                              GTK_FILE_CHOOSER_ACTION_SELECT_FOLDER,
                                              _(accepts[purpose]), _("_Cancel"));
  g_object_set_data(G_OBJECT(self->chooser), "fth-purpose", GINT_TO_POINTER(purpose));
  gtk_native_dialog_set_modal(GTK_NATIVE_DIALOG(self->chooser), TRUE);
  g_signal_connect(self->chooser, "response", G_CALLBACK(chooser_response), self);
  gtk_native_dialog_show(GTK_NATIVE_DIALOG(self->chooser));
}

static void
open_activated(GSimpleAction *action, GVariant *parameter, gpointer user_data)
{
  choose_folder(FTH_WINDOW(user_data), CHOOSE_OPEN);
}

static void
new_project_activated(GSimpleAction *action, GVariant *parameter, gpointer user_data)
{
  choose_folder(FTH_WINDOW(user_data), CHOOSE_NEW);
}

static void
import_activated(GSimpleAction *action, GVariant *parameter, gpointer user_data)
{
  choose_folder(FTH_WINDOW(user_data), CHOOSE_IMPORT);
}

static void
close_project_activated(GSimpleAction *action, GVariant *parameter, gpointer user_data)
{
  fth_window_close_project(FTH_WINDOW(user_data));
}

static void
find_activated(GSimpleAction *action, GVariant *parameter, gpointer user_data)
{
  FthWindow *self = FTH_WINDOW(user_data);
  gtk_widget_grab_focus(GTK_WIDGET(self->search_entry));
}

static void
set_zoom(FthWindow *self, int step)
{
  self->zoom_step = CLAMP(step, 0, (int)G_N_ELEMENTS(zoom_steps) - 1);
  if (self->settings != NULL)
    g_settings_set_int(self->settings, "thumbnail-size", self->zoom_step);
  for (guint i = 0; i < self->cells->len; i++)
    fth_item_cell_set_size(g_ptr_array_index(self->cells, i), zoom_steps[self->zoom_step]);
  update_actions(self);
}

static void
zoom_canvas(FthWindow *self, double factor)
{
  GtkWidget *canvas = GTK_WIDGET(fth_item_view_get_canvas(self->item_view));
  fth_image_canvas_zoom_at(FTH_IMAGE_CANVAS(canvas), factor, gtk_widget_get_width(canvas) / 2.0,
                           gtk_widget_get_height(canvas) / 2.0);
}

static void
zoom_in_activated(GSimpleAction *action, GVariant *parameter, gpointer user_data)
{
  FthWindow *self = FTH_WINDOW(user_data);
  if (showing_item(self))
    zoom_canvas(self, CANVAS_ZOOM_STEP);
  else
    set_zoom(self, self->zoom_step + 1);
}

static void
zoom_out_activated(GSimpleAction *action, GVariant *parameter, gpointer user_data)
{
  FthWindow *self = FTH_WINDOW(user_data);
  if (showing_item(self))
    zoom_canvas(self, 1.0 / CANVAS_ZOOM_STEP);
  else
    set_zoom(self, self->zoom_step - 1);
}

static const GActionEntry win_actions[] = {
  { .name = "open", .activate = open_activated },
  { .name = "new-project", .activate = new_project_activated },
  { .name = "import", .activate = import_activated },
  { .name = "close-project", .activate = close_project_activated },
  { .name = "find", .activate = find_activated },
  { .name = "set-label", .activate = set_label_activated, .parameter_type = "x" },
  { .name = "add-label", .activate = add_label_activated },
  { .name = "edit-label", .activate = edit_label_activated, .parameter_type = "x" },
  { .name = "show-grid", .activate = show_grid_activated },
  { .name = "next-item", .activate = next_item_activated },
  { .name = "previous-item", .activate = previous_item_activated },
  { .name = "undo", .activate = undo_activated },
  { .name = "redo", .activate = redo_activated },
  { .name = "zoom-fit", .activate = zoom_fit_activated },
  { .name = "tool", .parameter_type = "s", .state = "'box'", .change_state = tool_changed },
  { .name = "zoom-original", .activate = zoom_original_activated },
  { .name = "zoom-in", .activate = zoom_in_activated },
  { .name = "zoom-out", .activate = zoom_out_activated },
};

/* Files and folders dropped on a project are imported into it; without a project, a dropped
 * folder opens as one. */
static gboolean
files_dropped(GtkDropTarget *target, const GValue *value, double x, double y, gpointer user_data)
{
  FthWindow *self = FTH_WINDOW(user_data);
  GSList *files = g_value_get_boxed(value);

  if (files == NULL)
    return FALSE;
  if (self->store == NULL) {
    fth_window_open_project(self, G_FILE(files->data));
    return TRUE;
  }
  g_autoptr(GPtrArray) array = g_ptr_array_new();
  for (GSList *l = files; l != NULL; l = l->next)
    g_ptr_array_add(array, l->data);
  fth_window_import(self, (GFile *const *)array->pdata, array->len);
  return TRUE;
}

/* ---- window state ---------------------------------------------------------------------- */

static gboolean
save_window_state(GtkWindow *window, gpointer user_data)
{
  FthWindow *self = FTH_WINDOW(window);
  int width = 0, height = 0;

  gtk_window_get_default_size(window, &width, &height);
  g_settings_set_int(self->settings, "window-width", width);
  g_settings_set_int(self->settings, "window-height", height);
  g_settings_set_boolean(self->settings, "window-maximized", gtk_window_is_maximized(window));
  g_settings_set_boolean(self->settings, "sidebar-visible", adw_flap_get_reveal_flap(self->flap));
  return FALSE; /* and close */
}

/* Restores the size, the sidebar and the thumbnail size of the last window closed. The
 * program also runs uninstalled, without its schema: then nothing is remembered. */
static void
restore_window_state(FthWindow *self)
{
  GSettingsSchemaSource *source = g_settings_schema_source_get_default();
  g_autoptr(GSettingsSchema) schema =
    source != NULL ? g_settings_schema_source_lookup(source, FTH_APPLICATION_ID, TRUE) : NULL;

  if (schema == NULL) {
    g_debug("GSettings schema %s not installed: window state is not remembered",
            FTH_APPLICATION_ID);
    return;
  }
  self->settings = g_settings_new_full(schema, NULL, NULL);
  gtk_window_set_default_size(GTK_WINDOW(self), g_settings_get_int(self->settings, "window-width"),
                              g_settings_get_int(self->settings, "window-height"));
  if (g_settings_get_boolean(self->settings, "window-maximized"))
    gtk_window_maximize(GTK_WINDOW(self));
  /* Set only when it differs, not bound: libadwaita 1.2 animates even a reveal to the state
   * the flap is in, and that zero-length spring allocates the content at G_MININT. */
  if (!g_settings_get_boolean(self->settings, "sidebar-visible"))
    adw_flap_set_reveal_flap(self->flap, FALSE);
  self->zoom_step = CLAMP(g_settings_get_int(self->settings, "thumbnail-size"), 0,
                          (int)G_N_ELEMENTS(zoom_steps) - 1);
  g_signal_connect(self, "close-request", G_CALLBACK(save_window_state), NULL);
}

/* ---- the class -------------------------------------------------------------------------- */

static void
fth_window_dispose(GObject *object)
{
  FthWindow *self = FTH_WINDOW(object);

  g_cancellable_cancel(self->open_cancellable);
  g_cancellable_cancel(self->recent_cancellable);
  g_clear_object(&self->open_cancellable);
  g_clear_object(&self->recent_cancellable);
  if (self->chooser != NULL)
    gtk_native_dialog_destroy(GTK_NATIVE_DIALOG(self->chooser));
  g_clear_object(&self->chooser);
  g_clear_object(&self->settings);
  if (self->items_grid != NULL)
    gtk_grid_view_set_model(self->items_grid, NULL);
  if (self->history != NULL)
    g_signal_handlers_disconnect_by_data(self->history, self);
  g_clear_object(&self->history);
  g_clear_object(&self->items);
  g_clear_object(&self->loader);
  g_clear_object(&self->images);
  g_clear_object(&self->store);
  gtk_widget_dispose_template(GTK_WIDGET(self), FTH_TYPE_WINDOW);

  G_OBJECT_CLASS(fth_window_parent_class)->dispose(object);
}

static void
fth_window_finalize(GObject *object)
{
  FthWindow *self = FTH_WINDOW(object);

  g_ptr_array_unref(self->cells);
  g_array_unref(self->label_ids);
  g_hash_table_unref(self->hotkeys);
  g_clear_pointer(&self->labels, g_ptr_array_unref);
  G_OBJECT_CLASS(fth_window_parent_class)->finalize(object);
}

static void
fth_window_class_init(FthWindowClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS(klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);

  object_class->dispose = fth_window_dispose;
  object_class->finalize = fth_window_finalize;

  /* Emitted when a project is shown. */
  signals[SIGNAL_PROJECT_OPENED] = g_signal_new("project-opened", G_TYPE_FROM_CLASS(klass),
                                                G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                                G_TYPE_NONE, 0);
  /* Emitted with the error message when opening a project failed. */
  signals[SIGNAL_OPEN_FAILED] = g_signal_new("open-failed", G_TYPE_FROM_CLASS(klass),
                                             G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                             G_TYPE_NONE, 1, G_TYPE_STRING);
  /* Emitted with the item id once an annotation edit, undo or redo is saved and shown. */
  signals[SIGNAL_ITEM_ANNOTATED] = g_signal_new("item-annotated", G_TYPE_FROM_CLASS(klass),
                                                G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                                G_TYPE_NONE, 1, G_TYPE_INT64);
  /* Emitted once a label was added, edited or removed and the window shows it. */
  signals[SIGNAL_LABELS_CHANGED] = g_signal_new("labels-changed", G_TYPE_FROM_CLASS(klass),
                                                G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                                G_TYPE_NONE, 0);
  /* Emitted with the message whenever an error is shown in a toast. */
  signals[SIGNAL_ERROR] = g_signal_new("error", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0,
                                       NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_STRING);
  /* Emitted when a long job's end is announced: its title, the outcome, and whether it went
   * out as a desktop notification (TRUE) or a toast (FALSE). */
  signals[SIGNAL_JOB_ANNOUNCED] = g_signal_new("job-announced", G_TYPE_FROM_CLASS(klass),
                                               G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                               G_TYPE_NONE, 3, G_TYPE_STRING, G_TYPE_STRING,
                                               G_TYPE_BOOLEAN);

  g_type_ensure(FTH_TYPE_LABEL_PALETTE);
  g_type_ensure(FTH_TYPE_ITEM_VIEW);
  g_type_ensure(FTH_TYPE_JOBS_PANEL);
  g_type_ensure(FTH_TYPE_TRAINING_PAGE);
  g_type_ensure(FTH_TYPE_TUNE_PAGE);
  g_type_ensure(FTH_TYPE_QUEUE_PANEL);
  gtk_widget_class_set_template_from_resource(widget_class,
                                              "/io/github/fathom/Workbench/fth-window.ui");
  gtk_widget_class_bind_template_child(widget_class, FthWindow, toast_overlay);
  gtk_widget_class_bind_template_child(widget_class, FthWindow, window_title);
  gtk_widget_class_bind_template_child(widget_class, FthWindow, view_stack);
  gtk_widget_class_bind_template_child(widget_class, FthWindow, training_page);
  gtk_widget_class_bind_template_child(widget_class, FthWindow, tune_page);
  gtk_widget_class_bind_template_child(widget_class, FthWindow, queue_panel);
  gtk_widget_class_bind_template_callback(widget_class, queue_item_activated);
  gtk_widget_class_bind_template_callback(widget_class, queue_item_dequeued);
  gtk_widget_class_bind_template_child(widget_class, FthWindow, stack);
  gtk_widget_class_bind_template_child(widget_class, FthWindow, recent_group);
  gtk_widget_class_bind_template_child(widget_class, FthWindow, recent_list);
  gtk_widget_class_bind_template_child(widget_class, FthWindow, loading_spinner);
  gtk_widget_class_bind_template_child(widget_class, FthWindow, loading_label);
  gtk_widget_class_bind_template_child(widget_class, FthWindow, flap);
  gtk_widget_class_bind_template_child(widget_class, FthWindow, project_name_label);
  gtk_widget_class_bind_template_child(widget_class, FthWindow, project_dir_label);
  gtk_widget_class_bind_template_child(widget_class, FthWindow, counts_label);
  gtk_widget_class_bind_template_child(widget_class, FthWindow, label_palette);
  gtk_widget_class_bind_template_child(widget_class, FthWindow, jobs_panel);
  gtk_widget_class_bind_template_callback(widget_class, job_finished);
  gtk_widget_class_bind_template_callback(widget_class, show_confusion_items);
  gtk_widget_class_bind_template_child(widget_class, FthWindow, items_stack);
  gtk_widget_class_bind_template_child(widget_class, FthWindow, items_grid);
  gtk_widget_class_bind_template_child(widget_class, FthWindow, search_entry);
  gtk_widget_class_bind_template_child(widget_class, FthWindow, filter_bar);
  gtk_widget_class_bind_template_child(widget_class, FthWindow, item_view);
  gtk_widget_class_bind_template_callback(widget_class, grid_activated);
  gtk_widget_class_bind_template_callback(widget_class, palette_label_activated);
  gtk_widget_class_bind_template_child(widget_class, FthWindow, filter_dropdown);
  gtk_widget_class_bind_template_child(widget_class, FthWindow, filter_choices);
  gtk_widget_class_bind_template_callback(widget_class, search_changed);
  gtk_widget_class_bind_template_callback(widget_class, filter_choice_changed);
}

static void
fth_window_init(FthWindow *self)
{
  gtk_widget_init_template(GTK_WIDGET(self));

  self->cells = g_ptr_array_new();
  self->label_ids = g_array_new(FALSE, FALSE, sizeof(gint64));
  self->hotkeys = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  self->zoom_step = DEFAULT_ZOOM_STEP;
  self->long_job_s = LONG_JOB_S;
  self->split_filter = FTH_SPLIT_ANY;
  restore_window_state(self);

  g_action_map_add_action_entries(G_ACTION_MAP(self), win_actions, G_N_ELEMENTS(win_actions),
                                  self);
  g_autoptr(GPropertyAction) toggle_sidebar =
    g_property_action_new("toggle-sidebar", self->flap, "reveal-flap");
  g_action_map_add_action(G_ACTION_MAP(self), G_ACTION(toggle_sidebar));
  /* Whether next and previous follow the labeling queue; saved with the window state. */
  g_autoptr(GAction) follow_queue =
    self->settings != NULL
      ? g_settings_create_action(self->settings, "follow-queue")
      : G_ACTION(g_simple_action_new_stateful("follow-queue", NULL, g_variant_new_boolean(FALSE)));
  g_action_map_add_action(G_ACTION_MAP(self), follow_queue);

  GtkListItemFactory *factory = gtk_signal_list_item_factory_new();
  g_signal_connect(factory, "setup", G_CALLBACK(cell_setup), self);
  g_signal_connect(factory, "teardown", G_CALLBACK(cell_teardown), self);
  g_signal_connect(factory, "bind", G_CALLBACK(cell_bind), self);
  g_signal_connect(factory, "unbind", G_CALLBACK(cell_unbind), self);
  gtk_grid_view_set_factory(self->items_grid, factory);
  g_object_unref(factory);

  GtkDropTarget *drop = gtk_drop_target_new(GDK_TYPE_FILE_LIST, GDK_ACTION_COPY);
  gtk_event_controller_set_name(GTK_EVENT_CONTROLLER(drop), "fth-drop");
  g_signal_connect(drop, "drop", G_CALLBACK(files_dropped), self);
  gtk_widget_add_controller(GTK_WIDGET(self), GTK_EVENT_CONTROLLER(drop));

  GtkEventController *keys = gtk_event_controller_key_new();
  gtk_event_controller_set_name(keys, "fth-label-hotkeys");
  g_signal_connect(keys, "key-pressed", G_CALLBACK(key_pressed), self);
  gtk_widget_add_controller(GTK_WIDGET(self), keys);

  self->waveform_view = fth_waveform_view_new();
  self->text_span_view = fth_text_span_view_new();
  GtkWidget *media_views[] = { self->waveform_view, self->text_span_view };
  for (guint i = 0; i < G_N_ELEMENTS(media_views); i++) {
    g_signal_connect(media_views[i], "add-annotation", G_CALLBACK(media_add_annotation), self);
    g_signal_connect(media_views[i], "update-annotation", G_CALLBACK(media_update_annotation),
                     self);
    g_signal_connect(media_views[i], "remove-annotation", G_CALLBACK(media_remove_annotation),
                     self);
    g_signal_connect(media_views[i], "set-class", G_CALLBACK(media_set_class), self);
  }
  gtk_stack_add_named(self->items_stack, self->waveform_view, "audio");
  gtk_stack_add_named(self->items_stack, self->text_span_view, "text");

  populate_filters(self, NULL);
  update_actions(self);
  reload_recent(self);
}
