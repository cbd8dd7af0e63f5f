/* Private to engine/train: the communicator's table of functions, which each implementation
 * (parallel.c: local sockets, parallel-mpi.c: MPI, parallel-nccl.c: NCCL) fills, as the
 * backends do. */
#pragma once

#include "fathom/parallel.h"
#include "fth-config.h"

G_BEGIN_DECLS

typedef struct {
  const char *name;
  gboolean on_device;
  /* buf = sum over the ranks of scale_r * buf_r */
  gboolean (*all_reduce)(FthComm *comm, float *buf, size_t n, float scale, GError **error);
  /* Device gradients (fth_comm_reduce_device_grads); NULL for a host communicator. */
  gboolean (*reduce_grads)(FthComm *comm, const FthParam *params, size_t n_params, float scale,
                           size_t bucket_bytes, GError **error);
  /* Device gradients overlapped with the backward pass (FthGradReducer): reduce_bucket scales
   * each of bufs[0..n) by `scale` and queues their sum over the ranks beside the backward
   * kernels queued after it; join orders everything queued later after those sums. NULL for a
   * host communicator. */
  gboolean (*reduce_bucket)(FthComm *comm, float *const *bufs, const size_t *counts, size_t n,
                            float scale, GError **error);
  gboolean (*join)(FthComm *comm, GError **error);
  gboolean (*broadcast)(FthComm *comm, void *buf, size_t bytes, int root, GError **error);
  gboolean (*barrier)(FthComm *comm, GError **error);
  void (*free)(FthComm *comm);
} FthCommOps;

/* Each implementation's struct starts with this. */
struct FthComm {
  const FthCommOps *ops;
  int rank, size;
  int local_rank;  /* among the ranks on this machine */
  FthComm *host;   /* for host memory: itself, or the host communicator under NCCL */
  gboolean failed; /* fth_comm_set_failed */
  double timeout_s; /* a collective that waits this long for a rank fails; 0: none (MPI) */
};

/* The collective timeout FATHOM_COMM_TIMEOUT asks for, else FTH_COMM_TIMEOUT_DEFAULT. */
gboolean fth_comm_timeout_from_env(double *timeout_s, GError **error);

/* buf *= scale, with 0 giving zeros even where buf holds a NaN from an earlier step. */
void fth_comm_scale_host(float *buf, size_t n, float scale);

#if FTH_HAVE_CUDA
struct FthCudaContext;
/* The NCCL communicator of the ranks of `host` (borrowed: it must outlive this one), on ctx's
 * device. Every rank calls it; rank 0's NCCL id travels through host. Without NCCL in the build
 * it fails with the reason. */
FthComm *fth_comm_new_nccl(FthComm *host, struct FthCudaContext *ctx, GError **error);
#endif

G_END_DECLS
