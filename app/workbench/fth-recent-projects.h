/* fth-recent-projects.h: the list of recently opened projects.
 *
 * A small keyfile, $XDG_DATA_HOME/fathom/recent-projects.ini, most recent first. Reads and
 * writes are file I/O, so the window calls them from worker threads; a lock keeps a write
 * from racing a read. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define FTH_RECENT_PROJECTS_MAX 10

/* The keyfile's path (under g_get_user_data_dir()). */
char *fth_recent_projects_get_path(void);
/* The recent project directories, most recent first, at most FTH_RECENT_PROJECTS_MAX;
 * directories that no longer hold fathom.db are left out. A missing file is an empty list;
 * an unreadable or malformed one is an error naming the file. */
GStrv fth_recent_projects_load(GError **error);
/* Puts DIR (made absolute) first, dropping an older entry for it and the oldest beyond the
 * maximum. */
gboolean fth_recent_projects_add(const char *dir, GError **error);

/* fth_recent_projects_load() on a worker thread. */
void fth_recent_projects_load_async(GCancellable *cancellable, GAsyncReadyCallback callback,
                                    gpointer user_data);
GStrv fth_recent_projects_load_finish(GAsyncResult *result, GError **error);

G_END_DECLS
