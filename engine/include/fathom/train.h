/* fathom/train.h: metrics, splits, augmentation, datasets from the store, checkpoints and the
 * trainer. A service layer: GLib types, errors as GError in FTH_TRAIN_ERROR naming the file
 * or item and what is wrong. */
#pragma once

#include <fathom/core.h>
#include <fathom/store.h>
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
} FthAugment;

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

/* Converts the samples indices[0..n) into x (n * C*H*W floats, augmented when aug is not NULL,
 * keyed by the item id and epoch) and y (n labels; may be NULL). */
void fth_dataset_fill_batch(const FthDataset *ds, const uint32_t *indices, size_t n,
                            const FthAugment *aug, uint64_t seed, uint64_t epoch,
                            const float *mean, const float *std, float *x, int32_t *y);

G_END_DECLS
