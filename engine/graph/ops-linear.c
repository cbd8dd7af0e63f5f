/* Matmul (batched, transposes, a shared 2-D right side) and linear with a fused bias + ReLU
 * epilogue. GEMMs go to OpenBLAS with one thread each: rows, column blocks or batch entries are
 * split over our own pool. OpenBLAS's own threads are not used even for big GEMMs: after every
 * call they poll with sched_yield for ~2^28 cycles, taking the core our pool's worker needs, and
 * the row/column split reaches the same GFLOP/s (bench/gemm). */
#include "ops-common.h"

typedef struct {
  bool trans_a, trans_b;
} MatmulParams;

typedef struct {
  FthActivation act;
} LinearParams;

/* Fewest multiply-adds a chunk may carry: about 10 us of one core's work, far above the cost of
 * handing it to a spinning worker (well under a microsecond), so GEMMs below two of these (the
 * MLP's 256x10 layer, batch-1 inference) run on the calling thread and wake nobody. */
#define GEMM_MIN_CHUNK_MACS ((size_t)1 << 19)
/* Columns are split in multiples of one AVX-512 register of floats. */
#define GEMM_COL_BLOCK 16

static bool axis_is_batch(const FthTensorDesc *d, int axis) {
  return d->bdim == axis;
}

static FthStatus matmul_infer(FthNode *node) {
  const MatmulParams *p = (const MatmulParams *)node->params;
  const FthTensorDesc *a = &node->in[0]->out, *b = &node->in[1]->out;
  FthStatus st = fth_require_f32(node, 0);
  if (st == FTH_STATUS_OK)
    st = fth_require_f32(node, 1);
  if (st != FTH_STATUS_OK)
    return st;
  int nd = a->ndim;
  if (nd < 2 || b->ndim < 2 || (b->ndim != 2 && b->ndim != nd))
    return fth_error(FTH_STATUS_SHAPE_MISMATCH, "matmul: ranks %d and %d", a->ndim, b->ndim);
  int am = p->trans_a ? nd - 1 : nd - 2, ak = p->trans_a ? nd - 2 : nd - 1;
  int bk = p->trans_b ? b->ndim - 1 : b->ndim - 2, bn = p->trans_b ? b->ndim - 2 : b->ndim - 1;
  if (a->shape[ak] != b->shape[bk] || axis_is_batch(a, ak) != axis_is_batch(b, bk))
    return fth_error(FTH_STATUS_SHAPE_MISMATCH, "matmul: inner dimensions %lld and %lld differ",
                     (long long)a->shape[ak], (long long)b->shape[bk]);
  if (b->ndim == nd)
    for (int d = 0; d < nd - 2; d++)
      if (a->shape[d] != b->shape[d] || axis_is_batch(a, d) != axis_is_batch(b, d))
        return fth_error(FTH_STATUS_SHAPE_MISMATCH, "matmul: batch dimension %d differs", d);
  if (b->ndim == 2 && b->bdim >= 0 && b->bdim != bk)
    return fth_error(FTH_STATUS_SHAPE_MISMATCH, "matmul: a 2-D right side scales with the batch");
  FthTensorDesc o = {.dtype = FTH_F32, .ndim = nd, .bdim = -1};
  for (int d = 0; d < nd - 2; d++)
    o.shape[d] = a->shape[d];
  o.shape[nd - 2] = a->shape[am];
  o.shape[nd - 1] = b->shape[bn];
  if (a->bdim >= 0 && a->bdim < nd - 2)
    o.bdim = a->bdim;
  if (axis_is_batch(a, am))
    o.bdim = nd - 2;
  if (axis_is_batch(b, bn)) {
    if (o.bdim >= 0)
      return fth_error(FTH_STATUS_SHAPE_MISMATCH, "matmul: result would grow with the batch squared");
    o.bdim = nd - 1;
  }
  node->out = o;
  return FTH_STATUS_OK;
}

typedef enum {
  GEMM_SPLIT_ROWS,    /* chunks are row ranges of one GEMM */
  GEMM_SPLIT_COLS,    /* chunks are GEMM_COL_BLOCK column blocks of one GEMM */
  GEMM_SPLIT_ENTRIES, /* chunks are batch entries */
} GemmSplit;

typedef struct {
  bool ta, tb;
  int m, n, k;
  const float *a, *b;
  float *c;
  size_t a_stride, b_stride, c_stride; /* per batch entry; b_stride 0 for a shared b */
  size_t count;
  GemmSplit split;
  const float *bias;                   /* linear only */
  int relu;
  uint32_t *pa, *pb;                   /* bf16 packs (scratch), NULL for fp32 */
} GemmJob;

/* Bias and ReLU over a rows x cols block of c with row stride ldc, while it is still in cache. */
static void gemm_epilogue(const GemmJob *j, float *c, const float *bias, size_t rows, size_t cols) {
  if (!j->bias && !j->relu)
    return;
  if (cols == (size_t)j->n) {
    fth_k_bias_act(c, bias, rows, cols, j->relu);
    return;
  }
  for (size_t r = 0; r < rows; r++)
    fth_k_bias_act(c + r * (size_t)j->n, bias, 1, cols, j->relu);
}

static void gemm_chunk(void *ctx, size_t begin, size_t end, int worker) {
  (void)worker;
  const GemmJob *j = ctx;
  int lda = j->ta ? j->m : j->k, ldb = j->tb ? j->k : j->n;
  switch (j->split) {
  case GEMM_SPLIT_ROWS: {
    int rows = (int)(end - begin);
    const float *a = j->ta ? j->a + begin : j->a + begin * (size_t)j->k;
    float *c = j->c + begin * (size_t)j->n;
    fth_sgemm(j->ta, j->tb, rows, j->n, j->k, 1.0f, a, lda, j->b, ldb, 0.0f, c, j->n);
    gemm_epilogue(j, c, j->bias, (size_t)rows, (size_t)j->n);
    return;
  }
  case GEMM_SPLIT_COLS: {
    size_t c0 = begin * GEMM_COL_BLOCK, c1 = end * GEMM_COL_BLOCK;
    if (c1 > (size_t)j->n)
      c1 = (size_t)j->n;
    const float *b = j->tb ? j->b + c0 * (size_t)j->k : j->b + c0;
    fth_sgemm(j->ta, j->tb, j->m, (int)(c1 - c0), j->k, 1.0f, j->a, lda, b, ldb, 0.0f, j->c + c0, j->n);
    gemm_epilogue(j, j->c + c0, j->bias ? j->bias + c0 : NULL, (size_t)j->m, c1 - c0);
    return;
  }
  case GEMM_SPLIT_ENTRIES:
    for (size_t e = begin; e < end; e++)
      fth_sgemm(j->ta, j->tb, j->m, j->n, j->k, 1.0f, j->a + e * j->a_stride, lda, j->b + e * j->b_stride,
                ldb, 0.0f, j->c + e * j->c_stride, j->n);
    return;
  }
}

/* Units per chunk: one chunk per thread (every OpenBLAS call packs its whole share of the other
 * operand again, so more chunks cost more packing), but never under GEMM_MIN_CHUNK_MACS. */
static size_t gemm_grain(size_t units, size_t macs_per_unit) {
  size_t min_units = (GEMM_MIN_CHUNK_MACS + macs_per_unit - 1) / (macs_per_unit ? macs_per_unit : 1);
  size_t per_thread = units / (size_t)fth_thread_count();
  return per_thread > min_units ? per_thread : min_units;
}

/* One GEMM over the pool: along the larger of M and N, so each thread packs its own part of the
 * bigger operand (the weights of a linear layer at a small batch) and shares the smaller one. */
static void gemm_one(GemmJob *j) {
  size_t m = (size_t)j->m, n = (size_t)j->n, k = (size_t)j->k;
  if (n > m && n >= 2 * GEMM_COL_BLOCK) {
    size_t blocks = (n + GEMM_COL_BLOCK - 1) / GEMM_COL_BLOCK;
    j->split = GEMM_SPLIT_COLS;
    fth_parallel_for(blocks, gemm_grain(blocks, m * k * GEMM_COL_BLOCK), gemm_chunk, j);
  } else {
    j->split = GEMM_SPLIT_ROWS;
    fth_parallel_for(m, gemm_grain(m, n * k), gemm_chunk, j);
  }
}

/* ---- bf16: A packed once by row ranges, then B packed and multiplied by column blocks -------- */

static void bf16_pack_a_rows(void *ctx, size_t begin, size_t end, int worker) {
  (void)worker;
  const GemmJob *j = ctx;
  int lda = j->ta ? j->m : j->k;
  const float *a = j->ta ? j->a + begin : j->a + begin * (size_t)lda;
  fth_gemm_bf16_pack_a(j->ta, (int)(end - begin), j->k, a, lda,
                       j->pa + begin * (fth_gemm_bf16_pack_a_bytes(1, j->k) / sizeof(uint32_t)));
}

enum { BF16_COL_BLOCK = 32 };

static void bf16_cols(void *ctx, size_t begin, size_t end, int worker) {
  (void)worker;
  const GemmJob *j = ctx;
  int j0 = (int)begin * BF16_COL_BLOCK, j1 = (int)end * BF16_COL_BLOCK;
  if (j1 > j->n)
    j1 = j->n;
  fth_gemm_bf16_pack_b(j->tb, j->k, j->n, j0, j1, j->b, j->tb ? j->k : j->n, j->pb);
  fth_gemm_bf16_packed(j->m, j->n, j->k, j0, j1, j->pa, j->pb, j->c, j->n);
  gemm_epilogue(j, j->c + j0, j->bias ? j->bias + j0 : NULL, (size_t)j->m, (size_t)(j1 - j0));
}

static void gemm_bf16(GemmJob *j) {
  size_t k = (size_t)j->k;
  fth_parallel_for((size_t)j->m, FTH_ELEMENTWISE_GRAIN / k + 1, bf16_pack_a_rows, j);
  size_t blocks = ((size_t)j->n + BF16_COL_BLOCK - 1) / BF16_COL_BLOCK;
  size_t per_block = (size_t)j->m * k * BF16_COL_BLOCK;
  fth_parallel_for(blocks, (GEMM_MIN_CHUNK_MACS + per_block - 1) / per_block, bf16_cols, j);
}

static void gemm_run(GemmJob *j) {
  if (j->k == 0) {
    for (size_t i = 0; i < j->count * (size_t)j->m * (size_t)j->n; i++)
      j->c[i] = 0.0f;
    if (j->bias || j->relu)
      fth_k_bias_act(j->c, j->bias, j->count * (size_t)j->m, (size_t)j->n, j->relu);
    return;
  }
  if (j->pa && j->count == 1) {
    gemm_bf16(j);
    return;
  }
  size_t per_entry = (size_t)j->m * (size_t)j->n * (size_t)j->k;
  if (j->count == 1 || (size_t)fth_thread_count() > j->count) {
    for (size_t e = 0; e < j->count; e++) {
      GemmJob one = *j;
      one.a += e * j->a_stride;
      one.b += e * j->b_stride;
      one.c += e * j->c_stride;
      one.count = 1;
      gemm_one(&one);
    }
    return;
  }
  j->split = GEMM_SPLIT_ENTRIES;
  fth_parallel_for(j->count, (GEMM_MIN_CHUNK_MACS + per_entry - 1) / per_entry, gemm_chunk, j);
}

/* m, n, k and the batch-entry count from concrete shapes of a and the output, folding a shared
 * right side under a row-major a into one tall GEMM. */
static void matmul_dims(const MatmulParams *p, int nd, const int64_t *a_shape, int b_ndim, const int64_t *c_shape,
                        GemmJob *j) {
  j->m = (int)c_shape[nd - 2];
  j->n = (int)c_shape[nd - 1];
  j->k = (int)(p->trans_a ? a_shape[nd - 2] : a_shape[nd - 1]);
  j->count = 1;
  for (int d = 0; d < nd - 2; d++)
    j->count *= (size_t)c_shape[d];
  j->a_stride = (size_t)j->m * (size_t)j->k;
  j->b_stride = b_ndim == 2 ? 0 : (size_t)j->k * (size_t)j->n;
  j->c_stride = (size_t)j->m * (size_t)j->n;
  if (b_ndim == 2 && !p->trans_a && j->count > 1) {
    j->m *= (int)j->count;
    j->count = 1;
  }
}

/* bf16 runs single GEMMs: linear, and matmul with a 2-D right side under a 2-D or row-major a
 * (matmul_dims folds it into one). */
static bool gemm_uses_bf16(const FthNode *node) {
  if (!node->gemm_bf16)
    return false;
  if (node->op == FTH_OP_LINEAR)
    return true;
  const MatmulParams *p = (const MatmulParams *)node->params;
  return node->in[1]->out.ndim == 2 && (node->in[0]->out.ndim == 2 || !p->trans_a);
}

/* ---- bf16 scratch ------------------------------------------------------------------------------
 * The two packs are bounded so that each is linear in the batch with no intercept when it scales
 * (ceil(k / 2) <= k, fth_gemm_bf16_ldpb(n) <= 48 n): each then lies wholly in the fixed or wholly
 * in the per-sample part of the node's scratch. */

static void gemm_dims_at(const FthNode *node, int64_t batch, GemmJob *j) {
  int64_t as[FTH_MAX_DIMS], cs[FTH_MAX_DIMS];
  fth_desc_concrete(&node->in[0]->out, batch, as);
  if (node->op == FTH_OP_LINEAR) {
    int64_t in = node->in[1]->out.shape[1], rows = 1;
    for (int d = 0; d < node->in[0]->out.ndim - 1; d++)
      rows *= as[d];
    *j = (GemmJob){.m = (int)rows, .n = (int)node->in[1]->out.shape[0], .k = (int)in, .count = 1};
    return;
  }
  fth_desc_concrete(&node->out, batch, cs);
  matmul_dims((const MatmulParams *)node->params, node->out.ndim, as, node->in[1]->out.ndim, cs, j);
}

typedef struct {
  size_t a, b;              /* bytes of the A and B packs at the batch */
  bool a_scales, b_scales;  /* which of them grows with the batch */
} Bf16Packs;

static size_t round_up64(size_t n) {
  return (n + FTH_ALIGNMENT - 1) / FTH_ALIGNMENT * FTH_ALIGNMENT;
}

static Bf16Packs bf16_packs(const FthNode *node, int64_t batch) {
  GemmJob j1, j2, j;
  gemm_dims_at(node, 1, &j1);
  gemm_dims_at(node, 2, &j2);
  gemm_dims_at(node, batch, &j);
  bool ms = j1.m != j2.m, ns = j1.n != j2.n, ks = j1.k != j2.k;
  size_t kp = ks ? (size_t)j.k : ((size_t)j.k + 1) / 2;
  size_t ld = ns ? 48 * (size_t)j.n : fth_gemm_bf16_ldpb(j.n);
  return (Bf16Packs){round_up64(sizeof(uint32_t) * (size_t)j.m * kp), round_up64(sizeof(uint32_t) * kp * ld),
                     ms || ks, ks || ns};
}

static void bf16_scratch(const FthNode *node, size_t *fixed, size_t *per_sample) {
  *fixed = *per_sample = 0;
  if (!gemm_uses_bf16(node))
    return;
  Bf16Packs p = bf16_packs(node, 1);
  *(p.a_scales ? per_sample : fixed) += p.a;
  *(p.b_scales ? per_sample : fixed) += p.b;
}

/* Points the job at its packs in the scratch blocks the planner gave this node. */
static FthStatus bf16_bind_scratch(const FthKernelArgs *args, GemmJob *j) {
  if (j->m == 0 || j->n == 0 || j->k == 0)
    return FTH_STATUS_OK; /* nothing to pack: the fp32 path handles empty products */
  Bf16Packs p = bf16_packs(args->node, args->ctx->batch);
  unsigned char *fixed = args->scratch, *batch = args->scratch_batch ? args->scratch_batch : args->scratch;
  size_t fixed_bytes = args->scratch_bytes, batch_bytes = args->scratch_batch ? args->scratch_batch_bytes : args->scratch_bytes;
  if (p.a_scales == p.b_scales) {
    unsigned char *base = p.a_scales ? batch : fixed;
    if ((p.a_scales ? batch_bytes : fixed_bytes) < p.a + p.b || !base)
      return fth_error(FTH_STATUS_INTERNAL, "%s: bf16 scratch too small", fth_op_name(args->node->op));
    j->pa = (uint32_t *)base;
    j->pb = (uint32_t *)(base + p.a);
    return FTH_STATUS_OK;
  }
  if (!fixed || !batch || (p.a_scales ? batch_bytes : fixed_bytes) < p.a ||
      (p.b_scales ? batch_bytes : fixed_bytes) < p.b)
    return fth_error(FTH_STATUS_INTERNAL, "%s: bf16 scratch too small", fth_op_name(args->node->op));
  j->pa = (uint32_t *)(p.a_scales ? batch : fixed);
  j->pb = (uint32_t *)(p.b_scales ? batch : fixed);
  return FTH_STATUS_OK;
}

static FthStatus matmul_forward(const FthKernelArgs *args) {
  const MatmulParams *p = args->params;
  const FthTensor *a = &args->in[0], *b = &args->in[1], *c = args->out;
  GemmJob j = {.ta = p->trans_a, .tb = p->trans_b, .a = a->data, .b = b->data, .c = c->data};
  matmul_dims(p, a->ndim, a->shape, b->ndim, c->shape, &j);
  if (gemm_uses_bf16(args->node)) {
    FthStatus st = bf16_bind_scratch(args, &j);
    if (st != FTH_STATUS_OK)
      return st;
  }
  gemm_run(&j);
  return FTH_STATUS_OK;
}

static void matmul_scratch(const FthNode *node, int n_threads, size_t *fixed, size_t *per_sample) {
  (void)n_threads;
  bf16_scratch(node, fixed, per_sample);
}

/* Flattens every dimension but the last: [..., d] -> [rows, d] (a view). */
static FthNode *flatten_rows(FthGraph *g, FthNode *x) {
  if (!x || x->out.ndim == 2)
    return x;
  int64_t shape[2] = {-1, x->out.shape[x->out.ndim - 1]};
  return fth_reshape(g, x, 2, shape);
}

static FthStatus matmul_backward(FthGraph *g, FthNode *node, FthNode *dy, FthNode **dx) {
  const MatmulParams *p = (const MatmulParams *)node->params;
  FthNode *a = node->in[0], *b = node->in[1];
  bool ta = p->trans_a, tb = p->trans_b;
  if (fth_node_requires_grad(a)) {
    /* C = op(A) op(B): d op(A) = dC op(B)^T */
    if (!ta) {
      dx[0] = fth_matmul(g, dy, b, false, !tb);
    } else if (b->out.ndim == 2 && a->out.ndim > 2) {
      /* a shared b can only be the right factor: dA = (dC op(B)^T)^T per batch entry */
      int perm[FTH_MAX_DIMS], nd = a->out.ndim;
      for (int d = 0; d < nd; d++)
        perm[d] = d;
      perm[nd - 2] = nd - 1;
      perm[nd - 1] = nd - 2;
      dx[0] = fth_transpose(g, fth_matmul(g, dy, b, false, !tb), perm);
    } else {
      dx[0] = fth_matmul(g, b, dy, tb, true);
    }
  }
  if (fth_node_requires_grad(b)) {
    bool shared = b->out.ndim == 2 && a->out.ndim > 2;
    if (shared && !ta) {
      FthNode *a2 = flatten_rows(g, a), *dy2 = flatten_rows(g, dy);
      dx[1] = !tb ? fth_matmul(g, a2, dy2, true, false) : fth_matmul(g, dy2, a2, true, false);
    } else {
      FthNode *d = !tb ? fth_matmul(g, a, dy, !ta, false) : fth_matmul(g, dy, a, true, ta);
      dx[1] = shared ? fth_sum_to(g, d, &b->out) : d;
    }
  }
  return fth_graph_status(g);
}

FthNode *fth_matmul(FthGraph *g, FthNode *a, FthNode *b, bool trans_a, bool trans_b) {
  FthNode *in[2] = {a, b};
  MatmulParams p = {trans_a, trans_b};
  return fth_graph_add_node(g, FTH_OP_MATMUL, in, 2, &p, sizeof p);
}

/* ---- linear ----------------------------------------------------------------------------------- */

static FthStatus linear_infer(FthNode *node) {
  const FthTensorDesc *x = &node->in[0]->out, *w = &node->in[1]->out;
  for (int i = 0; i < node->n_in; i++) {
    FthStatus st = fth_require_f32(node, i);
    if (st != FTH_STATUS_OK)
      return st;
  }
  if (x->ndim < 2 || w->ndim != 2 || w->bdim >= 0 || x->shape[x->ndim - 1] != w->shape[1] ||
      x->bdim == x->ndim - 1)
    return fth_error(FTH_STATUS_SHAPE_MISMATCH, "linear: x [..., %lld] and w [out, in] do not fit",
                     (long long)x->shape[x->ndim - 1]);
  if (node->n_in > 2) {
    const FthTensorDesc *b = &node->in[2]->out;
    if (b->ndim != 1 || b->shape[0] != w->shape[0] || b->bdim >= 0)
      return fth_error(FTH_STATUS_SHAPE_MISMATCH, "linear: bias must be [%lld]", (long long)w->shape[0]);
  }
  node->out = *x;
  node->out.shape[x->ndim - 1] = w->shape[0];
  return FTH_STATUS_OK;
}

static FthStatus linear_forward(const FthKernelArgs *args) {
  const LinearParams *p = args->params;
  const FthTensor *x = &args->in[0], *w = &args->in[1];
  int in = (int)w->shape[1], out = (int)w->shape[0];
  GemmJob j = {.ta = false, .tb = true, .m = (int)(fth_numel(x) / (size_t)(in ? in : 1)), .n = out, .k = in,
               .a = x->data, .b = w->data, .c = args->out->data, .count = 1,
               .bias = args->n_in > 2 ? args->in[2].data : NULL, .relu = p->act == FTH_ACT_RELU};
  if (in == 0)
    j.m = (int)(fth_numel(args->out) / (size_t)(out ? out : 1));
  if (gemm_uses_bf16(args->node)) {
    FthStatus st = bf16_bind_scratch(args, &j);
    if (st != FTH_STATUS_OK)
      return st;
  }
  gemm_run(&j);
  return FTH_STATUS_OK;
}

static void linear_scratch(const FthNode *node, int n_threads, size_t *fixed, size_t *per_sample) {
  (void)n_threads;
  bf16_scratch(node, fixed, per_sample);
}

static FthStatus linear_backward(FthGraph *g, FthNode *node, FthNode *dy, FthNode **dx) {
  const LinearParams *p = (const LinearParams *)node->params;
  FthNode *x = node->in[0], *w = node->in[1];
  FthNode *dz = dy;
  if (p->act == FTH_ACT_RELU) {
    FthNode *in[2] = {dy, node};
    int form = 0;
    dz = fth_graph_add_node(g, FTH_OP_RELU_GRAD, in, 2, &form, sizeof form);
  }
  if (fth_node_requires_grad(x))
    dx[0] = fth_matmul(g, dz, w, false, false);
  if (fth_node_requires_grad(w))
    dx[1] = fth_matmul(g, flatten_rows(g, dz), flatten_rows(g, x), true, false);
  if (node->n_in > 2 && fth_node_requires_grad(node->in[2]))
    dx[2] = fth_sum_to(g, dz, &node->in[2]->out);
  return fth_graph_status(g);
}

FthNode *fth_linear_act(FthGraph *g, FthNode *x, FthNode *w, FthNode *b, FthActivation act) {
  FthNode *in[3] = {x, w, b};
  LinearParams p = {act};
  return fth_graph_add_node(g, FTH_OP_LINEAR, in, b ? 3 : 2, &p, sizeof p);
}

FthNode *fth_linear(FthGraph *g, FthNode *x, FthNode *w, FthNode *b) {
  return fth_linear_act(g, x, w, b, FTH_ACT_NONE);
}

void fth_ops_register_linear(FthOpDef *table) {
  /* our pool splits GEMMs; OpenBLAS's own threads would oversubscribe the cores */
  fth_sgemm_set_threads(1);
  table[FTH_OP_MATMUL] = (FthOpDef){.name = "matmul", .infer = matmul_infer, .forward = matmul_forward,
                                    .backward = matmul_backward, .scratch = matmul_scratch};
  table[FTH_OP_LINEAR] = (FthOpDef){.name = "linear", .infer = linear_infer, .forward = linear_forward,
                                    .backward = linear_backward, .scratch = linear_scratch};
}
