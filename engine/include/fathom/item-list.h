/* fathom/item-list.h: a project's items as a GListModel, for GtkGridView/GtkListView.
 *
 * FthItemList is lazy: n_items comes from one COUNT query, and get_item() fetches the page of
 * rows around the requested position (keyset paging from the nearest cached page) into a small
 * cache, so a project of any size opens and scrolls without loading all rows. It reads through
 * the store's read connection, so a running import never blocks it; call
 * fth_item_list_refresh() after writes to see them (it re-counts, drops the cache and emits
 * items-changed). Use it from one thread (the GTK main thread).
 */
#pragma once

#include <fathom/store.h>

G_BEGIN_DECLS

/* One row of the list: an immutable snapshot of an item. */
#define FTH_TYPE_ITEM (fth_item_get_type())
G_DECLARE_FINAL_TYPE(FthItem, fth_item, FTH, ITEM, GObject)

gint64 fth_item_get_id(FthItem *item);
FthItemKind fth_item_get_kind(FthItem *item);
const char *fth_item_get_path(FthItem *item); /* as stored (see fth_store_resolve_path) */
gint64 fth_item_get_member(FthItem *item);
FthSplit fth_item_get_split(FthItem *item);
int fth_item_get_width(FthItem *item);
int fth_item_get_height(FthItem *item);
const char *fth_item_get_text(FthItem *item);
/* The name of the item's whole-item class label (a human one before a model one), or NULL. */
const char *fth_item_get_class_label(FthItem *item);

#define FTH_TYPE_ITEM_LIST (fth_item_list_get_type())
G_DECLARE_FINAL_TYPE(FthItemList, fth_item_list, FTH, ITEM_LIST, GObject)

/* FILTER may be NULL (every item); it is copied. Counts the items at once; if that fails the
 * list is empty and the error is returned. */
FthItemList *fth_item_list_new(FthStore *store, const FthItemFilter *filter, GError **error);
FthStore *fth_item_list_get_store(FthItemList *list);
const FthItemFilter *fth_item_list_get_filter(FthItemList *list);
/* Replaces the filter and refreshes. */
gboolean fth_item_list_set_filter(FthItemList *list, const FthItemFilter *filter, GError **error);
/* Re-counts, drops the cache and emits items-changed(0, old, new). */
gboolean fth_item_list_refresh(FthItemList *list, GError **error);

G_END_DECLS
