/* Shared by the test programs that need files or a project on disk: a folder tree removed,
 * IDX files written, projects of synthetic bar images or of Fashion-MNIST records. */
#pragma once

#include <fathom/store.h>
#include <glib.h>

/* Debian's dataset-fashion-mnist; tests that need it exit 77 (or skip) without it. */
#define FTH_TEST_FMNIST "/usr/share/datasets/fashion-mnist"

/* Removes PATH: a file, or a folder and everything in it (links are removed, not followed). */
void fth_test_rmtree(const char *path);
/* Writes LEN bytes to PATH, making its folder first. */
void fth_test_write(const char *path, const void *data, gsize len);
/* An IDX file: unsigned bytes with N_DIMS dimensions DIMS and the given data; gzip'ed when
 * GZIP. */
void fth_test_write_idx(const char *path, const guint32 *dims, guint n_dims, const guint8 *data,
                        gboolean gzip);

/* A small CNN for 8x8 one-channel images (conv, pool, two linear layers; 3 epochs of SGD). */
#define FTH_TEST_TINY_CNN_RECIPE \
  "{\"name\": \"tiny\", \"input\": {\"shape\": [1, 8, 8]}," \
  " \"layers\": [{\"type\": \"conv2d\", \"out_channels\": 4, \"kernel\": 3, \"padding\": 1}," \
  "  {\"type\": \"relu\"}, {\"type\": \"max_pool2d\", \"kernel\": 2}, {\"type\": \"flatten\"}," \
  "  {\"type\": \"linear\", \"out_features\": 16}, {\"type\": \"relu\"}," \
  "  {\"type\": \"linear\", \"out_features\": \"classes\"}]," \
  " \"train\": {\"optimizer\": \"sgd\", \"lr\": 0.05, \"momentum\": 0.9, \"batch\": 16," \
  "  \"epochs\": 3}}"

/* Synthetic SIZE x SIZE images of N_CLASSES classes: item i has class i % N_CLASSES, drawn as
 * bright row 2k+1 (and 2k+2 when TWO_BARS) over noise. The same fields give the same bytes. */
typedef struct {
  int n_items, size, n_classes;
  guint32 seed;
  int noise_max;     /* background pixels in [0, noise_max) */
  int bar_min;       /* bar pixels in [bar_min, 256) */
  gboolean two_bars;
} FthTestBars;

/* N_ITEMS * SIZE * SIZE pixels; g_free them. */
guint8 *fth_test_bars_pixels(const FthTestBars *bars);

/* N class labels NAMES; their ids into LABEL_IDS. */
void fth_test_add_labels(FthStore *store, const char *const *names, int n, gint64 *label_ids);
/* The N_ITEMS records of the SIZE x SIZE IDX file IDX_PATH as items, in one transaction; the
 * first N_LABELED get class LABEL_IDS[i % N_CLASSES] from a human. Their ids go into ITEM_IDS
 * unless it is NULL. */
void fth_test_add_idx_items(FthStore *store, const char *idx_path, int n_items, int size,
                            const gint64 *label_ids, int n_classes, int n_labeled,
                            gint64 *item_ids);
/* A new project in DIR: BARS as DIR/images-idx3-ubyte, one label per class (CLASS_NAMES), the
 * first N_LABELED items labeled. Ids go into LABEL_IDS and ITEM_IDS unless they are NULL. */
FthStore *fth_test_bars_project_new(const char *dir, const FthTestBars *bars,
                                    const char *const *class_names, int n_labeled,
                                    gint64 *label_ids, gint64 *item_ids);

/* TRUE when Debian's dataset-fashion-mnist is installed; else FALSE, having said so on stderr. */
gboolean fth_test_have_fmnist(void);
/* The first N Fashion-MNIST training images as items of STORE, each with its class. */
void fth_test_add_fmnist_items(FthStore *store, int n);
/* A new project ROOT/fmnist of the first N of them; returns its folder. */
char *fth_test_fmnist_project_new(const char *root, int n);
