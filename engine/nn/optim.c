/* Optimizers as one fused loop per parameter buffer; see fathom/optim.h for the rules. */
#include "fathom/optim.h"
#include "fathom/core.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The update loops run once per parameter per step: vectorized for the machine's widest ISA
 * (AVX-512 / AVX2 clones chosen at load time; the build's baseline is SSE2 at -O2). */
#define FTH_VECTOR_LOOP \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"), optimize("O3")))

struct FthOptimizer {
  FthOptimConfig config;
  FthParam *params;
  size_t n_params;
  int n_state;
  float **state;   /* n_params * n_state buffers */
  int64_t steps;
};

FthOptimConfig
fth_optim_config_default(FthOptimKind kind)
{
  FthOptimConfig c = {.kind = kind, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f};
  if (kind == FTH_OPTIM_ADAMW) {
    c.lr = 1e-3f;
    c.weight_decay = 0.01f;
  } else {
    c.lr = 0.01f;
  }
  return c;
}

void
fth_optimizer_free(FthOptimizer *opt)
{
  if (opt == NULL)
    return;
  if (opt->state != NULL)
    for (size_t i = 0; i < opt->n_params * (size_t)opt->n_state; i++)
      free(opt->state[i]);
  free(opt->state);
  free(opt->params);
  free(opt);
}

FthOptimizer *
fth_optimizer_new(const FthOptimConfig *config, const FthParam *params, size_t n_params)
{
  if (config->kind != FTH_OPTIM_SGD && config->kind != FTH_OPTIM_ADAMW)
    return NULL;
  FthOptimizer *opt = calloc(1, sizeof *opt);
  if (opt == NULL)
    return NULL;
  opt->config = *config;
  opt->n_params = n_params;
  opt->n_state = config->kind == FTH_OPTIM_ADAMW ? 2 : 1;
  opt->params = calloc(n_params ? n_params : 1, sizeof *opt->params);
  opt->state = calloc(n_params * (size_t)opt->n_state + 1, sizeof *opt->state);
  if (opt->params == NULL || opt->state == NULL) {
    fth_optimizer_free(opt);
    return NULL;
  }
  memcpy(opt->params, params, n_params * sizeof *params);
  for (size_t i = 0; i < n_params * (size_t)opt->n_state; i++) {
    opt->state[i] = calloc(params[i / (size_t)opt->n_state].n + 1, sizeof(float));
    if (opt->state[i] == NULL) {
      fth_optimizer_free(opt);
      return NULL;
    }
  }
  return opt;
}

double
fth_grad_norm(const FthParam *params, size_t n_params)
{
  double sum = 0.0;
  for (size_t p = 0; p < n_params; p++) {
    const float *g = params[p].grad;
    double s = 0.0;
    for (size_t i = 0; i < params[p].n; i++)
      s += (double)g[i] * (double)g[i];
    sum += s;
  }
  return sqrt(sum);
}

double
fth_clip_grad_norm(const FthParam *params, size_t n_params, double max_norm)
{
  double norm = fth_grad_norm(params, n_params);
  if (max_norm > 0 && norm > max_norm) {
    float scale = (float)(max_norm / (norm + 1e-6));
    for (size_t p = 0; p < n_params; p++) {
      float *g = params[p].grad;
      for (size_t i = 0; i < params[p].n; i++)
        g[i] *= scale;
    }
  }
  return norm;
}

FTH_VECTOR_LOOP static void
sgd_update(float *restrict w, const float *restrict grad, float *restrict buf, size_t n,
           float lr, float wd, float momentum, bool nesterov)
{
  if (momentum == 0.0f) {
    for (size_t i = 0; i < n; i++)
      w[i] -= lr * (grad[i] + wd * w[i]);
  } else if (nesterov) {
    for (size_t i = 0; i < n; i++) {
      float g = grad[i] + wd * w[i];
      float b = momentum * buf[i] + g;
      buf[i] = b;
      w[i] -= lr * (g + momentum * b);
    }
  } else {
    for (size_t i = 0; i < n; i++) {
      float b = momentum * buf[i] + grad[i] + wd * w[i];
      buf[i] = b;
      w[i] -= lr * b;
    }
  }
}

FTH_VECTOR_LOOP static void
adamw_update(float *restrict w, const float *restrict grad, float *restrict m, float *restrict v,
             size_t n, float lr, float wd, float b1, float b2, float eps, int64_t t)
{
  /* Bias corrections folded into the step size and epsilon, as PyTorch does:
   * step = lr / bc1, denom = sqrt(v) / sqrt(bc2) + eps. */
  double bc1 = 1.0 - pow(b1, (double)t);
  double bc2 = 1.0 - pow(b2, (double)t);
  float step = (float)(lr / bc1);
  float inv_sqrt_bc2 = (float)(1.0 / sqrt(bc2));
  float decay = 1.0f - lr * wd;
  for (size_t i = 0; i < n; i++) {
    float g = grad[i];
    float mi = b1 * m[i] + (1.0f - b1) * g;
    float vi = b2 * v[i] + (1.0f - b2) * g * g;
    m[i] = mi;
    v[i] = vi;
    w[i] = w[i] * decay - step * mi / (sqrtf(vi) * inv_sqrt_bc2 + eps);
  }
}

/* Floats of one parameter per pool chunk: ~10 us of this memory-bound update. The update is
 * elementwise, so the result does not depend on how a parameter is split. */
#define UPDATE_GRAIN 16384

typedef struct {
  const FthOptimizer *opt;
  size_t p;
  float lr;
} UpdateJob;

static void
update_range(void *ctx, size_t begin, size_t end, int worker)
{
  (void)worker;
  const UpdateJob *j = ctx;
  const FthOptimConfig *c = &j->opt->config;
  const FthParam *pa = &j->opt->params[j->p];
  float wd = pa->decay ? c->weight_decay : 0.0f;
  size_t n = end - begin;
  if (c->kind == FTH_OPTIM_SGD)
    sgd_update(pa->value + begin, pa->grad + begin, j->opt->state[j->p] + begin, n, j->lr, wd,
               c->momentum, c->nesterov);
  else
    adamw_update(pa->value + begin, pa->grad + begin, j->opt->state[2 * j->p] + begin,
                 j->opt->state[2 * j->p + 1] + begin, n, j->lr, wd, c->beta1, c->beta2, c->eps,
                 j->opt->steps);
}

double
fth_optimizer_step(FthOptimizer *opt, float lr)
{
  const FthOptimConfig *c = &opt->config;
  /* The norm costs a pass over every gradient; only clipping needs it. */
  double norm = c->clip_norm > 0 ? fth_clip_grad_norm(opt->params, opt->n_params, c->clip_norm)
                                 : 0.0;
  opt->steps++;
  /* Large parameters (a linear layer's weights) are split over the thread pool: a serial update
   * of an MLP's 200k weights is about a tenth of its training step at two threads. */
  for (size_t p = 0; p < opt->n_params; p++) {
    UpdateJob j = {opt, p, lr};
    fth_parallel_for(opt->params[p].n, UPDATE_GRAIN, update_range, &j);
  }
  return norm;
}

const FthOptimConfig *
fth_optimizer_config(const FthOptimizer *opt)
{
  return &opt->config;
}

size_t
fth_optimizer_n_params(const FthOptimizer *opt)
{
  return opt->n_params;
}

const FthParam *
fth_optimizer_param(const FthOptimizer *opt, size_t i)
{
  return i < opt->n_params ? &opt->params[i] : NULL;
}

int64_t
fth_optimizer_steps(const FthOptimizer *opt)
{
  return opt->steps;
}

void
fth_optimizer_set_steps(FthOptimizer *opt, int64_t steps)
{
  opt->steps = steps;
}

int
fth_optimizer_n_state(const FthOptimizer *opt)
{
  return opt->n_state;
}

const char *
fth_optimizer_state_name(const FthOptimizer *opt, int which)
{
  if (opt->config.kind == FTH_OPTIM_SGD)
    return which == 0 ? "momentum" : NULL;
  return which == 0 ? "adam_m" : which == 1 ? "adam_v" : NULL;
}

float *
fth_optimizer_state(FthOptimizer *opt, size_t param, int which)
{
  if (param >= opt->n_params || which < 0 || which >= opt->n_state)
    return NULL;
  return opt->state[param * (size_t)opt->n_state + (size_t)which];
}
