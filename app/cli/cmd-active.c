/* fathom autolabel, fathom queue, fathom simulate-al: AutoLabel from the command line. */
#include "cli.h"

#include <fathom/active.h>
#include <fathom/recipe.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* Registered in main.c's command table (as cmd-tune.c's command is). */
int fth_cli_autolabel(int argc, char **argv);
int fth_cli_queue(int argc, char **argv);
int fth_cli_simulate_al(int argc, char **argv);

static FthCliProgressMode
progress_mode(gboolean json, gboolean quiet)
{
  return json ? FTH_CLI_PROGRESS_JSON : quiet ? FTH_CLI_PROGRESS_QUIET : FTH_CLI_PROGRESS_AUTO;
}

/* --promote RUN / --reject RUN: bulk review of a pseudo-label run. */
static int
review_pseudo(FthStore *store, gint64 run, gboolean promote, const char *label_name,
              double min_score)
{
  g_autoptr(GError) error = NULL;
  gint64 label_id = 0;
  if (label_name != NULL) {
    g_autoptr(FthLabel) label = fth_store_find_label(store, label_name, &error);
    if (label == NULL)
      return error ? fth_cli_fail_error(error)
                   : fth_cli_fail("%s: no label “%s”", fth_store_get_dir(store), label_name);
    label_id = label->id;
  }
  guint n = 0;
  if (!fth_pseudo_review(store, run, label_id, min_score, promote, &n, &error))
    return fth_cli_fail_error(error);
  printf("%s %u pseudo-labels of run %" G_GINT64_FORMAT ".\n", promote ? "Promoted" : "Rejected",
         n, run);
  return FTH_EXIT_OK;
}

int
fth_cli_autolabel(int argc, char **argv)
{
  char *checkpoint = NULL, *label_name = NULL;
  gboolean json = FALSE, quiet = FALSE, pseudo = FALSE;
  double threshold = 0, min_score = 0;
  int cap = -1;
  gint64 promote = 0, reject = 0;
  const GOptionEntry entries[] = {
    { "checkpoint", 'c', 0, G_OPTION_ARG_FILENAME, &checkpoint,
      "Model checkpoint directory (default: the project's newest)", "DIR" },
    { "pseudo-labels", 0, 0, G_OPTION_ARG_NONE, &pseudo,
      "Then turn confident predictions into pseudo-labels (a run to review)", NULL },
    { "threshold", 0, 0, G_OPTION_ARG_DOUBLE, &threshold,
      "Pseudo-labels: the least top probability (default: the project's, 0.95)", "P" },
    { "cap", 0, 0, G_OPTION_ARG_INT, &cap,
      "Pseudo-labels: at most N per class (default: the project's, 1000; 0: no cap)", "N" },
    { "promote", 0, 0, G_OPTION_ARG_INT64, &promote,
      "Review instead: make the pseudo-labels of RUN human labels", "RUN" },
    { "reject", 0, 0, G_OPTION_ARG_INT64, &reject, "Review instead: delete the pseudo-labels of "
      "RUN", "RUN" },
    { "label", 0, 0, G_OPTION_ARG_STRING, &label_name, "Review: only those of this label",
      "NAME" },
    { "min-score", 0, 0, G_OPTION_ARG_DOUBLE, &min_score, "Review: only those scored at least S",
      "S" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Progress as JSON lines on stdout", NULL },
    { "quiet", 'q', 0, G_OPTION_ARG_NONE, &quiet, "No progress bar", NULL },
    { NULL },
  };
  gboolean parsed = fth_cli_parse_options(
    "autolabel", "DIR [--checkpoint CKPT] [--pseudo-labels] | --promote RUN | --reject RUN",
    "Pre-labels the project in DIR with a trained model.",
    "Every image item gets the model's class probabilities and embedding under a new\n"
    "prediction run; items without a human label also get a model annotation of the top\n"
    "class (author model, that run). Human labels are never changed.\n"
    "--pseudo-labels then marks the confident ones as pseudo-labels under a run of their own;\n"
    "--promote or --reject that run (optionally one --label, --min-score) reviews them in bulk.",
    entries, &argc, &argv);
  g_autofree char *o1 = checkpoint, *o2 = label_name;
  if (!parsed)
    return FTH_EXIT_USAGE;
  if (argc != 2)
    return fth_cli_usage_error("autolabel", argc < 2 ? "missing DIR" : "too many arguments");
  if (promote > 0 && reject > 0)
    return fth_cli_usage_error("autolabel", "--promote and --reject exclude each other");
  if (threshold < 0 || threshold > 1)
    return fth_cli_usage_error("autolabel", "--threshold must be in (0, 1]");
  g_autoptr(FthStore) store = fth_cli_open_store(argv[1]);
  if (store == NULL)
    return FTH_EXIT_FAILURE;
  if (promote > 0 || reject > 0)
    return review_pseudo(store, promote > 0 ? promote : reject, promote > 0, label_name,
                         min_score);
  g_autoptr(GError) error = NULL;
  FthActiveSettings settings;
  if (!fth_active_settings_load(store, &settings, &error))
    return fth_cli_fail_error(error);
  g_autofree char *ckpt = checkpoint ? g_strdup(checkpoint)
                                     : fth_active_latest_checkpoint(store, &error);
  if (ckpt == NULL)
    return fth_cli_fail_error(error);
  g_autoptr(FthJob) job = fth_prelabel_job_new(store, ckpt);
  FthJobState state = fth_cli_run_job(job, progress_mode(json, quiet));
  if (state == FTH_JOB_STATE_CANCELLED)
    return FTH_EXIT_CANCELLED;
  if (state != FTH_JOB_STATE_SUCCEEDED)
    return FTH_EXIT_FAILURE; /* the job's error was printed with its events */
  if (!pseudo)
    return FTH_EXIT_OK;
  gint64 run = 0;
  guint n = 0;
  if (!fth_pseudo_label(store, 0, threshold > 0 ? threshold : settings.pseudo_threshold,
                        cap >= 0 ? (guint)cap : settings.pseudo_cap, &run, &n, &error))
    return fth_cli_fail_error(error);
  if (json)
    printf("{\"pseudo_label_run\":%" G_GINT64_FORMAT ",\"pseudo_labels\":%u}\n", run, n);
  else
    printf("%u pseudo-labels in run %" G_GINT64_FORMAT " (review: fathom autolabel %s --promote "
           "%" G_GINT64_FORMAT " or --reject %" G_GINT64_FORMAT ").\n", n, run, argv[1], run, run);
  return FTH_EXIT_OK;
}

/* The checkpoint a prediction run was made with (its config), for BALD's head passes. */
static char *
run_checkpoint(FthStore *store, gint64 run_id, GError **error)
{
  g_autoptr(FthRun) run = fth_store_get_run(store, run_id, error);
  if (run == NULL)
    return NULL;
  if (run->config_json != NULL) {
    g_autoptr(JsonParser) p = json_parser_new();
    if (json_parser_load_from_data(p, run->config_json, -1, NULL)) {
      JsonNode *root = json_parser_get_root(p);
      if (JSON_NODE_HOLDS_OBJECT(root)) {
        const char *c = json_object_get_string_member_with_default(json_node_get_object(root),
                                                                   "checkpoint", NULL);
        if (c != NULL)
          return g_strdup(c);
      }
    }
  }
  return fth_active_latest_checkpoint(store, error);
}

static int
queue_show(FthStore *store, const char *strategy, int limit, gboolean json)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) q = fth_store_list_queue(store, strategy, (guint)limit, &error);
  if (q == NULL)
    return fth_cli_fail_error(error);
  if (!json)
    printf("%-5s %-9s %-10s %s\n", "rank", "item", "score", "path / why");
  for (guint i = 0; i < q->len; i++) {
    const FthQueueEntry *e = q->pdata[i];
    g_autoptr(FthItemRecord) item = fth_store_get_item(store, e->item_id, NULL);
    g_autofree char *reason = fth_queue_entry_reason(e);
    const char *path = item ? item->path : "(deleted)";
    if (json) {
      g_autoptr(JsonBuilder) b = json_builder_new();
      json_builder_begin_object(b);
      json_builder_set_member_name(b, "rank");
      json_builder_add_int_value(b, e->rank);
      json_builder_set_member_name(b, "item");
      json_builder_add_int_value(b, e->item_id);
      json_builder_set_member_name(b, "path");
      json_builder_add_string_value(b, path);
      json_builder_set_member_name(b, "member");
      json_builder_add_int_value(b, item ? item->member : -1);
      json_builder_set_member_name(b, "strategy");
      json_builder_add_string_value(b, e->strategy);
      json_builder_set_member_name(b, "score");
      json_builder_add_double_value(b, e->score);
      json_builder_set_member_name(b, "run");
      json_builder_add_int_value(b, e->run_id);
      json_builder_end_object(b);
      g_autoptr(JsonNode) root = json_builder_get_root(b);
      g_autofree char *line = json_to_string(root, FALSE);
      printf("%s\n", line);
    } else if (item != NULL && item->member >= 0) {
      printf("%-5" G_GINT64_FORMAT " %-9" G_GINT64_FORMAT " %-10.4g %s#%" G_GINT64_FORMAT
             "  (%s)\n", e->rank + 1, e->item_id, e->score, path, item->member, reason);
    } else {
      printf("%-5" G_GINT64_FORMAT " %-9" G_GINT64_FORMAT " %-10.4g %s  (%s)\n", e->rank + 1,
             e->item_id, e->score, path, reason);
    }
  }
  if (!json && q->len == 0)
    fprintf(stderr, "The %s queue is empty (fathom queue DIR refill).\n", strategy);
  return FTH_EXIT_OK;
}

int
fth_cli_queue(int argc, char **argv)
{
  char *strategy_name = NULL, *checkpoint = NULL;
  int batch = 0, limit = 20, passes = 10;
  gint64 run = 0, seed = 1;
  gboolean json = FALSE;
  const GOptionEntry entries[] = {
    { "strategy", 's', 0, G_OPTION_ARG_STRING, &strategy_name,
      "random, least-confidence, margin, entropy, bald, coreset or hybrid (default: the "
      "project's)", "S" },
    { "batch", 'n', 0, G_OPTION_ARG_INT, &batch, "Queue length after a refill (default: the "
      "project's, 100)", "N" },
    { "run", 0, 0, G_OPTION_ARG_INT64, &run, "Prediction run to score (default: the newest)",
      "ID" },
    { "seed", 0, 0, G_OPTION_ARG_INT64, &seed, "Seed of random and hybrid (1)", "N" },
    { "checkpoint", 'c', 0, G_OPTION_ARG_FILENAME, &checkpoint,
      "bald: the model for the dropout passes (default: the run's)", "DIR" },
    { "passes", 0, 0, G_OPTION_ARG_INT, &passes, "bald: Monte-Carlo dropout passes (10)", "T" },
    { "limit", 0, 0, G_OPTION_ARG_INT, &limit, "show: at most N entries (20, 0: all)", "N" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "show: one JSON object per line", NULL },
    { NULL },
  };
  gboolean parsed = fth_cli_parse_options(
    "queue", "DIR show|refill [--strategy S] [--batch N]",
    "Shows or refills the labeling queue of the project in DIR.",
    "refill scores the unlabeled train items with the strategy from the newest predictions\n"
    "(fathom autolabel) and stores the strategy and batch as the project's settings.\n"
    "show lists the queue in the order it is asked, with each item's score.",
    entries, &argc, &argv);
  g_autofree char *o1 = strategy_name, *o2 = checkpoint;
  if (!parsed)
    return FTH_EXIT_USAGE;
  if (argc != 3)
    return fth_cli_usage_error("queue", argc < 3 ? "missing DIR or action (show, refill)"
                                                 : "too many arguments");
  const char *action = argv[2];
  if (strcmp(action, "show") != 0 && strcmp(action, "refill") != 0)
    return fth_cli_usage_error("queue", "unknown action “%s” (show or refill)", action);
  if (batch < 0 || limit < 0 || passes < 2)
    return fth_cli_usage_error("queue", "--batch and --limit must be positive, --passes at "
                                        "least 2");
  g_autoptr(GError) error = NULL;
  FthAcquisition strategy = FTH_ACQ_ENTROPY;
  if (strategy_name != NULL && !fth_acquisition_from_name(strategy_name, &strategy, &error))
    return fth_cli_usage_error("queue", "%s", error->message);
  g_autoptr(FthStore) store = fth_cli_open_store(argv[1]);
  if (store == NULL)
    return FTH_EXIT_FAILURE;
  FthActiveSettings settings;
  if (!fth_active_settings_load(store, &settings, &error))
    return fth_cli_fail_error(error);
  if (strategy_name != NULL)
    settings.strategy = strategy;
  if (strcmp(action, "show") == 0)
    return queue_show(store, fth_acquisition_name(settings.strategy), limit, json);

  if (batch > 0)
    settings.batch = (guint)batch;
  if (!fth_active_settings_save(store, &settings, &error))
    return fth_cli_fail_error(error);
  FthAcqOptions opt;
  fth_acq_options_init(&opt);
  opt.strategy = settings.strategy;
  opt.batch = settings.batch;
  opt.seed = (uint64_t)seed;
  size_t n = 0;
  if (settings.strategy == FTH_ACQ_BALD) {
    g_autoptr(FthActivePool) pool = fth_active_pool_load(store, run, TRUE, TRUE, &error);
    if (pool == NULL)
      return fth_cli_fail_error(error);
    if (pool->emb == NULL || pool->dim == 0)
      return fth_cli_fail("%s: run %" G_GINT64_FORMAT " stored no embeddings for bald's passes",
                          argv[1], pool->run_id);
    g_autofree char *ckpt = checkpoint ? g_strdup(checkpoint)
                                       : run_checkpoint(store, pool->run_id, &error);
    if (ckpt == NULL)
      return fth_cli_fail_error(error);
    g_autofree float *mc = g_new(float, (size_t)passes * pool->n * (size_t)pool->n_classes + 1);
    if (!fth_active_checkpoint_mc(ckpt, pool->emb, pool->n, pool->dim, pool->n_classes, passes,
                                  0.5f, opt.seed, mc, &error) ||
        !fth_queue_refill_pool(store, pool, mc, passes, &opt, &n, &error))
      return fth_cli_fail_error(error);
  } else if (!fth_queue_refill(store, run, &opt, &n, &error)) {
    return fth_cli_fail_error(error);
  }
  printf("Queued %zu items by %s.\n", n, fth_acquisition_name(settings.strategy));
  return FTH_EXIT_OK;
}

typedef struct {
  gboolean json;
  FthStore *store;
  gint64 run_id;
  const char *strategy;
} SimPrint;

static void
sim_round(const FthAlRound *r, gpointer data)
{
  SimPrint *sp = data;
  if (sp->json)
    printf("{\"round\":%u,\"labels\":%zu,\"pseudo_labels\":%zu,\"accuracy\":%.4f,"
           "\"fit_s\":%.3f,\"score_s\":%.3f}\n", r->round, r->n_labels, r->n_pseudo, r->accuracy,
           r->fit_s, r->score_s);
  else
    printf("%-6u %-8zu %-7zu %-9.4f %-8.2f %.2f\n", r->round, r->n_labels, r->n_pseudo,
           r->accuracy, r->fit_s, r->score_s);
  fflush(stdout);
  /* The learning curve goes into the store as well: test_acc at step = labels. */
  fth_store_add_metric(sp->store, sp->run_id, (gint64)r->n_labels, r->round, "test_acc",
                       r->accuracy, NULL);
}

int
fth_cli_simulate_al(int argc, char **argv)
{
  char *strategy_name = NULL, *recipe = NULL;
  gint64 seed = 1;
  int start = 100, batch = 100, rounds = 10, min_steps = 100, passes = 10;
  double pseudo = 0, pseudo_weight = 0.5;
  gboolean json = FALSE;
  const GOptionEntry entries[] = {
    { "strategy", 's', 0, G_OPTION_ARG_STRING, &strategy_name,
      "random, least-confidence, margin, entropy (default), bald, coreset or hybrid", "S" },
    { "seed", 0, 0, G_OPTION_ARG_INT64, &seed, "Seed of the start set, the model and random (1)",
      "N" },
    { "start", 0, 0, G_OPTION_ARG_INT, &start, "Random labels to start with (100)", "N" },
    { "batch", 'n', 0, G_OPTION_ARG_INT, &batch, "Labels revealed per round (100)", "N" },
    { "rounds", 'r', 0, G_OPTION_ARG_INT, &rounds, "Rounds (10)", "R" },
    { "recipe", 0, 0, G_OPTION_ARG_STRING, &recipe, "Model recipe (fmnist-cnn)", "NAME" },
    { "min-steps", 0, 0, G_OPTION_ARG_INT, &min_steps, "Optimizer steps per fine-tune (100)",
      "N" },
    { "passes", 0, 0, G_OPTION_ARG_INT, &passes, "bald: Monte-Carlo dropout passes (10)", "T" },
    { "pseudo-threshold", 0, 0, G_OPTION_ARG_DOUBLE, &pseudo,
      "Self-training: also fit confident predictions (>= this) as pseudo-labels (off)", "P" },
    { "pseudo-weight", 0, 0, G_OPTION_ARG_DOUBLE, &pseudo_weight,
      "The pseudo-labels' weight in the loss, human labels 1 (0.5)", "W" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "One JSON object per round on stdout", NULL },
    { NULL },
  };
  gboolean parsed = fth_cli_parse_options(
    "simulate-al", "DIR [--strategy S] [--seed N] [--start 100] [--batch 100] [--rounds R]",
    "Simulates active learning on the labeled project in DIR.",
    "The human labels of the train (and unsplit) items are hidden and revealed as the\n"
    "strategy asks; the test items measure the model after every round. Nothing in the\n"
    "project changes but a run of kind simulate-al with the accuracy per label count.",
    entries, &argc, &argv);
  g_autofree char *o1 = strategy_name, *o2 = recipe;
  if (!parsed)
    return FTH_EXIT_USAGE;
  if (argc != 2)
    return fth_cli_usage_error("simulate-al", argc < 2 ? "missing DIR" : "too many arguments");
  if (start < 1 || batch < 1 || rounds < 0 || min_steps < 1 || passes < 2 || pseudo < 0 ||
      pseudo > 1 || !(pseudo_weight >= 0 && pseudo_weight <= 1))
    return fth_cli_usage_error("simulate-al", "--start, --batch and --min-steps must be "
                                              "positive, --passes at least 2, "
                                              "--pseudo-threshold and --pseudo-weight in [0, 1]");
  g_autoptr(GError) error = NULL;
  FthAcquisition strategy = FTH_ACQ_ENTROPY;
  if (strategy_name != NULL && !fth_acquisition_from_name(strategy_name, &strategy, &error))
    return fth_cli_usage_error("simulate-al", "%s", error->message);
  g_autoptr(FthStore) store = fth_cli_open_store(argv[1]);
  if (store == NULL)
    return FTH_EXIT_FAILURE;
  /* The recipe decides the channels the images are decoded to. */
  g_autofree char *recipe_path = fth_recipe_find(recipe ? recipe : "fmnist-cnn");
  if (recipe_path == NULL)
    return fth_cli_fail("%s: no such recipe file or model in the zoo", recipe);
  g_autoptr(FthRecipe) r = fth_recipe_load(recipe_path, NULL, &error);
  if (r == NULL)
    return fth_cli_fail_error(error);
  int channels = r->in_ndim == 3 ? (int)r->in_shape[0] : 1;
  g_autoptr(FthDataset) ds = fth_dataset_open(store, FTH_DATASET_LABELED, channels, NULL, &error);
  if (ds == NULL)
    return fth_cli_fail_error(error);
  size_t n = fth_dataset_size(ds);
  int n_classes = fth_dataset_n_classes(ds);
  g_autofree FthSplit *split = g_new(FthSplit, n ? n : 1);
  gboolean has_test = FALSE;
  for (size_t i = 0; i < n; i++) {
    split[i] = fth_dataset_split(ds, i);
    has_test |= split[i] == FTH_SPLIT_TEST;
  }
  if (!has_test) {
    /* No test split stored: hold out a stratified 10% here (the project is not changed). */
    g_autofree int32_t *y = g_new(int32_t, n ? n : 1);
    for (size_t i = 0; i < n; i++)
      y[i] = fth_dataset_label(ds, i);
    if (!fth_stratified_split(y, n, n_classes, 0.0, 0.1, (uint64_t)seed, split, &error))
      return fth_cli_fail_error(error);
  }
  /* Samples: the pool (train and unsplit items) first, then the test items. */
  FthSamples all;
  fth_dataset_samples(ds, &all);
  size_t per = (size_t)all.channels * (size_t)all.height * (size_t)all.width;
  g_autofree guint8 *pixels = g_new(guint8, n * per + 1);
  g_autofree int32_t *labels = g_new(int32_t, n + 1);
  g_autofree uint32_t *test = g_new(uint32_t, n + 1);
  size_t n_pool = 0, n_test = 0;
  for (int pass = 0; pass < 2; pass++)
    for (size_t i = 0; i < n; i++) {
      gboolean is_test = split[i] == FTH_SPLIT_TEST;
      if (split[i] == FTH_SPLIT_VAL || is_test != (pass == 1))
        continue;
      size_t k = n_pool + n_test;
      memcpy(pixels + k * per, fth_dataset_pixels(ds, i), per);
      labels[k] = fth_dataset_label(ds, i);
      if (is_test)
        test[n_test++] = (uint32_t)k;
      else
        n_pool++;
    }
  if (n_pool < (size_t)start || n_test == 0)
    return fth_cli_fail("%s: %zu labeled pool items and %zu test items: not enough for a start "
                        "set of %d and a test set", argv[1], n_pool, n_test, start);
  FthSamples samples = {pixels, labels, NULL, n_pool + n_test, all.channels, all.height,
                        all.width};
  FthActiveTrainerOptions to;
  fth_active_trainer_options_init(&to);
  if (recipe != NULL)
    to.recipe = recipe;
  to.seed = (uint64_t)seed;
  to.min_steps = min_steps;
  g_autoptr(FthActiveTrainer) at = fth_active_trainer_new(&samples, test, n_test, n_classes, &to,
                                                          &error);
  if (at == NULL)
    return fth_cli_fail_error(error);
  g_autofree char *config = g_strdup_printf(
    "{\"strategy\": \"%s\", \"seed\": %" G_GINT64_FORMAT ", \"start\": %d, \"batch\": %d, "
    "\"rounds\": %d, \"pool\": %zu, \"test\": %zu}", fth_acquisition_name(strategy), seed, start,
    batch, rounds, n_pool, n_test);
  SimPrint sp = {json, store, 0, fth_acquisition_name(strategy)};
  if (!fth_store_create_run(store, "simulate-al", fth_acquisition_name(strategy), config,
                            &sp.run_id, &error) ||
      !fth_store_set_run_state(store, sp.run_id, FTH_RUN_RUNNING, &error))
    return fth_cli_fail_error(error);
  FthAlModel model = fth_active_trainer_model(at);
  FthAlOptions opt;
  fth_al_options_init(&opt);
  opt.acq.strategy = strategy;
  opt.acq.seed = (uint64_t)seed;
  opt.acq.batch = (size_t)batch;
  opt.start = (size_t)start;
  opt.rounds = (guint)rounds;
  opt.mc_passes = passes;
  opt.pseudo_threshold = pseudo;
  opt.pseudo_weight = (float)pseudo_weight;
  opt.on_round = sim_round;
  opt.on_round_data = &sp;
  if (!json) {
    printf("# %s, pool %zu, test %zu, seed %" G_GINT64_FORMAT "\n", sp.strategy, n_pool, n_test,
           seed);
    printf("%-6s %-8s %-7s %-9s %-8s %s\n", "round", "labels", "pseudo", "accuracy", "fit_s",
           "score_s");
  }
  g_autoptr(GArray) res = g_array_new(FALSE, FALSE, sizeof(FthAlRound));
  gboolean ok = fth_al_simulate(&model, at, labels, n_pool, &opt, res, &error);
  fth_store_set_run_state(store, sp.run_id, ok ? FTH_RUN_DONE : FTH_RUN_FAILED, NULL);
  if (!ok)
    return fth_cli_fail_error(error);
  return FTH_EXIT_OK;
}
