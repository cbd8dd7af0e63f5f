/* take-screenshot: opens a project in the workbench and saves the window as a PNG.
 *   tests/run-with-xvfb.sh take-screenshot PROJECT_DIR OUT.png [WIDTH HEIGHT]
 * For docs/screenshots; exits non-zero (saying why) if the project does not open. */
#include "workbench-test-util.h"

#include <stdlib.h>

int
main(int argc, char **argv)
{
  if (argc != 3 && argc != 5) {
    g_printerr("usage: %s PROJECT_DIR OUT.png [WIDTH HEIGHT]\n", argv[0]);
    return 2;
  }
  int width = argc == 5 ? atoi(argv[3]) : 1100;
  int height = argc == 5 ? atoi(argv[4]) : 720;

  gtk_init();
  adw_init();
  g_autoptr(FthApplication) app = fth_application_new(G_APPLICATION_NON_UNIQUE);
  g_autoptr(GError) error = NULL;
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

  g_autoptr(GdkTexture) texture = fth_test_render_widget(GTK_WIDGET(window));
  if (texture == NULL || !gdk_texture_save_to_png(texture, argv[2])) {
    g_printerr("take-screenshot: %s: cannot render or write the PNG\n", argv[2]);
    return 1;
  }
  gtk_window_destroy(GTK_WINDOW(window));
  return 0;
}
