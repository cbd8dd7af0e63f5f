/* Fixture writers shared by the io tests: real JPEG, PNG and WAV files (IDX files and the
 * rest: tests/support/fth-test-project.h). */
#pragma once

#include "fth-test-project.h"

#include <glib.h>

/* A W x H RGB JPEG whose pixels depend on SEED (different seeds, different files). */
GBytes *fth_test_jpeg(int w, int h, guint seed);
/* A W x H RGB PNG. */
GBytes *fth_test_png(int w, int h, guint seed);
/* 16-bit mono PCM WAV: FRAMES samples at RATE Hz. */
GBytes *fth_test_wav(int rate, int frames);
void fth_test_write_bytes(const char *path, GBytes *bytes);
/* A fresh temporary folder; remove it with fth_test_rmtree. */
char *fth_test_tmpdir(void);
