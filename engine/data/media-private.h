/* Shared helpers of engine/data; not part of the public API. */
#pragma once

#include <fathom/media.h>

/* A whole file mapped read-only. Empty files map to data == NULL, len == 0. */
typedef struct {
  GMappedFile *mapped;
  const guint8 *data;
  gsize len;
} FthMediaFile;

gboolean fth_media_file_map(const char *path, FthMediaFile *file, GError **error);
void fth_media_file_unmap(FthMediaFile *file);

/* "name: <formatted message>" in FTH_MEDIA_ERROR. */
void fth_media_set_error(GError **error, FthMediaError code, const char *name, const char *format,
                         ...) G_GNUC_PRINTF(4, 5);

/* "name:line: <formatted message>" in FTH_MEDIA_ERROR. */
void fth_media_set_line_error(GError **error, FthMediaError code, const char *name, guint64 line,
                              const char *format, ...) G_GNUC_PRINTF(5, 6);
