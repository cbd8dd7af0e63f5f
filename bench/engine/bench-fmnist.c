/* Fashion-MNIST training and inference with the engine, measured as the PyTorch peer
 * (../shared/peers/torch/fmnist_cnn.py) measures itself: same model, data in [0, 1], batch,
 * optimizer and seed handling; steady training images/s excluding the first 20 batches of each
 * epoch; test accuracy after each epoch; inference at batch 1 (2,000 test images, 100 warm-up)
 * and 256 (all 10,000, 5 warm-up batches), median of 5; peak RSS. Prints one RESULT_JSON line.
 *
 *   bench-fmnist [--recipe NAME|PATH] [--epochs N] [--batch N] [--lr X] [--threads N]
 *                [--data-dir DIR] [--seed N] [--no-augment] [--limit-train N]
 *                [--precision fp32|bf16]   (bf16: the graph's bf16 GEMMs, AVX512_BF16 CPUs)
 */
#include <fathom/backend.h>
#include <fathom/media.h>
#include <fathom/train.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static double
now_s(void)
{
  return (double)g_get_monotonic_time() / 1e6;
}

static double
maxrss_mib(void)
{
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_maxrss / 1024.0;
}

static gboolean
load(const char *dir, const char *images, const char *labels, FthIdx **img, int32_t **lab,
     size_t *n, GError **error)
{
  g_autofree char *ip = g_build_filename(dir, images, NULL);
  g_autofree char *lp = g_build_filename(dir, labels, NULL);
  *img = fth_idx_open(ip, error);
  if (*img == NULL)
    return FALSE;
  g_autoptr(FthIdx) l = fth_idx_open(lp, error);
  if (l == NULL)
    return FALSE;
  *n = fth_idx_get_n_records(*img);
  if (fth_idx_get_n_records(l) != *n) {
    g_set_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_DATA, "%s: %zu labels for %zu images",
                lp, fth_idx_get_n_records(l), *n);
    return FALSE;
  }
  *lab = g_new(int32_t, *n);
  gsize len;
  const guint8 *d = fth_idx_get_data(l, &len);
  for (size_t i = 0; i < *n; i++)
    (*lab)[i] = d[i];
  return TRUE;
}

typedef struct {
  double t_steady0;
  int64_t steady_from_batch;
  int64_t spe;
  int skip;
} SteadyClock;

/* The trainer reports every 20 batches; batch index 20 (the 21st) done starts the clock, as
 * close to the peer's "excluding the first 20 batches" as the report interval allows. */
static void
on_progress(const FthTrainProgress *p, gpointer data)
{
  SteadyClock *c = data;
  if (!p->epoch_end && (p->step - 1) % c->spe == c->skip) {
    c->t_steady0 = now_s();
    c->steady_from_batch = (p->step - 1) % c->spe + 1;
  }
}

static int
cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Median and best images/s of 5 timed passes over n images in batches of bs. */
static gboolean
bench_infer(FthModel *m, const float *x, size_t n, size_t sample, int bs, int warmup,
            double *median, double *best, GError **error)
{
  FthGraph *g = m->graph;
  double rates[5];
  for (int rep = -1; rep < 5; rep++) {
    double t0 = now_s();
    int batches = rep < 0 ? warmup : (int)((n + (size_t)bs - 1) / (size_t)bs);
    for (int b = 0; b < batches; b++) {
      size_t start = rep < 0 ? ((size_t)b * (size_t)bs) % (n - (size_t)bs + 1) : (size_t)b * (size_t)bs;
      size_t count = MIN((size_t)bs, n - start);
      if ((fth_graph_batch(g) != (int64_t)count && fth_graph_set_batch(g, (int64_t)count) != FTH_STATUS_OK) ||
          fth_graph_set_input(g, m->input, x + start * sample, count * sample * sizeof(float)) !=
            FTH_STATUS_OK ||
          fth_graph_run(g) != FTH_STATUS_OK) {
        g_set_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_ENGINE, "inference: %s",
                    fth_last_error());
        return FALSE;
      }
    }
    if (rep >= 0)
      rates[rep] = (double)n / (now_s() - t0);
  }
  qsort(rates, 5, sizeof *rates, cmp_double);
  *median = rates[2];
  *best = rates[4];
  return TRUE;
}

int
main(int argc, char **argv)
{
  const char *recipe_name = "fmnist-cnn", *data_dir = "/usr/share/datasets/fashion-mnist";
  int epochs = 0, batch = 0, threads = 0, seed = 1234, limit = 0;
  FthPrecision precision = FTH_PRECISION_FP32;
  double lr = 0;
  gboolean no_augment = FALSE;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--recipe") == 0 && i + 1 < argc)
      recipe_name = argv[++i];
    else if (strcmp(argv[i], "--epochs") == 0 && i + 1 < argc)
      epochs = atoi(argv[++i]);
    else if (strcmp(argv[i], "--batch") == 0 && i + 1 < argc)
      batch = atoi(argv[++i]);
    else if (strcmp(argv[i], "--lr") == 0 && i + 1 < argc)
      lr = atof(argv[++i]);
    else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
      threads = atoi(argv[++i]);
    else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc)
      seed = atoi(argv[++i]);
    else if (strcmp(argv[i], "--data-dir") == 0 && i + 1 < argc)
      data_dir = argv[++i];
    else if (strcmp(argv[i], "--limit-train") == 0 && i + 1 < argc)
      limit = atoi(argv[++i]);
    else if (strcmp(argv[i], "--precision") == 0 && i + 1 < argc &&
             fth_precision_from_name(argv[i + 1], &precision) && precision != FTH_PRECISION_FP16)
      i++;
    else if (strcmp(argv[i], "--no-augment") == 0)
      no_augment = TRUE;
    else {
      fprintf(stderr, "usage: %s [--recipe R] [--epochs N] [--batch N] [--lr X] [--threads N] "
                      "[--seed N] [--data-dir DIR] [--no-augment] [--limit-train N] "
                      "[--precision fp32|bf16]\n", argv[0]);
      return 2;
    }
  }
  if (threads > 0 && fth_set_thread_count(threads) != FTH_STATUS_OK) {
    fprintf(stderr, "bench-fmnist: %s\n", fth_last_error());
    return 1;
  }
  double t_start = now_s();
  GError *error = NULL;
  g_autofree char *rpath = fth_recipe_find(recipe_name);
  if (rpath == NULL) {
    fprintf(stderr, "bench-fmnist: %s: no such recipe\n", recipe_name);
    return 1;
  }
  g_autoptr(FthRecipe) recipe = fth_recipe_load(rpath, NULL, &error);
  FthIdx *tr_img = NULL, *te_img = NULL;
  g_autofree int32_t *tr_lab = NULL, *te_lab = NULL;
  size_t ntr = 0, nte = 0;
  if (recipe == NULL ||
      !load(data_dir, "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", &tr_img,
            &tr_lab, &ntr, &error) ||
      !load(data_dir, "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", &te_img, &te_lab,
            &nte, &error)) {
    fprintf(stderr, "bench-fmnist: %s\n", error->message);
    return 1;
  }
  double t_load = now_s() - t_start;
  if (limit > 0 && (size_t)limit < ntr)
    ntr = (size_t)limit; /* the first N images, as the peer's --limit-train */
  gsize len;
  FthSamples train = {fth_idx_get_data(tr_img, &len), tr_lab, NULL, ntr, 1, 28, 28};
  FthSamples test = {fth_idx_get_data(te_img, &len), te_lab, NULL, nte, 1, 28, 28};

  FthTrainerConfig cfg = {
    .seed = (uint64_t)seed, .batch = batch > 0 ? batch : recipe->train.batch,
    .epochs = epochs > 0 ? epochs : recipe->train.epochs, .n_train = ntr,
    .optim = recipe->train.optim, .schedule = recipe->train.schedule,
    .augment = {recipe->train.flip_prob, recipe->train.crop_padding, recipe->train.rotate_deg,
                recipe->train.brightness, recipe->train.contrast}};
  cfg.use_augment = !no_augment && (cfg.augment.flip_prob > 0 || cfg.augment.crop_padding > 0 ||
                                    cfg.augment.rotate_deg > 0 || cfg.augment.brightness > 0 ||
                                    cfg.augment.contrast > 0);
  if (lr > 0)
    cfg.optim.lr = cfg.schedule.base_lr = (float)lr;
  int64_t spe = ((int64_t)ntr + cfg.batch - 1) / cfg.batch;
  cfg.schedule.total_steps = spe * cfg.epochs;
  g_autoptr(FthTrainer) t = fth_trainer_new(recipe, 10, &cfg, &error);
  if (t == NULL || !fth_trainer_set_precision(t, precision, &error)) {
    fprintf(stderr, "bench-fmnist: %s\n", error->message);
    return 1;
  }
  FthModel *m = fth_trainer_model(t);
  printf("recipe %s: batch %d, epochs %d, threads %d, optimizer %s lr %g momentum %g, "
         "augment %s, precision %s, data load %.2f s\n", recipe->name, cfg.batch, cfg.epochs,
         fth_thread_count(), cfg.optim.kind == FTH_OPTIM_SGD ? "sgd" : "adamw", cfg.optim.lr,
         cfg.optim.momentum, cfg.use_augment ? "on" : "off", fth_precision_name(precision),
         t_load);

  g_autofree uint32_t *tr_idx = g_new(uint32_t, ntr), *te_idx = g_new(uint32_t, nte);
  for (size_t i = 0; i < ntr; i++)
    tr_idx[i] = (uint32_t)i;
  for (size_t i = 0; i < nte; i++)
    te_idx[i] = (uint32_t)i;
  g_autoptr(GString) epochs_json = g_string_new("[");
  double steady_images = 0, steady_time = 0, train_wall = 0, acc = 0;
  g_autoptr(FthConfusion) cm = fth_confusion_new(10);
  for (int e = 0; e < cfg.epochs; e++) {
    double t0 = now_s();
    /* Epochs of 21 batches or fewer (--limit-train) have no steady part: the whole epoch. */
    SteadyClock clock = {t0, 0, spe, 20};
    FthTrainProgress p = {.epochs = cfg.epochs};
    gboolean interrupted;
    if (!fth_trainer_run_epoch(t, &train, tr_idx, ntr, e, 0, 0, &p, on_progress, &clock, NULL,
                               &interrupted, &error)) {
      fprintf(stderr, "bench-fmnist: %s\n", error->message);
      return 1;
    }
    double t1 = now_s();
    double ss_imgs = (double)ntr - (double)clock.steady_from_batch * cfg.batch;
    double ss_ips = ss_imgs / (t1 - clock.t_steady0);
    steady_images += ss_imgs;
    steady_time += t1 - clock.t_steady0;
    train_wall += t1 - t0;
    double test_loss;
    fth_confusion_reset(cm);
    if (!fth_trainer_evaluate(t, &test, te_idx, nte, cm, &test_loss, &error)) {
      fprintf(stderr, "bench-fmnist: %s\n", error->message);
      return 1;
    }
    acc = fth_confusion_accuracy(cm);
    printf("epoch %d: train %.2f s (%.0f img/s raw, %.0f img/s steady) train_loss %.4f | test acc "
           "%.2f%% loss %.4f | eval %.2f s | maxrss %.0f MiB\n", e + 1, t1 - t0, ntr / (t1 - t0),
           ss_ips, p.train_loss, acc * 100, test_loss, now_s() - t1, maxrss_mib());
    fflush(stdout);
    g_string_append_printf(epochs_json, "%s{\"epoch\": %d, \"train_wall_s\": %.3f, "
                           "\"train_ips_steady\": %.1f, \"train_loss\": %.5f, \"test_acc\": %.5f}",
                           e ? ", " : "", e + 1, t1 - t0, ss_ips, p.train_loss, acc);
  }
  g_string_append(epochs_json, "]");

  /* Inference on the float test set, as the peer holds it, with an inference-only model (no
   * loss, no targets) holding the trained weights. */
  size_t sample = 28 * 28;
  g_autofree float *xte = g_new(float, nte * sample);
  fth_samples_fill_batch(&test, te_idx, nte, NULL, 0, 0, NULL, NULL, xte, NULL);
  g_autoptr(FthModel) im = fth_model_build(recipe, 10, 1, FTH_MODEL_INFERENCE, &error);
  if (im == NULL || !fth_model_copy_params(im, m, &error)) {
    fprintf(stderr, "bench-fmnist: %s\n", error->message);
    return 1;
  }
  if (fth_graph_plan(im->graph, FTH_MODE_INFERENCE, 256) != FTH_STATUS_OK) {
    fprintf(stderr, "bench-fmnist: %s\n", fth_last_error());
    return 1;
  }
  m = im;
  double b1_med, b1_best, b256_med, b256_best;
  if (!bench_infer(m, xte, 2000, sample, 1, 100, &b1_med, &b1_best, &error) ||
      !bench_infer(m, xte, nte, sample, 256, 5, &b256_med, &b256_best, &error)) {
    fprintf(stderr, "bench-fmnist: %s\n", error->message);
    return 1;
  }
  double steady_all = steady_images / steady_time;
  printf("train steady over all epochs: %.0f img/s | inference batch1 %.0f img/s (best %.0f), "
         "batch256 %.0f img/s (best %.0f) | peak RSS %.0f MiB | total %.1f s\n", steady_all,
         b1_med, b1_best, b256_med, b256_best, maxrss_mib(), now_s() - t_start);
  printf("RESULT_JSON {\"engine\": \"fathom\", \"recipe\": \"%s\", \"precision\": \"%s\", "
         "\"threads\": %d, \"batch\": %d, "
         "\"epochs\": %s, \"train_ips_steady_all_epochs\": %.1f, \"train_wall_s\": %.2f, "
         "\"final_test_acc\": %.5f, \"b1_ips_median\": %.1f, \"b1_ips_best\": %.1f, "
         "\"b256_ips_median\": %.1f, \"b256_ips_best\": %.1f, \"peak_rss_mib\": %.1f, "
         "\"total_wall_s\": %.1f}\n", recipe->name, fth_precision_name(precision),
         fth_thread_count(), cfg.batch,
         epochs_json->str, steady_all, train_wall, acc, b1_med, b1_best, b256_med, b256_best,
         maxrss_mib(), now_s() - t_start);
  fth_idx_free(tr_img);
  fth_idx_free(te_img);
  return 0;
}
