/* bench-store: how fast the project store is at the sizes the workbench must feel instant at.
 *
 *   bench-store [DIR]   (DIR defaults to $TMPDIR or /tmp)
 *
 * Inserts 100,000 items into a fresh project (items/s), then uses a 1,000,000-item project
 * (generated once as DIR/fathom-bench-1m and reused by later runs) for open, count and page
 * query times. Prints a table; times are wall clock, medians of several repeats. */
#include "fth-config.h"

#include <fathom/item-list.h>
#include <fathom/store.h>
#include <glib/gstdio.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>

#define N_INSERT 100000
#define N_BIG 1000000
#define COMMIT_EVERY 10000
#define PAGE 100
#define REPEATS 7

static void
die(const char *what, GError *error)
{
  fprintf(stderr, "bench-store: %s: %s\n", what, error != NULL ? error->message : "failed");
  exit(1);
}

static void
remove_tree(const char *path)
{
  GDir *dir = g_dir_open(path, 0, NULL);
  if (dir != NULL) {
    const char *name;
    while ((name = g_dir_read_name(dir)) != NULL) {
      g_autofree char *child = g_build_filename(path, name, NULL);
      g_unlink(child);
    }
    g_dir_close(dir);
  }
  g_rmdir(path);
}

/* Adds N items in transactions of COMMIT_EVERY; returns seconds. */
static double
insert_items(FthStore *store, int n)
{
  GError *error = NULL;
  gint64 t0 = g_get_monotonic_time();
  for (int i = 0; i < n; i++) {
    if (i % COMMIT_EVERY == 0 && !fth_store_begin(store, &error))
      die("begin", error);
    FthItemRecord item = { 0 };
    g_autofree char *path = g_strdup_printf("images/%03d/%07d.png", i % 1000, i);
    g_autofree char *sha = g_compute_checksum_for_string(G_CHECKSUM_SHA256, path, -1);
    item.kind = FTH_ITEM_IMAGE;
    item.path = path;
    item.member = -1;
    item.sha256 = sha;
    item.width = item.height = 28;
    item.size_bytes = 784;
    item.split = (FthSplit) (i % 10 < 8 ? FTH_SPLIT_TRAIN : i % 10 == 8 ? FTH_SPLIT_VAL : FTH_SPLIT_TEST);
    gint64 id;
    gboolean dup;
    if (!fth_store_add_item(store, &item, &id, &dup, &error))
      die("add item", error);
    if ((i + 1) % COMMIT_EVERY == 0 || i + 1 == n)
      if (!fth_store_commit(store, &error))
        die("commit", error);
  }
  return (g_get_monotonic_time() - t0) / 1e6;
}

static int
cmp_double(const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return x < y ? -1 : x > y;
}

typedef void (*Op)(FthStore *store, gpointer data);

/* Median milliseconds of REPEATS runs of OP. */
static double
time_ms(Op op, FthStore *store, gpointer data)
{
  double t[REPEATS];
  for (int r = 0; r < REPEATS; r++) {
    gint64 t0 = g_get_monotonic_time();
    op(store, data);
    t[r] = (g_get_monotonic_time() - t0) / 1e3;
  }
  qsort(t, REPEATS, sizeof t[0], cmp_double);
  return t[REPEATS / 2];
}

typedef struct {
  FthItemFilter filter;
  gint64 after_id;
  gint64 offset;
} PageQuery;

static void
op_page_after(FthStore *store, gpointer data)
{
  PageQuery *q = data;
  GError *error = NULL;
  GPtrArray *page = fth_store_list_items_after(store, &q->filter, q->after_id, PAGE, &error);
  if (page == NULL || page->len != PAGE)
    die("page query", error);
  g_ptr_array_unref(page);
}

static void
op_page_offset(FthStore *store, gpointer data)
{
  PageQuery *q = data;
  GError *error = NULL;
  GPtrArray *page = fth_store_list_items_page(store, &q->filter, q->offset, PAGE, &error);
  if (page == NULL || page->len != PAGE)
    die("page query", error);
  g_ptr_array_unref(page);
}

static void
op_count(FthStore *store, gpointer data)
{
  GError *error = NULL;
  gint64 n;
  if (!fth_store_count_items(store, data, &n, &error))
    die("count", error);
}

static const char *big_dir;

static void
op_open(FthStore *unused, gpointer data)
{
  GError *error = NULL;
  FthStore *store = fth_store_open_full(big_dir, GPOINTER_TO_INT(data), &error);
  if (store == NULL)
    die("open", error);
  g_object_unref(store);
}

/* A list model as the workbench uses it: created, first screen read, then a jump deep. */
static void
op_list_model(FthStore *store, gpointer data)
{
  GError *error = NULL;
  FthItemList *list = fth_item_list_new(store, NULL, &error);
  if (list == NULL || error != NULL)
    die("item list", error);
  guint n = g_list_model_get_n_items(G_LIST_MODEL(list));
  for (guint i = 0; i < 60; i++)
    g_object_unref(g_list_model_get_item(G_LIST_MODEL(list), i));
  for (guint i = n * 9 / 10; i < n * 9 / 10 + 60; i++)
    g_object_unref(g_list_model_get_item(G_LIST_MODEL(list), i));
  g_object_unref(list);
}

int
main(int argc, char **argv)
{
  const char *base = argc > 1 ? argv[1] : g_get_tmp_dir();
  GError *error = NULL;

  /* 1. Insert rate into a fresh project. */
  g_autofree char *fresh = g_build_filename(base, "fathom-bench-100k", NULL);
  remove_tree(fresh);
  FthStore *store = fth_store_create(fresh, &error);
  if (store == NULL)
    die("create", error);
  double insert_s = insert_items(store, N_INSERT);
  g_object_unref(store);
  remove_tree(fresh);

  /* 2. The 1,000,000-item project, made once. */
  g_autofree char *big = g_build_filename(base, "fathom-bench-1m", NULL);
  big_dir = big;
  double gen_s = -1;
  store = fth_store_open(big, NULL);
  gint64 n = 0;
  if (store == NULL || !fth_store_count_items(store, NULL, &n, NULL) || n != N_BIG) {
    g_clear_object(&store);
    remove_tree(big);
    fprintf(stderr, "bench-store: generating %s (once)\n", big);
    store = fth_store_create(big, &error);
    if (store == NULL)
      die("create", error);
    gen_s = insert_items(store, N_BIG);
  }
  g_object_unref(store);

  double open_quick = time_ms(op_open, NULL, GINT_TO_POINTER(FTH_STORE_OPEN_DEFAULT));
  double open_skip = time_ms(op_open, NULL, GINT_TO_POINTER(FTH_STORE_OPEN_SKIP_CHECK));
  store = fth_store_open(big, &error);
  if (store == NULL)
    die("open", error);

  FthItemFilter val = FTH_ITEM_FILTER_INIT;
  val.split = FTH_SPLIT_VAL;
  FthItemFilter search = FTH_ITEM_FILTER_INIT;
  search.search = "/123/";
  double count_all = time_ms(op_count, store, NULL);
  double count_val = time_ms(op_count, store, &val);

  PageQuery first = { FTH_ITEM_FILTER_INIT, 0, 0 };
  PageQuery deep_offset = { FTH_ITEM_FILTER_INIT, 0, N_BIG * 9 / 10 };
  PageQuery deep_keyset = { FTH_ITEM_FILTER_INIT, N_BIG * 9 / 10, 0 };
  PageQuery filtered = { val, N_BIG / 2, 0 };
  PageQuery searched = { search, 0, 0 };
  double t_first = time_ms(op_page_after, store, &first);
  double t_deep_offset = time_ms(op_page_offset, store, &deep_offset);
  double t_deep_keyset = time_ms(op_page_after, store, &deep_keyset);
  double t_filtered = time_ms(op_page_after, store, &filtered);
  double t_search = time_ms(op_page_after, store, &searched);
  double t_model = time_ms(op_list_model, store, NULL);
  g_object_unref(store);

  printf("Fathom store benchmark (SQLite %s, WAL, synchronous=NORMAL)\n\n", sqlite3_libversion());
  printf("| measure                                              | value        |\n");
  printf("|------------------------------------------------------|--------------|\n");
  printf("| insert 100,000 items (commit every %d)             | %8.0f /s  |\n", COMMIT_EVERY,
         N_INSERT / insert_s);
  if (gen_s > 0)
    printf("| insert 1,000,000 items (generation)                  | %8.0f /s  |\n", N_BIG / gen_s);
  printf("| 1M project: open (quick_check)                       | %9.1f ms |\n", open_quick);
  printf("| 1M project: open (no check)                          | %9.1f ms |\n", open_skip);
  printf("| 1M project: count all                                | %9.1f ms |\n", count_all);
  printf("| 1M project: count split=val                          | %9.1f ms |\n", count_val);
  printf("| 1M project: first page (100)                         | %9.2f ms |\n", t_first);
  printf("| 1M project: deep page, offset 900,000                | %9.2f ms |\n", t_deep_offset);
  printf("| 1M project: deep page, keyset after id 900,000       | %9.2f ms |\n", t_deep_keyset);
  printf("| 1M project: filtered page (split=val, from id 500k)  | %9.2f ms |\n", t_filtered);
  printf("| 1M project: search page (path contains /123/)        | %9.2f ms |\n", t_search);
  printf("| 1M project: item list: new + 60 rows + jump to 90%%   | %9.2f ms |\n", t_model);
  return 0;
}
