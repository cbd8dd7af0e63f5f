/* `fathom train --device` through fth_train: auto and cpu train (auto on the GPU where one
 * answers, through the trainer's device path), cuda and cuda:N fail before any work with a
 * message that names the device and the reason where no such device answers, and a malformed
 * device is refused. Built and run with or without CUDA and a GPU. */
#include <fathom/train.h>
#include <glib/gstdio.h>
#include <string.h>

enum { N_ITEMS = 40, S = 8, N_CLASSES = 2 };

static const char *recipe_text =
  "{\"name\": \"device-test\", \"input\": {\"shape\": [1, 8, 8]},"
  " \"layers\": [{\"type\": \"flatten\"}, {\"type\": \"linear\", \"out_features\": \"classes\"}],"
  " \"train\": {\"optimizer\": \"sgd\", \"lr\": 0.05, \"batch\": 8, \"epochs\": 1}}";

static char *tmp_root, *recipe_path, *project;

static void put_be32(guint8 *p, guint32 v) {
  p[0] = (guint8)(v >> 24), p[1] = (guint8)(v >> 16), p[2] = (guint8)(v >> 8), p[3] = (guint8)v;
}

/* N_ITEMS 8x8 IDX images, class = whether the top or the bottom half is bright. */
static char *make_project(void) {
  char *dir = g_build_filename(tmp_root, "project", NULL);
  GError *error = NULL;
  g_autoptr(FthStore) store = fth_store_create(dir, &error);
  g_assert_no_error(error);
  g_autofree char *idx_path = g_build_filename(dir, "images-idx3-ubyte", NULL);
  gsize len = 16 + (gsize)N_ITEMS * S * S;
  g_autofree guint8 *buf = g_malloc0(len);
  put_be32(buf, 0x803), put_be32(buf + 4, N_ITEMS), put_be32(buf + 8, S), put_be32(buf + 12, S);
  for (int i = 0; i < N_ITEMS; i++)
    for (int p = 0; p < S * S; p++)
      buf[16 + (gsize)i * S * S + p] = (guint8)(((p / S) < S / 2) == (i % 2 == 0) ? 220 : 20);
  g_assert_true(g_file_set_contents(idx_path, (const char *)buf, (gssize)len, NULL));
  gint64 labels[N_CLASSES];
  const char *names[N_CLASSES] = {"top", "bottom"};
  for (int k = 0; k < N_CLASSES; k++)
    g_assert_true(fth_store_add_label(store, names[k], NULL, NULL, FTH_LABEL_CLASS, &labels[k], &error));
  g_assert_true(fth_store_begin(store, &error));
  for (int i = 0; i < N_ITEMS; i++) {
    g_autoptr(FthItemRecord) it = fth_item_record_new();
    it->kind = FTH_ITEM_IMAGE;
    it->path = g_strdup(idx_path);
    it->member = i;
    it->sha256 = g_strdup_printf("%064x", i + 1);
    it->width = it->height = S;
    gint64 id;
    g_assert_true(fth_store_add_item(store, it, &id, NULL, &error));
    g_assert_true(fth_store_set_class(store, id, labels[i % N_CLASSES], FTH_AUTHOR_HUMAN, 0, 1.0, NULL, &error));
  }
  g_assert_true(fth_store_commit(store, &error));
  g_assert_no_error(error);
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

static void rmtree(const char *path) {
  if (g_file_test(path, G_FILE_TEST_IS_DIR)) {
    GDir *d = g_dir_open(path, 0, NULL);
    const char *name;
    while (d && (name = g_dir_read_name(d)) != NULL) {
      g_autofree char *child = g_build_filename(path, name, NULL);
      rmtree(child);
    }
    if (d)
      g_dir_close(d);
    g_rmdir(path);
  } else {
    g_unlink(path);
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
  rmtree(tmp_root);
  g_free(project), g_free(recipe_path), g_free(tmp_root);
  return rc;
}
