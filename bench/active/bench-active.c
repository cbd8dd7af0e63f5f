/* bench-active: simulated active learning on Fashion-MNIST. The 60,000 training images are the
 * pool (their labels the oracle), the 10,000 test images the held-out set. Per strategy and
 * seed: start with random labels, fine-tune, score the pool, reveal a batch, for R rounds.
 * Prints one row per round, then labels-to-target per strategy against random, and draws the
 * learning curves (mean over seeds) into a PNG with Cairo.
 *
 *   bench-active [--strategies random,entropy,...] [--seeds 3] [--rounds 20] [--start 100]
 *                [--batch 100] [--target 0.85] [--pool N] [--recipe fmnist-cnn]
 *                [--min-steps 100] [--first-seed 1] [--png curves.png] [--csv rounds.csv]
 *   bench-active --from-csv a.csv,b.csv [--target 0.85] [--png curves.png]
 * The second form runs nothing: it summarises and plots the rows of earlier runs, so long runs
 * can be split (by strategy or seed) and merged; a strategy and seed that a later file has again
 * (a longer run) take that file's rows.
 */
#include <fathom/active.h>
#include <cairo.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
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

/* One (strategy, seed) run: its rounds. */
typedef struct {
  char *strategy;
  int seed;
  int file; /* --from-csv: the file the rows came from */
  GArray *labels, *acc, *fit_s, *score_s, *round_s, *cpu_s; /* doubles; the last two may stay
                                                              * empty (older CSVs) */
} Curve;

static void
curve_free(gpointer data)
{
  Curve *c = data;
  g_free(c->strategy);
  g_array_unref(c->labels);
  g_array_unref(c->acc);
  g_array_unref(c->fit_s);
  g_array_unref(c->score_s);
  g_array_unref(c->round_s);
  g_array_unref(c->cpu_s);
  g_free(c);
}

/* FILE: with --from-csv, the file's index; a curve a later file has again (a longer run of
 * the same strategy and seed) is replaced by the later one. */
static Curve *
find_curve(GPtrArray *curves, const char *strategy, int seed, int file)
{
  for (guint i = 0; i < curves->len; i++) {
    Curve *c = curves->pdata[i];
    if (c->seed != seed || strcmp(c->strategy, strategy) != 0)
      continue;
    if (c->file != file) {
      GArray *arrays[] = {c->labels, c->acc, c->fit_s, c->score_s, c->round_s, c->cpu_s};
      for (guint k = 0; k < G_N_ELEMENTS(arrays); k++)
        g_array_set_size(arrays[k], 0);
      c->file = file;
    }
    return c;
  }
  Curve *c = g_new0(Curve, 1);
  c->strategy = g_strdup(strategy);
  c->seed = seed;
  c->file = file;
  c->labels = g_array_new(FALSE, FALSE, sizeof(double));
  c->acc = g_array_new(FALSE, FALSE, sizeof(double));
  c->fit_s = g_array_new(FALSE, FALSE, sizeof(double));
  c->score_s = g_array_new(FALSE, FALSE, sizeof(double));
  c->round_s = g_array_new(FALSE, FALSE, sizeof(double));
  c->cpu_s = g_array_new(FALSE, FALSE, sizeof(double));
  g_ptr_array_add(curves, c);
  return c;
}

static void
curve_add_times(Curve *c, double round_s, double cpu_s)
{
  g_array_append_val(c->round_s, round_s);
  g_array_append_val(c->cpu_s, cpu_s);
}

static void
curve_add(Curve *c, double labels, double acc, double fit_s, double score_s)
{
  g_array_append_val(c->labels, labels);
  g_array_append_val(c->acc, acc);
  g_array_append_val(c->fit_s, fit_s);
  g_array_append_val(c->score_s, score_s);
}

static gboolean
read_csv(const char *path, int file, GPtrArray *curves, GError **error)
{
  g_autofree char *text = NULL;
  if (!g_file_get_contents(path, &text, NULL, error))
    return FALSE;
  g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
  for (int i = 1; lines[i] != NULL; i++) {
    if (lines[i][0] == '\0')
      continue;
    g_auto(GStrv) f = g_strsplit(lines[i], ",", -1);
    /* 7 fields from the first version of this file, 9 since round_s and cpu_s. */
    if (g_strv_length(f) != 7 && g_strv_length(f) != 9) {
      g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "%s:%d: expected 7 or 9 fields",
                  path, i + 1);
      return FALSE;
    }
    Curve *c = find_curve(curves, f[0], atoi(f[1]), file);
    curve_add(c, g_ascii_strtod(f[3], NULL), g_ascii_strtod(f[4], NULL),
              g_ascii_strtod(f[5], NULL), g_ascii_strtod(f[6], NULL));
    if (f[7] != NULL)
      curve_add_times(c, g_ascii_strtod(f[7], NULL), g_ascii_strtod(f[8], NULL));
  }
  return TRUE;
}

/* Strategy si's mean curve has n_points[si] points: labels[si][p], mean_acc[si][p]. */
static void
draw_curves(const char *png, char **names, int n_strat, const int *n_points, double **labels,
            double **mean_acc, double target)
{
  const int W = 900, H = 600, L = 70, R = 180, T = 40, B = 60;
  cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, W, H);
  cairo_t *cr = cairo_create(s);
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);
  double xmax = 0, ymin = 1, ymax = 0;
  for (int si = 0; si < n_strat; si++)
    for (int i = 0; i < n_points[si]; i++) {
      xmax = fmax(xmax, labels[si][i]);
      ymin = fmin(ymin, mean_acc[si][i]);
      ymax = fmax(ymax, mean_acc[si][i]);
    }
  ymin = floor(ymin * 20) / 20;
  ymax = fmin(1.0, ceil((fmax(ymax, target) + 0.01) * 20) / 20);
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
    for (int i = 0; i < n_points[si]; i++) {
      double x = PX(labels[si][i]), y = PY(mean_acc[si][i]);
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

typedef struct {
  const char *strategy;
  guint seed;
  Curve *curve;
  FILE *csv;
  gint64 last_wall_us; /* at the previous round's end */
  double last_cpu_s;
} RunKey;

/* CPU seconds of this process (all threads): with other jobs sharing the cores, the wall times
 * stretch but this stays close to an unshared machine's work. */
static double
process_cpu_s(void)
{
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
         ru.ru_stime.tv_usec / 1e6;
}

static void
print_round(const FthAlRound *r, gpointer data)
{
  RunKey *k = data;
  gint64 now = g_get_monotonic_time();
  double cpu = process_cpu_s();
  double round_s = (double)(now - k->last_wall_us) / 1e6, cpu_s = cpu - k->last_cpu_s;
  k->last_wall_us = now;
  k->last_cpu_s = cpu;
  printf("%-17s %4u %5u %7zu %7.4f %8.2f %8.2f %8.2f %8.2f\n", k->strategy, k->seed, r->round,
         r->n_labels, r->accuracy, r->fit_s, r->score_s, round_s, cpu_s);
  fflush(stdout);
  curve_add(k->curve, (double)r->n_labels, r->accuracy, r->fit_s, r->score_s);
  curve_add_times(k->curve, round_s, cpu_s);
  if (k->csv != NULL) {
    fprintf(k->csv, "%s,%u,%u,%zu,%.4f,%.3f,%.3f,%.3f,%.3f\n", k->strategy, k->seed, r->round,
            r->n_labels, r->accuracy, r->fit_s, r->score_s, round_s, cpu_s);
    fflush(k->csv);
  }
}

static gboolean
run_all(char **names, int first_seed, int seeds, int rounds, int start, int batch, int pool_limit,
        int min_steps, const char *recipe, FILE *csv, GPtrArray *curves, GError **error)
{
  const char *dir = g_getenv("FTH_FASHION_MNIST_DIR");
  if (dir == NULL)
    dir = "/usr/share/datasets/fashion-mnist";
  guint32 n_tr, n_te, n_trl, n_tel;
  gsize px, one;
  g_autofree guint8 *tr = read_idx(dir, "train-images-idx3-ubyte.gz", 3, &n_tr, &px);
  g_autofree guint8 *te = read_idx(dir, "t10k-images-idx3-ubyte.gz", 3, &n_te, &px);
  g_autofree guint8 *trl = read_idx(dir, "train-labels-idx1-ubyte.gz", 1, &n_trl, &one);
  g_autofree guint8 *tel = read_idx(dir, "t10k-labels-idx1-ubyte.gz", 1, &n_tel, &one);
  if (tr == NULL || te == NULL || trl == NULL || tel == NULL) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "%s: Fashion-MNIST not readable "
                "(apt-get install dataset-fashion-mnist or set FTH_FASHION_MNIST_DIR)", dir);
    return FALSE;
  }
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
  printf("# pool %zu, test %u, recipe %s, start %d, batch %d, rounds %d, min-steps %d\n", n_pool,
         n_te, recipe, start, batch, rounds, min_steps);
  /* fit_s: the fine-tune; score_s: predicting the pool and picking the batch; round_s: the
   * whole round with the test evaluation (wall); cpu_s: the same in CPU seconds. */
  printf("%-17s %4s %5s %7s %7s %8s %8s %8s %8s\n", "strategy", "seed", "round", "labels", "acc",
         "fit_s", "score_s", "round_s", "cpu_s");
  for (int si = 0; names[si] != NULL; si++) {
    FthAcquisition strat;
    if (!fth_acquisition_from_name(names[si], &strat, error))
      return FALSE;
    for (int seed = first_seed; seed < first_seed + seeds; seed++) {
      FthActiveTrainerOptions to;
      fth_active_trainer_options_init(&to);
      to.recipe = recipe;
      to.seed = (uint64_t)seed;
      to.min_steps = min_steps;
      g_autoptr(FthActiveTrainer) at = fth_active_trainer_new(&samples, test, n_te, 10, &to,
                                                              error);
      if (at == NULL)
        return FALSE;
      FthAlModel model = fth_active_trainer_model(at);
      RunKey key = {names[si], (guint)seed, find_curve(curves, names[si], seed, 0), csv,
                    g_get_monotonic_time(), process_cpu_s()};
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
      if (!fth_al_simulate(&model, at, labels, n_pool, &opt, res, error))
        return FALSE;
    }
  }
  return TRUE;
}

static double
mean_of(const GArray *a, guint from)
{
  double s = 0;
  for (guint i = from; i < a->len; i++)
    s += g_array_index(a, double, i);
  return a->len > from ? s / (a->len - from) : NAN;
}

/* Labels-to-target per strategy (mean over its seeds; all seeds must reach it), the ratio to
 * random's, mean times per round, and the plot of the mean curves over the rounds every seed
 * of a strategy has. */
static void
summarise(GPtrArray *curves, double target, const char *png)
{
  g_autoptr(GPtrArray) names = g_ptr_array_new();
  for (guint i = 0; i < curves->len; i++) {
    Curve *c = curves->pdata[i];
    gboolean seen = FALSE;
    for (guint j = 0; j < names->len; j++)
      seen |= strcmp(names->pdata[j], c->strategy) == 0;
    if (!seen)
      g_ptr_array_add(names, c->strategy);
  }
  int n_strat = (int)names->len;
  double random_labels = NAN;
  g_autofree double *reach_mean = g_new(double, (size_t)n_strat);
  g_autofree int *reach_n = g_new0(int, (size_t)n_strat), *seed_n = g_new0(int, (size_t)n_strat);
  g_autofree double *fit = g_new0(double, (size_t)n_strat), *score = g_new0(double, (size_t)n_strat);
  g_autofree double *max_labels = g_new0(double, (size_t)n_strat);
  g_autofree double *round_sum = g_new0(double, (size_t)n_strat), *cpu_sum = g_new0(double,
                                                                                  (size_t)n_strat);
  g_autofree int *timed = g_new0(int, (size_t)n_strat);
  for (int si = 0; si < n_strat; si++) {
    double sum = 0;
    for (guint i = 0; i < curves->len; i++) {
      Curve *c = curves->pdata[i];
      if (strcmp(c->strategy, names->pdata[si]) != 0)
        continue;
      seed_n[si]++;
      double r = labels_to_reach((double *)(void *)c->labels->data, (double *)(void *)c->acc->data,
                                 (int)c->acc->len, target);
      if (!isnan(r))
        sum += r, reach_n[si]++;
      fit[si] += mean_of(c->fit_s, 0);
      score[si] += mean_of(c->score_s, 0) * c->score_s->len / MAX(1, c->score_s->len - 1);
      max_labels[si] = fmax(max_labels[si], g_array_index(c->labels, double, c->labels->len - 1));
      /* Whole rounds: round r's time runs from the end of round r-1 (fit, evaluate, score). */
      for (guint k = 1; k < c->round_s->len; k++) {
        round_sum[si] += g_array_index(c->round_s, double, k);
        cpu_sum[si] += g_array_index(c->cpu_s, double, k);
        timed[si]++;
      }
    }
    reach_mean[si] = reach_n[si] == seed_n[si] ? sum / reach_n[si] : NAN;
    fit[si] /= seed_n[si];
    score[si] /= seed_n[si];
    if (strcmp(names->pdata[si], "random") == 0)
      random_labels = reach_mean[si];
  }
  printf("\n# labels to reach %.1f%% test accuracy (interpolated between rounds; mean over the "
         "seeds, given only when every seed reached it)\n", target * 100);
  printf("%-17s %6s %9s %9s %10s %10s %10s %10s %10s\n", "strategy", "seeds", "reached",
         "labels", "x random", "fit s/rnd", "score s/rnd", "wall s/rnd", "cpu s/rnd");
  for (int si = 0; si < n_strat; si++) {
    char lab[32] = "-", ratio[32] = "-";
    if (!isnan(reach_mean[si]))
      snprintf(lab, sizeof lab, "%.0f", reach_mean[si]);
    else
      snprintf(lab, sizeof lab, ">%.0f", max_labels[si]);
    if (!isnan(reach_mean[si]) && !isnan(random_labels))
      snprintf(ratio, sizeof ratio, "%.2f", reach_mean[si] / random_labels);
    printf("%-17s %6d %6d/%-2d %9s %10s %10.2f %10.2f %10.2f %10.2f\n",
           (char *)names->pdata[si], seed_n[si], reach_n[si], seed_n[si], lab, ratio, fit[si],
           score[si], timed[si] ? round_sum[si] / timed[si] : NAN,
           timed[si] ? cpu_sum[si] / timed[si] : NAN);
  }
  printf("\n# labels to reach %.1f%% per seed\n", target * 100);
  for (int si = 0; si < n_strat; si++) {
    printf("%-17s", (char *)names->pdata[si]);
    for (guint i = 0; i < curves->len; i++) {
      Curve *c = curves->pdata[i];
      if (strcmp(c->strategy, names->pdata[si]) != 0)
        continue;
      double r = labels_to_reach((double *)(void *)c->labels->data, (double *)(void *)c->acc->data,
                                 (int)c->acc->len, target);
      double last = g_array_index(c->labels, double, c->labels->len - 1);
      if (isnan(r))
        printf("  seed %d: >%.0f", c->seed, last);
      else
        printf("  seed %d: %.0f", c->seed, r);
    }
    printf("\n");
  }
  /* Accuracy at the largest label count every strategy reached (a common point when the runs
   * have different lengths), mean and range over the seeds. */
  double common = INFINITY;
  for (int si = 0; si < n_strat; si++)
    common = fmin(common, max_labels[si]);
  printf("\n# test accuracy at %.0f labels (mean over seeds, min-max)\n", common);
  for (int si = 0; si < n_strat; si++) {
    double sum = 0, lo = 1, hi = 0;
    int k = 0;
    for (guint i = 0; i < curves->len; i++) {
      Curve *c = curves->pdata[i];
      if (strcmp(c->strategy, names->pdata[si]) != 0)
        continue;
      for (guint p = 0; p < c->labels->len; p++)
        if (g_array_index(c->labels, double, p) == common) {
          double a = g_array_index(c->acc, double, p);
          sum += a, k++;
          lo = fmin(lo, a), hi = fmax(hi, a);
        }
    }
    if (k > 0)
      printf("%-17s %.4f  (%.4f-%.4f, %d seeds)\n", (char *)names->pdata[si], sum / k, lo, hi, k);
  }
  if (png == NULL)
    return;
  /* Mean curves over each strategy's seeds, as far as all its seeds went. */
  g_autofree int *np = g_new(int, (size_t)n_strat);
  g_autofree double **lab = g_new0(double *, (size_t)n_strat);
  g_autofree double **mean_acc = g_new0(double *, (size_t)n_strat);
  for (int si = 0; si < n_strat; si++) {
    np[si] = G_MAXINT;
    for (guint i = 0; i < curves->len; i++) {
      Curve *c = curves->pdata[i];
      if (strcmp(c->strategy, names->pdata[si]) == 0)
        np[si] = MIN(np[si], (int)c->acc->len);
    }
    lab[si] = g_new0(double, (size_t)np[si]);
    mean_acc[si] = g_new0(double, (size_t)np[si]);
    for (guint i = 0; i < curves->len; i++) {
      Curve *c = curves->pdata[i];
      if (strcmp(c->strategy, names->pdata[si]) != 0)
        continue;
      for (int p = 0; p < np[si]; p++) {
        mean_acc[si][p] += g_array_index(c->acc, double, p) / seed_n[si];
        lab[si][p] = g_array_index(c->labels, double, p);
      }
    }
  }
  draw_curves(png, (char **)names->pdata, n_strat, np, lab, mean_acc, target);
  for (int si = 0; si < n_strat; si++) {
    g_free(lab[si]);
    g_free(mean_acc[si]);
  }
}

int
main(int argc, char **argv)
{
  g_autofree char *strategies =
    g_strdup("random,least-confidence,margin,entropy,bald,coreset,hybrid");
  int seeds = 3, first_seed = 1, rounds = 20, start = 100, batch = 100, pool_limit = 0;
  int min_steps = 100;
  double target = 0.85;
  g_autofree char *recipe = g_strdup("fmnist-cnn");
  g_autofree char *png = NULL, *csv = NULL, *from_csv = NULL;
  GOptionEntry entries[] = {
    {"strategies", 0, 0, G_OPTION_ARG_STRING, &strategies, "comma-separated strategies", "LIST"},
    {"seeds", 0, 0, G_OPTION_ARG_INT, &seeds, "seeds per strategy (3)", "N"},
    {"first-seed", 0, 0, G_OPTION_ARG_INT, &first_seed, "first seed (1)", "N"},
    {"rounds", 0, 0, G_OPTION_ARG_INT, &rounds, "acquisition rounds (20)", "N"},
    {"start", 0, 0, G_OPTION_ARG_INT, &start, "random start labels (100)", "N"},
    {"batch", 0, 0, G_OPTION_ARG_INT, &batch, "labels per round (100)", "N"},
    {"target", 0, 0, G_OPTION_ARG_DOUBLE, &target, "accuracy target (0.85)", "A"},
    {"pool", 0, 0, G_OPTION_ARG_INT, &pool_limit, "use only the first N training images", "N"},
    {"recipe", 0, 0, G_OPTION_ARG_STRING, &recipe, "model recipe (fmnist-cnn)", "R"},
    {"min-steps", 0, 0, G_OPTION_ARG_INT, &min_steps, "optimizer steps per fine-tune (100)", "N"},
    {"png", 0, 0, G_OPTION_ARG_FILENAME, &png, "learning-curve plot", "FILE"},
    {"csv", 0, 0, G_OPTION_ARG_FILENAME, &csv, "per-round rows", "FILE"},
    {"from-csv", 0, 0, G_OPTION_ARG_STRING, &from_csv, "summarise these CSV files instead",
     "LIST"},
    {NULL},
  };
  g_autoptr(GOptionContext) ctx = g_option_context_new("- simulated active learning");
  g_option_context_add_main_entries(ctx, entries, NULL);
  g_autoptr(GError) error = NULL;
  if (!g_option_context_parse(ctx, &argc, &argv, &error)) {
    fprintf(stderr, "bench-active: %s\n", error->message);
    return 2;
  }
  g_autoptr(GPtrArray) curves = g_ptr_array_new_with_free_func(curve_free);
  if (from_csv != NULL) {
    g_auto(GStrv) files = g_strsplit(from_csv, ",", -1);
    for (int i = 0; files[i] != NULL; i++)
      if (!read_csv(files[i], i, curves, &error)) {
        fprintf(stderr, "bench-active: %s\n", error->message);
        return 1;
      }
  } else {
    FILE *csv_out = csv ? fopen(csv, "w") : NULL;
    if (csv != NULL && csv_out == NULL) {
      fprintf(stderr, "bench-active: cannot write %s\n", csv);
      return 1;
    }
    if (csv_out)
      fprintf(csv_out, "strategy,seed,round,labels,accuracy,fit_s,score_s,round_s,cpu_s\n");
    g_auto(GStrv) names = g_strsplit(strategies, ",", -1);
    gboolean ok = run_all(names, first_seed, seeds, rounds, start, batch, pool_limit, min_steps,
                          recipe, csv_out, curves, &error);
    if (csv_out)
      fclose(csv_out);
    if (!ok) {
      fprintf(stderr, "bench-active: %s\n", error->message);
      return 1;
    }
  }
  summarise(curves, target, png);
  return 0;
}
