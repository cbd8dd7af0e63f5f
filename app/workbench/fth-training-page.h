/* fth-training-page.h: start a training run (recipe from the model zoo, epochs), follow it
 * live (loss per step, accuracy per epoch) and list the project's past runs. The run is a job
 * on the engine's pool, shown in the jobs panel too. */
#pragma once

#include "fth-confusion-matrix.h"
#include "fth-jobs-panel.h"

#include <fathom/optim.h>
#include <fathom/store.h>

G_BEGIN_DECLS

#define FTH_TYPE_TRAINING_PAGE (fth_training_page_get_type())
G_DECLARE_FINAL_TYPE(FthTrainingPage, fth_training_page, FTH, TRAINING_PAGE, GtkWidget)

/* STORE NULL: no project. Reads the recipes and the runs on a worker thread, then emits
 * "runs-listed". */
void fth_training_page_set_project(FthTrainingPage *self, FthStore *store,
                                   FthJobsPanel *jobs_panel);
/* Starts a run with the chosen recipe and epochs ("run-finished" when it ends); FALSE when
 * one is running or no recipe is chosen. */
gboolean fth_training_page_start(FthTrainingPage *self);
/* Asks the running run to stop (it checkpoints and ends as cancelled); FALSE when none runs. */
gboolean fth_training_page_cancel(FthTrainingPage *self);
void fth_training_page_select_recipe(FthTrainingPage *self, const char *name);
void fth_training_page_set_epochs(FthTrainingPage *self, int epochs);
/* Choosing a recipe fills these in with the values it was tuned with ("train" in its JSON);
 * choosing another optimizer sets the learning rate to that optimizer's default. */
void fth_training_page_set_hyperparameters(FthTrainingPage *self, FthOptimKind optimizer,
                                           double lr, int batch);
void fth_training_page_get_hyperparameters(FthTrainingPage *self, FthOptimKind *optimizer,
                                           double *lr, int *batch, int *epochs);
/* The device the next run trains on, as FthTrainOptions.device takes it: "cpu" or "cuda:N".
 * The device row lists the CPU and every CUDA device that answers (probed on a worker thread
 * when the page is made). */
const char *fth_training_page_get_device(FthTrainingPage *self);
guint fth_training_page_get_n_runs(FthTrainingPage *self);
/* The chosen run's chosen confusion matrix (by default the newest run's test matrix, or while
 * it trains its newest epoch's validation matrix). Clicking a cell emits "show-items" with the
 * true and the predicted class names and the matrix's split when the stored predictions are those of that matrix's
 * model (the newest finished run's final one); for any other the page says why it cannot. */
FthConfusionMatrix *fth_training_page_get_confusion_matrix(FthTrainingPage *self);
/* Shows RUN_ID's matrices as if picked in the runs list (read on a worker thread, then
 * "matrix-shown"); FALSE when it is not listed. */
gboolean fth_training_page_select_run(FthTrainingPage *self, gint64 run_id);
/* The run whose matrices the drop-down lists (0: none). */
gint64 fth_training_page_get_shown_run(FthTrainingPage *self);
/* Shows the shown run's validation matrix after EPOCH (from 1), or its test matrix for 0, as
 * if picked in the drop-down ("matrix-shown"); FALSE when the run has none such. */
gboolean fth_training_page_select_matrix(FthTrainingPage *self, int epoch);
/* The shown matrix's epoch: 0 for the test matrix, -1 when none is shown. */
int fth_training_page_get_matrix_epoch(FthTrainingPage *self);
/* Points plotted: loss per step, and validation accuracy per epoch. */
guint fth_training_page_get_n_loss_points(FthTrainingPage *self);
guint fth_training_page_get_n_accuracy_points(FthTrainingPage *self);

G_END_DECLS
