/* Op family 'embedding': rows of a table gathered by i32 ids; the gradient scatter-adds dy into
 * a [V, D] table gradient, skipping padding_idx. The scatter is split by vocabulary ranges, so
 * each row is summed by one worker in id order (deterministic, no atomics). */
#include "ops-private.h"

#include <string.h>

typedef struct {
  int32_t padding_idx;
} EmbeddingParams;

static FthStatus embedding_infer(FthNode *node) {
  const FthTensorDesc *ids = &node->in[0]->out, *t = &node->in[1]->out;
  if (ids->dtype != FTH_I32 || ids->ndim < 1 || ids->ndim >= FTH_MAX_DIMS)
    return fth_error(FTH_STATUS_SHAPE_MISMATCH, "embedding: ids must be i32 with 1 to %d dims",
                     FTH_MAX_DIMS - 1);
  if (t->dtype != FTH_F32 || t->ndim != 2 || t->bdim != -1)
    return fth_error(FTH_STATUS_SHAPE_MISMATCH, "embedding: the table must be f32 [V, D]");
  node->out = *ids;
  node->out.dtype = FTH_F32;
  node->out.shape[ids->ndim] = t->shape[1];
  node->out.ndim = ids->ndim + 1;
  node->n_aux = 0;
  return FTH_STATUS_OK;
}

static FthStatus check_ids(const int32_t *ids, size_t n, int64_t V) {
  for (size_t i = 0; i < n; i++)
    if (ids[i] < 0 || ids[i] >= V)
      return fth_error(FTH_STATUS_INVALID_ARGUMENT,
                       "embedding: id %d at position %zu is outside the table's %lld rows",
                       (int)ids[i], i, (long long)V);
  return FTH_STATUS_OK;
}

typedef struct {
  const int32_t *ids;
  const float *src;
  float *dst;
  size_t n, D;
  int32_t padding_idx;
} EmbeddingRun;

static void gather_chunk(void *vctx, size_t b, size_t e, int worker) {
  EmbeddingRun *r = vctx;
  for (size_t i = b; i < e; i++)
    memcpy(r->dst + i * r->D, r->src + (size_t)r->ids[i] * r->D, r->D * sizeof(float));
}

/* Items are table rows [b, e): zero them, then add every dy row whose id falls inside. */
static void scatter_chunk(void *vctx, size_t b, size_t e, int worker) {
  EmbeddingRun *r = vctx;
  memset(r->dst + b * r->D, 0, (e - b) * r->D * sizeof(float));
  for (size_t i = 0; i < r->n; i++) {
    const size_t v = (size_t)r->ids[i];
    if (v < b || v >= e || r->ids[i] == r->padding_idx)
      continue;
    float *row = r->dst + v * r->D;
    const float *g = r->src + i * r->D;
    for (size_t d = 0; d < r->D; d++)
      row[d] += g[d];
  }
}

static FthStatus embedding_forward(const FthKernelArgs *args) {
  EmbeddingParams p;
  memcpy(&p, args->params, sizeof p);
  const bool grad = fth_node_op(args->node) == FTH_OP_EMBEDDING_GRAD;
  const FthTensor *ids = &args->in[grad ? 1 : 0];
  const int64_t V = grad ? args->out->shape[0] : args->in[1].shape[0];
  EmbeddingRun r = {.ids = ids->data, .n = (size_t)fth_tensor_numel(ids), .dst = args->out->data,
                    .padding_idx = p.padding_idx};
  FthStatus st = check_ids(r.ids, r.n, V);
  if (st != FTH_STATUS_OK)
    return st;
  if (grad) {
    r.src = args->in[0].data;
    r.D = (size_t)args->out->shape[1];
    fth_parallel_for((size_t)V, 64, scatter_chunk, &r);
  } else {
    r.src = args->in[1].data;
    r.D = (size_t)args->in[1].shape[1];
    fth_parallel_for(r.n, r.D >= 256 ? 16 : 4096 / (r.D ? r.D : 1), gather_chunk, &r);
  }
  return FTH_STATUS_OK;
}

typedef struct {
  int32_t padding_idx;
  int64_t V, D;
} EmbeddingGradParams;

static FthStatus embedding_grad_infer(FthNode *node) {
  EmbeddingGradParams gp;
  memcpy(&gp, node->params, sizeof gp);
  node->out = (FthTensorDesc){.dtype = FTH_F32, .ndim = 2, .bdim = -1, .shape = {gp.V, gp.D}};
  node->n_aux = 0;
  return FTH_STATUS_OK;
}

static FthStatus embedding_backward_rule(FthGraph *g, FthNode *node, FthNode *dy, FthNode **dx) {
  if (!fth_node_requires_grad(node->in[1]))
    return FTH_STATUS_OK;
  EmbeddingParams p;
  memcpy(&p, node->params, sizeof p);
  /* padding_idx first, so the kernel reads the same leading field for both nodes. */
  EmbeddingGradParams gp = {.padding_idx = p.padding_idx, .V = node->in[1]->out.shape[0],
                            .D = node->in[1]->out.shape[1]};
  FthNode *in[2] = {dy, node->in[0]};
  dx[1] = fth_graph_add_node(g, FTH_OP_EMBEDDING_GRAD, in, 2, &gp, sizeof gp);
  return fth_graph_status(g);
}

FthNode *fth_embedding(FthGraph *g, FthNode *ids, FthNode *table, int32_t padding_idx) {
  EmbeddingParams p = {.padding_idx = padding_idx};
  FthNode *in[2] = {ids, table};
  return fth_graph_add_node(g, FTH_OP_EMBEDDING, in, 2, &p, sizeof p);
}

void fth_ops_register_embedding(FthOpDef *table) {
  table[FTH_OP_EMBEDDING] =
      (FthOpDef){.name = fth_op_name(FTH_OP_EMBEDDING), .infer = embedding_infer,
                 .forward = embedding_forward, .backward = embedding_backward_rule};
  table[FTH_OP_EMBEDDING_GRAD] = (FthOpDef){.name = fth_op_name(FTH_OP_EMBEDDING_GRAD),
                                            .infer = embedding_grad_infer,
                                            .forward = embedding_forward};
}
