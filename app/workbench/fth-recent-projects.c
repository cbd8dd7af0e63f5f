/* fth-recent-projects.c: recent projects in a keyfile under the user data dir. */
#include "fth-recent-projects.h"

#include <fathom/store.h>

#include <errno.h>

#define GROUP "Recent"
#define KEY "projects"

static GMutex recent_lock;

char *
fth_recent_projects_get_path(void)
{
  return g_build_filename(g_get_user_data_dir(), "fathom", "recent-projects.ini", NULL);
}

/* Reads the raw list, existing projects or not. Caller holds recent_lock. */
static GStrv
read_list(const char *path, GError **error)
{
  g_autoptr(GKeyFile) keyfile = g_key_file_new();
  g_autoptr(GError) local_error = NULL;

  if (!g_key_file_load_from_file(keyfile, path, G_KEY_FILE_NONE, &local_error)) {
    if (g_error_matches(local_error, G_FILE_ERROR, G_FILE_ERROR_NOENT))
      return g_new0(char *, 1);
    g_set_error(error, local_error->domain, local_error->code, "%s: %s", path,
                local_error->message);
    return NULL;
  }
  if (!g_key_file_has_key(keyfile, GROUP, KEY, NULL))
    return g_new0(char *, 1);

  GStrv list = g_key_file_get_string_list(keyfile, GROUP, KEY, NULL, &local_error);
  if (list == NULL) {
    g_set_error(error, local_error->domain, local_error->code, "%s: %s", path,
                local_error->message);
    return NULL;
  }
  return list;
}

GStrv
fth_recent_projects_load(GError **error)
{
  g_autofree char *path = fth_recent_projects_get_path();

  g_mutex_lock(&recent_lock);
  g_auto(GStrv) list = read_list(path, error);
  g_mutex_unlock(&recent_lock);
  if (list == NULL)
    return NULL;

  g_autoptr(GStrvBuilder) builder = g_strv_builder_new();
  guint n = 0;
  for (guint i = 0; list[i] != NULL && n < FTH_RECENT_PROJECTS_MAX; i++) {
    g_autofree char *db = g_build_filename(list[i], FTH_STORE_DB_NAME, NULL);
    if (g_file_test(db, G_FILE_TEST_IS_REGULAR)) {
      g_strv_builder_add(builder, list[i]);
      n++;
    }
  }
  return g_strv_builder_end(builder);
}

gboolean
fth_recent_projects_add(const char *dir, GError **error)
{
  g_autofree char *path = fth_recent_projects_get_path();
  g_autofree char *folder = g_path_get_dirname(path);
  g_autofree char *absolute = g_canonicalize_filename(dir, NULL);
  gboolean ok = FALSE;

  g_mutex_lock(&recent_lock);
  g_auto(GStrv) old = read_list(path, error);
  if (old != NULL) {
    g_autoptr(GStrvBuilder) builder = g_strv_builder_new();
    g_strv_builder_add(builder, absolute);
    guint n = 1;
    for (guint i = 0; old[i] != NULL && n < FTH_RECENT_PROJECTS_MAX; i++) {
      if (g_strcmp0(old[i], absolute) != 0) {
        g_strv_builder_add(builder, old[i]);
        n++;
      }
    }
    g_auto(GStrv) list = g_strv_builder_end(builder);
    g_autoptr(GKeyFile) keyfile = g_key_file_new();
    g_key_file_set_string_list(keyfile, GROUP, KEY, (const char *const *)list,
                               g_strv_length(list));
    if (g_mkdir_with_parents(folder, 0700) != 0) {
      int saved = errno;
      g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(saved),
                  "%s: cannot create the folder: %s", folder, g_strerror(saved));
    } else {
      ok = g_key_file_save_to_file(keyfile, path, error);
    }
  }
  g_mutex_unlock(&recent_lock);
  return ok;
}

static void
load_in_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  GError *error = NULL;
  GStrv list = fth_recent_projects_load(&error);

  if (list == NULL)
    g_task_return_error(task, error);
  else
    g_task_return_pointer(task, list, (GDestroyNotify)g_strfreev);
}

void
fth_recent_projects_load_async(GCancellable *cancellable, GAsyncReadyCallback callback,
                               gpointer user_data)
{
  g_autoptr(GTask) task = g_task_new(NULL, cancellable, callback, user_data);

  g_task_run_in_thread(task, load_in_thread);
}

GStrv
fth_recent_projects_load_finish(GAsyncResult *result, GError **error)
{
  g_return_val_if_fail(g_task_is_valid(result, NULL), NULL);
  return g_task_propagate_pointer(G_TASK(result), error);
}
