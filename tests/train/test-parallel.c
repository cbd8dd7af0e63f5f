/* Data parallel with the local communicator: the all-reduce, broadcast and bucketed gradient
 * reduction against float64 references on awkward sizes; 2 and 3 worker processes with global
 * batch B end with the weights of one process with batch B; a model with batch norm trains; a
 * worker killed mid-run fails the launcher with its rank named.
 *
 * The workers are this program run again by the launcher ("worker" as the first argument), so
 * each starts fresh (no thread pool inherited through fork). */
#include <fathom/parallel.h>
#include <fathom/safetensors.h>
#include <fathom/train.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fixtures.h"
#include "fth-config.h"
#if FTH_HAVE_CUDA
#include <fathom/backend.h>

#include "../../engine/graph/backend-cuda.h"
#include "../../engine/train/parallel-private.h"
#endif

enum { N_SAMPLES = 98, S = 8, N_CLASSES = 3, BATCH = 24, EPOCHS = 3 };

/* 98 samples in batches of 24: the last global batch has 2 samples, fewer than 3 ranks. */
static const char *mlp_recipe =
  "{\"name\": \"dp-mlp\", \"input\": {\"shape\": [1, 8, 8]},"
  " \"layers\": [{\"type\": \"flatten\"}, {\"type\": \"linear\", \"out_features\": 16},"
  "  {\"type\": \"relu\"}, {\"type\": \"linear\", \"out_features\": \"classes\"}],"
  " \"train\": {\"optimizer\": \"sgd\", \"lr\": 0.1, \"momentum\": 0.9, \"batch\": 24,"
  "  \"epochs\": 3}}";

static const char *bn_recipe =
  "{\"name\": \"dp-bn\", \"input\": {\"shape\": [1, 8, 8]},"
  " \"layers\": [{\"type\": \"conv2d\", \"out_channels\": 4, \"kernel\": 3, \"padding\": 1},"
  "  {\"type\": \"batch_norm\"}, {\"type\": \"relu\"}, {\"type\": \"flatten\"},"
  "  {\"type\": \"linear\", \"out_features\": \"classes\"}],"
  " \"train\": {\"optimizer\": \"adamw\", \"lr\": 0.01, \"batch\": 24, \"epochs\": 3}}";

/* A token tagger: its loss is a mean over the tokens that are not padding, so a rank's share of a
 * batch is its count of such tokens, not of samples. */
enum { TOKENS = 8, VOCAB = 40 };
static const char *tagger_recipe =
  "{\"name\": \"dp-tagger\", \"input\": {\"tokens\": 8, \"vocab\": 40, \"task\": \"tagging\"},"
  " \"layers\": [{\"type\": \"embedding\", \"dim\": 8}, {\"type\": \"relu\"},"
  "  {\"type\": \"linear\", \"out_features\": \"classes\"}],"
  " \"train\": {\"optimizer\": \"sgd\", \"lr\": 0.5, \"batch\": 24, \"epochs\": 3}}";

static char *self_exe;
static char *tmp_root;

/* ---- Workers -------------------------------------------------------------------------------- */

/* Rank r's buffer of n values for case k: reproducible from (k, r, i) alone. */
static float
value_at(int k, int r, size_t i)
{
  guint32 h = (guint32)(k * 7919 + r * 104729) ^ (guint32)(i * 2654435761u);
  h ^= h >> 15;
  h *= 2246822519u;
  h ^= h >> 13;
  /* Magnitudes from 1e-3 to 1e3, both signs: the sums round differently in float32. */
  float mag = powf(10.0f, (float)(h % 7) - 3.0f);
  return ((h >> 8) & 1 ? -mag : mag) * (1.0f + (float)((h >> 9) % 1000) / 1000.0f);
}

static int
fail(int rank, const char *what, size_t i, double got, double want)
{
  fprintf(stderr, "rank %d: %s at %zu: %.9g, expected %.9g\n", rank, what, i, got, want);
  return 1;
}

static int
report_error(GError *error)
{
  fprintf(stderr, "%s\n", error->message);
  int peer = error->domain == FTH_PARALLEL_ERROR && error->code == FTH_PARALLEL_ERROR_PEER;
  g_error_free(error);
  return peer ? FTH_EXIT_PEER_LOST : 1;
}

static int
worker_collectives(void)
{
  GError *error = NULL;
  FthComm *comm = NULL;
  if (!fth_comm_from_env(&comm, &error))
    return report_error(error);
  int rank = fth_comm_rank(comm), size = fth_comm_size(comm);
  /* Around the 2^18-value chunks rank 0 sums at a time. */
  const size_t sizes[] = {1, 7, 1000, (1u << 18) - 1, 1u << 18, (1u << 18) + 1, 2u * (1u << 18) + 5};
  int status = 0;
  for (int k = 0; k < (int)G_N_ELEMENTS(sizes) && status == 0; k++) {
    size_t n = sizes[k];
    float *buf = g_new(float, n);
    for (size_t i = 0; i < n; i++)
      buf[i] = value_at(k, rank, i);
    if (!fth_comm_all_reduce_sum(comm, buf, n, &error)) {
      g_free(buf);
      fth_comm_free(comm);
      return report_error(error);
    }
    for (size_t i = 0; i < n && status == 0; i++) {
      double want = 0, mag = 0;
      for (int r = 0; r < size; r++) {
        want += value_at(k, r, i);
        mag += fabs(value_at(k, r, i));
      }
      /* Summed in float64 and rounded once: within half an ulp of the largest partial sum. */
      if (fabs(buf[i] - want) > 6e-8 * mag)
        status = fail(rank, "all-reduce", i, buf[i], want);
    }
    g_free(buf);
  }

  /* The bucketed gradient reduction: 9 parameters of awkward sizes, buckets of 64 floats, so
   * some share a bucket, some fill one alone and some are larger than a bucket. */
  const size_t counts[] = {3, 70, 1, 64, 63, 2, 129, 5, 40};
  enum { NP = G_N_ELEMENTS(counts) };
  FthParam params[NP];
  for (int p = 0; p < NP; p++) {
    params[p] = (FthParam){"p", g_new(float, counts[p]), g_new(float, counts[p]), counts[p], false};
    for (size_t i = 0; i < counts[p]; i++) {
      params[p].grad[i] = value_at(100 + p, rank, i);
      params[p].value[i] = rank == 0 ? value_at(200 + p, 0, i) : NAN;
    }
  }
  float share = (float)(rank + 1) / (float)(size * (size + 1) / 2);
  FthGradReducer *red = fth_grad_reducer_new(comm, params, NP, 64 * sizeof(float));
  gboolean ok = status == 0 && fth_grad_reducer_run(red, share, &error) &&
                fth_comm_broadcast_params(comm, params, NP, &error);
  /* From the last: {40, 5} {129} {2} {63} {64} {1} {70} {3}. */
  if (ok && fth_grad_reducer_n_buckets(red) != 8)
    status = fail(rank, "bucket count", 0, fth_grad_reducer_n_buckets(red), 8);
  for (int p = 0; p < NP && ok && status == 0; p++)
    for (size_t i = 0; i < counts[p] && status == 0; i++) {
      double want = 0, mag = 0;
      for (int r = 0; r < size; r++) {
        double sr = (double)(float)((float)(r + 1) / (float)(size * (size + 1) / 2));
        want += sr * value_at(100 + p, r, i);
        mag += fabs(sr * value_at(100 + p, r, i));
      }
      if (fabs(params[p].grad[i] - want) > 2e-7 * mag)
        status = fail(rank, "gradient", i, params[p].grad[i], want);
      else if (params[p].value[i] != value_at(200 + p, 0, i))
        status = fail(rank, "broadcast", i, params[p].value[i], value_at(200 + p, 0, i));
    }
  /* Overlapped: bucket 0 ({40, 5}: parameters 8 and 7) is announced, then the others only after
   * a pause in which it is summed, as a backward pass would go on computing. */
  for (int p = 0; p < NP && ok; p++)
    for (size_t i = 0; i < counts[p]; i++)
      params[p].grad[i] = value_at(300 + p, rank, i);
  int early = -1;
  if (ok && status == 0) {
    fth_grad_reducer_begin(red, 1.0f);
    fth_grad_reducer_ready(red, 8);
    fth_grad_reducer_ready(red, 7);
    g_usleep(G_USEC_PER_SEC / 2);
    for (int p = 6; p >= 0; p--)
      fth_grad_reducer_ready(red, (size_t)p);
    ok = fth_grad_reducer_finish(red, &early, &error);
  }
  if (ok && status == 0 && early < 1)
    status = fail(rank, "buckets summed during the pause", 0, early, 1);
  for (int p = 0; p < NP && ok; p++)
    for (size_t i = 0; i < counts[p] && status == 0; i++) {
      double want = 0, mag = 0;
      for (int r = 0; r < size; r++) {
        want += value_at(300 + p, r, i);
        mag += fabs(value_at(300 + p, r, i));
      }
      if (fabs(params[p].grad[i] - want) > 6e-8 * mag)
        status = fail(rank, "overlapped gradient", i, params[p].grad[i], want);
    }
  fth_grad_reducer_free(red);
  for (int p = 0; p < NP; p++) {
    g_free(params[p].value);
    g_free(params[p].grad);
  }
  /* Broadcast from the last rank, then a barrier. */
  gint64 token = rank == size - 1 ? 424242 : -1;
  ok = ok && fth_comm_broadcast(comm, &token, sizeof token, size - 1, &error) &&
       fth_comm_barrier(comm, &error);
  if (ok && token != 424242)
    status = fail(rank, "broadcast from the last rank", 0, (double)token, 424242);
  fth_comm_free(comm);
  return ok ? status : report_error(error);
}

/* Trains EPOCHS epochs of `recipe` on the samples, as rank fth_comm_rank(comm) when comm is
 * not NULL; writes every parameter and buffer value to weights_path (when not NULL), the
 * samples this rank ran and the first and last epoch's loss to info_path. kill_rank dies by
 * SIGKILL after the first epoch. */
static gboolean
train(const char *recipe_json, FthComm *comm, const char *weights_path, const char *info_path,
      int kill_rank, GError **error)
{
  g_autoptr(FthRecipe) recipe = fth_recipe_parse(recipe_json, -1, "test", NULL, error);
  if (recipe == NULL)
    return FALSE;
  g_autofree guint8 *pixels = g_new(guint8, N_SAMPLES * S * S);
  g_autofree int32_t *labels = g_new(int32_t, N_SAMPLES);
  g_autofree uint32_t *train_idx = g_new(uint32_t, N_SAMPLES);
  train_test_bar_samples(pixels, labels, N_SAMPLES, S, N_CLASSES);
  for (uint32_t i = 0; i < N_SAMPLES; i++)
    train_idx[i] = i;
  FthSamples s = {.pixels = pixels, .labels = labels, .n = N_SAMPLES, .channels = 1, .height = S,
                  .width = S};
  /* The tagger's sentences: the tag follows the token, and 0 to 6 padding tokens at the end. */
  g_autofree int32_t *tokens = g_new(int32_t, N_SAMPLES * TOKENS);
  g_autofree int32_t *tags = g_new(int32_t, N_SAMPLES * TOKENS);
  if (recipe_json == tagger_recipe) {
    GRand *r = g_rand_new_with_seed(9);
    for (int i = 0; i < N_SAMPLES; i++) {
      int pad = g_rand_int_range(r, 0, 7);
      for (int j = 0; j < TOKENS; j++) {
        int tok = g_rand_int_range(r, 1, VOCAB);
        tokens[i * TOKENS + j] = j < TOKENS - pad ? tok : 0;
        tags[i * TOKENS + j] = j < TOKENS - pad ? tok % N_CLASSES : FTH_IGNORE_TARGET;
      }
    }
    g_rand_free(r);
    s = (FthSamples){.labels = labels, .n = N_SAMPLES, .tokens = tokens, .tags = tags,
                     .seq_len = TOKENS};
  }
  FthTrainerConfig cfg = {.seed = 3, .batch = BATCH, .epochs = EPOCHS, .n_train = N_SAMPLES,
                          .optim = recipe->train.optim, .schedule = recipe->train.schedule};
  cfg.schedule.total_steps = EPOCHS * ((N_SAMPLES + BATCH - 1) / BATCH);
  g_autoptr(FthTrainer) t = fth_trainer_new(recipe, N_CLASSES, &cfg, error);
  /* Buckets of 64 floats: the MLP's gradients in three ({b2, W2} {b1} {W1}), the first summed
   * while W1's gradient is computed. */
  if (t == NULL || (comm != NULL && !fth_trainer_set_comm(t, comm, 64 * sizeof(float), error)))
    return FALSE;
  double first = NAN, last = NAN;
  for (int e = 0; e < EPOCHS; e++) {
    if (e == 1 && comm != NULL && fth_comm_rank(comm) == kill_rank)
      raise(SIGKILL);
    FthTrainProgress p = {0};
    gboolean interrupted;
    if (!fth_trainer_run_epoch(t, &s, train_idx, N_SAMPLES, e, 0, 0, &p, NULL, NULL, NULL,
                               &interrupted, error))
      return FALSE;
    if (e == 0)
      first = p.train_loss;
    last = p.train_loss;
  }
  if (weights_path != NULL) {
    FthGraph *g = fth_trainer_model(t)->graph;
    g_autoptr(GByteArray) bytes = g_byte_array_new();
    for (int i = 0; i < fth_graph_n_params(g); i++) {
      FthTensor v;
      if (fth_graph_tensor(g, fth_graph_param(g, i), &v) != FTH_STATUS_OK)
        return FALSE;
      g_byte_array_append(bytes, v.data, (guint)fth_tensor_nbytes(&v));
    }
    if (!g_file_set_contents(weights_path, (const char *)bytes->data, bytes->len, error))
      return FALSE;
  }
  g_autofree char *info = g_strdup_printf("%zu %.9g %.9g %d", fth_trainer_local_samples(t), first,
                                          last, fth_trainer_early_buckets(t));
  return g_file_set_contents(info_path, info, -1, error);
}

/* worker train RECIPE(mlp|bn) OUTDIR KILL_RANK */
static int
worker_train(char **argv)
{
  GError *error = NULL;
  FthComm *comm = NULL;
  if (!fth_comm_from_env(&comm, &error))
    return report_error(error);
  int rank = fth_comm_rank(comm);
  g_autofree char *weights = g_strdup_printf("%s/weights-%d.bin", argv[3], fth_comm_size(comm));
  g_autofree char *info = g_strdup_printf("%s/info-%d-%d.txt", argv[3], fth_comm_size(comm), rank);
  gboolean ok = train(strcmp(argv[2], "bn") == 0       ? bn_recipe
                      : strcmp(argv[2], "tagger") == 0 ? tagger_recipe
                                                        : mlp_recipe, comm,
                      rank == 0 ? weights : NULL, info, atoi(argv[4]), &error);
  fth_comm_free(comm);
  return ok ? 0 : report_error(error);
}

/* A project with N_SAMPLES IDX records (the bar images) and their classes. */
static char *
make_project(const char *name)
{
  char *dir = g_build_filename(tmp_root, name, NULL);
  train_test_bar_project(dir, N_SAMPLES, S, N_CLASSES);
  return dir;
}

/* fth_train of the recipe file on PROJECT into the checkpoint directory CKPT, as this
 * process's rank (if any). */
static gboolean
run_fth_train(const char *project, const char *ckpt, const char *recipe, FthComm *comm,
              GError **error)
{
  g_autoptr(FthStore) store = fth_store_open(project, error);
  if (store == NULL)
    return FALSE;
  FthTrainOptions o;
  fth_train_options_init(&o);
  o.recipe = recipe;
  o.checkpoint_dir = ckpt;
  o.device = "cpu";
  o.comm = comm;
  FthTrainResult res;
  gboolean ok = fth_train(store, &o, &res, error);
  fth_train_result_clear(&res);
  return ok;
}

/* worker fth-train PROJECT CKPT RECIPE */
static int
worker_fth_train(char **argv)
{
  GError *error = NULL;
  FthComm *comm = NULL;
  if (!fth_comm_from_env(&comm, &error))
    return report_error(error);
  gboolean ok = run_fth_train(argv[2], argv[3], argv[4], comm, &error);
  fth_comm_free(comm);
  return ok ? 0 : report_error(error);
}

/* ---- Tests ---------------------------------------------------------------------------------- */

static gboolean
launch(int nproc, int *failed_rank, GError **error, const char *first, ...)
{
  g_autoptr(GPtrArray) args = g_ptr_array_new();
  g_ptr_array_add(args, self_exe);
  g_ptr_array_add(args, (char *)"worker");
  va_list ap;
  va_start(ap, first);
  for (const char *a = first; a != NULL; a = va_arg(ap, const char *))
    g_ptr_array_add(args, (char *)a);
  va_end(ap);
  g_ptr_array_add(args, NULL);
  return fth_launch_workers((const char *const *)args->pdata, nproc, failed_rank, error);
}

static void
test_collectives(void)
{
  for (int nproc = 2; nproc <= 3; nproc++) {
    GError *error = NULL;
    int failed = -2;
    gboolean ok = launch(nproc, &failed, &error, "collectives", NULL);
    g_assert_no_error(error);
    g_assert_true(ok);
    g_assert_cmpint(failed, ==, -1);
  }
}

static void
test_mpirun_environment(void)
{
  /* As mpirun starts the ranks: OMPI_COMM_WORLD_* only, no FATHOM_* variables; they meet in a
   * directory named after their common parent (this process). */
  g_autofree char *script = g_strdup_printf(
    "export OMPI_COMM_WORLD_RANK=$FATHOM_RANK OMPI_COMM_WORLD_SIZE=$FATHOM_WORLD_SIZE "
    "OMPI_COMM_WORLD_LOCAL_SIZE=$FATHOM_WORLD_SIZE; unset FATHOM_RANK FATHOM_WORLD_SIZE "
    "FATHOM_DIST_DIR; exec '%s' worker collectives", self_exe);
  const char *argv[] = {"/bin/sh", "-c", script, NULL};
  GError *error = NULL;
  int failed = -2;
  gboolean ok = fth_launch_workers(argv, 2, &failed, &error);
  g_assert_no_error(error);
  g_assert_true(ok);
  /* Rank 0 removed the directory once everyone had joined. */
  g_autofree char *name = g_strdup_printf("fathom-mpi-%d", (int)getpid());
  g_autofree char *dir = g_build_filename(g_get_tmp_dir(), name, NULL);
  g_assert_false(g_file_test(dir, G_FILE_TEST_EXISTS));
}

static float *
read_floats(const char *path, size_t *n)
{
  gchar *data = NULL;
  gsize len = 0;
  GError *error = NULL;
  g_assert_true(g_file_get_contents(path, &data, &len, &error));
  g_assert_no_error(error);
  *n = len / sizeof(float);
  return (float *)(void *)data;
}

static void
read_info(const char *dir, int nproc, int rank, size_t *samples, double *first, double *last)
{
  g_autofree char *path = g_strdup_printf("%s/info-%d-%d.txt", dir, nproc, rank);
  g_autofree char *text = NULL;
  int early = 0;
  g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
  g_assert_cmpint(sscanf(text, "%zu %lf %lf %d", samples, first, last, &early), ==, 4);
  g_test_message("%d processes, rank %d: %d gradient buckets summed during the backward pass",
                 nproc, rank, early);
}

static void
test_same_as_one_process(void)
{
  g_autofree char *dir = g_build_filename(tmp_root, "mlp", NULL);
  g_assert_cmpint(g_mkdir_with_parents(dir, 0700), ==, 0);
  /* The reference: this process alone, no communicator. */
  GError *error = NULL;
  g_autofree char *ref_path = g_build_filename(dir, "weights-ref.bin", NULL);
  g_autofree char *ref_info = g_build_filename(dir, "info-ref.txt", NULL);
  g_assert_true(train(mlp_recipe, NULL, ref_path, ref_info, -1, &error));
  g_assert_no_error(error);
  size_t n_ref;
  g_autofree float *ref = read_floats(ref_path, &n_ref);
  /* The initial weights, to show the training moved them further than the tolerance. */
  g_autoptr(FthRecipe) recipe = fth_recipe_parse(mlp_recipe, -1, "test", NULL, &error);
  g_autoptr(FthModel) m = fth_model_build(recipe, N_CLASSES, 3, FTH_MODEL_TRAINING, &error);
  g_assert_no_error(error);
  double moved = 0;
  size_t off = 0;
  for (int i = 0; i < fth_graph_n_params(m->graph); i++) {
    FthTensor v;
    g_assert_cmpint(fth_graph_tensor(m->graph, fth_graph_param(m->graph, i), &v), ==, FTH_STATUS_OK);
    for (int64_t k = 0; k < fth_tensor_numel(&v); k++, off++)
      moved = fmax(moved, fabs(ref[off] - ((const float *)v.data)[k]));
  }
  g_assert_cmpuint(off, ==, n_ref);
  g_assert_cmpfloat(moved, >, 0.05);

  for (int nproc = 2; nproc <= 3; nproc++) {
    int failed = -2;
    gboolean ok = launch(nproc, &failed, &error, "train", "mlp", dir, "-1", NULL);
    g_assert_no_error(error);
    g_assert_true(ok);
    g_autofree char *path = g_strdup_printf("%s/weights-%d.bin", dir, nproc);
    size_t n;
    g_autofree float *w = read_floats(path, &n);
    g_assert_cmpuint(n, ==, n_ref);
    double diff = 0;
    for (size_t i = 0; i < n; i++)
      diff = fmax(diff, fabs(w[i] - ref[i]));
    /* Float rounding only: the per-rank sums and their order differ from one batch's GEMM. */
    g_test_message("%d processes: max |w - w_ref| = %.3g (weights moved %.3g)", nproc, diff, moved);
    g_assert_cmpfloat(diff, <, 1e-6);
    /* Each rank ran its own part: together every sample once per epoch, none twice. */
    size_t total = 0;
    for (int r = 0; r < nproc; r++) {
      size_t samples;
      double first, last;
      read_info(dir, nproc, r, &samples, &first, &last);
      g_assert_cmpuint(samples, <=, (size_t)EPOCHS * N_SAMPLES / (size_t)nproc + EPOCHS * 4);
      total += samples;
    }
    g_assert_cmpuint(total, ==, (size_t)EPOCHS * N_SAMPLES);
  }
}

static void
test_fth_train(void)
{
  /* Two workers first, on a project without splits: rank 0 makes and stores them, rank 1 opens
   * the dataset after it. Then one process on the stored splits. */
  g_autofree char *project = make_project("project");
  g_autofree char *ck2 = g_build_filename(tmp_root, "ck-2", NULL);
  g_autofree char *ck1 = g_build_filename(tmp_root, "ck-1", NULL);
  g_autofree char *recipe = g_build_filename(tmp_root, "mlp.json", NULL);
  GError *error = NULL;
  g_assert_true(g_file_set_contents(recipe, mlp_recipe, -1, &error));
  int failed = -2;
  gboolean ok = launch(2, &failed, &error, "fth-train", project, ck2, recipe, NULL);
  g_assert_no_error(error);
  g_assert_true(ok);
  g_assert_true(run_fth_train(project, ck1, recipe, NULL, &error));
  g_assert_no_error(error);
  g_autoptr(GByteArray) w1 = train_test_checkpoint_weights(ck1);
  g_autoptr(GByteArray) w2 = train_test_checkpoint_weights(ck2);
  g_assert_cmpuint(w1->len, ==, w2->len);
  const float *a = (const float *)(void *)w1->data, *b = (const float *)(void *)w2->data;
  double diff = 0;
  for (guint i = 0; i < w1->len / sizeof(float); i++)
    diff = fmax(diff, fabs(a[i] - b[i]));
  g_test_message("fth_train, 2 processes against 1: max |w - w_ref| = %.3g", diff);
  g_assert_cmpfloat(diff, <, 1e-6);
  /* Rank 0 alone wrote the store: one run per training, both done. */
  g_autoptr(FthStore) store = fth_store_open(project, &error);
  g_autoptr(GPtrArray) runs = fth_store_list_runs(store, "train", &error);
  g_assert_no_error(error);
  g_assert_cmpuint(runs->len, ==, 2);
  for (guint i = 0; i < runs->len; i++)
    g_assert_cmpint(((FthRun *)runs->pdata[i])->state, ==, FTH_RUN_DONE);
}

static void
test_cli(void)
{
  g_autofree char *fathom = g_build_filename(FTH_BUILD_DIR, "app", "cli", "fathom", NULL);
  if (!g_file_test(fathom, G_FILE_TEST_IS_EXECUTABLE)) {
    g_test_skip("the fathom command is not built");
    return;
  }
  g_autofree char *project = make_project("cli-project");
  g_autofree char *recipe = g_build_filename(tmp_root, "cli-mlp.json", NULL);
  g_autofree char *ckpt = g_build_filename(tmp_root, "cli-ck", NULL);
  GError *error = NULL;
  g_assert_true(g_file_set_contents(recipe, mlp_recipe, -1, &error));
  const char *argv[] = {fathom, "train", project, "--recipe", recipe, "--checkpoint", ckpt,
                        "--device", "cpu", "--nproc", "2", "--json", NULL};
  g_autofree char *out = NULL, *err = NULL;
  int status;
  g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err,
                             &status, &error));
  g_assert_no_error(error);
  if (!g_spawn_check_wait_status(status, NULL))
    g_test_message("%s", err);
  g_assert_true(g_spawn_check_wait_status(status, NULL));
  /* Rank 0's report alone (the others' output goes to their logs), and one run. */
  g_assert_nonnull(strstr(out, "\"type\":\"report\""));
  g_assert_null(strstr(strstr(out, "\"type\":\"report\"") + 1, "\"type\":\"report\""));
  g_autoptr(FthStore) store = fth_store_open(project, &error);
  g_autoptr(GPtrArray) runs = fth_store_list_runs(store, "train", &error);
  g_assert_no_error(error);
  g_assert_cmpuint(runs->len, ==, 1);

  /* A worker that fails: every rank refuses the recipe variable; the launcher names a rank. */
  const char *bad[] = {fathom, "train", project, "--recipe", recipe, "--set", "nosuch=1",
                       "--nproc", "2", "-q", NULL};
  g_clear_pointer(&out, g_free);
  g_clear_pointer(&err, g_free);
  g_assert_true(g_spawn_sync(NULL, (char **)bad, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err,
                             &status, &error));
  g_assert_false(g_spawn_check_wait_status(status, NULL));
  g_test_message("%s", err);
  g_assert_nonnull(strstr(err, " of 2 "));
  g_assert_nonnull(strstr(err, "failed: exited with status 1"));
}

static void
test_tagger(void)
{
  g_autofree char *dir = g_build_filename(tmp_root, "tagger", NULL);
  g_assert_cmpint(g_mkdir_with_parents(dir, 0700), ==, 0);
  GError *error = NULL;
  g_autofree char *ref_path = g_build_filename(dir, "weights-ref.bin", NULL);
  g_autofree char *ref_info = g_build_filename(dir, "info-ref.txt", NULL);
  g_assert_true(train(tagger_recipe, NULL, ref_path, ref_info, -1, &error));
  g_assert_no_error(error);
  size_t n_ref;
  g_autofree float *ref = read_floats(ref_path, &n_ref);
  for (int nproc = 2; nproc <= 3; nproc++) {
    int failed = -2;
    gboolean ok = launch(nproc, &failed, &error, "train", "tagger", dir, "-1", NULL);
    g_assert_no_error(error);
    g_assert_true(ok);
    g_autofree char *path = g_strdup_printf("%s/weights-%d.bin", dir, nproc);
    size_t n;
    g_autofree float *w = read_floats(path, &n);
    g_assert_cmpuint(n, ==, n_ref);
    double diff = 0;
    for (size_t i = 0; i < n; i++)
      diff = fmax(diff, fabs(w[i] - ref[i]));
    g_test_message("tagger, %d processes: max |w - w_ref| = %.3g", nproc, diff);
    g_assert_cmpfloat(diff, <, 1e-6);
  }
}

static void
test_batch_norm_trains(void)
{
  g_autofree char *dir = g_build_filename(tmp_root, "bn", NULL);
  g_assert_cmpint(g_mkdir_with_parents(dir, 0700), ==, 0);
  GError *error = NULL;
  int failed = -2;
  gboolean ok = launch(2, &failed, &error, "train", "bn", dir, "-1", NULL);
  g_assert_no_error(error);
  g_assert_true(ok);
  g_autofree char *path = g_build_filename(dir, "weights-2.bin", NULL);
  size_t n;
  g_autofree float *w = read_floats(path, &n);
  for (size_t i = 0; i < n; i++)
    g_assert_true(isfinite(w[i]));
  for (int r = 0; r < 2; r++) {
    size_t samples;
    double first, last;
    read_info(dir, 2, r, &samples, &first, &last);
    /* The global loss, the same on both ranks, going down. */
    g_assert_cmpfloat(last, <, 0.8 * first);
  }
}

static void
test_killed_worker(void)
{
  g_autofree char *dir = g_build_filename(tmp_root, "kill", NULL);
  g_assert_cmpint(g_mkdir_with_parents(dir, 0700), ==, 0);
  GError *error = NULL;
  int failed = -2;
  gboolean ok = launch(3, &failed, &error, "train", "mlp", dir, "1", NULL);
  g_assert_false(ok);
  g_assert_error(error, FTH_PARALLEL_ERROR, FTH_PARALLEL_ERROR_WORKER);
  g_test_message("%s", error->message);
  g_assert_cmpint(failed, ==, 1);
  g_assert_nonnull(strstr(error->message, "rank 1 of 3"));
  g_assert_nonnull(strstr(error->message, "killed by signal 9"));
  g_error_free(error);
}

static void
test_launcher_exit_status(void)
{
  /* Rank 1 of 2 fails by itself (status 3) while rank 0 waits: rank 1 is named with its output. */
  const char *argv[] = {"/bin/sh", "-c",
                        "if [ \"$FATHOM_RANK\" = 1 ]; then echo \"bad input on $FATHOM_RANK of "
                        "$FATHOM_WORLD_SIZE\" >&2; exit 3; fi; exec sleep 30",
                        NULL};
  GError *error = NULL;
  int failed = -2;
  gint64 t0 = g_get_monotonic_time();
  g_assert_false(fth_launch_workers(argv, 2, &failed, &error));
  g_assert_error(error, FTH_PARALLEL_ERROR, FTH_PARALLEL_ERROR_WORKER);
  g_assert_cmpint(failed, ==, 1);
  g_assert_nonnull(strstr(error->message, "rank 1 of 2"));
  g_assert_nonnull(strstr(error->message, "exited with status 3"));
  g_assert_nonnull(strstr(error->message, "bad input on 1 of 2"));
  /* Rank 0 was stopped, not waited for. */
  g_assert_cmpint(g_get_monotonic_time() - t0, <, 10 * G_USEC_PER_SEC);
  g_clear_error(&error);
  const char *ok_argv[] = {"/bin/sh", "-c", "test \"$FATHOM_WORLD_SIZE\" = 3", NULL};
  g_assert_true(fth_launch_workers(ok_argv, 3, &failed, &error));
  g_assert_no_error(error);
  g_assert_cmpint(failed, ==, -1);
}

static void
test_environment(void)
{
  GError *error = NULL;
  FthComm *comm = NULL;
  g_unsetenv(FTH_ENV_RANK);
  g_unsetenv(FTH_ENV_WORLD_SIZE);
  g_unsetenv("OMPI_COMM_WORLD_RANK");
  g_unsetenv("OMPI_COMM_WORLD_SIZE");
  g_assert_true(fth_comm_from_env(&comm, &error));
  g_assert_null(comm);
  g_setenv(FTH_ENV_RANK, "2", TRUE);
  g_setenv(FTH_ENV_WORLD_SIZE, "2", TRUE);
  g_assert_false(fth_comm_from_env(&comm, &error));
  g_assert_error(error, FTH_PARALLEL_ERROR, FTH_PARALLEL_ERROR_INVALID);
  g_clear_error(&error);
  g_setenv(FTH_ENV_RANK, "x", TRUE);
  g_assert_false(fth_comm_from_env(&comm, &error));
  g_assert_nonnull(strstr(error->message, "FATHOM_RANK=x"));
  g_clear_error(&error);
  g_unsetenv(FTH_ENV_RANK);
  g_unsetenv(FTH_ENV_WORLD_SIZE);
  /* mpirun over two machines: refused, the local communicator joins one machine's processes. */
  g_setenv("OMPI_COMM_WORLD_RANK", "0", TRUE);
  g_setenv("OMPI_COMM_WORLD_SIZE", "4", TRUE);
  g_setenv("OMPI_COMM_WORLD_LOCAL_SIZE", "2", TRUE);
  g_assert_false(fth_comm_from_env(&comm, &error));
  g_assert_error(error, FTH_PARALLEL_ERROR, FTH_PARALLEL_ERROR_UNSUPPORTED);
  g_clear_error(&error);
  g_unsetenv("OMPI_COMM_WORLD_RANK");
  g_unsetenv("OMPI_COMM_WORLD_SIZE");
  g_unsetenv("OMPI_COMM_WORLD_LOCAL_SIZE");
  /* Alone: every collective is the identity. */
  comm = fth_comm_new_local(tmp_root, 0, 1, 1, 0, &error);
  g_assert_no_error(error);
  float x[3] = {1, 2, 3};
  g_assert_true(fth_comm_all_reduce_sum(comm, x, 3, &error));
  g_assert_true(fth_comm_all_reduce_scaled(comm, x, 3, 0.5f, &error));
  g_assert_cmpfloat(x[2], ==, 1.5f);
  g_assert_true(fth_comm_barrier(comm, &error));
  fth_comm_free(comm);
  /* Rank 1 of 2 with nobody listening: a timeout naming the socket. */
  g_assert_null(fth_comm_new_local(tmp_root, 1, 2, 0.1, 0, &error));
  g_assert_error(error, FTH_PARALLEL_ERROR, FTH_PARALLEL_ERROR_CONNECT);
  g_assert_nonnull(strstr(error->message, "comm.sock"));
  g_clear_error(&error);
}

#if FTH_HAVE_CUDA
/* The NCCL communicator of one rank on cuda:0 (one GPU holds one rank): the scaled all-reduce
 * and the bucketed gradient reduction on device buffers. A machine with several GPUs checks the
 * sums through fathom train --nproc N --device cuda. */
static void
test_nccl_one_rank(void)
{
  const FthBackend *be = NULL;
  if (fth_backend_select("cuda:0", &be) != FTH_STATUS_OK || fth_backend_cuda_context(be) == NULL) {
    g_test_skip("no CUDA device answers");
    return;
  }
  GError *error = NULL;
  g_autoptr(FthComm) host = fth_comm_new_local(tmp_root, 0, 1, 1, 0, &error);
  g_assert_no_error(error);
  g_autoptr(FthComm) nccl = fth_comm_new_nccl(host, fth_backend_cuda_context(be), &error);
  if (nccl == NULL && strstr(error->message, "without NCCL") != NULL) {
    g_test_skip(error->message);
    g_error_free(error);
    return;
  }
  g_assert_no_error(error);
  g_assert_true(fth_comm_on_device(nccl));
  const size_t counts[] = {3, 70, 1, 5000};
  enum { NP = G_N_ELEMENTS(counts) };
  FthParam params[NP];
  float *host_grads[NP];
  for (int p = 0; p < NP; p++) {
    host_grads[p] = g_new(float, counts[p]);
    for (size_t i = 0; i < counts[p]; i++)
      host_grads[p][i] = value_at(400 + p, 0, i);
    params[p] = (FthParam){"p", NULL, be->alloc(be, counts[p] * sizeof(float)), counts[p], false};
    g_assert_nonnull(params[p].grad);
    g_assert_cmpint(be->copy_in(be, params[p].grad, host_grads[p], counts[p] * sizeof(float)), ==,
                    FTH_STATUS_OK);
  }
  g_assert_true(fth_comm_all_reduce_scaled(nccl, params[0].grad, counts[0], 2.0f, &error));
  g_assert_true(fth_comm_reduce_device_grads(nccl, params, NP, 0.25f, 64 * sizeof(float), &error));
  g_assert_no_error(error);
  for (int p = 0; p < NP; p++) {
    g_autofree float *got = g_new(float, counts[p]);
    g_assert_cmpint(be->copy_out(be, got, params[p].grad, counts[p] * sizeof(float)), ==,
                    FTH_STATUS_OK);
    for (size_t i = 0; i < counts[p]; i++) {
      double want = (p == 0 ? 0.5 : 0.25) * host_grads[p][i];
      g_assert_cmpfloat(fabs(got[i] - want), <=, 1e-6 * fabs(want));
    }
    be->free(be, params[p].grad);
    g_free(host_grads[p]);
  }
}
#endif

int
main(int argc, char **argv)
{
  if (argc >= 2 && strcmp(argv[1], "worker") == 0) {
    if (argc >= 3 && strcmp(argv[2], "collectives") == 0)
      return worker_collectives();
    if (argc >= 6 && strcmp(argv[2], "train") == 0)
      return worker_train(argv + 1);
    if (argc >= 6 && strcmp(argv[2], "fth-train") == 0)
      return worker_fth_train(argv + 1);
    fprintf(stderr, "worker: unknown arguments\n");
    return 2;
  }
  g_test_init(&argc, &argv, NULL);
  self_exe = g_file_read_link("/proc/self/exe", NULL);
  tmp_root = g_dir_make_tmp("fth-parallel-XXXXXX", NULL);
  g_test_add_func("/parallel/environment", test_environment);
  g_test_add_func("/parallel/launcher-exit-status", test_launcher_exit_status);
  g_test_add_func("/parallel/collectives", test_collectives);
  g_test_add_func("/parallel/mpirun-environment", test_mpirun_environment);
  g_test_add_func("/parallel/same-as-one-process", test_same_as_one_process);
  g_test_add_func("/parallel/fth-train", test_fth_train);
  g_test_add_func("/parallel/cli", test_cli);
  g_test_add_func("/parallel/tagger", test_tagger);
  g_test_add_func("/parallel/batch-norm", test_batch_norm_trains);
  g_test_add_func("/parallel/killed-worker", test_killed_worker);
#if FTH_HAVE_CUDA
  g_test_add_func("/parallel/nccl-one-rank", test_nccl_one_rank);
#endif
  int status = g_test_run();
  train_test_rmtree(tmp_root);
  g_free(tmp_root);
  g_free(self_exe);
  return status;
}
