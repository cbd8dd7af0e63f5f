#include "cli-run.h"

#include <string.h>

const char *fathom_bin;

gboolean
cli_test_find_binary(void)
{
  fathom_bin = g_getenv("FATHOM_BIN");
  if (!fathom_bin || !g_file_test(fathom_bin, G_FILE_TEST_IS_EXECUTABLE)) {
    g_printerr("FATHOM_BIN does not name the built fathom binary\n");
    return FALSE;
  }
  return TRUE;
}

void
result_clear(Result *r)
{
  g_free(r->out);
  g_free(r->err);
}

Result
run_env(const char *const *env, const char *first, ...)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new();
  g_ptr_array_add(argv, (char *)fathom_bin);
  va_list ap;
  va_start(ap, first);
  for (const char *a = first; a; a = va_arg(ap, const char *))
    g_ptr_array_add(argv, (char *)a);
  va_end(ap);
  g_ptr_array_add(argv, NULL);
  g_autoptr(GSubprocessLauncher) l =
      g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE);
  for (guint i = 0; env && env[i]; i++) {
    g_auto(GStrv) kv = g_strsplit(env[i], "=", 2);
    g_subprocess_launcher_setenv(l, kv[0], kv[1], TRUE);
  }
  g_autoptr(GError) error = NULL;
  g_autoptr(GSubprocess) p =
      g_subprocess_launcher_spawnv(l, (const char *const *)argv->pdata, &error);
  g_assert_no_error(error);
  Result r = { 0 };
  g_assert_true(g_subprocess_communicate_utf8(p, NULL, NULL, &r.out, &r.err, &error));
  g_assert_no_error(error);
  r.status = g_subprocess_get_if_exited(p) ? g_subprocess_get_exit_status(p) : -1;
  return r;
}

void
expect_status(const Result *r, int status)
{
  if (r->status != status)
    g_error("exit status %d, expected %d\nstdout: %s\nstderr: %s", r->status, status, r->out,
            r->err);
}

void
assert_contains(const char *haystack, const char *needle)
{
  if (!strstr(haystack, needle))
    g_error("“%s” does not contain “%s”", haystack, needle);
}

FthStore *
open_store(const char *dir)
{
  g_autoptr(GError) error = NULL;
  FthStore *s = fth_store_open(dir, &error);
  g_assert_no_error(error);
  return s;
}
