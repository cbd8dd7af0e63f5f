/* fth-application.c: application-wide actions, their shortcuts, and one window per project. */
#include "fth-application.h"

#include "fth-config.h"
#include "fth-window.h"

#include <glib/gi18n.h>

struct _FthApplication {
  AdwApplication parent_instance;
};

G_DEFINE_FINAL_TYPE(FthApplication, fth_application, ADW_TYPE_APPLICATION)

/* Keep in step with resources/gtk/help-overlay.ui, which lists them for the user.
 * win.show-help-overlay (Ctrl+?) is bound by GtkApplication itself. Keys without modifiers
 * (label hotkeys, a/d, Delete, Escape) are handled by the window after the focused widget, so
 * typing in the search entry never triggers them. */
static const struct {
  const char *action;
  const char *accels[3];
} fth_application_accels[] = {
  { "app.quit", { "<Control>q", NULL } },
  { "win.open", { "<Control>o", NULL } },
  { "win.new-project", { "<Control>n", NULL } },
  { "win.import", { "<Control>i", NULL } },
  { "win.close-project", { "<Control>w", NULL } },
  { "win.find", { "<Control>f", NULL } },
  { "win.toggle-sidebar", { "F9", NULL } },
  { "win.follow-queue", { "<Control>j", NULL } },
  { "win.zoom-in", { "<Control>plus", "<Control>equal", NULL } },
  { "win.zoom-out", { "<Control>minus", NULL } },
  { "win.zoom-fit", { "<Control>0", NULL } },
  { "win.zoom-original", { "<Control>1", NULL } },
  { "win.undo", { "<Control>z", NULL } },
  { "win.redo", { "<Control><Shift>z", "<Control>y", NULL } },
};

FthApplication *
fth_application_new(GApplicationFlags flags)
{
  return g_object_new(FTH_TYPE_APPLICATION,
                      "application-id", FTH_APPLICATION_ID,
                      "flags", G_APPLICATION_HANDLES_OPEN | flags,
                      NULL);
}

static void
quit_activated(GSimpleAction *action, GVariant *parameter, gpointer user_data)
{
  GApplication *app = G_APPLICATION(user_data);
  GList *windows = gtk_application_get_windows(GTK_APPLICATION(app));

  /* Closing windows (rather than g_application_quit) lets each one cancel its loads. */
  while (windows != NULL) {
    GtkWindow *window = windows->data;
    windows = windows->next;
    gtk_window_destroy(window);
  }
}

static void
about_activated(GSimpleAction *action, GVariant *parameter, gpointer user_data)
{
  GtkApplication *app = GTK_APPLICATION(user_data);
  static const char *developers[] = { "The Fathom authors", NULL };

  adw_show_about_window(gtk_application_get_active_window(app),
                        "application-name", _("Fathom"),
                        "application-icon", FTH_APPLICATION_ID,
                        "version", FTH_VERSION,
                        "comments", _("Label data and train models on it"),
                        "developers", developers,
                        "license-type", GTK_LICENSE_GPL_3_0,
                        "translator-credits", _("translator-credits"),
                        NULL);
}

static const GActionEntry app_actions[] = {
  { .name = "quit", .activate = quit_activated },
  { .name = "about", .activate = about_activated },
};

static void
fth_application_startup(GApplication *app)
{
  G_APPLICATION_CLASS(fth_application_parent_class)->startup(app);

  g_action_map_add_action_entries(G_ACTION_MAP(app), app_actions, G_N_ELEMENTS(app_actions),
                                  app);
  for (guint i = 0; i < G_N_ELEMENTS(fth_application_accels); i++)
    gtk_application_set_accels_for_action(GTK_APPLICATION(app),
                                          fth_application_accels[i].action,
                                          fth_application_accels[i].accels);
}

static void
fth_application_activate(GApplication *app)
{
  GtkWindow *window = gtk_application_get_active_window(GTK_APPLICATION(app));

  if (window == NULL)
    window = GTK_WINDOW(fth_window_new(FTH_APPLICATION(app)));
  gtk_window_present(window);
}

static void
fth_application_open(GApplication *app, GFile **files, int n_files, const char *hint)
{
  for (int i = 0; i < n_files; i++) {
    /* The first project reuses a window that shows the start page; the rest get their own. */
    GtkWindow *active = gtk_application_get_active_window(GTK_APPLICATION(app));
    FthWindow *window;

    if (FTH_IS_WINDOW(active) && !fth_window_has_project(FTH_WINDOW(active)))
      window = FTH_WINDOW(active);
    else
      window = fth_window_new(FTH_APPLICATION(app));
    fth_window_open_project(window, files[i]);
    gtk_window_present(GTK_WINDOW(window));
  }
}

static void
fth_application_class_init(FthApplicationClass *klass)
{
  GApplicationClass *app_class = G_APPLICATION_CLASS(klass);

  app_class->startup = fth_application_startup;
  app_class->activate = fth_application_activate;
  app_class->open = fth_application_open;
}

static void
fth_application_init(FthApplication *self)
{
}
