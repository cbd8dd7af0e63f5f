/* fathom/recipe.h: model recipes (JSON) and the graph builder.
 *
 * A recipe names the input and a list of layers; optional "vars" make depth and width
 * settable, optional "train" holds the hyperparameters the recipe was tuned with.
 *
 *   {
 *     "name": "fmnist-cnn",
 *     "input": {"shape": [1, 28, 28], "mean": [0.0], "std": [1.0]},
 *     "vars": {"width": 32},
 *     "layers": [
 *       {"type": "conv2d", "out_channels": "$width", "kernel": 3, "padding": 1},
 *       {"type": "relu"},
 *       {"type": "max_pool2d", "kernel": 2},
 *       {"type": "flatten"},
 *       {"type": "linear", "out_features": "classes"}
 *     ],
 *     "train": {"optimizer": "sgd", "lr": 0.05, "momentum": 0.9, "batch": 64, "epochs": 2}
 *   }
 *
 * Layer types and their fields (defaults in brackets):
 *   linear        out_features, bias [true], activation ["none"|"relu"]
 *   conv2d        out_channels, kernel, stride [1], padding [0], dilation [1], groups [1],
 *                 depthwise [false] (groups = in = out channels), bias [true], activation
 *   batch_norm    eps [1e-5], momentum [0.1]         layer_norm  eps [1e-5]
 *   relu gelu silu sigmoid tanh flatten global_avg_pool2d
 *   max_pool2d / avg_pool2d  kernel, stride [kernel], padding [0]
 *   dropout       p
 *   residual      layers (the body), shortcut [identity], activation [none] after the sum
 *
 * Text models take token ids: "input": {"tokens": T, "vocab": V} (T ids per item, a vocabulary
 * of up to V entries), with "task" ["classification"] or "tagging" (one class per token: BIO
 * tags of the span labels), "tokenizer" ["wordpiece"] or "bpe", "lowercase" [true]. Their layers
 * (x is [batch, T, D] between them; names as BERT's where it has them):
 *   embedding     dim, positions [true] (learned, "NAME.position_embeddings.weight"),
 *                 layer_norm [false], dropout [0]: "NAME.word_embeddings.weight" [V, dim]
 *   transformer_encoder  heads, ffn, dropout [0.1], norm ["post"] or "pre", eps [1e-12]: one
 *                 BERT layer (attention.self.query/key/value, attention.output.dense,
 *                 attention.output.LayerNorm, intermediate.dense, output.dense,
 *                 output.LayerNorm); padding tokens are masked out as keys
 *   text_cnn      kernels (an array of widths), channels, activation ["relu"]: a conv1d of each
 *                 width over the sequence ("NAME.convs.I.weight"), max over time, concatenated
 *                 -> [batch, channels * kernels]
 *   pool          mode ["mean"] (over the non-padding tokens), "max" or "cls" (the first
 *                 token) -> [batch, D]
 * A linear layer applies to the last axis, so a tagger ends with linear "classes" on [batch, T,
 * D]. The token-id inputs are i32; the padding id is 0 ([PAD]); the padding mask comes from the
 * ids through the buffer "token_mask" [V, 1] (saved with the weights). Text augmentation in
 * "train":
 * "augment": {"token_dropout": P (a token becomes [UNK] with probability P), "token_swap": P
 * (a token changes place with its right neighbour)}.
 * Audio models take log-mel spectrograms: "input": {"shape": [1, n_mels, frames], "audio":
 * {"sample_rate": 16000, "duration": 1.0 (seconds: longer items are cropped, shorter ones
 * zero-padded), "n_mels": 40, "win_ms": 25, "hop_ms": 10, "f_min": 0, "f_max": sample_rate / 2}}
 * (defaults shown); frames = 1 + duration samples / hop samples. Audio augmentation in "train":
 * "augment": {"time_shift": F (frames), "noise": S (std of Gaussian noise on the per-item
 * standardized features), "freq_mask": F (mel bins), "time_mask": T (frames)} (SpecAugment: one
 * band and one run of frames, each of random width up to the value, set to 0).
 * Every layer may carry "repeat": N (N copies) and "name" (the parameter prefix; the default
 * is the layer's index, PyTorch Sequential style: "0.weight", "3.bias", "4.body.0.weight").
 * Integer fields take a number, "$var" or "$var*K"; out sizes may be "classes". A layer
 * followed by "relu" is fused with it. The input to the last linear layer is the embedding.
 *
 * Errors name the file, the layer (1-based, nested as 4.2) and the field:
 *   "recipe.json: layer 3 'conv2d': missing 'out_channels'".
 */
#pragma once

#include <fathom/graph.h>
#include <fathom/optim.h>
#include <glib.h>

G_BEGIN_DECLS

#define FTH_RECIPE_ERROR (fth_recipe_error_quark())
GQuark fth_recipe_error_quark(void);

typedef enum {
  FTH_RECIPE_ERROR_IO,
  FTH_RECIPE_ERROR_PARSE,   /* not JSON, or not the recipe schema */
  FTH_RECIPE_ERROR_BUILD,   /* the layers do not fit together (shapes) */
} FthRecipeError;

typedef enum {
  FTH_LAYER_LINEAR,
  FTH_LAYER_CONV2D,
  FTH_LAYER_BATCH_NORM,
  FTH_LAYER_LAYER_NORM,
  FTH_LAYER_RELU,
  FTH_LAYER_GELU,
  FTH_LAYER_SILU,
  FTH_LAYER_SIGMOID,
  FTH_LAYER_TANH,
  FTH_LAYER_MAX_POOL2D,
  FTH_LAYER_AVG_POOL2D,
  FTH_LAYER_GLOBAL_AVG_POOL2D,
  FTH_LAYER_FLATTEN,
  FTH_LAYER_DROPOUT,
  FTH_LAYER_RESIDUAL,
  FTH_LAYER_EMBEDDING,
  FTH_LAYER_TRANSFORMER_ENCODER,
  FTH_LAYER_TEXT_CNN,
  FTH_LAYER_POOL,
} FthLayerKind;

typedef enum {
  FTH_POOL_MEAN = 0,
  FTH_POOL_MAX,
  FTH_POOL_CLS,
} FthPoolMode;

#define FTH_RECIPE_MAX_KERNELS 8

#define FTH_RECIPE_CLASSES (-1) /* out size "classes": the label set decides */
#define FTH_IGNORE_TARGET (-100) /* a tagging target that adds nothing to the loss (padding) */

typedef struct FthLayerSpec FthLayerSpec;
struct FthLayerSpec {
  FthLayerKind kind;
  char *where;          /* "layer 3" or "layer 4.2", for messages */
  char *name;           /* parameter prefix */
  int out;              /* linear, conv2d: out size or FTH_RECIPE_CLASSES */
  int kernel[2], stride[2], padding[2], dilation[2];
  int groups;
  bool depthwise, bias;
  FthActivation act;
  float p, eps, momentum;
  FthLayerSpec *body;   /* residual */
  int n_body;
  FthLayerSpec *shortcut;
  int n_shortcut;
  int heads, ffn;       /* transformer_encoder */
  bool pre_norm;        /* transformer_encoder */
  bool positions, layer_norm; /* embedding */
  int kernels[FTH_RECIPE_MAX_KERNELS], n_kernels; /* text_cnn */
  FthPoolMode pool;
};

typedef struct {
  FthOptimConfig optim;
  FthLrSchedule schedule; /* total_steps filled in by the trainer */
  int batch;
  int accumulate;       /* micro-batches per optimizer step (gradient accumulation) [1] */
  int epochs;
  float label_smoothing;
  float flip_prob, rotate_deg, brightness, contrast;
  int crop_padding;
  float token_dropout, token_swap;
  int time_shift, freq_mask, time_mask;
  float noise;
} FthRecipeTrain;

typedef struct {
  int sample_rate;
  double duration;      /* seconds */
  int n_mels, win_ms, hop_ms;
  double f_min, f_max;  /* Hz */
} FthRecipeAudio;

typedef struct {
  char *source;         /* file name (or "recipe") used in messages */
  char *name;
  char *json;           /* the recipe text, for checkpoints */
  int in_ndim;          /* 1 ([D] or [T] token ids) or 3 ([C, H, W]) */
  bool tokens;          /* the input is T token ids (in_shape[0]) */
  int vocab;            /* tokens: the vocabulary size */
  bool tagging;         /* tokens: one class per token */
  bool bpe, lowercase;  /* tokens: the tokenizer to train */
  bool audio;           /* the input is a log-mel spectrogram of audio items (audio_params) */
  FthRecipeAudio audio_params;
  int64_t in_shape[3];
  float *mean, *std;    /* per channel (in_shape[0] entries for images, 1 for vectors) */
  int n_norm;
  FthLayerSpec *layers;
  int n_layers;
  FthRecipeTrain train; /* defaults when the recipe has no "train" */
} FthRecipe;

/* vars_override: "name=value" strings (NULL-terminated, may be NULL) replacing "vars". */
FthRecipe *fth_recipe_load(const char *path, const char *const *vars_override, GError **error);
FthRecipe *fth_recipe_parse(const char *json, gssize len, const char *source,
                            const char *const *vars_override, GError **error);
void fth_recipe_free(FthRecipe *recipe);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(FthRecipe, fth_recipe_free)

/* The model zoo: data/recipes/NAME.json under the source tree or the installed data dir.
 * Returns the path or NULL when there is no such recipe. */
char *fth_recipe_find(const char *name_or_path);

typedef struct {
  FthGraph *graph;
  FthNode *input;      /* f32 [B, in_shape...]; token ids: i32 [B, T] */
  FthNode *targets;    /* i32 [B]; tagging: [B, T] with FTH_IGNORE_TARGET at padding */
  FthNode *logits;     /* [B, classes]; tagging: [B, T, classes] */
  FthNode *embedding;  /* [B, D]: the input of the last linear layer */
  FthNode *loss;       /* scalar mean cross-entropy; NULL for an inference model */
  FthNode *sample_weights; /* f32 [B], each sample's weight in the loss (weighted mean); NULL
                            * unless built for FTH_MODEL_WEIGHTED_TRAINING */
  int n_classes;
} FthModel;

typedef enum {
  FTH_MODEL_TRAINING,  /* the loss (targets input) and its backward graph */
  FTH_MODEL_INFERENCE, /* logits and embedding only: no targets to feed */
  FTH_MODEL_WEIGHTED_TRAINING, /* training with a sample_weights input to feed as well */
} FthModelPurpose;

/* Builds the forward graph (and for training the loss and backward graph), unplanned. */
FthModel *fth_model_build(const FthRecipe *recipe, int n_classes, uint64_t seed,
                          FthModelPurpose purpose, GError **error);
/* Copies every parameter and buffer of src into the same-named one of dst (shapes must match). */
gboolean fth_model_copy_params(FthModel *dst, const FthModel *src, GError **error);
void fth_model_free(FthModel *model);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(FthModel, fth_model_free)

G_END_DECLS
