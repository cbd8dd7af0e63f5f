/* Acquisition functions against scores worked out by hand (the constants below were computed
 * with Python's math module from the formulas in the comments, not with this code), k-center
 * greedy on points whose answer is known, BALD on hand-made Monte-Carlo samples, k-means and the
 * hybrid on separated clusters. */
#include <fathom/active.h>
#include <math.h>
#include <string.h>

/* Five rows of three class probabilities. */
static const float TABLE[5 * 3] = {
  0.7f, 0.2f, 0.1f,
  0.4f, 0.4f, 0.2f,
  1.0f, 0.0f, 0.0f,
  0.5f, 0.3f, 0.2f,
  1.0f / 3, 1.0f / 3, 1.0f / 3,
};

static void
test_least_confidence(void)
{
  /* 1 - max p */
  const double want[5] = {0.3, 0.6, 0.0, 0.5, 2.0 / 3};
  float s[5];
  fth_acq_least_confidence(TABLE, 5, 3, s);
  for (int i = 0; i < 5; i++)
    g_assert_cmpfloat_with_epsilon(s[i], want[i], 1e-6);
}

static void
test_margin(void)
{
  /* 1 - (first - second): 1-(.7-.2), 1-(.4-.4), 1-(1-0), 1-(.5-.3), 1-0 */
  const double want[5] = {0.5, 1.0, 0.0, 0.8, 1.0};
  float s[5];
  fth_acq_margin(TABLE, 5, 3, s);
  for (int i = 0; i < 5; i++)
    g_assert_cmpfloat_with_epsilon(s[i], want[i], 1e-6);
}

static void
test_entropy(void)
{
  /* -sum p ln p; row 2 is certain (0 ln 0 = 0), row 4 uniform (ln 3). */
  const double want[5] = {0.801818553, 1.054920168, 0.0, 1.029653014, 1.098612289};
  float s[5];
  fth_acq_entropy(TABLE, 5, 3, s);
  for (int i = 0; i < 5; i++)
    g_assert_cmpfloat_with_epsilon(s[i], want[i], 1e-6);
}

static void
expect_ranking(FthAcquisition strategy, const uint32_t *want, const double *want_scores)
{
  FthAcqOptions opt;
  fth_acq_options_init(&opt);
  opt.strategy = strategy;
  opt.batch = 5;
  FthAcqPool pool = {.n = 5, .n_classes = 3, .probs = TABLE};
  uint32_t sel[5];
  float sc[5];
  size_t n_sel = 0;
  g_autoptr(GError) error = NULL;
  g_assert_true(fth_acquire(&pool, &opt, sel, sc, &n_sel, &error));
  g_assert_no_error(error);
  g_assert_cmpuint(n_sel, ==, 5);
  for (int j = 0; j < 5; j++) {
    g_assert_cmpuint(sel[j], ==, want[j]);
    g_assert_cmpfloat_with_epsilon(sc[j], want_scores[j], 1e-6);
  }
}

static void
test_rankings(void)
{
  /* Most uncertain first; margin has a tie (rows 1 and 4 at 1.0): the lower index goes first. */
  const uint32_t lc[5] = {4, 1, 3, 0, 2};
  const double lc_s[5] = {2.0 / 3, 0.6, 0.5, 0.3, 0.0};
  expect_ranking(FTH_ACQ_LEAST_CONFIDENCE, lc, lc_s);
  const uint32_t mg[5] = {1, 4, 3, 0, 2};
  const double mg_s[5] = {1.0, 1.0, 0.8, 0.5, 0.0};
  expect_ranking(FTH_ACQ_MARGIN, mg, mg_s);
  const uint32_t en[5] = {4, 1, 3, 0, 2};
  const double en_s[5] = {1.098612289, 1.054920168, 1.029653014, 0.801818553, 0.0};
  expect_ranking(FTH_ACQ_ENTROPY, en, en_s);
}

static void
test_bald(void)
{
  /* Three items, two passes, two classes (pass-major):
   *  item 0: [1,0] then [0,1]  -> the passes disagree completely: H(mean) = ln 2, mean H = 0
   *  item 1: [.5,.5] twice     -> uncertain but consistent: ln 2 - ln 2 = 0
   *  item 2: [.8,.2], [.6,.4]  -> H([.7,.3]) - (H([.8,.2]) + H([.6,.4])) / 2 = 0.024157257 */
  const float mc[2 * 3 * 2] = {
    1.0f, 0.0f, 0.5f, 0.5f, 0.8f, 0.2f,
    0.0f, 1.0f, 0.5f, 0.5f, 0.6f, 0.4f,
  };
  float s[3], mean[6];
  fth_acq_bald(mc, 2, 3, 2, s, mean);
  g_assert_cmpfloat_with_epsilon(s[0], 0.693147181, 1e-6);
  g_assert_cmpfloat_with_epsilon(s[1], 0.0, 1e-6);
  g_assert_cmpfloat_with_epsilon(s[2], 0.024157257, 1e-6);
  g_assert_cmpfloat_with_epsilon(mean[4], 0.7, 1e-6);
  g_assert_cmpfloat_with_epsilon(mean[5], 0.3, 1e-6);

  /* One item, three passes over three classes: mean [.4,.35,.25], MI = 0.419294263. */
  const float mc3[3 * 3] = {0.9f, 0.05f, 0.05f, 0.1f, 0.8f, 0.1f, 0.2f, 0.2f, 0.6f};
  float s3;
  fth_acq_bald(mc3, 3, 1, 3, &s3, NULL);
  g_assert_cmpfloat_with_epsilon(s3, 0.419294263, 1e-6);

  /* Through fth_acquire: item 0 first; a pool without passes is refused. */
  FthAcqOptions opt;
  fth_acq_options_init(&opt);
  opt.strategy = FTH_ACQ_BALD;
  opt.batch = 2;
  FthAcqPool pool = {.n = 3, .n_classes = 2, .mc_probs = mc, .n_passes = 2};
  uint32_t sel[2];
  float sc[2];
  size_t n_sel;
  g_autoptr(GError) error = NULL;
  g_assert_true(fth_acquire(&pool, &opt, sel, sc, &n_sel, &error));
  g_assert_cmpuint(n_sel, ==, 2);
  g_assert_cmpuint(sel[0], ==, 0);
  g_assert_cmpuint(sel[1], ==, 2);
  pool.n_passes = 1;
  g_assert_false(fth_acquire(&pool, &opt, sel, sc, &n_sel, &error));
  g_assert_error(error, FTH_ACTIVE_ERROR, FTH_ACTIVE_ERROR_INVALID);
  g_assert_nonnull(strstr(error->message, "bald"));
}

/* Points on a line (coordinate 3 of 16) plus a common offset, which changes no distance. */
static float *
line_points(const double *xs, size_t n, int dim)
{
  float *p = g_new(float, n * (size_t)dim);
  for (size_t i = 0; i < n; i++)
    for (int j = 0; j < dim; j++)
      p[i * (size_t)dim + (size_t)j] = 0.5f + (j == 3 ? (float)xs[i] : 0.0f);
  return p;
}

static void
test_coreset_known_answer(void)
{
  const int dim = 16;
  /* Labeled at 0; pool 1, 2, 5, 9, 10. Greedy: 10 (distance 10), then 5 (5 from both 0 and 10),
   * then 2 (2 from 0; 1 and 9 are only 1 away from a center). */
  const double labeled_x[1] = {0};
  const double pool_x[5] = {1, 2, 5, 9, 10};
  g_autofree float *centers = line_points(labeled_x, 1, dim);
  g_autofree float *pool = line_points(pool_x, 5, dim);
  uint32_t sel[3];
  float dist[3];
  g_assert_cmpuint(fth_acq_coreset(pool, 5, dim, centers, 1, 3, sel, dist), ==, 3);
  g_assert_cmpuint(sel[0], ==, 4);
  g_assert_cmpuint(sel[1], ==, 2);
  g_assert_cmpuint(sel[2], ==, 1);
  g_assert_cmpfloat_with_epsilon(dist[0], 10.0, 1e-3);
  g_assert_cmpfloat_with_epsilon(dist[1], 5.0, 1e-3);
  g_assert_cmpfloat_with_epsilon(dist[2], 2.0, 1e-3);

  /* No labeled set: -1, 0, 1, 10 have mean 2.5, so 10 first (7.5 away), then -1 (11 from 10),
   * then 1 (2 from -1, 9 from 10) before 0 (1 from -1). */
  const double x2[4] = {-1, 0, 1, 10};
  g_autofree float *pool2 = line_points(x2, 4, dim);
  uint32_t sel2[4];
  float dist2[4];
  g_assert_cmpuint(fth_acq_coreset(pool2, 4, dim, NULL, 0, 10, sel2, dist2), ==, 4);
  const uint32_t want2[4] = {3, 0, 2, 1};
  const double want_d2[4] = {7.5, 11, 2, 1};
  for (int j = 0; j < 4; j++) {
    g_assert_cmpuint(sel2[j], ==, want2[j]);
    g_assert_cmpfloat_with_epsilon(dist2[j], want_d2[j], 1e-3);
  }
}

static void
test_coreset_many_centers(void)
{
  /* More labeled centers than one distance block (256): a grid of labeled points 0..599 on the
   * line; pool points at 600.5 .. and 1000: the farthest is 1000 (400 from 599). */
  const int dim = 8;
  g_autofree double *lx = g_new(double, 600);
  for (int i = 0; i < 600; i++)
    lx[i] = i;
  const double px[3] = {100.5, 1000, 650};
  g_autofree float *centers = line_points(lx, 600, dim);
  g_autofree float *pool = line_points(px, 3, dim);
  uint32_t sel[3];
  float dist[3];
  fth_acq_coreset(pool, 3, dim, centers, 600, 3, sel, dist);
  g_assert_cmpuint(sel[0], ==, 1);
  g_assert_cmpfloat_with_epsilon(dist[0], 401.0, 0.05);
  g_assert_cmpuint(sel[1], ==, 2);
  g_assert_cmpfloat_with_epsilon(dist[1], 51.0, 0.05);
  g_assert_cmpuint(sel[2], ==, 0);
  /* |a|^2 + |b|^2 - 2ab in float at norms near 1e6 leaves ~0.1 of squared-distance noise. */
  g_assert_cmpfloat_with_epsilon(dist[2], 0.5, 0.25);
}

static void
test_sq_distances(void)
{
  /* Against a direct double-precision loop on seeded random points. */
  const size_t n = 37, m = 11;
  const int dim = 19;
  g_autofree float *a = g_new(float, n * dim);
  g_autofree float *b = g_new(float, m * dim);
  g_autofree float *d = g_new(float, n * m);
  GRand *r = g_rand_new_with_seed(7);
  for (size_t i = 0; i < n * dim; i++)
    a[i] = (float)g_rand_double_range(r, -2, 2);
  for (size_t i = 0; i < m * dim; i++)
    b[i] = (float)g_rand_double_range(r, -2, 2);
  g_rand_free(r);
  fth_sq_distances(a, n, b, m, dim, d);
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j < m; j++) {
      double want = 0;
      for (int k = 0; k < dim; k++) {
        double t = (double)a[i * dim + k] - b[j * dim + k];
        want += t * t;
      }
      g_assert_cmpfloat_with_epsilon(d[i * m + j], want, 1e-4 * (1 + want));
    }
}

/* Two blobs in 4-D around (0,0,0,0) and (10,10,10,10); items alternate between them. */
static float *
two_blobs(size_t n)
{
  float *x = g_new(float, n * 4);
  GRand *r = g_rand_new_with_seed(3);
  for (size_t i = 0; i < n; i++)
    for (int j = 0; j < 4; j++)
      x[i * 4 + (size_t)j] = (float)((i % 2) * 10.0 + g_rand_double_range(r, -1, 1));
  g_rand_free(r);
  return x;
}

static void
test_kmeans(void)
{
  g_autofree float *x = two_blobs(40);
  uint32_t assign[40];
  float cent[8];
  int iters = fth_kmeans(x, 40, 4, 2, 50, 5, assign, cent);
  g_assert_cmpint(iters, >=, 1);
  for (size_t i = 2; i < 40; i++)
    g_assert_cmpuint(assign[i], ==, assign[i % 2]);
  g_assert_cmpuint(assign[0], !=, assign[1]);
  /* Centroids near the blob centres. */
  for (int c = 0; c < 2; c++) {
    double centre = assign[1] == (uint32_t)c ? 10.0 : 0.0;
    for (int j = 0; j < 4; j++)
      g_assert_cmpfloat_with_epsilon(cent[c * 4 + j], centre, 1.0);
  }
}

static void
test_hybrid_spreads(void)
{
  /* Eight items, two blobs (even items in one, odd in the other). Uncertainty: the even blob
   * holds the four most uncertain items. Entropy alone takes two even items; the hybrid takes
   * the most uncertain of each blob. */
  g_autofree float *emb = two_blobs(8);
  const float probs[8 * 2] = {
    0.50f, 0.50f, 0.90f, 0.10f, 0.55f, 0.45f, 0.95f, 0.05f,
    0.60f, 0.40f, 0.97f, 0.03f, 0.65f, 0.35f, 0.99f, 0.01f,
  };
  FthAcqPool pool = {.n = 8, .n_classes = 2, .probs = probs, .emb = emb, .dim = 4};
  FthAcqOptions opt;
  fth_acq_options_init(&opt);
  opt.batch = 2;
  uint32_t sel[2];
  float sc[2];
  size_t n_sel;
  g_autoptr(GError) error = NULL;
  g_assert_true(fth_acquire(&pool, &opt, sel, sc, &n_sel, &error));
  g_assert_cmpuint(sel[0], ==, 0);
  g_assert_cmpuint(sel[1], ==, 2);
  opt.strategy = FTH_ACQ_HYBRID;
  opt.hybrid_clusters = 2;
  opt.hybrid_candidates = 4; /* all eight are candidates */
  g_assert_true(fth_acquire(&pool, &opt, sel, sc, &n_sel, &error));
  g_assert_no_error(error);
  g_assert_cmpuint(n_sel, ==, 2);
  g_assert_cmpuint(sel[0], ==, 0);
  g_assert_cmpuint(sel[1], ==, 1); /* the odd blob's most uncertain: H(.9,.1) */
  g_assert_cmpfloat_with_epsilon(sc[1], 0.325082973, 1e-6); /* -(.9 ln .9 + .1 ln .1) */

  /* Without embeddings the hybrid is refused, naming the strategy. */
  pool.emb = NULL;
  g_assert_false(fth_acquire(&pool, &opt, sel, sc, &n_sel, &error));
  g_assert_error(error, FTH_ACTIVE_ERROR, FTH_ACTIVE_ERROR_INVALID);
  g_assert_nonnull(strstr(error->message, "hybrid"));
}

static void
test_random(void)
{
  float a[1000], b[1000], c[1000];
  fth_acq_random(1000, 42, a);
  fth_acq_random(1000, 42, b);
  fth_acq_random(1000, 43, c);
  g_assert_cmpmem(a, sizeof a, b, sizeof b);
  int differ = 0;
  double mean = 0;
  for (int i = 0; i < 1000; i++) {
    g_assert_cmpfloat(a[i], >=, 0.0f);
    g_assert_cmpfloat(a[i], <, 1.0f);
    differ += a[i] != c[i];
    mean += a[i] / 1000.0;
  }
  g_assert_cmpint(differ, >, 990);
  g_assert_cmpfloat_with_epsilon(mean, 0.5, 0.05);

  /* A batch of distinct items. */
  FthAcqOptions opt;
  fth_acq_options_init(&opt);
  opt.strategy = FTH_ACQ_RANDOM;
  opt.batch = 300;
  FthAcqPool pool = {.n = 1000};
  uint32_t sel[300];
  float sc[300];
  size_t n_sel;
  g_assert_true(fth_acquire(&pool, &opt, sel, sc, &n_sel, NULL));
  g_assert_cmpuint(n_sel, ==, 300);
  g_autofree guint8 *seen = g_new0(guint8, 1000);
  for (int j = 0; j < 300; j++) {
    g_assert_false(seen[sel[j]]);
    seen[sel[j]] = 1;
    if (j > 0)
      g_assert_cmpfloat(sc[j], <=, sc[j - 1]);
  }
}

static void
test_names_and_errors(void)
{
  for (int i = 0; i < FTH_ACQ_N_STRATEGIES; i++) {
    FthAcquisition s;
    g_assert_true(fth_acquisition_from_name(fth_acquisition_name((FthAcquisition)i), &s, NULL));
    g_assert_cmpint(s, ==, i);
  }
  g_autoptr(GError) error = NULL;
  FthAcquisition s;
  g_assert_false(fth_acquisition_from_name("confident", &s, &error));
  g_assert_error(error, FTH_ACTIVE_ERROR, FTH_ACTIVE_ERROR_INVALID);
  g_assert_nonnull(strstr(error->message, "confident"));
  g_clear_error(&error);

  FthAcqOptions opt;
  fth_acq_options_init(&opt);
  opt.batch = 0;
  FthAcqPool pool = {.n = 5, .n_classes = 3, .probs = TABLE};
  uint32_t sel[1];
  float sc[1];
  size_t n_sel;
  g_assert_false(fth_acquire(&pool, &opt, sel, sc, &n_sel, &error));
  g_assert_error(error, FTH_ACTIVE_ERROR, FTH_ACTIVE_ERROR_INVALID);
  g_clear_error(&error);
  opt.batch = 1;
  pool.probs = NULL;
  g_assert_false(fth_acquire(&pool, &opt, sel, sc, &n_sel, &error));
  g_assert_error(error, FTH_ACTIVE_ERROR, FTH_ACTIVE_ERROR_INVALID);
  g_assert_nonnull(strstr(error->message, "entropy"));
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/active/acq/least-confidence", test_least_confidence);
  g_test_add_func("/active/acq/margin", test_margin);
  g_test_add_func("/active/acq/entropy", test_entropy);
  g_test_add_func("/active/acq/rankings", test_rankings);
  g_test_add_func("/active/acq/bald", test_bald);
  g_test_add_func("/active/acq/coreset-known-answer", test_coreset_known_answer);
  g_test_add_func("/active/acq/coreset-many-centers", test_coreset_many_centers);
  g_test_add_func("/active/acq/sq-distances", test_sq_distances);
  g_test_add_func("/active/acq/kmeans", test_kmeans);
  g_test_add_func("/active/acq/hybrid-spreads", test_hybrid_spreads);
  g_test_add_func("/active/acq/random", test_random);
  g_test_add_func("/active/acq/names-and-errors", test_names_and_errors);
  return g_test_run();
}
