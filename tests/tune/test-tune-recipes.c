/* Every zoo recipe's default search space: valid, its samples map to recipes that parse and
 * build, and the mapping applies each parameter. */
#include <fathom/recipe.h>
#include <fathom/tune.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static int
count_layers(const FthRecipe *r, FthLayerKind kind)
{
  int n = 0;
  for (int i = 0; i < r->n_layers; i++)
    n += r->layers[i].kind == kind;
  return n;
}

static const char *
choice(const FthSearchSpace *space, const double *values, const char *name)
{
  int i = fth_search_space_find(space, name);
  return fth_search_space_get_param(space, (guint) i)->choices[(guint) values[i]];
}

static double
value(const FthSearchSpace *space, const double *values, const char *name)
{
  int i = fth_search_space_find(space, name);
  g_assert_cmpint(i, >=, 0);
  return values[i];
}

/* Trains nothing: checks what a trial with VALUES would train. */
static void
check_mapping(const char *recipe, FthSearchSpace *space, const double *values)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *json = fth_tune_train_recipe_json(recipe, space, values, 3, &error);
  g_assert_no_error(error);
  g_autoptr(FthRecipe) r = fth_recipe_parse(json, -1, recipe, NULL, &error);
  g_assert_no_error(error);
  g_autoptr(FthModel) m = fth_model_build(r, 10, 1, FTH_MODEL_INFERENCE, &error);
  g_assert_no_error(error);
  g_assert_cmpint(m->n_classes, ==, 10);

  g_assert_cmpint(r->train.epochs, ==, 3);
  g_assert_cmpfloat(r->train.optim.lr, ==, (float) value(space, values, "lr"));
  g_assert_cmpfloat(r->train.optim.weight_decay, ==, (float) value(space, values, "weight_decay"));
  g_assert_cmpfloat(r->train.label_smoothing, ==,
                    (float) value(space, values, "label_smoothing"));
  g_assert_cmpint(r->train.batch, ==, atoi(choice(space, values, "batch")));
  gboolean sgd = g_str_equal(choice(space, values, "optimizer"), "\"sgd\"");
  g_assert_cmpint(r->train.optim.kind, ==, sgd ? FTH_OPTIM_SGD : FTH_OPTIM_ADAMW);
  /* Momentum exists only for SGD. */
  g_assert_cmpint(isnan(value(space, values, "momentum")), ==, !sgd);
  if (sgd)
    g_assert_cmpfloat(r->train.optim.momentum, ==, (float) value(space, values, "momentum"));
  double dropout = value(space, values, "dropout");
  g_assert_cmpint(count_layers(r, FTH_LAYER_DROPOUT) > 0, ==, dropout > 0);
  for (int i = 0; i < r->n_layers; i++)
    if (r->layers[i].kind == FTH_LAYER_DROPOUT)
      g_assert_cmpfloat(r->layers[i].p, ==, (float) dropout);
  double augment = value(space, values, "augment");
  g_assert_cmpfloat(r->train.flip_prob, ==, (float) (0.5 * augment));
  g_assert_cmpint(r->train.crop_padding, ==, lround(4 * augment));
  /* Width: the first layer with a size (mlp: after the flatten). */
  int width = (int) value(space, values, "width");
  const FthLayerSpec *first = &r->layers[r->layers[0].kind == FTH_LAYER_FLATTEN ? 1 : 0];
  g_assert_cmpint(first->out, ==, width);
  int depth_i = fth_search_space_find(space, "depth");
  if (depth_i >= 0 && g_str_equal(recipe, "mlp"))
    g_assert_cmpint(count_layers(r, FTH_LAYER_LINEAR), ==, (int) values[depth_i] + 1);
}

static void
test_recipe(gconstpointer data)
{
  const char *recipe = data;
  g_autoptr(GError) error = NULL;
  const char *json = fth_tune_train_space_json(recipe, &error);
  g_assert_no_error(error);
  g_autoptr(FthSearchSpace) space = fth_search_space_new_from_json(json, -1, recipe, &error);
  g_assert_no_error(error);
  static const char *const expected[] = { "lr",      "weight_decay",    "batch",     "dropout",
                                          "augment", "label_smoothing", "optimizer", "momentum",
                                          "width" };
  for (guint i = 0; i < G_N_ELEMENTS(expected); i++)
    g_assert_cmpint(fth_search_space_find(space, expected[i]), >=, 0);
  int momentum = fth_search_space_find(space, "momentum");
  g_assert_cmpint(fth_search_space_get_param(space, (guint) momentum)->parent, ==,
                  fth_search_space_find(space, "optimizer"));

  guint d = fth_search_space_get_n_params(space);
  g_autofree double *values = g_new(double, d);
  g_autoptr(FthSampler) sampler = fth_sampler_new_random(g_test_rand_int());
  for (int n = 0; n < 12; n++) {
    g_assert_true(fth_sampler_sample(sampler, space, NULL, 0, n, TRUE, values, &error));
    g_assert_no_error(error);
    check_mapping(recipe, space, values);
  }
  /* The corners: every bound at once. */
  for (int corner = 0; corner < 2; corner++) {
    for (guint k = 0; k < d; k++) {
      const FthTuneParam *p = fth_search_space_get_param(space, k);
      values[k] = p->kind == FTH_PARAM_CATEGORICAL ? (corner ? p->n_choices - 1 : 0)
                                                   : (corner ? p->high : p->low);
    }
    for (guint k = 0; k < d; k++)
      if (!fth_search_space_is_active(space, k, values))
        values[k] = NAN;
    check_mapping(recipe, space, values);
  }
}

static void
test_unknown(void)
{
  g_autoptr(GError) error = NULL;
  g_assert_null(fth_tune_train_space_json("vgg", &error));
  g_assert_error(error, FTH_TUNE_ERROR, FTH_TUNE_ERROR_INVALID);
  g_assert_nonnull(strstr(error->message, "\"vgg\""));
  /* "cnn" stays fmnist-cnn's name. */
  g_assert_cmpstr(fth_tune_train_space_json("cnn", NULL), ==,
                  fth_tune_train_space_json("fmnist-cnn", NULL));
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  for (const char *const *r = fth_tune_train_recipes(); *r != NULL; r++) {
    g_autofree char *path = g_strdup_printf("/tune/recipes/%s", *r);
    g_test_add_data_func(path, *r, test_recipe);
  }
  g_test_add_func("/tune/recipes/unknown", test_unknown);
  return g_test_run();
}
