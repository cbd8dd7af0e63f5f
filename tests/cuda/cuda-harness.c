/* The CUDA tests' harness: see cuda-harness.h. */
#include "cuda-harness.h"

#include "backend-cuda.h"
#include "graph-private.h"
#include "ops-private.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const FthBackend *harness_cuda_or_skip(void) {
  const char *why = NULL;
  if (fth_cuda_device_count(&why) < 1) {
    printf("1..0 # SKIP no CUDA device answers: %s\n", why ? why : "?");
    exit(77);
  }
  const FthBackend *be = fth_backend_cuda(0);
  if (!be) {
    printf("1..0 # SKIP cuda:0 does not answer: %s\n", fth_last_error());
    exit(77);
  }
  return be;
}

FthCudaContext *harness_cuda_context(void) {
  return fth_backend_cuda_context(harness_cuda_or_skip());
}

uint64_t harness_seed(void) {
  static uint64_t seed;
  if (!seed) {
    const char *env = getenv("FTH_TEST_SEED");
    seed = env ? strtoull(env, NULL, 10) : ((uint64_t)g_random_int() << 32 | g_random_int()) | 1;
    g_test_message("FTH_TEST_SEED=%llu", (unsigned long long)seed);
  }
  return seed;
}

void harness_normal(uint64_t seed, uint64_t stream, float *x, size_t n) {
  FthRng rng;
  fth_rng_init(&rng, seed, stream);
  fth_rng_normal(&rng, x, n, 0.0f, 1.0f);
}

void harness_ints(uint64_t seed, uint64_t stream, int32_t *x, size_t n, int32_t max) {
  FthRng rng;
  fth_rng_init(&rng, seed, stream);
  for (size_t i = 0; i < n; i++)
    x[i] = (int32_t)(fth_rng_u32(&rng) % (uint32_t)max);
}

double harness_excess(const float *got, const float *want, size_t n, double rtol, double atol, size_t *where) {
  double scale = 0.0, worst = -INFINITY;
  for (size_t i = 0; i < n; i++)
    scale = fmax(scale, fabs((double)want[i]));
  *where = 0;
  for (size_t i = 0; i < n; i++) {
    double e = fabs((double)got[i] - (double)want[i]) - rtol * fabs((double)want[i]) - atol * scale;
    if (isnan(got[i]) != isnan(want[i]))
      e = INFINITY;
    if (e > worst) {
      worst = e;
      *where = i;
    }
  }
  return n ? worst : 0.0;
}

typedef struct {
  FthTensor out;
  FthTensor aux[FTH_MAX_AUX];
  bool gemm; /* a GEMM or convolution produced it */
} HostNode;

static bool is_gemm_op(FthOp op) {
  return op == FTH_OP_MATMUL || op == FTH_OP_LINEAR || (op >= FTH_OP_CONV1D && op <= FTH_OP_CONV2D_GRAD_WEIGHT) ||
         (op >= FTH_OP_ATTENTION && op <= FTH_OP_ATTENTION_GRAD_V);
}

static void *dev_copy(FthCudaContext *ctx, const FthTensor *t) {
  size_t bytes = fth_tensor_nbytes(t);
  void *d = fth_cuda_alloc(ctx, bytes ? bytes : 4);
  g_assert_nonnull(d);
  g_assert_cmpint(fth_cuda_copy_to_device(ctx, d, t->data, bytes), ==, FTH_CUDA_OK);
  return d;
}

/* A device buffer of t's shape filled with NaN bits, so an element the kernel never writes
 * shows up as a mismatch. */
static void *dev_poisoned(FthCudaContext *ctx, const FthTensor *t) {
  size_t bytes = fth_tensor_nbytes(t);
  void *d = fth_cuda_alloc(ctx, bytes ? bytes : 4);
  g_assert_nonnull(d);
  if (bytes) {
    unsigned char *nan = g_malloc(bytes);
    memset(nan, 0xff, bytes);
    g_assert_cmpint(fth_cuda_copy_to_device(ctx, d, nan, bytes), ==, FTH_CUDA_OK);
    g_free(nan);
  }
  return d;
}

static long long element_value(const void *data, FthDType dt, size_t i) {
  return dt == FTH_U8 ? (long long)((const uint8_t *)data)[i] : (long long)((const int32_t *)data)[i];
}

static void compare(const FthNode *n, const char *what, const FthTensor *want, const void *d_got,
                    FthCudaContext *ctx, double rtol, double atol) {
  size_t bytes = fth_tensor_nbytes(want), count = (size_t)fth_tensor_numel(want);
  void *got = g_malloc(bytes ? bytes : 4);
  g_assert_cmpint(fth_cuda_copy_to_host(ctx, got, d_got, bytes), ==, FTH_CUDA_OK);
  if (want->dtype == FTH_F32) {
    size_t at;
    double ex = harness_excess(got, want->data, count, rtol, atol, &at);
    if (ex > 0.0)
      g_error("node %d (%s) %s: element %zu is %.9g on CUDA, %.9g on the CPU (rtol %g, atol %g x max)", n->id,
              fth_op_name(n->op), what, at, (double)((float *)got)[at], (double)((float *)want->data)[at], rtol,
              atol);
  } else { /* i32 indices and u8 window positions: exact */
    const size_t size = fth_dtype_size(want->dtype);
    for (size_t i = 0; i < count; i++)
      if (memcmp((const char *)got + i * size, (const char *)want->data + i * size, size) != 0)
        g_error("node %d (%s) %s: element %zu is %lld on CUDA, %lld on the CPU", n->id, fth_op_name(n->op), what,
                i, element_value(got, want->dtype, i), element_value(want->data, want->dtype, i));
  }
  g_free(got);
}

void harness_replay(FthGraph *g, int64_t batch, int32_t i32_max, const HarnessTolerance *tol) {
  const FthBackend *cuda = harness_cuda_or_skip();
  FthCudaContext *ctx = fth_backend_cuda_context(cuda);
  const FthBackend *cpu = fth_backend_cpu();
  g_assert_cmpint(fth_graph_plan(g, FTH_MODE_TRAIN, batch), ==, FTH_STATUS_OK);
  fth_cuda_set_math(ctx, tol->math);
  uint64_t seed = harness_seed();
  HostNode *hn = g_new0(HostNode, g->n_nodes);
  FthExecContext ectx = {.training = true, .seed = g->seed, .step = 3, .batch = batch};

  for (int i = 0; i < g->n_nodes; i++) {
    FthNode *n = g->nodes[i];
    int64_t shape[FTH_MAX_DIMS];
    fth_desc_concrete(&n->out, batch, shape);
    if (n->kind == FTH_NODE_PARAM || n->kind == FTH_NODE_BUFFER) {
      fth_tensor_view(&hn[i].out, FTH_F32, n->out.ndim, shape, n->value);
    } else if (n->kind == FTH_NODE_INPUT) {
      g_assert_cmpint(fth_tensor_init(&hn[i].out, n->out.dtype, n->out.ndim, shape), ==, FTH_STATUS_OK);
      size_t count = (size_t)fth_tensor_numel(&hn[i].out);
      if (n->out.dtype == FTH_I32)
        harness_ints(seed, (uint64_t)i, hn[i].out.data, count, i32_max);
      else
        harness_normal(seed, (uint64_t)i, hn[i].out.data, count);
    }
  }

  int checked = 0;
  for (int s = 0; s < g->n_schedule; s++) {
    FthNode *n = g->nodes[g->schedule[s]];
    const FthOpDef *def = fth_op_def(n->op);
    HostNode *h = &hn[n->id];
    int64_t shape[FTH_MAX_DIMS];
    fth_desc_concrete(&n->out, batch, shape);
    h->gemm = is_gemm_op(n->op);
    if (def->flags & FTH_OPF_VIEW) { /* the output is the input's memory: nothing runs */
      fth_tensor_view(&h->out, n->out.dtype, n->out.ndim, shape, hn[n->in[0]->id].out.data);
      continue;
    }
    g_assert_cmpint(fth_tensor_init(&h->out, n->out.dtype, n->out.ndim, shape), ==, FTH_STATUS_OK);
    for (int k = 0; k < n->n_aux; k++) {
      int64_t as[FTH_MAX_DIMS];
      fth_desc_concrete(&n->aux[k], batch, as);
      g_assert_cmpint(fth_tensor_init(&h->aux[k], n->aux[k].dtype, n->aux[k].ndim, as), ==, FTH_STATUS_OK);
    }
    size_t fixed = 0, per_sample = 0;
    if (def->scratch)
      def->scratch(n, fth_thread_count(), &fixed, &per_sample);
    /* as the planner hands it: one block, or a fixed and a per-sample block when both exist */
    bool split = fixed && per_sample;
    size_t scratch_bytes = split ? fixed : fixed + per_sample * (size_t)batch;
    size_t batch_bytes = split ? per_sample * (size_t)batch : 0;
    void *scratch = scratch_bytes ? fth_aligned_alloc(FTH_ALIGNMENT, scratch_bytes) : NULL;
    void *scratch_batch = batch_bytes ? fth_aligned_alloc(FTH_ALIGNMENT, batch_bytes) : NULL;

    FthTensor in[FTH_MAX_INPUTS], d_in[FTH_MAX_INPUTS], d_aux_in[FTH_MAX_INPUTS][FTH_MAX_AUX];
    const FthTensor *in_aux[FTH_MAX_INPUTS], *d_in_aux[FTH_MAX_INPUTS];
    for (int j = 0; j < n->n_in; j++) {
      const HostNode *src = &hn[n->in[j]->id];
      in[j] = src->out;
      in_aux[j] = n->in[j]->n_aux ? src->aux : NULL;
      d_in[j] = src->out;
      d_in[j].data = dev_copy(ctx, &src->out);
      d_in[j].owned = false;
      for (int k = 0; k < n->in[j]->n_aux; k++) {
        d_aux_in[j][k] = src->aux[k];
        d_aux_in[j][k].data = dev_copy(ctx, &src->aux[k]);
      }
      d_in_aux[j] = n->in[j]->n_aux ? d_aux_in[j] : NULL;
    }
    FthKernelArgs args = {.node = n, .params = n->params, .n_in = n->n_in, .in = in, .in_aux = in_aux,
                          .out = &h->out, .n_aux = n->n_aux, .aux = h->aux, .scratch = scratch,
                          .scratch_bytes = scratch_bytes, .scratch_batch = scratch_batch,
                          .scratch_batch_bytes = batch_bytes, .ctx = &ectx};
    FthStatus st = cpu->run_node(cpu, n->op, &args);
    if (st != FTH_STATUS_OK)
      g_error("CPU node %d (%s): %s", n->id, fth_op_name(n->op), fth_last_error());

    FthTensor d_out = h->out, d_aux[FTH_MAX_AUX];
    d_out.data = dev_poisoned(ctx, &h->out);
    d_out.owned = false;
    for (int k = 0; k < n->n_aux; k++) {
      d_aux[k] = h->aux[k];
      d_aux[k].data = dev_poisoned(ctx, &h->aux[k]);
      d_aux[k].owned = false;
    }
    void *d_scratch = scratch_bytes ? fth_cuda_alloc(ctx, scratch_bytes) : NULL;
    void *d_scratch_batch = batch_bytes ? fth_cuda_alloc(ctx, batch_bytes) : NULL;
    FthKernelArgs dargs = args;
    dargs.in = d_in;
    dargs.in_aux = d_in_aux;
    dargs.out = &d_out;
    dargs.aux = d_aux;
    dargs.scratch = d_scratch;
    dargs.scratch_batch = d_scratch_batch;
    st = cuda->run_node(cuda, n->op, &dargs);
    if (st == FTH_STATUS_OK)
      st = cuda->synchronize(cuda);
    if (st != FTH_STATUS_OK)
      g_error("CUDA node %d (%s): %s", n->id, fth_op_name(n->op), fth_last_error());
    double rtol = h->gemm ? tol->gemm_rtol : tol->rtol, atol = h->gemm ? tol->gemm_atol : tol->atol;
    compare(n, "output", &h->out, d_out.data, ctx, rtol, atol);
    for (int k = 0; k < n->n_aux; k++)
      compare(n, "aux", &h->aux[k], d_aux[k].data, ctx, rtol, atol);
    checked++;

    fth_cuda_free(ctx, d_out.data);
    for (int k = 0; k < n->n_aux; k++)
      fth_cuda_free(ctx, d_aux[k].data);
    fth_cuda_free(ctx, d_scratch);
    fth_cuda_free(ctx, d_scratch_batch);
    for (int j = 0; j < n->n_in; j++) {
      fth_cuda_free(ctx, d_in[j].data);
      for (int k = 0; k < n->in[j]->n_aux; k++)
        fth_cuda_free(ctx, d_aux_in[j][k].data);
    }
    fth_free(scratch);
    fth_free(scratch_batch);
  }
  g_assert_cmpint(checked, >, 0);
  for (int i = 0; i < g->n_nodes; i++) {
    fth_tensor_free(&hn[i].out);
    for (int k = 0; k < FTH_MAX_AUX; k++)
      fth_tensor_free(&hn[i].aux[k]);
  }
  g_free(hn);
  fth_cuda_set_math(ctx, FTH_CUDA_MATH_F32);
}
