// Data-parallel collectives over NCCL: the all-reduce wrapper and the bucketed gradient
// reduction. Collectives run on the context's stream, in order with the backward kernels, except
// fth_cuda_comm_reduce_async's, which run on the communicator's own stream beside them.
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cuda-private.h"

#if FTH_HAVE_NCCL

#include <nccl.h>

// The communicators of fth_cuda_comm_new_all, made without a timeout of their own.
static const double DEFAULT_TIMEOUT_S = 600;

static_assert(NCCL_UNIQUE_ID_BYTES == FTH_CUDA_COMM_ID_BYTES, "NCCL id size");

struct FthCudaComm {
  FthCudaContext *ctx;
  ncclComm_t comm;
  int n_ranks;
  float *d_bucket; // packing buffer of the bucketed reduction
  size_t bucket_floats;
  // fth_cuda_comm_reduce_async: the reductions' own stream, the event it waits for (the
  // context's stream so far) and the one the context's stream waits for (join); made on first use
  cudaStream_t side;
  cudaEvent_t queued, reduced;
  // A collective not done after this long aborts the communicator (ncclCommAbort), which ends
  // it instead of hanging; every later call then fails.
  double timeout_s;
  bool aborted;
};

static FthCudaStatus check_nccl(ncclResult_t r, const char *what)
{
  if (r == ncclSuccess)
    return FTH_CUDA_OK;
  return fth_cuda_fail(FTH_CUDA_FAILED, "%s: %s", what, ncclGetErrorString(r));
}

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double) ts.tv_sec + (double) ts.tv_nsec * 1e-9;
}

static FthCudaStatus abort_comm(FthCudaComm *c, FthCudaStatus st, const char *what, const char *why)
{
  if (!c->aborted) {
    (void) ncclCommAbort(c->comm);
    c->aborted = true;
  }
  return fth_cuda_fail(st, "%s: %s; the NCCL communicator was aborted", what, why);
}

static FthCudaStatus check_alive(const FthCudaComm *c)
{
  if (c->aborted)
    return fth_cuda_fail(FTH_CUDA_TIMEOUT, "nccl: the communicator was aborted after an earlier "
                         "collective timed out or failed");
  return FTH_CUDA_OK;
}

// A non-blocking communicator's call may answer ncclInProgress: waits, up to the timeout, for
// NCCL to finish it (ncclCommGetAsyncError).
static FthCudaStatus settle(FthCudaComm *c, ncclResult_t r, const char *what)
{
  double deadline = now_s() + c->timeout_s;
  while (r == ncclInProgress) {
    if (now_s() > deadline) {
      char why[96];
      snprintf(why, sizeof why, "not done after %g s (did a rank stop or hang?)", c->timeout_s);
      return abort_comm(c, FTH_CUDA_TIMEOUT, what, why);
    }
    usleep(100);
    ncclResult_t query = ncclCommGetAsyncError(c->comm, &r);
    if (query != ncclSuccess)
      r = query;
  }
  return check_nccl(r, what);
}

// Waits for the work queued on `stream` so far (the collectives among it): a hung collective
// never completes, so after the timeout, or at once on an asynchronous NCCL error, the
// communicator is aborted, which ends it. The host waits here where it could have queued more,
// the price of noticing a hang rather than waiting for it forever.
static FthCudaStatus watch(FthCudaComm *c, cudaStream_t stream, const char *what)
{
  cudaEvent_t done;
  FTH_CUDA_TRY(fth_cuda_check(cudaEventCreateWithFlags(&done, cudaEventDisableTiming), "cudaEventCreate"));
  FthCudaStatus st = fth_cuda_check(cudaEventRecord(done, stream), "cudaEventRecord");
  double deadline = now_s() + c->timeout_s;
  while (st == FTH_CUDA_OK) {
    cudaError_t e = cudaEventQuery(done);
    if (e == cudaSuccess)
      break;
    if (e != cudaErrorNotReady) {
      st = fth_cuda_check(e, what);
      break;
    }
    ncclResult_t async = ncclSuccess;
    if (ncclCommGetAsyncError(c->comm, &async) == ncclSuccess && async != ncclSuccess &&
        async != ncclInProgress) {
      st = abort_comm(c, FTH_CUDA_FAILED, what, ncclGetErrorString(async));
      break;
    }
    if (now_s() > deadline) {
      char why[96];
      snprintf(why, sizeof why, "not done after %g s (did a rank stop or hang?)", c->timeout_s);
      st = abort_comm(c, FTH_CUDA_TIMEOUT, what, why);
      break;
    }
    usleep(50);
  }
  (void) cudaEventDestroy(done);
  return st;
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
    c->timeout_s = DEFAULT_TIMEOUT_S;
  }
  return c;
}

extern "C" FthCudaStatus fth_cuda_comm_new(FthCudaContext *ctx, const unsigned char id[FTH_CUDA_COMM_ID_BYTES],
                                           int n_ranks, int rank, double timeout_s, FthCudaComm **out)
{
  *out = nullptr;
  if (n_ranks < 1 || rank < 0 || rank >= n_ranks || !(timeout_s > 0))
    return fth_cuda_fail(FTH_CUDA_INVALID, "nccl: rank %d of %d, timeout %g s", rank, n_ranks, timeout_s);
  FTH_CUDA_TRY(fth_cuda_use(ctx));
  FthCudaComm *c = comm_alloc(ctx, n_ranks);
  if (!c)
    return fth_cuda_fail(FTH_CUDA_NO_MEMORY, "nccl: out of host memory");
  c->timeout_s = timeout_s;
  ncclUniqueId uid;
  memcpy(uid.internal, id, FTH_CUDA_COMM_ID_BYTES);
  // Non-blocking, so that a rank that never joins makes the others' init time out (and abort)
  // rather than wait forever.
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
  FthCudaStatus st = settle(c, ncclCommInitRankConfig(&c->comm, n_ranks, uid, rank, &config),
                            "ncclCommInitRankConfig");
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
  if (comm->side) {
    (void) fth_cuda_use(comm->ctx);
    (void) cudaStreamSynchronize(comm->side);
    (void) cudaEventDestroy(comm->queued);
    (void) cudaEventDestroy(comm->reduced);
    (void) cudaStreamDestroy(comm->side);
  }
  if (comm->d_bucket)
    fth_cuda_free(comm->ctx, comm->d_bucket);
  // An aborted communicator was freed by ncclCommAbort.
  if (!comm->aborted)
    (void) ncclCommDestroy(comm->comm);
  delete comm;
}

extern "C" FthCudaStatus fth_cuda_all_reduce(FthCudaComm *comm, float *d_buf, size_t n, float factor)
{
  if (!n)
    return FTH_CUDA_OK;
  FthCudaContext *ctx = comm->ctx;
  FTH_CUDA_TRY(check_alive(comm));
  FTH_CUDA_TRY(fth_cuda_use(ctx));
  FTH_CUDA_TRY(settle(comm, ncclAllReduce(d_buf, d_buf, n, ncclFloat32, ncclSum, comm->comm, ctx->stream),
                      "ncclAllReduce"));
  FTH_CUDA_TRY(watch(comm, ctx->stream, "ncclAllReduce"));
  return factor == 1.0f ? FTH_CUDA_OK : fth_cuda_scale(ctx, d_buf, d_buf, n, factor, 0.0f);
}

static FthCudaStatus ensure_bucket(FthCudaComm *comm, size_t cap)
{
  if (comm->bucket_floats >= cap)
    return FTH_CUDA_OK;
  fth_cuda_free(comm->ctx, comm->d_bucket);
  comm->d_bucket = (float *) fth_cuda_alloc(comm->ctx, cap * sizeof(float));
  comm->bucket_floats = comm->d_bucket ? cap : 0;
  return comm->d_bucket ? FTH_CUDA_OK : fth_cuda_fail(FTH_CUDA_NO_MEMORY, "nccl: bucket of %zu bytes", cap * 4);
}

// Sums `count` floats at ptrs[r] over the ranks, one NCCL group when there are several local
// communicators (one thread drives them all), then scales by 1 / ranks.
static FthCudaStatus reduce_group(FthCudaComm *const *comms, int n, float *const *ptrs, size_t count)
{
  if (n > 1)
    FTH_CUDA_TRY(check_nccl(ncclGroupStart(), "ncclGroupStart"));
  FthCudaStatus st = FTH_CUDA_OK;
  for (int r = 0; r < n && st == FTH_CUDA_OK; r++) {
    st = check_alive(comms[r]);
    if (st == FTH_CUDA_OK)
      st = fth_cuda_use(comms[r]->ctx);
    if (st == FTH_CUDA_OK)
      st = settle(comms[r],
                  ncclAllReduce(ptrs[r], ptrs[r], count, ncclFloat32, ncclSum, comms[r]->comm,
                                comms[r]->ctx->stream),
                  "ncclAllReduce");
  }
  if (n > 1) {
    ncclResult_t end = ncclGroupEnd();
    for (int r = 0; r < n; r++) {
      FthCudaStatus settled = settle(comms[r], end, "ncclGroupEnd");
      if (st == FTH_CUDA_OK)
        st = settled;
    }
  }
  for (int r = 0; r < n && st == FTH_CUDA_OK; r++)
    st = fth_cuda_scale(comms[r]->ctx, ptrs[r], ptrs[r], count, 1.0f / (float) comms[r]->n_ranks, 0.0f);
  return st;
}

extern "C" FthCudaStatus fth_cuda_all_reduce_buckets_local(FthCudaComm *const *comms, int n_comms,
                                                           float *const *const *d_bufs, const size_t *counts,
                                                           int n_bufs, size_t bucket_bytes)
{
  if (n_comms < 1 || n_comms > 64)
    return fth_cuda_fail(FTH_CUDA_INVALID, "nccl: %d communicators", n_comms);
  size_t cap = bucket_bytes / sizeof(float);
  if (cap < 1024)
    cap = 1024;
  float *ptrs[64];
  for (int r = 0; r < n_comms; r++) {
    FTH_CUDA_TRY(ensure_bucket(comms[r], cap));
    ptrs[r] = comms[r]->d_bucket;
  }
  int first = 0; // buffers [first, b) are packed in the buckets
  size_t used = 0;
  for (int b = 0; b <= n_bufs; b++) {
    bool flush = b == n_bufs || (used && used + counts[b] > cap);
    if (flush && used) {
      FTH_CUDA_TRY(reduce_group(comms, n_comms, ptrs, used));
      for (int r = 0; r < n_comms; r++) {
        size_t off = 0;
        for (int u = first; u < b; u++) {
          FTH_CUDA_TRY(fth_cuda_copy_device(comms[r]->ctx, d_bufs[r][u], comms[r]->d_bucket + off,
                                            counts[u] * sizeof(float)));
          off += counts[u];
        }
      }
      used = 0;
    }
    if (b == n_bufs)
      break;
    if (used == 0)
      first = b;
    if (counts[b] > cap) { // larger than a bucket: reduced where it lies
      float *own[64];
      for (int r = 0; r < n_comms; r++)
        own[r] = d_bufs[r][b];
      FTH_CUDA_TRY(reduce_group(comms, n_comms, own, counts[b]));
      first = b + 1;
      continue;
    }
    for (int r = 0; r < n_comms; r++)
      FTH_CUDA_TRY(fth_cuda_copy_device(comms[r]->ctx, comms[r]->d_bucket + used, d_bufs[r][b],
                                        counts[b] * sizeof(float)));
    used += counts[b];
  }
  for (int r = 0; r < n_comms; r++) {
    FTH_CUDA_TRY(fth_cuda_use(comms[r]->ctx));
    FTH_CUDA_TRY(watch(comms[r], comms[r]->ctx->stream, "bucketed gradient all-reduce"));
  }
  return FTH_CUDA_OK;
}

extern "C" FthCudaStatus fth_cuda_all_reduce_buckets(FthCudaComm *comm, float *const *d_bufs, const size_t *counts,
                                                     int n_bufs, size_t bucket_bytes)
{
  float *const *bufs[1] = {d_bufs};
  return fth_cuda_all_reduce_buckets_local(&comm, 1, bufs, counts, n_bufs, bucket_bytes);
}

static FthCudaStatus ensure_side_stream(FthCudaComm *comm)
{
  if (comm->side)
    return FTH_CUDA_OK;
  FTH_CUDA_TRY(fth_cuda_check(cudaEventCreateWithFlags(&comm->queued, cudaEventDisableTiming), "cudaEventCreate"));
  FthCudaStatus st = fth_cuda_check(cudaEventCreateWithFlags(&comm->reduced, cudaEventDisableTiming), "cudaEventCreate");
  if (st == FTH_CUDA_OK) {
    st = fth_cuda_check(cudaStreamCreateWithFlags(&comm->side, cudaStreamNonBlocking), "cudaStreamCreate");
    if (st != FTH_CUDA_OK)
      (void) cudaEventDestroy(comm->reduced);
  }
  if (st != FTH_CUDA_OK) {
    (void) cudaEventDestroy(comm->queued);
    comm->side = nullptr;
  }
  return st;
}

extern "C" FthCudaStatus fth_cuda_comm_reduce_async(FthCudaComm *comm, float *const *d_bufs, const size_t *counts,
                                                    int n_bufs)
{
  FTH_CUDA_TRY(check_alive(comm));
  FTH_CUDA_TRY(fth_cuda_use(comm->ctx));
  FTH_CUDA_TRY(ensure_side_stream(comm));
  FTH_CUDA_TRY(fth_cuda_check(cudaEventRecord(comm->queued, comm->ctx->stream), "cudaEventRecord"));
  FTH_CUDA_TRY(fth_cuda_check(cudaStreamWaitEvent(comm->side, comm->queued, 0), "cudaStreamWaitEvent"));
  FTH_CUDA_TRY(check_nccl(ncclGroupStart(), "ncclGroupStart"));
  FthCudaStatus st = FTH_CUDA_OK;
  for (int i = 0; i < n_bufs && st == FTH_CUDA_OK; i++)
    if (counts[i])
      st = settle(comm, ncclAllReduce(d_bufs[i], d_bufs[i], counts[i], ncclFloat32, ncclSum, comm->comm, comm->side),
                  "ncclAllReduce");
  FthCudaStatus end = settle(comm, ncclGroupEnd(), "ncclGroupEnd");
  return st != FTH_CUDA_OK ? st : end;
}

extern "C" FthCudaStatus fth_cuda_comm_join(FthCudaComm *comm)
{
  if (!comm->side)
    return FTH_CUDA_OK;
  FTH_CUDA_TRY(check_alive(comm));
  FTH_CUDA_TRY(fth_cuda_use(comm->ctx));
  FTH_CUDA_TRY(watch(comm, comm->side, "gradient all-reduce beside the backward pass"));
  FTH_CUDA_TRY(fth_cuda_check(cudaEventRecord(comm->reduced, comm->side), "cudaEventRecord"));
  return fth_cuda_check(cudaStreamWaitEvent(comm->ctx->stream, comm->reduced, 0), "cudaStreamWaitEvent");
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
                                           int n_ranks, int rank, double timeout_s, FthCudaComm **out)
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

extern "C" FthCudaStatus fth_cuda_all_reduce_buckets_local(FthCudaComm *const *comms, int n_comms,
                                                           float *const *const *d_bufs, const size_t *counts,
                                                           int n_bufs, size_t bucket_bytes)
{
  return no_nccl();
}

extern "C" FthCudaStatus fth_cuda_comm_reduce_async(FthCudaComm *comm, float *const *d_bufs, const size_t *counts,
                                                    int n_bufs)
{
  return no_nccl();
}

extern "C" FthCudaStatus fth_cuda_comm_join(FthCudaComm *comm)
{
  return no_nccl();
}

#endif
