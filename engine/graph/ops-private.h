/* Op definitions: how an op family plugs into the graph.
 *
 * HOW A FAMILY FILE PLUGS IN (engine/graph/ops-<family>.c)
 *
 * 1. Define one `static const FthOpDef` per op (forward and backward ops alike) and a function
 *        void fth_ops_register_<family>(FthOpDef *table);
 *    that copies them into the table: `table[FTH_OP_CONV2D] = conv2d_def;`. The function is
 *    declared below and called once (ops.c, fth_op_def()); every FthOp of the enum in
 *    <fathom/graph.h> must end up with a definition (a test checks it).
 *
 * 2. Define the public builders declared in <fathom/graph.h> (fth_conv2d(), ...). A builder
 *    checks its arguments and calls
 *        fth_graph_add_node(g, FTH_OP_CONV2D, inputs, n_inputs, &params, sizeof params);
 *    which copies the params struct into the node (at most FTH_OP_PARAMS_MAX bytes), calls the
 *    op's `infer`, and returns the node (NULL with the graph's error set on failure; NULL inputs
 *    give NULL).
 *
 * 3. `infer(node)`: validate node->in[i]->out (dtype, shape) and fill node->out (and node->aux[k]
 *    with node->n_aux for saved state). Shapes are symbolic in the batch: a desc's `bdim` is the
 *    batch dimension (-1: none) and shape[bdim] holds the batch MULTIPLIER (usually 1), so ops
 *    that keep dimension 0 just copy shape[0] and bdim through (fth_desc_* helpers below). An
 *    aux buffer that does not scale with the batch (batch-norm mean) has bdim = -1. Return
 *    fth_error(FTH_STATUS_SHAPE_MISMATCH, "conv2d: ...") on bad shapes.
 *
 * 4. `forward(args)`: the CPU kernel (FthKernelArgs in <fathom/backend.h>): args->in[i] are the
 *    inputs with concrete shapes at the current batch, args->out the output (contiguous),
 *    args->aux this node's aux outputs, args->in_aux[i] an input node's aux outputs (how a
 *    gradient node reads saved state of the forward node it lists as an input), args->scratch
 *    `scratch_bytes` of private memory, args->ctx the run (training flag, seed, step, batch).
 *    Parallelize with fth_parallel_for(); call the single-threaded primitives of kernels/cpu
 *    inside the chunks. Never allocate: ask for scratch instead. Return FTH_STATUS_OK or an
 *    error via fth_error().
 *
 * 5. `scratch(node, batch, n_threads, &fixed, &per_sample)`: optional; scratch bytes needed =
 *    fixed + per_sample * batch (exact affine in the batch, so the planner can report bytes per
 *    sample). The planner places scratch in the arena, live only while the node runs. When both
 *    parts are nonzero they are two blocks: args->scratch (fixed) and args->scratch_batch.
 *
 * 6. `backward(g, node, dy, dx)`: the gradient rule. dy is the node holding d loss / d output.
 *    For each input i with fth_node_requires_grad(node->in[i]) set dx[i] to a node of the
 *    input's shape holding d loss / d input i (build it with the public builders or
 *    fth_graph_add_node with a *_GRAD op; list `node` itself as an input when the gradient
 *    needs the forward output or its aux). Leave dx[i] NULL when input i gets no gradient.
 *    The driver (autograd.c) sums the gradients of a node used several times. Backward ops
 *    themselves have backward = NULL (no double backward).
 *
 * 7. flags: FTH_OPF_INPLACE: the output may reuse input 0's memory when input 0 dies here
 *    (elementwise ops); FTH_OPF_VIEW: the output IS input 0's memory (reshape); the planner
 *    handles both. FTH_OPF_WRITES_INPUTS: the kernel updates a buffer input (batch norm running
 *    statistics), which keeps the node scheduled.
 */
#pragma once

#include <fathom/backend.h>
#include <fathom/graph.h>

#include "graph-private.h"

typedef struct {
  const char *name;
  FthStatus (*infer)(FthNode *node);
  FthStatus (*forward)(const FthKernelArgs *args);
  FthStatus (*backward)(FthGraph *g, FthNode *node, FthNode *dy, FthNode **dx);
  void (*scratch)(const FthNode *node, int n_threads, size_t *fixed, size_t *per_sample);
  unsigned flags;
} FthOpDef;

enum {
  FTH_OPF_INPLACE = 1u << 0,
  FTH_OPF_VIEW = 1u << 1,
  FTH_OPF_WRITES_INPUTS = 1u << 2,
};

/* The table, filled on first use by the family register functions. NULL for unknown ops. */
const FthOpDef *fth_op_def(FthOp op);

/* Family registration (one per ops-<family>.c). */
void fth_ops_register_leaf(FthOpDef *table);
void fth_ops_register_linear(FthOpDef *table);
void fth_ops_register_elementwise(FthOpDef *table);
void fth_ops_register_activation(FthOpDef *table);
void fth_ops_register_softmax(FthOpDef *table);
void fth_ops_register_loss(FthOpDef *table);
void fth_ops_register_reduce(FthOpDef *table);
void fth_ops_register_shape(FthOpDef *table);
void fth_ops_register_conv(FthOpDef *table);
void fth_ops_register_pool(FthOpDef *table);
void fth_ops_register_norm(FthOpDef *table);
void fth_ops_register_dropout(FthOpDef *table);
void fth_ops_register_embedding(FthOpDef *table);
void fth_ops_register_attention(FthOpDef *table);
