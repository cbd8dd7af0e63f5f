/* bench-active: simulated active learning on Fashion-MNIST. The 60,000 training images are the
 * pool (their labels the oracle), the 10,000 test images the held-out set. Per strategy and
 * seed: start with random labels, fine-tune, score the pool, reveal a batch, for R rounds.
 * Prints one row per round, then labels-to-target per strategy against random, and draws the
 * learning curves (mean over seeds) into a PNG with Cairo.
 *
 *   bench-active [--strategies random,entropy,...] [--seeds 3] [--rounds 20] [--start 100]
 *                [--batch 100] [--target 0.85] [--pool N] [--recipe fmnist-cnn]
 *                [--min-steps 100] [--png curves.png] [--csv rounds.csv]
 */
#include <fathom/active.h>
#include <cairo.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

static guint8 *
read_idx(const char *dir, const char *name, int want_dims, guint32 *count, gsize *item_bytes)
{
  g_autofree char *path = g_build_filename(dir, name, NULL);
  gzFile f = gzopen(path, "rb");
  if (f == NULL) {
    fprintf(stderr, "bench-active: cannot open %s\n", path);
    return NULL;
  }
  guint8 head[16];
  int hn = 4 + 4 * want_dims;
  if (gzread(f, head, (unsigned)hn) != hn) {
    fprintf(stderr, "bench-active: %s: short header\n", path);
    gzclose(f);
    return NULL;
  }
  guint32 dims[3] = {1, 1, 1};
  for (int d = 0; d < want_dims; d++)
    dims[d] = (guint32)head[4 + 4 * d] << 24 | (guint32)head[5 + 4 * d] << 16 |
              (guint32)head[6 + 4 * d] << 8 | head[7 + 4 * d];
  *count = dims[0];
  *item_bytes = want_dims == 3 ? (gsize)dims[1] * dims[2] : 1;
  gsize total = *count * *item_bytes;
  guint8 *buf = g_malloc(total);
  if ((gsize)gzread(f, buf, (unsigned)total) != total) {
    fprintf(stderr, "bench-active: %s: short data\n", path);
    g_free(buf);
    buf = NULL;
  }
  gzclose(f);
  return buf;
}

typedef struct {
  const char *strategy;
  guint seed;
} RunKey;

static void
print_round(const FthAlRound *r, gpointer data)
{
  const RunKey *k = data;
  printf("%-17s %4u %5u %7zu %7.4f %8.2f %8.2f\n", k->strategy, k->seed, r->round, r->n_labels,
         r->accuracy, r->fit_s, r->score_s);
  fflush(stdout);
}

/* Labels at which a curve first reaches target (linear interpolation between rounds); NAN when
 * it never does. */
static double
labels_to_reach(const double *labels, const double *acc, int n, double target)
{
  for (int i = 0; i < n; i++) {
    if (acc[i] >= target) {
      if (i == 0)
        return labels[0];
      double f = (target - acc[i - 1]) / (acc[i] - acc[i - 1]);
      return labels[i - 1] + f * (labels[i] - labels[i - 1]);
    }
  }
  return NAN;
}

static void
draw_curves(const char *png, char **names, int n_strat, int n_points, const double *labels,
            const double *mean_acc, double target)
{
  const int W = 900, H = 600, L = 70, R = 180, T = 40, B = 60;
  cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, W, H);
  cairo_t *cr = cairo_create(s);
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);
  double xmax = labels[n_points - 1], ymin = 1, ymax = 0;
  for (int i = 0; i < n_strat * n_points; i++) {
    ymin = fmin(ymin, mean_acc[i]);
    ymax = fmax(ymax, mean_acc[i]);
  }
  ymin = floor(ymin * 20) / 20;
  ymax = fmin(1.0, ceil(fmax(ymax, target) * 20) / 20);
#define PX(v) (L + (v) / xmax * (W - L - R))
#define PY(a) (H - B - ((a) - ymin) / (ymax - ymin) * (H - T - B))
  cairo_set_source_rgb(cr, 0, 0, 0);
  cairo_set_line_width(cr, 1);
  cairo_rectangle(cr, L, T, W - L - R, H - T - B);
  cairo_stroke(cr);
  cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, 12);
  char buf[64];
  for (double a = ymin; a <= ymax + 1e-9; a += 0.05) {
    snprintf(buf, sizeof buf, "%.2f", a);
    cairo_move_to(cr, 20, PY(a) + 4);
    cairo_show_text(cr, buf);
  }
  for (int i = 0; i <= 5; i++) {
    double v = xmax * i / 5;
    snprintf(buf, sizeof buf, "%.0f", v);
    cairo_move_to(cr, PX(v) - 12, H - B + 18);
    cairo_show_text(cr, buf);
  }
  cairo_move_to(cr, W / 2 - 60, H - 15);
  cairo_show_text(cr, "labels (oracle queries)");
  cairo_move_to(cr, L, 25);
  cairo_show_text(cr, "Fashion-MNIST test accuracy, mean over seeds");
  /* The target line. */
  double dash[] = {4, 4};
  cairo_set_dash(cr, dash, 2, 0);
  cairo_move_to(cr, L, PY(target));
  cairo_line_to(cr, W - R, PY(target));
  cairo_stroke(cr);
  cairo_set_dash(cr, NULL, 0, 0);
  static const double colors[][3] = {{0.2, 0.2, 0.2}, {0.85, 0.1, 0.1}, {0.1, 0.5, 0.1},
                                     {0.1, 0.2, 0.85}, {0.8, 0.5, 0.0}, {0.6, 0.1, 0.7},
                                     {0.0, 0.6, 0.7}};
  cairo_set_line_width(cr, 2);
  for (int si = 0; si < n_strat; si++) {
    const double *c = colors[si % 7];
    cairo_set_source_rgb(cr, c[0], c[1], c[2]);
    for (int i = 0; i < n_points; i++) {
      double x = PX(labels[i]), y = PY(mean_acc[si * n_points + i]);
      if (i == 0)
        cairo_move_to(cr, x, y);
      else
        cairo_line_to(cr, x, y);
    }
    cairo_stroke(cr);
    cairo_move_to(cr, W - R + 15, T + 20 + 20 * si);
    cairo_show_text(cr, names[si]);
  }
#undef PX
#undef PY
  cairo_destroy(cr);
  cairo_status_t st = cairo_surface_write_to_png(s, png);
  if (st != CAIRO_STATUS_SUCCESS)
    fprintf(stderr, "bench-active: %s: %s\n", png, cairo_status_to_string(st));
  cairo_surface_destroy(s);
}

int
main(int argc, char **argv)
{
  g_autofree char *strategies = g_strdup("random,least-confidence,margin,entropy,bald,coreset,hybrid");
  int seeds = 3, rounds = 20, start = 100, batch = 100, pool_limit = 0, min_steps = 100;
  double target = 0.85;
  g_autofree char *recipe = g_strdup("fmnist-cnn");
  g_autofree char *png = NULL, *csv = NULL;
  GOptionEntry entries[] = {
    {"strategies", 0, 0, G_OPTION_ARG_STRING, &strategies, "comma-separated strategies", "LIST"},
    {"seeds", 0, 0, G_OPTION_ARG_INT, &seeds, "seeds per strategy (3)", "N"},
    {"rounds", 0, 0, G_OPTION_ARG_INT, &rounds, "acquisition rounds (20)", "N"},
    {"start", 0, 0, G_OPTION_ARG_INT, &start, "random start labels (100)", "N"},
    {"batch", 0, 0, G_OPTION_ARG_INT, &batch, "labels per round (100)", "N"},
    {"target", 0, 0, G_OPTION_ARG_DOUBLE, &target, "accuracy target (0.85)", "A"},
    {"pool", 0, 0, G_OPTION_ARG_INT, &pool_limit, "use only the first N training images", "N"},
    {"recipe", 0, 0, G_OPTION_ARG_STRING, &recipe, "model recipe (fmnist-cnn)", "R"},
    {"min-steps", 0, 0, G_OPTION_ARG_INT, &min_steps, "optimizer steps per fine-tune (100)", "N"},
    {"png", 0, 0, G_OPTION_ARG_FILENAME, &png, "learning-curve plot", "FILE"},
    {"csv", 0, 0, G_OPTION_ARG_FILENAME, &csv, "per-round rows", "FILE"},
    {NULL},
  };
  g_autoptr(GOptionContext) ctx = g_option_context_new("- simulated active learning");
  g_option_context_add_main_entries(ctx, entries, NULL);
  g_autoptr(GError) error = NULL;
  if (!g_option_context_parse(ctx, &argc, &argv, &error)) {
    fprintf(stderr, "bench-active: %s\n", error->message);
    return 2;
  }
  const char *dir = g_getenv("FTH_FASHION_MNIST_DIR");
  if (dir == NULL)
    dir = "/usr/share/datasets/fashion-mnist";
  guint32 n_tr, n_te, n_trl, n_tel;
  gsize px, one;
  g_autofree guint8 *tr = read_idx(dir, "train-images-idx3-ubyte.gz", 3, &n_tr, &px);
  g_autofree guint8 *te = read_idx(dir, "t10k-images-idx3-ubyte.gz", 3, &n_te, &px);
  g_autofree guint8 *trl = read_idx(dir, "train-labels-idx1-ubyte.gz", 1, &n_trl, &one);
  g_autofree guint8 *tel = read_idx(dir, "t10k-labels-idx1-ubyte.gz", 1, &n_tel, &one);
  if (tr == NULL || te == NULL || trl == NULL || tel == NULL)
    return 1;
  size_t n_pool = pool_limit > 0 ? MIN((size_t)pool_limit, n_tr) : n_tr;
  size_t n = n_pool + n_te;
  g_autofree guint8 *pixels = g_new(guint8, n * px);
  g_autofree int32_t *labels = g_new(int32_t, n);
  memcpy(pixels, tr, n_pool * px);
  memcpy(pixels + n_pool * px, te, n_te * px);
  for (size_t i = 0; i < n_pool; i++)
    labels[i] = trl[i];
  for (size_t i = 0; i < n_te; i++)
    labels[n_pool + i] = tel[i];
  g_autofree uint32_t *test = g_new(uint32_t, n_te);
  for (size_t i = 0; i < n_te; i++)
    test[i] = (uint32_t)(n_pool + i);
  FthSamples samples = {pixels, labels, NULL, n, 1, 28, 28};

  g_auto(GStrv) names = g_strsplit(strategies, ",", -1);
  int n_strat = (int)g_strv_length(names);
  int n_points = rounds + 1;
  g_autofree double *acc_sum = g_new0(double, (size_t)n_strat * (size_t)n_points);
  g_autofree double *lab = g_new(double, (size_t)n_points);
  g_autofree double *reach = g_new(double, (size_t)n_strat * (size_t)seeds);
  g_autofree double *fit_s = g_new0(double, (size_t)n_strat);
  g_autofree double *score_s = g_new0(double, (size_t)n_strat);
  FILE *csv_out = csv ? fopen(csv, "w") : NULL;
  if (csv_out)
    fprintf(csv_out, "strategy,seed,round,labels,accuracy,fit_s,score_s\n");
  printf("# pool %zu, test %u, recipe %s, start %d, batch %d, rounds %d, min-steps %d\n", n_pool,
         n_te, recipe, start, batch, rounds, min_steps);
  printf("%-17s %4s %5s %7s %7s %8s %8s\n", "strategy", "seed", "round", "labels", "acc",
         "fit_s", "score_s");
  for (int si = 0; si < n_strat; si++) {
    FthAcquisition strat;
    if (!fth_acquisition_from_name(names[si], &strat, &error)) {
      fprintf(stderr, "bench-active: %s\n", error->message);
      return 2;
    }
    for (int seed = 1; seed <= seeds; seed++) {
      FthActiveTrainerOptions to;
      fth_active_trainer_options_init(&to);
      to.recipe = recipe;
      to.seed = (uint64_t)seed;
      to.min_steps = min_steps;
      g_autoptr(FthActiveTrainer) at = fth_active_trainer_new(&samples, test, n_te, 10, &to,
                                                              &error);
      if (at == NULL) {
        fprintf(stderr, "bench-active: %s\n", error->message);
        return 1;
      }
      FthAlModel model = fth_active_trainer_model(at);
      RunKey key = {names[si], (guint)seed};
      FthAlOptions opt;
      fth_al_options_init(&opt);
      opt.acq.strategy = strat;
      opt.acq.seed = (uint64_t)seed;
      opt.acq.batch = (size_t)batch;
      opt.start = (size_t)start;
      opt.rounds = (guint)rounds;
      opt.on_round = print_round;
      opt.on_round_data = &key;
      g_autoptr(GArray) res = g_array_new(FALSE, FALSE, sizeof(FthAlRound));
      if (!fth_al_simulate(&model, at, labels, n_pool, &opt, res, &error)) {
        fprintf(stderr, "bench-active: %s\n", error->message);
        return 1;
      }
      g_autofree double *acc = g_new(double, res->len);
      for (guint r = 0; r < res->len; r++) {
        const FthAlRound *rr = &g_array_index(res, FthAlRound, r);
        acc[r] = rr->accuracy;
        lab[r] = (double)rr->n_labels;
        acc_sum[si * n_points + (int)r] += rr->accuracy / seeds;
        fit_s[si] += rr->fit_s;
        score_s[si] += rr->score_s;
        if (csv_out)
          fprintf(csv_out, "%s,%d,%u,%zu,%.4f,%.3f,%.3f\n", names[si], seed, rr->round,
                  rr->n_labels, rr->accuracy, rr->fit_s, rr->score_s);
      }
      reach[si * seeds + seed - 1] = labels_to_reach(lab, acc, (int)res->len, target);
    }
  }
  if (csv_out)
    fclose(csv_out);
  printf("\n# labels to reach %.0f%% test accuracy (mean over seeds that reached it; n/r: not "
         "reached within %d labels)\n", target * 100, start + rounds * batch);
  printf("%-17s %10s %8s %12s %10s %10s\n", "strategy", "labels", "reached", "x random",
         "fit s/rnd", "score s/rnd");
  double random_mean = NAN;
  for (int si = 0; si < n_strat; si++)
    if (strcmp(names[si], "random") == 0) {
      double s = 0;
      int k = 0;
      for (int j = 0; j < seeds; j++)
        if (!isnan(reach[si * seeds + j]))
          s += reach[si * seeds + j], k++;
      random_mean = k == seeds ? s / k : NAN;
    }
  for (int si = 0; si < n_strat; si++) {
    double s = 0;
    int k = 0;
    for (int j = 0; j < seeds; j++)
      if (!isnan(reach[si * seeds + j]))
        s += reach[si * seeds + j], k++;
    double mean = k ? s / k : NAN;
    char ratio[32] = "-";
    if (k == seeds && !isnan(random_mean))
      snprintf(ratio, sizeof ratio, "%.2f", mean / random_mean);
    char lab_s[32] = "n/r";
    if (k > 0)
      snprintf(lab_s, sizeof lab_s, "%.0f", mean);
    printf("%-17s %10s %5d/%-2d %12s %10.2f %10.2f\n", names[si], lab_s, k, seeds, ratio,
           fit_s[si] / (seeds * n_points), score_s[si] / (seeds * rounds));
  }
  if (png != NULL)
    draw_curves(png, names, n_strat, n_points, lab, acc_sum, target);
  return 0;
}
