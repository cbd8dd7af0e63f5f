/* Fathom static graphs: building, autograd, memory planning and execution.
 *
 * A graph holds inputs (dimension 0 is the batch), named parameters (trainable weights and
 * non-trainable buffers such as batch-norm running statistics) and op nodes. Builder functions
 * return a node or NULL; NULL inputs propagate (a builder given NULL returns NULL), and the first
 * failure is kept in fth_graph_status(), so a recipe builds the whole graph and checks once.
 *
 * Shapes are symbolic in the batch: a tensor that scales with the batch has a batch dimension
 * (its size is multiplier * batch; usually dimension 0 with multiplier 1). FTH_BATCH in a shape
 * given to fth_input() marks it. At run time the batch is any value from 1 to the planned
 * maximum.
 *
 * Life of a graph: build -> fth_graph_backward(loss) (training) -> fth_graph_plan() ->
 * fth_graph_set_batch() -> copy inputs in -> fth_graph_run() -> read outputs / gradients.
 */
#pragma once

#include <fathom/core.h>
#include <fathom/tensor.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct FthGraph FthGraph;
typedef struct FthNode FthNode;

#define FTH_BATCH (-1)     /* in fth_input() shapes: this dimension is the batch */
#define FTH_ALL_AXES (-100) /* in reductions: reduce every axis to a scalar */

/* Every op of the engine, forward and backward. Backward ops are created only by gradient rules.
 * The numeric values are not stable across versions; export by name (fth_op_name). */
typedef enum {
  /* leaves */
  FTH_OP_INPUT = 0,
  FTH_OP_PARAM,
  FTH_OP_FILL,              /* constant tensor; the gradient seed of the loss */
  /* linear algebra (ops-linear.c) */
  FTH_OP_MATMUL,            /* batched, optional transposes, broadcast of a 2-D right side */
  FTH_OP_LINEAR,            /* y = act(x W^T + b), W [out, in] as in PyTorch */
  /* elementwise with broadcasting (ops-elementwise.c) */
  FTH_OP_ADD,
  FTH_OP_SUB,
  FTH_OP_MUL,
  FTH_OP_SCALE,             /* y = alpha * x + beta */
  FTH_OP_SUM_TO,            /* sum a broadcast tensor back to a smaller shape (grad of add/mul) */
  FTH_OP_BROADCAST_TO,      /* expand to a larger shape (grad of sum/mean) */
  /* activations (ops-activation.c) */
  FTH_OP_RELU,
  FTH_OP_GELU,
  FTH_OP_SILU,
  FTH_OP_SIGMOID,
  FTH_OP_TANH,
  FTH_OP_RELU_GRAD,         /* in: dy, y (relu output)   */
  FTH_OP_GELU_GRAD,         /* in: dy, x                 */
  FTH_OP_SILU_GRAD,         /* in: dy, x                 */
  FTH_OP_SIGMOID_GRAD,      /* in: dy, y                 */
  FTH_OP_TANH_GRAD,         /* in: dy, y                 */
  /* softmax family and losses (ops-softmax.c, ops-loss.c) */
  FTH_OP_SOFTMAX,
  FTH_OP_LOG_SOFTMAX,
  FTH_OP_SOFTMAX_GRAD,      /* in: dy, y */
  FTH_OP_LOG_SOFTMAX_GRAD,  /* in: dy, y */
  FTH_OP_CROSS_ENTROPY,     /* in: logits [N, C, ...], targets i32, [class weights], [sample weights] */
  FTH_OP_CROSS_ENTROPY_GRAD,
  FTH_OP_BCE_WITH_LOGITS,   /* in: logits, targets (same shape, f32), [pos_weight] */
  FTH_OP_BCE_WITH_LOGITS_GRAD,
  FTH_OP_MSE,
  FTH_OP_MSE_GRAD,
  /* reductions (ops-reduce.c) */
  FTH_OP_SUM,
  FTH_OP_MEAN,
  /* shape (ops-shape.c) */
  FTH_OP_RESHAPE,           /* a view: shares its input's memory */
  FTH_OP_TRANSPOSE,         /* permutes axes, materialized contiguous */
  FTH_OP_CONCAT,
  FTH_OP_SLICE,
  FTH_OP_SLICE_GRAD,        /* pads dy with zeros back to the input's shape */
  /* convolution (ops-conv.c, OPS engineer) */
  FTH_OP_CONV1D,
  FTH_OP_CONV1D_GRAD_INPUT,
  FTH_OP_CONV1D_GRAD_WEIGHT,
  FTH_OP_CONV2D,
  FTH_OP_CONV2D_GRAD_INPUT,
  FTH_OP_CONV2D_GRAD_WEIGHT,
  /* pooling (ops-pool.c, OPS engineer) */
  FTH_OP_MAX_POOL2D,        /* aux 0: argmax (i32) for the backward */
  FTH_OP_MAX_POOL2D_GRAD,
  FTH_OP_AVG_POOL2D,
  FTH_OP_AVG_POOL2D_GRAD,
  FTH_OP_GLOBAL_AVG_POOL2D,
  FTH_OP_GLOBAL_AVG_POOL2D_GRAD,
  /* normalization (ops-norm.c, OPS engineer) */
  FTH_OP_BATCH_NORM,        /* aux: saved mean, invstd (training) */
  FTH_OP_BATCH_NORM_GRAD_INPUT,
  FTH_OP_BATCH_NORM_GRAD_GAMMA,
  FTH_OP_BATCH_NORM_GRAD_BETA,
  FTH_OP_LAYER_NORM,        /* aux: saved mean, invstd per row */
  FTH_OP_LAYER_NORM_GRAD_INPUT,
  FTH_OP_LAYER_NORM_GRAD_GAMMA,
  FTH_OP_LAYER_NORM_GRAD_BETA,
  /* dropout (ops-dropout.c, OPS engineer): mask regenerated from the counter-based RNG */
  FTH_OP_DROPOUT,
  FTH_OP_DROPOUT_GRAD,
  /* embedding (ops-embedding.c, OPS engineer) */
  FTH_OP_EMBEDDING,
  FTH_OP_EMBEDDING_GRAD,
  /* attention (ops-attention.c, OPS engineer) */
  FTH_OP_ATTENTION,         /* aux: saved softmax probabilities or row statistics */
  FTH_OP_ATTENTION_GRAD_Q,
  FTH_OP_ATTENTION_GRAD_K,
  FTH_OP_ATTENTION_GRAD_V,
  FTH_OP_COUNT,
} FthOp;

const char *fth_op_name(FthOp op);

typedef enum {
  FTH_ACT_NONE = 0,
  FTH_ACT_RELU,
} FthActivation; /* fused epilogues of linear (and conv) */

typedef enum {
  FTH_GELU_ERF = 0,
  FTH_GELU_TANH,
} FthGeluForm;

/* ---- Graph lifetime -------------------------------------------------------------------------- */

/* `seed` drives parameter initialization (parameter k uses RNG stream k) and dropout. */
FthGraph *fth_graph_new(uint64_t seed);
void fth_graph_free(FthGraph *g);
FthStatus fth_graph_status(const FthGraph *g);  /* first build error, FTH_STATUS_OK if none */
const char *fth_graph_error(const FthGraph *g); /* its message */

/* ---- Leaves ---------------------------------------------------------------------------------- */

FthNode *fth_input(FthGraph *g, const char *name, FthDType dtype, int ndim, const int64_t *shape);

typedef enum {
  FTH_INIT_ZEROS = 0,
  FTH_INIT_ONES,
  FTH_INIT_CONSTANT,        /* a */
  FTH_INIT_UNIFORM,         /* U(a, b) */
  FTH_INIT_NORMAL,          /* N(a, b^2) */
  FTH_INIT_KAIMING_UNIFORM, /* U(-bound, bound), bound = gain * sqrt(3 / fan_in), gain a (0: sqrt 2) */
  FTH_INIT_KAIMING_NORMAL,  /* N(0, gain^2 / fan_in), gain a (0: sqrt 2) */
  FTH_INIT_XAVIER_UNIFORM,  /* bound = gain * sqrt(6 / (fan_in + fan_out)), gain a (0: 1) */
  FTH_INIT_XAVIER_NORMAL,
} FthInitKind;

/* fan_in = prod(shape[1:]), fan_out = shape[0] * prod(shape[2:]) (PyTorch's convention for
 * weights laid out [out, in, k...]). */
typedef struct {
  FthInitKind kind;
  float a, b;
} FthInit;

/* A trainable f32 parameter, initialized at once; its values and gradient live outside the
 * activation arena. Names are unique within a graph (the checkpoint keys). */
FthNode *fth_param(FthGraph *g, const char *name, int ndim, const int64_t *shape, FthInit init);
/* A non-trainable f32 tensor saved with the parameters (batch-norm running statistics). */
FthNode *fth_buffer(FthGraph *g, const char *name, int ndim, const int64_t *shape, FthInit init);

/* ---- Ops of the core (engine/graph/ops-*.c) --------------------------------------------------- */

/* a [..., M, K] (or [..., K, M] with trans_a) times b [..., K, N] (or [..., N, K]); batch
 * dimensions broadcast, a 2-D b is shared by every batch entry. */
FthNode *fth_matmul(FthGraph *g, FthNode *a, FthNode *b, bool trans_a, bool trans_b);
/* x [..., in], w [out, in], b [out] or NULL -> [..., out]. */
FthNode *fth_linear(FthGraph *g, FthNode *x, FthNode *w, FthNode *b);
FthNode *fth_linear_act(FthGraph *g, FthNode *x, FthNode *w, FthNode *b, FthActivation act);

/* NumPy broadcasting (shapes aligned at the right). */
FthNode *fth_add(FthGraph *g, FthNode *a, FthNode *b);
FthNode *fth_sub(FthGraph *g, FthNode *a, FthNode *b);
FthNode *fth_mul(FthGraph *g, FthNode *a, FthNode *b);
FthNode *fth_scale(FthGraph *g, FthNode *x, float alpha, float beta); /* alpha * x + beta */

FthNode *fth_relu(FthGraph *g, FthNode *x);
FthNode *fth_gelu(FthGraph *g, FthNode *x, FthGeluForm form);
FthNode *fth_silu(FthGraph *g, FthNode *x);
FthNode *fth_sigmoid(FthGraph *g, FthNode *x);
FthNode *fth_tanh(FthGraph *g, FthNode *x);

FthNode *fth_softmax(FthGraph *g, FthNode *x, int axis);     /* axis < 0 counts from the end */
FthNode *fth_log_softmax(FthGraph *g, FthNode *x, int axis);

typedef struct {
  float label_smoothing; /* 0 to 1 */
  int32_t ignore_index;  /* targets equal to it add nothing; FTH_NO_IGNORE_INDEX for none */
} FthCrossEntropyParams;
#define FTH_NO_IGNORE_INDEX INT32_MIN

/* Mean cross-entropy over the targets, as torch.nn.functional.cross_entropy: logits [N, C] or
 * [N, C, d...] (per-position classes, e.g. token tagging), targets i32 [N] or [N, d...],
 * class_weights [C] or NULL (the mean divides by the summed weights of the counted targets).
 * Result: a scalar. The gradient flows to the logits only. */
FthNode *fth_cross_entropy(FthGraph *g, FthNode *logits, FthNode *targets, FthNode *class_weights,
                           const FthCrossEntropyParams *params);
/* fth_cross_entropy with per-sample weights s: f32 [N] (same batch axis as the logits), or NULL
 * (then exactly fth_cross_entropy). Each row of sample n counts s[n] times: the loss is
 * sum_r s[n] * l_r / sum_r s[n] * cw[t_r] (cw: class weights, 1 without; ignored rows add
 * nothing), i.e. PyTorch's weighted mean sum(s * l) / sum(s) of reduction='none' losses when there
 * are no class weights, and the class-weighted mean when all s are equal. A total weight of 0
 * gives loss 0 and zero gradient. Weights are data: no gradient flows to them. */
FthNode *fth_cross_entropy_weighted(FthGraph *g, FthNode *logits, FthNode *targets, FthNode *class_weights,
                                    FthNode *sample_weights, const FthCrossEntropyParams *params);
/* Mean of BCE-with-logits over every element; pos_weight broadcast over the last axis or NULL.
 * The gradient flows to the logits only: targets and pos_weight are treated as data. */
FthNode *fth_bce_with_logits(FthGraph *g, FthNode *logits, FthNode *targets, FthNode *pos_weight);
FthNode *fth_mse(FthGraph *g, FthNode *pred, FthNode *target); /* mean squared error, scalar */

/* axis may be FTH_ALL_AXES (-> scalar); otherwise the axis is removed unless keepdim. */
FthNode *fth_sum(FthGraph *g, FthNode *x, int axis, bool keepdim);
FthNode *fth_mean(FthGraph *g, FthNode *x, int axis, bool keepdim);

/* One entry may be -1 (inferred); the batch dimension of the result is the one that holds the
 * input's batch dimension (the leading dimension with a batch multiplier). */
FthNode *fth_reshape(FthGraph *g, FthNode *x, int ndim, const int64_t *shape);
FthNode *fth_transpose(FthGraph *g, FthNode *x, const int *perm); /* perm has x's ndim entries */
FthNode *fth_concat(FthGraph *g, int n, FthNode *const *xs, int axis);
FthNode *fth_slice(FthGraph *g, FthNode *x, int axis, int64_t start, int64_t end);

/* ---- Ops of the OPS engineer's families (ops-conv.c, ops-pool.c, ops-norm.c, ...) -------- */

typedef struct {
  int stride, padding, dilation, groups;
  FthActivation act;
} FthConv1dParams;
/* x [N, Cin, L], w [Cout, Cin/groups, K], b [Cout] or NULL. */
FthNode *fth_conv1d(FthGraph *g, FthNode *x, FthNode *w, FthNode *b, const FthConv1dParams *p);

typedef struct {
  int stride[2], padding[2], dilation[2]; /* [h, w] */
  int groups;                              /* groups == Cin == Cout: depthwise */
  FthActivation act;
  bool max_pool2; /* then a fused 2x2 stride-2 max pool (floor): max_pool2d(act(conv)) in one pass */
} FthConv2dParams;
/* x [N, Cin, H, W], w [Cout, Cin/groups, KH, KW], b [Cout] or NULL. */
FthNode *fth_conv2d(FthGraph *g, FthNode *x, FthNode *w, FthNode *b, const FthConv2dParams *p);

typedef struct {
  int kernel[2], stride[2], padding[2];
  bool count_include_pad; /* avg pool only */
} FthPool2dParams;
FthNode *fth_max_pool2d(FthGraph *g, FthNode *x, const FthPool2dParams *p);
FthNode *fth_avg_pool2d(FthGraph *g, FthNode *x, const FthPool2dParams *p);
FthNode *fth_global_avg_pool2d(FthGraph *g, FthNode *x); /* [N, C, H, W] -> [N, C] */

typedef struct {
  float eps, momentum; /* momentum as in PyTorch: running = (1 - m) * running + m * batch */
} FthBatchNormParams;
/* Over [N, C, ...]: training mode normalizes with batch statistics and updates the running
 * buffers; inference mode uses the running buffers. */
FthNode *fth_batch_norm(FthGraph *g, FthNode *x, FthNode *gamma, FthNode *beta,
                        FthNode *running_mean, FthNode *running_var, const FthBatchNormParams *p);
/* Normalizes over the last axis; gamma, beta [D] or NULL. */
FthNode *fth_layer_norm(FthGraph *g, FthNode *x, FthNode *gamma, FthNode *beta, float eps);

/* Inverted dropout with probability p in training mode, identity in inference mode. */
FthNode *fth_dropout(FthGraph *g, FthNode *x, float p);

/* ids i32 [...] index rows of table [V, D] -> [..., D]; ids equal to padding_idx get zero
 * gradient (-1: none). */
FthNode *fth_embedding(FthGraph *g, FthNode *ids, FthNode *table, int32_t padding_idx);

typedef struct {
  int n_heads;
  bool causal;
  float scale; /* 0: 1 / sqrt(head_dim) */
} FthAttentionParams;
/* Multi-head scaled dot-product attention. q, k, v [N, T, H * Dh]; key_mask [N, T] (f32: 1 keep,
 * 0 masked) or NULL. Output [N, T, H * Dh]. The projections are linear nodes around it. */
FthNode *fth_attention(FthGraph *g, FthNode *q, FthNode *k, FthNode *v, FthNode *key_mask,
                       const FthAttentionParams *p);

/* ---- Autograd -------------------------------------------------------------------------------- */

/* Derives the backward graph of the scalar `loss` by the per-op gradient rules: a gradient node
 * for every parameter (and for every node marked with fth_graph_keep_grad beforehand). Call once,
 * after the forward graph is complete. `loss_scale` seeds the gradient (1 normally; mixed
 * precision scales it). */
FthStatus fth_graph_backward(FthGraph *g, FthNode *loss, float loss_scale);
/* Changes that seed for the runs from now on (dynamic loss scaling); BAD_STATE before backward. */
FthStatus fth_graph_set_loss_scale(FthGraph *g, float loss_scale);
/* Ask for the gradient of a non-parameter node (an input for saliency, a test). Before backward. */
FthStatus fth_graph_keep_grad(FthGraph *g, FthNode *node);
/* The node holding d loss / d node after backward; NULL when the node does not affect the loss. */
FthNode *fth_graph_grad(const FthGraph *g, const FthNode *node);

/* Keeps a forward node's value readable after a run (logits, embeddings). Before planning. */
FthStatus fth_graph_mark_output(FthGraph *g, FthNode *node);

/* ---- Planning and execution ------------------------------------------------------------------ */

/* bf16 mixed precision for the GEMMs (linear and 2-D or shared-right-side matmul, forward and
 * backward): operands are rounded to bf16 as they are packed and products accumulate in fp32
 * (AVX512_BF16); parameters, their gradients and every activation stay fp32 in memory, so the
 * optimizer updates fp32 master weights. Takes effect at the next fth_graph_plan. UNSUPPORTED on
 * a CPU without AVX512_BF16 (the graph keeps fp32). */
FthStatus fth_graph_set_bf16_matmul(FthGraph *g, bool enable);
bool fth_graph_bf16_matmul(const FthGraph *g);

typedef enum {
  FTH_MODE_TRAIN = 0,  /* forward + backward, dropout and batch-norm statistics in training mode */
  FTH_MODE_INFERENCE,  /* forward only, memory reused as early as possible */
} FthGraphMode;

/* Schedules the nodes needed for the mode (the loss, gradients and marked outputs in training;
 * marked outputs in inference), places every activation, gradient, saved state and scratch
 * buffer in one arena by liveness, and allocates it for max_batch. May be called again (another
 * mode or maximum); the arena is replaced. */
FthStatus fth_graph_plan(FthGraph *g, FthGraphMode mode, int64_t max_batch);

/* Arena bytes as an exact affine function of the batch: fixed + per_sample * batch. */
typedef struct {
  size_t fixed_bytes;
  size_t per_sample_bytes;
  size_t param_bytes;     /* parameters and buffers (outside the arena) */
  size_t param_grad_bytes;
  int n_scheduled;        /* nodes run per step */
} FthPlanStats;
FthStatus fth_graph_plan_stats(const FthGraph *g, FthPlanStats *stats);

/* Verifies that no two tensors that are live at the same time share a byte, at `batch`.
 * FTH_STATUS_INTERNAL with the two nodes named otherwise. Used by the tests. */
FthStatus fth_graph_check_plan(const FthGraph *g, int64_t batch);

FthStatus fth_graph_set_batch(FthGraph *g, int64_t batch); /* 1 .. max_batch */
int64_t fth_graph_batch(const FthGraph *g);
/* The run counter that keys random ops (dropout masks): it advances with every run. A trainer
 * sets it to its own step so masks depend on the training step alone, not on evaluation runs
 * in between, and a resumed run draws the masks of an uninterrupted one. */
void fth_graph_set_step(FthGraph *g, uint64_t step);

/* Runs the schedule once: forward, then (training) backward. Parameter gradients are
 * overwritten (not accumulated). */
FthStatus fth_graph_run(FthGraph *g);

/* Called by fth_graph_run (and fth_graph_device_run, once the gradient's kernel is queued) in
 * training once for every trainable parameter, on the calling thread, as soon as its gradient is
 * final (most right after their gradient node ran, the rest at the end), so a data-parallel
 * trainer can start summing gradients while the backward pass goes on. NULL: none. */
typedef void (*FthGradReadyFunc)(const FthNode *param, void *user_data);
void fth_graph_set_grad_ready_func(FthGraph *g, FthGradReadyFunc func, void *user_data);

/* The current tensor of a node (at the current batch), valid after plan until the next plan. For
 * inputs: write the batch into it before fth_graph_run. For parameters: the values. */
FthStatus fth_graph_tensor(const FthGraph *g, const FthNode *node, FthTensor *out);
/* Convenience: copy `bytes` into an input (bytes must equal the tensor's size at the batch). */
FthStatus fth_graph_set_input(FthGraph *g, FthNode *input, const void *data, size_t bytes);

/* ---- Parameters by name (trainer, checkpoints) ------------------------------------------------ */

int fth_graph_n_params(const FthGraph *g); /* parameters and buffers, creation order */
FthNode *fth_graph_param(const FthGraph *g, int index);
FthNode *fth_graph_find_param(const FthGraph *g, const char *name);
bool fth_param_is_trainable(const FthNode *param);
/* Gradient storage of a trainable parameter (zeros until a training run). */
FthStatus fth_param_grad_tensor(const FthNode *param, FthTensor *out);

/* ---- Walking a graph (export, compression, explanation) --------------------------------------- */

int fth_graph_n_nodes(const FthGraph *g);
FthNode *fth_graph_node(const FthGraph *g, int index); /* creation order, a topological order */
FthOp fth_node_op(const FthNode *node);
int fth_node_id(const FthNode *node);
const char *fth_node_name(const FthNode *node); /* inputs and parameters; NULL for ops */
int fth_node_n_inputs(const FthNode *node);
FthNode *fth_node_input(const FthNode *node, int index);
FthDType fth_node_dtype(const FthNode *node);
/* Shape at batch `batch`; returns ndim. */
int fth_node_shape(const FthNode *node, int64_t batch, int64_t *shape);
/* The op's parameter struct (FthConv2dParams, ...); size in *size. */
const void *fth_node_params(const FthNode *node, size_t *size);

#ifdef __cplusplus
}
#endif
