/* fth-item-list.c: FthItemList, the store's items as a lazy GListModel.
 *
 * Rows are fetched a page at a time. Each fetched page remembers its last item id, so the next
 * page is read by keyset (id > last) in constant time; only a jump to an unvisited deep page
 * uses OFFSET. The newest few pages stay cached; the rest are dropped. */
#include "fth-config.h"

#include "fth-item-private.h"
#include "store-private.h"

#define PAGE_SIZE 128
#define MAX_CACHED_PAGES 16

struct _FthItemList {
  GObject parent_instance;
  FthStore *store;
  FthItemFilter *filter;
  guint n_items;
  GHashTable *pages;   /* page index -> GPtrArray of FthItem */
  GQueue page_order;   /* page indexes, most recently used first */
  GArray *page_last_id; /* gint64 per page: its last item id, 0 while unknown */
};

static void fth_item_list_model_init(GListModelInterface *iface);

G_DEFINE_TYPE_WITH_CODE(FthItemList, fth_item_list, G_TYPE_OBJECT,
                        G_IMPLEMENT_INTERFACE(G_TYPE_LIST_MODEL, fth_item_list_model_init))

static GType
fth_item_list_get_item_type(GListModel *model)
{
  return FTH_TYPE_ITEM;
}

static guint
fth_item_list_get_n_items(GListModel *model)
{
  return FTH_ITEM_LIST(model)->n_items;
}

static GPtrArray *
fetch_page(FthItemList *self, guint page)
{
  gint64 after_id = page > 0 ? g_array_index(self->page_last_id, gint64, page - 1) : 0;
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) names = NULL;
  g_autoptr(GPtrArray) records = fth_store_query_items(self->store, self->filter, after_id,
                                                       after_id > 0 ? 0 : (gint64) page * PAGE_SIZE,
                                                       PAGE_SIZE, &names, &error);
  if (records == NULL) {
    /* GListModel has no error channel; the row shows as missing and the cause is logged. */
    g_warning("%s", error->message);
    return NULL;
  }
  gsize n = 0;
  FthItemRecord **taken = (FthItemRecord **) g_ptr_array_steal(records, &n);
  GPtrArray *items = g_ptr_array_new_full((guint) n, g_object_unref);
  for (gsize i = 0; i < n; i++)
    g_ptr_array_add(items, fth_item_new_take(taken[i], g_strdup(g_ptr_array_index(names, i))));
  g_free(taken);
  return items;
}

static gpointer
fth_item_list_get_item(GListModel *model, guint position)
{
  FthItemList *self = FTH_ITEM_LIST(model);
  if (position >= self->n_items)
    return NULL;
  guint page = position / PAGE_SIZE;
  GPtrArray *items = g_hash_table_lookup(self->pages, GUINT_TO_POINTER(page));
  if (items != NULL) {
    g_queue_remove(&self->page_order, GUINT_TO_POINTER(page));
  } else {
    items = fetch_page(self, page);
    if (items == NULL)
      return NULL;
    if (items->len > 0)
      g_array_index(self->page_last_id, gint64, page) =
          fth_item_get_id(g_ptr_array_index(items, items->len - 1));
    g_hash_table_insert(self->pages, GUINT_TO_POINTER(page), items);
    if (g_queue_get_length(&self->page_order) >= MAX_CACHED_PAGES)
      g_hash_table_remove(self->pages, g_queue_pop_tail(&self->page_order));
  }
  g_queue_push_head(&self->page_order, GUINT_TO_POINTER(page));
  guint index = position % PAGE_SIZE;
  /* Fewer rows than counted: items were deleted since the last refresh. */
  if (index >= items->len)
    return NULL;
  return g_object_ref(g_ptr_array_index(items, index));
}

static void
fth_item_list_model_init(GListModelInterface *iface)
{
  iface->get_item_type = fth_item_list_get_item_type;
  iface->get_n_items = fth_item_list_get_n_items;
  iface->get_item = fth_item_list_get_item;
}

static void
fth_item_list_finalize(GObject *object)
{
  FthItemList *self = FTH_ITEM_LIST(object);
  g_hash_table_unref(self->pages);
  g_queue_clear(&self->page_order);
  g_array_unref(self->page_last_id);
  fth_item_filter_free(self->filter);
  g_clear_object(&self->store);
  G_OBJECT_CLASS(fth_item_list_parent_class)->finalize(object);
}

static void
fth_item_list_class_init(FthItemListClass *klass)
{
  G_OBJECT_CLASS(klass)->finalize = fth_item_list_finalize;
}

static void
fth_item_list_init(FthItemList *self)
{
  self->pages = g_hash_table_new_full(NULL, NULL, NULL, (GDestroyNotify) g_ptr_array_unref);
  g_queue_init(&self->page_order);
  self->page_last_id = g_array_new(FALSE, TRUE, sizeof(gint64));
}

/* Counts and resets the cache; returns the old count through OUT_OLD. */
static gboolean
recount(FthItemList *self, guint *out_old, GError **error)
{
  *out_old = self->n_items;
  g_hash_table_remove_all(self->pages);
  g_queue_clear(&self->page_order);
  gint64 count = 0;
  gboolean ok = fth_store_count_items(self->store, self->filter, &count, error);
  self->n_items = ok ? (guint) MIN(count, (gint64) G_MAXUINT) : 0;
  g_array_set_size(self->page_last_id, 0);
  g_array_set_size(self->page_last_id, self->n_items / PAGE_SIZE + 1);
  return ok;
}

FthItemList *
fth_item_list_new(FthStore *store, const FthItemFilter *filter, GError **error)
{
  g_return_val_if_fail(FTH_IS_STORE(store), NULL);
  FthItemList *self = g_object_new(FTH_TYPE_ITEM_LIST, NULL);
  self->store = g_object_ref(store);
  self->filter = fth_item_filter_copy(filter);
  guint old;
  recount(self, &old, error);
  return self;
}

FthStore *
fth_item_list_get_store(FthItemList *list)
{
  g_return_val_if_fail(FTH_IS_ITEM_LIST(list), NULL);
  return list->store;
}

const FthItemFilter *
fth_item_list_get_filter(FthItemList *list)
{
  g_return_val_if_fail(FTH_IS_ITEM_LIST(list), NULL);
  return list->filter;
}

gboolean
fth_item_list_refresh(FthItemList *list, GError **error)
{
  g_return_val_if_fail(FTH_IS_ITEM_LIST(list), FALSE);
  guint old = 0;
  gboolean ok = recount(list, &old, error);
  if (old > 0 || list->n_items > 0)
    g_list_model_items_changed(G_LIST_MODEL(list), 0, old, list->n_items);
  return ok;
}

gboolean
fth_item_list_set_filter(FthItemList *list, const FthItemFilter *filter, GError **error)
{
  g_return_val_if_fail(FTH_IS_ITEM_LIST(list), FALSE);
  fth_item_filter_free(list->filter);
  list->filter = fth_item_filter_copy(filter);
  return fth_item_list_refresh(list, error);
}
