/* Learning-rate schedules as closed forms of the step, so a resumed run needs only the step. */
#include "fathom/optim.h"

#include <math.h>
#include <string.h>

FthLrSchedule
fth_lr_schedule_default(FthLrKind kind, float base_lr, int64_t total_steps)
{
  return (FthLrSchedule){
    .kind = kind, .base_lr = base_lr, .total_steps = total_steps, .step_size = 1,
    .gamma = 0.1f, .min_lr = 0.0f, .pct_start = 0.3f, .div_factor = 25.0f,
    .final_div_factor = 1e4f, .warmup_steps = 0,
  };
}

static double
anneal_cos(double start, double end, double pct)
{
  return end + (start - end) / 2.0 * (cos(M_PI * pct) + 1.0);
}

/* The schedule without warm-up, at step s of total. */
static double
schedule_at(const FthLrSchedule *c, int64_t s, int64_t total)
{
  double base = c->base_lr;
  switch (c->kind) {
  case FTH_LR_CONSTANT:
    return base;
  case FTH_LR_STEP:
    return base * pow(c->gamma, (double)(s / (c->step_size > 0 ? c->step_size : 1)));
  case FTH_LR_COSINE: {
    if (total <= 0)
      return base;
    double t = s > total ? 1.0 : (double)s / (double)total;
    return anneal_cos(base, c->min_lr, t);
  }
  case FTH_LR_ONE_CYCLE: {
    double initial = base / c->div_factor;
    double final = initial / c->final_div_factor;
    double up_end = (double)c->pct_start * (double)total - 1.0;
    double down_end = (double)total - 1.0;
    if ((double)s <= up_end)
      return anneal_cos(initial, base, up_end > 0 ? (double)s / up_end : 1.0);
    double pct = down_end > up_end ? ((double)s - up_end) / (down_end - up_end) : 1.0;
    return anneal_cos(base, final, pct > 1.0 ? 1.0 : pct);
  }
  }
  return base;
}

double
fth_lr_at(const FthLrSchedule *c, int64_t step)
{
  int64_t warm = c->warmup_steps > 0 ? c->warmup_steps : 0;
  int64_t total = c->total_steps - warm;
  if (step < warm)
    return schedule_at(c, 0, total) * (double)(step + 1) / (double)warm;
  return schedule_at(c, step - warm, total);
}

bool
fth_lr_kind_from_name(const char *name, FthLrKind *out)
{
  static const char *const names[] = {"constant", "step", "cosine", "one-cycle"};
  for (int i = 0; i < 4; i++)
    if (strcmp(name, names[i]) == 0) {
      *out = (FthLrKind)i;
      return true;
    }
  return false;
}
