/* workbench-test-util.h: helpers for driving the workbench under Xvfb. */
#pragma once

#include "fth-window.h"

G_BEGIN_DECLS

/* FALSE, after saying why on stderr, unless PROGRAM runs through tests/run-with-xvfb.sh: a
 * display, and temporary XDG folders so that it never touches the user's own files. */
gboolean fth_test_under_xvfb(const char *program);
/* A non-unique application, registered (aborts the test if it cannot be). */
FthApplication *fth_test_application_new(void);

typedef gboolean (*FthTestCondition)(gpointer data);

/* Iterates the default main context until CONDITION holds or TIMEOUT_MS pass. */
gboolean fth_test_spin_until(FthTestCondition condition, gpointer data, guint timeout_ms);
/* Iterates the default main context for MS milliseconds (lets frames and idles run). */
void fth_test_spin_for(guint ms);

/* Opens DIR in WINDOW and waits for "project-opened" or "open-failed". Returns TRUE when the
 * project opened; else FALSE with *MESSAGE (if not NULL) set to the failure message. */
gboolean fth_test_open_project(FthWindow *window, const char *dir, guint timeout_ms,
                               char **message);

/* Waits until every item cell in WINDOW that shows an item has its thumbnail (or icon) and
 * no page transition is running. */
gboolean fth_test_wait_for_thumbnails(FthWindow *window, guint timeout_ms);

/* Renders WIDGET (already mapped) with its window's renderer. */
GdkTexture *fth_test_render_widget(GtkWidget *widget);
/* fth_test_render_widget once WIDGET's pending layout is done (a widget waiting for its
 * allocation renders nothing); fails the test after 2 s. */
GdkTexture *fth_test_render_widget_laid_out(GtkWidget *widget);
/* The pixel at (X, Y) of a rendered texture, as 0xRRGGBB. */
guint32 fth_test_texture_pixel(GdkTexture *texture, int x, int y);

/* Depth-first list of the descendants of ROOT that are of TYPE (not owned). */
GPtrArray *fth_test_find_widgets(GtkWidget *root, GType type);

G_END_DECLS
