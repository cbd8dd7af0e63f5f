/* test-workbench.c: the workbench window on a real project store, under Xvfb.
 *
 * Each test builds its project with the store API, opens it in a window the way the user
 * would (fth_window_open_project, which runs off the main thread), spins the main loop until
 * the window answers, and checks what it shows: the item grid's model, the label palette,
 * the actions and their shortcuts, the rendered pixels, and errors for folders that are not
 * projects. */
#include "fth-confusion-matrix.h"
#include "fth-image-canvas.h"
#include "fth-item-cell.h"
#include "fth-item-view.h"
#include "fth-jobs-panel.h"
#include "fth-label-palette.h"
#include "fth-line-chart.h"
#include "fth-recent-projects.h"
#include "fth-thumbnail-loader.h"
#include "fth-training-page.h"
#include "fth-test-project.h"
#include "workbench-test-util.h"

#include <errno.h>
#include <json-glib/json-glib.h>
#include <sqlite3.h>
#include <glib/gstdio.h>

#define OPEN_TIMEOUT_MS 20000

static FthApplication *app;

/* Solid colors of the test images, far from anything the Adwaita theme draws. */
static const guint8 image_colors[][3] = {
  { 230, 20, 20 },
  { 20, 200, 40 },
  { 30, 40, 230 },
  { 240, 220, 0 },
};

static void
write_png(const char *path, int width, int height, const guint8 rgb[3])
{
  g_autofree guint8 *pixels = g_malloc((gsize)width * (gsize)height * 3);
  for (int i = 0; i < width * height; i++)
    memcpy(pixels + 3 * i, rgb, 3);
  g_autoptr(GBytes) bytes = g_bytes_new_take(g_steal_pointer(&pixels),
                                             (gsize)width * (gsize)height * 3);
  g_autoptr(GdkTexture) texture =
    gdk_memory_texture_new(width, height, GDK_MEMORY_R8G8B8, bytes, (gsize)width * 3);
  g_assert_true(gdk_texture_save_to_png(texture, path));
}

static gint64
add_item(FthStore *store, const char *path, gint64 member, int width, int height)
{
  g_autoptr(FthItemRecord) record = fth_item_record_new();
  g_autofree char *key = g_strdup_printf("%s#%" G_GINT64_FORMAT, path, member);
  g_autoptr(GError) error = NULL;
  gint64 id = 0;
  gboolean duplicate = FALSE;

  record->kind = FTH_ITEM_IMAGE;
  record->path = g_strdup(path);
  record->member = member;
  record->sha256 = g_compute_checksum_for_string(G_CHECKSUM_SHA256, key, -1);
  record->width = width;
  record->height = height;
  record->split = FTH_SPLIT_TRAIN;
  g_assert_true(fth_store_add_item(store, record, &id, &duplicate, &error));
  g_assert_no_error(error);
  g_assert_false(duplicate);
  return id;
}

/* A project with four colored PNGs (the first labeled "cat"), one item whose file is
 * missing, and three labels. */
static char *
create_project(void)
{
  g_autoptr(GError) error = NULL;
  char *dir = g_dir_make_tmp("fathom-workbench-XXXXXX", &error);
  g_assert_no_error(error);
  g_autoptr(FthStore) store = fth_store_create(dir, &error);
  g_assert_no_error(error);
  g_assert_true(fth_store_set_name(store, "Test Animals", &error));

  gint64 cat = 0;
  g_assert_true(fth_store_add_label(store, "cat", "#e01b24", "1", FTH_LABEL_CLASS, &cat, &error));
  g_assert_true(fth_store_add_label(store, "dog", "#2ec27e", "2", FTH_LABEL_CLASS, NULL, &error));
  g_assert_true(fth_store_add_label(store, "bird", "#3584e4", NULL, FTH_LABEL_CLASS, NULL, &error));
  g_assert_no_error(error);

  gint64 first = 0;
  for (guint i = 0; i < G_N_ELEMENTS(image_colors); i++) {
    g_autofree char *name = g_strdup_printf("image-%u.png", i);
    g_autofree char *path = g_build_filename(dir, name, NULL);
    write_png(path, 40, 30, image_colors[i]);
    gint64 id = add_item(store, path, -1, 40, 30);
    if (i == 0)
      first = id;
  }
  g_autofree char *missing = g_build_filename(dir, "missing.png", NULL);
  add_item(store, missing, -1, 40, 30);

  g_assert_true(fth_store_set_class(store, first, cat, FTH_AUTHOR_HUMAN, 0, 1.0, NULL, &error));
  g_assert_no_error(error);
  return dir;
}

static FthWindow *
new_window(void)
{
  FthWindow *window = fth_window_new(app);
  gtk_window_set_default_size(GTK_WINDOW(window), 900, 640);
  gtk_window_present(GTK_WINDOW(window));
  return window;
}

static void
destroy_window(FthWindow *window)
{
  gtk_window_destroy(GTK_WINDOW(window));
  /* Let cancelled loads and thumbnail tasks deliver their results before the next test. */
  fth_test_spin_for(200);
}

static void on_item_annotated(FthWindow *window, gint64 item_id, gpointer user_data);
static gboolean id_set(gpointer data);

static gboolean
strv_has(const char *const *strv, const char *s)
{
  return strv != NULL && g_strv_contains(strv, s);
}

typedef struct {
  GListModel *model;
  guint count;
} CountWait;

static gboolean
has_count(gpointer data)
{
  CountWait *wait = data;
  return g_list_model_get_n_items(wait->model) == wait->count;
}

/* ---- the tests ------------------------------------------------------------------------- */

static void
test_open_project(void)
{
  g_autofree char *dir = create_project();
  FthWindow *window = new_window();
  g_autofree char *message = NULL;

  g_assert_false(fth_window_has_project(window));
  gboolean opened = fth_test_open_project(window, dir, OPEN_TIMEOUT_MS, &message);
  g_assert_null(message);
  g_assert_true(opened);
  g_assert_true(fth_window_has_project(window));

  /* The grid shows the store's items through FthItemList. */
  GListModel *items = fth_window_get_items(window);
  g_assert_nonnull(items);
  g_assert_cmpuint(g_list_model_get_n_items(items), ==, 5);
  g_autoptr(GPtrArray) grids = fth_test_find_widgets(GTK_WIDGET(window), GTK_TYPE_GRID_VIEW);
  g_assert_cmpuint(grids->len, ==, 1);
  GtkSelectionModel *grid_model = gtk_grid_view_get_model(g_ptr_array_index(grids, 0));
  g_assert_cmpuint(g_list_model_get_n_items(G_LIST_MODEL(grid_model)), ==, 5);

  g_assert_cmpstr(gtk_window_get_title(GTK_WINDOW(window)), ==, "Test Animals");

  /* The label palette lists every label with its hotkey. */
  g_autoptr(GPtrArray) palettes =
    fth_test_find_widgets(GTK_WIDGET(window), FTH_TYPE_LABEL_PALETTE);
  g_assert_cmpuint(palettes->len, ==, 1);
  FthLabelPalette *palette = g_ptr_array_index(palettes, 0);
  g_assert_cmpuint(fth_label_palette_get_n_labels(palette), ==, 3);
  g_autoptr(GPtrArray) labels = fth_test_find_widgets(GTK_WIDGET(palette), GTK_TYPE_LABEL);
  g_autoptr(GStrvBuilder) builder = g_strv_builder_new();
  for (guint i = 0; i < labels->len; i++)
    g_strv_builder_add(builder, gtk_label_get_text(g_ptr_array_index(labels, i)));
  g_auto(GStrv) texts = g_strv_builder_end(builder);
  for (guint i = 0; i < 5; i++) {
    static const char *expected[] = { "cat", "1", "dog", "2", "bird" };
    if (!strv_has((const char *const *)texts, expected[i]))
      g_error("label palette lacks \"%s\"", expected[i]);
  }

  /* The drop-down filters by label or unlabeled; the search entry by path. (The training page
   * has the other one, its confusion matrix's.) */
  g_autoptr(GPtrArray) dropdowns = fth_test_find_widgets(GTK_WIDGET(window), GTK_TYPE_DROP_DOWN);
  for (guint i = dropdowns->len; i-- > 0;)
    if (gtk_widget_get_ancestor(g_ptr_array_index(dropdowns, i), FTH_TYPE_TRAINING_PAGE) != NULL)
      g_ptr_array_remove_index(dropdowns, i);
  g_assert_cmpuint(dropdowns->len, ==, 1);
  GtkDropDown *filter = g_ptr_array_index(dropdowns, 0);
  g_assert_cmpuint(g_list_model_get_n_items(gtk_drop_down_get_model(filter)), ==, 2 + 3);
  gtk_drop_down_set_selected(filter, 2); /* "cat" */
  g_assert_cmpuint(g_list_model_get_n_items(items), ==, 1);
  gtk_drop_down_set_selected(filter, 1); /* unlabeled */
  g_assert_cmpuint(g_list_model_get_n_items(items), ==, 4);
  gtk_drop_down_set_selected(filter, 0);
  g_assert_cmpuint(g_list_model_get_n_items(items), ==, 5);

  g_autoptr(GPtrArray) entries =
    fth_test_find_widgets(GTK_WIDGET(window), GTK_TYPE_SEARCH_ENTRY);
  GtkEditable *search = NULL;
  for (guint i = 0; i < entries->len; i++) /* the drop-down's popover has its own */
    if (gtk_widget_get_ancestor(g_ptr_array_index(entries, i), GTK_TYPE_POPOVER) == NULL)
      search = g_ptr_array_index(entries, i);
  g_assert_nonnull(search);
  gtk_editable_set_text(search, "image-2");
  CountWait wait = { items, 1 };
  g_assert_true(fth_test_spin_until(has_count, &wait, OPEN_TIMEOUT_MS));
  gtk_editable_set_text(search, "no-such-item");
  wait.count = 0;
  g_assert_true(fth_test_spin_until(has_count, &wait, OPEN_TIMEOUT_MS));
  gtk_editable_set_text(search, "");
  wait.count = 5;
  g_assert_true(fth_test_spin_until(has_count, &wait, OPEN_TIMEOUT_MS));

  /* A successful open is remembered. */
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) recent = fth_recent_projects_load(&error);
  g_assert_no_error(error);
  g_autofree char *canonical = g_canonicalize_filename(dir, NULL);
  g_assert_nonnull(recent);
  g_assert_cmpstr(recent[0], ==, canonical);

  destroy_window(window);
  fth_test_rmtree(dir);
}

static gboolean
color_near(const guint8 *bgra, const guint8 rgb[3], int tolerance)
{
  return abs(bgra[2] - rgb[0]) <= tolerance && abs(bgra[1] - rgb[1]) <= tolerance &&
         abs(bgra[0] - rgb[2]) <= tolerance;
}

static void
test_render(void)
{
  g_autofree char *dir = create_project();
  FthWindow *window = new_window();

  g_assert_true(fth_test_open_project(window, dir, OPEN_TIMEOUT_MS, NULL));
  g_assert_true(fth_test_wait_for_thumbnails(window, OPEN_TIMEOUT_MS));

  /* The item whose file is missing is shown as such: its cell carries the decoder's error. */
  g_autoptr(GPtrArray) cells = fth_test_find_widgets(GTK_WIDGET(window), FTH_TYPE_ITEM_CELL);
  gboolean missing_reported = FALSE;
  for (guint i = 0; i < cells->len; i++) {
    GtkWidget *cell = g_ptr_array_index(cells, i);
    const char *tooltip = gtk_widget_get_tooltip_text(cell);
    FthItem *item = fth_item_cell_get_item(FTH_ITEM_CELL(cell));
    if (item != NULL && g_str_has_suffix(fth_item_get_path(item), "missing.png")) {
      g_assert_nonnull(tooltip);
      g_assert_nonnull(strstr(tooltip, "missing.png"));
      missing_reported = TRUE;
    }
  }
  g_assert_true(missing_reported);

  g_autoptr(GdkTexture) texture = fth_test_render_widget(GTK_WIDGET(window));
  g_assert_nonnull(texture);
  int width = gdk_texture_get_width(texture);
  int height = gdk_texture_get_height(texture);
  g_assert_cmpint(width, ==, gtk_widget_get_width(GTK_WIDGET(window)));
  gsize stride = (gsize)width * 4;
  g_autofree guint8 *pixels = g_malloc(stride * (gsize)height);
  gdk_texture_download(texture, pixels, stride);

  const char *out_dir = g_getenv("MESON_BUILD_ROOT");
  g_autofree char *png = g_build_filename(out_dir != NULL ? out_dir : g_get_tmp_dir(),
                                          "test-workbench-render.png", NULL);
  g_assert_true(gdk_texture_save_to_png(texture, png));

  /* Not blank: many distinct colors, and every test image's color drawn as a thumbnail. */
  g_autoptr(GHashTable) distinct = g_hash_table_new(g_direct_hash, g_direct_equal);
  guint found[G_N_ELEMENTS(image_colors)] = { 0 };
  for (int y = 0; y < height; y++) {
    const guint8 *row = pixels + (gsize)y * stride;
    for (int x = 0; x < width; x++) {
      const guint8 *px = row + 4 * x;
      guint32 value = (guint32)px[0] | (guint32)px[1] << 8 | (guint32)px[2] << 16;
      g_hash_table_add(distinct, GUINT_TO_POINTER(value));
      for (guint c = 0; c < G_N_ELEMENTS(image_colors); c++)
        if (color_near(px, image_colors[c], 8))
          found[c]++;
    }
  }
  g_assert_cmpuint(g_hash_table_size(distinct), >, 50);
  for (guint c = 0; c < G_N_ELEMENTS(image_colors); c++) {
    if (found[c] < 400)
      g_error("rendered window (%s) has %u pixels of test image %u's color; want a thumbnail",
              png, found[c], c);
  }

  destroy_window(window);
  fth_test_rmtree(dir);
}

static void
assert_accels(const char *action, const char *accel)
{
  g_auto(GStrv) accels = gtk_application_get_accels_for_action(GTK_APPLICATION(app), action);
  guint key = 0, want_key = 0;
  GdkModifierType mods = 0, want_mods = 0;

  g_assert_true(gtk_accelerator_parse(accel, &want_key, &want_mods));
  for (guint i = 0; accels != NULL && accels[i] != NULL; i++)
    if (gtk_accelerator_parse(accels[i], &key, &mods) && key == want_key && mods == want_mods)
      return;
  g_error("action %s lacks the shortcut %s", action, accel);
}

static void
test_actions(void)
{
  g_autofree char *dir = create_project();
  FthWindow *window = new_window();
  GActionGroup *win = G_ACTION_GROUP(window);

  static const char *win_actions[] = {
    "open",      "new-project",   "import",      "close-project", "find",     "set-label", "show-grid",     "next-item",
    "previous-item", "undo",      "redo",     "toggle-sidebar", "zoom-in", "zoom-out",
    "zoom-fit",  "zoom-original", "tool",   "show-help-overlay",
  };
  for (guint i = 0; i < G_N_ELEMENTS(win_actions); i++)
    if (!g_action_group_has_action(win, win_actions[i]))
      g_error("window lacks action win.%s", win_actions[i]);
  g_assert_true(g_action_group_has_action(G_ACTION_GROUP(app), "quit"));
  g_assert_true(g_action_group_has_action(G_ACTION_GROUP(app), "about"));

  assert_accels("app.quit", "<Control>q");
  assert_accels("win.open", "<Control>o");
  assert_accels("win.new-project", "<Control>n");
  assert_accels("win.import", "<Control>i");
  assert_accels("win.close-project", "<Control>w");
  assert_accels("win.find", "<Control>f");
  assert_accels("win.undo", "<Control>z");
  assert_accels("win.redo", "<Control><Shift>z");
  assert_accels("win.zoom-fit", "<Control>0");
  assert_accels("win.toggle-sidebar", "F9");
  assert_accels("win.zoom-in", "<Control>plus");
  assert_accels("win.zoom-out", "<Control>minus");
  assert_accels("win.show-help-overlay", "<Control>question");
  /* The shortcuts window comes from resources/gtk/help-overlay.ui. */
  g_assert_nonnull(gtk_application_window_get_help_overlay(GTK_APPLICATION_WINDOW(window)));

  /* The shortcuts window and the about window open from their actions. */
  g_action_group_activate_action(win, "show-help-overlay", NULL);
  GtkWindow *overlay =
    GTK_WINDOW(gtk_application_window_get_help_overlay(GTK_APPLICATION_WINDOW(window)));
  g_assert_true(gtk_widget_get_visible(GTK_WIDGET(overlay)));
  fth_test_spin_for(100); /* let it map and lay out before it goes */
  /* One page: GTK 4.8's page switcher measures its labels at a negative width now and then. */
  g_autoptr(GPtrArray) switchers =
    fth_test_find_widgets(GTK_WIDGET(overlay), GTK_TYPE_STACK_SWITCHER);
  for (guint i = 0; i < switchers->len; i++)
    g_assert_false(gtk_widget_get_visible(g_ptr_array_index(switchers, i)));
  gtk_widget_set_visible(GTK_WIDGET(overlay), FALSE);
  g_action_group_activate_action(G_ACTION_GROUP(app), "about", NULL);
  AdwAboutWindow *about = NULL;
  GListModel *toplevels = gtk_window_get_toplevels(); /* transfer none */
  for (guint i = 0; i < g_list_model_get_n_items(toplevels); i++) {
    g_autoptr(GObject) toplevel = g_list_model_get_item(toplevels, i);
    if (ADW_IS_ABOUT_WINDOW(toplevel))
      about = ADW_ABOUT_WINDOW(toplevel);
  }
  g_assert_nonnull(about);
  g_assert_cmpstr(adw_about_window_get_application_name(about), ==, "Fathom");
  fth_test_spin_for(100);
  gtk_window_destroy(GTK_WINDOW(about));

  /* Without a project there is nothing to close or zoom. */
  g_assert_false(g_action_group_get_action_enabled(win, "close-project"));
  g_assert_false(g_action_group_get_action_enabled(win, "zoom-in"));

  g_assert_true(fth_test_open_project(window, dir, OPEN_TIMEOUT_MS, NULL));
  g_assert_true(g_action_group_get_action_enabled(win, "close-project"));

  /* Zooming in stops at the largest thumbnails. */
  guint steps = 0;
  while (g_action_group_get_action_enabled(win, "zoom-in") && steps < 20) {
    g_action_group_activate_action(win, "zoom-in", NULL);
    steps++;
  }
  g_assert_cmpuint(steps, >, 0);
  g_assert_cmpuint(steps, <, 20);
  g_assert_true(g_action_group_get_action_enabled(win, "zoom-out"));

  /* The sidebar toggles. */
  g_autoptr(GVariant) before = g_action_group_get_action_state(win, "toggle-sidebar");
  g_action_group_activate_action(win, "toggle-sidebar", NULL);
  g_autoptr(GVariant) after = g_action_group_get_action_state(win, "toggle-sidebar");
  g_assert_cmpint(g_variant_get_boolean(before), !=, g_variant_get_boolean(after));

  /* Closing the project goes back to the start page. */
  g_action_group_activate_action(win, "close-project", NULL);
  g_assert_false(fth_window_has_project(window));
  g_assert_null(fth_window_get_items(window));
  g_assert_false(g_action_group_get_action_enabled(win, "close-project"));

  destroy_window(window);
  fth_test_rmtree(dir);
}

static void
on_item_annotated(FthWindow *window, gint64 item_id, gpointer user_data)
{
  *(gint64 *)user_data = item_id;
}

static gboolean
id_set(gpointer data)
{
  return *(gint64 *)data != 0;
}

/* win.set-label writes a human class annotation for the selected item and the grid, counts
 * and palette show it. */
static void
test_set_label(void)
{
  g_autofree char *dir = create_project();
  FthWindow *window = new_window();
  g_autoptr(GError) error = NULL;

  g_assert_true(fth_test_open_project(window, dir, OPEN_TIMEOUT_MS, NULL));
  FthStore *store = fth_window_get_store(window);
  g_autoptr(FthLabel) dog = fth_store_find_label(store, "dog", &error);
  g_assert_no_error(error);
  g_assert_nonnull(dog);

  g_autoptr(GPtrArray) grids = fth_test_find_widgets(GTK_WIDGET(window), GTK_TYPE_GRID_VIEW);
  GtkSelectionModel *selection = gtk_grid_view_get_model(g_ptr_array_index(grids, 0));
  g_assert_true(gtk_selection_model_select_item(selection, 2, TRUE));
  g_autoptr(FthItem) item = g_list_model_get_item(G_LIST_MODEL(selection), 2);
  g_assert_null(fth_item_get_class_label(item));

  gint64 labeled = 0;
  gulong handler = g_signal_connect(window, "item-annotated", G_CALLBACK(on_item_annotated), &labeled);
  g_action_group_activate_action(G_ACTION_GROUP(window), "set-label",
                                 g_variant_new_int64(dog->id));
  g_assert_true(fth_test_spin_until(id_set, &labeled, OPEN_TIMEOUT_MS));
  g_signal_handler_disconnect(window, handler);
  g_assert_cmpint(labeled, ==, fth_item_get_id(item));

  /* Saved in the store... */
  g_autoptr(GPtrArray) annotations = fth_store_list_annotations(store, labeled, &error);
  g_assert_no_error(error);
  g_assert_cmpuint(annotations->len, ==, 1);
  FthAnnotation *ann = g_ptr_array_index(annotations, 0);
  g_assert_cmpint(ann->label_id, ==, dog->id);
  g_assert_cmpint(ann->author, ==, FTH_AUTHOR_HUMAN);

  /* ...shown in the grid, still selected... */
  g_autoptr(FthItem) updated = g_list_model_get_item(G_LIST_MODEL(selection), 2);
  g_assert_cmpstr(fth_item_get_class_label(updated), ==, "dog");
  g_assert_true(gtk_selection_model_is_selected(selection, 2));

  /* ...and counted in the summary. */
  g_autoptr(GPtrArray) labels = fth_test_find_widgets(GTK_WIDGET(window), GTK_TYPE_LABEL);
  gboolean counted = FALSE;
  for (guint i = 0; i < labels->len; i++)
    if (strstr(gtk_label_get_text(g_ptr_array_index(labels, i)), "2 labeled, 3 unlabeled"))
      counted = TRUE;
  g_assert_true(counted);

  /* The hotkey of "cat" (1) labels the selected item the same way. */
  GtkEventController *hotkeys = NULL;
  g_autoptr(GListModel) controllers = gtk_widget_observe_controllers(GTK_WIDGET(window));
  for (guint i = 0; i < g_list_model_get_n_items(controllers); i++) {
    g_autoptr(GtkEventController) controller = g_list_model_get_item(controllers, i);
    if (g_strcmp0(gtk_event_controller_get_name(controller), "fth-label-hotkeys") == 0)
      hotkeys = controller;
  }
  g_assert_nonnull(hotkeys);
  g_assert_true(gtk_selection_model_select_item(selection, 3, TRUE));
  labeled = 0;
  handler = g_signal_connect(window, "item-annotated", G_CALLBACK(on_item_annotated), &labeled);
  gboolean handled = FALSE;
  g_signal_emit_by_name(hotkeys, "key-pressed", GDK_KEY_1, 0, 0, &handled);
  g_assert_true(handled);
  g_assert_true(fth_test_spin_until(id_set, &labeled, OPEN_TIMEOUT_MS));
  g_signal_handler_disconnect(window, handler);
  g_autoptr(FthItem) by_key = g_list_model_get_item(G_LIST_MODEL(selection), 3);
  g_assert_cmpstr(fth_item_get_class_label(by_key), ==, "cat");

  /* A key that is no label's hotkey is left to other handlers. */
  handled = TRUE;
  g_signal_emit_by_name(hotkeys, "key-pressed", GDK_KEY_z, 0, 0, &handled);
  g_assert_false(handled);

  destroy_window(window);
  fth_test_rmtree(dir);
}

/* ---- the item view ---------------------------------------------------------------------- */

static GtkEventController *
find_controller(GtkWidget *widget, const char *name)
{
  GtkEventController *found = NULL;
  g_autoptr(GListModel) controllers = gtk_widget_observe_controllers(widget);
  for (guint i = 0; i < g_list_model_get_n_items(controllers); i++) {
    g_autoptr(GtkEventController) controller = g_list_model_get_item(controllers, i);
    if (g_strcmp0(gtk_event_controller_get_name(controller), name) == 0)
      found = controller;
  }
  g_assert_nonnull(found);
  return found;
}

static gboolean
press_key(FthWindow *window, guint keyval)
{
  gboolean handled = FALSE;
  g_signal_emit_by_name(find_controller(GTK_WIDGET(window), "fth-label-hotkeys"), "key-pressed",
                        keyval, 0, 0, &handled);
  return handled;
}

/* Waits until the edit just asked for is saved and shown; returns the item id it touched. */
static gint64
wait_annotated(FthWindow *window)
{
  static gint64 annotated;
  annotated = 0;
  gulong handler =
    g_signal_connect(window, "item-annotated", G_CALLBACK(on_item_annotated), &annotated);
  g_assert_true(fth_test_spin_until(id_set, &annotated, OPEN_TIMEOUT_MS));
  g_signal_handler_disconnect(window, handler);
  return annotated;
}

static gboolean
view_loaded(gpointer data)
{
  return fth_item_view_is_loaded(data);
}

/* Waits until the item view shows its item with the store's annotations. */
static void
wait_loaded(FthItemView *view)
{
  g_assert_true(fth_test_spin_until(view_loaded, view, OPEN_TIMEOUT_MS));
  fth_test_spin_for(50); /* a frame, so the canvas is allocated and fitted */
}

/* A primary-button drag on the canvas from image point (X0, Y0) to (X1, Y1). */
static void
drag_on_canvas(FthImageCanvas *canvas, double x0, double y0, double x1, double y1)
{
  GtkEventController *edit = find_controller(GTK_WIDGET(canvas), "fth-canvas-edit");
  double wx0, wy0, wx1, wy1;

  fth_image_canvas_image_to_widget(canvas, x0, y0, &wx0, &wy0);
  fth_image_canvas_image_to_widget(canvas, x1, y1, &wx1, &wy1);
  g_signal_emit_by_name(edit, "drag-begin", wx0, wy0);
  g_signal_emit_by_name(edit, "drag-update", (wx1 - wx0) / 2, (wy1 - wy0) / 2);
  g_signal_emit_by_name(edit, "drag-end", wx1 - wx0, wy1 - wy0);
}

/* The item's boxes (FthAnnotation), in id order. */
static GPtrArray *
list_boxes(FthStore *store, gint64 item_id)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) all = fth_store_list_annotations(store, item_id, &error);
  g_assert_no_error(error);
  GPtrArray *boxes = g_ptr_array_new_with_free_func((GDestroyNotify)fth_annotation_free);
  for (guint i = 0; i < all->len; i++) {
    FthAnnotation *ann = g_ptr_array_index(all, i);
    if (ann->geom == FTH_GEOM_BOX)
      g_ptr_array_add(boxes, g_ptr_array_steal_index(all, i--));
  }
  return boxes;
}

/* The item's one polygon (asserted to exist). */
static FthAnnotation *
polygon_of(FthStore *store, gint64 item_id)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) all = fth_store_list_annotations(store, item_id, &error);
  g_assert_no_error(error);
  for (guint i = 0; i < all->len; i++)
    if (((FthAnnotation *)g_ptr_array_index(all, i))->geom == FTH_GEOM_POLYGON)
      return g_ptr_array_steal_index(all, i);
  g_assert_not_reached();
}

static gint64
class_of(FthStore *store, gint64 item_id)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) all = fth_store_list_annotations(store, item_id, &error);
  g_assert_no_error(error);
  for (guint i = 0; i < all->len; i++) {
    FthAnnotation *ann = g_ptr_array_index(all, i);
    if (ann->geom == FTH_GEOM_WHOLE && ann->author == FTH_AUTHOR_HUMAN)
      return ann->label_id;
  }
  return 0;
}

static guint
count_color(GdkTexture *texture, const guint8 rgb[3], int tolerance)
{
  int width = gdk_texture_get_width(texture), height = gdk_texture_get_height(texture);
  gsize stride = (gsize)width * 4;
  g_autofree guint8 *pixels = g_malloc(stride * (gsize)height);
  guint n = 0;

  gdk_texture_download(texture, pixels, stride);
  for (gsize i = 0; i < stride * (gsize)height; i += 4)
    if (abs(pixels[i + 2] - rgb[0]) <= tolerance && abs(pixels[i + 1] - rgb[1]) <= tolerance &&
        abs(pixels[i] - rgb[2]) <= tolerance)
      n++;
  return n;
}

/* Pixels of color RGB (within 3) that CANVAS renders within 5 px of image point (X, Y). */
static guint
count_color_near(FthImageCanvas *canvas, const guint8 rgb[3], double x, double y)
{
  fth_test_spin_for(50); /* a frame, so the last change is drawn */
  g_autoptr(GdkTexture) texture = fth_test_render_widget(GTK_WIDGET(canvas));
  int width = gdk_texture_get_width(texture), height = gdk_texture_get_height(texture);
  gsize stride = (gsize)width * 4;
  g_autofree guint8 *pixels = g_malloc(stride * (gsize)height);
  double wx, wy;
  guint n = 0;

  gdk_texture_download(texture, pixels, stride);
  fth_image_canvas_image_to_widget(canvas, x, y, &wx, &wy);
  for (int py = MAX(0, (int)wy - 5); py <= MIN(height - 1, (int)wy + 5); py++)
    for (int px = MAX(0, (int)wx - 5); px <= MIN(width - 1, (int)wx + 5); px++) {
      const guint8 *p = pixels + (gsize)py * stride + 4 * (gsize)px;
      n += abs(p[2] - rgb[0]) <= 3 && abs(p[1] - rgb[1]) <= 3 && abs(p[0] - rgb[2]) <= 3;
    }
  return n;
}

/* Open an item, draw a box, relabel it with a hotkey, delete it, undo and redo, label the next
 * item's class, and undo across items: every step checked in the store. */
static void
test_item_view(void)
{
  g_autofree char *dir = create_project();
  FthWindow *window = new_window();
  g_autoptr(GError) error = NULL;
  GActionGroup *win = G_ACTION_GROUP(window);

  g_assert_true(fth_test_open_project(window, dir, OPEN_TIMEOUT_MS, NULL));
  FthStore *store = fth_window_get_store(window);
  g_autoptr(FthLabel) cat = fth_store_find_label(store, "cat", &error);
  g_autoptr(FthLabel) dog = fth_store_find_label(store, "dog", &error);
  g_assert_no_error(error);

  g_autoptr(GPtrArray) views = fth_test_find_widgets(GTK_WIDGET(window), FTH_TYPE_ITEM_VIEW);
  g_assert_cmpuint(views->len, ==, 1);
  FthItemView *view = g_ptr_array_index(views, 0);
  FthImageCanvas *canvas = fth_item_view_get_canvas(view);
  g_autoptr(GPtrArray) grids = fth_test_find_widgets(GTK_WIDGET(window), GTK_TYPE_GRID_VIEW);
  GtkWidget *grid = g_ptr_array_index(grids, 0);

  /* Activating a grid item opens it. */
  g_assert_false(g_action_group_get_action_enabled(win, "next-item"));
  g_signal_emit_by_name(grid, "activate", 0u);
  wait_loaded(view);
  g_assert_true(g_action_group_get_action_enabled(win, "next-item"));
  gint64 first = fth_item_get_id(fth_item_view_get_item(view));
  g_assert_cmpfloat(fth_image_canvas_get_zoom(canvas), >, 1.0); /* a 40x30 image, fitted */

  /* Draw a box: it is saved with the first label, in image pixels. */
  drag_on_canvas(canvas, 5, 5, 30, 20);
  g_assert_cmpint(wait_annotated(window), ==, first);
  {
    g_autoptr(GPtrArray) boxes = list_boxes(store, first);
    g_assert_cmpuint(boxes->len, ==, 1);
    FthAnnotation *box = g_ptr_array_index(boxes, 0);
    g_assert_cmpint(box->label_id, ==, cat->id);
    g_assert_cmpfloat_with_epsilon(box->x, 5, 0.5);
    g_assert_cmpfloat_with_epsilon(box->y, 5, 0.5);
    g_assert_cmpfloat_with_epsilon(box->w, 25, 0.5);
    g_assert_cmpfloat_with_epsilon(box->h, 15, 0.5);
    g_assert_cmpint(box->author, ==, FTH_AUTHOR_HUMAN);
  }
  wait_loaded(view);

  /* Select it with a click, relabel it with dog's hotkey. */
  drag_on_canvas(canvas, 17, 12, 17, 12);
  g_assert_cmpint(fth_image_canvas_get_selected(canvas), !=, 0);
  g_assert_true(press_key(window, GDK_KEY_2));
  wait_annotated(window);
  {
    g_autoptr(GPtrArray) boxes = list_boxes(store, first);
    g_assert_cmpuint(boxes->len, ==, 1);
    g_assert_cmpint(((FthAnnotation *)g_ptr_array_index(boxes, 0))->label_id, ==, dog->id);
  }
  wait_loaded(view);
  /* The canvas draws it in dog's color (the picture under it is red). */
  static const guint8 dog_rgb[3] = { 0x2e, 0xc2, 0x7e };
  g_autoptr(GdkTexture) rendered = fth_test_render_widget(GTK_WIDGET(canvas));
  g_assert_cmpuint(count_color(rendered, dog_rgb, 3), >=, 40);

  /* Delete removes the selected box; undo brings it back, undo again its old label. */
  g_assert_cmpint(fth_image_canvas_get_selected(canvas), !=, 0);
  g_assert_true(press_key(window, GDK_KEY_Delete));
  wait_annotated(window);
  {
    g_autoptr(GPtrArray) boxes = list_boxes(store, first);
    g_assert_cmpuint(boxes->len, ==, 0);
  }
  g_action_group_activate_action(win, "undo", NULL);
  wait_annotated(window);
  {
    g_autoptr(GPtrArray) boxes = list_boxes(store, first);
    g_assert_cmpuint(boxes->len, ==, 1);
    g_assert_cmpint(((FthAnnotation *)g_ptr_array_index(boxes, 0))->label_id, ==, dog->id);
  }
  g_action_group_activate_action(win, "undo", NULL);
  wait_annotated(window);
  {
    g_autoptr(GPtrArray) boxes = list_boxes(store, first);
    g_assert_cmpint(((FthAnnotation *)g_ptr_array_index(boxes, 0))->label_id, ==, cat->id);
  }
  g_action_group_activate_action(win, "redo", NULL);
  wait_annotated(window);
  {
    g_autoptr(GPtrArray) boxes = list_boxes(store, first);
    g_assert_cmpint(((FthAnnotation *)g_ptr_array_index(boxes, 0))->label_id, ==, dog->id);
  }

  /* Dragging the selected box's bottom-right handle resizes it; dragging its inside moves it. */
  wait_loaded(view);
  drag_on_canvas(canvas, 17, 12, 17, 12);
  g_assert_cmpint(fth_image_canvas_get_selected(canvas), !=, 0);
  drag_on_canvas(canvas, 30, 20, 35, 28);
  wait_annotated(window);
  {
    g_autoptr(GPtrArray) boxes = list_boxes(store, first);
    FthAnnotation *box = g_ptr_array_index(boxes, 0);
    g_assert_cmpfloat_with_epsilon(box->x, 5, 0.5);
    g_assert_cmpfloat_with_epsilon(box->w, 30, 0.5);
    g_assert_cmpfloat_with_epsilon(box->h, 23, 0.5);
  }
  wait_loaded(view);
  drag_on_canvas(canvas, 17, 12, 17, 12);
  drag_on_canvas(canvas, 17, 12, 19, 13);
  wait_annotated(window);
  {
    g_autoptr(GPtrArray) boxes = list_boxes(store, first);
    FthAnnotation *box = g_ptr_array_index(boxes, 0);
    g_assert_cmpfloat_with_epsilon(box->x, 7, 0.5);
    g_assert_cmpfloat_with_epsilon(box->y, 6, 0.5);
    g_assert_cmpfloat_with_epsilon(box->w, 30, 0.5);
  }
  wait_loaded(view);

  /* The polygon tool ("p"): click four corners, then the first again. */
  fth_image_canvas_set_selected(canvas, 0);
  g_assert_true(press_key(window, GDK_KEY_p));
  g_assert_cmpint(fth_image_canvas_get_tool(canvas), ==, FTH_CANVAS_TOOL_POLYGON);
  drag_on_canvas(canvas, 2, 25, 2, 25);
  drag_on_canvas(canvas, 12, 25, 12, 25);
  g_assert_true(fth_image_canvas_cancel_drawing(canvas)); /* Escape drops the two points */
  drag_on_canvas(canvas, 2, 25, 2, 25);
  drag_on_canvas(canvas, 12, 25, 12, 25);
  drag_on_canvas(canvas, 12, 29, 12, 29);
  drag_on_canvas(canvas, 7, 29, 7, 29);
  drag_on_canvas(canvas, 2, 25, 2, 25);
  wait_annotated(window);
  {
    g_autoptr(FthAnnotation) polygon = polygon_of(store, first);
    g_assert_cmpuint(polygon->n_points, ==, 4);
    g_assert_cmpfloat_with_epsilon(polygon->points[2], 12, 0.5);
    g_assert_cmpfloat_with_epsilon(polygon->points[5], 29, 0.5);
  }
  g_assert_true(press_key(window, GDK_KEY_b));
  wait_loaded(view);

  /* A click inside selects the polygon, which shows its vertices as filled handles (in the
   * label's color, dog's: the polygon took the last label applied); dragging a vertex moves it,
   * and undo and redo put it back and again. */
  guint near_vertex = count_color_near(canvas, dog_rgb, 12, 29);
  drag_on_canvas(canvas, 7, 27, 7, 27);
  gint64 polygon_id = fth_image_canvas_get_selected(canvas);
  {
    g_autoptr(FthAnnotation) polygon = polygon_of(store, first);
    g_assert_cmpint(polygon_id, ==, polygon->id);
  }
  g_assert_cmpuint(count_color_near(canvas, dog_rgb, 12, 29), >=, near_vertex + 20);
  drag_on_canvas(canvas, 7, 29, 5, 27);
  g_assert_cmpint(wait_annotated(window), ==, first);
  wait_loaded(view);
  {
    g_autoptr(FthAnnotation) polygon = polygon_of(store, first);
    g_assert_cmpuint(polygon->n_points, ==, 4);
    g_assert_cmpfloat_with_epsilon(polygon->points[6], 5, 0.5);
    g_assert_cmpfloat_with_epsilon(polygon->points[7], 27, 0.5);
    g_assert_cmpfloat_with_epsilon(polygon->points[0], 2, 0.5); /* the others stay */
  }
  g_action_group_activate_action(win, "undo", NULL);
  wait_annotated(window);
  wait_loaded(view);
  {
    g_autoptr(FthAnnotation) polygon = polygon_of(store, first);
    g_assert_cmpfloat_with_epsilon(polygon->points[6], 7, 0.5);
    g_assert_cmpfloat_with_epsilon(polygon->points[7], 29, 0.5);
  }
  g_action_group_activate_action(win, "redo", NULL);
  wait_annotated(window);
  wait_loaded(view);

  /* Clicking a vertex picks it; Delete removes that vertex, not the polygon; undo restores it. */
  g_assert_cmpint(fth_image_canvas_get_selected(canvas), ==, polygon_id);
  drag_on_canvas(canvas, 12, 29, 12, 29);
  g_assert_true(press_key(window, GDK_KEY_Delete));
  g_assert_cmpint(wait_annotated(window), ==, first);
  wait_loaded(view);
  {
    g_autoptr(FthAnnotation) polygon = polygon_of(store, first);
    g_assert_cmpuint(polygon->n_points, ==, 3);
    g_assert_cmpfloat_with_epsilon(polygon->points[2], 12, 0.5);
    g_assert_cmpfloat_with_epsilon(polygon->points[3], 25, 0.5);
    g_assert_cmpfloat_with_epsilon(polygon->points[4], 5, 0.5);
  }
  g_action_group_activate_action(win, "undo", NULL);
  wait_annotated(window);
  wait_loaded(view);
  {
    g_autoptr(FthAnnotation) polygon = polygon_of(store, first);
    g_assert_cmpuint(polygon->n_points, ==, 4);
  }

  /* Undo the vertex move and the polygon, so the rest of the history reads as before. */
  for (int i = 0; i < 2; i++) {
    g_action_group_activate_action(win, "undo", NULL);
    wait_annotated(window);
    wait_loaded(view);
  }
  {
    g_autoptr(GError) list_error = NULL;
    g_autoptr(GPtrArray) all = fth_store_list_annotations(store, first, &list_error);
    for (guint i = 0; i < all->len; i++)
      g_assert_cmpint(((FthAnnotation *)g_ptr_array_index(all, i))->geom, !=, FTH_GEOM_POLYGON);
  }

  /* "d" goes to the next item; with no box selected a hotkey sets the item's class. */
  g_assert_true(press_key(window, GDK_KEY_d));
  wait_loaded(view);
  g_assert_cmpuint(fth_item_view_get_position(view), ==, 1);
  gint64 second = fth_item_get_id(fth_item_view_get_item(view));
  g_assert_cmpint(class_of(store, second), ==, 0);
  g_assert_true(press_key(window, GDK_KEY_1));
  g_assert_cmpint(wait_annotated(window), ==, second);
  g_assert_cmpint(class_of(store, second), ==, cat->id);

  /* Undo works across items: first this item's class, then the other item's move, resize. */
  g_action_group_activate_action(win, "undo", NULL);
  g_assert_cmpint(wait_annotated(window), ==, second);
  g_assert_cmpint(class_of(store, second), ==, 0);
  g_action_group_activate_action(win, "undo", NULL);
  g_assert_cmpint(wait_annotated(window), ==, first);
  {
    g_autoptr(GPtrArray) boxes = list_boxes(store, first);
    FthAnnotation *box = g_ptr_array_index(boxes, 0);
    g_assert_cmpfloat_with_epsilon(box->x, 5, 0.5);
    g_assert_cmpfloat_with_epsilon(box->w, 30, 0.5);
  }
  g_action_group_activate_action(win, "undo", NULL);
  g_assert_cmpint(wait_annotated(window), ==, first);
  {
    g_autoptr(GPtrArray) boxes = list_boxes(store, first);
    FthAnnotation *box = g_ptr_array_index(boxes, 0);
    g_assert_cmpfloat_with_epsilon(box->w, 25, 0.5);
    g_assert_cmpfloat_with_epsilon(box->h, 15, 0.5);
    g_assert_cmpint(box->label_id, ==, dog->id);
  }

  /* Escape goes back to the grid, with the item selected. */
  g_assert_true(press_key(window, GDK_KEY_Escape));
  g_assert_false(g_action_group_get_action_enabled(win, "next-item"));
  GtkSelectionModel *selection = gtk_grid_view_get_model(GTK_GRID_VIEW(grid));
  g_assert_true(gtk_selection_model_is_selected(selection, 1));

  destroy_window(window);
  fth_test_rmtree(dir);
}

/* Space accepts a model's suggested class; an item whose file is missing says so in place of
 * the picture. */
static void
test_item_view_suggestion_and_missing(void)
{
  g_autofree char *dir = create_project();
  FthWindow *window = new_window();
  g_autoptr(GError) error = NULL;

  g_assert_true(fth_test_open_project(window, dir, OPEN_TIMEOUT_MS, NULL));
  FthStore *store = fth_window_get_store(window);
  g_autoptr(FthLabel) dog = fth_store_find_label(store, "dog", &error);
  g_autoptr(FthItem) third = g_list_model_get_item(fth_window_get_items(window), 2);
  gint64 run_id = 0;
  g_assert_true(fth_store_create_run(store, "predict", "test", NULL, &run_id, &error));
  g_autoptr(FthAnnotation) guess = fth_annotation_new();
  guess->item_id = fth_item_get_id(third);
  guess->label_id = dog->id;
  guess->geom = FTH_GEOM_WHOLE;
  guess->author = FTH_AUTHOR_MODEL;
  guess->run_id = run_id;
  guess->score = 0.8;
  g_assert_true(fth_store_add_annotation(store, guess, NULL, &error));
  g_assert_no_error(error);
  g_autoptr(FthAnnotation) box_guess = fth_annotation_new();
  box_guess->item_id = fth_item_get_id(third);
  box_guess->label_id = dog->id;
  box_guess->geom = FTH_GEOM_BOX;
  box_guess->x = 4, box_guess->y = 4, box_guess->w = 20, box_guess->h = 12;
  box_guess->author = FTH_AUTHOR_MODEL;
  box_guess->run_id = run_id;
  box_guess->score = 0.6;
  gint64 box_id = 0;
  g_assert_true(fth_store_add_annotation(store, box_guess, &box_id, &error));
  g_assert_no_error(error);

  g_autoptr(GPtrArray) views = fth_test_find_widgets(GTK_WIDGET(window), FTH_TYPE_ITEM_VIEW);
  FthItemView *view = g_ptr_array_index(views, 0);
  g_autoptr(GPtrArray) grids = fth_test_find_widgets(GTK_WIDGET(window), GTK_TYPE_GRID_VIEW);
  g_signal_emit_by_name(g_ptr_array_index(grids, 0), "activate", 2u);
  wait_loaded(view);

  g_assert_cmpint(class_of(store, fth_item_get_id(third)), ==, 0);
  g_assert_true(press_key(window, GDK_KEY_space));
  g_assert_cmpint(wait_annotated(window), ==, fth_item_get_id(third));
  g_assert_cmpint(class_of(store, fth_item_get_id(third)), ==, dog->id);
  wait_loaded(view);
  /* Nothing left to accept for the class; the predicted box, once selected, is accepted. */
  g_assert_false(press_key(window, GDK_KEY_space));
  FthImageCanvas *canvas = fth_item_view_get_canvas(view);
  drag_on_canvas(canvas, 14, 10, 14, 10);
  g_assert_cmpint(fth_image_canvas_get_selected(canvas), ==, box_id);
  g_assert_true(press_key(window, GDK_KEY_space));
  wait_annotated(window);
  g_autoptr(FthAnnotation) accepted = fth_store_get_annotation(store, box_id, &error);
  g_assert_no_error(error);
  g_assert_cmpint(accepted->author, ==, FTH_AUTHOR_HUMAN);
  g_assert_cmpfloat(accepted->score, ==, 1.0);
  g_assert_cmpfloat_with_epsilon(accepted->w, 20, 0.01);
  wait_loaded(view);

  /* Position 4 is the item whose file is missing. */
  g_assert_true(press_key(window, GDK_KEY_d));
  g_assert_true(press_key(window, GDK_KEY_d));
  wait_loaded(view);
  g_assert_cmpuint(fth_item_view_get_position(view), ==, 4);
  g_autoptr(GPtrArray) pages = fth_test_find_widgets(GTK_WIDGET(view), ADW_TYPE_STATUS_PAGE);
  g_assert_cmpuint(pages->len, ==, 1);
  AdwStatusPage *page = g_ptr_array_index(pages, 0);
  g_assert_true(gtk_widget_get_child_visible(GTK_WIDGET(page)));
  g_assert_nonnull(strstr(adw_status_page_get_description(page), "missing.png"));
  /* It can still be labeled. */
  g_assert_true(press_key(window, GDK_KEY_2));
  g_assert_cmpint(wait_annotated(window), ==, fth_item_get_id(fth_item_view_get_item(view)));

  destroy_window(window);
  fth_test_rmtree(dir);
}

static AdwMessageDialog *find_dialog(FthWindow *window);

static gboolean
flag_set(gpointer data)
{
  return *(gboolean *)data;
}

static void
on_signal_flag(FthWindow *window, gpointer user_data)
{
  *(gboolean *)user_data = TRUE;
}

static void
on_error_message(FthWindow *window, const char *message, gpointer user_data)
{
  *(char **)user_data = g_strdup(message);
}

static gboolean
string_set(gpointer data)
{
  return *(char **)data != NULL;
}

static void
fill_label_dialog(AdwMessageDialog *dialog, const char *name, const char *hotkey)
{
  GtkWidget *extra = adw_message_dialog_get_extra_child(dialog);
  g_autoptr(GPtrArray) entries = fth_test_find_widgets(extra, GTK_TYPE_ENTRY);
  for (guint i = 0; i < entries->len; i++) {
    GtkWidget *entry = g_ptr_array_index(entries, i);
    if (g_strcmp0(gtk_widget_get_name(entry), "label-name") == 0 && name != NULL)
      gtk_editable_set_text(GTK_EDITABLE(entry), name);
    if (g_strcmp0(gtk_widget_get_name(entry), "label-hotkey") == 0 && hotkey != NULL)
      gtk_editable_set_text(GTK_EDITABLE(entry), hotkey);
  }
}

/* Answers the label dialog with RESPONSE and waits for the labels to change. */
static void
answer_and_wait(FthWindow *window, AdwMessageDialog *dialog, const char *response)
{
  gboolean changed = FALSE;
  gulong handler = g_signal_connect(window, "labels-changed", G_CALLBACK(on_signal_flag), &changed);
  adw_message_dialog_response(dialog, response);
  gtk_window_destroy(GTK_WINDOW(dialog));
  g_assert_true(fth_test_spin_until(flag_set, &changed, OPEN_TIMEOUT_MS));
  g_signal_handler_disconnect(window, handler);
}

/* Labels are added, renamed and removed from the sidebar; a taken hotkey is refused with a
 * message and changes nothing. */
static void
test_edit_labels(void)
{
  g_autofree char *dir = create_project();
  FthWindow *window = new_window();
  g_autoptr(GError) error = NULL;

  g_assert_true(fth_test_open_project(window, dir, OPEN_TIMEOUT_MS, NULL));
  FthStore *store = fth_window_get_store(window);
  g_autoptr(GPtrArray) palettes = fth_test_find_widgets(GTK_WIDGET(window), FTH_TYPE_LABEL_PALETTE);
  FthLabelPalette *palette = g_ptr_array_index(palettes, 0);

  /* Add "fox" with hotkey 3. */
  g_action_group_activate_action(G_ACTION_GROUP(window), "add-label", NULL);
  AdwMessageDialog *dialog = find_dialog(window);
  g_assert_nonnull(dialog);
  fill_label_dialog(dialog, "  fox ", "3");
  answer_and_wait(window, dialog, "save");
  g_autoptr(FthLabel) fox = fth_store_find_label(store, "fox", &error);
  g_assert_no_error(error);
  g_assert_nonnull(fox);
  g_assert_cmpstr(fox->hotkey, ==, "3");
  g_assert_cmpuint(fth_label_palette_get_n_labels(palette), ==, 4);

  /* "wolf" on cat's hotkey is refused, with a message, and not added. */
  g_action_group_activate_action(G_ACTION_GROUP(window), "add-label", NULL);
  dialog = find_dialog(window);
  fill_label_dialog(dialog, "wolf", "1");
  g_autofree char *message = NULL;
  gulong handler = g_signal_connect(window, "error", G_CALLBACK(on_error_message), &message);
  adw_message_dialog_response(dialog, "save");
  gtk_window_destroy(GTK_WINDOW(dialog));
  g_assert_true(fth_test_spin_until(string_set, &message, OPEN_TIMEOUT_MS));
  g_signal_handler_disconnect(window, handler);
  g_test_message("refused: %s", message);
  g_autoptr(FthLabel) wolf = fth_store_find_label(store, "wolf", &error);
  g_assert_null(wolf);
  g_assert_cmpuint(fth_label_palette_get_n_labels(palette), ==, 4);

  /* Activating fox's row edits it: rename to "vixen". */
  g_signal_emit_by_name(palette, "label-activated", fox->id);
  dialog = find_dialog(window);
  g_assert_nonnull(dialog);
  fill_label_dialog(dialog, "vixen", NULL);
  answer_and_wait(window, dialog, "save");
  g_autoptr(FthLabel) renamed = fth_store_get_label(store, fox->id, &error);
  g_assert_no_error(error);
  g_assert_cmpstr(renamed->name, ==, "vixen");
  g_assert_cmpstr(renamed->hotkey, ==, "3");

  /* And remove it. */
  g_signal_emit_by_name(palette, "label-activated", fox->id);
  dialog = find_dialog(window);
  answer_and_wait(window, dialog, "remove");
  g_autoptr(FthLabel) gone = fth_store_get_label(store, fox->id, &error);
  g_assert_null(gone);
  g_assert_error(error, FTH_STORE_ERROR, FTH_STORE_ERROR_NOT_FOUND);
  g_assert_cmpuint(fth_label_palette_get_n_labels(palette), ==, 3);

  destroy_window(window);
  fth_test_rmtree(dir);
}

/* ---- jobs: new project, import by drop, cancel ------------------------------------------- */

static GtkWidget *
find_named_widget(GtkWidget *root, const char *name)
{
  if (g_strcmp0(gtk_widget_get_name(root), name) == 0 && gtk_widget_get_visible(root))
    return root;
  for (GtkWidget *child = gtk_widget_get_first_child(root); child != NULL;
       child = gtk_widget_get_next_sibling(child)) {
    GtkWidget *found = find_named_widget(child, name);
    if (found != NULL)
      return found;
  }
  return NULL;
}

static void
wait_labels_changed(FthWindow *window)
{
  gboolean changed = FALSE;
  gulong handler = g_signal_connect(window, "labels-changed", G_CALLBACK(on_signal_flag), &changed);
  g_assert_true(fth_test_spin_until(flag_set, &changed, OPEN_TIMEOUT_MS));
  g_signal_handler_disconnect(window, handler);
}

static char *
make_media_folder(guint n_images, guint8 shade)
{
  g_autoptr(GError) error = NULL;
  char *dir = g_dir_make_tmp("fathom-media-XXXXXX", &error);
  g_assert_no_error(error);
  for (guint i = 0; i < n_images; i++) {
    g_autofree char *name = g_strdup_printf("photo-%u.png", i);
    g_autofree char *path = g_build_filename(dir, name, NULL);
    const guint8 rgb[3] = { shade, (guint8)(40 * i), 200 };
    write_png(path, 16, 12, rgb);
  }
  return dir;
}

/* A folder of media becomes a project: created, opened, imported as a job; files dropped on
 * the window are imported into it. */
static void
test_new_project_and_drop(void)
{
  g_autofree char *media = make_media_folder(3, 10);
  g_autofree char *more = make_media_folder(2, 250);
  FthWindow *window = new_window();
  g_autoptr(GPtrArray) panels = fth_test_find_widgets(GTK_WIDGET(window), FTH_TYPE_JOBS_PANEL);
  FthJobsPanel *panel = g_ptr_array_index(panels, 0);

  g_autoptr(GFile) folder = g_file_new_for_path(media);
  fth_window_create_project(window, folder);
  wait_labels_changed(window); /* after the import job */
  g_assert_true(fth_window_has_project(window));
  g_autofree char *db = g_build_filename(media, FTH_STORE_DB_NAME, NULL);
  g_assert_true(g_file_test(db, G_FILE_TEST_IS_REGULAR));
  g_assert_cmpuint(g_list_model_get_n_items(fth_window_get_items(window)), ==, 3);
  g_assert_cmpuint(fth_jobs_panel_get_n_jobs(panel), ==, 1);
  g_assert_cmpuint(fth_jobs_panel_get_n_running(panel), ==, 0);
  GtkWidget *message = find_named_widget(GTK_WIDGET(panel), "job-message");
  g_assert_cmpstr(gtk_label_get_text(GTK_LABEL(message)), ==, "Done");

  /* Drop two more files. */
  GtkEventController *drop = find_controller(GTK_WIDGET(window), "fth-drop");
  g_autofree char *a = g_build_filename(more, "photo-0.png", NULL);
  g_autofree char *b = g_build_filename(more, "photo-1.png", NULL);
  g_autoptr(GFile) fa = g_file_new_for_path(a);
  g_autoptr(GFile) fb = g_file_new_for_path(b);
  GSList *files = g_slist_append(g_slist_append(NULL, fa), fb);
  GValue value = G_VALUE_INIT;
  g_value_init(&value, GDK_TYPE_FILE_LIST);
  g_value_set_boxed(&value, files);
  gboolean handled = FALSE;
  g_signal_emit_by_name(drop, "drop", &value, 1.0, 1.0, &handled);
  g_value_unset(&value);
  g_slist_free(files);
  g_assert_true(handled);
  wait_labels_changed(window);
  g_assert_cmpuint(g_list_model_get_n_items(fth_window_get_items(window)), ==, 5);
  g_assert_cmpuint(fth_jobs_panel_get_n_jobs(panel), ==, 2);

  destroy_window(window);
  fth_test_rmtree(media);
  fth_test_rmtree(more);
}

static gboolean
wait_for_cancel(FthJob *job, GCancellable *cancellable, gpointer user_data, GError **error)
{
  for (gint64 step = 0; !g_cancellable_is_cancelled(cancellable); step++) {
    fth_job_progress(job, step % 100, 100, "working");
    g_usleep(5000);
  }
  return !g_cancellable_set_error_if_cancelled(cancellable, error);
}

static gboolean
panel_idle(gpointer data)
{
  return fth_jobs_panel_get_n_running(data) == 0;
}

static gboolean
label_says(gpointer data)
{
  return g_strcmp0(gtk_label_get_text(data), "working") == 0;
}

/* The cancel button stops a running job; the row says so and can be dismissed. */
static void
test_jobs_panel_cancel(void)
{
  GtkWidget *window = gtk_window_new();
  GtkWidget *panel = fth_jobs_panel_new();
  gtk_window_set_child(GTK_WINDOW(window), panel);
  gtk_window_present(GTK_WINDOW(window));

  g_autoptr(FthJob) job = fth_job_new("test", wait_for_cancel, NULL, NULL);
  fth_jobs_panel_add(FTH_JOBS_PANEL(panel), job, "A long job");
  fth_job_start(job);
  GtkWidget *message = find_named_widget(panel, "job-message");
  g_assert_true(fth_test_spin_until(label_says, message, OPEN_TIMEOUT_MS));
  g_assert_cmpuint(fth_jobs_panel_get_n_running(FTH_JOBS_PANEL(panel)), ==, 1);

  g_signal_emit_by_name(find_named_widget(panel, "job-cancel"), "clicked");
  g_assert_true(fth_test_spin_until(panel_idle, panel, OPEN_TIMEOUT_MS));
  g_assert_cmpint(fth_job_get_state(job), ==, FTH_JOB_STATE_CANCELLED);
  g_assert_cmpstr(gtk_label_get_text(GTK_LABEL(message)), ==, "Cancelled");

  g_signal_emit_by_name(find_named_widget(panel, "job-dismiss"), "clicked");
  g_assert_cmpuint(fth_jobs_panel_get_n_jobs(FTH_JOBS_PANEL(panel)), ==, 0);
  g_assert_false(gtk_widget_get_visible(panel));

  gtk_window_destroy(GTK_WINDOW(window));
  fth_test_spin_for(50);
}

/* ---- job end notices -------------------------------------------------------------------- */

typedef struct {
  guint count;
  char *title, *outcome;
  gboolean notified;
} Announced;

static void
on_job_announced(FthWindow *window, const char *title, const char *outcome, gboolean notified,
                 gpointer user_data)
{
  Announced *a = user_data;
  a->count++;
  g_free(a->title);
  g_free(a->outcome);
  a->title = g_strdup(title);
  a->outcome = g_strdup(outcome);
  a->notified = notified;
}

static gboolean
brief_job(FthJob *job, GCancellable *cancellable, gpointer user_data, GError **error)
{
  g_usleep(20000);
  return TRUE;
}

static gboolean
window_active(gpointer data)
{
  return gtk_window_is_active(data);
}

static gboolean
no_job_running(gpointer data)
{
  return fth_jobs_panel_get_n_running(data) == 0;
}

static void
run_brief_job(FthJobsPanel *panel, const char *title)
{
  g_autoptr(FthJob) job = fth_job_new("test", brief_job, NULL, NULL);
  fth_jobs_panel_add(panel, job, title);
  fth_job_start(job);
  g_assert_true(fth_test_spin_until(no_job_running, panel, OPEN_TIMEOUT_MS));
}

/* A job that ran long is announced in a toast when it ends while the window is active; a short
 * one is not (test-notifications.c covers the desktop notification). */
static void
test_job_end_notice(void)
{
  FthWindow *window = new_window();
  Announced announced = { 0 };
  g_signal_connect(window, "job-announced", G_CALLBACK(on_job_announced), &announced);
  g_autoptr(GPtrArray) panels = fth_test_find_widgets(GTK_WIDGET(window), FTH_TYPE_JOBS_PANEL);
  FthJobsPanel *panel = g_ptr_array_index(panels, 0);

  fth_window_set_long_job_seconds(window, 3600);
  run_brief_job(panel, "A brief job");
  g_assert_cmpuint(announced.count, ==, 0);

  fth_window_set_long_job_seconds(window, 0);
  if (!fth_test_spin_until(window_active, window, 3000)) {
    g_test_skip("the X server gives the window no focus");
    destroy_window(window);
    return;
  }
  run_brief_job(panel, "A long job");
  g_assert_cmpuint(announced.count, ==, 1);
  g_assert_cmpstr(announced.title, ==, "A long job");
  g_assert_cmpstr(announced.outcome, ==, "Finished");
  g_assert_false(announced.notified);

  g_free(announced.title);
  g_free(announced.outcome);
  destroy_window(window);
}

/* ---- training ---------------------------------------------------------------------------- */

static void
on_run_finished(FthTrainingPage *page, gboolean succeeded, gpointer user_data)
{
  *(int *)user_data = succeeded ? 1 : 2;
}

static gboolean
int_set(gpointer data)
{
  return *(int *)data != 0;
}

static gboolean
has_runs(gpointer data)
{
  return fth_training_page_get_n_runs(data) > 0;
}

/* The runs are listed first, then the chosen run's matrix is read. */
static gboolean
has_matrix(gpointer data)
{
  return fth_confusion_matrix_get_n_classes(fth_training_page_get_confusion_matrix(data)) > 0;
}

/* A tiny two-class project of 28x28 images trains one epoch of the zoo's MLP from the
 * training page: the charts get points and the run is listed. */
static void
test_training_page(void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp("fathom-train-XXXXXX", &error);
  g_assert_no_error(error);
  {
    g_autoptr(FthStore) store = fth_store_create(dir, &error);
    g_assert_no_error(error);
    gint64 dark = 0, light = 0;
    g_assert_true(fth_store_add_label(store, "dark", NULL, "1", FTH_LABEL_CLASS, &dark, &error));
    g_assert_true(fth_store_add_label(store, "light", NULL, "2", FTH_LABEL_CLASS, &light, &error));
    for (guint i = 0; i < 24; i++) {
      g_autofree char *name = g_strdup_printf("img-%02u.png", i);
      g_autofree char *path = g_build_filename(dir, name, NULL);
      guint8 v = (guint8)(i % 2 == 0 ? 20 + i : 230 - i);
      const guint8 rgb[3] = { v, v, v };
      write_png(path, 28, 28, rgb);
      gint64 id = add_item(store, path, -1, 28, 28);
      g_assert_true(fth_store_set_class(store, id, i % 2 == 0 ? dark : light, FTH_AUTHOR_HUMAN,
                                        0, 1.0, NULL, &error));
      /* No split yet: the trainer makes them (train, validation, test). */
      g_assert_true(fth_store_set_split(store, &id, 1, FTH_SPLIT_NONE, &error));
      g_assert_no_error(error);
    }
  }

  FthWindow *window = new_window();
  g_assert_true(fth_test_open_project(window, dir, OPEN_TIMEOUT_MS, NULL));
  g_autoptr(GPtrArray) pages = fth_test_find_widgets(GTK_WIDGET(window), FTH_TYPE_TRAINING_PAGE);
  g_assert_cmpuint(pages->len, ==, 1);
  FthTrainingPage *page = g_ptr_array_index(pages, 0);
  g_autoptr(GPtrArray) stacks = fth_test_find_widgets(GTK_WIDGET(window), ADW_TYPE_VIEW_STACK);
  adw_view_stack_set_visible_child_name(g_ptr_array_index(stacks, 0), "training");
  fth_test_spin_for(200); /* recipes listed */

  fth_training_page_select_recipe(page, "mlp");
  /* The recipe's own hyperparameters (data/recipes/mlp.json: SGD, lr 0.05, batch 64, 5 epochs). */
  FthOptimKind optimizer;
  double lr;
  int batch, epochs;
  fth_training_page_get_hyperparameters(page, &optimizer, &lr, &batch, &epochs);
  g_assert_cmpint(optimizer, ==, FTH_OPTIM_SGD);
  g_assert_cmpfloat_with_epsilon(lr, 0.05, 1e-9);
  g_assert_cmpint(batch, ==, 64);
  g_assert_cmpint(epochs, ==, 5);
  /* Picking AdamW in its row brings AdamW's default learning rate. The device row lists the CPU
   * first, then any CUDA device that answers (none in a build without CUDA); the run gets
   * "cpu". */
  g_autoptr(GPtrArray) combos = fth_test_find_widgets(GTK_WIDGET(page), ADW_TYPE_COMBO_ROW);
  AdwComboRow *optimizer_row = NULL, *device_row = NULL;
  for (guint i = 0; i < combos->len; i++) {
    const char *title = adw_preferences_row_get_title(g_ptr_array_index(combos, i));
    if (g_strcmp0(title, "Optimizer") == 0)
      optimizer_row = g_ptr_array_index(combos, i);
    else if (g_strcmp0(title, "Device") == 0)
      device_row = g_ptr_array_index(combos, i);
  }
  g_assert_nonnull(optimizer_row);
  g_assert_nonnull(device_row);
  GListModel *devices = adw_combo_row_get_model(device_row);
  g_assert_cmpuint(g_list_model_get_n_items(devices), >=, 1);
  g_assert_cmpstr(gtk_string_list_get_string(GTK_STRING_LIST(devices), 0), ==, "CPU");
  g_assert_cmpuint(adw_combo_row_get_selected(device_row), ==, 0);
  g_assert_cmpstr(fth_training_page_get_device(page), ==, "cpu");
  adw_combo_row_set_selected(optimizer_row, FTH_OPTIM_ADAMW);
  fth_training_page_get_hyperparameters(page, &optimizer, &lr, &batch, &epochs);
  g_assert_cmpint(optimizer, ==, FTH_OPTIM_ADAMW);
  g_assert_cmpfloat_with_epsilon(lr, 0.001, 1e-9);
  fth_training_page_set_hyperparameters(page, FTH_OPTIM_ADAMW, 0.002, 8);
  fth_training_page_set_epochs(page, 1);
  int finished = 0;
  gulong handler = g_signal_connect(page, "run-finished", G_CALLBACK(on_run_finished), &finished);
  g_assert_true(fth_training_page_start(page));
  g_assert_false(fth_training_page_start(page)); /* one run at a time */
  g_assert_true(fth_test_spin_until(int_set, &finished, 60000));
  g_signal_handler_disconnect(page, handler);

  g_autoptr(GPtrArray) labels = fth_test_find_widgets(GTK_WIDGET(page), GTK_TYPE_LABEL);
  for (guint i = 0; i < labels->len; i++)
    g_test_message("training page: %s", gtk_label_get_text(g_ptr_array_index(labels, i)));
  g_assert_cmpint(finished, ==, 1);
  g_assert_cmpuint(fth_training_page_get_n_loss_points(page), >, 0);
  g_assert_cmpuint(fth_training_page_get_n_accuracy_points(page), ==, 1);
  g_assert_true(fth_test_spin_until(has_runs, page, OPEN_TIMEOUT_MS));
  /* The run trained with what the page said (the trainer records its configuration). */
  {
    g_autoptr(GError) error2 = NULL;
    g_autoptr(GPtrArray) runs = fth_store_list_runs(fth_window_get_store(window), "train",
                                                    &error2);
    g_assert_no_error(error2);
    g_assert_cmpuint(runs->len, ==, 1);
    const FthRun *run = g_ptr_array_index(runs, 0);
    g_assert_cmpstr(run->name, ==, "mlp");
    g_autoptr(JsonNode) config = json_from_string(run->config_json, &error2);
    g_assert_no_error(error2);
    JsonObject *o = json_node_get_object(config);
    g_assert_cmpstr(json_object_get_string_member(o, "optimizer"), ==, "adamw");
    g_assert_cmpfloat_with_epsilon(json_object_get_double_member(o, "lr"), 0.002, 1e-6);
    g_assert_cmpint(json_object_get_int_member(o, "batch"), ==, 8);
    g_assert_cmpint(json_object_get_int_member(o, "epochs"), ==, 1);
    g_assert_cmpstr(json_object_get_string_member(o, "device"), ==, "cpu");
  }

  /* The run's test confusion matrix: two classes, one count per test item. */
  g_assert_true(fth_test_spin_until(has_matrix, page, OPEN_TIMEOUT_MS));
  FthConfusionMatrix *matrix = fth_training_page_get_confusion_matrix(page);
  g_assert_cmpuint(fth_confusion_matrix_get_n_classes(matrix), ==, 2);
  gint64 total = 0;
  for (guint t = 0; t < 2; t++)
    for (guint p = 0; p < 2; p++)
      total += fth_confusion_matrix_get_count(matrix, t, p);
  g_assert_cmpint(total, >, 0);
  g_assert_cmpint(total, <, 24);

  /* A cell lists its class's items of the matrix's split (the test one) in the grid (no
   * predictions are stored here). */
  guint dark = g_strcmp0(fth_confusion_matrix_get_label(matrix, 0), "dark") == 0 ? 0 : 1;
  gint64 dark_test = 0;
  {
    g_autoptr(GError) error2 = NULL;
    g_autoptr(FthLabel) label = fth_store_find_label(fth_window_get_store(window), "dark",
                                                     &error2);
    g_assert_nonnull(label);
    FthItemFilter filter = FTH_ITEM_FILTER_INIT;
    filter.label_id = label->id;
    filter.split = FTH_SPLIT_TEST;
    g_assert_true(fth_store_count_items(fth_window_get_store(window), &filter, &dark_test,
                                        &error2));
  }
  g_assert_cmpint(dark_test, >, 0);
  g_assert_cmpint(dark_test, <, 12);
  g_signal_emit_by_name(matrix, "cell-activated", dark, dark);
  g_assert_cmpstr(adw_view_stack_get_visible_child_name(g_ptr_array_index(stacks, 0)), ==,
                  "items");
  g_assert_cmpuint(g_list_model_get_n_items(fth_window_get_items(window)), ==, dark_test);

  destroy_window(window);
  fth_test_rmtree(dir);
}

/* ---- line chart ------------------------------------------------------------------------- */

/* Red of the chart's series in the test, and where the pixel column of x lands in the chart
 * (the plot spans 48 .. width - 12 px, see fth-line-chart.c). */
static const guint8 chart_red[3] = { 255, 0, 0 };

static guint
count_color_in_rows(GdkTexture *texture, const guint8 rgb[3], int tolerance, int row0, int row1)
{
  int width = gdk_texture_get_width(texture), height = gdk_texture_get_height(texture);
  gsize stride = (gsize)width * 4;
  g_autofree guint8 *pixels = g_malloc(stride * (gsize)height);
  guint n = 0;

  gdk_texture_download(texture, pixels, stride);
  for (int y = MAX(row0, 0); y < MIN(row1, height); y++)
    for (int x = 0; x < width; x++) {
      const guint8 *p = pixels + (gsize)y * stride + 4 * (gsize)x;
      n += abs(p[2] - rgb[0]) <= tolerance && abs(p[1] - rgb[1]) <= tolerance &&
           abs(p[0] - rgb[2]) <= tolerance;
    }
  return n;
}

/* 40,000 points of a flat curve with one spike: many points share a pixel column, yet the
 * spike reaches the top of the plot; a burst of appends draws within the redraw interval. */
static void
test_line_chart(void)
{
  GtkWidget *window = gtk_window_new();
  GtkWidget *chart = fth_line_chart_new();
  gtk_window_set_child(GTK_WINDOW(window), chart);
  gtk_window_set_default_size(GTK_WINDOW(window), 400, 220);
  gtk_window_present(GTK_WINDOW(window));
  GdkRGBA red = { 1, 0, 0, 1 };
  guint series = fth_line_chart_add_series(FTH_LINE_CHART(chart), "loss", &red);
  fth_test_spin_for(100);

  for (guint i = 0; i < 40000; i++)
    fth_line_chart_append(FTH_LINE_CHART(chart), series, i, i == 23456 ? 1.0 : 0.0);
  g_assert_cmpuint(fth_line_chart_get_n_points(FTH_LINE_CHART(chart), series), ==, 40000);
  fth_test_spin_for(250);
  g_autoptr(GdkTexture) rendered = fth_test_render_widget(chart);
  int height = gdk_texture_get_height(rendered);
  /* The plot's top is 24 px down, its bottom 22 px up: the spike's peak and the flat line. */
  g_assert_cmpuint(count_color_in_rows(rendered, chart_red, 40, 20, 30), >, 0);
  g_assert_cmpuint(count_color_in_rows(rendered, chart_red, 40, height - 26, height - 18), >, 200);
  /* Only the spike's column rises: the upper half of the plot holds a thin line, no more. */
  g_assert_cmpuint(count_color_in_rows(rendered, chart_red, 40, 40, height / 2), <, 300);

  fth_line_chart_clear(FTH_LINE_CHART(chart));
  fth_test_spin_for(150);
  g_object_unref(rendered);
  rendered = fth_test_render_widget(chart);
  g_assert_cmpuint(count_color_in_rows(rendered, chart_red, 40, 20, height), ==, 0); /* legend above */
  gtk_window_destroy(GTK_WINDOW(window));
  fth_test_spin_for(50);
}

/* ---- window state ----------------------------------------------------------------------- */

/* The size, sidebar and thumbnail size of a closed window come back in the next one. */
static void
test_window_state(void)
{
  if (g_getenv("GSETTINGS_SCHEMA_DIR") == NULL) {
    g_test_skip("GSETTINGS_SCHEMA_DIR unset: the schema is not compiled for this run");
    return;
  }
  FthWindow *window = fth_window_new(app);
  gtk_window_set_default_size(GTK_WINDOW(window), 720, 510);
  gtk_window_present(GTK_WINDOW(window));
  fth_test_spin_for(100);
  g_action_group_activate_action(G_ACTION_GROUP(window), "toggle-sidebar", NULL);
  gtk_window_close(GTK_WINDOW(window)); /* saves, then destroys */
  fth_test_spin_for(100);

  window = fth_window_new(app);
  int width = 0, height = 0;
  gtk_window_get_default_size(GTK_WINDOW(window), &width, &height);
  g_assert_cmpint(width, ==, 720);
  g_assert_cmpint(height, ==, 510);
  g_autoptr(GVariant) sidebar =
    g_action_group_get_action_state(G_ACTION_GROUP(window), "toggle-sidebar");
  g_assert_false(g_variant_get_boolean(sidebar));
  g_action_group_activate_action(G_ACTION_GROUP(window), "toggle-sidebar", NULL);
  gtk_window_close(GTK_WINDOW(window));
  fth_test_spin_for(100);
}

static AdwMessageDialog *
find_dialog(FthWindow *window)
{
  GListModel *toplevels = gtk_window_get_toplevels(); /* transfer none */
  for (guint i = 0; i < g_list_model_get_n_items(toplevels); i++) {
    g_autoptr(GObject) toplevel = g_list_model_get_item(toplevels, i);
    if (ADW_IS_MESSAGE_DIALOG(toplevel) &&
        gtk_window_get_transient_for(GTK_WINDOW(toplevel)) == GTK_WINDOW(window))
      return ADW_MESSAGE_DIALOG(toplevel);
  }
  return NULL;
}

static void
assert_open_fails(const char *dir)
{
  FthWindow *window = new_window();
  g_autofree char *message = NULL;

  g_assert_false(fth_test_open_project(window, dir, OPEN_TIMEOUT_MS, &message));
  g_assert_nonnull(message);
  g_test_message("opening %s: %s", dir, message);
  g_assert_false(fth_window_has_project(window));

  /* The user sees a dialog that names the folder. */
  AdwMessageDialog *dialog = find_dialog(window);
  g_assert_nonnull(dialog);
  g_assert_nonnull(strstr(adw_message_dialog_get_body(dialog), dir));
  gtk_window_destroy(GTK_WINDOW(dialog));

  destroy_window(window);
}

static void
test_open_not_project(void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp("fathom-not-project-XXXXXX", &error);
  g_assert_no_error(error);

  assert_open_fails(dir);

  g_autofree char *missing = g_build_filename(dir, "no-such-folder", NULL);
  assert_open_fails(missing);

  fth_test_rmtree(dir);
}

static void
test_open_corrupt(void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp("fathom-corrupt-XXXXXX", &error);
  g_assert_no_error(error);
  g_autofree char *db = g_build_filename(dir, FTH_STORE_DB_NAME, NULL);
  g_autofree char *garbage = g_strnfill(8192, 'x');
  g_assert_true(g_file_set_contents(db, garbage, -1, &error));

  assert_open_fails(dir);

  fth_test_rmtree(dir);
}

/* A project written by a newer Fathom is refused with a dialog and left as it was. */
static void
test_open_newer_version(void)
{
  g_autofree char *dir = create_project();
  g_autofree char *db = g_build_filename(dir, FTH_STORE_DB_NAME, NULL);
  sqlite3 *conn = NULL;
  g_assert_cmpint(sqlite3_open(db, &conn), ==, SQLITE_OK);
  g_assert_cmpint(sqlite3_exec(conn, "PRAGMA user_version = 999", NULL, NULL, NULL), ==,
                  SQLITE_OK);
  sqlite3_close(conn);
  g_autoptr(GError) error = NULL;
  g_autofree char *before = NULL;
  gsize before_len = 0;
  g_assert_true(g_file_get_contents(db, &before, &before_len, &error));

  assert_open_fails(dir);

  g_autofree char *after = NULL;
  gsize after_len = 0;
  g_assert_true(g_file_get_contents(db, &after, &after_len, &error));
  g_assert_cmpmem(before, before_len, after, after_len);
  fth_test_rmtree(dir);
}

/* Another process holds the project's write lock (sqlite3's BEGIN EXCLUSIVE): the project is
 * refused with a dialog that says so, and its database is left byte for byte as it was. */
static void
test_open_locked(void)
{
  g_autofree char *sqlite = g_find_program_in_path("sqlite3");
  if (sqlite == NULL) {
    g_test_skip("the sqlite3 program is not installed");
    return;
  }
  g_autofree char *dir = create_project();
  g_autofree char *db = g_build_filename(dir, FTH_STORE_DB_NAME, NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GSubprocess) holder = g_subprocess_new(
    G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error, sqlite, db, NULL);
  g_assert_no_error(error);
  const char begin[] = "BEGIN EXCLUSIVE;\nSELECT 'held';\n";
  g_assert_true(g_output_stream_write_all(g_subprocess_get_stdin_pipe(holder), begin,
                                          strlen(begin), NULL, NULL, &error));
  g_autoptr(GDataInputStream) out =
    g_data_input_stream_new(g_subprocess_get_stdout_pipe(holder));
  g_autofree char *held = g_data_input_stream_read_line(out, NULL, NULL, &error);
  g_assert_no_error(error);
  g_assert_cmpstr(held, ==, "held");
  g_autofree char *before = NULL, *after = NULL;
  gsize before_len = 0, after_len = 0;
  g_assert_true(g_file_get_contents(db, &before, &before_len, &error));

  FthWindow *window = new_window();
  g_autofree char *message = NULL;
  gboolean opened = fth_test_open_project(window, dir, OPEN_TIMEOUT_MS, &message);
  g_test_message("opening a locked project: %s", opened ? "opened" : message);
  g_assert_false(opened);
  g_assert_nonnull(strstr(message, "another program"));
  AdwMessageDialog *dialog = find_dialog(window);
  g_assert_nonnull(dialog);
  g_assert_nonnull(strstr(adw_message_dialog_get_body(dialog), dir));
  gtk_window_destroy(GTK_WINDOW(dialog));
  destroy_window(window);

  g_assert_true(g_output_stream_close(g_subprocess_get_stdin_pipe(holder), NULL, &error));
  g_assert_true(g_subprocess_wait(holder, NULL, &error));
  g_assert_true(g_file_get_contents(db, &after, &after_len, &error));
  g_assert_cmpmem(before, before_len, after, after_len);
  fth_test_rmtree(dir);
}

/* ---- the thumbnail loader ---------------------------------------------------------------- */

typedef struct {
  GdkTexture *texture;
  GError *error;
  gboolean done;
} LoadResult;

static void
load_done(GObject *source, GAsyncResult *result, gpointer user_data)
{
  LoadResult *load = user_data;
  load->texture = fth_thumbnail_loader_load_finish(FTH_THUMBNAIL_LOADER(source), result,
                                                   &load->error);
  load->done = TRUE;
}

static gboolean
load_finished(gpointer data)
{
  return ((LoadResult *)data)->done;
}

static GdkTexture *
load_thumbnail(FthThumbnailLoader *loader, FthItem *item, GError **error)
{
  LoadResult load = { 0 };
  fth_thumbnail_loader_load_async(loader, item, NULL, load_done, &load);
  g_assert_true(fth_test_spin_until(load_finished, &load, OPEN_TIMEOUT_MS));
  if (load.error != NULL)
    g_propagate_error(error, load.error);
  return load.texture;
}

/* IDX records (as in Fashion-MNIST) become gray thumbnails with the record's pixels; the
 * cache keeps at most its capacity. */
static void
test_thumbnail_loader_idx(void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp("fathom-idx-XXXXXX", &error);
  g_assert_no_error(error);

  /* 3 records of 2 rows x 3 columns, unsigned bytes. */
  static const guint8 idx[] = {
    0, 0, 0x08, 3, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 3,
    0, 10, 20, 30, 40, 50,
    60, 70, 80, 90, 100, 110,
    200, 210, 220, 230, 240, 250,
  };
  g_autofree char *idx_path = g_build_filename(dir, "images-idx3-ubyte", NULL);
  g_assert_true(g_file_set_contents(idx_path, (const char *)idx, sizeof idx, &error));

  g_autoptr(FthStore) store = fth_store_create(dir, &error);
  g_assert_no_error(error);
  for (gint64 i = 0; i < 3; i++)
    add_item(store, idx_path, i, 3, 2);
  add_item(store, idx_path, 7, 3, 2); /* past the end of the file */

  g_autoptr(FthItemList) list = fth_item_list_new(store, NULL, &error);
  g_assert_no_error(error);
  g_assert_cmpuint(g_list_model_get_n_items(G_LIST_MODEL(list)), ==, 4);

  g_autoptr(FthThumbnailLoader) loader = fth_thumbnail_loader_new(store, 64, 2);
  for (guint i = 0; i < 3; i++) {
    g_autoptr(FthItem) item = g_list_model_get_item(G_LIST_MODEL(list), i);
    g_autoptr(GdkTexture) texture = load_thumbnail(loader, item, &error);
    g_assert_no_error(error);
    g_assert_cmpint(gdk_texture_get_width(texture), ==, 3);
    g_assert_cmpint(gdk_texture_get_height(texture), ==, 2);
    guint8 bgra[2 * 3 * 4];
    gdk_texture_download(texture, bgra, 3 * 4);
    for (guint p = 0; p < 6; p++) {
      guint8 expected = idx[16 + i * 6 + p];
      g_assert_cmpuint(bgra[4 * p], ==, expected);
      g_assert_cmpuint(bgra[4 * p + 1], ==, expected);
      g_assert_cmpuint(bgra[4 * p + 2], ==, expected);
    }
  }
  /* Capacity 2: the first record fell out, the last two are cached. */
  g_assert_cmpuint(fth_thumbnail_loader_get_n_cached(loader), ==, 2);
  g_autoptr(FthItem) first = g_list_model_get_item(G_LIST_MODEL(list), 0);
  g_autoptr(FthItem) last = g_list_model_get_item(G_LIST_MODEL(list), 2);
  g_autoptr(GdkTexture) evicted = fth_thumbnail_loader_lookup(loader, first);
  g_autoptr(GdkTexture) cached = fth_thumbnail_loader_lookup(loader, last);
  g_assert_null(evicted);
  g_assert_nonnull(cached);

  /* A record past the end is an error naming the file, not a crash. */
  g_autoptr(FthItem) bad = g_list_model_get_item(G_LIST_MODEL(list), 3);
  g_autoptr(GdkTexture) none = load_thumbnail(loader, bad, &error);
  g_assert_null(none);
  g_assert_nonnull(error);
  g_assert_nonnull(strstr(error->message, idx_path));
  g_clear_error(&error);

  g_clear_object(&loader);
  fth_test_spin_for(50);
  fth_test_rmtree(dir);
}

/* ---- recent projects ------------------------------------------------------------------- */

static void
test_recent_projects(void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *a = create_project();
  g_autofree char *b = create_project();
  g_autofree char *gone = create_project();

  g_assert_true(fth_recent_projects_add(a, &error));
  g_assert_true(fth_recent_projects_add(b, &error));
  g_assert_true(fth_recent_projects_add(gone, &error));
  g_assert_true(fth_recent_projects_add(a, &error));
  g_assert_no_error(error);
  fth_test_rmtree(gone);

  /* Most recent first, no duplicates, projects that vanished left out. */
  g_auto(GStrv) list = fth_recent_projects_load(&error);
  g_assert_no_error(error);
  g_assert_cmpuint(g_strv_length(list), ==, 2);
  g_autofree char *ca = g_canonicalize_filename(a, NULL);
  g_autofree char *cb = g_canonicalize_filename(b, NULL);
  g_assert_cmpstr(list[0], ==, ca);
  g_assert_cmpstr(list[1], ==, cb);

  /* A damaged list is an error naming the file. */
  g_autofree char *path = fth_recent_projects_get_path();
  g_assert_true(g_file_set_contents(path, "[Recent\nprojects=", -1, &error));
  g_auto(GStrv) broken = fth_recent_projects_load(&error);
  g_assert_null(broken);
  g_assert_nonnull(error);
  g_assert_nonnull(strstr(error->message, path));
  g_clear_error(&error);
  g_remove(path);

  fth_test_rmtree(a);
  fth_test_rmtree(b);
}

int
main(int argc, char **argv)
{
  /* The tests must not touch the user's own recent projects: tests/run-with-xvfb.sh gives
   * them a display and temporary XDG dirs. */
  if (!fth_test_under_xvfb("test-workbench"))
    return 77;
  gtk_test_init(&argc, &argv, NULL);
  app = fth_test_application_new();

  g_test_add_func("/workbench/open-project", test_open_project);
  g_test_add_func("/workbench/render", test_render);
  g_test_add_func("/workbench/actions", test_actions);
  g_test_add_func("/workbench/set-label", test_set_label);
  g_test_add_func("/workbench/item-view", test_item_view);
  g_test_add_func("/workbench/edit-labels", test_edit_labels);
  g_test_add_func("/workbench/new-project-and-drop", test_new_project_and_drop);
  g_test_add_func("/workbench/jobs-panel-cancel", test_jobs_panel_cancel);
  g_test_add_func("/workbench/job-end-notice", test_job_end_notice);
  g_test_add_func("/workbench/training-page", test_training_page);
  g_test_add_func("/workbench/line-chart", test_line_chart);
  g_test_add_func("/workbench/item-view-suggestion-and-missing",
                  test_item_view_suggestion_and_missing);
  g_test_add_func("/workbench/open-not-project", test_open_not_project);
  g_test_add_func("/workbench/open-corrupt", test_open_corrupt);
  g_test_add_func("/workbench/open-newer-version", test_open_newer_version);
  g_test_add_func("/workbench/open-locked", test_open_locked);
  g_test_add_func("/workbench/thumbnail-loader-idx", test_thumbnail_loader_idx);
  g_test_add_func("/workbench/recent-projects", test_recent_projects);
  g_test_add_func("/workbench/window-state", test_window_state);

  int status = g_test_run();
  g_object_unref(app);
  return status;
}
