/* Recipe parsing: the zoo parses, and every kind of mistake gets a message naming the file,
 * the layer and the field. */
#include <fathom/recipe.h>
#include <math.h>
#include <string.h>

static void
expect_error(const char *json, const char *message)
{
  GError *error = NULL;
  FthRecipe *r = fth_recipe_parse(json, -1, "recipe.json", NULL, &error);
  g_assert_null(r);
  g_assert_error(error, FTH_RECIPE_ERROR, FTH_RECIPE_ERROR_PARSE);
  if (strcmp(error->message, message) != 0)
    g_error("got   '%s'\nwanted '%s'", error->message, message);
  g_error_free(error);
}

#define IN "\"input\": {\"shape\": [1, 28, 28]}, "

static void
test_errors(void)
{
  expect_error("{" IN "\"layers\": [{\"type\": \"flatten\"}, {\"type\": \"relu\"},"
               " {\"type\": \"conv2d\", \"kernel\": 3}]}",
               "recipe.json: layer 3 'conv2d': missing 'out_channels'");
  expect_error("{" IN "\"layers\": [{\"type\": \"conv3d\"}]}",
               "recipe.json: layer 1: unknown layer type 'conv3d'");
  expect_error("{" IN "\"layers\": [{\"type\": \"linear\", \"out_feature\": 3}]}",
               "recipe.json: layer 1 'linear': unknown field 'out_feature'");
  expect_error("{" IN "\"layers\": [{\"type\": \"linear\", \"out_features\": \"$widht\"}]}",
               "recipe.json: layer 1 'linear': 'out_features': unknown variable 'widht'");
  expect_error("{" IN "\"layers\": [{\"type\": \"linear\", \"out_features\": 2.5}]}",
               "recipe.json: layer 1 'linear': 'out_features' must be an integer, a $variable "
               "or \"classes\"");
  expect_error("{" IN "\"layers\": [{\"type\": \"dropout\", \"p\": 1.5}]}",
               "recipe.json: layer 1 'dropout': 'p' must be in [0, 0.999] (got 1.5)");
  expect_error("{" IN "\"layers\": [{\"type\": \"residual\", \"layers\": [{\"type\": \"relu\"},"
               " {\"type\": \"conv2d\", \"out_channels\": 4}]}]}",
               "recipe.json: layer 1.2 'conv2d': missing 'kernel'");
  expect_error("{" IN "\"layers\": []}", "recipe.json: 'layers' is empty");
  expect_error("{\"layers\": [{\"type\": \"relu\"}]}", "recipe.json: missing 'input' object");
  expect_error("{\"input\": {\"shape\": [1, 28]}, \"layers\": [{\"type\": \"relu\"}]}",
               "recipe.json: input: 'shape' must be [features] or [channels, height, width]");
  expect_error("{" IN "\"layres\": []}", "recipe.json: recipe: unknown field 'layres'");
  expect_error("{" IN "\"layers\": [{\"type\": \"relu\"}], \"train\": {\"optimizer\": \"adam\"}}",
               "recipe.json: train: 'optimizer' must be \"sgd\" or \"adamw\"");
  expect_error("{" IN "\"layers\": [{\"type\": \"relu\"}], \"train\": {\"schedule\": \"cos\"}}",
               "recipe.json: train: 'schedule' must be \"constant\", \"step\", \"cosine\" or "
               "\"one-cycle\"");
  expect_error("{\"input\": {\"shape\": [3, 8, 8], \"mean\": [0.5]}, \"layers\": [{\"type\": "
               "\"relu\"}]}",
               "recipe.json: input: 'mean' must be an array of 3 numbers (one per channel)");
  GError *error = NULL;
  g_assert_null(fth_recipe_parse("{\"input\": ", -1, "recipe.json", NULL, &error));
  g_assert_true(g_str_has_prefix(error->message, "recipe.json: not valid JSON"));
  g_clear_error(&error);
  g_assert_null(fth_recipe_load("/nonexistent/recipe.json", NULL, &error));
  g_assert_error(error, FTH_RECIPE_ERROR, FTH_RECIPE_ERROR_IO);
  g_assert_nonnull(strstr(error->message, "/nonexistent/recipe.json"));
  g_clear_error(&error);
}

static void
test_vars_and_repeat(void)
{
  const char *json =
    "{\"input\": {\"shape\": [\"$c\", 8, 8]}, \"vars\": {\"c\": 3, \"w\": 4, \"n\": 2},"
    " \"layers\": [{\"type\": \"conv2d\", \"out_channels\": \"$w*2\", \"kernel\": [3, 1]},"
    "  {\"type\": \"residual\", \"name\": \"blk\", \"repeat\": \"$n+1\", \"layers\": ["
    "    {\"type\": \"conv2d\", \"out_channels\": \"$w-1\", \"kernel\": 1}]},"
    "  {\"type\": \"linear\", \"out_features\": \"classes\"}]}";
  GError *error = NULL;
  g_autoptr(FthRecipe) r = fth_recipe_parse(json, -1, "v.json", NULL, &error);
  g_assert_no_error(error);
  g_assert_cmpint(r->in_shape[0], ==, 3);
  g_assert_cmpint(r->n_layers, ==, 5); /* conv, 3 x residual, linear */
  g_assert_cmpint(r->layers[0].out, ==, 8);
  g_assert_cmpint(r->layers[0].kernel[0], ==, 3);
  g_assert_cmpint(r->layers[0].kernel[1], ==, 1);
  g_assert_cmpstr(r->layers[0].name, ==, "0");
  g_assert_cmpstr(r->layers[1].name, ==, "blk.0");
  g_assert_cmpstr(r->layers[3].name, ==, "blk.2");
  g_assert_cmpint(r->layers[2].body[0].out, ==, 3);
  g_assert_cmpstr(r->layers[4].name, ==, "4");
  g_assert_cmpint(r->layers[4].out, ==, FTH_RECIPE_CLASSES);
  g_assert_cmpint(r->n_norm, ==, 3);
  g_assert_cmpfloat(r->std[2], ==, 1.0f);

  const char *const over[] = {"w=10", "n=0", NULL};
  g_autoptr(FthRecipe) r2 = fth_recipe_parse(json, -1, "v.json", over, &error);
  g_assert_no_error(error);
  g_assert_cmpint(r2->layers[0].out, ==, 20);
  g_assert_cmpint(r2->n_layers, ==, 3);
  const char *const bad[] = {"depth=3", NULL};
  g_assert_null(fth_recipe_parse(json, -1, "v.json", bad, &error));
  g_assert_cmpstr(error->message, ==, "v.json: variable 'depth' is not declared in 'vars'");
  g_clear_error(&error);
}

static void
test_zoo(void)
{
  const char *names[] = {"mlp", "fmnist-cnn", "fmnist-best", "resnet", "mobilenetv2"};
  for (unsigned i = 0; i < G_N_ELEMENTS(names); i++) {
    g_autofree char *path = fth_recipe_find(names[i]);
    g_assert_nonnull(path);
    GError *error = NULL;
    g_autoptr(FthRecipe) r = fth_recipe_load(path, NULL, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(r->name, ==, names[i]);
  }
  g_assert_null(fth_recipe_find("no-such-recipe"));

  GError *error = NULL;
  g_autofree char *cnn_path = fth_recipe_find("fmnist-cnn");
  g_autoptr(FthRecipe) cnn = fth_recipe_load(cnn_path, NULL, &error);
  g_assert_cmpint(cnn->n_layers, ==, 10);
  g_assert_cmpint(cnn->train.optim.kind, ==, FTH_OPTIM_SGD);
  g_assert_cmpfloat_with_epsilon(cnn->train.optim.lr, 0.05, 1e-7);
  g_assert_cmpfloat_with_epsilon(cnn->train.optim.momentum, 0.9, 1e-7);
  g_assert_cmpint(cnn->train.batch, ==, 64);
  g_assert_cmpstr(cnn->layers[7].name, ==, "7"); /* torch.nn.Sequential index of fc1 */

  /* ResNet depth follows "blocks": 6n + 2 weighted layers. */
  g_autofree char *rpath = fth_recipe_find("resnet");
  const char *const deep[] = {"blocks=5", NULL};
  g_autoptr(FthRecipe) rn = fth_recipe_load(rpath, deep, &error);
  g_assert_no_error(error);
  int residuals = 0;
  for (int i = 0; i < rn->n_layers; i++)
    residuals += rn->layers[i].kind == FTH_LAYER_RESIDUAL;
  g_assert_cmpint(residuals, ==, 3 * 5);
}

static int64_t
count_params(FthGraph *g, gboolean trainable_only)
{
  int64_t n = 0;
  for (int i = 0; i < fth_graph_n_params(g); i++) {
    FthNode *p = fth_graph_param(g, i);
    int64_t shape[FTH_MAX_DIMS];
    int nd = fth_node_shape(p, 1, shape);
    if (trainable_only && !fth_param_is_trainable(p))
      continue;
    n += fth_shape_numel(nd, shape);
  }
  return n;
}

/* Every zoo model builds, plans and runs a training step with a finite loss; the two peer
 * models have PyTorch's parameter counts and state_dict names. */
static void
test_zoo_builds(void)
{
  struct {
    const char *name, *vars[3];
    int64_t params;
  } zoo[] = {
    {"mlp", {NULL}, 203530},
    {"fmnist-cnn", {NULL}, 421642},
    {"fmnist-best", {NULL}, 0},
    {"resnet", {"blocks=1", "width=4", NULL}, 0},
    {"mobilenetv2", {"width=4", NULL}, 0},
  };
  GRand *r = g_rand_new();
  for (unsigned z = 0; z < G_N_ELEMENTS(zoo); z++) {
    GError *error = NULL;
    g_autofree char *path = fth_recipe_find(zoo[z].name);
    g_autoptr(FthRecipe) recipe = fth_recipe_load(path, zoo[z].vars, &error);
    g_assert_no_error(error);
    g_autoptr(FthModel) m = fth_model_build(recipe, 10, 7, FTH_MODEL_TRAINING, &error);
    if (error != NULL)
      g_error("%s: %s", zoo[z].name, error->message);
    if (zoo[z].params > 0)
      g_assert_cmpint(count_params(m->graph, TRUE), ==, zoo[z].params);
    g_assert_cmpint(fth_graph_plan(m->graph, FTH_MODE_TRAIN, 3), ==, FTH_STATUS_OK);
    g_assert_cmpint(fth_graph_set_batch(m->graph, 3), ==, FTH_STATUS_OK);
    size_t sample = 1;
    for (int i = 0; i < recipe->in_ndim; i++)
      sample *= (size_t)recipe->in_shape[i];
    g_autofree float *x = g_new(float, 3 * sample);
    for (size_t i = 0; i < 3 * sample; i++)
      x[i] = (float)g_rand_double(r);
    int32_t y[3] = {1, 4, 9};
    g_assert_cmpint(fth_graph_set_input(m->graph, m->input, x, 3 * sample * sizeof(float)), ==,
                    FTH_STATUS_OK);
    g_assert_cmpint(fth_graph_set_input(m->graph, m->targets, y, sizeof y), ==, FTH_STATUS_OK);
    if (fth_graph_run(m->graph) != FTH_STATUS_OK)
      g_error("%s: %s", zoo[z].name, fth_last_error());
    FthTensor loss;
    g_assert_cmpint(fth_graph_tensor(m->graph, m->loss, &loss), ==, FTH_STATUS_OK);
    float l = *(const float *)loss.data;
    g_assert_true(isfinite(l) && l > 0);
  }
  g_rand_free(r);
  /* PyTorch Sequential names of the benchmark CNN. */
  GError *error = NULL;
  g_autofree char *cnn = fth_recipe_find("fmnist-cnn");
  g_autoptr(FthRecipe) recipe = fth_recipe_load(cnn, NULL, &error);
  g_autoptr(FthModel) m = fth_model_build(recipe, 10, 1, FTH_MODEL_INFERENCE, &error);
  g_assert_no_error(error);
  const char *names[] = {"0.weight", "0.bias", "3.weight", "3.bias", "7.weight", "7.bias",
                         "9.weight", "9.bias"};
  g_assert_cmpint(fth_graph_n_params(m->graph), ==, G_N_ELEMENTS(names));
  for (unsigned i = 0; i < G_N_ELEMENTS(names); i++)
    g_assert_nonnull(fth_graph_find_param(m->graph, names[i]));
  g_assert_null(m->loss);
  int64_t es[FTH_MAX_DIMS];
  g_assert_cmpint(fth_node_shape(m->embedding, 1, es), ==, 2);
  g_assert_cmpint(es[1], ==, 128);
}

/* Layers that do not fit together are reported with the layer. */
static void
test_build_errors(void)
{
  const char *json = "{\"input\": {\"shape\": [1, 8, 8]}, \"layers\": ["
                     "{\"type\": \"linear\", \"out_features\": 4}]}";
  GError *error = NULL;
  g_autoptr(FthRecipe) r = fth_recipe_parse(json, -1, "bad.json", NULL, &error);
  g_assert_no_error(error);
  g_assert_null(fth_model_build(r, 3, 1, FTH_MODEL_TRAINING, &error));
  g_assert_error(error, FTH_RECIPE_ERROR, FTH_RECIPE_ERROR_BUILD);
  g_assert_cmpstr(error->message, ==, "bad.json: layer 1 'linear': linear needs a [batch, "
                                      "features] input (add a 'flatten' layer)");
  g_clear_error(&error);
  const char *json2 = "{\"input\": {\"shape\": [4]}, \"layers\": ["
                      "{\"type\": \"linear\", \"out_features\": 5}]}";
  g_autoptr(FthRecipe) r2 = fth_recipe_parse(json2, -1, "five.json", NULL, &error);
  g_assert_null(fth_model_build(r2, 3, 1, FTH_MODEL_TRAINING, &error));
  g_assert_nonnull(strstr(error->message, "end with a linear layer of out_features \"classes\""));
  g_clear_error(&error);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/recipe/errors", test_errors);
  g_test_add_func("/recipe/vars-and-repeat", test_vars_and_repeat);
  g_test_add_func("/recipe/zoo", test_zoo);
  g_test_add_func("/recipe/zoo-builds", test_zoo_builds);
  g_test_add_func("/recipe/build-errors", test_build_errors);
  return g_test_run();
}
