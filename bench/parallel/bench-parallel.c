/* Data parallel on this machine: the local communicator's all-reduce bandwidth in 25 MB buckets,
 * and training steps of a model with one process against N worker processes splitting the same
 * global batch (synthetic 28x28 inputs), the gradient buckets summed after the backward pass and
 * overlapped with it (fth_trainer_set_grad_overlap).
 *
 *   bench-parallel [NPROC (2)] [STEPS (30)] [BATCH (256)] [MODEL (fmnist-cnn)]
 *
 * MODEL is fmnist-cnn (1.7 MB of gradients, one bucket) or wide-mlp (784-4096-2048-10, 46 MB:
 * buckets {fc3 b2} {W2} {b1 W1}, the first two summable while W1's gradient is computed).
 * The workers are this program run again by the launcher, and, in a build with MPI where mpirun
 * is found, by mpirun (the MPI communicator). */
#include <fathom/parallel.h>
#include <fathom/train.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fth-config.h"

enum { SIDE = 28, CLASSES = 10, REDUCE_ROUNDS = 8 };

static const char *wide_mlp =
  "{\"name\": \"wide-mlp\", \"input\": {\"shape\": [1, 28, 28]},"
  " \"layers\": [{\"type\": \"flatten\"}, {\"type\": \"linear\", \"out_features\": 4096},"
  "  {\"type\": \"relu\"}, {\"type\": \"linear\", \"out_features\": 2048}, {\"type\": \"relu\"},"
  "  {\"type\": \"linear\", \"out_features\": \"classes\"}],"
  " \"train\": {\"optimizer\": \"sgd\", \"lr\": 0.01, \"momentum\": 0.9, \"batch\": 256,"
  "  \"epochs\": 1}}";

static double
now_s(void)
{
  return (double)g_get_monotonic_time() / 1e6;
}

/* Writes "seconds early_buckets" of `steps` training steps of `model` to OUT, as this rank of
 * comm (the gradients summed during the backward pass when overlap) or alone. */
static int
train_steps(FthComm *comm, const char *model, gboolean overlap, int steps, int batch,
            const char *out)
{
  GError *error = NULL;
  g_autoptr(FthRecipe) recipe = NULL;
  if (strcmp(model, "wide-mlp") == 0) {
    recipe = fth_recipe_parse(wide_mlp, -1, "wide-mlp", NULL, &error);
  } else {
    g_autofree char *path = fth_recipe_find(model);
    recipe = path != NULL ? fth_recipe_load(path, NULL, &error) : NULL;
  }
  if (recipe == NULL) {
    fprintf(stderr, "%s: %s\n", model, error ? error->message : "not in the zoo");
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
  if (comm != NULL)
    fth_trainer_set_grad_overlap(t, overlap);
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
  if (!fth_comm_for_launcher(FTH_LAUNCHER_AUTO, &comm, &error) || comm == NULL) {
    fprintf(stderr, "%s\n", error ? error->message : "not started by a launcher");
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
    status = train_steps(comm, argv[6], strcmp(argv[2], "overlap") == 0, atoi(argv[4]),
                         atoi(argv[5]), out);
  }
  if (error != NULL) {
    fprintf(stderr, "%s\n", error->message);
    g_error_free(error);
  }
  fth_comm_free(comm);
  return status;
}

/* worker WHAT (reduce | overlap | after) OUT STEPS BATCH MODEL, by the built-in launcher or,
 * when mpirun is not NULL, by mpirun. */
static gboolean
launch(char *self, const char *mpirun, int nproc, const char *what, const char *out,
       const char *steps, const char *batch, const char *model)
{
  GError *error = NULL;
  if (mpirun == NULL) {
    const char *argv[] = {self, "worker", what, out, steps, batch, model, NULL};
    if (fth_launch_workers(argv, nproc, NULL, &error))
      return TRUE;
  } else {
    g_autofree char *np = g_strdup_printf("%d", nproc);
    /* Unbound, as the built-in launcher's workers, and yielding while they wait: a rank's reducer
     * thread spinning in MPI_Allreduce takes a core from the backward passes (3x slower steps
     * on the shared 2 cores). */
    const char *argv[] = {mpirun, "--allow-run-as-root", "--oversubscribe", "--bind-to", "none",
                          "--mca", "mpi_yield_when_idle", "1", "--mca",
                          "btl_vader_single_copy_mechanism", "none", "-np", np, self, "worker",
                          what, out, steps, batch, model, NULL};
    /* The ranks share the processors, as the built-in launcher's workers do. */
    g_autofree char *threads = g_strdup_printf("%d", MAX(1, (int)g_get_num_processors() / nproc));
    g_auto(GStrv) env = g_environ_setenv(g_get_environ(), "FTH_NUM_THREADS", threads, FALSE);
    int status;
    if (g_spawn_sync(NULL, (char **)argv, env, G_SPAWN_DEFAULT, NULL, NULL, NULL, NULL, &status,
                     &error) &&
        g_spawn_check_wait_status(status, &error))
      return TRUE;
  }
  fprintf(stderr, "%s\n", error->message);
  g_error_free(error);
  return FALSE;
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
  if (argc >= 7 && strcmp(argv[1], "worker") == 0)
    return worker(argv);
  int nproc = argc > 1 ? atoi(argv[1]) : 2, steps = argc > 2 ? atoi(argv[2]) : 30;
  int batch = argc > 3 ? atoi(argv[3]) : 256;
  const char *model = argc > 4 ? argv[4] : "fmnist-cnn";
  if (nproc < 2 || steps < 1 || batch < nproc) {
    fprintf(stderr, "usage: bench-parallel [NPROC >= 2] [STEPS] [BATCH >= NPROC] "
                    "[fmnist-cnn | wide-mlp]\n");
    return 2;
  }
  g_autofree char *self = g_file_read_link("/proc/self/exe", NULL);
  g_autofree char *dir = g_dir_make_tmp("fth-bench-parallel-XXXXXX", NULL);
  g_autofree char *reduce_out = g_build_filename(dir, "reduce", NULL);
  g_autofree char *train_out = g_build_filename(dir, "train", NULL);
  g_autofree char *steps_s = g_strdup_printf("%d", steps), *batch_s = g_strdup_printf("%d", batch);
  if (!launch(self, NULL, nproc, "reduce", reduce_out, steps_s, batch_s, model))
    return 1;
  double reduce_s = read_number(reduce_out, NULL);
  double mb = (double)FTH_GRAD_BUCKET_BYTES / 1048576.0;
  printf("all-reduce, %d processes, %.0f MiB bucket: %.1f ms, %.0f MiB/s of bucket per second\n\n",
         nproc, mb, reduce_s * 1e3, mb / reduce_s);

  /* One process: the trainer alone, in this process. */
  g_autofree char *one_out = g_strdup_printf("%s.single", train_out);
  if (train_steps(NULL, model, FALSE, steps, batch, one_out) != 0)
    return 1;
  double one = read_number(one_out, NULL);
  printf("%s, global batch %d, %d steps              ms/step   images/s   vs one process\n",
         model, batch, steps);
  printf("  one process                                %7.1f   %8.0f   1.00x\n",
         one / steps * 1e3, steps * batch / one);
  g_autofree char *mpirun = FTH_HAVE_MPI ? g_find_program_in_path("mpirun") : NULL;
  const char *ways[] = {"after", "overlap"};
  for (int m = 0; m < (mpirun != NULL ? 2 : 1); m++) {
    for (int w = 0; w < 2; w++) {
      if (!launch(self, m == 1 ? mpirun : NULL, nproc, ways[w], train_out, steps_s, batch_s,
                  model))
        return 1;
      g_autofree char *rank0 = g_strdup_printf("%s.0", train_out);
      int early = 0;
      double many = read_number(rank0, &early);
      printf("  %d %s, %-29s %7.1f   %8.0f   %.2fx", nproc, m == 1 ? "MPI ranks" : "processes",
             w == 0 ? "summed after backward" : "overlapped with backward", many / steps * 1e3,
             steps * batch / many, one / many);
      if (w == 1)
        printf("   (rank 0: %d buckets summed during the backward pass)", early);
      printf("\n");
      for (int r = 0; r < nproc; r++) {
        g_autofree char *f = g_strdup_printf("%s.%d", train_out, r);
        g_unlink(f);
      }
    }
  }
  g_unlink(one_out);
  g_unlink(reduce_out);
  g_rmdir(dir);
  return 0;
}
