/* fth-training-page.c: the training run is an FthJob whose function calls fth_train() and
 * turns its progress into job events with metrics; the page plots those events as they
 * arrive on the main loop. The confusion matrices the trainer stores (one per epoch on the
 * validation split, one on the test split at the end) are read on a worker thread for the run
 * chosen in the list. */
#include "fth-training-page.h"

#include "fth-background-thread.h"
#include "fth-confusion-matrix.h"
#include "fth-line-chart.h"

#include <adwaita.h>
#include <fathom/backend.h>
#include <fathom/recipe.h>
#include <fathom/train.h>
#include <glib/gi18n.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

/* The item grid splits a class by the newest stored predictions (those of the newest run that
 * has any, whatever made them); a matrix's cell lists its items only if they are its model's. */
typedef enum {
  PREDICTIONS_NONE,  /* none stored: the grid lists the class's items, and says why */
  PREDICTIONS_OWN,   /* made with the run's checkpoint */
  PREDICTIONS_OTHER, /* another model's */
} Predictions;

struct _FthTrainingPage {
  GtkWidget parent_instance;

  AdwComboRow *recipe_row;
  GtkStringList *recipes;
  GtkSpinButton *epochs_spin;
  GtkSpinButton *batch_spin;
  AdwComboRow *optimizer_row; /* rows in FthOptimKind order */
  GtkSpinButton *lr_spin;
  AdwComboRow *device_row;
  GtkStringList *devices;
  GPtrArray *device_specs;  /* char *, parallel to devices: "cpu", "cuda:N" */
  GArray *recipe_defaults; /* RecipeDefaults, parallel to recipes */
  gboolean listing;        /* the recipe list is being replaced: keep the user's values */
  GtkButton *start_button;
  GtkLabel *status_label;
  FthLineChart *loss_chart;
  FthLineChart *accuracy_chart;
  GtkListBox *runs_list;
  FthConfusionMatrix *confusion;
  GtkLabel *confusion_hint;
  GtkDropDown *matrix_dropdown;
  GtkStringList *matrix_choices;

  FthStore *store;
  FthJobsPanel *jobs_panel;
  GCancellable *cancellable;
  FthJob *job;
  guint subscription;
  guint n_runs;
  GArray *run_ids;          /* gint64, one per row of runs_list */
  gint64 shown_run;         /* the run whose matrices are listed; 0 when none */
  GPtrArray *matrices;      /* Matrix, in matrix_choices order */
  gint64 matrices_run;      /* whose they are */
  Predictions predictions;  /* what the stored predictions are to that run's final model */
  guint default_matrix;     /* the choice shown unless the user picks another */
  gboolean pinned;          /* the user chose an older run or matrix: keep it while training */
  gboolean choosing;        /* the page itself is changing the row or the choice */
  gboolean matrix_due;      /* an epoch ended: its matrix is stored before the next event */
  GCancellable *matrix_cancellable;
  guint loss_series, val_loss_series, train_acc_series, val_acc_series;
};

G_DEFINE_FINAL_TYPE(FthTrainingPage, fth_training_page, GTK_TYPE_WIDGET)

enum { SIGNAL_RUNS_LISTED, SIGNAL_RUN_FINISHED, SIGNAL_SHOW_ITEMS, SIGNAL_MATRIX_SHOWN,
       N_SIGNALS };
static guint signals[N_SIGNALS];

/* ---- the job ------------------------------------------------------------------------------ */

/* The hyperparameters a recipe was tuned with (its "train" object). */
typedef struct {
  FthOptimKind optimizer;
  double lr;
  int batch, epochs;
} RecipeDefaults;

typedef struct {
  FthStore *store;
  char *recipe;
  int epochs, batch;
  double lr;
  char *device;             /* FthTrainOptions.device */
  gboolean other_optimizer; /* train with `optimizer` rather than the recipe's */
  FthOptimKind optimizer;
  FthJob *job; /* not owned: the job owns this */
  FthTrainResult result;
  gboolean has_result;
} TrainWork;

static void
train_work_free(TrainWork *work)
{
  g_object_unref(work->store);
  g_free(work->recipe);
  g_free(work->device);
  if (work->has_result)
    fth_train_result_clear(&work->result);
  g_free(work);
}

static void
train_progress(const FthTrainProgress *progress, gpointer user_data)
{
  TrainWork *work = user_data;
  FthJobMetric metrics[6];
  guint n = 0;

  metrics[n++] = (FthJobMetric){ (char *)"loss", progress->loss };
  metrics[n++] = (FthJobMetric){ (char *)"epoch", progress->epoch };
  if (progress->epoch_end) {
    metrics[n++] = (FthJobMetric){ (char *)"train_acc", progress->train_acc };
    metrics[n++] = (FthJobMetric){ (char *)"val_acc", progress->val_acc };
    metrics[n++] = (FthJobMetric){ (char *)"val_loss", progress->val_loss };
  }
  g_autofree char *message = g_strdup_printf(_("Epoch %d of %d"), progress->epoch + 1,
                                             progress->epochs);
  fth_job_progress_metrics(work->job, progress->step, progress->total_steps, message, metrics, n);
}

/* The recipe NAME with its optimizer replaced, written as NAME.json in a new temporary folder
 * (so the run keeps the recipe's name); returns the folder. The trainer takes no optimizer
 * option, only a recipe. */
static char *
write_recipe_with_optimizer(const char *name, FthOptimKind optimizer, char **recipe_path,
                            GError **error)
{
  g_autofree char *path = fth_recipe_find(name);
  if (path == NULL) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, _("Recipe “%s” not found"), name);
    return NULL;
  }
  g_autoptr(JsonParser) parser = json_parser_new();
  if (!json_parser_load_from_file(parser, path, error))
    return NULL;
  JsonNode *root = json_parser_get_root(parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT(root)) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, _("%s: not a recipe"), path);
    return NULL;
  }
  JsonObject *recipe = json_node_get_object(root);
  if (!json_object_has_member(recipe, "train"))
    json_object_set_object_member(recipe, "train", json_object_new());
  JsonObject *train = json_object_get_object_member(recipe, "train");
  if (train == NULL) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, _("%s: not a recipe"), path);
    return NULL;
  }
  json_object_set_string_member(train, "optimizer",
                                optimizer == FTH_OPTIM_ADAMW ? "adamw" : "sgd");
  char *dir = g_dir_make_tmp("fathom-recipe-XXXXXX", error);
  if (dir == NULL)
    return NULL;
  g_autofree char *file = g_strconcat(name, ".json", NULL);
  *recipe_path = g_build_filename(dir, file, NULL);
  g_autofree char *text = json_to_string(root, TRUE);
  if (!g_file_set_contents(*recipe_path, text, -1, error)) {
    g_rmdir(dir);
    g_clear_pointer(recipe_path, g_free);
    g_free(dir);
    return NULL;
  }
  return dir;
}

/* Training keeps every core busy. Ten steps of niceness below the workbench's own, its thread
 * and the compute threads it starts give way to the main loop, whose frames would otherwise
 * wait behind them (measured with bench/workbench/run.sh): relative, because a workbench that
 * itself runs at nice 10 would otherwise train at its own priority. The job pool's thread keeps
 * it after the run, which suits a pool of background work. */
#define TRAINING_NICE_STEPS 10

static gboolean
train_job(FthJob *job, GCancellable *cancellable, gpointer user_data, GError **error)
{
  TrainWork *work = user_data;
  FthTrainOptions options;
  g_autofree char *recipe_dir = NULL, *recipe_path = NULL;

  work->job = job;
  fth_background_thread_lower_priority(TRAINING_NICE_STEPS);
  /* Connections of its own: on the window's store the trainer's long reads (the whole
   * dataset) would hold the read connection's lock while the item grid waits to page in. */
  g_autoptr(FthStore) store = fth_store_open(fth_store_get_dir(work->store), error);
  if (store == NULL)
    return FALSE;
  if (work->other_optimizer) {
    recipe_dir = write_recipe_with_optimizer(work->recipe, work->optimizer, &recipe_path, error);
    if (recipe_dir == NULL)
      return FALSE;
  }
  fth_train_options_init(&options);
  options.recipe = recipe_path != NULL ? recipe_path : work->recipe;
  options.epochs = work->epochs;
  options.batch = work->batch;
  options.lr = work->lr;
  options.device = work->device;
  options.progress = train_progress;
  options.progress_data = work;
  options.cancellable = cancellable;
  gboolean trained = fth_train(store, &options, &work->result, error);
  if (recipe_path != NULL) {
    g_remove(recipe_path);
    g_rmdir(recipe_dir);
  }
  if (!trained)
    return FALSE;
  work->has_result = TRUE;
  return TRUE;
}

/* ---- recipes and runs --------------------------------------------------------------------- */

typedef struct {
  GStrv recipes;
  GArray *recipe_defaults; /* RecipeDefaults, one per recipe */
  GPtrArray *runs;      /* FthRun */
} PageData;

static void
page_data_free(PageData *data)
{
  g_strfreev(data->recipes);
  g_clear_pointer(&data->recipe_defaults, g_array_unref);
  g_clear_pointer(&data->runs, g_ptr_array_unref);
  g_free(data);
}

/* One stored confusion matrix. */
typedef struct {
  gboolean test; /* the test split after the last epoch; else validation after EPOCH */
  int epoch;
  GStrv classes;
  gint64 *counts; /* row = true class */
  guint n;
} Matrix;

static void
matrix_free(Matrix *matrix)
{
  g_strfreev(matrix->classes);
  g_free(matrix->counts);
  g_free(matrix);
}

/* The metadata of a "confusion" artifact ({"split", "epoch", "labels": [...], "counts": [[...],
 * ...], ...}, see store_confusion() in engine/train/train-run.c); NULL when it is not one. */
static Matrix *
parse_matrix(const char *meta_json)
{
  g_autoptr(JsonParser) parser = json_parser_new();
  if (meta_json == NULL || !json_parser_load_from_data(parser, meta_json, -1, NULL))
    return NULL;
  JsonNode *root = json_parser_get_root(parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT(root))
    return NULL;
  JsonObject *confusion = json_node_get_object(root);
  const char *split = json_object_get_string_member_with_default(confusion, "split", "");
  JsonNode *labels = json_object_get_member(confusion, "labels");
  JsonNode *counts = json_object_get_member(confusion, "counts");
  if ((strcmp(split, "test") != 0 && strcmp(split, "val") != 0) || labels == NULL ||
      counts == NULL || !JSON_NODE_HOLDS_ARRAY(labels) || !JSON_NODE_HOLDS_ARRAY(counts))
    return NULL;
  JsonArray *names = json_node_get_array(labels), *rows = json_node_get_array(counts);
  guint n = json_array_get_length(names);
  if (n == 0 || json_array_get_length(rows) != n)
    return NULL;

  g_autoptr(GStrvBuilder) classes = g_strv_builder_new();
  g_autofree gint64 *cells = g_new0(gint64, (gsize)n * n);
  for (guint i = 0; i < n; i++) {
    JsonNode *name = json_array_get_element(names, i);
    char index[16];
    g_snprintf(index, sizeof index, "%u", i);
    g_strv_builder_add(classes, JSON_NODE_HOLDS_VALUE(name) &&
                                    json_node_get_value_type(name) == G_TYPE_STRING
                                  ? json_node_get_string(name) : index);
    JsonNode *row = json_array_get_element(rows, i);
    if (!JSON_NODE_HOLDS_ARRAY(row) || json_array_get_length(json_node_get_array(row)) != n)
      return NULL;
    for (guint j = 0; j < n; j++)
      cells[(gsize)i * n + j] = json_array_get_int_element(json_node_get_array(row), j);
  }
  Matrix *matrix = g_new0(Matrix, 1);
  matrix->test = strcmp(split, "test") == 0;
  matrix->epoch = (int)json_object_get_int_member_with_default(confusion, "epoch", 0);
  matrix->classes = g_strv_builder_end(classes);
  matrix->counts = g_steal_pointer(&cells);
  matrix->n = n;
  return matrix;
}

static int
compare_names(gconstpointer a, gconstpointer b)
{
  return g_strcmp0(*(const char *const *)a, *(const char *const *)b);
}

/* The zoo's recipe names: the .json files beside the one fth_recipe_find() locates. */
static GStrv
list_recipes(void)
{
  g_autoptr(GStrvBuilder) names = g_strv_builder_new();
  g_autofree char *mlp = fth_recipe_find("mlp");
  if (mlp != NULL) {
    g_autofree char *folder = g_path_get_dirname(mlp);
    g_autoptr(GDir) dir = g_dir_open(folder, 0, NULL);
    g_autoptr(GPtrArray) found = g_ptr_array_new_with_free_func(g_free);
    const char *entry;
    while (dir != NULL && (entry = g_dir_read_name(dir)) != NULL)
      if (g_str_has_suffix(entry, ".json"))
        g_ptr_array_add(found, g_strndup(entry, strlen(entry) - strlen(".json")));
    g_ptr_array_sort(found, compare_names);
    for (guint i = 0; i < found->len; i++)
      g_strv_builder_add(names, g_ptr_array_index(found, i));
  }
  return g_strv_builder_end(names);
}

static void
page_data_in_thread(GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  GError *error = NULL;
  PageData *data = g_new0(PageData, 1);

  data->recipes = list_recipes();
  data->recipe_defaults = g_array_new(FALSE, FALSE, sizeof(RecipeDefaults));
  for (guint i = 0; data->recipes[i] != NULL; i++) {
    g_autofree char *path = fth_recipe_find(data->recipes[i]);
    g_autoptr(FthRecipe) recipe = path != NULL ? fth_recipe_load(path, NULL, NULL) : NULL;
    /* A recipe that does not load still gets a row; training it reports why. */
    RecipeDefaults defaults = { FTH_OPTIM_SGD, 0.01, 64, 5 };
    if (recipe != NULL)
      defaults = (RecipeDefaults){ recipe->train.optim.kind, recipe->train.optim.lr,
                                   recipe->train.batch, recipe->train.epochs };
    g_array_append_val(data->recipe_defaults, defaults);
  }
  data->runs = fth_store_list_runs(task_data, "train", &error);
  if (data->runs == NULL) {
    page_data_free(data);
    g_task_return_error(task, error);
    return;
  }
  g_task_return_pointer(task, data, (GDestroyNotify)page_data_free);
}

/* ---- confusion matrices ------------------------------------------------------------------ */

typedef struct {
  FthStore *store;
  gint64 run_id;
} MatrixQuery;

typedef struct {
  GPtrArray *matrices; /* Matrix */
  Predictions predictions;
} MatrixSet;

static void
matrix_set_free(MatrixSet *set)
{
  g_ptr_array_unref(set->matrices);
  g_free(set);
}

static void
matrix_query_free(MatrixQuery *query)
{
  g_object_unref(query->store);
  g_free(query);
}

/* Whether the newest stored predictions were made with CHECKPOINT (the "checkpoint" of the
 * run that made them, as `fathom predict` records it). */
static Predictions
whose_predictions(FthStore *store, const char *checkpoint, GError **error)
{
  gint64 run_id = fth_store_latest_prediction_run(store, error);
  if (run_id <= 0)
    return PREDICTIONS_NONE;
  g_autoptr(FthRun) run = fth_store_get_run(store, run_id, error);
  if (run == NULL || checkpoint == NULL || run->config_json == NULL)
    return PREDICTIONS_OTHER;
  g_autoptr(JsonNode) config = json_from_string(run->config_json, NULL);
  const char *used = config != NULL && JSON_NODE_HOLDS_OBJECT(config)
                       ? json_object_get_string_member_with_default(
                           json_node_get_object(config), "checkpoint", NULL)
                       : NULL;
  if (used == NULL)
    return PREDICTIONS_OTHER;
  g_autofree char *a = g_canonicalize_filename(used, NULL);
  g_autofree char *b = g_canonicalize_filename(checkpoint, NULL);
  return strcmp(a, b) == 0 ? PREDICTIONS_OWN : PREDICTIONS_OTHER;
}

/* The run's matrices: the test one first, then the validation ones by epoch (a resumed run
 * stores an epoch again: the later one counts). */
static void
matrices_in_thread(GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  const MatrixQuery *query = task_data;
  GError *error = NULL;
  g_autoptr(GPtrArray) artifacts = fth_store_list_artifacts(query->store, query->run_id, &error);
  if (artifacts == NULL) {
    g_task_return_error(task, error);
    return;
  }
  /* The trainer's artifacts all carry its checkpoint folder. */
  const char *checkpoint = artifacts->len > 0
                             ? ((const FthArtifact *)g_ptr_array_index(artifacts, 0))->path
                             : NULL;
  Predictions predictions = whose_predictions(query->store, checkpoint, &error);
  if (error != NULL) {
    g_task_return_error(task, error);
    return;
  }
  GPtrArray *matrices = g_ptr_array_new_with_free_func((GDestroyNotify)matrix_free);
  Matrix *test = NULL;
  for (guint i = 0; i < artifacts->len; i++) {
    const FthArtifact *artifact = g_ptr_array_index(artifacts, i);
    Matrix *matrix = g_strcmp0(artifact->kind, "confusion") == 0
                       ? parse_matrix(artifact->meta_json) : NULL;
    if (matrix == NULL)
      continue;
    if (matrix->test) {
      g_clear_pointer(&test, matrix_free);
      test = matrix;
      continue;
    }
    guint at = 0;
    while (at < matrices->len && ((Matrix *)g_ptr_array_index(matrices, at))->epoch < matrix->epoch)
      at++;
    if (at < matrices->len && ((Matrix *)g_ptr_array_index(matrices, at))->epoch == matrix->epoch)
      g_ptr_array_remove_index(matrices, at);
    g_ptr_array_insert(matrices, (gint)at, matrix);
  }
  if (test != NULL)
    g_ptr_array_insert(matrices, 0, test);
  MatrixSet *set = g_new0(MatrixSet, 1);
  set->matrices = matrices;
  set->predictions = predictions;
  g_task_return_pointer(task, set, (GDestroyNotify)matrix_set_free);
}

static const Matrix *
chosen_matrix(FthTrainingPage *self)
{
  guint chosen = gtk_drop_down_get_selected(self->matrix_dropdown);
  return self->matrices != NULL && chosen < self->matrices->len
           ? g_ptr_array_index(self->matrices, chosen) : NULL;
}

static void
show_chosen_matrix(FthTrainingPage *self)
{
  const Matrix *matrix = chosen_matrix(self);
  fth_confusion_matrix_set(self->confusion,
                           matrix != NULL ? (const char *const *)matrix->classes : NULL,
                           matrix != NULL ? matrix->counts : NULL, matrix != NULL ? matrix->n : 0);
  gtk_label_set_text(self->confusion_hint,
                     _("Rows are the true classes, columns the predicted ones. Pick a run below "
                       "and a split above; click a cell to list its items."));
  g_signal_emit(self, signals[SIGNAL_MATRIX_SHOWN], 0);
}

/* The run's matrices as choices. A pinned choice stays; otherwise the test matrix, or while
 * the run trains the newest epoch's. */
static void
show_matrices(FthTrainingPage *self, gint64 run_id, GPtrArray *matrices, Predictions predictions)
{
  const Matrix *old = chosen_matrix(self);
  gboolean keep = self->pinned && old != NULL && self->matrices_run == run_id;
  gboolean old_test = keep && old->test;
  int old_epoch = keep ? old->epoch : 0;

  g_autoptr(GStrvBuilder) names = g_strv_builder_new();
  guint chosen = GTK_INVALID_LIST_POSITION;
  for (guint i = 0; i < matrices->len; i++) {
    const Matrix *matrix = g_ptr_array_index(matrices, i);
    g_autofree char *name =
      matrix->test ? g_strdup(_("Test"))
                   /* TRANSLATORS: the confusion matrix of the validation split after epoch %d */
                   : g_strdup_printf(_("Epoch %d validation"), matrix->epoch);
    g_strv_builder_add(names, name);
    if (keep && matrix->test == old_test && matrix->epoch == old_epoch)
      chosen = i;
  }
  g_auto(GStrv) choices = g_strv_builder_end(names);
  self->default_matrix = matrices->len == 0 ? GTK_INVALID_LIST_POSITION
                         : ((Matrix *)g_ptr_array_index(matrices, 0))->test ? 0
                                                                             : matrices->len - 1;
  if (chosen == GTK_INVALID_LIST_POSITION)
    chosen = self->default_matrix;

  self->choosing = TRUE;
  g_clear_pointer(&self->matrices, g_ptr_array_unref);
  self->matrices = g_ptr_array_ref(matrices);
  self->matrices_run = run_id;
  self->predictions = predictions;
  gtk_string_list_splice(self->matrix_choices, 0,
                         g_list_model_get_n_items(G_LIST_MODEL(self->matrix_choices)),
                         (const char *const *)choices);
  gtk_drop_down_set_selected(self->matrix_dropdown, chosen);
  gtk_widget_set_sensitive(GTK_WIDGET(self->matrix_dropdown), matrices->len > 0);
  self->choosing = FALSE;
  show_chosen_matrix(self);
}

static void
matrices_read(GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(GError) error = NULL;
  MatrixSet *set = g_task_propagate_pointer(G_TASK(result), &error);

  if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  FthTrainingPage *self = FTH_TRAINING_PAGE(source);
  if (set == NULL) {
    gtk_label_set_text(self->status_label, error->message);
    return;
  }
  /* An older read was cancelled: this one is shown_run's. */
  show_matrices(self, self->shown_run, set->matrices, set->predictions);
  matrix_set_free(set);
}

/* Reads RUN_ID's matrices on a worker thread (none for 0). */
static void
load_matrices(FthTrainingPage *self, gint64 run_id)
{
  g_cancellable_cancel(self->matrix_cancellable);
  g_clear_object(&self->matrix_cancellable);
  self->shown_run = run_id;
  if (self->store == NULL || run_id == 0) {
    g_autoptr(GPtrArray) none = g_ptr_array_new();
    show_matrices(self, 0, none, PREDICTIONS_NONE);
    return;
  }
  MatrixQuery *query = g_new0(MatrixQuery, 1);
  query->store = g_object_ref(self->store);
  query->run_id = run_id;
  self->matrix_cancellable = g_cancellable_new();
  g_autoptr(GTask) task = g_task_new(self, self->matrix_cancellable, matrices_read, NULL);
  g_task_set_task_data(task, query, (GDestroyNotify)matrix_query_free);
  g_task_run_in_thread(task, matrices_in_thread);
}

/* The user picked a run: anything but the newest pins it. */
static void
run_row_selected(GtkListBox *list, GtkListBoxRow *row, gpointer user_data)
{
  FthTrainingPage *self = FTH_TRAINING_PAGE(user_data);
  if (self->choosing || row == NULL)
    return;
  guint index = (guint)gtk_list_box_row_get_index(row);
  if (index >= self->run_ids->len)
    return;
  self->pinned = index != 0;
  load_matrices(self, g_array_index(self->run_ids, gint64, index));
}

/* The user picked a matrix: anything but the newest run's default pins it. */
static void
matrix_choice_changed(GtkDropDown *dropdown, GParamSpec *pspec, gpointer user_data)
{
  FthTrainingPage *self = FTH_TRAINING_PAGE(user_data);
  if (self->choosing)
    return;
  self->pinned = gtk_drop_down_get_selected(dropdown) != self->default_matrix ||
                 self->run_ids->len == 0 ||
                 g_array_index(self->run_ids, gint64, 0) != self->shown_run;
  show_chosen_matrix(self);
}

static void
show_runs(FthTrainingPage *self, GPtrArray *runs)
{
  GtkWidget *child;
  self->choosing = TRUE;
  while ((child = gtk_widget_get_first_child(GTK_WIDGET(self->runs_list))) != NULL)
    gtk_list_box_remove(self->runs_list, child);

  self->n_runs = runs->len;
  g_array_set_size(self->run_ids, 0);
  guint shown = 0;
  for (guint i = 0; i < runs->len; i++) {
    const FthRun *run = g_ptr_array_index(runs, i);
    g_autoptr(GDateTime) created = g_date_time_new_from_unix_local(run->created_us / G_USEC_PER_SEC);
    g_autofree char *when = g_date_time_format(created, "%Y-%m-%d %H:%M");
    g_autofree char *subtitle = g_strdup_printf("%s · %s", fth_run_state_to_string(run->state),
                                                when);
    GtkWidget *row = adw_action_row_new();
    adw_preferences_row_set_title(ADW_PREFERENCES_ROW(row), run->name != NULL ? run->name : "");
    adw_preferences_row_set_use_markup(ADW_PREFERENCES_ROW(row), FALSE);
    adw_action_row_set_subtitle(ADW_ACTION_ROW(row), subtitle);
    gtk_list_box_append(self->runs_list, row);
    g_array_append_val(self->run_ids, run->id);
    if (self->pinned && run->id == self->shown_run)
      shown = i;
  }
  /* A pinned run that is gone (another program deleted it) pins nothing. */
  self->pinned = self->pinned && runs->len > 0 &&
                 g_array_index(self->run_ids, gint64, shown) == self->shown_run;
  if (runs->len > 0)
    gtk_list_box_select_row(self->runs_list, gtk_list_box_get_row_at_index(self->runs_list,
                                                                            (int)shown));
  self->choosing = FALSE;
  load_matrices(self, runs->len > 0 ? g_array_index(self->run_ids, gint64, shown) : 0);
}

/* The chosen recipe's hyperparameters into the rows. */
static void
apply_recipe_defaults(FthTrainingPage *self)
{
  guint selected = adw_combo_row_get_selected(self->recipe_row);
  if (self->recipe_defaults == NULL || selected >= self->recipe_defaults->len)
    return;
  const RecipeDefaults *d = &g_array_index(self->recipe_defaults, RecipeDefaults, selected);
  adw_combo_row_set_selected(self->optimizer_row, d->optimizer);
  gtk_spin_button_set_value(self->lr_spin, d->lr);
  gtk_spin_button_set_value(self->batch_spin, d->batch);
  gtk_spin_button_set_value(self->epochs_spin, d->epochs);
}

static void
recipe_selected(AdwComboRow *row, GParamSpec *pspec, gpointer user_data)
{
  FthTrainingPage *self = FTH_TRAINING_PAGE(user_data);
  if (!self->listing)
    apply_recipe_defaults(self);
}

/* Another optimizer wants another learning rate: its default, or the recipe's for its own. */
static void
optimizer_selected(AdwComboRow *row, GParamSpec *pspec, gpointer user_data)
{
  FthTrainingPage *self = FTH_TRAINING_PAGE(user_data);
  guint selected = adw_combo_row_get_selected(self->recipe_row);
  FthOptimKind kind = (FthOptimKind)adw_combo_row_get_selected(row);
  if (self->recipe_defaults != NULL && selected < self->recipe_defaults->len &&
      g_array_index(self->recipe_defaults, RecipeDefaults, selected).optimizer == kind)
    gtk_spin_button_set_value(self->lr_spin,
                              g_array_index(self->recipe_defaults, RecipeDefaults, selected).lr);
  else
    gtk_spin_button_set_value(self->lr_spin, fth_optim_config_default(kind).lr);
}

static void
page_data_read(GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(GError) error = NULL;
  PageData *data = g_task_propagate_pointer(G_TASK(result), &error);

  if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  FthTrainingPage *self = FTH_TRAINING_PAGE(source);
  if (data == NULL) {
    gtk_label_set_text(self->status_label, error->message);
    return;
  }

  /* Keep the user's choice of recipe across refreshes. */
  guint selected = adw_combo_row_get_selected(self->recipe_row);
  g_autofree char *chosen =
    selected < g_list_model_get_n_items(G_LIST_MODEL(self->recipes))
      ? g_strdup(gtk_string_list_get_string(self->recipes, selected))
      : NULL;
  g_clear_pointer(&self->recipe_defaults, g_array_unref);
  self->recipe_defaults = g_steal_pointer(&data->recipe_defaults);
  self->listing = TRUE;
  gtk_string_list_splice(self->recipes, 0,
                         g_list_model_get_n_items(G_LIST_MODEL(self->recipes)),
                         (const char *const *)data->recipes);
  if (chosen != NULL)
    fth_training_page_select_recipe(self, chosen);
  self->listing = FALSE;
  if (chosen == NULL)
    apply_recipe_defaults(self);
  if (data->recipes[0] == NULL)
    gtk_label_set_text(self->status_label, _("No recipes found (data/recipes is missing)"));
  show_runs(self, data->runs);
  page_data_free(data);
  g_signal_emit(self, signals[SIGNAL_RUNS_LISTED], 0);
}

static void
reload(FthTrainingPage *self)
{
  g_cancellable_cancel(self->cancellable);
  g_clear_object(&self->cancellable);
  if (self->store == NULL)
    return;
  self->cancellable = g_cancellable_new();
  g_autoptr(GTask) task = g_task_new(self, self->cancellable, page_data_read, NULL);
  g_task_set_task_data(task, g_object_ref(self->store), g_object_unref);
  g_task_run_in_thread(task, page_data_in_thread);
}

/* ---- following the run ------------------------------------------------------------------- */

static void
stop_following(FthTrainingPage *self)
{
  if (self->job != NULL && self->subscription != 0)
    fth_job_unsubscribe(self->job, self->subscription);
  self->subscription = 0;
  g_clear_object(&self->job);
}

static void
job_event(FthJob *job, const FthJobEvent *event, gpointer user_data)
{
  FthTrainingPage *self = FTH_TRAINING_PAGE(user_data);
  double value, epoch = 0;

  fth_job_event_get_metric(event, "epoch", &epoch);
  /* An epoch's end is announced before its matrix is stored; the next event comes after. */
  gboolean epoch_end = fth_job_event_get_metric(event, "train_acc", &value);
  if (self->matrix_due && !epoch_end && !fth_job_event_is_terminal(event) && !self->pinned)
    reload(self);
  self->matrix_due = epoch_end;
  if (fth_job_event_get_metric(event, "loss", &value))
    fth_line_chart_append(self->loss_chart, self->loss_series, (double)event->step, value);
  if (fth_job_event_get_metric(event, "val_loss", &value))
    fth_line_chart_append(self->loss_chart, self->val_loss_series, (double)event->step, value);
  if (fth_job_event_get_metric(event, "train_acc", &value))
    fth_line_chart_append(self->accuracy_chart, self->train_acc_series, epoch + 1, value);
  if (fth_job_event_get_metric(event, "val_acc", &value))
    fth_line_chart_append(self->accuracy_chart, self->val_acc_series, epoch + 1, value);
  if (event->message != NULL && !fth_job_event_is_terminal(event))
    gtk_label_set_text(self->status_label, event->message);

  if (!fth_job_event_is_terminal(event))
    return;

  g_autofree char *status = NULL;
  if (event->type == FTH_JOB_EVENT_SUCCEEDED) {
    /* The job is done, so its work is no longer written to. */
    const TrainWork *work = g_object_get_data(G_OBJECT(job), "fth-train-work");
    /* A split can be empty (a project with train and test only); say what was measured. */
    double test = work->result.test_acc, val = work->result.val_acc;
    if (isfinite(test) && isfinite(val))
      status = g_strdup_printf(_("Finished: test accuracy %.1f%%, validation accuracy %.1f%%"),
                               test * 100.0, val * 100.0);
    else if (isfinite(test))
      status = g_strdup_printf(_("Finished: test accuracy %.1f%%"), test * 100.0);
    else if (isfinite(val))
      status = g_strdup_printf(_("Finished: validation accuracy %.1f%%"), val * 100.0);
    else
      status = g_strdup(_("Finished (no validation or test items to measure accuracy on)"));
  } else if (event->type == FTH_JOB_EVENT_CANCELLED) {
    status = g_strdup(_("Training cancelled"));
  } else {
    status = g_strdup_printf(_("Training failed: %s"),
                             event->error != NULL ? event->error->message : _("unknown error"));
  }
  gtk_label_set_text(self->status_label, status);
  gtk_widget_set_sensitive(GTK_WIDGET(self->start_button), TRUE);
  stop_following(self);
  reload(self);
  g_signal_emit(self, signals[SIGNAL_RUN_FINISHED], 0, event->type == FTH_JOB_EVENT_SUCCEEDED);
}

gboolean
fth_training_page_start(FthTrainingPage *self)
{
  g_return_val_if_fail(FTH_IS_TRAINING_PAGE(self), FALSE);
  guint selected = adw_combo_row_get_selected(self->recipe_row);
  if (self->store == NULL || self->job != NULL ||
      selected >= g_list_model_get_n_items(G_LIST_MODEL(self->recipes)))
    return FALSE;

  TrainWork *work = g_new0(TrainWork, 1);
  work->store = g_object_ref(self->store);
  work->recipe = g_strdup(gtk_string_list_get_string(self->recipes, selected));
  work->epochs = gtk_spin_button_get_value_as_int(self->epochs_spin);
  work->batch = gtk_spin_button_get_value_as_int(self->batch_spin);
  work->lr = gtk_spin_button_get_value(self->lr_spin);
  work->device = g_strdup(fth_training_page_get_device(self));
  work->optimizer = (FthOptimKind)adw_combo_row_get_selected(self->optimizer_row);
  work->other_optimizer =
    self->recipe_defaults != NULL && selected < self->recipe_defaults->len &&
    g_array_index(self->recipe_defaults, RecipeDefaults, selected).optimizer != work->optimizer;
  self->job = fth_job_new("train", train_job, work, (GDestroyNotify)train_work_free);
  g_object_set_data(G_OBJECT(self->job), "fth-train-work", work);

  fth_line_chart_clear(self->loss_chart);
  fth_line_chart_clear(self->accuracy_chart);
  gtk_label_set_text(self->status_label, _("Starting…"));
  gtk_widget_set_sensitive(GTK_WIDGET(self->start_button), FALSE);
  self->subscription = fth_job_subscribe(self->job, NULL, job_event, self, NULL);
  if (self->jobs_panel != NULL) {
    g_autofree char *title = g_strdup_printf(_("Training “%s”"), work->recipe);
    fth_jobs_panel_add(self->jobs_panel, self->job, title);
  }
  fth_job_start(self->job);
  return TRUE;
}

gboolean
fth_training_page_cancel(FthTrainingPage *self)
{
  g_return_val_if_fail(FTH_IS_TRAINING_PAGE(self), FALSE);
  if (self->job == NULL)
    return FALSE;
  fth_job_cancel(self->job);
  return TRUE;
}

/* Stored per-item predictions are of a final model (`fathom predict` on a run's checkpoint):
 * only the test matrix and the last epoch's of that run can be split by them. For any other
 * the page says so rather than list items another model predicted. */
static void
confusion_cell_activated(FthConfusionMatrix *matrix, guint truth, guint predicted,
                         gpointer user_data)
{
  FthTrainingPage *self = FTH_TRAINING_PAGE(user_data);
  const Matrix *chosen = chosen_matrix(self);
  if (chosen == NULL)
    return;
  const Matrix *last = g_ptr_array_index(self->matrices, self->matrices->len - 1);
  if (!chosen->test && chosen->epoch != last->epoch) {
    g_autofree char *note = g_strdup_printf(
      _("The items of epoch %d cannot be listed: per-item predictions are not stored for it, "
        "only for the run’s final model (by “fathom predict”)."),
      chosen->epoch);
    gtk_label_set_text(self->confusion_hint, note);
    return;
  }
  if (self->predictions == PREDICTIONS_OTHER) {
    gtk_label_set_text(self->confusion_hint,
                       _("This run’s items cannot be listed: the stored per-item predictions are "
                         "another model’s (run “fathom predict” with this run’s checkpoint)."));
    return;
  }
  g_signal_emit(self, signals[SIGNAL_SHOW_ITEMS], 0,
                fth_confusion_matrix_get_label(matrix, truth),
                fth_confusion_matrix_get_label(matrix, predicted),
                (int)(chosen->test ? FTH_SPLIT_TEST : FTH_SPLIT_VAL));
}

static void
start_clicked(GtkButton *button, gpointer user_data)
{
  fth_training_page_start(FTH_TRAINING_PAGE(user_data));
}

/* ---- the API ------------------------------------------------------------------------------ */

void
fth_training_page_set_project(FthTrainingPage *self, FthStore *store, FthJobsPanel *jobs_panel)
{
  g_return_if_fail(FTH_IS_TRAINING_PAGE(self));

  /* A run of the previous project goes on in the jobs panel; this page stops following it. */
  stop_following(self);
  gtk_widget_set_sensitive(GTK_WIDGET(self->start_button), store != NULL);
  g_set_object(&self->store, store);
  g_set_object(&self->jobs_panel, jobs_panel);
  self->pinned = FALSE;
  load_matrices(self, 0); /* none until the project's runs are listed */
  fth_line_chart_clear(self->loss_chart);
  fth_line_chart_clear(self->accuracy_chart);
  gtk_label_set_text(self->status_label, "");
  reload(self);
}

void
fth_training_page_select_recipe(FthTrainingPage *self, const char *name)
{
  g_return_if_fail(FTH_IS_TRAINING_PAGE(self));
  for (guint i = 0; i < g_list_model_get_n_items(G_LIST_MODEL(self->recipes)); i++)
    if (g_strcmp0(gtk_string_list_get_string(self->recipes, i), name) == 0)
      adw_combo_row_set_selected(self->recipe_row, i);
}

void
fth_training_page_set_epochs(FthTrainingPage *self, int epochs)
{
  g_return_if_fail(FTH_IS_TRAINING_PAGE(self));
  gtk_spin_button_set_value(self->epochs_spin, epochs);
}

void
fth_training_page_set_hyperparameters(FthTrainingPage *self, FthOptimKind optimizer, double lr,
                                      int batch)
{
  g_return_if_fail(FTH_IS_TRAINING_PAGE(self));
  adw_combo_row_set_selected(self->optimizer_row, optimizer);
  gtk_spin_button_set_value(self->lr_spin, lr);
  gtk_spin_button_set_value(self->batch_spin, batch);
}

void
fth_training_page_get_hyperparameters(FthTrainingPage *self, FthOptimKind *optimizer,
                                      double *lr, int *batch, int *epochs)
{
  g_return_if_fail(FTH_IS_TRAINING_PAGE(self));
  *optimizer = (FthOptimKind)adw_combo_row_get_selected(self->optimizer_row);
  *lr = gtk_spin_button_get_value(self->lr_spin);
  *batch = gtk_spin_button_get_value_as_int(self->batch_spin);
  *epochs = gtk_spin_button_get_value_as_int(self->epochs_spin);
}

guint
fth_training_page_get_n_runs(FthTrainingPage *self)
{
  g_return_val_if_fail(FTH_IS_TRAINING_PAGE(self), 0);
  return self->n_runs;
}

FthConfusionMatrix *
fth_training_page_get_confusion_matrix(FthTrainingPage *self)
{
  g_return_val_if_fail(FTH_IS_TRAINING_PAGE(self), NULL);
  return self->confusion;
}

gboolean
fth_training_page_select_run(FthTrainingPage *self, gint64 run_id)
{
  g_return_val_if_fail(FTH_IS_TRAINING_PAGE(self), FALSE);
  for (guint i = 0; i < self->run_ids->len; i++)
    if (g_array_index(self->run_ids, gint64, i) == run_id) {
      self->choosing = TRUE;
      gtk_list_box_select_row(self->runs_list,
                              gtk_list_box_get_row_at_index(self->runs_list, (int)i));
      self->choosing = FALSE;
      self->pinned = i != 0;
      load_matrices(self, run_id);
      return TRUE;
    }
  return FALSE;
}

gint64
fth_training_page_get_shown_run(FthTrainingPage *self)
{
  g_return_val_if_fail(FTH_IS_TRAINING_PAGE(self), 0);
  return self->matrices_run;
}

gboolean
fth_training_page_select_matrix(FthTrainingPage *self, int epoch)
{
  g_return_val_if_fail(FTH_IS_TRAINING_PAGE(self), FALSE);
  for (guint i = 0; self->matrices != NULL && i < self->matrices->len; i++) {
    const Matrix *matrix = g_ptr_array_index(self->matrices, i);
    if (epoch == 0 ? matrix->test : !matrix->test && matrix->epoch == epoch) {
      gtk_drop_down_set_selected(self->matrix_dropdown, i);
      return TRUE;
    }
  }
  return FALSE;
}

int
fth_training_page_get_matrix_epoch(FthTrainingPage *self)
{
  g_return_val_if_fail(FTH_IS_TRAINING_PAGE(self), -1);
  const Matrix *matrix = chosen_matrix(self);
  return matrix == NULL ? -1 : matrix->test ? 0 : matrix->epoch;
}

guint
fth_training_page_get_n_loss_points(FthTrainingPage *self)
{
  g_return_val_if_fail(FTH_IS_TRAINING_PAGE(self), 0);
  return fth_line_chart_get_n_points(self->loss_chart, self->loss_series);
}

guint
fth_training_page_get_n_accuracy_points(FthTrainingPage *self)
{
  g_return_val_if_fail(FTH_IS_TRAINING_PAGE(self), 0);
  return fth_line_chart_get_n_points(self->accuracy_chart, self->val_acc_series);
}

/* ---- devices ------------------------------------------------------------------------------ */

#define MAX_CUDA_DEVICES 16

/* The CUDA devices that answer, numbered from 0 with no gaps (a device that does not answer
 * ends the list): creating a backend can take a while, so this runs on a worker thread. */
static void
probe_devices_thread(GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  GArray *found = g_array_new(FALSE, FALSE, sizeof(int));
  for (int i = 0; i < MAX_CUDA_DEVICES && fth_backend_cuda(i) != NULL; i++)
    g_array_append_val(found, i);
  g_task_return_pointer(task, found, (GDestroyNotify)g_array_unref);
}

static void
devices_probed(GObject *source, GAsyncResult *result, gpointer user_data)
{
  FthTrainingPage *self = FTH_TRAINING_PAGE(source);
  g_autoptr(GArray) found = g_task_propagate_pointer(G_TASK(result), NULL);
  if (self->devices == NULL || self->device_specs == NULL)
    return; /* disposed meanwhile */
  for (guint i = 0; i < found->len; i++) {
    int n = g_array_index(found, int, i);
    g_autofree char *name = g_strdup_printf(_("GPU %d (CUDA)"), n);
    gtk_string_list_append(self->devices, name);
    g_ptr_array_add(self->device_specs, g_strdup_printf("cuda:%d", n));
  }
}

const char *
fth_training_page_get_device(FthTrainingPage *self)
{
  g_return_val_if_fail(FTH_IS_TRAINING_PAGE(self), NULL);
  guint selected = adw_combo_row_get_selected(self->device_row);
  return selected < self->device_specs->len ? g_ptr_array_index(self->device_specs, selected)
                                            : "cpu";
}

/* ---- the class ---------------------------------------------------------------------------- */

static void
fth_training_page_dispose(GObject *object)
{
  FthTrainingPage *self = FTH_TRAINING_PAGE(object);

  stop_following(self);
  g_cancellable_cancel(self->cancellable);
  g_clear_object(&self->cancellable);
  g_cancellable_cancel(self->matrix_cancellable);
  g_clear_object(&self->matrix_cancellable);
  g_clear_pointer(&self->matrices, g_ptr_array_unref);
  g_clear_pointer(&self->run_ids, g_array_unref);
  g_clear_object(&self->store);
  g_clear_object(&self->jobs_panel);
  g_clear_pointer(&self->recipe_defaults, g_array_unref);
  g_clear_pointer(&self->device_specs, g_ptr_array_unref);
  gtk_widget_dispose_template(GTK_WIDGET(object), FTH_TYPE_TRAINING_PAGE);
  GtkWidget *child;
  while ((child = gtk_widget_get_first_child(GTK_WIDGET(object))) != NULL)
    gtk_widget_unparent(child);
  G_OBJECT_CLASS(fth_training_page_parent_class)->dispose(object);
}

static void
fth_training_page_class_init(FthTrainingPageClass *klass)
{
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);

  G_OBJECT_CLASS(klass)->dispose = fth_training_page_dispose;

  /* The recipes and the project's runs are shown. */
  signals[SIGNAL_RUNS_LISTED] = g_signal_new("runs-listed", G_TYPE_FROM_CLASS(klass),
                                             G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                             G_TYPE_NONE, 0);
  /* A run ended: whether it succeeded. */
  signals[SIGNAL_RUN_FINISHED] = g_signal_new("run-finished", G_TYPE_FROM_CLASS(klass),
                                              G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                              G_TYPE_NONE, 1, G_TYPE_BOOLEAN);
  /* A confusion matrix cell was clicked: the true and the predicted class names, and the
   * matrix's split (an FthSplit). */
  signals[SIGNAL_SHOW_ITEMS] = g_signal_new("show-items", G_TYPE_FROM_CLASS(klass),
                                            G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL, G_TYPE_NONE,
                                            3, G_TYPE_STRING, G_TYPE_STRING, G_TYPE_INT);
  /* The chosen run's chosen matrix is in the confusion matrix (read from the store). */
  signals[SIGNAL_MATRIX_SHOWN] = g_signal_new("matrix-shown", G_TYPE_FROM_CLASS(klass),
                                              G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                              G_TYPE_NONE, 0);

  g_type_ensure(FTH_TYPE_LINE_CHART);
  g_type_ensure(FTH_TYPE_CONFUSION_MATRIX);
  gtk_widget_class_set_template_from_resource(widget_class,
                                              "/io/github/fathom/Workbench/fth-training-page.ui");
  gtk_widget_class_bind_template_child(widget_class, FthTrainingPage, recipe_row);
  gtk_widget_class_bind_template_child(widget_class, FthTrainingPage, recipes);
  gtk_widget_class_bind_template_child(widget_class, FthTrainingPage, epochs_spin);
  gtk_widget_class_bind_template_child(widget_class, FthTrainingPage, batch_spin);
  gtk_widget_class_bind_template_child(widget_class, FthTrainingPage, optimizer_row);
  gtk_widget_class_bind_template_child(widget_class, FthTrainingPage, lr_spin);
  gtk_widget_class_bind_template_child(widget_class, FthTrainingPage, device_row);
  gtk_widget_class_bind_template_child(widget_class, FthTrainingPage, devices);
  gtk_widget_class_bind_template_child(widget_class, FthTrainingPage, start_button);
  gtk_widget_class_bind_template_child(widget_class, FthTrainingPage, status_label);
  gtk_widget_class_bind_template_child(widget_class, FthTrainingPage, loss_chart);
  gtk_widget_class_bind_template_child(widget_class, FthTrainingPage, accuracy_chart);
  gtk_widget_class_bind_template_child(widget_class, FthTrainingPage, runs_list);
  gtk_widget_class_bind_template_callback(widget_class, start_clicked);
  gtk_widget_class_bind_template_callback(widget_class, confusion_cell_activated);
  gtk_widget_class_bind_template_child(widget_class, FthTrainingPage, confusion);
  gtk_widget_class_bind_template_child(widget_class, FthTrainingPage, confusion_hint);
  gtk_widget_class_bind_template_child(widget_class, FthTrainingPage, matrix_dropdown);
  gtk_widget_class_bind_template_child(widget_class, FthTrainingPage, matrix_choices);
  gtk_widget_class_bind_template_callback(widget_class, run_row_selected);
  gtk_widget_class_bind_template_callback(widget_class, matrix_choice_changed);
  gtk_widget_class_set_layout_manager_type(widget_class, GTK_TYPE_BIN_LAYOUT);
}

static void
fth_training_page_init(FthTrainingPage *self)
{
  self->run_ids = g_array_new(FALSE, FALSE, sizeof(gint64));
  gtk_widget_init_template(GTK_WIDGET(self));

  GdkRGBA blue = { 0.21f, 0.52f, 0.89f, 1 }, orange = { 0.90f, 0.38f, 0.0f, 1 };
  self->loss_series = fth_line_chart_add_series(self->loss_chart, _("training loss"), &blue);
  self->val_loss_series =
    fth_line_chart_add_series(self->loss_chart, _("validation loss"), &orange);
  self->train_acc_series =
    fth_line_chart_add_series(self->accuracy_chart, _("training"), &blue);
  self->val_acc_series =
    fth_line_chart_add_series(self->accuracy_chart, _("validation"), &orange);
  gtk_widget_set_sensitive(GTK_WIDGET(self->start_button), FALSE);
  g_signal_connect(self->recipe_row, "notify::selected", G_CALLBACK(recipe_selected), self);
  g_signal_connect(self->optimizer_row, "notify::selected", G_CALLBACK(optimizer_selected),
                   self);

  /* The CPU is always there (the list's first row); GPUs join when the probe answers. */
  self->device_specs = g_ptr_array_new_with_free_func(g_free);
  g_ptr_array_add(self->device_specs, g_strdup("cpu"));
  g_autoptr(GTask) probe = g_task_new(self, NULL, devices_probed, NULL);
  g_task_run_in_thread(probe, probe_devices_thread);
}
