/* Learning-rate schedules against their closed forms, evaluated independently here. */
#include <fathom/optim.h>
#include <glib.h>
#include <math.h>

static void
test_step(void)
{
  FthLrSchedule s = fth_lr_schedule_default(FTH_LR_STEP, 0.1f, 100);
  s.step_size = 30;
  s.gamma = 0.5f;
  g_assert_cmpfloat_with_epsilon(fth_lr_at(&s, 0), 0.1, 1e-7);
  g_assert_cmpfloat_with_epsilon(fth_lr_at(&s, 29), 0.1, 1e-7);
  g_assert_cmpfloat_with_epsilon(fth_lr_at(&s, 30), 0.05, 1e-7);
  g_assert_cmpfloat_with_epsilon(fth_lr_at(&s, 61), 0.025, 1e-7);
}

static void
test_cosine(void)
{
  FthLrSchedule s = fth_lr_schedule_default(FTH_LR_COSINE, 0.2f, 100);
  s.min_lr = 0.01f;
  for (int t = 0; t <= 100; t += 7) {
    double want = 0.01 + (0.2 - 0.01) * 0.5 * (1 + cos(M_PI * t / 100.0));
    g_assert_cmpfloat_with_epsilon(fth_lr_at(&s, t), want, 1e-7);
  }
  g_assert_cmpfloat_with_epsilon(fth_lr_at(&s, 50), 0.105, 1e-7);
  g_assert_cmpfloat_with_epsilon(fth_lr_at(&s, 100), 0.01, 1e-7);
}

static void
test_warmup_cosine(void)
{
  FthLrSchedule s = fth_lr_schedule_default(FTH_LR_COSINE, 1.0f, 110);
  s.warmup_steps = 10;
  g_assert_cmpfloat_with_epsilon(fth_lr_at(&s, 0), 0.1, 1e-7);
  g_assert_cmpfloat_with_epsilon(fth_lr_at(&s, 4), 0.5, 1e-7);
  g_assert_cmpfloat_with_epsilon(fth_lr_at(&s, 9), 1.0, 1e-7);
  g_assert_cmpfloat_with_epsilon(fth_lr_at(&s, 10), 1.0, 1e-7);
  g_assert_cmpfloat_with_epsilon(fth_lr_at(&s, 60), 0.5, 1e-7); /* half-way through 100 */
  g_assert_cmpfloat_with_epsilon(fth_lr_at(&s, 110), 0.0, 1e-7);
}

static void
test_warmup_constant(void)
{
  FthLrSchedule s = fth_lr_schedule_default(FTH_LR_CONSTANT, 0.4f, 0);
  s.warmup_steps = 4;
  double want[] = {0.1, 0.2, 0.3, 0.4, 0.4, 0.4};
  for (int t = 0; t < 6; t++)
    g_assert_cmpfloat_with_epsilon(fth_lr_at(&s, t), want[t], 1e-7);
}

/* torch.optim.lr_scheduler.OneCycleLR(max_lr=1.0, total_steps=100) (pct_start 0.3, div 25,
 * final_div 1e4, cos): phase 1 ends at step 29, phase 2 at 99. */
static void
test_one_cycle(void)
{
  FthLrSchedule s = fth_lr_schedule_default(FTH_LR_ONE_CYCLE, 1.0f, 100);
  double initial = 1.0 / 25, final = initial / 1e4;
  g_assert_cmpfloat_with_epsilon(fth_lr_at(&s, 0), initial, 1e-7);
  g_assert_cmpfloat_with_epsilon(fth_lr_at(&s, 29), 1.0, 1e-7);
  g_assert_cmpfloat_with_epsilon(fth_lr_at(&s, 99), final, 1e-9);
  for (int t = 0; t < 100; t += 3) {
    double want;
    if (t <= 29) {
      double pct = t / 29.0;
      want = 1.0 + (initial - 1.0) / 2 * (cos(M_PI * pct) + 1);
    } else {
      double pct = (t - 29) / 70.0;
      want = final + (1.0 - final) / 2 * (cos(M_PI * pct) + 1);
    }
    g_assert_cmpfloat_with_epsilon(fth_lr_at(&s, t), want, 1e-7);
  }
  /* Hand value: half-way up, pct 0.5 -> mean of initial and max. */
  FthLrSchedule h = fth_lr_schedule_default(FTH_LR_ONE_CYCLE, 1.0f, 30);
  h.pct_start = 0.1f; /* rises over steps 0..2 */
  g_assert_cmpfloat_with_epsilon(fth_lr_at(&h, 1), (1.0 + 0.04) / 2, 1e-7);
}

static void
test_names(void)
{
  FthLrKind k;
  g_assert_true(fth_lr_kind_from_name("one-cycle", &k));
  g_assert_cmpint(k, ==, FTH_LR_ONE_CYCLE);
  g_assert_true(fth_lr_kind_from_name("cosine", &k));
  g_assert_cmpint(k, ==, FTH_LR_COSINE);
  g_assert_false(fth_lr_kind_from_name("cosinus", &k));
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/schedule/step", test_step);
  g_test_add_func("/schedule/cosine", test_cosine);
  g_test_add_func("/schedule/warmup-cosine", test_warmup_cosine);
  g_test_add_func("/schedule/warmup-constant", test_warmup_constant);
  g_test_add_func("/schedule/one-cycle", test_one_cycle);
  g_test_add_func("/schedule/names", test_names);
  return g_test_run();
}
