/* Atomic file replacement. g_file_set_contents_full() needs one contiguous buffer (a
 * checkpoint would have to be copied whole), does not fsync the directory and cannot be made
 * to fail on purpose, so the write path is done here with a fault-injection point. */
#include "fathom/safetensors.h"
#include "train-private.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

static int fault_errnum;
static gint64 fault_after_bytes = -1;
static int fault_fsync_errnum;

void
fth_file_inject_fault(int errnum, gint64 after_bytes, int fsync_errnum)
{
  fault_errnum = errnum;
  fault_after_bytes = after_bytes;
  fault_fsync_errnum = fsync_errnum;
}

static ssize_t
checked_write(int fd, const void *buf, size_t len)
{
  if (fault_after_bytes >= 0 && fault_errnum != 0) {
    if (fault_after_bytes == 0) {
      errno = fault_errnum;
      return -1;
    }
    if ((gint64)len > fault_after_bytes)
      len = (size_t)fault_after_bytes;
    ssize_t w = write(fd, buf, len);
    if (w > 0)
      fault_after_bytes -= w;
    return w;
  }
  return write(fd, buf, len);
}

static int
checked_fsync(int fd)
{
  if (fault_fsync_errnum != 0) {
    errno = fault_fsync_errnum;
    return -1;
  }
  return fsync(fd);
}

static gboolean
io_fail(GError **error, const char *path, const char *what, int err)
{
  g_set_error(error, FTH_SAFETENSORS_ERROR, FTH_SAFETENSORS_ERROR_IO, "%s: %s failed: %s",
              path, what, g_strerror(err));
  return FALSE;
}

gboolean
fth_file_write_atomic(const char *path, const FthFilePart *parts, size_t n_parts,
                      GError **error)
{
  g_autofree char *dir = g_path_get_dirname(path);
  g_autofree char *base = g_path_get_basename(path);
  g_autofree char *tmpl = g_strdup_printf("%s/.%s.XXXXXX", dir, base);

  int fd = g_mkstemp_full(tmpl, O_WRONLY | O_CLOEXEC, 0644);
  if (fd < 0)
    return io_fail(error, path, "creating a temporary file", errno);

  for (size_t i = 0; i < n_parts; i++) {
    const char *p = parts[i].data;
    size_t left = parts[i].len;
    while (left > 0) {
      ssize_t w = checked_write(fd, p, left);
      if (w < 0 && errno == EINTR)
        continue;
      if (w <= 0) {
        int err = w < 0 ? errno : EIO;
        close(fd);
        g_unlink(tmpl);
        return io_fail(error, path, "writing", err);
      }
      p += w;
      left -= (size_t)w;
    }
  }
  if (checked_fsync(fd) != 0) {
    int err = errno;
    close(fd);
    g_unlink(tmpl);
    return io_fail(error, path, "fsync", err);
  }
  if (close(fd) != 0) {
    int err = errno;
    g_unlink(tmpl);
    return io_fail(error, path, "close", err);
  }
  if (g_rename(tmpl, path) != 0) {
    int err = errno;
    g_unlink(tmpl);
    return io_fail(error, path, "rename", err);
  }
  /* The rename is durable only once the directory entry is on disk. */
  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0)
    return io_fail(error, path, "opening the directory for fsync", errno);
  int rc = fsync(dfd);
  int err = errno;
  close(dfd);
  if (rc != 0)
    return io_fail(error, path, "fsync of the directory", err);
  return TRUE;
}
