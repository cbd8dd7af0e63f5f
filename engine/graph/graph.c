/* Graph building: nodes, leaves (inputs, parameters, buffers), errors and accessors. */
#include "graph-private.h"
#include "ops-private.h"

#include <fth-kernels-cpu.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

FthGraph *fth_graph_new(uint64_t seed) {
  FthGraph *g = fth_calloc(1, sizeof *g);
  if (!g)
    return NULL;
  g->seed = seed;
  g->status = FTH_STATUS_OK;
  g->backend = fth_backend_cpu();
  return g;
}


void fth_graph_free(FthGraph *g) {
  if (!g)
    return;
  fth_graph_release_plan(g);
  for (int i = 0; i < g->n_nodes; i++) {
    FthNode *n = g->nodes[i];
    fth_free(n->name);
    fth_free(n->value);
    fth_free(n->grad);
    fth_free(n);
  }
  fth_free(g->nodes);
  fth_free(g->params);
  fth_free(g->error);
  fth_free(g);
}

FthStatus fth_graph_status(const FthGraph *g) {
  return g ? g->status : FTH_STATUS_INVALID_ARGUMENT;
}

const char *fth_graph_error(const FthGraph *g) {
  return g && g->error ? g->error : "";
}

static void record_failure(FthGraph *g, FthStatus status) {
  if (g->status != FTH_STATUS_OK)
    return;
  g->status = status;
  g->error = fth_strdup(fth_last_error());
}

FthNode *fth_graph_fail(FthGraph *g, FthStatus status, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fth_error(status, "%s", msg);
  if (g)
    record_failure(g, status);
  return NULL;
}

static FthNode *node_new(FthGraph *g, FthOp op, FthNodeKind kind) {
  if (g->n_nodes == g->cap_nodes) {
    int cap = g->cap_nodes ? g->cap_nodes * 2 : 64;
    FthNode **nodes = fth_realloc(g->nodes, sizeof *nodes * (size_t)g->cap_nodes, sizeof *nodes * (size_t)cap);
    if (!nodes)
      return NULL;
    g->nodes = nodes;
    g->cap_nodes = cap;
  }
  FthNode *n = fth_calloc(1, sizeof *n);
  if (!n)
    return NULL;
  n->id = g->n_nodes;
  n->op = op;
  n->kind = kind;
  g->nodes[g->n_nodes++] = n;
  return n;
}

/* Undo the most recent node_new (a failed infer). */
static void node_drop_last(FthGraph *g) {
  FthNode *n = g->nodes[--g->n_nodes];
  fth_free(n->name);
  fth_free(n);
}

FthNode *fth_graph_add_node(FthGraph *g, FthOp op, FthNode *const *inputs, int n_inputs,
                            const void *params, size_t params_size) {
  if (!g || g->status != FTH_STATUS_OK)
    return NULL;
  if (n_inputs < 0 || n_inputs > FTH_MAX_INPUTS || params_size > FTH_OP_PARAMS_MAX)
    return fth_graph_fail(g, FTH_STATUS_INVALID_ARGUMENT, "%s: bad input count or params", fth_op_name(op));
  for (int i = 0; i < n_inputs; i++)
    if (!inputs[i])
      return NULL; /* an earlier builder failed (its error is recorded) or the caller passed NULL */
  if (g->planned)
    return fth_graph_fail(g, FTH_STATUS_BAD_STATE, "%s: graph already planned", fth_op_name(op));
  const FthOpDef *def = fth_op_def(op);
  if (!def || !def->infer)
    return fth_graph_fail(g, FTH_STATUS_UNSUPPORTED, "op %s has no registered definition", fth_op_name(op));
  FthNode *n = node_new(g, op, FTH_NODE_OP);
  if (!n) {
    record_failure(g, FTH_STATUS_NO_MEMORY);
    return NULL;
  }
  n->n_in = n_inputs;
  for (int i = 0; i < n_inputs; i++)
    n->in[i] = inputs[i];
  if (params_size)
    memcpy(n->params, params, params_size);
  n->params_size = params_size;
  n->out.bdim = -1;
  FthStatus st = def->infer(n);
  if (st != FTH_STATUS_OK) {
    node_drop_last(g);
    record_failure(g, st);
    return NULL;
  }
  return n;
}

FthNode *fth_input(FthGraph *g, const char *name, FthDType dtype, int ndim, const int64_t *shape) {
  if (!g || g->status != FTH_STATUS_OK)
    return NULL;
  if (!name || ndim < 0 || ndim > FTH_MAX_DIMS || (unsigned)dtype >= FTH_DTYPE_COUNT)
    return fth_graph_fail(g, FTH_STATUS_INVALID_ARGUMENT, "input: bad name, rank or dtype");
  FthTensorDesc d = {.dtype = dtype, .ndim = ndim, .bdim = -1};
  for (int i = 0; i < ndim; i++) {
    if (shape[i] == FTH_BATCH && d.bdim < 0) {
      d.bdim = i;
      d.shape[i] = 1;
    } else if (shape[i] < 1) {
      return fth_graph_fail(g, FTH_STATUS_INVALID_ARGUMENT, "input '%s': bad dimension %d", name, i);
    } else {
      d.shape[i] = shape[i];
    }
  }
  FthNode *n = node_new(g, FTH_OP_INPUT, FTH_NODE_INPUT);
  if (!n || !(n->name = fth_strdup(name))) {
    if (n)
      node_drop_last(g);
    record_failure(g, FTH_STATUS_NO_MEMORY);
    return NULL;
  }
  n->out = d;
  return n;
}

static FthStatus init_values(float *v, const int64_t *shape, int ndim, FthInit init, FthRng *rng) {
  size_t n = (size_t)fth_shape_numel(ndim, shape);
  double fan_in = 1, fan_out = ndim > 0 ? (double)shape[0] : 1;
  for (int i = 1; i < ndim; i++)
    fan_in *= (double)shape[i];
  for (int i = 2; i < ndim; i++)
    fan_out *= (double)shape[i];
  if (ndim == 1)
    fan_in = (double)shape[0];
  switch (init.kind) {
  case FTH_INIT_ZEROS:
    memset(v, 0, n * sizeof *v);
    break;
  case FTH_INIT_ONES:
  case FTH_INIT_CONSTANT:
    for (size_t i = 0; i < n; i++)
      v[i] = init.kind == FTH_INIT_ONES ? 1.0f : init.a;
    break;
  case FTH_INIT_UNIFORM:
    fth_rng_uniform(rng, v, n, init.a, init.b);
    break;
  case FTH_INIT_NORMAL:
    fth_rng_normal(rng, v, n, init.a, init.b);
    break;
  case FTH_INIT_KAIMING_UNIFORM:
  case FTH_INIT_KAIMING_NORMAL: {
    double gain = init.a != 0.0f ? init.a : sqrt(2.0);
    if (init.kind == FTH_INIT_KAIMING_UNIFORM) {
      float bound = (float)(gain * sqrt(3.0 / fan_in));
      fth_rng_uniform(rng, v, n, -bound, bound);
    } else {
      fth_rng_normal(rng, v, n, 0.0f, (float)(gain / sqrt(fan_in)));
    }
    break;
  }
  case FTH_INIT_XAVIER_UNIFORM:
  case FTH_INIT_XAVIER_NORMAL: {
    double gain = init.a != 0.0f ? init.a : 1.0;
    if (init.kind == FTH_INIT_XAVIER_UNIFORM) {
      float bound = (float)(gain * sqrt(6.0 / (fan_in + fan_out)));
      fth_rng_uniform(rng, v, n, -bound, bound);
    } else {
      fth_rng_normal(rng, v, n, 0.0f, (float)(gain * sqrt(2.0 / (fan_in + fan_out))));
    }
    break;
  }
  default:
    return fth_error(FTH_STATUS_INVALID_ARGUMENT, "unknown initializer %d", (int)init.kind);
  }
  return FTH_STATUS_OK;
}

static FthNode *param_new(FthGraph *g, const char *name, int ndim, const int64_t *shape,
                          FthInit init, bool trainable) {
  if (!g || g->status != FTH_STATUS_OK)
    return NULL;
  if (!name || ndim < 0 || ndim > FTH_MAX_DIMS)
    return fth_graph_fail(g, FTH_STATUS_INVALID_ARGUMENT, "param: bad name or rank");
  if (fth_graph_find_param(g, name))
    return fth_graph_fail(g, FTH_STATUS_INVALID_ARGUMENT, "param '%s' defined twice", name);
  for (int i = 0; i < ndim; i++)
    if (shape[i] < 1)
      return fth_graph_fail(g, FTH_STATUS_INVALID_ARGUMENT, "param '%s': bad dimension %d", name, i);
  if (g->n_params == g->cap_params) {
    int cap = g->cap_params ? g->cap_params * 2 : 32;
    FthNode **p = fth_realloc(g->params, sizeof *p * (size_t)g->cap_params, sizeof *p * (size_t)cap);
    if (!p) {
      record_failure(g, FTH_STATUS_NO_MEMORY);
      return NULL;
    }
    g->params = p;
    g->cap_params = cap;
  }
  FthNode *n = node_new(g, FTH_OP_PARAM, trainable ? FTH_NODE_PARAM : FTH_NODE_BUFFER);
  if (!n) {
    record_failure(g, FTH_STATUS_NO_MEMORY);
    return NULL;
  }
  n->out = (FthTensorDesc){.dtype = FTH_F32, .ndim = ndim, .bdim = -1};
  for (int i = 0; i < ndim; i++)
    n->out.shape[i] = shape[i];
  size_t count = (size_t)fth_shape_numel(ndim, shape);
  size_t bytes = (count * sizeof(float) + FTH_ALIGNMENT - 1) / FTH_ALIGNMENT * FTH_ALIGNMENT;
  n->name = fth_strdup(name);
  n->value = n->name ? fth_aligned_alloc(FTH_ALIGNMENT, bytes) : NULL;
  n->grad = n->value && trainable ? fth_aligned_alloc(FTH_ALIGNMENT, bytes) : NULL;
  if (!n->value || (trainable && !n->grad)) {
    fth_free(n->value);
    fth_free(n->grad);
    node_drop_last(g);
    record_failure(g, FTH_STATUS_NO_MEMORY);
    return NULL;
  }
  if (n->grad)
    memset(n->grad, 0, bytes);
  FthRng rng;
  fth_rng_init(&rng, g->seed, (uint64_t)g->n_params);
  FthStatus st = init_values(n->value, shape, ndim, init, &rng);
  if (st != FTH_STATUS_OK) {
    fth_free(n->value);
    fth_free(n->grad);
    node_drop_last(g);
    record_failure(g, st);
    return NULL;
  }
  g->params[g->n_params++] = n;
  return n;
}

FthNode *fth_param(FthGraph *g, const char *name, int ndim, const int64_t *shape, FthInit init) {
  return param_new(g, name, ndim, shape, init, true);
}

FthNode *fth_buffer(FthGraph *g, const char *name, int ndim, const int64_t *shape, FthInit init) {
  return param_new(g, name, ndim, shape, init, false);
}

/* ---- accessors ------------------------------------------------------------------------------- */

int fth_graph_n_params(const FthGraph *g) {
  return g ? g->n_params : 0;
}

FthNode *fth_graph_param(const FthGraph *g, int index) {
  return g && index >= 0 && index < g->n_params ? g->params[index] : NULL;
}

FthNode *fth_graph_find_param(const FthGraph *g, const char *name) {
  for (int i = 0; g && name && i < g->n_params; i++)
    if (strcmp(g->params[i]->name, name) == 0)
      return g->params[i];
  return NULL;
}

bool fth_param_is_trainable(const FthNode *param) {
  return param && param->kind == FTH_NODE_PARAM;
}

FthStatus fth_param_grad_tensor(const FthNode *param, FthTensor *out) {
  if (!param || param->kind != FTH_NODE_PARAM || !out)
    return fth_error(FTH_STATUS_INVALID_ARGUMENT, "not a trainable parameter");
  fth_tensor_view(out, FTH_F32, param->out.ndim, param->out.shape, param->grad);
  return FTH_STATUS_OK;
}

int fth_graph_n_nodes(const FthGraph *g) {
  return g ? g->n_nodes : 0;
}

FthNode *fth_graph_node(const FthGraph *g, int index) {
  return g && index >= 0 && index < g->n_nodes ? g->nodes[index] : NULL;
}

FthOp fth_node_op(const FthNode *node) {
  return node->op;
}

int fth_node_id(const FthNode *node) {
  return node->id;
}

const char *fth_node_name(const FthNode *node) {
  return node->name;
}

int fth_node_n_inputs(const FthNode *node) {
  return node->n_in;
}

FthNode *fth_node_input(const FthNode *node, int index) {
  return index >= 0 && index < node->n_in ? node->in[index] : NULL;
}

FthDType fth_node_dtype(const FthNode *node) {
  return node->out.dtype;
}

int fth_node_shape(const FthNode *node, int64_t batch, int64_t *shape) {
  fth_desc_concrete(&node->out, batch, shape);
  return node->out.ndim;
}

const void *fth_node_params(const FthNode *node, size_t *size) {
  if (size)
    *size = node->params_size;
  return node->params;
}

bool fth_node_requires_grad(const FthNode *node) {
  return node && node->requires_grad;
}

/* ---- descs ------------------------------------------------------------------------------------ */

int64_t fth_desc_numel_per_batch(const FthTensorDesc *d) {
  return fth_shape_numel(d->ndim, d->shape);
}

bool fth_desc_same_shape(const FthTensorDesc *a, const FthTensorDesc *b) {
  if (a->ndim != b->ndim || a->bdim != b->bdim)
    return false;
  for (int i = 0; i < a->ndim; i++)
    if (a->shape[i] != b->shape[i])
      return false;
  return true;
}

void fth_desc_concrete(const FthTensorDesc *d, int64_t batch, int64_t *shape) {
  for (int i = 0; i < d->ndim; i++)
    shape[i] = i == d->bdim ? d->shape[i] * batch : d->shape[i];
}

size_t fth_desc_bytes(const FthTensorDesc *d, int64_t batch) {
  size_t n = (size_t)fth_desc_numel_per_batch(d) * fth_dtype_size(d->dtype);
  return d->bdim >= 0 ? n * (size_t)batch : n;
}

int fth_axis(int axis, int ndim) {
  if (axis < 0)
    axis += ndim;
  return axis >= 0 && axis < ndim ? axis : -1;
}

FthStatus fth_graph_set_bf16_matmul(FthGraph *g, bool enable) {
  if (!g)
    return fth_error(FTH_STATUS_INVALID_ARGUMENT, "set_bf16_matmul: NULL graph");
  if (enable && !fth_gemm_bf16_available())
    return fth_error(FTH_STATUS_UNSUPPORTED, "bf16 matmul: this CPU has no AVX512_BF16");
  g->bf16_matmul = enable;
  return FTH_STATUS_OK;
}

bool fth_graph_bf16_matmul(const FthGraph *g) {
  return g && g->bf16_matmul;
}
