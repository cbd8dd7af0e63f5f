/* Data parallel: the communicator's dispatch, the local communicator (Unix sockets between the
 * processes of one machine, star-shaped around rank 0) and the bucketed gradient all-reduce. */
#include "parallel-private.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

G_DEFINE_QUARK(fth-parallel-error-quark, fth_parallel_error)

void
fth_comm_free(FthComm *comm)
{
  if (comm != NULL)
    comm->ops->free(comm);
}

int
fth_comm_rank(const FthComm *comm)
{
  return comm->rank;
}

int
fth_comm_size(const FthComm *comm)
{
  return comm->size;
}

int
fth_comm_local_rank(const FthComm *comm)
{
  return comm->local_rank;
}

const char *
fth_comm_name(const FthComm *comm)
{
  return comm->ops->name;
}

FthComm *
fth_comm_host(FthComm *comm)
{
  return comm->host;
}

gboolean
fth_comm_on_device(const FthComm *comm)
{
  return comm->ops->on_device;
}

gboolean
fth_comm_all_reduce_scaled(FthComm *comm, float *buf, size_t n, float scale, GError **error)
{
  return n == 0 || comm->ops->all_reduce(comm, buf, n, scale, error);
}

gboolean
fth_comm_reduce_device_grads(FthComm *comm, const FthParam *params, size_t n_params, float scale,
                             size_t bucket_bytes, GError **error)
{
  if (comm->ops->reduce_grads == NULL) {
    g_set_error(error, FTH_PARALLEL_ERROR, FTH_PARALLEL_ERROR_UNSUPPORTED,
                "the %s communicator reduces host memory, not device gradients", comm->ops->name);
    return FALSE;
  }
  return comm->ops->reduce_grads(comm, params, n_params, scale, bucket_bytes, error);
}

gboolean
fth_comm_all_reduce_sum(FthComm *comm, float *buf, size_t n, GError **error)
{
  return n == 0 || comm->size == 1 || comm->ops->all_reduce(comm, buf, n, 1.0f, error);
}

gboolean
fth_comm_broadcast(FthComm *comm, void *buf, size_t bytes, int root, GError **error)
{
  if (root < 0 || root >= comm->size) {
    g_set_error(error, FTH_PARALLEL_ERROR, FTH_PARALLEL_ERROR_INVALID,
                "broadcast from rank %d of %d", root, comm->size);
    return FALSE;
  }
  return bytes == 0 || comm->size == 1 || comm->ops->broadcast(comm, buf, bytes, root, error);
}

gboolean
fth_comm_barrier(FthComm *comm, GError **error)
{
  return comm->size == 1 || comm->ops->barrier(comm, error);
}

void
fth_comm_set_failed(FthComm *comm)
{
  if (comm != NULL)
    comm->failed = TRUE;
}

void
fth_comm_scale_host(float *buf, size_t n, float scale)
{
  if (scale == 0.0f)
    memset(buf, 0, n * sizeof(float));
  else if (scale != 1.0f)
    for (size_t i = 0; i < n; i++)
      buf[i] *= scale;
}

/* ---- The local communicator ------------------------------------------------------------------ */

enum { CHUNK_FLOATS = 1 << 18 };   /* rank 0 sums this many values at a time */
#define HELLO_MAGIC 0x46544844u    /* "FTHD" */

typedef struct {
  FthComm base;
  int *fds;          /* rank 0: fds[r] for r = 1..size-1; the others: fds[0], rank 0 */
  double *acc;       /* rank 0: CHUNK_FLOATS sums */
  float *tmp;        /* rank 0: one peer's chunk */
  char *dir;         /* the rendezvous directory, for the report of a timeout */
  const char *op;    /* the collective under way, for its errors */
  gboolean broken;   /* a collective timed out: the streams are out of step */
} LocalComm;

static gboolean
peer_error(const LocalComm *c, int peer, const char *what, int errnum, GError **error)
{
  if (errnum == 0)
    g_set_error(error, FTH_PARALLEL_ERROR, FTH_PARALLEL_ERROR_PEER,
                "rank %d: rank %d closed the connection while %s (did it stop or fail?)",
                c->base.rank, peer, what);
  else
    g_set_error(error, FTH_PARALLEL_ERROR, FTH_PARALLEL_ERROR_PEER, "rank %d: %s rank %d: %s",
                c->base.rank, what, peer, g_strerror(errnum));
  return FALSE;
}

/* Rank 0 waited in vain for `peer` to send: the ranks after it with nothing pending either are
 * missing too (those before it have sent already). */
static GString *
missing_ranks(const LocalComm *c, int peer)
{
  GString *s = g_string_new(NULL);
  g_string_append_printf(s, "%d", peer);
  for (int r = peer + 1; c->base.rank == 0 && r < c->base.size; r++) {
    struct pollfd pfd = {.fd = c->fds[r], .events = POLLIN};
    if (poll(&pfd, 1, 0) == 0)
      g_string_append_printf(s, ", %d", r);
  }
  return s;
}

/* Fails the collective: names the rank(s) that did not arrive and reports the first to the
 * launcher in DIR/FTH_COMM_HUNG_FILE (the first report stays: it comes from rank 0, which waits
 * least). */
static gboolean
timed_out(LocalComm *c, int peer, gboolean receiving, double waited_s, GError **error)
{
  c->broken = TRUE;
  g_autoptr(GString) ranks = receiving ? missing_ranks(c, peer) : g_string_new(NULL);
  if (!receiving)
    g_string_append_printf(ranks, "%d", peer);
  g_set_error(error, FTH_PARALLEL_ERROR, FTH_PARALLEL_ERROR_TIMEOUT,
              "rank %d: %s: rank%s %s of %d %s nothing for %g s (stopped, hung or deadlocked?)",
              c->base.rank, c->op, strchr(ranks->str, ',') ? "s" : "", ranks->str, c->base.size,
              receiving ? "sent" : "took", waited_s);
  g_autofree char *path = g_build_filename(c->dir, FTH_COMM_HUNG_FILE, NULL);
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd >= 0) {
    g_autofree char *report = g_strdup_printf("%d\n%s\n", peer, (*error)->message);
    /* Best effort: without the report the launcher names the rank that timed out instead. */
    gboolean written = write(fd, report, strlen(report)) == (ssize_t)strlen(report);
    close(fd);
    if (!written)
      g_unlink(path);
  }
  return FALSE;
}

/* Waits until fd is ready for `events`, or fails after the collective timeout. */
static gboolean
wait_ready(LocalComm *c, int peer, int fd, short events, GError **error)
{
  /* The others wait a little longer than rank 0, which sees every rank and so names the one
   * missing, where they could only name rank 0. */
  double timeout_s = c->base.timeout_s;
  double limit = timeout_s + (c->base.rank == 0 ? 0 : MIN(timeout_s / 4, 60));
  gint64 deadline = g_get_monotonic_time() + (gint64)(limit * 1e6);
  for (;;) {
    gint64 left_ms = (deadline - g_get_monotonic_time() + 999) / 1000;
    if (left_ms <= 0)
      return timed_out(c, peer, events == POLLIN, limit, error);
    struct pollfd pfd = {.fd = fd, .events = events};
    int k = poll(&pfd, 1, (int)MIN(left_ms, G_MAXINT));
    /* Ready, or hung up or failed: send or recv says which. */
    if (k > 0)
      return TRUE;
    if (k < 0 && errno != EINTR)
      return peer_error(c, peer, "waiting for", errno, error);
  }
}

static gboolean
send_all(LocalComm *c, int peer, int fd, const void *buf, size_t len, GError **error)
{
  const char *p = buf;
  while (len > 0) {
    /* MSG_NOSIGNAL: a peer that went away is an error here, not a SIGPIPE that kills us. */
    ssize_t k = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (k < 0 && errno == EINTR)
      continue;
    if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!wait_ready(c, peer, fd, POLLOUT, error))
        return FALSE;
      continue;
    }
    if (k < 0)
      return peer_error(c, peer, "sending to", errno, error);
    p += k;
    len -= (size_t)k;
  }
  return TRUE;
}

static gboolean
recv_all(LocalComm *c, int peer, int fd, void *buf, size_t len, GError **error)
{
  char *p = buf;
  while (len > 0) {
    ssize_t k = recv(fd, p, len, MSG_DONTWAIT);
    if (k < 0 && errno == EINTR)
      continue;
    if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!wait_ready(c, peer, fd, POLLIN, error))
        return FALSE;
      continue;
    }
    if (k <= 0)
      return peer_error(c, peer, k == 0 ? "receiving" : "receiving from", k == 0 ? 0 : errno,
                        error);
    p += k;
    len -= (size_t)k;
  }
  return TRUE;
}

/* Starts collective `op`: fails at once after a timeout, as the streams are out of step. */
static gboolean
begin_collective(LocalComm *c, const char *op, GError **error)
{
  c->op = op;
  if (c->broken)
    g_set_error(error, FTH_PARALLEL_ERROR, FTH_PARALLEL_ERROR_TIMEOUT,
                "rank %d: %s: an earlier collective timed out", c->base.rank, op);
  return !c->broken;
}

static gboolean
sum_to_all(LocalComm *c, float *buf, size_t n, float scale, GError **error)
{
  FthComm *comm = &c->base;
  fth_comm_scale_host(buf, n, scale);
  for (size_t off = 0; off < n && comm->size > 1; off += CHUNK_FLOATS) {
    size_t m = MIN((size_t)CHUNK_FLOATS, n - off), bytes = m * sizeof(float);
    float *x = buf + off;
    if (comm->rank != 0) {
      if (!send_all(c, 0, c->fds[0], x, bytes, error) || !recv_all(c, 0, c->fds[0], x, bytes, error))
        return FALSE;
      continue;
    }
    /* In rank order and in float64, so the result does not depend on who was first. */
    for (size_t i = 0; i < m; i++)
      c->acc[i] = x[i];
    for (int r = 1; r < comm->size; r++) {
      if (!recv_all(c, r, c->fds[r], c->tmp, bytes, error))
        return FALSE;
      for (size_t i = 0; i < m; i++)
        c->acc[i] += c->tmp[i];
    }
    for (size_t i = 0; i < m; i++)
      x[i] = (float)c->acc[i];
    for (int r = 1; r < comm->size; r++)
      if (!send_all(c, r, c->fds[r], x, bytes, error))
        return FALSE;
  }
  return TRUE;
}

static gboolean
local_all_reduce(FthComm *comm, float *buf, size_t n, float scale, GError **error)
{
  LocalComm *c = (LocalComm *)comm;
  return begin_collective(c, "all-reduce", error) && sum_to_all(c, buf, n, scale, error);
}

static gboolean
local_broadcast(FthComm *comm, void *buf, size_t bytes, int root, GError **error)
{
  LocalComm *c = (LocalComm *)comm;
  if (!begin_collective(c, "broadcast", error))
    return FALSE;
  if (comm->rank != 0) {
    if (comm->rank == root)
      return send_all(c, 0, c->fds[0], buf, bytes, error);
    return recv_all(c, 0, c->fds[0], buf, bytes, error);
  }
  if (root != 0 && !recv_all(c, root, c->fds[root], buf, bytes, error))
    return FALSE;
  for (int r = 1; r < comm->size; r++)
    if (r != root && !send_all(c, r, c->fds[r], buf, bytes, error))
      return FALSE;
  return TRUE;
}

static gboolean
local_barrier(FthComm *comm, GError **error)
{
  LocalComm *c = (LocalComm *)comm;
  float x = 0;
  return begin_collective(c, "barrier", error) && sum_to_all(c, &x, 1, 1.0f, error);
}

static void
local_free(FthComm *comm)
{
  LocalComm *c = (LocalComm *)comm;
  int n = comm->rank == 0 ? comm->size : 1;
  for (int r = 0; c->fds != NULL && r < n; r++)
    if (c->fds[r] >= 0)
      close(c->fds[r]);
  g_free(c->fds);
  g_free(c->acc);
  g_free(c->tmp);
  g_free(c->dir);
  g_free(c);
}

static const FthCommOps local_ops = {
  .name = "local",
  .on_device = FALSE,
  .all_reduce = local_all_reduce,
  .broadcast = local_broadcast,
  .barrier = local_barrier,
  .free = local_free,
};

typedef struct {
  guint32 magic;
  gint32 rank, size;
} Hello;

static gboolean
socket_address(const char *dir, struct sockaddr_un *addr, GError **error)
{
  memset(addr, 0, sizeof *addr);
  addr->sun_family = AF_UNIX;
  g_autofree char *path = g_build_filename(dir, "comm.sock", NULL);
  if (strlen(path) >= sizeof addr->sun_path) {
    g_set_error(error, FTH_PARALLEL_ERROR, FTH_PARALLEL_ERROR_INVALID,
                "%s: the socket path is longer than %zu bytes (use a shorter directory)", path,
                sizeof addr->sun_path - 1);
    return FALSE;
  }
  memcpy(addr->sun_path, path, strlen(path) + 1);
  return TRUE;
}

static gboolean
accept_peers(LocalComm *c, const struct sockaddr_un *addr, gint64 deadline, GError **error)
{
  int size = c->base.size;
  int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (lfd < 0 || (g_unlink(addr->sun_path) != 0 && errno != ENOENT) ||
      bind(lfd, (const struct sockaddr *)addr, sizeof *addr) != 0 || listen(lfd, size) != 0) {
    int e = errno;
    if (lfd >= 0)
      close(lfd);
    g_set_error(error, FTH_PARALLEL_ERROR, FTH_PARALLEL_ERROR_CONNECT, "%s: %s", addr->sun_path,
                g_strerror(e));
    return FALSE;
  }
  gboolean ok = TRUE;
  for (int joined = 1; joined < size && ok;) {
    gint64 left_ms = (deadline - g_get_monotonic_time()) / 1000;
    struct pollfd pfd = {.fd = lfd, .events = POLLIN};
    int k = left_ms > 0 ? poll(&pfd, 1, (int)MIN(left_ms, 1000)) : 0;
    if (k < 0 && errno == EINTR)
      continue;
    if (k == 0 && left_ms <= 0) {
      g_set_error(error, FTH_PARALLEL_ERROR, FTH_PARALLEL_ERROR_CONNECT,
                  "rank 0: %d of %d ranks joined at %s before the timeout", joined, size,
                  addr->sun_path);
      ok = FALSE;
      break;
    }
    if (k <= 0)
      continue;
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0)
      continue;
    Hello h;
    if (recv(fd, &h, sizeof h, MSG_WAITALL) != (ssize_t)sizeof h) {
      close(fd);  /* not one of ours, or gone again; the others may still come */
      continue;
    }
    if (h.magic != HELLO_MAGIC || h.size != size || h.rank < 1 || h.rank >= size ||
               c->fds[h.rank] >= 0) {
      close(fd);
      g_set_error(error, FTH_PARALLEL_ERROR, FTH_PARALLEL_ERROR_PEER,
                  "rank 0: a process joined %s as rank %d of %d (expected a new rank of %d)",
                  addr->sun_path, h.rank, h.size, size);
      ok = FALSE;
    } else {
      c->fds[h.rank] = fd;
      joined++;
    }
  }
  close(lfd);
  g_unlink(addr->sun_path);
  return ok;
}

static gboolean
connect_root(LocalComm *c, const struct sockaddr_un *addr, gint64 deadline, GError **error)
{
  for (;;) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      g_set_error(error, FTH_PARALLEL_ERROR, FTH_PARALLEL_ERROR_CONNECT, "socket: %s",
                  g_strerror(errno));
      return FALSE;
    }
    if (connect(fd, (const struct sockaddr *)addr, sizeof *addr) == 0) {
      c->fds[0] = fd;
      Hello h = {HELLO_MAGIC, c->base.rank, c->base.size};
      return send_all(c, 0, fd, &h, sizeof h, error);
    }
    int e = errno;
    close(fd);
    /* Rank 0 may not listen yet: the socket is missing or refuses. */
    if ((e != ENOENT && e != ECONNREFUSED && e != EINTR) || g_get_monotonic_time() > deadline) {
      g_set_error(error, FTH_PARALLEL_ERROR, FTH_PARALLEL_ERROR_CONNECT,
                  "rank %d: could not reach rank 0 at %s: %s", c->base.rank, addr->sun_path,
                  g_strerror(e));
      return FALSE;
    }
    g_usleep(10000);
  }
}

FthComm *
fth_comm_new_local(const char *dir, int rank, int size, double timeout_s, double comm_timeout_s,
                   GError **error)
{
  if (size < 1 || rank < 0 || rank >= size) {
    g_set_error(error, FTH_PARALLEL_ERROR, FTH_PARALLEL_ERROR_INVALID, "rank %d of %d", rank, size);
    return NULL;
  }
  struct sockaddr_un addr;
  if (size > 1 && !socket_address(dir, &addr, error))
    return NULL;
  LocalComm *c = g_new0(LocalComm, 1);
  c->base.ops = &local_ops;
  c->base.rank = c->base.local_rank = rank;
  c->base.size = size;
  c->base.host = &c->base;
  c->dir = g_strdup(dir);
  c->base.timeout_s = comm_timeout_s > 0 ? comm_timeout_s : FTH_COMM_TIMEOUT_DEFAULT;
  c->op = "joining";
  int n_fds = rank == 0 ? size : 1;
  c->fds = g_new(int, n_fds);
  for (int r = 0; r < n_fds; r++)
    c->fds[r] = -1;
  if (size == 1)
    return &c->base;
  if (rank == 0) {
    c->acc = g_new(double, CHUNK_FLOATS);
    c->tmp = g_new(float, CHUNK_FLOATS);
  }
  gint64 deadline = g_get_monotonic_time() + (gint64)(timeout_s * 1e6);
  gboolean ok = rank == 0 ? accept_peers(c, &addr, deadline, error)
                          : connect_root(c, &addr, deadline, error);
  if (!ok) {
    local_free(&c->base);
    return NULL;
  }
  return &c->base;
}

static gboolean
parse_int_env(const char *name, int min, int *out, GError **error)
{
  const char *v = g_getenv(name);
  guint64 x;
  if (!g_ascii_string_to_unsigned(v, 10, (guint64)min, G_MAXINT, &x, NULL)) {
    g_set_error(error, FTH_PARALLEL_ERROR, FTH_PARALLEL_ERROR_INVALID,
                "%s=%s: expected a whole number of at least %d", name, v, min);
    return FALSE;
  }
  *out = (int)x;
  return TRUE;
}

gboolean
fth_comm_timeout_from_env(double *timeout_s, GError **error)
{
  *timeout_s = FTH_COMM_TIMEOUT_DEFAULT;
  const char *v = g_getenv(FTH_ENV_COMM_TIMEOUT);
  if (v == NULL)
    return TRUE;
  char *end = NULL;
  double x = g_ascii_strtod(v, &end);
  if (end == v || *end != '\0' || !(x > 0) || x > 1e9) {
    g_set_error(error, FTH_PARALLEL_ERROR, FTH_PARALLEL_ERROR_INVALID,
                "%s=%s: expected a positive number of seconds", FTH_ENV_COMM_TIMEOUT, v);
    return FALSE;
  }
  *timeout_s = x;
  return TRUE;
}

gboolean
fth_comm_from_env(FthComm **out, GError **error)
{
  *out = NULL;
  const char *rank_var = FTH_ENV_RANK, *size_var = FTH_ENV_WORLD_SIZE;
  gboolean mpi = FALSE;
  if (g_getenv(rank_var) == NULL || g_getenv(size_var) == NULL) {
    rank_var = "OMPI_COMM_WORLD_RANK";
    size_var = "OMPI_COMM_WORLD_SIZE";
    mpi = TRUE;
  }
  if (g_getenv(rank_var) == NULL || g_getenv(size_var) == NULL)
    return TRUE;
  int rank, size;
  if (!parse_int_env(rank_var, 0, &rank, error) || !parse_int_env(size_var, 1, &size, error))
    return FALSE;
  if (rank >= size) {
    g_set_error(error, FTH_PARALLEL_ERROR, FTH_PARALLEL_ERROR_INVALID, "%s=%d is not below %s=%d",
                rank_var, rank, size_var, size);
    return FALSE;
  }
  /* The local communicator joins the processes of one machine. */
  const char *local_size = mpi ? g_getenv("OMPI_COMM_WORLD_LOCAL_SIZE") : NULL;
  if (local_size != NULL && g_strcmp0(local_size, g_getenv(size_var)) != 0) {
    g_set_error(error, FTH_PARALLEL_ERROR, FTH_PARALLEL_ERROR_UNSUPPORTED,
                "mpirun placed %s of the %d ranks on this machine: data-parallel training runs "
                "on one machine", local_size, size);
    return FALSE;
  }
  g_autofree char *dir = g_strdup(g_getenv(FTH_ENV_DIST_DIR));
  gboolean own_dir = dir == NULL && mpi;
  if (own_dir) {
    /* The ranks of one mpirun on this machine share their parent (mpirun or its daemon). */
    g_autofree char *name = g_strdup_printf("fathom-mpi-%d", (int)getppid());
    dir = g_build_filename(g_get_tmp_dir(), name, NULL);
    if (g_mkdir_with_parents(dir, 0700) != 0) {
      g_set_error(error, FTH_PARALLEL_ERROR, FTH_PARALLEL_ERROR_INVALID, "%s: %s", dir,
                  g_strerror(errno));
      return FALSE;
    }
  }
  if (dir == NULL) {
    g_set_error(error, FTH_PARALLEL_ERROR, FTH_PARALLEL_ERROR_INVALID,
                "%s is set but %s is not: start the workers with fathom's launcher (--nproc)",
                rank_var, FTH_ENV_DIST_DIR);
    return FALSE;
  }
  double comm_timeout;
  if (!fth_comm_timeout_from_env(&comm_timeout, error))
    return FALSE;
  *out = fth_comm_new_local(dir, rank, size, 120, comm_timeout, error);
  /* Every rank made the directory before it connected, so rank 0 may remove it now. */
  if (*out != NULL && own_dir && rank == 0)
    g_rmdir(dir);
  return *out != NULL;
}

gboolean
fth_comm_under_mpi(void)
{
  return g_getenv("OMPI_COMM_WORLD_SIZE") != NULL || g_getenv("PMI_SIZE") != NULL ||
         g_getenv("PMIX_RANK") != NULL;
}

gboolean
fth_comm_for_launcher(FthLauncher launcher, FthComm **out, GError **error)
{
  *out = NULL;
  /* A worker of the built-in launcher meets its siblings through the local communicator even
   * where the launcher itself runs under mpirun. */
  gboolean mpi = launcher == FTH_LAUNCHER_MPI ||
                 (launcher == FTH_LAUNCHER_AUTO && FTH_HAVE_MPI && g_getenv(FTH_ENV_RANK) == NULL &&
                  fth_comm_under_mpi());
  if (!mpi)
    return fth_comm_from_env(out, error);
  *out = fth_comm_new_mpi(error);
  return *out != NULL;
}

#if !FTH_HAVE_MPI
FthComm *
fth_comm_new_mpi(GError **error)
{
  g_set_error(error, FTH_PARALLEL_ERROR, FTH_PARALLEL_ERROR_UNSUPPORTED,
              "this build has no MPI communicator (install Open MPI and configure with "
              "-Dmpi=enabled)");
  return NULL;
}
#endif

/* ---- Gradients ---------------------------------------------------------------------------------- */

struct FthGradReducer {
  FthComm *comm;
  FthParam *params;
  size_t n_params;
  size_t *order;        /* parameter indices, last first */
  size_t *first;        /* bucket b holds order[first[b] .. first[b + 1]) */
  int *bucket_of;       /* parameter index -> bucket */
  int n_buckets;
  float *pack;          /* the largest bucket of more than one gradient (host) */
  gboolean on_device;   /* device gradients: buckets queued on the communicator, no thread */
  float **bufs;         /* on a device: the gradients in bucket order, order[k]'s at k */
  size_t *counts;
  /* A step (begin .. finish): the thread sums bucket b (on a device: the caller of ready queues
   * it), in bucket order on every rank, once its gradients are ready; the lock guards everything
   * below. */
  GThread *thread;
  GMutex lock;
  GCond cond;
  int *pending;         /* per bucket: gradients not ready yet */
  int done;             /* buckets summed this step */
  int early;            /* of those, summed before finish */
  float scale;
  gboolean active, finishing, quit;
  GError *error;
};

static gboolean
reduce_bucket(FthGradReducer *r, int b, float scale, GError **error)
{
  size_t lo = r->first[b], hi = r->first[b + 1];
  if (hi - lo == 1) {
    const FthParam *p = &r->params[r->order[lo]];
    return fth_comm_all_reduce_scaled(r->comm, p->grad, p->n, scale, error);
  }
  size_t off = 0;
  for (size_t k = lo; k < hi; k++) {
    const FthParam *p = &r->params[r->order[k]];
    for (size_t i = 0; i < p->n; i++)
      r->pack[off + i] = scale == 0.0f ? 0.0f : p->grad[i] * scale;
    off += p->n;
  }
  if (!fth_comm_all_reduce_sum(r->comm, r->pack, off, error))
    return FALSE;
  off = 0;
  for (size_t k = lo; k < hi; k++) {
    const FthParam *p = &r->params[r->order[k]];
    memcpy(p->grad, r->pack + off, p->n * sizeof(float));
    off += p->n;
  }
  return TRUE;
}

/* On a device: queues the buckets that are final, in bucket order (the caller holds the lock).
 * After a failure the communicator is in doubt: the rest of the step is only counted. */
static void
queue_device_buckets(FthGradReducer *r)
{
  for (; r->done < r->n_buckets && r->pending[r->done] == 0; r->done++) {
    size_t lo = r->first[r->done], n = r->first[r->done + 1] - lo;
    if (r->error == NULL)
      r->comm->ops->reduce_bucket(r->comm, r->bufs + lo, r->counts + lo, n, r->scale, &r->error);
    r->early += !r->finishing;
  }
}

static gpointer
reducer_thread(gpointer data)
{
  FthGradReducer *r = data;
  g_mutex_lock(&r->lock);
  for (;;) {
    while (!r->quit && !(r->active && r->done < r->n_buckets && r->pending[r->done] == 0))
      g_cond_wait(&r->cond, &r->lock);
    if (r->quit)
      break;
    int b = r->done;
    float scale = r->scale;
    gboolean failed = r->error != NULL;
    g_mutex_unlock(&r->lock);
    GError *err = NULL;
    /* After a failure the connection is gone: the rest of the step is only counted. */
    gboolean ok = failed || reduce_bucket(r, b, scale, &err);
    if (!ok)
      g_prefix_error(&err, "gradient bucket %d of %d: ", b + 1, r->n_buckets);
    g_mutex_lock(&r->lock);
    if (!ok)
      r->error = err;
    r->early += !r->finishing;
    r->done++;
    g_cond_broadcast(&r->cond);
  }
  g_mutex_unlock(&r->lock);
  return NULL;
}

FthGradReducer *
fth_grad_reducer_new(FthComm *comm, const FthParam *params, size_t n_params, size_t bucket_bytes)
{
  FthGradReducer *r = g_new0(FthGradReducer, 1);
  r->comm = comm;
  r->params = g_memdup2(params, sizeof *params * (n_params ? n_params : 1));
  r->n_params = n_params;
  r->on_device = fth_comm_on_device(comm);
  r->order = g_new(size_t, n_params + 1);
  r->first = g_new(size_t, n_params + 1);
  r->bucket_of = g_new(int, n_params + 1);
  size_t cap = MAX(bucket_bytes / sizeof(float), 1), used = 0, pack = 0;
  for (size_t k = 0; k < n_params; k++) {
    r->order[k] = n_params - 1 - k;
    size_t count = params[r->order[k]].n;
    if (k == 0 || used + count > cap) {
      r->first[r->n_buckets++] = k;
      used = 0;
    }
    r->bucket_of[r->order[k]] = r->n_buckets - 1;
    used += count;
    if (k > r->first[r->n_buckets - 1])
      pack = MAX(pack, used);
  }
  r->first[r->n_buckets] = n_params;
  if (r->on_device) {
    r->bufs = g_new(float *, n_params + 1);
    r->counts = g_new(size_t, n_params + 1);
    for (size_t k = 0; k < n_params; k++) {
      r->bufs[k] = params[r->order[k]].grad;
      r->counts[k] = params[r->order[k]].n;
    }
  } else {
    r->pack = g_new(float, pack ? pack : 1);
  }
  r->pending = g_new0(int, r->n_buckets + 1);
  g_mutex_init(&r->lock);
  g_cond_init(&r->cond);
  return r;
}

void
fth_grad_reducer_free(FthGradReducer *r)
{
  if (r == NULL)
    return;
  if (r->thread != NULL) {
    g_mutex_lock(&r->lock);
    r->quit = TRUE;
    g_cond_broadcast(&r->cond);
    g_mutex_unlock(&r->lock);
    g_thread_join(r->thread);
  }
  g_mutex_clear(&r->lock);
  g_cond_clear(&r->cond);
  g_clear_error(&r->error);
  g_free(r->params);
  g_free(r->order);
  g_free(r->first);
  g_free(r->bucket_of);
  g_free(r->pack);
  g_free(r->bufs);
  g_free(r->counts);
  g_free(r->pending);
  g_free(r);
}

int
fth_grad_reducer_n_buckets(const FthGradReducer *r)
{
  return r->n_buckets;
}

void
fth_grad_reducer_begin(FthGradReducer *r, float scale)
{
  if (r->thread == NULL && !r->on_device)
    r->thread = g_thread_new("fth-grad-reduce", reducer_thread, r);
  g_mutex_lock(&r->lock);
  for (int b = 0; b < r->n_buckets; b++)
    r->pending[b] = (int)(r->first[b + 1] - r->first[b]);
  r->done = r->early = 0;
  r->scale = scale;
  r->finishing = FALSE;
  g_clear_error(&r->error);
  r->active = TRUE;
  g_mutex_unlock(&r->lock);
}

void
fth_grad_reducer_ready(FthGradReducer *r, size_t param)
{
  g_mutex_lock(&r->lock);
  int b = r->bucket_of[param];
  if (r->active && r->pending[b] > 0 && --r->pending[b] == 0) {
    if (r->on_device)
      queue_device_buckets(r);
    else
      g_cond_broadcast(&r->cond);
  }
  g_mutex_unlock(&r->lock);
}

gboolean
fth_grad_reducer_finish(FthGradReducer *r, int *early, GError **error)
{
  g_mutex_lock(&r->lock);
  /* Whatever was not announced (no samples on this rank, or no hook) is final now. */
  r->finishing = TRUE;
  for (int b = 0; b < r->n_buckets; b++)
    r->pending[b] = 0;
  if (r->on_device) {
    queue_device_buckets(r);
    if (r->error == NULL)
      r->comm->ops->join(r->comm, &r->error);
  }
  g_cond_broadcast(&r->cond);
  while (r->done < r->n_buckets)
    g_cond_wait(&r->cond, &r->lock);
  r->active = FALSE;
  if (early != NULL)
    *early = r->early;
  GError *err = g_steal_pointer(&r->error);
  g_mutex_unlock(&r->lock);
  if (err != NULL) {
    g_propagate_error(error, err);
    return FALSE;
  }
  return TRUE;
}

gboolean
fth_grad_reducer_run(FthGradReducer *r, float scale, GError **error)
{
  fth_grad_reducer_begin(r, scale);
  return fth_grad_reducer_finish(r, NULL, error);
}

gboolean
fth_comm_broadcast_params(FthComm *comm, const FthParam *params, size_t n_params, GError **error)
{
  for (size_t i = 0; i < n_params; i++)
    if (!fth_comm_broadcast(comm, params[i].value, params[i].n * sizeof(float), 0, error))
      return FALSE;
  return TRUE;
}
