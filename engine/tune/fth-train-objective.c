/* Training as a tune objective: each trial trains a zoo recipe with the trial's hyperparameters
 * through fth_train (a run in the store, per-epoch metrics, a checkpoint), reports the
 * validation accuracy after every epoch, and a pruner's "stop" cancels the training. */
#include "fth-tune-private.h"

#include <fathom/train.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

/* The parameters every recipe's default space has: the training hyperparameters, dropout,
 * augmentation strength (0: none; 1: flips with probability 0.5 and shifts of up to 4 pixels)
 * and, for SGD only, momentum. Each zoo recipe's own values lie inside. */
#define COMMON_PARAMS                                                                             \
  "{\"name\": \"lr\", \"type\": \"float\", \"low\": 1e-4, \"high\": 0.3, \"log\": true},"         \
  "{\"name\": \"weight_decay\", \"type\": \"float\", \"low\": 1e-6, \"high\": 0.05, \"log\": true}," \
  "{\"name\": \"batch\", \"type\": \"categorical\", \"choices\": [32, 64, 128]},"                 \
  "{\"name\": \"dropout\", \"type\": \"float\", \"low\": 0, \"high\": 0.5},"                      \
  "{\"name\": \"augment\", \"type\": \"float\", \"low\": 0, \"high\": 1},"                        \
  "{\"name\": \"label_smoothing\", \"type\": \"float\", \"low\": 0, \"high\": 0.2},"              \
  "{\"name\": \"optimizer\", \"type\": \"categorical\", \"choices\": [\"sgd\", \"adamw\"]},"      \
  "{\"name\": \"momentum\", \"type\": \"float\", \"low\": 0, \"high\": 0.99,"                     \
  " \"condition\": {\"parent\": \"optimizer\", \"values\": [\"sgd\"]}}"

/* How "depth" changes a recipe. */
typedef enum {
  DEPTH_NONE,
  DEPTH_VAR,        /* sets the recipe variable DEPTH_VAR ("blocks") */
  DEPTH_REPEATS,    /* sets "repeat" of every top-level layer that has one */
  DEPTH_HIDDEN,     /* repeats the hidden linear layer (its relu fused into it) */
} DepthKind;

typedef struct {
  const char *name;      /* the zoo recipe */
  const char *width_var; /* the variable "width" sets; NULL: scales the layers' sizes */
  DepthKind depth;
  const char *depth_var;
  const char *space;
} TuneRecipe;

static const TuneRecipe TUNE_RECIPES[] = {
  { "fmnist-cnn", NULL, DEPTH_NONE, NULL,
    "{\"params\": [" COMMON_PARAMS ","
    "{\"name\": \"width\", \"type\": \"int\", \"low\": 16, \"high\": 64, \"step\": 16}]}" },
  { "fmnist-best", NULL, DEPTH_NONE, NULL,
    "{\"params\": [" COMMON_PARAMS ","
    "{\"name\": \"width\", \"type\": \"int\", \"low\": 16, \"high\": 64, \"step\": 16}]}" },
  { "mlp", "hidden", DEPTH_HIDDEN, NULL,
    "{\"params\": [" COMMON_PARAMS ","
    "{\"name\": \"width\", \"type\": \"int\", \"low\": 64, \"high\": 512, \"log\": true},"
    "{\"name\": \"depth\", \"type\": \"int\", \"low\": 1, \"high\": 3}]}" },
  { "resnet", "width", DEPTH_VAR, "blocks",
    "{\"params\": [" COMMON_PARAMS ","
    "{\"name\": \"width\", \"type\": \"int\", \"low\": 8, \"high\": 32, \"step\": 8},"
    "{\"name\": \"depth\", \"type\": \"int\", \"low\": 1, \"high\": 3}]}" },
  { "mobilenetv2", "width", DEPTH_REPEATS, NULL,
    "{\"params\": [" COMMON_PARAMS ","
    "{\"name\": \"width\", \"type\": \"int\", \"low\": 8, \"high\": 32, \"step\": 8},"
    "{\"name\": \"depth\", \"type\": \"int\", \"low\": 1, \"high\": 3}]}" },
};

static const char *const TUNE_RECIPE_NAMES[] = { "fmnist-cnn", "fmnist-best", "mlp", "resnet",
                                                  "mobilenetv2", NULL };

const char *const *
fth_tune_train_recipes(void)
{
  return TUNE_RECIPE_NAMES;
}

static const TuneRecipe *
find_recipe(const char *recipe, GError **error)
{
  /* "cnn" is fmnist-cnn's first name here, kept for studies that used it. */
  const char *name = g_strcmp0(recipe, "cnn") == 0 ? "fmnist-cnn" : recipe;
  for (guint i = 0; i < G_N_ELEMENTS(TUNE_RECIPES); i++)
    if (g_strcmp0(name, TUNE_RECIPES[i].name) == 0)
      return &TUNE_RECIPES[i];
  g_autofree char *known = g_strjoinv(", ", (char **) TUNE_RECIPE_NAMES);
  g_set_error(error, FTH_TUNE_ERROR, FTH_TUNE_ERROR_INVALID,
              "recipe \"%s\": no default search space for it (%s)", recipe ? recipe : "", known);
  return NULL;
}

const char *
fth_tune_train_space_json(const char *recipe, GError **error)
{
  const TuneRecipe *r = find_recipe(recipe, error);
  return r != NULL ? r->space : NULL;
}

void
fth_tune_train_config_init(FthTuneTrainConfig *c)
{
  memset(c, 0, sizeof *c);
  c->recipe = "fmnist-cnn";
  c->epochs = 6;
  c->seed = 1;
}

/* A parameter's value, or FALLBACK when the space does not have it (or it is inactive). */
static double
param_or(const FthSearchSpace *space, const double *values, const char *name, double fallback)
{
  int i = fth_search_space_find(space, name);
  return i < 0 || isnan(values[i]) ? fallback : values[i];
}

/* A categorical parameter's choice (JSON text), or NULL. */
static const char *
choice_of(const FthSearchSpace *space, const double *values, const char *name)
{
  int i = fth_search_space_find(space, name);
  if (i < 0 || isnan(values[i]))
    return NULL;
  const FthTuneParam *p = fth_search_space_get_param(space, (guint) i);
  if (p->kind != FTH_PARAM_CATEGORICAL)
    return NULL;
  return p->choices[(guint) values[i]];
}

static gboolean
has(const FthSearchSpace *space, const double *values, const char *name)
{
  int i = fth_search_space_find(space, name);
  return i >= 0 && !isnan(values[i]);
}

/* Multiplies every numeric size of the top-level layers by WIDTH / the first conv's. */
static void
scale_widths(JsonArray *layers, double width)
{
  double base = 0;
  for (guint i = 0; i < json_array_get_length(layers) && base == 0; i++) {
    JsonObject *l = json_array_get_object_element(layers, i);
    if (g_strcmp0(json_object_get_string_member_with_default(l, "type", ""), "conv2d") == 0)
      base = json_object_get_int_member_with_default(l, "out_channels", 0);
  }
  if (base <= 0)
    return;
  for (guint i = 0; i < json_array_get_length(layers); i++) {
    JsonObject *l = json_array_get_object_element(layers, i);
    for (guint m = 0; m < 2; m++) {
      const char *member = m == 0 ? "out_channels" : "out_features";
      JsonNode *n = json_object_get_member(l, member);
      if (n != NULL && json_node_get_value_type(n) == G_TYPE_INT64)
        json_object_set_int_member(
          l, member, MAX(1, (gint64) lround((double) json_node_get_int(n) * width / base)));
    }
  }
}

/* Sets p on the recipe's dropout layers (removes them for 0), or puts one before the output
 * layer when the recipe has none. */
static void
set_dropout(JsonArray *layers, double p)
{
  gboolean found = FALSE;
  for (guint i = json_array_get_length(layers); i-- > 0;) {
    JsonObject *l = json_array_get_object_element(layers, i);
    if (g_strcmp0(json_object_get_string_member_with_default(l, "type", ""), "dropout") != 0)
      continue;
    found = TRUE;
    if (p > 0)
      json_object_set_double_member(l, "p", p);
    else
      json_array_remove_element(layers, i);
  }
  guint n = json_array_get_length(layers);
  if (found || p <= 0 || n == 0)
    return;
  g_autoptr(JsonArray) rebuilt = json_array_new();
  JsonObject *d = json_object_new();
  json_object_set_string_member(d, "type", "dropout");
  json_object_set_double_member(d, "p", p);
  for (guint i = 0; i + 1 < n; i++)
    json_array_add_element(rebuilt, json_array_dup_element(layers, i));
  json_array_add_object_element(rebuilt, d);
  json_array_add_element(rebuilt, json_array_dup_element(layers, n - 1));
  while (json_array_get_length(layers) > 0)
    json_array_remove_element(layers, 0);
  for (guint i = 0; i < json_array_get_length(rebuilt); i++)
    json_array_add_element(layers, json_array_dup_element(rebuilt, i));
}

/* DEPTH_HIDDEN: the "$hidden" linear layer with its relu fused, repeated DEPTH times. */
static void
set_hidden_depth(JsonArray *layers, gint64 depth)
{
  for (guint i = 0; i + 1 < json_array_get_length(layers); i++) {
    JsonObject *l = json_array_get_object_element(layers, i);
    JsonObject *next = json_array_get_object_element(layers, i + 1);
    if (g_strcmp0(json_object_get_string_member_with_default(l, "type", ""), "linear") != 0 ||
        json_object_get_member(l, "out_features") == NULL ||
        json_node_get_value_type(json_object_get_member(l, "out_features")) != G_TYPE_STRING ||
        g_strcmp0(json_object_get_string_member(l, "out_features"), "classes") == 0 ||
        g_strcmp0(json_object_get_string_member_with_default(next, "type", ""), "relu") != 0)
      continue;
    json_object_set_string_member(l, "activation", "relu");
    json_object_set_int_member(l, "repeat", depth);
    json_array_remove_element(layers, i + 1);
    return;
  }
}

static JsonObject *
ensure_object(JsonObject *parent, const char *member)
{
  JsonNode *node = json_object_get_member(parent, member);
  JsonObject *o = node != NULL && JSON_NODE_HOLDS_OBJECT(node) ? json_node_get_object(node) : NULL;
  if (o == NULL) {
    o = json_object_new();
    json_object_set_object_member(parent, member, o);
  }
  return o;
}

char *
fth_tune_train_recipe_json(const char *recipe, const FthSearchSpace *space, const double *values,
                           int epochs, GError **error)
{
  const TuneRecipe *r = find_recipe(recipe, error);
  if (r == NULL)
    return NULL;
  g_autofree char *path = fth_recipe_find(r->name);
  if (path == NULL) {
    g_set_error(error, FTH_TUNE_ERROR, FTH_TUNE_ERROR_INVALID,
                "recipe \"%s\": not found in the model zoo (data/recipes)", r->name);
    return NULL;
  }
  g_autoptr(JsonParser) parser = json_parser_new();
  if (!json_parser_load_from_file(parser, path, error))
    return NULL;
  JsonNode *root = json_parser_get_root(parser);
  JsonObject *o = root != NULL && JSON_NODE_HOLDS_OBJECT(root) ? json_node_get_object(root) : NULL;
  JsonNode *layers_node = o != NULL ? json_object_get_member(o, "layers") : NULL;
  JsonArray *layers = layers_node != NULL && JSON_NODE_HOLDS_ARRAY(layers_node)
                        ? json_node_get_array(layers_node)
                        : NULL;
  if (layers == NULL) {
    g_set_error(error, FTH_TUNE_ERROR, FTH_TUNE_ERROR_INVALID, "%s: not a recipe", path);
    return NULL;
  }
  JsonObject *vars = ensure_object(o, "vars");
  JsonObject *train = ensure_object(o, "train");
  if (has(space, values, "width")) {
    double width = param_or(space, values, "width", 0);
    if (r->width_var != NULL)
      json_object_set_int_member(vars, r->width_var, (gint64) width);
    else
      scale_widths(layers, width);
  }
  if (has(space, values, "depth")) {
    gint64 depth = (gint64) param_or(space, values, "depth", 1);
    if (r->depth == DEPTH_VAR) {
      json_object_set_int_member(vars, r->depth_var, depth);
    } else if (r->depth == DEPTH_REPEATS) {
      for (guint i = 0; i < json_array_get_length(layers); i++) {
        JsonObject *l = json_array_get_object_element(layers, i);
        if (json_object_has_member(l, "repeat"))
          json_object_set_int_member(l, "repeat", depth);
      }
    } else if (r->depth == DEPTH_HIDDEN) {
      set_hidden_depth(layers, depth);
    }
  }
  if (has(space, values, "dropout"))
    set_dropout(layers, param_or(space, values, "dropout", 0));
  json_object_set_int_member(train, "epochs", epochs);
  const char *batch = choice_of(space, values, "batch");
  if (batch != NULL)
    json_object_set_int_member(train, "batch", g_ascii_strtoll(batch, NULL, 10));
  static const char *const floats[] = { "lr", "weight_decay", "label_smoothing" };
  for (guint i = 0; i < G_N_ELEMENTS(floats); i++)
    if (has(space, values, floats[i]))
      json_object_set_double_member(train, floats[i], param_or(space, values, floats[i], 0));
  const char *optimizer = choice_of(space, values, "optimizer");
  if (optimizer != NULL) {
    gboolean sgd = g_str_equal(optimizer, "\"sgd\"");
    json_object_set_string_member(train, "optimizer", sgd ? "sgd" : "adamw");
    if (!sgd) {
      json_object_remove_member(train, "momentum");
      json_object_remove_member(train, "nesterov");
    }
  }
  if (has(space, values, "momentum")) {
    double momentum = param_or(space, values, "momentum", 0);
    json_object_set_double_member(train, "momentum", momentum);
    if (momentum <= 0)
      json_object_remove_member(train, "nesterov");
  }
  if (has(space, values, "augment")) {
    double strength = param_or(space, values, "augment", 0);
    JsonObject *aug = json_object_new();
    json_object_set_double_member(aug, "flip", 0.5 * strength);
    json_object_set_int_member(aug, "crop_padding", lround(4 * strength));
    json_object_set_object_member(train, "augment", aug);
  }
  g_autoptr(JsonGenerator) gen = json_generator_new();
  json_generator_set_root(gen, root);
  return json_generator_to_data(gen, NULL);
}

char *
fth_tune_train_trial_dir(const FthTuneTrainConfig *c, int number)
{
  g_autofree char *study = g_strdup_printf("tune-%s", c->study_name ? c->study_name : "study");
  g_autofree char *trial = g_strdup_printf("trial-%d", number);
  return g_build_filename(fth_store_get_dir(c->store), "models", study, trial, NULL);
}

/* Replaces the checkpoint in DST by the one in SRC, the sidecar last (its commit point). */
static gboolean
copy_checkpoint(const char *src, const char *dst, GError **error)
{
  if (g_mkdir_with_parents(dst, 0755) != 0) {
    g_set_error(error, FTH_TUNE_ERROR, FTH_TUNE_ERROR_FAILED, "%s: cannot create", dst);
    return FALSE;
  }
  g_autofree char *sidecar = g_build_filename(dst, "checkpoint.json", NULL);
  g_unlink(sidecar);
  g_autoptr(GDir) old = g_dir_open(dst, 0, error);
  if (old == NULL)
    return FALSE;
  const char *name;
  while ((name = g_dir_read_name(old)) != NULL) {
    g_autofree char *path = g_build_filename(dst, name, NULL);
    if (g_file_test(path, G_FILE_TEST_IS_REGULAR))
      g_unlink(path);
  }
  g_autoptr(GDir) d = g_dir_open(src, 0, error);
  if (d == NULL)
    return FALSE;
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
  while ((name = g_dir_read_name(d)) != NULL)
    if (!g_str_equal(name, "checkpoint.json"))
      g_ptr_array_add(names, g_strdup(name));
  g_ptr_array_add(names, g_strdup("checkpoint.json"));
  for (guint i = 0; i < names->len; i++) {
    g_autofree char *from = g_build_filename(src, names->pdata[i], NULL);
    g_autofree char *to = g_build_filename(dst, names->pdata[i], NULL);
    g_autofree char *data = NULL;
    gsize len = 0;
    if (!g_file_test(from, G_FILE_TEST_IS_REGULAR))
      continue;
    if (!g_file_get_contents(from, &data, &len, error) ||
        !g_file_set_contents(to, data, (gssize) len, error))
      return FALSE;
  }
  return TRUE;
}

typedef struct {
  FthTuneTrialContext *ctx;
  GCancellable *cancel;
  const char *last_dir; /* fth_train's checkpoint: the latest epoch's */
  const char *best_dir; /* a copy of the best epoch's */
  double latest;        /* validation accuracy of the epoch whose checkpoint is in last_dir */
  double best;          /* of the one in best_dir */
  gboolean no_val;
  GError *copy_error;
} TrialProgress;

/* Copies the latest checkpoint when its epoch is the best so far. */
static void
keep_if_best(TrialProgress *tp)
{
  if (tp->copy_error != NULL || isnan(tp->latest) || !(isnan(tp->best) || tp->latest > tp->best))
    return;
  if (copy_checkpoint(tp->last_dir, tp->best_dir, &tp->copy_error))
    tp->best = tp->latest;
  else
    g_cancellable_cancel(tp->cancel);
}

static void
on_train_progress(const FthTrainProgress *p, gpointer data)
{
  TrialProgress *tp = data;
  if (!p->epoch_end)
    return;
  if (isnan(p->val_acc)) {
    tp->no_val = TRUE;
    g_cancellable_cancel(tp->cancel);
    return;
  }
  /* The trainer saves this epoch's checkpoint after this call: last_dir still holds the
   * previous epoch's. */
  keep_if_best(tp);
  tp->latest = p->val_acc;
  if (fth_tune_trial_report(tp->ctx, p->epoch + 1, p->val_acc))
    g_cancellable_cancel(tp->cancel);
}

static void
forward_cancel(GCancellable *study_cancel, gpointer trial_cancel)
{
  g_cancellable_cancel(trial_cancel);
}

gboolean
fth_tune_train_objective(FthTuneTrialContext *ctx, gpointer data, double *value, GError **error)
{
  const FthTuneTrainConfig *c = data;
  int number = fth_tune_trial_get_number(ctx);
  g_autofree char *dir = fth_tune_train_trial_dir(c, number);
  g_autofree char *last_dir = g_build_filename(dir, "last", NULL);
  g_autofree char *recipe_path = g_strconcat(dir, ".json", NULL);
  g_autofree char *recipe =
    fth_tune_train_recipe_json(c->recipe, fth_tune_trial_get_space(ctx),
                               fth_tune_trial_get_values(ctx), c->epochs, error);
  if (recipe == NULL)
    return FALSE;
  g_autofree char *parent = g_path_get_dirname(dir);
  if (g_mkdir_with_parents(parent, 0755) != 0 ||
      !g_file_set_contents(recipe_path, recipe, -1, error)) {
    if (error != NULL && *error == NULL)
      g_set_error(error, FTH_TUNE_ERROR, FTH_TUNE_ERROR_FAILED, "%s: cannot create", parent);
    return FALSE;
  }
  g_autoptr(GCancellable) cancel = g_cancellable_new();
  gulong handler = c->cancellable != NULL
                     ? g_cancellable_connect(c->cancellable, G_CALLBACK(forward_cancel),
                                             cancel, NULL)
                     : 0;
  TrialProgress tp = { ctx, cancel, last_dir, dir, NAN, NAN, FALSE, NULL };
  FthTrainOptions o;
  fth_train_options_init(&o);
  o.recipe = recipe_path;
  o.seed = c->seed;
  o.limit_train = c->limit_train;
  o.checkpoint_dir = last_dir;
  o.progress = on_train_progress;
  o.progress_data = &tp;
  o.cancellable = cancel;
  FthTrainResult result = { 0 };
  GError *local = NULL;
  gboolean ok = fth_train(c->store, &o, &result, &local);
  if (c->cancellable != NULL)
    g_cancellable_disconnect(c->cancellable, handler);
  fth_train_result_clear(&result);
  /* The last epoch's checkpoint was saved after its progress call. */
  keep_if_best(&tp);
  if (tp.copy_error != NULL) {
    g_clear_error(&local);
    g_propagate_prefixed_error(error, tp.copy_error, "trial %d: keeping the best epoch: ", number);
    return FALSE;
  }
  if (tp.no_val) {
    g_clear_error(&local);
    g_set_error(error, FTH_TUNE_ERROR, FTH_TUNE_ERROR_INVALID,
                "%s: the project has no validation items to measure trials on",
                fth_store_get_dir(c->store));
    return FALSE;
  }
  if (!ok && g_error_matches(local, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
    g_error_free(local); /* pruned or the study was cancelled: the study knows which */
    *value = tp.best;
    return TRUE;
  }
  if (!ok) {
    g_propagate_prefixed_error(error, local, "trial %d: ", number);
    return FALSE;
  }
  /* The trial's value is the accuracy of the checkpoint it keeps, its best epoch's. */
  *value = tp.best;
  return TRUE;
}

gboolean
fth_tune_train_promote(FthTuneStudy *study, const FthTuneTrainConfig *c, gint64 *run_id,
                       GError **error)
{
  const FthTuneTrial *best = fth_tune_study_get_best_trial(study);
  if (best == NULL) {
    g_set_error(error, FTH_TUNE_ERROR, FTH_TUNE_ERROR_INVALID,
                "study \"%s\": no trial completed, nothing to promote",
                fth_tune_study_get_name(study));
    return FALSE;
  }
  g_autofree char *dir = fth_tune_train_trial_dir(c, best->number);
  g_autofree char *params =
    fth_search_space_values_to_json(fth_tune_study_get_space(study), best->params);
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "study");
  json_builder_add_string_value(b, fth_tune_study_get_name(study));
  json_builder_set_member_name(b, "trial");
  json_builder_add_int_value(b, best->number);
  json_builder_set_member_name(b, "val_acc");
  json_builder_add_double_value(b, best->value);
  json_builder_set_member_name(b, "params");
  json_builder_add_value(b, json_from_string(params, NULL));
  json_builder_end_object(b);
  g_autoptr(JsonNode) root = json_builder_get_root(b);
  g_autofree char *summary = json_to_string(root, FALSE);
  /* A finished "train" run holding the best trial's checkpoint: the newest such run is what
   * fth_latest_checkpoint (the project's current model) answers. */
  g_autofree char *name = g_strdup_printf("%s-best", fth_tune_study_get_name(study));
  gint64 id = 0;
  FthArtifact art = { .kind = "checkpoint", .path = dir };
  if (!fth_store_create_run(c->store, "train", name, summary, &id, error))
    return FALSE;
  art.run_id = id;
  if (!fth_store_set_run_summary(c->store, id, summary, error) ||
      !fth_store_add_artifact(c->store, &art, NULL, error) ||
      !fth_store_set_run_state(c->store, id, FTH_RUN_DONE, error))
    return FALSE;
  if (run_id != NULL)
    *run_id = id;
  return TRUE;
}
