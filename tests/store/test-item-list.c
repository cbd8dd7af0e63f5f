/* FthItemList: n_items, get_item across pages (sequential and random access), properties,
 * filters and items-changed after refresh. */
#include "fth-config.h"

#include <fathom/item-list.h>

#include "store-test-util.h"

#define N_ITEMS 1000

typedef struct {
  guint position, removed, added, calls;
} Changed;

static void
on_items_changed(GListModel *model, guint position, guint removed, guint added, gpointer data)
{
  Changed *c = data;
  c->position = position;
  c->removed = removed;
  c->added = added;
  c->calls++;
}

static void
test_item_list(void)
{
  g_autofree char *tmp = store_test_make_dir();
  g_autoptr(GError) error = NULL;
  g_autoptr(FthStore) store = fth_store_create(tmp, &error);
  g_assert_no_error(error);
  gint64 cat = 0;
  g_assert_true(fth_store_add_label(store, "cat", NULL, NULL, FTH_LABEL_CLASS, &cat, &error));
  gint64 ids[N_ITEMS];
  g_assert_true(fth_store_begin(store, &error));
  for (int i = 0; i < N_ITEMS; i++) {
    g_autofree char *path = g_strdup_printf("img/%04d.png", i);
    g_autoptr(FthItemRecord) item = store_test_image(path, i + 1, 2 * i + 1);
    item->split = i % 2 == 0 ? FTH_SPLIT_TRAIN : FTH_SPLIT_TEST;
    ids[i] = store_test_add(store, item);
    if (i % 10 == 3) {
      gint64 ann = 0;
      g_assert_true(fth_store_set_class(store, ids[i], cat, FTH_AUTHOR_HUMAN, 0, 1, &ann, &error));
    }
  }
  g_assert_true(fth_store_commit(store, &error));

  g_autoptr(FthItemList) list = fth_item_list_new(store, NULL, &error);
  g_assert_no_error(error);
  GListModel *model = G_LIST_MODEL(list);
  g_assert_true(g_list_model_get_item_type(model) == FTH_TYPE_ITEM);
  g_assert_cmpuint(g_list_model_get_n_items(model), ==, N_ITEMS);
  g_assert_true(fth_item_list_get_store(list) == store);

  /* Sequential, then backwards and random jumps (deep pages fetched out of order). */
  for (guint i = 0; i < N_ITEMS; i++) {
    g_autoptr(FthItem) item = g_list_model_get_item(model, i);
    g_assert_nonnull(item);
    g_assert_cmpint(fth_item_get_id(item), ==, ids[i]);
  }
  GRand *rand = g_rand_new_with_seed(3);
  for (int k = 0; k < 300; k++) {
    guint i = k < 100 ? N_ITEMS - 1 - (guint) k : (guint) g_rand_int_range(rand, 0, N_ITEMS);
    g_autoptr(FthItem) item = g_list_model_get_item(model, i);
    g_assert_cmpint(fth_item_get_id(item), ==, ids[i]);
    g_assert_cmpint(fth_item_get_width(item), ==, (int) i + 1);
    g_assert_cmpint(fth_item_get_height(item), ==, 2 * (int) i + 1);
  }
  g_rand_free(rand);
  g_assert_null(g_list_model_get_item(model, N_ITEMS));

  /* Properties, including the class label. */
  g_autoptr(FthItem) third = g_list_model_get_item(model, 3);
  g_autofree char *path = NULL, *label = NULL;
  gint64 id = 0, member = 0;
  int kind = 0, split = 0;
  g_object_get(third, "id", &id, "path", &path, "kind", &kind, "split", &split, "member",
               &member, "class-label", &label, NULL);
  g_assert_cmpint(id, ==, ids[3]);
  g_assert_cmpstr(path, ==, "img/0003.png");
  g_assert_cmpint(kind, ==, FTH_ITEM_IMAGE);
  g_assert_cmpint(split, ==, FTH_SPLIT_TEST);
  g_assert_cmpint(member, ==, -1);
  g_assert_cmpstr(label, ==, "cat");
  g_assert_cmpstr(fth_item_get_class_label(third), ==, "cat");
  g_autoptr(FthItem) fourth = g_list_model_get_item(model, 4);
  g_assert_null(fth_item_get_class_label(fourth));
  g_assert_null(fth_item_get_text(fourth));

  /* Writes show after refresh, which reports the change. */
  Changed changed = { 0 };
  g_signal_connect(list, "items-changed", G_CALLBACK(on_items_changed), &changed);
  g_autoptr(FthItemRecord) extra = store_test_image("img/extra.png", 5, 5);
  gint64 extra_id = store_test_add(store, extra);
  g_assert_true(fth_store_delete_item(store, ids[0], &error));
  g_assert_true(fth_store_delete_item(store, ids[1], &error));
  g_assert_true(fth_item_list_refresh(list, &error));
  g_assert_cmpuint(changed.calls, ==, 1);
  g_assert_cmpuint(changed.position, ==, 0);
  g_assert_cmpuint(changed.removed, ==, N_ITEMS);
  g_assert_cmpuint(changed.added, ==, N_ITEMS - 1);
  g_assert_cmpuint(g_list_model_get_n_items(model), ==, N_ITEMS - 1);
  g_autoptr(FthItem) head = g_list_model_get_item(model, 0);
  g_assert_cmpint(fth_item_get_id(head), ==, ids[2]);
  g_autoptr(FthItem) tail = g_list_model_get_item(model, N_ITEMS - 2);
  g_assert_cmpint(fth_item_get_id(tail), ==, extra_id);

  /* A filter: the train split (even indexes, minus the deleted 0). */
  FthItemFilter filter = FTH_ITEM_FILTER_INIT;
  filter.split = FTH_SPLIT_TRAIN;
  g_assert_true(fth_item_list_set_filter(list, &filter, &error));
  g_assert_cmpuint(changed.calls, ==, 2);
  g_assert_cmpuint(g_list_model_get_n_items(model), ==, N_ITEMS / 2 - 1);
  g_assert_cmpint(fth_item_list_get_filter(list)->split, ==, FTH_SPLIT_TRAIN);
  for (guint i = 0; i < N_ITEMS / 2 - 1; i++) {
    g_autoptr(FthItem) item = g_list_model_get_item(model, i);
    g_assert_cmpint(fth_item_get_id(item), ==, ids[2 * (i + 1)]);
    g_assert_cmpint(fth_item_get_split(item), ==, FTH_SPLIT_TRAIN);
  }

  g_clear_object(&list);
  g_clear_object(&store);
  store_test_remove_dir(tmp);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/store/item-list", test_item_list);
  return g_test_run();
}
