// Data-parallel collectives over NCCL: the all-reduce wrapper and the bucketed gradient
// reduction. Collectives run on the context's stream, in order with the backward kernels.
#include <string.h>

#include "cuda-private.h"

#if FTH_HAVE_NCCL

#include <nccl.h>

static_assert(NCCL_UNIQUE_ID_BYTES == FTH_CUDA_COMM_ID_BYTES, "NCCL id size");

struct FthCudaComm {
  FthCudaContext *ctx;
  ncclComm_t comm;
  int n_ranks;
  float *d_bucket; // packing buffer of the bucketed reduction
  size_t bucket_floats;
};

static FthCudaStatus check_nccl(ncclResult_t r, const char *what)
{
  if (r == ncclSuccess)
    return FTH_CUDA_OK;
  return fth_cuda_fail(FTH_CUDA_FAILED, "%s: %s", what, ncclGetErrorString(r));
}

extern "C" FthCudaStatus fth_cuda_comm_unique_id(unsigned char id[FTH_CUDA_COMM_ID_BYTES])
{
  ncclUniqueId uid;
  FTH_CUDA_TRY(check_nccl(ncclGetUniqueId(&uid), "ncclGetUniqueId"));
  memcpy(id, uid.internal, FTH_CUDA_COMM_ID_BYTES);
  return FTH_CUDA_OK;
}

static FthCudaComm *comm_alloc(FthCudaContext *ctx, int n_ranks)
{
  FthCudaComm *c = new (std::nothrow) FthCudaComm();
  if (c) {
    c->ctx = ctx;
    c->n_ranks = n_ranks;
  }
  return c;
}

extern "C" FthCudaStatus fth_cuda_comm_new(FthCudaContext *ctx, const unsigned char id[FTH_CUDA_COMM_ID_BYTES],
                                           int n_ranks, int rank, FthCudaComm **out)
{
  *out = nullptr;
  if (n_ranks < 1 || rank < 0 || rank >= n_ranks)
    return fth_cuda_fail(FTH_CUDA_INVALID, "nccl: rank %d of %d", rank, n_ranks);
  FTH_CUDA_TRY(fth_cuda_use(ctx));
  FthCudaComm *c = comm_alloc(ctx, n_ranks);
  if (!c)
    return fth_cuda_fail(FTH_CUDA_NO_MEMORY, "nccl: out of host memory");
  ncclUniqueId uid;
  memcpy(uid.internal, id, FTH_CUDA_COMM_ID_BYTES);
  FthCudaStatus st = check_nccl(ncclCommInitRank(&c->comm, n_ranks, uid, rank), "ncclCommInitRank");
  if (st != FTH_CUDA_OK) {
    delete c;
    return st;
  }
  *out = c;
  return FTH_CUDA_OK;
}

extern "C" FthCudaStatus fth_cuda_comm_new_all(FthCudaContext *const *ctxs, int n, FthCudaComm **comms)
{
  if (n < 1 || n > 64)
    return fth_cuda_fail(FTH_CUDA_INVALID, "nccl: %d devices", n);
  ncclComm_t raw[64];
  int devs[64];
  for (int i = 0; i < n; i++) {
    devs[i] = ctxs[i]->device;
    comms[i] = nullptr;
  }
  FTH_CUDA_TRY(check_nccl(ncclCommInitAll(raw, n, devs), "ncclCommInitAll"));
  for (int i = 0; i < n; i++) {
    comms[i] = comm_alloc(ctxs[i], n);
    if (!comms[i]) {
      for (int j = 0; j < n; j++) {
        if (j < i)
          delete comms[j];
        (void) ncclCommDestroy(raw[j]);
        comms[j] = nullptr;
      }
      return fth_cuda_fail(FTH_CUDA_NO_MEMORY, "nccl: out of host memory");
    }
    comms[i]->comm = raw[i];
  }
  return FTH_CUDA_OK;
}

extern "C" void fth_cuda_comm_free(FthCudaComm *comm)
{
  if (!comm)
    return;
  if (comm->d_bucket)
    fth_cuda_free(comm->ctx, comm->d_bucket);
  (void) ncclCommDestroy(comm->comm);
  delete comm;
}

extern "C" FthCudaStatus fth_cuda_all_reduce(FthCudaComm *comm, float *d_buf, size_t n, float factor)
{
  if (!n)
    return FTH_CUDA_OK;
  FthCudaContext *ctx = comm->ctx;
  FTH_CUDA_TRY(fth_cuda_use(ctx));
  FTH_CUDA_TRY(check_nccl(ncclAllReduce(d_buf, d_buf, n, ncclFloat32, ncclSum, comm->comm, ctx->stream),
                          "ncclAllReduce"));
  return factor == 1.0f ? FTH_CUDA_OK : fth_cuda_scale(ctx, d_buf, d_buf, n, factor, 0.0f);
}

extern "C" FthCudaStatus fth_cuda_all_reduce_buckets(FthCudaComm *comm, float *const *d_bufs, const size_t *counts,
                                                     int n_bufs, size_t bucket_bytes)
{
  FthCudaContext *ctx = comm->ctx;
  const float mean = 1.0f / (float) comm->n_ranks;
  size_t cap = bucket_bytes / sizeof(float);
  if (cap < 1024)
    cap = 1024;
  if (comm->bucket_floats < cap) {
    fth_cuda_free(ctx, comm->d_bucket);
    comm->d_bucket = (float *) fth_cuda_alloc(ctx, cap * sizeof(float));
    comm->bucket_floats = comm->d_bucket ? cap : 0;
    if (!comm->d_bucket)
      return fth_cuda_fail(FTH_CUDA_NO_MEMORY, "nccl: bucket of %zu bytes", cap * sizeof(float));
  }
  int first = 0; // buffers [first, b) are packed in the bucket
  size_t used = 0;
  for (int b = 0; b <= n_bufs; b++) {
    bool flush = b == n_bufs || (used && used + counts[b] > cap);
    if (flush && used) {
      FTH_CUDA_TRY(fth_cuda_all_reduce(comm, comm->d_bucket, used, mean));
      size_t off = 0;
      for (int u = first; u < b; u++) {
        FTH_CUDA_TRY(fth_cuda_copy_device(ctx, d_bufs[u], comm->d_bucket + off, counts[u] * sizeof(float)));
        off += counts[u];
      }
      used = 0;
    }
    if (b == n_bufs)
      break;
    if (used == 0)
      first = b;
    if (counts[b] > cap) { // larger than a bucket: reduced where it lies
      FTH_CUDA_TRY(fth_cuda_all_reduce(comm, d_bufs[b], counts[b], mean));
      first = b + 1;
      continue;
    }
    FTH_CUDA_TRY(fth_cuda_copy_device(ctx, comm->d_bucket + used, d_bufs[b], counts[b] * sizeof(float)));
    used += counts[b];
  }
  return FTH_CUDA_OK;
}

extern "C" FthCudaStatus fth_cuda_group_start(void)
{
  return check_nccl(ncclGroupStart(), "ncclGroupStart");
}

extern "C" FthCudaStatus fth_cuda_group_end(void)
{
  return check_nccl(ncclGroupEnd(), "ncclGroupEnd");
}

#else

static FthCudaStatus no_nccl(void)
{
  return fth_cuda_fail(FTH_CUDA_UNSUPPORTED, "built without NCCL (-Dnccl)");
}

extern "C" FthCudaStatus fth_cuda_comm_unique_id(unsigned char id[FTH_CUDA_COMM_ID_BYTES])
{
  return no_nccl();
}

extern "C" FthCudaStatus fth_cuda_comm_new(FthCudaContext *ctx, const unsigned char id[FTH_CUDA_COMM_ID_BYTES],
                                           int n_ranks, int rank, FthCudaComm **out)
{
  *out = nullptr;
  return no_nccl();
}

extern "C" FthCudaStatus fth_cuda_comm_new_all(FthCudaContext *const *ctxs, int n, FthCudaComm **comms)
{
  return no_nccl();
}

extern "C" void fth_cuda_comm_free(FthCudaComm *comm) {}

extern "C" FthCudaStatus fth_cuda_all_reduce(FthCudaComm *comm, float *d_buf, size_t n, float factor)
{
  return no_nccl();
}

extern "C" FthCudaStatus fth_cuda_all_reduce_buckets(FthCudaComm *comm, float *const *d_bufs, const size_t *counts,
                                                     int n_bufs, size_t bucket_bytes)
{
  return no_nccl();
}

extern "C" FthCudaStatus fth_cuda_group_start(void)
{
  return no_nccl();
}

extern "C" FthCudaStatus fth_cuda_group_end(void)
{
  return no_nccl();
}

#endif
