/* Graph internals shared by the graph layer's files (nodes, descs, node creation). */
#pragma once

#include <fathom/backend.h>
#include <fathom/graph.h>

#define FTH_OP_PARAMS_MAX 128

/* A symbolic tensor type: shape[bdim] is the batch multiplier (the size at batch b is
 * shape[bdim] * b); bdim = -1 when the tensor does not scale with the batch. */
typedef struct {
  FthDType dtype;
  int ndim;
  int bdim;
  int64_t shape[FTH_MAX_DIMS];
} FthTensorDesc;

/* Params of FTH_OP_FILL: a constant tensor of the given type. */
typedef struct {
  FthTensorDesc desc;
  float value;
} FthFillParams;

typedef enum {
  FTH_NODE_INPUT = 0,
  FTH_NODE_PARAM,  /* trainable */
  FTH_NODE_BUFFER, /* non-trainable parameter storage */
  FTH_NODE_OP,
} FthNodeKind;

struct FthNode {
  int id;           /* index in the graph's node array (creation order) */
  FthOp op;
  FthNodeKind kind;
  char *name;       /* inputs, parameters and buffers */
  int n_in;
  FthNode *in[FTH_MAX_INPUTS];
  _Alignas(16) unsigned char params[FTH_OP_PARAMS_MAX];
  size_t params_size;
  FthTensorDesc out;
  int n_aux;
  FthTensorDesc aux[FTH_MAX_AUX];

  bool requires_grad; /* a parameter (or a node marked with keep_grad) depends on... see autograd */
  bool is_backward;   /* created by fth_graph_backward */
  bool keep_grad;
  bool is_output;
  bool gemm_bf16;     /* set by the planner: this GEMM runs in bf16 (fth_graph_set_bf16_matmul) */

  /* parameters and buffers: storage outside the arena */
  float *value;
  float *grad; /* trainable parameters only */
  FthNode *grad_node;   /* after backward: the node holding d loss / d this (summed) */
};

/* Per-node placement decided by the planner. */
typedef struct {
  int pos;             /* schedule position + 1; 0 for inputs; -1 not scheduled */
  int last;            /* last position its output is read (end + 1 for kept values) */
  int buffer;          /* node id owning the output memory (itself, or the aliased node) */
  float *external;     /* output written straight into a parameter's gradient storage */
  bool out_batch;      /* out_offset is in the batch region */
  int64_t out_offset;
  bool aux_batch[FTH_MAX_AUX];
  int64_t aux_offset[FTH_MAX_AUX];
  int64_t scratch_offset_fixed, scratch_offset_batch; /* -1 when that part is empty */
  size_t scratch_fixed, scratch_per_sample;
  FthTensor out_t;
  FthTensor aux_t[FTH_MAX_AUX];
  FthTensor in_t[FTH_MAX_INPUTS];
  const FthTensor *in_aux[FTH_MAX_INPUTS];
  void *scratch;
  void *scratch_batch; /* the per-sample block when the scratch has both parts */
} FthNodePlan;

/* A parameter whose gradient node could not be written in place and is copied after a run. */
typedef struct {
  FthNode *param;
  FthNode *grad_node;
} FthGradCopy;

struct FthGraph {
  uint64_t seed;
  FthStatus status;
  char *error;
  FthNode **nodes;
  int n_nodes, cap_nodes;
  int n_params;         /* params and buffers, in creation order */
  FthNode **params;
  int cap_params;
  FthNode *loss;
  bool has_backward;
  FthNode *loss_seed;   /* the FILL node that seeds the backward pass (fth_graph_set_loss_scale) */
  bool bf16_matmul;     /* fth_graph_set_bf16_matmul */

  /* plan */
  bool planned;
  FthGraphMode mode;
  int64_t max_batch, batch;
  uint64_t step;
  int *schedule;
  int n_schedule;
  FthNodePlan *plan;    /* n_nodes entries */
  FthGradCopy *grad_copies;
  int n_grad_copies;
  size_t fixed_bytes, per_sample_bytes;
  unsigned char *arena;
  const FthBackend *backend;
  FthGradReadyFunc grad_ready;  /* fth_graph_set_grad_ready_func */
  void *grad_ready_data;
};

/* Creates an op node: copies params, runs the op's infer. NULL inputs or an earlier graph error
 * give NULL; a failure records the graph's error and returns NULL. */
FthNode *fth_graph_add_node(FthGraph *g, FthOp op, FthNode *const *inputs, int n_inputs,
                            const void *params, size_t params_size);

/* Records a build failure (keeps the first) and returns NULL, for builders. */
FthNode *fth_graph_fail(FthGraph *g, FthStatus status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

bool fth_node_requires_grad(const FthNode *node);

/* Desc helpers. */
int64_t fth_desc_numel_per_batch(const FthTensorDesc *d); /* numel at batch 1 (fixed: numel) */
bool fth_desc_same_shape(const FthTensorDesc *a, const FthTensorDesc *b);
void fth_desc_concrete(const FthTensorDesc *d, int64_t batch, int64_t *shape);
size_t fth_desc_bytes(const FthTensorDesc *d, int64_t batch);
/* Normalizes a possibly negative axis; -1 when out of range. */
int fth_axis(int axis, int ndim);

/* Frees the arena and the placement (plan.c). */
void fth_graph_release_plan(FthGraph *g);
