/* Reshape (a view), transpose, concat and slice. */
#include "ops-common.h"

#include <string.h>

/* ---- reshape ---------------------------------------------------------------------------------- */

typedef struct {
  FthTensorDesc target;
} ReshapeParams;

static FthStatus reshape_infer(FthNode *node) {
  node->out = ((const ReshapeParams *)node->params)->target;
  return FTH_STATUS_OK;
}

static FthStatus view_forward(const FthKernelArgs *args) {
  (void)args; /* the output shares the input's memory */
  return FTH_STATUS_OK;
}

static FthStatus reshape_backward(FthGraph *g, FthNode *node, FthNode *dy, FthNode **dx) {
  ReshapeParams p = {node->in[0]->out};
  dx[0] = fth_graph_add_node(g, FTH_OP_RESHAPE, &dy, 1, &p, sizeof p);
  return fth_graph_status(g);
}

FthNode *fth_reshape(FthGraph *g, FthNode *x, int ndim, const int64_t *shape) {
  if (!x || (g && g->status != FTH_STATUS_OK))
    return NULL;
  if (ndim < 0 || ndim > FTH_MAX_DIMS)
    return fth_graph_fail(g, FTH_STATUS_INVALID_ARGUMENT, "reshape: rank %d", ndim);
  const FthTensorDesc *in = &x->out;
  int64_t per_batch = fth_desc_numel_per_batch(in), known = 1;
  int infer = -1;
  ReshapeParams p = {{.dtype = in->dtype, .ndim = ndim, .bdim = -1}};
  for (int i = 0; i < ndim; i++) {
    if (shape[i] == -1 && infer < 0) {
      infer = i;
      continue;
    }
    if (shape[i] < 1)
      return fth_graph_fail(g, FTH_STATUS_INVALID_ARGUMENT, "reshape: bad dimension %d", i);
    p.target.shape[i] = shape[i];
    known *= shape[i];
  }
  if (in->bdim >= 0 && infer < 0)
    return fth_graph_fail(g, FTH_STATUS_INVALID_ARGUMENT,
                          "reshape: a batched input needs one -1 entry to hold the batch");
  if (infer >= 0) {
    if (per_batch % known)
      return fth_graph_fail(g, FTH_STATUS_SHAPE_MISMATCH, "reshape: %lld elements per sample do not split by %lld",
                            (long long)per_batch, (long long)known);
    p.target.shape[infer] = per_batch / known;
    if (in->bdim >= 0)
      p.target.bdim = infer;
  } else if (known != per_batch) {
    return fth_graph_fail(g, FTH_STATUS_SHAPE_MISMATCH, "reshape: %lld elements into %lld",
                          (long long)per_batch, (long long)known);
  }
  return fth_graph_add_node(g, FTH_OP_RESHAPE, &x, 1, &p, sizeof p);
}

/* ---- transpose -------------------------------------------------------------------------------- */

typedef struct {
  int perm[FTH_MAX_DIMS];
} TransposeParams;

static FthStatus transpose_infer(FthNode *node) {
  const TransposeParams *p = (const TransposeParams *)node->params;
  const FthTensorDesc *x = &node->in[0]->out;
  FthTensorDesc o = {.dtype = x->dtype, .ndim = x->ndim, .bdim = -1};
  bool seen[FTH_MAX_DIMS] = {false};
  for (int i = 0; i < x->ndim; i++) {
    int a = p->perm[i];
    if (a < 0 || a >= x->ndim || seen[a])
      return fth_error(FTH_STATUS_INVALID_ARGUMENT, "transpose: perm is not a permutation");
    seen[a] = true;
    o.shape[i] = x->shape[a];
    if (a == x->bdim)
      o.bdim = i;
  }
  node->out = o;
  return FTH_STATUS_OK;
}

static FthStatus transpose_forward(const FthKernelArgs *args) {
  const TransposeParams *p = args->params;
  const FthTensor *x = &args->in[0];
  FthTensor src = *x;
  /* a strided view of x in output order, then a strided copy */
  for (int i = 0; i < x->ndim; i++) {
    src.shape[i] = x->shape[p->perm[i]];
    src.strides[i] = x->strides[p->perm[i]];
  }
  return fth_tensor_copy(args->out, &src);
}

static FthStatus transpose_backward(FthGraph *g, FthNode *node, FthNode *dy, FthNode **dx) {
  const TransposeParams *p = (const TransposeParams *)node->params;
  int inv[FTH_MAX_DIMS];
  for (int i = 0; i < node->out.ndim; i++)
    inv[p->perm[i]] = i;
  dx[0] = fth_transpose(g, dy, inv);
  return fth_graph_status(g);
}

FthNode *fth_transpose(FthGraph *g, FthNode *x, const int *perm) {
  if (!x)
    return NULL;
  TransposeParams p = {{0}};
  for (int i = 0; i < x->out.ndim; i++)
    p.perm[i] = perm[i];
  return fth_graph_add_node(g, FTH_OP_TRANSPOSE, &x, 1, &p, sizeof p);
}

/* ---- concat and slice ----------------------------------------------------------------------- */

typedef struct {
  int axis;
} ConcatParams;

static FthStatus concat_infer(FthNode *node) {
  const ConcatParams *p = (const ConcatParams *)node->params;
  const FthTensorDesc *a = &node->in[0]->out;
  if (p->axis < 0 || p->axis >= a->ndim)
    return fth_error(FTH_STATUS_INVALID_ARGUMENT, "concat: axis out of range");
  FthTensorDesc o = *a;
  o.shape[p->axis] = 0;
  for (int i = 0; i < node->n_in; i++) {
    const FthTensorDesc *b = &node->in[i]->out;
    if (b->dtype != a->dtype || b->ndim != a->ndim || b->bdim != a->bdim)
      return fth_error(FTH_STATUS_SHAPE_MISMATCH, "concat: input %d differs in dtype, rank or batch axis", i);
    for (int d = 0; d < a->ndim; d++)
      if (d != p->axis && b->shape[d] != a->shape[d])
        return fth_error(FTH_STATUS_SHAPE_MISMATCH, "concat: input %d differs in dimension %d", i, d);
    o.shape[p->axis] += b->shape[p->axis];
  }
  node->out = o;
  return FTH_STATUS_OK;
}

static FthStatus concat_forward(const FthKernelArgs *args) {
  const ConcatParams *p = args->params;
  const FthTensor *o = args->out;
  size_t es = fth_dtype_size(o->dtype), outer = 1, inner = es;
  for (int d = 0; d < p->axis; d++)
    outer *= (size_t)o->shape[d];
  for (int d = p->axis + 1; d < o->ndim; d++)
    inner *= (size_t)o->shape[d];
  size_t out_row = (size_t)o->shape[p->axis] * inner, off = 0;
  for (int i = 0; i < args->n_in; i++) {
    size_t row = (size_t)args->in[i].shape[p->axis] * inner;
    for (size_t a = 0; a < outer; a++)
      memcpy((char *)o->data + a * out_row + off, (const char *)args->in[i].data + a * row, row);
    off += row;
  }
  return FTH_STATUS_OK;
}

typedef struct {
  int axis;
  int64_t start, end;
  FthTensorDesc source; /* slice_grad: the shape to pad back to */
} SliceParams;

static FthStatus concat_backward(FthGraph *g, FthNode *node, FthNode *dy, FthNode **dx) {
  const ConcatParams *p = (const ConcatParams *)node->params;
  int64_t start = 0;
  for (int i = 0; i < node->n_in; i++) {
    int64_t len = node->in[i]->out.shape[p->axis];
    if (fth_node_requires_grad(node->in[i]))
      dx[i] = fth_slice(g, dy, p->axis, start, start + len);
    start += len;
  }
  return fth_graph_status(g);
}

FthNode *fth_concat(FthGraph *g, int n, FthNode *const *xs, int axis) {
  if (n < 1 || n > FTH_MAX_INPUTS || !xs)
    return fth_graph_fail(g, FTH_STATUS_INVALID_ARGUMENT, "concat: 1 to %d inputs", FTH_MAX_INPUTS);
  if (!xs[0])
    return NULL;
  ConcatParams p = {fth_axis(axis, xs[0]->out.ndim)};
  return fth_graph_add_node(g, FTH_OP_CONCAT, xs, n, &p, sizeof p);
}

static FthStatus slice_infer(FthNode *node) {
  const SliceParams *p = (const SliceParams *)node->params;
  const FthTensorDesc *x = &node->in[0]->out;
  if (node->op == FTH_OP_SLICE_GRAD) {
    node->out = p->source;
    return FTH_STATUS_OK;
  }
  if (p->axis < 0 || p->axis >= x->ndim || p->axis == x->bdim)
    return fth_error(FTH_STATUS_INVALID_ARGUMENT, "slice: bad axis (or the batch axis)");
  if (p->start < 0 || p->end > x->shape[p->axis] || p->start >= p->end)
    return fth_error(FTH_STATUS_INVALID_ARGUMENT, "slice: range %lld..%lld outside 0..%lld",
                     (long long)p->start, (long long)p->end, (long long)x->shape[p->axis]);
  node->out = *x;
  node->out.shape[p->axis] = p->end - p->start;
  return FTH_STATUS_OK;
}

static FthStatus slice_forward(const FthKernelArgs *args) {
  const SliceParams *p = args->params;
  bool grad = args->node->op == FTH_OP_SLICE_GRAD;
  const FthTensor *big = grad ? args->out : &args->in[0];
  size_t es = fth_dtype_size(big->dtype), outer = 1, inner = es;
  for (int d = 0; d < p->axis; d++)
    outer *= (size_t)big->shape[d];
  for (int d = p->axis + 1; d < big->ndim; d++)
    inner *= (size_t)big->shape[d];
  size_t big_row = (size_t)big->shape[p->axis] * inner, row = (size_t)(p->end - p->start) * inner;
  size_t off = (size_t)p->start * inner;
  if (grad)
    memset(args->out->data, 0, outer * big_row);
  for (size_t a = 0; a < outer; a++) {
    if (grad)
      memcpy((char *)args->out->data + a * big_row + off, (const char *)args->in[0].data + a * row, row);
    else
      memcpy((char *)args->out->data + a * row, (const char *)args->in[0].data + a * big_row + off, row);
  }
  return FTH_STATUS_OK;
}

static FthStatus slice_backward(FthGraph *g, FthNode *node, FthNode *dy, FthNode **dx) {
  SliceParams p = *(const SliceParams *)node->params;
  p.source = node->in[0]->out;
  dx[0] = fth_graph_add_node(g, FTH_OP_SLICE_GRAD, &dy, 1, &p, sizeof p);
  return fth_graph_status(g);
}

FthNode *fth_slice(FthGraph *g, FthNode *x, int axis, int64_t start, int64_t end) {
  if (!x)
    return NULL;
  SliceParams p = {fth_axis(axis, x->out.ndim), start, end, {0}};
  return fth_graph_add_node(g, FTH_OP_SLICE, &x, 1, &p, sizeof p);
}

void fth_ops_register_shape(FthOpDef *table) {
  table[FTH_OP_RESHAPE] = (FthOpDef){.name = "reshape", .infer = reshape_infer, .forward = view_forward,
                                     .backward = reshape_backward, .flags = FTH_OPF_VIEW};
  table[FTH_OP_TRANSPOSE] = (FthOpDef){.name = "transpose", .infer = transpose_infer,
                                       .forward = transpose_forward, .backward = transpose_backward};
  table[FTH_OP_CONCAT] = (FthOpDef){.name = "concat", .infer = concat_infer, .forward = concat_forward,
                                    .backward = concat_backward};
  table[FTH_OP_SLICE] = (FthOpDef){.name = "slice", .infer = slice_infer, .forward = slice_forward,
                                   .backward = slice_backward};
  table[FTH_OP_SLICE_GRAD] = (FthOpDef){.name = "slice_grad", .infer = slice_infer, .forward = slice_forward};
}
