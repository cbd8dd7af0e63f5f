/* Data parallel on this machine: the local communicator's all-reduce bandwidth in 25 MB buckets,
 * and fmnist-cnn training steps with one process against N worker processes splitting the same
 * global batch (synthetic 28x28 inputs), with the share of gradient buckets summed during the
 * backward pass.
 *
 *   bench-parallel [NPROC (2)] [STEPS (30)] [BATCH (256)]
 *
 * The workers are this program run again by the launcher. */
#include <fathom/parallel.h>
#include <fathom/train.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { SIDE = 28, CLASSES = 10, REDUCE_ROUNDS = 8 };

static double
now_s(void)
{
  return (double)g_get_monotonic_time() / 1e6;
}

/* Rank r writes "seconds early_buckets total_buckets" of its training steps to OUT. */
static int
train_steps(FthComm *comm, int steps, int batch, const char *out)
{
  GError *error = NULL;
  g_autofree char *path = fth_recipe_find("fmnist-cnn");
  g_autoptr(FthRecipe) recipe = path ? fth_recipe_load(path, NULL, &error) : NULL;
  if (recipe == NULL) {
    fprintf(stderr, "fmnist-cnn: %s\n", error ? error->message : "not in the zoo");
    return 1;
  }
  size_t n = (size_t)steps * (size_t)batch;
  g_autofree guint8 *pixels = g_new(guint8, n * SIDE * SIDE);
  g_autofree int32_t *labels = g_new(int32_t, n);
  g_autofree uint32_t *idx = g_new(uint32_t, n);
  GRand *rand = g_rand_new_with_seed(1);
  for (size_t i = 0; i < n * SIDE * SIDE; i++)
    pixels[i] = (guint8)g_rand_int_range(rand, 0, 256);
  for (size_t i = 0; i < n; i++) {
    labels[i] = (int32_t)(i % CLASSES);
    idx[i] = (uint32_t)i;
  }
  g_rand_free(rand);
  FthSamples s = {.pixels = pixels, .labels = labels, .n = n, .channels = 1, .height = SIDE,
                  .width = SIDE};
  FthTrainerConfig cfg = {.seed = 1, .batch = batch, .epochs = 1, .n_train = n,
                          .optim = recipe->train.optim, .schedule = recipe->train.schedule};
  cfg.schedule.total_steps = steps;
  g_autoptr(FthTrainer) t = fth_trainer_new(recipe, CLASSES, &cfg, &error);
  if (t == NULL || (comm != NULL && !fth_trainer_set_comm(t, comm, 0, &error))) {
    fprintf(stderr, "%s\n", error->message);
    return 1;
  }
  FthTrainProgress p = {0};
  gboolean interrupted;
  double t0 = now_s();
  if (!fth_trainer_run_epoch(t, &s, idx, n, 0, 0, 0, &p, NULL, NULL, NULL, &interrupted, &error)) {
    fprintf(stderr, "%s\n", error->message);
    return 1;
  }
  g_autofree char *text = g_strdup_printf("%.6f %d", now_s() - t0, fth_trainer_early_buckets(t));
  return g_file_set_contents(out, text, -1, NULL) ? 0 : 1;
}

static int
worker(char **argv)
{
  GError *error = NULL;
  FthComm *comm = NULL;
  if (!fth_comm_from_env(&comm, &error) || comm == NULL) {
    fprintf(stderr, "%s\n", error ? error->message : "not started by the launcher");
    return 1;
  }
  int status = 0;
  if (strcmp(argv[2], "reduce") == 0) {
    size_t floats = FTH_GRAD_BUCKET_BYTES / sizeof(float);
    float *buf = g_new0(float, floats);
    double t0 = 0;
    for (int k = 0; k <= REDUCE_ROUNDS && status == 0; k++) {
      if (k == 1) /* the first round warms the connections up */
        t0 = now_s();
      if (!fth_comm_all_reduce_sum(comm, buf, floats, &error))
        status = 1;
    }
    if (status == 0 && fth_comm_rank(comm) == 0) {
      g_autofree char *text = g_strdup_printf("%.6f", (now_s() - t0) / REDUCE_ROUNDS);
      status = g_file_set_contents(argv[3], text, -1, NULL) ? 0 : 1;
    }
    g_free(buf);
  } else {
    g_autofree char *out = g_strdup_printf("%s.%d", argv[3], fth_comm_rank(comm));
    status = train_steps(comm, atoi(argv[4]), atoi(argv[5]), out);
  }
  if (error != NULL) {
    fprintf(stderr, "%s\n", error->message);
    g_error_free(error);
  }
  fth_comm_free(comm);
  return status;
}

static gboolean
launch(char *self, int nproc, const char *what, const char *out, const char *steps,
       const char *batch)
{
  const char *argv[] = {self, "worker", what, out, steps, batch, NULL};
  GError *error = NULL;
  if (!fth_launch_workers(argv, nproc, NULL, &error)) {
    fprintf(stderr, "%s\n", error->message);
    g_error_free(error);
    return FALSE;
  }
  return TRUE;
}

static double
read_number(const char *path, int *second)
{
  g_autofree char *text = NULL;
  if (!g_file_get_contents(path, &text, NULL, NULL))
    return -1;
  double x = -1;
  int y = 0;
  sscanf(text, "%lf %d", &x, &y);
  if (second != NULL)
    *second = y;
  return x;
}

int
main(int argc, char **argv)
{
  if (argc >= 4 && strcmp(argv[1], "worker") == 0)
    return worker(argv);
  int nproc = argc > 1 ? atoi(argv[1]) : 2, steps = argc > 2 ? atoi(argv[2]) : 30;
  int batch = argc > 3 ? atoi(argv[3]) : 256;
  if (nproc < 2 || steps < 1 || batch < nproc) {
    fprintf(stderr, "usage: bench-parallel [NPROC >= 2] [STEPS] [BATCH >= NPROC]\n");
    return 2;
  }
  g_autofree char *self = g_file_read_link("/proc/self/exe", NULL);
  g_autofree char *dir = g_dir_make_tmp("fth-bench-parallel-XXXXXX", NULL);
  g_autofree char *reduce_out = g_build_filename(dir, "reduce", NULL);
  g_autofree char *train_out = g_build_filename(dir, "train", NULL);
  g_autofree char *steps_s = g_strdup_printf("%d", steps), *batch_s = g_strdup_printf("%d", batch);
  if (!launch(self, nproc, "reduce", reduce_out, steps_s, batch_s))
    return 1;
  double reduce_s = read_number(reduce_out, NULL);
  double mb = (double)FTH_GRAD_BUCKET_BYTES / 1048576.0;
  printf("all-reduce, %d processes, %.0f MiB bucket: %.1f ms, %.0f MiB/s of bucket per second\n\n",
         nproc, mb, reduce_s * 1e3, mb / reduce_s);

  /* One process: the trainer alone, in this process. */
  g_autofree char *one_out = g_strdup_printf("%s.single", train_out);
  if (train_steps(NULL, steps, batch, one_out) != 0 ||
      !launch(self, nproc, "train", train_out, steps_s, batch_s))
    return 1;
  double one = read_number(one_out, NULL);
  g_autofree char *rank0 = g_strdup_printf("%s.0", train_out);
  int early = 0;
  double many = read_number(rank0, &early);
  printf("fmnist-cnn, global batch %d, %d steps   images/s   vs one process\n", batch, steps);
  printf("  one process                         %8.0f   1.00x\n", steps * batch / one);
  printf("  %d processes                         %8.0f   %.2fx   (rank 0: %d gradient buckets "
         "summed during the backward pass)\n", nproc, steps * batch / many, one / many, early);
  for (int r = 0; r < nproc; r++) {
    g_autofree char *f = g_strdup_printf("%s.%d", train_out, r);
    g_unlink(f);
  }
  g_unlink(one_out);
  g_unlink(reduce_out);
  g_rmdir(dir);
  return 0;
}
