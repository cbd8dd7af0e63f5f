/* The local communicator's collective timeout: a rank that never joins an all-reduce or barrier
 * fails the others within the timeout, naming it; a rank that closes its socket fails them at
 * once; the launcher ends a training run whose worker was stopped with SIGSTOP and names that
 * rank, as does `fathom train --comm-timeout`; a run that does not hang gives the same bits
 * whatever the timeout.
 *
 * The two ranks of the communicator tests are threads of this process; the launcher's workers
 * are this program run again ("worker" as the first argument). */
#include <fathom/parallel.h>
#include <fathom/store.h>
#include <fathom/train.h>
#include <gio/gio.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "fixtures.h"

enum { N_SAMPLES = 48, S = 8, N_CLASSES = 3, BATCH = 12, EPOCHS = 3 };

static const char *mlp_recipe =
  "{\"name\": \"timeout-mlp\", \"input\": {\"shape\": [1, 8, 8]},"
  " \"layers\": [{\"type\": \"flatten\"}, {\"type\": \"linear\", \"out_features\": 8},"
  "  {\"type\": \"relu\"}, {\"type\": \"linear\", \"out_features\": \"classes\"}],"
  " \"train\": {\"optimizer\": \"sgd\", \"lr\": 0.1, \"momentum\": 0.9, \"batch\": 12,"
  "  \"epochs\": 3}}";

static char *self_exe;
static char *tmp_root;

/* ---- Workers -------------------------------------------------------------------------------- */

/* Trains EPOCHS epochs as this process's rank; stop_rank stops itself (SIGSTOP) before the
 * second epoch. Rank 0 writes the parameter values to OUTDIR/weights.bin. */
static gboolean
train(FthComm *comm, const char *out_dir, int stop_rank, GError **error)
{
  g_autoptr(FthRecipe) recipe = fth_recipe_parse(mlp_recipe, -1, "test", NULL, error);
  if (recipe == NULL)
    return FALSE;
  guint8 pixels[N_SAMPLES * S * S];
  int32_t labels[N_SAMPLES];
  uint32_t idx[N_SAMPLES];
  GRand *rand = g_rand_new_with_seed(5);
  for (int i = 0; i < N_SAMPLES; i++) {
    labels[i] = i % N_CLASSES;
    idx[i] = (uint32_t)i;
    for (int p = 0; p < S * S; p++)
      pixels[i * S * S + p] =
        (guint8)(p / S == 2 * labels[i] + 1 ? 200 : g_rand_int_range(rand, 0, 60));
  }
  g_rand_free(rand);
  FthSamples s = {.pixels = pixels, .labels = labels, .n = N_SAMPLES, .channels = 1, .height = S,
                  .width = S};
  FthTrainerConfig cfg = {.seed = 3, .batch = BATCH, .epochs = EPOCHS, .n_train = N_SAMPLES,
                          .optim = recipe->train.optim, .schedule = recipe->train.schedule};
  cfg.schedule.total_steps = EPOCHS * (N_SAMPLES / BATCH);
  g_autoptr(FthTrainer) t = fth_trainer_new(recipe, N_CLASSES, &cfg, error);
  if (t == NULL || !fth_trainer_set_comm(t, comm, 64 * sizeof(float), error))
    return FALSE;
  for (int e = 0; e < EPOCHS; e++) {
    if (e == 1 && fth_comm_rank(comm) == stop_rank)
      raise(SIGSTOP);
    FthTrainProgress p = {0};
    gboolean interrupted;
    if (!fth_trainer_run_epoch(t, &s, idx, N_SAMPLES, e, 0, 0, &p, NULL, NULL, NULL,
                               &interrupted, error))
      return FALSE;
  }
  if (fth_comm_rank(comm) != 0)
    return TRUE;
  FthGraph *g = fth_trainer_model(t)->graph;
  g_autoptr(GByteArray) bytes = g_byte_array_new();
  for (int i = 0; i < fth_graph_n_params(g); i++) {
    FthTensor v;
    if (fth_graph_tensor(g, fth_graph_param(g, i), &v) != FTH_STATUS_OK)
      return FALSE;
    g_byte_array_append(bytes, v.data, (guint)fth_tensor_nbytes(&v));
  }
  g_autofree char *path = g_build_filename(out_dir, "weights.bin", NULL);
  return g_file_set_contents(path, (const char *)bytes->data, bytes->len, error);
}

/* worker OUTDIR STOP_RANK */
static int
worker(char **argv)
{
  GError *error = NULL;
  FthComm *comm = NULL;
  gboolean ok = fth_comm_from_env(&comm, &error) && comm != NULL &&
                train(comm, argv[2], atoi(argv[3]), &error);
  fth_comm_free(comm);
  if (ok)
    return 0;
  fprintf(stderr, "%s\n", error != NULL ? error->message : "not started by the launcher");
  gboolean peer = g_error_matches(error, FTH_PARALLEL_ERROR, FTH_PARALLEL_ERROR_PEER) ||
                  g_error_matches(error, FTH_PARALLEL_ERROR, FTH_PARALLEL_ERROR_TIMEOUT);
  g_clear_error(&error);
  return peer ? FTH_EXIT_PEER_LOST : 1;
}

/* ---- Two ranks in threads ------------------------------------------------------------------- */

typedef struct {
  char *dir;
  int rank;
  double timeout_s;
  FthComm *comm;
  GError *error;
} Rank;

static gpointer
join_rank(gpointer data)
{
  Rank *r = data;
  r->comm = fth_comm_new_local(r->dir, r->rank, 2, 10, r->timeout_s, &r->error);
  return NULL;
}

/* Ranks 0 and 1 of a communicator in DIR (made fresh) with the given collective timeout. */
static void
join_two(const char *name, double timeout_s, Rank ranks[2])
{
  g_autofree char *dir = g_build_filename(tmp_root, name, NULL);
  g_assert_cmpint(g_mkdir_with_parents(dir, 0700), ==, 0);
  GThread *threads[2];
  for (int r = 0; r < 2; r++) {
    ranks[r] = (Rank){.dir = g_strdup(dir), .rank = r, .timeout_s = timeout_s};
    threads[r] = g_thread_new("rank", join_rank, &ranks[r]);
  }
  for (int r = 0; r < 2; r++) {
    g_thread_join(threads[r]);
    g_assert_no_error(ranks[r].error);
    g_assert_nonnull(ranks[r].comm);
  }
}

static void
free_two(Rank ranks[2])
{
  for (int r = 0; r < 2; r++) {
    fth_comm_free(ranks[r].comm);
    g_free(ranks[r].dir);
  }
}

/* Rank `waiting`'s all-reduce while the other rank does nothing: fails within timeout + 1 s,
 * naming the other rank and the operation, and leaves the report for the launcher. */
static void
check_all_reduce_times_out(int waiting)
{
  Rank ranks[2];
  g_autofree char *name = g_strdup_printf("idle-%d", 1 - waiting);
  join_two(name, 1.0, ranks);
  float buf[100] = {0};
  GError *error = NULL;
  gint64 start = g_get_monotonic_time();
  g_assert_false(fth_comm_all_reduce_sum(ranks[waiting].comm, buf, G_N_ELEMENTS(buf), &error));
  double took = (double)(g_get_monotonic_time() - start) / 1e6;
  g_assert_error(error, FTH_PARALLEL_ERROR, FTH_PARALLEL_ERROR_TIMEOUT);
  g_test_message("after %.2f s: %s", took, error->message);
  g_assert_cmpfloat(took, >=, 1.0);
  g_assert_cmpfloat(took, <, 2.0);
  g_autofree char *named = g_strdup_printf("rank %d of 2 sent nothing", 1 - waiting);
  g_assert_nonnull(strstr(error->message, named));
  g_assert_nonnull(strstr(error->message, "all-reduce"));
  g_clear_error(&error);

  g_autofree char *report_path = g_build_filename(ranks[0].dir, FTH_COMM_HUNG_FILE, NULL);
  g_autofree char *report = NULL;
  g_assert_true(g_file_get_contents(report_path, &report, NULL, NULL));
  g_assert_cmpint(atoi(report), ==, 1 - waiting);

  /* The streams are out of step now: later collectives fail at once. */
  start = g_get_monotonic_time();
  g_assert_false(fth_comm_barrier(ranks[waiting].comm, &error));
  g_assert_error(error, FTH_PARALLEL_ERROR, FTH_PARALLEL_ERROR_TIMEOUT);
  g_assert_cmpint(g_get_monotonic_time() - start, <, 100000);
  g_clear_error(&error);
  free_two(ranks);
}

static void
test_all_reduce_times_out(void)
{
  check_all_reduce_times_out(0);
  check_all_reduce_times_out(1);
}

/* Rank 1 sends more than the socket holds while rank 0 takes nothing: its send times out. */
static void
test_send_times_out(void)
{
  Rank ranks[2];
  join_two("send", 1.0, ranks);
  size_t n = (size_t)1 << 20;
  g_autofree float *buf = g_new0(float, n);
  GError *error = NULL;
  gint64 start = g_get_monotonic_time();
  g_assert_false(fth_comm_all_reduce_sum(ranks[1].comm, buf, n, &error));
  double took = (double)(g_get_monotonic_time() - start) / 1e6;
  g_assert_error(error, FTH_PARALLEL_ERROR, FTH_PARALLEL_ERROR_TIMEOUT);
  g_test_message("after %.2f s: %s", took, error->message);
  g_assert_cmpfloat(took, <, 2.0);
  g_assert_nonnull(strstr(error->message, "rank 0 of 2 took nothing"));
  g_clear_error(&error);
  free_two(ranks);
}

static void
test_barrier_times_out(void)
{
  Rank ranks[2];
  join_two("barrier", 1.0, ranks);
  GError *error = NULL;
  g_assert_false(fth_comm_barrier(ranks[0].comm, &error));
  g_assert_error(error, FTH_PARALLEL_ERROR, FTH_PARALLEL_ERROR_TIMEOUT);
  g_assert_nonnull(strstr(error->message, "barrier: rank 1 of 2 sent nothing for 1 s"));
  g_clear_error(&error);
  free_two(ranks);
}

/* A peer that closes its socket fails the collective at once, not after the timeout. */
static void
test_closed_peer_fails_at_once(void)
{
  Rank ranks[2];
  join_two("closed", 30.0, ranks);
  fth_comm_free(ranks[1].comm);
  ranks[1].comm = NULL;
  float buf[10] = {0};
  GError *error = NULL;
  gint64 start = g_get_monotonic_time();
  g_assert_false(fth_comm_all_reduce_sum(ranks[0].comm, buf, G_N_ELEMENTS(buf), &error));
  g_assert_error(error, FTH_PARALLEL_ERROR, FTH_PARALLEL_ERROR_PEER);
  g_assert_cmpint(g_get_monotonic_time() - start, <, 1000000);
  g_clear_error(&error);
  free_two(ranks);
}

/* ---- The launcher --------------------------------------------------------------------------- */

static gboolean
launch(const char *out_dir, const char *stop_rank, int *failed_rank, GError **error)
{
  const char *argv[] = {self_exe, "worker", out_dir, stop_rank, NULL};
  return fth_launch_workers(argv, 2, failed_rank, error);
}

static void
test_stopped_worker(void)
{
  g_autofree char *dir = g_build_filename(tmp_root, "stopped", NULL);
  g_assert_cmpint(g_mkdir_with_parents(dir, 0700), ==, 0);
  g_setenv(FTH_ENV_COMM_TIMEOUT, "1", TRUE);
  GError *error = NULL;
  int failed = -2;
  gint64 start = g_get_monotonic_time();
  gboolean ok = launch(dir, "1", &failed, &error);
  double took = (double)(g_get_monotonic_time() - start) / 1e6;
  g_unsetenv(FTH_ENV_COMM_TIMEOUT);
  g_assert_false(ok);
  g_assert_error(error, FTH_PARALLEL_ERROR, FTH_PARALLEL_ERROR_WORKER);
  g_test_message("after %.2f s: %s", took, error->message);
  g_assert_cmpint(failed, ==, 1);
  g_assert_nonnull(strstr(error->message, "rank 1 of 2"));
  g_assert_nonnull(strstr(error->message, "hung"));
  /* Well before the launcher's grace period would have had to SIGKILL the stopped worker. */
  g_assert_cmpfloat(took, <, 4.5);
  g_error_free(error);
}

static GBytes *
run_weights(const char *name, const char *timeout)
{
  g_autofree char *dir = g_build_filename(tmp_root, name, NULL);
  g_assert_cmpint(g_mkdir_with_parents(dir, 0700), ==, 0);
  if (timeout != NULL)
    g_setenv(FTH_ENV_COMM_TIMEOUT, timeout, TRUE);
  GError *error = NULL;
  int failed = -2;
  gboolean ok = launch(dir, "-1", &failed, &error);
  g_unsetenv(FTH_ENV_COMM_TIMEOUT);
  g_assert_no_error(error);
  g_assert_true(ok);
  g_assert_cmpint(failed, ==, -1);
  g_autofree char *path = g_build_filename(dir, "weights.bin", NULL);
  g_autofree char *data = NULL;
  gsize len = 0;
  g_assert_true(g_file_get_contents(path, &data, &len, &error));
  return g_bytes_new_take(g_steal_pointer(&data), len);
}

static void
test_normal_run_unaffected(void)
{
  g_autoptr(GBytes) short_timeout = run_weights("normal-short", "10");
  g_autoptr(GBytes) default_timeout = run_weights("normal-default", NULL);
  g_assert_cmpuint(g_bytes_get_size(short_timeout), >, 0);
  g_assert_true(g_bytes_equal(short_timeout, default_timeout));
}

/* The child processes of `pid` (Linux), in the order they were started. */
static GArray *
children_of(GPid pid)
{
  GArray *kids = g_array_new(FALSE, FALSE, sizeof(int));
  g_autofree char *path = g_strdup_printf("/proc/%d/task/%d/children", (int)pid, (int)pid);
  g_autofree char *text = NULL;
  if (!g_file_get_contents(path, &text, NULL, NULL))
    return kids;
  g_auto(GStrv) words = g_strsplit(g_strstrip(text), " ", -1);
  for (int i = 0; words[i] != NULL; i++)
    if (*words[i] != '\0') {
      int kid = atoi(words[i]);
      g_array_append_val(kids, kid);
    }
  return kids;
}

/* `fathom train --nproc 2 --comm-timeout 2` with rank 1 stopped after the first checkpoint: the
 * run ends within a few seconds naming rank 1, and the checkpoint stays. (2 s: rank 1 waits while
 * rank 0 alone validates and writes the checkpoint, which a loaded machine may make slow.) */
static void
test_cli_stopped_worker(void)
{
  const char *bin = g_getenv("FATHOM_BIN");
  if (bin == NULL || !g_file_test("/proc/self/task", G_FILE_TEST_IS_DIR)) {
    g_test_skip("needs FATHOM_BIN and /proc");
    return;
  }
  g_autofree char *project = g_build_filename(tmp_root, "cli-project", NULL);
  g_autofree char *ckpt = g_build_filename(tmp_root, "cli-ckpt", NULL);
  g_autofree char *recipe = g_build_filename(tmp_root, "cli-mlp.json", NULL);
  g_assert_true(g_file_set_contents(recipe, mlp_recipe, -1, NULL));
  const FthTestBars bars = {.n_items = N_SAMPLES, .size = S, .n_classes = N_CLASSES, .seed = 4,
                            .noise_max = 60, .bar_min = 180};
  const char *const names[N_CLASSES] = {"top", "middle", "bottom"};
  g_object_unref(fth_test_bars_project_new(project, &bars, names, N_SAMPLES, NULL, NULL));
  GError *error = NULL;
  /* Epochs enough to outlast the test: the stop ends the run. */
  g_autoptr(GSubprocess) p = g_subprocess_new(
    G_SUBPROCESS_FLAGS_STDOUT_SILENCE | G_SUBPROCESS_FLAGS_STDERR_PIPE, &error, bin, "train",
    project, "--recipe", recipe, "--nproc", "2", "--comm-timeout", "2", "--epochs", "100000",
    "--device", "cpu", "--checkpoint", ckpt, "-q", NULL);
  g_assert_no_error(error);
  GPid pid = (GPid)atoi(g_subprocess_get_identifier(p));
  g_autofree char *sidecar = g_build_filename(ckpt, "checkpoint.json", NULL);
  gint64 give_up = g_get_monotonic_time() + 30 * G_USEC_PER_SEC;
  while (!g_file_test(sidecar, G_FILE_TEST_EXISTS) && g_get_monotonic_time() < give_up)
    g_usleep(20000);
  g_assert_true(g_file_test(sidecar, G_FILE_TEST_EXISTS));
  g_autoptr(GArray) workers = children_of(pid);
  g_assert_cmpuint(workers->len, ==, 2);
  int rank1 = g_array_index(workers, int, 1);
  g_assert_cmpint(kill(rank1, SIGSTOP), ==, 0);
  gint64 stopped = g_get_monotonic_time();
  g_autofree char *err_text = NULL;
  g_assert_true(g_subprocess_communicate_utf8(p, NULL, NULL, NULL, &err_text, &error));
  g_assert_no_error(error);
  double took = (double)(g_get_monotonic_time() - stopped) / 1e6;
  g_test_message("after %.2f s: %s", took, err_text);
  g_assert_false(g_subprocess_get_successful(p));
  g_assert_nonnull(strstr(err_text, "rank 1 of 2"));
  g_assert_nonnull(strstr(err_text, "hung"));
  g_assert_cmpfloat(took, <, 5.5);
  g_assert_true(g_file_test(sidecar, G_FILE_TEST_EXISTS));
}

static void
test_bad_environment(void)
{
  g_setenv(FTH_ENV_RANK, "0", TRUE);
  g_setenv(FTH_ENV_WORLD_SIZE, "1", TRUE);
  g_setenv(FTH_ENV_DIST_DIR, tmp_root, TRUE);
  const char *bad[] = {"0", "-3", "abc", "5s"};
  for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
    g_setenv(FTH_ENV_COMM_TIMEOUT, bad[i], TRUE);
    FthComm *comm = NULL;
    GError *error = NULL;
    g_assert_false(fth_comm_from_env(&comm, &error));
    g_assert_error(error, FTH_PARALLEL_ERROR, FTH_PARALLEL_ERROR_INVALID);
    g_assert_nonnull(strstr(error->message, FTH_ENV_COMM_TIMEOUT));
    g_clear_error(&error);
  }
  g_unsetenv(FTH_ENV_COMM_TIMEOUT);
  g_unsetenv(FTH_ENV_RANK);
  g_unsetenv(FTH_ENV_WORLD_SIZE);
  g_unsetenv(FTH_ENV_DIST_DIR);
}

int
main(int argc, char **argv)
{
  if (argc == 4 && strcmp(argv[1], "worker") == 0)
    return worker(argv);
  g_test_init(&argc, &argv, NULL);
  self_exe = g_file_read_link("/proc/self/exe", NULL);
  tmp_root = g_dir_make_tmp("fth-comm-timeout-XXXXXX", NULL);
  g_test_add_func("/comm-timeout/all-reduce", test_all_reduce_times_out);
  g_test_add_func("/comm-timeout/send", test_send_times_out);
  g_test_add_func("/comm-timeout/barrier", test_barrier_times_out);
  g_test_add_func("/comm-timeout/closed-peer", test_closed_peer_fails_at_once);
  g_test_add_func("/comm-timeout/bad-environment", test_bad_environment);
  g_test_add_func("/comm-timeout/stopped-worker", test_stopped_worker);
  g_test_add_func("/comm-timeout/normal-run", test_normal_run_unaffected);
  g_test_add_func("/comm-timeout/cli-stopped-worker", test_cli_stopped_worker);
  int status = g_test_run();
  train_test_rmtree(tmp_root);
  g_free(tmp_root);
  g_free(self_exe);
  return status;
}
