/* Helpers shared by the core op families. */
#pragma once

#include "ops-private.h"

#include <fth-kernels-cpu.h>

/* Elements handed to one thread at least (below it a region costs more than it saves). */
#define FTH_ELEMENTWISE_GRAIN 16384

static inline const float *fth_in_f32(const FthKernelArgs *a, int i) {
  return (const float *)a->in[i].data;
}

static inline float *fth_out_f32(const FthKernelArgs *a) {
  return (float *)a->out->data;
}

static inline size_t fth_numel(const FthTensor *t) {
  return (size_t)fth_tensor_numel(t);
}

/* Copies the input's desc (same shape, same batch dimension) into the output. */
static inline void fth_desc_like(FthNode *node, int input) {
  node->out = node->in[input]->out;
}

/* Checks that input i is f32; records an error naming the op otherwise. */
FthStatus fth_require_f32(const FthNode *node, int input);

/* Builds a SUM_TO node that reduces `x` to `target`'s shape (NULL result: error recorded). */
FthNode *fth_sum_to(FthGraph *g, FthNode *x, const FthTensorDesc *target);

/* Params of BROADCAST_TO: expand dy to `target` along `axis` (FTH_ALL_AXES: from a scalar),
 * dividing by the number of copies when `divide` (the gradient of a mean). */
typedef struct {
  FthTensorDesc target;
  int axis;
  bool divide;
} FthBroadcastParams;

/* Params of CROSS_ENTROPY(_GRAD): which optional inputs follow the logits and targets, in this
 * order: class weights [C], sample weights [N]. */
typedef struct {
  FthCrossEntropyParams p;
  bool class_weights, sample_weights;
} FthCrossEntropyNodeParams;
