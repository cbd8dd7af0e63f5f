/* Data parallel under mpirun (the MPI communicator): the collectives and the overlapped gradient
 * reducer on 2 ranks against float64 sums, and `mpirun -np 2 fathom train` equal to one process
 * with the same global batch and to `fathom train --nproc 2`, with rank 0 alone writing the store.
 *
 * Skipped (77) in a build without the mpi feature, or without mpirun or the fathom command
 * (FATHOM_BIN). Under AddressSanitizer the ranks run without leak detection: Open MPI leaks at
 * start-up in components it unloads again in MPI_Finalize, which leaves no frame to suppress
 * narrowly; address errors and UBSan stay on, and the same code's leaks are checked with the
 * local communicator (test-parallel). */
#include <fathom/parallel.h>
#include <fathom/safetensors.h>
#include <fathom/train.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "fixtures.h"
#include "fth-config.h"

enum { N_SAMPLES = 98, S = 8, N_CLASSES = 3, RANKS = 2 };

static const char *mlp_recipe =
  "{\"name\": \"mpi-mlp\", \"input\": {\"shape\": [1, 8, 8]},"
  " \"layers\": [{\"type\": \"flatten\"}, {\"type\": \"linear\", \"out_features\": 16},"
  "  {\"type\": \"relu\"}, {\"type\": \"linear\", \"out_features\": \"classes\"}],"
  " \"train\": {\"optimizer\": \"sgd\", \"lr\": 0.1, \"momentum\": 0.9, \"batch\": 24,"
  "  \"epochs\": 3}}";

static char *self_exe, *fathom_bin, *mpirun, *tmp_root;
static char **mpi_env;   /* the environment of mpirun and its ranks; NULL: this process's */

/* ---- The worker: this program under mpirun ------------------------------------------------- */

/* Rank r's value i of case k: reproducible from (k, r, i) alone, magnitudes 1e-3 .. 1e3. */
static float
value_at(int k, int r, size_t i)
{
  guint32 h = (guint32)(k * 7919 + r * 104729) ^ (guint32)(i * 2654435761u);
  h ^= h >> 15;
  h *= 2246822519u;
  h ^= h >> 13;
  float mag = powf(10.0f, (float)(h % 7) - 3.0f);
  return ((h >> 8) & 1 ? -mag : mag) * (1.0f + (float)((h >> 9) % 1000) / 1000.0f);
}

/* |got - sum_r scale_r * value_at(k, r, i)| within float rounding of the terms. */
static gboolean
near_sum(float got, int k, size_t i, int size, float scale_of_rank1)
{
  double want = 0, mag = 0;
  for (int r = 0; r < size; r++) {
    double x = (double)(r == 1 ? scale_of_rank1 : 0.5f) * value_at(k, r, i);
    want += x;
    mag += fabs(x);
  }
  if (fabs(got - want) <= 2e-7 * mag)
    return TRUE;
  fprintf(stderr, "case %d at %zu: %.9g, expected %.9g\n", k, i, got, want);
  return FALSE;
}

static int
worker_collectives(void)
{
  GError *error = NULL;
  FthComm *comm = fth_comm_new_mpi(&error);
  if (comm == NULL) {
    fprintf(stderr, "%s\n", error->message);
    g_error_free(error);
    return 1;
  }
  int rank = fth_comm_rank(comm), size = fth_comm_size(comm);
  /* One machine: the local rank is the rank. */
  gboolean ok = size == RANKS && fth_comm_local_rank(comm) == rank &&
                strcmp(fth_comm_name(comm), "mpi") == 0;
  /* Each rank its own scale: rank 0 halves, rank 1 quarters. */
  float scale = rank == 1 ? 0.25f : 0.5f;
  const size_t n = 1000;
  float *buf = g_new(float, n);
  for (size_t i = 0; i < n; i++)
    buf[i] = value_at(0, rank, i);
  ok = ok && fth_comm_all_reduce_scaled(comm, buf, n, scale, &error);
  for (size_t i = 0; i < n && ok; i++)
    ok = near_sum(buf[i], 0, i, size, 0.25f);
  g_free(buf);

  /* The gradient reducer: 5 parameters, buckets of 64 floats ({p4 p3} {p2} {p1 p0}), the
   * gradients announced last first as a backward pass would, from the caller's thread while
   * the reducer's thread talks to MPI. */
  enum { NP = 5 };
  const size_t counts[NP] = {3, 40, 100, 20, 30};
  FthParam params[NP];
  for (int p = 0; p < NP; p++) {
    params[p] = (FthParam){"p", g_new0(float, counts[p]), g_new(float, counts[p]), counts[p],
                           false};
    for (size_t i = 0; i < counts[p]; i++)
      params[p].grad[i] = value_at(1 + p, rank, i);
  }
  FthGradReducer *red = fth_grad_reducer_new(comm, params, NP, 64 * sizeof(float));
  ok = ok && fth_grad_reducer_n_buckets(red) == 3;
  int early = -1;
  if (ok) {
    fth_grad_reducer_begin(red, scale);
    for (int p = NP - 1; p >= 0; p--) {
      fth_grad_reducer_ready(red, (size_t)p);
      g_usleep(2000);
    }
    ok = fth_grad_reducer_finish(red, &early, &error);
  }
  for (int p = 0; p < NP; p++) {
    for (size_t i = 0; i < counts[p] && ok; i++)
      ok = near_sum(params[p].grad[i], 1 + p, i, size, 0.25f);
    g_free(params[p].value);
    g_free(params[p].grad);
  }
  fth_grad_reducer_free(red);

  gint64 token = rank == size - 1 ? 424242 : -1;
  ok = ok && fth_comm_broadcast(comm, &token, sizeof token, size - 1, &error) &&
       fth_comm_barrier(comm, &error) && token == 424242;
  if (error != NULL) {
    fprintf(stderr, "rank %d: %s\n", rank, error->message);
    g_error_free(error);
  }
  if (!ok)
    fth_comm_set_failed(comm);
  else if (rank == 0)
    printf("rank 0: %d of 3 buckets summed before finish\n", early);
  fth_comm_free(comm);
  return ok ? 0 : 1;
}

/* Rank 1 fails before a collective that rank 0 is already in: it leaves without waiting for
 * rank 0 (fth_comm_set_failed), and mpirun ends rank 0. */
static int
worker_fail(void)
{
  GError *error = NULL;
  FthComm *comm = fth_comm_new_mpi(&error);
  if (comm == NULL) {
    fprintf(stderr, "%s\n", error->message);
    g_error_free(error);
    return 1;
  }
  if (fth_comm_rank(comm) == 1) {
    fth_comm_set_failed(comm);
    fth_comm_free(comm);
    return 3;
  }
  float x = 1;
  gboolean ok = fth_comm_all_reduce_sum(comm, &x, 1, &error);
  g_clear_error(&error);
  fth_comm_free(comm);
  return ok ? 0 : 1;
}

/* ---- Tests -------------------------------------------------------------------------------- */

/* Runs argv in env (NULL: this process's); its status must be success. Returns its stdout. */
static char *
run_ok(const char *const *argv, char **env)
{
  g_autofree char *err = NULL;
  char *out = NULL;
  int status;
  GError *error = NULL;
  g_assert_true(g_spawn_sync(NULL, (char **)argv, env, G_SPAWN_DEFAULT, NULL, NULL, &out, &err,
                             &status, &error));
  g_assert_no_error(error);
  if (!g_spawn_check_wait_status(status, NULL))
    g_test_message("%s failed:\n%s\n%s", argv[0], out, err);
  g_assert_true(g_spawn_check_wait_status(status, NULL));
  return out;
}

/* mpirun -np 2 with what it needs here: root (containers), more ranks than cores, waiting ranks
 * that yield the shared cores, no single-copy shared memory (ptrace is often refused in
 * containers). */
#define MPIRUN_ARGS(np)                                                                       \
  mpirun, "--allow-run-as-root", "--oversubscribe", "--bind-to", "none", "--mca",              \
    "mpi_yield_when_idle", "1", "--mca", "btl_vader_single_copy_mechanism", "none", "-np", np

static void
test_collectives(void)
{
  const char *argv[] = {MPIRUN_ARGS("2"), self_exe, "worker", NULL};
  g_autofree char *out = run_ok(argv, mpi_env);
  g_test_message("%s", out);
  g_assert_nonnull(strstr(out, "rank 0: "));
}

static void
test_failed_rank(void)
{
  /* Under `timeout`: a rank waiting forever for the failed one would hang the test. */
  const char *argv[] = {"timeout", "60", MPIRUN_ARGS("2"), self_exe, "worker-fail", NULL};
  g_autofree char *err = NULL;
  int status;
  GError *error = NULL;
  g_assert_true(g_spawn_sync(NULL, (char **)argv, mpi_env,
                             G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, NULL,
                             &err, &status, &error));
  g_assert_no_error(error);
  g_test_message("%s", err);
  g_assert_true(WIFEXITED(status));
  g_assert_cmpint(WEXITSTATUS(status), !=, 0);
  g_assert_cmpint(WEXITSTATUS(status), !=, 124);  /* timeout's: the job hung */
}

/* The bar images of test-parallel, as a project in TMP_ROOT/NAME. */
static char *
make_project(const char *name)
{
  char *dir = g_build_filename(tmp_root, name, NULL);
  train_test_bar_project(dir, N_SAMPLES, S, N_CLASSES);
  return dir;
}

static double
max_diff(const GByteArray *a, const GByteArray *b)
{
  g_assert_cmpuint(a->len, ==, b->len);
  const float *x = (const float *)(const void *)a->data, *y = (const float *)(const void *)b->data;
  double d = 0;
  for (guint i = 0; i < a->len / sizeof(float); i++)
    d = fmax(d, fabs(x[i] - y[i]));
  return d;
}

static void
test_train(void)
{
  /* mpirun first, on a project without splits: rank 0 makes and stores them while rank 1 waits;
   * then one process and the built-in launcher on the stored splits. */
  g_autofree char *project = make_project("project");
  g_autofree char *recipe = g_build_filename(tmp_root, "mlp.json", NULL);
  g_autofree char *ck_mpi = g_build_filename(tmp_root, "ck-mpi", NULL);
  g_autofree char *ck_one = g_build_filename(tmp_root, "ck-one", NULL);
  g_autofree char *ck_nproc = g_build_filename(tmp_root, "ck-nproc", NULL);
  GError *error = NULL;
  g_assert_true(g_file_set_contents(recipe, mlp_recipe, -1, &error));
  const char *mpi[] = {MPIRUN_ARGS("2"), fathom_bin, "train", project, "--recipe", recipe,
                       "--checkpoint", ck_mpi, "--device", "cpu", "--json", NULL};
  g_autofree char *out = run_ok(mpi, mpi_env);
  /* mpirun merges the ranks' output: rank 0's report alone. */
  const char *report = strstr(out, "\"type\":\"report\"");
  g_assert_nonnull(report);
  g_assert_null(strstr(report + 1, "\"type\":\"report\""));
  const char *one[] = {fathom_bin, "train", project, "--recipe", recipe, "--checkpoint", ck_one,
                       "--device", "cpu", "-q", NULL};
  g_free(run_ok(one, NULL));
  const char *nproc[] = {fathom_bin, "train", project, "--recipe", recipe, "--checkpoint",
                         ck_nproc, "--device", "cpu", "--nproc", "2", "-q", NULL};
  g_free(run_ok(nproc, NULL));

  g_autoptr(GByteArray) w_mpi = train_test_checkpoint_weights(ck_mpi);
  g_autoptr(GByteArray) w_one = train_test_checkpoint_weights(ck_one);
  g_autoptr(GByteArray) w_nproc = train_test_checkpoint_weights(ck_nproc);
  double d_one = max_diff(w_mpi, w_one), d_nproc = max_diff(w_mpi, w_nproc);
  g_test_message("mpirun -np 2 against one process: max |w - w_ref| = %.3g; against --nproc 2: "
                 "%.3g", d_one, d_nproc);
  g_assert_cmpfloat(d_one, <, 1e-6);
  g_assert_cmpfloat(d_nproc, <, 1e-6);

  /* One run per training in the store, each finished: rank 1 wrote nothing. */
  g_autoptr(FthStore) store = fth_store_open(project, &error);
  g_autoptr(GPtrArray) runs = fth_store_list_runs(store, "train", &error);
  g_assert_no_error(error);
  g_assert_cmpuint(runs->len, ==, 3);
  for (guint i = 0; i < runs->len; i++)
    g_assert_cmpint(((FthRun *)runs->pdata[i])->state, ==, FTH_RUN_DONE);
}

static void
test_launcher_option(void)
{
  /* --launcher mpi outside mpirun: a world of one, trained as one process. */
  g_autofree char *project = make_project("alone");
  g_autofree char *recipe = g_build_filename(tmp_root, "alone.json", NULL);
  g_autofree char *ckpt = g_build_filename(tmp_root, "ck-alone", NULL);
  GError *error = NULL;
  g_assert_true(g_file_set_contents(recipe, mlp_recipe, -1, &error));
  const char *alone[] = {fathom_bin, "train", project, "--recipe", recipe, "--checkpoint", ckpt,
                         "--device", "cpu", "--launcher", "mpi", "-q", NULL};
  g_free(run_ok(alone, mpi_env));
  g_assert_true(g_file_test(ckpt, G_FILE_TEST_IS_DIR));
  /* --nproc with --launcher mpi is a usage error. */
  const char *both[] = {fathom_bin, "train", project, "--launcher", "mpi", "--nproc", "2", NULL};
  g_autofree char *err = NULL;
  int status;
  g_assert_true(g_spawn_sync(NULL, (char **)both, NULL, G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL,
                             NULL, &err, &status, &error));
  g_assert_false(g_spawn_check_wait_status(status, NULL));
  g_assert_nonnull(strstr(err, "mpirun -np N"));
}

int
main(int argc, char **argv)
{
  if (argc == 2 && strcmp(argv[1], "worker") == 0)
    return worker_collectives();
  if (argc == 2 && strcmp(argv[1], "worker-fail") == 0)
    return worker_fail();
#if !FTH_HAVE_MPI
  fprintf(stderr, "skipped: built without the mpi feature (meson -Dmpi=enabled)\n");
  return 77;
#endif
  mpirun = g_find_program_in_path("mpirun");
  const char *bin = g_getenv("FATHOM_BIN");
  if (mpirun == NULL || bin == NULL || !g_file_test(bin, G_FILE_TEST_IS_EXECUTABLE)) {
    fprintf(stderr, "skipped: %s not found\n", mpirun == NULL ? "mpirun" : "the fathom command");
    g_free(mpirun);
    return 77;
  }
  fathom_bin = g_strdup(bin);
  g_test_init(&argc, &argv, NULL);
  self_exe = g_file_read_link("/proc/self/exe", NULL);
  tmp_root = g_dir_make_tmp("fth-mpi-XXXXXX", NULL);
  /* The ranks of one mpirun share the 2 cores: one thread each. */
  g_setenv("FTH_NUM_THREADS", "1", FALSE);
#if defined(__SANITIZE_ADDRESS__)
  const char *asan = g_getenv("ASAN_OPTIONS");
  g_autofree char *no_leaks = g_strdup_printf("%s%sdetect_leaks=0", asan ? asan : "",
                                              asan ? ":" : "");
  mpi_env = g_environ_setenv(g_get_environ(), "ASAN_OPTIONS", no_leaks, TRUE);
#endif
  g_test_add_func("/mpi/collectives", test_collectives);
  g_test_add_func("/mpi/failed-rank", test_failed_rank);
  g_test_add_func("/mpi/train", test_train);
  g_test_add_func("/mpi/launcher-option", test_launcher_option);
  int status = g_test_run();
  train_test_rmtree(tmp_root);
  g_free(tmp_root);
  g_free(self_exe);
  g_free(fathom_bin);
  g_free(mpirun);
  g_strfreev(mpi_env);
  return status;
}
