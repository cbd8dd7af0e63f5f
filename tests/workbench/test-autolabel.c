/* test-autolabel.c: AutoLabel in the workbench window, under Xvfb, on a small real project
 * (8x8 IDX images whose two bright rows give the class, a tiny CNN trained on the half that is
 * labeled, a seeded queue): the queue panel lists the queue in score order with why each item is
 * asked; with the queue followed, next and previous go through it; labeling the shown item (a
 * number key's label or space accepting the suggestion) takes it off the queue and moves on; the
 * K-th new label starts a background fine-tune round whose held-out accuracy lands on the chart
 * and whose predictions refill the queue; pseudo-labels are promoted in bulk. */
#include "fth-item-view.h"
#include "fth-jobs-panel.h"
#include "fth-line-chart.h"
#include "fth-queue-panel.h"
#include "fth-test-project.h"
#include "workbench-test-util.h"

#include <fathom/active.h>
#include <string.h>

#define TIMEOUT_MS 60000

enum { N_ITEMS = 90, N_LABELED = 45, S = 8, N_CLASSES = 3, N_QUEUED = 5, K = 3 };

/* The queue as seeded: pool positions in rank order, with falling scores. */
static const int queued[N_QUEUED] = { 60, 51, 77, 48, 70 };

static FthApplication *app;

typedef struct {
  char *root, *dir;
  gint64 items[N_ITEMS], labels[N_CLASSES];
  gint64 queued_ids[N_QUEUED];
} Project;

/* Items, the first N_LABELED labeled by a human, a checkpoint trained on them, every item
 * pre-labeled with it, the margin queue seeded, K = 3 and the loop's count at the labels so
 * far. */
static Project *
project_new(void)
{
  g_autoptr(GError) error = NULL;
  Project *p = g_new0(Project, 1);
  p->root = g_dir_make_tmp("fathom-autolabel-XXXXXX", &error);
  g_assert_no_error(error);
  p->dir = g_build_filename(p->root, "project", NULL);
  const FthTestBars bars = { .n_items = N_ITEMS, .size = S, .n_classes = N_CLASSES, .seed = 5,
                             .noise_max = 60, .bar_min = 180, .two_bars = TRUE };
  const char *const names[N_CLASSES] = { "top", "middle", "bottom" };
  const char *const keys[N_CLASSES] = { "1", "2", "3" };
  g_autoptr(FthStore) store = fth_test_bars_project_new(p->dir, &bars, names, N_LABELED,
                                                        p->labels, p->items);
  for (int k = 0; k < N_CLASSES; k++)
    g_assert_true(fth_store_set_label_hotkey(store, p->labels[k], keys[k], &error));

  g_autofree char *recipe = g_build_filename(p->root, "tiny.json", NULL);
  g_assert_true(g_file_set_contents(recipe, FTH_TEST_TINY_CNN_RECIPE, -1, &error));
  FthTrainOptions o;
  fth_train_options_init(&o);
  o.recipe = recipe;
  o.epochs = 6;
  o.seed = 3;
  g_autofree char *ckpt = g_build_filename(p->dir, "models", "first", NULL);
  o.checkpoint_dir = ckpt;
  FthTrainResult res = { 0 };
  g_assert_true(fth_train(store, &o, &res, &error));
  g_assert_no_error(error);
  fth_train_result_clear(&res);
  FthPrelabelResult pre;
  g_assert_true(fth_prelabel(store, ckpt, NULL, NULL, &pre, &error));
  g_assert_no_error(error);

  FthQueueEntry entries[N_QUEUED] = { 0 };
  for (int j = 0; j < N_QUEUED; j++) {
    p->queued_ids[j] = p->items[queued[j]];
    entries[j].item_id = p->queued_ids[j];
    entries[j].score = 0.9 - 0.1 * j;
    entries[j].rank = j;
  }
  g_assert_true(fth_store_replace_queue(store, "margin", pre.run_id, entries, N_QUEUED, &error));

  FthActiveSettings st;
  fth_active_settings_init(&st);
  st.strategy = FTH_ACQ_MARGIN;
  st.batch = N_QUEUED;
  st.retrain_every = K;
  g_assert_true(fth_active_settings_save(store, &st, &error));
  gboolean due = FALSE;
  gint64 n_labels = 0;
  g_assert_true(fth_active_round_due(store, &st, &due, &n_labels, &error));
  g_autofree char *at = g_strdup_printf("%" G_GINT64_FORMAT, n_labels);
  g_assert_true(fth_store_set_meta(store, "active.labels_at_round", at, &error));
  g_assert_no_error(error);
  return p;
}

static void
project_free(Project *p)
{
  fth_test_rmtree(p->root);
  g_free(p->root);
  g_free(p->dir);
  g_free(p);
}

static FthWindow *
open_window(Project *p)
{
  FthWindow *window = fth_window_new(app);
  gtk_window_set_default_size(GTK_WINDOW(window), 1000, 700);
  gtk_window_present(GTK_WINDOW(window));
  g_autofree char *message = NULL;
  g_assert_true(fth_test_open_project(window, p->dir, TIMEOUT_MS, &message));
  return window;
}

static void
destroy_window(FthWindow *window)
{
  gtk_window_destroy(GTK_WINDOW(window));
  fth_test_spin_for(200);
}

static FthQueuePanel *
find_panel(FthWindow *window)
{
  g_autoptr(GPtrArray) panels = fth_test_find_widgets(GTK_WIDGET(window), FTH_TYPE_QUEUE_PANEL);
  g_assert_cmpuint(panels->len, ==, 1);
  return g_ptr_array_index(panels, 0);
}

static FthItemView *
find_item_view(FthWindow *window)
{
  g_autoptr(GPtrArray) views = fth_test_find_widgets(GTK_WIDGET(window), FTH_TYPE_ITEM_VIEW);
  g_assert_cmpuint(views->len, ==, 1);
  return g_ptr_array_index(views, 0);
}

typedef struct {
  FthQueuePanel *panel;
  guint n;
} PanelWait;

static gboolean
panel_has(gpointer data)
{
  PanelWait *w = data;
  return !fth_queue_panel_is_busy(w->panel) && fth_queue_panel_get_n_entries(w->panel) == w->n;
}

static void
wait_entries(FthQueuePanel *panel, guint n)
{
  PanelWait w = { panel, n };
  g_assert_true(fth_test_spin_until(panel_has, &w, TIMEOUT_MS));
}

/* The panel's queue list (named in its template). */
static GtkListBox *
queue_list(FthQueuePanel *panel)
{
  g_autoptr(GPtrArray) lists = fth_test_find_widgets(GTK_WIDGET(panel), GTK_TYPE_LIST_BOX);
  for (guint i = 0; i < lists->len; i++)
    if (g_strcmp0(gtk_widget_get_name(lists->pdata[i]), "queue-list") == 0)
      return lists->pdata[i];
  g_assert_not_reached();
}

static void
test_panel_lists_queue(void)
{
  Project *p = project_new();
  FthWindow *window = open_window(p);
  FthQueuePanel *panel = find_panel(window);
  wait_entries(panel, N_QUEUED);

  /* Rank order, which the scores fall with; each row says why. */
  GtkListBox *list = queue_list(panel);
  for (guint j = 0; j < N_QUEUED; j++) {
    g_assert_cmpint(fth_queue_panel_get_entry(panel, j), ==, p->queued_ids[j]);
    GtkListBoxRow *row = gtk_list_box_get_row_at_index(list, (int)j);
    g_assert_nonnull(row);
    const char *why = adw_action_row_get_subtitle(ADW_ACTION_ROW(row));
    g_autofree char *score = g_strdup_printf("margin %.3g", 0.9 - 0.1 * j);
    g_assert_true(g_str_has_prefix(why, score));
    g_assert_nonnull(strchr(why, '%')); /* the model's class and its confidence */
    g_autofree char *title = g_strdup_printf("images-idx3-ubyte #%d", queued[j]);
    g_assert_cmpstr(adw_preferences_row_get_title(ADW_PREFERENCES_ROW(row)), ==, title);
  }
  g_assert_null(gtk_list_box_get_row_at_index(list, N_QUEUED));

  /* Activating a row shows its item. */
  g_signal_emit_by_name(list, "row-activated", gtk_list_box_get_row_at_index(list, 2));
  FthItemView *view = find_item_view(window);
  g_assert_nonnull(fth_item_view_get_item(view));
  g_assert_cmpint(fth_item_get_id(fth_item_view_get_item(view)), ==, p->queued_ids[2]);

  destroy_window(window);
  project_free(p);
}

static gint64
shown_id(FthItemView *view)
{
  return fth_item_get_id(fth_item_view_get_item(view));
}

typedef struct {
  FthItemView *view;
  gint64 id;
} ShownWait;

static gboolean
shows(gpointer data)
{
  ShownWait *w = data;
  return fth_item_view_get_item(w->view) != NULL && shown_id(w->view) == w->id &&
         fth_item_view_is_loaded(w->view);
}

static void
wait_shown(FthItemView *view, gint64 id)
{
  ShownWait w = { view, id };
  g_assert_true(fth_test_spin_until(shows, &w, TIMEOUT_MS));
}

static gboolean
has_human_label(FthStore *store, gint64 item_id)
{
  g_autoptr(GPtrArray) anns = fth_store_list_annotations(store, item_id, NULL);
  for (guint i = 0; i < anns->len; i++)
    if (((FthAnnotation *)anns->pdata[i])->author == FTH_AUTHOR_HUMAN)
      return TRUE;
  return FALSE;
}

static gboolean
queue_has(FthStore *store, gint64 item_id)
{
  g_autoptr(GPtrArray) q = fth_store_list_queue(store, "margin", 0, NULL);
  for (guint i = 0; i < q->len; i++)
    if (((FthQueueEntry *)q->pdata[i])->item_id == item_id)
      return TRUE;
  return FALSE;
}

typedef struct {
  FthLineChart *chart;
  FthQueuePanel *panel;
} ChartWait;

static gboolean
chart_has_point(gpointer data)
{
  ChartWait *w = data;
  return fth_line_chart_get_n_points(w->chart, 0) == 1 && !fth_queue_panel_is_busy(w->panel);
}

static void
test_follow_queue_and_loop(void)
{
  Project *p = project_new();
  FthWindow *window = open_window(p);
  FthStore *store = fth_window_get_store(window);
  FthQueuePanel *panel = find_panel(window);
  FthItemView *view = find_item_view(window);
  GActionGroup *actions = G_ACTION_GROUP(window);
  wait_entries(panel, N_QUEUED);

  /* Off: next goes by grid position. */
  g_autoptr(GPtrArray) grids = fth_test_find_widgets(GTK_WIDGET(window), GTK_TYPE_GRID_VIEW);
  g_signal_emit_by_name(g_ptr_array_index(grids, 0), "activate", 0u);
  wait_shown(view, p->items[0]);
  g_action_group_activate_action(actions, "next-item", NULL);
  wait_shown(view, p->items[1]);

  /* On: from an item off the queue, next is the queue's first, then its order; previous back. */
  g_action_group_change_action_state(actions, "follow-queue", g_variant_new_boolean(TRUE));
  g_action_group_activate_action(actions, "next-item", NULL);
  wait_shown(view, p->queued_ids[0]);
  g_action_group_activate_action(actions, "next-item", NULL);
  wait_shown(view, p->queued_ids[1]);
  g_action_group_activate_action(actions, "previous-item", NULL);
  wait_shown(view, p->queued_ids[0]);

  /* A number key's label: the item leaves the queue (store and panel), the view moves on. */
  g_action_group_activate_action(actions, "set-label", g_variant_new_int64(p->labels[0]));
  wait_shown(view, p->queued_ids[1]);
  g_assert_true(has_human_label(store, p->queued_ids[0]));
  g_assert_false(queue_has(store, p->queued_ids[0]));
  g_assert_cmpuint(fth_queue_panel_get_n_entries(panel), ==, N_QUEUED - 1);
  g_assert_cmpint(fth_queue_panel_get_entry(panel, 0), ==, p->queued_ids[1]);

  /* Space accepts the model's class: the same. */
  g_assert_true(fth_item_view_accept_suggestion(view));
  wait_shown(view, p->queued_ids[2]);
  g_assert_true(has_human_label(store, p->queued_ids[1]));
  g_assert_cmpuint(fth_queue_panel_get_n_entries(panel), ==, N_QUEUED - 2);

  /* Two new labels: no round yet. */
  FthLineChart *chart = fth_queue_panel_get_chart(panel);
  fth_test_spin_for(300);
  g_assert_false(fth_queue_panel_is_busy(panel));
  g_assert_cmpuint(fth_line_chart_get_n_points(chart, 0), ==, 0);

  /* The K-th starts the round in the background: a fine-tune from the checkpoint, its held-out
   * accuracy on the chart at the number of labels, the pool re-scored and the queue refilled
   * from the new predictions. */
  g_action_group_activate_action(actions, "set-label", g_variant_new_int64(p->labels[1]));
  wait_shown(view, p->queued_ids[3]);
  ChartWait cw = { chart, panel };
  g_assert_true(fth_test_spin_until(chart_has_point, &cw, TIMEOUT_MS));
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) rounds = fth_store_list_runs(store, "active-round", &error);
  g_assert_no_error(error);
  g_assert_cmpuint(rounds->len, ==, 1);
  g_autoptr(GPtrArray) acc =
    fth_store_list_metrics(store, ((FthRun *)rounds->pdata[0])->id, "test_acc", &error);
  g_assert_cmpuint(acc->len, ==, 1);
  g_assert_cmpint(((FthMetric *)acc->pdata[0])->step, ==, N_LABELED + K);
  wait_entries(panel, N_QUEUED);
  g_autoptr(GPtrArray) q = fth_store_list_queue(store, "margin", 0, &error);
  g_assert_cmpuint(q->len, ==, N_QUEUED);
  g_autoptr(GPtrArray) predicted = fth_store_list_runs(store, "predict", &error);
  for (guint i = 0; i < q->len; i++) {
    const FthQueueEntry *e = q->pdata[i];
    g_assert_cmpint(e->run_id, ==, ((FthRun *)predicted->pdata[0])->id);
    g_assert_false(has_human_label(store, e->item_id));
  }

  /* The state is saved with the window state (the build compiles the schema for the tests). */
  g_autoptr(GSettingsSchema) schema =
    g_settings_schema_source_lookup(g_settings_schema_source_get_default(), FTH_APPLICATION_ID,
                                    TRUE);
  g_assert_nonnull(schema);
  g_autoptr(GSettings) settings = g_settings_new_full(schema, NULL, NULL);
  g_assert_true(g_settings_get_boolean(settings, "follow-queue"));
  g_action_group_change_action_state(actions, "follow-queue", g_variant_new_boolean(FALSE));
  g_assert_false(g_settings_get_boolean(settings, "follow-queue"));

  destroy_window(window);
  project_free(p);
}

static gboolean
pseudo_reviewed(gpointer data)
{
  FthQueuePanel *panel = data;
  return !fth_queue_panel_is_busy(panel) && fth_queue_panel_get_n_pseudo(panel) == 0;
}

static void
test_pseudo_review(void)
{
  Project *p = project_new();
  g_autoptr(GError) error = NULL;
  guint n_pseudo = 0;
  {
    g_autoptr(FthStore) store = fth_store_open(p->dir, &error);
    gint64 run = 0;
    /* Every top class of three reaches 1/3: all unlabeled items get one. */
    g_assert_true(fth_pseudo_label(store, 0, 0.3, 0, &run, &n_pseudo, &error));
    g_assert_no_error(error);
  }
  g_assert_cmpuint(n_pseudo, ==, N_ITEMS - N_LABELED);
  FthWindow *window = open_window(p);
  FthStore *store = fth_window_get_store(window);
  FthQueuePanel *panel = find_panel(window);
  wait_entries(panel, N_QUEUED);
  g_assert_cmpuint(fth_queue_panel_get_n_pseudo(panel), ==, n_pseudo);

  /* Promote all of them: every unlabeled item now has a human label. */
  g_autoptr(GPtrArray) buttons = fth_test_find_widgets(GTK_WIDGET(panel), GTK_TYPE_BUTTON);
  GtkButton *promote = NULL;
  for (guint i = 0; i < buttons->len; i++)
    if (g_strcmp0(gtk_button_get_label(buttons->pdata[i]), "Pro_mote") == 0)
      promote = buttons->pdata[i];
  g_assert_nonnull(promote);
  g_assert_true(gtk_widget_get_sensitive(GTK_WIDGET(promote)));
  g_signal_emit_by_name(promote, "clicked");
  g_assert_true(fth_test_spin_until(pseudo_reviewed, panel, TIMEOUT_MS));
  for (int i = N_LABELED; i < N_ITEMS; i++)
    g_assert_true(has_human_label(store, p->items[i]));
  /* Labeled items have nothing left to ask: the queue empties on the next read. */
  wait_entries(panel, 0);

  destroy_window(window);
  project_free(p);
}

int
main(int argc, char **argv)
{
  if (!fth_test_under_xvfb("test-autolabel"))
    return 77;
  gtk_test_init(&argc, &argv, NULL);
  app = fth_test_application_new();

  g_test_add_func("/autolabel/panel-lists-queue", test_panel_lists_queue);
  g_test_add_func("/autolabel/follow-queue-and-loop", test_follow_queue_and_loop);
  g_test_add_func("/autolabel/pseudo-review", test_pseudo_review);

  int status = g_test_run();
  g_object_unref(app);
  return status;
}
