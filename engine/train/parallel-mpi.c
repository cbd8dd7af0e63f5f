/* The MPI communicator (builds with the mpi feature): the ranks of mpirun, on one machine or
 * several, summed with MPI_Allreduce on the host. A private duplicate of MPI_COMM_WORLD returns
 * errors instead of ending the process, so they reach the caller as GErrors.
 * No collective timeout here: MPI has no portable way to bound or cancel a blocking collective
 * (MPI_Allreduce cannot be cancelled; ULFM's MPI_Comm_revoke and Open MPI's
 * --timeout / mpi_ft_* settings are extensions), so a hung rank is left to mpirun's own
 * timeout (mpirun --timeout, Slurm's time limit). */
#include "parallel-private.h"

#include <mpi.h>

/* MPI counts are ints: larger buffers go in pieces of this many elements. */
enum { PIECE_ELEMENTS = 1 << 30 };

typedef struct {
  FthComm base;
  MPI_Comm world;      /* our duplicate of MPI_COMM_WORLD */
  gboolean finalize;   /* this communicator initialized MPI, so it finalizes it */
} MpiComm;

/* rank: -1 before this process knows its rank. */
static gboolean
mpi_failed(int rank, const char *what, int code, GError **error)
{
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(code, text, &len) != MPI_SUCCESS)
    g_snprintf(text, sizeof text, "MPI error %d", code);
  if (rank < 0)
    g_set_error(error, FTH_PARALLEL_ERROR, FTH_PARALLEL_ERROR_PEER, "%s: %s", what, text);
  else
    g_set_error(error, FTH_PARALLEL_ERROR, FTH_PARALLEL_ERROR_PEER, "rank %d: %s: %s", rank, what,
                text);
  return FALSE;
}

static gboolean
mpi_all_reduce(FthComm *comm, float *buf, size_t n, float scale, GError **error)
{
  MpiComm *c = (MpiComm *)comm;
  fth_comm_scale_host(buf, n, scale);
  for (size_t off = 0; off < n; off += PIECE_ELEMENTS) {
    int m = (int)MIN((size_t)PIECE_ELEMENTS, n - off);
    int rc = MPI_Allreduce(MPI_IN_PLACE, buf + off, m, MPI_FLOAT, MPI_SUM, c->world);
    if (rc != MPI_SUCCESS)
      return mpi_failed(comm->rank, "MPI_Allreduce", rc, error);
  }
  return TRUE;
}

static gboolean
mpi_broadcast(FthComm *comm, void *buf, size_t bytes, int root, GError **error)
{
  MpiComm *c = (MpiComm *)comm;
  for (size_t off = 0; off < bytes; off += PIECE_ELEMENTS) {
    int m = (int)MIN((size_t)PIECE_ELEMENTS, bytes - off);
    int rc = MPI_Bcast((char *)buf + off, m, MPI_BYTE, root, c->world);
    if (rc != MPI_SUCCESS)
      return mpi_failed(comm->rank, "MPI_Bcast", rc, error);
  }
  return TRUE;
}

static gboolean
mpi_barrier(FthComm *comm, GError **error)
{
  MpiComm *c = (MpiComm *)comm;
  int rc = MPI_Barrier(c->world);
  return rc == MPI_SUCCESS || mpi_failed(comm->rank, "MPI_Barrier", rc, error);
}

static void
mpi_free(FthComm *comm)
{
  MpiComm *c = (MpiComm *)comm;
  /* A rank that failed leaves without MPI_Finalize, which could wait forever for ranks that
   * wait for it in a collective; mpirun then stops the others and names this one. */
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!comm->failed && !finalized) {
    MPI_Comm_free(&c->world);
    if (c->finalize)
      MPI_Finalize();
  }
  g_free(c);
}

static const FthCommOps mpi_ops = {
  .name = "mpi",
  .on_device = FALSE,
  .all_reduce = mpi_all_reduce,
  .broadcast = mpi_broadcast,
  .barrier = mpi_barrier,
  .free = mpi_free,
};

FthComm *
fth_comm_new_mpi(GError **error)
{
  int initialized = 0, finalized = 0, provided = MPI_THREAD_SINGLE;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (finalized) {
    g_set_error(error, FTH_PARALLEL_ERROR, FTH_PARALLEL_ERROR_INVALID,
                "MPI was finalized already in this process");
    return NULL;
  }
  /* The gradient reducer calls MPI from its own thread, never at the same time as another. */
  int rc = initialized ? MPI_Query_thread(&provided)
                       : MPI_Init_thread(NULL, NULL, MPI_THREAD_SERIALIZED, &provided);
  if (rc != MPI_SUCCESS) {
    mpi_failed(-1, "MPI_Init_thread", rc, error);
    return NULL;
  }
  if (provided < MPI_THREAD_SERIALIZED) {
    g_set_error(error, FTH_PARALLEL_ERROR, FTH_PARALLEL_ERROR_UNSUPPORTED,
                "MPI provides thread level %d; the gradient reducer needs MPI_THREAD_SERIALIZED",
                provided);
    if (!initialized)
      MPI_Finalize();
    return NULL;
  }
  /* MPI_COMM_WORLD's default handler ends the process on an error: ours returns it, as a
   * library should. A caller that initialized MPI keeps its own choice. */
  if (!initialized)
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MpiComm *c = g_new0(MpiComm, 1);
  c->base.ops = &mpi_ops;
  c->base.host = &c->base;
  c->base.rank = -1;
  c->finalize = !initialized;
  rc = MPI_Comm_dup(MPI_COMM_WORLD, &c->world);
  if (rc == MPI_SUCCESS)
    rc = MPI_Comm_set_errhandler(c->world, MPI_ERRORS_RETURN);
  if (rc == MPI_SUCCESS)
    rc = MPI_Comm_rank(c->world, &c->base.rank);
  if (rc == MPI_SUCCESS)
    rc = MPI_Comm_size(c->world, &c->base.size);
  /* The ranks sharing this machine's memory number its devices. */
  MPI_Comm node = MPI_COMM_NULL;
  if (rc == MPI_SUCCESS)
    rc = MPI_Comm_split_type(c->world, MPI_COMM_TYPE_SHARED, c->base.rank, MPI_INFO_NULL, &node);
  if (rc == MPI_SUCCESS)
    rc = MPI_Comm_rank(node, &c->base.local_rank);
  if (node != MPI_COMM_NULL)
    MPI_Comm_free(&node);
  if (rc != MPI_SUCCESS) {
    mpi_failed(c->base.rank, "joining MPI_COMM_WORLD", rc, error);
    c->base.failed = TRUE;  /* the others may not have got as far: do not wait for them */
    mpi_free(&c->base);
    return NULL;
  }
  return &c->base;
}
