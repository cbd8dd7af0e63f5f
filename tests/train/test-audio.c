/* Audio models end to end on a synthetic project: WAV files of noisy tones in a low and a high
 * band (random lengths, so items are both cropped and padded). A CNN over their log-mel
 * features learns them (> 90% test accuracy) and predicts every item; the features are
 * computed once (a second open decodes nothing and maps the same values); the augmentation
 * matches a float64 reference of each step and repeats for a fixed (seed, item, epoch); a
 * truncated WAV fails the open naming the file and leaves the cache as it was. */
#include <fathom/train.h>
#include <math.h>
#include <string.h>

#include "fixtures.h"

enum { N_PER_CLASS = 60, RATE = 8000 };

static const char *recipe_text =
  "{\"name\": \"tones\", \"input\": {\"shape\": [1, 16, 32], \"audio\": {\"sample_rate\": 8000,"
  "  \"duration\": 0.5, \"n_mels\": 16, \"win_ms\": 32, \"hop_ms\": 16}},"
  " \"layers\": [{\"type\": \"conv2d\", \"out_channels\": 8, \"kernel\": 3, \"padding\": 1},"
  "  {\"type\": \"relu\"}, {\"type\": \"max_pool2d\", \"kernel\": 2},"
  "  {\"type\": \"conv2d\", \"out_channels\": 16, \"kernel\": 3, \"padding\": 1},"
  "  {\"type\": \"relu\"}, {\"type\": \"avg_pool2d\", \"kernel\": [1, 16]},"
  "  {\"type\": \"flatten\"},"
  "  {\"type\": \"linear\", \"out_features\": \"classes\"}],"
  " \"train\": {\"optimizer\": \"adamw\", \"lr\": 0.01, \"batch\": 16, \"epochs\": 8,"
  "  \"augment\": {\"time_shift\": 3, \"noise\": 0.1, \"freq_mask\": 2, \"time_mask\": 4}}}";

static char *tmp_root;

static void
put16(GByteArray *b, guint16 v)
{
  guint8 p[2] = {(guint8)v, (guint8)(v >> 8)};
  g_byte_array_append(b, p, 2);
}

static void
put32(GByteArray *b, guint32 v)
{
  put16(b, (guint16)v);
  put16(b, (guint16)(v >> 16));
}

/* A 16-bit mono PCM WAV; declared_extra > 0 makes the header claim more data than follows. */
static GBytes *
wav_bytes(const float *x, int n, guint32 declared_extra)
{
  GByteArray *b = g_byte_array_new();
  guint32 data = (guint32)n * 2;
  g_byte_array_append(b, (const guint8 *)"RIFF", 4);
  put32(b, 36 + data + declared_extra);
  g_byte_array_append(b, (const guint8 *)"WAVEfmt ", 8);
  put32(b, 16);
  put16(b, 1);
  put16(b, 1);
  put32(b, RATE);
  put32(b, RATE * 2);
  put16(b, 2);
  put16(b, 16);
  g_byte_array_append(b, (const guint8 *)"data", 4);
  put32(b, data + declared_extra);
  for (int i = 0; i < n; i++) {
    float v = x[i] < -1 ? -1 : x[i] > 1 ? 1 : x[i];
    put16(b, (guint16)(gint16)lrintf(v * 32767.0f));
  }
  return g_byte_array_free_to_bytes(b);
}

static gint64
add_audio_item(FthStore *store, const char *path, GBytes *bytes, gint64 label)
{
  GError *error = NULL;
  gsize len;
  const guint8 *data = g_bytes_get_data(bytes, &len);
  g_assert_true(g_file_set_contents(path, (const char *)data, (gssize)len, &error));
  g_autoptr(FthItemRecord) it = fth_item_record_new();
  it->kind = FTH_ITEM_AUDIO;
  it->path = g_strdup(path);
  it->sha256 = g_compute_checksum_for_data(G_CHECKSUM_SHA256, data, len);
  it->size_bytes = (gint64)len;
  it->sample_rate = RATE;
  gint64 id;
  g_assert_true(fth_store_add_item(store, it, &id, NULL, &error));
  g_assert_true(fth_store_set_class(store, id, label, FTH_AUTHOR_HUMAN, 0, 1.0, NULL, &error));
  g_assert_no_error(error);
  return id;
}

/* Tones of 250-600 Hz ("low") or 1.5-3 kHz ("high"), 0.3-0.7 s, random level, plus white
 * noise. */
static char *
make_project(const char *name, GRand *r)
{
  g_autofree char *dir = g_build_filename(tmp_root, name, NULL);
  GError *error = NULL;
  g_autoptr(FthStore) store = fth_store_create(dir, &error);
  g_assert_no_error(error);
  gint64 labels[2];
  g_assert_true(fth_store_add_label(store, "low", NULL, NULL, FTH_LABEL_CLASS, &labels[0], &error));
  g_assert_true(fth_store_add_label(store, "high", NULL, NULL, FTH_LABEL_CLASS, &labels[1], &error));
  g_assert_true(fth_store_begin(store, &error));
  for (int i = 0; i < 2 * N_PER_CLASS; i++) {
    int cls = i % 2, n = g_rand_int_range(r, RATE * 3 / 10, RATE * 7 / 10);
    double f = cls ? g_rand_double_range(r, 1500, 3000) : g_rand_double_range(r, 250, 600);
    double amp = g_rand_double_range(r, 0.1, 0.6), phase = g_rand_double_range(r, 0, 6.28);
    g_autofree float *x = g_new(float, n);
    for (int t = 0; t < n; t++)
      x[t] = (float)(amp * sin(2 * G_PI * f * t / RATE + phase) +
                     0.05 * g_rand_double_range(r, -1, 1));
    g_autoptr(GBytes) bytes = wav_bytes(x, n, 0);
    g_autofree char *path = g_strdup_printf("%s/tone-%03d.wav", dir, i);
    add_audio_item(store, path, bytes, labels[cls]);
  }
  g_assert_true(fth_store_commit(store, &error));
  g_assert_no_error(error);
  return g_steal_pointer(&dir);
}

static FthRecipe *
recipe(void)
{
  GError *error = NULL;
  FthRecipe *r = fth_recipe_parse(recipe_text, -1, "tones.json", NULL, &error);
  g_assert_no_error(error);
  return r;
}

static void
test_train_cache_predict(void)
{
  g_autoptr(GRand) r = g_rand_new_with_seed(g_test_rand_int());
  g_autofree char *dir = make_project("train", r);
  g_autofree char *recipe_path = g_build_filename(tmp_root, "tones.json", NULL);
  g_assert_true(g_file_set_contents(recipe_path, recipe_text, -1, NULL));
  GError *error = NULL;
  g_autoptr(FthStore) store = fth_store_open(dir, &error);
  g_assert_no_error(error);
  g_autoptr(FthRecipe) rec = recipe();

  /* Decoded once; the second open maps the same features. */
  g_autoptr(FthDataset) a = fth_dataset_open_recipe_audio(store, rec, FTH_DATASET_LABELED, &error);
  g_assert_no_error(error);
  g_assert_cmpuint(fth_dataset_n_decoded(a), ==, 2 * N_PER_CLASS);
  int c, h, w;
  fth_dataset_shape(a, &c, &h, &w);
  g_assert_cmpint(c, ==, 1);
  g_assert_cmpint(h, ==, 16);
  g_assert_cmpint(w, ==, 32);
  g_autoptr(FthDataset) b = fth_dataset_open_recipe_audio(store, rec, FTH_DATASET_LABELED, &error);
  g_assert_no_error(error);
  g_assert_cmpuint(fth_dataset_n_decoded(b), ==, 0);
  g_assert_cmpstr(fth_dataset_cache_path(a), ==, fth_dataset_cache_path(b));
  FthSamples sa, sb;
  fth_dataset_samples(a, &sa);
  fth_dataset_samples(b, &sb);
  g_assert_nonnull(sa.features);
  g_assert_cmpmem(sa.features, sizeof(float) * 16 * 32 * sa.n, sb.features,
                  sizeof(float) * 16 * 32 * sb.n);
  /* Another feature setting is another cache. */
  g_autofree char *other = g_strdup(recipe_text);
  memcpy(strstr(other, "\"hop_ms\": 16"), "\"hop_ms\": 32", 12);
  memcpy(strstr(other, "[1, 16, 32]"), "[1, 16, 16]", 11);
  g_autoptr(FthRecipe) rec2 = fth_recipe_parse(other, -1, "other.json", NULL, &error);
  g_assert_no_error(error);
  g_autoptr(FthDataset) d2 = fth_dataset_open_recipe_audio(store, rec2, FTH_DATASET_LABELED, &error);
  g_assert_no_error(error);
  g_assert_cmpuint(fth_dataset_n_decoded(d2), ==, 2 * N_PER_CLASS);
  g_assert_cmpstr(fth_dataset_cache_path(d2), !=, fth_dataset_cache_path(a));

  FthTrainOptions o;
  fth_train_options_init(&o);
  o.recipe = recipe_path;
  o.seed = 3;
  o.val_frac = 0.2;
  o.test_frac = 0.25;
  FthTrainResult res;
  g_assert_true(fth_train(store, &o, &res, &error));
  g_assert_no_error(error);
  g_test_message("audio: test accuracy %.3f after %d epochs", res.test_acc, res.epochs_run);
  g_assert_cmpfloat(res.test_acc, >, 0.9);

  FthPredictOptions po = {.checkpoint_dir = res.checkpoint_dir};
  gint64 run;
  gsize n_items = 0;
  g_assert_true(fth_predict(store, &po, &run, &n_items, &error));
  g_assert_no_error(error);
  g_assert_cmpuint(n_items, ==, 2 * N_PER_CLASS);
  fth_train_result_clear(&res);
}

/* The clean features of sample i, standardized in float64. */
static void
standardized(const float *src, int n, double *out)
{
  double m = 0, v = 0;
  for (int j = 0; j < n; j++)
    m += src[j];
  m /= n;
  for (int j = 0; j < n; j++)
    v += (src[j] - m) * (src[j] - m);
  v /= n;
  for (int j = 0; j < n; j++)
    out[j] = (src[j] - m) / sqrt(v);
}

static void
test_augment(void)
{
  enum { N = 3, M = 12, F = 40, S = M * F };
  g_autoptr(GRand) r = g_rand_new_with_seed(g_test_rand_int());
  float feat[N * S];
  for (int j = 0; j < N * S; j++)
    feat[j] = (float)g_rand_double_range(r, -20, 5);
  int32_t labels[N] = {0, 1, 0};
  gint64 keys[N] = {11, 12, 13};
  FthSamples s = {.labels = labels, .keys = keys, .n = N, .channels = 1, .height = M, .width = F,
                  .features = feat};
  uint32_t idx[N] = {2, 0, 1};
  float x[N * S], x2[N * S];
  int32_t y[N];
  double ref[S];

  /* Without augmentation: the standardized features. */
  fth_samples_fill_batch(&s, idx, N, NULL, 1, 0, NULL, NULL, x, y);
  g_assert_cmpint(y[0], ==, 0);
  g_assert_cmpint(y[2], ==, 1);
  for (int k = 0; k < N; k++) {
    standardized(feat + idx[k] * S, S, ref);
    for (int j = 0; j < S; j++)
      g_assert_cmpfloat_with_epsilon(x[k * S + j], ref[j], 1e-4);
  }

  /* Time shift alone: every row moves by one offset in [-5, 5], zeros where it came from
   * outside; over many epochs every offset shows up. */
  FthAugment shift = {.time_shift = 5};
  gboolean seen[11] = {FALSE};
  for (int epoch = 0; epoch < 200; epoch++) {
    fth_samples_fill_batch(&s, idx, 1, &shift, 9, (uint64_t)epoch, NULL, NULL, x, NULL);
    standardized(feat + idx[0] * S, S, ref);
    int found = 0;
    for (int d = -5; d <= 5 && !found; d++) {
      gboolean match = TRUE;
      for (int m = 0; m < M && match; m++)
        for (int f = 0; f < F && match; f++) {
          int from = f - d;
          double want = from >= 0 && from < F ? ref[m * F + from] : 0.0;
          match = fabs(x[m * F + f] - want) < 1e-4;
        }
      if (match) {
        found = 1;
        seen[d + 5] = TRUE;
      }
    }
    g_assert_true(found);
  }
  for (int d = 0; d < 11; d++)
    g_assert_true(seen[d]);

  /* Masks alone: one band of at most 3 mel rows and one run of at most 6 frames are zero, the
   * rest is the clean value. */
  FthAugment masks = {.freq_mask = 3, .time_mask = 6};
  standardized(feat + idx[0] * S, S, ref);
  for (int epoch = 0; epoch < 50; epoch++) {
    fth_samples_fill_batch(&s, idx, 1, &masks, 4, (uint64_t)epoch, NULL, NULL, x, NULL);
    int zero_rows = 0, zero_cols = 0;
    for (int m = 0; m < M; m++) {
      gboolean all = TRUE;
      for (int f = 0; f < F; f++)
        all = all && x[m * F + f] == 0.0f;
      zero_rows += all;
    }
    for (int f = 0; f < F; f++) {
      gboolean all = TRUE;
      for (int m = 0; m < M; m++)
        all = all && x[m * F + f] == 0.0f;
      zero_cols += all;
    }
    g_assert_cmpint(zero_rows, <=, 3);
    g_assert_cmpint(zero_cols, <=, 6);
    for (int j = 0; j < S; j++)
      g_assert_true(x[j] == 0.0f || fabs(x[j] - ref[j]) < 1e-4);
  }

  /* Noise alone: zero mean and the given standard deviation (float64 over 3 x 480 draws). */
  FthAugment noise = {.noise = 0.5f};
  fth_samples_fill_batch(&s, idx, N, &noise, 5, 1, NULL, NULL, x, NULL);
  double sum = 0, sq = 0;
  for (int k = 0; k < N; k++) {
    standardized(feat + idx[k] * S, S, ref);
    for (int j = 0; j < S; j++) {
      double d = x[k * S + j] - ref[j];
      sum += d;
      sq += d * d;
    }
  }
  double mean = sum / (N * S), sd = sqrt(sq / (N * S) - mean * mean);
  g_assert_cmpfloat(fabs(mean), <, 0.05);
  g_assert_cmpfloat(fabs(sd - 0.5), <, 0.05);

  /* Everything together repeats for (seed, key, epoch), whatever the batch position, and
   * changes with the epoch. */
  FthAugment all = {.time_shift = 5, .noise = 0.2f, .freq_mask = 3, .time_mask = 6};
  fth_samples_fill_batch(&s, idx, N, &all, 6, 2, NULL, NULL, x, NULL);
  uint32_t one = idx[1];
  fth_samples_fill_batch(&s, &one, 1, &all, 6, 2, NULL, NULL, x2, NULL);
  g_assert_cmpmem(x + S, sizeof(float) * S, x2, sizeof(float) * S);
  fth_samples_fill_batch(&s, &one, 1, &all, 6, 3, NULL, NULL, x2, NULL);
  g_assert_true(memcmp(x + S, x2, sizeof(float) * S) != 0);
}

static void
test_truncated_wav(void)
{
  g_autoptr(GRand) r = g_rand_new_with_seed(g_test_rand_int());
  g_autofree char *dir = make_project("truncated", r);
  GError *error = NULL;
  g_autoptr(FthStore) store = fth_store_open(dir, &error);
  g_assert_no_error(error);
  g_autoptr(FthRecipe) rec = recipe();
  g_autoptr(FthDataset) ds = fth_dataset_open_recipe_audio(store, rec, FTH_DATASET_LABELED, &error);
  g_assert_no_error(error);
  g_autofree char *cache = g_strdup(fth_dataset_cache_path(ds));
  g_autofree char *before = NULL;
  gsize before_len;
  g_assert_true(g_file_get_contents(cache, &before, &before_len, NULL));

  /* A WAV whose header declares 4000 more bytes than the file holds. */
  float x[800];
  for (int t = 0; t < 800; t++)
    x[t] = (float)(0.3 * sin(t * 0.3));
  g_autoptr(GBytes) cut = wav_bytes(x, 800, 4000);
  g_autofree char *bad = g_strdup_printf("%s/cut-off.wav", dir);
  g_autoptr(GPtrArray) labels = fth_store_list_labels(store, &error);
  add_audio_item(store, bad, cut, ((FthLabel *)g_ptr_array_index(labels, 0))->id);

  g_autoptr(FthDataset) failed =
    fth_dataset_open_recipe_audio(store, rec, FTH_DATASET_LABELED, &error);
  g_assert_null(failed);
  g_assert_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_DATA);
  g_test_message("truncated: %s", error->message);
  g_assert_nonnull(strstr(error->message, "cut-off.wav"));
  g_assert_cmpint((int)(strstr(error->message, "cut-off.wav") - error->message), <,
                  (int)strlen(bad) + 1);
  g_clear_error(&error);
  /* The earlier cache is untouched and no other file appeared beside it. */
  g_autofree char *after = NULL;
  gsize after_len;
  g_assert_true(g_file_get_contents(cache, &after, &after_len, NULL));
  g_assert_cmpmem(before, before_len, after, after_len);
  g_autofree char *cache_dir = g_path_get_dirname(cache);
  GDir *d = g_dir_open(cache_dir, 0, NULL);
  int files = 0;
  while (g_dir_read_name(d) != NULL)
    files++;
  g_dir_close(d);
  g_assert_cmpint(files, ==, 1);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  tmp_root = g_dir_make_tmp("fth-audio-XXXXXX", NULL);
  g_test_add_func("/audio/train-cache-predict", test_train_cache_predict);
  g_test_add_func("/audio/augment", test_augment);
  g_test_add_func("/audio/truncated-wav", test_truncated_wav);
  int rc = g_test_run();
  train_test_rmtree(tmp_root);
  g_free(tmp_root);
  return rc;
}
