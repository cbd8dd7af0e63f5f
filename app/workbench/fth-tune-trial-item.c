/* fth-tune-trial-item.c: an immutable record; the page builds one per finished trial. */
#include "fth-tune-trial-item.h"

#include <math.h>

struct _FthTuneTrialItem {
  GObject parent_instance;
  int number;
  FthTuneTrialState state;
  double value, duration_s;
  double *params;
  guint n_params;
  char *error;
};

G_DEFINE_FINAL_TYPE(FthTuneTrialItem, fth_tune_trial_item, G_TYPE_OBJECT)

FthTuneTrialItem *
fth_tune_trial_item_new(int number, FthTuneTrialState state, double value, double duration_s,
                        const double *params, guint n_params, const char *error)
{
  FthTuneTrialItem *self = g_object_new(FTH_TYPE_TUNE_TRIAL_ITEM, NULL);
  self->number = number;
  self->state = state;
  self->value = value;
  self->duration_s = duration_s;
  self->params = g_memdup2(params, n_params * sizeof *params);
  self->n_params = n_params;
  self->error = g_strdup(error);
  return self;
}

int
fth_tune_trial_item_get_number(FthTuneTrialItem *self)
{
  g_return_val_if_fail(FTH_IS_TUNE_TRIAL_ITEM(self), -1);
  return self->number;
}

FthTuneTrialState
fth_tune_trial_item_get_state(FthTuneTrialItem *self)
{
  g_return_val_if_fail(FTH_IS_TUNE_TRIAL_ITEM(self), FTH_TUNE_TRIAL_FAILED);
  return self->state;
}

double
fth_tune_trial_item_get_value(FthTuneTrialItem *self)
{
  g_return_val_if_fail(FTH_IS_TUNE_TRIAL_ITEM(self), NAN);
  return self->value;
}

double
fth_tune_trial_item_get_duration(FthTuneTrialItem *self)
{
  g_return_val_if_fail(FTH_IS_TUNE_TRIAL_ITEM(self), NAN);
  return self->duration_s;
}

guint
fth_tune_trial_item_get_n_params(FthTuneTrialItem *self)
{
  g_return_val_if_fail(FTH_IS_TUNE_TRIAL_ITEM(self), 0);
  return self->n_params;
}

double
fth_tune_trial_item_get_param(FthTuneTrialItem *self, guint index)
{
  g_return_val_if_fail(FTH_IS_TUNE_TRIAL_ITEM(self), NAN);
  return index < self->n_params ? self->params[index] : NAN;
}

const double *
fth_tune_trial_item_get_params(FthTuneTrialItem *self)
{
  g_return_val_if_fail(FTH_IS_TUNE_TRIAL_ITEM(self), NULL);
  return self->params;
}

const char *
fth_tune_trial_item_get_error(FthTuneTrialItem *self)
{
  g_return_val_if_fail(FTH_IS_TUNE_TRIAL_ITEM(self), NULL);
  return self->error;
}

static void
fth_tune_trial_item_finalize(GObject *object)
{
  FthTuneTrialItem *self = FTH_TUNE_TRIAL_ITEM(object);
  g_free(self->params);
  g_free(self->error);
  G_OBJECT_CLASS(fth_tune_trial_item_parent_class)->finalize(object);
}

static void
fth_tune_trial_item_class_init(FthTuneTrialItemClass *klass)
{
  G_OBJECT_CLASS(klass)->finalize = fth_tune_trial_item_finalize;
}

static void
fth_tune_trial_item_init(FthTuneTrialItem *self)
{
  self->value = NAN;
  self->duration_s = NAN;
}
