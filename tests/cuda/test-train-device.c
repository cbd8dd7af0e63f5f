/* `fathom train --device` through fth_train: auto and cpu train (auto on the GPU where one
 * answers, through the trainer's device path), cuda and cuda:N fail before any work with a
 * message that names the device and the reason where no such device answers, and a malformed
 * device is refused. Built and run with or without CUDA and a GPU. */
#include <fathom/train.h>
#include <string.h>

#include "fth-test-project.h"

enum { N_ITEMS = 40, S = 8, N_CLASSES = 2 };

static const char *recipe_text =
  "{\"name\": \"device-test\", \"input\": {\"shape\": [1, 8, 8]},"
  " \"layers\": [{\"type\": \"flatten\"}, {\"type\": \"linear\", \"out_features\": \"classes\"}],"
  " \"train\": {\"optimizer\": \"sgd\", \"lr\": 0.05, \"batch\": 8, \"epochs\": 1}}";

static char *tmp_root, *recipe_path, *project;

/* N_ITEMS 8x8 IDX images, class = whether the top or the bottom half is bright. */
static char *make_project(void) {
  char *dir = g_build_filename(tmp_root, "project", NULL);
  GError *error = NULL;
  g_autoptr(FthStore) store = fth_store_create(dir, &error);
  g_assert_no_error(error);
  g_autofree char *idx_path = g_build_filename(dir, "images-idx3-ubyte", NULL);
  guint8 pixels[N_ITEMS * S * S];
  for (int i = 0; i < N_ITEMS; i++)
    for (int p = 0; p < S * S; p++)
      pixels[i * S * S + p] = (guint8)(((p / S) < S / 2) == (i % 2 == 0) ? 220 : 20);
  const guint32 dims[3] = {N_ITEMS, S, S};
  fth_test_write_idx(idx_path, dims, 3, pixels, FALSE);
  gint64 labels[N_CLASSES];
  const char *const names[N_CLASSES] = {"top", "bottom"};
  fth_test_add_labels(store, names, N_CLASSES, labels);
  fth_test_add_idx_items(store, idx_path, N_ITEMS, S, labels, N_CLASSES, N_ITEMS, NULL);
  return dir;
}

static gboolean train_on(const char *device, FthTrainResult *res, GError **error) {
  g_autoptr(FthStore) store = fth_store_open(project, error);
  g_assert_nonnull(store);
  FthTrainOptions o;
  fth_train_options_init(&o);
  o.recipe = recipe_path;
  o.device = device;
  g_autofree char *ckpt = g_build_filename(tmp_root, device ? device : "default", NULL);
  o.checkpoint_dir = ckpt;
  return fth_train(store, &o, res, error);
}

/* auto, cpu and no device at all train here: the steps of one epoch are taken. */
static void test_auto_and_cpu_train(void) {
  const char *devices[] = {"auto", "cpu", NULL};
  for (int i = 0; i < 3; i++) {
    GError *error = NULL;
    FthTrainResult res;
    gboolean ok = train_on(devices[i], &res, &error);
    g_assert_no_error(error);
    g_assert_true(ok);
    g_assert_cmpint(res.epochs_run, ==, 1);
    g_assert_cmpint(res.steps, >, 0);
    fth_train_result_clear(&res);
  }
}

/* cuda and cuda:N fail with the device named and a reason where no such device answers; no run
 * is recorded for them. (Where one answers, fth_train trains on it: tests/cuda/test-cuda-train.) */
static void test_cuda_fails_clearly(void) {
  const char *devices[] = {"cuda", "cuda:3"};
  for (int i = 0; i < 2; i++) {
    GError *error = NULL;
    FthTrainResult res;
    const FthBackend *be;
    if (fth_backend_select(devices[i], &be) == FTH_STATUS_OK)
      continue;
    g_assert_false(train_on(devices[i], &res, &error));
    g_assert_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_INVALID);
    g_autofree char *prefix = g_strdup_printf("--device %s: ", devices[i]);
    g_assert_true(g_str_has_prefix(error->message, prefix));
    g_assert_cmpuint(strlen(error->message), >, strlen(prefix) + 10); /* a reason follows */
    g_test_message("%s", error->message);
    g_assert_cmpint(res.run_id, ==, 0);
    g_clear_error(&error);
  }
}

static void test_bad_device_refused(void) {
  const char *devices[] = {"gpu", "cuda:x", "cuda:-1", "cudax"};
  for (int i = 0; i < 4; i++) {
    GError *error = NULL;
    FthTrainResult res;
    g_assert_false(train_on(devices[i], &res, &error));
    g_assert_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_INVALID);
    g_assert_nonnull(strstr(error->message, devices[i]));
    g_assert_true(strstr(error->message, "expected auto, cpu, cuda or cuda:N") ||
                  strstr(error->message, "bad device index"));
    g_clear_error(&error);
  }
}

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, NULL);
  tmp_root = g_dir_make_tmp("fth-train-device-XXXXXX", NULL);
  g_assert_nonnull(tmp_root);
  recipe_path = g_build_filename(tmp_root, "device-test.json", NULL);
  g_assert_true(g_file_set_contents(recipe_path, recipe_text, -1, NULL));
  project = make_project();
  g_test_add_func("/train-device/auto-and-cpu-train", test_auto_and_cpu_train);
  g_test_add_func("/train-device/cuda-fails-clearly", test_cuda_fails_clearly);
  g_test_add_func("/train-device/bad-device-refused", test_bad_device_refused);
  int rc = g_test_run();
  fth_test_rmtree(tmp_root);
  g_free(project), g_free(recipe_path), g_free(tmp_root);
  return rc;
}
