/* workbench-test-util.c: main-loop spinning, waiting for the window, rendering it. */
#include "workbench-test-util.h"

#include "fth-item-cell.h"

gboolean
fth_test_under_xvfb(const char *program)
{
  if (g_getenv("DISPLAY") != NULL && g_getenv("XDG_DATA_HOME") != NULL)
    return TRUE;
  g_printerr("%s: no DISPLAY or XDG_DATA_HOME; run it through tests/run-with-xvfb.sh\n", program);
  return FALSE;
}

FthApplication *
fth_test_application_new(void)
{
  FthApplication *app = fth_application_new(G_APPLICATION_NON_UNIQUE);
  g_autoptr(GError) error = NULL;
  if (!g_application_register(G_APPLICATION(app), NULL, &error))
    g_error("cannot register the application: %s", error->message);
  return app;
}

static gboolean
set_flag(gpointer data)
{
  *(gboolean *)data = TRUE;
  return G_SOURCE_REMOVE;
}

gboolean
fth_test_spin_until(FthTestCondition condition, gpointer data, guint timeout_ms)
{
  gboolean timed_out = FALSE;
  guint source = g_timeout_add(timeout_ms, set_flag, &timed_out);

  while (!condition(data) && !timed_out)
    g_main_context_iteration(NULL, TRUE);
  if (!timed_out)
    g_source_remove(source);
  return condition(data);
}

static gboolean
never(gpointer data)
{
  return FALSE;
}

void
fth_test_spin_for(guint ms)
{
  fth_test_spin_until(never, NULL, ms);
}

typedef struct {
  gboolean done;
  gboolean opened;
  char *message;
} OpenState;

static void
on_opened(FthWindow *window, gpointer user_data)
{
  OpenState *state = user_data;
  state->done = state->opened = TRUE;
}

static void
on_failed(FthWindow *window, const char *message, gpointer user_data)
{
  OpenState *state = user_data;
  state->done = TRUE;
  state->message = g_strdup(message);
}

static gboolean
open_done(gpointer data)
{
  return ((OpenState *)data)->done;
}

gboolean
fth_test_open_project(FthWindow *window, const char *dir, guint timeout_ms, char **message)
{
  OpenState state = { 0 };
  g_autoptr(GFile) file = g_file_new_for_path(dir);
  gulong opened_id = g_signal_connect(window, "project-opened", G_CALLBACK(on_opened), &state);
  gulong failed_id = g_signal_connect(window, "open-failed", G_CALLBACK(on_failed), &state);

  fth_window_open_project(window, file);
  if (!fth_test_spin_until(open_done, &state, timeout_ms))
    state.message = g_strdup_printf("%s: no answer within %u ms", dir, timeout_ms);
  g_signal_handler_disconnect(window, opened_id);
  g_signal_handler_disconnect(window, failed_id);

  if (message != NULL)
    *message = g_steal_pointer(&state.message);
  g_free(state.message);
  return state.opened;
}

static void
collect(GtkWidget *widget, GType type, GPtrArray *out)
{
  if (G_TYPE_CHECK_INSTANCE_TYPE(widget, type))
    g_ptr_array_add(out, widget);
  for (GtkWidget *child = gtk_widget_get_first_child(widget); child != NULL;
       child = gtk_widget_get_next_sibling(child))
    collect(child, type, out);
}

GPtrArray *
fth_test_find_widgets(GtkWidget *root, GType type)
{
  GPtrArray *out = g_ptr_array_new();
  collect(root, type, out);
  return out;
}

static gboolean
thumbnails_loaded(gpointer data)
{
  g_autoptr(GPtrArray) cells = fth_test_find_widgets(GTK_WIDGET(data), FTH_TYPE_ITEM_CELL);
  guint bound = 0;

  for (guint i = 0; i < cells->len; i++) {
    FthItemCell *cell = g_ptr_array_index(cells, i);
    if (fth_item_cell_get_item(cell) == NULL)
      continue;
    bound++;
    if (!fth_item_cell_is_loaded(cell))
      return FALSE;
  }
  if (bound == 0)
    return FALSE;

  /* And no page is still cross-fading in. */
  g_autoptr(GPtrArray) stacks = fth_test_find_widgets(GTK_WIDGET(data), GTK_TYPE_STACK);
  for (guint i = 0; i < stacks->len; i++)
    if (gtk_stack_get_transition_running(g_ptr_array_index(stacks, i)))
      return FALSE;
  return TRUE;
}

gboolean
fth_test_wait_for_thumbnails(FthWindow *window, guint timeout_ms)
{
  gboolean ok = fth_test_spin_until(thumbnails_loaded, window, timeout_ms);
  /* One more frame so the pictures are laid out with their new paintables. */
  fth_test_spin_for(100);
  return ok;
}

GdkTexture *
fth_test_render_widget(GtkWidget *widget)
{
  int width = gtk_widget_get_width(widget);
  int height = gtk_widget_get_height(widget);
  g_return_val_if_fail(width > 0 && height > 0, NULL);

  g_autoptr(GdkPaintable) paintable = gtk_widget_paintable_new(widget);
  GtkSnapshot *snapshot = gtk_snapshot_new();
  gdk_paintable_snapshot(paintable, snapshot, width, height);
  g_autoptr(GskRenderNode) node = gtk_snapshot_free_to_node(snapshot);
  if (node == NULL)
    return NULL;

  GskRenderer *renderer = gtk_native_get_renderer(gtk_widget_get_native(widget));
  return gsk_renderer_render_texture(renderer, node, &GRAPHENE_RECT_INIT(0, 0, width, height));
}

GdkTexture *
fth_test_render_widget_laid_out(GtkWidget *widget)
{
  for (int i = 0; i < 100; i++) {
    fth_test_spin_for(20);
    GdkTexture *texture = fth_test_render_widget(widget);
    if (texture != NULL)
      return texture;
  }
  g_error("%s renders nothing", G_OBJECT_TYPE_NAME(widget));
}

guint32
fth_test_texture_pixel(GdkTexture *texture, int x, int y)
{
  int width = gdk_texture_get_width(texture), height = gdk_texture_get_height(texture);
  g_autofree guint8 *data = g_malloc((gsize)width * height * 4);
  gdk_texture_download(texture, data, (gsize)width * 4);
  const guint8 *p = data + ((gsize)y * width + x) * 4; /* B G R A, little-endian ARGB32 */
  return (guint32)p[2] << 16 | (guint32)p[1] << 8 | p[0];
}
