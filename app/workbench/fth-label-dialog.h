/* fth-label-dialog.h: the dialog that adds or edits a label (name, hotkey, color).
 *
 * An AdwMessageDialog with responses "cancel", "save" and, when editing, "remove". The
 * caller connects to "response" and reads the fields with fth_label_dialog_get_values(). */
#pragma once

#include <adwaita.h>
#include <fathom/store.h>

G_BEGIN_DECLS

/* LABEL NULL: a new label. The dialog remembers LABEL's id as "fth-label-id" (0 for new). */
AdwMessageDialog *fth_label_dialog_new(GtkWindow *parent, const FthLabel *label);
gint64 fth_label_dialog_get_label_id(AdwMessageDialog *dialog);
/* The fields: NAME stripped, COLOR as "#rrggbb", HOTKEY NULL when empty. */
void fth_label_dialog_get_values(AdwMessageDialog *dialog, char **name, char **color,
                                 char **hotkey);

G_END_DECLS
