/* Training as a tune objective: each trial trains a recipe with the trial's hyperparameters
 * through fth_train (a run in the store, per-epoch metrics, a checkpoint), reports the
 * validation accuracy after every epoch, and a pruner's "stop" cancels the training. */
#include "fth-tune-private.h"

#include <fathom/train.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

/* fmnist-cnn's layout with the width, dropout and training hyperparameters as parameters; the
 * recipe's own values (width 32, no dropout, SGD lr 0.05 momentum 0.9, batch 64) lie inside. */
static const char CNN_SPACE[] =
  "{\"params\": ["
  "{\"name\": \"lr\", \"type\": \"float\", \"low\": 1e-4, \"high\": 0.3, \"log\": true},"
  "{\"name\": \"weight_decay\", \"type\": \"float\", \"low\": 1e-6, \"high\": 0.01, \"log\": true},"
  "{\"name\": \"batch\", \"type\": \"categorical\", \"choices\": [32, 64, 128]},"
  "{\"name\": \"width\", \"type\": \"int\", \"low\": 16, \"high\": 64, \"step\": 16},"
  "{\"name\": \"dropout\", \"type\": \"float\", \"low\": 0, \"high\": 0.5},"
  "{\"name\": \"label_smoothing\", \"type\": \"float\", \"low\": 0, \"high\": 0.2},"
  "{\"name\": \"optimizer\", \"type\": \"categorical\", \"choices\": [\"sgd\", \"adamw\"]},"
  "{\"name\": \"momentum\", \"type\": \"float\", \"low\": 0, \"high\": 0.99,"
  " \"condition\": {\"parent\": \"optimizer\", \"values\": [\"sgd\"]}}]}";

const char *
fth_tune_train_space_json(const char *recipe, GError **error)
{
  if (g_strcmp0(recipe, "cnn") == 0)
    return CNN_SPACE;
  g_set_error(error, FTH_TUNE_ERROR, FTH_TUNE_ERROR_INVALID,
              "recipe \"%s\": no tuning recipe of that name (cnn)", recipe ? recipe : "");
  return NULL;
}

void
fth_tune_train_config_init(FthTuneTrainConfig *c)
{
  memset(c, 0, sizeof *c);
  c->recipe = "cnn";
  c->epochs = 6;
  c->seed = 1;
}

/* A parameter's value, or FALLBACK when the space does not have it (or it is inactive). */
static double
param_or(FthTuneTrialContext *ctx, const char *name, double fallback)
{
  double v = fth_tune_trial_get_value(ctx, name);
  return isnan(v) ? fallback : v;
}

static const char *
choice_or(FthTuneTrialContext *ctx, const char *name, const char *fallback)
{
  const char *c = fth_tune_trial_get_choice(ctx, name);
  return c != NULL ? c : fallback;
}

static void
add_double(GString *s, const char *member, double v)
{
  char buf[G_ASCII_DTOSTR_BUF_SIZE];
  g_string_append_printf(s, ", \"%s\": %s", member, g_ascii_dtostr(buf, sizeof buf, v));
}

/* The trial's recipe: conv(W)-pool-conv(2W)-pool-[dropout]-fc(4W)-[dropout]-fc(classes). */
static char *
cnn_recipe_json(FthTuneTrialContext *ctx, int epochs)
{
  int width = (int) param_or(ctx, "width", 32);
  double dropout = param_or(ctx, "dropout", 0);
  const char *optimizer = choice_or(ctx, "optimizer", "\"sgd\"");
  gboolean sgd = g_str_equal(optimizer, "\"sgd\"");
  int batch = atoi(choice_or(ctx, "batch", "64"));
  GString *s = g_string_new(NULL);
  g_string_append_printf(
    s,
    "{\"name\": \"cnn-trial-%d\", \"input\": {\"shape\": [1, 28, 28]}, \"layers\": ["
    "{\"type\": \"conv2d\", \"out_channels\": %d, \"kernel\": 3, \"padding\": 1},"
    "{\"type\": \"relu\"}, {\"type\": \"max_pool2d\", \"kernel\": 2},"
    "{\"type\": \"conv2d\", \"out_channels\": %d, \"kernel\": 3, \"padding\": 1},"
    "{\"type\": \"relu\"}, {\"type\": \"max_pool2d\", \"kernel\": 2},"
    "{\"type\": \"flatten\"},",
    fth_tune_trial_get_number(ctx), width, 2 * width);
  char buf[G_ASCII_DTOSTR_BUF_SIZE];
  g_ascii_dtostr(buf, sizeof buf, dropout);
  if (dropout > 0)
    g_string_append_printf(s, "{\"type\": \"dropout\", \"p\": %s},", buf);
  g_string_append_printf(s, "{\"type\": \"linear\", \"out_features\": %d}, {\"type\": \"relu\"},",
                         4 * width);
  if (dropout > 0)
    g_string_append_printf(s, "{\"type\": \"dropout\", \"p\": %s},", buf);
  g_string_append_printf(s,
                         "{\"type\": \"linear\", \"out_features\": \"classes\"}],"
                         " \"train\": {\"optimizer\": %s, \"batch\": %d, \"epochs\": %d",
                         sgd ? "\"sgd\"" : "\"adamw\"", batch, epochs);
  add_double(s, "lr", param_or(ctx, "lr", 0.05));
  add_double(s, "weight_decay", param_or(ctx, "weight_decay", 0));
  add_double(s, "label_smoothing", param_or(ctx, "label_smoothing", 0));
  if (sgd)
    add_double(s, "momentum", param_or(ctx, "momentum", 0.9));
  g_string_append(s, "}}\n");
  return g_string_free(s, FALSE);
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
  g_autofree char *recipe = cnn_recipe_json(ctx, c->epochs);
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
