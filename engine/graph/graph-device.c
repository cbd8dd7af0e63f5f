/* Runs a planned graph on a backend's memory: one device arena laid out exactly as the planner
 * placed the host arena (same offsets, so the liveness-based reuse carries over), device copies
 * of the parameters and gradients, and a schedule walk that rebases every tensor pointer of the
 * plan onto the device before handing the node to the backend. */
#include "graph-device.h"

#include "graph-private.h"
#include "ops-private.h"

#include <string.h>

struct FthGraphDevice {
  FthGraph *g;
  const FthBackend *be;
  unsigned char *arena;    /* device: fixed + per_sample * max_batch bytes */
  size_t arena_bytes;
  float **value, **grad;   /* device, per graph parameter (creation order) */
  FthTensor *aux;          /* per node: its aux tensors rebased, FTH_MAX_AUX each */
};

static size_t param_bytes(const FthNode *p) {
  return fth_desc_bytes(&p->out, 1);
}

FthStatus fth_graph_device_new(FthGraph *g, const FthBackend *be, FthGraphDevice **out) {
  *out = NULL;
  if (!g || !be || !g->planned)
    return fth_error(FTH_STATUS_BAD_STATE, "graph device: plan the graph first");
  FthGraphDevice *d = fth_calloc(1, sizeof *d);
  if (!d)
    return FTH_STATUS_NO_MEMORY;
  d->g = g;
  d->be = be;
  d->arena_bytes = g->fixed_bytes + g->per_sample_bytes * (size_t)g->max_batch;
  d->arena = be->alloc(be, d->arena_bytes ? d->arena_bytes : FTH_ALIGNMENT);
  d->value = fth_calloc((size_t)g->n_params + 1, sizeof *d->value);
  d->grad = fth_calloc((size_t)g->n_params + 1, sizeof *d->grad);
  d->aux = fth_calloc((size_t)g->n_nodes * FTH_MAX_AUX + 1, sizeof *d->aux);
  FthStatus st = d->arena && d->value && d->grad && d->aux ? FTH_STATUS_OK : FTH_STATUS_NO_MEMORY;
  for (int k = 0; k < g->n_params && st == FTH_STATUS_OK; k++) {
    const FthNode *p = g->params[k];
    d->value[k] = be->alloc(be, param_bytes(p));
    if (!d->value[k] || (p->grad && !(d->grad[k] = be->alloc(be, param_bytes(p)))))
      st = FTH_STATUS_NO_MEMORY;
  }
  if (st == FTH_STATUS_OK)
    st = fth_graph_device_upload_params(d);
  if (st != FTH_STATUS_OK) {
    fth_graph_device_free(d);
    return st == FTH_STATUS_NO_MEMORY ? fth_error(st, "graph device: out of device memory") : st;
  }
  *out = d;
  return FTH_STATUS_OK;
}

FthStatus fth_graph_device_replan(FthGraphDevice *d) {
  FthGraph *g = d->g;
  if (!g->planned)
    return fth_error(FTH_STATUS_BAD_STATE, "graph device: plan the graph first");
  if (d->arena)
    d->be->free(d->be, d->arena);
  d->arena_bytes = g->fixed_bytes + g->per_sample_bytes * (size_t)g->max_batch;
  d->arena = d->be->alloc(d->be, d->arena_bytes ? d->arena_bytes : FTH_ALIGNMENT);
  if (!d->arena) {
    d->arena_bytes = 0;
    return fth_error(FTH_STATUS_NO_MEMORY, "graph device: out of device memory for a %zu-byte arena",
                     g->fixed_bytes + g->per_sample_bytes * (size_t)g->max_batch);
  }
  return FTH_STATUS_OK;
}

void fth_graph_device_free(FthGraphDevice *d) {
  if (!d)
    return;
  const FthBackend *be = d->be;
  for (int k = 0; d->value && k < d->g->n_params; k++) {
    be->free(be, d->value[k]);
    if (d->grad)
      be->free(be, d->grad[k]);
  }
  if (d->arena)
    be->free(be, d->arena);
  fth_free(d->value);
  fth_free(d->grad);
  fth_free(d->aux);
  fth_free(d);
}

const FthBackend *fth_graph_device_backend(const FthGraphDevice *d) {
  return d->be;
}

FthGraph *fth_graph_device_graph(const FthGraphDevice *d) {
  return d->g;
}

static int param_index(const FthGraph *g, const FthNode *node) {
  for (int k = 0; k < g->n_params; k++)
    if (g->params[k] == node)
      return k;
  return -1;
}

/* The device address of a host pointer of the plan: inside the arena, or inside a parameter's
 * value or gradient storage. NULL stays NULL. */
static void *rebase(const FthGraphDevice *d, const void *host) {
  const FthGraph *g = d->g;
  const unsigned char *h = host;
  if (!h)
    return NULL;
  if (h >= g->arena && h < g->arena + d->arena_bytes)
    return d->arena + (h - g->arena);
  for (int k = 0; k < g->n_params; k++) {
    const FthNode *p = g->params[k];
    size_t bytes = param_bytes(p);
    const unsigned char *v = (const unsigned char *)p->value, *gr = (const unsigned char *)p->grad;
    if (v && h >= v && h < v + bytes)
      return (unsigned char *)d->value[k] + (h - v);
    if (gr && h >= gr && h < gr + bytes)
      return (unsigned char *)d->grad[k] + (h - gr);
  }
  return NULL;
}

static FthTensor rebased(const FthGraphDevice *d, const FthTensor *t) {
  FthTensor r = *t;
  r.data = rebase(d, t->data);
  r.owned = false;
  return r;
}

FthStatus fth_graph_device_set_input(FthGraphDevice *d, const FthNode *input, const void *data, size_t bytes) {
  FthTensor t;
  FthStatus st = fth_graph_tensor(d->g, input, &t);
  if (st != FTH_STATUS_OK)
    return st;
  if (input->kind != FTH_NODE_INPUT || bytes != fth_tensor_nbytes(&t))
    return fth_error(FTH_STATUS_INVALID_ARGUMENT, "device set_input '%s': %zu bytes, expected %zu",
                     input->name ? input->name : "?", bytes, fth_tensor_nbytes(&t));
  return d->be->copy_in(d->be, rebase(d, t.data), data, bytes);
}

FthStatus fth_graph_device_run(FthGraphDevice *d) {
  FthGraph *g = d->g;
  if (!g->planned)
    return fth_error(FTH_STATUS_BAD_STATE, "device run: graph not planned");
  FthExecContext ctx = {.training = g->mode == FTH_MODE_TRAIN, .seed = g->seed, .step = g->step,
                        .batch = g->batch};
  FthTensor in[FTH_MAX_INPUTS];
  const FthTensor *in_aux[FTH_MAX_INPUTS];
  for (int s = 0; s < g->n_schedule; s++) {
    const FthNode *n = g->nodes[g->schedule[s]];
    const FthNodePlan *p = &g->plan[n->id];
    for (int k = 0; k < n->n_aux; k++)
      d->aux[(size_t)n->id * FTH_MAX_AUX + k] = rebased(d, &p->aux_t[k]);
  }
  for (int s = 0; s < g->n_schedule; s++) {
    FthNode *n = g->nodes[g->schedule[s]];
    FthNodePlan *p = &g->plan[n->id];
    for (int j = 0; j < n->n_in; j++) {
      in[j] = rebased(d, &p->in_t[j]);
      in_aux[j] = p->in_aux[j] ? &d->aux[(size_t)n->in[j]->id * FTH_MAX_AUX] : NULL;
    }
    FthTensor out = rebased(d, &p->out_t);
    const size_t per_sample = p->scratch_per_sample * (size_t)g->batch;
    FthKernelArgs args = {
      .node = n,
      .params = n->params,
      .n_in = n->n_in,
      .in = in,
      .in_aux = in_aux,
      .out = &out,
      .n_aux = n->n_aux,
      .aux = &d->aux[(size_t)n->id * FTH_MAX_AUX],
      .scratch = rebase(d, p->scratch),
      .scratch_bytes = p->scratch_batch ? p->scratch_fixed : p->scratch_fixed + per_sample,
      .scratch_batch = rebase(d, p->scratch_batch),
      .scratch_batch_bytes = p->scratch_batch ? per_sample : 0,
      .ctx = &ctx,
    };
    FthStatus st = d->be->run_node(d->be, n->op, &args);
    if (st != FTH_STATUS_OK)
      return fth_error(st, "device run: node %d (%s): %s", n->id, fth_op_name(n->op), fth_last_error());
    /* As fth_graph_run: a gradient the node wrote into the parameter's storage is final once
     * queued (fth_graph_set_grad_ready_func); the copied ones after their copies, below. */
    for (int k = 0; g->grad_ready && ctx.training && k < g->n_params; k++) {
      FthNode *param = g->params[k];
      if (param->kind == FTH_NODE_PARAM && param->grad_node == n && p->external == param->grad)
        g->grad_ready(param, g->grad_ready_data);
    }
  }
  for (int k = 0; k < g->n_grad_copies; k++) {
    const FthGradCopy *c = &g->grad_copies[k];
    int pi = param_index(g, c->param);
    FthTensor src = rebased(d, &g->plan[c->grad_node->id].out_t);
    if (pi < 0 || !src.data)
      return fth_error(FTH_STATUS_INTERNAL, "device run: gradient copy of an unknown parameter");
    /* the backend table has no device-to-device copy; a SCALE by 1 is one */
    FthTensor dst = src;
    dst.data = d->grad[pi];
    float one_zero[2] = {1.0f, 0.0f};
    FthKernelArgs args = {.node = c->grad_node, .params = one_zero, .n_in = 1, .in = &src, .out = &dst,
                          .ctx = &ctx};
    FthStatus st = d->be->run_node(d->be, FTH_OP_SCALE, &args);
    if (st != FTH_STATUS_OK)
      return st;
  }
  for (int k = 0; g->grad_ready && ctx.training && k < g->n_params; k++) {
    FthNode *param = g->params[k];
    if (param->kind == FTH_NODE_PARAM &&
        (param->grad_node == NULL || g->plan[param->grad_node->id].external != param->grad))
      g->grad_ready(param, g->grad_ready_data);
  }
  g->step++;
  return d->be->synchronize(d->be);
}

FthStatus fth_graph_device_read(FthGraphDevice *d, const FthNode *node, bool grad, void *host, size_t bytes) {
  const void *src;
  size_t have;
  if (node->kind == FTH_NODE_PARAM || node->kind == FTH_NODE_BUFFER) {
    int k = param_index(d->g, node);
    if (k < 0 || (grad && !d->grad[k]))
      return fth_error(FTH_STATUS_INVALID_ARGUMENT, "device read: not a parameter of this graph");
    src = grad ? d->grad[k] : d->value[k];
    have = param_bytes(node);
  } else {
    FthTensor t;
    FthStatus st = fth_graph_tensor(d->g, node, &t);
    if (st != FTH_STATUS_OK)
      return st;
    src = rebase(d, t.data);
    have = fth_tensor_nbytes(&t);
  }
  if (bytes != have)
    return fth_error(FTH_STATUS_INVALID_ARGUMENT, "device read: %zu bytes, the tensor has %zu", bytes, have);
  return d->be->copy_out(d->be, host, src, bytes);
}

FthStatus fth_graph_device_param(FthGraphDevice *d, const FthNode *param, float **value, float **grad) {
  int k = param_index(d->g, param);
  if (k < 0)
    return fth_error(FTH_STATUS_INVALID_ARGUMENT, "device param: not a parameter of this graph");
  *value = d->value[k];
  if (grad)
    *grad = d->grad[k];
  return FTH_STATUS_OK;
}

FthStatus fth_graph_device_upload_params(FthGraphDevice *d) {
  for (int k = 0; k < d->g->n_params; k++) {
    FthStatus st = d->be->copy_in(d->be, d->value[k], d->g->params[k]->value, param_bytes(d->g->params[k]));
    if (st != FTH_STATUS_OK)
      return st;
  }
  return FTH_STATUS_OK;
}

FthStatus fth_graph_device_download_params(FthGraphDevice *d) {
  for (int k = 0; k < d->g->n_params; k++) {
    FthStatus st = d->be->copy_out(d->be, d->g->params[k]->value, d->value[k], param_bytes(d->g->params[k]));
    if (st != FTH_STATUS_OK)
      return st;
  }
  return FTH_STATUS_OK;
}

FthStatus fth_graph_device_fit(FthGraph *g, const FthBackend *be, FthGraphMode mode, int64_t max_batch,
                               size_t budget_bytes, FthGraphDevice **out, int64_t *batch) {
  *out = NULL;
  *batch = 0;
  if (max_batch < 1)
    return fth_error(FTH_STATUS_INVALID_ARGUMENT, "device fit: max batch %lld", (long long)max_batch);
  int64_t b = max_batch;
  FthStatus st = fth_graph_plan(g, mode, 1);
  if (st != FTH_STATUS_OK)
    return st;
  if (budget_bytes) { /* the plan is affine in the batch: solve for the largest that fits */
    size_t fixed = g->fixed_bytes;
    for (int k = 0; k < g->n_params; k++)
      fixed += param_bytes(g->params[k]) * (g->params[k]->grad ? 2 : 1);
    if (fixed + g->per_sample_bytes > budget_bytes)
      return fth_error(FTH_STATUS_NO_MEMORY, "device fit: %zu bytes at batch 1 exceed the budget of %zu",
                       fixed + g->per_sample_bytes, budget_bytes);
    if (g->per_sample_bytes) {
      int64_t most = (int64_t)((budget_bytes - fixed) / g->per_sample_bytes);
      if (most < b)
        b = most;
    }
  }
  for (;;) {
    st = fth_graph_plan(g, mode, b);
    if (st == FTH_STATUS_OK)
      st = fth_graph_device_new(g, be, out);
    if (st == FTH_STATUS_OK) {
      *batch = b;
      return FTH_STATUS_OK;
    }
    if (st != FTH_STATUS_NO_MEMORY || b == 1)
      return st;
    b /= 2; /* the next try reuses the freed memory: the failed attempt released its allocations */
  }
}
