/* fault-sqlite.c: see fault-sqlite.h. */
#include "fault-sqlite.h"

#include <sqlite3.h>
#include <string.h>

typedef struct {
  sqlite3_file base;
  sqlite3_file *real; /* allocated right after this struct */
} FaultFile;

static sqlite3_vfs *real_vfs;
static sqlite3_vfs fault_vfs;
static sqlite3_io_methods fault_io;
static sqlite3_mem_methods real_mem;

/* Shared with the store's worker threads, so atomics. */
static gint write_budget = -1; /* -1: disarmed */
static gint write_rc = SQLITE_OK;
static gint malloc_budget = -1;
static gint n_injected;

static int
take_write_failure(void)
{
  int budget = g_atomic_int_get(&write_budget);
  if (budget < 0)
    return SQLITE_OK;
  if (budget > 0) {
    g_atomic_int_add(&write_budget, -1);
    return SQLITE_OK;
  }
  g_atomic_int_inc(&n_injected);
  return g_atomic_int_get(&write_rc);
}

#define REAL(f) (((FaultFile *) (f))->real)

static int
f_close(sqlite3_file *f)
{
  int rc = REAL(f)->pMethods != NULL ? REAL(f)->pMethods->xClose(REAL(f)) : SQLITE_OK;
  return rc;
}
static int
f_read(sqlite3_file *f, void *buf, int n, sqlite3_int64 off)
{
  return REAL(f)->pMethods->xRead(REAL(f), buf, n, off);
}
static int
f_write(sqlite3_file *f, const void *buf, int n, sqlite3_int64 off)
{
  int rc = take_write_failure();
  return rc != SQLITE_OK ? rc : REAL(f)->pMethods->xWrite(REAL(f), buf, n, off);
}
static int
f_truncate(sqlite3_file *f, sqlite3_int64 size)
{
  int rc = take_write_failure();
  return rc != SQLITE_OK ? rc : REAL(f)->pMethods->xTruncate(REAL(f), size);
}
static int
f_sync(sqlite3_file *f, int flags)
{
  return REAL(f)->pMethods->xSync(REAL(f), flags);
}
static int
f_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
  return REAL(f)->pMethods->xFileSize(REAL(f), size);
}
static int
f_lock(sqlite3_file *f, int lock)
{
  return REAL(f)->pMethods->xLock(REAL(f), lock);
}
static int
f_unlock(sqlite3_file *f, int lock)
{
  return REAL(f)->pMethods->xUnlock(REAL(f), lock);
}
static int
f_check_reserved_lock(sqlite3_file *f, int *out)
{
  return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}
static int
f_file_control(sqlite3_file *f, int op, void *arg)
{
  return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}
static int
f_sector_size(sqlite3_file *f)
{
  return REAL(f)->pMethods->xSectorSize(REAL(f));
}
static int
f_device_characteristics(sqlite3_file *f)
{
  return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}
static int
f_shm_map(sqlite3_file *f, int region, int size, int extend, void volatile **out)
{
  return REAL(f)->pMethods->xShmMap(REAL(f), region, size, extend, out);
}
static int
f_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
  return REAL(f)->pMethods->xShmLock(REAL(f), offset, n, flags);
}
static void
f_shm_barrier(sqlite3_file *f)
{
  REAL(f)->pMethods->xShmBarrier(REAL(f));
}
static int
f_shm_unmap(sqlite3_file *f, int delete_flag)
{
  return REAL(f)->pMethods->xShmUnmap(REAL(f), delete_flag);
}
/* Memory-mapped I/O would bypass xWrite-counted paths for reads only; keep it off so every
 * page goes through the shim. */
static int
f_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **out)
{
  *out = NULL;
  return SQLITE_OK;
}
static int
f_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
  return SQLITE_OK;
}

static int
v_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *file, int flags, int *out_flags)
{
  FaultFile *ff = (FaultFile *) file;
  ff->real = (sqlite3_file *) (ff + 1);
  memset(ff->real, 0, (size_t) real_vfs->szOsFile);
  int rc = real_vfs->xOpen(real_vfs, name, ff->real, flags, out_flags);
  /* SQLite calls xClose only when pMethods is set, even after a failed open. */
  ff->base.pMethods = ff->real->pMethods != NULL ? &fault_io : NULL;
  return rc;
}

#define FORWARD_VFS(name, ...) real_vfs->name(real_vfs, __VA_ARGS__)
static int v_delete(sqlite3_vfs *v, const char *n, int s) { return FORWARD_VFS(xDelete, n, s); }
static int v_access(sqlite3_vfs *v, const char *n, int f, int *o) { return FORWARD_VFS(xAccess, n, f, o); }
static int v_full_pathname(sqlite3_vfs *v, const char *n, int sz, char *o) { return FORWARD_VFS(xFullPathname, n, sz, o); }
static void *v_dl_open(sqlite3_vfs *v, const char *n) { return FORWARD_VFS(xDlOpen, n); }
static void v_dl_error(sqlite3_vfs *v, int n, char *m) { FORWARD_VFS(xDlError, n, m); }
static void (*v_dl_sym(sqlite3_vfs *v, void *h, const char *s))(void) { return FORWARD_VFS(xDlSym, h, s); }
static void v_dl_close(sqlite3_vfs *v, void *h) { FORWARD_VFS(xDlClose, h); }
static int v_randomness(sqlite3_vfs *v, int n, char *o) { return FORWARD_VFS(xRandomness, n, o); }
static int v_sleep(sqlite3_vfs *v, int us) { return FORWARD_VFS(xSleep, us); }
static int v_current_time(sqlite3_vfs *v, double *o) { return FORWARD_VFS(xCurrentTime, o); }
static int v_get_last_error(sqlite3_vfs *v, int n, char *o) { return FORWARD_VFS(xGetLastError, n, o); }
static int v_current_time_int64(sqlite3_vfs *v, sqlite3_int64 *o) { return FORWARD_VFS(xCurrentTimeInt64, o); }

static void *
m_malloc(int n)
{
  int budget = g_atomic_int_get(&malloc_budget);
  if (budget == 0) {
    g_atomic_int_set(&malloc_budget, -1);
    g_atomic_int_inc(&n_injected);
    return NULL;
  }
  if (budget > 0)
    g_atomic_int_add(&malloc_budget, -1);
  return real_mem.xMalloc(n);
}

static void *
m_realloc(void *p, int n)
{
  int budget = g_atomic_int_get(&malloc_budget);
  if (budget == 0) {
    g_atomic_int_set(&malloc_budget, -1);
    g_atomic_int_inc(&n_injected);
    return NULL;
  }
  if (budget > 0)
    g_atomic_int_add(&malloc_budget, -1);
  return real_mem.xRealloc(p, n);
}

void
fault_sqlite_install(void)
{
  g_assert_cmpint(sqlite3_config(SQLITE_CONFIG_GETMALLOC, &real_mem), ==, SQLITE_OK);
  static sqlite3_mem_methods mem;
  mem = real_mem;
  mem.xMalloc = m_malloc;
  mem.xRealloc = m_realloc;
  g_assert_cmpint(sqlite3_config(SQLITE_CONFIG_MALLOC, &mem), ==, SQLITE_OK);
  g_assert_cmpint(sqlite3_initialize(), ==, SQLITE_OK);

  real_vfs = sqlite3_vfs_find(NULL);
  g_assert_nonnull(real_vfs);
  g_assert_cmpint(real_vfs->iVersion, >=, 2);
  fault_vfs = (sqlite3_vfs){
    .iVersion = 2,
    .szOsFile = (int) sizeof(FaultFile) + real_vfs->szOsFile,
    .mxPathname = real_vfs->mxPathname,
    .zName = "fault",
    .xOpen = v_open,
    .xDelete = v_delete,
    .xAccess = v_access,
    .xFullPathname = v_full_pathname,
    .xDlOpen = v_dl_open,
    .xDlError = v_dl_error,
    .xDlSym = v_dl_sym,
    .xDlClose = v_dl_close,
    .xRandomness = v_randomness,
    .xSleep = v_sleep,
    .xCurrentTime = v_current_time,
    .xGetLastError = v_get_last_error,
    .xCurrentTimeInt64 = v_current_time_int64,
  };
  fault_io = (sqlite3_io_methods){
    .iVersion = 3,
    .xClose = f_close,
    .xRead = f_read,
    .xWrite = f_write,
    .xTruncate = f_truncate,
    .xSync = f_sync,
    .xFileSize = f_file_size,
    .xLock = f_lock,
    .xUnlock = f_unlock,
    .xCheckReservedLock = f_check_reserved_lock,
    .xFileControl = f_file_control,
    .xSectorSize = f_sector_size,
    .xDeviceCharacteristics = f_device_characteristics,
    .xShmMap = f_shm_map,
    .xShmLock = f_shm_lock,
    .xShmBarrier = f_shm_barrier,
    .xShmUnmap = f_shm_unmap,
    .xFetch = f_fetch,
    .xUnfetch = f_unfetch,
  };
  g_assert_cmpint(sqlite3_vfs_register(&fault_vfs, 1), ==, SQLITE_OK);
}

void
fault_sqlite_fail_writes(int n_ok, int rc)
{
  g_atomic_int_set(&write_rc, rc);
  g_atomic_int_set(&write_budget, n_ok);
}

void
fault_sqlite_fail_malloc(int n_ok)
{
  g_atomic_int_set(&malloc_budget, n_ok);
}

void
fault_sqlite_disarm(void)
{
  g_atomic_int_set(&write_budget, -1);
  g_atomic_int_set(&malloc_budget, -1);
}

int
fault_sqlite_n_injected(void)
{
  return g_atomic_int_get(&n_injected);
}
