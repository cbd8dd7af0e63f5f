/* Fashion-MNIST from Debian's dataset-fashion-mnist: items in a project pointing at records of
 * the IDX file, the decode-once cache, a small CNN on a few hundred images driving its loss
 * down, and predictions with embeddings stored. Skipped (77) without the dataset package. */
#include <fathom/media.h>
#include <fathom/train.h>
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#include "fixtures.h"

enum { N_ITEMS = 600 };

static char *tmp_root;
static char *project;

static void
test_dataset_cache(void)
{
  GError *error = NULL;
  g_autoptr(FthStore) store = fth_store_open(project, &error);
  g_autoptr(FthIdx) img = fth_idx_open(FTH_TEST_FMNIST "/train-images-idx3-ubyte.gz", &error);
  g_autoptr(FthIdx) lab = fth_idx_open(FTH_TEST_FMNIST "/train-labels-idx1-ubyte.gz", &error);
  g_assert_no_error(error);
  g_autoptr(FthDataset) first = fth_dataset_open(store, FTH_DATASET_LABELED, 1, NULL, &error);
  g_assert_no_error(error);
  g_assert_cmpuint(fth_dataset_size(first), ==, N_ITEMS);
  g_assert_cmpuint(fth_dataset_n_decoded(first), ==, N_ITEMS);
  g_assert_cmpint(fth_dataset_n_classes(first), ==, 10);
  int c, h, w;
  fth_dataset_shape(first, &c, &h, &w);
  g_assert_cmpint(c * 100 + h * 10 + w, ==, 100 + 280 + 28);
  g_assert_true(g_str_has_prefix(fth_dataset_cache_path(first), project));
  for (size_t i = 0; i < N_ITEMS; i += 37) {
    g_assert_cmpmem(fth_dataset_pixels(first, i), 784, fth_idx_get_record(img, i), 784);
    g_assert_cmpint(fth_dataset_label(first, i), ==, fth_idx_get_record(lab, i)[0]);
  }
  /* The second open decodes nothing and reads the same bytes from the cache. */
  g_autoptr(FthDataset) again = fth_dataset_open(store, FTH_DATASET_LABELED, 1, NULL, &error);
  g_assert_no_error(error);
  g_assert_cmpuint(fth_dataset_n_decoded(again), ==, 0);
  g_assert_cmpstr(fth_dataset_cache_path(again), ==, fth_dataset_cache_path(first));
  g_assert_cmpmem(fth_dataset_pixels(again, 0), 784 * N_ITEMS, fth_dataset_pixels(first, 0),
                  784 * N_ITEMS);
}

typedef struct {
  double loss[8];
  int n;
} Losses;

static void
record(const FthTrainProgress *p, gpointer data)
{
  Losses *l = data;
  if (p->epoch_end && l->n < 8)
    l->loss[l->n++] = p->train_loss;
}

static void
test_cnn_learns_and_predicts(void)
{
  GError *error = NULL;
  g_autoptr(FthStore) store = fth_store_open(project, &error);
  FthTrainOptions o;
  fth_train_options_init(&o);
  o.recipe = "fmnist-cnn";
  o.epochs = 6;
  o.lr = 0.02;
  o.seed = 3;
  Losses l = {0};
  o.progress = record;
  o.progress_data = &l;
  FthTrainResult res;
  g_assert_true(fth_train(store, &o, &res, &error));
  g_assert_no_error(error);
  g_assert_cmpint(l.n, ==, 6);
  g_test_message("train loss per epoch: %.3f %.3f %.3f %.3f %.3f %.3f, test accuracy %.3f",
                 l.loss[0], l.loss[1], l.loss[2], l.loss[3], l.loss[4], l.loss[5], res.test_acc);
  g_assert_cmpfloat(l.loss[5], <, 0.6 * l.loss[0]);
  g_assert_cmpfloat(res.test_acc, >, 0.55); /* 60 test images, 10 classes: chance is 0.1 */

  FthPredictOptions po = {.checkpoint_dir = res.checkpoint_dir, .batch = 100};
  gint64 run;
  gsize n;
  g_assert_true(fth_predict(store, &po, &run, &n, &error));
  g_assert_no_error(error);
  g_assert_cmpuint(n, ==, N_ITEMS);
  g_autoptr(GPtrArray) items = fth_store_list_items_after(store, NULL, 0, 5, &error);
  for (guint i = 0; i < items->len; i++) {
    FthItemRecord *it = g_ptr_array_index(items, i);
    g_autoptr(FthPrediction) p = fth_store_get_prediction(store, run, it->id, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(p->n_classes, ==, 10);
    double sum = 0, top = 0;
    for (guint k = 0; k < 10; k++) {
      sum += p->probs[k];
      top = fmax(top, p->probs[k]);
    }
    g_assert_cmpfloat_with_epsilon(sum, 1.0, 1e-5);
    g_assert_cmpfloat_with_epsilon(p->top_score, top, 1e-6);
    g_assert_cmpint(p->top_label_id, >, 0);
    g_autoptr(FthEmbedding) e = fth_store_get_embedding(store, run, it->id, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(e->dim, ==, 128); /* the input of the last linear layer */
  }
  fth_train_result_clear(&res);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  if (!fth_test_have_fmnist())
    return 77;
  tmp_root = g_dir_make_tmp("fth-fmnist-XXXXXX", NULL);
  project = fth_test_fmnist_project_new(tmp_root, N_ITEMS);
  g_test_add_func("/fmnist/dataset-cache", test_dataset_cache);
  g_test_add_func("/fmnist/cnn-learns-and-predicts", test_cnn_learns_and_predicts);
  int rc = g_test_run();
  train_test_rmtree(tmp_root);
  g_free(tmp_root);
  g_free(project);
  return rc;
}
