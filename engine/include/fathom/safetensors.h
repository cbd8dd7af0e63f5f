/* fathom/safetensors.h: reading and writing safetensors files.
 *
 * The format (https://github.com/huggingface/safetensors): an 8-byte little-endian header
 * length N, N bytes of a UTF-8 JSON object, then the tensor bytes. Each header member other
 * than "__metadata__" names a tensor:
 *   "fc1.weight": {"dtype": "F32", "shape": [128, 3136], "data_offsets": [BEGIN, END]}
 * with offsets relative to the first byte after the header, tensors packed without holes and
 * stored row-major little-endian. "__metadata__" is a flat object of string -> string.
 *
 * Files are written atomically (fth_file_write_atomic): a kill or a full disk while writing
 * leaves any previous file at the path untouched. Reading maps the file and validates the
 * header before any tensor is handed out; every error names the file and what is wrong.
 */
#pragma once

#include <glib.h>
#include <stdint.h>

G_BEGIN_DECLS

#define FTH_SAFETENSORS_ERROR (fth_safetensors_error_quark())
GQuark fth_safetensors_error_quark(void);

typedef enum {
  FTH_SAFETENSORS_ERROR_IO,       /* open/read/write/fsync/rename failed (message has strerror) */
  FTH_SAFETENSORS_ERROR_FORMAT,   /* the file is not a valid safetensors file */
  FTH_SAFETENSORS_ERROR_ARGUMENT, /* the caller passed inconsistent tensors to write */
} FthSafetensorsError;

typedef enum {
  FTH_ST_BOOL, FTH_ST_U8, FTH_ST_I8, FTH_ST_I16, FTH_ST_U16, FTH_ST_F16, FTH_ST_BF16,
  FTH_ST_I32, FTH_ST_U32, FTH_ST_F32, FTH_ST_I64, FTH_ST_U64, FTH_ST_F64,
} FthStDtype;

#define FTH_ST_MAX_DIMS 8

typedef struct {
  const char *name;
  FthStDtype dtype;
  int ndim;
  int64_t shape[FTH_ST_MAX_DIMS];
  const void *data;    /* nbytes bytes, little-endian, row-major */
  size_t nbytes;
} FthStTensor;

/* "F32" etc.; NULL for an out-of-range value. */
const char *fth_st_dtype_name(FthStDtype dtype);
/* Bytes per element. */
size_t fth_st_dtype_size(FthStDtype dtype);

/* Writes n tensors (names unique, nbytes = prod(shape) * dtype size) and optional metadata
 * (string -> string, may be NULL) to path, atomically. */
gboolean fth_safetensors_write(const char *path, const FthStTensor *tensors, size_t n,
                               GHashTable *metadata, GError **error);

typedef struct _FthSafetensors FthSafetensors;

/* Maps and validates path. */
FthSafetensors *fth_safetensors_open(const char *path, GError **error);
void fth_safetensors_free(FthSafetensors *st);

size_t fth_safetensors_n_tensors(const FthSafetensors *st);
/* Tensors in file order of their data; data points into the mapping, valid until free. */
const FthStTensor *fth_safetensors_nth(const FthSafetensors *st, size_t i);
/* NULL when no tensor has that name. */
const FthStTensor *fth_safetensors_find(const FthSafetensors *st, const char *name);
/* NULL when the key is absent. */
const char *fth_safetensors_metadata(const FthSafetensors *st, const char *key);
const char *fth_safetensors_path(const FthSafetensors *st);

/* Atomic file replacement: writes the n_parts buffers, in order, to a temporary file in the
 * same directory, fsyncs it, renames it over path and fsyncs the directory. On any failure
 * the temporary file is removed and path keeps its previous content. */
typedef struct {
  const void *data;
  size_t len;
} FthFilePart;

gboolean fth_file_write_atomic(const char *path, const FthFilePart *parts, size_t n_parts,
                               GError **error);

G_END_DECLS
