/* bench-importance: the time fth_tune_importances (fANOVA, 64 trees) takes on N completed trials
 * of the mlp recipe's default space (10 parameters, momentum conditional), median of 5 runs, and
 * the importances it finds for an objective that depends on lr most, dropout less, and on
 * nothing else:  nice build/bench/tune/bench-importance [N...]  (default 30 100 300). */
#include <fathom/tune.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static int
cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static void
trial_free(gpointer data)
{
  FthTuneTrial *t = data;
  g_free(t->params);
  g_free(t);
}

int
main(int argc, char **argv)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(FthSearchSpace) space =
    fth_search_space_new_from_json(fth_tune_train_space_json("mlp", NULL), -1, "mlp", &error);
  if (space == NULL) {
    fprintf(stderr, "bench-importance: %s\n", error->message);
    return 1;
  }
  guint d = fth_search_space_get_n_params(space);
  int lr = fth_search_space_find(space, "lr"), dropout = fth_search_space_find(space, "dropout");
  static const char *const defaults[] = { "30", "100", "300" };
  const char *const *sizes = argc > 1 ? (const char *const *)argv + 1 : defaults;
  int n_sizes = argc > 1 ? argc - 1 : 3;
  printf("%8s %10s %8s %8s %8s\n", "trials", "ms", "lr", "dropout", "others");
  for (int s = 0; s < n_sizes; s++) {
    guint n = (guint)atoi(sizes[s]);
    g_autoptr(GPtrArray) trials = g_ptr_array_new_with_free_func(trial_free);
    g_autoptr(FthSampler) sampler = fth_sampler_new_random(7);
    g_autoptr(GRand) noise = g_rand_new_with_seed(3);
    for (guint i = 0; i < n; i++) {
      FthTuneTrial *t = g_new0(FthTuneTrial, 1);
      t->number = (int)i;
      t->state = FTH_TUNE_TRIAL_COMPLETE;
      t->params = g_new(double, d);
      if (!fth_sampler_sample(sampler, space, NULL, 0, (int)i, TRUE, t->params, &error)) {
        fprintf(stderr, "bench-importance: %s\n", error->message);
        return 1;
      }
      double x = log10(t->params[lr]) + 2;
      t->value = 0.9 - 0.05 * x * x - 0.1 * t->params[dropout] +
                 0.005 * g_rand_double_range(noise, -1, 1);
      g_ptr_array_add(trials, t);
    }
    double ms[5];
    g_autofree double *imp = g_new(double, d);
    for (int r = 0; r < 5; r++) {
      gint64 t0 = g_get_monotonic_time();
      if (!fth_tune_importances(space, (const FthTuneTrial *const *)trials->pdata, n, NULL, imp,
                                &error)) {
        fprintf(stderr, "bench-importance: %s\n", error->message);
        return 1;
      }
      ms[r] = (g_get_monotonic_time() - t0) / 1000.0;
    }
    qsort(ms, 5, sizeof *ms, cmp_double);
    double others = 0;
    for (guint j = 0; j < d; j++)
      if ((int)j != lr && (int)j != dropout && !isnan(imp[j]))
        others += imp[j];
    printf("%8u %10.2f %8.3f %8.3f %8.3f\n", n, ms[2], imp[lr], imp[dropout], others);
  }
  return 0;
}
