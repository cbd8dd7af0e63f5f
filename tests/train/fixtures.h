/* Shared by the tests in tests/train. */
#pragma once

#include <glib.h>
#include <glib/gstdio.h>

/* Removes a temporary test folder and everything in it. */
static inline void
train_test_rmtree(const char *path)
{
  if (g_file_test(path, G_FILE_TEST_IS_DIR)) {
    GDir *d = g_dir_open(path, 0, NULL);
    const char *name;
    while (d && (name = g_dir_read_name(d)) != NULL) {
      g_autofree char *child = g_build_filename(path, name, NULL);
      train_test_rmtree(child);
    }
    if (d)
      g_dir_close(d);
    g_rmdir(path);
  } else {
    g_unlink(path);
  }
}
