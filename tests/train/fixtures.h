/* Shared by the tests in tests/train (fixtures.c). */
#pragma once

#include "fth-test-project.h"

#include <fathom/store.h>
#include <stdint.h>

/* The name the tests here use for it. */
#define train_test_rmtree fth_test_rmtree

/* N bar images of SIZE x SIZE from seed 5: noise below 60, and for class i % N_CLASSES (into
 * CLASSES, unless NULL) bright rows 2 class + 1 and 2 class + 2. */
void train_test_bar_samples(guint8 *pixels, int32_t *classes, int n, int size, int n_classes);
/* A new project in DIR of those images (N_CLASSES <= 3: "top", "middle", "bottom") as one IDX
 * file, every item labeled with its class by a human. */
void train_test_bar_project(const char *dir, int n, int size, int n_classes);
/* Every tensor of a checkpoint's weights file, concatenated in the file's order. */
GByteArray *train_test_checkpoint_weights(const char *ckpt_dir);
