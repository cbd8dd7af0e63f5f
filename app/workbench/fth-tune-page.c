/* fth-tune-page.c: the study is an FthJob whose function runs fth_tune_study_optimize on a
 * store connection of its own; every finished trial becomes a job event whose metrics carry
 * the trial (number, state, value, duration, parameters "p0", "p1", ...), so the page updates
 * on the main loop from events alone. Stored studies are read, and importances computed, on
 * worker threads (GTask). */
#include "fth-tune-page.h"

#include "fth-line-chart.h"
#include "fth-tune-trial-item.h"

#include <adwaita.h>
#include <fathom/tune.h>
#include <glib/gi18n.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

/* The form's fields for one parameter. */
typedef struct {
  char *name;
  JsonNode *condition; /* the declaration's, kept as is; NULL: none */
  GtkToggleButton *kind[3]; /* one per FthParamKind, in a group */
  GtkEntry *low, *high, *step, *choices;
  GtkCheckButton *log;
} ParamRow;

struct _FthTunePage {
  GtkWidget parent_instance;

  AdwComboRow *objective_row;
  GtkStringList *objectives;
  AdwComboRow *sampler_row;
  AdwComboRow *pruner_row;
  GtkSpinButton *trials_spin;
  GtkSpinButton *parallel_spin;
  GtkSpinButton *epochs_spin;
  AdwActionRow *epochs_row;
  GtkGrid *space_grid;
  GtkLabel *message_label;
  GtkLabel *status_label;
  GtkStack *views;
  GtkColumnView *trials_view;
  FthLineChart *best_chart;
  FthParallelCoords *parallel;
  GtkListBox *importances_list;

  GArray *rows;         /* ParamRow, the form */
  JsonNode *groups;     /* the declaration's "groups", NULL: none */
  FthSearchSpace *space; /* what the views show */
  gboolean maximize;
  GListStore *trials;   /* FthTuneTrialItem */
  GtkSortListModel *sorted;
  GPtrArray *columns;   /* GtkColumnViewColumn of the parameters */
  guint value_series, best_series;
  guint n_finished;
  double best;
  double *importances;  /* n_params of space; NULL: none shown */
  guint importance_source;
  gboolean importance_busy;  /* a computation is running */
  gboolean importance_dirty; /* trials came in meanwhile: compute again when it ends */

  FthStore *store;
  FthJobsPanel *jobs_panel;
  GCancellable *cancellable; /* loading and importances */
  FthJob *job;
  guint subscription;
  gboolean filling;      /* the form is being filled in: no checks */
};

G_DEFINE_FINAL_TYPE(FthTunePage, fth_tune_page, GTK_TYPE_WIDGET)

enum { SIGNAL_STUDY_LOADED, SIGNAL_STUDY_FINISHED, SIGNAL_PROMOTED, SIGNAL_IMPORTANCES, N_SIGNALS };
static guint signals[N_SIGNALS];

/* Test functions of the peer benchmark: studies that train nothing (and minimize). */
static const char *const TEST_FUNCTIONS[] = { "branin", "hartmann6", "rosenbrock4", "ackley5",
                                              "lc2" };
static const char *const SAMPLERS[] = { "tpe", "gp", "random", "grid" };
static const char *const PRUNERS[] = { "none", "median", "asha", "hyperband" };

enum { COLUMN_NUMBER, COLUMN_STATE, COLUMN_VALUE, COLUMN_DURATION, COLUMN_PARAM0 };

static const char *
chosen_objective(FthTunePage *self)
{
  guint i = adw_combo_row_get_selected(self->objective_row);
  return i < g_list_model_get_n_items(G_LIST_MODEL(self->objectives))
           ? gtk_string_list_get_string(self->objectives, i)
           : NULL;
}

static const FthTuneBuiltin *
chosen_builtin(FthTunePage *self)
{
  const char *name = chosen_objective(self);
  return name != NULL ? fth_tune_builtin_find(name) : NULL;
}

/* The study's name in the store, as `fathom tune` names it. */
static char *
study_name(const char *objective)
{
  return fth_tune_builtin_find(objective) != NULL ? g_strdup(objective)
                                                  : g_strdup_printf("tune-%s", objective);
}

static void
param_row_clear(ParamRow *row)
{
  g_free(row->name);
  g_clear_pointer(&row->condition, json_node_unref);
}

/* ---- the form ----------------------------------------------------------------------------- */

static char *
format_number(double v)
{
  char buf[G_ASCII_DTOSTR_BUF_SIZE];
  return g_strdup(g_ascii_formatd(buf, sizeof buf, "%.6g", v));
}

/* A choice as the form shows it: strings without their quotes. */
static char *
choice_label(const char *json)
{
  gsize len = strlen(json);
  return len >= 2 && json[0] == '"' ? g_strndup(json + 1, len - 2) : g_strdup(json);
}

static FthParamKind
row_kind(const ParamRow *row)
{
  for (guint k = 0; k < G_N_ELEMENTS(row->kind); k++)
    if (gtk_toggle_button_get_active(row->kind[k]))
      return (FthParamKind)k;
  return FTH_PARAM_FLOAT;
}

static void
update_row_sensitivity(ParamRow *row)
{
  gboolean categorical = row_kind(row) == FTH_PARAM_CATEGORICAL;
  gtk_widget_set_sensitive(GTK_WIDGET(row->low), !categorical);
  gtk_widget_set_sensitive(GTK_WIDGET(row->high), !categorical);
  gtk_widget_set_sensitive(GTK_WIDGET(row->step), !categorical);
  gtk_widget_set_sensitive(GTK_WIDGET(row->log), !categorical);
  gtk_widget_set_sensitive(GTK_WIDGET(row->choices), categorical);
}

static gboolean
parse_number(const ParamRow *row, GtkEntry *entry, const char *what, double *value,
             GError **error)
{
  const char *text = gtk_editable_get_text(GTK_EDITABLE(entry));
  char *end = NULL;
  *value = g_ascii_strtod(text, &end);
  while (end != NULL && g_ascii_isspace(*end))
    end++;
  if (end == NULL || end == text || *end != '\0' || !isfinite(*value)) {
    g_set_error(error, FTH_TUNE_ERROR, FTH_TUNE_ERROR_SPACE,
                _("parameter “%s”: %s “%s” is not a number"), row->name, what, text);
    return FALSE;
  }
  return TRUE;
}

static void
add_number(JsonBuilder *b, const char *member, double v, gboolean integer)
{
  json_builder_set_member_name(b, member);
  if (integer && v == floor(v) && fabs(v) < 9e15)
    json_builder_add_int_value(b, (gint64)v);
  else
    json_builder_add_double_value(b, v);
}

/* One choice as JSON: numbers and true/false as they are, anything else as a string. */
static JsonNode *
choice_node(const char *text)
{
  JsonNode *node = json_from_string(text, NULL);
  if (node != NULL && JSON_NODE_HOLDS_VALUE(node))
    return node;
  g_clear_pointer(&node, json_node_unref);
  node = json_node_new(JSON_NODE_VALUE);
  json_node_set_string(node, text);
  return node;
}

static gboolean
add_param(JsonBuilder *b, const ParamRow *row, GError **error)
{
  static const char *const kinds[] = { "float", "int", "categorical" };
  FthParamKind kind = row_kind(row);
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "name");
  json_builder_add_string_value(b, row->name);
  json_builder_set_member_name(b, "type");
  json_builder_add_string_value(b, kinds[MIN(kind, FTH_PARAM_CATEGORICAL)]);
  if (kind == FTH_PARAM_CATEGORICAL) {
    g_auto(GStrv) parts = g_strsplit(gtk_editable_get_text(GTK_EDITABLE(row->choices)), ",", -1);
    json_builder_set_member_name(b, "choices");
    json_builder_begin_array(b);
    for (guint i = 0; parts[i] != NULL; i++) {
      char *text = g_strstrip(parts[i]);
      if (*text != '\0')
        json_builder_add_value(b, choice_node(text));
    }
    json_builder_end_array(b);
  } else {
    double low, high;
    if (!parse_number(row, row->low, _("the low bound"), &low, error) ||
        !parse_number(row, row->high, _("the high bound"), &high, error))
      return FALSE;
    add_number(b, "low", low, kind == FTH_PARAM_INT);
    add_number(b, "high", high, kind == FTH_PARAM_INT);
    if (*gtk_editable_get_text(GTK_EDITABLE(row->step)) != '\0') {
      double step;
      if (!parse_number(row, row->step, _("the step"), &step, error))
        return FALSE;
      add_number(b, "step", step, kind == FTH_PARAM_INT);
    }
    json_builder_set_member_name(b, "log");
    json_builder_add_boolean_value(b, gtk_check_button_get_active(row->log));
  }
  if (row->condition != NULL) {
    json_builder_set_member_name(b, "condition");
    json_builder_add_value(b, json_node_copy(row->condition));
  }
  json_builder_end_object(b);
  return TRUE;
}

FthSearchSpace *
fth_tune_page_get_space(FthTunePage *self, GError **error)
{
  g_return_val_if_fail(FTH_IS_TUNE_PAGE(self), NULL);
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "params");
  json_builder_begin_array(b);
  for (guint i = 0; i < self->rows->len; i++)
    if (!add_param(b, &g_array_index(self->rows, ParamRow, i), error))
      return NULL;
  json_builder_end_array(b);
  if (self->groups != NULL) {
    json_builder_set_member_name(b, "groups");
    json_builder_add_value(b, json_node_copy(self->groups));
  }
  json_builder_end_object(b);
  g_autoptr(JsonNode) root = json_builder_get_root(b);
  g_autofree char *json = json_to_string(root, FALSE);
  const char *objective = chosen_objective(self);
  return fth_search_space_new_from_json(json, -1, objective != NULL ? objective : "space", error);
}

static gboolean
can_start(FthTunePage *self)
{
  return self->store != NULL && self->job == NULL && self->rows->len > 0;
}

/* Checks the form: the engine's message under it, and Start only for a valid space. */
static void
check_form(FthTunePage *self)
{
  if (self->filling)
    return;
  g_autoptr(GError) error = NULL;
  g_autoptr(FthSearchSpace) space = fth_tune_page_get_space(self, &error);
  gtk_label_set_text(self->message_label, space == NULL ? error->message : "");
  gtk_widget_set_visible(GTK_WIDGET(self->message_label), space == NULL);
  gtk_widget_action_set_enabled(GTK_WIDGET(self), "tune.start", space != NULL && can_start(self));
}

static void
form_changed(FthTunePage *self)
{
  for (guint i = 0; i < self->rows->len; i++)
    update_row_sensitivity(&g_array_index(self->rows, ParamRow, i));
  check_form(self);
}

static GtkEntry *
form_entry(FthTunePage *self, const char *text, int chars)
{
  GtkEntry *entry = GTK_ENTRY(gtk_entry_new());
  gtk_editable_set_text(GTK_EDITABLE(entry), text != NULL ? text : "");
  gtk_editable_set_width_chars(GTK_EDITABLE(entry), chars);
  gtk_editable_set_max_width_chars(GTK_EDITABLE(entry), chars);
  g_signal_connect_swapped(entry, "changed", G_CALLBACK(form_changed), self);
  return entry;
}

static void
clear_form(FthTunePage *self)
{
  GtkWidget *child;
  while ((child = gtk_widget_get_first_child(GTK_WIDGET(self->space_grid))) != NULL)
    gtk_grid_remove(self->space_grid, child);
  g_array_set_size(self->rows, 0);
  g_clear_pointer(&self->groups, json_node_unref);
}

/* The form for SPACE: a row per parameter. */
static void
fill_form(FthTunePage *self, FthSearchSpace *space)
{
  self->filling = TRUE;
  clear_form(self);
  static const char *const headers[] = { N_("Parameter"), N_("Kind"), N_("Low"), N_("High"),
                                         N_("Step"), N_("Log"), N_("Choices") };
  for (guint c = 0; c < G_N_ELEMENTS(headers); c++) {
    GtkWidget *label = gtk_label_new(_(headers[c]));
    gtk_label_set_xalign(GTK_LABEL(label), 0);
    gtk_widget_add_css_class(label, "caption-heading");
    gtk_grid_attach(self->space_grid, label, (int)c, 0, 1, 1);
  }
  g_autofree char *json = fth_search_space_to_json(space);
  g_autoptr(JsonNode) root = json_from_string(json, NULL);
  JsonObject *decl = root != NULL && JSON_NODE_HOLDS_OBJECT(root) ? json_node_get_object(root)
                                                                  : NULL;
  JsonNode *groups = decl != NULL ? json_object_get_member(decl, "groups") : NULL;
  if (groups != NULL && JSON_NODE_HOLDS_ARRAY(groups) &&
      json_array_get_length(json_node_get_array(groups)) > 0)
    self->groups = json_node_copy(groups);
  JsonNode *params = decl != NULL ? json_object_get_member(decl, "params") : NULL;
  JsonArray *decls = params != NULL && JSON_NODE_HOLDS_ARRAY(params) ? json_node_get_array(params)
                                                                     : NULL;
  /* TRANSLATORS: the kinds of a search-space parameter, as short as they can be */
  static const char *const kinds[] = { N_("float"), N_("int"), N_("categorical") };
  for (guint i = 0; i < fth_search_space_get_n_params(space); i++) {
    const FthTuneParam *p = fth_search_space_get_param(space, i);
    ParamRow row = { g_strdup(p->name), NULL, { NULL, NULL, NULL }, NULL, NULL, NULL, NULL, NULL };
    if (decls != NULL && i < json_array_get_length(decls)) {
      JsonObject *o = json_array_get_object_element(decls, i);
      JsonNode *condition = o != NULL ? json_object_get_member(o, "condition") : NULL;
      if (condition != NULL)
        row.condition = json_node_copy(condition);
    }
    GtkWidget *name = gtk_label_new(p->name);
    gtk_label_set_xalign(GTK_LABEL(name), 0);
    if (p->parent >= 0) {
      const FthTuneParam *parent = fth_search_space_get_param(space, (guint)p->parent);
      g_autofree char *tip = g_strdup_printf(_("Only for some values of “%s”"), parent->name);
      gtk_widget_set_tooltip_text(name, tip);
      gtk_widget_add_css_class(name, "dim-label");
    }
    GtkWidget *kind_box = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 0);
    gtk_widget_add_css_class(kind_box, "linked");
    for (guint k = 0; k < G_N_ELEMENTS(kinds); k++) {
      row.kind[k] = GTK_TOGGLE_BUTTON(gtk_toggle_button_new_with_label(_(kinds[k])));
      if (k > 0)
        gtk_toggle_button_set_group(row.kind[k], row.kind[0]);
      gtk_toggle_button_set_active(row.kind[k], k == (guint)p->kind);
      g_signal_connect_swapped(row.kind[k], "toggled", G_CALLBACK(form_changed), self);
      gtk_box_append(GTK_BOX(kind_box), GTK_WIDGET(row.kind[k]));
    }
    gboolean numeric = p->kind != FTH_PARAM_CATEGORICAL;
    g_autofree char *low = numeric ? format_number(p->low) : NULL;
    g_autofree char *high = numeric ? format_number(p->high) : NULL;
    g_autofree char *step = numeric && p->step > 0 ? format_number(p->step) : NULL;
    g_autoptr(GString) choices = g_string_new(NULL);
    for (guint c = 0; c < p->n_choices; c++) {
      g_autofree char *label = choice_label(p->choices[c]);
      g_string_append_printf(choices, "%s%s", c > 0 ? ", " : "", label);
    }
    row.low = form_entry(self, low, 8);
    row.high = form_entry(self, high, 8);
    row.step = form_entry(self, step, 5);
    row.choices = form_entry(self, choices->str, 14);
    row.log = GTK_CHECK_BUTTON(gtk_check_button_new());
    gtk_check_button_set_active(row.log, numeric && p->log);
    g_signal_connect_swapped(row.log, "toggled", G_CALLBACK(form_changed), self);
    int y = (int)i + 1;
    gtk_grid_attach(self->space_grid, name, 0, y, 1, 1);
    gtk_grid_attach(self->space_grid, kind_box, 1, y, 1, 1);
    gtk_grid_attach(self->space_grid, GTK_WIDGET(row.low), 2, y, 1, 1);
    gtk_grid_attach(self->space_grid, GTK_WIDGET(row.high), 3, y, 1, 1);
    gtk_grid_attach(self->space_grid, GTK_WIDGET(row.step), 4, y, 1, 1);
    gtk_grid_attach(self->space_grid, GTK_WIDGET(row.log), 5, y, 1, 1);
    gtk_grid_attach(self->space_grid, GTK_WIDGET(row.choices), 6, y, 1, 1);
    update_row_sensitivity(&row);
    g_array_append_val(self->rows, row);
  }
  self->filling = FALSE;
  check_form(self);
}

gboolean
fth_tune_page_set_param_field(FthTunePage *self, const char *param, const char *field,
                              const char *text)
{
  g_return_val_if_fail(FTH_IS_TUNE_PAGE(self), FALSE);
  for (guint i = 0; i < self->rows->len; i++) {
    ParamRow *row = &g_array_index(self->rows, ParamRow, i);
    if (g_strcmp0(row->name, param) != 0)
      continue;
    GtkEntry *entry = g_str_equal(field, "low")       ? row->low
                      : g_str_equal(field, "high")    ? row->high
                      : g_str_equal(field, "step")    ? row->step
                      : g_str_equal(field, "choices") ? row->choices
                                                      : NULL;
    if (entry != NULL) {
      gtk_editable_set_text(GTK_EDITABLE(entry), text);
      return TRUE;
    }
    if (g_str_equal(field, "log")) {
      gtk_check_button_set_active(row->log, g_strcmp0(text, "true") == 0);
      return TRUE;
    }
    static const char *const kinds[] = { "float", "int", "categorical" };
    for (guint k = 0; k < G_N_ELEMENTS(kinds) && g_str_equal(field, "kind"); k++)
      if (g_strcmp0(text, kinds[k]) == 0) {
        gtk_toggle_button_set_active(row->kind[k], TRUE);
        return TRUE;
      }
    return FALSE;
  }
  return FALSE;
}

/* ---- the views ---------------------------------------------------------------------------- */

static int
compare_doubles(double a, double b)
{
  if (isnan(a))
    return isnan(b) ? 0 : 1; /* none last */
  if (isnan(b))
    return -1;
  return (a > b) - (a < b);
}

static double
column_value(FthTuneTrialItem *item, int key)
{
  switch (key) {
  case COLUMN_NUMBER:
    return fth_tune_trial_item_get_number(item);
  case COLUMN_STATE:
    return fth_tune_trial_item_get_state(item);
  case COLUMN_VALUE:
    return fth_tune_trial_item_get_value(item);
  case COLUMN_DURATION:
    return fth_tune_trial_item_get_duration(item);
  default:
    return fth_tune_trial_item_get_param(item, (guint)(key - COLUMN_PARAM0));
  }
}

static int
compare_items(gconstpointer a, gconstpointer b, gpointer key)
{
  FthTuneTrialItem *x = FTH_TUNE_TRIAL_ITEM((gpointer)a), *y = FTH_TUNE_TRIAL_ITEM((gpointer)b);
  int k = GPOINTER_TO_INT(key);
  int c = compare_doubles(column_value(x, k), column_value(y, k));
  /* Ties keep trial order. */
  return c != 0 ? c
                : compare_doubles(fth_tune_trial_item_get_number(x), fth_tune_trial_item_get_number(y));
}

static const char *
state_label(FthTuneTrialState state)
{
  switch (state) {
  case FTH_TUNE_TRIAL_COMPLETE:
    return _("complete");
  case FTH_TUNE_TRIAL_PRUNED:
    return _("pruned");
  case FTH_TUNE_TRIAL_FAILED:
    return _("failed");
  default:
    return _("running");
  }
}

static char *
cell_text(FthTunePage *self, FthTuneTrialItem *item, int key)
{
  double v = column_value(item, key);
  switch (key) {
  case COLUMN_NUMBER:
    return g_strdup_printf("%d", fth_tune_trial_item_get_number(item));
  case COLUMN_STATE:
    return g_strdup(state_label(fth_tune_trial_item_get_state(item)));
  case COLUMN_DURATION:
    if (!isfinite(v))
      return g_strdup("—");
    return v < 1 ? g_strdup_printf(_("%.1f ms"), v * 1000) : g_strdup_printf(_("%.1f s"), v);
  case COLUMN_VALUE:
    return isfinite(v) ? g_strdup_printf("%.5g", v) : g_strdup("—");
  default:
    break;
  }
  guint index = (guint)(key - COLUMN_PARAM0);
  if (isnan(v) || self->space == NULL || index >= fth_search_space_get_n_params(self->space))
    return g_strdup("—");
  const FthTuneParam *p = fth_search_space_get_param(self->space, index);
  if (p->kind == FTH_PARAM_CATEGORICAL)
    return v >= 0 && v < p->n_choices ? choice_label(p->choices[(guint)v]) : g_strdup("?");
  if (p->kind == FTH_PARAM_INT)
    return g_strdup_printf("%.0f", v);
  return g_strdup_printf("%.4g", v);
}

static void
cell_setup(GtkSignalListItemFactory *factory, GtkListItem *list_item, gpointer user_data)
{
  GtkWidget *label = gtk_label_new(NULL);
  gtk_label_set_xalign(GTK_LABEL(label), 0);
  gtk_widget_add_css_class(label, "numeric");
  gtk_list_item_set_child(list_item, label);
}

static void
cell_bind(GtkSignalListItemFactory *factory, GtkListItem *list_item, gpointer user_data)
{
  FthTunePage *self = user_data;
  int key = GPOINTER_TO_INT(g_object_get_data(G_OBJECT(factory), "fth-column"));
  FthTuneTrialItem *item = gtk_list_item_get_item(list_item);
  g_autofree char *text = cell_text(self, item, key);
  GtkLabel *label = GTK_LABEL(gtk_list_item_get_child(list_item));
  gtk_label_set_text(label, text);
  const char *error = fth_tune_trial_item_get_error(item);
  gtk_widget_set_tooltip_text(GTK_WIDGET(label), key == COLUMN_STATE ? error : NULL);
}

static GtkColumnViewColumn *
add_column(FthTunePage *self, const char *title, int key)
{
  GtkListItemFactory *factory = gtk_signal_list_item_factory_new();
  g_object_set_data(G_OBJECT(factory), "fth-column", GINT_TO_POINTER(key));
  g_signal_connect(factory, "setup", G_CALLBACK(cell_setup), self);
  g_signal_connect(factory, "bind", G_CALLBACK(cell_bind), self);
  GtkColumnViewColumn *column = gtk_column_view_column_new(title, factory);
  GtkSorter *sorter = GTK_SORTER(gtk_custom_sorter_new(compare_items, GINT_TO_POINTER(key), NULL));
  gtk_column_view_column_set_sorter(column, sorter);
  g_object_unref(sorter);
  gtk_column_view_column_set_resizable(column, TRUE);
  gtk_column_view_append_column(self->trials_view, column);
  g_ptr_array_add(self->columns, column);
  return column;
}

static void
clear_importances(FthTunePage *self)
{
  GtkWidget *child;
  while ((child = gtk_widget_get_first_child(GTK_WIDGET(self->importances_list))) != NULL)
    gtk_list_box_remove(self->importances_list, child);
  g_clear_pointer(&self->importances, g_free);
  g_clear_handle_id(&self->importance_source, g_source_remove);
}

/* Empties every view and lays them out for SPACE. */
static void
reset_views(FthTunePage *self, FthSearchSpace *space, gboolean maximize)
{
  g_list_store_remove_all(self->trials);
  for (guint i = 0; i < self->columns->len; i++)
    gtk_column_view_remove_column(self->trials_view, self->columns->pdata[i]);
  g_ptr_array_set_size(self->columns, 0);
  if (self->space != space) {
    g_clear_pointer(&self->space, fth_search_space_unref);
    self->space = space != NULL ? fth_search_space_ref(space) : NULL;
  }
  self->maximize = maximize;
  add_column(self, _("Trial"), COLUMN_NUMBER);
  add_column(self, _("State"), COLUMN_STATE);
  add_column(self, maximize ? _("Accuracy") : _("Value"), COLUMN_VALUE);
  add_column(self, _("Duration"), COLUMN_DURATION);
  for (guint i = 0; space != NULL && i < fth_search_space_get_n_params(space); i++)
    add_column(self, fth_search_space_get_param(space, i)->name, COLUMN_PARAM0 + (int)i);
  fth_line_chart_clear(self->best_chart);
  fth_parallel_coords_set_space(self->parallel, space, maximize ? _("accuracy") : _("value"),
                                maximize);
  self->n_finished = 0;
  self->best = NAN;
  clear_importances(self);
}

typedef struct {
  FthSearchSpace *space;
  GPtrArray *trials; /* FthTuneTrial, params owned */
} ImportanceData;

static void
importance_data_free(ImportanceData *data)
{
  fth_search_space_unref(data->space);
  g_ptr_array_unref(data->trials);
  g_free(data);
}

static void
trial_copy_free(gpointer data)
{
  FthTuneTrial *t = data;
  g_free(t->params);
  g_free(t);
}

static void
importances_in_thread(GTask *task, gpointer source, gpointer task_data, GCancellable *cancel)
{
  ImportanceData *data = task_data;
  GError *error = NULL;
  double *out = g_new(double, fth_search_space_get_n_params(data->space));
  if (!fth_tune_importances(data->space, (const FthTuneTrial *const *)data->trials->pdata,
                            data->trials->len, NULL, out, &error)) {
    g_free(out);
    g_task_return_error(task, error);
    return;
  }
  g_task_return_pointer(task, out, g_free);
}

static void
show_importances(FthTunePage *self, double *importances)
{
  clear_importances(self);
  self->importances = importances;
  guint n = fth_search_space_get_n_params(self->space);
  g_autofree guint *order = g_new(guint, n);
  for (guint i = 0; i < n; i++)
    order[i] = i;
  /* Most important first; parameters without one last. */
  for (guint i = 1; i < n; i++)
    for (guint j = i; j > 0 && compare_doubles(-importances[order[j]], -importances[order[j - 1]]) < 0; j--) {
      guint t = order[j];
      order[j] = order[j - 1];
      order[j - 1] = t;
    }
  for (guint i = 0; i < n; i++) {
    double v = importances[order[i]];
    GtkWidget *row = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 12);
    gtk_widget_set_margin_start(row, 12);
    gtk_widget_set_margin_end(row, 12);
    gtk_widget_set_margin_top(row, 6);
    gtk_widget_set_margin_bottom(row, 6);
    GtkWidget *name = gtk_label_new(fth_search_space_get_param(self->space, order[i])->name);
    gtk_label_set_xalign(GTK_LABEL(name), 0);
    gtk_label_set_width_chars(GTK_LABEL(name), 16);
    GtkWidget *bar = gtk_level_bar_new_for_interval(0, 1);
    gtk_level_bar_set_value(GTK_LEVEL_BAR(bar), isnan(v) ? 0 : v);
    gtk_widget_set_hexpand(bar, TRUE);
    gtk_widget_set_valign(bar, GTK_ALIGN_CENTER);
    g_autofree char *text = isnan(v) ? g_strdup(_("conditional")) : g_strdup_printf("%.3f", v);
    GtkWidget *value = gtk_label_new(text);
    gtk_label_set_width_chars(GTK_LABEL(value), 11);
    gtk_label_set_xalign(GTK_LABEL(value), 1);
    gtk_widget_add_css_class(value, "numeric");
    gtk_box_append(GTK_BOX(row), name);
    gtk_box_append(GTK_BOX(row), bar);
    gtk_box_append(GTK_BOX(row), value);
    gtk_list_box_append(self->importances_list, row);
  }
}

static gboolean compute_importances(gpointer user_data);

/* Trials may finish many a second: importances are computed once things calm down, one
 * computation at a time. */
static void
queue_importances(FthTunePage *self)
{
  if (self->importance_source == 0)
    self->importance_source = g_timeout_add(300, compute_importances, self);
}

static void
importances_done(GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(GError) error = NULL;
  double *importances = g_task_propagate_pointer(G_TASK(result), &error);
  FthTunePage *self = FTH_TUNE_PAGE(source);
  self->importance_busy = FALSE;
  /* Disposed pages have no cancellable left: nothing more to do for them. */
  if (self->importance_dirty && self->cancellable != NULL) {
    self->importance_dirty = FALSE;
    queue_importances(self);
  }
  if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  ImportanceData *data = g_task_get_task_data(G_TASK(result));
  /* Another study took the views meanwhile, or too few trials completed yet. */
  if (importances == NULL || data->space != self->space) {
    g_free(importances);
    return;
  }
  show_importances(self, importances);
  g_signal_emit(self, signals[SIGNAL_IMPORTANCES], 0);
}

static gboolean
compute_importances(gpointer user_data)
{
  FthTunePage *self = user_data;
  self->importance_source = 0;
  if (self->space == NULL)
    return G_SOURCE_REMOVE;
  if (self->importance_busy) {
    self->importance_dirty = TRUE;
    return G_SOURCE_REMOVE;
  }
  self->importance_busy = TRUE;
  ImportanceData *data = g_new0(ImportanceData, 1);
  data->space = fth_search_space_ref(self->space);
  data->trials = g_ptr_array_new_with_free_func(trial_copy_free);
  guint d = fth_search_space_get_n_params(self->space);
  for (guint i = 0; i < g_list_model_get_n_items(G_LIST_MODEL(self->trials)); i++) {
    g_autoptr(FthTuneTrialItem) item = g_list_model_get_item(G_LIST_MODEL(self->trials), i);
    FthTuneTrial *t = g_new0(FthTuneTrial, 1);
    t->number = fth_tune_trial_item_get_number(item);
    t->state = fth_tune_trial_item_get_state(item);
    t->value = fth_tune_trial_item_get_value(item);
    t->params = g_memdup2(fth_tune_trial_item_get_params(item), d * sizeof(double));
    g_ptr_array_add(data->trials, t);
  }
  g_autoptr(GTask) task = g_task_new(self, self->cancellable, importances_done, NULL);
  g_task_set_task_data(task, data, (GDestroyNotify)importance_data_free);
  g_task_run_in_thread(task, importances_in_thread);
  return G_SOURCE_REMOVE;
}


static void
add_trial(FthTunePage *self, FthTuneTrialItem *item)
{
  g_list_store_append(self->trials, item);
  self->n_finished++;
  double value = fth_tune_trial_item_get_value(item);
  if (fth_tune_trial_item_get_state(item) != FTH_TUNE_TRIAL_COMPLETE || !isfinite(value))
    return;
  if (isnan(self->best) || (self->maximize ? value > self->best : value < self->best))
    self->best = value;
  fth_line_chart_append(self->best_chart, self->value_series, self->n_finished, value);
  fth_line_chart_append(self->best_chart, self->best_series, self->n_finished, self->best);
  fth_parallel_coords_add_line(self->parallel, fth_tune_trial_item_get_params(item), value);
  queue_importances(self);
}

/* Promote Best: for a recipe's study with a completed trial, when no study runs. */
static void
update_promote(FthTunePage *self)
{
  gtk_widget_action_set_enabled(GTK_WIDGET(self), "tune.promote",
                                self->job == NULL && !isnan(self->best) &&
                                  chosen_builtin(self) == NULL);
}

/* ---- the stored study --------------------------------------------------------------------- */

typedef struct {
  char *name;       /* the study */
  char *space_json; /* the stored study's space, NULL: none stored */
  GPtrArray *trials; /* FthTrial */
} StoredStudy;

static void
stored_study_free(StoredStudy *s)
{
  g_free(s->name);
  g_free(s->space_json);
  g_clear_pointer(&s->trials, g_ptr_array_unref);
  g_free(s);
}

static void
load_in_thread(GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  FthStore *store = task_data;
  StoredStudy *s = g_new0(StoredStudy, 1);
  s->name = g_strdup(g_object_get_data(G_OBJECT(task), "fth-study"));
  GError *error = NULL;
  g_autoptr(GPtrArray) studies = fth_store_list_studies(store, &error);
  if (studies == NULL) {
    stored_study_free(s);
    g_task_return_error(task, error);
    return;
  }
  for (guint i = 0; i < studies->len; i++) {
    const FthStudy *study = studies->pdata[i];
    if (g_strcmp0(study->name, s->name) != 0)
      continue;
    s->space_json = g_strdup(study->space_json);
    s->trials = fth_store_list_trials(store, study->id, &error);
    if (s->trials == NULL) {
      stored_study_free(s);
      g_task_return_error(task, error);
      return;
    }
  }
  g_task_return_pointer(task, s, (GDestroyNotify)stored_study_free);
}

static void
show_stored_study(FthTunePage *self, StoredStudy *s)
{
  g_autoptr(FthSearchSpace) space =
    s->space_json != NULL ? fth_search_space_new_from_json(s->space_json, -1, s->name, NULL) : NULL;
  if (space == NULL)
    return;
  fill_form(self, space);
  reset_views(self, space, chosen_builtin(self) == NULL);
  guint d = fth_search_space_get_n_params(space);
  g_autofree double *values = g_new(double, d);
  for (guint i = 0; s->trials != NULL && i < s->trials->len; i++) {
    const FthTrial *t = s->trials->pdata[i];
    if (t->state == FTH_TRIAL_RUNNING ||
        !fth_search_space_values_from_json(space, t->params_json, values, NULL))
      continue;
    g_autoptr(FthTuneTrialItem) item =
      fth_tune_trial_item_new(t->number, (FthTuneTrialState)t->state,
                              t->has_value ? t->value : NAN, t->duration_s, values, d, t->error);
    add_trial(self, item);
  }
  update_promote(self);
  g_autofree char *status =
    g_strdup_printf(g_dngettext(NULL, "Stored study “%s”: %u trial; Start resumes it",
                             "Stored study “%s”: %u trials; Start resumes it", self->n_finished),
                    s->name, self->n_finished);
  gtk_label_set_text(self->status_label, status);
}

static void
load_done(GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(GError) error = NULL;
  StoredStudy *s = g_task_propagate_pointer(G_TASK(result), &error);
  if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  FthTunePage *self = FTH_TUNE_PAGE(source);
  if (s == NULL)
    gtk_label_set_text(self->status_label, error->message);
  else
    show_stored_study(self, s);
  g_clear_pointer(&s, stored_study_free);
  g_signal_emit(self, signals[SIGNAL_STUDY_LOADED], 0);
}

/* The objective's default space in the form and empty views, then its stored study, if any. */
static void
load_objective(FthTunePage *self)
{
  g_cancellable_cancel(self->cancellable);
  g_clear_object(&self->cancellable);
  self->cancellable = g_cancellable_new();
  const char *objective = chosen_objective(self);
  if (objective == NULL)
    return;
  const FthTuneBuiltin *builtin = fth_tune_builtin_find(objective);
  const char *json = builtin != NULL ? builtin->space_json : fth_tune_train_space_json(objective, NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(FthSearchSpace) space =
    json != NULL ? fth_search_space_new_from_json(json, -1, objective, &error) : NULL;
  gtk_widget_set_sensitive(GTK_WIDGET(self->epochs_row), builtin == NULL);
  if (space == NULL) {
    clear_form(self);
    gtk_label_set_text(self->status_label, error != NULL ? error->message : "");
    return;
  }
  fill_form(self, space);
  reset_views(self, space, builtin == NULL);
  gtk_label_set_text(self->status_label, "");
  gtk_widget_action_set_enabled(GTK_WIDGET(self), "tune.promote", FALSE);
  if (self->store == NULL)
    return;
  g_autoptr(GTask) task = g_task_new(self, self->cancellable, load_done, NULL);
  g_object_set_data_full(G_OBJECT(task), "fth-study", study_name(objective), g_free);
  g_task_set_task_data(task, g_object_ref(self->store), g_object_unref);
  g_task_run_in_thread(task, load_in_thread);
}

static void
objective_selected(AdwComboRow *row, GParamSpec *pspec, gpointer user_data)
{
  FthTunePage *self = user_data;
  if (self->job == NULL)
    load_objective(self);
}

/* ---- the study as a job ------------------------------------------------------------------- */

typedef struct {
  char *store_dir;
  char *objective;
  char *study;
  FthSearchSpace *space;
  char *sampler, *pruner;
  guint n_trials, n_parallel;
  int epochs;
  FthJob *job; /* not owned */
  gint64 n_finished;
  FthTuneStudy *running; /* while optimizing */
} TuneWork;

static void
tune_work_free(TuneWork *w)
{
  g_free(w->store_dir);
  g_free(w->objective);
  g_free(w->study);
  fth_search_space_unref(w->space);
  g_free(w->sampler);
  g_free(w->pruner);
  g_free(w);
}

/* A finished trial as a progress event; its parameters are metrics p0, p1, ... */
static void
report_trial(TuneWork *w, const FthTuneTrial *t)
{
  guint d = fth_search_space_get_n_params(w->space);
  g_autofree FthJobMetric *metrics = g_new(FthJobMetric, d + 4);
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
  metrics[0] = (FthJobMetric){ (char *)"trial", t->number };
  metrics[1] = (FthJobMetric){ (char *)"state", t->state };
  metrics[2] = (FthJobMetric){ (char *)"value", t->value };
  metrics[3] = (FthJobMetric){ (char *)"duration", t->duration_s };
  for (guint i = 0; i < d; i++) {
    char *name = g_strdup_printf("p%u", i);
    g_ptr_array_add(names, name);
    metrics[4 + i] = (FthJobMetric){ name, t->params[i] };
  }
  w->n_finished++;
  g_autofree char *message =
    t->state == FTH_TUNE_TRIAL_FAILED && t->error != NULL
      ? g_strdup_printf(_("Trial %d failed: %s"), t->number, t->error)
      : g_strdup_printf(_("Trial %d %s"), t->number, state_label(t->state));
  fth_job_progress_metrics(w->job, w->n_finished, w->n_trials, message, metrics, d + 4);
}

static void
study_event(FthTuneStudy *study, FthTuneEventKind kind, const FthTuneTrial *trial,
            gpointer user_data)
{
  if (kind == FTH_TUNE_EVENT_TRIAL_FINISHED)
    report_trial(user_data, trial);
}

static gboolean
tune_job(FthJob *job, GCancellable *cancellable, gpointer user_data, GError **error)
{
  TuneWork *w = user_data;
  w->job = job;
  g_autoptr(FthStore) store = fth_store_open(w->store_dir, error);
  if (store == NULL)
    return FALSE;
  const FthTuneBuiltin *builtin = fth_tune_builtin_find(w->objective);
  g_autoptr(FthSampler) sampler = fth_sampler_new_by_name(w->sampler, 1, error);
  if (sampler == NULL)
    return FALSE;
  GError *local = NULL;
  g_autoptr(FthPruner) pruner =
    fth_pruner_new_by_name(w->pruner, builtin != NULL ? FTH_TUNE_LC_T_MAX : w->epochs, &local);
  if (local != NULL) {
    g_propagate_error(error, local);
    return FALSE;
  }
  g_autoptr(FthTuneStudy) study =
    fth_tune_study_new(w->study, w->space, sampler, pruner, builtin == NULL);
  if (!fth_tune_study_open_store(study, store, 0, error))
    return FALSE;
  /* The trials it already holds first: the page shows the whole study. */
  for (guint i = 0; i < fth_tune_study_get_n_trials(study); i++) {
    const FthTuneTrial *t = fth_tune_study_get_trial(study, i);
    if (t->state != FTH_TUNE_TRIAL_RUNNING)
      report_trial(w, t);
  }
  fth_tune_study_set_event_func(study, study_event, w);
  guint64 noise_seed = 1;
  FthTuneTrainConfig train;
  fth_tune_train_config_init(&train);
  train.store = store;
  train.recipe = w->objective;
  train.study_name = w->study;
  train.epochs = w->epochs;
  train.cancellable = cancellable;
  if (!fth_tune_study_optimize(study, w->n_trials, w->n_parallel,
                               builtin != NULL ? builtin->objective : fth_tune_train_objective,
                               builtin != NULL ? (gpointer)&noise_seed : (gpointer)&train,
                               cancellable, error))
    return FALSE;
  return !g_cancellable_set_error_if_cancelled(cancellable, error);
}

static void
stop_following(FthTunePage *self)
{
  if (self->job != NULL && self->subscription != 0)
    fth_job_unsubscribe(self->job, self->subscription);
  self->subscription = 0;
  g_clear_object(&self->job);
}

static void
set_running(FthTunePage *self, gboolean running)
{
  gtk_widget_action_set_enabled(GTK_WIDGET(self), "tune.stop", running);
  gtk_widget_set_sensitive(GTK_WIDGET(self->objective_row), !running);
  gtk_widget_set_sensitive(GTK_WIDGET(self->space_grid), !running);
  update_promote(self);
  check_form(self);
}

static void
job_event(FthJob *job, const FthJobEvent *event, gpointer user_data)
{
  FthTunePage *self = user_data;
  double number, state, value = NAN, duration = NAN;
  if (fth_job_event_get_metric(event, "trial", &number) &&
      fth_job_event_get_metric(event, "state", &state) && self->space != NULL) {
    fth_job_event_get_metric(event, "value", &value);
    fth_job_event_get_metric(event, "duration", &duration);
    guint d = fth_search_space_get_n_params(self->space);
    g_autofree double *params = g_new(double, d);
    for (guint i = 0; i < d; i++) {
      char name[16];
      g_snprintf(name, sizeof name, "p%u", i);
      params[i] = NAN;
      fth_job_event_get_metric(event, name, &params[i]);
    }
    const char *error = state == FTH_TUNE_TRIAL_FAILED ? event->message : NULL;
    g_autoptr(FthTuneTrialItem) item = fth_tune_trial_item_new(
      (int)number, (FthTuneTrialState)state, value, duration, params, d, error);
    add_trial(self, item);
  }
  if (event->message != NULL && !fth_job_event_is_terminal(event))
    gtk_label_set_text(self->status_label, event->message);
  if (!fth_job_event_is_terminal(event))
    return;
  g_autofree char *status = NULL;
  if (event->type == FTH_JOB_EVENT_SUCCEEDED)
    status = isnan(self->best)
               ? g_strdup(_("Study finished: no trial completed"))
               : g_strdup_printf(_("Study finished: best %.5g after %u trials"), self->best,
                                 self->n_finished);
  else if (event->type == FTH_JOB_EVENT_CANCELLED)
    status = g_strdup(_("Study stopped; Start resumes it"));
  else
    status = g_strdup_printf(_("Study failed: %s"),
                             event->error != NULL ? event->error->message : _("unknown error"));
  gtk_label_set_text(self->status_label, status);
  stop_following(self);
  set_running(self, FALSE);
  g_signal_emit(self, signals[SIGNAL_STUDY_FINISHED], 0, event->type == FTH_JOB_EVENT_SUCCEEDED);
}

gboolean
fth_tune_page_start(FthTunePage *self)
{
  g_return_val_if_fail(FTH_IS_TUNE_PAGE(self), FALSE);
  const char *objective = chosen_objective(self);
  if (!can_start(self) || objective == NULL)
    return FALSE;
  g_autoptr(GError) error = NULL;
  FthSearchSpace *space = fth_tune_page_get_space(self, &error);
  if (space == NULL) {
    gtk_label_set_text(self->message_label, error->message);
    gtk_widget_set_visible(GTK_WIDGET(self->message_label), TRUE);
    return FALSE;
  }
  TuneWork *w = g_new0(TuneWork, 1);
  w->store_dir = g_strdup(fth_store_get_dir(self->store));
  w->objective = g_strdup(objective);
  w->study = study_name(objective);
  w->space = space;
  w->sampler = g_strdup(SAMPLERS[MIN(adw_combo_row_get_selected(self->sampler_row),
                                     G_N_ELEMENTS(SAMPLERS) - 1)]);
  w->pruner = g_strdup(PRUNERS[MIN(adw_combo_row_get_selected(self->pruner_row),
                                   G_N_ELEMENTS(PRUNERS) - 1)]);
  w->n_trials = (guint)gtk_spin_button_get_value_as_int(self->trials_spin);
  w->n_parallel = (guint)gtk_spin_button_get_value_as_int(self->parallel_spin);
  w->epochs = gtk_spin_button_get_value_as_int(self->epochs_spin);
  /* The job reports every trial of the study, the stored ones first. */
  g_cancellable_cancel(self->cancellable);
  g_clear_object(&self->cancellable);
  self->cancellable = g_cancellable_new();
  reset_views(self, space, chosen_builtin(self) == NULL);
  self->job = fth_job_new("tune", tune_job, w, (GDestroyNotify)tune_work_free);
  self->subscription = fth_job_subscribe(self->job, NULL, job_event, self, NULL);
  if (self->jobs_panel != NULL) {
    g_autofree char *title = g_strdup_printf(_("Tuning “%s”"), objective);
    fth_jobs_panel_add(self->jobs_panel, self->job, title);
  }
  gtk_label_set_text(self->status_label, _("Starting…"));
  gtk_stack_set_visible_child_name(self->views, "trials");
  set_running(self, TRUE);
  fth_job_start(self->job);
  return TRUE;
}

gboolean
fth_tune_page_stop(FthTunePage *self)
{
  g_return_val_if_fail(FTH_IS_TUNE_PAGE(self), FALSE);
  if (self->job == NULL)
    return FALSE;
  fth_job_cancel(self->job);
  return TRUE;
}

/* ---- promoting the best trial ------------------------------------------------------------- */

typedef struct {
  char *store_dir, *recipe, *study;
  FthSearchSpace *space;
  int epochs;
  gint64 run_id;
} PromoteWork;

static void
promote_work_free(PromoteWork *w)
{
  g_free(w->store_dir);
  g_free(w->recipe);
  g_free(w->study);
  fth_search_space_unref(w->space);
  g_free(w);
}

static gboolean
promote_job(FthJob *job, GCancellable *cancellable, gpointer user_data, GError **error)
{
  PromoteWork *w = user_data;
  g_autoptr(FthStore) store = fth_store_open(w->store_dir, error);
  if (store == NULL)
    return FALSE;
  g_autoptr(FthSampler) sampler = fth_sampler_new_random(1);
  g_autoptr(FthTuneStudy) study = fth_tune_study_new(w->study, w->space, sampler, NULL, TRUE);
  if (!fth_tune_study_open_store(study, store, 0, error))
    return FALSE;
  FthTuneTrainConfig train;
  fth_tune_train_config_init(&train);
  train.store = store;
  train.recipe = w->recipe;
  train.study_name = w->study;
  train.epochs = w->epochs;
  return fth_tune_train_promote(study, &train, &w->run_id, error);
}

static void
promote_event(FthJob *job, const FthJobEvent *event, gpointer user_data)
{
  FthTunePage *self = user_data;
  if (!fth_job_event_is_terminal(event))
    return;
  g_autofree char *status = NULL;
  if (event->type == FTH_JOB_EVENT_SUCCEEDED)
    status = g_strdup(_("The best trial's model is now the project's current model"));
  else
    status = g_strdup_printf(_("Promoting failed: %s"),
                             event->error != NULL ? event->error->message : _("cancelled"));
  gtk_label_set_text(self->status_label, status);
  update_promote(self);
  g_signal_emit(self, signals[SIGNAL_PROMOTED], 0, event->type == FTH_JOB_EVENT_SUCCEEDED);
}

gboolean
fth_tune_page_promote_best(FthTunePage *self)
{
  g_return_val_if_fail(FTH_IS_TUNE_PAGE(self), FALSE);
  const char *objective = chosen_objective(self);
  if (self->store == NULL || self->job != NULL || self->space == NULL || objective == NULL ||
      chosen_builtin(self) != NULL || isnan(self->best))
    return FALSE;
  PromoteWork *w = g_new0(PromoteWork, 1);
  w->store_dir = g_strdup(fth_store_get_dir(self->store));
  w->recipe = g_strdup(objective);
  w->study = study_name(objective);
  w->space = fth_search_space_ref(self->space);
  w->epochs = gtk_spin_button_get_value_as_int(self->epochs_spin);
  g_autoptr(FthJob) job = fth_job_new("promote", promote_job, w, (GDestroyNotify)promote_work_free);
  fth_job_subscribe(job, NULL, promote_event, g_object_ref(self), g_object_unref);
  gtk_widget_action_set_enabled(GTK_WIDGET(self), "tune.promote", FALSE);
  gtk_label_set_text(self->status_label, _("Promoting the best trial…"));
  fth_job_start(job);
  return TRUE;
}

/* ---- the API ------------------------------------------------------------------------------ */

void
fth_tune_page_set_project(FthTunePage *self, FthStore *store, FthJobsPanel *jobs_panel)
{
  g_return_if_fail(FTH_IS_TUNE_PAGE(self));
  /* A study of the previous project goes on in the jobs panel; this page stops following it. */
  stop_following(self);
  g_set_object(&self->store, store);
  g_set_object(&self->jobs_panel, jobs_panel);
  set_running(self, FALSE);
  load_objective(self);
}

static gboolean
select_in(AdwComboRow *row, const char *const *names, guint n, const char *name)
{
  for (guint i = 0; i < n; i++)
    if (g_strcmp0(names[i], name) == 0) {
      adw_combo_row_set_selected(row, i);
      return TRUE;
    }
  return FALSE;
}

gboolean
fth_tune_page_select_objective(FthTunePage *self, const char *name)
{
  g_return_val_if_fail(FTH_IS_TUNE_PAGE(self), FALSE);
  if (self->job != NULL)
    return FALSE; /* the views follow the running study */
  for (guint i = 0; i < g_list_model_get_n_items(G_LIST_MODEL(self->objectives)); i++)
    if (g_strcmp0(gtk_string_list_get_string(self->objectives, i), name) == 0) {
      if (adw_combo_row_get_selected(self->objective_row) == i)
        load_objective(self);
      else
        adw_combo_row_set_selected(self->objective_row, i);
      return TRUE;
    }
  return FALSE;
}

gboolean
fth_tune_page_select_sampler(FthTunePage *self, const char *name)
{
  g_return_val_if_fail(FTH_IS_TUNE_PAGE(self), FALSE);
  return select_in(self->sampler_row, SAMPLERS, G_N_ELEMENTS(SAMPLERS), name);
}

gboolean
fth_tune_page_select_pruner(FthTunePage *self, const char *name)
{
  g_return_val_if_fail(FTH_IS_TUNE_PAGE(self), FALSE);
  return select_in(self->pruner_row, PRUNERS, G_N_ELEMENTS(PRUNERS), name);
}

void
fth_tune_page_set_budget(FthTunePage *self, guint n_trials, guint n_parallel, int epochs)
{
  g_return_if_fail(FTH_IS_TUNE_PAGE(self));
  gtk_spin_button_set_value(self->trials_spin, n_trials);
  gtk_spin_button_set_value(self->parallel_spin, n_parallel);
  gtk_spin_button_set_value(self->epochs_spin, epochs);
}

const char *
fth_tune_page_get_message(FthTunePage *self)
{
  g_return_val_if_fail(FTH_IS_TUNE_PAGE(self), NULL);
  return gtk_label_get_text(self->message_label);
}

const char *
fth_tune_page_get_status(FthTunePage *self)
{
  g_return_val_if_fail(FTH_IS_TUNE_PAGE(self), NULL);
  return gtk_label_get_text(self->status_label);
}

GListModel *
fth_tune_page_get_trials(FthTunePage *self)
{
  g_return_val_if_fail(FTH_IS_TUNE_PAGE(self), NULL);
  return G_LIST_MODEL(self->sorted);
}

gboolean
fth_tune_page_sort_by(FthTunePage *self, const char *column, GtkSortType order)
{
  g_return_val_if_fail(FTH_IS_TUNE_PAGE(self), FALSE);
  static const char *const fixed[] = { "number", "state", "value", "duration" };
  int key = -1;
  for (guint i = 0; i < G_N_ELEMENTS(fixed); i++)
    if (g_strcmp0(column, fixed[i]) == 0)
      key = (int)i;
  if (key < 0 && self->space != NULL && fth_search_space_find(self->space, column) >= 0)
    key = COLUMN_PARAM0 + fth_search_space_find(self->space, column);
  if (key < 0 || (guint)key >= self->columns->len)
    return FALSE;
  gtk_column_view_sort_by_column(self->trials_view, self->columns->pdata[key], order);
  return TRUE;
}

FthParallelCoords *
fth_tune_page_get_parallel_coords(FthTunePage *self)
{
  g_return_val_if_fail(FTH_IS_TUNE_PAGE(self), NULL);
  return self->parallel;
}

guint
fth_tune_page_get_n_best_points(FthTunePage *self)
{
  g_return_val_if_fail(FTH_IS_TUNE_PAGE(self), 0);
  return fth_line_chart_get_n_points(self->best_chart, self->best_series);
}

gboolean
fth_tune_page_get_importance(FthTunePage *self, const char *param, double *importance)
{
  g_return_val_if_fail(FTH_IS_TUNE_PAGE(self), FALSE);
  if (self->importances == NULL || self->space == NULL)
    return FALSE;
  int i = fth_search_space_find(self->space, param);
  if (i < 0)
    return FALSE;
  *importance = self->importances[i];
  return TRUE;
}

static void
start_action(GtkWidget *widget, const char *name, GVariant *parameter)
{
  fth_tune_page_start(FTH_TUNE_PAGE(widget));
}

static void
stop_action(GtkWidget *widget, const char *name, GVariant *parameter)
{
  fth_tune_page_stop(FTH_TUNE_PAGE(widget));
}

static void
promote_action(GtkWidget *widget, const char *name, GVariant *parameter)
{
  fth_tune_page_promote_best(FTH_TUNE_PAGE(widget));
}

/* ---- the class ---------------------------------------------------------------------------- */

static void
fth_tune_page_dispose(GObject *object)
{
  FthTunePage *self = FTH_TUNE_PAGE(object);
  stop_following(self);
  g_cancellable_cancel(self->cancellable);
  g_clear_object(&self->cancellable);
  g_clear_handle_id(&self->importance_source, g_source_remove);
  g_clear_object(&self->store);
  g_clear_object(&self->jobs_panel);
  gtk_widget_dispose_template(GTK_WIDGET(object), FTH_TYPE_TUNE_PAGE);
  GtkWidget *child;
  while ((child = gtk_widget_get_first_child(GTK_WIDGET(object))) != NULL)
    gtk_widget_unparent(child);
  g_clear_object(&self->sorted);
  g_clear_object(&self->trials);
  G_OBJECT_CLASS(fth_tune_page_parent_class)->dispose(object);
}

static void
fth_tune_page_finalize(GObject *object)
{
  FthTunePage *self = FTH_TUNE_PAGE(object);
  g_array_unref(self->rows);
  g_clear_pointer(&self->groups, json_node_unref);
  g_clear_pointer(&self->space, fth_search_space_unref);
  g_ptr_array_unref(self->columns);
  g_free(self->importances);
  G_OBJECT_CLASS(fth_tune_page_parent_class)->finalize(object);
}

static void
fth_tune_page_class_init(FthTunePageClass *klass)
{
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);
  G_OBJECT_CLASS(klass)->dispose = fth_tune_page_dispose;
  G_OBJECT_CLASS(klass)->finalize = fth_tune_page_finalize;

  /* The chosen objective's stored study (if any) is shown. */
  signals[SIGNAL_STUDY_LOADED] = g_signal_new("study-loaded", G_TYPE_FROM_CLASS(klass),
                                              G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                              G_TYPE_NONE, 0);
  /* The study's job ended: whether it succeeded. */
  signals[SIGNAL_STUDY_FINISHED] = g_signal_new("study-finished", G_TYPE_FROM_CLASS(klass),
                                                G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                                G_TYPE_NONE, 1, G_TYPE_BOOLEAN);
  /* Promoting ended: whether the best trial is now the current model. */
  signals[SIGNAL_PROMOTED] = g_signal_new("promoted", G_TYPE_FROM_CLASS(klass),
                                          G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL, G_TYPE_NONE,
                                          1, G_TYPE_BOOLEAN);
  /* New importances are shown. */
  signals[SIGNAL_IMPORTANCES] = g_signal_new("importances-shown", G_TYPE_FROM_CLASS(klass),
                                             G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                             G_TYPE_NONE, 0);

  g_type_ensure(FTH_TYPE_LINE_CHART);
  g_type_ensure(FTH_TYPE_PARALLEL_COORDS);
  gtk_widget_class_set_template_from_resource(widget_class,
                                              "/io/github/fathom/Workbench/fth-tune-page.ui");
  gtk_widget_class_bind_template_child(widget_class, FthTunePage, objective_row);
  gtk_widget_class_bind_template_child(widget_class, FthTunePage, objectives);
  gtk_widget_class_bind_template_child(widget_class, FthTunePage, sampler_row);
  gtk_widget_class_bind_template_child(widget_class, FthTunePage, pruner_row);
  gtk_widget_class_bind_template_child(widget_class, FthTunePage, trials_spin);
  gtk_widget_class_bind_template_child(widget_class, FthTunePage, parallel_spin);
  gtk_widget_class_bind_template_child(widget_class, FthTunePage, epochs_spin);
  gtk_widget_class_bind_template_child(widget_class, FthTunePage, epochs_row);
  gtk_widget_class_bind_template_child(widget_class, FthTunePage, space_grid);
  gtk_widget_class_bind_template_child(widget_class, FthTunePage, message_label);
  gtk_widget_class_bind_template_child(widget_class, FthTunePage, status_label);
  gtk_widget_class_bind_template_child(widget_class, FthTunePage, views);
  gtk_widget_class_bind_template_child(widget_class, FthTunePage, trials_view);
  gtk_widget_class_bind_template_child(widget_class, FthTunePage, best_chart);
  gtk_widget_class_bind_template_child(widget_class, FthTunePage, parallel);
  gtk_widget_class_bind_template_child(widget_class, FthTunePage, importances_list);
  /* Ctrl+Return starts (or resumes) the study, Ctrl+Shift+Return stops it (help-overlay.ui). */
  gtk_widget_class_install_action(widget_class, "tune.start", NULL, start_action);
  gtk_widget_class_install_action(widget_class, "tune.stop", NULL, stop_action);
  gtk_widget_class_install_action(widget_class, "tune.promote", NULL, promote_action);
  gtk_widget_class_add_binding_action(widget_class, GDK_KEY_Return, GDK_CONTROL_MASK,
                                      "tune.start", NULL);
  gtk_widget_class_add_binding_action(widget_class, GDK_KEY_Return,
                                      GDK_CONTROL_MASK | GDK_SHIFT_MASK, "tune.stop", NULL);
  gtk_widget_class_set_layout_manager_type(widget_class, GTK_TYPE_BIN_LAYOUT);
}

static void
fth_tune_page_init(FthTunePage *self)
{
  gtk_widget_init_template(GTK_WIDGET(self));
  self->rows = g_array_new(FALSE, TRUE, sizeof(ParamRow));
  g_array_set_clear_func(self->rows, (GDestroyNotify)param_row_clear);
  self->columns = g_ptr_array_new_with_free_func(g_object_unref);
  self->trials = g_list_store_new(FTH_TYPE_TUNE_TRIAL_ITEM);
  GtkSorter *sorter = gtk_column_view_get_sorter(self->trials_view);
  self->sorted = gtk_sort_list_model_new(G_LIST_MODEL(g_object_ref(self->trials)),
                                         g_object_ref(sorter));
  g_autoptr(GtkNoSelection) selection =
    gtk_no_selection_new(G_LIST_MODEL(g_object_ref(self->sorted)));
  gtk_column_view_set_model(self->trials_view, GTK_SELECTION_MODEL(selection));
  self->best = NAN;
  GdkRGBA blue = { 0.21f, 0.52f, 0.89f, 1 }, orange = { 0.90f, 0.38f, 0.0f, 1 };
  self->value_series = fth_line_chart_add_series(self->best_chart, _("trial"), &blue);
  self->best_series = fth_line_chart_add_series(self->best_chart, _("best so far"), &orange);
  for (const char *const *r = fth_tune_train_recipes(); *r != NULL; r++)
    gtk_string_list_append(self->objectives, *r);
  for (guint i = 0; i < G_N_ELEMENTS(TEST_FUNCTIONS); i++)
    gtk_string_list_append(self->objectives, TEST_FUNCTIONS[i]);
  g_signal_connect(self->objective_row, "notify::selected", G_CALLBACK(objective_selected), self);
  set_running(self, FALSE);
  load_objective(self);
}
