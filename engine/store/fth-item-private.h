/* fth-item-private.h: how FthItemList makes its rows. */
#pragma once

#include <fathom/item-list.h>

G_BEGIN_DECLS

/* Takes ownership of RECORD and CLASS_LABEL (may be NULL). */
FthItem *fth_item_new_take(FthItemRecord *record, char *class_label);

G_END_DECLS
