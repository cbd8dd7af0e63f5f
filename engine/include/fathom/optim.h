/* fathom/optim.h: optimizers, gradient clipping and learning-rate schedules.
 *
 * Plain C over float32 parameter buffers (the numeric core's rule: no GLib here). An optimizer
 * is given the parameter and gradient buffers once and updates every parameter in one fused
 * pass per buffer (weight decay, moment updates and the step together), so a training step
 * reads each weight once. The update rules are PyTorch's:
 *
 *   SGD:   g = grad + wd*w;  buf = momentum*buf + g;  w -= lr * (nesterov ? g + momentum*buf : buf)
 *   AdamW: w -= lr*wd*w;  m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g^2;
 *          w -= lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
 *
 * Gradient clipping scales all gradients by max_norm / (norm + 1e-6) when their global L2
 * norm exceeds max_norm (torch.nn.utils.clip_grad_norm_).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  FTH_OPTIM_SGD,
  FTH_OPTIM_ADAMW,
} FthOptimKind;

typedef struct {
  FthOptimKind kind;
  float lr;             /* base learning rate; a schedule may override it per step */
  float weight_decay;
  float momentum;       /* SGD */
  bool nesterov;        /* SGD */
  float beta1, beta2;   /* AdamW */
  float eps;            /* AdamW */
  float clip_norm;      /* <= 0: no clipping */
} FthOptimConfig;

/* Defaults: SGD lr 0.01, momentum 0; AdamW lr 1e-3, betas (0.9, 0.999), eps 1e-8, wd 0.01. */
FthOptimConfig fth_optim_config_default(FthOptimKind kind);

typedef struct {
  const char *name;     /* used to name the state tensors in checkpoints */
  float *value;
  float *grad;
  size_t n;
  bool decay;           /* apply weight decay (usually false for biases and norm scales) */
} FthParam;

typedef struct FthOptimizer FthOptimizer;

/* Copies params (not the buffers). NULL on allocation failure or a bad config. */
FthOptimizer *fth_optimizer_new(const FthOptimConfig *config, const FthParam *params,
                                size_t n_params);
void fth_optimizer_free(FthOptimizer *opt);

/* One update with learning rate lr (clipping first when configured). Returns the gradients'
 * global L2 norm before clipping when clipping is configured, else 0 (not computed). */
double fth_optimizer_step(FthOptimizer *opt, float lr);

/* Global L2 norm of the gradients, accumulated in double. */
double fth_grad_norm(const FthParam *params, size_t n_params);
/* Scales the gradients so their global norm is at most max_norm; returns the norm before. */
double fth_clip_grad_norm(const FthParam *params, size_t n_params, double max_norm);

const FthOptimConfig *fth_optimizer_config(const FthOptimizer *opt);
size_t fth_optimizer_n_params(const FthOptimizer *opt);
const FthParam *fth_optimizer_param(const FthOptimizer *opt, size_t i);
/* Number of steps taken (AdamW's t); settable for resuming. */
int64_t fth_optimizer_steps(const FthOptimizer *opt);
void fth_optimizer_set_steps(FthOptimizer *opt, int64_t steps);

/* State buffers per parameter, for checkpoints: SGD has one ("momentum", all zero until the
 * first step), AdamW two ("adam_m", "adam_v"). Each has the parameter's length. */
int fth_optimizer_n_state(const FthOptimizer *opt);
const char *fth_optimizer_state_name(const FthOptimizer *opt, int which);
float *fth_optimizer_state(FthOptimizer *opt, size_t param, int which);

/* Learning-rate schedules, as closed forms of the step number (0-based). */
typedef enum {
  FTH_LR_CONSTANT,
  FTH_LR_STEP,       /* base * gamma^floor(s / step_size) */
  FTH_LR_COSINE,     /* min + (base - min) * (1 + cos(pi * s / total)) / 2 */
  FTH_LR_ONE_CYCLE,  /* torch.optim.lr_scheduler.OneCycleLR with cosine annealing */
} FthLrKind;

typedef struct {
  FthLrKind kind;
  float base_lr;          /* the peak (max_lr) for one-cycle */
  int64_t total_steps;    /* cosine, one-cycle */
  int64_t step_size;      /* step */
  float gamma;            /* step */
  float min_lr;           /* cosine */
  float pct_start;        /* one-cycle: fraction of steps rising (default 0.3) */
  float div_factor;       /* one-cycle: initial = base / div_factor (default 25) */
  float final_div_factor; /* one-cycle: final = initial / final_div_factor (default 1e4) */
  int64_t warmup_steps;   /* linear warm-up: lr(s) = sched(0) * (s+1) / warmup for s < warmup,
                           * then sched(s - warmup), the schedule spanning total - warmup */
} FthLrSchedule;

FthLrSchedule fth_lr_schedule_default(FthLrKind kind, float base_lr, int64_t total_steps);
double fth_lr_at(const FthLrSchedule *schedule, int64_t step);
/* "constant", "step", "cosine", "one-cycle"; false for anything else. */
bool fth_lr_kind_from_name(const char *name, FthLrKind *out);

#ifdef __cplusplus
}
#endif
