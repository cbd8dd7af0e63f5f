/* bench-tune-train: a 30-trial study training the cnn recipe on a Fashion-MNIST subset (the
 * first N training images as project items; the trainer's stratified 80/10/10 split), against
 * one run of fmnist-cnn with its own hyperparameters on the same items, epochs and seed.
 * Prints the best validation accuracy of each and the epochs the study used against running
 * every trial to the end. Exits 77 without Debian's dataset-fashion-mnist.
 * Usage: bench-tune-train [--items N] [--trials N] [--epochs N] [--pruner P] [--sampler S] DIR */
#include <fathom/media.h>
#include <fathom/train.h>
#include <fathom/tune.h>
#include <math.h>
#include <stdio.h>

#define FMNIST "/usr/share/datasets/fashion-mnist"

static FthStore *
make_project(const char *dir, int n_items, GError **error)
{
  const char *images = FMNIST "/train-images-idx3-ubyte.gz";
  g_autoptr(FthStore) store = fth_store_create(dir, error);
  g_autoptr(FthIdx) img = store ? fth_idx_open(images, error) : NULL;
  g_autoptr(FthIdx) lab = img ? fth_idx_open(FMNIST "/train-labels-idx1-ubyte.gz", error) : NULL;
  if (lab == NULL)
    return NULL;
  gint64 label_ids[10];
  for (int k = 0; k < 10; k++) {
    g_autofree char *name = g_strdup_printf("class-%d", k);
    if (!fth_store_add_label(store, name, NULL, NULL, FTH_LABEL_CLASS, &label_ids[k], error))
      return NULL;
  }
  if (!fth_store_begin(store, error))
    return NULL;
  for (int i = 0; i < n_items; i++) {
    g_autoptr(FthItemRecord) it = fth_item_record_new();
    it->kind = FTH_ITEM_IMAGE;
    it->path = g_strdup(images);
    it->member = i;
    g_autoptr(GChecksum) sum = g_checksum_new(G_CHECKSUM_SHA256);
    g_checksum_update(sum, fth_idx_get_record(img, (gsize) i), 784);
    g_checksum_update(sum, (const guchar *) &i, sizeof i);
    it->sha256 = g_strdup(g_checksum_get_string(sum));
    it->width = it->height = 28;
    gint64 id;
    if (!fth_store_add_item(store, it, &id, NULL, error) ||
        !fth_store_set_class(store, id, label_ids[fth_idx_get_record(lab, (gsize) i)[0]],
                             FTH_AUTHOR_HUMAN, 0, 1.0, NULL, error))
      return NULL;
  }
  if (!fth_store_commit(store, error))
    return NULL;
  return g_steal_pointer(&store);
}

typedef struct {
  double best_val_acc;
} Baseline;

static void
on_baseline_progress(const FthTrainProgress *p, gpointer data)
{
  Baseline *b = data;
  if (p->epoch_end && p->val_acc > b->best_val_acc)
    b->best_val_acc = p->val_acc;
}

static void
on_trial(FthTuneStudy *study, FthTuneEventKind kind, const FthTuneTrial *t, gpointer data)
{
  if (kind != FTH_TUNE_EVENT_TRIAL_FINISHED)
    return;
  g_autofree char *params =
    fth_search_space_values_to_json(fth_tune_study_get_space(study), t->params);
  fprintf(stderr, "# trial %2d %-8s %u epochs, val acc %.4f  %s\n", t->number,
          fth_tune_trial_state_to_string(t->state), t->n_steps,
          t->n_steps > 0 ? t->step_values[t->n_steps - 1] : NAN, params);
}

int
main(int argc, char **argv)
{
  int n_items = 3000, trials = 30, epochs = 6;
  g_autofree char *pruner_name = NULL, *sampler_name = NULL;
  const GOptionEntry entries[] = {
    { "items", 0, 0, G_OPTION_ARG_INT, &n_items, "project items (3000)", "N" },
    { "trials", 0, 0, G_OPTION_ARG_INT, &trials, "study budget (30)", "N" },
    { "epochs", 0, 0, G_OPTION_ARG_INT, &epochs, "epochs per trial and baseline (6)", "N" },
    { "pruner", 0, 0, G_OPTION_ARG_STRING, &pruner_name, "pruner (hyperband)", "NAME" },
    { "sampler", 0, 0, G_OPTION_ARG_STRING, &sampler_name, "sampler (tpe)", "NAME" },
    { NULL, 0, 0, 0, NULL, NULL, NULL },
  };
  g_autoptr(GOptionContext) octx = g_option_context_new("DIR - tune the cnn recipe");
  g_option_context_add_main_entries(octx, entries, NULL);
  g_autoptr(GError) error = NULL;
  if (!g_option_context_parse(octx, &argc, &argv, &error) || argc != 2) {
    fprintf(stderr, "bench-tune-train: %s\n", error ? error->message : "give the project DIR");
    return 2;
  }
  if (!g_file_test(FMNIST "/train-images-idx3-ubyte.gz", G_FILE_TEST_EXISTS)) {
    fprintf(stderr, "bench-tune-train: %s missing (dataset-fashion-mnist)\n", FMNIST);
    return 77;
  }
  g_autoptr(FthStore) store = make_project(argv[1], n_items, &error);
  if (store == NULL) {
    fprintf(stderr, "bench-tune-train: %s\n", error->message);
    return 1;
  }

  /* The baseline: fmnist-cnn as its recipe says, the same items, epochs and seed. */
  Baseline base = { 0 };
  FthTrainOptions o;
  fth_train_options_init(&o);
  o.recipe = "fmnist-cnn";
  o.epochs = epochs;
  o.progress = on_baseline_progress;
  o.progress_data = &base;
  FthTrainResult result = { 0 };
  gint64 t0 = g_get_monotonic_time();
  if (!fth_train(store, &o, &result, &error)) {
    fprintf(stderr, "bench-tune-train: baseline: %s\n", error->message);
    return 1;
  }
  double base_s = (g_get_monotonic_time() - t0) / 1e6;
  fprintf(stderr, "# baseline fmnist-cnn: val acc %.4f (last %.4f), %.1f s\n",
          base.best_val_acc, result.val_acc, base_s);
  fth_train_result_clear(&result);

  g_autoptr(FthSearchSpace) space =
    fth_search_space_new_from_json(fth_tune_train_space_json("cnn", NULL), -1, "cnn", NULL);
  g_autoptr(FthSampler) sampler =
    fth_sampler_new_by_name(sampler_name ? sampler_name : "tpe", 1, &error);
  g_autoptr(FthPruner) pruner =
    fth_pruner_new_by_name(pruner_name ? pruner_name : "hyperband", epochs, &error);
  if (sampler == NULL || error != NULL) {
    fprintf(stderr, "bench-tune-train: %s\n", error->message);
    return 2;
  }
  g_autoptr(FthTuneStudy) study = fth_tune_study_new("cnn", space, sampler, pruner, TRUE);
  FthTuneTrainConfig c;
  fth_tune_train_config_init(&c);
  c.store = store;
  c.study_name = "cnn";
  c.epochs = epochs;
  fth_tune_study_set_event_func(study, on_trial, NULL);
  if (!fth_tune_study_open_store(study, store, 0, &error) ||
      !fth_tune_study_optimize(study, trials, 1, fth_tune_train_objective, &c, NULL, &error) ||
      !fth_tune_train_promote(study, &c, NULL, &error)) {
    fprintf(stderr, "bench-tune-train: %s\n", error->message);
    return 1;
  }
  double study_s = (g_get_monotonic_time() - t0) / 1e6 - base_s;
  const FthTuneTrial *best = fth_tune_study_get_best_trial(study);
  guint n_complete = 0, n_pruned = 0;
  for (guint i = 0; i < fth_tune_study_get_n_trials(study); i++) {
    FthTuneTrialState st = fth_tune_study_get_trial(study, i)->state;
    n_complete += st == FTH_TUNE_TRIAL_COMPLETE;
    n_pruned += st == FTH_TUNE_TRIAL_PRUNED;
  }
  g_autofree char *params = fth_search_space_values_to_json(space, best->params);
  g_autofree char *current = fth_latest_checkpoint(store, NULL);
  printf("| | best validation accuracy | epochs | wall s |\n|---|---|---|---|\n");
  printf("| fmnist-cnn defaults, 1 run | %.4f | %d | %.0f |\n", base.best_val_acc, epochs, base_s);
  printf("| %s/%s study, %d trials (%u complete, %u pruned) | %.4f | %" G_GINT64_FORMAT
         " of %d | %.0f |\n",
         fth_sampler_get_name(sampler), fth_pruner_get_name(pruner), trials, n_complete, n_pruned,
         best->value, fth_tune_study_get_steps_used(study), trials * epochs, study_s);
  printf("\nbest: trial %d %s\ncurrent model: %s\n", best->number, params, current);
  return 0;
}
