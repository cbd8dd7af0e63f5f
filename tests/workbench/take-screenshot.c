/* take-screenshot: opens a project in the workbench and saves the window as a PNG.
 *   tests/run-with-xvfb.sh take-screenshot [--size WxH] [--item N]
 *       [--train RECIPE [--epochs N]] [--training [--scroll-end]]
 *       [--tune OBJECTIVE [--trials N] [--tune-view NAME]] PROJECT_DIR OUT.png
 * --item opens the N-th item (from 0) in the item view first; --train runs RECIPE on the
 * training page and shoots it when the run ends; --training shows the training page as it is,
 * --scroll-end scrolled to its end (the confusion matrix and the runs); --tune runs a study of
 * OBJECTIVE on the tuning page and shoots its view NAME (trials, best, parallel, importances). For docs/screenshots; exits non-zero (saying
 * why) if the project does not open or the run fails. */
#include "fth-item-view.h"
#include "fth-training-page.h"
#include "fth-tune-page.h"
#include "workbench-test-util.h"

#include <stdio.h>

static gboolean
item_view_loaded(gpointer data)
{
  return fth_item_view_is_loaded(data);
}

static void
run_finished(FthTrainingPage *page, gboolean succeeded, gpointer user_data)
{
  *(int *)user_data = succeeded ? 1 : 2;
}

static void
study_finished(FthTunePage *page, gboolean succeeded, gpointer user_data)
{
  *(int *)user_data = succeeded ? 1 : 2;
}

static gboolean
int_set(gpointer data)
{
  return *(int *)data != 0;
}

int
main(int argc, char **argv)
{
  g_autofree char *size = NULL;
  int item = -1, epochs = 1;
  gboolean training = FALSE, scroll_end = FALSE;
  g_autofree char *recipe = NULL, *tune = NULL, *tune_view = NULL;
  int trials = 40;
  GOptionEntry entries[] = {
    { "train", 0, 0, G_OPTION_ARG_STRING, &recipe, "Train RECIPE on the training page", "RECIPE" },
    { "epochs", 0, 0, G_OPTION_ARG_INT, &epochs, "Epochs for --train (default 1)", "N" },
    { "training", 0, 0, G_OPTION_ARG_NONE, &training, "Show the training page", NULL },
    { "scroll-end", 0, 0, G_OPTION_ARG_NONE, &scroll_end, "Scroll the page to its end", NULL },
    { "size", 0, 0, G_OPTION_ARG_STRING, &size, "Window size (default 1100x720)", "WxH" },
    { "item", 0, 0, G_OPTION_ARG_INT, &item, "Open item N in the item view", "N" },
    { "tune", 0, 0, G_OPTION_ARG_STRING, &tune, "Run a study of OBJECTIVE on the tuning page",
      "OBJECTIVE" },
    { "trials", 0, 0, G_OPTION_ARG_INT, &trials,
      "Trials for --tune (default 40; 0: only show the page)", "N" },
    { "tune-view", 0, 0, G_OPTION_ARG_STRING, &tune_view, "The tuning page's view to show",
      "NAME" },
    { NULL },
  };
  g_autoptr(GOptionContext) context = g_option_context_new("PROJECT_DIR OUT.png");
  g_autoptr(GError) error = NULL;
  g_option_context_add_main_entries(context, entries, NULL);
  if (!g_option_context_parse(context, &argc, &argv, &error) || argc != 3) {
    g_printerr("take-screenshot: %s\n", error != NULL ? error->message
                                                      : "need PROJECT_DIR and OUT.png");
    return 2;
  }
  int width = 1100, height = 720;
  if (size != NULL && sscanf(size, "%dx%d", &width, &height) != 2) {
    g_printerr("take-screenshot: --size %s: want WIDTHxHEIGHT\n", size);
    return 2;
  }

  gtk_init();
  adw_init();
  g_autoptr(FthApplication) app = fth_application_new(G_APPLICATION_NON_UNIQUE);
  if (!g_application_register(G_APPLICATION(app), NULL, &error)) {
    g_printerr("take-screenshot: %s\n", error->message);
    return 1;
  }

  FthWindow *window = fth_window_new(app);
  gtk_window_set_default_size(GTK_WINDOW(window), width, height);
  gtk_window_present(GTK_WINDOW(window));

  g_autofree char *message = NULL;
  if (!fth_test_open_project(window, argv[1], 60000, &message)) {
    g_printerr("take-screenshot: %s\n", message);
    return 1;
  }
  if (!fth_test_wait_for_thumbnails(window, 60000))
    g_printerr("take-screenshot: some thumbnails did not load in time\n");

  if (item >= 0) {
    g_autoptr(GPtrArray) grids = fth_test_find_widgets(GTK_WIDGET(window), GTK_TYPE_GRID_VIEW);
    g_autoptr(GPtrArray) views = fth_test_find_widgets(GTK_WIDGET(window), FTH_TYPE_ITEM_VIEW);
    g_signal_emit_by_name(g_ptr_array_index(grids, 0), "activate", (guint)item);
    if (!fth_test_spin_until(item_view_loaded, g_ptr_array_index(views, 0), 60000)) {
      g_printerr("take-screenshot: item %d did not load\n", item);
      return 1;
    }
    fth_test_spin_for(300); /* page transition and layout */
  }

  if (recipe != NULL) {
    g_autoptr(GPtrArray) stacks = fth_test_find_widgets(GTK_WIDGET(window), ADW_TYPE_VIEW_STACK);
    g_autoptr(GPtrArray) pages =
      fth_test_find_widgets(GTK_WIDGET(window), FTH_TYPE_TRAINING_PAGE);
    FthTrainingPage *page = g_ptr_array_index(pages, 0);
    adw_view_stack_set_visible_child_name(g_ptr_array_index(stacks, 0), "training");
    fth_test_spin_for(300); /* the recipes are listed */
    fth_training_page_select_recipe(page, recipe);
    fth_training_page_set_epochs(page, epochs);
    int finished = 0;
    g_signal_connect(page, "run-finished", G_CALLBACK(run_finished), &finished);
    if (!fth_training_page_start(page) || !fth_test_spin_until(int_set, &finished, 3600 * 1000) ||
        finished != 1) {
      g_printerr("take-screenshot: training %s did not succeed\n", recipe);
      return 1;
    }
    fth_test_spin_for(500); /* the runs list and the last frame */
  }

  if (training || scroll_end) {
    g_autoptr(GPtrArray) stacks = fth_test_find_widgets(GTK_WIDGET(window), ADW_TYPE_VIEW_STACK);
    adw_view_stack_set_visible_child_name(g_ptr_array_index(stacks, 0), "training");
    fth_test_spin_for(800); /* the runs and the matrix are read and laid out */
  }
  if (scroll_end) {
    g_autoptr(GPtrArray) pages =
      fth_test_find_widgets(GTK_WIDGET(window), FTH_TYPE_TRAINING_PAGE);
    g_autoptr(GPtrArray) scrolled =
      fth_test_find_widgets(g_ptr_array_index(pages, 0), GTK_TYPE_SCROLLED_WINDOW);
    GtkAdjustment *adjustment =
      gtk_scrolled_window_get_vadjustment(g_ptr_array_index(scrolled, 0));
    gtk_adjustment_set_value(adjustment, gtk_adjustment_get_upper(adjustment));
    fth_test_spin_for(300);
  }

  if (tune != NULL) {
    g_autoptr(GPtrArray) stacks = fth_test_find_widgets(GTK_WIDGET(window), ADW_TYPE_VIEW_STACK);
    g_autoptr(GPtrArray) pages = fth_test_find_widgets(GTK_WIDGET(window), FTH_TYPE_TUNE_PAGE);
    FthTunePage *page = g_ptr_array_index(pages, 0);
    adw_view_stack_set_visible_child_name(g_ptr_array_index(stacks, 0), "tuning");
    fth_tune_page_select_objective(page, tune);
    fth_test_spin_for(300); /* its stored study is read */
    if (trials > 0)
      fth_tune_page_set_budget(page, (guint)trials, 1, 1);
    int finished = 0;
    g_signal_connect(page, "study-finished", G_CALLBACK(study_finished), &finished);
    if (trials > 0 && (!fth_tune_page_start(page) ||
                       !fth_test_spin_until(int_set, &finished, 3600 * 1000) || finished != 1)) {
      g_printerr("take-screenshot: the study of %s did not succeed\n", tune);
      return 1;
    }
    g_autoptr(GPtrArray) stacks_in_page = fth_test_find_widgets(GTK_WIDGET(page), GTK_TYPE_STACK);
    for (guint i = 0; tune_view != NULL && i < stacks_in_page->len; i++)
      if (gtk_stack_get_child_by_name(g_ptr_array_index(stacks_in_page, i), tune_view) != NULL)
        gtk_stack_set_visible_child_name(g_ptr_array_index(stacks_in_page, i), tune_view);
    fth_test_spin_for(800); /* the importances and the last frame */
  }

  g_autoptr(GdkTexture) texture = fth_test_render_widget(GTK_WIDGET(window));
  if (texture == NULL || !gdk_texture_save_to_png(texture, argv[2])) {
    g_printerr("take-screenshot: %s: cannot render or write the PNG\n", argv[2]);
    return 1;
  }
  gtk_window_destroy(GTK_WINDOW(window));
  return 0;
}
