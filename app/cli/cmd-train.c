/* fathom train, fathom predict, and the training step of fathom demo. */
#include "cli.h"

#include <fathom/train.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

typedef struct {
  FthStore *store;
  FthTrainOptions options;
  FthTrainResult result;
  FthJob *job;
} TrainJob;

static void
train_progress(const FthTrainProgress *p, gpointer data)
{
  TrainJob *tj = data;
  if (p->message != NULL) {
    fth_job_progress(tj->job, p->step, p->total_steps, p->message);
    return;
  }
  if (p->epoch_end) {
    gboolean val = isfinite(p->val_acc);
    FthJobMetric m[6] = {{"epoch", p->epoch + 1},   {"train_loss", p->train_loss},
                         {"train_acc", p->train_acc}, {"images_per_s", p->images_per_s},
                         {"val_loss", p->val_loss},   {"val_acc", p->val_acc}};
    g_autofree char *msg = val
      ? g_strdup_printf("epoch %d/%d: train loss %.4f acc %.2f%%, val loss %.4f acc %.2f%% "
                        "macro-F1 %.4f, %.0f items/s", p->epoch + 1, p->epochs, p->train_loss,
                        100 * p->train_acc, p->val_loss, 100 * p->val_acc, p->val_macro_f1,
                        p->images_per_s)
      : g_strdup_printf("epoch %d/%d: train loss %.4f acc %.2f%%, %.0f items/s", p->epoch + 1,
                        p->epochs, p->train_loss, 100 * p->train_acc, p->images_per_s);
    fth_job_progress_metrics(tj->job, p->step, p->total_steps, msg, m, val ? 6 : 4);
  } else {
    FthJobMetric m[2] = {{"loss", p->loss}, {"lr", p->lr}};
    fth_job_progress_metrics(tj->job, p->step, p->total_steps, NULL, m, 2);
  }
}

static gboolean
run_train(FthJob *job, GCancellable *cancellable, gpointer data, GError **error)
{
  TrainJob *tj = data;
  tj->job = job;
  tj->options.progress = train_progress;
  tj->options.progress_data = tj;
  tj->options.cancellable = cancellable;
  return fth_train(tj->store, &tj->options, &tj->result, error);
}

static void
print_result(const FthTrainResult *r, gboolean json)
{
  if (json) {
    g_autofree char *acc = isfinite(r->test_acc) ? g_strdup_printf("%.6f", r->test_acc)
                                                 : g_strdup("null");
    g_autofree char *f1 = isfinite(r->test_macro_f1) ? g_strdup_printf("%.6f", r->test_macro_f1)
                                                     : g_strdup("null");
    printf("{\"type\":\"report\",\"run\":%" G_GINT64_FORMAT ",\"epochs\":%d,\"steps\":%"
           G_GINT64_FORMAT ",\"batch\":%d,\"stopped\":%s,\"early_stopped\":%s,"
           "\"train_loss\":%.6g,\"test_acc\":%s,\"test_macro_f1\":%s,\"checkpoint\":\"%s\","
           "\"bytes_per_sample\":%zu,\"bytes_per_sample_fp32\":%zu,\"micro_batches\":%d}\n",
           r->run_id, r->epochs_run, (gint64)r->steps, r->batch, r->stopped ? "true" : "false",
           r->early_stopped ? "true" : "false", r->train_loss, acc, f1, r->checkpoint_dir,
           r->bytes_per_sample, r->bytes_per_sample_fp32, r->micro_batches);
    return;
  }
  if (r->stopped) {
    printf("Stopped after step %" G_GINT64_FORMAT "; resume with --resume --checkpoint %s\n",
           (gint64)r->steps, r->checkpoint_dir);
    return;
  }
  g_autofree char *micro = r->micro_batches > 1
    ? g_strdup_printf(" (%d micro-batches of up to %d)", r->micro_batches,
                      (r->batch + r->micro_batches - 1) / r->micro_batches)
    : g_strdup("");
  printf("Run %" G_GINT64_FORMAT ": %d epochs%s, batch %d%s, final train loss %.4f\n", r->run_id,
         r->epochs_run, r->early_stopped ? " (early stop)" : "", r->batch, micro, r->train_loss);
  if (isfinite(r->test_acc))
    printf("Test accuracy %.2f%%, macro-F1 %.4f\n", 100 * r->test_acc, r->test_macro_f1);
  printf("Memory: %.1f KiB per sample (fp32: %.1f KiB)\n", r->bytes_per_sample / 1024.0,
         r->bytes_per_sample_fp32 / 1024.0);
  printf("Checkpoint: %s\n", r->checkpoint_dir);
}

static int
state_to_exit(FthJobState state)
{
  return state == FTH_JOB_STATE_SUCCEEDED   ? FTH_EXIT_OK
         : state == FTH_JOB_STATE_CANCELLED ? FTH_EXIT_CANCELLED
                                            : FTH_EXIT_FAILURE;
}

static const char train_description[] =
  "RECIPE is a model of the zoo (mlp, fmnist-cnn, resnet, mobilenetv2; for text items\n"
  "text-bow, text-cnn, text-transformer, and ner-transformer over span labels: data/recipes)\n"
  "or a recipe file; --set NAME=VALUE overrides its variables (resnet: --set blocks=5; text:\n"
  "--set tokens=128). A text recipe trains a tokenizer on the training split's texts and\n"
  "saves it with the checkpoint as tokenizer.json. audio-cnn trains on audio items: their log-mel\n"
  "features are computed once into DIR/cache.\n"
  "Items keep their split when the project has one; otherwise a stratified split by --seed\n"
  "is made and stored. Metrics per epoch go into the project's runs; the checkpoint\n"
  "(safetensors + checkpoint.json) into DIR/models/train-RUN or --checkpoint.\n"
  "Data parallel: --nproc N (or mpirun -np N) runs N processes, each on its part of every\n"
  "batch of --batch, their gradients summed, so the run equals one process up to float\n"
  "rounding (batch norm normalizes over each process's part; dropout differs). Under mpirun\n"
  "the ranks are joined by MPI when it is built in (--launcher auto), else by the local\n"
  "communicator, which needs all ranks on one machine.";

/* --nproc N: this command again as N worker processes (fathom/parallel.h); rank 0 prints here,
 * and a worker that fails stops the others. */
static int
launch_workers(char **args, int nproc)
{
  g_autofree char *exe = g_file_read_link("/proc/self/exe", NULL);
  g_autoptr(GPtrArray) argv = g_ptr_array_new();
  g_ptr_array_add(argv, exe != NULL ? exe : (char *)"fathom");
  for (int i = 0; args[i] != NULL; i++)
    g_ptr_array_add(argv, args[i]);
  g_ptr_array_add(argv, NULL);
  g_autoptr(GError) error = NULL;
  if (!fth_launch_workers((const char *const *)argv->pdata, nproc, NULL, &error))
    return fth_cli_fail_error(error);
  return FTH_EXIT_OK;
}

int
fth_cli_train(int argc, char **argv)
{
  g_auto(GStrv) args = g_strdupv(argv);   /* as given: the workers get them unchanged */
  int nproc = 0;
  char *launcher = NULL;
  char *recipe = NULL, *checkpoint = NULL, *init = NULL, *device = NULL, *precision = NULL;
  char **vars = NULL;
  int epochs = 0, batch = 0, accumulate = 0, patience = 0, limit = 0;
  gint64 seed = 1, stop_after = 0;
  double lr = 0, val = 0.1, test = 0.1, max_memory = 0, comm_timeout = 0;
  gboolean resume = FALSE, no_augment = FALSE, json = FALSE, quiet = FALSE, bf16 = FALSE;
  const GOptionEntry entries[] = {
    {"recipe", 'r', 0, G_OPTION_ARG_STRING, &recipe, "Model recipe (default: fmnist-cnn)", "RECIPE"},
    {"set", 0, 0, G_OPTION_ARG_STRING_ARRAY, &vars, "Set a recipe variable", "NAME=VALUE"},
    {"epochs", 'e', 0, G_OPTION_ARG_INT, &epochs, "Epochs (default: the recipe's)", "N"},
    {"batch", 'b', 0, G_OPTION_ARG_INT, &batch, "Batch size (default: the recipe's)", "N"},
    {"accumulate", 0, 0, G_OPTION_ARG_INT, &accumulate, "Run each batch as N micro-batches and "
     "sum their gradients (default: the recipe's, 1); running out of memory doubles it", "N"},
    {"lr", 0, 0, G_OPTION_ARG_DOUBLE, &lr, "Learning rate (default: the recipe's)", "X"},
    {"seed", 0, 0, G_OPTION_ARG_INT64, &seed, "Seed of initialization, splits, shuffles (1)", "N"},
    {"val", 0, 0, G_OPTION_ARG_DOUBLE, &val, "Validation fraction for a new split (0.1)", "F"},
    {"test", 0, 0, G_OPTION_ARG_DOUBLE, &test, "Test fraction for a new split (0.1)", "F"},
    {"patience", 0, 0, G_OPTION_ARG_INT, &patience, "Stop after N epochs without a better "
     "validation loss (0: off)", "N"},
    {"max-memory", 0, 0, G_OPTION_ARG_DOUBLE, &max_memory, "Largest batch that fits this "
     "fraction of the available memory (of the GPU's free memory on CUDA; an out-of-memory "
     "failure there halves the batch)", "F"},
    {"device", 0, 0, G_OPTION_ARG_STRING, &device, "Where to train: auto, cpu or cuda[:N] "
     "(default: auto)", "DEV"},
    {"precision", 0, 0, G_OPTION_ARG_STRING, &precision, "fp32, bf16 or fp16 (CUDA only): GEMM and "
     "convolution inputs, fp32 master weights (default: fp32)", "P"},
    {"bf16", 0, 0, G_OPTION_ARG_NONE, &bf16, "The same as --precision bf16", NULL},
    {"nproc", 0, 0, G_OPTION_ARG_INT, &nproc, "Data parallel: N worker processes, each on its part "
     "of every batch (with --device cuda, rank R on cuda:R)", "N"},
    {"launcher", 0, 0, G_OPTION_ARG_STRING, &launcher, "How the data-parallel processes meet: auto "
     "(MPI under mpirun when built in, else the built-in launcher), builtin or mpi", "L"},
    {"comm-timeout", 0, 0, G_OPTION_ARG_DOUBLE, &comm_timeout, "Data parallel: a collective "
     "that waits this long for a rank ends the run, naming it (default: $FATHOM_COMM_TIMEOUT, "
     "else 600)", "SECONDS"},
    {"checkpoint", 'c', 0, G_OPTION_ARG_FILENAME, &checkpoint, "Checkpoint directory", "DIR"},
    {"resume", 0, 0, G_OPTION_ARG_NONE, &resume, "Continue from --checkpoint", NULL},
    {"init-from", 0, 0, G_OPTION_ARG_FILENAME, &init, "Start from the same-named weights of "
     "this .safetensors file (fine-tuning)", "FILE"},
    {"no-augment", 0, 0, G_OPTION_ARG_NONE, &no_augment, "Ignore the recipe's augmentation", NULL},
    {"limit", 0, 0, G_OPTION_ARG_INT, &limit, "Use only the first N training items", "N"},
    {"stop-after", 0, 0, G_OPTION_ARG_INT64, &stop_after, "Checkpoint and stop after N steps",
     "N"},
    {"json", 0, 0, G_OPTION_ARG_NONE, &json, "Progress and the report as JSON lines on stdout",
     NULL},
    {"quiet", 'q', 0, G_OPTION_ARG_NONE, &quiet, "No progress bar", NULL},
    {NULL},
  };
  gboolean parsed = fth_cli_parse_options("train", "DIR", "Trains a model on the labeled images, "
                                          "texts or audio of the project in DIR.", train_description,
                                          entries, &argc, &argv);
  g_autofree char *o1 = recipe, *o2 = checkpoint, *o4 = init, *o5 = device, *o6 = precision;
  g_autofree char *o7 = launcher;
  g_auto(GStrv) o3 = vars;
  if (!parsed)
    return FTH_EXIT_USAGE;
  if (argc != 2)
    return fth_cli_usage_error("train", argc < 2 ? "missing DIR" : "unexpected argument “%s”",
                               argv[argc < 2 ? 0 : 2]);
  if (resume && checkpoint == NULL)
    return fth_cli_usage_error("train", "--resume needs --checkpoint DIR");
  if (epochs < 0 || batch < 0 || accumulate < 0 || patience < 0 || limit < 0 || lr < 0 ||
      max_memory < 0 || max_memory > 1)
    return fth_cli_usage_error("train", "counts, --lr and --max-memory (0..1) must not be negative");
  if (bf16 && precision != NULL && strcmp(precision, "bf16") != 0)
    return fth_cli_usage_error("train", "--bf16 contradicts --precision %s", precision);
  if (nproc < 0)
    return fth_cli_usage_error("train", "--nproc must not be negative");
  if (comm_timeout < 0)
    return fth_cli_usage_error("train", "--comm-timeout must not be negative");
  /* Through the environment: the launcher's workers inherit it. */
  if (comm_timeout > 0) {
    char text[G_ASCII_DTOSTR_BUF_SIZE];
    g_setenv(FTH_ENV_COMM_TIMEOUT, g_ascii_dtostr(text, sizeof text, comm_timeout), TRUE);
  }
  FthLauncher how = FTH_LAUNCHER_AUTO;
  if (g_strcmp0(launcher, "builtin") == 0)
    how = FTH_LAUNCHER_BUILTIN;
  else if (g_strcmp0(launcher, "mpi") == 0)
    how = FTH_LAUNCHER_MPI;
  else if (launcher != NULL && strcmp(launcher, "auto") != 0)
    return fth_cli_usage_error("train", "--launcher %s: expected auto, builtin or mpi", launcher);
  if (how == FTH_LAUNCHER_MPI && nproc > 1)
    return fth_cli_usage_error("train", "--nproc starts the built-in launcher's workers; with "
                               "--launcher mpi start the ranks with mpirun -np N");
  /* Started by the launcher or mpirun: a worker, whatever --nproc says. */
  g_autoptr(FthComm) comm = NULL;
  g_autoptr(GError) comm_error = NULL;
  if (!fth_comm_for_launcher(how, &comm, &comm_error))
    return fth_cli_fail_error(comm_error);
  if (comm == NULL && nproc > 1)
    return launch_workers(args, nproc);
  int rank = comm != NULL ? fth_comm_rank(comm) : 0;
  g_autofree char *rank_device = comm != NULL && g_strcmp0(device, "cuda") == 0
                                   ? g_strdup_printf("cuda:%d", fth_comm_local_rank(comm)) : NULL;

  g_autoptr(FthStore) store = fth_cli_open_store(argv[1]);
  if (!store) {
    fth_comm_set_failed(comm);
    return FTH_EXIT_FAILURE;
  }
  TrainJob *tj = g_new0(TrainJob, 1);
  tj->store = store;
  fth_train_options_init(&tj->options);
  tj->options.recipe = recipe;
  tj->options.vars = (const char *const *)vars;
  tj->options.epochs = epochs;
  tj->options.batch = batch;
  tj->options.accumulate = accumulate;
  tj->options.lr = lr;
  tj->options.seed = (uint64_t)seed;
  tj->options.val_frac = val;
  tj->options.test_frac = test;
  tj->options.patience = patience;
  tj->options.max_memory = max_memory;
  tj->options.device = rank_device != NULL ? rank_device : device;
  tj->options.comm = comm;
  tj->options.precision = bf16 ? "bf16" : precision;
  tj->options.checkpoint_dir = checkpoint;
  tj->options.resume = resume;
  tj->options.init_weights = init;
  tj->options.no_augment = no_augment;
  tj->options.limit_train = (size_t)limit;
  tj->options.stop_after_steps = stop_after;
  g_autoptr(FthJob) job = fth_job_new("train", run_train, tj, NULL);
  /* Rank 0 alone reports: mpirun merges every rank's output into one. */
  FthCliProgressMode mode = rank > 0 ? FTH_CLI_PROGRESS_QUIET
                            : json   ? FTH_CLI_PROGRESS_JSON
                            : quiet  ? FTH_CLI_PROGRESS_QUIET
                                     : FTH_CLI_PROGRESS_AUTO;
  FthJobState state = fth_cli_run_job(job, mode);
  if (state == FTH_JOB_STATE_SUCCEEDED && rank == 0)
    print_result(&tj->result, json);
  fth_train_result_clear(&tj->result);
  g_free(tj);
  if (state != FTH_JOB_STATE_SUCCEEDED)
    fth_comm_set_failed(comm);
  /* Another rank went away or hung: say so, so the launcher names that one. */
  const GError *job_error = fth_job_get_error(job);
  if (state == FTH_JOB_STATE_FAILED &&
      (g_error_matches(job_error, FTH_PARALLEL_ERROR, FTH_PARALLEL_ERROR_PEER) ||
       g_error_matches(job_error, FTH_PARALLEL_ERROR, FTH_PARALLEL_ERROR_TIMEOUT)))
    return FTH_EXIT_PEER_LOST;
  return state_to_exit(state);
}

typedef struct {
  FthStore *store;
  FthPredictOptions options;
  gint64 run_id;
  gsize n_items;
  FthJob *job;
} PredictJob;

static void
predict_progress(gsize done, gsize total, gpointer data)
{
  PredictJob *pj = data;
  fth_job_progress(pj->job, (gint64)done, (gint64)total, NULL);
}

static gboolean
run_predict(FthJob *job, GCancellable *cancellable, gpointer data, GError **error)
{
  PredictJob *pj = data;
  pj->job = job;
  pj->options.progress = predict_progress;
  pj->options.progress_data = pj;
  pj->options.cancellable = cancellable;
  return fth_predict(pj->store, &pj->options, &pj->run_id, &pj->n_items, error);
}

int
fth_cli_predict(int argc, char **argv)
{
  char *checkpoint = NULL, *device = NULL;
  int batch = 0;
  gboolean no_embeddings = FALSE, json = FALSE, quiet = FALSE;
  const GOptionEntry entries[] = {
    {"checkpoint", 'c', 0, G_OPTION_ARG_FILENAME, &checkpoint,
     "Checkpoint directory (default: the newest finished training run's)", "DIR"},
    {"batch", 'b', 0, G_OPTION_ARG_INT, &batch, "Batch size (256)", "N"},
    {"device", 0, 0, G_OPTION_ARG_STRING, &device, "Where to run: auto, cpu or cuda[:N] "
     "(default: auto)", "DEV"},
    {"no-embeddings", 0, 0, G_OPTION_ARG_NONE, &no_embeddings, "Store only probabilities", NULL},
    {"json", 0, 0, G_OPTION_ARG_NONE, &json, "Progress and the report as JSON lines on stdout",
     NULL},
    {"quiet", 'q', 0, G_OPTION_ARG_NONE, &quiet, "No progress bar", NULL},
    {NULL},
  };
  gboolean parsed = fth_cli_parse_options("predict", "DIR", "Stores class probabilities and "
                                          "embeddings of every image item of the project in DIR.",
                                          NULL, entries, &argc, &argv);
  g_autofree char *o1 = checkpoint, *o2 = device;
  if (!parsed)
    return FTH_EXIT_USAGE;
  if (argc != 2)
    return fth_cli_usage_error("predict", argc < 2 ? "missing DIR" : "unexpected argument “%s”",
                               argv[argc < 2 ? 0 : 2]);
  if (batch < 0)
    return fth_cli_usage_error("predict", "--batch must not be negative");
  g_autoptr(FthStore) store = fth_cli_open_store(argv[1]);
  if (!store)
    return FTH_EXIT_FAILURE;
  g_autofree char *ckpt = checkpoint ? g_strdup(checkpoint) : NULL;
  if (ckpt == NULL) {
    g_autoptr(GError) error = NULL;
    ckpt = fth_latest_checkpoint(store, &error);
    if (ckpt == NULL)
      return fth_cli_fail_error(error);
  }
  PredictJob *pj = g_new0(PredictJob, 1);
  pj->store = store;
  pj->options.checkpoint_dir = ckpt;
  pj->options.batch = batch;
  pj->options.device = device;
  pj->options.no_embeddings = no_embeddings;
  g_autoptr(FthJob) job = fth_job_new("predict", run_predict, pj, NULL);
  FthJobState state = fth_cli_run_job(job, json ? FTH_CLI_PROGRESS_JSON
                                           : quiet ? FTH_CLI_PROGRESS_QUIET
                                                   : FTH_CLI_PROGRESS_AUTO);
  if (state == FTH_JOB_STATE_SUCCEEDED) {
    if (json)
      printf("{\"type\":\"report\",\"run\":%" G_GINT64_FORMAT ",\"items\":%" G_GSIZE_FORMAT
             ",\"checkpoint\":\"%s\"}\n", pj->run_id, pj->n_items, ckpt);
    else
      printf("Run %" G_GINT64_FORMAT ": predicted %" G_GSIZE_FORMAT " items with %s\n",
             pj->run_id, pj->n_items, ckpt);
  }
  g_free(pj);
  return state_to_exit(state);
}

int
fth_cli_demo_train(FthStore *store, FthCliProgressMode mode)
{
  /* The benchmark CNN for two epochs: on the sample's 60,000 Fashion-MNIST training images
   * that is about 89% test accuracy. */
  TrainJob *tj = g_new0(TrainJob, 1);
  tj->store = store;
  fth_train_options_init(&tj->options);
  tj->options.recipe = "fmnist-cnn";
  tj->options.epochs = 2;
  g_autoptr(FthJob) job = fth_job_new("train", run_train, tj, NULL);
  FthJobState state = fth_cli_run_job(job, mode);
  if (state == FTH_JOB_STATE_SUCCEEDED)
    print_result(&tj->result, mode == FTH_CLI_PROGRESS_JSON);
  fth_train_result_clear(&tj->result);
  g_free(tj);
  return state_to_exit(state);
}
