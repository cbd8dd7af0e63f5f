/* ReLU, GELU (erf and tanh forms), SiLU, sigmoid, tanh and their gradients. */
#include "ops-common.h"

typedef struct {
  FthOp op;
  const float *a, *b; /* x (or dy and the saved x / y for gradients) */
  float *y;
  bool tanh_form;
} ActJob;

static void act_chunk(void *ctx, size_t begin, size_t end, int worker) {
  (void)worker;
  const ActJob *j = ctx;
  const float *a = j->a + begin, *b = j->b ? j->b + begin : NULL;
  float *y = j->y + begin;
  size_t n = end - begin;
  switch (j->op) {
  case FTH_OP_RELU: fth_k_relu(a, y, n); break;
  case FTH_OP_GELU: fth_k_gelu(a, y, n, j->tanh_form); break;
  case FTH_OP_SILU: fth_k_silu(a, y, n); break;
  case FTH_OP_SIGMOID: fth_k_sigmoid(a, y, n); break;
  case FTH_OP_TANH: fth_k_tanh(a, y, n); break;
  case FTH_OP_RELU_GRAD: fth_k_relu_grad(a, b, y, n); break;
  case FTH_OP_GELU_GRAD: fth_k_gelu_grad(a, b, y, n, j->tanh_form); break;
  case FTH_OP_SILU_GRAD: fth_k_silu_grad(a, b, y, n); break;
  case FTH_OP_SIGMOID_GRAD: fth_k_sigmoid_grad(a, b, y, n); break;
  case FTH_OP_TANH_GRAD: fth_k_tanh_grad(a, b, y, n); break;
  default: break;
  }
}

static FthStatus act_forward(const FthKernelArgs *args) {
  const int *form = args->params;
  ActJob j = {args->node->op, fth_in_f32(args, 0), args->n_in > 1 ? fth_in_f32(args, 1) : NULL,
              fth_out_f32(args), *form == FTH_GELU_TANH};
  fth_parallel_for(fth_numel(args->out), FTH_ELEMENTWISE_GRAIN, act_chunk, &j);
  return FTH_STATUS_OK;
}

static FthStatus act_infer(FthNode *node) {
  for (int i = 0; i < node->n_in; i++) {
    FthStatus st = fth_require_f32(node, i);
    if (st != FTH_STATUS_OK)
      return st;
    if (i > 0 && !fth_desc_same_shape(&node->in[i]->out, &node->in[0]->out))
      return fth_error(FTH_STATUS_SHAPE_MISMATCH, "%s: inputs differ in shape", fth_op_name(node->op));
  }
  fth_desc_like(node, 0);
  return FTH_STATUS_OK;
}

static FthStatus act_backward(FthGraph *g, FthNode *node, FthNode *dy, FthNode **dx) {
  FthOp grad_op;
  bool uses_output = true;
  switch (node->op) {
  case FTH_OP_RELU: grad_op = FTH_OP_RELU_GRAD; break;
  case FTH_OP_SIGMOID: grad_op = FTH_OP_SIGMOID_GRAD; break;
  case FTH_OP_TANH: grad_op = FTH_OP_TANH_GRAD; break;
  case FTH_OP_GELU: grad_op = FTH_OP_GELU_GRAD; uses_output = false; break;
  default: grad_op = FTH_OP_SILU_GRAD; uses_output = false; break;
  }
  FthNode *in[2] = {dy, uses_output ? node : node->in[0]};
  dx[0] = fth_graph_add_node(g, grad_op, in, 2, node->params, node->params_size);
  return fth_graph_status(g);
}

static FthNode *activation(FthGraph *g, FthOp op, FthNode *x, int form) {
  return fth_graph_add_node(g, op, &x, 1, &form, sizeof form);
}

FthNode *fth_relu(FthGraph *g, FthNode *x) {
  return activation(g, FTH_OP_RELU, x, 0);
}

FthNode *fth_gelu(FthGraph *g, FthNode *x, FthGeluForm form) {
  return activation(g, FTH_OP_GELU, x, (int)form);
}

FthNode *fth_silu(FthGraph *g, FthNode *x) {
  return activation(g, FTH_OP_SILU, x, 0);
}

FthNode *fth_sigmoid(FthGraph *g, FthNode *x) {
  return activation(g, FTH_OP_SIGMOID, x, 0);
}

FthNode *fth_tanh(FthGraph *g, FthNode *x) {
  return activation(g, FTH_OP_TANH, x, 0);
}

void fth_ops_register_activation(FthOpDef *table) {
  static const FthOp forward_ops[] = {FTH_OP_RELU, FTH_OP_GELU, FTH_OP_SILU, FTH_OP_SIGMOID, FTH_OP_TANH};
  static const FthOp grad_ops[] = {FTH_OP_RELU_GRAD, FTH_OP_GELU_GRAD, FTH_OP_SILU_GRAD,
                                   FTH_OP_SIGMOID_GRAD, FTH_OP_TANH_GRAD};
  for (int i = 0; i < 5; i++) {
    table[forward_ops[i]] = (FthOpDef){.name = fth_op_name(forward_ops[i]), .infer = act_infer,
                                       .forward = act_forward, .backward = act_backward,
                                       .flags = FTH_OPF_INPLACE};
    table[grad_ops[i]] = (FthOpDef){.name = fth_op_name(grad_ops[i]), .infer = act_infer,
                                    .forward = act_forward, .flags = FTH_OPF_INPLACE};
  }
}
