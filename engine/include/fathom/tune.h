/* fathom/tune.h: hyperparameter search.
 *
 * A search space (FthSearchSpace) is declared in JSON and validated on load. A study
 * (FthTuneStudy) asks a sampler (random, grid, TPE, GP) for the parameters of each new trial,
 * runs an objective on a pool of worker threads, and asks a pruner (median, successive halving /
 * ASHA, Hyperband) after every reported step whether the trial should stop early.
 *
 * The objective is a callback: it reads its parameters from the FthTuneTrialContext, trains (or
 * evaluates) step by step, calls fth_tune_trial_report(ctx, step, value) after each step and
 * returns as soon as that call answers TRUE (the trial was pruned or the study was cancelled).
 * Synthetic functions, the LC2 learning curve and real training all plug in the same way.
 *
 * Values inside the engine: every parameter of a trial is a double: the value itself for float
 * and int parameters, the choice index for categorical ones, NaN when a conditional parameter
 * is inactive in that trial.
 *
 * Persistence: a study lives in the project's store (fth_tune_study_open_store: every trial
 * and intermediate value is a row) or, for objectives without a project, in a JSON-lines
 * journal; either way it can be interrupted and resumed.
 *
 * Determinism: a sampler draws the random numbers of trial N from a generator seeded by
 * (seed, N), so a study run with one worker, or resumed from its store or journal after a
 * kill, repeats exactly the same trials.
 *
 * Errors: GError in FTH_TUNE_ERROR; messages name the parameter, file or option at fault.
 */
#pragma once

#include <fathom/store.h>
#include <gio/gio.h>

G_BEGIN_DECLS

#define FTH_TUNE_ERROR (fth_tune_error_quark())
GQuark fth_tune_error_quark(void);

typedef enum {
  FTH_TUNE_ERROR_SPACE,     /* an invalid search space declaration */
  FTH_TUNE_ERROR_INVALID,   /* a bad option or argument */
  FTH_TUNE_ERROR_EXHAUSTED, /* the grid sampler has no point left */
  FTH_TUNE_ERROR_JOURNAL,   /* the study journal cannot be read or written */
  FTH_TUNE_ERROR_OBJECTIVE, /* the objective returned a non-finite value */
  FTH_TUNE_ERROR_FAILED,    /* anything else (a numeric failure in a sampler) */
  FTH_TUNE_ERROR_STORE,     /* the project's store holds a different or damaged study */
} FthTuneError;

/* ---- search spaces ------------------------------------------------------------------------ */

typedef enum {
  FTH_PARAM_FLOAT,
  FTH_PARAM_INT,
  FTH_PARAM_CATEGORICAL,
} FthParamKind;

typedef struct {
  char *name;
  FthParamKind kind;
  double low, high;       /* FLOAT, INT: inclusive bounds */
  gboolean log;           /* FLOAT, INT: sampled uniformly in log(value) */
  double step;            /* FLOAT: 0 or a grid step; INT: >= 1 */
  char **choices;         /* CATEGORICAL: the choices as JSON text ("\"sgd\"", "3", "true") */
  guint n_choices;
  int parent;             /* index of the categorical parameter this one depends on, -1: none */
  guint64 parent_choices; /* bit i set: active when the parent takes choice i */
  int group;              /* sub-space index (0 when the space declares no groups) */
} FthTuneParam;

typedef struct _FthSearchSpace FthSearchSpace;

/* Declaration, a JSON object:
 *   {"params": [
 *      {"name": "lr", "type": "float", "low": 1e-4, "high": 1, "log": true},
 *      {"name": "width", "type": "int", "low": 16, "high": 128, "step": 16},
 *      {"name": "optimizer", "type": "categorical", "choices": ["sgd", "adam"]},
 *      {"name": "momentum", "type": "float", "low": 0, "high": 0.99,
 *       "condition": {"parent": "optimizer", "values": ["sgd"]}}],
 *    "groups": [["lr", "momentum"], ["width"]]}
 * A parent must be a categorical declared before the parameters that depend on it (at most 64
 * choices). "groups" is optional: it marks independent sub-spaces that multivariate samplers
 * model separately; parameters in no listed group form one more group. SOURCE names the file
 * (or "<string>") in messages. */
FthSearchSpace *fth_search_space_new_from_json(const char *json, gssize length,
                                               const char *source, GError **error);
FthSearchSpace *fth_search_space_new_from_file(const char *path, GError **error);
FthSearchSpace *fth_search_space_ref(FthSearchSpace *space);
void fth_search_space_unref(FthSearchSpace *space);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(FthSearchSpace, fth_search_space_unref)

guint fth_search_space_get_n_params(const FthSearchSpace *space);
const FthTuneParam *fth_search_space_get_param(const FthSearchSpace *space, guint index);
int fth_search_space_find(const FthSearchSpace *space, const char *name); /* -1: missing */
guint fth_search_space_get_n_groups(const FthSearchSpace *space);
/* The declaration as canonical JSON (what the store keeps as space_json). */
char *fth_search_space_to_json(const FthSearchSpace *space);
/* TRUE when parameter INDEX is active given the values of its ancestors in VALUES. */
gboolean fth_search_space_is_active(const FthSearchSpace *space, guint index,
                                    const double *values);
/* VALUES as a JSON object {"name": value, ...}; inactive parameters are left out. */
char *fth_search_space_values_to_json(const FthSearchSpace *space, const double *values);
/* Parses what fth_search_space_values_to_json wrote; checks every value against its range. */
gboolean fth_search_space_values_from_json(const FthSearchSpace *space, const char *json,
                                           double *values, GError **error);

/* ---- trials --------------------------------------------------------------------------------- */

/* Same numbers as FthTrialState in fathom/store.h. */
typedef enum {
  FTH_TUNE_TRIAL_RUNNING = 0,
  FTH_TUNE_TRIAL_COMPLETE = 1,
  FTH_TUNE_TRIAL_PRUNED = 2,
  FTH_TUNE_TRIAL_FAILED = 3,
} FthTuneTrialState;

#define FTH_TUNE_MAX_RUNGS 32

/* A trial as the samplers and pruners see it. Values are as reported (the study's direction
 * is applied by the code that ranks them). */
typedef struct {
  int number;
  FthTuneTrialState state;
  double *params;       /* n_params of the space; NaN where inactive */
  double value;         /* COMPLETE: the objective's result; NaN otherwise */
  gint64 *steps;        /* intermediate values, in report order */
  double *step_values;
  guint n_steps;
  guint steps_capacity;
  int bracket;          /* Hyperband bracket, 0 without Hyperband */
  double rung_values[FTH_TUNE_MAX_RUNGS]; /* successive halving: value recorded per rung */
  guint n_rungs;
  double duration_s;
  char *error;          /* FAILED: the reason */
  char *host;
} FthTuneTrial;

const char *fth_tune_trial_state_to_string(FthTuneTrialState state);

/* ---- samplers ------------------------------------------------------------------------------- */

typedef struct _FthSampler FthSampler;

typedef struct {
  guint n_startup_trials;   /* random trials before the model is used (Optuna: 10) */
  guint n_ei_candidates;    /* candidates drawn from l(x) (24) */
  double prior_weight;      /* (1.0) */
  gboolean multivariate;    /* one joint Parzen estimator per group */
  gboolean constant_liar;   /* running trials count as the worst observations */
} FthTpeOptions;

void fth_tpe_options_init(FthTpeOptions *options); /* Optuna 3.1's defaults */

typedef struct {
  guint n_startup_trials;   /* random trials before the GP is used (default 10) */
  guint n_candidates;       /* random candidates for the acquisition (default 2000) */
  gboolean constant_liar;   /* running trials enter the GP at the worst observed value */
} FthGpOptions;

void fth_gp_options_init(FthGpOptions *options);

FthSampler *fth_sampler_new_random(guint64 seed);
/* Every parameter takes POINTS_PER_AXIS values (ints with fewer values and categoricals take
 * all of theirs); trials walk the Cartesian product in order, then the sampler is exhausted. */
FthSampler *fth_sampler_new_grid(guint points_per_axis);
FthSampler *fth_sampler_new_tpe(const FthTpeOptions *options, guint64 seed);
FthSampler *fth_sampler_new_gp(const FthGpOptions *options, guint64 seed);
/* "random", "grid", "tpe", "tpe-mv", "gp" with default options. */
FthSampler *fth_sampler_new_by_name(const char *name, guint64 seed, GError **error);
void fth_sampler_free(FthSampler *sampler);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(FthSampler, fth_sampler_free)
const char *fth_sampler_get_name(const FthSampler *sampler);

/* Fills VALUES (n_params) for trial NUMBER from HISTORY (the study's other trials, any state,
 * in number order). MAXIMIZE gives the study's direction. */
gboolean fth_sampler_sample(FthSampler *sampler, const FthSearchSpace *space,
                            const FthTuneTrial *const *history, guint n_history, int number,
                            gboolean maximize, double *values, GError **error);

/* ---- pruners -------------------------------------------------------------------------------- */

typedef struct _FthPruner FthPruner;

/* Optuna's MedianPruner: prune at step t when the trial's best value so far is worse than the
 * median of the step-t values of completed trials; nothing before N_STARTUP_TRIALS completed
 * or before N_WARMUP_STEPS. */
FthPruner *fth_pruner_new_median(guint n_startup_trials, gint64 n_warmup_steps);
/* Asynchronous successive halving: rungs at MIN_RESOURCE * RF^(k + MIN_EARLY_STOPPING_RATE);
 * a trial continues past a rung when its value is within the best 1/RF of the values recorded
 * there so far (the best, while fewer than RF are). GRACE steps = MIN_RESOURCE. */
FthPruner *fth_pruner_new_asha(gint64 min_resource, guint reduction_factor,
                               guint min_early_stopping_rate);
/* Hyperband: floor(log_RF(MAX/MIN)) + 1 ASHA brackets; a trial joins a bracket by the CRC-32
 * of "<study name>_<number>" (as Optuna does), and samplers see only its bracket's trials. */
FthPruner *fth_pruner_new_hyperband(gint64 min_resource, gint64 max_resource,
                                    guint reduction_factor);
/* "none", "median", "asha", "hyperband" with MAX_RESOURCE steps per trial. NULL for "none". */
FthPruner *fth_pruner_new_by_name(const char *name, gint64 max_resource, GError **error);
void fth_pruner_free(FthPruner *pruner);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(FthPruner, fth_pruner_free)
const char *fth_pruner_get_name(const FthPruner *pruner);
/* The bracket of a new trial (0 for pruners without brackets). */
int fth_pruner_bracket(const FthPruner *pruner, const char *study_name, int number);
/* TRUE when TRIAL, which has just reported its last step, should stop. HISTORY is every trial
 * of the study (TRIAL included). May record rung values in TRIAL. */
gboolean fth_pruner_should_prune(FthPruner *pruner, FthTuneTrial *trial,
                                 const FthTuneTrial *const *history, guint n_history,
                                 gboolean maximize);

/* ---- studies -------------------------------------------------------------------------------- */

typedef struct _FthTuneStudy FthTuneStudy;
typedef struct _FthTuneTrialContext FthTuneTrialContext;

/* Runs one trial. Returns TRUE with *VALUE set when it finished or stopped because
 * fth_tune_trial_report answered TRUE (the value is then ignored); FALSE with ERROR set when it
 * failed (the study records the reason and goes on). Called on worker threads. */
typedef gboolean (*FthObjectiveFunc)(FthTuneTrialContext *ctx, gpointer user_data, double *value,
                                     GError **error);

int fth_tune_trial_get_number(FthTuneTrialContext *ctx);
/* The raw value of parameter NAME (NaN when inactive or unknown). */
double fth_tune_trial_get_value(FthTuneTrialContext *ctx, const char *name);
gboolean fth_tune_trial_is_active(FthTuneTrialContext *ctx, const char *name);
gint64 fth_tune_trial_get_int(FthTuneTrialContext *ctx, const char *name);
/* The chosen choice as JSON text ("\"sgd\""); NULL when inactive. */
const char *fth_tune_trial_get_choice(FthTuneTrialContext *ctx, const char *name);
const double *fth_tune_trial_get_values(FthTuneTrialContext *ctx);
FthSearchSpace *fth_tune_trial_get_space(FthTuneTrialContext *ctx);
/* Records VALUE at STEP and asks the pruner; TRUE means stop now (pruned or cancelled). */
gboolean fth_tune_trial_report(FthTuneTrialContext *ctx, gint64 step, double value);

typedef enum {
  FTH_TUNE_EVENT_TRIAL_STARTED,
  FTH_TUNE_EVENT_TRIAL_REPORTED,
  FTH_TUNE_EVENT_TRIAL_FINISHED,
} FthTuneEventKind;

/* Called with the study's lock held, from the thread that caused the event: keep it short and
 * do not call back into the study. */
typedef void (*FthTuneEventFunc)(FthTuneStudy *study, FthTuneEventKind kind,
                                 const FthTuneTrial *trial, gpointer user_data);

FthTuneStudy *fth_tune_study_new(const char *name, FthSearchSpace *space, FthSampler *sampler,
                                 FthPruner *pruner, gboolean maximize);
void fth_tune_study_free(FthTuneStudy *study);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(FthTuneStudy, fth_tune_study_free)

/* Keeps the study in a JSON-lines journal at PATH. When the file exists, its trials are loaded
 * first (the space, direction and name must match): finished trials are kept, trials that
 * were running when the writer died are run again with the same number and parameters. */
gboolean fth_tune_study_open_journal(FthTuneStudy *study, const char *path, GError **error);
/* Keeps the study in the project's store (studies, trials, trial_values) instead: when the
 * store has a study of this name, its trials are loaded first (direction and space must
 * match), finished ones kept and running ones (the writer died) run again with the same number
 * and parameters, overwriting their intermediate values step by step (the store cannot delete
 * them, so a rerun that stops at an earlier step than the killed run leaves the later ones;
 * a one-worker study reruns to the same steps). Otherwise the study is
 * created, linked to RUN_ID (0: none). Call before optimizing, on a study with no trials and no
 * journal. Non-finite intermediate values are not stored. */
gboolean fth_tune_study_open_store(FthTuneStudy *study, FthStore *store, gint64 run_id,
                                   GError **error);
/* The study's id in the store, 0 when it is not kept in one. */
gint64 fth_tune_study_get_store_id(FthTuneStudy *study);
void fth_tune_study_set_event_func(FthTuneStudy *study, FthTuneEventFunc func,
                                   gpointer user_data);
/* Stop starting trials once the steps used (see below) reach STEPS (0: no limit). */
void fth_tune_study_set_step_budget(FthTuneStudy *study, gint64 steps);
void fth_tune_study_set_host(FthTuneStudy *study, const char *host);

/* Runs trials until the study holds N_TRIALS (finished ones from a journal count), on
 * N_WORKERS threads. Returns FALSE only when the study itself cannot go on (a sampler error,
 * a journal write error); failed trials are not errors. CANCELLABLE stops it: running trials
 * are told to stop at their next report and are recorded as failed ("cancelled"). */
gboolean fth_tune_study_optimize(FthTuneStudy *study, guint n_trials, guint n_workers,
                                 FthObjectiveFunc objective, gpointer user_data,
                                 GCancellable *cancellable, GError **error);

const char *fth_tune_study_get_name(FthTuneStudy *study);
FthSearchSpace *fth_tune_study_get_space(FthTuneStudy *study);
gboolean fth_tune_study_get_maximize(FthTuneStudy *study);
guint fth_tune_study_get_n_trials(FthTuneStudy *study);
/* Valid until the next call that changes the study. */
const FthTuneTrial *fth_tune_study_get_trial(FthTuneStudy *study, guint index);
/* The best completed trial, NULL when none completed. */
const FthTuneTrial *fth_tune_study_get_best_trial(FthTuneStudy *study);
/* The epochs used: the sum over trials of the last step each one reported. */
gint64 fth_tune_study_get_steps_used(FthTuneStudy *study);

/* ---- parameter importances ---------------------------------------------------------------- */

typedef struct {
  guint n_trees;           /* trees in the random forest (Optuna: 64) */
  guint max_depth;         /* (64) */
  guint min_samples_split; /* (2) */
  guint64 seed;            /* bootstrap samples; the same seed gives the same importances */
} FthImportanceOptions;

void fth_importance_options_init(FthImportanceOptions *options);

/* fANOVA (Hutter et al. 2014, Optuna's default evaluator): a random forest of regression trees
 * fitted to the completed trials' parameters -> value; each parameter's importance is the mean
 * over trees of the variance of the tree's marginal in that parameter (the tree averaged over
 * the others under the uniform measure of the space, log parameters in log space) divided by
 * the tree's total variance, normalized to sum to 1. Fills IMPORTANCES (n_params of SPACE);
 * parameters inactive in some completed trial (conditional ones) get NaN, as Optuna leaves
 * them out. FALSE with ERROR when fewer than 2 trials completed. OPTIONS may be NULL. */
gboolean fth_tune_importances(const FthSearchSpace *space, const FthTuneTrial *const *trials,
                              guint n_trials, const FthImportanceOptions *options,
                              double *importances, GError **error);

/* ---- built-in objectives -------------------------------------------------------------------- */

/* The peer benchmark's objectives (shared/peers/optuna), bit for bit: test functions (all
 * minimised) and the synthetic learning curve LC2 (27 steps; noise seed from a guint64 passed
 * as user data). */
double fth_tune_obj_branin(const double *x);
double fth_tune_obj_hartmann6(const double *x);
double fth_tune_obj_rosenbrock(const double *x, int d);
double fth_tune_obj_ackley(const double *x, int d);

#define FTH_TUNE_LC_T_MAX 27
#define FTH_TUNE_LC_M27_STAR 0.10043052572667904
double fth_tune_lc_curve_noise_free(double lr, double wd, int t);
double fth_tune_lc_loss(double lr, double wd, int t, guint64 seed);

typedef struct {
  const char *name;          /* "branin", "hartmann6", "rosenbrock4", "ackley5", "lc2" */
  FthObjectiveFunc objective;
  double optimum;            /* f* (lc2: the noise-free m(27)*) */
  guint default_trials;      /* the peer benchmark's budget */
  const char *space_json;
} FthTuneBuiltin;

/* NULL when NAME is not one of them. */
const FthTuneBuiltin *fth_tune_builtin_find(const char *name);

/* ---- training as the objective -------------------------------------------------------------- */

/* Each trial trains a zoo recipe (data/recipes) with the trial's parameters on the project's
 * labeled images with fth_train (a "train" run in the store, per-epoch metrics, the latest
 * checkpoint in <project>/models/tune-STUDY/trial-N/last, its recipe in trial-N.json) and
 * reports the validation accuracy after every epoch; a pruner's stop (or the study's
 * cancellation) cancels the training. The best epoch's checkpoint is kept in trial-N itself,
 * and its validation accuracy is the trial's value: maximize it.
 * Parameters the space does not declare keep the recipe's values. */
typedef struct {
  FthStore *store;
  const char *recipe;        /* a zoo recipe with a default space ("cnn": fmnist-cnn) */
  const char *study_name;    /* names the trials' folder */
  int epochs;                /* per trial, also the pruner's maximum resource (6) */
  gsize limit_train;         /* > 0: only the first N training items */
  guint64 seed;              /* initialization and shuffles, the same for every trial (1) */
  GCancellable *cancellable; /* the study's: cancels the running trainings too */
} FthTuneTrainConfig;

void fth_tune_train_config_init(FthTuneTrainConfig *config);
/* The zoo recipes that have a default search space, NULL-terminated. */
const char *const *fth_tune_train_recipes(void);
/* The default search space of RECIPE: lr and weight_decay (log), batch (32, 64, 128), dropout,
 * augment (strength 0..1), label_smoothing, optimizer (sgd, adamw) and, for sgd only, momentum;
 * width (the first conv's channels, or the recipe's width/hidden variable) and, where the
 * recipe has one, depth (mlp: hidden layers, resnet: blocks per stage, mobilenetv2: repeats
 * of the repeated blocks). The recipe's own values lie inside. */
const char *fth_tune_train_space_json(const char *recipe, GError **error);
/* The recipe JSON a trial with VALUES (of SPACE) trains for EPOCHS: RECIPE's zoo file with the
 * parameters the space declares applied (dropout 0 removes the dropout layers; without any,
 * a positive dropout goes before the output layer; augment s: flips with probability s / 2 and
 * shifts of up to round(4 s) pixels; adamw drops momentum and nesterov). */
char *fth_tune_train_recipe_json(const char *recipe, const FthSearchSpace *space,
                                 const double *values, int epochs, GError **error);
/* The objective; USER_DATA is an FthTuneTrainConfig. */
gboolean fth_tune_train_objective(FthTuneTrialContext *ctx, gpointer user_data, double *value,
                                  GError **error);
/* The folder of trial NUMBER's best checkpoint. */
char *fth_tune_train_trial_dir(const FthTuneTrainConfig *config, int number);
/* Makes the best completed trial's checkpoint the project's current model: a finished
 * "train" run (summary: study, trial, val_acc, params) with that checkpoint as its artifact,
 * so fth_latest_checkpoint() answers it. */
gboolean fth_tune_train_promote(FthTuneStudy *study, const FthTuneTrainConfig *config,
                                gint64 *run_id, GError **error);

G_END_DECLS
