/* Training as the tune objective on a few hundred Fashion-MNIST images: each trial trains the
 * recipe its parameters describe, reports per epoch, keeps its best epoch's checkpoint and a
 * run; the best trial becomes the current model; cancelling the study cancels the training. Skipped (77) without
 * Debian's dataset-fashion-mnist. */
#include <fathom/recipe.h>
#include <fathom/train.h>
#include <fathom/tune.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

#include "fth-test-project.h"

enum { N_ITEMS = 300, EPOCHS = 2 };

static char *tmp_root;
static char *project;

/* Part of the cnn space: what is left out keeps the recipe's value (no dropout, width 32). */
static const char SPACE[] =
  "{\"params\": ["
  "{\"name\": \"lr\", \"type\": \"float\", \"low\": 0.01, \"high\": 0.1, \"log\": true},"
  "{\"name\": \"batch\", \"type\": \"categorical\", \"choices\": [32, 64]},"
  "{\"name\": \"optimizer\", \"type\": \"categorical\", \"choices\": [\"sgd\", \"adamw\"]},"
  "{\"name\": \"momentum\", \"type\": \"float\", \"low\": 0, \"high\": 0.9,"
  " \"condition\": {\"parent\": \"optimizer\", \"values\": [\"sgd\"]}}]}";

static void
test_trials_train(void)
{
  GError *error = NULL;
  g_autoptr(FthStore) store = fth_store_open(project, &error);
  g_assert_no_error(error);
  g_autoptr(FthSearchSpace) space = fth_search_space_new_from_json(SPACE, -1, NULL, &error);
  g_assert_no_error(error);
  g_autoptr(FthSampler) sampler = fth_sampler_new_random(4);
  g_autoptr(FthTuneStudy) study = fth_tune_study_new("t", space, sampler, NULL, TRUE);
  g_assert_true(fth_tune_study_open_store(study, store, 0, &error));
  FthTuneTrainConfig c;
  fth_tune_train_config_init(&c);
  c.store = store;
  c.study_name = "t";
  c.epochs = EPOCHS;
  g_assert_true(fth_tune_study_optimize(study, 2, 1, fth_tune_train_objective, &c, NULL, &error));
  g_assert_no_error(error);

  for (guint i = 0; i < 2; i++) {
    const FthTuneTrial *t = fth_tune_study_get_trial(study, i);
    g_assert_cmpint(t->state, ==, FTH_TUNE_TRIAL_COMPLETE);
    g_assert_cmpuint(t->n_steps, ==, EPOCHS);
    g_assert_cmpint(t->steps[EPOCHS - 1], ==, EPOCHS);
    g_assert_cmpfloat(t->value, ==, MAX(t->step_values[0], t->step_values[1]));
    g_assert_true(t->value > 0 && t->value <= 1);
    /* The trial trained the recipe its parameters describe. */
    g_autofree char *dir = fth_tune_train_trial_dir(&c, t->number);
    g_autofree char *recipe_path = g_strconcat(dir, ".json", NULL);
    g_autoptr(FthRecipe) recipe = fth_recipe_load(recipe_path, NULL, &error);
    g_assert_no_error(error);
    g_assert_cmpint(recipe->layers[0].out, ==, 32);
    for (int k = 0; k < recipe->n_layers; k++)
      g_assert_cmpint(recipe->layers[k].kind, !=, FTH_LAYER_DROPOUT);
    g_assert_cmpfloat(recipe->train.optim.lr, ==, (float) t->params[0]);
    g_assert_cmpint(recipe->train.batch, ==, t->params[1] == 0 ? 32 : 64);
    g_assert_cmpint(recipe->train.optim.kind, ==, t->params[2] == 0 ? FTH_OPTIM_SGD : FTH_OPTIM_ADAMW);
    if (t->params[2] == 0)
      g_assert_cmpfloat(recipe->train.optim.momentum, ==, (float) t->params[3]);
    else
      g_assert_true(isnan(t->params[3]));
    /* The trial folder keeps the best epoch's checkpoint, "last" the latest one. */
    g_autoptr(FthCheckpointMeta) meta = fth_checkpoint_load_meta(dir, &error);
    g_assert_no_error(error);
    g_assert_cmpint(meta->epoch, ==, t->step_values[0] >= t->step_values[1] ? 1 : 2);
    g_autoptr(JsonNode) metrics = json_from_string(meta->metrics_json, &error);
    g_assert_no_error(error);
    g_assert_cmpfloat_with_epsilon(
      json_object_get_double_member(json_node_get_object(metrics), "val_acc"), t->value, 1e-9);
    g_autofree char *last_dir = g_build_filename(dir, "last", NULL);
    g_autoptr(FthCheckpointMeta) last = fth_checkpoint_load_meta(last_dir, &error);
    g_assert_no_error(error);
    g_assert_cmpint(last->epoch, ==, EPOCHS);
    g_autofree char *weights = g_build_filename(dir, meta->weights_file, NULL);
    g_assert_true(g_file_test(weights, G_FILE_TEST_IS_REGULAR));
  }
  g_autoptr(GPtrArray) runs = fth_store_list_runs(store, "train", &error);
  g_assert_cmpuint(runs->len, ==, 2);

  /* The best trial's checkpoint becomes the project's current model. */
  gint64 run_id = 0;
  g_assert_true(fth_tune_train_promote(study, &c, &run_id, &error));
  g_assert_no_error(error);
  g_autofree char *current = fth_latest_checkpoint(store, &error);
  g_assert_no_error(error);
  g_autofree char *best_dir =
    fth_tune_train_trial_dir(&c, fth_tune_study_get_best_trial(study)->number);
  g_assert_cmpstr(current, ==, best_dir);
  g_autoptr(FthRun) promoted = fth_store_get_run(store, run_id, &error);
  g_assert_cmpint(promoted->state, ==, FTH_RUN_DONE);
}

static void
cancel_on_first_report(FthTuneStudy *study, FthTuneEventKind kind, const FthTuneTrial *t,
                       gpointer data)
{
  if (kind == FTH_TUNE_EVENT_TRIAL_REPORTED)
    g_cancellable_cancel(data);
}

static void
test_cancel_stops_training(void)
{
  GError *error = NULL;
  g_autoptr(FthStore) store = fth_store_open(project, &error);
  g_assert_no_error(error);
  g_autoptr(FthSearchSpace) space =
    fth_search_space_new_from_json(fth_tune_train_space_json("cnn", NULL), -1, "cnn", &error);
  g_assert_no_error(error);
  g_autoptr(FthSampler) sampler = fth_sampler_new_random(1);
  g_autoptr(FthTuneStudy) study = fth_tune_study_new("c", space, sampler, NULL, TRUE);
  g_autoptr(GCancellable) cancellable = g_cancellable_new();
  fth_tune_study_set_event_func(study, cancel_on_first_report, cancellable);
  FthTuneTrainConfig c;
  fth_tune_train_config_init(&c);
  c.store = store;
  c.study_name = "c";
  c.epochs = 4;
  c.cancellable = cancellable;
  g_assert_true(
    fth_tune_study_optimize(study, 3, 1, fth_tune_train_objective, &c, cancellable, &error));
  g_assert_no_error(error);
  /* The first trial stopped after its first epoch; its training run says cancelled. */
  g_assert_cmpuint(fth_tune_study_get_n_trials(study), ==, 1);
  const FthTuneTrial *t = fth_tune_study_get_trial(study, 0);
  g_assert_cmpint(t->state, ==, FTH_TUNE_TRIAL_FAILED);
  g_assert_cmpstr(t->error, ==, "cancelled");
  g_assert_cmpuint(t->n_steps, ==, 1);
  g_autoptr(GPtrArray) runs = fth_store_list_runs(store, "train", &error);
  const FthRun *newest = g_ptr_array_index(runs, 0);
  g_assert_cmpint(newest->state, ==, FTH_RUN_CANCELLED);

  /* An unknown recipe is refused by name. */
  g_assert_null(fth_tune_train_space_json("transformer", &error));
  g_assert_error(error, FTH_TUNE_ERROR, FTH_TUNE_ERROR_INVALID);
  g_assert_nonnull(strstr(error->message, "transformer"));
  g_clear_error(&error);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  if (!fth_test_have_fmnist())
    return 77;
  tmp_root = g_dir_make_tmp("fth-tune-train-XXXXXX", NULL);
  project = fth_test_fmnist_project_new(tmp_root, N_ITEMS);
  g_test_add_func("/tune/train/trials", test_trials_train);
  g_test_add_func("/tune/train/cancel", test_cancel_stops_training);
  int rc = g_test_run();
  fth_test_rmtree(tmp_root);
  g_free(tmp_root);
  g_free(project);
  return rc;
}
