/* Leaves: inputs and parameters (no kernel work) and FILL (a constant, the loss gradient seed). */
#include "ops-common.h"

static FthStatus leaf_infer(FthNode *node) {
  (void)node;
  return FTH_STATUS_OK;
}

static FthStatus leaf_forward(const FthKernelArgs *args) {
  (void)args;
  return FTH_STATUS_OK;
}

static FthStatus fill_infer(FthNode *node) {
  const FthFillParams *p = (const FthFillParams *)node->params;
  node->out = p->desc;
  return node->out.dtype == FTH_F32 ? FTH_STATUS_OK
                                    : fth_error(FTH_STATUS_UNSUPPORTED, "fill: only f32");
}

static FthStatus fill_forward(const FthKernelArgs *args) {
  const FthFillParams *p = args->params;
  float *y = fth_out_f32(args);
  size_t n = fth_numel(args->out);
  for (size_t i = 0; i < n; i++)
    y[i] = p->value;
  return FTH_STATUS_OK;
}

void fth_ops_register_leaf(FthOpDef *table) {
  table[FTH_OP_INPUT] = (FthOpDef){.name = "input", .infer = leaf_infer, .forward = leaf_forward};
  table[FTH_OP_PARAM] = (FthOpDef){.name = "param", .infer = leaf_infer, .forward = leaf_forward};
  table[FTH_OP_FILL] = (FthOpDef){.name = "fill", .infer = fill_infer, .forward = fill_forward};
}
