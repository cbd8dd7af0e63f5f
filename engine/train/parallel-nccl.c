/* The NCCL communicator (CUDA builds): device buffers are summed by NCCL on the device context's
 * stream, in order with the backward kernels, or, for the gradient reducer, on the communicator's
 * own stream beside them; a collective not done within the timeout aborts the NCCL communicator
 * (kernels/cuda/nccl.cu) and fails with FTH_PARALLEL_ERROR_TIMEOUT; broadcast and barrier (host
 * memory) go through the host communicator it was made from (local or MPI), which also carries
 * NCCL's unique id from rank 0. */
#include "parallel-private.h"

#include "fth-cuda.h"

typedef struct {
  FthComm base;       /* base.host: the local communicator, borrowed */
  FthCudaContext *ctx;
  FthCudaComm *nccl;
} NcclComm;

static gboolean
cuda_failed(const NcclComm *c, const char *what, GError **error)
{
  g_set_error(error, FTH_PARALLEL_ERROR, FTH_PARALLEL_ERROR_PEER, "rank %d: %s: %s", c->base.rank,
              what, fth_cuda_last_error());
  return FALSE;
}

/* A collective's status: a timeout (the communicator aborted) or a failure. */
static gboolean
collective_done(const NcclComm *c, FthCudaStatus st, const char *what, GError **error)
{
  if (st == FTH_CUDA_OK)
    return TRUE;
  if (st != FTH_CUDA_TIMEOUT)
    return cuda_failed(c, what, error);
  g_set_error(error, FTH_PARALLEL_ERROR, FTH_PARALLEL_ERROR_TIMEOUT, "rank %d: %s: %s",
              c->base.rank, what, fth_cuda_last_error());
  return FALSE;
}

/* buf *= factor, with 0 giving zeros even where buf holds a NaN from an earlier step. */
static gboolean
scale_device(NcclComm *c, float *buf, size_t n, float factor, GError **error)
{
  FthCudaStatus st = factor == 0.0f   ? fth_cuda_fill(c->ctx, buf, n, 0.0f)
                     : factor != 1.0f ? fth_cuda_scale(c->ctx, buf, buf, n, factor, 0.0f)
                                      : FTH_CUDA_OK;
  return st == FTH_CUDA_OK || cuda_failed(c, "scaling before the all-reduce", error);
}

static gboolean
nccl_all_reduce(FthComm *comm, float *buf, size_t n, float scale, GError **error)
{
  NcclComm *c = (NcclComm *)comm;
  if (!scale_device(c, buf, n, scale, error))
    return FALSE;
  return collective_done(c, fth_cuda_all_reduce(c->nccl, buf, n, 1.0f), "all-reduce", error);
}

static gboolean
nccl_reduce_grads(FthComm *comm, const FthParam *params, size_t n_params, float scale,
                  size_t bucket_bytes, GError **error)
{
  NcclComm *c = (NcclComm *)comm;
  g_autofree float **bufs = g_new(float *, n_params + 1);
  g_autofree size_t *counts = g_new(size_t, n_params + 1);
  /* The bucketed reduction averages (1 / ranks), so each rank first scales by scale * ranks. */
  for (size_t k = 0; k < n_params; k++) {
    const FthParam *p = &params[n_params - 1 - k];
    bufs[k] = p->grad;
    counts[k] = p->n;
    if (!scale_device(c, p->grad, p->n, scale * (float)comm->size, error))
      return FALSE;
  }
  return collective_done(c, fth_cuda_all_reduce_buckets(c->nccl, bufs, counts, (int)n_params,
                                                        bucket_bytes),
                         "bucketed gradient all-reduce", error);
}

static gboolean
nccl_reduce_bucket(FthComm *comm, float *const *bufs, const size_t *counts, size_t n, float scale,
                   GError **error)
{
  NcclComm *c = (NcclComm *)comm;
  for (size_t k = 0; k < n; k++)
    if (!scale_device(c, bufs[k], counts[k], scale, error))
      return FALSE;
  return collective_done(c, fth_cuda_comm_reduce_async(c->nccl, bufs, counts, (int)n),
                         "gradient all-reduce beside the backward pass", error);
}

static gboolean
nccl_join(FthComm *comm, GError **error)
{
  NcclComm *c = (NcclComm *)comm;
  return collective_done(c, fth_cuda_comm_join(c->nccl), "waiting for the gradient all-reduce",
                         error);
}

static gboolean
nccl_broadcast(FthComm *comm, void *buf, size_t bytes, int root, GError **error)
{
  return fth_comm_broadcast(comm->host, buf, bytes, root, error);
}

static gboolean
nccl_barrier(FthComm *comm, GError **error)
{
  return fth_comm_barrier(comm->host, error);
}

static void
nccl_free(FthComm *comm)
{
  NcclComm *c = (NcclComm *)comm;
  fth_cuda_comm_free(c->nccl);
  g_free(c);
}

static const FthCommOps nccl_ops = {
  .name = "nccl",
  .on_device = TRUE,
  .all_reduce = nccl_all_reduce,
  .reduce_grads = nccl_reduce_grads,
  .reduce_bucket = nccl_reduce_bucket,
  .join = nccl_join,
  .broadcast = nccl_broadcast,
  .barrier = nccl_barrier,
  .free = nccl_free,
};

FthComm *
fth_comm_new_nccl(FthComm *host, struct FthCudaContext *ctx, GError **error)
{
  NcclComm *c = g_new0(NcclComm, 1);
  c->base.ops = &nccl_ops;
  c->base.rank = host->rank;
  c->base.local_rank = host->local_rank;
  c->base.size = host->size;
  c->base.host = host;
  /* The host communicator's timeout; MPI has none of its own, so the environment's. */
  c->base.timeout_s = host->timeout_s;
  if (c->base.timeout_s <= 0 && !fth_comm_timeout_from_env(&c->base.timeout_s, error)) {
    g_free(c);
    return NULL;
  }
  c->ctx = ctx;
  /* Rank 0 makes the id. When it cannot, it sends nothing: its process ends and the others'
   * broadcast fails with rank 0 gone. */
  unsigned char id[FTH_CUDA_COMM_ID_BYTES] = {0};
  if (host->rank == 0 && fth_cuda_comm_unique_id(id) != FTH_CUDA_OK) {
    cuda_failed(c, "ncclGetUniqueId", error);
    g_free(c);
    return NULL;
  }
  if (!fth_comm_broadcast(host, id, sizeof id, 0, error)) {
    g_free(c);
    return NULL;
  }
  FthCudaStatus st = fth_cuda_comm_new(ctx, id, host->size, host->rank, c->base.timeout_s, &c->nccl);
  if (st != FTH_CUDA_OK) {
    collective_done(c, st, "ncclCommInitRankConfig", error);
    g_free(c);
    return NULL;
  }
  return &c->base;
}
