/* The simulated loop with a fake model (nearest class centroid on 2-D points, softmax of minus
 * the squared distances): deterministic with a seed, the oracle's labels revealed batch by batch,
 * pseudo-labels only on items no oracle label covers, every strategy runs. */
#include <fathom/active.h>
#include <math.h>
#include <string.h>

#define N_POOL 400
#define N_TEST 200
#define N_CLASSES 4

typedef struct {
  float pool[N_POOL][2];
  int32_t oracle[N_POOL];
  float test[N_TEST][2];
  int32_t test_y[N_TEST];
  double cent[N_CLASSES][2];
  guint64 checksum;    /* of every fit's indices and labels, in order */
  gboolean bad_label;  /* a weight-1 sample whose label is not the oracle's */
  gboolean bad_pseudo; /* a down-weighted sample that the oracle had revealed */
  guint8 revealed[N_POOL];
  size_t max_pseudo;
} Fake;

static void
fake_init(Fake *f)
{
  memset(f, 0, sizeof *f);
  GRand *r = g_rand_new_with_seed(11);
  /* Four overlapping blobs at the corners of a square of side 3, unit spread. */
  for (int i = 0; i < N_POOL + N_TEST; i++) {
    int y = (int)g_rand_int_range(r, 0, N_CLASSES);
    float x0 = (float)(3.0 * (y & 1) + g_rand_double_range(r, -1.8, 1.8));
    float x1 = (float)(3.0 * (y >> 1) + g_rand_double_range(r, -1.8, 1.8));
    if (i < N_POOL) {
      f->pool[i][0] = x0, f->pool[i][1] = x1, f->oracle[i] = y;
    } else {
      f->test[i - N_POOL][0] = x0, f->test[i - N_POOL][1] = x1, f->test_y[i - N_POOL] = y;
    }
  }
  g_rand_free(r);
}

static gboolean
fake_fit(gpointer self, const uint32_t *idx, const int32_t *labels, const float *weights,
         size_t n, guint round, GError **error)
{
  Fake *f = self;
  double sum[N_CLASSES][2] = {{0}}, w_sum[N_CLASSES] = {0};
  for (size_t i = 0; i < n; i++) {
    double w = weights ? weights[i] : 1.0;
    if (w == 1.0) {
      f->revealed[idx[i]] = 1;
      if (labels[i] != f->oracle[idx[i]])
        f->bad_label = TRUE;
    } else if (f->revealed[idx[i]]) {
      f->bad_pseudo = TRUE;
    }
    sum[labels[i]][0] += w * f->pool[idx[i]][0];
    sum[labels[i]][1] += w * f->pool[idx[i]][1];
    w_sum[labels[i]] += w;
    f->checksum = f->checksum * 1000003u + idx[i] * 31u + (guint64)labels[i];
  }
  size_t n_pseudo = 0;
  for (size_t i = 0; weights != NULL && i < n; i++)
    n_pseudo += weights[i] != 1.0f;
  f->max_pseudo = MAX(f->max_pseudo, n_pseudo);
  for (int k = 0; k < N_CLASSES; k++)
    for (int j = 0; j < 2; j++)
      f->cent[k][j] = w_sum[k] > 0 ? sum[k][j] / w_sum[k] : 1.5;
  return TRUE;
}

static void
softmax_row(const Fake *f, const float *x, double jitter, float *p)
{
  double z[N_CLASSES], m = -INFINITY, s = 0;
  for (int k = 0; k < N_CLASSES; k++) {
    double d0 = x[0] - f->cent[k][0] - jitter * (k + 1), d1 = x[1] - f->cent[k][1] + jitter;
    z[k] = -(d0 * d0 + d1 * d1);
    m = fmax(m, z[k]);
  }
  for (int k = 0; k < N_CLASSES; k++)
    s += exp(z[k] - m);
  for (int k = 0; k < N_CLASSES; k++)
    p[k] = (float)(exp(z[k] - m) / s);
}

static gboolean
fake_predict(gpointer self, const uint32_t *idx, size_t n, float *probs, float *emb,
             int n_passes, float *mc_probs, GError **error)
{
  Fake *f = self;
  for (size_t i = 0; i < n; i++) {
    softmax_row(f, f->pool[idx[i]], 0.0, probs + i * N_CLASSES);
    if (emb != NULL)
      memcpy(emb + i * 2, f->pool[idx[i]], sizeof(float) * 2);
    /* "Dropout": each pass moves the centroids a fixed small amount. */
    for (int t = 0; t < n_passes; t++)
      softmax_row(f, f->pool[idx[i]], 0.2 * (t - n_passes / 2.0),
                  mc_probs + ((size_t)t * n + i) * N_CLASSES);
  }
  return TRUE;
}

static gboolean
fake_evaluate(gpointer self, double *accuracy, GError **error)
{
  Fake *f = self;
  int correct = 0;
  for (int i = 0; i < N_TEST; i++) {
    float p[N_CLASSES];
    softmax_row(f, f->test[i], 0.0, p);
    int top = 0;
    for (int k = 1; k < N_CLASSES; k++)
      if (p[k] > p[top])
        top = k;
    correct += top == f->test_y[i];
  }
  *accuracy = (double)correct / N_TEST;
  return TRUE;
}

static const FthAlModel FAKE_MODEL = {N_CLASSES, 2, fake_fit, fake_predict, fake_evaluate};

static GArray *
run(Fake *f, FthAcquisition strategy, uint64_t seed, double pseudo_threshold)
{
  fake_init(f);
  FthAlOptions opt;
  fth_al_options_init(&opt);
  opt.acq.strategy = strategy;
  opt.acq.seed = seed;
  opt.acq.batch = 20;
  opt.start = 10;
  opt.rounds = 5;
  opt.mc_passes = 4;
  opt.pseudo_threshold = pseudo_threshold;
  opt.pseudo_cap = 15;
  GArray *rounds = g_array_new(FALSE, FALSE, sizeof(FthAlRound));
  g_autoptr(GError) error = NULL;
  g_assert_true(fth_al_simulate(&FAKE_MODEL, f, f->oracle, N_POOL, &opt, rounds, &error));
  g_assert_no_error(error);
  g_assert_cmpuint(rounds->len, ==, 6);
  for (guint r = 0; r < rounds->len; r++) {
    FthAlRound *rec = &g_array_index(rounds, FthAlRound, r);
    g_assert_cmpuint(rec->round, ==, r);
    g_assert_cmpuint(rec->n_labels, ==, 10 + 20 * r);
    g_assert_cmpfloat(rec->accuracy, >=, 0.0);
    g_assert_cmpfloat(rec->accuracy, <=, 1.0);
  }
  g_assert_false(f->bad_label);
  g_assert_false(f->bad_pseudo);
  return rounds;
}

static void
test_deterministic(void)
{
  Fake *a = g_new(Fake, 1), *b = g_new(Fake, 1);
  for (int s = 0; s < FTH_ACQ_N_STRATEGIES; s++) {
    g_autoptr(GArray) ra = run(a, (FthAcquisition)s, 7, 0);
    g_autoptr(GArray) rb = run(b, (FthAcquisition)s, 7, 0);
    g_assert_cmpuint(a->checksum, ==, b->checksum);
    for (guint r = 0; r < ra->len; r++)
      g_assert_cmpfloat(g_array_index(ra, FthAlRound, r).accuracy, ==,
                        g_array_index(rb, FthAlRound, r).accuracy);
    /* Another seed: other start labels, so other fits. */
    g_autoptr(GArray) rc = run(b, (FthAcquisition)s, 8, 0);
    g_assert_cmpuint(a->checksum, !=, b->checksum);
  }
  g_free(a);
  g_free(b);
}

static void
test_learns(void)
{
  /* With 110 labels the centroids are close to the blob centres: well above chance (0.25). */
  Fake *f = g_new(Fake, 1);
  g_autoptr(GArray) r = run(f, FTH_ACQ_MARGIN, 1, 0);
  g_assert_cmpfloat(g_array_index(r, FthAlRound, r->len - 1).accuracy, >, 0.6);
  g_free(f);
}

static void
test_pseudo_labels(void)
{
  Fake *f = g_new(Fake, 1);
  g_autoptr(GArray) r = run(f, FTH_ACQ_ENTROPY, 3, 0.9);
  /* Round 0 has none; later rounds some, at most 15 per class, none on revealed items (checked
   * by the fake in every fit). */
  g_assert_cmpuint(g_array_index(r, FthAlRound, 0).n_pseudo, ==, 0);
  g_assert_cmpuint(g_array_index(r, FthAlRound, 1).n_pseudo, >, 0);
  for (guint i = 0; i < r->len; i++)
    g_assert_cmpuint(g_array_index(r, FthAlRound, i).n_pseudo, <=, 15 * N_CLASSES);
  g_assert_cmpuint(f->max_pseudo, >, 0);
  g_free(f);
}

static void
test_bad_options(void)
{
  Fake *f = g_new(Fake, 1);
  fake_init(f);
  FthAlOptions opt;
  fth_al_options_init(&opt);
  opt.start = N_POOL + 1;
  g_autoptr(GArray) rounds = g_array_new(FALSE, FALSE, sizeof(FthAlRound));
  g_autoptr(GError) error = NULL;
  g_assert_false(fth_al_simulate(&FAKE_MODEL, f, f->oracle, N_POOL, &opt, rounds, &error));
  g_assert_error(error, FTH_ACTIVE_ERROR, FTH_ACTIVE_ERROR_INVALID);
  g_clear_error(&error);
  FthAlModel no_emb = FAKE_MODEL;
  no_emb.dim = 0;
  opt.start = 10;
  opt.acq.strategy = FTH_ACQ_CORESET;
  g_assert_false(fth_al_simulate(&no_emb, f, f->oracle, N_POOL, &opt, rounds, &error));
  g_assert_nonnull(strstr(error->message, "coreset"));
  g_free(f);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/active/loop/deterministic", test_deterministic);
  g_test_add_func("/active/loop/learns", test_learns);
  g_test_add_func("/active/loop/pseudo-labels", test_pseudo_labels);
  g_test_add_func("/active/loop/bad-options", test_bad_options);
  return g_test_run();
}
