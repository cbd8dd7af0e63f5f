/* Op family 'attention': multi-head scaled dot-product attention on q, k, v [N, T, H * Dh] with
 * an optional key mask [N, T] and a causal flag. The softmax probabilities [N, H, T, T] are
 * saved as aux 0. The gradient of q computes dS = P * (dP - rowsum(P dP)) and keeps it as its
 * aux 0, and the gradient of k reads it from there (inputs dy, q and the q-gradient node); when
 * q needs no gradient, the k gradient computes dS itself (inputs dy, q, v and the forward node).
 * Kernel: kernels/cpu/attention.c. */
#include "ops-private.h"

#include "attention.h"

#include <math.h>
#include <string.h>

static FthStatus attention_infer(FthNode *node) {
  FthAttentionParams p;
  memcpy(&p, node->params, sizeof p);
  const FthTensorDesc *q = &node->in[0]->out;
  for (int i = 0; i < 3; i++) {
    const FthTensorDesc *d = &node->in[i]->out;
    if (d->dtype != FTH_F32 || d->ndim != 3 || d->bdim != 0 || !fth_desc_same_shape(d, q))
      return fth_error(FTH_STATUS_SHAPE_MISMATCH,
                       "attention: q, k and v must be f32 [N, T, E] of one shape, batch first");
  }
  if (p.n_heads < 1 || q->shape[2] % p.n_heads != 0)
    return fth_error(FTH_STATUS_SHAPE_MISMATCH, "attention: %d heads do not divide E = %lld",
                     p.n_heads, (long long)q->shape[2]);
  if (node->n_in > 3) {
    const FthTensorDesc *m = &node->in[3]->out;
    if (m->dtype != FTH_F32 || m->ndim != 2 || m->bdim != 0 || m->shape[0] != q->shape[0] ||
        m->shape[1] != q->shape[1])
      return fth_error(FTH_STATUS_SHAPE_MISMATCH, "attention: key_mask must be f32 [N, T]");
  }
  node->out = *q;
  node->n_aux = 1;
  node->aux[0] = (FthTensorDesc){.dtype = FTH_F32, .ndim = 4, .bdim = 0,
                                 .shape = {q->shape[0], p.n_heads, q->shape[1], q->shape[1]}};
  return FTH_STATUS_OK;
}

static FthAttnShape attn_shape(const FthAttentionParams *p, const FthTensor *q) {
  FthAttnShape s = {.batch = (int)q->shape[0], .seq = (int)q->shape[1], .heads = p->n_heads,
                    .head_dim = (int)(q->shape[2] / p->n_heads), .causal = p->causal};
  s.scale = p->scale != 0.0f ? p->scale : 1.0f / sqrtf((float)s.head_dim);
  return s;
}

typedef struct {
  FthAttnShape s;
  const float *q, *k, *v, *mask, *probs, *dout, *ds_in;
  float *out, *probs_out, *ds_out, *dq, *dk, *dv, *scratch;
  size_t per_worker;
} AttnRun;

static void attention_chunk(void *vctx, size_t b, size_t e, int worker) {
  AttnRun *r = vctx;
  if (r->probs_out)
    fth_attention_forward(&r->s, r->q, r->k, r->v, r->mask, r->probs_out, r->out, b, e);
  else
    fth_attention_backward(&r->s, r->q, r->k, r->v, r->probs, r->dout, r->ds_in, r->ds_out, r->dq,
                           r->dk, r->dv, r->scratch ? r->scratch + (size_t)worker * r->per_worker : NULL,
                           b, e);
}

static FthStatus attention_forward(const FthKernelArgs *args) {
  FthAttentionParams p;
  memcpy(&p, args->params, sizeof p);
  const FthOp op = fth_node_op(args->node);
  AttnRun r = {0};
  if (op == FTH_OP_ATTENTION) {
    r.s = attn_shape(&p, &args->in[0]);
    r.q = args->in[0].data;
    r.k = args->in[1].data;
    r.v = args->in[2].data;
    r.mask = args->n_in > 3 ? args->in[3].data : NULL;
    r.out = args->out->data;
    r.probs_out = args->aux[0].data;
  } else {
    /* inputs: dout, then the two of q, k, v this gradient needs, then the forward node; or,
     * for k with dS shared: dout, q, the q-gradient node */
    r.s = attn_shape(&p, &args->in[0]);
    r.dout = args->in[0].data;
    const int fwd = args->n_in - 1;
    if (op == FTH_OP_ATTENTION_GRAD_V) {
      r.probs = args->in_aux[fwd][0].data;
      r.dv = args->out->data;
    } else if (op == FTH_OP_ATTENTION_GRAD_K && args->n_in == 3) {
      r.q = args->in[1].data;
      r.ds_in = args->in_aux[2][0].data;
      r.dk = args->out->data;
    } else {
      r.probs = args->in_aux[fwd][0].data;
      r.v = args->in[2].data;
      if (op == FTH_OP_ATTENTION_GRAD_Q) {
        r.k = args->in[1].data;
        r.dq = args->out->data;
        r.ds_out = args->aux[0].data;
      } else {
        r.q = args->in[1].data;
        r.dk = args->out->data;
      }
      r.per_worker = (fth_attention_backward_scratch_floats(&r.s) + 15) & ~(size_t)15;
      if ((size_t)fth_thread_count() * r.per_worker * sizeof(float) > args->scratch_bytes)
        return fth_error(FTH_STATUS_BAD_STATE, "%s: scratch too small for %d threads",
                         fth_op_name(op), fth_thread_count());
      r.scratch = args->scratch;
    }
  }
  fth_parallel_for((size_t)r.s.batch * r.s.heads, 1, attention_chunk, &r);
  return FTH_STATUS_OK;
}

static void attention_grad_scratch(const FthNode *node, int n_threads, size_t *fixed,
                                   size_t *per_sample) {
  const int64_t T = node->in[0]->out.shape[1];
  const bool computes_ds = node->op == FTH_OP_ATTENTION_GRAD_Q ||
                           (node->op == FTH_OP_ATTENTION_GRAD_K && node->n_in == 4);
  *fixed = computes_ds ? (size_t)n_threads * ((2 * (size_t)T * T + 15) & ~(size_t)15) * sizeof(float)
                       : 0;
  *per_sample = 0;
}

static FthStatus attention_grad_infer(FthNode *node) {
  node->out = node->in[0]->out;
  node->n_aux = 0;
  if (node->op == FTH_OP_ATTENTION_GRAD_Q) {
    /* dS, the shape of the forward's probabilities */
    node->n_aux = 1;
    node->aux[0] = node->in[node->n_in - 1]->aux[0];
  }
  return FTH_STATUS_OK;
}

static FthStatus attention_backward_rule(FthGraph *g, FthNode *node, FthNode *dy, FthNode **dx) {
  FthNode *q = node->in[0], *k = node->in[1], *v = node->in[2];
  if (fth_node_requires_grad(q)) {
    FthNode *in[4] = {dy, k, v, node};
    dx[0] = fth_graph_add_node(g, FTH_OP_ATTENTION_GRAD_Q, in, 4, node->params, node->params_size);
  }
  if (fth_node_requires_grad(k)) {
    FthNode *shared[3] = {dy, q, dx[0]}, *own[4] = {dy, q, v, node};
    dx[1] = dx[0] ? fth_graph_add_node(g, FTH_OP_ATTENTION_GRAD_K, shared, 3, node->params,
                                       node->params_size)
                  : fth_graph_add_node(g, FTH_OP_ATTENTION_GRAD_K, own, 4, node->params,
                                       node->params_size);
  }
  if (fth_node_requires_grad(v)) {
    FthNode *in[2] = {dy, node};
    dx[2] = fth_graph_add_node(g, FTH_OP_ATTENTION_GRAD_V, in, 2, node->params, node->params_size);
  }
  return fth_graph_status(g);
}

FthNode *fth_attention(FthGraph *g, FthNode *q, FthNode *k, FthNode *v, FthNode *key_mask,
                       const FthAttentionParams *p) {
  if (!p)
    return fth_graph_fail(g, FTH_STATUS_INVALID_ARGUMENT, "attention: params are required");
  FthNode *in[4] = {q, k, v, key_mask};
  return fth_graph_add_node(g, FTH_OP_ATTENTION, in, key_mask ? 4 : 3, p, sizeof *p);
}

void fth_ops_register_attention(FthOpDef *table) {
  table[FTH_OP_ATTENTION] =
      (FthOpDef){.name = fth_op_name(FTH_OP_ATTENTION), .infer = attention_infer,
                 .forward = attention_forward, .backward = attention_backward_rule};
  for (FthOp op = FTH_OP_ATTENTION_GRAD_Q; op <= FTH_OP_ATTENTION_GRAD_V; op++)
    table[op] = (FthOpDef){.name = fth_op_name(op), .infer = attention_grad_infer,
                           .forward = attention_forward, .scratch = attention_grad_scratch};
}
