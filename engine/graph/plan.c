/* The planner and the executor.
 *
 * Planning: pick the nodes the mode needs, order them (creation order is topological), compute
 * each output's lifetime in schedule positions, let views and in-place ops share their input's
 * memory, then place every remaining tensor (outputs, aux state, scratch) by greedy best-fit
 * over lifetimes, largest first. Tensors that scale with the batch go to a second region whose
 * offsets are in bytes per sample: at batch b that region starts after the fixed one and a
 * tensor at per-sample offset o lies at o * b, so one plan is valid for every batch and the
 * arena is exactly fixed + per_sample * b bytes. */
#include "graph-private.h"
#include "ops-private.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
  int node;
  int born, last;
  size_t size;      /* bytes, or bytes per sample in the batch region */
  int64_t *offset;  /* where the result goes */
} Item;

static size_t round64(size_t n) {
  return (n + FTH_ALIGNMENT - 1) / FTH_ALIGNMENT * FTH_ALIGNMENT;
}

void fth_graph_release_plan(FthGraph *g) {
  if (g->arena && g->backend)
    g->backend->free(g->backend, g->arena);
  g->arena = NULL;
  fth_free(g->schedule);
  fth_free(g->plan);
  fth_free(g->grad_copies);
  g->schedule = NULL;
  g->plan = NULL;
  g->grad_copies = NULL;
  g->n_schedule = 0;
  g->n_grad_copies = 0;
  g->planned = false;
}

static int cmp_item(const void *a, const void *b) {
  const Item *x = a, *y = b;
  if (x->size != y->size)
    return x->size < y->size ? 1 : -1;
  return x->born - y->born;
}

typedef struct {
  int64_t start, end;
} Span;

static int cmp_span(const void *a, const void *b) {
  const Span *x = a, *y = b;
  return x->start < y->start ? -1 : x->start > y->start;
}

/* Greedy best-fit: each item goes into the smallest gap between the already placed items whose
 * lifetimes overlap its own, or on top of them. Returns the region size. */
static FthStatus place_items(Item *items, int n, size_t *region_size) {
  qsort(items, (size_t)n, sizeof *items, cmp_item);
  Span *spans = fth_malloc(sizeof *spans * (size_t)(n ? n : 1));
  if (!spans)
    return FTH_STATUS_NO_MEMORY;
  size_t top = 0;
  for (int i = 0; i < n; i++) {
    int ns = 0;
    for (int j = 0; j < i; j++)
      if (items[j].born <= items[i].last && items[i].born <= items[j].last)
        spans[ns++] = (Span){*items[j].offset, *items[j].offset + (int64_t)items[j].size};
    qsort(spans, (size_t)ns, sizeof *spans, cmp_span);
    int64_t best = -1, best_gap = INT64_MAX, cursor = 0;
    for (int k = 0; k < ns; k++) {
      int64_t gap = spans[k].start - cursor;
      if (gap >= (int64_t)items[i].size && gap < best_gap) {
        best = cursor;
        best_gap = gap;
      }
      if (spans[k].end > cursor)
        cursor = spans[k].end;
    }
    if (best < 0)
      best = cursor;
    *items[i].offset = best;
    if ((size_t)best + items[i].size > top)
      top = (size_t)best + items[i].size;
  }
  fth_free(spans);
  *region_size = top;
  return FTH_STATUS_OK;
}

static bool is_root(const FthGraph *g, const FthNode *n, FthGraphMode mode) {
  if (n->is_output)
    return true;
  if (mode != FTH_MODE_TRAIN)
    return false;
  if (n == g->loss)
    return true;
  for (int i = 0; i < g->n_nodes; i++) {
    const FthNode *f = g->nodes[i];
    if (f->grad_node == n && (f->kind == FTH_NODE_PARAM || f->keep_grad))
      return true;
  }
  return false;
}

static bool add_item(Item **items, int *n, int *cap, Item item) {
  if (*n == *cap) {
    int nc = *cap ? *cap * 2 : 64;
    Item *p = fth_realloc(*items, sizeof **items * (size_t)*cap, sizeof **items * (size_t)nc);
    if (!p)
      return false;
    *items = p;
    *cap = nc;
  }
  (*items)[(*n)++] = item;
  return true;
}

static FthStatus bind_tensors(FthGraph *g);

FthStatus fth_graph_plan(FthGraph *g, FthGraphMode mode, int64_t max_batch) {
  if (!g)
    return fth_error(FTH_STATUS_INVALID_ARGUMENT, "plan: NULL graph");
  if (g->status != FTH_STATUS_OK)
    return fth_error(g->status, "plan: the graph has a build error: %s", fth_graph_error(g));
  if (max_batch < 1)
    return fth_error(FTH_STATUS_INVALID_ARGUMENT, "plan: max_batch %lld < 1", (long long)max_batch);
  if (mode == FTH_MODE_TRAIN && !g->has_backward)
    return fth_error(FTH_STATUS_BAD_STATE, "plan: training needs fth_graph_backward first");
  fth_graph_release_plan(g);

  int nn = g->n_nodes;
  FthStatus st = FTH_STATUS_OK;
  bool *needed = fth_calloc((size_t)nn, sizeof *needed);
  g->plan = fth_calloc((size_t)nn, sizeof *g->plan);
  g->schedule = fth_malloc(sizeof *g->schedule * (size_t)(nn ? nn : 1));
  Item *items = NULL;
  int n_items = 0, cap_items = 0;
  if (!needed || !g->plan || !g->schedule) {
    st = FTH_STATUS_NO_MEMORY;
    goto fail;
  }
  bool any_root = false;
  for (int i = nn - 1; i >= 0; i--) {
    FthNode *n = g->nodes[i];
    if (is_root(g, n, mode))
      needed[i] = any_root = true;
    if (mode == FTH_MODE_INFERENCE && n->is_backward)
      needed[i] = false;
    if (needed[i])
      for (int j = 0; j < n->n_in; j++)
        needed[n->in[j]->id] = true;
  }
  if (!any_root) {
    st = fth_error(FTH_STATUS_BAD_STATE, "plan: nothing to compute (no loss and no marked output)");
    goto fail;
  }

  /* schedule and positions */
  int S = 0;
  for (int i = 0; i < nn; i++) {
    FthNodePlan *p = &g->plan[i];
    FthNode *n = g->nodes[i];
    n->gemm_bf16 = g->bf16_matmul && (n->op == FTH_OP_MATMUL || n->op == FTH_OP_LINEAR);
    p->pos = -1;
    p->buffer = i;
    p->scratch_offset_fixed = p->scratch_offset_batch = -1;
    if (!needed[i])
      continue;
    if (n->kind == FTH_NODE_OP) {
      g->schedule[S++] = i;
      p->pos = S;
    } else if (n->kind == FTH_NODE_INPUT) {
      p->pos = 0;
    }
  }
  g->n_schedule = S;
  for (int i = 0; i < nn; i++)
    g->plan[i].last = g->plan[i].pos;
  for (int s = 0; s < S; s++) {
    FthNode *n = g->nodes[g->schedule[s]];
    for (int j = 0; j < n->n_in; j++)
      if (g->plan[n->in[j]->id].last < s + 1)
        g->plan[n->in[j]->id].last = s + 1;
  }
  for (int i = 0; i < nn; i++)
    if (needed[i] && is_root(g, g->nodes[i], mode))
      g->plan[i].last = S + 1;

  /* parameter gradients written straight into the parameters' storage where possible */
  if (mode == FTH_MODE_TRAIN) {
    g->grad_copies = fth_calloc((size_t)(g->n_params ? g->n_params : 1), sizeof *g->grad_copies);
    if (!g->grad_copies) {
      st = FTH_STATUS_NO_MEMORY;
      goto fail;
    }
    for (int k = 0; k < g->n_params; k++) {
      FthNode *p = g->params[k];
      if (p->kind != FTH_NODE_PARAM)
        continue;
      FthNode *gn = p->grad_node;
      if (!gn) {
        memset(p->grad, 0, sizeof(float) * (size_t)fth_desc_numel_per_batch(&p->out));
        continue;
      }
      const FthOpDef *def = fth_op_def(gn->op);
      if (gn->kind == FTH_NODE_OP && !(def->flags & FTH_OPF_VIEW) && !g->plan[gn->id].external)
        g->plan[gn->id].external = p->grad;
      else
        g->grad_copies[g->n_grad_copies++] = (FthGradCopy){p, gn};
    }
  }

  /* views and in-place ops share memory */
  for (int s = 0; s < S; s++) {
    FthNode *n = g->nodes[g->schedule[s]];
    FthNodePlan *p = &g->plan[n->id];
    unsigned flags = fth_op_def(n->op)->flags;
    if (n->n_in == 0 || p->external)
      continue;
    FthNode *in0 = n->in[0];
    int b = g->plan[in0->id].buffer;
    FthNodePlan *bp = &g->plan[b];
    if (flags & FTH_OPF_VIEW) {
      p->buffer = b;
      if (in0->kind != FTH_NODE_PARAM && in0->kind != FTH_NODE_BUFFER && bp->last < p->last)
        bp->last = p->last;
      continue;
    }
    if (!(flags & FTH_OPF_INPLACE) || in0->kind == FTH_NODE_PARAM || in0->kind == FTH_NODE_BUFFER)
      continue;
    FthNode *owner = g->nodes[b];
    if (owner->kind != FTH_NODE_OP || bp->external || bp->last != s + 1)
      continue;
    if (in0->out.dtype != n->out.dtype || (in0->out.bdim < 0) != (n->out.bdim < 0) ||
        fth_desc_numel_per_batch(&in0->out) != fth_desc_numel_per_batch(&n->out) ||
        (owner->out.bdim < 0) != (n->out.bdim < 0) ||
        fth_desc_bytes(&owner->out, 1) != fth_desc_bytes(&n->out, 1))
      continue;
    bool shared = false;
    for (int j = 1; j < n->n_in; j++)
      shared |= g->plan[n->in[j]->id].buffer == b;
    if (shared)
      continue;
    p->buffer = b;
    bp->last = p->last;
  }

  /* items to place */
  int n_threads = fth_thread_count();
  for (int i = 0; i < nn; i++) {
    FthNode *n = g->nodes[i];
    FthNodePlan *p = &g->plan[i];
    if (p->pos < 0)
      continue;
    bool ok = true;
    if (p->buffer == i && !p->external) {
      p->out_batch = n->out.bdim >= 0;
      ok &= add_item(&items, &n_items, &cap_items,
                     (Item){i, p->pos, p->last, round64(fth_desc_bytes(&n->out, 1)), &p->out_offset});
    }
    for (int k = 0; k < n->n_aux; k++) {
      p->aux_batch[k] = n->aux[k].bdim >= 0;
      ok &= add_item(&items, &n_items, &cap_items,
                     (Item){i, p->pos, p->last > p->pos ? p->last : p->pos,
                            round64(fth_desc_bytes(&n->aux[k], 1)), &p->aux_offset[k]});
    }
    const FthOpDef *def = n->kind == FTH_NODE_OP ? fth_op_def(n->op) : NULL;
    if (def && def->scratch) {
      def->scratch(n, n_threads, &p->scratch_fixed, &p->scratch_per_sample);
      if (p->scratch_fixed)
        ok &= add_item(&items, &n_items, &cap_items,
                       (Item){i, p->pos, p->pos, round64(p->scratch_fixed), &p->scratch_offset_fixed});
      if (p->scratch_per_sample)
        ok &= add_item(&items, &n_items, &cap_items,
                       (Item){i, p->pos, p->pos, round64(p->scratch_per_sample), &p->scratch_offset_batch});
    }
    if (!ok) {
      st = FTH_STATUS_NO_MEMORY;
      goto fail;
    }
  }
  /* split into the two regions: an item is batch-scaled by what it describes */
  int n_fixed = 0;
  for (int i = 0; i < n_items; i++) {
    Item it = items[i];
    FthNodePlan *p = &g->plan[it.node];
    bool batch = it.offset == &p->scratch_offset_batch;
    if (it.offset == &p->out_offset)
      batch = p->out_batch;
    for (int k = 0; k < FTH_MAX_AUX; k++)
      if (it.offset == &p->aux_offset[k])
        batch = p->aux_batch[k];
    if (!batch) {
      items[i] = items[n_fixed];
      items[n_fixed++] = it;
    }
  }
  st = place_items(items, n_fixed, &g->fixed_bytes);
  if (st == FTH_STATUS_OK)
    st = place_items(items + n_fixed, n_items - n_fixed, &g->per_sample_bytes);
  if (st != FTH_STATUS_OK)
    goto fail;

  size_t total = g->fixed_bytes + g->per_sample_bytes * (size_t)max_batch;
  g->arena = g->backend->alloc(g->backend, total ? total : FTH_ALIGNMENT);
  if (!g->arena) {
    st = fth_error(FTH_STATUS_NO_MEMORY, "plan: arena of %zu bytes", total);
    goto fail;
  }
  g->mode = mode;
  g->max_batch = max_batch;
  g->planned = true;
  fth_free(needed);
  fth_free(items);
  return fth_graph_set_batch(g, max_batch);

fail:
  fth_free(needed);
  fth_free(items);
  fth_graph_release_plan(g);
  return st;
}

static void *region_ptr(const FthGraph *g, bool batch, int64_t offset) {
  if (batch)
    return g->arena + g->fixed_bytes + (size_t)offset * (size_t)g->batch;
  return g->arena + offset;
}

static void desc_tensor(FthTensor *t, const FthTensorDesc *d, int64_t batch, void *data) {
  int64_t shape[FTH_MAX_DIMS];
  fth_desc_concrete(d, batch, shape);
  fth_tensor_view(t, d->dtype, d->ndim, shape, data);
}

static FthStatus bind_tensors(FthGraph *g) {
  int nn = g->n_nodes;
  /* owners first (creation order puts an owner before the views of it) */
  for (int i = 0; i < nn; i++) {
    FthNode *n = g->nodes[i];
    FthNodePlan *p = &g->plan[i];
    if (n->kind == FTH_NODE_PARAM || n->kind == FTH_NODE_BUFFER) {
      desc_tensor(&p->out_t, &n->out, 1, n->value);
      continue;
    }
    if (p->pos < 0)
      continue;
    void *data;
    if (p->external)
      data = p->external;
    else if (p->buffer != i)
      data = g->plan[p->buffer].out_t.data;
    else
      data = region_ptr(g, p->out_batch, p->out_offset);
    desc_tensor(&p->out_t, &n->out, g->batch, data);
    for (int k = 0; k < n->n_aux; k++)
      desc_tensor(&p->aux_t[k], &n->aux[k], g->batch, region_ptr(g, p->aux_batch[k], p->aux_offset[k]));
    p->scratch = p->scratch_offset_fixed >= 0 ? region_ptr(g, false, p->scratch_offset_fixed)
                 : p->scratch_offset_batch >= 0 ? region_ptr(g, true, p->scratch_offset_batch)
                                                : NULL;
    p->scratch_batch = p->scratch_offset_fixed >= 0 && p->scratch_offset_batch >= 0
                           ? region_ptr(g, true, p->scratch_offset_batch)
                           : NULL;
  }
  for (int s = 0; s < g->n_schedule; s++) {
    FthNode *n = g->nodes[g->schedule[s]];
    FthNodePlan *p = &g->plan[n->id];
    for (int j = 0; j < n->n_in; j++) {
      FthNodePlan *ip = &g->plan[n->in[j]->id];
      p->in_t[j] = ip->out_t;
      p->in_aux[j] = n->in[j]->n_aux ? ip->aux_t : NULL;
    }
  }
  return FTH_STATUS_OK;
}

FthStatus fth_graph_set_batch(FthGraph *g, int64_t batch) {
  if (!g || !g->planned)
    return fth_error(FTH_STATUS_BAD_STATE, "set_batch: graph not planned");
  if (batch < 1 || batch > g->max_batch)
    return fth_error(FTH_STATUS_INVALID_ARGUMENT, "set_batch: %lld outside 1..%lld", (long long)batch,
                     (long long)g->max_batch);
  g->batch = batch;
  return bind_tensors(g);
}

int64_t fth_graph_batch(const FthGraph *g) {
  return g && g->planned ? g->batch : 0;
}

void fth_graph_set_grad_ready_func(FthGraph *g, FthGradReadyFunc func, void *user_data) {
  if (g) {
    g->grad_ready = func;
    g->grad_ready_data = user_data;
  }
}

/* A gradient written straight into the parameter's storage by its gradient node; the others
 * (copied from a view, or none) are final only at the end of the run. */
static bool grad_in_place(const FthGraph *g, const FthNode *p) {
  return p->grad_node != NULL && g->plan[p->grad_node->id].external == p->grad;
}

void fth_graph_set_step(FthGraph *g, uint64_t step) {
  if (g)
    g->step = step;
}

FthStatus fth_graph_plan_stats(const FthGraph *g, FthPlanStats *stats) {
  if (!g || !stats || !g->planned)
    return fth_error(FTH_STATUS_BAD_STATE, "plan_stats: graph not planned");
  memset(stats, 0, sizeof *stats);
  stats->fixed_bytes = g->fixed_bytes;
  stats->per_sample_bytes = g->per_sample_bytes;
  for (int k = 0; k < g->n_params; k++) {
    size_t b = fth_desc_bytes(&g->params[k]->out, 1);
    stats->param_bytes += b;
    if (g->params[k]->kind == FTH_NODE_PARAM)
      stats->param_grad_bytes += b;
  }
  stats->n_scheduled = g->n_schedule;
  return FTH_STATUS_OK;
}

typedef struct {
  const unsigned char *start, *end;
  int born, last;
  int node, buffer;
  const char *what;
} Placed;

FthStatus fth_graph_check_plan(const FthGraph *g, int64_t batch) {
  if (!g || !g->planned)
    return fth_error(FTH_STATUS_BAD_STATE, "check_plan: graph not planned");
  if (batch < 1 || batch > g->max_batch)
    return fth_error(FTH_STATUS_INVALID_ARGUMENT, "check_plan: bad batch");
  FthGraph view = *g;
  view.batch = batch;
  int cap = g->n_nodes * (2 + FTH_MAX_AUX) + 1, n = 0;
  Placed *pl = fth_malloc(sizeof *pl * (size_t)cap);
  if (!pl)
    return FTH_STATUS_NO_MEMORY;
  const unsigned char *arena_end = g->arena + g->fixed_bytes + g->per_sample_bytes * (size_t)batch;
  for (int i = 0; i < g->n_nodes; i++) {
    const FthNode *nd = g->nodes[i];
    const FthNodePlan *p = &g->plan[i];
    if (p->pos < 0)
      continue;
    if (p->buffer == i && !p->external) {
      const unsigned char *s = region_ptr(&view, p->out_batch, p->out_offset);
      /* a buffer's lifetime ends at the last read of any node sharing it */
      pl[n++] = (Placed){s, s + fth_desc_bytes(&nd->out, batch), p->pos, p->last, i, i, "output"};
    }
    for (int k = 0; k < nd->n_aux; k++) {
      const unsigned char *s = region_ptr(&view, p->aux_batch[k], p->aux_offset[k]);
      pl[n++] = (Placed){s, s + fth_desc_bytes(&nd->aux[k], batch), p->pos,
                         p->last > p->pos ? p->last : p->pos, i, -1, "aux"};
    }
    if (p->scratch_offset_fixed >= 0) {
      const unsigned char *s = region_ptr(&view, false, p->scratch_offset_fixed);
      pl[n++] = (Placed){s, s + p->scratch_fixed, p->pos, p->pos, i, -1, "scratch"};
    }
    if (p->scratch_offset_batch >= 0) {
      const unsigned char *s = region_ptr(&view, true, p->scratch_offset_batch);
      pl[n++] = (Placed){s, s + p->scratch_per_sample * (size_t)batch, p->pos, p->pos, i, -1, "scratch"};
    }
  }
  /* every reader of a shared buffer must read it while it is alive */
  FthStatus st = FTH_STATUS_OK;
  for (int s = 0; s < g->n_schedule && st == FTH_STATUS_OK; s++) {
    const FthNode *nd = g->nodes[g->schedule[s]];
    for (int j = 0; j < nd->n_in; j++) {
      const FthNodePlan *ip = &g->plan[nd->in[j]->id];
      int b = ip->buffer;
      FthNodeKind owner = g->nodes[b]->kind;
      if (owner == FTH_NODE_PARAM || owner == FTH_NODE_BUFFER || g->plan[b].external)
        continue;
      if (g->plan[b].last < s + 1 && g->plan[b].buffer == b)
        st = fth_error(FTH_STATUS_INTERNAL, "plan: node %d reads node %d's memory after it died",
                       nd->id, nd->in[j]->id);
    }
  }
  for (int a = 0; a < n && st == FTH_STATUS_OK; a++) {
    if (pl[a].start < g->arena || pl[a].end > arena_end)
      st = fth_error(FTH_STATUS_INTERNAL, "plan: %s of node %d lies outside the arena", pl[a].what, pl[a].node);
    for (int b = a + 1; b < n && st == FTH_STATUS_OK; b++) {
      bool live_together = pl[a].born <= pl[b].last && pl[b].born <= pl[a].last;
      bool overlap = pl[a].start < pl[b].end && pl[b].start < pl[a].end;
      if (live_together && overlap && pl[a].end > pl[a].start && pl[b].end > pl[b].start)
        st = fth_error(FTH_STATUS_INTERNAL, "plan: %s of node %d (%s) overlaps %s of node %d (%s)",
                       pl[a].what, pl[a].node, fth_op_name(g->nodes[pl[a].node]->op), pl[b].what,
                       pl[b].node, fth_op_name(g->nodes[pl[b].node]->op));
    }
  }
  fth_free(pl);
  return st;
}

FthStatus fth_graph_run(FthGraph *g) {
  if (!g || !g->planned)
    return fth_error(FTH_STATUS_BAD_STATE, "run: graph not planned");
  FthExecContext ctx = {.training = g->mode == FTH_MODE_TRAIN, .seed = g->seed, .step = g->step,
                        .batch = g->batch};
  for (int s = 0; s < g->n_schedule; s++) {
    FthNode *n = g->nodes[g->schedule[s]];
    FthNodePlan *p = &g->plan[n->id];
    FthKernelArgs args = {
      .node = n,
      .params = n->params,
      .n_in = n->n_in,
      .in = p->in_t,
      .in_aux = p->in_aux,
      .out = &p->out_t,
      .n_aux = n->n_aux,
      .aux = p->aux_t,
      .scratch = p->scratch,
      .scratch_bytes = p->scratch_batch ? p->scratch_fixed : p->scratch_fixed + p->scratch_per_sample * (size_t)g->batch,
      .scratch_batch = p->scratch_batch,
      .scratch_batch_bytes = p->scratch_batch ? p->scratch_per_sample * (size_t)g->batch : 0,
      .ctx = &ctx,
    };
    FthStatus st = g->backend->run_node(g->backend, n->op, &args);
    if (st != FTH_STATUS_OK)
      return fth_error(st, "run: node %d (%s): %s", n->id, fth_op_name(n->op), fth_last_error());
    for (int k = 0; g->grad_ready && ctx.training && k < g->n_params; k++)
      if (g->params[k]->kind == FTH_NODE_PARAM && g->params[k]->grad_node == n &&
          grad_in_place(g, g->params[k]))
        g->grad_ready(g->params[k], g->grad_ready_data);
  }
  for (int k = 0; k < g->n_grad_copies; k++) {
    const FthGradCopy *c = &g->grad_copies[k];
    memcpy(c->param->grad, g->plan[c->grad_node->id].out_t.data,
           fth_desc_bytes(&c->param->out, 1));
  }
  for (int k = 0; g->grad_ready && ctx.training && k < g->n_params; k++)
    if (g->params[k]->kind == FTH_NODE_PARAM && !grad_in_place(g, g->params[k]))
      g->grad_ready(g->params[k], g->grad_ready_data);
  g->step++;
  return g->backend->synchronize(g->backend);
}

FthStatus fth_graph_tensor(const FthGraph *g, const FthNode *node, FthTensor *out) {
  if (!g || !node || !out)
    return fth_error(FTH_STATUS_INVALID_ARGUMENT, "graph_tensor: NULL");
  if (node->kind == FTH_NODE_PARAM || node->kind == FTH_NODE_BUFFER) {
    fth_tensor_view(out, FTH_F32, node->out.ndim, node->out.shape, node->value);
    return FTH_STATUS_OK;
  }
  if (!g->planned || g->plan[node->id].pos < 0)
    return fth_error(FTH_STATUS_BAD_STATE, "graph_tensor: node %d is not in the plan", node->id);
  *out = g->plan[node->id].out_t;
  return FTH_STATUS_OK;
}

FthStatus fth_graph_set_input(FthGraph *g, FthNode *input, const void *data, size_t bytes) {
  FthTensor t;
  FthStatus st = fth_graph_tensor(g, input, &t);
  if (st != FTH_STATUS_OK)
    return st;
  if (input->kind != FTH_NODE_INPUT || bytes != fth_tensor_nbytes(&t))
    return fth_error(FTH_STATUS_INVALID_ARGUMENT, "set_input '%s': %zu bytes, expected %zu",
                     input->name ? input->name : "?", bytes, fth_tensor_nbytes(&t));
  return g->backend->copy_in(g->backend, t.data, data, bytes);
}
