/* Gradient buckets summed during the backward pass (fth_trainer_set_grad_overlap) give the
 * same bits as summing them all after it, on 2 and 3 processes of the local communicator: the
 * overlap changes when a bucket is summed, never the order of the sums. Both executors (the CPU
 * graph and the device one, here on the CPU backend) announce every gradient once a step.
 *
 * The workers are this program run again by the launcher ("worker" as the first argument). */
#include <fathom/parallel.h>
#include <fathom/train.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>

enum { N_SAMPLES = 98, S = 8, N_CLASSES = 3, BATCH = 24, EPOCHS = 2 };

/* Buckets of 128 floats: {b3 W3 b2} {W2} {b1} {W1}, three of them final before W1's gradient. */
static const char *recipe_json =
  "{\"name\": \"overlap-mlp\", \"input\": {\"shape\": [1, 8, 8]},"
  " \"layers\": [{\"type\": \"flatten\"}, {\"type\": \"linear\", \"out_features\": 32},"
  "  {\"type\": \"relu\"}, {\"type\": \"linear\", \"out_features\": 16}, {\"type\": \"relu\"},"
  "  {\"type\": \"linear\", \"out_features\": \"classes\"}],"
  " \"train\": {\"optimizer\": \"adamw\", \"lr\": 0.01, \"batch\": 24, \"epochs\": 2}}";
#define BUCKET_BYTES (128 * sizeof(float))

/* A trainer of the recipe with the bar-like samples in *s (pixels, labels and idx owned by the
 * caller, freed with g_free). */
static FthTrainer *
new_trainer(FthSamples *s, uint32_t **idx, GError **error)
{
  g_autoptr(FthRecipe) recipe = fth_recipe_parse(recipe_json, -1, "test", NULL, error);
  if (recipe == NULL)
    return NULL;
  guint8 *pixels = g_new(guint8, N_SAMPLES * S * S);
  int32_t *labels = g_new(int32_t, N_SAMPLES);
  *idx = g_new(uint32_t, N_SAMPLES);
  GRand *r = g_rand_new_with_seed(11);
  for (int i = 0; i < N_SAMPLES; i++) {
    labels[i] = i % N_CLASSES;
    (*idx)[i] = (uint32_t)i;
    for (int p = 0; p < S * S; p++)
      pixels[i * S * S + p] = (guint8)g_rand_int_range(r, 0, 256) / (p / S == labels[i] ? 1 : 2);
  }
  g_rand_free(r);
  *s = (FthSamples){.pixels = pixels, .labels = labels, .n = N_SAMPLES, .channels = 1,
                    .height = S, .width = S};
  FthTrainerConfig cfg = {.seed = 3, .batch = BATCH, .epochs = EPOCHS, .n_train = N_SAMPLES,
                          .optim = recipe->train.optim, .schedule = recipe->train.schedule};
  cfg.schedule.total_steps = EPOCHS * ((N_SAMPLES + BATCH - 1) / BATCH);
  return fth_trainer_new(recipe, N_CLASSES, &cfg, error);
}

/* Trains EPOCHS epochs as this rank, with or without the overlap; *weights gets every parameter
 * value, *early the buckets summed before the end of their backward pass. */
static gboolean
train(FthComm *comm, gboolean overlap, GByteArray *weights, int *early, GError **error)
{
  FthSamples s;
  g_autofree uint32_t *idx = NULL;
  g_autoptr(FthTrainer) t = new_trainer(&s, &idx, error);
  g_autofree guint8 *pixels = (guint8 *)s.pixels;
  g_autofree int32_t *labels = (int32_t *)s.labels;
  if (t == NULL || !fth_trainer_set_comm(t, comm, BUCKET_BYTES, error))
    return FALSE;
  fth_trainer_set_grad_overlap(t, overlap);
  for (int e = 0; e < EPOCHS; e++) {
    FthTrainProgress p = {0};
    gboolean interrupted;
    if (!fth_trainer_run_epoch(t, &s, idx, N_SAMPLES, e, 0, 0, &p, NULL, NULL, NULL,
                               &interrupted, error))
      return FALSE;
  }
  FthGraph *g = fth_trainer_model(t)->graph;
  for (int i = 0; i < fth_graph_n_params(g); i++) {
    FthTensor v;
    if (fth_graph_tensor(g, fth_graph_param(g, i), &v) != FTH_STATUS_OK) {
      g_set_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_ENGINE, "parameter %d: %s", i,
                  fth_last_error());
      return FALSE;
    }
    g_byte_array_append(weights, v.data, (guint)fth_tensor_nbytes(&v));
  }
  *early = fth_trainer_early_buckets(t);
  return TRUE;
}

/* worker OUT: rank 0 writes "same|different EARLY" to OUT. */
static int
worker(const char *out)
{
  GError *error = NULL;
  FthComm *comm = NULL;
  if (!fth_comm_from_env(&comm, &error) || comm == NULL) {
    fprintf(stderr, "%s\n", error != NULL ? error->message : "not started by the launcher");
    g_clear_error(&error);
    return 1;
  }
  g_autoptr(GByteArray) with = g_byte_array_new();
  g_autoptr(GByteArray) without = g_byte_array_new();
  int early = 0, early_without = 0;
  gboolean ok = train(comm, TRUE, with, &early, &error) &&
                train(comm, FALSE, without, &early_without, &error);
  if (ok && fth_comm_rank(comm) == 0) {
    gboolean same = with->len == without->len && memcmp(with->data, without->data, with->len) == 0;
    g_autofree char *text = g_strdup_printf("%s %d %d", same ? "same" : "different", early,
                                            early_without);
    ok = g_file_set_contents(out, text, -1, &error);
  }
  if (error != NULL) {
    fprintf(stderr, "rank %d: %s\n", fth_comm_rank(comm), error->message);
    g_error_free(error);
  }
  fth_comm_free(comm);
  return ok ? 0 : 1;
}

static char *self_exe;

static void
test_same_bits(gconstpointer data)
{
  int nproc = GPOINTER_TO_INT(data);
  g_autofree char *dir = g_dir_make_tmp("fth-overlap-XXXXXX", NULL);
  g_autofree char *out = g_build_filename(dir, "result", NULL);
  const char *argv[] = {self_exe, "worker", out, NULL};
  GError *error = NULL;
  g_assert_true(fth_launch_workers(argv, nproc, NULL, &error));
  g_assert_no_error(error);
  g_autofree char *text = NULL;
  g_assert_true(g_file_get_contents(out, &text, NULL, &error));
  char verdict[16] = "";
  int early = -1, early_without = -1;
  g_assert_cmpint(sscanf(text, "%15s %d %d", verdict, &early, &early_without), ==, 3);
  g_test_message("%d processes: %d buckets summed during the backward pass with the overlap, "
                 "%d without", nproc, early, early_without);
  g_assert_cmpstr(verdict, ==, "same");
  /* Without the overlap nothing is summed before the backward pass ends. */
  g_assert_cmpint(early_without, ==, 0);
  g_unlink(out);
  g_rmdir(dir);
}

static void
count_ready(const FthNode *param, void *data)
{
  GHashTable *counts = data;
  gpointer n = g_hash_table_lookup(counts, param);
  g_hash_table_insert(counts, (gpointer)param, GINT_TO_POINTER(GPOINTER_TO_INT(n) + 1));
}

static void
test_announced_once(gconstpointer data)
{
  gboolean device = GPOINTER_TO_INT(data);
  GError *error = NULL;
  FthSamples s;
  g_autofree uint32_t *idx = NULL;
  g_autoptr(FthTrainer) t = new_trainer(&s, &idx, &error);
  g_autofree guint8 *pixels = (guint8 *)s.pixels;
  g_autofree int32_t *labels = (int32_t *)s.labels;
  g_assert_no_error(error);
  if (device)
    g_assert_true(fth_trainer_use_device(t, fth_backend_cpu(), 0, &error));
  g_assert_no_error(error);
  g_assert_true(fth_trainer_backend(t) == (device ? fth_backend_cpu() : NULL));
  FthGraph *g = fth_trainer_model(t)->graph;
  g_autoptr(GHashTable) counts = g_hash_table_new(NULL, NULL);
  fth_graph_set_grad_ready_func(g, count_ready, counts);
  FthTrainProgress p = {0};
  gboolean interrupted;
  g_assert_true(fth_trainer_run_epoch(t, &s, idx, N_SAMPLES, 0, 0, 0, &p, NULL, NULL, NULL,
                                      &interrupted, &error));
  g_assert_no_error(error);
  const int steps = (N_SAMPLES + BATCH - 1) / BATCH;
  g_assert_cmpint(fth_graph_n_params(g), ==, 6);
  for (int i = 0; i < fth_graph_n_params(g); i++)
    g_assert_cmpint(GPOINTER_TO_INT(g_hash_table_lookup(counts, fth_graph_param(g, i))), ==,
                    steps);
  g_assert_cmpuint(g_hash_table_size(counts), ==, 6);
  fth_graph_set_grad_ready_func(g, NULL, NULL);
}

int
main(int argc, char **argv)
{
  if (argc == 3 && strcmp(argv[1], "worker") == 0)
    return worker(argv[2]);
  g_test_init(&argc, &argv, NULL);
  self_exe = g_file_read_link("/proc/self/exe", NULL);
  g_test_add_data_func("/grad-overlap/2-processes", GINT_TO_POINTER(2), test_same_bits);
  g_test_add_data_func("/grad-overlap/3-processes", GINT_TO_POINTER(3), test_same_bits);
  g_test_add_data_func("/grad-overlap/announced-once-cpu", GINT_TO_POINTER(FALSE),
                       test_announced_once);
  g_test_add_data_func("/grad-overlap/announced-once-device", GINT_TO_POINTER(TRUE),
                       test_announced_once);
  int status = g_test_run();
  g_free(self_exe);
  return status;
}
