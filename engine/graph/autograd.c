/* Reverse-mode autograd: walks the forward graph from the loss back and lets each op's gradient
 * rule add nodes; gradients of a node used several times are summed with add nodes. */
#include "graph-private.h"
#include "ops-private.h"

#include <math.h>

FthStatus fth_graph_keep_grad(FthGraph *g, FthNode *node) {
  if (!g || !node)
    return fth_error(FTH_STATUS_INVALID_ARGUMENT, "keep_grad: NULL");
  if (g->has_backward)
    return fth_error(FTH_STATUS_BAD_STATE, "keep_grad after fth_graph_backward");
  node->keep_grad = true;
  return FTH_STATUS_OK;
}

FthStatus fth_graph_mark_output(FthGraph *g, FthNode *node) {
  if (!g || !node)
    return fth_error(FTH_STATUS_INVALID_ARGUMENT, "mark_output: NULL");
  if (g->planned)
    return fth_error(FTH_STATUS_BAD_STATE, "mark_output after planning");
  node->is_output = true;
  return FTH_STATUS_OK;
}

FthNode *fth_graph_grad(const FthGraph *g, const FthNode *node) {
  return g && node ? node->grad_node : NULL;
}

FthStatus fth_graph_set_loss_scale(FthGraph *g, float loss_scale) {
  if (!g || !g->loss_seed)
    return fth_error(FTH_STATUS_BAD_STATE, "loss scale: the graph has no backward pass");
  if (!(loss_scale > 0.0f) || !isfinite(loss_scale))
    return fth_error(FTH_STATUS_INVALID_ARGUMENT, "loss scale %g: must be positive and finite", loss_scale);
  ((FthFillParams *)g->loss_seed->params)->value = loss_scale;
  return FTH_STATUS_OK;
}

FthStatus fth_graph_backward(FthGraph *g, FthNode *loss, float loss_scale) {
  if (!g || !loss)
    return fth_error(FTH_STATUS_INVALID_ARGUMENT, "backward: NULL graph or loss");
  if (g->status != FTH_STATUS_OK)
    return fth_error(g->status, "backward: the graph has a build error: %s", fth_graph_error(g));
  if (g->has_backward || g->planned)
    return fth_error(FTH_STATUS_BAD_STATE, "backward: already derived or planned");
  if (loss->out.bdim >= 0 || fth_desc_numel_per_batch(&loss->out) != 1 || loss->out.dtype != FTH_F32)
    return fth_error(FTH_STATUS_SHAPE_MISMATCH, "backward: the loss must be an f32 scalar");

  int n_forward = g->n_nodes;
  for (int i = 0; i < n_forward; i++) {
    FthNode *n = g->nodes[i];
    bool rg = n->kind == FTH_NODE_PARAM || n->keep_grad;
    for (int j = 0; j < n->n_in && !rg; j++)
      rg = n->in[j]->requires_grad;
    n->requires_grad = rg;
  }

  FthNode **grads = fth_calloc((size_t)n_forward, sizeof *grads);
  if (!grads)
    return FTH_STATUS_NO_MEMORY;
  FthFillParams fill = {loss->out, loss_scale};
  FthNode *seed = fth_graph_add_node(g, FTH_OP_FILL, NULL, 0, &fill, sizeof fill);
  FthStatus st = FTH_STATUS_OK;
  if (!seed) {
    st = g->status;
    goto out;
  }
  seed->is_backward = true;
  grads[loss->id] = seed;
  g->loss_seed = seed;

  for (int i = loss->id; i >= 0; i--) {
    FthNode *n = g->nodes[i];
    FthNode *dy = grads[i];
    if (!dy || n->kind != FTH_NODE_OP || !n->requires_grad)
      continue;
    const FthOpDef *def = fth_op_def(n->op);
    if (!def || !def->backward) {
      st = fth_error(FTH_STATUS_UNSUPPORTED, "backward: op %s has no gradient rule", fth_op_name(n->op));
      goto out;
    }
    FthNode *dx[FTH_MAX_INPUTS] = {0};
    int before = g->n_nodes;
    st = def->backward(g, n, dy, dx);
    if (st == FTH_STATUS_OK && g->status != FTH_STATUS_OK)
      st = g->status;
    if (st != FTH_STATUS_OK) {
      fth_error(st, "backward of %s (node %d): %s", fth_op_name(n->op), n->id,
                g->error ? g->error : fth_last_error());
      goto out;
    }
    for (int k = before; k < g->n_nodes; k++)
      g->nodes[k]->is_backward = true;
    for (int j = 0; j < n->n_in; j++) {
      FthNode *in = n->in[j];
      if (!dx[j] || !in->requires_grad)
        continue;
      if (!fth_desc_same_shape(&dx[j]->out, &in->out)) {
        st = fth_error(FTH_STATUS_INTERNAL, "backward of %s: gradient %d has the wrong shape",
                       fth_op_name(n->op), j);
        goto out;
      }
      if (grads[in->id]) {
        FthNode *sum = fth_add(g, grads[in->id], dx[j]);
        if (!sum) {
          st = g->status;
          goto out;
        }
        sum->is_backward = true;
        grads[in->id] = sum;
      } else {
        grads[in->id] = dx[j];
      }
    }
  }
  for (int i = 0; i < n_forward; i++)
    g->nodes[i]->grad_node = g->nodes[i]->requires_grad ? grads[i] : NULL;
  g->loss = loss;
  g->has_backward = true;
out:
  fth_free(grads);
  return st;
}
