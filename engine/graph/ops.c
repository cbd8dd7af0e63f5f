/* The op table: names of every op and the definitions registered by the family files. */
#include "ops-private.h"

#include <pthread.h>

static const char *const op_names[FTH_OP_COUNT] = {
  [FTH_OP_INPUT] = "input",
  [FTH_OP_PARAM] = "param",
  [FTH_OP_FILL] = "fill",
  [FTH_OP_MATMUL] = "matmul",
  [FTH_OP_LINEAR] = "linear",
  [FTH_OP_ADD] = "add",
  [FTH_OP_SUB] = "sub",
  [FTH_OP_MUL] = "mul",
  [FTH_OP_SCALE] = "scale",
  [FTH_OP_SUM_TO] = "sum_to",
  [FTH_OP_BROADCAST_TO] = "broadcast_to",
  [FTH_OP_RELU] = "relu",
  [FTH_OP_GELU] = "gelu",
  [FTH_OP_SILU] = "silu",
  [FTH_OP_SIGMOID] = "sigmoid",
  [FTH_OP_TANH] = "tanh",
  [FTH_OP_RELU_GRAD] = "relu_grad",
  [FTH_OP_GELU_GRAD] = "gelu_grad",
  [FTH_OP_SILU_GRAD] = "silu_grad",
  [FTH_OP_SIGMOID_GRAD] = "sigmoid_grad",
  [FTH_OP_TANH_GRAD] = "tanh_grad",
  [FTH_OP_SOFTMAX] = "softmax",
  [FTH_OP_LOG_SOFTMAX] = "log_softmax",
  [FTH_OP_SOFTMAX_GRAD] = "softmax_grad",
  [FTH_OP_LOG_SOFTMAX_GRAD] = "log_softmax_grad",
  [FTH_OP_CROSS_ENTROPY] = "cross_entropy",
  [FTH_OP_CROSS_ENTROPY_GRAD] = "cross_entropy_grad",
  [FTH_OP_BCE_WITH_LOGITS] = "bce_with_logits",
  [FTH_OP_BCE_WITH_LOGITS_GRAD] = "bce_with_logits_grad",
  [FTH_OP_MSE] = "mse",
  [FTH_OP_MSE_GRAD] = "mse_grad",
  [FTH_OP_SUM] = "sum",
  [FTH_OP_MEAN] = "mean",
  [FTH_OP_RESHAPE] = "reshape",
  [FTH_OP_TRANSPOSE] = "transpose",
  [FTH_OP_CONCAT] = "concat",
  [FTH_OP_SLICE] = "slice",
  [FTH_OP_SLICE_GRAD] = "slice_grad",
  [FTH_OP_CONV1D] = "conv1d",
  [FTH_OP_CONV1D_GRAD_INPUT] = "conv1d_grad_input",
  [FTH_OP_CONV1D_GRAD_WEIGHT] = "conv1d_grad_weight",
  [FTH_OP_CONV2D] = "conv2d",
  [FTH_OP_CONV2D_GRAD_INPUT] = "conv2d_grad_input",
  [FTH_OP_CONV2D_GRAD_WEIGHT] = "conv2d_grad_weight",
  [FTH_OP_MAX_POOL2D] = "max_pool2d",
  [FTH_OP_MAX_POOL2D_GRAD] = "max_pool2d_grad",
  [FTH_OP_AVG_POOL2D] = "avg_pool2d",
  [FTH_OP_AVG_POOL2D_GRAD] = "avg_pool2d_grad",
  [FTH_OP_GLOBAL_AVG_POOL2D] = "global_avg_pool2d",
  [FTH_OP_GLOBAL_AVG_POOL2D_GRAD] = "global_avg_pool2d_grad",
  [FTH_OP_BATCH_NORM] = "batch_norm",
  [FTH_OP_BATCH_NORM_GRAD_INPUT] = "batch_norm_grad_input",
  [FTH_OP_BATCH_NORM_GRAD_GAMMA] = "batch_norm_grad_gamma",
  [FTH_OP_BATCH_NORM_GRAD_BETA] = "batch_norm_grad_beta",
  [FTH_OP_LAYER_NORM] = "layer_norm",
  [FTH_OP_LAYER_NORM_GRAD_INPUT] = "layer_norm_grad_input",
  [FTH_OP_LAYER_NORM_GRAD_GAMMA] = "layer_norm_grad_gamma",
  [FTH_OP_LAYER_NORM_GRAD_BETA] = "layer_norm_grad_beta",
  [FTH_OP_DROPOUT] = "dropout",
  [FTH_OP_DROPOUT_GRAD] = "dropout_grad",
  [FTH_OP_EMBEDDING] = "embedding",
  [FTH_OP_EMBEDDING_GRAD] = "embedding_grad",
  [FTH_OP_ATTENTION] = "attention",
  [FTH_OP_ATTENTION_GRAD_Q] = "attention_grad_q",
  [FTH_OP_ATTENTION_GRAD_K] = "attention_grad_k",
  [FTH_OP_ATTENTION_GRAD_V] = "attention_grad_v",
};

const char *fth_op_name(FthOp op) {
  if ((int)op < 0 || op >= FTH_OP_COUNT || !op_names[op])
    return "unknown";
  return op_names[op];
}

static FthOpDef op_table[FTH_OP_COUNT];
static pthread_once_t op_table_once = PTHREAD_ONCE_INIT;

static void op_table_fill(void) {
  fth_ops_register_leaf(op_table);
  fth_ops_register_linear(op_table);
  fth_ops_register_elementwise(op_table);
  fth_ops_register_activation(op_table);
  fth_ops_register_softmax(op_table);
  fth_ops_register_loss(op_table);
  fth_ops_register_reduce(op_table);
  fth_ops_register_shape(op_table);
  fth_ops_register_conv(op_table);
  fth_ops_register_pool(op_table);
  fth_ops_register_norm(op_table);
  fth_ops_register_dropout(op_table);
  fth_ops_register_embedding(op_table);
  fth_ops_register_attention(op_table);
}

const FthOpDef *fth_op_def(FthOp op) {
  if ((int)op < 0 || op >= FTH_OP_COUNT)
    return NULL;
  pthread_once(&op_table_once, op_table_fill);
  return op_table[op].forward || op_table[op].infer ? &op_table[op] : NULL;
}
