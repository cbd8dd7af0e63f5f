/* Per-sample loss weights in the trainer (FthSamples.weights, how pseudo-labels train): a batch's
 * gradient is the weighted mean of the samples' own gradients, and samples of weight 0 leave
 * training as it is without them. Fresh random images, labels and weights every run. */
#include <fathom/train.h>

#include <glib.h>
#include <math.h>
#include <string.h>

enum { N = 24, HUMAN = 12, SIDE = 4, N_CLASSES = 3 };

/* No dropout or batch norm: a sample's gradient depends on it alone. One batch holds all N. */
static const char *mlp_recipe =
  "{\"name\": \"mlp\", \"input\": {\"shape\": [1, 4, 4]},"
  " \"layers\": [{\"type\": \"flatten\"}, {\"type\": \"linear\", \"out_features\": 12},"
  "  {\"type\": \"tanh\"}, {\"type\": \"linear\", \"out_features\": \"classes\"}],"
  " \"train\": {\"optimizer\": \"sgd\", \"lr\": 0.2, \"momentum\": 0.9, \"batch\": 32,"
  "  \"epochs\": 1, \"schedule\": \"constant\"}}";

static uint8_t pixels[N * SIDE * SIDE];
static int32_t labels[N];
static FthRecipe *recipe;

typedef struct {
  float *grad; /* every parameter's gradient of the first step, concatenated */
  size_t n;
  gboolean done;
} Capture;

static gboolean
capture(const FthParam *params, size_t n_params, gboolean on_device, gpointer data, GError **error)
{
  (void)on_device;
  (void)error;
  Capture *c = data;
  if (c->done)
    return TRUE;
  size_t n = 0;
  for (size_t i = 0; i < n_params; i++)
    n += params[i].n;
  c->grad = g_new(float, n);
  for (size_t i = 0, off = 0; i < n_params; off += params[i].n, i++)
    memcpy(c->grad + off, params[i].grad, params[i].n * sizeof(float));
  c->n = n;
  c->done = TRUE;
  return TRUE;
}

/* A fresh trainer (same seed: same initial weights) run for `epochs` full-batch steps on
 * idx[0..n) with weights w (NULL: all 1); the first step's gradient into *cap when not NULL. */
static FthTrainer *
train(const uint32_t *idx, size_t n, const float *w, int epochs, Capture *cap)
{
  GError *error = NULL;
  FthTrainer *t = fth_trainer_new(recipe, N_CLASSES, NULL, &error);
  g_assert_no_error(error);
  if (cap != NULL)
    fth_trainer_set_grad_hook(t, capture, cap);
  FthSamples s = {.pixels = pixels, .labels = labels, .n = N, .channels = 1, .height = SIDE,
                  .width = SIDE, .weights = w};
  for (int e = 0; e < epochs; e++) {
    gboolean interrupted;
    g_assert_true(fth_trainer_run_epoch(t, &s, idx, n, e, 0, 0, NULL, NULL, NULL, NULL,
                                        &interrupted, &error));
    g_assert_no_error(error);
  }
  return t;
}

static void
fresh_data(void)
{
  for (size_t i = 0; i < sizeof pixels; i++)
    pixels[i] = (uint8_t)g_test_rand_int_range(0, 256);
  for (int i = 0; i < N; i++)
    labels[i] = g_test_rand_int_range(0, N_CLASSES);
}

/* The batch gradient with weights w_i equals sum w_i g_i / sum w_i of the one-sample gradients
 * g_i, with a weight 0, fractional weights and human labels at 1. */
static void
test_weighted_gradient(void)
{
  fresh_data();
  uint32_t all[N];
  float w[N];
  for (int i = 0; i < N; i++) {
    all[i] = (uint32_t)i;
    w[i] = i < HUMAN ? 1.0f : (float)g_test_rand_double_range(0.05, 1.0);
  }
  w[HUMAN + 1] = 0.0f;
  Capture batch = {0};
  g_autoptr(FthTrainer) tb = train(all, N, w, 1, &batch);
  g_assert_true(batch.done);
  g_autofree double *want = g_new0(double, batch.n);
  double w_sum = 0;
  for (int i = 0; i < N; i++) {
    Capture one = {0};
    g_autoptr(FthTrainer) t1 = train(&all[i], 1, NULL, 1, &one);
    g_assert_cmpuint(one.n, ==, batch.n);
    for (size_t k = 0; k < one.n; k++)
      want[k] += (double)w[i] * one.grad[k];
    w_sum += w[i];
    g_free(one.grad);
  }
  double max_err = 0, max_g = 0;
  for (size_t k = 0; k < batch.n; k++) {
    double e = fabs(batch.grad[k] - want[k] / w_sum);
    max_err = fmax(max_err, e / (1e-6 + fabs(want[k] / w_sum)));
    max_g = fmax(max_g, fabs(want[k] / w_sum));
    g_assert_cmpfloat(e, <, 1e-6 + 1e-4 * fabs(want[k] / w_sum));
  }
  g_test_message("max relative error %.3g, max |gradient| %.3g", max_err, max_g);
  g_assert_cmpfloat(max_g, >, 1e-3);
  g_free(batch.grad);
}

static void
params_of(FthTrainer *t, GArray *out)
{
  FthGraph *g = fth_trainer_model(t)->graph;
  for (int i = 0; i < fth_graph_n_params(g); i++) {
    FthTensor v;
    g_assert_cmpint(fth_graph_tensor(g, fth_graph_param(g, i), &v), ==, FTH_STATUS_OK);
    g_array_append_vals(out, v.data, (guint)fth_tensor_numel(&v));
  }
}

/* Pseudo-labels of weight 0 in every batch: the same weights after several steps as training on
 * the human labels alone; at weight 0.5 they move the weights. */
static void
test_zero_weight_is_absent(void)
{
  fresh_data();
  uint32_t all[N];
  float w0[N], wh[N];
  for (int i = 0; i < N; i++) {
    all[i] = (uint32_t)i;
    w0[i] = i < HUMAN ? 1.0f : 0.0f;
    wh[i] = i < HUMAN ? 1.0f : 0.5f;
  }
  enum { STEPS = 6 };
  g_autoptr(FthTrainer) init = train(all, 0, NULL, 0, NULL);
  g_autoptr(FthTrainer) humans = train(all, HUMAN, NULL, STEPS, NULL);
  g_autoptr(FthTrainer) zero = train(all, N, w0, STEPS, NULL);
  g_autoptr(FthTrainer) half = train(all, N, wh, STEPS, NULL);
  g_autoptr(GArray) p0 = g_array_new(FALSE, FALSE, sizeof(float));
  g_autoptr(GArray) ph = g_array_new(FALSE, FALSE, sizeof(float));
  g_autoptr(GArray) pz = g_array_new(FALSE, FALSE, sizeof(float));
  g_autoptr(GArray) p5 = g_array_new(FALSE, FALSE, sizeof(float));
  params_of(init, p0);
  params_of(humans, ph);
  params_of(zero, pz);
  params_of(half, p5);
  double diff = 0, moved = 0, half_diff = 0;
  for (guint k = 0; k < ph->len; k++) {
    float h = g_array_index(ph, float, k);
    diff = fmax(diff, fabs(g_array_index(pz, float, k) - h));
    moved = fmax(moved, fabs(h - g_array_index(p0, float, k)));
    half_diff = fmax(half_diff, fabs(g_array_index(p5, float, k) - h));
  }
  g_test_message("weight 0 vs humans only: %.3g apart; moved %.3g; weight 0.5: %.3g apart", diff,
                 moved, half_diff);
  g_assert_cmpfloat(diff, <=, 1e-6);
  g_assert_cmpfloat(moved, >, 1e-2);
  g_assert_cmpfloat(half_diff, >, 1e-3);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  recipe = fth_recipe_parse(mlp_recipe, -1, "mlp.json", NULL, NULL);
  g_assert_nonnull(recipe);
  g_test_add_func("/train/sample-weights/weighted-gradient", test_weighted_gradient);
  g_test_add_func("/train/sample-weights/zero-weight-is-absent", test_zero_weight_is_absent);
  int rc = g_test_run();
  fth_recipe_free(recipe);
  return rc;
}
