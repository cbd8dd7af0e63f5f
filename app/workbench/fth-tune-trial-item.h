/* fth-tune-trial-item.h: one finished trial of a study as a list item (the tuning page's
 * trials table is a GtkColumnView over a GListStore of these). */
#pragma once

#include <fathom/tune.h>
#include <glib-object.h>

G_BEGIN_DECLS

#define FTH_TYPE_TUNE_TRIAL_ITEM (fth_tune_trial_item_get_type())
G_DECLARE_FINAL_TYPE(FthTuneTrialItem, fth_tune_trial_item, FTH, TUNE_TRIAL_ITEM, GObject)

/* PARAMS: N_PARAMS values (NaN where inactive), copied; VALUE NaN when there is none. */
FthTuneTrialItem *fth_tune_trial_item_new(int number, FthTuneTrialState state, double value,
                                          double duration_s, const double *params,
                                          guint n_params, const char *error);
int fth_tune_trial_item_get_number(FthTuneTrialItem *self);
FthTuneTrialState fth_tune_trial_item_get_state(FthTuneTrialItem *self);
double fth_tune_trial_item_get_value(FthTuneTrialItem *self);
double fth_tune_trial_item_get_duration(FthTuneTrialItem *self);
guint fth_tune_trial_item_get_n_params(FthTuneTrialItem *self);
/* Parameter INDEX's value, NaN when inactive (or out of range). */
double fth_tune_trial_item_get_param(FthTuneTrialItem *self, guint index);
const double *fth_tune_trial_item_get_params(FthTuneTrialItem *self);
/* A failed trial's reason, NULL otherwise. */
const char *fth_tune_trial_item_get_error(FthTuneTrialItem *self);

G_END_DECLS
