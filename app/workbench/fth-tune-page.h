/* fth-tune-page.h: hyperparameter search in the workbench. Pick an objective (a zoo recipe,
 * trained on the project's images, or a test function that trains nothing), edit its default
 * search space in a form (refused with the engine's message naming the parameter when
 * invalid), choose the sampler, pruner, trials and parallel trials, and start: the study runs
 * as a job on the engine's pool (in the jobs panel too) and is kept in the project's store, so
 * starting it again resumes it. As trials finish the page shows them in a sortable table, the
 * best-so-far curve, a parallel-coordinates plot and the parameters' importances; "Promote
 * Best" makes the best trial's model the project's current one. */
#pragma once

#include "fth-jobs-panel.h"
#include "fth-parallel-coords.h"

#include <fathom/store.h>

G_BEGIN_DECLS

#define FTH_TYPE_TUNE_PAGE (fth_tune_page_get_type())
G_DECLARE_FINAL_TYPE(FthTunePage, fth_tune_page, FTH, TUNE_PAGE, GtkWidget)

/* STORE NULL: no project. Loads the chosen objective's stored study on a worker thread, then
 * emits "study-loaded". */
void fth_tune_page_set_project(FthTunePage *self, FthStore *store, FthJobsPanel *jobs_panel);
/* A zoo recipe with a default space ("fmnist-cnn") or a test function ("branin"): fills the
 * form with its default space (or its stored study's) and loads its stored trials. FALSE
 * when there is no such objective or a study is running. */
gboolean fth_tune_page_select_objective(FthTunePage *self, const char *name);
/* "tpe", "gp", "random" or "grid"; "none", "median", "asha" or "hyperband". */
gboolean fth_tune_page_select_sampler(FthTunePage *self, const char *name);
gboolean fth_tune_page_select_pruner(FthTunePage *self, const char *name);
/* Trials the study should hold, trials run at once, epochs per trial (recipes). */
void fth_tune_page_set_budget(FthTunePage *self, guint n_trials, guint n_parallel, int epochs);
/* Sets one field of parameter PARAM in the form: "kind" ("float", "int", "categorical"),
 * "low", "high", "step", "choices" (comma-separated) as text, or "log" ("true"/"false").
 * FALSE when there is no such parameter or field. The form is checked at once. */
gboolean fth_tune_page_set_param_field(FthTunePage *self, const char *param, const char *field,
                                       const char *text);
/* The form's search space, or NULL with ERROR naming the parameter at fault. */
FthSearchSpace *fth_tune_page_get_space(FthTunePage *self, GError **error);
/* The message under the form ("" when the space is valid) and the status line. */
const char *fth_tune_page_get_message(FthTunePage *self);
const char *fth_tune_page_get_status(FthTunePage *self);
/* Starts (or resumes) the study ("study-finished" when it ends); FALSE when one is running,
 * there is no project or the space is invalid. */
gboolean fth_tune_page_start(FthTunePage *self);
/* Stops the running study (running trials end as failed, "cancelled"); FALSE when none. */
gboolean fth_tune_page_stop(FthTunePage *self);
/* Promotes the best trial of a recipe's study to the project's current model (a job;
 * "promoted" when it ends). FALSE when nothing can be promoted. */
gboolean fth_tune_page_promote_best(FthTunePage *self);
/* The trials table's model (FthTuneTrialItem), in the order shown. */
GListModel *fth_tune_page_get_trials(FthTunePage *self);
/* Sorts the table by a column: "number", "state", "value", "duration" or a parameter's name. */
gboolean fth_tune_page_sort_by(FthTunePage *self, const char *column, GtkSortType order);
FthParallelCoords *fth_tune_page_get_parallel_coords(FthTunePage *self);
guint fth_tune_page_get_n_best_points(FthTunePage *self);
/* The importances shown (NaN where a parameter has none); FALSE while none are. */
gboolean fth_tune_page_get_importance(FthTunePage *self, const char *param, double *importance);

G_END_DECLS
