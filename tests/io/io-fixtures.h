/* Fixture writers shared by the io tests: real JPEG, PNG, WAV and IDX files. */
#pragma once

#include <glib.h>

/* A W x H RGB JPEG whose pixels depend on SEED (different seeds, different files). */
GBytes *fth_test_jpeg(int w, int h, guint seed);
/* A W x H RGB PNG. */
GBytes *fth_test_png(int w, int h, guint seed);
/* 16-bit mono PCM WAV: FRAMES samples at RATE Hz. */
GBytes *fth_test_wav(int rate, int frames);
/* An IDX file: unsigned bytes with N_DIMS dimensions DIMS and the given data; gzip'ed when
 * GZIP. */
void fth_test_write_idx(const char *path, const guint32 *dims, guint n_dims, const guint8 *data,
                        gboolean gzip);
void fth_test_write(const char *path, const void *data, gsize len);
void fth_test_write_bytes(const char *path, GBytes *bytes);
/* A fresh temporary folder; remove it with fth_test_rmtree. */
char *fth_test_tmpdir(void);
void fth_test_rmtree(const char *path);
