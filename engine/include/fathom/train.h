/* fathom/train.h: metrics, splits, augmentation, datasets from the store, checkpoints and the
 * trainer. A service layer: GLib types, errors as GError in FTH_TRAIN_ERROR naming the file
 * or item and what is wrong. */
#pragma once

#include <fathom/backend.h>
#include <fathom/core.h>
#include <fathom/optim.h>
#include <fathom/parallel.h>
#include <fathom/recipe.h>
#include <fathom/store.h>
#include <fathom/tokenizer.h>
#include <glib.h>
#include <stdint.h>

G_BEGIN_DECLS

#define FTH_TRAIN_ERROR (fth_train_error_quark())
GQuark fth_train_error_quark(void);

typedef enum {
  FTH_TRAIN_ERROR_INVALID,   /* bad arguments or configuration */
  FTH_TRAIN_ERROR_DATA,      /* a dataset problem: no labels, an item that cannot be decoded */
  FTH_TRAIN_ERROR_IO,        /* reading or writing a cache or checkpoint failed */
  FTH_TRAIN_ERROR_CHECKPOINT,/* a checkpoint does not match the model or is malformed */
  FTH_TRAIN_ERROR_NUMERIC,   /* the loss became NaN or Inf */
  FTH_TRAIN_ERROR_ENGINE,    /* the graph engine failed (message from fth_last_error) */
  FTH_TRAIN_ERROR_CANCELLED,
  FTH_TRAIN_ERROR_NO_MEMORY, /* out of memory even with a micro-batch of 1 */
} FthTrainError;

/* ---- Metrics ---------------------------------------------------------------------------------
 * A confusion matrix counts[truth * n_classes + pred]. Precision of a class never predicted and
 * recall of a class never true are 0; F1 is 0 when precision + recall is 0. Macro-F1 averages
 * the F1 of the classes that occur as truth or prediction (scikit-learn's default labels). */
typedef struct {
  int n_classes;
  int64_t *counts;
} FthConfusion;

FthConfusion *fth_confusion_new(int n_classes);
void fth_confusion_free(FthConfusion *cm);
void fth_confusion_reset(FthConfusion *cm);
/* Out-of-range classes are ignored. */
void fth_confusion_add(FthConfusion *cm, int truth, int pred);
int64_t fth_confusion_total(const FthConfusion *cm);
double fth_confusion_accuracy(const FthConfusion *cm);
double fth_confusion_precision(const FthConfusion *cm, int cls);
double fth_confusion_recall(const FthConfusion *cm, int cls);
double fth_confusion_f1(const FthConfusion *cm, int cls);
double fth_confusion_macro_f1(const FthConfusion *cm);
/* Entities in BIO tag sequences (0 = O, 2k + 1 = B and 2k + 2 = I of type k), counted as
 * seqeval does by default: an entity starts at a B, or at an I after O or another type, and runs
 * over the Is of its type; a predicted entity is correct when type, start and end match. Positions
 * where the truth is negative (special and padding tokens) are left out of both sequences. */
typedef struct {
  int64_t n_true, n_pred, n_correct;
} FthEntityCounts;

void fth_entity_counts_add(FthEntityCounts *c, const int32_t *truth, const int32_t *pred, size_t n);
double fth_entity_f1(const FthEntityCounts *c); /* micro F1; 0 when nothing was found or true */

/* {"labels": [...], "counts": [[...], ...]}; label_names may be NULL (then indices). */
char *fth_confusion_to_json(const FthConfusion *cm, const char *const *label_names);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(FthConfusion, fth_confusion_free)

/* ---- Splits ----------------------------------------------------------------------------------
 * Stratified and seeded: within each class the items are shuffled by the counter-based RNG
 * (stream = class) and the first round(n * test_frac) go to test, the next round(n * val_frac)
 * to validation, the rest to training. labels[i] < 0 (unlabeled) gets FTH_SPLIT_NONE. The result
 * depends only on the labels, fractions and seed. */
gboolean fth_stratified_split(const int32_t *labels, size_t n, int n_classes, double val_frac,
                              double test_frac, uint64_t seed, FthSplit *out, GError **error);

/* Fisher-Yates shuffle of 0..n-1 into perm, driven by (seed, stream); the trainer uses stream =
 * epoch so epoch e's order is the same whether or not the run was resumed. */
void fth_shuffle_indices(uint32_t *perm, size_t n, uint64_t seed, uint64_t stream);

/* ---- Image augmentation ------------------------------------------------------------------------
 * Applied while converting a uint8 CHW image to the float input: a horizontal flip, a rotation
 * about the centre, a translation as from a random crop of the zero-padded image (bilinear
 * sampling, zeros outside), then brightness and contrast jitter, then (v/255 - mean) / std.
 * The random draws depend only on (seed, key, epoch), so a sample is augmented the same way
 * in a resumed run and on any thread. A zeroed FthAugment converts without changing anything. */
typedef struct {
  float flip_prob;   /* horizontal flip probability */
  int crop_padding;  /* translation up to +-crop_padding pixels in x and y */
  float rotate_deg;  /* rotation uniform in [-rotate_deg, rotate_deg] */
  float brightness;  /* adds U(-b, b) * 255 */
  float contrast;    /* scales around the image mean by U(1 - c, 1 + c) */
  float token_dropout; /* text: a token becomes [UNK] with this probability */
  float token_swap;    /* text: a token changes place with its right neighbour (and its tag) */
  int time_shift;      /* audio: the frames move by up to +-time_shift (vacated ones are 0) */
  float noise;         /* audio: adds N(0, noise^2) to every standardized feature */
  int freq_mask;       /* audio, SpecAugment: one band of up to freq_mask mel bins set to 0 */
  int time_mask;       /* audio, SpecAugment: one run of up to time_mask frames set to 0 */
} FthAugment;

/* Token dropout and adjacent swaps of n ids (special tokens stay in place), with the per-token
 * tags (may be NULL) moved along; draws depend only on (seed, key, epoch) as for images. */
void fth_augment_tokens(const FthAugment *aug, const int32_t *ids, const int32_t *tags, int n,
                        uint64_t seed, uint64_t key, uint64_t epoch, int32_t *ids_out,
                        int32_t *tags_out);

/* mean and std have `channels` entries, or are NULL for 0 and 1. */
void fth_augment_image(const FthAugment *aug, const uint8_t *src, int channels, int height,
                       int width, uint64_t seed, uint64_t key, uint64_t epoch, const float *mean,
                       const float *std, float *dst);

/* ---- Datasets from the store -------------------------------------------------------------------
 * The items of a project with their class: each item's whole-item human annotation (labels of
 * kind CLASS or ANY, in label position order, become classes 0..n-1). Images are decoded once
 * into a uint8 CHW cache file in the project's cache directory (<project>/cache), keyed by the
 * items' content hashes and the shape, and memory-mapped; later opens decode nothing. Items
 * that are IDX records (path + member) are read from their IDX file; JPEG and PNG files are
 * decoded with fathom/media.h and must all have the same size. */
typedef struct FthDataset FthDataset;

typedef enum {
  FTH_DATASET_LABELED = 0,   /* items with a class annotation (training) */
  FTH_DATASET_ALL = 1,       /* every image item; unlabeled ones get label -1 (prediction) */
} FthDatasetScope;

/* channels: 1 decodes to grayscale, 3 to RGB. cache_dir NULL: <project>/cache. */
FthDataset *fth_dataset_open(FthStore *store, FthDatasetScope scope, int channels,
                             const char *cache_dir, GError **error);
void fth_dataset_free(FthDataset *ds);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(FthDataset, fth_dataset_free)

size_t fth_dataset_size(const FthDataset *ds);
void fth_dataset_shape(const FthDataset *ds, int *channels, int *height, int *width);
int fth_dataset_n_classes(const FthDataset *ds);
const char *fth_dataset_class_name(const FthDataset *ds, int cls);
gint64 fth_dataset_class_label_id(const FthDataset *ds, int cls);
int32_t fth_dataset_label(const FthDataset *ds, size_t i);
gint64 fth_dataset_item_id(const FthDataset *ds, size_t i);
FthSplit fth_dataset_split(const FthDataset *ds, size_t i);   /* as stored for the item */
const uint8_t *fth_dataset_pixels(const FthDataset *ds, size_t i);
/* Items decoded by this open (0 when everything came from the cache). */
size_t fth_dataset_n_decoded(const FthDataset *ds);
const char *fth_dataset_cache_path(const FthDataset *ds);

/* Text items for a token model. Classification: the classes as above. Tagging: the items with a
 * human span annotation; the classes are "O", then "B-NAME" and "I-NAME" for each label of kind
 * SPAN or ANY (label position order). Every item's text is read (inline or from its file):
 * text that is not UTF-8, or a span outside its item's characters, fails naming the item. */
FthDataset *fth_dataset_open_text(FthStore *store, FthDatasetScope scope, gboolean tagging,
                                  GError **error);
gboolean fth_dataset_is_text(const FthDataset *ds);
const char *fth_dataset_text(const FthDataset *ds, size_t i);
/* Encodes every item into seq_len ids ([CLS] ... [SEP], padded) for fth_dataset_samples; for
 * tagging, each token gets the BIO tag of the span it overlaps (B on the span's first token). */
gboolean fth_dataset_tokenize(FthDataset *ds, const FthTokenizer *tok, int seq_len,
                              GError **error);
/* The text dataset of a token recipe: tokenized with dir's tokenizer.json (a checkpoint
 * directory), or, when dir is NULL, untokenized until fth_dataset_train_tokenizer. Fails when
 * the tokenizer's vocabulary exceeds the recipe's. */
FthDataset *fth_dataset_open_recipe_text(FthStore *store, const FthRecipe *recipe,
                                         FthDatasetScope scope, const char *dir, GError **error);
/* Trains the dataset's tokenizer (the recipe's kind, vocabulary and case) on the texts of
 * items[0..n_items) only, the training split, so that words of held-out items alone get no
 * entry of their own, then tokenizes every item with it. Fails as above. */
gboolean fth_dataset_train_tokenizer(FthDataset *ds, const FthRecipe *recipe,
                                     const uint32_t *items, size_t n_items, GError **error);
/* The tokenizer of fth_dataset_open_recipe_text (NULL for other datasets). */
const FthTokenizer *fth_dataset_tokenizer(const FthDataset *ds);
/* Writes dir/tokenizer.json (creating dir) when the dataset has a tokenizer. */
gboolean fth_dataset_save_tokenizer(const FthDataset *ds, const char *dir, GError **error);


/* Audio items for a recipe with "input.audio": each item decoded to mono at the recipe's sample
 * rate (fathom/media.h), cropped or zero-padded to its duration, and turned into a log-mel
 * spectrogram [1, n_mels, frames] (fathom/features.h) once: the features of all items are kept
 * in one float cache file in <project>/cache, keyed by the items' content hashes and the
 * feature settings, and memory-mapped; later opens decode nothing. An item that cannot be
 * decoded fails the open, naming its file. */
FthDataset *fth_dataset_open_recipe_audio(FthStore *store, const FthRecipe *recipe,
                                          FthDatasetScope scope, GError **error);

/* ---- Samples: uint8 images or token ids with labels in memory, what the trainer consumes ----- */
typedef struct {
  const uint8_t *pixels;   /* n * channels * height * width, CHW per sample */
  const int32_t *labels;   /* n; -1 for unlabeled */
  const gint64 *keys;      /* n augmentation keys (item ids); NULL: the index */
  size_t n;
  int channels, height, width;
  const int32_t *tokens;   /* text: n * seq_len token ids (pixels unused); NULL for images */
  const int32_t *tags;     /* tagging: n * seq_len per-token classes, FTH_IGNORE_TARGET at
                            * special and padding tokens; NULL: one label per sample */
  int seq_len;
  const float *features;   /* audio: n * channels * height * width log-mel values (pixels
                            * unused), standardized per sample when a batch is filled */
  const float *weights;    /* n loss weights (e.g. < 1 for pseudo-labels); NULL: all 1 */
} FthSamples;

/* A view of the dataset (valid while it lives). */
void fth_dataset_samples(const FthDataset *ds, FthSamples *out);

/* Converts samples indices[0..n) into x (n * C*H*W floats: augmented when aug is not NULL,
 * keyed by the sample's key and epoch, then (v/255 - mean) / std) and y (may be NULL). Text
 * samples: x receives n * seq_len int32 token ids (mean and std unused), y the labels or, for
 * tagging, n * seq_len tags. */
void fth_samples_fill_batch(const FthSamples *s, const uint32_t *indices, size_t n,
                            const FthAugment *aug, uint64_t seed, uint64_t epoch,
                            const float *mean, const float *std, void *x, int32_t *y);
/* The loss weights of samples indices[0..n) into w (1 when s->weights is NULL). */
void fth_samples_fill_weights(const FthSamples *s, const uint32_t *indices, size_t n, float *w);

/* ---- Checkpoints -------------------------------------------------------------------------------
 * A checkpoint directory holds weights-STEP.safetensors (every parameter and buffer by name, as
 * PyTorch's state_dict names them), optimizer-STEP.safetensors ("NAME.momentum" or
 * "NAME.adam_m"/"NAME.adam_v") and checkpoint.json, the sidecar, written last: it is the commit
 * point, so a kill or a full disk at any moment leaves the previous checkpoint loadable. */
typedef struct {
  char *recipe_json;    /* the recipe text */
  char **vars;          /* NULL-terminated "name=value" overrides, may be NULL */
  char **labels;        /* n_labels class names */
  gint64 *label_ids;    /* store label ids (0 when unknown) */
  int n_labels;
  float *mean, *std;    /* n_norm input normalization values */
  int n_norm;
  int64_t step;         /* optimizer steps taken */
  int epoch;            /* epochs completed */
  uint64_t seed;
  int batch;
  int accumulate;       /* micro-batches per step when saved (after running out of memory,
                         * more than asked); 0 in older checkpoints */
  int epochs_total;     /* the run's planned epochs (the schedule's length) */
  double lr;            /* the run's base learning rate */
  char *weights_file;   /* basenames inside the directory */
  char *optimizer_file; /* NULL when saved without optimizer state */
  char *metrics_json;   /* NULL or a JSON object of the latest metrics */
  double best_metric;   /* early stopping: best validation loss so far */
  int bad_epochs;       /* early stopping: epochs since the best */
} FthCheckpointMeta;

void fth_checkpoint_meta_free(FthCheckpointMeta *meta);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(FthCheckpointMeta, fth_checkpoint_meta_free)

/* Writes the weights of g (and the state of opt when not NULL), then the sidecar; files of older
 * checkpoints in dir are removed once the new sidecar is in place. Refuses (NUMERIC) weights
 * that are not finite, so a diverged run never replaces its last good checkpoint. */
gboolean fth_checkpoint_save(const char *dir, const FthCheckpointMeta *meta, FthGraph *g,
                             FthOptimizer *opt, GError **error);
/* Reads dir/checkpoint.json; weights_file and optimizer_file stay relative to dir. */
FthCheckpointMeta *fth_checkpoint_load_meta(const char *dir, GError **error);
/* Copies tensors into the graph's parameters and buffers by name. strict: every parameter must
 * be in the file; otherwise missing ones keep their values (fine-tuning from a backbone).
 * Shapes must match; *n_loaded (may be NULL) counts the tensors copied. */
gboolean fth_load_weights(FthGraph *g, const char *path, gboolean strict, int *n_loaded,
                          GError **error);
gboolean fth_load_optimizer_state(FthOptimizer *opt, const char *path, GError **error);

/* ---- The trainer ------------------------------------------------------------------------------ */

typedef struct {
  int epoch;             /* 0-based */
  int epochs;
  int64_t step, total_steps;
  double loss;           /* of the last batch */
  double lr;
  gboolean epoch_end;    /* the fields below are set */
  /* A tagger's train_acc is the share of items with every token right, its val_acc the share
   * of tokens (padding aside); its entity F1 goes into the store as val_entity_f1. */
  double train_loss, train_acc, val_loss, val_acc, val_macro_f1, images_per_s, epoch_s;
  /* An event for the user (the out-of-memory fallback to smaller micro-batches), in a call of
   * its own; NULL otherwise. */
  const char *message;
} FthTrainProgress;

typedef void (*FthTrainProgressFunc)(const FthTrainProgress *progress, gpointer user_data);

typedef struct {
  const char *recipe;            /* a zoo name or a path */
  const char *const *vars;       /* recipe variable overrides, NULL-terminated, may be NULL */
  int epochs, batch;             /* 0: the recipe's */
  int accumulate;                /* micro-batches per optimizer step (FthTrainerConfig); 0: the
                                  * recipe's */
  double lr;                     /* 0: the recipe's */
  uint64_t seed;
  double val_frac, test_frac;    /* splits made when no item has one yet */
  int patience;                  /* early stopping on validation loss; 0: off */
  double max_memory;             /* (0, 1]: largest batch within this fraction of the available
                                  * memory, from the planner's bytes per sample; 0: off */
  const char *device;            /* auto | cpu | cuda[:N] (fth_backend_select); NULL: auto (CUDA
                                  * when a device answers). On CUDA the trainer runs on the device
                                  * (fth_trainer_use_device) and max_memory is a fraction of its
                                  * free memory; the device is recorded in the run's config */
  const char *precision;         /* fp32 | bf16 | fp16 (FthPrecision); NULL: fp32. fp16 needs CUDA */
  const char *checkpoint_dir;    /* NULL: <project>/models/train-RUNID */
  gboolean resume;               /* continue from checkpoint_dir */
  const char *init_weights;      /* a .safetensors file: parameters with the same name and shape
                                  * start from it (fine-tuning); others keep their initialization.
                                  * A text run uses the tokenizer.json beside it, if any */
  gboolean no_augment;           /* ignore the recipe's augmentation */
  int64_t stop_after_steps;      /* > 0: checkpoint and stop after that many steps in all */
  FthComm *comm;                 /* data parallel: this process's rank (fth_comm_from_env);
                                  * rank 0 alone writes the store and the checkpoints; NULL:
                                  * one process */
  size_t limit_train;            /* > 0: use only the first N training samples */
  FthTrainProgressFunc progress;
  gpointer progress_data;
  GCancellable *cancellable;
} FthTrainOptions;

void fth_train_options_init(FthTrainOptions *options); /* seed 1, val 0.1, test 0.1 */

typedef struct {
  gint64 run_id;
  int epochs_run;
  int64_t steps;
  int batch;
  int micro_batches;                 /* per step at the end (more after running out of memory) */
  gboolean early_stopped, stopped;   /* stopped: by stop_after_steps */
  double train_loss, val_acc, test_acc, test_macro_f1, images_per_s;
  char *checkpoint_dir;
  /* The planner's training bytes per sample in the run's precision and in fp32 (also in the
   * run's config): storage stays fp32, so they differ only by the CPU bf16 GEMMs' scratch. */
  size_t bytes_per_sample, bytes_per_sample_fp32;
} FthTrainResult;

void fth_train_result_clear(FthTrainResult *result);

/* Trains on the project's labeled images and records the run, its per-epoch metrics and the
 * final test metrics in the store. Running out of memory in a step falls back to smaller
 * micro-batches (fth_trainer_run_epoch); each such event goes to the progress function
 * (FthTrainProgress.message) and into the store as an artifact of kind "event" (metadata: epoch,
 * step, micro_batches, message) with the metric micro_batches at its step. */
gboolean fth_train(FthStore *store, const FthTrainOptions *options, FthTrainResult *result,
                   GError **error);

/* The part of the trainer that knows no store: a model, an optimizer and its schedule over
 * in-memory samples. The benchmark and fth_train use it. */
typedef struct FthTrainer FthTrainer;

typedef struct {
  uint64_t seed;
  int batch;            /* the planned maximum: the global batch of an optimizer step */
  /* Gradient accumulation: a step runs its batch as this many micro-batches (contiguous, sizes
   * differing by at most 1), one after the other, and sums their gradients weighted by their
   * share of the batch's loss, so the step is the whole batch's up to float rounding. Except:
   * batch norm normalizes each micro-batch by its own statistics and updates its running
   * statistics once per micro-batch, and the micro-batches of a step share the step's dropout
   * masks (keyed by step and position). 0 or 1: none. Not with data parallel. */
  int accumulate;
  int epochs;           /* for the schedule's length */
  size_t n_train;       /* for the schedule's length */
  FthOptimConfig optim;
  FthLrSchedule schedule;
  FthAugment augment;
  gboolean use_augment;
} FthTrainerConfig;

/* cfg NULL: everything from the recipe. */
FthTrainer *fth_trainer_new(const FthRecipe *recipe, int n_classes, const FthTrainerConfig *cfg,
                            GError **error);
void fth_trainer_free(FthTrainer *t);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(FthTrainer, fth_trainer_free)
FthModel *fth_trainer_model(FthTrainer *t);
FthOptimizer *fth_trainer_optimizer(FthTrainer *t);
const FthTrainerConfig *fth_trainer_config(FthTrainer *t);
int64_t fth_trainer_steps_per_epoch(FthTrainer *t);

/* Called in every training step between the backward pass and the optimizer step with the
 * trainable parameters whose gradients are about to be applied (a data-parallel launcher
 * all-reduces them here): host buffers, or the device's buffers when on_device (the trainer runs
 * on a device backend, fth_trainer_backend). FALSE (error set) ends the epoch with that error. */
typedef gboolean (*FthTrainerGradHook)(const FthParam *params, size_t n_params, gboolean on_device,
                                       gpointer user_data, GError **error);
void fth_trainer_set_grad_hook(FthTrainer *t, FthTrainerGradHook hook, gpointer user_data);

/* Data parallel (fathom/parallel.h): the trainer becomes rank fth_comm_rank(comm) of
 * fth_comm_size(comm). Rank 0's parameter values are broadcast now. Each training step runs this
 * rank's contiguous part of the global batch (the seeded order is the same on every rank); the
 * gradients, scaled by the part's share of the batch, are summed over the ranks in buckets of
 * bucket_bytes (0: FTH_GRAD_BUCKET_BYTES), so a step is the step of one process with the whole
 * batch up to float rounding. A bucket is summed as soon as the backward pass has finished its
 * gradients, while the pass goes on: on the CPU by a thread, on a device (an NCCL communicator,
 * set after fth_trainer_use_device) on NCCL's own stream, joined in the grad hook (which this
 * replaces). Not shared: batch-norm batch statistics (each rank normalizes over its part, as
 * PyTorch DDP without SyncBatchNorm; running statistics stay per rank, rank 0's are the ones
 * saved) and dropout masks. The loss and accuracy reported are the global batch's; evaluation is
 * split over the ranks and its loss and confusion counts summed (cm starts from zero). comm stays
 * the caller's and must outlive the trainer. */
gboolean fth_trainer_set_comm(FthTrainer *t, FthComm *comm, size_t bucket_bytes,
                              GError **error);
/* Samples this rank has run in training steps so far. */
size_t fth_trainer_local_samples(FthTrainer *t);
/* Gradient buckets summed (on a device: queued) while their step's backward pass was still
 * running, so far. */
int fth_trainer_early_buckets(FthTrainer *t);
/* Data parallel: TRUE (set by fth_trainer_set_comm) sums each gradient bucket as soon as the
 * backward pass has finished its gradients (on the CPU on the reducer's thread, on a device on
 * NCCL's own stream beside the backward kernels), FALSE all of them after the backward pass (to
 * measure the overlap); the local communicator gives the same bits either way. */
void fth_trainer_set_grad_overlap(FthTrainer *t, gboolean overlap);

/* Runs the trainer's steps and evaluations on `be` (any backend; the CPU's works on its own
 * copies as a device would): the planned graph is mirrored there (graph-device), each batch is
 * uploaded, the loss and logits are read back, and the optimizer updates the device parameters
 * through the backend's optim_update, or on the host copies when it has none or clipping is on.
 * Parameters and optimizer state are uploaded from the trainer: load checkpoints first. The
 * batch is the largest up to the configured one whose device state fits memory_budget bytes
 * (0: no estimate), and an out-of-memory failure halves it and retries; the batch taken is
 * fth_trainer_config()->batch (and the schedule's length follows it). */
gboolean fth_trainer_use_device(FthTrainer *t, const FthBackend *be, size_t memory_budget,
                                GError **error);
const FthBackend *fth_trainer_backend(FthTrainer *t); /* NULL: the CPU path (fth_graph_run) */
/* Copies the device's parameters, buffers and optimizer state into the model's graph and the
 * optimizer (before a checkpoint); nothing to do on the CPU path. */
gboolean fth_trainer_sync_host(FthTrainer *t, GError **error);

/* Mixed precision (FthPrecision): on a backend with its own setting (CUDA) its GEMM and
 * convolution inputs; elsewhere bf16 is the graph's bf16 GEMMs (fth_graph_set_bf16_matmul, which
 * needs AVX512_BF16: on a device, set the precision after fth_trainer_use_device) and fp16
 * keeps fp32 arithmetic. fp16 scales the loss dynamically: gradients are unscaled before the
 * step, a step with Inf/NaN gradients is skipped and halves the scale, and the scale doubles
 * after growth_interval clean steps (default 65536 and 2000, GradScaler's). */
gboolean fth_trainer_set_precision(FthTrainer *t, FthPrecision precision, GError **error);
FthPrecision fth_trainer_precision(FthTrainer *t);
gboolean fth_trainer_set_loss_scaling(FthTrainer *t, float initial_scale, int growth_interval,
                                      GError **error);
float fth_trainer_loss_scale(FthTrainer *t);    /* 1 unless fp16 */
int64_t fth_trainer_skipped_steps(FthTrainer *t);

/* One epoch over train[0..n) in the seeded order of `epoch`, starting at batch first_batch and
 * stopping early (returning TRUE with *interrupted) once the global step reaches stop_step
 * (<= 0: never). Fails with NUMERIC on a NaN or Inf loss.
 * Out of memory: when the backend fails with FTH_STATUS_NO_MEMORY in a step (planning its
 * arena, the forward or backward pass, or the device optimizer's update), the micro-batch is
 * halved (twice the micro-batches, fth_trainer_accumulate), the graph planned again and the same
 * step redone from the same samples: batch-norm running statistics are put back as they were
 * before the step, and an update interrupted on the device goes on from the parameter it stopped
 * at without running the batch again, so no step, optimizer state, random draw or metric is lost
 * or counted twice. The event is reported to func with progress->message set. A micro-batch of 1
 * that does not fit fails with NO_MEMORY (as does any out-of-memory failure with data parallel). */
gboolean fth_trainer_run_epoch(FthTrainer *t, const FthSamples *s, const uint32_t *train, size_t n,
                               int epoch, int64_t first_batch, int64_t stop_step,
                               FthTrainProgress *progress, FthTrainProgressFunc func,
                               gpointer func_data, GCancellable *cancellable,
                               gboolean *interrupted, GError **error);
/* Micro-batches per optimizer step now (FthTrainerConfig.accumulate; more after running out of
 * memory), and setting it between steps: n from 1 to the batch; more than 1 not with data
 * parallel. */
int fth_trainer_accumulate(FthTrainer *t);
gboolean fth_trainer_set_accumulate(FthTrainer *t, int n, GError **error);

/* Mean loss and confusion over idx[0..n) in inference mode, in batches of the configured size,
 * halved while the backend runs out of memory (the results do not depend on it). */
gboolean fth_trainer_evaluate(FthTrainer *t, const FthSamples *s, const uint32_t *idx, size_t n,
                              FthConfusion *cm, double *mean_loss, GError **error);
/* Entity counts of a tagger over idx[0..n) in inference mode (on this rank's trainer alone). */
gboolean fth_trainer_evaluate_entities(FthTrainer *t, const FthSamples *s, const uint32_t *idx,
                                       size_t n, FthEntityCounts *counts, GError **error);
/* Largest batch whose training memory (activations by the planner's exact bytes per sample,
 * parameters, gradients and optimizer state) fits fraction * available memory. */
gboolean fth_trainer_batch_for_memory(const FthRecipe *recipe, int n_classes, double fraction,
                                      int *batch, GError **error);

/* ---- Prediction -------------------------------------------------------------------------------
 * Runs a checkpoint over every image item of the project and stores, under a new "predict" run,
 * each item's class probabilities (labels matched to the project's by name) and its embedding
 * (the input of the model's last linear layer). A text checkpoint runs over the text items with
 * its own tokenizer; a tagger stores each item's entities instead of probabilities, as model
 * span annotations of the run (labels by name), and the mean of its tokens' features. */
typedef void (*FthPredictProgressFunc)(gsize done, gsize total, gpointer user_data);

typedef struct {
  const char *checkpoint_dir;
  int batch;                       /* 0: 256 (smaller when a device runs out of memory) */
  const char *device;              /* auto | cpu | cuda[:N], as for training; NULL: auto */
  gboolean no_embeddings;
  FthPredictProgressFunc progress;
  gpointer progress_data;
  GCancellable *cancellable;
} FthPredictOptions;

gboolean fth_predict(FthStore *store, const FthPredictOptions *options, gint64 *run_id,
                     gsize *n_items, GError **error);
/* The checkpoint directory of the newest finished training run; NULL (and an error) if none. */
char *fth_latest_checkpoint(FthStore *store, GError **error);

G_END_DECLS
