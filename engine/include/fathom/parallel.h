/* fathom/parallel.h: data-parallel training, one process per device. A communicator (FthComm)
 * joins the N processes of a run: all-reduce (sum) of float buffers, broadcast, barrier, rank
 * and size. The local implementation talks over Unix sockets in a shared directory (CPU
 * training, and every host-side exchange of a GPU run), the MPI one joins mpirun's ranks; the
 * NCCL one reduces device buffers.
 * The launcher starts N copies of a command with the rank variables set, as torchrun does.
 * A service layer: GLib types, errors as GError in FTH_PARALLEL_ERROR. */
#pragma once

#include <fathom/optim.h>
#include <glib.h>
#include <stddef.h>

G_BEGIN_DECLS

#define FTH_PARALLEL_ERROR (fth_parallel_error_quark())
GQuark fth_parallel_error_quark(void);

typedef enum {
  FTH_PARALLEL_ERROR_INVALID,  /* bad rank, size, directory or environment */
  FTH_PARALLEL_ERROR_CONNECT,  /* the ranks did not meet within the timeout */
  FTH_PARALLEL_ERROR_PEER,     /* a rank went away or sent something unexpected */
  FTH_PARALLEL_ERROR_WORKER,   /* the launcher: a worker failed */
  FTH_PARALLEL_ERROR_UNSUPPORTED,
  FTH_PARALLEL_ERROR_TIMEOUT,  /* a rank did not take part in a collective within the timeout */
} FthParallelError;

/* The variables the launcher sets in each worker (torchrun's RANK / WORLD_SIZE). */
#define FTH_ENV_RANK "FATHOM_RANK"
#define FTH_ENV_WORLD_SIZE "FATHOM_WORLD_SIZE"
#define FTH_ENV_DIST_DIR "FATHOM_DIST_DIR"
/* Seconds a collective waits for a rank (fathom train --comm-timeout). */
#define FTH_ENV_COMM_TIMEOUT "FATHOM_COMM_TIMEOUT"
#define FTH_COMM_TIMEOUT_DEFAULT 600.0
/* The local communicator's report of a collective that timed out, in its directory: the rank
 * that did not arrive on the first line, the error after it. The first report stays. */
#define FTH_COMM_HUNG_FILE "hung-rank"

/* A worker exits with this status when it stops because another rank went away, so the
 * launcher names the rank that failed first rather than the ones that noticed it. */
#define FTH_EXIT_PEER_LOST 86

typedef struct FthComm FthComm;

/* The local communicator: rank 0 listens on DIR/comm.sock, the others connect (retrying until
 * timeout_s). Collectives go through rank 0, which sums in rank order with float64
 * accumulation, so every rank gets the same bits whatever the timing.
 * A collective fails with FTH_PARALLEL_ERROR_TIMEOUT, naming the rank(s) that did not arrive,
 * when a peer sends or takes nothing for comm_timeout_s (<= 0: FTH_COMM_TIMEOUT_DEFAULT), and
 * writes DIR/FTH_COMM_HUNG_FILE for the launcher; the communicator then fails every later
 * collective. A peer that closes its socket fails the collective at once. */
FthComm *fth_comm_new_local(const char *dir, int rank, int size, double timeout_s,
                            double comm_timeout_s, GError **error);

/* The communicator the environment asks for: FATHOM_RANK / FATHOM_WORLD_SIZE / FATHOM_DIST_DIR
 * (the launcher), with FATHOM_COMM_TIMEOUT (seconds) as its collective timeout, else
 * OMPI_COMM_WORLD_RANK / OMPI_COMM_WORLD_SIZE (mpirun, all ranks on one
 * machine: the rendezvous directory is FATHOM_DIST_DIR, as `mpirun -x FATHOM_DIST_DIR=...`
 * passes it, or one under the temporary directory named after the ranks' common parent).
 * MPI itself is not used: the ranks meet through the local communicator. TRUE with *out NULL
 * when the process was started alone. */
gboolean fth_comm_from_env(FthComm **out, GError **error);

/* The MPI communicator of mpirun's ranks (on one machine or several): MPI initialized here unless
 * it already was (then it is not finalized here either), MPI_Allreduce / MPI_Bcast /
 * MPI_Barrier on host memory; under NCCL it carries the NCCL id. Fails with
 * FTH_PARALLEL_ERROR_UNSUPPORTED in a build without the mpi feature. */
FthComm *fth_comm_new_mpi(GError **error);
/* TRUE when an MPI launcher started this process: OMPI_COMM_WORLD_SIZE (Open MPI), PMI_SIZE
 * (MPICH, Slurm) or PMIX_RANK (PMIx) is set. */
gboolean fth_comm_under_mpi(void);

/* How the processes of a run were started (fathom train --launcher). */
typedef enum {
  FTH_LAUNCHER_AUTO,     /* MPI when built in and fth_comm_under_mpi() (and not a worker of the
                          * built-in launcher), else as FTH_LAUNCHER_BUILTIN */
  FTH_LAUNCHER_BUILTIN,  /* fth_comm_from_env */
  FTH_LAUNCHER_MPI,      /* fth_comm_new_mpi; alone outside mpirun (a world of one) */
} FthLauncher;

/* The communicator of `launcher`; TRUE with *out NULL when the process was started alone. */
gboolean fth_comm_for_launcher(FthLauncher launcher, FthComm **out, GError **error);

void fth_comm_free(FthComm *comm);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(FthComm, fth_comm_free)
/* This rank stops on an error the others may not share: freeing the communicator then does not
 * wait for them (MPI: no MPI_Finalize; mpirun stops the other ranks when this one exits). */
void fth_comm_set_failed(FthComm *comm);

int fth_comm_rank(const FthComm *comm);
int fth_comm_size(const FthComm *comm);
/* The rank among the ranks on this machine (the rank itself but under MPI across machines):
 * the number of its GPU. */
int fth_comm_local_rank(const FthComm *comm);
/* "local", "mpi" or "nccl". */
const char *fth_comm_name(const FthComm *comm);
/* TRUE when the all-reduce works on device memory (NCCL). */
gboolean fth_comm_on_device(const FthComm *comm);
/* The communicator of the same ranks for host buffers: comm itself, or the host one (local or
 * MPI) an NCCL communicator was made from. */
FthComm *fth_comm_host(FthComm *comm);

/* Every rank calls these in the same order with the same sizes. buf holds host memory for the
 * local communicator, device memory for NCCL (its broadcast and barrier stay on the host). */
gboolean fth_comm_all_reduce_sum(FthComm *comm, float *buf, size_t n, GError **error);
/* buf = the sum over the ranks of scale_r * buf_r, each rank passing its own scale. */
gboolean fth_comm_all_reduce_scaled(FthComm *comm, float *buf, size_t n, float scale,
                                    GError **error);
gboolean fth_comm_broadcast(FthComm *comm, void *buf, size_t bytes, int root, GError **error);
gboolean fth_comm_barrier(FthComm *comm, GError **error);

/* ---- Gradient all-reduce in buckets ------------------------------------------------------------
 * Gradients become ready in reverse parameter order during the backward pass, so buckets are
 * filled from the last parameter to the first, each of at most bucket_bytes (a gradient larger
 * than a bucket is one bucket), as PyTorch DDP does. fth_grad_reducer_run scales every gradient
 * by `scale` (this rank's share of the global batch), then sums the buckets over the ranks. */
typedef struct FthGradReducer FthGradReducer;

#define FTH_GRAD_BUCKET_BYTES ((size_t)25 << 20)

FthGradReducer *fth_grad_reducer_new(FthComm *comm, const FthParam *params, size_t n_params,
                                     size_t bucket_bytes);
void fth_grad_reducer_free(FthGradReducer *r);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(FthGradReducer, fth_grad_reducer_free)
int fth_grad_reducer_n_buckets(const FthGradReducer *r);
/* All at once, after the backward pass: fth_grad_reducer_begin + fth_grad_reducer_finish. */
gboolean fth_grad_reducer_run(FthGradReducer *r, float scale, GError **error);
/* Overlapped with the backward pass: begin before it, announce each gradient as it becomes final
 * (params index; fth_graph_set_grad_ready_func), finish after it. A thread sums each bucket once
 * all its gradients are announced, in bucket order (the same on every rank), while the backward
 * pass goes on; finish takes the rest as final, waits for the last bucket and says how many were
 * summed before it was called (*early, may be NULL). No other collective on the communicator
 * between begin and finish. With a device communicator (NCCL; params holding device gradients)
 * there is no thread: the announcement that completes a bucket queues its sum on the
 * communicator's own stream, after the kernels queued so far and beside the later ones; finish
 * queues the rest and orders the device's later work after them (*early: buckets queued before
 * finish). */
void fth_grad_reducer_begin(FthGradReducer *r, float scale);
void fth_grad_reducer_ready(FthGradReducer *r, size_t param);
gboolean fth_grad_reducer_finish(FthGradReducer *r, int *early, GError **error);

/* Device gradients (an NCCL communicator): each rank's scaled by its `scale`, then summed over
 * the ranks in buckets of bucket_bytes in reverse parameter order, on the device's stream. */
gboolean fth_comm_reduce_device_grads(FthComm *comm, const FthParam *params, size_t n_params,
                                      float scale, size_t bucket_bytes, GError **error);

/* Rank 0's parameter values to every rank (values only; gradients are recomputed each step). */
gboolean fth_comm_broadcast_params(FthComm *comm, const FthParam *params, size_t n_params,
                                   GError **error);

/* ---- The launcher ---------------------------------------------------------------------------
 * Runs argv (argv[0] a path, or found in PATH) as nproc worker processes with FATHOM_RANK,
 * FATHOM_WORLD_SIZE and FATHOM_DIST_DIR (a fresh temporary directory, removed afterwards) set,
 * and FTH_NUM_THREADS (unless set) to the processors divided among the workers.
 * Rank 0 keeps this process's stdout and stderr; the others' output goes to DIR/rank-R.log.
 * When a worker fails the others are stopped (SIGTERM and SIGCONT, then SIGKILL after a grace
 * period) and the error names the rank, how it ended and the end of its output; when a worker's
 * collective timed out (DIR/FTH_COMM_HUNG_FILE), the rank it waited for is the one named.
 * *failed_rank (may be NULL) is that rank, -1 when all succeeded. Workers get SIGTERM when the
 * launcher dies. */
gboolean fth_launch_workers(const char *const *argv, int nproc, int *failed_rank, GError **error);

G_END_DECLS
