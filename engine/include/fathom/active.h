/* fathom/active.h: AutoLabel. Acquisition functions (which unlabeled items to ask next), the
 * labeling queue in the store, pre-labeling with a trained model, self-training with
 * pseudo-labels, and the active-learning loop.
 *
 * A service layer: GLib types, errors as GError in FTH_ACTIVE_ERROR naming the project or
 * checkpoint and what is wrong. The acquisition functions themselves are plain numeric code on
 * float arrays, so tests and the benchmark call them without a store.
 *
 * Convention for every score: higher means "ask this item first".
 */
#pragma once

#include <fathom/jobs.h>
#include <fathom/store.h>
#include <fathom/train.h>
#include <glib.h>
#include <stdint.h>

G_BEGIN_DECLS

#define FTH_ACTIVE_ERROR (fth_active_error_quark())
GQuark fth_active_error_quark(void);

typedef enum {
  FTH_ACTIVE_ERROR_INVALID,   /* bad arguments: unknown strategy, batch 0, shapes */
  FTH_ACTIVE_ERROR_DATA,      /* the project lacks what is needed: predictions, embeddings */
  FTH_ACTIVE_ERROR_NO_MODEL,  /* no checkpoint to predict with */
} FthActiveError;

/* ---- Acquisition functions -------------------------------------------------------------------
 * probs: n rows of C class probabilities (float32, row-major). */

typedef enum {
  FTH_ACQ_RANDOM,            /* seeded uniform scores: the baseline */
  FTH_ACQ_LEAST_CONFIDENCE,  /* 1 - max_k p_k */
  FTH_ACQ_MARGIN,            /* 1 - (p_first - p_second) */
  FTH_ACQ_ENTROPY,           /* -sum_k p_k ln p_k (nats) */
  FTH_ACQ_BALD,              /* mutual information from T Monte-Carlo-dropout passes */
  FTH_ACQ_CORESET,           /* k-center greedy on the embeddings, from the labeled set */
  FTH_ACQ_HYBRID,            /* entropy candidates spread over k-means clusters */
} FthAcquisition;

#define FTH_ACQ_N_STRATEGIES 7

/* "random", "least-confidence", "margin", "entropy", "bald", "coreset", "hybrid". */
const char *fth_acquisition_name(FthAcquisition strategy);
gboolean fth_acquisition_from_name(const char *name, FthAcquisition *out, GError **error);

void fth_acq_random(size_t n, uint64_t seed, float *scores);
void fth_acq_least_confidence(const float *probs, size_t n, int n_classes, float *scores);
void fth_acq_margin(const float *probs, size_t n, int n_classes, float *scores);
void fth_acq_entropy(const float *probs, size_t n, int n_classes, float *scores);
/* mc_probs: T tables of n x C, one per dropout pass, pass-major ([t][i][k]). BALD score =
 * H(mean_t p_t) - mean_t H(p_t), in nats; mean_probs (n x C, may be NULL) receives the mean. */
void fth_acq_bald(const float *mc_probs, int n_passes, size_t n, int n_classes, float *scores,
                  float *mean_probs);

/* k-center greedy (Sener & Savarese 2018). emb: n x dim pool embeddings; centers: n_centers x dim
 * embeddings of the labeled items (may be 0). Picks k pool points one at a time, each the point
 * farthest (Euclidean) from its nearest center so far, which then becomes a center. selected[j]
 * is the j-th pick, dist[j] (may be NULL) its distance to the nearest center when picked. With
 * no labeled centers the first pick is the pool point farthest from the pool mean. Ties go to the
 * lower index. Returns the number picked, min(k, n). */
size_t fth_acq_coreset(const float *emb, size_t n, int dim, const float *centers,
                       size_t n_centers, size_t k, uint32_t *selected, float *dist);

/* Squared Euclidean distances from every row of a (n x dim) to every row of b (m x dim) into
 * out (n x m), through one GEMM (|a|^2 + |b|^2 - 2 a.b, clamped at 0). */
void fth_sq_distances(const float *a, size_t n, const float *b, size_t m, int dim, float *out);

/* Seeded k-means (k-means++ start, Lloyd iterations until no point moves or max_iter).
 * assign: n cluster indices; centroids (k x dim, may be NULL). Returns the iterations run. */
int fth_kmeans(const float *x, size_t n, int dim, int k, int max_iter, uint64_t seed,
               uint32_t *assign, float *centroids);

/* Everything an acquisition may look at. Fields a strategy does not use may be NULL / 0. */
typedef struct {
  size_t n;                 /* pool size */
  int n_classes;
  const float *probs;       /* n x C; for BALD NULL is allowed (the mean of mc_probs is used) */
  const float *mc_probs;    /* BALD: n_passes x n x C */
  int n_passes;
  const float *emb;         /* coreset, hybrid: n x dim */
  int dim;
  const float *labeled_emb; /* coreset: n_labeled x dim */
  size_t n_labeled;
} FthAcqPool;

typedef struct {
  FthAcquisition strategy;
  size_t batch;             /* how many to pick */
  uint64_t seed;            /* random, hybrid's k-means */
  int hybrid_clusters;      /* 0: min(batch, 10) */
  int hybrid_candidates;    /* candidates per pick; 0: 10 (the top 10 * batch by entropy) */
} FthAcqOptions;

void fth_acq_options_init(FthAcqOptions *opt); /* entropy, batch 100, seed 1 */

/* Picks min(batch, n) pool indices into selected (rank order: selected[0] is asked first) with
 * their scores (the strategy's score; core-set: the distance). Fails with INVALID when the pool
 * lacks what the strategy needs (probabilities, MC passes, embeddings). */
gboolean fth_acquire(const FthAcqPool *pool, const FthAcqOptions *opt, uint32_t *selected,
                     float *scores, size_t *n_selected, GError **error);

/* ---- Per-project settings (the store's meta table) -------------------------------------------
 * Keys: active.strategy, active.batch, active.retrain_every, active.pseudo_threshold,
 * active.pseudo_cap. Missing keys take the defaults below; a value that does not parse is an
 * error naming the database and the key. */
typedef struct {
  FthAcquisition strategy; /* entropy */
  guint batch;             /* 100: the queue length after a refill */
  guint retrain_every;     /* 50: K new human labels start a fine-tune round */
  double pseudo_threshold; /* 0.95 */
  guint pseudo_cap;        /* per-class pseudo-label cap; 0: none (default 1000) */
} FthActiveSettings;

void fth_active_settings_init(FthActiveSettings *settings);
gboolean fth_active_settings_load(FthStore *store, FthActiveSettings *settings, GError **error);
gboolean fth_active_settings_save(FthStore *store, const FthActiveSettings *settings,
                                  GError **error);

/* ---- The unlabeled pool as the store holds it -------------------------------------------------
 * The pool: items without a human annotation whose split is none or train (validation and test
 * items are never asked). Probabilities and embeddings come from one prediction run; pool items
 * that run did not predict are left out and counted in n_missing. labeled_emb holds the
 * embeddings of the human-labeled train/none items from the same run (core-set's centers). */
typedef struct {
  gint64 run_id;
  size_t n;
  gint64 *item_ids;
  int n_classes;
  float *probs;        /* n x n_classes */
  int dim;
  float *emb;          /* n x dim, NULL when loaded without embeddings or the run has none */
  size_t n_labeled;
  float *labeled_emb;  /* n_labeled x dim */
  size_t n_missing;
} FthActivePool;

/* run_id 0: the newest run with predictions. need_predictions FALSE (random sampling) loads
 * only the item ids. */
FthActivePool *fth_active_pool_load(FthStore *store, gint64 run_id, gboolean need_predictions,
                                    gboolean need_embeddings, GError **error);
void fth_active_pool_free(FthActivePool *pool);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(FthActivePool, fth_active_pool_free)

/* ---- The queue --------------------------------------------------------------------------------
 * Scores the pool with opt->strategy and replaces that strategy's queue with the picks in rank
 * order (score, rank, run). mc_probs: BALD's passes over the pool, in pool order (NULL for the
 * other strategies). *n_queued (may be NULL) receives the queue length. */
gboolean fth_queue_refill_pool(FthStore *store, const FthActivePool *pool, const float *mc_probs,
                               int n_passes, const FthAcqOptions *opt, size_t *n_queued,
                               GError **error);
/* Loads the pool of run_id (0: the newest) and refills; BALD needs the model's passes and is
 * refused here (use fth_active_model_mc_probs and fth_queue_refill_pool). */
gboolean fth_queue_refill(FthStore *store, gint64 run_id, const FthAcqOptions *opt,
                          size_t *n_queued, GError **error);
/* The first entry of STRATEGY's queue whose item still has no human label; entries labeled in
 * the meantime are taken off the queue on the way. NULL without error when the queue is empty. */
FthQueueEntry *fth_queue_next(FthStore *store, const char *strategy, GError **error);
/* Why an item is asked, for display: "entropy 1.055, rank 2, run 7" (rank from 1; core-set
 * scores are distances and say so). */
char *fth_queue_entry_reason(const FthQueueEntry *entry);

/* ---- Self-training ----------------------------------------------------------------------------
 * Pseudo-labels: predictions of run prediction_run whose top probability reaches threshold, on
 * items without a human label, at most cap per class (the most confident first; 0: no cap).
 * They are written as model annotations (author MODEL, score = the probability) under a new run
 * of kind "pseudo-label" (its config names the prediction run, threshold and cap), replacing the
 * item's earlier model annotations and never touching a human one. */
gboolean fth_pseudo_label(FthStore *store, gint64 prediction_run, double threshold, guint cap,
                          gint64 *out_run, guint *n_added, GError **error);
/* The annotations of pseudo-label run RUN (all model-authored), in item order. */
GPtrArray *fth_pseudo_list(FthStore *store, gint64 run, GError **error);
/* Review in bulk: the pseudo-labels of RUN with label LABEL_ID (0: any) and score >= MIN_SCORE are
 * promoted to human labels (PROMOTE) or deleted. An item that got a human label meanwhile keeps
 * it; its pseudo-label is deleted either way. */
gboolean fth_pseudo_review(FthStore *store, gint64 run, gint64 label_id, double min_score,
                           gboolean promote, guint *n_done, GError **error);

/* ---- The active-learning loop -----------------------------------------------------------------
 * A model as the loop sees it: the trainer-backed one (fth_active_trainer_model) or a test's fake.
 * Pool indices are 0..n_pool-1 of the caller's sample set. */
typedef struct {
  int n_classes;
  int dim;  /* embedding size; 0 when the model has none (core-set and hybrid then refuse) */
  /* Fine-tunes from the current state on idx[0..n) with labels[0..n) (parallel to idx) and
   * per-sample weights (NULL: all 1). */
  gboolean (*fit)(gpointer self, const uint32_t *idx, const int32_t *labels, const float *weights,
                  size_t n, guint round, GError **error);
  /* Outputs for idx[0..n): probs n x C, emb n x dim (NULL: not wanted), mc_probs n_passes x n x C
   * (n_passes 0: not wanted). */
  gboolean (*predict)(gpointer self, const uint32_t *idx, size_t n, float *probs, float *emb,
                      int n_passes, float *mc_probs, GError **error);
  /* Accuracy on the held-out (test) set. */
  gboolean (*evaluate)(gpointer self, double *accuracy, GError **error);
} FthAlModel;

typedef struct {
  guint round;       /* 0: after the start labels */
  size_t n_labels;   /* human (oracle) labels the model was fitted on */
  size_t n_pseudo;   /* pseudo-labels it was fitted on as well */
  double accuracy;
  double fit_s, score_s; /* fine-tune, and predict + acquire over the pool */
} FthAlRound;

typedef void (*FthAlRoundFunc)(const FthAlRound *round, gpointer user_data);

typedef struct {
  FthAcqOptions acq;       /* strategy, batch, seed (also seeds the start labels) */
  size_t start;            /* random labels to start from (100) */
  guint rounds;            /* acquisitions after the start (10) */
  int mc_passes;           /* BALD's dropout passes (10) */
  double pseudo_threshold; /* > 0: self-training with confident predictions (0: off) */
  guint pseudo_cap;        /* per class, 0: none */
  float pseudo_weight;     /* their sample weight (0.5) */
  FthAlRoundFunc on_round;
  gpointer on_round_data;
  GCancellable *cancellable;
} FthAlOptions;

void fth_al_options_init(FthAlOptions *opt);

/* Simulated active learning with ORACLE (n_pool true labels) standing in for the human: start
 * labels drawn at random, then per round fit, evaluate, score the unlabeled pool, reveal the
 * batch the strategy picks. Appends one FthAlRound per fit to ROUNDS (rounds + 1 in all). The
 * same options, seed and a deterministic model give the same picks and numbers. */
gboolean fth_al_simulate(const FthAlModel *model, gpointer self, const int32_t *oracle,
                         size_t n_pool, const FthAlOptions *opt, GArray *rounds, GError **error);

/* ---- The trainer-backed model -----------------------------------------------------------------
 * FthAlModel over in-memory samples: a FthTrainer kept across rounds (each fit fine-tunes from
 * the previous weights at the recipe's constant rate), predictions from its graph in inference
 * mode, accuracy on the test indices. Pseudo-label weights are the samples' weights in the loss's
 * weighted mean (FthSamples.weights); weight 0 trains as without the sample. MC dropout for BALD is applied on the classifier head: dropout
 * with probability mc_dropout on the embedding, then the last linear layer, per pass. */
typedef struct {
  const char *recipe;        /* zoo name or path ("fmnist-cnn") */
  const char *const *vars;
  int batch;                 /* 0: the recipe's */
  double lr;                 /* 0: the recipe's */
  int epochs;                /* per fit, at least (2) */
  int min_steps;             /* per fit, at least this many optimizer steps (100) */
  uint64_t seed;
  float mc_dropout;          /* 0.5 */
  gboolean augment;          /* the recipe's augmentation (off by default) */
} FthActiveTrainerOptions;

typedef struct FthActiveTrainer FthActiveTrainer;

void fth_active_trainer_options_init(FthActiveTrainerOptions *opt);
/* samples: the pool and test images (labels are copied; the loop's labels replace them);
 * test: indices into samples for evaluate. */
FthActiveTrainer *fth_active_trainer_new(const FthSamples *samples, const uint32_t *test,
                                         size_t n_test, int n_classes,
                                         const FthActiveTrainerOptions *opt, GError **error);
void fth_active_trainer_free(FthActiveTrainer *at);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(FthActiveTrainer, fth_active_trainer_free)
int fth_active_trainer_embedding_dim(FthActiveTrainer *at);
/* The FthAlModel to pass to fth_al_simulate with AT as self. */
FthAlModel fth_active_trainer_model(FthActiveTrainer *at);

/* MC dropout on a linear head: for each pass t and item i, mask emb[i] (drop with probability p,
 * scale the rest by 1/(1-p); mask bits from (seed, t, i)), then softmax(weight h + bias).
 * weight: n_classes x dim (PyTorch's layout), bias may be NULL. Output: n_passes x n x C. */
void fth_active_head_mc(const float *emb, size_t n, int dim, const float *weight,
                        const float *bias, int n_classes, float p, int n_passes, uint64_t seed,
                        float *mc_probs);
/* The same with the head of the model in CHECKPOINT_DIR (for BALD over stored embeddings). */
gboolean fth_active_checkpoint_mc(const char *checkpoint_dir, const float *emb, size_t n, int dim,
                                  int n_classes, int n_passes, float p, uint64_t seed,
                                  float *mc_probs, GError **error);

/* ---- Pre-labeling -------------------------------------------------------------------------------
 * Runs the model in CHECKPOINT_DIR over every image item of the project: a new run of kind
 * "predict" (config: {"checkpoint": DIR}) with every item's class probabilities and embedding,
 * and for each item without a human label a model annotation of the top class (author MODEL,
 * that run, score = its probability) replacing the item's earlier model annotations. Human
 * labels are never touched or duplicated. Reports progress on JOB when not NULL. */
typedef struct {
  gint64 run_id;
  size_t n_predicted;
  size_t n_annotated;
} FthPrelabelResult;

gboolean fth_prelabel(FthStore *store, const char *checkpoint_dir, FthJob *job,
                      GCancellable *cancellable, FthPrelabelResult *result, GError **error);
/* The same as a job named "autolabel". */
FthJob *fth_prelabel_job_new(FthStore *store, const char *checkpoint_dir);

/* ---- The labeling loop ------------------------------------------------------------------------
 * What the workbench runs in the background after every K (settings.retrain_every) new human
 * labels: fine-tune the model in checkpoint_dir on the labeled train items (at least `epochs`
 * epochs and min_steps steps, at the recipe's constant rate), save it to out_dir, measure it on
 * the test items (a run of kind "active-round" with metric test_acc at step = number of human
 * labels: the accuracy-against-labels chart), pre-label the project with it and refill the queue
 * with the project's strategy and batch. Meta active.labels_at_round records the label count. */
typedef struct {
  const char *checkpoint_dir;
  const char *out_dir;   /* may equal checkpoint_dir: the new checkpoint replaces the old */
  int epochs;            /* 3 */
  int min_steps;         /* 100 */
  uint64_t seed;
  int mc_passes;         /* BALD: 10 */
  float mc_dropout;      /* BALD: 0.5 */
  gint64 pseudo_run;     /* > 0: also fit this pseudo-label run's labels (self-training) */
  float pseudo_weight;   /* their weight in the loss (0.5; human labels 1) */
} FthActiveRoundOptions;

typedef struct {
  size_t n_labels, n_train, n_pseudo;
  double test_acc;       /* NAN without test items */
  gint64 round_run_id, predict_run_id;
  size_t n_queued;
} FthActiveRoundResult;

void fth_active_round_options_init(FthActiveRoundOptions *opt);
/* *due: at least settings->retrain_every human labels since the last round; *n_new (may be
 * NULL) how many. */
gboolean fth_active_round_due(FthStore *store, const FthActiveSettings *settings, gboolean *due,
                              gint64 *n_new, GError **error);
gboolean fth_active_round(FthStore *store, const FthActiveRoundOptions *opt, FthJob *job,
                          GCancellable *cancellable, FthActiveRoundResult *res, GError **error);
/* The same as a job named "active-round" (the workbench runs it in the background); its last
 * progress event carries the metrics labels, queued and test_acc. OPT's strings are copied. */
FthJob *fth_active_round_job_new(FthStore *store, const FthActiveRoundOptions *opt);

/* The newest artifact of kind "checkpoint" (a training run's or a round's), as a path; NO_MODEL
 * when the project has none. */
char *fth_active_latest_checkpoint(FthStore *store, GError **error);

G_END_DECLS
