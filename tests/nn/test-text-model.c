/* Text recipes: parse and build errors of the token input and the text layers, and the text
 * layers' outputs against a float64 reference computed from the model's own parameters (masked
 * mean, max and [CLS] pooling, TextCNN, a post-norm and a pre-norm BERT layer with padding
 * masked out), on fresh random ids and lengths. */
#include <fathom/recipe.h>

#include <math.h>
#include <string.h>

#define IN "\"input\": {\"tokens\": 12, \"vocab\": 50}, "

static void
expect_error(const char *json, const char *message)
{
  GError *error = NULL;
  FthRecipe *r = fth_recipe_parse(json, -1, "recipe.json", NULL, &error);
  if (r != NULL) {
    FthModel *m = fth_model_build(r, 3, 1, FTH_MODEL_TRAINING, &error);
    g_assert_null(m);
    fth_recipe_free(r);
  }
  g_assert_nonnull(error);
  if (strcmp(error->message, message) != 0)
    g_error("got '%s', wanted '%s'", error->message, message);
  g_error_free(error);
}

static void
test_errors(void)
{
  expect_error("{" IN "\"layers\": [{\"type\": \"embedding\", \"dim\": 8}, {\"type\": \"text_cnn\","
               " \"channels\": 4}]}", "recipe.json: layer 2 'text_cnn': missing 'kernels'");
  expect_error("{" IN "\"layers\": [{\"type\": \"text_cnn\", \"kernels\": [], \"channels\": 4}]}",
               "recipe.json: layer 1 'text_cnn': 'kernels' must be an array of 1 to 8 widths");
  expect_error("{" IN "\"layers\": [{\"type\": \"pool\", \"mode\": \"median\"}]}",
               "recipe.json: layer 1 'pool': 'mode' must be \"mean\", \"max\" or \"cls\"");
  expect_error("{" IN "\"layers\": [{\"type\": \"transformer_encoder\", \"ffn\": 8}]}",
               "recipe.json: layer 1 'transformer_encoder': missing 'heads'");
  expect_error("{" IN "\"layers\": [{\"type\": \"transformer_encoder\", \"heads\": 2, \"ffn\": 8,"
               " \"norm\": \"mid\"}]}",
               "recipe.json: layer 1 'transformer_encoder': 'norm' must be \"post\" or \"pre\"");
  expect_error("{" IN "\"layers\": [{\"type\": \"embedding\"}]}",
               "recipe.json: layer 1 'embedding': missing 'dim'");
  expect_error("{\"input\": {\"tokens\": 12, \"vocab\": 50, \"shape\": [3]}, \"layers\": []}",
               "recipe.json: input: 'tokens' and 'shape' exclude each other");
  expect_error("{\"input\": {\"tokens\": 12}, \"layers\": []}", "recipe.json: input: missing 'vocab'");
  expect_error("{\"input\": {\"tokens\": 12, \"vocab\": 50, \"task\": \"ner\"}, \"layers\": []}",
               "recipe.json: input: 'task' must be \"classification\" or \"tagging\"");
  /* Build errors: the layers must fit together. */
  expect_error("{" IN "\"layers\": [{\"type\": \"pool\"}, {\"type\": \"linear\", \"out_features\":"
               " \"classes\"}]}", "recipe.json: layer 1 'pool': needs a [batch, tokens, features] "
               "input (an 'embedding' layer first)");
  expect_error("{\"input\": {\"shape\": [4]}, \"layers\": [{\"type\": \"pool\"}]}",
               "recipe.json: layer 1 'pool': text layers need a token input (\"input\": "
               "{\"tokens\": T, \"vocab\": V})");
  expect_error("{" IN "\"layers\": [{\"type\": \"embedding\", \"dim\": 10}, {\"type\": "
               "\"transformer_encoder\", \"heads\": 3, \"ffn\": 8}]}",
               "recipe.json: layer 2 'transformer_encoder': 'heads' must divide the features");
  expect_error("{" IN "\"layers\": [{\"type\": \"embedding\", \"dim\": 8}, {\"type\": \"embedding\","
               " \"dim\": 8}]}", "recipe.json: layer 2 'embedding': an embedding takes the token "
               "ids: it must be the first layer");
  expect_error("{" IN "\"layers\": [{\"type\": \"embedding\", \"dim\": 8}, {\"type\": \"text_cnn\","
               " \"kernels\": [13], \"channels\": 4}]}",
               "recipe.json: layer 2 'text_cnn': a kernel is wider than the token count");
  expect_error("{\"input\": {\"tokens\": 12, \"vocab\": 50, \"task\": \"tagging\"}, \"layers\": ["
               "{\"type\": \"embedding\", \"dim\": 8}, {\"type\": \"pool\"}, {\"type\": \"linear\","
               " \"out_features\": \"classes\"}]}",
               "recipe.json: layer 3 'linear': a tagger over 3 classes needs [batch, tokens, 3] "
               "output (end with a linear layer of out_features \"classes\" after the sequence "
               "layers, without pooling)");
}

/* ---- float64 reference ------------------------------------------------------------------------ */

enum { N = 5, T = 12, V = 50, D = 8 };

static const float *
param(FthModel *m, const char *name, int64_t numel)
{
  FthNode *p = fth_graph_find_param(m->graph, name);
  if (p == NULL)
    g_error("no parameter '%s'", name);
  FthTensor t;
  g_assert_cmpint(fth_graph_tensor(m->graph, p, &t), ==, FTH_STATUS_OK);
  g_assert_cmpint(fth_tensor_numel(&t), ==, numel);
  return t.data;
}

/* y[t, out] = x[t, in] W^T + b */
static void
ref_linear(const double *x, int rows, int in, const float *w, const float *b, int out, double *y)
{
  for (int r = 0; r < rows; r++)
    for (int o = 0; o < out; o++) {
      double s = b ? b[o] : 0.0;
      for (int i = 0; i < in; i++)
        s += x[r * in + i] * w[o * in + i];
      y[r * out + o] = s;
    }
}

static void
ref_layer_norm(double *x, int rows, int d, const float *g, const float *b, double eps)
{
  for (int r = 0; r < rows; r++) {
    double mean = 0, var = 0;
    for (int i = 0; i < d; i++)
      mean += x[r * d + i] / d;
    for (int i = 0; i < d; i++)
      var += (x[r * d + i] - mean) * (x[r * d + i] - mean) / d;
    for (int i = 0; i < d; i++)
      x[r * d + i] = (x[r * d + i] - mean) / sqrt(var + eps) * g[i] + b[i];
  }
}

static void
ref_linear_named(FthModel *m, const char *p, const char *what, const double *x, int in, int out,
                 double *y)
{
  g_autofree char *wn = g_strdup_printf("%s.%s.weight", p, what);
  g_autofree char *bn = g_strdup_printf("%s.%s.bias", p, what);
  ref_linear(x, T, in, param(m, wn, (int64_t)in * out), param(m, bn, out), out, y);
}

static void
ref_norm_named(FthModel *m, const char *p, const char *what, double *x)
{
  g_autofree char *gn = g_strdup_printf("%s.%s.weight", p, what);
  g_autofree char *bn = g_strdup_printf("%s.%s.bias", p, what);
  ref_layer_norm(x, T, D, param(m, gn, D), param(m, bn, D), 1e-12);
}

/* One BERT layer on x [T, D] in place, keys masked by mask[T]; 2 heads, ffn 16. */
static void
ref_bert_layer(FthModel *m, const char *p, gboolean pre, const int *mask, double *x)
{
  enum { H = 2, F = 16, DH = D / H };
  double h[T * D], q[T * D], k[T * D], v[T * D], a[T * D], o[T * D], f[T * F], z[T * D];
  memcpy(h, x, sizeof h);
  if (pre)
    ref_norm_named(m, p, "attention.output.LayerNorm", h);
  ref_linear_named(m, p, "attention.self.query", h, D, D, q);
  ref_linear_named(m, p, "attention.self.key", h, D, D, k);
  ref_linear_named(m, p, "attention.self.value", h, D, D, v);
  for (int hd = 0; hd < H; hd++)
    for (int i = 0; i < T; i++) {
      double s[T], mx = -INFINITY, sum = 0;
      for (int j = 0; j < T; j++) {
        s[j] = -INFINITY;
        if (!mask[j])
          continue;
        s[j] = 0;
        for (int d = 0; d < DH; d++)
          s[j] += q[i * D + hd * DH + d] * k[j * D + hd * DH + d] / sqrt((double)DH);
        mx = fmax(mx, s[j]);
      }
      for (int j = 0; j < T; j++)
        sum += mask[j] ? exp(s[j] - mx) : 0;
      for (int d = 0; d < DH; d++) {
        double acc = 0;
        for (int j = 0; j < T; j++)
          acc += mask[j] ? exp(s[j] - mx) / sum * v[j * D + hd * DH + d] : 0;
        a[i * D + hd * DH + d] = acc;
      }
    }
  ref_linear_named(m, p, "attention.output.dense", a, D, D, o);
  for (int i = 0; i < T * D; i++)
    x[i] += o[i];
  if (!pre)
    ref_norm_named(m, p, "attention.output.LayerNorm", x);
  memcpy(h, x, sizeof h);
  if (pre)
    ref_norm_named(m, p, "output.LayerNorm", h);
  ref_linear_named(m, p, "intermediate.dense", h, D, F, f);
  for (int i = 0; i < T * F; i++)
    f[i] = 0.5 * f[i] * (1 + erf(f[i] / sqrt(2.0)));
  ref_linear_named(m, p, "output.dense", f, F, D, z);
  for (int i = 0; i < T * D; i++)
    x[i] += z[i];
  if (!pre)
    ref_norm_named(m, p, "output.LayerNorm", x);
}

/* The model's embedding output (the last linear layer's input) for random ids, against ref(). */
typedef void (*RefFunc)(FthModel *m, const int32_t *ids, int n_real, double *out, int *dim);

static void
check_against_reference(const char *layers, gboolean layer_norm, RefFunc ref)
{
  g_autofree char *json = g_strdup_printf(
    "{\"input\": {\"tokens\": %d, \"vocab\": %d}, \"layers\": [{\"type\": \"embedding\", "
    "\"dim\": %d, \"name\": \"emb\", \"layer_norm\": %s}, %s, {\"type\": \"linear\", "
    "\"out_features\": \"classes\"}]}", T, V, D, layer_norm ? "true" : "false", layers);
  GError *error = NULL;
  g_autoptr(FthRecipe) r = fth_recipe_parse(json, -1, "ref.json", NULL, &error);
  g_assert_no_error(error);
  g_autoptr(FthModel) m = fth_model_build(r, 3, g_test_rand_int(), FTH_MODEL_INFERENCE, &error);
  g_assert_no_error(error);
  /* Nonzero biases and norm parameters, so that the reference checks their wiring too. */
  for (int i = 0; i < fth_graph_n_params(m->graph); i++) {
    FthNode *p = fth_graph_param(m->graph, i);
    FthTensor t;
    g_assert_cmpint(fth_graph_tensor(m->graph, p, &t), ==, FTH_STATUS_OK);
    if (!fth_param_is_trainable(p))
      continue;
    float *v = t.data;
    for (int64_t k = 0; k < fth_tensor_numel(&t); k++)
      v[k] = (float)g_test_rand_double_range(-0.5, 0.5);
  }
  g_assert_cmpint(fth_graph_plan(m->graph, FTH_MODE_INFERENCE, N), ==, FTH_STATUS_OK);
  g_assert_cmpint(fth_graph_set_batch(m->graph, N), ==, FTH_STATUS_OK);
  int32_t ids[N * T];
  int n_real[N];
  for (int i = 0; i < N; i++) {
    n_real[i] = i == 0 ? T : g_test_rand_int_range(1, T);
    for (int t = 0; t < T; t++)
      ids[i * T + t] = t < n_real[i] ? g_test_rand_int_range(1, V) : 0;
  }
  g_assert_cmpint(fth_graph_set_input(m->graph, m->input, ids, sizeof ids), ==, FTH_STATUS_OK);
  g_assert_cmpint(fth_graph_run(m->graph), ==, FTH_STATUS_OK);
  FthTensor e;
  g_assert_cmpint(fth_graph_tensor(m->graph, m->embedding, &e), ==, FTH_STATUS_OK);
  int64_t per = fth_tensor_numel(&e) / N;
  const float *got = e.data;
  double want[64];
  for (int i = 0; i < N; i++) {
    int dim = 0;
    ref(m, ids + i * T, n_real[i], want, &dim);
    g_assert_cmpint(dim, ==, per);
    for (int k = 0; k < dim; k++)
      if (fabs(got[i * per + k] - want[k]) > 1e-4 * (1 + fabs(want[k])))
        g_error("%s: sample %d feature %d: %g, reference %.8g", layers, i, k,
                got[i * per + k], want[k]);
  }
}

/* Word plus position embeddings, then the embedding's layer norm when it has one. */
static void
ref_embed(FthModel *m, const int32_t *ids, double *x)
{
  const float *w = param(m, "emb.word_embeddings.weight", V * D);
  const float *p = param(m, "emb.position_embeddings.weight", T * D);
  for (int t = 0; t < T; t++)
    for (int d = 0; d < D; d++)
      x[t * D + d] = (double)w[ids[t] * D + d] + p[t * D + d];
  if (fth_graph_find_param(m->graph, "emb.LayerNorm.weight") != NULL)
    ref_norm_named(m, "emb", "LayerNorm", x);
}

static void
ref_mean(FthModel *m, const int32_t *ids, int n, double *out, int *dim)
{
  double x[T * D];
  ref_embed(m, ids, x);
  for (int d = 0; d < D; d++) {
    out[d] = 0;
    for (int t = 0; t < n; t++)
      out[d] += x[t * D + d] / n;
  }
  *dim = D;
}

static void
ref_max(FthModel *m, const int32_t *ids, int n, double *out, int *dim)
{
  double x[T * D];
  ref_embed(m, ids, x);
  for (int d = 0; d < D; d++) {
    out[d] = -INFINITY;
    for (int t = 0; t < n; t++)
      out[d] = fmax(out[d], x[t * D + d]);
  }
  *dim = D;
}

static void
ref_cls(FthModel *m, const int32_t *ids, int n, double *out, int *dim)
{
  double x[T * D];
  ref_embed(m, ids, x);
  memcpy(out, x, D * sizeof(double));
  *dim = D;
}

/* kernels 2 and 3, 4 channels each, relu, max over every position (padding included). */
static void
ref_cnn(FthModel *m, const int32_t *ids, int n, double *out, int *dim)
{
  double x[T * D];
  ref_embed(m, ids, x);
  static const int kernels[2] = {2, 3};
  for (int c = 0; c < 2; c++) {
    int k = kernels[c];
    g_autofree char *wn = g_strdup_printf("cnn.convs.%d.weight", c);
    g_autofree char *bn = g_strdup_printf("cnn.convs.%d.bias", c);
    const float *w = param(m, wn, 4 * D * k), *b = param(m, bn, 4);
    for (int o = 0; o < 4; o++) {
      double best = -INFINITY;
      for (int t = 0; t + k <= T; t++) {
        double s = b[o];
        for (int d = 0; d < D; d++)
          for (int j = 0; j < k; j++)
            s += w[(o * D + d) * k + j] * x[(t + j) * D + d];
        best = fmax(best, fmax(s, 0.0));
      }
      out[c * 4 + o] = best;
    }
  }
  (void)n;
  *dim = 8;
}

static void
ref_bert(FthModel *m, const int32_t *ids, int n, gboolean pre, double *out, int *dim)
{
  double x[T * D];
  int mask[T];
  ref_embed(m, ids, x);
  for (int t = 0; t < T; t++)
    mask[t] = t < n;
  ref_bert_layer(m, "enc.0", pre, mask, x);
  ref_bert_layer(m, "enc.1", pre, mask, x);
  memcpy(out, x, D * sizeof(double)); /* [CLS] */
  *dim = D;
}

static void
ref_bert_post(FthModel *m, const int32_t *ids, int n, double *out, int *dim)
{
  ref_bert(m, ids, n, FALSE, out, dim);
}

static void
ref_bert_pre(FthModel *m, const int32_t *ids, int n, double *out, int *dim)
{
  ref_bert(m, ids, n, TRUE, out, dim);
}

static void
test_reference(void)
{
  check_against_reference("{\"type\": \"pool\", \"mode\": \"mean\"}", FALSE, ref_mean);
  check_against_reference("{\"type\": \"pool\", \"mode\": \"max\"}", TRUE, ref_max);
  check_against_reference("{\"type\": \"pool\", \"mode\": \"cls\"}", FALSE, ref_cls);
  check_against_reference("{\"type\": \"text_cnn\", \"kernels\": [2, 3], \"channels\": 4, "
                          "\"name\": \"cnn\"}", FALSE, ref_cnn);
  check_against_reference("{\"type\": \"transformer_encoder\", \"heads\": 2, \"ffn\": 16, "
                          "\"repeat\": 2, \"name\": \"enc\"}, {\"type\": \"pool\", \"mode\": "
                          "\"cls\"}", TRUE, ref_bert_post);
  check_against_reference("{\"type\": \"transformer_encoder\", \"heads\": 2, \"ffn\": 16, "
                          "\"norm\": \"pre\", \"repeat\": 2, \"name\": \"enc\"}, {\"type\": "
                          "\"pool\", \"mode\": \"cls\"}", FALSE, ref_bert_pre);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/text-model/errors", test_errors);
  g_test_add_func("/text-model/reference", test_reference);
  return g_test_run();
}
